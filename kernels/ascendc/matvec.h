// Dense projections and activation quantisers (docs/OPS.md matvec_f16, quantize_q8_0,
// matvec_q8_0, matvec_q8_0_grouped, quantize_q8_k; MODEL.md §3.3-§3.5).
//
// Output rows are split over the cores in contiguous ranges of 8 (32 bytes of f32).
// matvec_f16: the F16 row is cast to f32 in UB, multiplied by the resident activation
// chunk and reduced (f32 ReduceSum). Q8_0: the weight is in the device layout of
// ds4-runtime/src/ascend/layout.rs (a plane of every block's 32 quants, then a plane of the
// f16 scales), so a row chunk's quants are one aligned DataCopy into UB; the activation
// (36-byte ds4 blocks) is unpacked once per token and group into an f32 tile of its integer
// quants plus per-block scales. The weight quants are widened with vector Casts (int8 ->
// half -> f32, exact), multiplied with the activation quants and summed per block by
// WholeReduceSum (exact: integers below 2^24); the blocks are then combined exactly as
// ds4 does, acc += (d_w·d_x)·isum in block order, so results equal the CPU bit for bit.
// FIXME: the weight is re-read once per token of a prefill chunk (a cube GEMM would not).
#pragma once
#include "common.h"

namespace ds4_matvec {

constexpr uint32_t KB = 128;          // Q8_0 blocks per chunk (4096 values)
constexpr uint32_t CH = KB * 32;      // values per chunk
constexpr uint32_t MAX_IN = 16384;    // largest activation kept resident
constexpr uint32_t OUT_TILE = 2048;   // output rows staged before a store

class Q8Matvec {
public:
    __aicore__ inline void Init(GM_ADDR w, GM_ADDR xq, GM_ADDR y, uint32_t rows, uint32_t groups, uint32_t gin,
                                uint32_t out) {
        nbg_ = gin / 32;
        groups_ = groups;
        out_ = out;
        opg_ = out / groups;
        rows_ = rows;
        uint64_t blocks = (uint64_t)out * nbg_;
        wq_.SetGlobalBuffer((__gm__ int8_t *)w, blocks * 32);
        wd_.SetGlobalBuffer((__gm__ half *)(w + blocks * 32), blocks);
        x_.SetGlobalBuffer((__gm__ uint8_t *)xq, (uint64_t)rows * groups * nbg_ * 36);
        y_.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows * out);
        pipe_.InitBuffer(rawQ_, 2, KB * 36);
        pipe_.InitBuffer(wQ_, 2, CH);
        pipe_.InitBuffer(q_, CH);
        pipe_.InitBuffer(h_, CH * sizeof(half));
        pipe_.InitBuffer(f_, CH * sizeof(float));
        pipe_.InitBuffer(xf_, MAX_IN * sizeof(float));
        pipe_.InitBuffer(dx_, (MAX_IN / 32) * sizeof(float));
        pipe_.InitBuffer(dw_, KB * (sizeof(half) + sizeof(float)));
        pipe_.InitBuffer(isum_, KB * sizeof(float));
        pipe_.InitBuffer(yo_, OUT_TILE * sizeof(float));
        pipe_.InitBuffer(scratch_, 64);
    }

