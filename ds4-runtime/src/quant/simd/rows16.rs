//! Sixteen routed-expert weight rows against one token per instruction (AVX-512
//! VNNI), for prefill.
//!
//! In a prefill chunk each selected expert serves many tokens, so its IQ2_XXS and
//! Q2_K rows are decoded once, sixteen rows at a time, into plain bytes laid out
//! `[block][step][row][4]`: one zmm then holds the same four weights of sixteen
//! rows, and every token routed to the expert takes one `vpdpbusd` per four
//! elements for all sixteen rows (its four activation bytes broadcast), with no
//! horizontal sums and no per-token decoding.
//!
//! * IQ2_XXS rows decode to signed bytes; the activations are biased to unsigned
//!   (`q + 128`, [`Biased`]) and the bias, `128·Σ_g ls_g·Σ w`, is precomputed per
//!   row and block at decoding. Each group's sum is scaled by its `2s+1` per row.
//! * Q2_K rows decode to `q·scale` (at most 45, unsigned); the activations stay
//!   signed and the min term takes one `vpdpwssd` per two sub-blocks.
//!
//! Every integer block sum is exact and each lane combines its blocks in f32 with
//! the reference's operations in the reference's order, so every (row, token)
//! result has the bits of `iq2_xxs::vec_dot_ref` / `q2_k::vec_dot_ref`.

use std::arch::x86_64::*;

use crate::quant::f16_to_f32;
use crate::quant::iq2_xxs::IQ2XXS_GRID;
use crate::quant::q8_k::BlockQ8K;
use crate::quant::QK_K;

/// Weight rows per decoded set (one zmm of i32 lanes).
pub const ROWS: usize = 16;

/// Q8_K activations with their quants biased to unsigned (`q + 128`), token-major.
#[derive(Default)]
pub struct Biased {
    nb: usize,
    qs: Vec<u8>,
    d: Vec<f32>,
}

impl Biased {
    /// Copies `x` (tokens of `nb` blocks each, back to back). Buffers grow once.
    pub fn fill(&mut self, x: &[BlockQ8K], nb: usize) {
        self.nb = nb;
        self.qs.clear();
        self.d.clear();
        for blk in x {
            self.qs.extend(blk.qs.iter().map(|&q| q as u8 ^ 0x80));
            self.d.push(blk.d);
        }
    }

    /// Tokens held.
    pub fn tokens(&self) -> usize {
        self.d.len().checked_div(self.nb).unwrap_or(0)
    }
}

/// The `nb·8` groups' sign masks, scales and grid indices of one IQ2_XXS block
/// (vectorised as in `x86::iq2_xxs_dot_vnni_n`).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn iq2_block_words(blk: &[u8]) -> ([u32; 8], [u32; 8], [u32; 8]) {
    let (m7, m4) = (_mm256_set1_epi32(0x7f), _mm256_set1_epi8(0x0f));
    let o = -128i8;
    // 0x80 for nibbles with an odd number of set bits.
    let parity = _mm256_setr_epi8(
        0, o, o, 0, o, 0, 0, o, o, 0, 0, o, 0, o, o, 0, 0, o, o, 0, o, 0, 0, o, o, 0, 0, o, 0, o,
        o, 0,
    );
    debug_assert!(blk.len() >= 66);
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
    let lv = _mm256_or_si256(
        _mm256_slli_epi32::<1>(_mm256_srli_epi32::<28>(a1)),
        _mm256_set1_epi32(1),
    );
    let (mut signs, mut scales, mut idx) = ([0u32; 8], [0u32; 8], [0u32; 8]);
    // SAFETY: each array holds eight u32.
    unsafe {
        _mm256_storeu_si256(signs.as_mut_ptr() as *mut __m256i, sv);
        _mm256_storeu_si256(scales.as_mut_ptr() as *mut __m256i, lv);
        _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, a0);
    }
    (signs, scales, idx)
}

