//! Emulated AscendC kernels against the CPU kernels: norms and elementwise ops.
//!
//! Sizes cover the tiny profile (E = 256, H = 8, D = 128, FF = 256) and odd widths that
//! are not multiples of the 8-value DMA block or the 4096-value chunk. Every kernel runs
//! with 8 blocks (the device) and with 1 and 3 blocks (other per-core splits).

use super::kernels::*;
use crate::cpu;
use crate::cpu::testutil::{f16_bytes, Rng};
use std::ptr::null_mut;

pub(super) fn p<T>(v: &[T]) -> *const u8 {
    v.as_ptr() as *const u8
}
pub(super) fn m<T>(v: &mut [T]) -> *mut u8 {
    v.as_mut_ptr() as *mut u8
}
pub(super) const BLOCKS: [u32; 3] = [BLOCK_DIM, 1, 3];

/// |got - want| <= tol * max(1, max|want|) for every element.
pub(super) fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}: element {i}: {g} vs {w} (tol {tol})"
        );
    }
}

// RMS norm tolerance: the kernel sums squares in f32 where the CPU uses f64 (ReduceSum per
// 4096-value chunk: a 6-level tree per 64 values, ≤ 64 repeats and ≤ 4 chunks added in
// order), so the mean square is off by at most (6 + 64 + 4)·2^-24 ≈ 4.4e-6 relative; the
// square root halves that for r (2.2e-6), and the division, the sqrt and the two products
// add ≤ 4 roundings (0.24e-6): 3e-6 relative to max|y| bounds the difference.
const NORM_TOL: f32 = 3e-6;

#[test]
fn ascend_rms_norms_match_cpu() {
    let mut rng = Rng(700);
    for &(n, rows) in &[
        (256usize, 1usize),
        (7, 3),
        (37, 2),
        (1000, 1),
        (16384, 1),
        (4100, 2),
    ] {
        let x = rng.vec(n * rows, 3.0);
        let w = rng.vec(n, 2.0);
        let (mut want_p, mut want_w) = (vec![0.0; n * rows], vec![0.0; n * rows]);
        for t in 0..rows {
            let r = t * n..(t + 1) * n;
            cpu::norm::rms_norm_plain(&x[r.clone()], &mut want_p[r.clone()], 1e-6);
            cpu::norm::rms_norm(&x[r.clone()], &w, &mut want_w[r], 1e-6);
        }
        for bd in BLOCKS {
            let mut y = vec![0.0f32; n * rows];
            unsafe {
                aclrtlaunch_rms_norm_plain(
                    bd,
                    null_mut(),
                    p(&x),
                    m(&mut y),
                    rows as u32,
                    n as u32,
                    1e-6,
                )
            };
            close(
                &y,
                &want_p,
                NORM_TOL,
                &format!("rms_norm_plain n {n} rows {rows} blocks {bd}"),
            );
            unsafe {
                aclrtlaunch_rms_norm(
                    bd,
                    null_mut(),
                    p(&x),
                    p(&w),
                    m(&mut y),
                    rows as u32,
                    n as u32,
                    1e-6,
                )
            };
            close(
                &y,
                &want_w,
                NORM_TOL,
                &format!("rms_norm n {n} rows {rows} blocks {bd}"),
            );
        }
    }
    for &(heads, hd, rows) in &[
        (8usize, 128usize, 1usize),
        (3, 24, 2),
        (64, 512, 1),
        (5, 20, 3),
    ] {
        let x = rng.vec(heads * hd * rows, 2.0);
        let mut want = vec![0.0; x.len()];
        for (xr, yr) in x.chunks(heads * hd).zip(want.chunks_mut(heads * hd)) {
            cpu::norm::head_rms_norm(xr, yr, hd, 1e-6);
        }
        for bd in BLOCKS {
            let mut y = vec![0.0f32; x.len()];
            unsafe {
                aclrtlaunch_head_rms_norm(
                    bd,
                    null_mut(),
                    p(&x),
                    m(&mut y),
                    rows as u32,
                    heads as u32,
                    hd as u32,
                    1e-6,
                )
            };
            close(
                &y,
                &want,
                NORM_TOL,
                &format!("head_rms_norm {heads}x{hd} rows {rows} blocks {bd}"),
            );
        }
    }
}

