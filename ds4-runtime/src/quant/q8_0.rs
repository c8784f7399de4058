//! Q8_0: 32 int8 quants with one f16 scale (34 bytes per block), and ds4's Q8_0
//! activation format (same quants, f32 scale).
//!
//! Dense projections quantise their f32 input with [`quantize_act`] before every
//! Q8_0 matvec; [`vec_dot`] then sums `(f16(d_w) · d_x) · Σ q_w·q_x` block by
//! block in f32, the inner sum being an exact integer (`FORMAT.md` §3.8).

use super::f16_to_f32;

/// Elements per Q8_0 block.
pub const QK8_0: usize = 32;
/// Bytes per Q8_0 weight block.
pub const BLOCK_BYTES: usize = 34;

/// One 32-element activation block: f32 scale (not rounded to f16) and int8 quants.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockQ8_0Act {
    /// Scale: `amax / 127`.
    pub d: f32,
    /// Quants: `clamp(lrintf(x / d), -128, 127)`.
    pub qs: [i8; 32],
}

impl Default for BlockQ8_0Act {
    fn default() -> Self {
        BlockQ8_0Act {
            d: 0.0,
            qs: [0; 32],
        }
    }
}

/// Quantises `x` into `ceil(x.len() / 32)` blocks; a trailing partial block is zero padded.
///
/// # Panics
/// If `out` holds fewer blocks than that.
pub fn quantize_act(x: &[f32], out: &mut [BlockQ8_0Act]) {
    let nb = x.len().div_ceil(QK8_0);
    assert!(
        out.len() >= nb,
        "q8_0::quantize_act: {} blocks for {} values",
        out.len(),
        x.len()
    );
    #[cfg(target_arch = "x86_64")]
    if super::simd::active() != super::simd::Isa::Scalar {
        // SAFETY: every non-scalar path includes AVX2 and FMA.
        return unsafe { quantize_act_avx2(x, out, nb) };
    }
    quantize_act_body(x, out, nb)
}

/// [`quantize_act_body`] compiled for AVX2, where rounding to even is one `vroundps`
/// instead of a call to `rintf` (the same IEEE operation, so the same bits).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_act_avx2(x: &[f32], out: &mut [BlockQ8_0Act], nb: usize) {
    quantize_act_body(x, out, nb)
}

#[inline(always)]
fn quantize_act_body(x: &[f32], out: &mut [BlockQ8_0Act], nb: usize) {
    for (b, blk) in out.iter_mut().take(nb).enumerate() {
        let src = &x[b * QK8_0..((b + 1) * QK8_0).min(x.len())];
        let amax = src.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };

        blk.d = d;
        blk.qs = [0; 32];
        for (q, v) in blk.qs.iter_mut().zip(src) {
            *q = (v * id).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
    }
}

/// Dot product of one Q8_0 weight row (`wrow`, `x.len()` blocks of 34 bytes) with a
/// quantised activation.
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
pub fn vec_dot_ref(wrow: &[u8], x: &[BlockQ8_0Act]) -> f32 {
    assert!(
        wrow.len() >= x.len() * BLOCK_BYTES,
        "q8_0::vec_dot: row shorter than activation"
    );

    let mut acc = 0.0f32;
    for (blk, xb) in wrow.chunks_exact(BLOCK_BYTES).zip(x) {
        let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let isum: i32 = blk[2..]
            .iter()
            .zip(&xb.qs)
            .map(|(&w, &q)| (w as i8 as i32) * (q as i32))
            .sum();
        acc += (dw * xb.d) * isum as f32;
    }
    acc
}

/// Q8_0 row · Q8_0 activation on the fastest path of this machine ([`super::simd::active`]);
/// the same bits as [`vec_dot_ref`].
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
#[inline]
pub fn vec_dot(wrow: &[u8], x: &[BlockQ8_0Act]) -> f32 {
    dot_on(super::simd::active(), wrow, x)
}

/// Four Q8_0 rows against one activation (each as [`vec_dot`] would give): on AVX-512
/// VNNI the rows' accumulation chains run interleaved.
///
/// # Panics
/// If a row is shorter than `x.len()` blocks.
pub fn vec_dot4(w: [&[u8]; 4], x: &[BlockQ8_0Act]) -> [f32; 4] {
    assert!(
        w.iter().all(|w| w.len() >= x.len() * BLOCK_BYTES),
        "q8_0::vec_dot4: row shorter than activation"
    );
    #[cfg(target_arch = "x86_64")]
    if super::simd::active() == super::simd::Isa::Avx512Vnni {
        // SAFETY: the active path is supported; every row holds the blocks (checked).
        return unsafe { super::simd::x86::q8_0_dot4_vnni(w, x) };
    }
    w.map(|w| vec_dot(w, x))
}

/// Q8_0 row · Q8_0 activation on path `isa`.
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks or the machine lacks `isa`.
pub fn vec_dot_isa(isa: super::simd::Isa, wrow: &[u8], x: &[BlockQ8_0Act]) -> f32 {
    assert!(isa.supported(), "vec_dot: this machine lacks {isa:?}");
    dot_on(isa, wrow, x)
}