/// Transposes sixteen rows of eight dwords: input `z[i]` holds row `i` in its low
/// half and row `i + 8` in its high half; output `j` holds dword `j` of rows 0..16.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl")]
unsafe fn transpose16x8(z: [__m512i; 8]) -> [__m512i; 8] {
    let t = [
        _mm512_unpacklo_epi32(z[0], z[1]),
        _mm512_unpackhi_epi32(z[0], z[1]),
        _mm512_unpacklo_epi32(z[2], z[3]),
        _mm512_unpackhi_epi32(z[2], z[3]),
        _mm512_unpacklo_epi32(z[4], z[5]),
        _mm512_unpackhi_epi32(z[4], z[5]),
        _mm512_unpacklo_epi32(z[6], z[7]),
        _mm512_unpackhi_epi32(z[6], z[7]),
    ];
    // u[0..4]: dwords (0|4), (1|5), (2|6), (3|7) of rows 0..4; u[4..8] of rows 4..8.
    let u = [
        _mm512_unpacklo_epi64(t[0], t[2]),
        _mm512_unpackhi_epi64(t[0], t[2]),
        _mm512_unpacklo_epi64(t[1], t[3]),
        _mm512_unpackhi_epi64(t[1], t[3]),
        _mm512_unpacklo_epi64(t[4], t[6]),
        _mm512_unpackhi_epi64(t[4], t[6]),
        _mm512_unpacklo_epi64(t[5], t[7]),
        _mm512_unpackhi_epi64(t[5], t[7]),
    ];
    let lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    let hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    let mut o = [_mm512_setzero_si512(); 8];
    for j in 0..4 {
        o[j] = _mm512_permutex2var_epi64(u[j], lo, u[j + 4]);
        o[j + 4] = _mm512_permutex2var_epi64(u[j], hi, u[j + 4]);
    }
    o
}

/// Loads 32 bytes at `rows[i]` and `rows[i + 8]` for the eight inputs of [`transpose16x8`].
#[target_feature(enable = "avx2,avx512f")]
#[inline]
unsafe fn load16x32(base: *const u8, stride: usize) -> [__m512i; 8] {
    std::array::from_fn(|i| {
        // SAFETY: the caller guarantees 32 readable bytes at rows i and i + 8.
        unsafe {
            let a = _mm256_loadu_si256(base.add(i * stride) as *const __m256i);
            let b = _mm256_loadu_si256(base.add((i + 8) * stride) as *const __m256i);
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b)
        }
    })
}

/// Sixteen IQ2_XXS rows decoded for [`Iq2Rows16::dot`].
#[derive(Default)]
pub struct Iq2Rows16 {
    nb: usize,
    /// `[block][group][step][row][4]` signed weights.
    qs: Vec<i8>,
    /// `[block][group][row]` group scales `2s + 1`.
    ls: Vec<i32>,
    /// `[block][row]` `128·Σ_g ls_g·Σ w` (the activation bias to remove).
    corr: Vec<i32>,
    /// `[block][row]` block scales.
    d: Vec<f32>,
    /// The sixteen rows in natural order, `[row][nb·256]`.
    tmp: Vec<i8>,
}