#[test]
fn ascend_copies_are_exact() {
    // embed (f16 widening is exact), hc_expand, take_last and add: bit for bit.
    let mut rng = Rng(701);
    for &(n, vocab, rows) in &[(256usize, 50usize, 1usize), (37, 9, 3), (4100, 3, 2)] {
        let table = f16_bytes(&rng.vec(n * vocab, 4.0));
        let tokens: Vec<i32> = (0..rows).map(|_| rng.below(vocab) as i32).collect();
        let x = rng.vec(n * rows, 1.0);
        let b = rng.vec(n * rows, 1.0);
        for bd in BLOCKS {
            let mut y = vec![0.0f32; n * rows];
            unsafe {
                aclrtlaunch_embed(
                    bd,
                    null_mut(),
                    p(&table),
                    p(&tokens),
                    m(&mut y),
                    rows as u32,
                    n as u32,
                    vocab as u32,
                )
            };
            for t in 0..rows {
                let mut want = vec![0.0; n];
                cpu::embed_f16(&table, n, tokens[t] as u32, &mut want);
                assert_eq!(&y[t * n..(t + 1) * n], &want[..], "embed n {n} blocks {bd}");
            }
            let mut hc = vec![0.0f32; 4 * n * rows];
            unsafe {
                aclrtlaunch_hc_expand(bd, null_mut(), p(&x), m(&mut hc), rows as u32, n as u32)
            };
            for t in 0..rows {
                let mut want = vec![0.0; 4 * n];
                cpu::hc_expand(&x[t * n..(t + 1) * n], &mut want);
                assert_eq!(
                    &hc[4 * n * t..4 * n * (t + 1)],
                    &want[..],
                    "hc_expand n {n} blocks {bd}"
                );
            }
            let mut last = vec![0.0f32; n];
            unsafe {
                aclrtlaunch_take_last(bd, null_mut(), p(&x), m(&mut last), rows as u32, n as u32)
            };
            assert_eq!(
                &last[..],
                &x[(rows - 1) * n..],
                "take_last n {n} blocks {bd}"
            );
            let mut s = vec![0.0f32; n * rows];
            unsafe {
                aclrtlaunch_add(
                    bd,
                    null_mut(),
                    p(&x),
                    p(&b),
                    m(&mut s),
                    rows as u32,
                    n as u32,
                )
            };
            let want: Vec<f32> = x.iter().zip(&b).map(|(a, b)| a + b).collect();
            assert_eq!(s, want, "add n {n} blocks {bd}");
        }
    }
}

#[test]
fn ascend_swiglu_matches_cpu() {
    // Same operations in the same order as the CPU (exp, 1 + e, reciprocal, two products,
    // the clamp by min/max): bit for bit.
    let mut rng = Rng(702);
    for &(n, rows, clamp) in &[(256usize, 1usize, 10.0f32), (37, 3, 10.0), (2048, 2, 0.0)] {
        let g = rng.vec(n * rows, 14.0);
        let u = rng.vec(n * rows, 14.0);
        let mut want = vec![0.0; n * rows];
        cpu::moe::swiglu(&g, &u, clamp, &mut want);
        for bd in BLOCKS {
            let mut y = vec![0.0f32; n * rows];
            unsafe {
                aclrtlaunch_swiglu(
                    bd,
                    null_mut(),
                    p(&g),
                    p(&u),
                    m(&mut y),
                    rows as u32,
                    n as u32,
                    clamp,
                )
            };
            assert_eq!(y, want, "swiglu n {n} blocks {bd}");
        }
    }
    for &(k, n_ff, rows) in &[(6usize, 256usize, 1usize), (6, 2048, 2), (2, 512, 3)] {
        let g = rng.vec(k * n_ff * rows, 14.0);
        let u = rng.vec(k * n_ff * rows, 14.0);
        let wt = rng.vec(k * rows, 1.0);
        let mut want = vec![0.0; k * n_ff * rows];
        for t in 0..rows {
            let r = t * k * n_ff..(t + 1) * k * n_ff;
            cpu::moe::moe_swiglu(
                &g[r.clone()],
                &u[r.clone()],
                &wt[t * k..(t + 1) * k],
                n_ff,
                10.0,
                &mut want[r],
            );
        }
        for bd in BLOCKS {
            let mut y = vec![0.0f32; want.len()];
            unsafe {
                aclrtlaunch_moe_swiglu(
                    bd,
                    null_mut(),
                    p(&g),
                    p(&u),
                    p(&wt),
                    m(&mut y),
                    rows as u32,
                    k as u32,
                    n_ff as u32,
                    10.0,
                )
            };
            assert_eq!(y, want, "moe_swiglu k {k} n_ff {n_ff} blocks {bd}");
        }
    }
}

/// Runs `f` and returns the largest per-block UB allocation it made.
pub(super) fn ub_of(f: impl FnOnce()) -> u32 {
    unsafe { ascendc_emu_ub_peak(1) };
    f();
    unsafe { ascendc_emu_ub_peak(1) }
}

