//! RMS norms (MODEL §3.2): the only kernels that accumulate in double.
//!
//! `r = 1 / sqrtf((float)(Σx²/n) + eps)` with the sum of squares in f64, then
//! `y = (x·r)·w`. The per-head variant normalises each head on its own, without a
//! weight. Output slices may not alias inputs (Rust forbids it); callers that want an
//! in-place norm copy first.

/// The f32 reciprocal RMS of `x`, from a double sum of squares.
#[inline]
fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let ss: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    1.0 / (((ss / x.len() as f64) as f32) + eps).sqrt()
}

/// `y = x / rms(x)`, no weight (`rms_norm_no_weight`).
pub fn rms_norm_plain(x: &[f32], y: &mut [f32], eps: f32) {
    debug_assert_eq!(x.len(), y.len());
    let r = inv_rms(x, eps);
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v * r;
    }
}

/// `y = (x / rms(x)) · w` (`rms_norm_weight`).
pub fn rms_norm(x: &[f32], w: &[f32], y: &mut [f32], eps: f32) {
    debug_assert!(x.len() == y.len() && x.len() == w.len());
    let r = inv_rms(x, eps);
    for ((o, &v), &g) in y.iter_mut().zip(x).zip(w) {
        *o = (v * r) * g;
    }
}

/// [`rms_norm_plain`] applied to each `head_dim`-wide head separately.
pub fn head_rms_norm(x: &[f32], y: &mut [f32], head_dim: usize, eps: f32) {
    debug_assert!(x.len() == y.len() && x.len().is_multiple_of(head_dim));
    for (xh, yh) in x.chunks_exact(head_dim).zip(y.chunks_exact_mut(head_dim)) {
        rms_norm_plain(xh, yh, eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testutil::Rng;

    fn reference(x: &[f32], w: Option<&[f32]>, eps: f64) -> Vec<f64> {
        let ss: f64 = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64;
        let r = 1.0 / (ss + eps).sqrt();
        x.iter()
            .enumerate()
            .map(|(i, &v)| v as f64 * r * w.map_or(1.0, |w| w[i] as f64))
            .collect()
    }

    // Tolerance: the kernel differs from the f64 reference only by f32 roundings of
    // the mean, the sqrt, the reciprocal and two products: a few ulps, so 1e-6
    // relative to max|y| is a safe bound (|y| is O(1) for these inputs).
    fn check(got: &[f32], want: &[f64]) {
        let scale = want.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() <= 1e-6 * scale, "{g} vs {w}");
        }
    }

    #[test]
    fn rms_norm_matches_reference() {
        let mut rng = Rng(1);
        for &n in &[1usize, 7, 129, 1000] {
            let x = rng.vec(n, 3.0);
            let w = rng.vec(n, 2.0);
            let mut y = vec![0.0; n];
            rms_norm(&x, &w, &mut y, 1e-6);
            check(&y, &reference(&x, Some(&w), 1e-6));
            rms_norm_plain(&x, &mut y, 1e-6);
            check(&y, &reference(&x, None, 1e-6));
        }
    }

    #[test]
    fn head_rms_norm_is_per_head() {
        let mut rng = Rng(2);
        let (heads, hd) = (5, 24);
        let mut x = rng.vec(heads * hd, 1.0);
        // Very different magnitudes per head: a whole-vector norm would fail this.
        for (h, c) in x.chunks_exact_mut(hd).enumerate() {
            c.iter_mut().for_each(|v| *v *= 10f32.powi(h as i32 - 2));
        }
        let mut y = vec![0.0; heads * hd];
        head_rms_norm(&x, &mut y, hd, 1e-6);
        for h in 0..heads {
            check(
                &y[h * hd..(h + 1) * hd],
                &reference(&x[h * hd..(h + 1) * hd], None, 1e-6),
            );
        }
    }

    #[test]
    fn zero_input_gives_zero() {
        let x = vec![0.0f32; 16];
        let mut y = vec![1.0f32; 16];
        rms_norm_plain(&x, &mut y, 1e-6);
        assert!(y.iter().all(|&v| v == 0.0));
    }
}