/// The kernel of path `isa`, which the caller has checked is supported.
#[inline]
fn dot_on(isa: super::simd::Isa, wrow: &[u8], x: &[BlockQ8_0Act]) -> f32 {
    use super::simd::Isa;
    assert!(
        wrow.len() >= x.len() * BLOCK_BYTES,
        "vec_dot: row shorter than activation"
    );
    match isa {
        // SAFETY: the ISA is supported (checked by the caller) and the row is long enough.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { super::simd::x86::q8_0_dot_avx2(wrow, x) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { super::simd::x86::q8_0_dot_vnni(wrow, x) },
        _ => vec_dot_ref(wrow, x),
    }
}

/// Dequantises a Q8_0 row into `out` (`out.len()` elements, a multiple of 32).
///
/// # Panics
/// If the lengths disagree.
pub fn dequantize_row(wrow: &[u8], out: &mut [f32]) {
    assert_eq!(
        out.len() % QK8_0,
        0,
        "q8_0::dequantize_row: length not a multiple of 32"
    );
    assert!(
        wrow.len() >= out.len() / QK8_0 * BLOCK_BYTES,
        "q8_0::dequantize_row: short row"
    );

    for (blk, dst) in wrow
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK8_0))
    {
        let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        for (o, &q) in dst.iter_mut().zip(&blk[2..]) {
            *o = d * (q as i8) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::test_util::{random_f16_scale, Rng};

    #[test]
    #[allow(clippy::excessive_precision)] // the documented digits
    fn activation_examples_from_the_docs() {
        // FORMAT.md §3.7: x[i] = i - 12.7.
        let x: Vec<f32> = (0..32).map(|i| i as f32 - 12.7).collect();
        let mut b = [BlockQ8_0Act::default()];
        quantize_act(&x, &mut b);
        assert_eq!(b[0].d, 0.144094482);
        assert_eq!((b[0].qs[0], b[0].qs[31]), (-88, 127));

        // MODEL.md §17: a[i] = 0.013 (i - 20).
        let a: Vec<f32> = (0..32).map(|i| 0.013 * (i as f32 - 20.0)).collect();
        quantize_act(&a, &mut b);
        assert_eq!(b[0].d, 0.00204724399);
        assert_eq!(&b[0].qs[..4], &[-127, -121, -114, -108]);
    }

    #[test]
    fn ties_round_to_even_and_zero_blocks_stay_zero() {
        // amax 127 gives d = 1, so x = 2.5 is an exact tie.
        let mut x = vec![0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        let mut b = [BlockQ8_0Act::default(); 2];
        quantize_act(&[x.as_slice(), &[0.0; 32]].concat(), &mut b);
        assert_eq!((b[0].qs[1], b[0].qs[2]), (2, -4));
        assert_eq!(b[1], BlockQ8_0Act::default());
    }

    #[test]
    fn vec_dot_matches_f64_reference() {
        let mut rng = Rng::new(7);
        for n in [32usize, 64, 4096] {
            let mut row = Vec::new();
            for _ in 0..n / 32 {
                row.extend_from_slice(&random_f16_scale(&mut rng).to_le_bytes());
                row.extend((0..32).map(|_| rng.next() as u8));
            }
            let x: Vec<f32> = (0..n).map(|_| rng.uniform() * 4.0 - 2.0).collect();
            let mut xq = vec![BlockQ8_0Act::default(); n / 32];
            quantize_act(&x, &mut xq);

            let mut w = vec![0.0f32; n];
            dequantize_row(&row, &mut w);
            let reference: f64 = (0..n)
                .map(|i| w[i] as f64 * (xq[i / 32].d as f64 * xq[i / 32].qs[i % 32] as f64))
                .sum();
            let got = vec_dot_ref(&row, &xq) as f64;
            let scale: f64 = (0..n).map(|i| (w[i] as f64 * x[i] as f64).abs()).sum();
            assert!(
                (got - reference).abs() <= 1e-5 * scale,
                "n={n}: {got} vs {reference}"
            );
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod clone_tests {
    use super::*;
    use crate::quant::test_util::Rng;

    /// The AVX2 clone against the plain body: random values with ties (`k + 0.5`
    /// after scaling), zeros, signed zeros and outliers, odd lengths.
    #[test]
    fn avx2_quantiser_gives_the_same_blocks() {
        if !crate::quant::simd::Isa::Avx2.supported() {
            return;
        }
        let mut rng = Rng::new(21);
        for n in [1usize, 31, 32, 33, 100, 4096] {
            for rep in 0..6 {
                let x: Vec<f32> = (0..n)
                    .map(|i| match (rng.next() % 7, rep) {
                        (_, 0) => 0.0,
                        (0, _) => -0.0,
                        (1, _) => (rng.next() % 255) as f32 - 127.0 + 0.5,
                        (2, _) => (rng.uniform() - 0.5) * 1e4,
                        _ => (rng.uniform() - 0.5) * (1 + i % 3) as f32,
                    })
                    .collect();
                let nb = n.div_ceil(QK8_0);
                let (mut want, mut got) = (vec![BlockQ8_0Act::default(); nb], vec![]);
                got.resize(nb, BlockQ8_0Act::default());
                quantize_act_body(&x, &mut want, nb);
                // SAFETY: AVX2 is supported (checked above).
                unsafe { quantize_act_avx2(&x, &mut got, nb) };
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(
                        (g.d.to_bits(), g.qs),
                        (w.d.to_bits(), w.qs),
                        "n {n} rep {rep}"
                    );
                }
            }
        }
    }
}
