// Elementwise kernels (docs/OPS.md embed, hc_expand, add, take_last, swiglu, moe_swiglu).
//
// Every kernel streams its flat output range in 4096-value chunks through double-buffered
// VECIN/VECOUT queues; each core owns a contiguous, 16-value-aligned share. The clamped
// SwiGLU is silu(min(g, c)) * clamp(u, -c, c) (MODEL.md §11 F5/F6), computed as
// g * (1 / (1 + exp(-g))) * u with vector Exp/Reciprocal; moe_swiglu also scales slot k by wt[k].
#pragma once
#include "common.h"

namespace ds4_elementwise {

constexpr uint32_t CH = 4096;

struct Stream {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> inA, inB;
    TQue<TPosition::VECOUT, 2> out;
    TBuf<TPosition::VECCALC> tmp, scratch;

    __aicore__ inline void Init(uint32_t inBytes) {
        pipe.InitBuffer(inA, 2, CH * inBytes);
        pipe.InitBuffer(inB, 2, CH * sizeof(float));
        pipe.InitBuffer(out, 2, CH * sizeof(float));
        pipe.InitBuffer(tmp, CH * sizeof(float));
        pipe.InitBuffer(scratch, 64 * sizeof(float));
    }
    template <typename T> __aicore__ inline LocalTensor<T> Load(TQue<TPosition::VECIN, 2> &q, const GlobalTensor<T> &g, uint32_t n) {
        LocalTensor<T> t = q.AllocTensor<T>();
        ds4::LoadGm(t, g, n, scratch.Get<T>(32 / sizeof(T)));
        q.EnQue(t);
        return q.DeQue<T>();
    }
    __aicore__ inline void Store(const GlobalTensor<float> &g, LocalTensor<float> &o, uint32_t n) {
        out.EnQue(o);
        LocalTensor<float> t = out.DeQue<float>();
        ds4::StoreGm(g, t, n, scratch.Get<float>()[32]);
        out.FreeTensor(t);
    }
};

// Copies `n` f32 of src[soff..] to dst[doff..] for this core's share (take_last, hc_expand).
__aicore__ inline void CopyF32(Stream &s, const GlobalTensor<float> &src, const GlobalTensor<float> &dst, uint32_t n) {
    ds4::Range r = ds4::CoreRange(n, 16);
    for (uint32_t c = r.begin; c < r.end; c += CH) {
        uint32_t len = ds4::MinU(CH, r.end - c);
        LocalTensor<float> a = s.Load(s.inB, src[c], len);
        LocalTensor<float> o = s.out.AllocTensor<float>();
        DataCopy(o, a, ds4::RoundUp(len, 8));
        s.inB.FreeTensor(a);
        s.Store(dst[c], o, len);
    }
}

// m = silu(min(g, c)) * clamp(u, -c, c), written into o (len values).
__aicore__ inline void SwigluChunk(Stream &s, LocalTensor<float> &o, const LocalTensor<float> &g,
                                   const LocalTensor<float> &u, uint32_t len, float clamp) {
    int32_t n = (int32_t)ds4::RoundUp(len, 8);
    LocalTensor<float> t = s.tmp.Get<float>();
    if (clamp > 1e-6f) {
        Mins(g, g, clamp, n);
        Mins(u, u, clamp, n);
        Maxs(u, u, -clamp, n);
    }
    Muls(t, g, -1.0f, n);
    Exp(t, t, n);
    Adds(t, t, 1.0f, n);
    Reciprocal(t, t, n);
    Mul(o, g, t, n);
    Mul(o, o, u, n);
}


DS4_IMPL ds4_embed(GM_ADDR table, GM_ADDR tokens, GM_ADDR y, uint32_t rows, uint32_t n_embd, uint32_t vocab) {
    Stream s;
    s.Init(sizeof(half));
    GlobalTensor<half> tab;
    GlobalTensor<int32_t> tok;
    GlobalTensor<float> out;
    tab.SetGlobalBuffer((__gm__ half *)table, (uint64_t)n_embd * vocab);
    tok.SetGlobalBuffer((__gm__ int32_t *)tokens, rows);
    out.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows * n_embd);
    ds4::Range r = ds4::CoreRange(n_embd, 16);
    for (uint32_t t = 0; t < rows; t++) {
        uint32_t id = (uint32_t)tok.GetValue(t);
        if (id >= vocab) id = 0;  // the host validates ids; never read outside the table
        for (uint32_t c = r.begin; c < r.end; c += CH) {
            uint32_t len = ds4::MinU(CH, r.end - c);
            LocalTensor<half> h = s.Load(s.inA, tab[(uint64_t)id * n_embd + c], len);
            LocalTensor<float> o = s.out.AllocTensor<float>();
            Cast(o, h, RoundMode::CAST_NONE, (int32_t)ds4::RoundUp(len, 16));
            s.inA.FreeTensor(h);
            s.Store(out[(uint64_t)t * n_embd + c], o, len);
        }
    }
}

