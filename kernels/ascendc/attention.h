// Attention core and indexer selection (docs/OPS.md attention, indexer_topk; MODEL.md
// §9, §10).
//
// attention: MQA with K = V and a per-head sink logit. The rows a query at pos sees are the
// raw ring rows of positions max(0, pos-window+1)..=pos, then the visible compressed rows
// (all c < (pos+1)/ratio, or the indexer's selection). Each core takes a contiguous range
// of heads and streams the rows once in tiles of 16 through a double-buffered queue; per
// head it keeps an online softmax (running max m, denominator z, accumulator acc):
//   m' = max(m, s_i), acc = acc·e^(m-m') + Σ e^(s_i-m')·row_i, z likewise,
// starting from m = sink, z = 1, acc = 0, so the sink only enters the denominator. The
// scores are vector Mul + ReduceSum, the exponentials one vector Exp per tile.
// FIXME: every core reads all rows (heads are split, rows are not); splitting rows needs a
// cross-core merge of the (m, z, acc) triples.
// indexer_topk: one token per core. Scores over the visible indexer rows are vector dots
// (ReLU, weighted by the head weights, in head order); the top_k (score desc, index asc)
// are kept in a scalar binary heap on UB and emitted in ascending row order, -1 padded.
// FIXME: a token's rows are not split over cores (the selection needs all scores).
#pragma once
#include "common.h"

namespace ds4_attention {

constexpr uint32_t RT = 16;        // rows per tile
constexpr uint32_t MAX_D = 512;
constexpr uint32_t MAX_ACC = 8192; // heads·head_dim of one pass
constexpr uint32_t MAX_HEADS = 64; // heads of one pass

class Attn {
public:
    __aicore__ inline void Run(GM_ADDR q, GM_ADDR sinks, GM_ADDR raw, GM_ADDR comp, GM_ADDR sel, GM_ADDR out,
                               uint32_t rows, uint32_t pos0, uint32_t heads, uint32_t hd, uint32_t window,
                               uint32_t ratio, uint32_t cap, uint32_t comp_rows, uint32_t top_k) {
        pipe_.InitBuffer(rowQ_, 2, RT * MAX_D * sizeof(float));
        pipe_.InitBuffer(q_, MAX_ACC * sizeof(float));
        pipe_.InitBuffer(acc_, MAX_ACC * sizeof(float));
        pipe_.InitBuffer(prod_, MAX_D * sizeof(float));
        pipe_.InitBuffer(e_, 64 * sizeof(float));
        pipe_.InitBuffer(scratch_, 128);
        GlobalTensor<float> qg, sg, rg, cg, og;
        GlobalTensor<int32_t> selg;
        qg.SetGlobalBuffer((__gm__ float *)q, (uint64_t)rows * heads * hd);
        sg.SetGlobalBuffer((__gm__ float *)sinks, heads);
        rg.SetGlobalBuffer((__gm__ float *)raw, (uint64_t)cap * hd);
        if (ratio != 0) cg.SetGlobalBuffer((__gm__ float *)comp, (uint64_t)comp_rows * hd);
        if (sel != nullptr) selg.SetGlobalBuffer((__gm__ int32_t *)sel, (uint64_t)rows * top_k);
        og.SetGlobalBuffer((__gm__ float *)out, (uint64_t)rows * heads * hd);
        ds4::Range hr = ds4::CoreRange(heads, 1);
        uint32_t per = ds4::MinU(MAX_ACC / hd, MAX_HEADS);  // heads one pass can hold
        float scale = 1.0f / SqrtScalar((float)hd);
        for (uint32_t t = 0; t < rows; t++) {
            uint32_t pos = pos0 + t;
            for (uint32_t h0 = hr.begin; h0 < hr.end; h0 += per) {
                uint32_t nh = ds4::MinU(per, hr.end - h0);
                LocalTensor<float> qv = q_.Get<float>(), acc = acc_.Get<float>();
                ds4::LoadGm(qv, qg[((uint64_t)t * heads + h0) * hd], nh * hd, scratch_.Get<float>(8));
                Duplicate(acc, 0.0f, (int32_t)(nh * hd));
                for (uint32_t h = 0; h < nh; h++) {
                    m_[h] = sg.GetValue(h0 + h);
                    z_[h] = 1.0f;
                }
                // Raw window, oldest first.
                uint32_t lo = pos + 1 > window ? pos + 1 - window : 0;
                uint32_t nraw = pos + 1 - lo, ncomp = 0, nvis = ratio != 0 ? (pos + 1) / ratio : 0;
                if (ratio != 0) ncomp = sel != nullptr ? top_k : nvis;
                uint32_t total = nraw + ncomp;
                uint32_t i = 0;
                while (i < total) {
                    LocalTensor<float> tile = rowQ_.AllocTensor<float>();
                    uint32_t cnt = 0;
                    while (i < total && cnt < RT) {
                        if (i < nraw) {
                            ds4::LoadGm(tile[cnt * MAX_D], rg[(uint64_t)((lo + i) % cap) * hd], hd, scratch_.Get<float>(8));
                            cnt++;
                        } else {
                            int32_t c = (int32_t)(i - nraw);
                            if (sel != nullptr) c = selg.GetValue((uint64_t)t * top_k + (i - nraw));
                            if (c >= 0 && (uint32_t)c < nvis) {
                                ds4::LoadGm(tile[cnt * MAX_D], cg[(uint64_t)c * hd], hd, scratch_.Get<float>(8));
                                cnt++;
                            }
                        }
                        i++;
                    }
                    rowQ_.EnQue(tile);
                    tile = rowQ_.DeQue<float>();
                    if (cnt > 0)
                        for (uint32_t h = 0; h < nh; h++) Update(h, tile, cnt, hd, scale);
                    rowQ_.FreeTensor(tile);
                }
                for (uint32_t h = 0; h < nh; h++) Muls(acc[h * hd], acc[h * hd], 1.0f / z_[h], (int32_t)hd);
                PipeBarrier<PIPE_ALL>();
                ds4::StoreGm(og[((uint64_t)t * heads + h0) * hd], acc, nh * hd, scratch_.Get<float>()[8]);
            }
        }
    }

private:
    __aicore__ inline float SqrtScalar(float v) {
        LocalTensor<float> e = e_.Get<float>();
        e.SetValue(0, v);
        PipeBarrier<PIPE_ALL>();
        Sqrt(e, e, 8);
        PipeBarrier<PIPE_ALL>();
        return e.GetValue(0);
    }

