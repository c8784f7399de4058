//! Dense projections (MODEL §3.3-§3.5), batched over `t` token rows.
//!
//! Each weight row is decoded once per call and applied to every token of the chunk,
//! so a prefill chunk reads each weight once; rows go in blocks of 16 so that the
//! activations are not re-streamed per row either. The per-(row, token) arithmetic does not
//! depend on `t`, which keeps batched prefill bit-identical to token-by-token decode.
//! Outputs are `[t][n_out]`. F16 weights multiply the unquantised f32 activation; Q8_0
//! weights multiply Q8_0-quantised activations (quantised by the caller with
//! [`quantize_q8_0_rows`], once per input and reused by paired projections).

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::dots8_avx2;
use super::{dot_f32, dot_f32_x4, f16_row_to_f32};
use crate::quant::q8_0::{self, BlockQ8_0Act};
use crate::quant::q8_k::{self, BlockQ8K};

/// Output rows per rayon task. A block's weight rows stay in cache while every token
/// of the chunk passes over them, and each token's activation stays in cache across
/// the block's rows, so neither side is streamed from memory once per row.
const ROW_BLOCK: usize = 16;

/// Runs `f(scratch, o0, out)` for every block of up to [`ROW_BLOCK`] output rows
/// starting at `o0`, where `out` is `[rows][t]`, and scatters it into `y` (`[t][n_out]`).
fn for_each_block<S, I, F>(n_out: usize, t: usize, y: &mut [f32], init: I, f: F)
where
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, &mut [f32]) + Sync + Send,
{
    debug_assert_eq!(y.len(), n_out * t);
    if t == 1 {
        // One token: [o][t] is already the output layout.
        y.par_chunks_mut(ROW_BLOCK)
            .enumerate()
            .for_each_init(init, |s, (b, v)| f(s, b * ROW_BLOCK, v));
        return;
    }
    TMP.with_borrow_mut(|tmp| {
        if tmp.len() < n_out * t {
            tmp.resize(n_out * t, 0.0);
        }
        let tmp = &mut tmp[..n_out * t];
        tmp.par_chunks_mut(ROW_BLOCK * t)
            .enumerate()
            .for_each_init(&init, |s, (b, v)| f(s, b * ROW_BLOCK, v));
        let tmp = &*tmp;
        y.par_chunks_mut(n_out).enumerate().for_each(|(ti, yt)| {
            for (o, v) in yt.iter_mut().enumerate() {
                *v = tmp[o * t + ti];
            }
        });
    });
}

