// RoPE, KV-row quantisation and the raw KV ring (docs/OPS.md rope, fp8_kv, kv_push_raw,
// indexer_qat; MODEL.md §3.1, §3.8-§3.10, §7).
//
// rope: cores take contiguous ranges of 8 heads. Per head the n_rot tail is rotated as
// x·C + swap(x)·S with C = (c0, c0, c1, c1, ...) and S = (-s0, s0, -s1, s1, ...) (signs
// flipped for the inverse): two vector products and an add, the same roundings as the
// CPU's x0·c − x1·s and x0·s + x1·c. The pair swap and the tail move are scalar UB moves.
// fp8_kv / indexer_qat: the E4M3 (E2M1) grid step of each value is 2^(exponent − 3)
// (resp. − 1) with the exponent isolated by a vector And of the f32 bits, floored at the
// subnormal step; rounding is a Cast with CAST_RINT (ties to even = ties to the even
// code). The block scale 2^ceil(log2(amax/448)) is computed exactly from the bits.
// Hadamard-128: butterflies of stride ≥ 8 are vector Add/Sub, strides 1, 2, 4 scalar.
// kv_push_raw: f16 rounding by Cast f32→f16→f32, written to ring row pos % cap.
// compressor_update (MODEL.md §8): store the token's kv and score (+ ape) into its state row;
// at a window end pool the candidates per dim (vector max, Exp, running sums in candidate
// order, as the CPU), RMS-norm, RoPE at the window start, FP8 or Hadamard+FP4, f16-round,
// write the compressed row, and (ratio 4) roll rows 4..7 into 0..3.
// FIXME: the compressor runs on block 0 only: its tokens are sequential through the state
// and the norm needs the whole pooled row; other blocks return at once.
#pragma once
#include "common.h"

namespace ds4_rope_kv {

constexpr uint32_t MAXW = 8192;  // values of one head / row handled at once

class Rows {
public:
    __aicore__ inline void Init() {
        pipe_.InitBuffer(rowQ_, 2, MAXW * sizeof(float));
        pipe_.InitBuffer(a_, MAXW * sizeof(float));
        pipe_.InitBuffer(b_, MAXW * sizeof(float));
        pipe_.InitBuffer(c_, 256 * sizeof(float));
        pipe_.InitBuffer(s_, 256 * sizeof(float));
        pipe_.InitBuffer(mask_, 256 * sizeof(float));
        pipe_.InitBuffer(i_, MAXW * sizeof(int32_t));
        pipe_.InitBuffer(scratch_, 128);
        LocalTensor<uint16_t> m = mask_.Get<uint16_t>();
        for (uint32_t i = 0; i < 512; i++) m.SetValue(i, (i & 1) ? 0x7f80 : 0x0000);
        PipeBarrier<PIPE_ALL>();
    }
    __aicore__ inline LocalTensor<float> Load(const GlobalTensor<float> &g, uint32_t n) {
        LocalTensor<float> t = rowQ_.AllocTensor<float>();
        ds4::LoadGm(t, g, n, scratch_.Get<float>(8));
        rowQ_.EnQue(t);
        return rowQ_.DeQue<float>();
    }
    __aicore__ inline void Store(const GlobalTensor<float> &g, LocalTensor<float> &t, uint32_t n) {
        ds4::StoreGm(g, t, n, scratch_.Get<float>()[8]);
        rowQ_.FreeTensor(t);
    }

    // Rotates the tails of `cnt` heads of `hd` values in t, with the table row `tab`.
    __aicore__ inline void Rope(LocalTensor<float> &t, uint32_t cnt, uint32_t hd, uint32_t n_rot,
                                const GlobalTensor<float> &tab, bool inverse) {
        LocalTensor<float> c = c_.Get<float>(), s = s_.Get<float>(), a = a_.Get<float>(), b = b_.Get<float>();
        for (uint32_t i = 0; i < n_rot / 2; i++) {
            float cv = tab.GetValue(2 * i), sv = tab.GetValue(2 * i + 1);
            if (inverse) sv = -sv;
            c.SetValue(2 * i, cv);
            c.SetValue(2 * i + 1, cv);
            s.SetValue(2 * i, -sv);
            s.SetValue(2 * i + 1, sv);
        }
        uint32_t n0 = hd - n_rot;
        for (uint32_t h = 0; h < cnt; h++) {
            for (uint32_t i = 0; i < n_rot; i++) {
                a.SetValue(i, t.GetValue(h * hd + n0 + i));
                b.SetValue(i ^ 1, t.GetValue(h * hd + n0 + i));
            }
            PipeBarrier<PIPE_ALL>();
            Mul(a, a, c, (int32_t)n_rot);
            Mul(b, b, s, (int32_t)n_rot);
            Add(a, a, b, (int32_t)n_rot);
            PipeBarrier<PIPE_ALL>();
            for (uint32_t i = 0; i < n_rot; i++) t.SetValue(h * hd + n0 + i, a.GetValue(i));
        }
    }

