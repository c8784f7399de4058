//! Q8_K: the 256-element activation format the routed experts consume.
//!
//! ds4 picks the *signed* element of largest magnitude (first one on ties) and
//! uses `iscale = -127 / max`, so that element always quantises to −127 and the
//! stored `d = 1 / iscale` has the opposite sign of `max` (`FORMAT.md` §3.7).
//! `bsums` holds the sum of each group of 16 quants for the min terms of Q2_K/Q4_K.

use super::QK_K;

/// One 256-element activation block.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockQ8K {
    /// Scale; negative when the largest-magnitude element is positive.
    pub d: f32,
    /// Quants, `x ≈ d · q`.
    pub qs: [i8; 256],
    /// Sum of the quants of each group of 16.
    pub bsums: [i16; 16],
}

impl Default for BlockQ8K {
    fn default() -> Self {
        BlockQ8K {
            d: 0.0,
            qs: [0; 256],
            bsums: [0; 16],
        }
    }
}

/// Quantises `x` (a multiple of 256 long) into `x.len() / 256` blocks.
///
/// # Panics
/// If `x.len()` is not a multiple of 256 or `out` is too short.
pub fn quantize(x: &[f32], out: &mut [BlockQ8K]) {
    assert_eq!(
        x.len() % QK_K,
        0,
        "q8_k::quantize: length {} not a multiple of 256",
        x.len()
    );
    assert!(
        out.len() >= x.len() / QK_K,
        "q8_k::quantize: output too short"
    );

    for (src, blk) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let mut max = 0.0f32;
        let mut amax = 0.0f32;
        for &v in src {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }

        if amax == 0.0 {
            *blk = BlockQ8K::default();
            continue;
        }

        let iscale = -127.0 / max;
        for (q, &v) in blk.qs.iter_mut().zip(src) {
            *q = (iscale * v).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
        for (g, s) in blk.bsums.iter_mut().enumerate() {
            *s = blk.qs[16 * g..16 * (g + 1)].iter().map(|&q| q as i16).sum();
        }
        blk.d = 1.0 / iscale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_scale_example_from_format_md() {
        let x: Vec<f32> = (0..256).map(|i| (i as f32 - 100.0) / 10.0).collect();
        let mut b = [BlockQ8K::default()];
        quantize(&x, &mut b);
        assert_eq!(b[0].d, -0.122047246);
        assert_eq!((b[0].qs[0], b[0].qs[100], b[0].qs[255]), (82, 0, -127));
        assert_eq!(b[0].bsums[0], 1212);
    }

    #[test]
    fn first_of_tied_maxima_wins_and_zero_block_is_zero() {
        let mut x = vec![0.0f32; 512];
        x[3] = -2.0;
        x[9] = 2.0;
        let mut b = [BlockQ8K::default(); 2];
        quantize(&x, &mut b);
        // max = -2 (the first of the two), so iscale = 63.5, d > 0 and x[3] maps to -127.
        assert!(b[0].d > 0.0);
        assert_eq!((b[0].qs[3], b[0].qs[9]), (-127, 127));
        assert_eq!(b[1], BlockQ8K::default());
    }
}
