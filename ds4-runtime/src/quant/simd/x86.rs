//! x86-64 kernels: AVX2 (`vpmaddubsw`/`vpmaddwd`) and AVX-512 VNNI (`vpdpbusd`,
//! `vpdpwssd`, byte masks from `k` registers, on 256-bit vectors).
//!
//! Every kernel sums each block's integer products exactly (any order gives the
//! same integer) and combines the blocks in f32 exactly as the scalar reference
//! does, block after block. The sign trick (`|w| · sign(x, w)`) needs the
//! activation quants in −127..=127, which both activation quantisers guarantee.
//!
//! All functions are `unsafe`: the caller checks [`super::Isa::supported`]
//! first and passes slices at least as long as the reference requires.

use std::arch::x86_64::*;

use crate::quant::iq2_xxs::IQ2XXS_GRID;
use crate::quant::q8_0::BlockQ8_0Act;
use crate::quant::q8_k::BlockQ8K;

/// `ksigns` of the IQ2 formats: bit 7 is the parity of the 7 stored sign bits.
const KSIGNS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = if (i as u8).count_ones() % 2 == 1 {
            i as u8 | 0x80
        } else {
            i as u8
        };
        i += 1;
    }
    t
};

/// Four f16 values at `p[0], p[stride], …` widened to f32 (exact).
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn f16x4(p: *const u8, stride: usize) -> __m128 {
    // SAFETY: the caller guarantees four readable 2-byte values at these offsets.
    let h = |i: usize| unsafe { (p.add(i * stride) as *const u16).read_unaligned() as i16 };
    _mm_cvtph_ps(_mm_setr_epi16(h(0), h(1), h(2), h(3), 0, 0, 0, 0))
}

/// The two f16 values at `p` and `p + 2` widened to f32 (exact).
#[target_feature(enable = "avx2,f16c")]
#[inline]
unsafe fn f16_pair(p: *const u8) -> (f32, f32) {
    // SAFETY: the caller guarantees four readable bytes at `p`.
    let h = |i: usize| unsafe { (p.add(2 * i) as *const u16).read_unaligned() as i16 };
    let v = _mm_cvtph_ps(_mm_setr_epi16(h(0), h(1), 0, 0, 0, 0, 0, 0));
    (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_shuffle_ps::<1>(v, v)))
}

/// The sum of the eight i32 lanes of `v`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Lane sums of four vectors: `[Σp0, Σp1, Σp2, Σp3]`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn hsum4_i32(p0: __m256i, p1: __m256i, p2: __m256i, p3: __m256i) -> __m128i {
    let c = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256::<1>(c))
}

/// Σ w·x of one Q8_0 block (weight quants at `w`, 32 bytes) as eight i32 partial sums.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn q8_block_avx2(w: *const u8, x: &BlockQ8_0Act) -> __m256i {
    // SAFETY: the caller guarantees 32 readable bytes at `w`; `x.qs` is 32 bytes.
    let (wv, xv) = unsafe {
        (
            _mm256_loadu_si256(w as *const __m256i),
            _mm256_loadu_si256(x.qs.as_ptr() as *const __m256i),
        )
    };
    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// As [`q8_block_avx2`] with one `vpdpbusd`.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
unsafe fn q8_block_vnni(w: *const u8, x: &BlockQ8_0Act) -> __m256i {
    // SAFETY: as for `q8_block_avx2`.
    let (wv, xv) = unsafe {
        (
            _mm256_loadu_si256(w as *const __m256i),
            _mm256_loadu_si256(x.qs.as_ptr() as *const __m256i),
        )
    };
    _mm256_dpbusd_epi32(
        _mm256_setzero_si256(),
        _mm256_abs_epi8(wv),
        _mm256_sign_epi8(xv, wv),
    )
}

