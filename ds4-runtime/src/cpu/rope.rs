//! Rotary position embedding on the tail of each head (MODEL §7).
//!
//! RoPE rotates adjacent pairs `(n0+2p, n0+2p+1)` in the last `n_rot` dims of a head,
//! `n0 = head_dim - n_rot`. The angles are computed once per session into a table with
//! one row per position: `n_rot/2` (cos, sin) pairs, by ds4's iterative f32 procedure
//! (a running product of the frequency ratio, not a `powf` per pair), with YaRN
//! interpolation on compressed layers and no magnitude scaling (mscale = 1).

use rayon::prelude::*;

/// The per-layer-kind RoPE settings (§7 table).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeParams {
    /// Frequency base (10000 dense, 160000 compressed).
    pub base: f32,
    /// Interpolation factor (1 dense, 1/16 compressed).
    pub freq_scale: f32,
    /// YaRN extrapolation mix (0 dense, 1 compressed).
    pub ext_factor: f32,
    /// YaRN correction range, in pair indices ([15, 25] for DS4).
    pub corr_lo: f32,
    /// Upper end of the correction range.
    pub corr_hi: f32,
    /// Rotated dims per head (64).
    pub n_rot: usize,
}

impl RopeParams {
    /// Dense layers (0, 1): plain RoPE, base 10000.
    pub fn dense() -> Self {
        RopeParams {
            base: 10000.0,
            freq_scale: 1.0,
            ext_factor: 0.0,
            corr_lo: 0.0,
            corr_hi: 0.0,
            n_rot: 64,
        }
    }

    /// Compressed layers (≥ 2): YaRN, base 160000, factor 16, corr dims [15, 25].
    pub fn compressed() -> Self {
        RopeParams {
            base: 160000.0,
            freq_scale: 1.0 / 16.0,
            ext_factor: 1.0,
            corr_lo: 15.0,
            corr_hi: 25.0,
            n_rot: 64,
        }
    }
}

/// Writes the `n_rot/2` (cos, sin) pairs for position `pos` into `out` (len `n_rot`).
pub fn rope_table_row(p: &RopeParams, pos: usize, out: &mut [f32]) {
    debug_assert_eq!(out.len(), p.n_rot);
    let theta_scale = p.base.powf(-2.0 / p.n_rot as f32);
    let mut t_ext = pos as f32;
    for (pair, cs) in out.chunks_exact_mut(2).enumerate() {
        let t_int = p.freq_scale * t_ext;
        let theta = if p.ext_factor != 0.0 {
            let y = (pair as f32 - p.corr_lo) / (p.corr_hi - p.corr_lo).max(0.001);
            let mix = (1.0 - y.clamp(0.0, 1.0)) * p.ext_factor;
            t_int * (1.0 - mix) + t_ext * mix
        } else {
            t_int
        };
        cs[0] = theta.cos();
        cs[1] = theta.sin();
        t_ext *= theta_scale;
    }
}

/// Fills `out` with the rows of positions `pos0, pos0+1, …` (`out.len() / n_rot` rows).
pub fn rope_table_fill(p: &RopeParams, pos0: usize, out: &mut [f32]) {
    debug_assert_eq!(out.len() % p.n_rot, 0);
    out.par_chunks_mut(p.n_rot)
        .enumerate()
        .for_each(|(i, row)| rope_table_row(p, pos0 + i, row));
}

/// Rotates the tail of each of `heads` heads of `x` by the table `row` of one position.
///
/// `inverse` negates the sines (used on the attention output, §6 A10).
pub fn rope_apply(
    x: &mut [f32],
    heads: usize,
    head_dim: usize,
    n_rot: usize,
    row: &[f32],
    inverse: bool,
) {
    debug_assert!(x.len() == heads * head_dim && row.len() >= n_rot && n_rot <= head_dim);
    let n0 = head_dim - n_rot;
    for h in x.chunks_exact_mut(head_dim) {
        for (pair, cs) in h[n0..].chunks_exact_mut(2).zip(row.chunks_exact(2)) {
            let (c, s) = (cs[0], if inverse { -cs[1] } else { cs[1] });
            let (x0, x1) = (pair[0], pair[1]);
            pair[0] = x0 * c - x1 * s;
            pair[1] = x0 * s + x1 * c;
        }
    }
}

/// [`rope_apply`] on `t` token rows of `heads × head_dim`, token `i` at position
/// `pos0 + i`, reading the session table (row `p` at `p·n_rot`).
#[allow(clippy::too_many_arguments)]
pub fn rope_apply_rows(
    x: &mut [f32],
    t: usize,
    heads: usize,
    head_dim: usize,
    n_rot: usize,
    table: &[f32],
    pos0: usize,
    inverse: bool,
) {
    debug_assert!(x.len() == t * heads * head_dim && table.len() >= (pos0 + t) * n_rot);
    x.par_chunks_mut(heads * head_dim)
        .enumerate()
        .for_each(|(i, xt)| {
            let p = pos0 + i;
            rope_apply(
                xt,
                heads,
                head_dim,
                n_rot,
                &table[p * n_rot..(p + 1) * n_rot],
                inverse,
            );
        });
}