thread_local! {
    /// The `[rows][t]` staging buffer of [`for_each_block`] (grows once, then reused).
    static TMP: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `y[t][o] = Σ_i W[o,i]·x[t][i]` for an F16 weight `[n_in, n_out]`, f32 accumulation.
pub fn matmul_f16(w: &[u8], n_in: usize, n_out: usize, x: &[f32], t: usize, y: &mut [f32]) {
    debug_assert!(w.len() >= 2 * n_in * n_out && x.len() == n_in * t);
    let rb = 2 * n_in;
    #[cfg(target_arch = "x86_64")]
    if t == 1 && crate::quant::simd::active() != crate::quant::simd::Isa::Scalar {
        // Decode: one token, so widen on the fly instead of into a buffer.
        use crate::quant::simd::x86::{f16_dot8, f16_dot8_n};
        y.par_chunks_mut(ROW_BLOCK).enumerate().for_each(|(b, v)| {
            let row = |r: usize| &w[(b * ROW_BLOCK + r) * rb..(b * ROW_BLOCK + r + 1) * rb];
            let mut quads = v.chunks_exact_mut(4);
            let mut r = 0;
            for q in &mut quads {
                // SAFETY: every non-scalar path includes AVX2 and F16C; rows hold n_in values.
                q.copy_from_slice(&unsafe {
                    f16_dot8_n(x, [row(r), row(r + 1), row(r + 2), row(r + 3)])
                });
                r += 4;
            }
            for o in quads.into_remainder() {
                // SAFETY: as above.
                *o = unsafe { f16_dot8(row(r), x) };
                r += 1;
            }
        });
        return;
    }
    for_each_block(
        n_out,
        t,
        y,
        || (),
        |_, o0, out| {
            ROWS.with_borrow_mut(|rows| {
                if rows.len() < ROW_BLOCK * n_in {
                    rows.resize(ROW_BLOCK * n_in, 0.0);
                }
                let nr = out.len() / t;
                for (r, row) in rows.chunks_exact_mut(n_in).take(nr).enumerate() {
                    f16_row_to_f32(&w[(o0 + r) * rb..(o0 + r + 1) * rb], row);
                }
                f16_block_dots(rows, n_in, nr, x, t, out);
            })
        },
    );
}

thread_local! {
    /// Each worker's widened F16 rows (grows once, then reused).
    static ROWS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `out[r·t + ti] = dot_f32(row r, x[ti])` for `nr` widened rows, on the fastest path
/// (the AVX2 clone runs the same operations in the same order, eight lanes at a time).
fn f16_block_dots(rows: &[f32], n_in: usize, nr: usize, x: &[f32], t: usize, out: &mut [f32]) {
    use crate::quant::simd::{active, Isa};
    match active() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active` only returns paths this CPU supports (AVX2 is part of both).
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { f16_block_dots_avx2(rows, n_in, nr, x, t, out) },
        _ => f16_block_dots_body(rows, n_in, nr, x, t, out),
    }
}

/// [`f16_block_dots_body`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn f16_block_dots_avx2(
    rows: &[f32],
    n_in: usize,
    nr: usize,
    x: &[f32],
    t: usize,
    out: &mut [f32],
) {
    let row = |r: usize| &rows[r * n_in..(r + 1) * n_in];
    let xt = |ti: usize| &x[ti * n_in..(ti + 1) * n_in];
    let nr4 = nr / 4 * 4;
    let mut ti = 0;
    while ti < t {
        let two = ti + 2 <= t;
        for r in (0..nr4).step_by(4) {
            let rs = [row(r), row(r + 1), row(r + 2), row(r + 3)];
            if two {
                // SAFETY: AVX2 is enabled here; every slice holds n_in values.
                let d = unsafe { dots8_avx2::<2>([xt(ti), xt(ti + 1)], rs) };
                for j in 0..4 {
                    out[(r + j) * t + ti] = d[0][j];
                    out[(r + j) * t + ti + 1] = d[1][j];
                }
            } else {
                // SAFETY: as above.
                let d = unsafe { dots8_avx2::<1>([xt(ti)], rs) };
                for j in 0..4 {
                    out[(r + j) * t + ti] = d[0][j];
                }
            }
        }
        for r in nr4..nr {
            out[r * t + ti] = dot_f32(row(r), xt(ti));
            if two {
                out[r * t + ti + 1] = dot_f32(row(r), xt(ti + 1));
            }
        }
        ti += if two { 2 } else { 1 };
    }
}

#[inline(always)]
fn f16_block_dots_body(rows: &[f32], n_in: usize, nr: usize, x: &[f32], t: usize, out: &mut [f32]) {
    for ti in 0..t {
        let xt = &x[ti * n_in..(ti + 1) * n_in];
        let mut r = 0;
        while r + 4 <= nr {
            let row = |j: usize| &rows[(r + j) * n_in..(r + j + 1) * n_in];
            let d = dot_f32_x4(xt, [row(0), row(1), row(2), row(3)]);
            for j in 0..4 {
                out[(r + j) * t + ti] = d[j];
            }
            r += 4;
        }
        for r in r..nr {
            out[r * t + ti] = dot_f32(&rows[r * n_in..(r + 1) * n_in], xt);
        }
    }
}

/// Quantises `t` rows of `n` values to Q8_0 activation blocks (`n/32` per row, §3.4).
pub fn quantize_q8_0_rows(x: &[f32], n: usize, t: usize, out: &mut [BlockQ8_0Act]) {
    let nb = n.div_ceil(q8_0::QK8_0);
    debug_assert!(x.len() == n * t && out.len() >= nb * t);
    out[..nb * t]
        .par_chunks_mut(nb)
        .zip(x.par_chunks(n))
        .for_each(|(o, xr)| q8_0::quantize_act(xr, o));
}

/// Quantises `t` rows of `n` values (a multiple of 256) to Q8_K blocks (§3.5).
pub fn quantize_q8_k_rows(x: &[f32], n: usize, t: usize, out: &mut [BlockQ8K]) {
    let nb = n / 256;
    debug_assert!(n.is_multiple_of(256) && x.len() == n * t && out.len() >= nb * t);
    out[..nb * t]
        .par_chunks_mut(nb)
        .zip(x.par_chunks(n))
        .for_each(|(o, xr)| q8_k::quantize(xr, o));
}

thread_local! {
    /// Packed prefill activations for the 16-token Q8_0 kernel (reused).
    #[cfg(target_arch = "x86_64")]
    static PACK: std::cell::RefCell<crate::quant::simd::q8_0_x16::Packed16> = Default::default();
}

/// Runs the 16-token Q8_0 kernel when the chunk has several tokens and the machine
/// has AVX-512 VNNI: packs the `sets` inputs (`row(ti, s)`), then for every output
/// row `o` reads weight row `o` once and writes all `t` tokens. Returns false (doing
/// nothing) otherwise. Same bits as per-token `vec_dot` (tested).
#[allow(unused_variables, clippy::too_many_arguments)]
fn q8_0_x16<'x>(
    w: &[u8],
    nb: usize,
    n_out: usize,
    t: usize,
    sets: usize,
    set_of: impl Fn(usize) -> usize + Sync,
    row: impl Fn(usize, usize) -> &'x [BlockQ8_0Act],
    y: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::quant::simd::{active, q8_0_x16, Isa};
        if t < 2 || active() != Isa::Avx512Vnni {
            return false;
        }
        let rb = nb * q8_0::BLOCK_BYTES;
        PACK.with_borrow_mut(|p| {
            p.pack(t, nb, sets, row);
            let p = &*p;
            for_each_block(
                n_out,
                t,
                y,
                || (),
                |_, o0, out| {
                    let nr = out.len() / t;
                    let mut put = |r: usize, g0: usize, res: &[[f32; q8_0_x16::LANES]]| {
                        for (i, lanes) in res.iter().enumerate() {
                            let t0 = (g0 + i) * q8_0_x16::LANES;
                            for (l, &v) in lanes.iter().enumerate().take(t - t0) {
                                out[r * t + t0 + l] = v;
                            }
                        }
                    };
                    let wr = |r: usize| &w[(o0 + r) * rb..(o0 + r + 1) * rb];
                    let mut r = 0;
                    while r < nr {
                        let s = set_of(o0 + r);
                        // Two rows of the same input set share each activation load.
                        let two = r + 1 < nr && set_of(o0 + r + 1) == s;
                        let mut g0 = 0;
                        while g0 < p.groups() {
                            // SAFETY (each call): AVX-512 VNNI is the active path, so this
                            // CPU has it; rows hold `nb` blocks and (s, g0..) were packed.
                            macro_rules! go {
                                ($g:literal) => {
                                    if two {
                                        let [a, b] = unsafe {
                                            q8_0_x16::rows_x16_groups::<2, $g>(
                                                [wr(r), wr(r + 1)],
                                                p,
                                                s,
                                                g0,
                                            )
                                        };
                                        put(r, g0, &a);
                                        put(r + 1, g0, &b);
                                    } else {
                                        let a = unsafe {
                                            q8_0_x16::row_x16_groups::<$g>(wr(r), p, s, g0)
                                        };
                                        put(r, g0, &a);
                                    }
                                };
                            }
                            match p.groups() - g0 {
                                1 => go!(1),
                                2 => go!(2),
                                3 => go!(3),
                                _ => go!(4),
                            }
                            g0 += 4;
                        }
                        r += if two { 2 } else { 1 };
                    }
                },
            );
        });
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `y[t][o] = Q8_0(W)[o]·xq[t]` for a Q8_0 weight `[n_in, n_out]` (§3.4).
pub fn matmul_q8_0(
    w: &[u8],
    n_in: usize,
    n_out: usize,
    xq: &[BlockQ8_0Act],
    t: usize,
    y: &mut [f32],
) {
    let nb = n_in / q8_0::QK8_0;
    let rb = nb * q8_0::BLOCK_BYTES;
    debug_assert!(n_in.is_multiple_of(32) && w.len() >= rb * n_out && xq.len() >= nb * t);
    if q8_0_x16(
        w,
        nb,
        n_out,
        t,
        1,
        |_| 0,
        |ti, _| &xq[ti * nb..(ti + 1) * nb],
        y,
    ) {
        return;
    }
    for_each_block(
        n_out,
        t,
        y,
        || (),
        |_, o0, out| {
            let nr = out.len() / t;
            let row = |r: usize| &w[(o0 + r) * rb..(o0 + r + 1) * rb];
            for ti in 0..t {
                let xt = &xq[ti * nb..(ti + 1) * nb];
                let mut r = 0;
                while r + 4 <= nr {
                    let d = q8_0::vec_dot4([row(r), row(r + 1), row(r + 2), row(r + 3)], xt);
                    for (j, v) in d.into_iter().enumerate() {
                        out[(r + j) * t + ti] = v;
                    }
                    r += 4;
                }
                for r in r..nr {
                    out[r * t + ti] = q8_0::vec_dot(row(r), xt);
                }
            }
        },
    );
}

/// Grouped Q8_0 projection (§6 A11): output row `g·out_per_group + j` reads only input
/// group `g` (`group_in` values) of each token. `y` is `[t][groups·out_per_group]`.
pub fn matmul_q8_0_grouped(
    w: &[u8],
    group_in: usize,
    groups: usize,
    out_per_group: usize,
    xq: &[BlockQ8_0Act],
    t: usize,
    y: &mut [f32],
) {
    let nbg = group_in / q8_0::QK8_0;
    let rb = nbg * q8_0::BLOCK_BYTES;
    let n_out = groups * out_per_group;
    debug_assert!(
        group_in.is_multiple_of(32) && w.len() >= rb * n_out && xq.len() >= nbg * groups * t
    );
    let row = |ti: usize, g: usize| &xq[(ti * groups + g) * nbg..(ti * groups + g + 1) * nbg];
    if q8_0_x16(w, nbg, n_out, t, groups, |o| o / out_per_group, row, y) {
        return;
    }
    for_each_block(
        n_out,
        t,
        y,
        || (),
        |_, o0, out| {
            let nr = out.len() / t;
            let row = |o: usize| &w[o * rb..(o + 1) * rb];
            for ti in 0..t {
                let x = |o: usize| {
                    let x0 = (ti * groups + o / out_per_group) * nbg;
                    &xq[x0..x0 + nbg]
                };
                let mut r = 0;
                // Four rows at a time while they read the same input group.
                while r + 4 <= nr && (o0 + r) / out_per_group == (o0 + r + 3) / out_per_group {
                    let o = o0 + r;
                    let d = q8_0::vec_dot4([row(o), row(o + 1), row(o + 2), row(o + 3)], x(o));
                    for (j, v) in d.into_iter().enumerate() {
                        out[(r + j) * t + ti] = v;
                    }
                    r += 4;
                }
                for r in r..nr {
                    out[r * t + ti] = q8_0::vec_dot(row(o0 + r), x(o0 + r));
                }
            }
        },
    );
}

#[cfg(test)]
// The self-check values are quoted as MODEL.md prints them.
#[allow(clippy::excessive_precision, clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::cpu::testutil::{f16_bytes, f16_decode, Rng};

    /// The AVX2 F16 block kernel (2 tokens × 4 rows) against the plain body, bit for
    /// bit: odd row counts, odd token counts, widths with and without an 8-tail.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn f16_block_kernel_matches_plain_body() {
        if !crate::quant::simd::Isa::Avx2.supported() {
            return;
        }
        let mut rng = Rng(83);
        for (n_in, nr, t) in [(8, 1, 1), (13, 5, 3), (64, 8, 2), (203, 7, 5), (4096, 4, 4)] {
            let rows = rng.vec(n_in * nr, 2.0);
            let x = rng.vec(n_in * t, 2.0);
            let (mut want, mut got) = (vec![0.0f32; nr * t], vec![0.0f32; nr * t]);
            f16_block_dots_body(&rows, n_in, nr, &x, t, &mut want);
            // SAFETY: AVX2 is supported (checked above).
            unsafe { f16_block_dots_avx2(&rows, n_in, nr, &x, t, &mut got) };
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "n_in {n_in} nr {nr} t {t}");
        }
    }

    /// A random Q8_0 weight: per block an f16 scale in ±[0, 0.05) and random int8s.
    fn q8_0_weight(rng: &mut Rng, n_in: usize, n_out: usize) -> Vec<u8> {
        let mut w = Vec::new();
        for _ in 0..n_out * n_in / 32 {
            w.extend(f16_bytes(&[rng.uniform() * 0.05]));
            w.extend((0..32).map(|_| rng.next_u64() as u8));
        }
        w
    }

    /// f64 dot of a Q8_0 weight row with a dequantised activation; also Σ|terms|.
    fn q8_0_ref(wrow: &[u8], xq: &[BlockQ8_0Act]) -> (f64, f64) {
        let (mut s, mut mag) = (0.0, 0.0);
        for (blk, xb) in wrow.chunks_exact(34).zip(xq) {
            let d = f16_decode(&blk[..2])[0];
            for i in 0..32 {
                let term = d * (blk[2 + i] as i8) as f64 * xb.d as f64 * xb.qs[i] as f64;
                s += term;
                mag += term.abs();
            }
        }
        (s, mag)
    }

    // Q8_0 tolerance: the inner block sums are exact integers; each block adds two
    // f32 roundings and the block sum one per block, so |err| ≤ (nb + 3)·2^-24·Σ|terms|.
    fn q8_tol(nb: usize, mag: f64) -> f64 {
        (nb as f64 + 3.0) * 2f64.powi(-24) * mag + 1e-30
    }

    #[test]
    fn f16_matmul_matches_reference_and_is_batch_invariant() {
        let mut rng = Rng(50);
        let (n_in, n_out, t) = (203, 37, 5);
        let w = f16_bytes(&rng.vec(n_in * n_out, 1.0));
        let wd = f16_decode(&w);
        let x = rng.vec(n_in * t, 2.0);
        let mut y = vec![0.0; n_out * t];
        matmul_f16(&w, n_in, n_out, &x, t, &mut y);
        for ti in 0..t {
            for o in 0..n_out {
                let terms: Vec<f64> = (0..n_in)
                    .map(|i| wd[o * n_in + i] * x[ti * n_in + i] as f64)
                    .collect();
                let r: f64 = terms.iter().sum();
                let mag: f64 = terms.iter().map(|v| v.abs()).sum();
                // Eight lanes of n/8 sequential adds plus a 4-level tree and the tail:
                // |err| ≤ (n/8 + 12)·2^-24·Σ|terms|.
                let tol = (n_in as f64 / 8.0 + 12.0) * 2f64.powi(-24) * mag;
                assert!((y[ti * n_out + o] as f64 - r).abs() <= tol, "t {ti} o {o}");
            }
            let mut y1 = vec![0.0; n_out];
            matmul_f16(&w, n_in, n_out, &x[ti * n_in..(ti + 1) * n_in], 1, &mut y1);
            assert_eq!(
                &y1[..],
                &y[ti * n_out..(ti + 1) * n_out],
                "batched differs from single"
            );
        }
    }

    #[test]
    fn q8_0_matmul_matches_reference_and_is_batch_invariant() {
        let mut rng = Rng(51);
        let (n_in, n_out, t) = (32 * 7, 29, 3);
        let nb = n_in / 32;
        let w = q8_0_weight(&mut rng, n_in, n_out);
        let x = rng.vec(n_in * t, 3.0);
        let mut xq = vec![BlockQ8_0Act::default(); nb * t];
        quantize_q8_0_rows(&x, n_in, t, &mut xq);
        let mut y = vec![0.0; n_out * t];
        matmul_q8_0(&w, n_in, n_out, &xq, t, &mut y);
        for ti in 0..t {
            for o in 0..n_out {
                let (r, mag) = q8_0_ref(
                    &w[o * nb * 34..(o + 1) * nb * 34],
                    &xq[ti * nb..(ti + 1) * nb],
                );
                assert!(
                    (y[ti * n_out + o] as f64 - r).abs() <= q8_tol(nb, mag),
                    "t {ti} o {o}"
                );
            }
            let mut y1 = vec![0.0; n_out];
            matmul_q8_0(&w, n_in, n_out, &xq[ti * nb..(ti + 1) * nb], 1, &mut y1);
            assert_eq!(&y1[..], &y[ti * n_out..(ti + 1) * n_out]);
        }
    }

    #[test]
    fn grouped_reads_only_its_group() {
        let mut rng = Rng(52);
        let (group_in, groups, opg, t) = (64, 3, 5, 2);
        let nbg = group_in / 32;
        let w = q8_0_weight(&mut rng, group_in, groups * opg);
        let x = rng.vec(group_in * groups * t, 1.0);
        let mut xq = vec![BlockQ8_0Act::default(); nbg * groups * t];
        quantize_q8_0_rows(&x, group_in * groups, t, &mut xq);
        let mut y = vec![0.0; groups * opg * t];
        matmul_q8_0_grouped(&w, group_in, groups, opg, &xq, t, &mut y);
        for ti in 0..t {
            for o in 0..groups * opg {
                let g = o / opg;
                let x0 = (ti * groups + g) * nbg;
                let (r, mag) = q8_0_ref(&w[o * nbg * 34..(o + 1) * nbg * 34], &xq[x0..x0 + nbg]);
                assert!((y[ti * groups * opg + o] as f64 - r).abs() <= q8_tol(nbg, mag));
            }
        }
    }

    #[test]
    fn activation_quantisers() {
        // MODEL §17: a[i] = 0.013 (i - 20), first block.
        let a: Vec<f32> = (0..64).map(|i| 0.013 * (i as f32 - 20.0)).collect();
        let mut q = vec![BlockQ8_0Act::default(); 2];
        quantize_q8_0_rows(&a, 64, 1, &mut q);
        assert!((q[0].d - 0.00204724399).abs() <= 1e-11);
        assert_eq!(&q[0].qs[..4], &[-127, -121, -114, -108]);

        // Rows are quantised independently: equal to the one-row quantiser.
        let mut rng = Rng(53);
        let x = rng.vec(512 * 3, 4.0);
        let mut qk = vec![BlockQ8K::default(); 6];
        quantize_q8_k_rows(&x, 512, 3, &mut qk);
        for ti in 0..3 {
            let mut one = vec![BlockQ8K::default(); 2];
            q8_k::quantize(&x[ti * 512..(ti + 1) * 512], &mut one);
            assert_eq!(&qk[ti * 2..ti * 2 + 2], &one[..]);
            // Dequantised values lie within half a step of the input.
            for (b, blk) in one.iter().enumerate() {
                for i in 0..256 {
                    let v = x[ti * 512 + b * 256 + i] as f64;
                    assert!(
                        (blk.d as f64 * blk.qs[i] as f64 - v).abs()
                            <= 0.5 * blk.d.abs() as f64 * 1.0001
                    );
                }
            }
        }
    }
}