macro_rules! q8_0_dot {
    ($name:ident, $block:ident, $feat:literal) => {
        /// Q8_0 row · Q8_0 activation, bit-identical to `q8_0::vec_dot_ref`.
        ///
        /// # Safety
        /// The CPU must support the enabled features; `w` holds `x.len()` blocks of 34 bytes.
        #[target_feature(enable = $feat)]
        pub unsafe fn $name(w: &[u8], x: &[BlockQ8_0Act]) -> f32 {
            debug_assert!(w.len() >= 34 * x.len());
            let wp = w.as_ptr();
            let mut acc = 0.0f32;
            let mut b = 0;
            while b + 4 <= x.len() {
                // SAFETY: blocks b..b+4 lie inside `w` (checked by the caller).
                let (s, dw) = unsafe {
                    let p = |j: usize| $block(wp.add((b + j) * 34 + 2), &x[b + j]);
                    (hsum4_i32(p(0), p(1), p(2), p(3)), f16x4(wp.add(b * 34), 34))
                };
                let dx = _mm_setr_ps(x[b].d, x[b + 1].d, x[b + 2].d, x[b + 3].d);
                let mut t = [0.0f32; 4];
                // SAFETY: `t` holds four f32.
                unsafe {
                    _mm_storeu_ps(
                        t.as_mut_ptr(),
                        _mm_mul_ps(_mm_mul_ps(dw, dx), _mm_cvtepi32_ps(s)),
                    )
                };
                acc += t[0];
                acc += t[1];
                acc += t[2];
                acc += t[3];
                b += 4;
            }
            while b < x.len() {
                // SAFETY: block b lies inside `w`.
                let (s, dw) = unsafe {
                    (
                        hsum_i32($block(wp.add(b * 34 + 2), &x[b])),
                        _mm_cvtss_f32(f16x4(wp.add(b * 34), 0)),
                    )
                };
                acc += (dw * x[b].d) * s as f32;
                b += 1;
            }
            acc
        }
    };
}

q8_0_dot!(q8_0_dot_avx2, q8_block_avx2, "avx2,fma,f16c");
q8_0_dot!(
    q8_0_dot_vnni,
    q8_block_vnni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
);

/// [`q8_0_dot_vnni`] of four rows with the same activation, interleaved so that the
/// four rows' f32 accumulation chains (block after block, as the reference) overlap;
/// each row's result has the same bits as alone.
///
/// # Safety
/// As [`q8_0_dot_vnni`], for every row.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn q8_0_dot4_vnni(w: [&[u8]; 4], x: &[BlockQ8_0Act]) -> [f32; 4] {
    debug_assert!(w.iter().all(|w| w.len() >= 34 * x.len()));
    let mut acc = [0.0f32; 4];
    let mut b = 0;
    while b + 4 <= x.len() {
        let dx = _mm_setr_ps(x[b].d, x[b + 1].d, x[b + 2].d, x[b + 3].d);
        for (acc, w) in acc.iter_mut().zip(&w) {
            let wp = w.as_ptr();
            // SAFETY: blocks b..b+4 lie inside the row (checked by the caller).
            let (s, dw) = unsafe {
                let p = |j: usize| q8_block_vnni(wp.add((b + j) * 34 + 2), &x[b + j]);
                (hsum4_i32(p(0), p(1), p(2), p(3)), f16x4(wp.add(b * 34), 34))
            };
            let mut t = [0.0f32; 4];
            // SAFETY: `t` holds four f32.
            unsafe {
                _mm_storeu_ps(
                    t.as_mut_ptr(),
                    _mm_mul_ps(_mm_mul_ps(dw, dx), _mm_cvtepi32_ps(s)),
                )
            };
            *acc += t[0];
            *acc += t[1];
            *acc += t[2];
            *acc += t[3];
        }
        b += 4;
    }
    while b < x.len() {
        for (acc, w) in acc.iter_mut().zip(&w) {
            let wp = w.as_ptr();
            // SAFETY: block b lies inside the row.
            let (s, dw) = unsafe {
                (
                    hsum_i32(q8_block_vnni(wp.add(b * 34 + 2), &x[b])),
                    _mm_cvtss_f32(f16x4(wp.add(b * 34), 0)),
                )
            };
            *acc += (dw * x[b].d) * s as f32;
        }
        b += 1;
    }
    acc
}

/// The 32 grid magnitudes of IQ2_XXS group `a0` (four 8-bit indices).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn iq2_grid(a0: u32) -> __m256i {
    let g = |k: u32| IQ2XXS_GRID[((a0 >> (8 * k)) & 0xff) as usize] as i64;
    _mm256_set_epi64x(g(3), g(2), g(1), g(0))
}

/// The 32 sign bits of IQ2_XXS group sign word `a1` (bit `8k + j` negates element `8k + j`).
#[inline]
fn iq2_signs(a1: u32) -> u32 {
    (0..4).fold(0u32, |m, k| {
        m | (KSIGNS[((a1 >> (7 * k)) & 0x7f) as usize] as u32) << (8 * k)
    })
}

