// Hyper-connection kernels (docs/OPS.md hc_split, hc_weighted_sum, hc_post, hc_head_weights;
// MODEL.md §5, §12).
//
// hc_weighted_sum and hc_post stream the HC state: each core owns a contiguous 16-aligned
// range of the n_embd columns; per stream a Muls then Axpy in stream order, i.e. the CPU's
// `acc = w0·h0; acc += w_s·h_s` with the same roundings. hc_split and hc_head_weights
// work on 24 (4) control values per token: the sigmoids and the softmax exponentials are
// vector Exp/Reciprocal on a UB tile; the Sinkhorn normalisation of the 4x4 comb is scalar
// on UB (16 values, inherently sequential). Their token rows go to cores in ranges of 16.
#pragma once
#include "common.h"

namespace ds4_hc {

constexpr uint32_t CH = 4096;

// 1 / (1 + exp(-v)) on n values of t (in place); `tmp` is scratch of the same size.
__aicore__ inline void Sigmoid(const LocalTensor<float> &t, uint32_t n) {
    Muls(t, t, -1.0f, (int32_t)n);
    Exp(t, t, (int32_t)n);
    Adds(t, t, 1.0f, (int32_t)n);
    Reciprocal(t, t, (int32_t)n);
}

class Mix {
public:
    // mode 0: hc_weighted_sum (a = hc, b = w, out = x); mode 1: hc_post (a = y, b = res,
    // c = post, d = comb).
    __aicore__ inline void Init(uint32_t rows, uint32_t n) {
        rows_ = rows;
        n_ = n;
        pipe_.InitBuffer(inQ_, 2, CH * sizeof(float));
        pipe_.InitBuffer(outQ_, 2, CH * sizeof(float));
        pipe_.InitBuffer(ctl_, 32 * sizeof(float));
        pipe_.InitBuffer(scratch_, 64);
    }
    __aicore__ inline LocalTensor<float> Load(const GlobalTensor<float> &g, uint32_t len) {
        LocalTensor<float> t = inQ_.AllocTensor<float>();
        ds4::LoadGm(t, g, len, scratch_.Get<float>(8));
        inQ_.EnQue(t);
        return inQ_.DeQue<float>();
    }
    __aicore__ inline void Store(const GlobalTensor<float> &g, LocalTensor<float> &o, uint32_t len) {
        outQ_.EnQue(o);
        LocalTensor<float> t = outQ_.DeQue<float>();
        ds4::StoreGm(g, t, len, scratch_.Get<float>()[8]);
        outQ_.FreeTensor(t);
    }
    // out[c..] = (base ? base·s0 : 0) + Σ_k src_k·s_k over this core's columns.
    __aicore__ inline void WeightedSum(GM_ADDR hc, GM_ADDR w, GM_ADDR x) {
        GlobalTensor<float> h, wg, xg;
        h.SetGlobalBuffer((__gm__ float *)hc, (uint64_t)rows_ * 4 * n_);
        wg.SetGlobalBuffer((__gm__ float *)w, (uint64_t)rows_ * 4);
        xg.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows_ * n_);
        ds4::Range r = ds4::CoreRange(n_, 16);
        for (uint32_t t = 0; t < rows_; t++) {
            float ws[4];
            for (uint32_t s = 0; s < 4; s++) ws[s] = wg.GetValue(t * 4 + s);
            for (uint32_t c = r.begin; c < r.end; c += CH) {
                uint32_t len = ds4::MinU(CH, r.end - c);
                LocalTensor<float> o = outQ_.AllocTensor<float>();
                for (uint32_t s = 0; s < 4; s++) {
                    LocalTensor<float> a = Load(h[((uint64_t)t * 4 + s) * n_ + c], len);
                    if (s == 0) Muls(o, a, ws[0], (int32_t)len);
                    else Axpy(o, a, ws[s], (int32_t)len);
                    inQ_.FreeTensor(a);
                }
                Store(xg[(uint64_t)t * n_ + c], o, len);
            }
        }
    }
    __aicore__ inline void Post(GM_ADDR y, GM_ADDR res, GM_ADDR post, GM_ADDR comb, GM_ADDR out) {
        GlobalTensor<float> yg, rg, pg, cg, og;
        yg.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows_ * n_);
        rg.SetGlobalBuffer((__gm__ float *)res, (uint64_t)rows_ * 4 * n_);
        pg.SetGlobalBuffer((__gm__ float *)post, (uint64_t)rows_ * 4);
        cg.SetGlobalBuffer((__gm__ float *)comb, (uint64_t)rows_ * 16);
        og.SetGlobalBuffer((__gm__ float *)out, (uint64_t)rows_ * 4 * n_);
        ds4::Range r = ds4::CoreRange(n_, 16);
        for (uint32_t t = 0; t < rows_; t++) {
            float p[4], cm[16];
            for (uint32_t j = 0; j < 4; j++) p[j] = pg.GetValue(t * 4 + j);
            for (uint32_t j = 0; j < 16; j++) cm[j] = cg.GetValue(t * 16 + j);
            for (uint32_t c = r.begin; c < r.end; c += CH) {
                uint32_t len = ds4::MinU(CH, r.end - c);
                for (uint32_t j = 0; j < 4; j++) {
                    LocalTensor<float> o = outQ_.AllocTensor<float>();
                    LocalTensor<float> yv = Load(yg[(uint64_t)t * n_ + c], len);
                    Muls(o, yv, p[j], (int32_t)len);
                    inQ_.FreeTensor(yv);
                    for (uint32_t a = 0; a < 4; a++) {
                        LocalTensor<float> rv = Load(rg[((uint64_t)t * 4 + a) * n_ + c], len);
                        Axpy(o, rv, cm[j + 4 * a], (int32_t)len);
                        inQ_.FreeTensor(rv);
                    }
                    Store(og[((uint64_t)t * 4 + j) * n_ + c], o, len);
                }
            }
        }
    }