    // Snaps v (n values, |v| <= the grid maximum) to the E4M3 (shift 3, floor 2^-6) or E2M1
    // (shift 1, floor 1) grid in place.
    __aicore__ inline void Snap(const LocalTensor<float> &v, uint32_t n, float stepMul, float minStep) {
        LocalTensor<float> q = a_.Get<float>();
        for (uint32_t o = 0; o < n; o += 256) {
            int32_t m = (int32_t)ds4::MinU(256, n - o);
            And(q.ReinterpretCast<uint16_t>()[2 * o], v[o].template ReinterpretCast<uint16_t>(), mask_.Get<uint16_t>(),
                2 * m);
        }
        Muls(q, q, stepMul, (int32_t)n);
        Maxs(q, q, minStep, (int32_t)n);
        Div(v, v, q, (int32_t)n);
        LocalTensor<int32_t> iv = i_.Get<int32_t>();
        Cast(iv, v, RoundMode::CAST_RINT, (int32_t)n);
        Cast(v, iv, RoundMode::CAST_NONE, (int32_t)n);
        Mul(v, v, q, (int32_t)n);
    }

    // In-place block quantisation of n values: blocks of `blk`, grid max `gmax`, amax floor.
    __aicore__ inline void BlockQuant(const LocalTensor<float> &x, uint32_t n, uint32_t blk, float gmax, float floor,
                                      float stepMul, float minStep) {
        LocalTensor<float> b = b_.Get<float>();
        LocalTensor<float> work = scratch_.Get<float>()[16];
        for (uint32_t o = 0; o < n; o += blk) {
            uint32_t len = ds4::MinU(blk, n - o);
            Abs(b, x[o], (int32_t)len);
            float amax = ds4::MaxScalar(b, len, work);
            if (amax < floor) amax = floor;
            float scale = ds4::Pow2Ceil(amax / gmax);
            Muls(x[o], x[o], 1.0f / scale, (int32_t)len);
            Maxs(x[o], x[o], -gmax, (int32_t)len);
            Mins(x[o], x[o], gmax, (int32_t)len);
            Snap(x[o], len, stepMul, minStep);
            Muls(x[o], x[o], scale, (int32_t)len);
        }
    }

    // Unnormalised Walsh-Hadamard butterflies of one 128-value head, then · 2^-3.5.
    __aicore__ inline void Hadamard(const LocalTensor<float> &x) {
        LocalTensor<float> b = b_.Get<float>();
        for (uint32_t h = 1; h < 8; h *= 2) {
            for (uint32_t base = 0; base < 128; base += 2 * h) {
                for (uint32_t i = base; i < base + h; i++) {
                    float a = x.GetValue(i), c = x.GetValue(i + h);
                    x.SetValue(i, a + c);
                    x.SetValue(i + h, a - c);
                }
            }
        }
        PipeBarrier<PIPE_ALL>();
        for (uint32_t h = 8; h < 128; h *= 2) {
            for (uint32_t base = 0; base < 128; base += 2 * h) {
                Sub(b, x[base], x[base + h], (int32_t)h);
                Add(x[base], x[base], x[base + h], (int32_t)h);
                DataCopy(x[base + h], b, h);
            }
        }
        Muls(x, x, 0.08838834764831845f, 128);
    }