    // Online-softmax update of head h with `cnt` rows of the tile.
    __aicore__ inline void Update(uint32_t h, const LocalTensor<float> &tile, uint32_t cnt, uint32_t hd, float scale) {
        LocalTensor<float> qh = q_.Get<float>()[h * hd], acc = acc_.Get<float>()[h * hd];
        LocalTensor<float> prod = prod_.Get<float>(), e = e_.Get<float>();
        LocalTensor<float> work = scratch_.Get<float>()[16];
        float s[RT];
        float mx = m_[h];
        for (uint32_t r = 0; r < cnt; r++) {
            Mul(prod, qh, tile[r * MAX_D], (int32_t)hd);
            s[r] = ds4::SumScalar(prod, hd, work) * scale;
            mx = s[r] > mx ? s[r] : mx;
        }
        for (uint32_t r = 0; r < cnt; r++) e.SetValue(r, s[r] - mx);
        e.SetValue(RT, m_[h] - mx);
        PipeBarrier<PIPE_ALL>();
        Exp(e, e, (int32_t)(RT + 8));
        PipeBarrier<PIPE_ALL>();
        float corr = e.GetValue(RT);
        Muls(acc, acc, corr, (int32_t)hd);
        float z = z_[h] * corr;
        for (uint32_t r = 0; r < cnt; r++) {
            float w = e.GetValue(r);
            Axpy(acc, tile[r * MAX_D], w, (int32_t)hd);
            z += w;
        }
        z_[h] = z;
        m_[h] = mx;
    }