impl Iq2Rows16 {
    /// Decodes the sixteen rows of `nb` blocks each that start at `w` (row stride
    /// `66·nb` bytes). Buffers grow to the largest `nb` once.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL/VNNI, AVX2 and F16C.
    ///
    /// # Panics
    /// If `w` is shorter than sixteen rows.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn decode(&mut self, w: &[u8], nb: usize) {
        let rb = 66 * nb;
        assert!(w.len() >= ROWS * rb, "Iq2Rows16::decode: short rows");
        self.nb = nb;
        self.qs.resize(nb * 8 * 8 * 64, 0);
        self.ls.resize(nb * 8 * ROWS, 0);
        self.corr.resize(nb * ROWS, 0);
        self.d.resize(nb * ROWS, 0.0);
        self.tmp.resize(ROWS * nb * QK_K, 0);
        let zero = _mm512_setzero_si512();
        let bias = _mm512_set1_epi8(-128);
        // Row by row, so each row is read in order (the prefetchers follow).
        for r in 0..ROWS {
            for b in 0..nb {
                let blk = &w[r * rb + b * 66..r * rb + b * 66 + 66];
                self.d[b * ROWS + r] = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
                // SAFETY: the block has 66 bytes; the features are enabled.
                let (signs, scales, idx) = unsafe { iq2_block_words(blk) };
                // Two groups per step: eight grid entries gathered, 64 signs applied.
                for p in 0..4 {
                    // SAFETY: `idx` and `signs` hold eight u32 (groups 2p, 2p + 1); the
                    // grid has 256 entries and every index is a byte; `tmp` holds 16
                    // rows of nb·256 bytes.
                    unsafe {
                        let ib = _mm_loadl_epi64(idx.as_ptr().add(2 * p) as *const __m128i);
                        let mag = _mm512_i64gather_epi64::<8>(
                            _mm512_cvtepu8_epi64(ib),
                            IQ2XXS_GRID.as_ptr() as *const _,
                        );
                        let m = (signs.as_ptr().add(2 * p) as *const u64).read_unaligned();
                        let q = _mm512_mask_sub_epi8(mag, m, zero, mag);
                        let at = (r * nb + b) * QK_K + 64 * p;
                        _mm512_storeu_si512(self.tmp.as_mut_ptr().add(at) as *mut __m512i, q);
                    }
                }
                for (g, &l) in scales.iter().enumerate() {
                    self.ls[(b * 8 + g) * ROWS + r] = l as i32;
                }
            }
        }
        for b in 0..nb {
            let mut corr = _mm512_setzero_si512();
            for g in 0..8 {
                // SAFETY: 16 rows × nb·256 bytes in `tmp`; the packed group lies in `qs`
                // and its scales in `ls`.
                unsafe {
                    let src = self.tmp.as_ptr().add(b * QK_K + 32 * g) as *const u8;
                    let o = transpose16x8(load16x32(src, nb * QK_K));
                    let mut s = _mm512_setzero_si512();
                    for (j, v) in o.iter().enumerate() {
                        let at = ((b * 8 + g) * 8 + j) * 64;
                        _mm512_storeu_si512(self.qs.as_mut_ptr().add(at) as *mut __m512i, *v);
                        s = _mm512_dpbusd_epi32(s, bias, *v);
                    }
                    let ls = _mm512_loadu_si512(
                        self.ls.as_ptr().add((b * 8 + g) * ROWS) as *const __m512i
                    );
                    corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(s, ls));
                }
            }
            // SAFETY: `corr` holds nb·16 i32.
            unsafe {
                _mm512_storeu_si512(self.corr.as_mut_ptr().add(b * ROWS) as *mut __m512i, corr)
            };
        }
    }

    /// The decoded rows times `T` tokens of `x` (indices `tok`): `out[t][row]` has the
    /// bits of `iq2_xxs::vec_dot_ref(row, token tok[t])`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL/VNNI; rows were decoded with `x`'s block count.
    ///
    /// # Panics
    /// If a token index is out of range or the block counts differ.
    #[allow(clippy::needless_range_loop)] // `b` and `t` index several arrays
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn dot<const T: usize>(&self, x: &Biased, tok: [usize; T]) -> [[f32; ROWS]; T] {
        let nb = self.nb;
        assert!(
            x.nb == nb && tok.iter().all(|&t| t < x.tokens()),
            "Iq2Rows16::dot"
        );
        let xq: [*const u8; T] = tok.map(|t| x.qs[t * nb * QK_K..].as_ptr());
        let xd: [&[f32]; T] = tok.map(|t| &x.d[t * nb..(t + 1) * nb]);
        let mut acc = [_mm512_setzero_ps(); T];
        let w = self.qs.as_ptr();
        for b in 0..nb {
            let mut bsum = [_mm512_setzero_si512(); T];
            for g in 0..8 {
                let (mut r0, mut r1) = ([_mm512_setzero_si512(); T], [_mm512_setzero_si512(); T]);
                let base = (b * 8 + g) * 8;
                for j in (0..8).step_by(2) {
                    // SAFETY: the packed steps and the tokens' quants are in bounds
                    // (sizes set at decoding and checked above).
                    unsafe {
                        let w0 = _mm512_loadu_si512(w.add((base + j) * 64) as *const __m512i);
                        let w1 = _mm512_loadu_si512(w.add((base + j + 1) * 64) as *const __m512i);
                        for t in 0..T {
                            let p = xq[t].add(b * QK_K + 32 * g + 4 * j) as *const i32;
                            r0[t] = _mm512_dpbusd_epi32(
                                r0[t],
                                _mm512_set1_epi32(p.read_unaligned()),
                                w0,
                            );
                            r1[t] = _mm512_dpbusd_epi32(
                                r1[t],
                                _mm512_set1_epi32(p.add(1).read_unaligned()),
                                w1,
                            );
                        }
                    }
                }
                // SAFETY: the group's scales are in bounds.
                let ls = unsafe {
                    _mm512_loadu_si512(self.ls.as_ptr().add((b * 8 + g) * ROWS) as *const __m512i)
                };
                for t in 0..T {
                    bsum[t] = _mm512_add_epi32(
                        bsum[t],
                        _mm512_mullo_epi32(_mm512_add_epi32(r0[t], r1[t]), ls),
                    );
                }
            }
            // SAFETY: block b's corrections and scales are in bounds.
            let (corr, d) = unsafe {
                (
                    _mm512_loadu_si512(self.corr.as_ptr().add(b * ROWS) as *const __m512i),
                    _mm512_loadu_ps(self.d.as_ptr().add(b * ROWS)),
                )
            };
            for t in 0..T {
                let s = _mm512_cvtepi32_ps(_mm512_sub_epi32(bsum[t], corr));
                let dd = _mm512_mul_ps(d, _mm512_set1_ps(xd[t][b]));
                acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(dd, s));
            }
        }
        let mut out = [[0.0f32; ROWS]; T];
        for t in 0..T {
            // SAFETY: `out[t]` holds 16 f32.
            unsafe {
                _mm512_storeu_ps(
                    out[t].as_mut_ptr(),
                    _mm512_mul_ps(_mm512_set1_ps(0.125), acc[t]),
                )
            };
        }
        out
    }
}

