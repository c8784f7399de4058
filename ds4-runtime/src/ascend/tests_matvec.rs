//! Emulated AscendC projections and quantisers against the CPU kernels.

use super::kernels::*;
use super::layout::q8_0_device;
use super::tests_basic::{close, m, p, BLOCKS};
use crate::cpu;
use crate::cpu::testutil::{f16_bytes, Rng};
use crate::quant::q8_0::BlockQ8_0Act;
use crate::quant::q8_k::BlockQ8K;
use std::ptr::null_mut;

/// A random Q8_0 weight of `n_out` rows: f16 scales in ±0.05, random quants.
pub(super) fn q8_0_weight(rng: &mut Rng, n_in: usize, n_out: usize) -> Vec<u8> {
    let mut w = Vec::new();
    for _ in 0..n_out * n_in / 32 {
        w.extend(f16_bytes(&[rng.uniform() * 0.05]));
        w.extend((0..32).map(|_| rng.next_u64() as u8));
    }
    w
}

#[test]
fn ascend_quantizers_are_exact() {
    // Same f32 operations as the CPU (amax, amax/127, 1/d, x·id, round-half-even, clamp):
    // the blocks must be identical, including a zero-padded tail block of a short row.
    let mut rng = Rng(710);
    for &(n, rows) in &[
        (256usize, 1usize),
        (4096, 2),
        (1000, 3),
        (37, 1),
        (16384, 1),
    ] {
        let mut x = rng.vec(n * rows, 3.0);
        x[0] = 0.0;
        if n >= 64 {
            x[32..64].iter_mut().for_each(|v| *v = 0.0); // an all-zero block
        }
        let nb = n.div_ceil(32);
        let mut want = vec![BlockQ8_0Act::default(); nb * rows];
        for t in 0..rows {
            cpu::quantize_q8_0_rows(
                &x[t * n..(t + 1) * n],
                n,
                1,
                &mut want[t * nb..(t + 1) * nb],
            );
        }
        for bd in BLOCKS {
            let mut got = vec![
                BlockQ8_0Act {
                    d: 7.0,
                    qs: [5; 32]
                };
                nb * rows
            ];
            unsafe {
                aclrtlaunch_quantize_q8_0(bd, null_mut(), p(&x), m(&mut got), rows as u32, n as u32)
            };
            assert_eq!(got, want, "quantize_q8_0 n {n} rows {rows} blocks {bd}");
        }
    }
    for &(n, rows) in &[(256usize, 1usize), (4096, 2), (2048 * 6, 1), (768, 3)] {
        let mut x = rng.vec(n * rows, 3.0);
        if n >= 512 {
            x[256..512].iter_mut().for_each(|v| *v = 0.0);
        }
        if n > 1000 {
            x[600] = 9.0; // ties of |max|: the first wins
            x[610] = -9.0;
        }
        let nb = n / 256;
        let mut want = vec![BlockQ8K::default(); nb * rows];
        cpu::quantize_q8_k_rows(&x, n, rows, &mut want);
        for bd in BLOCKS {
            let mut got = vec![
                BlockQ8K {
                    d: 1.0,
                    qs: [3; 256],
                    bsums: [1; 16]
                };
                nb * rows
            ];
            unsafe {
                aclrtlaunch_quantize_q8_k(bd, null_mut(), p(&x), m(&mut got), rows as u32, n as u32)
            };
            assert_eq!(got, want, "quantize_q8_k n {n} rows {rows} blocks {bd}");
        }
    }
}

