// RMS norms (docs/OPS.md rms_norm_plain, rms_norm, head_rms_norm; MODEL.md §3.2).
//
// A segment is one row (or one head of a row for head_rms_norm). When there are at least
// as many segments as cores, each core normalises whole segments of its contiguous range.
// Otherwise (decode: one row) every core computes the segment's sum of squares itself and
// writes only its 64-byte-aligned slice, so no cross-core reduction is needed. The sum of
// squares is accumulated in f32 per 4096-value chunk (the CPU kernel uses f64: see tests).
#pragma once
#include "common.h"

namespace ds4_norm {

constexpr uint32_t CH = 4096;  // values per chunk

class RmsNorm {
public:
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR w, GM_ADDR y, uint32_t rows, uint32_t n, uint32_t seg,
                                float eps) {
        x_.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows * n);
        y_.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows * n);
        hasW_ = w != nullptr;
        if (hasW_) w_.SetGlobalBuffer((__gm__ float *)w, seg);
        rows_ = rows;
        n_ = n;
        seg_ = seg;
        eps_ = eps;
        pipe_.InitBuffer(inQ_, 2, CH * sizeof(float));
        pipe_.InitBuffer(outQ_, 2, CH * sizeof(float));
        pipe_.InitBuffer(wBuf_, CH * sizeof(float));
        pipe_.InitBuffer(sqBuf_, CH * sizeof(float));
        pipe_.InitBuffer(tmpBuf_, 64 * sizeof(float));
    }

    __aicore__ inline void Process() {
        uint32_t nseg = rows_ * (n_ / seg_);
        if (nseg >= (uint32_t)GetBlockNum()) {
            ds4::Range r = ds4::CoreRange(nseg, 1);
            for (uint32_t s = r.begin; s < r.end; s++) Segment(s, 0, seg_);
        } else {
            ds4::Range r = ds4::CoreRange(seg_, 16);
            for (uint32_t s = 0; s < nseg; s++)
                if (r.begin < r.end) Segment(s, r.begin, r.end);
        }
    }

private:
    __aicore__ inline LocalTensor<float> Load(uint64_t off, uint32_t len) {
        LocalTensor<float> t = inQ_.AllocTensor<float>();
        ds4::LoadGm(t, x_[off], len, tmpBuf_.Get<float>(8));
        inQ_.EnQue(t);
        return inQ_.DeQue<float>();
    }

    // Normalises values [lo, hi) of segment s.
    __aicore__ inline void Segment(uint32_t s, uint32_t lo, uint32_t hi) {
        uint64_t base = (uint64_t)s * seg_;
        LocalTensor<float> sq = sqBuf_.Get<float>();
        LocalTensor<float> work = tmpBuf_.Get<float>()[8];
        float ss = 0.0f;
        for (uint32_t c = 0; c < seg_; c += CH) {
            uint32_t len = ds4::MinU(CH, seg_ - c);
            LocalTensor<float> t = Load(base + c, len);
            Mul(sq, t, t, (int32_t)len);
            inQ_.FreeTensor(t);
            ss += ds4::SumScalar(sq, len, work);
        }
        float r = ds4::RsqrtScalar(ss / (float)seg_ + eps_, tmpBuf_.Get<float>()[16]);
        for (uint32_t c = lo; c < hi; c += CH) {
            uint32_t len = ds4::MinU(CH, hi - c);
            LocalTensor<float> t = Load(base + c, len);
            LocalTensor<float> o = outQ_.AllocTensor<float>();
            Muls(o, t, r, (int32_t)len);
            inQ_.FreeTensor(t);
            if (hasW_) {
                LocalTensor<float> w = wBuf_.Get<float>();
                ds4::LoadGm(w, w_[c], len, tmpBuf_.Get<float>(8));
                Mul(o, o, w, (int32_t)len);
            }
            outQ_.EnQue(o);
            LocalTensor<float> ot = outQ_.DeQue<float>();
            ds4::StoreGm(y_[base + c], ot, len, tmpBuf_.Get<float>()[24]);
            outQ_.FreeTensor(ot);
        }
    }

    TPipe pipe_;
    TQue<TPosition::VECIN, 2> inQ_;
    TQue<TPosition::VECOUT, 2> outQ_;
    TBuf<TPosition::VECCALC> wBuf_, sqBuf_, tmpBuf_;
    GlobalTensor<float> x_, w_, y_;
    uint32_t rows_, n_, seg_;
    float eps_;
    bool hasW_;
};


DS4_IMPL ds4_rms_norm(GM_ADDR x, GM_ADDR w, GM_ADDR y, uint32_t rows, uint32_t n, uint32_t seg, float eps) {
    RmsNorm op;
    op.Init(x, w, y, rows, n, seg, eps);
    op.Process();
}

DS4_OP rms_norm_plain(GM_ADDR x, GM_ADDR y, uint32_t n_tokens, uint32_t n, float eps) {
    ds4_rms_norm(x, nullptr, y, n_tokens, n, n, eps);
}

DS4_OP rms_norm(GM_ADDR x, GM_ADDR w, GM_ADDR y, uint32_t n_tokens, uint32_t n, float eps) {
    ds4_rms_norm(x, w, y, n_tokens, n, n, eps);
}

DS4_OP head_rms_norm(GM_ADDR x, GM_ADDR y, uint32_t n_tokens, uint32_t heads, uint32_t head_dim, float eps) {
    ds4_rms_norm(x, nullptr, y, n_tokens, heads * head_dim, head_dim, eps);
}

}  // namespace ds4_norm