/// Sixteen Q2_K rows decoded for [`Q2kRows16::dot`].
#[derive(Default)]
pub struct Q2kRows16 {
    nb: usize,
    /// `[block][step 0..64][row][4]` products `q·scale`.
    qs: Vec<u8>,
    /// `[block][pair 0..8][row]` the two sub-blocks' mins as i16 pairs.
    mins: Vec<i32>,
    /// `[block][row]` block scales.
    d: Vec<f32>,
    /// `[block][row]` block min scales.
    dmin: Vec<f32>,
    /// The sixteen rows in natural order, `[row][nb·256]`, then their mins,
    /// `[row][block][32]`.
    tmp: Vec<u8>,
}

impl Q2kRows16 {
    /// Decodes the sixteen rows of `nb` blocks each that start at `w` (row stride
    /// `84·nb` bytes). Buffers grow to the largest `nb` once.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL/VNNI and AVX2.
    ///
    /// # Panics
    /// If `w` is shorter than sixteen rows.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn decode(&mut self, w: &[u8], nb: usize) {
        let rb = 84 * nb;
        assert!(w.len() >= ROWS * rb, "Q2kRows16::decode: short rows");
        self.nb = nb;
        self.qs.resize(nb * 64 * 64, 0);
        self.mins.resize(nb * 8 * ROWS, 0);
        self.d.resize(nb * ROWS, 0.0);
        self.dmin.resize(nb * ROWS, 0.0);
        self.tmp.resize(ROWS * nb * (QK_K + 32), 0);
        let m3 = _mm256_set1_epi8(3);
        let m15 = _mm_set1_epi8(15);
        // Table bytes 1 and 3 take the scale, bytes 2 and 3 twice the scale.
        let m1 = _mm256_set1_epi32(0xff00ff00u32 as i32);
        let m2 = _mm256_set1_epi32(0xffff0000u32 as i32);
        let mins_at = ROWS * nb * QK_K;
        // Row by row, so each row is read in order (the prefetchers follow).
        for r in 0..ROWS {
            for b in 0..nb {
                let blk = &w[r * rb + b * 84..r * rb + b * 84 + 84];
                self.d[b * ROWS + r] = f16_to_f32(u16::from_le_bytes([blk[80], blk[81]]));
                self.dmin[b * ROWS + r] = f16_to_f32(u16::from_le_bytes([blk[82], blk[83]]));
                // SAFETY: the block has 84 bytes; `tmp` holds the natural rows and mins.
                unsafe {
                    let sc = _mm_loadu_si128(blk.as_ptr() as *const __m128i);
                    let mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), m15));
                    _mm256_storeu_si256(
                        self.tmp.as_mut_ptr().add(mins_at + 32 * (r * nb + b)) as *mut __m256i,
                        mins,
                    );
                    let sc2 = _mm256_broadcastsi128_si256(_mm_and_si128(sc, m15));
                    for h in 0..2 {
                        let qv =
                            _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * h) as *const __m256i);
                        for s in 0..4 {
                            let q = _mm256_and_si256(
                                _mm256_srl_epi16(qv, _mm_cvtsi32_si128(2 * s as i32)),
                                m3,
                            );
                            let j = (8 * h + 2 * s) as i8;
                            let sel = _mm256_set_m128i(_mm_set1_epi8(j + 1), _mm_set1_epi8(j));
                            let sv = _mm256_shuffle_epi8(sc2, sel);
                            let tbl = _mm256_add_epi8(
                                _mm256_and_si256(sv, m1),
                                _mm256_and_si256(_mm256_add_epi8(sv, sv), m2),
                            );
                            _mm256_storeu_si256(
                                self.tmp
                                    .as_mut_ptr()
                                    .add((r * nb + b) * QK_K + 128 * h + 32 * s)
                                    as *mut __m256i,
                                _mm256_shuffle_epi8(tbl, q),
                            );
                        }
                    }
                }
            }
        }
        for b in 0..nb {
            // SAFETY: `tmp` holds the 16 natural rows and their mins; the packed block
            // lies inside `qs` and `mins`.
            unsafe {
                for c in 0..8 {
                    let src = self.tmp.as_ptr().add(b * QK_K + 32 * c);
                    let o = transpose16x8(load16x32(src, nb * QK_K));
                    for (j, v) in o.iter().enumerate() {
                        let at = ((b * 64) + 8 * c + j) * 64;
                        _mm512_storeu_si512(self.qs.as_mut_ptr().add(at) as *mut __m512i, *v);
                    }
                }
                let src = self.tmp.as_ptr().add(mins_at + 32 * b);
                let o = transpose16x8(load16x32(src, 32 * nb));
                for (p, v) in o.iter().enumerate() {
                    let at = (b * 8 + p) * ROWS;
                    _mm512_storeu_si512(self.mins.as_mut_ptr().add(at) as *mut __m512i, *v);
                }
            }
        }
    }

    /// The decoded rows times the `T` activations `xs`: `out[t][row]` has the bits of
    /// `q2_k::vec_dot_ref(row, xs[t])`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL/VNNI.
    ///
    /// # Panics
    /// If an activation's block count differs from the decoded rows'.
    #[allow(clippy::needless_range_loop)] // `b` and `t` index several arrays
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn dot<const T: usize>(&self, xs: [&[BlockQ8K]; T]) -> [[f32; ROWS]; T] {
        let nb = self.nb;
        assert!(
            xs.iter().all(|x| x.len() == nb),
            "Q2kRows16::dot: block count"
        );
        let mut acc = [_mm512_setzero_ps(); T];
        let w = self.qs.as_ptr();
        for b in 0..nb {
            let (mut s0, mut s1) = ([_mm512_setzero_si512(); T], [_mm512_setzero_si512(); T]);
            let xq: [*const i32; T] = std::array::from_fn(|t| xs[t][b].qs.as_ptr() as *const i32);
            for c in (0..64).step_by(2) {
                // SAFETY: the packed steps lie inside `qs`; 256 quants per block.
                unsafe {
                    let w0 = _mm512_loadu_si512(w.add((b * 64 + c) * 64) as *const __m512i);
                    let w1 = _mm512_loadu_si512(w.add((b * 64 + c + 1) * 64) as *const __m512i);
                    for t in 0..T {
                        let x0 = _mm512_set1_epi32(xq[t].add(c).read_unaligned());
                        let x1 = _mm512_set1_epi32(xq[t].add(c + 1).read_unaligned());
                        s0[t] = _mm512_dpbusd_epi32(s0[t], w0, x0);
                        s1[t] = _mm512_dpbusd_epi32(s1[t], w1, x1);
                    }
                }
            }
            let mut summs = [_mm512_setzero_si512(); T];
            for p in 0..8 {
                // SAFETY: the block's min pairs lie inside `mins`; 16 bsums per block.
                unsafe {
                    let m = _mm512_loadu_si512(
                        self.mins.as_ptr().add((b * 8 + p) * ROWS) as *const __m512i
                    );
                    for t in 0..T {
                        let bs = (xs[t][b].bsums.as_ptr() as *const i32)
                            .add(p)
                            .read_unaligned();
                        summs[t] = _mm512_dpwssd_epi32(summs[t], m, _mm512_set1_epi32(bs));
                    }
                }
            }
            // SAFETY: block b's scales are in bounds.
            let (d, dmin) = unsafe {
                (
                    _mm512_loadu_ps(self.d.as_ptr().add(b * ROWS)),
                    _mm512_loadu_ps(self.dmin.as_ptr().add(b * ROWS)),
                )
            };
            for t in 0..T {
                let yd = _mm512_set1_ps(xs[t][b].d);
                let dall = _mm512_mul_ps(yd, d);
                let dm = _mm512_mul_ps(yd, dmin);
                let isum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0[t], s1[t]));
                let summs = _mm512_cvtepi32_ps(summs[t]);
                acc[t] = _mm512_add_ps(
                    acc[t],
                    _mm512_sub_ps(_mm512_mul_ps(dall, isum), _mm512_mul_ps(dm, summs)),
                );
            }
        }
        let mut out = [[0.0f32; ROWS]; T];
        for t in 0..T {
            // SAFETY: `out[t]` holds 16 f32.
            unsafe { _mm512_storeu_ps(out[t].as_mut_ptr(), acc[t]) };
        }
        out
    }
}