    __aicore__ inline void Process() {
        ds4::Range r = ds4::CoreRange(out_, 8);
        for (uint32_t t = 0; t < rows_; t++) {
            uint32_t loaded = 0xffffffffu;
            for (uint32_t o0 = r.begin; o0 < r.end; o0 += OUT_TILE) {
                uint32_t o1 = ds4::MinU(o0 + OUT_TILE, r.end);
                LocalTensor<float> yo = yo_.Get<float>();
                for (uint32_t o = o0; o < o1; o++) {
                    uint32_t g = o / opg_;
                    if (g != loaded) {
                        UnpackX(t * groups_ + g);
                        loaded = g;
                    }
                    yo.SetValue(o - o0, Row(o));
                }
                PipeBarrier<PIPE_ALL>();
                ds4::StoreGm(y_[(uint64_t)t * out_ + o0], yo, o1 - o0, scratch_.Get<float>(8));
            }
        }
    }

private:
    __aicore__ inline LocalTensor<uint8_t> LoadRaw(const GlobalTensor<uint8_t> &src, uint32_t bytes) {
        LocalTensor<uint8_t> raw = rawQ_.AllocTensor<uint8_t>();
        ds4::LoadGm(raw, src, bytes, scratch_.Get<uint8_t>(32));
        rawQ_.EnQue(raw);
        return rawQ_.DeQue<uint8_t>();
    }

    // Activation row `xr` (nbg blocks of 36 bytes) -> xf_ (f32 quants) and dx_ (scales).
    __aicore__ inline void UnpackX(uint32_t xr) {
        LocalTensor<float> xf = xf_.Get<float>(), dx = dx_.Get<float>();
        for (uint32_t c = 0; c < nbg_; c += KB) {
            uint32_t cnt = ds4::MinU(KB, nbg_ - c);
            LocalTensor<uint8_t> raw = LoadRaw(x_[((uint64_t)xr * nbg_ + c) * 36], cnt * 36);
            LocalTensor<uint32_t> r32 = raw.ReinterpretCast<uint32_t>();
            LocalTensor<uint32_t> q32 = q_.Get<uint32_t>();
            for (uint32_t b = 0; b < cnt; b++) {
                dx.SetValue(c + b, ds4::BitsFloat(r32.GetValue(9 * b)));
                for (uint32_t i = 0; i < 8; i++) q32.SetValue(8 * b + i, r32.GetValue(9 * b + 1 + i));
            }
            rawQ_.FreeTensor(raw);
            PipeBarrier<PIPE_ALL>();
            Cast(h_.Get<half>(), q_.Get<int8_t>(), RoundMode::CAST_NONE, (int32_t)(cnt * 32));
            Cast(xf[c * 32], h_.Get<half>(), RoundMode::CAST_NONE, (int32_t)(cnt * 32));
        }
    }

    __aicore__ inline float Row(uint32_t o) {
        LocalTensor<float> xf = xf_.Get<float>(), dx = dx_.Get<float>(), f = f_.Get<float>();
        LocalTensor<half> dwh = dw_.Get<half>(KB);
        LocalTensor<float> dwf = dw_.Get<float>()[KB / 2];
        LocalTensor<float> isum = isum_.Get<float>();
        float acc = 0.0f;
        for (uint32_t c = 0; c < nbg_; c += KB) {
            uint32_t cnt = ds4::MinU(KB, nbg_ - c);
            uint64_t b0 = (uint64_t)o * nbg_ + c;
            LocalTensor<int8_t> wq = wQ_.AllocTensor<int8_t>();
            DataCopy(wq, wq_[b0 * 32], cnt * 32);
            wQ_.EnQue(wq);
            wq = wQ_.DeQue<int8_t>();
            ds4::LoadGm(dwh, wd_[b0], cnt, scratch_.Get<half>(16));
            int32_t n = (int32_t)(cnt * 32);
            Cast(h_.Get<half>(), wq, RoundMode::CAST_NONE, n);
            wQ_.FreeTensor(wq);
            Cast(f, h_.Get<half>(), RoundMode::CAST_NONE, n);
            Mul(f, f, xf[c * 32], n);
            WholeReduceSum(isum, f, 32, (int32_t)cnt, 1, 1, 4);
            Cast(dwf, dwh, RoundMode::CAST_NONE, (int32_t)ds4::RoundUp(cnt, 16));
            PipeBarrier<PIPE_ALL>();
            for (uint32_t b = 0; b < cnt; b++) acc += (dwf.GetValue(b) * dx.GetValue(c + b)) * isum.GetValue(b);
        }
        return acc;
    }