#[test]
fn ascend_cost_ub_figures_are_the_kernels() {
    // Every kernel once on small shapes: the UB it allocates is what the cost model says.
    use super::cost::ub_bytes;
    use crate::plan::Kernel::{self, *};
    let f = vec![0.25f32; 1 << 16];
    let i = vec![1i32; 1 << 12];
    let mut o = vec![0.0f32; 1 << 16];
    let (x, t, n) = (p(&f), p(&i), null_mut());
    let y = m(&mut o);
    let calls: Vec<(Kernel, Box<dyn Fn()>)> = vec![
        (
            RmsNorm,
            Box::new(move || unsafe { aclrtlaunch_rms_norm(1, n, x, x, y, 1, 256, 1e-6) }),
        ),
        (
            Add,
            Box::new(move || unsafe { aclrtlaunch_add(1, n, x, x, y, 1, 256) }),
        ),
        (
            Embed,
            Box::new(move || unsafe { aclrtlaunch_embed(1, n, x, t, y, 1, 256, 4) }),
        ),
        (
            MatvecF16,
            Box::new(move || unsafe { aclrtlaunch_matvec_f16(1, n, x, x, y, 1, 256, 8) }),
        ),
        (
            MatvecQ8_0,
            Box::new(move || unsafe { aclrtlaunch_matvec_q8_0(1, n, x, x, y, 1, 256, 8) }),
        ),
        (
            QuantizeQ8_0,
            Box::new(move || unsafe { aclrtlaunch_quantize_q8_0(1, n, x, y, 1, 256) }),
        ),
        (
            HcPost,
            Box::new(move || unsafe { aclrtlaunch_hc_post(1, n, x, x, x, x, y, 1, 256) }),
        ),
        (
            HcSplit,
            Box::new(move || unsafe { aclrtlaunch_hc_split(1, n, x, x, x, y, y, y, 1, 2, 1e-6) }),
        ),
        (
            RouterProbs,
            Box::new(move || unsafe { aclrtlaunch_router_probs(1, n, x, y, 1, 16) }),
        ),
        (
            RouterTopk,
            Box::new(move || unsafe { aclrtlaunch_router_topk(1, n, x, x, y, y, 1, 16, 6, 1.5) }),
        ),
        (
            Rope,
            Box::new(move || unsafe { aclrtlaunch_rope(1, n, x, x, y, 1, 0, 2, 128, 64, 0, 4) }),
        ),
        (
            Attention,
            Box::new(move || unsafe {
                aclrtlaunch_attention(
                    1,
                    n,
                    x,
                    x,
                    x,
                    std::ptr::null(),
                    std::ptr::null(),
                    y,
                    1,
                    0,
                    2,
                    128,
                    4,
                    0,
                    4,
                    0,
                    0,
                )
            }),
        ),
        (
            IndexerTopk,
            Box::new(move || unsafe {
                aclrtlaunch_indexer_topk(1, n, x, x, x, y, 1, 0, 2, 128, 4, 4, 8)
            }),
        ),
        (
            MoeGateUp,
            Box::new(move || unsafe {
                aclrtlaunch_moe_gate_up(1, n, x, x, x, t, y, y, 1, 256, 256, 16, 6, 0, 0)
            }),
        ),
        (
            CompressorUpdate,
            Box::new(move || unsafe {
                aclrtlaunch_compressor_update(
                    1, n, x, x, x, x, y, y, y, x, 1, 0, 4, 128, 64, 0, 64, 1e-6, 4, 4,
                )
            }),
        ),
        (
            HcWeightedSum,
            Box::new(move || unsafe { aclrtlaunch_hc_weighted_sum(1, n, x, x, y, 1, 256) }),
        ),
        (
            HcHeadWeights,
            Box::new(move || unsafe { aclrtlaunch_hc_head_weights(1, n, x, x, x, y, 1, 1e-6) }),
        ),
        (
            RouterHash,
            Box::new(move || unsafe {
                aclrtlaunch_router_hash(1, n, x, t, t, y, y, 1, 16, 6, 1.5, 4)
            }),
        ),
        (
            QuantizeQ8K,
            Box::new(move || unsafe { aclrtlaunch_quantize_q8_k(1, n, x, y, 1, 256) }),
        ),
        (
            HeadRmsNorm,
            Box::new(move || unsafe { aclrtlaunch_head_rms_norm(1, n, x, y, 1, 2, 128, 1e-6) }),
        ),
        (
            Swiglu,
            Box::new(move || unsafe { aclrtlaunch_swiglu(1, n, x, x, y, 1, 256, 10.0) }),
        ),
        (
            KvPushRaw,
            Box::new(move || unsafe { aclrtlaunch_kv_push_raw(1, n, x, y, 1, 0, 128, 128, 4) }),
        ),
    ];
    let mut bad = Vec::new();
    for (k, call) in &calls {
        let ub = ub_of(call);
        if ub != ub_bytes(*k) {
            bad.push(format!("{k:?}: kernel {ub}, cost model {}", ub_bytes(*k)));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
