//! Emulated AscendC RoPE, FP8/FP4 row quantisation and KV ring kernels against the CPU.

use super::kernels::*;
use super::tests_basic::{m, p, BLOCKS};
use crate::cpu;
use crate::cpu::testutil::Rng;
use std::ptr::null_mut;

#[test]
fn ascend_rope_is_exact() {
    // The same products and sums as the CPU rotation (only commuted): bit for bit.
    let mut rng = Rng(740);
    for &(heads, hd, n_rot, rows, pos0) in &[
        (8usize, 128usize, 64usize, 1usize, 5usize),
        (64, 512, 64, 1, 1000),
        (3, 20, 8, 3, 77),
        (1, 512, 64, 4, 0),
    ] {
        let params = cpu::RopeParams {
            n_rot,
            ..cpu::RopeParams::compressed()
        };
        let table_rows = pos0 + rows + 3;
        let mut table = vec![0.0f32; table_rows * n_rot];
        cpu::rope_table_fill(&params, 0, &mut table);
        let x = rng.vec(heads * hd * rows, 2.0);
        for inverse in [false, true] {
            let mut want = x.clone();
            for (t, row) in want.chunks_mut(heads * hd).enumerate() {
                let pos = pos0 + t;
                cpu::rope_apply(
                    row,
                    heads,
                    hd,
                    n_rot,
                    &table[pos * n_rot..(pos + 1) * n_rot],
                    inverse,
                );
            }
            for bd in BLOCKS {
                let mut y = vec![0.0f32; x.len()];
                unsafe {
                    aclrtlaunch_rope(
                        bd,
                        null_mut(),
                        p(&x),
                        p(&table),
                        m(&mut y),
                        rows as u32,
                        pos0 as u32,
                        heads as u32,
                        hd as u32,
                        n_rot as u32,
                        inverse as u32,
                        table_rows as u32,
                    )
                };
                assert_eq!(
                    y, want,
                    "rope {heads}x{hd} rot {n_rot} inverse {inverse} blocks {bd}"
                );
            }
        }
    }
}

#[test]
fn ascend_row_quantisers_are_exact() {
    // FP8/FP4 snap to the same grid values (nearest, ties to the even code) with the same
    // power-of-two block scale. The scale here is the exact 2^ceil(log2(amax/max)); the CPU
    // takes log2 in f32, which can only differ when amax/max lies within an ulp above a
    // power of two — never for these random inputs (the test would show it).
    let mut rng = Rng(741);
    for &(d, n_quant, rows) in &[(512usize, 448usize, 1usize), (128, 64, 3), (512, 448, 4)] {
        let mut x = rng.vec(d * rows, 4.0);
        x[3] = 1e-6; // below the amax floor within a block
        x[70..134].iter_mut().for_each(|v| *v *= 1e-4); // a block that uses subnormal steps
        let mut want = x.clone();
        for r in want.chunks_mut(d) {
            cpu::fp8_kv(r, n_quant);
        }
        for bd in BLOCKS {
            let mut y = vec![0.0f32; x.len()];
            unsafe {
                aclrtlaunch_fp8_kv(
                    bd,
                    null_mut(),
                    p(&x),
                    m(&mut y),
                    rows as u32,
                    d as u32,
                    n_quant as u32,
                )
            };
            assert_eq!(y, want, "fp8_kv d {d} rows {rows} blocks {bd}");
        }
    }
    for &(heads, rows) in &[(4usize, 1usize), (64, 1), (3, 3)] {
        let x = rng.vec(heads * 128 * rows, 3.0);
        let mut want = x.clone();
        for r in want.chunks_mut(heads * 128) {
            cpu::indexer_qat(r, 128);
        }
        for bd in BLOCKS {
            let mut y = vec![0.0f32; x.len()];
            unsafe {
                aclrtlaunch_indexer_qat(
                    bd,
                    null_mut(),
                    p(&x),
                    m(&mut y),
                    rows as u32,
                    heads as u32,
                    128,
                )
            };
            assert_eq!(y, want, "indexer_qat heads {heads} rows {rows} blocks {bd}");
        }
    }
}

#[test]
fn ascend_kv_push_raw_is_exact() {
    let mut rng = Rng(742);
    for &(hd, cap, rows, pos0) in &[
        (512usize, 160usize, 1usize, 300usize),
        (128, 7, 5, 4),
        (37, 9, 3, 8),
    ] {
        let kv = rng.vec(hd * rows, 3.0);
        let mut want = rng.vec(hd * cap, 1.0);
        let init = want.clone();
        for t in 0..rows {
            cpu::kv_push_raw(&mut want, cap, hd, pos0 + t, &kv[t * hd..(t + 1) * hd]);
        }
        for bd in BLOCKS {
            let mut raw = init.clone();
            unsafe {
                aclrtlaunch_kv_push_raw(
                    bd,
                    null_mut(),
                    p(&kv),
                    m(&mut raw),
                    rows as u32,
                    pos0 as u32,
                    hd as u32,
                    128,
                    cap as u32,
                )
            };
            assert_eq!(raw, want, "kv_push_raw hd {hd} cap {cap} blocks {bd}");
        }
    }
}
