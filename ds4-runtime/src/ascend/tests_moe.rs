//! Emulated AscendC routed-expert kernels against the CPU kernels.
//!
//! Both sides compute the per-group integer dots exactly and combine them with the same f32
//! operations in the same order, so gate/up and down must agree bit for bit, for every
//! expert range (the shards of a two-device plan) including one that holds no slot.

use super::kernels::*;
use super::tests_basic::{m, p, BLOCKS};
use crate::cpu;
use crate::cpu::testutil::{f16_bytes, Rng};
use crate::quant::q8_k::BlockQ8K;
use std::ptr::null_mut;

fn iq2_weight(rng: &mut Rng, rows: usize, n_in: usize) -> Vec<u8> {
    let mut w = Vec::new();
    for _ in 0..rows * n_in / 256 {
        w.extend(f16_bytes(&[0.001 + 0.004 * rng.uniform().abs()]));
        w.extend((0..64).map(|_| rng.next_u64() as u8));
    }
    w
}

fn q2k_weight(rng: &mut Rng, rows: usize, n_in: usize) -> Vec<u8> {
    let mut w = Vec::new();
    for _ in 0..rows * n_in / 256 {
        w.extend((0..80).map(|_| rng.next_u64() as u8));
        w.extend(f16_bytes(&[
            0.01 * rng.uniform().abs(),
            0.01 * rng.uniform().abs(),
        ]));
    }
    w
}

#[test]
fn ascend_moe_kernels_are_exact() {
    let mut rng = Rng(730);
    // (n_embd, n_ff, n_expert, k, rows): the tiny profile, a wider one, and odd counts.
    for &(ne_mb, n_ff, ne, k, rows) in &[
        (256usize, 256usize, 16usize, 6usize, 1usize),
        (768, 512, 5, 3, 2),
        (4096, 256, 4, 2, 1),
    ] {
        let gate = iq2_weight(&mut rng, ne * n_ff, ne_mb);
        let up = iq2_weight(&mut rng, ne * n_ff, ne_mb);
        let down = q2k_weight(&mut rng, ne * ne_mb, n_ff);
        let x = rng.vec(ne_mb * rows, 2.0);
        let mut xq = vec![BlockQ8K::default(); ne_mb / 256 * rows];
        cpu::quantize_q8_k_rows(&x, ne_mb, rows, &mut xq);
        let ids: Vec<i32> = (0..k * rows).map(|_| rng.below(ne) as i32).collect();
        let mid = rng.vec(k * n_ff * rows, 1.0);
        let mut midq = vec![BlockQ8K::default(); k * n_ff / 256 * rows];
        cpu::quantize_q8_k_rows(&mid, k * n_ff, rows, &mut midq);
        let nbx = ne_mb / 256;
        let nbm = k * n_ff / 256;
        for (e0, e1) in [
            (0u32, ne as u32),
            (0, ne as u32 / 2),
            (ne as u32 / 2, ne as u32),
            (ne as u32, ne as u32),
        ] {
            let (mut wg, mut wu, mut wy) = (
                vec![-7.0f32; k * n_ff * rows],
                vec![-7.0f32; k * n_ff * rows],
                vec![0.0f32; ne_mb * rows],
            );
            for t in 0..rows {
                let r = t * k * n_ff..(t + 1) * k * n_ff;
                let idr = &ids[t * k..(t + 1) * k];
                cpu::moe_gate_up(
                    &gate,
                    &up,
                    ne_mb,
                    n_ff,
                    &xq[t * nbx..(t + 1) * nbx],
                    idr,
                    (e0, e1),
                    &mut wg[r.clone()],
                    &mut wu[r],
                );
                cpu::moe_down(
                    &down,
                    n_ff,
                    ne_mb,
                    &midq[t * nbm..(t + 1) * nbm],
                    idr,
                    (e0, e1),
                    &mut wy[t * ne_mb..(t + 1) * ne_mb],
                );
            }
            for bd in BLOCKS {
                let (mut g, mut u, mut y) = (
                    vec![-7.0f32; wg.len()],
                    vec![-7.0f32; wu.len()],
                    vec![1.0f32; wy.len()],
                );
                unsafe {
                    aclrtlaunch_moe_gate_up(
                        bd,
                        null_mut(),
                        p(&gate),
                        p(&up),
                        p(&xq),
                        p(&ids),
                        m(&mut g),
                        m(&mut u),
                        rows as u32,
                        ne_mb as u32,
                        n_ff as u32,
                        ne as u32,
                        k as u32,
                        e0,
                        e1,
                    );
                    aclrtlaunch_moe_down(
                        bd,
                        null_mut(),
                        p(&down),
                        p(&midq),
                        p(&ids),
                        m(&mut y),
                        rows as u32,
                        n_ff as u32,
                        ne_mb as u32,
                        ne as u32,
                        k as u32,
                        e0,
                        e1,
                    );
                }
                let what = format!("E {ne_mb} FF {n_ff} NE {ne} range {e0}..{e1} blocks {bd}");
                assert_eq!(g, wg, "moe_gate_up gate {what}");
                assert_eq!(u, wu, "moe_gate_up up {what}");
                assert_eq!(y, wy, "moe_down {what}");
            }
        }
    }
}
