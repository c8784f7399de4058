// Routed experts (docs/OPS.md moe_gate_up, moe_down; MODEL.md §3.5-§3.7, §11 F5).
//
// moe_gate_up: per token and slot whose expert lies in [e0, e1), the n_ff gate and up rows
// of that expert are split over the cores (ranges of 8 rows). The token's Q8_K activation
// is unpacked once into an f32 tile of its quants. Each IQ2_XXS row (GGUF layout, 66-byte
// blocks) is dequantised in UB to signed grid magnitudes (scalar: one grid lookup and sign
// byte per 8 weights), multiplied with the activation quants and summed per 32 by
// WholeReduceSum (exact integers); the groups are combined as ds4 does (integer
// Σ ls·isum, then acc += d·d_x·bsum per block, times 0.125), so results are bit-exact.
// moe_down: output rows over the cores; per in-range slot the Q2_K row is dequantised in
// UB to its 2-bit quants, summed per 16 against the slot's mid quants (exact), and
// combined with the scales and the bsums min term exactly like the CPU, slots in order.
// Slots outside the range are skipped (gate/up unwritten, down contributes nothing).
// FIXME: the per-weight dequantisation is scalar; a device layout with the grid indices
// and 2-bit planes repacked at upload would let vector Gather/shift ops do it.
#pragma once
#include "common.h"
#include "iq2xxs_grid.h"

namespace ds4_moe {

constexpr uint32_t MAX_E = 4096;   // activation width kept resident (values)
constexpr uint32_t MAX_KB = 16;    // blocks per weight row (256 values each)

class MoeBase {
public:
    __aicore__ inline void InitBuffers() {
        pipe_.InitBuffer(rawQ_, 2, MAX_KB * 84 + 32);
        pipe_.InitBuffer(xq_, 6 * (MAX_E / 256) * 292 + 32);
        pipe_.InitBuffer(qf_, 6 * MAX_E * sizeof(float));
        pipe_.InitBuffer(wf_, MAX_KB * 256 * sizeof(float));
        pipe_.InitBuffer(h_, 256 + 256 * sizeof(half));
        pipe_.InitBuffer(sums_, MAX_KB * 16 * sizeof(float));
        pipe_.InitBuffer(out_, 2048 * sizeof(float));
        pipe_.InitBuffer(scratch_, 128);
    }

    // Loads slot `slot`'s `nb` Q8_K blocks at x into the resident raw tile (slots 32-byte
    // aligned) and unpacks their quants to qf_[slot·nb·256..] (f32).
    __aicore__ inline void UnpackQ8K(const GlobalTensor<uint8_t> &x, uint32_t nb, uint32_t slot) {
        stride_ = ds4::RoundUp(nb * 292, 32);
        uint32_t dst = slot * nb * 256;
        LocalTensor<uint8_t> raw = xq_.Get<uint8_t>();
        ds4::LoadGm(raw[slot * stride_], x, nb * 292, scratch_.Get<uint8_t>(32));
        LocalTensor<uint32_t> r32 = raw.ReinterpretCast<uint32_t>();
        LocalTensor<uint32_t> h32 = h_.Get<uint32_t>();
        for (uint32_t b = 0; b < nb; b++) {
            uint32_t w0 = (slot * stride_ + b * 292) / 4;
            for (uint32_t i = 0; i < 64; i++) h32.SetValue(i, r32.GetValue(w0 + 1 + i));
            PipeBarrier<PIPE_ALL>();
            LocalTensor<half> hh = h_.Get<half>()[128];
            Cast(hh, h_.Get<int8_t>(), RoundMode::CAST_NONE, 256);
            Cast(qf_.Get<float>()[dst + b * 256], hh, RoundMode::CAST_NONE, 256);
            PipeBarrier<PIPE_ALL>();
        }
    }
    // Scale and bsum j of block b of a slot in the resident raw Q8_K tile.
    __aicore__ inline float Dx(uint32_t slot, uint32_t b) {
        return ds4::BitsFloat(xq_.Get<uint32_t>().GetValue((slot * stride_ + b * 292) / 4));
    }
    __aicore__ inline int32_t Bsum(uint32_t slot, uint32_t b, uint32_t j) {
        return (int32_t)(int16_t)xq_.Get<uint16_t>().GetValue((slot * stride_ + b * 292 + 260) / 2 + j);
    }
    __aicore__ inline LocalTensor<uint8_t> LoadRow(const GlobalTensor<uint8_t> &src, uint32_t bytes) {
        LocalTensor<uint8_t> raw = rawQ_.AllocTensor<uint8_t>();
        ds4::LoadGm(raw, src, bytes, scratch_.Get<uint8_t>(32));
        rawQ_.EnQue(raw);
        return rawQ_.DeQue<uint8_t>();
    }

