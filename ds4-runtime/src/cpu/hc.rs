//! Hyper-connections (MODEL §4, §5, §12): the four residual streams and their mixing.
//!
//! The HC state is `[4][n_embd]`, stream-major. HC-pre turns the 24-value control
//! projection `mix` into `pre` (4 stream weights for the sublayer input), `post`
//! (4 weights for the sublayer output) and `comb` (a 4×4 doubly-normalised matrix,
//! flat index `4a+b`, row `a` = source stream, column `b` = destination stream).
//! HC-post then rebuilds the state from the sublayer output and the residual state.

use super::{f16_row_to_f32, sigmoid};

/// Number of HC streams.
pub const N_HC: usize = 4;

/// Splits `mix` [24] into `pre` [4], `post` [4] and `comb` [16] with Sinkhorn (§5.2).
///
/// `scale` = (pre, post, comb) scales, `base` [24] the biases. One max-subtracted row
/// softmax, then `iters` (≥ 1) column normalisations interleaved with `iters - 1` row
/// ones; the last step normalises columns.
#[allow(clippy::too_many_arguments)]
pub fn hc_split(
    mix: &[f32],
    scale: &[f32],
    base: &[f32],
    iters: usize,
    eps: f32,
    pre: &mut [f32],
    post: &mut [f32],
    comb: &mut [f32],
) {
    debug_assert!(mix.len() >= 24 && base.len() >= 24 && scale.len() >= 3);
    debug_assert!(pre.len() == 4 && post.len() == 4 && comb.len() == 16);
    let (sp, so, sc) = (scale[0], scale[1], scale[2]);
    for i in 0..N_HC {
        pre[i] = sigmoid(mix[i] * sp + base[i]) + eps;
        post[i] = 2.0 * sigmoid(mix[4 + i] * so + base[4 + i]);
    }

    let mut p = [0.0f32; 16];
    for a in 0..N_HC {
        let row: [f32; 4] = std::array::from_fn(|b| mix[8 + 4 * a + b] * sc + base[8 + 4 * a + b]);
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let e: [f32; 4] = std::array::from_fn(|b| (row[b] - m).exp());
        let sum = e[0] + e[1] + e[2] + e[3];
        for b in 0..N_HC {
            p[4 * a + b] = e[b] / sum + eps;
        }
    }

    normalise_columns(&mut p, eps);
    for _ in 1..iters {
        normalise_rows(&mut p, eps);
        normalise_columns(&mut p, eps);
    }
    comb.copy_from_slice(&p);
}

fn normalise_rows(p: &mut [f32; 16], eps: f32) {
    for a in 0..N_HC {
        let s = p[4 * a] + p[4 * a + 1] + p[4 * a + 2] + p[4 * a + 3] + eps;
        for b in 0..N_HC {
            p[4 * a + b] /= s;
        }
    }
}

fn normalise_columns(p: &mut [f32; 16], eps: f32) {
    for b in 0..N_HC {
        let s = p[b] + p[4 + b] + p[8 + b] + p[12 + b] + eps;
        for a in 0..N_HC {
            p[4 * a + b] /= s;
        }
    }
}

/// `x[d] = Σ_s w[s]·hc[s][d]` over the 4 streams in order (§5.1 last line, §12).
pub fn hc_weighted_sum(hc: &[f32], w: &[f32], x: &mut [f32]) {
    let n = x.len();
    debug_assert!(hc.len() == N_HC * n && w.len() >= N_HC);
    for (d, o) in x.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for s in 0..N_HC {
            acc += w[s] * hc[s * n + d];
        }
        *o = acc;
    }
}