private:
    TPipe pipe_;
    TQue<TPosition::VECIN, 2> inQ_;
    TQue<TPosition::VECOUT, 2> outQ_;
    TBuf<TPosition::VECCALC> ctl_, scratch_;
    uint32_t rows_, n_;
};

constexpr uint32_t RT = 16;  // token rows per core share


DS4_IMPL ds4_hc_weighted_sum(GM_ADDR hc, GM_ADDR w, GM_ADDR x, uint32_t rows, uint32_t n) {
    Mix op;
    op.Init(rows, n);
    op.WeightedSum(hc, w, x);
}

DS4_IMPL ds4_hc_post(GM_ADDR y, GM_ADDR res, GM_ADDR post, GM_ADDR comb, GM_ADDR out, uint32_t rows, uint32_t n) {
    Mix op;
    op.Init(rows, n);
    op.Post(y, res, post, comb, out);
}

DS4_IMPL ds4_hc_split(GM_ADDR mix, GM_ADDR scale, GM_ADDR base, GM_ADDR pre, GM_ADDR post, GM_ADDR comb,
                        uint32_t rows, uint32_t iters, float eps) {
    TPipe pipe;
    TBuf<TPosition::VECCALC> in, z, e, outP, outO, outC, scratch;
    pipe.InitBuffer(in, RT * 24 * sizeof(float));
    pipe.InitBuffer(z, 32 * sizeof(float));
    pipe.InitBuffer(e, 32 * sizeof(float));
    pipe.InitBuffer(outP, RT * 4 * sizeof(float));
    pipe.InitBuffer(outO, RT * 4 * sizeof(float));
    pipe.InitBuffer(outC, RT * 16 * sizeof(float));
    pipe.InitBuffer(scratch, 64);
    GlobalTensor<float> mg, sg, bg, pg, og, cg;
    mg.SetGlobalBuffer((__gm__ float *)mix, (uint64_t)rows * 24);
    sg.SetGlobalBuffer((__gm__ float *)scale, 3);
    bg.SetGlobalBuffer((__gm__ float *)base, 24);
    pg.SetGlobalBuffer((__gm__ float *)pre, (uint64_t)rows * 4);
    og.SetGlobalBuffer((__gm__ float *)post, (uint64_t)rows * 4);
    cg.SetGlobalBuffer((__gm__ float *)comb, (uint64_t)rows * 16);
    ds4::Range rc = ds4::CoreRange(rows, RT);
    for (uint32_t r0 = rc.begin; r0 < rc.end; r0 += RT) {
    ds4::Range r;
    r.begin = r0;
    r.end = ds4::MinU(r0 + RT, rc.end);
    uint32_t cnt = r.end - r.begin;
    LocalTensor<float> mv = in.Get<float>(), zt = z.Get<float>(), et = e.Get<float>();
    LocalTensor<float> po = outP.Get<float>(), oo = outO.Get<float>(), co = outC.Get<float>();
    ds4::LoadGm(mv, mg[(uint64_t)r.begin * 24], cnt * 24, scratch.Get<float>(8));
    float s[3], b[24];
    for (uint32_t i = 0; i < 3; i++) s[i] = sg.GetValue(i);
    for (uint32_t i = 0; i < 24; i++) b[i] = bg.GetValue(i);
    for (uint32_t t = 0; t < cnt; t++) {
        for (uint32_t i = 0; i < 8; i++) zt.SetValue(i, mv.GetValue(t * 24 + i) * s[i / 4] + b[i]);
        float m[4];
        for (uint32_t a = 0; a < 4; a++) {
            float row[4];
            m[a] = -3.0e38f;
            for (uint32_t k = 0; k < 4; k++) {
                row[k] = mv.GetValue(t * 24 + 8 + 4 * a + k) * s[2] + b[8 + 4 * a + k];
                m[a] = row[k] > m[a] ? row[k] : m[a];
            }
            for (uint32_t k = 0; k < 4; k++) et.SetValue(4 * a + k, row[k] - m[a]);
        }
        PipeBarrier<PIPE_ALL>();
        Sigmoid(zt, 8);
        Exp(et, et, 16);
        PipeBarrier<PIPE_ALL>();
        for (uint32_t i = 0; i < 4; i++) {
            po.SetValue(t * 4 + i, zt.GetValue(i) + eps);
            oo.SetValue(t * 4 + i, 2.0f * zt.GetValue(4 + i));
        }
        float p[16];
        for (uint32_t a = 0; a < 4; a++) {
            float sum = et.GetValue(4 * a) + et.GetValue(4 * a + 1) + et.GetValue(4 * a + 2) + et.GetValue(4 * a + 3);
            for (uint32_t k = 0; k < 4; k++) p[4 * a + k] = et.GetValue(4 * a + k) / sum + eps;
        }
        for (uint32_t it = 0; it < iters; it++) {
            if (it > 0) {
                for (uint32_t a = 0; a < 4; a++) {
                    float sum = p[4 * a] + p[4 * a + 1] + p[4 * a + 2] + p[4 * a + 3] + eps;
                    for (uint32_t k = 0; k < 4; k++) p[4 * a + k] /= sum;
                }
            }
            for (uint32_t k = 0; k < 4; k++) {
                float sum = p[k] + p[4 + k] + p[8 + k] + p[12 + k] + eps;
                for (uint32_t a = 0; a < 4; a++) p[4 * a + k] /= sum;
            }
        }
        for (uint32_t i = 0; i < 16; i++) co.SetValue(t * 16 + i, p[i]);
    }
    PipeBarrier<PIPE_ALL>();
    ds4::StoreGm(pg[(uint64_t)r.begin * 4], po, cnt * 4, scratch.Get<float>()[8]);
    ds4::StoreGm(og[(uint64_t)r.begin * 4], oo, cnt * 4, scratch.Get<float>()[8]);
    ds4::StoreGm(cg[(uint64_t)r.begin * 16], co, cnt * 16, scratch.Get<float>()[8]);
    }
}