    TPipe pipe_;
    TQue<TPosition::VECIN, 2> rowQ_;
    TBuf<TPosition::VECCALC> a_, b_, c_, s_, mask_, i_, scratch_;
};


DS4_IMPL ds4_rope(GM_ADDR x, GM_ADDR table, GM_ADDR y, uint32_t rows, uint32_t pos0, uint32_t heads, uint32_t hd,
                    uint32_t n_rot, uint32_t inverse, uint32_t table_rows) {
    Rows k;
    k.Init();
    GlobalTensor<float> xg, tg, yg;
    xg.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows * heads * hd);
    tg.SetGlobalBuffer((__gm__ float *)table, (uint64_t)table_rows * n_rot);
    yg.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows * heads * hd);
    uint32_t per = MAXW / hd;  // heads per tile
    for (uint32_t t = 0; t < rows; t++) {
        ds4::Range r = ds4::CoreRange(heads, 8);
        for (uint32_t h = r.begin; h < r.end; h += per) {
            uint32_t cnt = ds4::MinU(per, r.end - h);
            uint64_t off = ((uint64_t)t * heads + h) * hd;
            LocalTensor<float> v = k.Load(xg[off], cnt * hd);
            k.Rope(v, cnt, hd, n_rot, tg[(uint64_t)(pos0 + t) * n_rot], inverse != 0);
            k.Store(yg[off], v, cnt * hd);
        }
    }
}

// mode 0: fp8_kv (first n_quant values of each row); 1: indexer_qat (per 128-wide head).
DS4_IMPL ds4_row_quant(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t width, uint32_t n_quant, uint32_t mode) {
    Rows k;
    k.Init();
    GlobalTensor<float> xg, yg;
    xg.SetGlobalBuffer((__gm__ float *)x, (uint64_t)rows * width);
    yg.SetGlobalBuffer((__gm__ float *)y, (uint64_t)rows * width);
    uint32_t unit = mode == 0 ? width : 128;  // values per independent unit
    uint32_t units = rows * (width / unit);
    ds4::Range r = ds4::CoreRange(units, 8);
    for (uint32_t u = r.begin; u < r.end; u++) {
        LocalTensor<float> v = k.Load(xg[(uint64_t)u * unit], unit);
        if (mode == 0) {
            k.BlockQuant(v, n_quant, 64, 448.0f, 1e-4f, 0.125f, 0.001953125f);
        } else {
            k.Hadamard(v);
            k.BlockQuant(v, 128, 32, 6.0f, 7.052966104933725e-38f, 0.5f, 0.5f);
        }
        PipeBarrier<PIPE_ALL>();
        k.Store(yg[(uint64_t)u * unit], v, unit);
    }
}

DS4_IMPL ds4_kv_push_raw(GM_ADDR kv, GM_ADDR raw, uint32_t rows, uint32_t pos0, uint32_t hd, uint32_t cap) {
    Rows k;
    k.Init();
    GlobalTensor<float> kg, rg;
    kg.SetGlobalBuffer((__gm__ float *)kv, (uint64_t)rows * hd);
    rg.SetGlobalBuffer((__gm__ float *)raw, (uint64_t)cap * hd);
    ds4::Range r = ds4::CoreRange(hd, 16);
    if (r.begin >= r.end) return;
    uint32_t len = r.end - r.begin;
    for (uint32_t t = 0; t < rows; t++) {
        LocalTensor<float> v = k.Load(kg[(uint64_t)t * hd + r.begin], len);
        LocalTensor<half> h = k.i_.Get<half>();
        Cast(h, v, RoundMode::CAST_RINT, (int32_t)len);
        Cast(v, h, RoundMode::CAST_NONE, (int32_t)len);
        PipeBarrier<PIPE_ALL>();
        k.Store(rg[(uint64_t)((pos0 + t) % cap) * hd + r.begin], v, len);
    }
}

constexpr uint32_t MAX_HD = 512;