    TPipe pipe_;
    TQue<TPosition::VECIN, 2> rawQ_, wQ_;
    TBuf<TPosition::VECCALC> q_, h_, f_, xf_, dx_, dw_, isum_, yo_, scratch_;
    GlobalTensor<int8_t> wq_;
    GlobalTensor<half> wd_;
    GlobalTensor<uint8_t> x_;
    GlobalTensor<float> y_;
    uint32_t nbg_, groups_, out_, opg_, rows_;
};

class F16Matvec {
public:
    __aicore__ inline void Init(GM_ADDR w, GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t in, uint32_t out) {
        in_ = in;
        out_ = out;
        rows_ = rows;
        w_.SetGlobalBuffer((__gm__ half *)w, (uint64_t)in * out);
        x_.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows * in);
        y_.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows * out);
        pipe_.InitBuffer(wQ_, 2, CH * sizeof(half));
        pipe_.InitBuffer(xc_, CH * sizeof(float));
        pipe_.InitBuffer(f_, CH * sizeof(float));
        pipe_.InitBuffer(acc_, OUT_TILE * sizeof(float));
        pipe_.InitBuffer(scratch_, 128);
    }

    __aicore__ inline void Process() {
        ds4::Range r = ds4::CoreRange(out_, 8);
        LocalTensor<float> acc = acc_.Get<float>(), f = f_.Get<float>(), xc = xc_.Get<float>();
        LocalTensor<float> work = scratch_.Get<float>()[16];
        for (uint32_t t = 0; t < rows_; t++) {
            for (uint32_t o0 = r.begin; o0 < r.end; o0 += OUT_TILE) {
                uint32_t o1 = ds4::MinU(o0 + OUT_TILE, r.end);
                for (uint32_t c = 0; c < in_; c += CH) {
                    uint32_t len = ds4::MinU(CH, in_ - c);
                    ds4::LoadGm(xc, x_[(uint64_t)t * in_ + c], len, scratch_.Get<float>(8));
                    for (uint32_t o = o0; o < o1; o++) {
                        LocalTensor<half> wh = wQ_.AllocTensor<half>();
                        ds4::LoadGm(wh, w_[(uint64_t)o * in_ + c], len, scratch_.Get<half>(16));
                        wQ_.EnQue(wh);
                        wh = wQ_.DeQue<half>();
                        Cast(f, wh, RoundMode::CAST_NONE, (int32_t)ds4::RoundUp(len, 16));
                        wQ_.FreeTensor(wh);
                        Mul(f, f, xc, (int32_t)len);
                        float s = ds4::SumScalar(f, len, work);
                        acc.SetValue(o - o0, c == 0 ? s : acc.GetValue(o - o0) + s);
                    }
                }
                PipeBarrier<PIPE_ALL>();
                ds4::StoreGm(y_[(uint64_t)t * out_ + o0], acc, o1 - o0, scratch_.Get<float>(8));
            }
        }
    }

private:
    TPipe pipe_;
    TQue<TPosition::VECIN, 2> wQ_;
    TBuf<TPosition::VECCALC> xc_, f_, acc_, scratch_;
    GlobalTensor<half> w_;
    GlobalTensor<float> x_, y_;
    uint32_t in_, out_, rows_;
};