DS4_IMPL ds4_hc_head_weights(GM_ADDR pre, GM_ADDR scale, GM_ADDR base, GM_ADDR w, uint32_t rows, float eps) {
    TPipe pipe;
    TBuf<TPosition::VECCALC> in, scratch;
    pipe.InitBuffer(in, RT * 4 * sizeof(float));
    pipe.InitBuffer(scratch, 64);
    GlobalTensor<float> pg, sg, bg, wg;
    pg.SetGlobalBuffer((__gm__ float *)pre, (uint64_t)rows * 4);
    sg.SetGlobalBuffer((__gm__ float *)scale, 1);
    bg.SetGlobalBuffer((__gm__ float *)base, 4);
    wg.SetGlobalBuffer((__gm__ float *)w, (uint64_t)rows * 4);
    ds4::Range rc = ds4::CoreRange(rows, RT);
    for (uint32_t r0 = rc.begin; r0 < rc.end; r0 += RT) {
    ds4::Range r;
    r.begin = r0;
    r.end = ds4::MinU(r0 + RT, rc.end);
    uint32_t n = (r.end - r.begin) * 4;
    LocalTensor<float> v = in.Get<float>();
    ds4::LoadGm(v, pg[(uint64_t)r.begin * 4], n, scratch.Get<float>(8));
    float s = sg.GetValue(0), b[4];
    for (uint32_t i = 0; i < 4; i++) b[i] = bg.GetValue(i);
    for (uint32_t i = 0; i < n; i++) v.SetValue(i, v.GetValue(i) * s + b[i % 4]);
    PipeBarrier<PIPE_ALL>();
    Sigmoid(v, n);
    Adds(v, v, eps, (int32_t)n);
    PipeBarrier<PIPE_ALL>();
    ds4::StoreGm(wg[(uint64_t)r.begin * 4], v, n, scratch.Get<float>()[8]);
    }
}

DS4_OP hc_split(GM_ADDR mix, GM_ADDR scale, GM_ADDR base, GM_ADDR pre, GM_ADDR post, GM_ADDR comb, uint32_t n_tokens, uint32_t iters, float eps) {
    ds4_hc_split(mix, scale, base, pre, post, comb, n_tokens, iters, eps);
}
DS4_OP hc_weighted_sum(GM_ADDR hc, GM_ADDR w, GM_ADDR x, uint32_t n_tokens, uint32_t n_embd) {
    ds4_hc_weighted_sum(hc, w, x, n_tokens, n_embd);
}
DS4_OP hc_post(GM_ADDR y, GM_ADDR res, GM_ADDR post, GM_ADDR comb, GM_ADDR out, uint32_t n_tokens, uint32_t n_embd) {
    ds4_hc_post(y, res, post, comb, out, n_tokens, n_embd);
}
DS4_OP hc_head_weights(GM_ADDR pre, GM_ADDR scale, GM_ADDR base, GM_ADDR w, uint32_t n_tokens, float eps) {
    ds4_hc_head_weights(pre, scale, base, w, n_tokens, eps);
}

}  // namespace ds4_hc
