//! Memory-bandwidth floor: sums a 2 GiB buffer with 1 thread and with every
//! thread of the rayon pool (`cargo bench -p ds4-runtime --bench bandwidth`).
//! Prints the best of five passes per setting, in GB/s (10^9 bytes).

use std::time::Instant;

use rayon::prelude::*;

/// Sum of `v` with eight independent lanes (vectorised by the compiler).
fn sum(v: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    for c in v.chunks_exact(8) {
        for l in 0..8 {
            acc[l] = acc[l].wrapping_add(c[l]);
        }
    }
    acc.iter().fold(0, |a, &b| a.wrapping_add(b))
}

fn main() {
    let bytes: usize = std::env::var("DS4_BW_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 30);
    let v: Vec<u64> = (0..bytes / 8).map(|i| i as u64).collect();
    let threads = rayon::current_num_threads();
    for t in [1, threads] {
        let mut best = f64::MAX;
        let mut check = 0u64;
        for _ in 0..5 {
            let t0 = Instant::now();
            check = if t == 1 {
                sum(&v)
            } else {
                v.par_chunks(v.len().div_ceil(t))
                    .map(sum)
                    .reduce(|| 0, |a, b| a.wrapping_add(b))
            };
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "threads {t}: {:.2} GB/s (best of 5, {} MiB, checksum {check:x})",
            bytes as f64 / best / 1e9,
            bytes >> 20
        );
    }
}
