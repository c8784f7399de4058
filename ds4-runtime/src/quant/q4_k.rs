//! Q4_K: 256 weights in 144 bytes: f16 `d`, f16 `dmin`, 12 bytes of packed 6-bit
//! scales/mins for 8 sub-blocks of 32, then 128 bytes of 4-bit quants.
//!
//! Element `e`: `c = e/64`, `r = e%64`, `q` is the low nibble of `qs[32c + r]` for
//! `r < 32`, else the high nibble of `qs[32c + r − 32]`; weight =
//! `f16(d)·sc_j·q − f16(dmin)·m_j` with `j = e/32` (`FORMAT.md` §3.5). ds4 runs
//! Q4_K experts only on GPUs; this is the reference for them.

use super::q8_k::BlockQ8K;
use super::{f16_to_f32, QK_K};

/// Bytes per Q4_K block.
pub const BLOCK_BYTES: usize = 144;

/// Scale and min of sub-block `j` (ggml's `get_scale_min_k4`).
pub fn scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

fn quant(blk: &[u8], e: usize) -> i32 {
    let (c, r) = (e / 64, e % 64);
    let qs = &blk[16..];
    if r < 32 {
        (qs[32 * c + r] & 15) as i32
    } else {
        (qs[32 * c + r - 32] >> 4) as i32
    }
}

fn scales(blk: &[u8]) -> (f32, f32) {
    (
        f16_to_f32(u16::from_le_bytes([blk[0], blk[1]])),
        f16_to_f32(u16::from_le_bytes([blk[2], blk[3]])),
    )
}

/// Dot product of a Q4_K row with Q8_K activations.
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
pub fn vec_dot_ref(wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    assert!(
        wrow.len() >= x.len() * BLOCK_BYTES,
        "q4_k::vec_dot: row shorter than activation"
    );

    let mut acc = 0.0f32;
    for (blk, y) in wrow.chunks_exact(BLOCK_BYTES).zip(x) {
        let mut isum: i32 = 0;
        let mut summs: i32 = 0;
        for j in 0..8 {
            let (sc, m) = scale_min(&blk[4..16], j);
            let sub: i32 = (32 * j..32 * j + 32)
                .map(|e| quant(blk, e) * y.qs[e] as i32)
                .sum();
            isum += sc as i32 * sub;
            summs += m as i32 * (y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32);
        }
        let (d, dmin) = scales(blk);
        acc += y.d * d * isum as f32 - y.d * dmin * summs as f32;
    }
    acc
}

/// Q4_K row · Q8_K activation on the fastest path of this machine ([`super::simd::active`]);
/// the same bits as [`vec_dot_ref`].
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
#[inline]
pub fn vec_dot(wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    dot_on(super::simd::active(), wrow, x)
}

/// Q4_K row · Q8_K activation on path `isa`.
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
        Isa::Avx2 => unsafe { super::simd::x86::q4_k_dot_avx2(wrow, x) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { super::simd::x86::q4_k_dot_vnni(wrow, x) },
        _ => vec_dot_ref(wrow, x),
    }
}

/// Dequantises a Q4_K row into `out` (a multiple of 256 elements).
///
/// # Panics
/// If the lengths disagree.
pub fn dequantize_row(wrow: &[u8], out: &mut [f32]) {
    assert_eq!(
        out.len() % QK_K,
        0,
        "q4_k::dequantize_row: length not a multiple of 256"
    );
    assert!(
        wrow.len() >= out.len() / QK_K * BLOCK_BYTES,
        "q4_k::dequantize_row: short row"
    );

    for (blk, dst) in wrow
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = scales(blk);
        for (e, o) in dst.iter_mut().enumerate() {
            let (sc, m) = scale_min(&blk[4..16], e / 32);
            *o = d * sc as f32 * quant(blk, e) as f32 - dmin * m as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::q8_k;
    use crate::quant::test_util::{random_f16_scale, Rng};

    #[test]
    fn six_bit_scale_unpacking() {
        let s = [
            0xC1, 0x42, 0x03, 0x84, 0x45, 0x86, 0x07, 0xC8, 0x9A, 0xBC, 0xDE, 0xF0,
        ];
        assert_eq!(scale_min(&s, 0), (0x01, 0x05));
        assert_eq!(scale_min(&s, 3), (0x04, 0x08));
        // j = 4: sc = (s[8] & 15) | (s[0] >> 6) << 4 = 0xA | 0x30; m = (s[8] >> 4) | (s[4] >> 6) << 4.
        assert_eq!(scale_min(&s, 4), (0x3A, 0x19));
        assert_eq!(scale_min(&s, 7), (2 << 4, 0x0F | (3 << 4)));
    }

    #[test]
    fn vec_dot_matches_f64_reference() {
        let mut rng = Rng::new(9);
        for nb in [1usize, 4] {
            let mut row = Vec::new();
            for _ in 0..nb {
                row.extend_from_slice(&random_f16_scale(&mut rng).to_le_bytes());
                row.extend_from_slice(&random_f16_scale(&mut rng).to_le_bytes());
                row.extend((0..140).map(|_| rng.next() as u8));
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