DS4_IMPL ds4_compressor_update(GM_ADDR kv_t, GM_ADDR sc_t, GM_ADDR ape, GM_ADDR norm, GM_ADDR st_kv, GM_ADDR st_sc,
                                 GM_ADDR comp, GM_ADDR table, uint32_t rows, uint32_t pos0, uint32_t ratio, uint32_t hd,
                                 uint32_t n_rot, uint32_t post, uint32_t n_quant, float eps, uint32_t comp_rows,
                                 uint32_t table_rows) {
    if (GetBlockIdx() != 0) return;
    Rows k;
    k.Init();
    TBuf<TPosition::VECCALC> mb, db, nb, eb, hb;
    k.pipe_.InitBuffer(mb, MAX_HD * sizeof(float));
    k.pipe_.InitBuffer(db, MAX_HD * sizeof(float));
    k.pipe_.InitBuffer(nb, MAX_HD * sizeof(float));
    k.pipe_.InitBuffer(eb, 2 * MAX_HD * sizeof(float));
    k.pipe_.InitBuffer(hb, 2 * MAX_HD * sizeof(half));
    uint32_t coff = ratio == 4 ? 2 : 1, w = coff * hd, srows = coff * ratio;
    GlobalTensor<float> kg, sg, ng, skv, ssc, cg, tg;
    GlobalTensor<half> ag;
    kg.SetGlobalBuffer((__gm__ float *)kv_t, (uint64_t)rows * w);
    sg.SetGlobalBuffer((__gm__ float *)sc_t, (uint64_t)rows * w);
    ag.SetGlobalBuffer((__gm__ half *)ape, (uint64_t)ratio * w);
    ng.SetGlobalBuffer((__gm__ float *)norm, hd);
    skv.SetGlobalBuffer((__gm__ float *)st_kv, (uint64_t)srows * w);
    ssc.SetGlobalBuffer((__gm__ float *)st_sc, (uint64_t)srows * w);
    cg.SetGlobalBuffer((__gm__ float *)comp, (uint64_t)comp_rows * hd);
    tg.SetGlobalBuffer((__gm__ float *)table, (uint64_t)table_rows * n_rot);
    LocalTensor<float> mx = mb.Get<float>(), den = db.Get<float>(), num = nb.Get<float>(), e = eb.Get<float>();
    LocalTensor<float> kvc = eb.Get<float>()[MAX_HD];
    LocalTensor<float> sc8 = k.scratch_.Get<float>(8);
    for (uint32_t t = 0; t < rows; t++) {
        uint32_t pos = pos0 + t, r = pos % ratio, row = ratio == 4 ? 4 + r : r;
        // Store: state kv row = kv_t, score row = sc_t + ape[r].
        LocalTensor<float> v = k.Load(kg[(uint64_t)t * w], w);
        k.Store(skv[(uint64_t)row * w], v, w);
        v = k.Load(sg[(uint64_t)t * w], w);
        LocalTensor<half> ah = hb.Get<half>();
        ds4::LoadGm(ah, ag[(uint64_t)r * w], w, k.scratch_.Get<half>(16));
        Cast(e, ah, RoundMode::CAST_NONE, (int32_t)w);
        Add(v, v, e, (int32_t)w);
        k.Store(ssc[(uint64_t)row * w], v, w);
        PipeBarrier<PIPE_ALL>();
        if ((pos + 1) % ratio != 0) continue;
        // Pool: candidate i is state row i (lane 0), or for ratio 4 rows 4..7 at lane hd.
        uint32_t ncand = ratio == 4 ? 8 : ratio;
        for (uint32_t i = 0; i < ncand; i++) {
            uint64_t off = (uint64_t)i * w + (ratio == 4 && i >= 4 ? hd : 0);
            LocalTensor<float> sv = k.Load(ssc[off], hd);
            if (i == 0) DataCopy(mx, sv, ds4::RoundUp(hd, 8));
            else Max(mx, mx, sv, (int32_t)hd);
            k.rowQ_.FreeTensor(sv);
        }
        for (uint32_t i = 0; i < ncand; i++) {
            uint64_t off = (uint64_t)i * w + (ratio == 4 && i >= 4 ? hd : 0);
            LocalTensor<float> sv = k.Load(ssc[off], hd);
            Sub(e, sv, mx, (int32_t)hd);
            Exp(e, e, (int32_t)hd);
            k.rowQ_.FreeTensor(sv);
            ds4::LoadGm(kvc, skv[off], hd, sc8);
            if (i == 0) {
                DataCopy(den, e, ds4::RoundUp(hd, 8));
                Mul(num, e, kvc, (int32_t)hd);
            } else {
                Add(den, den, e, (int32_t)hd);
                Mul(e, e, kvc, (int32_t)hd);
                Add(num, num, e, (int32_t)hd);
            }
        }
        Div(num, num, den, (int32_t)hd);
        PipeBarrier<PIPE_ALL>();
        for (uint32_t j = 0; j < hd; j++)
            if (mx.GetValue(j) <= -5e29f) num.SetValue(j, 0.0f);
        // RMS norm with the weight, then RoPE at the window start.
        Mul(e, num, num, (int32_t)hd);
        float rr = ds4::RsqrtScalar(ds4::SumScalar(e, hd, k.scratch_.Get<float>()[16]) / (float)hd + eps,
                                    k.scratch_.Get<float>()[24]);
        LocalTensor<float> o = k.rowQ_.AllocTensor<float>();
        Muls(o, num, rr, (int32_t)hd);
        ds4::LoadGm(kvc, ng, hd, sc8);
        Mul(o, o, kvc, (int32_t)hd);
        PipeBarrier<PIPE_ALL>();
        k.Rope(o, 1, hd, n_rot, tg[(uint64_t)(pos + 1 - ratio) * n_rot], false);
        if (post == 0) {
            k.BlockQuant(o, n_quant, 64, 448.0f, 1e-4f, 0.125f, 0.001953125f);
        } else {
            k.Hadamard(o);
            k.BlockQuant(o, 128, 32, 6.0f, 7.052966104933725e-38f, 0.5f, 0.5f);
        }
        Cast(ah, o, RoundMode::CAST_RINT, (int32_t)hd);
        Cast(o, ah, RoundMode::CAST_NONE, (int32_t)hd);
        PipeBarrier<PIPE_ALL>();
        k.Store(cg[(uint64_t)(pos / ratio) * hd], o, hd);
        if (ratio == 4) {  // roll: rows 4..7 become rows 0..3
            PipeBarrier<PIPE_ALL>();
            for (uint32_t i = 0; i < 4; i++) {
                LocalTensor<float> a = k.Load(skv[(uint64_t)(4 + i) * w], w);
                k.Store(skv[(uint64_t)i * w], a, w);
                a = k.Load(ssc[(uint64_t)(4 + i) * w], w);
                k.Store(ssc[(uint64_t)i * w], a, w);
            }
        }
        PipeBarrier<PIPE_ALL>();
    }
}

