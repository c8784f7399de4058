//! Q8_0 weight rows against 16 tokens at once (AVX-512 VNNI), for prefill.
//!
//! The chunk's Q8_0 activations are packed once per projection so that one zmm
//! holds the same 4 quant bytes of 16 tokens; a weight row's 4 bytes are
//! broadcast (biased to unsigned) and one `vpdpbusd` advances all 16 tokens'
//! block sums, with no horizontal reduction. The bias adds `128·Σx` per token and
//! block, which the packing precomputes and subtracts. Each lane then combines
//! its blocks in f32 exactly as `q8_0::vec_dot_ref` does, so every token gets the
//! reference's bits (the weight is read once per 16 tokens instead of per token).

use std::arch::x86_64::*;

use crate::quant::q8_0::BlockQ8_0Act;

/// Tokens per lane group.
pub const LANES: usize = 16;

/// Packed activations: `sets` independent inputs (input groups of a grouped
/// projection, else 1), each of `t` tokens in groups of 16, `nb` blocks per token.
#[derive(Default)]
pub struct Packed16 {
    nb: usize,
    groups: usize,
    /// `[set][group][block][step j][lane][4]` quants.
    qs: Vec<i8>,
    /// `[set][group][block][lane]` activation scales.
    d: Vec<f32>,
    /// `[set][group][block][lane]` `128·Σ quants`.
    corr: Vec<i32>,
}

impl Packed16 {
    /// Packs `t` tokens × `sets` inputs of `nb` blocks; `row(ti, s)` is token `ti`'s input `s`.
    /// Lanes past `t` are zero. Buffers grow to the largest chunk once and are reused.
    pub fn pack<'x>(
        &mut self,
        t: usize,
        nb: usize,
        sets: usize,
        row: impl Fn(usize, usize) -> &'x [BlockQ8_0Act],
    ) {
        let groups = t.div_ceil(LANES);
        let blocks = sets * groups * nb;
        self.nb = nb;
        self.groups = groups;
        self.d.clear();
        self.d.resize(blocks * LANES, 0.0);
        self.corr.clear();
        self.corr.resize(blocks * LANES, 0);
        self.qs.clear();
        self.qs.resize(blocks * LANES * 32, 0);
        for s in 0..sets {
            for ti in 0..t {
                let (g, lane) = (ti / LANES, ti % LANES);
                for (b, blk) in row(ti, s)[..nb].iter().enumerate() {
                    let base = (s * groups + g) * nb + b;
                    self.d[base * LANES + lane] = blk.d;
                    self.corr[base * LANES + lane] =
                        128 * blk.qs.iter().map(|&q| q as i32).sum::<i32>();
                    for j in 0..8 {
                        let o = (base * 8 + j) * 64 + lane * 4;
                        self.qs[o..o + 4].copy_from_slice(&blk.qs[4 * j..4 * j + 4]);
                    }
                }
            }
        }
    }

    /// Token groups of 16.
    pub fn groups(&self) -> usize {
        self.groups
    }
}

/// `out[lane] = Q8_0 row w · token (16g + lane)` of input set `s`, bit-identical to
/// `q8_0::vec_dot_ref` per lane.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VNNI and F16C; `w` holds `p`'s `nb` blocks of
/// 34 bytes and `(s, g)` is a packed set and group.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn row_x16(w: &[u8], p: &Packed16, s: usize, g: usize, out: &mut [f32; LANES]) {
    // SAFETY: same contract.
    let [o] = unsafe { row_x16_groups::<1>(w, p, s, g) };
    *out = o;
}

/// [`row_x16`] for the `G` groups `g0..g0 + G` at once: each biased weight dword is
/// broadcast once for all of them.
///
/// # Safety
/// As [`row_x16`], for every group `g0..g0 + G`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn row_x16_groups<const G: usize>(
    w: &[u8],
    p: &Packed16,
    s: usize,
    g0: usize,
) -> [[f32; LANES]; G] {
    // SAFETY: same contract.
    let [o] = unsafe { rows_x16_groups::<1, G>([w], p, s, g0) };
    o
}

/// [`row_x16_groups`] for `R` weight rows of the same input set at once: each packed
/// activation load serves all of them. `out[r][i]` has row `r`'s lanes of group `g0 + i`.
///
/// # Safety
/// As [`row_x16_groups`], for every row.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn rows_x16_groups<const R: usize, const G: usize>(
    w: [&[u8]; R],
    p: &Packed16,
    s: usize,
    g0: usize,
) -> [[[f32; LANES]; G]; R] {
    let nb = p.nb;
    debug_assert!(w.iter().all(|w| w.len() >= 34 * nb));
    debug_assert!((s * p.groups + g0 + G) * nb * LANES <= p.d.len());
    let base: [usize; G] = std::array::from_fn(|i| (s * p.groups + g0 + i) * nb);
    let bias = _mm512_set1_epi8(-128);
    let mut acc = [[_mm512_setzero_ps(); G]; R];
    for b in 0..nb {
        // SAFETY: block b of every row and packed blocks `base[i] + b` are in bounds
        // (above).
        unsafe {
            let wp: [*const u8; R] = std::array::from_fn(|r| w[r].as_ptr().add(b * 34));
            let mut isum = [[_mm512_setzero_si512(); G]; R];
            for j in 0..8 {
                let wj: [__m512i; R] = std::array::from_fn(|r| {
                    let v = (wp[r].add(2 + 4 * j) as *const i32).read_unaligned();
                    _mm512_xor_si512(_mm512_set1_epi32(v), bias)
                });
                for i in 0..G {
                    let xp = p.qs.as_ptr().add((base[i] + b) * 512 + 64 * j);
                    let xv = _mm512_loadu_si512(xp as _);
                    for r in 0..R {
                        isum[r][i] = _mm512_dpbusd_epi32(isum[r][i], wj[r], xv);
                    }
                }
            }
            for r in 0..R {
                let h = (wp[r] as *const u16).read_unaligned();
                let dw = _mm512_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32))));
                for i in 0..G {
                    let at = (base[i] + b) * LANES;
                    let isum = _mm512_sub_epi32(
                        isum[r][i],
                        _mm512_loadu_si512(p.corr.as_ptr().add(at) as *const __m512i),
                    );
                    let dx = _mm512_loadu_ps(p.d.as_ptr().add(at));
                    acc[r][i] = _mm512_add_ps(
                        acc[r][i],
                        _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum)),
                    );
                }
            }
        }
    }
    let mut out = [[[0.0f32; LANES]; G]; R];
    for r in 0..R {
        for i in 0..G {
            // SAFETY: `out[r][i]` holds 16 f32.
            unsafe { _mm512_storeu_ps(out[r][i].as_mut_ptr(), acc[r][i]) };
        }
    }
    out
}
