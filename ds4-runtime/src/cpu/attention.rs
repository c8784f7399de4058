//! The raw KV ring and the attention core (MODEL §6 A6, §10, §13).
//!
//! The raw cache is a ring of `cap` rows: the row of position `p` lives in slot
//! `p % cap`. A prefill chunk pushes all its rows before any of its tokens attends, so
//! `cap >= window + chunk` keeps every row a query needs alive. Each query at `pos`
//! sees the raw rows of positions `max(0, pos-window+1)..=pos`, oldest first, then the
//! compressed rows `c` with `ratio·c + ratio - 1 <= pos` (optionally narrowed to the
//! indexer's selection), in ascending order.
//!
//! Attention is MQA with `K = V`: every head dots its query with the same cached rows.
//! Scores are scaled by `1/sqrt(head_dim)`; each head's sink logit enters the softmax
//! denominator only. Rows hold f16-representable values (written by [`kv_push_raw`]
//! and the compressor).

use rayon::prelude::*;

use super::{dot_f32, dot_f32_x4};
use crate::quant::f16_round;

/// Stores `f16_round(kv)` as the raw row of position `pos` (slot `pos % cap`).
pub fn kv_push_raw(raw: &mut [f32], cap: usize, head_dim: usize, pos: usize, kv: &[f32]) {
    debug_assert!(kv.len() == head_dim && raw.len() >= cap * head_dim);
    let slot = pos % cap;
    for (o, &v) in raw[slot * head_dim..(slot + 1) * head_dim]
        .iter_mut()
        .zip(kv)
    {
        *o = f16_round(v);
    }
}

/// FP8 E4M3 simulation of a KV row's first `n_quant` dims (§3.8, §6 A6); the RoPE tail
/// is left as it is.
pub fn fp8_kv(x: &mut [f32], n_quant: usize) {
    debug_assert!(n_quant <= x.len());
    crate::quant::fp8::kv_quantize_row(&mut x[..n_quant]);
}

/// Number of compressed rows visible to a query at `pos` (`⌊(pos+1)/ratio⌋`).
#[inline]
pub fn visible_comp_rows(ratio: usize, pos: usize) -> usize {
    (pos + 1).checked_div(ratio).unwrap_or(0)
}

/// Attention for one query token at `pos` (§10); writes `heads × head_dim` into `out`.
///
/// `q` is the RoPE'd query, `sinks` the per-head sink logits, `raw` the ring of
/// `raw_cap` rows, `comp` the compressed rows (row `c` at `c·head_dim`) and `sel` the
/// indexer's ascending, `-1`-padded selection; `None` means every visible row.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    sinks: &[f32],
    raw: &[f32],
    raw_cap: usize,
    window: usize,
    comp: Option<&[f32]>,
    ratio: usize,
    sel: Option<&[i32]>,
    heads: usize,
    head_dim: usize,
    pos: usize,
    out: &mut [f32],
) {
    debug_assert!(q.len() == heads * head_dim && out.len() == heads * head_dim);
    debug_assert!(sinks.len() >= heads && raw.len() >= raw_cap * head_dim);
    debug_assert!(window >= 1 && window.min(pos + 1) <= raw_cap);

    // The rows attended to, in a list whose allocation is reused across calls.
    let mut rows: Vec<&[f32]> = ROWS.with_borrow_mut(|r| relifetime(std::mem::take(r)));
    for p in (pos + 1).saturating_sub(window)..=pos {
        let s = p % raw_cap;
        rows.push(&raw[s * head_dim..(s + 1) * head_dim]);
    }
    if let Some(comp) = comp {
        let n = visible_comp_rows(ratio, pos);
        debug_assert!(comp.len() >= n * head_dim);
        let row = |c: usize| &comp[c * head_dim..(c + 1) * head_dim];
        match sel {
            Some(sel) => rows.extend(
                sel.iter()
                    .filter(|&&c| c >= 0 && (c as usize) < n)
                    .map(|&c| row(c as usize)),
            ),
            None => rows.extend((0..n).map(row)),
        }
    }

    let scale = 1.0 / (head_dim as f32).sqrt();
    #[cfg(target_arch = "x86_64")]
    if heads.is_multiple_of(2) && crate::quant::simd::active() != crate::quant::simd::Isa::Scalar {
        // Two heads per task, each cached row read once for both.
        out.par_chunks_mut(2 * head_dim)
            .enumerate()
            .for_each(|(p, oh)| {
                let (o0, o1) = oh.split_at_mut(head_dim);
                let qh = |h: usize| &q[h * head_dim..(h + 1) * head_dim];
                let (h0, h1) = (2 * p, 2 * p + 1);
                SCORES2.with_borrow_mut(|(w0, w1)| {
                    // SAFETY: every non-scalar path includes AVX2 and FMA.
                    unsafe {
                        attend_heads2_avx2(
                            [qh(h0), qh(h1)],
                            &rows,
                            [sinks[h0], sinks[h1]],
                            scale,
                            [w0, w1],
                            [o0, o1],
                        )
                    }
                });
            });
        ROWS.with_borrow_mut(|r| *r = relifetime(rows));
        return;
    }
    out.par_chunks_mut(head_dim)
        .enumerate()
        .for_each(|(h, oh)| {
            let qh = &q[h * head_dim..(h + 1) * head_dim];
            SCORES.with_borrow_mut(|w| attend_head(qh, &rows, sinks[h], scale, w, oh));
        });
    ROWS.with_borrow_mut(|r| *r = relifetime(rows));
}