#[cfg(test)]
// The self-check values are quoted as MODEL.md prints them.
#[allow(clippy::excessive_precision, clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::cpu::testutil::Rng;

    fn row(p: &RopeParams, pos: usize) -> Vec<f32> {
        let mut r = vec![0.0; p.n_rot];
        rope_table_row(p, pos, &mut r);
        r
    }

    #[test]
    fn self_check_vectors_pos_1000() {
        // MODEL §7, ds4's output for a unit (1, 0) pair at pos 1000, printed to 7
        // digits. At |θ| up to 1000 rad an f32 angle carries ~3e-5 rad of rounding, so
        // only the procedure (iterative product, same f32 ops) reproduces these; a
        // different order would be off by ~1e-4. 2e-7 covers the print rounding plus
        // one ulp of the trig functions.
        let check = |p: &RopeParams, pair: usize, want: (f32, f32)| {
            let r = row(p, 1000);
            let got = (r[2 * pair], r[2 * pair + 1]);
            assert!(
                (got.0 - want.0).abs() <= 2e-7 && (got.1 - want.1).abs() <= 2e-7,
                "pair {pair}: {got:?} vs {want:?}"
            );
        };
        let c = RopeParams::compressed();
        check(&c, 0, (0.5623791, 0.8268796));
        check(&c, 15, (-0.8804680, -0.4741055));
        check(&c, 20, (0.9562252, 0.2926318));
        check(&c, 31, (0.9999998, 0.0005681));
        let d = RopeParams::dense();
        check(&d, 0, (0.5623791, 0.8268796));
        check(&d, 1, (-0.5845929, 0.8113268));
        check(&d, 31, (0.9911218, 0.1329572));
    }

    #[test]
    fn table_matches_f64_angles_at_small_positions() {
        // Against the closed-form angle in f64: at pos < 64 the f32 running product
        // drifts by at most ~32 ulps relative (≈4e-6·θ, θ < 64), so 5e-4 absolute on
        // cos/sin holds with margin; it catches any wrong frequency or ramp.
        for p in [RopeParams::dense(), RopeParams::compressed()] {
            for pos in [0usize, 1, 7, 63] {
                let r = row(&p, pos);
                for i in 0..32 {
                    let f = (p.base as f64).powf(-2.0 * i as f64 / 64.0);
                    let ext = pos as f64 * f;
                    let theta = if p.ext_factor != 0.0 {
                        let g = 1.0 - ((i as f64 - 15.0) / 10.0).clamp(0.0, 1.0);
                        ext / 16.0 * (1.0 - g) + ext * g
                    } else {
                        ext
                    };
                    assert!((r[2 * i] as f64 - theta.cos()).abs() < 5e-4);
                    assert!((r[2 * i + 1] as f64 - theta.sin()).abs() < 5e-4);
                }
            }
        }
        // pos 0 is the identity.
        assert!(row(&RopeParams::compressed(), 0)
            .chunks(2)
            .all(|c| c == [1.0, 0.0]));
    }

    #[test]
    fn apply_rotates_tail_and_inverse_undoes_it() {
        let mut rng = Rng(6);
        let (heads, hd, n_rot) = (3, 20, 8);
        let p = RopeParams {
            n_rot,
            ..RopeParams::compressed()
        };
        let r = row(&p, 12345);
        let x = rng.vec(heads * hd, 1.0);
        let mut y = x.clone();
        rope_apply(&mut y, heads, hd, n_rot, &r, false);
        for h in 0..heads {
            let b = h * hd;
            assert_eq!(
                &y[b..b + hd - n_rot],
                &x[b..b + hd - n_rot],
                "nope part untouched"
            );
            for k in 0..n_rot / 2 {
                let (c, s) = (r[2 * k] as f64, r[2 * k + 1] as f64);
                let (x0, x1) = (
                    x[b + hd - n_rot + 2 * k] as f64,
                    x[b + hd - n_rot + 2 * k + 1] as f64,
                );
                // Two products and a sum in f32 on O(1) values: 2e-7 absolute.
                assert!((y[b + hd - n_rot + 2 * k] as f64 - (x0 * c - x1 * s)).abs() < 2e-7);
                assert!((y[b + hd - n_rot + 2 * k + 1] as f64 - (x0 * s + x1 * c)).abs() < 2e-7);
            }
        }
        rope_apply(&mut y, heads, hd, n_rot, &r, true);
        // Rotation then its inverse: |c²+s² - 1| ≤ 1e-7 plus rounding of 4 products.
        assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn rows_use_their_own_positions() {
        let p = RopeParams {
            n_rot: 8,
            ..RopeParams::dense()
        };
        let mut table = vec![0.0; 8 * 20];
        rope_table_fill(&p, 0, &mut table);
        let x = Rng(7).vec(3 * 2 * 12, 1.0);
        let mut y = x.clone();
        rope_apply_rows(&mut y, 3, 2, 12, 8, &table, 10, false);
        for i in 0..3 {
            let mut want = x[i * 24..(i + 1) * 24].to_vec();
            rope_apply(&mut want, 2, 12, 8, &row(&p, 10 + i), false);
            assert_eq!(&y[i * 24..(i + 1) * 24], &want[..]);
        }
    }

    #[test]
    fn fill_equals_rows() {
        let p = RopeParams::compressed();
        let mut t = vec![0.0; 64 * 5];
        rope_table_fill(&p, 300, &mut t);
        for i in 0..5 {
            assert_eq!(&t[i * 64..(i + 1) * 64], &row(&p, 300 + i)[..]);
        }
    }
}