DS4_OP compressor_update(GM_ADDR kv_t, GM_ADDR sc_t, GM_ADDR ape, GM_ADDR norm, GM_ADDR st_kv, GM_ADDR st_score, GM_ADDR comp, GM_ADDR table, uint32_t n_tokens, uint32_t pos0, uint32_t ratio, uint32_t head_dim, uint32_t n_rot, uint32_t post, uint32_t n_quant, float eps, uint32_t comp_rows, uint32_t table_rows) {
    ds4_compressor_update(kv_t, sc_t, ape, norm, st_kv, st_score, comp, table, n_tokens, pos0, ratio, head_dim, n_rot, post, n_quant, eps, comp_rows, table_rows);
}

DS4_OP rope(GM_ADDR x, GM_ADDR table, GM_ADDR y, uint32_t n_tokens, uint32_t pos0, uint32_t heads, uint32_t head_dim, uint32_t n_rot, uint32_t inverse, uint32_t table_rows) {
    ds4_rope(x, table, y, n_tokens, pos0, heads, head_dim, n_rot, inverse, table_rows);
}
DS4_OP fp8_kv(GM_ADDR x, GM_ADDR y, uint32_t n_tokens, uint32_t head_dim, uint32_t n_quant) {
    ds4_row_quant(x, y, n_tokens, head_dim, n_quant, 0u);
}
DS4_OP indexer_qat(GM_ADDR q, GM_ADDR y, uint32_t n_tokens, uint32_t heads, uint32_t head_dim) {
    ds4_row_quant(q, y, n_tokens, heads * head_dim, 0u, 1u);
}
DS4_OP kv_push_raw(GM_ADDR kv, GM_ADDR raw, uint32_t n_tokens, uint32_t pos0, uint32_t head_dim, uint32_t window, uint32_t ring_rows) {
    ds4_kv_push_raw(kv, raw, n_tokens, pos0, head_dim, ring_rows);
}

}  // namespace ds4_rope_kv
