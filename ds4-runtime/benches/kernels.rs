//! Single-thread throughput of the quantised dot products on every path of this
//! machine (`cargo bench -p ds4-runtime --bench kernels`): weight GB/s streamed
//! through `vec_dot` over a 256 MiB matrix, best of three passes.

use std::time::Instant;

use ds4_runtime::quant::q8_0::{self, BlockQ8_0Act};
use ds4_runtime::quant::q8_k::{self, BlockQ8K};
use ds4_runtime::quant::simd::Isa;
use ds4_runtime::quant::{iq2_xxs, q2_k, q4_k};

const BYTES: usize = 256 << 20;

fn weights(block: usize, scale_at: &[usize]) -> Vec<u8> {
    let mut s = 0x1234_5678_9abc_def0u64;
    let mut w: Vec<u8> = (0..BYTES)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect();
    for b in w.chunks_exact_mut(block) {
        for &o in scale_at {
            b[o..o + 2].copy_from_slice(&0x2c00u16.to_le_bytes());
        }
    }
    w
}

fn run<X>(
    name: &str,
    n_in_blocks: usize,
    block: usize,
    w: &[u8],
    x: &[X],
    dot: impl Fn(Isa, &[u8], &[X]) -> f32,
) {
    let rb = n_in_blocks * block;
    for isa in Isa::available() {
        let mut best = f64::MAX;
        let mut sink = 0.0f32;
        for _ in 0..3 {
            let t0 = Instant::now();
            for row in w.chunks_exact(rb) {
                sink += dot(isa, row, x);
            }
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "{name:8} {isa:?}: {:.2} GB/s ({sink:e})",
            w.len() as f64 / best / 1e9
        );
    }
}

fn main() {
    let v: Vec<f32> = (0..4096)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let mut xa = vec![BlockQ8_0Act::default(); 128];
    q8_0::quantize_act(&v, &mut xa);
    let mut xk = vec![BlockQ8K::default(); 16];
    q8_k::quantize(&v, &mut xk);
    run("q8_0", 128, 34, &weights(34, &[0]), &xa, q8_0::vec_dot_isa);
    run(
        "iq2_xxs",
        16,
        66,
        &weights(66, &[0]),
        &xk,
        iq2_xxs::vec_dot_isa,
    );
    run(
        "q2_k",
        8,
        84,
        &weights(84, &[80, 82]),
        &xk[..8],
        q2_k::vec_dot_isa,
    );
    run(
        "q4_k",
        16,
        144,
        &weights(144, &[0, 2]),
        &xk,
        q4_k::vec_dot_isa,
    );
}