    TPipe pipe_;
    TQue<TPosition::VECIN, 2> rowQ_;
    TBuf<TPosition::VECCALC> q_, acc_, prod_, e_, scratch_;
    float m_[MAX_HEADS], z_[MAX_HEADS];
};

// (score, index) ordering of the selection: higher score first, then lower index.
__aicore__ inline bool Better(float s1, int32_t c1, float s2, int32_t c2) {
    return s1 > s2 || (s1 == s2 && c1 < c2);
}


DS4_IMPL ds4_attention(GM_ADDR q, GM_ADDR sinks, GM_ADDR raw, GM_ADDR comp, GM_ADDR sel, GM_ADDR out, uint32_t rows,
                         uint32_t pos0, uint32_t heads, uint32_t hd, uint32_t window, uint32_t ratio, uint32_t cap,
                         uint32_t comp_rows, uint32_t top_k) {
    Attn op;
    op.Run(q, sinks, raw, comp, sel, out, rows, pos0, heads, hd, window, ratio, cap, comp_rows, top_k);
}

constexpr uint32_t MAX_N = 16384;  // indexer rows scored per token
constexpr uint32_t MAX_K = 1024;

DS4_IMPL ds4_indexer_topk(GM_ADDR q, GM_ADDR wts, GM_ADDR rows_gm, GM_ADDR sel, uint32_t rows, uint32_t pos0,
                            uint32_t heads, uint32_t hd, uint32_t top_k, uint32_t ratio, uint32_t n_rows) {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> rowQ;
    TBuf<TPosition::VECCALC> qb, sc, prod, hs, hi, out, scratch;
    pipe.InitBuffer(rowQ, 2, MAX_D * sizeof(float));
    pipe.InitBuffer(qb, 64 * 128 * sizeof(float));
    pipe.InitBuffer(sc, MAX_N * sizeof(float));
    pipe.InitBuffer(prod, MAX_D * sizeof(float));
    pipe.InitBuffer(hs, MAX_K * sizeof(float));
    pipe.InitBuffer(hi, MAX_K * sizeof(int32_t));
    pipe.InitBuffer(out, MAX_K * sizeof(int32_t));
    pipe.InitBuffer(scratch, 128);
    GlobalTensor<float> qg, wg, rg;
    GlobalTensor<int32_t> sg;
    qg.SetGlobalBuffer((__gm__ float *)q, (uint64_t)rows * heads * hd);
    wg.SetGlobalBuffer((__gm__ float *)wts, (uint64_t)rows * heads);
    rg.SetGlobalBuffer((__gm__ float *)rows_gm, (uint64_t)n_rows * hd);
    sg.SetGlobalBuffer((__gm__ int32_t *)sel, (uint64_t)rows * top_k);
    ds4::Range r = ds4::CoreRange(rows, 1);
    LocalTensor<float> qv = qb.Get<float>(), score = sc.Get<float>(), p = prod.Get<float>(), hsv = hs.Get<float>();
    LocalTensor<int32_t> hiv = hi.Get<int32_t>(), o = out.Get<int32_t>();
    LocalTensor<float> work = scratch.Get<float>()[16];
    for (uint32_t t = r.begin; t < r.end; t++) {
        uint32_t n = (pos0 + t + 1) / ratio;
        for (uint32_t i = 0; i < top_k; i++) o.SetValue(i, -1);
        if (n <= top_k) {
            for (uint32_t i = 0; i < n; i++) o.SetValue(i, (int32_t)i);
        } else {
            float scale = ds4::RsqrtScalar((float)(hd * heads), work);
            float w[64];
            for (uint32_t h = 0; h < heads; h++) w[h] = wg.GetValue((uint64_t)t * heads + h) * scale;
            ds4::LoadGm(qv, qg[(uint64_t)t * heads * hd], heads * hd, scratch.Get<float>(8));
            for (uint32_t c = 0; c < n; c++) {
                LocalTensor<float> row = rowQ.AllocTensor<float>();
                ds4::LoadGm(row, rg[(uint64_t)c * hd], hd, scratch.Get<float>(8));
                rowQ.EnQue(row);
                row = rowQ.DeQue<float>();
                float acc = 0.0f;
                for (uint32_t h = 0; h < heads; h++) {
                    Mul(p, qv[h * hd], row, (int32_t)hd);
                    float d = ds4::SumScalar(p, hd, work);
                    acc += (d > 0.0f ? d : 0.0f) * w[h];
                }
                rowQ.FreeTensor(row);
                score.SetValue(c, acc != acc ? -3.4e38f : acc);  // NaN ranks below everything
            }
            // Min-heap of the best top_k (root = worst kept).
            uint32_t size = 0;
            for (uint32_t c = 0; c < n; c++) {
                float s = score.GetValue(c);
                uint32_t at;
                if (size < top_k) {
                    at = size++;
                    while (at > 0) {
                        uint32_t par = (at - 1) / 2;
                        if (!Better(hsv.GetValue(par), hiv.GetValue(par), s, (int32_t)c)) break;
                        hsv.SetValue(at, hsv.GetValue(par));
                        hiv.SetValue(at, hiv.GetValue(par));
                        at = par;
                    }
                } else {
                    if (!Better(s, (int32_t)c, hsv.GetValue(0), hiv.GetValue(0))) continue;
                    at = 0;
                    while (true) {
                        uint32_t l = 2 * at + 1, rr = l + 1, worst = at;
                        float ws = s;
                        int32_t wi = (int32_t)c;
                        if (l < size && Better(ws, wi, hsv.GetValue(l), hiv.GetValue(l))) {
                            worst = l;
                            ws = hsv.GetValue(l);
                            wi = hiv.GetValue(l);
                        }
                        if (rr < size && Better(ws, wi, hsv.GetValue(rr), hiv.GetValue(rr))) worst = rr;
                        if (worst == at) break;
                        hsv.SetValue(at, hsv.GetValue(worst));
                        hiv.SetValue(at, hiv.GetValue(worst));
                        at = worst;
                    }
                }
                hsv.SetValue(at, s);
                hiv.SetValue(at, (int32_t)c);
            }
            // Ascending row order: mark the chosen rows in the score tile, then scan.
            for (uint32_t i = 0; i < size; i++) score.SetValue((uint32_t)hiv.GetValue(i), 3.4e38f);
            uint32_t k = 0;
            for (uint32_t c = 0; c < n && k < top_k; c++)
                if (score.GetValue(c) == 3.4e38f) o.SetValue(k++, (int32_t)c);
        }
        PipeBarrier<PIPE_ALL>();
        ds4::StoreGm(sg[(uint64_t)t * top_k], o, top_k, scratch.Get<int32_t>()[8]);
    }
}

DS4_OP attention(GM_ADDR q, GM_ADDR sinks, GM_ADDR raw, GM_ADDR comp, GM_ADDR sel, GM_ADDR out, uint32_t n_tokens, uint32_t pos0, uint32_t heads, uint32_t head_dim, uint32_t window, uint32_t ratio, uint32_t ring_rows, uint32_t comp_rows, uint32_t top_k) {
    ds4_attention(q, sinks, raw, comp, sel, out, n_tokens, pos0, heads, head_dim, window, ratio, ring_rows, comp_rows, top_k);
}
DS4_OP indexer_topk(GM_ADDR q, GM_ADDR wts, GM_ADDR index_rows, GM_ADDR sel, uint32_t n_tokens, uint32_t pos0, uint32_t heads, uint32_t head_dim, uint32_t top_k, uint32_t ratio, uint32_t n_rows) {
    ds4_indexer_topk(q, wts, index_rows, sel, n_tokens, pos0, heads, head_dim, top_k, ratio, n_rows);
}

}  // namespace ds4_attention
