//! Emulated AscendC attention, indexer and compressor kernels against the CPU kernels.

use super::kernels::*;
use super::tests_basic::{close, m, p, BLOCKS};
use crate::cpu;
use crate::cpu::testutil::Rng;
use crate::quant::f16_round;
use std::ptr::{null, null_mut};

// Attention tolerance: rows and queries are O(1). The kernel's scores differ from the
// CPU's by the dot order (≤ hd·2^-24·Σ|q·r|/√hd ≈ 1e-6); the online softmax rescales the
// accumulator once per 16-row tile (a few ulps per tile) and divides at the end like the
// CPU. For ≤ 700 rows, 2e-5 relative to max|out| bounds the difference (the CPU's own
// test allows 2e-5 against an f64 reference).
const ATT_TOL: f32 = 2e-5;

#[test]
fn ascend_attention_matches_cpu() {
    let mut rng = Rng(750);
    // (heads, hd, window, ratio, top_k, positions checked)
    for &(heads, hd, window, ratio, top_k) in &[(8usize, 128usize, 128usize, 0usize, 0usize), (8, 128, 128, 4, 32), (8, 128, 128, 128, 0), (3, 40, 17, 4, 12), (64, 512, 128, 4, 64)] {
        let cap = window + 7;
        let n_comp = 300 / ratio.max(1) + 2;
        let sinks = rng.vec(heads, 2.0);
        let mut raw = vec![0.0f32; cap * hd];
        let comp: Vec<f32> = rng.vec(n_comp * hd, 1.0).into_iter().map(f16_round).collect();
        let positions: Vec<usize> = if heads == 64 { vec![0, 160] } else { vec![0, 3, 17, 131, 290] };
        let mut pos = 0;
        for &target in &positions {
            while pos <= target {
                cpu::kv_push_raw(&mut raw, cap, hd, pos, &rng.vec(hd, 1.5));
                pos += 1;
            }
            let q = rng.vec(heads * hd, 1.5);
            let n = if ratio == 0 { 0 } else { (target + 1) / ratio };
            let sel: Option<Vec<i32>> = (ratio == 4).then(|| {
                let mut s: Vec<i32> = (0..n as i32).filter(|c| c % 3 != 1).take(top_k).collect();
                s.resize(top_k, -1);
                s
            });
            let mut want = vec![0.0f32; heads * hd];
            let comp_opt = (ratio != 0).then_some(&comp[..]);
            cpu::attention(&q, &sinks, &raw, cap, window, comp_opt, ratio, sel.as_deref(), heads, hd, target, &mut want);
            for bd in BLOCKS {
                let mut got = vec![0.0f32; heads * hd];
                let cp = if ratio == 0 { null() } else { p(&comp) };
                let sp = sel.as_ref().map_or(null(), |s| p(s));
                unsafe {
                    aclrtlaunch_attention(bd, null_mut(), p(&q), p(&sinks), p(&raw), cp, sp, m(&mut got), 1, target as u32, heads as u32, hd as u32, window as u32, ratio as u32, cap as u32, n_comp as u32, top_k as u32)
                };
                close(&got, &want, ATT_TOL, &format!("attention h {heads} hd {hd} ratio {ratio} pos {target} blocks {bd}"));
            }
        }
    }
}

#[test]
fn ascend_indexer_topk_matches_cpu() {
    // Scores are f32 sums in another order than the CPU (≈1e-6 relative); with continuous
    // random inputs no two of the decisive scores are that close, so the selections must
    // be identical. The n <= top_k and n = 0 paths involve no arithmetic at all.
    let mut rng = Rng(751);
    for &(heads, hd, top_k, n_rows) in &[(4usize, 128usize, 32usize, 200usize), (64, 128, 512, 1100), (3, 16, 5, 40)] {
        let rows = rng.vec(n_rows * hd, 1.0);
        for &pos in &[0usize, 2, 4 * top_k - 1, 4 * top_k + 9, 4 * n_rows - 1] {
            let q = rng.vec(heads * hd, 1.0);
            let wts = rng.vec(heads, 1.0);
            let mut want = vec![0i32; top_k];
            cpu::indexer_topk(&q, &wts, &rows, heads, hd, top_k, 4, pos, &mut want);
            for bd in BLOCKS {
                let mut got = vec![7i32; top_k];
                unsafe {
                    aclrtlaunch_indexer_topk(bd, null_mut(), p(&q), p(&wts), p(&rows), m(&mut got), 1, pos as u32, heads as u32, hd as u32, top_k as u32, 4, n_rows as u32)
                };
                assert_eq!(got, want, "indexer_topk heads {heads} top_k {top_k} pos {pos} blocks {bd}");
            }
        }
    }
    // Several tokens of a prefill chunk: one per core.
    let (heads, hd, top_k, n_rows) = (4usize, 128usize, 8usize, 64usize);
    let rows = rng.vec(n_rows * hd, 1.0);
    let (t, pos0) = (5usize, 40usize);
    let q = rng.vec(t * heads * hd, 1.0);
    let wts = rng.vec(t * heads, 1.0);
    let mut want = vec![0i32; t * top_k];
    for i in 0..t {
        cpu::indexer_topk(&q[i * heads * hd..(i + 1) * heads * hd], &wts[i * heads..(i + 1) * heads], &rows, heads, hd, top_k, 4, pos0 + i, &mut want[i * top_k..(i + 1) * top_k]);
    }
    let mut got = vec![0i32; t * top_k];
    unsafe { aclrtlaunch_indexer_topk(BLOCK_DIM, null_mut(), p(&q), p(&wts), p(&rows), m(&mut got), t as u32, pos0 as u32, heads as u32, hd as u32, top_k as u32, 4, n_rows as u32) };
    assert_eq!(got, want, "indexer_topk chunk");
}
