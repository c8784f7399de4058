//! The CPU kernels of the model: plain functions over slices, one file per kernel family.
//!
//! Every kernel here knows nothing of plans, arenas or devices. The executor slices its
//! buffers and passes explicit sizes; a kernel reads its inputs, writes its outputs and,
//! for the stateful attention kernels, updates the state slices it is handed. The
//! numerics are those of `MODEL.md` (the section is cited on each function).
//!
//! Invariants shared by all families:
//! * Activations are f32; weights are dequantised as they are read.
//! * Batched kernels take `t` token rows laid out row-major (`[t][width]`) and compute
//!   each row exactly as the one-token call would, so prefill and decode agree bit for bit.
//! * Rayon parallelism never changes results: every output element is produced by one
//!   thread, with a fixed summation order that does not depend on the thread count.
//! * Sizes are checked with `debug_assert!`; the executor guarantees them in release.

pub mod attention;
pub mod compressor;
pub mod hc;
pub mod indexer;
pub mod matvec;
pub mod moe;
pub mod moe_batch;
pub mod norm;
pub mod rope;
pub mod router;

pub use attention::{attention, fp8_kv, kv_push_raw, visible_comp_rows};
pub use compressor::{compressor_update, CompressorState, RowPost};
pub use hc::{embed_f16, hc_expand, hc_head_weights, hc_post, hc_split, hc_weighted_sum};
pub use indexer::{indexer_qat, indexer_topk};
pub use matvec::{
    matmul_f16, matmul_q8_0, matmul_q8_0_grouped, quantize_q8_0_rows, quantize_q8_k_rows,
};
pub use moe::{moe_down, moe_gate_up, moe_swiglu, swiglu};
pub use norm::{head_rms_norm, rms_norm, rms_norm_plain};
pub use rope::{rope_apply, rope_apply_rows, rope_table_fill, rope_table_row, RopeParams};
pub use router::{router_hash, router_probs, router_topk};

/// ds4's "minus infinity": a large finite sentinel (MODEL §0), not IEEE infinity.
pub const NEG_INF: f32 = -1e30;

/// Widens the `i`-th little-endian f16 of `bytes` to f32 (exact).
#[inline]
pub(crate) fn f16_at(bytes: &[u8], i: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])).to_f32()
}

/// Widens a little-endian F16 row (`2·out.len()` bytes) into `out` (exact).
///
/// Uses `half`'s slice conversion, which picks F16C/NEON at run time; a row that is
/// not 2-byte aligned (or a big-endian host) goes through a copy first.
pub(crate) fn f16_row_to_f32(bytes: &[u8], out: &mut [f32]) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    let bytes = &bytes[..2 * out.len()];
    match bytemuck::try_cast_slice::<u8, u16>(bytes) {
        Ok(bits) if cfg!(target_endian = "little") => bits
            .reinterpret_cast::<half::f16>()
            .convert_to_f32_slice(out),
        _ => {
            let bits: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            bits.reinterpret_cast::<half::f16>()
                .convert_to_f32_slice(out)
        }
    }
}

/// Logistic sigmoid in f32, `1 / (1 + e^-z)`.
#[inline]
pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// [`dot_f32`] of `a` with four rows at once: the same bits as four calls, with four
/// independent accumulator chains.
#[inline(always)]
pub(crate) fn dot_f32_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    let n = a.len() / 8 * 8;
    debug_assert!(b.iter().all(|r| r.len() == a.len()));
    let mut acc = [[0.0f32; 8]; 4];
    for i in (0..n).step_by(8) {
        let x = &a[i..i + 8];
        for (acc, r) in acc.iter_mut().zip(&b) {
            let y = &r[i..i + 8];
            for l in 0..8 {
                acc[l] += x[l] * y[l];
            }
        }
    }
    std::array::from_fn(|j| {
        let mut tail = 0.0f32;
        for (x, y) in a[n..].iter().zip(&b[j][n..]) {
            tail += x * y;
        }
        let c = &acc[j];
        ((c[0] + c[4]) + (c[1] + c[5])) + ((c[2] + c[6]) + (c[3] + c[7])) + tail
    })
}

/// `out[k][j] = dot_f32(xs[k], rows[j])` in eight AVX lanes: lane `l` sums the products
/// of elements `8i + l` in order (a multiply, then an add), the lanes reduce as
/// `((0+4)+(1+5))+((2+6)+(3+7))` and the tail comes last: `dot_f32`'s operations, so
/// its bits, with each row load shared by the `N` activations.
///
/// # Safety
/// The CPU must support AVX2; all slices have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dots8_avx2<const N: usize>(
    xs: [&[f32]; N],
    rows: [&[f32]; 4],
) -> [[f32; 4]; N] {
    use std::arch::x86_64::*;
    let len = rows[0].len();
    debug_assert!(xs.iter().chain(&rows).all(|v| v.len() == len));
    let n8 = len / 8 * 8;
    let mut acc = [[_mm256_setzero_ps(); 4]; N];
    for i in (0..n8).step_by(8) {
        // SAFETY: elements i..i + 8 of every slice are in bounds.
        unsafe {
            let y: [__m256; 4] = std::array::from_fn(|j| _mm256_loadu_ps(rows[j].as_ptr().add(i)));
            for k in 0..N {
                let xv = _mm256_loadu_ps(xs[k].as_ptr().add(i));
                for j in 0..4 {
                    acc[k][j] = _mm256_add_ps(acc[k][j], _mm256_mul_ps(xv, y[j]));
                }
            }
        }
    }
    std::array::from_fn(|k| {
        std::array::from_fn(|j| {
            let mut c = [0.0f32; 8];
            // SAFETY: `c` holds eight f32.
            unsafe { _mm256_storeu_ps(c.as_mut_ptr(), acc[k][j]) };
            let mut tail = 0.0f32;
            for (x, y) in xs[k][n8..].iter().zip(&rows[j][n8..]) {
                tail += x * y;
            }
            ((c[0] + c[4]) + (c[1] + c[5])) + ((c[2] + c[6]) + (c[3] + c[7])) + tail
        })
    })
}