/// IQ2_XXS row · Q8_K activation (AVX2), bit-identical to `iq2_xxs::vec_dot_ref`.
///
/// # Safety
/// The CPU must support AVX2/FMA/F16C; `w` holds `x.len()` blocks of 66 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn iq2_xxs_dot_avx2(w: &[u8], x: &[BlockQ8K]) -> f32 {
    debug_assert!(w.len() >= 66 * x.len());
    let bitsel = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let one = _mm256_set1_epi8(1);
    let mut acc = 0.0f32;
    for (blk, y) in w.chunks_exact(66).zip(x) {
        let mut sum = _mm256_setzero_si256();
        for g in 0..8 {
            let o = 2 + 8 * g;
            let a0 = u32::from_le_bytes([blk[o], blk[o + 1], blk[o + 2], blk[o + 3]]);
            let a1 = u32::from_le_bytes([blk[o + 4], blk[o + 5], blk[o + 6], blk[o + 7]]);
            let sv = _mm256_shuffle_epi8(_mm256_set1_epi32(iq2_signs(a1) as i32), shuf);
            let neg = _mm256_cmpeq_epi8(_mm256_and_si256(sv, bitsel), bitsel);
            // SAFETY: 32 quants of group g lie inside `y.qs`.
            let q = unsafe { _mm256_loadu_si256(y.qs.as_ptr().add(32 * g) as *const __m256i) };
            // SAFETY: AVX2 is enabled here.
            let grid = unsafe { iq2_grid(a0) };
            let p = _mm256_maddubs_epi16(grid, _mm256_sign_epi8(q, _mm256_or_si256(neg, one)));
            let ls = (2 * (a1 >> 28) + 1) as i16;
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16(ls)));
        }
        // SAFETY: bytes 0..2 of the block hold d (read four times).
        let d = _mm_cvtss_f32(unsafe { f16x4(blk.as_ptr(), 0) });
        acc += d * y.d * hsum_i32(sum) as f32;
    }
    0.125 * acc
}

/// IQ2_XXS row · Q8_K activation (AVX-512 VNNI), bit-identical to `iq2_xxs::vec_dot_ref`.
///
/// The eight groups' sign masks (with the parity bit, from a nibble-parity
/// shuffle) and scales are computed for the whole block at once; each group then
/// negates its activation bytes under a `k` mask and takes one `vpdpwssd`.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/VNNI and AVX2; `w` holds `x.len()` blocks.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn iq2_xxs_dot_vnni(w: &[u8], x: &[BlockQ8K]) -> f32 {
    // SAFETY: same contract.
    let [r] = unsafe { iq2_xxs_dot_vnni_n(w, [x]) };
    r
}