/// HC-post (§5.3): `out[j][d] = post[j]·y[d] + Σ_a comb[j + 4a]·res[a][d]`, `a` in order.
pub fn hc_post(y: &[f32], res: &[f32], post: &[f32], comb: &[f32], out: &mut [f32]) {
    let n = y.len();
    debug_assert!(res.len() == N_HC * n && out.len() == N_HC * n);
    debug_assert!(post.len() >= 4 && comb.len() >= 16);
    for (j, oj) in out.chunks_exact_mut(n).enumerate() {
        for (d, o) in oj.iter_mut().enumerate() {
            let mut acc = y[d] * post[j];
            for a in 0..N_HC {
                acc += comb[j + 4 * a] * res[a * n + d];
            }
            *o = acc;
        }
    }
}

/// Output-head stream weights (§12): `w[i] = σ(pre[i]·scale + base[i]) + eps`.
pub fn hc_head_weights(pre: &[f32], scale: f32, base: &[f32], eps: f32, w: &mut [f32]) {
    debug_assert!(pre.len() == w.len() && base.len() >= w.len());
    for i in 0..w.len() {
        w[i] = sigmoid(pre[i] * scale + base[i]) + eps;
    }
}

/// Initial HC state (§4): four identical copies of the embedding `x`.
pub fn hc_expand(x: &[f32], hc: &mut [f32]) {
    debug_assert_eq!(hc.len(), N_HC * x.len());
    for s in hc.chunks_exact_mut(x.len()) {
        s.copy_from_slice(x);
    }
}

/// Embedding lookup (§4): widens row `token` of the F16 table `[n_embd, V]` into `out`.
///
/// `token` must be below `V` (checked where ids enter the runtime); an id out of range
/// panics here.
pub fn embed_f16(table: &[u8], n_embd: usize, token: u32, out: &mut [f32]) {
    debug_assert_eq!(out.len(), n_embd);
    let row = &table[token as usize * n_embd * 2..(token as usize + 1) * n_embd * 2];
    f16_row_to_f32(row, out);
}

