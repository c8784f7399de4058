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
    #[cfg(target_arch = "x86_64")]
    if super::simd::active() != super::simd::Isa::Scalar {
        // SAFETY: every non-scalar path includes AVX2 and FMA.
        return unsafe { quantize_avx2(x, out) };
    }
    quantize_body(x, out)
}

/// [`quantize_body`] compiled for AVX2, where rounding to even is one `vroundps`
/// instead of a call to `rintf` (the same IEEE operation, so the same bits).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_avx2(x: &[f32], out: &mut [BlockQ8K]) {
    quantize_body(x, out)
}

#[inline(always)]
fn quantize_body(x: &[f32], out: &mut [BlockQ8K]) {
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

#[cfg(all(test, target_arch = "x86_64"))]
mod clone_tests {
    use super::*;
    use crate::quant::test_util::Rng;

    /// The AVX2 clone against the plain body: random blocks with ties, zeros, signed
    /// zeros, tied maxima and outliers.
    #[test]
    fn avx2_quantiser_gives_the_same_blocks() {
        if !crate::quant::simd::Isa::Avx2.supported() {
            return;
        }
        let mut rng = Rng::new(22);
        for nb in [1usize, 3, 16] {
            for rep in 0..6 {
                let x: Vec<f32> = (0..nb * QK_K)
                    .map(|i| match (rng.next() % 7, rep) {
                        (_, 0) => 0.0,
                        (0, _) => -0.0,
                        (1, _) => (rng.next() % 255) as f32 - 127.0 + 0.5,
                        (2, _) if rep == 1 => 127.0,
                        (2, _) => (rng.uniform() - 0.5) * 1e4,
                        _ => (rng.uniform() - 0.5) * (1 + i % 3) as f32,
                    })
                    .collect();
                let (mut want, mut got) = (vec![BlockQ8K::default(); nb], vec![]);
                got.resize(nb, BlockQ8K::default());
                quantize_body(&x, &mut want);
                // SAFETY: AVX2 is supported (checked above).
                unsafe { quantize_avx2(&x, &mut got) };
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g.d.to_bits(), w.d.to_bits(), "nb {nb} rep {rep}");
                    assert_eq!((g.qs, g.bsums), (w.qs, w.bsums), "nb {nb} rep {rep}");
                }
            }
        }
    }
}