// Quantises rows of n f32 into ds4 Q8_0 (36-byte) or Q8_K (292-byte) activation blocks.
// Each core takes a contiguous range of 16 (Q8_0) or 8 (Q8_K) blocks, whose bytes are a
// multiple of 32. Rounding: lrintf (ties to even) then the clamp, as the CPU.
class Quantize {
public:
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR q, uint32_t rows, uint32_t n, uint32_t qk) {
        rows_ = rows;
        n_ = n;
        qk_ = qk;
        nb_ = (n + qk - 1) / qk;
        bb_ = qk == 32 ? 36 : 292;
        x_.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows * n);
        q_.SetGlobalBuffer((__gm__ uint8_t *)q, (uint64_t)rows * nb_ * bb_);
        pipe_.InitBuffer(xBuf_, 2048 * sizeof(float));
        pipe_.InitBuffer(aBuf_, 2048 * sizeof(float));
        pipe_.InitBuffer(iBuf_, 2048 * sizeof(int32_t));
        pipe_.InitBuffer(hBuf_, 2048 * sizeof(half));
        pipe_.InitBuffer(i8Buf_, 2048);
        pipe_.InitBuffer(oQ_, 2, 2048 / 32 * 36 + 32);
        pipe_.InitBuffer(scratch_, 128);
    }

    __aicore__ inline void Process() {
        uint32_t per = 2048 / qk_;  // blocks per tile: 64 (Q8_0) or 8 (Q8_K)
        ds4::Range r = ds4::CoreRange(nb_, qk_ == 32 ? 16 : 8);
        for (uint32_t t = 0; t < rows_; t++)
            for (uint32_t b0 = r.begin; b0 < r.end; b0 += per) Tile(t, b0, ds4::MinU(per, r.end - b0));
    }

private:
    __aicore__ inline void Tile(uint32_t t, uint32_t b0, uint32_t cnt) {
        LocalTensor<float> x = xBuf_.Get<float>(), a = aBuf_.Get<float>();
        LocalTensor<float> work = scratch_.Get<float>()[16];
        uint32_t v0 = b0 * qk_, nv = ds4::MinU(cnt * qk_, n_ - v0);
        int32_t nall = (int32_t)(cnt * qk_);
        Duplicate(x, 0.0f, nall);
        PipeBarrier<PIPE_ALL>();
        ds4::LoadGm(x, x_[(uint64_t)t * n_ + v0], nv, scratch_.Get<float>(8));
        for (uint32_t i = nv; i < ds4::RoundUp(nv, 8) && i < (uint32_t)nall; i++) x.SetValue(i, 0.0f);  // pad
        PipeBarrier<PIPE_ALL>();
        Abs(a, x, nall);
        LocalTensor<uint8_t> o = oQ_.AllocTensor<uint8_t>();
        LocalTensor<uint32_t> o32 = o.ReinterpretCast<uint32_t>();
        float dq[64];
        for (uint32_t b = 0; b < cnt; b++) {
            float amax = ds4::MaxScalar(a[b * qk_], qk_, work);
            float mult = 0.0f;
            if (qk_ == 32) {
                float d = amax / 127.0f;
                mult = d != 0.0f ? 1.0f / d : 0.0f;
                dq[b] = d;
            } else if (amax != 0.0f) {
                // The signed value of the first element of largest magnitude.
                float mx = 0.0f;
                for (uint32_t i = 0; i < qk_; i++) {
                    if (a.GetValue(b * qk_ + i) == amax) {
                        mx = x.GetValue(b * qk_ + i);
                        break;
                    }
                }
                mult = -127.0f / mx;
                dq[b] = 1.0f / mult;
            } else {
                dq[b] = 0.0f;
            }
            Muls(x[b * qk_], x[b * qk_], mult, (int32_t)qk_);
        }
        // lrintf, clamp to [-128, 127], then exact narrowing to int8.
        LocalTensor<int32_t> xi = iBuf_.Get<int32_t>();
        Cast(xi, x, RoundMode::CAST_RINT, nall);
        Cast(x, xi, RoundMode::CAST_NONE, nall);
        Maxs(x, x, -128.0f, nall);
        Mins(x, x, 127.0f, nall);
        Cast(hBuf_.Get<half>(), x, RoundMode::CAST_NONE, nall);
        Cast(i8Buf_.Get<int8_t>(), hBuf_.Get<half>(), RoundMode::CAST_RINT, nall);
        if (qk_ == 256) WholeReduceSum(a, x, 16, (int32_t)(cnt * 16), 1, 1, 2);  // bsums
        PipeBarrier<PIPE_ALL>();
        LocalTensor<uint32_t> q32 = i8Buf_.Get<uint32_t>();
        uint32_t wpb = bb_ / 4, qw = qk_ / 4;
        for (uint32_t b = 0; b < cnt; b++) {
            o32.SetValue(wpb * b, ds4::FloatBits(dq[b]));
            for (uint32_t i = 0; i < qw; i++) o32.SetValue(wpb * b + 1 + i, q32.GetValue(qw * b + i));
            if (qk_ == 256) {
                for (uint32_t g = 0; g < 8; g++) {
                    uint32_t lo = (uint32_t)(uint16_t)(int16_t)a.GetValue(16 * b + 2 * g);
                    uint32_t hi = (uint32_t)(uint16_t)(int16_t)a.GetValue(16 * b + 2 * g + 1);
                    o32.SetValue(wpb * b + 65 + g, lo | (hi << 16));
                }
            }
        }
        oQ_.EnQue(o);
        o = oQ_.DeQue<uint8_t>();
        ds4::StoreGm(q_[((uint64_t)t * nb_ + b0) * bb_], o, cnt * bb_, scratch_.Get<uint8_t>(32));
        oQ_.FreeTensor(o);
    }

    TPipe pipe_;
    TQue<TPosition::VECOUT, 2> oQ_;
    TBuf<TPosition::VECCALC> xBuf_, aBuf_, iBuf_, hBuf_, i8Buf_, scratch_;
    GlobalTensor<float> x_;
    GlobalTensor<uint8_t> q_;
    uint32_t rows_, n_, qk_, nb_, bb_;
};