#[cfg(test)]
// The self-check values are quoted as MODEL.md prints them.
#[allow(clippy::excessive_precision, clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::cpu::testutil::{f16_bytes, f16_decode, Rng};

    fn sig(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    /// Naive f64 Sinkhorn written from §5.2.
    fn split_ref(mix: &[f32], scale: &[f32], base: &[f32], iters: usize, eps: f64) -> Vec<f64> {
        let mut out = Vec::new();
        for i in 0..4 {
            out.push(sig(mix[i] as f64 * scale[0] as f64 + base[i] as f64) + eps);
        }
        for i in 0..4 {
            out.push(2.0 * sig(mix[4 + i] as f64 * scale[1] as f64 + base[4 + i] as f64));
        }
        let mut p = [[0.0f64; 4]; 4];
        for a in 0..4 {
            let m: Vec<f64> = (0..4)
                .map(|b| mix[8 + 4 * a + b] as f64 * scale[2] as f64 + base[8 + 4 * a + b] as f64)
                .collect();
            let z: f64 = m.iter().map(|v| v.exp()).sum();
            for b in 0..4 {
                p[a][b] = m[b].exp() / z + eps;
            }
        }
        let cols = |p: &mut [[f64; 4]; 4]| {
            for b in 0..4 {
                let s: f64 = (0..4).map(|a| p[a][b]).sum::<f64>() + eps;
                (0..4).for_each(|a| p[a][b] /= s);
            }
        };
        cols(&mut p);
        for _ in 1..iters {
            for row in p.iter_mut() {
                let s: f64 = row.iter().sum::<f64>() + eps;
                row.iter_mut().for_each(|v| *v /= s);
            }
            cols(&mut p);
        }
        out.extend(p.iter().flatten());
        out
    }

    fn run_split(mix: &[f32], scale: &[f32], base: &[f32]) -> Vec<f32> {
        let (mut pre, mut post, mut comb) = ([0.0; 4], [0.0; 4], [0.0; 16]);
        hc_split(mix, scale, base, 20, 1e-6, &mut pre, &mut post, &mut comb);
        [&pre[..], &post[..], &comb[..]].concat()
    }

    #[test]
    fn sinkhorn_self_check_vector() {
        // MODEL §5.3 values, produced by ds4's own function. They are printed with 7
        // significant digits, so 1e-6 absolute covers print rounding plus a few f32 ulps.
        let mix: Vec<f32> = (0..24).map(|i| 0.1 * (i % 7) as f32 - 0.3).collect();
        let base: Vec<f32> = (0..24).map(|i| 0.05 * i as f32).collect();
        let got = run_split(&mix, &[1.0, 1.0, 1.0], &base);
        let want = [
            0.4255585, 0.4625712, 0.5000010, 0.5374308, 1.1488850, 1.2212785, 1.2913126, 1.0249947,
            0.1969314, 0.2362465, 0.2834105, 0.2834105, 0.2755617, 0.3305745, 0.1969314, 0.1969313,
        ];
        for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            assert!((g - w).abs() <= 1e-6, "index {i}: {g} vs {w}");
        }
    }

    #[test]
    fn sinkhorn_matches_f64_reference() {
        // 20 rounds of divisions by sums of four O(1) terms: each round adds a few f32
        // ulps of relative error, and the normalisations are contractive, so 2e-6
        // absolute on O(1) outputs is ample (observed ~3e-7).
        let mut rng = Rng(3);
        for _ in 0..50 {
            let mix = rng.vec(24, 2.0);
            let base = rng.vec(24, 1.0);
            let scale = rng.vec(3, 1.5);
            let got = run_split(&mix, &scale, &base);
            let want = split_ref(&mix, &scale, &base, 20, 1e-6);
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() <= 2e-6, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn weighted_sum_post_and_expand() {
        let mut rng = Rng(4);
        let n = 37;
        let hc = rng.vec(4 * n, 2.0);
        let w = rng.vec(4, 1.0);
        let mut x = vec![0.0; n];
        hc_weighted_sum(&hc, &w, &mut x);
        // Four-term f32 sums of O(1) values: error below 4 ulps of the magnitudes.
        for d in 0..n {
            let r: f64 = (0..4).map(|s| w[s] as f64 * hc[s * n + d] as f64).sum();
            assert!((x[d] as f64 - r).abs() <= 1e-6);
        }

        let y = rng.vec(n, 2.0);
        let post = rng.vec(4, 2.0);
        let comb = rng.vec(16, 1.0);
        let mut out = vec![0.0; 4 * n];
        hc_post(&y, &hc, &post, &comb, &mut out);
        for j in 0..4 {
            for d in 0..n {
                let r = post[j] as f64 * y[d] as f64
                    + (0..4)
                        .map(|a| comb[j + 4 * a] as f64 * hc[a * n + d] as f64)
                        .sum::<f64>();
                assert!((out[j * n + d] as f64 - r).abs() <= 2e-6, "{j} {d}");
            }
        }

        let mut e = vec![0.0; 4 * n];
        hc_expand(&y, &mut e);
        assert!(e.chunks_exact(n).all(|s| s == &y[..]));
    }

    #[test]
    fn head_weights_and_embedding() {
        let mut rng = Rng(5);
        let pre = rng.vec(4, 3.0);
        let base = rng.vec(4, 1.0);
        let mut w = [0.0; 4];
        hc_head_weights(&pre, 0.7, &base, 1e-6, &mut w);
        for i in 0..4 {
            let r = sig(pre[i] as f64 * 0.7 + base[i] as f64) + 1e-6;
            assert!((w[i] as f64 - r).abs() <= 3e-7);
        }

        let (n, v) = (11, 5);
        let table = f16_bytes(&rng.vec(n * v, 4.0));
        let mut out = vec![0.0; n];
        embed_f16(&table, n, 3, &mut out);
        let want = f16_decode(&table[3 * n * 2..4 * n * 2]);
        // f16 → f32 widening is exact.
        assert!(out.iter().zip(&want).all(|(a, b)| *a as f64 == *b));
    }
}