    TPipe pipe_;
    TQue<TPosition::VECIN, 2> rawQ_;
    TBuf<TPosition::VECCALC> xq_, qf_, wf_, h_, sums_, out_, scratch_;
    uint32_t stride_ = 0;
};

class GateUp : public MoeBase {
public:
    __aicore__ inline void Run(GM_ADDR gate, GM_ADDR up, GM_ADDR xq, GM_ADDR ids, GM_ADDR g, GM_ADDR u, uint32_t rows,
                               uint32_t n_embd, uint32_t n_ff, uint32_t k, uint32_t ne, uint32_t e0, uint32_t e1) {
        InitBuffers();
        nb_ = n_embd / 256;
        uint64_t wbytes = (uint64_t)ne * n_ff * nb_ * 66;
        GlobalTensor<uint8_t> gw, uw, xg;
        GlobalTensor<int32_t> ig;
        GlobalTensor<float> go, uo;
        gw.SetGlobalBuffer((__gm__ uint8_t *)gate, wbytes);
        uw.SetGlobalBuffer((__gm__ uint8_t *)up, wbytes);
        xg.SetGlobalBuffer((__gm__ uint8_t *)xq, (uint64_t)rows * nb_ * 292);
        ig.SetGlobalBuffer((__gm__ int32_t *)ids, (uint64_t)rows * k);
        go.SetGlobalBuffer((__gm__ float *)g, (uint64_t)rows * k * n_ff);
        uo.SetGlobalBuffer((__gm__ float *)u, (uint64_t)rows * k * n_ff);
        ds4::Range r = ds4::CoreRange(n_ff, 8);
        LocalTensor<float> out = out_.Get<float>();
        for (uint32_t t = 0; t < rows; t++) {
            UnpackQ8K(xg[(uint64_t)t * nb_ * 292], nb_, 0);
            for (uint32_t s = 0; s < k; s++) {
                int32_t e = ig.GetValue((uint64_t)t * k + s);
                if (e < 0 || (uint32_t)e < e0 || (uint32_t)e >= e1) continue;
                for (uint32_t which = 0; which < 2; which++) {
                    const GlobalTensor<uint8_t> &w = which == 0 ? gw : uw;
                    const GlobalTensor<float> &o = which == 0 ? go : uo;
                    for (uint32_t r0 = r.begin; r0 < r.end; r0 += 2048) {
                        uint32_t r1 = ds4::MinU(r0 + 2048, r.end);
                        for (uint32_t row = r0; row < r1; row++)
                            out.SetValue(row - r0, Dot(w[((uint64_t)e * n_ff + row) * nb_ * 66]));
                        PipeBarrier<PIPE_ALL>();
                        ds4::StoreGm(o[((uint64_t)t * k + s) * n_ff + r0], out, r1 - r0, scratch_.Get<float>()[8]);
                    }
                }
            }
        }
    }

private:
    __aicore__ inline float Dot(const GlobalTensor<uint8_t> &row) {
        LocalTensor<uint8_t> raw = LoadRow(row, nb_ * 66);
        LocalTensor<uint16_t> r16 = raw.ReinterpretCast<uint16_t>();
        LocalTensor<float> wf = wf_.Get<float>(), sums = sums_.Get<float>();
        int32_t ls[MAX_KB * 8];
        uint16_t dbits[MAX_KB];
        for (uint32_t b = 0; b < nb_; b++) {
            dbits[b] = r16.GetValue(33 * b);
            for (uint32_t g = 0; g < 8; g++) {
                uint32_t h0 = 33 * b + 1 + 4 * g;
                uint32_t a0 = (uint32_t)r16.GetValue(h0) | ((uint32_t)r16.GetValue(h0 + 1) << 16);
                uint32_t a1 = (uint32_t)r16.GetValue(h0 + 2) | ((uint32_t)r16.GetValue(h0 + 3) << 16);
                ls[b * 8 + g] = 2 * (int32_t)(a1 >> 28) + 1;
                for (uint32_t q = 0; q < 4; q++) {
                    uint64_t grid = DS4_IQ2XXS_GRID[(a0 >> (8 * q)) & 0xff];
                    uint32_t s7 = (a1 >> (7 * q)) & 0x7f, par = s7;
                    par ^= par >> 4;
                    par ^= par >> 2;
                    par ^= par >> 1;
                    uint32_t signs = s7 | ((par & 1) << 7);
                    for (uint32_t j = 0; j < 8; j++) {
                        float mag = (float)((grid >> (8 * j)) & 0xff);
                        wf.SetValue(b * 256 + g * 32 + q * 8 + j, (signs >> j) & 1 ? -mag : mag);
                    }
                }
            }
        }
        rawQ_.FreeTensor(raw);
        PipeBarrier<PIPE_ALL>();
        Mul(wf, wf, qf_.Get<float>(), (int32_t)(nb_ * 256));
        WholeReduceSum(sums, wf, 32, (int32_t)(nb_ * 8), 1, 1, 4);
        LocalTensor<half> dh = h_.Get<half>();
        for (uint32_t b = 0; b < nb_; b++) dh.ReinterpretCast<uint16_t>().SetValue(b, dbits[b]);
        PipeBarrier<PIPE_ALL>();
        LocalTensor<float> df = scratch_.Get<float>()[8];
        float acc = 0.0f;
        for (uint32_t b = 0; b < nb_; b++) {
            Cast(df, dh[b / 16 * 16], RoundMode::CAST_NONE, 16);  // widen this block's d (exact)
            PipeBarrier<PIPE_ALL>();
            int32_t bsum = 0;
            for (uint32_t g = 0; g < 8; g++) bsum += (int32_t)sums.GetValue(b * 8 + g) * ls[b * 8 + g];
            acc += df.GetValue(b % 16) * Dx(0, b) * (float)bsum;
        }
        return 0.125f * acc;
    }
    uint32_t nb_;
};

class Down : public MoeBase {
public:
    __aicore__ inline void Run(GM_ADDR down, GM_ADDR midq, GM_ADDR ids, GM_ADDR y, uint32_t rows, uint32_t n_ff,
                               uint32_t n_embd, uint32_t k, uint32_t ne, uint32_t e0, uint32_t e1) {
        InitBuffers();
        nb_ = n_ff / 256;
        GlobalTensor<uint8_t> dw, mq;
        GlobalTensor<int32_t> ig;
        GlobalTensor<float> yo;
        dw.SetGlobalBuffer((__gm__ uint8_t *)down, (uint64_t)ne * n_embd * nb_ * 84);
        mq.SetGlobalBuffer((__gm__ uint8_t *)midq, (uint64_t)rows * k * nb_ * 292);
        ig.SetGlobalBuffer((__gm__ int32_t *)ids, (uint64_t)rows * k);
        yo.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows * n_embd);
        ds4::Range r = ds4::CoreRange(n_embd, 8);
        LocalTensor<float> out = out_.Get<float>();
        for (uint32_t t = 0; t < rows; t++) {
            int32_t e[8];
            for (uint32_t s = 0; s < k; s++) {
                e[s] = ig.GetValue((uint64_t)t * k + s);
                bool in = e[s] >= 0 && (uint32_t)e[s] >= e0 && (uint32_t)e[s] < e1;
                if (!in) e[s] = -1;
                else UnpackQ8K(mq[((uint64_t)t * k + s) * nb_ * 292], nb_, s);
            }
            for (uint32_t r0 = r.begin; r0 < r.end; r0 += 2048) {
                uint32_t r1 = ds4::MinU(r0 + 2048, r.end);
                for (uint32_t row = r0; row < r1; row++) {
                    float acc = 0.0f;
                    for (uint32_t s = 0; s < k; s++)
                        if (e[s] >= 0) acc += Dot(dw[((uint64_t)e[s] * n_embd + row) * nb_ * 84], s);
                    out.SetValue(row - r0, acc);
                }
                PipeBarrier<PIPE_ALL>();
                ds4::StoreGm(yo[(uint64_t)t * n_embd + r0], out, r1 - r0, scratch_.Get<float>()[8]);
            }
        }
    }

private:
    __aicore__ inline float Dot(const GlobalTensor<uint8_t> &row, uint32_t slot) {
        LocalTensor<uint8_t> raw = LoadRow(row, nb_ * 84);
        LocalTensor<float> wf = wf_.Get<float>(), sums = sums_.Get<float>();
        for (uint32_t b = 0; b < nb_; b++) {
            for (uint32_t e = 0; e < 256; e++) {
                uint32_t h = e / 128, rr = e % 128;
                uint32_t q = (raw.GetValue(b * 84 + 16 + 32 * h + rr % 32) >> (2 * (rr / 32))) & 3;
                wf.SetValue(b * 256 + e, (float)q);
            }
        }
        PipeBarrier<PIPE_ALL>();
        Mul(wf, wf, qf_.Get<float>()[slot * nb_ * 256], (int32_t)(nb_ * 256));
        WholeReduceSum(sums, wf, 16, (int32_t)(nb_ * 16), 1, 1, 2);
        LocalTensor<half> dh = h_.Get<half>();
        LocalTensor<uint16_t> d16 = dh.ReinterpretCast<uint16_t>();
        LocalTensor<uint16_t> r16 = raw.ReinterpretCast<uint16_t>();
        for (uint32_t b = 0; b < nb_; b++) {
            d16.SetValue(2 * b, r16.GetValue(42 * b + 40));
            d16.SetValue(2 * b + 1, r16.GetValue(42 * b + 41));
        }
        PipeBarrier<PIPE_ALL>();
        LocalTensor<float> df = wf_.Get<float>();  // products are no longer needed
        Cast(df, dh, RoundMode::CAST_NONE, (int32_t)ds4::RoundUp(2 * nb_, 16));
        PipeBarrier<PIPE_ALL>();
        float acc = 0.0f;
        for (uint32_t b = 0; b < nb_; b++) {
            int32_t isum = 0, summs = 0;
            for (uint32_t j = 0; j < 16; j++) {
                uint32_t sc = raw.GetValue(b * 84 + j);
                isum += (int32_t)(sc & 15) * (int32_t)sums.GetValue(b * 16 + j);
                summs += (int32_t)(sc >> 4) * Bsum(slot, b, j);
            }
            float dx = Dx(slot, b);
            float dall = dx * df.GetValue(2 * b), dm = dx * df.GetValue(2 * b + 1);
            acc += dall * (float)isum - dm * (float)summs;
        }
        rawQ_.FreeTensor(raw);
        return acc;
    }
    uint32_t nb_;
};