/// f32 dot product with eight running partial sums, reduced in a fixed order.
///
/// The order depends only on the length, so every caller gets the same bits for the
/// same inputs whatever the thread layout. (Measured: wider accumulators or an AVX2
/// clone are no faster for the 128- to 4096-wide rows of this model.)
#[inline(always)]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[cfg(test)]
mod thread_invariance {
    //! Results must not depend on the thread count: the heavy kernels run in a
    //! 1-thread and a 3-thread pool and must agree bit for bit.

    use super::testutil::{f16_bytes, Rng};
    use super::*;
    use crate::quant::q8_0::BlockQ8_0Act;

    fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(f)
    }

    #[test]
    fn heavy_kernels_agree_across_thread_counts() {
        let mut rng = Rng(90);
        let (n_in, n_out, t) = (96, 53, 4);
        let wf = f16_bytes(&rng.vec(n_in * n_out, 1.0));
        let x = rng.vec(n_in * t, 1.0);
        let mut wq = Vec::new();
        for _ in 0..n_out * n_in / 32 {
            wq.extend(f16_bytes(&[0.01]));
            wq.extend((0..32).map(|_| rng.next_u64() as u8));
        }
        let (heads, hd, cap, window) = (5, 32, 20, 12);
        let mut raw = vec![0.0; cap * hd];
        for p in 0..30 {
            kv_push_raw(&mut raw, cap, hd, p, &rng.vec(hd, 1.0));
        }
        let comp = rng.vec(8 * hd, 1.0);
        let q = rng.vec(heads * hd, 1.0);
        let sinks = rng.vec(heads, 1.0);
        let rows = rng.vec(40 * hd, 1.0);

        let run = || {
            let mut yf = vec![0.0; n_out * t];
            matmul_f16(&wf, n_in, n_out, &x, t, &mut yf);
            let mut xq = vec![BlockQ8_0Act::default(); n_in / 32 * t];
            quantize_q8_0_rows(&x, n_in, t, &mut xq);
            let mut yq = vec![0.0; n_out * t];
            matmul_q8_0(&wq, n_in, n_out, &xq, t, &mut yq);
            let mut att = vec![0.0; heads * hd];
            attention(
                &q,
                &sinks,
                &raw,
                cap,
                window,
                Some(&comp),
                4,
                None,
                heads,
                hd,
                29,
                &mut att,
            );
            let mut sel = vec![0; 7];
            indexer_topk(&q[..4 * hd], &sinks, &rows, 4, hd, 7, 4, 159, &mut sel);
            (yf, yq, att, sel)
        };
        assert_eq!(in_pool(1, run), in_pool(3, run));
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared test helpers: a small deterministic generator and an f16 encoder.

    /// SplitMix64: deterministic, dependency-free random numbers for the tests.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        /// Uniform in [-1, 1).
        pub fn uniform(&mut self) -> f32 {
            ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
        pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
            (0..n).map(|_| self.uniform() * scale).collect()
        }
    }

    /// Encodes f32 values as little-endian f16 bytes.
    pub fn f16_bytes(v: &[f32]) -> Vec<u8> {
        v.iter()
            .flat_map(|&x| half::f16::from_f32(x).to_bits().to_le_bytes())
            .collect()
    }

    /// Decodes little-endian f16 bytes to f64.
    pub fn f16_decode(b: &[u8]) -> Vec<f64> {
        b.chunks_exact(2)
            .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64())
            .collect()
    }
}

#[cfg(test)]
mod pipeline_tests;

#[cfg(test)]
mod f16_row_tests {
    use super::testutil::{f16_bytes, Rng};

    #[test]
    fn aligned_and_unaligned_rows_widen_exactly() {
        let v = Rng(80).vec(37, 100.0);
        let b = f16_bytes(&v);
        let mut padded = vec![0u8];
        padded.extend(&b);
        for bytes in [&b[..], &padded[1..]] {
            let mut out = vec![0.0; 37];
            super::f16_row_to_f32(bytes, &mut out);
            for (i, o) in out.iter().enumerate() {
                assert_eq!(*o, super::f16_at(&b, i));
            }
        }
    }
}