/// `v` emptied, as a list of slices of another lifetime on the same allocation (an
/// in-place collect of nothing), so the row list needs no allocation per call.
fn relifetime<'a, 'b>(mut v: Vec<&'a [f32]>) -> Vec<&'b [f32]> {
    v.clear();
    v.into_iter()
        .map(|_| -> &'b [f32] { unreachable!() })
        .collect()
}

thread_local! {
    /// The attended rows' list (emptied between calls, its allocation reused).
    static ROWS: std::cell::RefCell<Vec<&'static [f32]>> = const { std::cell::RefCell::new(Vec::new()) };
    /// One head's scores (reused across calls).
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Two heads' scores (reused across calls).
    static SCORES2: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// [`attend_head_body`] for two heads over the same rows, each row loaded once for
/// both: the scores come from [`super::dots8_avx2`] (the bits of `dot_f32_x4` and
/// `dot_f32`), the softmax is the body's, and the weighted sum keeps 32 dims of both
/// heads in registers, adding `e·v` row after row (the body's operations per element).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_heads2_avx2(
    qh: [&[f32]; 2],
    rows: &[&[f32]],
    sink: [f32; 2],
    scale: f32,
    w: [&mut Vec<f32>; 2],
    oh: [&mut [f32]; 2],
) {
    use std::arch::x86_64::*;
    let [w0, w1] = w;
    let [o0, o1] = oh;
    w0.clear();
    w1.clear();
    let mut quads = rows.chunks_exact(4);
    for r in &mut quads {
        // SAFETY: AVX2 is enabled; rows and queries have head_dim values.
        let d = unsafe { super::dots8_avx2::<2>(qh, [r[0], r[1], r[2], r[3]]) };
        w0.extend(d[0].iter().map(|v| v * scale));
        w1.extend(d[1].iter().map(|v| v * scale));
    }
    for r in quads.remainder() {
        w0.push(dot_f32(qh[0], r) * scale);
        w1.push(dot_f32(qh[1], r) * scale);
    }
    let mut inv = [0.0f32; 2];
    for (k, (w, s)) in [(&mut *w0, sink[0]), (&mut *w1, sink[1])]
        .into_iter()
        .enumerate()
    {
        let m = w.iter().fold(s, |m, &v| m.max(v));
        let mut z = (s - m).exp();
        for v in w.iter_mut() {
            *v = (*v - m).exp();
            z += *v;
        }
        inv[k] = 1.0 / z;
    }
    const STRIP: usize = 32;
    let hd = o0.len();
    let full = hd / STRIP * STRIP;
    for k in (0..full).step_by(STRIP) {
        let (mut a0, mut a1) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
        for ((r, &e0), &e1) in rows.iter().zip(w0.iter()).zip(w1.iter()) {
            let (e0, e1) = (_mm256_set1_ps(e0), _mm256_set1_ps(e1));
            for i in 0..4 {
                // SAFETY: dims k..k + 32 of the row are in bounds.
                let v = unsafe { _mm256_loadu_ps(r.as_ptr().add(k + 8 * i)) };
                a0[i] = _mm256_add_ps(a0[i], _mm256_mul_ps(e0, v));
                a1[i] = _mm256_add_ps(a1[i], _mm256_mul_ps(e1, v));
            }
        }
        for i in 0..4 {
            // SAFETY: dims k..k + 32 of both outputs are in bounds.
            unsafe {
                _mm256_storeu_ps(o0.as_mut_ptr().add(k + 8 * i), a0[i]);
                _mm256_storeu_ps(o1.as_mut_ptr().add(k + 8 * i), a1[i]);
            }
        }
    }
    for (o, w) in [(&mut *o0, &*w0), (&mut *o1, &*w1)] {
        o[full..].iter_mut().for_each(|v| *v = 0.0);
        for (r, &e) in rows.iter().zip(w.iter()) {
            for (o, &v) in o[full..].iter_mut().zip(r[full..].iter()) {
                *o += e * v;
            }
        }
    }
    for (o, inv) in [(o0, inv[0]), (o1, inv[1])] {
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// One head: scores, softmax with the sink, weighted sum of the rows, on the
/// fastest path of this machine (all paths give the same bits: the clones differ
/// only in vector width, not in the order of operations).
fn attend_head(
    qh: &[f32],
    rows: &[&[f32]],
    sink: f32,
    scale: f32,
    w: &mut Vec<f32>,
    oh: &mut [f32],
) {
    use crate::quant::simd::{active, Isa};
    match active() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active` only returns paths this CPU supports (AVX2 is part of both).
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { attend_head_avx2(qh, rows, sink, scale, w, oh) },
        _ => attend_head_body(qh, rows, sink, scale, w, oh),
    }
}

/// [`attend_head_body`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_head_avx2(
    qh: &[f32],
    rows: &[&[f32]],
    sink: f32,
    scale: f32,
    w: &mut Vec<f32>,
    oh: &mut [f32],
) {
    attend_head_body(qh, rows, sink, scale, w, oh)
}

#[inline(always)]
fn attend_head_body(
    qh: &[f32],
    rows: &[&[f32]],
    sink: f32,
    scale: f32,
    w: &mut Vec<f32>,
    oh: &mut [f32],
) {
    w.clear();
    let mut quads = rows.chunks_exact(4);
    for r in &mut quads {
        let d = dot_f32_x4(qh, [r[0], r[1], r[2], r[3]]);
        w.extend(d.iter().map(|v| v * scale));
    }
    w.extend(quads.remainder().iter().map(|r| dot_f32(qh, r) * scale));

    let m = w.iter().fold(sink, |m, &s| m.max(s));
    let mut z = (sink - m).exp();
    for s in w.iter_mut() {
        *s = (*s - m).exp();
        z += *s;
    }

    // Each output element sums `e·v` over the rows in order; 64 elements at a time
    // stay in registers across all rows (the same operations per element).
    const STRIP: usize = 64;
    let full = oh.len() / STRIP * STRIP;
    for (k, strip) in oh[..full].chunks_exact_mut(STRIP).enumerate() {
        let mut acc = [0.0f32; STRIP];
        for (r, &e) in rows.iter().zip(w.iter()) {
            let v = &r[k * STRIP..(k + 1) * STRIP];
            for l in 0..STRIP {
                acc[l] += e * v[l];
            }
        }
        strip.copy_from_slice(&acc);
    }
    oh[full..].iter_mut().for_each(|v| *v = 0.0);
    for (r, &e) in rows.iter().zip(w.iter()) {
        for (o, &v) in oh[full..].iter_mut().zip(r[full..].iter()) {
            *o += e * v;
        }
    }
    let inv = 1.0 / z;
    oh.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
// The self-check values are quoted as MODEL.md prints them.
#[allow(clippy::excessive_precision, clippy::needless_range_loop)]
mod tests {
    /// The row list's reuse: emptied, same allocation (no allocation per call).
    #[test]
    fn row_list_keeps_its_allocation() {
        let data = vec![0.0f32; 8];
        let mut v: Vec<&[f32]> = Vec::with_capacity(100);
        v.push(&data[..]);
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
        let w: Vec<&[f32]> = super::relifetime(v);
        assert!(w.is_empty());
        assert_eq!((w.as_ptr() as usize, w.capacity()), (ptr, cap));
    }

    use super::*;
    use crate::cpu::testutil::Rng;

    /// Naive f64 attention over an explicit list of rows (§10).
    fn reference(q: &[f32], sinks: &[f32], rows: &[Vec<f32>], heads: usize, hd: usize) -> Vec<f64> {
        let mut out = vec![0.0f64; heads * hd];
        for h in 0..heads {
            let qh = &q[h * hd..(h + 1) * hd];
            let s: Vec<f64> = rows
                .iter()
                .map(|r| {
                    qh.iter()
                        .zip(r)
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum::<f64>()
                        / (hd as f64).sqrt()
                })
                .collect();
            let m = s.iter().fold(sinks[h] as f64, |m, &v| m.max(v));
            let z = (sinks[h] as f64 - m).exp() + s.iter().map(|v| (v - m).exp()).sum::<f64>();
            for (r, sv) in rows.iter().zip(&s) {
                for d in 0..hd {
                    out[h * hd + d] += (sv - m).exp() / z * r[d] as f64;
                }
            }
        }
        out
    }

    fn f16r(v: Vec<f32>) -> Vec<f32> {
        v.into_iter().map(f16_round).collect()
    }

    // Tolerance: rows and queries are O(1), so scores are O(1) with f32 dot error
    // ≤ hd·2^-24·Σ|q·r|/sqrt(hd) ≈ 1e-6; exp turns that into ~1e-6 relative weight
    // error, and the weighted average of O(1) rows adds ~n_rows·2^-24. 2e-5 absolute
    // bounds the sum for ≤ 200 rows with margin.
    const TOL: f64 = 2e-5;

    fn assert_close(got: &[f32], want: &[f64]) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() <= TOL, "elem {i}: {g} vs {w}");
        }
    }

    #[test]
    fn every_path_gives_the_same_bits() {
        let mut rng = Rng(12);
        for (n, hd) in [(1, 40), (3, 64), (4, 37), (7, 512), (130, 512), (9, 100)] {
            let data: Vec<Vec<f32>> = (0..n).map(|_| f16r(rng.vec(hd, 1.5))).collect();
            let rows: Vec<&[f32]> = data.iter().map(|r| &r[..]).collect();
            let q = rng.vec(hd, 1.5);
            let (mut w, mut want) = (Vec::new(), vec![0.0; hd]);
            attend_head_body(&q, &rows, 0.3, 0.125, &mut w, &mut want);
            // The strip-blocked weighted sum against the plain row-by-row loop.
            let raw: Vec<f32> = rows
                .chunks(4)
                .flat_map(|c| {
                    if c.len() == 4 {
                        crate::cpu::dot_f32_x4(&q, [c[0], c[1], c[2], c[3]]).to_vec()
                    } else {
                        c.iter().map(|r| dot_f32(&q, r)).collect()
                    }
                })
                .map(|v| v * 0.125)
                .collect();
            let m = raw.iter().fold(0.3f32, |m, &s| m.max(s));
            let mut plain = vec![0.0f32; hd];
            for (r, &e) in rows.iter().zip(&w) {
                for (o, &v) in plain.iter_mut().zip(r.iter()) {
                    *o += e * v;
                }
            }
            let z = w.iter().fold((0.3f32 - m).exp(), |z, &e| z + e);
            let inv = 1.0 / z;
            plain.iter_mut().for_each(|v| *v *= inv);
            assert_eq!(plain, want, "n {n} hd {hd}: blocked sum");
            for r in rows.chunks(4).filter(|c| c.len() == 4) {
                let d = crate::cpu::dot_f32_x4(&q, [r[0], r[1], r[2], r[3]]);
                for j in 0..4 {
                    assert_eq!(d[j].to_bits(), dot_f32(&q, r[j]).to_bits());
                }
            }
            #[cfg(target_arch = "x86_64")]
            if crate::quant::simd::Isa::Avx2.supported() {
                let mut got = vec![0.0; hd];
                // SAFETY: AVX2 is supported (checked above).
                unsafe { attend_head_avx2(&q, &rows, 0.3, 0.125, &mut w, &mut got) };
                assert_eq!(got, want, "n {n} hd {hd}");
            }
        }
    }

    /// The two-head AVX2 path gives each head the one-head body's bits.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn two_head_path_gives_the_one_head_bits() {
        if !crate::quant::simd::Isa::Avx2.supported() {
            return;
        }
        let mut rng = Rng(13);
        for (n, hd) in [(1, 40), (3, 64), (4, 37), (7, 512), (130, 512), (9, 100)] {
            let data: Vec<Vec<f32>> = (0..n).map(|_| f16r(rng.vec(hd, 1.5))).collect();
            let rows: Vec<&[f32]> = data.iter().map(|r| &r[..]).collect();
            let (qa, qb) = (rng.vec(hd, 1.5), rng.vec(hd, 1.5));
            let mut w = Vec::new();
            let (mut want_a, mut want_b) = (vec![0.0; hd], vec![0.0; hd]);
            attend_head_body(&qa, &rows, 0.3, 0.125, &mut w, &mut want_a);
            attend_head_body(&qb, &rows, -0.7, 0.125, &mut w, &mut want_b);
            let (mut wa, mut wb) = (Vec::new(), Vec::new());
            let (mut got_a, mut got_b) = (vec![0.0; hd], vec![0.0; hd]);
            // SAFETY: AVX2 is supported (checked above).
            unsafe {
                attend_heads2_avx2(
                    [&qa, &qb],
                    &rows,
                    [0.3, -0.7],
                    0.125,
                    [&mut wa, &mut wb],
                    [&mut got_a, &mut got_b],
                )
            };
            assert_eq!(got_a, want_a, "n {n} hd {hd} head 0");
            assert_eq!(got_b, want_b, "n {n} hd {hd} head 1");
        }
    }

    #[test]
    fn raw_window_wraps_and_matches_reference() {
        let mut rng = Rng(10);
        let (heads, hd, window, cap) = (3, 40, 17, 23);
        let sinks = rng.vec(heads, 2.0);
        let mut raw = vec![0.0; cap * hd];
        let mut all = Vec::new();
        // 150 positions: the ring wraps several times.
        for pos in 0..150 {
            let kv = rng.vec(hd, 1.5);
            kv_push_raw(&mut raw, cap, hd, pos, &kv);
            all.push(f16r(kv));
            let q = rng.vec(heads * hd, 1.5);
            let mut out = vec![0.0; heads * hd];
            attention(
                &q, &sinks, &raw, cap, window, None, 0, None, heads, hd, pos, &mut out,
            );
            let lo = (pos + 1).saturating_sub(window);
            assert_close(&out, &reference(&q, &sinks, &all[lo..=pos], heads, hd));
        }
    }

    #[test]
    fn chunked_push_equals_token_by_token() {
        // The DS4 shapes: window 128 over > 128 positions, chunks of 37 rows pushed
        // before any of their tokens attends, ring cap = window + chunk.
        let mut rng = Rng(11);
        let (heads, hd, window, chunk) = (2, 64, 128, 37);
        let cap = window + chunk;
        let n = 300;
        let sinks = rng.vec(heads, 1.0);
        let kvs: Vec<Vec<f32>> = (0..n).map(|_| rng.vec(hd, 1.0)).collect();
        let qs: Vec<Vec<f32>> = (0..n).map(|_| rng.vec(heads * hd, 1.0)).collect();

        let mut ring_a = vec![0.0; cap * hd];
        let mut seq = Vec::new();
        for pos in 0..n {
            kv_push_raw(&mut ring_a, cap, hd, pos, &kvs[pos]);
            let mut out = vec![0.0; heads * hd];
            attention(
                &qs[pos], &sinks, &ring_a, cap, window, None, 0, None, heads, hd, pos, &mut out,
            );
            seq.push(out);
        }

        let mut ring_b = vec![0.0; cap * hd];
        let mut pos0 = 0;
        while pos0 < n {
            let end = (pos0 + chunk).min(n);
            for pos in pos0..end {
                kv_push_raw(&mut ring_b, cap, hd, pos, &kvs[pos]);
            }
            for pos in pos0..end {
                let mut out = vec![0.0; heads * hd];
                attention(
                    &qs[pos], &sinks, &ring_b, cap, window, None, 0, None, heads, hd, pos, &mut out,
                );
                assert_eq!(out, seq[pos], "pos {pos}: chunked differs from sequential");
            }
            pos0 = end;
        }
    }

    #[test]
    fn compressed_rows_visibility_and_selection() {
        let mut rng = Rng(12);
        let (heads, hd, window, cap, ratio) = (2, 24, 8, 16, 4);
        let sinks = rng.vec(heads, 1.0);
        let mut raw = vec![0.0; cap * hd];
        let comp = f16r(rng.vec(20 * hd, 1.0));
        let mut raws = Vec::new();
        for pos in 0..40usize {
            let kv = rng.vec(hd, 1.0);
            kv_push_raw(&mut raw, cap, hd, pos, &kv);
            raws.push(f16r(kv));
            let q = rng.vec(heads * hd, 1.0);
            let lo = (pos + 1).saturating_sub(window);
            let n = (pos + 1) / ratio;

            // All visible rows: row c appears exactly when 4c + 3 <= pos.
            let mut rows: Vec<Vec<f32>> = raws[lo..=pos].to_vec();
            rows.extend((0..n).map(|c| comp[c * hd..(c + 1) * hd].to_vec()));
            let mut out = vec![0.0; heads * hd];
            attention(
                &q,
                &sinks,
                &raw,
                cap,
                window,
                Some(&comp),
                ratio,
                None,
                heads,
                hd,
                pos,
                &mut out,
            );
            assert_close(&out, &reference(&q, &sinks, &rows, heads, hd));

            // A selection of the odd rows, -1 padded.
            let mut sel: Vec<i32> = (0..n as i32).filter(|c| c % 2 == 1).collect();
            sel.resize(12, -1);
            let mut rows: Vec<Vec<f32>> = raws[lo..=pos].to_vec();
            rows.extend(
                (0..n)
                    .filter(|c| c % 2 == 1)
                    .map(|c| comp[c * hd..(c + 1) * hd].to_vec()),
            );
            attention(
                &q,
                &sinks,
                &raw,
                cap,
                window,
                Some(&comp),
                ratio,
                Some(&sel),
                heads,
                hd,
                pos,
                &mut out,
            );
            assert_close(&out, &reference(&q, &sinks, &rows, heads, hd));
        }
    }

    #[test]
    fn sink_only_scales_the_output() {
        // One row: out = row · e^s / (e^s + e^sink). A huge sink drives it to zero, a
        // NEG_INF-like sink leaves the row itself.
        let hd = 8;
        let row: Vec<f32> = (0..hd).map(|i| i as f32 * 0.25).collect();
        let mut raw = vec![0.0; 4 * hd];
        kv_push_raw(&mut raw, 4, hd, 0, &row);
        let q = vec![0.5f32; hd];
        let s = row.iter().map(|v| 0.5 * *v as f64).sum::<f64>() / (hd as f64).sqrt();
        for sink in [-1e30f32, 0.0, 1.3, 80.0] {
            let mut out = vec![0.0; hd];
            attention(&q, &[sink], &raw, 4, 4, None, 0, None, 1, hd, 0, &mut out);
            let m = s.max(sink as f64);
            let w = (s - m).exp() / ((s - m).exp() + (sink as f64 - m).exp());
            for d in 0..hd {
                assert!(
                    (out[d] as f64 - w * row[d] as f64).abs() <= 1e-6,
                    "sink {sink}"
                );
            }
        }
    }

    #[test]
    fn fp8_kv_leaves_the_tail() {
        // MODEL §17 self-check through the op: y[0..7], y[447] = 5, y[448] unchanged.
        let mut x: Vec<f32> = (0..512)
            .map(|i| (0.37 * i as f32).sin() * (1.0 + 0.01 * i as f32))
            .collect();
        let tail = x[448..].to_vec();
        fp8_kv(&mut x, 448);
        assert_eq!(
            &x[..8],
            &[0.0, 0.375, 0.6875, 0.9375, 1.0, 1.0, 0.875, 0.5625]
        );
        assert_eq!(x[447], 5.0);
        assert_eq!(&x[448..], &tail[..]);
    }

    #[test]
    fn push_rounds_to_f16() {
        let mut raw = vec![0.0; 2 * 3];
        kv_push_raw(&mut raw, 2, 3, 5, &[1.0 + 1e-4, -2.71, 65504.0]);
        assert_eq!(&raw[3..], &[1.0, -2.7109375, 65504.0]);
        assert_eq!(&raw[..3], &[0.0; 3]);
    }
}
