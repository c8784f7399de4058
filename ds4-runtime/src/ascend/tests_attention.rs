//! Emulated AscendC attention, indexer and compressor kernels against the CPU kernels.

use super::kernels::*;
use super::tests_basic::{close, m, p, BLOCKS};
use crate::cpu;
use crate::cpu::testutil::{f16_bytes, Rng};
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
    for &(heads, hd, window, ratio, top_k) in &[
        (8usize, 128usize, 128usize, 0usize, 0usize),
        (8, 128, 128, 4, 32),
        (8, 128, 128, 128, 0),
        (3, 40, 17, 4, 12),
        (64, 512, 128, 4, 64),
    ] {
        let cap = window + 7;
        let n_comp = 300 / ratio.max(1) + 2;
        let sinks = rng.vec(heads, 2.0);
        let mut raw = vec![0.0f32; cap * hd];
        let comp: Vec<f32> = rng
            .vec(n_comp * hd, 1.0)
            .into_iter()
            .map(f16_round)
            .collect();
        let positions: Vec<usize> = if heads == 64 {
            vec![0, 160]
        } else {
            vec![0, 3, 17, 131, 290]
        };
        let mut pos = 0;
        for &target in &positions {
            while pos <= target {
                cpu::kv_push_raw(&mut raw, cap, hd, pos, &rng.vec(hd, 1.5));
                pos += 1;
            }
            let q = rng.vec(heads * hd, 1.5);
            let n = (target + 1).checked_div(ratio).unwrap_or(0);
            let sel: Option<Vec<i32>> = (ratio == 4).then(|| {
                let mut s: Vec<i32> = (0..n as i32).filter(|c| c % 3 != 1).take(top_k).collect();
                s.resize(top_k, -1);
                s
            });
            let mut want = vec![0.0f32; heads * hd];
            let comp_opt = (ratio != 0).then_some(&comp[..]);
            cpu::attention(
                &q,
                &sinks,
                &raw,
                cap,
                window,
                comp_opt,
                ratio,
                sel.as_deref(),
                heads,
                hd,
                target,
                &mut want,
            );
            for bd in BLOCKS {
                let mut got = vec![0.0f32; heads * hd];
                let cp = if ratio == 0 { null() } else { p(&comp) };
                let sp = sel.as_ref().map_or(null(), |s| p(s));
                unsafe {
                    aclrtlaunch_attention(
                        bd,
                        null_mut(),
                        p(&q),
                        p(&sinks),
                        p(&raw),
                        cp,
                        sp,
                        m(&mut got),
                        1,
                        target as u32,
                        heads as u32,
                        hd as u32,
                        window as u32,
                        ratio as u32,
                        cap as u32,
                        n_comp as u32,
                        top_k as u32,
                    )
                };
                close(
                    &got,
                    &want,
                    ATT_TOL,
                    &format!("attention h {heads} hd {hd} ratio {ratio} pos {target} blocks {bd}"),
                );
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
    for &(heads, hd, top_k, n_rows) in &[
        (4usize, 128usize, 32usize, 200usize),
        (64, 128, 512, 1100),
        (3, 16, 5, 40),
    ] {
        let rows = rng.vec(n_rows * hd, 1.0);
        for &pos in &[0usize, 2, 4 * top_k - 1, 4 * top_k + 9, 4 * n_rows - 1] {
            let q = rng.vec(heads * hd, 1.0);
            let wts = rng.vec(heads, 1.0);
            let mut want = vec![0i32; top_k];
            cpu::indexer_topk(&q, &wts, &rows, heads, hd, top_k, 4, pos, &mut want);
            for bd in BLOCKS {
                let mut got = vec![7i32; top_k];
                unsafe {
                    aclrtlaunch_indexer_topk(
                        bd,
                        null_mut(),
                        p(&q),
                        p(&wts),
                        p(&rows),
                        m(&mut got),
                        1,
                        pos as u32,
                        heads as u32,
                        hd as u32,
                        top_k as u32,
                        4,
                        n_rows as u32,
                    )
                };
                assert_eq!(
                    got, want,
                    "indexer_topk heads {heads} top_k {top_k} pos {pos} blocks {bd}"
                );
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
        cpu::indexer_topk(
            &q[i * heads * hd..(i + 1) * heads * hd],
            &wts[i * heads..(i + 1) * heads],
            &rows,
            heads,
            hd,
            top_k,
            4,
            pos0 + i,
            &mut want[i * top_k..(i + 1) * top_k],
        );
    }
    let mut got = vec![0i32; t * top_k];
    unsafe {
        aclrtlaunch_indexer_topk(
            BLOCK_DIM,
            null_mut(),
            p(&q),
            p(&wts),
            p(&rows),
            m(&mut got),
            t as u32,
            pos0 as u32,
            heads as u32,
            hd as u32,
            top_k as u32,
            4,
            n_rows as u32,
        )
    };
    assert_eq!(got, want, "indexer_topk chunk");
}

/// Compressed rows: everything but the RMS norm is the CPU's arithmetic. The norm sums
/// squares in f32 (the CPU in f64), so its factor may differ by one ulp, which moves a value
/// across a FP8/FP4/f16 rounding boundary only when it lies within a few ulps of one. So:
/// at most 1% of the values may differ, each by at most one grid step (< max(|a|, |b|)).
fn rows_close(got: &[f32], want: &[f32], what: &str) {
    let mut differ = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            differ += 1;
            assert!(
                (g - w).abs() <= g.abs().max(w.abs()),
                "{what}: elem {i}: {g} vs {w}"
            );
        }
    }
    assert!(
        differ * 100 <= got.len(),
        "{what}: {differ} of {} values differ",
        got.len()
    );
}

#[test]
fn ascend_compressor_matches_cpu() {
    let mut rng = Rng(752);
    // (ratio, head_dim, n_rot, post, tokens, chunk)
    for &(ratio, hd, n_rot, post, n, chunk) in &[
        (4usize, 128usize, 64usize, 1u32, 41usize, 1usize),
        (4, 512, 64, 0, 23, 5),
        (128, 128, 64, 0, 300, 37),
        (4, 128, 64, 0, 30, 8),
    ] {
        let coff = if ratio == 4 { 2 } else { 1 };
        let w = coff * hd;
        let params = cpu::RopeParams {
            n_rot,
            ..cpu::RopeParams::compressed()
        };
        let mut table = vec![0.0f32; n * n_rot];
        cpu::rope_table_fill(&params, 0, &mut table);
        let ape = f16_bytes(&rng.vec(w * ratio, 1.0));
        let norm = rng.vec(hd, 1.5);
        let kv = rng.vec(n * w, 2.0);
        let sc = rng.vec(n * w, 3.0);
        let comp_rows = n / ratio + 2;
        let n_quant = hd - n_rot;
        let row_post = if post == 0 {
            cpu::RowPost::Fp8 { n_quant }
        } else {
            cpu::RowPost::Qat
        };
        let (mut wkv, mut wsc, mut wcomp) = (
            vec![0.0f32; coff * ratio * w],
            vec![cpu::NEG_INF; coff * ratio * w],
            vec![0.0f32; comp_rows * hd],
        );
        for pos in 0..n {
            let st = cpu::CompressorState {
                kv: &mut wkv,
                score: &mut wsc,
            };
            cpu::compressor_update(
                &kv[pos * w..(pos + 1) * w],
                &sc[pos * w..(pos + 1) * w],
                &ape,
                &norm,
                st,
                &mut wcomp,
                &table,
                ratio,
                hd,
                n_rot,
                row_post,
                pos,
                1e-6,
            );
        }
        for bd in [BLOCK_DIM, 1] {
            let (mut gkv, mut gsc, mut gcomp) = (
                vec![0.0f32; wkv.len()],
                vec![cpu::NEG_INF; wsc.len()],
                vec![0.0f32; wcomp.len()],
            );
            let mut pos0 = 0;
            while pos0 < n {
                let t = chunk.min(n - pos0);
                unsafe {
                    aclrtlaunch_compressor_update(
                        bd,
                        null_mut(),
                        p(&kv[pos0 * w..]),
                        p(&sc[pos0 * w..]),
                        p(&ape),
                        p(&norm),
                        m(&mut gkv),
                        m(&mut gsc),
                        m(&mut gcomp),
                        p(&table),
                        t as u32,
                        pos0 as u32,
                        ratio as u32,
                        hd as u32,
                        n_rot as u32,
                        post,
                        n_quant as u32,
                        1e-6,
                        comp_rows as u32,
                        n as u32,
                    )
                };
                pos0 += t;
            }
            let what =
                format!("compressor ratio {ratio} hd {hd} post {post} chunk {chunk} blocks {bd}");
            assert_eq!(gkv, wkv, "{what}: state kv");
            assert_eq!(gsc, wsc, "{what}: state score");
            rows_close(&gcomp, &wcomp, &what);
        }
    }
}
