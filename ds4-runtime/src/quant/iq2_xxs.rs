//! IQ2_XXS: 256 weights in 66 bytes (f16 `d` + 8 groups of 8 bytes).
//!
//! Group g of a block holds two little-endian u32: `aux0` has four 8-bit indices
//! into [`IQ2XXS_GRID`] (one per 8 elements), `aux1` four 7-bit sign indices and
//! a 4-bit scale `s` in bits 28..31. The 8th sign of each 8-tuple is the parity
//! of the 7 stored ones (`ksigns`), so every tuple has an even number of
//! negatives. Weight = `f16(d) · (2s+1)/8 · magnitude · sign` (`FORMAT.md` §3.6).

use super::q8_k::BlockQ8K;
use super::{f16_to_f32, QK_K};

pub use super::iq2_xxs_grid::IQ2XXS_GRID;

/// Bytes per IQ2_XXS block.
pub const BLOCK_BYTES: usize = 66;

/// The 8-bit sign mask of 7-bit sign index `s`: bit 7 is the parity of `s`.
pub fn ksigns(s: u8) -> u8 {
    let s = s & 0x7f;
    if s.count_ones() % 2 == 1 {
        s | 0x80
    } else {
        s
    }
}

/// The signed grid values of one 8-tuple: grid entry `idx` with sign index `sign7`.
fn signed_tuple(idx: u8, sign7: u8) -> [i32; 8] {
    let g = IQ2XXS_GRID[idx as usize];
    let s = ksigns(sign7);
    std::array::from_fn(|j| {
        let m = ((g >> (8 * j)) & 0xff) as i32;
        if s & (1 << j) != 0 {
            -m
        } else {
            m
        }
    })
}

fn group_words(blk: &[u8], g: usize) -> (u32, u32) {
    let o = 2 + 8 * g;
    let a0 = u32::from_le_bytes([blk[o], blk[o + 1], blk[o + 2], blk[o + 3]]);
    let a1 = u32::from_le_bytes([blk[o + 4], blk[o + 5], blk[o + 6], blk[o + 7]]);
    (a0, a1)
}

/// Dot product of an IQ2_XXS row with Q8_K activations (ds4's portable path:
/// integer sums per group, `acc += f16(d)·d_x·bsum` per block, `0.125 · acc`).
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
pub fn vec_dot_ref(wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    assert!(
        wrow.len() >= x.len() * BLOCK_BYTES,
        "iq2_xxs::vec_dot: row shorter than activation"
    );

    let mut acc = 0.0f32;
    for (blk, y) in wrow.chunks_exact(BLOCK_BYTES).zip(x) {
        let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let mut bsum: i32 = 0;
        for g in 0..8 {
            let (a0, a1) = group_words(blk, g);
            let ls = 2 * (a1 >> 28) as i32 + 1;
            let mut sumi: i32 = 0;
            for k in 0..4 {
                let t = signed_tuple((a0 >> (8 * k)) as u8, ((a1 >> (7 * k)) & 0x7f) as u8);
                let q = &y.qs[32 * g + 8 * k..32 * g + 8 * k + 8];
                sumi += t.iter().zip(q).map(|(&w, &q)| w * q as i32).sum::<i32>();
            }
            bsum += sumi * ls;
        }
        acc += d * y.d * bsum as f32;
    }
    0.125 * acc
}

/// IQ2_XXS row · Q8_K activation on the fastest path of this machine ([`super::simd::active`]);
/// the same bits as [`vec_dot_ref`].
///
/// # Panics
/// If `wrow` is shorter than `x.len()` blocks.
#[inline]
pub fn vec_dot(wrow: &[u8], x: &[BlockQ8K]) -> f32 {
    dot_on(super::simd::active(), wrow, x)
}

/// One IQ2_XXS row against two activations (each as [`vec_dot`] would give): on
/// AVX-512 VNNI the row's groups are decoded once for both.
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
        return unsafe { super::simd::x86::iq2_xxs_dot_vnni_n(wrow, [x0, x1]) };
    }
    [vec_dot(wrow, x0), vec_dot(wrow, x1)]
}

/// IQ2_XXS row · Q8_K activation on path `isa`.
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
        Isa::Avx2 => unsafe { super::simd::x86::iq2_xxs_dot_avx2(wrow, x) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { super::simd::x86::iq2_xxs_dot_vnni(wrow, x) },
        _ => vec_dot_ref(wrow, x),
    }
}