/// One IQ2_XXS row against `N` activations: the grid, signs and scales of each
/// group are decoded once and applied to every activation; lane `i` of the result
/// is bit-identical to `iq2_xxs::vec_dot_ref(w, xs[i])`.
///
/// # Safety
/// As [`iq2_xxs_dot_vnni`], for every `xs[i]` (all of the same length).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn iq2_xxs_dot_vnni_n<const N: usize>(w: &[u8], xs: [&[BlockQ8K]; N]) -> [f32; N] {
    let nb = xs[0].len();
    debug_assert!(w.len() >= 66 * nb && xs.iter().all(|x| x.len() == nb));
    let zero = _mm256_setzero_si256();
    let (m7, m4) = (_mm256_set1_epi32(0x7f), _mm256_set1_epi8(0x0f));
    let o = -128i8;
    // 0x80 for nibbles with an odd number of set bits.
    let parity = _mm256_setr_epi8(
        0, o, o, 0, o, 0, 0, o, o, 0, 0, o, 0, o, o, 0, 0, o, o, 0, o, 0, 0, o, o, 0, 0, o, 0, o,
        o, 0,
    );
    let (mut signs, mut scales, mut idx) = ([0u32; 8], [0u32; 8], [0u32; 8]);
    let mut acc = [0.0f32; N];
    for (b, blk) in w.chunks_exact(66).take(nb).enumerate() {
        // SAFETY: bytes 2..66 of the block are the eight (aux0, aux1) pairs.
        let v = unsafe { _mm512_loadu_si512(blk.as_ptr().add(2) as *const __m512i) };
        let a0 = _mm512_cvtepi64_epi32(v);
        let a1 = _mm512_cvtepi64_epi32(_mm512_srli_epi64::<32>(v));
        let f = |k: i32| _mm256_and_si256(_mm256_srl_epi32(a1, _mm_cvtsi32_si128(7 * k)), m7);
        let c = _mm256_or_si256(
            _mm256_or_si256(f(0), _mm256_slli_epi32::<8>(f(1))),
            _mm256_or_si256(_mm256_slli_epi32::<16>(f(2)), _mm256_slli_epi32::<24>(f(3))),
        );
        let lo = _mm256_and_si256(c, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(c), m4);
        let sv = _mm256_or_si256(
            c,
            _mm256_xor_si256(
                _mm256_shuffle_epi8(parity, lo),
                _mm256_shuffle_epi8(parity, hi),
            ),
        );
        // Scale 2s+1 in both i16 halves of each u32, so a group's broadcast is one load.
        let lv = _mm256_or_si256(
            _mm256_slli_epi32::<1>(_mm256_srli_epi32::<28>(a1)),
            _mm256_set1_epi32(1),
        );
        let lv = _mm256_or_si256(lv, _mm256_slli_epi32::<16>(lv));
        // SAFETY: each array holds eight u32.
        unsafe {
            _mm256_storeu_si256(signs.as_mut_ptr() as *mut __m256i, sv);
            _mm256_storeu_si256(scales.as_mut_ptr() as *mut __m256i, lv);
            _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, a0);
        }
        let mut sum = [_mm256_setzero_si256(); N];
        for g in 0..8 {
            // SAFETY: AVX2 is enabled here.
            let grid = unsafe { iq2_grid(idx[g]) };
            let ls = _mm256_set1_epi32(scales[g] as i32);
            for (sum, x) in sum.iter_mut().zip(&xs) {
                // SAFETY: 32 quants of group g lie inside block b of `x`.
                let q =
                    unsafe { _mm256_loadu_si256(x[b].qs.as_ptr().add(32 * g) as *const __m256i) };
                let qs = _mm256_mask_sub_epi8(q, signs[g], zero, q);
                *sum = _mm256_dpwssd_epi32(*sum, _mm256_maddubs_epi16(grid, qs), ls);
            }
        }
        // SAFETY: bytes 0..2 of the block hold d (read four times).
        let d = _mm_cvtss_f32(unsafe { f16x4(blk.as_ptr(), 0) });
        for ((acc, sum), x) in acc.iter_mut().zip(sum).zip(&xs) {
            *acc += d * x[b].d * hsum_i32(sum) as f32;
        }
    }
    acc.map(|a| 0.125 * a)
}

/// Scale pair `(lo for lanes 0..8, hi for lanes 8..16)` as 16 i16.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn pair16(lo: u8, hi: u8) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi as i16), _mm_set1_epi16(lo as i16))
}

macro_rules! q2_k_dot {
    ($name:ident, $feat:literal, $madd:ident) => {
        /// Q2_K row · Q8_K activation, bit-identical to `q2_k::vec_dot_ref`.
        ///
        /// # Safety
        /// The CPU must support the enabled features; `w` holds `x.len()` blocks of 84 bytes.
        #[target_feature(enable = $feat)]
        pub unsafe fn $name(w: &[u8], x: &[BlockQ8K]) -> f32 {
            debug_assert!(w.len() >= 84 * x.len());
            let m3 = _mm256_set1_epi8(3);
            let mut acc = 0.0f32;
            for (blk, y) in w.chunks_exact(84).zip(x) {
                let mut sum = _mm256_setzero_si256();
                for h in 0..2 {
                    // SAFETY: bytes 16 + 32h .. 48 + 32h lie inside the block.
                    let qv = unsafe {
                        _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * h) as *const __m256i)
                    };
                    for s in 0..4 {
                        let sh = _mm_cvtsi32_si128(2 * s as i32);
                        let qq = _mm256_and_si256(_mm256_srl_epi16(qv, sh), m3);
                        // SAFETY: quants 128h + 32s .. +32 lie inside `y.qs`.
                        let xv = unsafe {
                            let at = 128 * h + 32 * s;
                            _mm256_loadu_si256(y.qs.as_ptr().add(at) as *const __m256i)
                        };
                        let j = 8 * h + 2 * s;
                        // SAFETY: AVX2 is enabled here.
                        let sc = unsafe { pair16(blk[j] & 15, blk[j + 1] & 15) };
                        sum = $madd(sum, _mm256_maddubs_epi16(qq, xv), sc);
                    }
                }
                // SAFETY: 16 scale bytes and 16 bsums are readable.
                let (sc, bs) = unsafe {
                    (
                        _mm_loadu_si128(blk.as_ptr() as *const __m128i),
                        _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i),
                    )
                };
                let mins =
                    _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), _mm_set1_epi8(15)));
                let isum = hsum_i32(sum);
                let summs = hsum_i32(_mm256_madd_epi16(mins, bs));
                // SAFETY: bytes 80..84 of the block hold d and dmin.
                let (d, dmin) = unsafe { f16_pair(blk.as_ptr().add(80)) };
                let dall = y.d * d;
                let dm = y.d * dmin;
                acc += dall * isum as f32 - dm * summs as f32;
            }
            acc
        }
    };
}

