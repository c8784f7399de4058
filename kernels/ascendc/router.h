// Expert router (docs/OPS.md router_probs, router_topk, router_hash; MODEL.md §11 F3-F4).
//
// router_probs: sqrt(softplus(z)) with vector Exp/Ln/Sqrt over the core's share of the
// flattened logits. log1p(e) is evaluated as ln(u)·e/(u-1) with u = 1+e (accurate where
// ln(1+e) alone would lose the small e); z > 20 and z < -20 take ds4's branches (z, e^z),
// fixed up per element on the UB tile. router_topk/hash: one token per core at a time, the
// k-best insertion selection and the weight normalisation are scalar over the UB tile of
// NE biased probabilities (inherently sequential, the same comparisons as the CPU).
#pragma once
#include "common.h"

namespace ds4_router {
constexpr uint32_t CH = 4096;
constexpr uint32_t MAX_NE = 1024;
constexpr uint32_t RT = 16;

DS4_IMPL ds4_router_probs(GM_ADDR logits, GM_ADDR prob, uint32_t total) {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> inQ;
    TBuf<TPosition::VECCALC> e, u, l, scratch;
    pipe.InitBuffer(inQ, 2, CH * sizeof(float));
    pipe.InitBuffer(e, CH * sizeof(float));
    pipe.InitBuffer(u, CH * sizeof(float));
    pipe.InitBuffer(l, CH * sizeof(float));
    pipe.InitBuffer(scratch, 64);
    GlobalTensor<float> zg, pg;
    zg.SetGlobalBuffer((__gm__ float *)logits, total);
    pg.SetGlobalBuffer((__gm__ float *)prob, total);
    ds4::Range r = ds4::CoreRange(total, 16);
    LocalTensor<float> et = e.Get<float>(), ut = u.Get<float>(), lt = l.Get<float>();
    for (uint32_t c = r.begin; c < r.end; c += CH) {
        uint32_t len = ds4::MinU(CH, r.end - c);
        int32_t n = (int32_t)len;
        LocalTensor<float> z = inQ.AllocTensor<float>();
        ds4::LoadGm(z, zg[c], len, scratch.Get<float>(8));
        inQ.EnQue(z);
        z = inQ.DeQue<float>();
        Exp(et, z, n);
        Adds(ut, et, 1.0f, n);
        Ln(lt, ut, n);
        Adds(ut, ut, -1.0f, n);   // u - 1 (exact)
        Div(lt, lt, ut, n);       // ln(u) / (u - 1)
        Mul(lt, lt, et, n);       // · e
        PipeBarrier<PIPE_ALL>();
        for (uint32_t i = 0; i < len; i++) {
            float zi = z.GetValue(i);
            if (zi > 20.0f) lt.SetValue(i, zi);
            else if (zi < -20.0f || ut.GetValue(i) == 0.0f) lt.SetValue(i, et.GetValue(i));
        }
        inQ.FreeTensor(z);
        PipeBarrier<PIPE_ALL>();
        Sqrt(lt, lt, n);
        PipeBarrier<PIPE_ALL>();
        ds4::StoreGm(pg[c], lt, len, scratch.Get<float>()[8]);
    }
}

// ids/weights for each token of this core's rows. hash = nullptr: top-k of prob + bias
// (bias may be nullptr); otherwise the ids are row `tokens[t]` of the [V][k] hash table.
DS4_IMPL ds4_router_select(GM_ADDR prob, GM_ADDR bias, GM_ADDR hash, GM_ADDR tokens, GM_ADDR ids, GM_ADDR wt,
                             uint32_t rows, uint32_t ne, uint32_t k, float scale, uint32_t vocab) {
    TPipe pipe;
    TBuf<TPosition::VECCALC> pb, bb, io, wo, scratch;
    pipe.InitBuffer(pb, MAX_NE * sizeof(float));
    pipe.InitBuffer(bb, MAX_NE * sizeof(float));
    pipe.InitBuffer(io, RT * 8 * sizeof(int32_t));
    pipe.InitBuffer(wo, RT * 8 * sizeof(float));
    pipe.InitBuffer(scratch, 64);
    GlobalTensor<float> pg, bg, wg;
    GlobalTensor<int32_t> hg, tg, ig;
    pg.SetGlobalBuffer((__gm__ float *)prob, (uint64_t)rows * ne);
    if (bias != nullptr) bg.SetGlobalBuffer((__gm__ float *)bias, ne);
    if (hash != nullptr) {
        hg.SetGlobalBuffer((__gm__ int32_t *)hash, (uint64_t)vocab * k);
        tg.SetGlobalBuffer((__gm__ int32_t *)tokens, rows);
    }
    ig.SetGlobalBuffer((__gm__ int32_t *)ids, (uint64_t)rows * k);
    wg.SetGlobalBuffer((__gm__ float *)wt, (uint64_t)rows * k);
    ds4::Range rc = ds4::CoreRange(rows, RT);
    for (uint32_t r0 = rc.begin; r0 < rc.end; r0 += RT) {
    ds4::Range r;
    r.begin = r0;
    r.end = ds4::MinU(r0 + RT, rc.end);
    LocalTensor<float> p = pb.Get<float>(), sel = bb.Get<float>(), wv = wo.Get<float>();
    LocalTensor<int32_t> iv = io.Get<int32_t>();
    if (bias != nullptr) ds4::LoadGm(sel, bg, ne, scratch.Get<float>(8));
    for (uint32_t t = r.begin; t < r.end; t++) {
        uint32_t o = (t - r.begin) * k;
        ds4::LoadGm(p, pg[(uint64_t)t * ne], ne, scratch.Get<float>(8));
        int32_t best[16];
        if (hash != nullptr) {
            uint32_t tok = (uint32_t)tg.GetValue(t);
            if (tok >= vocab) tok = 0;  // the host validates ids
            for (uint32_t j = 0; j < k; j++) best[j] = hg.GetValue((uint64_t)tok * k + j);
        } else {
            float bs[16];
            uint32_t nb = 0;
            for (uint32_t e = 0; e < ne; e++) {
                float s = p.GetValue(e) + (bias != nullptr ? sel.GetValue(e) : 0.0f);
                if (nb == k && !(s > bs[k - 1])) continue;
                uint32_t at = nb;
                for (uint32_t j = 0; j < nb; j++) {
                    if (s > bs[j]) {
                        at = j;
                        break;
                    }
                }
                uint32_t last = nb < k ? nb : k - 1;
                for (uint32_t j = last; j > at; j--) {
                    bs[j] = bs[j - 1];
                    best[j] = best[j - 1];
                }
                bs[at] = s;
                best[at] = (int32_t)e;
                if (nb < k) nb++;
            }
        }
        float sum = 0.0f;
        for (uint32_t j = 0; j < k; j++) sum += p.GetValue((uint32_t)best[j]);
        float denom = sum > (1.0f / 16384.0f) ? sum : (1.0f / 16384.0f);
        for (uint32_t j = 0; j < k; j++) {
            iv.SetValue(o + j, best[j]);
            wv.SetValue(o + j, p.GetValue((uint32_t)best[j]) / denom * scale);
        }
    }
    PipeBarrier<PIPE_ALL>();
    uint32_t n = (r.end - r.begin) * k;
    ds4::StoreGm(ig[(uint64_t)r.begin * k], iv, n, scratch.Get<int32_t>()[8]);
    ds4::StoreGm(wg[(uint64_t)r.begin * k], wv, n, scratch.Get<float>()[8]);
    }
}

DS4_OP router_probs(GM_ADDR logits, GM_ADDR prob, uint32_t n_tokens, uint32_t n_expert) {
    ds4_router_probs(logits, prob, n_tokens * n_expert);
}
DS4_OP router_topk(GM_ADDR prob, GM_ADDR bias, GM_ADDR ids, GM_ADDR wt, uint32_t n_tokens, uint32_t n_expert, uint32_t k, float scale) {
    ds4_router_select(prob, bias, nullptr, nullptr, ids, wt, n_tokens, n_expert, k, scale, 0u);
}
DS4_OP router_hash(GM_ADDR prob, GM_ADDR tid2eid, GM_ADDR tokens, GM_ADDR ids, GM_ADDR wt, uint32_t n_tokens, uint32_t n_expert, uint32_t k, float scale, uint32_t vocab) {
    ds4_router_select(prob, nullptr, tid2eid, tokens, ids, wt, n_tokens, n_expert, k, scale, vocab);
}

}  // namespace ds4_router
