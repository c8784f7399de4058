//! FP8 E4M3FN simulation for KV rows (`FORMAT.md` §4.2).
//!
//! The value stays f32: each block of 64 is scaled by a power of two so its
//! largest magnitude fits 448, snapped to the E4M3FN grid (ties to the even
//! code) and scaled back. The caller passes only the non-RoPE part of a head
//! (`head[..head_dim - n_rot]`, 448 values = 7 blocks).

/// Largest finite E4M3FN value (code 126).
pub const E4M3_MAX: f32 = 448.0;

/// Value of E4M3FN code `i` (0..=126).
pub fn e4m3_value(i: u8) -> f32 {
    let exp = ((i >> 3) & 15) as i32;
    let mant = (i & 7) as f32;
    if exp == 0 {
        mant * 2f32.powi(-9)
    } else {
        (1.0 + mant / 8.0) * 2f32.powi(exp - 7)
    }
}

/// Rounds `v` to the nearest E4M3FN value (saturating at ±448, ties to even code).
pub fn e4m3_round(v: f32) -> f32 {
    let sign = if v < 0.0 { -1.0 } else { 1.0 };
    let a = v.abs().min(E4M3_MAX);

    // Largest code lo with value(lo) <= a (values are increasing in the code).
    let (mut lo, mut hi) = (0u8, 126u8);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if e4m3_value(mid) <= a {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }

    let mut best = lo;
    if lo < 126 {
        let down = a - e4m3_value(lo);
        let up = e4m3_value(lo + 1) - a;
        if up < down || (up == down && (lo + 1) % 2 == 0 && lo % 2 == 1) {
            best = lo + 1;
        }
    }
    sign * e4m3_value(best)
}

/// Simulates FP8 storage of `x` in place, in blocks of 64 (a last shorter block
/// is treated the same way).
pub fn kv_quantize_row(x: &mut [f32]) {
    for blk in x.chunks_mut(64) {
        let amax = blk.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-4);
        let scale = 2f32.powi((amax / E4M3_MAX).log2().ceil() as i32);
        for v in blk.iter_mut() {
            *v = e4m3_round((*v / scale).clamp(-E4M3_MAX, E4M3_MAX)) * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_examples_from_the_docs() {
        let cases = [
            (0.3, 0.3125),
            (1.0625, 1.0),
            (1.1875, 1.25),
            (17.0, 16.0),
            (300.0, 288.0),
            (500.0, 448.0),
            (2f32.powi(-10), 0.0),
            (-2.3, -2.25),
            (0.001, 2f32.powi(-9)),
        ];
        for (x, want) in cases {
            assert_eq!(e4m3_round(x), want, "e4m3_round({x})");
        }
        assert_eq!(e4m3_value(126), 448.0);
    }

    #[test]
    fn kv_row_self_check_from_model_md() {
        let mut x: Vec<f32> = (0..512)
            .map(|i| (0.37 * i as f32).sin() * (1.0 + 0.01 * i as f32))
            .collect();
        let tail = x[448];
        kv_quantize_row(&mut x[..448]);
        assert_eq!(
            &x[..8],
            &[0.0, 0.375, 0.6875, 0.9375, 1.0, 1.0, 0.875, 0.5625]
        );
        assert_eq!(x[447], 5.0);
        assert_eq!(x[448], tail);
        assert!((tail - 3.7128716).abs() < 1e-6);
    }
}