/// `acc + madd(p, s)` (AVX2).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn madd_add(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(p, s))
}

/// `acc + madd(p, s)` in one `vpdpwssd`.
#[target_feature(enable = "avx2,avx512f,avx512vl,avx512vnni")]
#[inline]
unsafe fn madd_vnni(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
    _mm256_dpwssd_epi32(acc, p, s)
}

q2_k_dot!(q2_k_dot_avx2, "avx2,fma,f16c", madd_add);
/// Q2_K row · Q8_K activation (AVX-512 VNNI), bit-identical to `q2_k::vec_dot_ref`.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/VNNI and AVX2; `w` holds `x.len()` blocks of 84 bytes.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn q2_k_dot_vnni(w: &[u8], x: &[BlockQ8K]) -> f32 {
    // SAFETY: same contract.
    let [r] = unsafe { q2_k_dot_vnni_n(w, [x]) };
    r
}

/// One Q2_K row against `N` activations, the row's quants and scales unpacked once;
/// lane `i` is bit-identical to `q2_k::vec_dot_ref(w, xs[i])`.
///
/// # Safety
/// As [`q2_k_dot_vnni`], for every `xs[i]` (all of the same length).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn q2_k_dot_vnni_n<const N: usize>(w: &[u8], xs: [&[BlockQ8K]; N]) -> [f32; N] {
    let nb = xs[0].len();
    debug_assert!(w.len() >= 84 * nb && xs.iter().all(|x| x.len() == nb));
    let m3 = _mm256_set1_epi8(3);
    let mut acc = [0.0f32; N];
    for (b, blk) in w.chunks_exact(84).take(nb).enumerate() {
        let mut sum = [_mm256_setzero_si256(); N];
        for h in 0..2 {
            // SAFETY: bytes 16 + 32h .. 48 + 32h lie inside the block.
            let qv = unsafe { _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * h) as *const __m256i) };
            for s in 0..4 {
                let qq =
                    _mm256_and_si256(_mm256_srl_epi16(qv, _mm_cvtsi32_si128(2 * s as i32)), m3);
                let j = 8 * h + 2 * s;
                // SAFETY: AVX2 is enabled here.
                let sc = unsafe { pair16(blk[j] & 15, blk[j + 1] & 15) };
                for (sum, x) in sum.iter_mut().zip(&xs) {
                    // SAFETY: quants 128h + 32s .. +32 lie inside block b of `x`.
                    let xv = unsafe {
                        _mm256_loadu_si256(x[b].qs.as_ptr().add(128 * h + 32 * s) as *const __m256i)
                    };
                    *sum = _mm256_dpwssd_epi32(*sum, _mm256_maddubs_epi16(qq, xv), sc);
                }
            }
        }
        // SAFETY: 16 scale bytes are readable.
        let sc = unsafe { _mm_loadu_si128(blk.as_ptr() as *const __m128i) };
        let mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), _mm_set1_epi8(15)));
        // SAFETY: bytes 80..84 of the block hold d and dmin.
        let (d, dmin) = unsafe { f16_pair(blk.as_ptr().add(80)) };
        for ((acc, sum), x) in acc.iter_mut().zip(sum).zip(&xs) {
            let y = &x[b];
            // SAFETY: 16 bsums are readable.
            let bs = unsafe { _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i) };
            let summs = hsum_i32(_mm256_madd_epi16(mins, bs));
            let dall = y.d * d;
            let dm = y.d * dmin;
            *acc += dall * hsum_i32(sum) as f32 - dm * summs as f32;
        }
    }
    acc
}

