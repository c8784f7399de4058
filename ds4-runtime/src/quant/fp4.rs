//! FP4 E2M1 activation simulation (`FORMAT.md` §4.3), used by the indexer QAT.
//!
//! Blocks of 32 are scaled by a power of two so their largest magnitude fits 6,
//! snapped to the E2M1 magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6} (ties to the
//! even code) and scaled back; the result stays f32.

/// E2M1 magnitudes by code 0..7.
pub const E2M1_VALUES: [f32; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

/// Smallest block amax: `6·2^-126`, ds4's literal `7.052966104933725e-38`.
#[allow(clippy::excessive_precision)]
const AMAX_FLOOR: f32 = 7.052966104933725e-38;

/// Rounds `v` to the nearest E2M1 value (saturating at ±6, ties to the even code).
pub fn e2m1_round(v: f32) -> f32 {
    let sign = if v < 0.0 { -1.0 } else { 1.0 };
    let a = v.abs().min(6.0);

    let mut best = 0usize;
    let mut best_err = (a - E2M1_VALUES[0]).abs();
    for (code, &val) in E2M1_VALUES.iter().enumerate().skip(1) {
        let err = (a - val).abs();
        if err < best_err || (err == best_err && code % 2 == 0 && best % 2 == 1) {
            best = code;
            best_err = err;
        }
    }
    sign * E2M1_VALUES[best]
}

/// Simulates FP4 storage of `x` in place, block by block.
///
/// # Panics
/// If `x.len()` is not a multiple of 32.
pub fn quantize_row(x: &mut [f32]) {
    assert_eq!(
        x.len() % 32,
        0,
        "fp4::quantize_row: length {} not a multiple of 32",
        x.len()
    );
    for blk in x.chunks_exact_mut(32) {
        let amax = blk
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(AMAX_FLOOR);
        let scale = 2f32.powi((amax / 6.0).log2().ceil() as i32);
        for v in blk.iter_mut() {
            *v = e2m1_round((*v / scale).clamp(-6.0, 6.0)) * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_examples_from_the_docs() {
        let cases = [
            (0.25, 0.0),
            (0.75, 1.0),
            (1.25, 1.0),
            (1.75, 2.0),
            (2.5, 2.0),
            (3.5, 4.0),
            (5.0, 4.0),
            (7.0, 6.0),
            (-0.8, -1.0),
        ];
        for (x, want) in cases {
            assert_eq!(e2m1_round(x), want, "e2m1_round({x})");
        }
    }

    #[test]
    fn all_zero_block_stays_zero() {
        let mut x = [0.0f32; 32];
        quantize_row(&mut x);
        assert_eq!(x, [0.0; 32]);
    }
}