DS4_IMPL ds4_matvec_q8_0(GM_ADDR w, GM_ADDR xq, GM_ADDR y, uint32_t rows, uint32_t groups, uint32_t gin,
                           uint32_t out) {
    Q8Matvec op;
    op.Init(w, xq, y, rows, groups, gin, out);
    op.Process();
}

DS4_IMPL ds4_matvec_f16(GM_ADDR w, GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t in, uint32_t out) {
    F16Matvec op;
    op.Init(w, x, y, rows, in, out);
    op.Process();
}

DS4_IMPL ds4_quantize(GM_ADDR x, GM_ADDR q, uint32_t rows, uint32_t n, uint32_t qk) {
    Quantize op;
    op.Init(x, q, rows, n, qk);
    op.Process();
}

DS4_OP matvec_f16(GM_ADDR w, GM_ADDR x, GM_ADDR y, uint32_t n_tokens, uint32_t n_in, uint32_t n_out) {
    ds4_matvec_f16(w, x, y, n_tokens, n_in, n_out);
}
DS4_OP matvec_q8_0(GM_ADDR w, GM_ADDR xq, GM_ADDR y, uint32_t n_tokens, uint32_t n_in, uint32_t n_out) {
    ds4_matvec_q8_0(w, xq, y, n_tokens, 1u, n_in, n_out);
}
DS4_OP matvec_q8_0_grouped(GM_ADDR w, GM_ADDR xq, GM_ADDR y, uint32_t n_tokens, uint32_t group_in, uint32_t n_out, uint32_t groups) {
    ds4_matvec_q8_0(w, xq, y, n_tokens, groups, group_in, n_out);
}
DS4_OP quantize_q8_0(GM_ADDR x, GM_ADDR xq, uint32_t n_tokens, uint32_t n) {
    ds4_quantize(x, xq, n_tokens, n, 32u);
}
DS4_OP quantize_q8_k(GM_ADDR x, GM_ADDR xq, uint32_t n_tokens, uint32_t n) {
    ds4_quantize(x, xq, n_tokens, n, 256u);
}

}  // namespace ds4_matvec