#[test]
fn ascend_q8_0_matvecs_are_exact() {
    // Per block the integer dot is exact in both, and the blocks are combined in the same
    // order with the same f32 operations: bit for bit. The device reads the weight in its
    // split layout (layout.rs), the CPU in GGUF layout.
    let mut rng = Rng(711);
    for &(n_in, n_out, rows) in &[
        (256usize, 128usize, 1usize),
        (1024, 37, 2),
        (4096 + 32 * 3, 53, 1),
        (8192, 24, 1),
        (32, 9, 3),
    ] {
        let w = q8_0_weight(&mut rng, n_in, n_out);
        let wd = q8_0_device(&w);
        let x = rng.vec(n_in * rows, 2.0);
        let nb = n_in / 32;
        let mut xq = vec![BlockQ8_0Act::default(); nb * rows];
        cpu::quantize_q8_0_rows(&x, n_in, rows, &mut xq);
        let mut want = vec![0.0; n_out * rows];
        cpu::matmul_q8_0(&w, n_in, n_out, &xq, rows, &mut want);
        for bd in BLOCKS {
            let mut y = vec![0.0f32; n_out * rows];
            unsafe {
                aclrtlaunch_matvec_q8_0(
                    bd,
                    null_mut(),
                    p(&wd),
                    p(&xq),
                    m(&mut y),
                    rows as u32,
                    n_in as u32,
                    n_out as u32,
                )
            };
            assert_eq!(
                y, want,
                "matvec_q8_0 {n_in}x{n_out} rows {rows} blocks {bd}"
            );
        }
    }
    for &(gin, groups, opg, rows) in &[
        (128usize, 2usize, 128usize, 1usize),
        (64, 3, 5, 2),
        (4096, 2, 40, 1),
    ] {
        let w = q8_0_weight(&mut rng, gin, groups * opg);
        let wd = q8_0_device(&w);
        let x = rng.vec(gin * groups * rows, 1.0);
        let nbg = gin / 32;
        let mut xq = vec![BlockQ8_0Act::default(); nbg * groups * rows];
        cpu::quantize_q8_0_rows(&x, gin * groups, rows, &mut xq);
        let mut want = vec![0.0; groups * opg * rows];
        cpu::matmul_q8_0_grouped(&w, gin, groups, opg, &xq, rows, &mut want);
        for bd in BLOCKS {
            let mut y = vec![0.0f32; want.len()];
            unsafe {
                aclrtlaunch_matvec_q8_0_grouped(
                    bd,
                    null_mut(),
                    p(&wd),
                    p(&xq),
                    m(&mut y),
                    rows as u32,
                    gin as u32,
                    (groups * opg) as u32,
                    groups as u32,
                )
            };
            assert_eq!(
                y, want,
                "matvec_q8_0_grouped {gin}x{groups}x{opg} blocks {bd}"
            );
        }
    }
}

#[test]
fn ascend_f16_matvec_matches_cpu() {
    // Both sum the exact f32 products in f32 but in different orders (CPU: 8 lanes; here
    // ReduceSum per 4096-value chunk: a tree per 64 values, repeats and chunks in order), so
    // each differs from the exact sum by at most (n/8 + 12)·2^-24·Σ|w·x| (the kernel's
    // (6 + n/64 + n/4096)·2^-24 is smaller). With |w|,|x| <= 2 and n <= 16384 the sum of
    // magnitudes is <= n, so 2·(n/8 + 12)·2^-24·n bounds the difference in absolute terms;
    // we check against that bound computed per case.
    let mut rng = Rng(712);
    for &(n_in, n_out, rows) in &[
        (256usize, 256usize, 1usize),
        (16384, 24, 1),
        (203, 37, 3),
        (4100, 17, 2),
        (1024, 4, 1),
    ] {
        let w = f16_bytes(&rng.vec(n_in * n_out, 2.0));
        let x = rng.vec(n_in * rows, 2.0);
        let mut want = vec![0.0; n_out * rows];
        cpu::matmul_f16(&w, n_in, n_out, &x, rows, &mut want);
        let bound = 2.0 * (n_in as f32 / 8.0 + 12.0) * 2f32.powi(-24) * (n_in as f32 * 4.0);
        for bd in BLOCKS {
            let mut y = vec![0.0f32; n_out * rows];
            unsafe {
                aclrtlaunch_matvec_f16(
                    bd,
                    null_mut(),
                    p(&w),
                    p(&x),
                    m(&mut y),
                    rows as u32,
                    n_in as u32,
                    n_out as u32,
                )
            };
            for (i, (g, r)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (g - r).abs() <= bound,
                    "matvec_f16 {n_in}x{n_out} blocks {bd} elem {i}: {g} vs {r}"
                );
            }
        }
    }
    let _ = close;
}
