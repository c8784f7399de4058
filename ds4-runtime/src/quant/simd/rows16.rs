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

use crate::quant::iq2_xxs::IQ2XXS_GRID;
use crate::quant::q8_k::BlockQ8K;
use crate::quant::QK_K;

/// Weight rows per decoded set (one zmm of i32 lanes).
pub const ROWS: usize = 16;

/// Blocks of each row prefetched ahead of decoding.
const PREFETCH: usize = 4;

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

/// Transposes sixteen rows of sixteen dwords: output `i` holds dword `i` of rows 0..16.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl")]
unsafe fn transpose16x16(w: [__m512i; 16]) -> [__m512i; 16] {
    // t[2i], t[2i+1]: rows 2i, 2i+1 interleaved (dwords 0,1 | 2,3 of each lane).
    let t: [__m512i; 16] = std::array::from_fn(|i| {
        let (a, b) = (w[i & !1], w[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_epi32(a, b)
        } else {
            _mm512_unpackhi_epi32(a, b)
        }
    });
    // u[4q + c]: dword 4L + c of rows 4q..4q + 4 in lane L.
    let u: [__m512i; 16] = std::array::from_fn(|i| {
        let (q, c) = (i / 4, i % 4);
        let (a, b) = (t[4 * q + c / 2], t[4 * q + 2 + c / 2]);
        if c % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    let mut o = [_mm512_setzero_si512(); 16];
    for c in 0..4 {
        let v0 = _mm512_shuffle_i32x4::<0x44>(u[c], u[4 + c]);
        let v1 = _mm512_shuffle_i32x4::<0xee>(u[c], u[4 + c]);
        let v2 = _mm512_shuffle_i32x4::<0x44>(u[8 + c], u[12 + c]);
        let v3 = _mm512_shuffle_i32x4::<0xee>(u[8 + c], u[12 + c]);
        o[c] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        o[4 + c] = _mm512_shuffle_i32x4::<0xdd>(v0, v2);
        o[8 + c] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        o[12 + c] = _mm512_shuffle_i32x4::<0xdd>(v1, v3);
    }
    o
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
}

impl Iq2Rows16 {
    /// Decodes the sixteen rows of `nb` blocks each that start at `w` (row stride
    /// `66·nb` bytes). Buffers grow to the largest `nb` once.
    ///
    /// Block by block (prefetching a few blocks ahead, since sixteen interleaved
    /// rows defeat the hardware prefetchers), the group words are transposed so that
    /// one zmm holds a word of all sixteen rows, and the grid entries, signs and
    /// scales are worked out for the sixteen rows at once.
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
        let zero = _mm512_setzero_si512();
        let bias = _mm512_set1_epi8(-128);
        let m7f = _mm512_set1_epi32(0x7f);
        let one = _mm512_set1_epi32(1);
        let m0f = _mm512_set1_epi8(0x0f);
        // 0x80 for nibbles with an odd number of set bits.
        let parity = _mm512_broadcast_i32x4(_mm_set_epi32(
            0x00808000,
            0x80000080u32 as i32,
            0x80000080u32 as i32,
            0x00808000,
        ));
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_add_epi32(even, one);
        // Byte 0 of each dword into all four of its bytes.
        // Byte k of each dword into all four of its bytes (`rep`), or alone (`byte`).
        let rep: [__m512i; 4] = std::array::from_fn(|k| {
            let c = |d: i32| (4 * d + k as i32) * 0x0101_0101;
            _mm512_broadcast_i32x4(_mm_setr_epi32(c(0), c(1), c(2), c(3)))
        });
        let byte: [__m512i; 4] = std::array::from_fn(|k| {
            let c = |d: i32| (4 * d + k as i32) | (0x8080_8000u32 as i32);
            _mm512_broadcast_i32x4(_mm_setr_epi32(c(0), c(1), c(2), c(3)))
        });
        let (blo, bhi) = (
            _mm512_set1_epi32(0x08040201),
            _mm512_set1_epi32(0x80402010u32 as i32),
        );
        let grid = IQ2XXS_GRID.as_ptr() as *const _;
        let wp = w.as_ptr();
        for b in 0..nb {
            // SAFETY: block b of the 16 rows lies inside `w` (checked above); the
            // packed block inside `qs`, `ls`, `corr` and `d`; grid indices are bytes
            // (< 256). Prefetches never fault.
            unsafe {
                for r in 0..ROWS {
                    let ahead = wp.wrapping_add(r * rb + (b + PREFETCH) * 66);
                    _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(65) as *const i8);
                }
                let t = transpose16x16(std::array::from_fn(|r| {
                    _mm512_loadu_si512(wp.add(r * rb + b * 66 + 2) as *const __m512i)
                }));
                let dh: [u16; ROWS] = std::array::from_fn(|r| {
                    (wp.add(r * rb + b * 66) as *const u16).read_unaligned()
                });
                let dh = _mm256_loadu_si256(dh.as_ptr() as *const __m256i);
                _mm512_storeu_ps(self.d.as_mut_ptr().add(b * ROWS), _mm512_cvtph_ps(dh));
                let mut corr = _mm512_setzero_si512();
                for g in 0..8 {
                    let (a0, a1) = (t[2 * g], t[2 * g + 1]);
                    let ls =
                        _mm512_or_si512(_mm512_slli_epi32::<1>(_mm512_srli_epi32::<28>(a1)), one);
                    _mm512_storeu_si512(
                        self.ls.as_mut_ptr().add((b * 8 + g) * ROWS) as *mut __m512i,
                        ls,
                    );
                    // The four 7-bit sign fields in bytes 0..4, then bit 7 of each byte:
                    // the parity of its seven stored signs (nibble by nibble).
                    let f = |k: i32| {
                        _mm512_and_si512(_mm512_srl_epi32(a1, _mm_cvtsi32_si128(7 * k)), m7f)
                    };
                    let c = _mm512_or_si512(
                        _mm512_or_si512(f(0), _mm512_slli_epi32::<8>(f(1))),
                        _mm512_or_si512(
                            _mm512_slli_epi32::<16>(f(2)),
                            _mm512_slli_epi32::<24>(f(3)),
                        ),
                    );
                    let par = _mm512_xor_si512(
                        _mm512_shuffle_epi8(parity, _mm512_and_si512(c, m0f)),
                        _mm512_shuffle_epi8(
                            parity,
                            _mm512_and_si512(_mm512_srli_epi32::<4>(c), m0f),
                        ),
                    );
                    let signs = _mm512_or_si512(c, par);
                    let mut s = _mm512_setzero_si512();
                    for k in 0..4 {
                        let idx = _mm512_shuffle_epi8(a0, byte[k]);
                        let lo8 = _mm512_i32gather_epi64::<8>(_mm512_castsi512_si256(idx), grid);
                        let hi8 =
                            _mm512_i32gather_epi64::<8>(_mm512_extracti64x4_epi64::<1>(idx), grid);
                        let sb = _mm512_shuffle_epi8(signs, rep[k]);
                        for (h, sel, bits) in [(0, even, blo), (1, odd, bhi)] {
                            let m = _mm512_permutex2var_epi32(lo8, sel, hi8);
                            let neg = _mm512_test_epi8_mask(sb, bits);
                            let q = _mm512_mask_sub_epi8(m, neg, zero, m);
                            let at = ((b * 8 + g) * 8 + 2 * k + h) * 64;
                            _mm512_storeu_si512(self.qs.as_mut_ptr().add(at) as *mut __m512i, q);
                            s = _mm512_dpbusd_epi32(s, bias, q);
                        }
                    }
                    corr = _mm512_add_epi32(corr, _mm512_mullo_epi32(s, ls));
                }
                _mm512_storeu_si512(self.corr.as_mut_ptr().add(b * ROWS) as *mut __m512i, corr);
            }
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
}

impl Q2kRows16 {
    /// Decodes the sixteen rows of `nb` blocks each that start at `w` (row stride
    /// `84·nb` bytes). Buffers grow to the largest `nb` once.
    ///
    /// Block by block (prefetching a few blocks ahead), the sixteen rows' block
    /// dwords are transposed so that one zmm holds a dword of all sixteen rows; each
    /// step's products `q·scale` then come from one `vpshufb` of a per-row table
    /// `[0, s, 2s, 3s]`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL/VNNI, AVX2 and F16C.
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
        let (m03, m0f) = (_mm512_set1_epi8(3), _mm512_set1_epi8(15));
        // Table bytes 1 and 3 take the scale, bytes 2 and 3 twice the scale.
        let m1 = _mm512_set1_epi32(0xff00ff00u32 as i32);
        let m2 = _mm512_set1_epi32(0xffff0000u32 as i32);
        // Byte t of each dword into all four of its bytes, t = 0..4.
        let rep: [__m512i; 4] = std::array::from_fn(|t| {
            let c = |d: i32| (4 * d + t as i32) * 0x0101_0101;
            _mm512_broadcast_i32x4(_mm_setr_epi32(c(0), c(1), c(2), c(3)))
        });
        // Bytes (2t, 2t + 1) of each dword zero-extended to two i16, t = 0, 1.
        let pair: [__m512i; 2] = std::array::from_fn(|t| {
            let c = |d: i32| {
                let (lo, hi) = (4 * d + 2 * t as i32, 4 * d + 2 * t as i32 + 1);
                lo | 0x80 << 8 | hi << 16 | 0x80 << 24
            };
            _mm512_broadcast_i32x4(_mm_setr_epi32(c(0), c(1), c(2), c(3)))
        });
        // The row's byte offset in its 128-bit lane.
        let rowoff = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0x04040404, 0x08080808, 0x0c0c0c0c));
        let wp = w.as_ptr();
        for b in 0..nb {
            // SAFETY: block b of the 16 rows lies inside `w` (checked above), so do the
            // 64 bytes at offsets 0 and 20 of each; the packed block lies inside `qs`,
            // `mins`, `d` and `dmin`. Prefetches never fault.
            unsafe {
                for r in 0..ROWS {
                    let ahead = wp.wrapping_add(r * rb + (b + PREFETCH) * 84);
                    _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(83) as *const i8);
                }
                let blk = |r: usize| wp.add(r * rb + b * 84);
                // Dwords 0..16 of the block (scales, qs 0..48) and 5..21 (.., d, dmin).
                let lo = transpose16x16(std::array::from_fn(|r| {
                    _mm512_loadu_si512(blk(r) as *const __m512i)
                }));
                let hi = transpose16x16(std::array::from_fn(|r| {
                    _mm512_loadu_si512(blk(r).add(20) as *const __m512i)
                }));
                let dword = |i: usize| if i < 16 { lo[i] } else { hi[i - 5] };
                let dd = hi[15];
                _mm512_storeu_ps(
                    self.d.as_mut_ptr().add(b * ROWS),
                    _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd)),
                );
                _mm512_storeu_ps(
                    self.dmin.as_mut_ptr().add(b * ROWS),
                    _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(dd))),
                );
                let mut tbl = [_mm512_setzero_si512(); 16];
                for q in 0..4 {
                    let sc = lo[q];
                    for t in 0..4 {
                        let sv = _mm512_and_si512(_mm512_shuffle_epi8(sc, rep[t]), m0f);
                        tbl[4 * q + t] = _mm512_add_epi8(
                            _mm512_and_si512(sv, m1),
                            _mm512_and_si512(_mm512_add_epi8(sv, sv), m2),
                        );
                    }
                    let mins = _mm512_and_si512(_mm512_srli_epi16::<4>(sc), m0f);
                    for (t, &sel) in pair.iter().enumerate() {
                        let at = (b * 8 + 2 * q + t) * ROWS;
                        _mm512_storeu_si512(
                            self.mins.as_mut_ptr().add(at) as *mut __m512i,
                            _mm512_shuffle_epi8(mins, sel),
                        );
                    }
                }
                for h in 0..2 {
                    for m in 0..8 {
                        let qv = dword(4 + 8 * h + m);
                        for s in 0..4 {
                            let q = _mm512_and_si512(
                                _mm512_srl_epi16(qv, _mm_cvtsi32_si128(2 * s as i32)),
                                m03,
                            );
                            let j = 8 * h + 2 * s + m / 4;
                            let p = _mm512_shuffle_epi8(tbl[j], _mm512_or_si512(q, rowoff));
                            let c = 32 * h + 8 * s + m;
                            _mm512_storeu_si512(
                                self.qs.as_mut_ptr().add((b * 64 + c) * 64) as *mut __m512i,
                                p,
                            );
                        }
                    }
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
