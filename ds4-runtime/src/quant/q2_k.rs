//! Q2_K: 256 weights in 84 bytes: `scales[16]` (low nibble scale, high nibble min
//! per 16 elements), `qs[64]` (2-bit quants), f16 `d`, f16 `dmin`.
//!
//! Element `e`: `h = e/128`, `r = e%128`, `q = (qs[32h + r%32] >> 2(r/32)) & 3`,
//! sub-block `j = e/16`; weight = `f16(d)·(scales[j]&15)·q − f16(dmin)·(scales[j]>>4)`
//! (`FORMAT.md` §3.4). The dot with Q8_K takes the min term from `bsums`.

use super::q8_k::BlockQ8K;
use super::{f16_to_f32, QK_K};

/// Bytes per Q2_K block.
pub const BLOCK_BYTES: usize = 84;

fn quant(blk: &[u8], e: usize) -> i32 {
    let (h, r) = (e / 128, e % 128);
    ((blk[16 + 32 * h + r % 32] >> (2 * (r / 32))) & 3) as i32
}

fn scales(blk: &[u8]) -> (f32, f32) {
    (
        f16_to_f32(u16::from_le_bytes([blk[80], blk[81]])),
        f16_to_f32(u16::from_le_bytes([blk[82], blk[83]])),
    )
}

/// Dot product of a Q2_K row with Q8_K activations
/// (`acc += y.d·f16(d)·isum − y.d·f16(dmin)·summs` per block).
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
pub fn vec_dot_ref(wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    assert!(
        wrow.len() >= x.len() * BLOCK_BYTES,
        "q2_k::vec_dot: row shorter than activation"
    );

    let mut acc = 0.0f32;
    for (blk, y) in wrow.chunks_exact(BLOCK_BYTES).zip(x) {
        let mut isum: i32 = 0;
        let mut summs: i32 = 0;
        for j in 0..16 {
            let sc = blk[j];
            let sub: i32 = (16 * j..16 * j + 16)
                .map(|e| quant(blk, e) * y.qs[e] as i32)
                .sum();
            isum += (sc & 15) as i32 * sub;
            summs += (sc >> 4) as i32 * y.bsums[j] as i32;
        }
        let (d, dmin) = scales(blk);
        let dall = y.d * d;
        let dm = y.d * dmin;
        acc += dall * isum as f32 - dm * summs as f32;
    }
    acc
}

/// Q2_K row · Q8_K activation on the fastest path of this machine ([`super::simd::active`]);
/// the same bits as [`vec_dot_ref`].
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
#[inline]
pub fn vec_dot(wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    dot_on(super::simd::active(), wrow, x)
}

/// One Q2_K row against two activations (each as [`vec_dot`] would give): on
/// AVX-512 VNNI the row is unpacked once for both.
///
/// # Panics
/// If `wrow` is shorter than the activations or they differ in length.
pub fn vec_dot2(wrow: &[u8], x0: &[BlockQ8K], x1: &[BlockQ8K]) -> [f32; 2] {
    assert!(
        x0.len() == x1.len() && wrow.len() >= x0.len() * BLOCK_BYTES,
        "vec_dot2: lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if super::simd::active() == super::simd::Isa::Avx512Vnni {
        // SAFETY: the active path is supported; the row holds every block (checked).
        return unsafe { super::simd::x86::q2_k_dot_vnni_n(wrow, [x0, x1]) };
    }
    [vec_dot(wrow, x0), vec_dot(wrow, x1)]
}

/// Q2_K row · Q8_K activation on path `isa`.
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks or the machine lacks `isa`.
pub fn vec_dot_isa(isa: super::simd::Isa, wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    assert!(isa.supported(), "vec_dot: this machine lacks {isa:?}");
    dot_on(isa, wrow, x)
}

/// The kernel of path `isa`, which the caller has checked is supported.
#[inline]
fn dot_on(isa: super::simd::Isa, wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    use super::simd::Isa;
    assert!(
        wrow.len() >= x.len() * BLOCK_BYTES,
        "vec_dot: row shorter than activation"
    );
    match isa {
        // SAFETY: the ISA is supported (checked by the caller) and the row is long enough.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { super::simd::x86::q2_k_dot_avx2(wrow, x) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { super::simd::x86::q2_k_dot_vnni(wrow, x) },
        _ => vec_dot_ref(wrow, x),
    }
}

/// Dequantises a Q2_K row into `out` (a multiple of 256 elements).
///
/// # Panics
/// If the lengths disagree.
pub fn dequantize_row(wrow: &[u8], out: &mut [f32]) {
    assert_eq!(
        out.len() % QK_K,
        0,
        "q2_k::dequantize_row: length not a multiple of 256"
    );
    assert!(
        wrow.len() >= out.len() / QK_K * BLOCK_BYTES,
        "q2_k::dequantize_row: short row"
    );

    for (blk, dst) in wrow
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = scales(blk);
        for (e, o) in dst.iter_mut().enumerate() {
            let sc = blk[e / 16];
            *o = d * (sc & 15) as f32 * quant(blk, e) as f32 - dmin * (sc >> 4) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::q8_k;
    use crate::quant::test_util::{random_f16_scale, Rng};

    #[test]
    fn element_layout_matches_model_md_indexing() {
        // MODEL.md §3.7: n = 128k + 32j + 16h + l reads qs[32k + 16h + l] >> 2j, scale 8k+2j+h.
        let mut blk = [0u8; 84];
        blk[80..82].copy_from_slice(&0x3c00u16.to_le_bytes()); // d = 1
        for (i, s) in blk[..16].iter_mut().enumerate() {
            *s = (i as u8 % 15) + 1; // scale only, min 0
        }
        let mut rng = Rng::new(11);
        for q in &mut blk[16..80] {
            *q = rng.next() as u8;
        }
        let mut out = [0.0f32; 256];
        dequantize_row(&blk, &mut out);
        for k in 0..2 {
            for j in 0..4 {
                for h in 0..2 {
                    for l in 0..16 {
                        let n = 128 * k + 32 * j + 16 * h + l;
                        let q = (blk[16 + 32 * k + 16 * h + l] >> (2 * j)) & 3;
                        let sc = blk[8 * k + 2 * j + h] & 15;
                        assert_eq!(out[n], (sc * q) as f32, "n={n}");
                    }
                }
            }
        }
    }

    #[test]
    fn vec_dot_matches_f64_reference() {
        let mut rng = Rng::new(5);
        for nb in [1usize, 8] {
            let mut row = Vec::new();
            for _ in 0..nb {
                row.extend((0..80).map(|_| rng.next() as u8));
                row.extend_from_slice(&random_f16_scale(&mut rng).to_le_bytes());
                row.extend_from_slice(&random_f16_scale(&mut rng).to_le_bytes());
            }
            let x: Vec<f32> = (0..nb * 256).map(|_| rng.uniform() * 2.0 - 1.0).collect();
            let mut y = vec![BlockQ8K::default(); nb];
            q8_k::quantize(&x, &mut y);
            let mut w = vec![0.0f32; nb * 256];
            dequantize_row(&row, &mut w);

            let terms: Vec<f64> = (0..nb * 256)
                .map(|i| w[i] as f64 * y[i / 256].d as f64 * y[i / 256].qs[i % 256] as f64)
                .collect();
            let reference: f64 = terms.iter().sum();
            let scale: f64 = terms.iter().map(|t| t.abs()).sum();
            let got = vec_dot_ref(&row, &y) as f64;
            assert!(
                (got - reference).abs() <= 1e-5 * scale,
                "nb={nb}: {got} vs {reference}"
            );
        }
    }
}