DS4_IMPL ds4_moe_gate_up(GM_ADDR gate, GM_ADDR up, GM_ADDR xq, GM_ADDR ids, GM_ADDR g, GM_ADDR u, uint32_t rows,
                           uint32_t n_embd, uint32_t n_ff, uint32_t k, uint32_t ne, uint32_t e0, uint32_t e1) {
    GateUp op;
    op.Run(gate, up, xq, ids, g, u, rows, n_embd, n_ff, k, ne, e0, e1);
}

DS4_IMPL ds4_moe_down(GM_ADDR down, GM_ADDR midq, GM_ADDR ids, GM_ADDR y, uint32_t rows, uint32_t n_ff,
                        uint32_t n_embd, uint32_t k, uint32_t ne, uint32_t e0, uint32_t e1) {
    Down op;
    op.Run(down, midq, ids, y, rows, n_ff, n_embd, k, ne, e0, e1);
}

DS4_OP moe_gate_up(GM_ADDR gate, GM_ADDR up, GM_ADDR xq, GM_ADDR ids, GM_ADDR g, GM_ADDR u, uint32_t n_tokens, uint32_t n_embd, uint32_t n_ff, uint32_t n_expert, uint32_t k, uint32_t e0, uint32_t e1) {
    ds4_moe_gate_up(gate, up, xq, ids, g, u, n_tokens, n_embd, n_ff, k, n_expert, e0, e1);
}
DS4_OP moe_down(GM_ADDR down, GM_ADDR midq, GM_ADDR ids, GM_ADDR y, uint32_t n_tokens, uint32_t n_ff, uint32_t n_embd, uint32_t n_expert, uint32_t k, uint32_t e0, uint32_t e1) {
    ds4_moe_down(down, midq, ids, y, n_tokens, n_ff, n_embd, k, n_expert, e0, e1);
}

}  // namespace ds4_moe