DS4_IMPL ds4_hc_expand(GM_ADDR x, GM_ADDR hc, uint32_t rows, uint32_t n) {
    Stream s;
    s.Init(sizeof(float));
    GlobalTensor<float> xg, hg;
    xg.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows * n);
    hg.SetGlobalBuffer((__gm__ float *)hc, (uint64_t)rows * 4 * n);
    for (uint32_t t = 0; t < rows; t++)
        for (uint32_t k = 0; k < 4; k++) CopyF32(s, xg[(uint64_t)t * n], hg[((uint64_t)t * 4 + k) * n], n);
}

DS4_IMPL ds4_take_last(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t n) {
    Stream s;
    s.Init(sizeof(float));
    GlobalTensor<float> xg, yg;
    xg.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows * n);
    yg.SetGlobalBuffer((__gm__ float *)y, n);
    CopyF32(s, xg[(uint64_t)(rows - 1) * n], yg, n);
}

// mode 0: add; 1: swiglu; 2: moe_swiglu (slot weights in w, n_ff values per slot).
DS4_IMPL ds4_binary(GM_ADDR a, GM_ADDR b, GM_ADDR w, GM_ADDR y, uint32_t total, uint32_t mode, float clamp,
                      uint32_t n_ff, uint32_t k) {
    Stream s;
    s.Init(sizeof(float));
    GlobalTensor<float> ag, bg, yg, wg;
    ag.SetGlobalBuffer((__gm__ float *)a, total);
    bg.SetGlobalBuffer((__gm__ float *)b, total);
    yg.SetGlobalBuffer((__gm__ float *)y, total);
    if (mode == 2) wg.SetGlobalBuffer((__gm__ float *)w, (uint64_t)(total / (n_ff * k)) * k);
    // moe_swiglu: chunks never straddle a slot, so the slot weight is one scalar per chunk.
    uint32_t unit = mode == 2 ? n_ff : total;
    ds4::Range r = ds4::CoreRange(total, 16);
    for (uint32_t c = r.begin; c < r.end;) {
        uint32_t len = ds4::MinU(CH, r.end - c);
        if (mode == 2) len = ds4::MinU(len, unit - c % unit);
        LocalTensor<float> x0 = s.Load(s.inA, ag[c], len);
        LocalTensor<float> x1 = s.Load(s.inB, bg[c], len);
        LocalTensor<float> o = s.out.AllocTensor<float>();
        if (mode == 0) {
            Add(o, x0, x1, (int32_t)ds4::RoundUp(len, 8));
        } else {
            SwigluChunk(s, o, x0, x1, len, clamp);
            if (mode == 2) Muls(o, o, wg.GetValue(c / n_ff), (int32_t)ds4::RoundUp(len, 8));
        }
        s.inA.FreeTensor(x0);
        s.inB.FreeTensor(x1);
        s.Store(yg[c], o, len);
        c += len;
    }
}

DS4_OP embed(GM_ADDR table, GM_ADDR tokens, GM_ADDR y, uint32_t n_tokens, uint32_t n_embd, uint32_t vocab) {
    ds4_embed(table, tokens, y, n_tokens, n_embd, vocab);
}
DS4_OP hc_expand(GM_ADDR x, GM_ADDR hc, uint32_t n_tokens, uint32_t n_embd) {
    ds4_hc_expand(x, hc, n_tokens, n_embd);
}
DS4_OP take_last(GM_ADDR x, GM_ADDR y, uint32_t n_tokens, uint32_t n) {
    ds4_take_last(x, y, n_tokens, n);
}
DS4_OP add(GM_ADDR a, GM_ADDR b, GM_ADDR y, uint32_t n_tokens, uint32_t n) {
    ds4_binary(a, b, nullptr, y, n_tokens * n, 0u, 0.0f, 1u, 1u);
}
DS4_OP swiglu(GM_ADDR g, GM_ADDR u, GM_ADDR m, uint32_t n_tokens, uint32_t n, float clamp) {
    ds4_binary(g, u, nullptr, m, n_tokens * n, 1u, clamp, 1u, 1u);
}
DS4_OP moe_swiglu(GM_ADDR g, GM_ADDR u, GM_ADDR wt, GM_ADDR mid, uint32_t n_tokens, uint32_t k, uint32_t n_ff, float clamp) {
    ds4_binary(g, u, wt, mid, n_tokens * k * n_ff, 2u, clamp, n_ff, k);
}

}  // namespace ds4_elementwise