/// Dequantises an IQ2_XXS row into `out` (a multiple of 256 elements).
///
/// # Panics
/// If the lengths disagree.
pub fn dequantize_row(wrow: &[u8], out: &mut [f32]) {
    assert_eq!(
        out.len() % QK_K,
        0,
        "iq2_xxs::dequantize_row: length not a multiple of 256"
    );
    assert!(
        wrow.len() >= out.len() / QK_K * BLOCK_BYTES,
        "iq2_xxs::dequantize_row: short row"
    );

    for (blk, dst) in wrow
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        for g in 0..8 {
            let (a0, a1) = group_words(blk, g);
            let db = d * (0.5 + (a1 >> 28) as f32) * 0.25;
            for k in 0..4 {
                let t = signed_tuple((a0 >> (8 * k)) as u8, ((a1 >> (7 * k)) & 0x7f) as u8);
                for (j, &v) in t.iter().enumerate() {
                    dst[32 * g + 8 * k + j] = db * v as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::q8_k;
    use crate::quant::test_util::{random_f16_scale, Rng};

    #[test]
    fn grid_is_well_formed() {
        for w in IQ2XXS_GRID.windows(2) {
            assert!(w[0] < w[1], "grid must be strictly ascending");
        }
        for g in IQ2XXS_GRID {
            for j in 0..8 {
                assert!(matches!((g >> (8 * j)) & 0xff, 8 | 25 | 43), "{g:#018x}");
            }
        }
        assert_eq!(IQ2XXS_GRID[0], 0x0808080808080808);
        assert_eq!(IQ2XXS_GRID[255], 0x2b2b2b1908081908);
    }

    #[test]
    fn sign_parity_makes_negatives_even() {
        assert_eq!(ksigns(0), 0);
        assert_eq!(ksigns(1), 129);
        assert_eq!(ksigns(3), 3);
        assert_eq!(ksigns(127), 255);
        for s in 0..128u8 {
            assert_eq!(ksigns(s).count_ones() % 2, 0);
            assert_eq!(ksigns(s) & 0x7f, s);
        }
    }

    #[test]
    fn worked_block_dequantises_by_hand() {
        // d = 1.0, group 0: grid index 1 (0x080808080808082b), sign index 1, scale 3.
        let mut blk = [0u8; 66];
        blk[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
        blk[2] = 1;
        blk[6..10].copy_from_slice(&(1u32 | (3 << 28)).to_le_bytes());
        let mut out = [0.0f32; 256];
        dequantize_row(&blk, &mut out);
        // (2·3+1)/8 = 0.875; element 0 is negated (bit 0), element 7 by parity (bit 7).
        assert_eq!(out[0], -0.875 * 43.0);
        assert_eq!(&out[1..7], &[0.875 * 8.0; 6]);
        assert_eq!(out[7], -0.875 * 8.0);
        // Group 0's other tuples use index 0 with sign 0 and the same scale.
        assert_eq!(out[8], 0.875 * 8.0);
        // Other groups have scale 0: (2·0+1)/8.
        assert_eq!(out[32], 0.125 * 8.0);
    }

    #[test]
    fn vec_dot_matches_f64_reference() {
        let mut rng = Rng::new(3);
        for nb in [1usize, 2, 16] {
            let mut row = Vec::new();
            for _ in 0..nb {
                row.extend_from_slice(&random_f16_scale(&mut rng).to_le_bytes());
                row.extend((0..64).map(|_| rng.next() as u8));
            }
            let x: Vec<f32> = (0..nb * 256).map(|_| rng.uniform() * 2.0 - 1.0).collect();
            let mut y = vec![BlockQ8K::default(); nb];
            q8_k::quantize(&x, &mut y);
            let mut w = vec![0.0f32; nb * 256];
            dequantize_row(&row, &mut w);

            let reference: f64 = (0..nb * 256)
                .map(|i| w[i] as f64 * y[i / 256].d as f64 * y[i / 256].qs[i % 256] as f64)
                .sum();
            let scale: f64 = (0..nb * 256)
                .map(|i| (w[i] as f64 * y[i / 256].d as f64 * y[i / 256].qs[i % 256] as f64).abs())
                .sum();
            let got = vec_dot_ref(&row, &y) as f64;
            assert!(
                (got - reference).abs() <= 1e-6 * scale,
                "nb={nb}: {got} vs {reference}"
            );
        }
    }
}