macro_rules! q4_k_dot {
    ($name:ident, $feat:literal, $madd:ident) => {
        /// Q4_K row · Q8_K activation, bit-identical to `q4_k::vec_dot_ref`.
        ///
        /// # Safety
        /// The CPU must support the enabled features; `w` holds `x.len()` blocks of 144 bytes.
        #[target_feature(enable = $feat)]
        pub unsafe fn $name(w: &[u8], x: &[BlockQ8K]) -> f32 {
            debug_assert!(w.len() >= 144 * x.len());
            let m4 = _mm256_set1_epi8(15);
            let mut acc = 0.0f32;
            for (blk, y) in w.chunks_exact(144).zip(x) {
                let mut sum = _mm256_setzero_si256();
                let mut summs = 0i32;
                for c in 0..4 {
                    // SAFETY: quant bytes 16 + 32c .. +32 lie inside the block.
                    let qv = unsafe {
                        _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * c) as *const __m256i)
                    };
                    for half in 0..2 {
                        let j = 2 * c + half;
                        let (sc, m) = crate::quant::q4_k::scale_min(&blk[4..16], j);
                        let q = _mm256_and_si256(
                            _mm256_srl_epi16(qv, _mm_cvtsi32_si128(4 * half as i32)),
                            m4,
                        );
                        // SAFETY: quants 32j .. 32j + 32 lie inside `y.qs`.
                        let xv = unsafe {
                            _mm256_loadu_si256(y.qs.as_ptr().add(32 * j) as *const __m256i)
                        };
                        sum = $madd(
                            sum,
                            _mm256_maddubs_epi16(q, xv),
                            _mm256_set1_epi16(sc as i16),
                        );
                        summs += m as i32 * (y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32);
                    }
                }
                // SAFETY: bytes 0..4 of the block hold d and dmin.
                let (d, dmin) = unsafe { f16_pair(blk.as_ptr()) };
                acc += y.d * d * hsum_i32(sum) as f32 - y.d * dmin * summs as f32;
            }
            acc
        }
    };
}

q4_k_dot!(q4_k_dot_avx2, "avx2,fma,f16c", madd_add);
q4_k_dot!(
    q4_k_dot_vnni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    madd_vnni
);

/// F16 row · f32 activation in eight lanes: lane `l` sums elements `8i + l` in
/// order, the lanes are reduced as `((0+4)+(1+5))+((2+6)+(3+7))` and the tail is
/// added last — the same operations as `cpu::dot_f32` on the widened row (widening
/// is exact), so the same bits, without widening the row into a buffer first.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `w` holds `2·x.len()` bytes.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn f16_dot8(w: &[u8], x: &[f32]) -> f32 {
    // SAFETY: same contract.
    let [r] = unsafe { f16_dot8_n(x, [w]) };
    r
}

/// [`f16_dot8`] of `N` rows with the same activation, interleaved so that the `N`
/// accumulator chains overlap; each row's result has the same bits as alone.
///
/// # Safety
/// As [`f16_dot8`], for every row.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn f16_dot8_n<const N: usize>(x: &[f32], rows: [&[u8]; N]) -> [f32; N] {
    debug_assert!(rows.iter().all(|w| w.len() >= 2 * x.len()));
    let n8 = x.len() / 8 * 8;
    let mut acc = [_mm256_setzero_ps(); N];
    for i in (0..n8).step_by(8) {
        // SAFETY: elements i..i+8 of x and of every row are in bounds.
        let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) };
        for (acc, w) in acc.iter_mut().zip(&rows) {
            // SAFETY: as above.
            let wv = unsafe {
                _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(2 * i) as *const __m128i))
            };
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(wv, xv));
        }
    }
    std::array::from_fn(|j| {
        let w = rows[j];
        let mut tail = 0.0f32;
        for i in n8..x.len() {
            let h = u16::from_le_bytes([w[2 * i], w[2 * i + 1]]);
            tail += crate::quant::f16_to_f32(h) * x[i];
        }
        let mut a = [0.0f32; 8];
        // SAFETY: `a` holds eight f32.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), acc[j]) };
        ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + tail
    })
}
