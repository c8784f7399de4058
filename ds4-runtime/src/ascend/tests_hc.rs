//! Emulated AscendC hyper-connection and router kernels against the CPU kernels.

use super::kernels::*;
use super::tests_basic::{close, m, p, BLOCKS};
use crate::cpu;
use crate::cpu::testutil::Rng;
use std::ptr::{null, null_mut};

#[test]
fn ascend_hc_kernels_are_exact() {
    // Same operations in the same order (sigmoid as 1/(1 + e^-z), the Sinkhorn divisions,
    // the stream sums as a product then ordered product-adds): bit for bit.
    let mut rng = Rng(720);
    for &rows in &[1usize, 3, 17] {
        let mix = rng.vec(24 * rows, 2.0);
        let scale = rng.vec(3, 1.5);
        let base = rng.vec(24, 1.0);
        let (mut wp, mut wo, mut wc) = (
            vec![0.0; 4 * rows],
            vec![0.0; 4 * rows],
            vec![0.0; 16 * rows],
        );
        for t in 0..rows {
            cpu::hc_split(
                &mix[24 * t..24 * t + 24],
                &scale,
                &base,
                20,
                1e-6,
                &mut wp[4 * t..4 * t + 4],
                &mut wo[4 * t..4 * t + 4],
                &mut wc[16 * t..16 * t + 16],
            );
        }
        let hs = [0.7f32];
        let (mut wh, hb) = (vec![0.0; 4 * rows], rng.vec(4, 1.0));
        for t in 0..rows {
            cpu::hc_head_weights(
                &mix[4 * t..4 * t + 4],
                hs[0],
                &hb,
                1e-6,
                &mut wh[4 * t..4 * t + 4],
            );
        }
        for bd in BLOCKS {
            let (mut gp, mut go, mut gc) = (
                vec![0.0f32; 4 * rows],
                vec![0.0f32; 4 * rows],
                vec![0.0f32; 16 * rows],
            );
            unsafe {
                aclrtlaunch_hc_split(
                    bd,
                    null_mut(),
                    p(&mix),
                    p(&scale),
                    p(&base),
                    m(&mut gp),
                    m(&mut go),
                    m(&mut gc),
                    rows as u32,
                    20,
                    1e-6,
                )
            };
            assert_eq!(
                (&gp, &go, &gc),
                (&wp, &wo, &wc),
                "hc_split rows {rows} blocks {bd}"
            );
            let mut gh = vec![0.0f32; 4 * rows];
            unsafe {
                aclrtlaunch_hc_head_weights(
                    bd,
                    null_mut(),
                    p(&mix[..4 * rows]),
                    p(&hs),
                    p(&hb),
                    m(&mut gh),
                    rows as u32,
                    1e-6,
                )
            };
            assert_eq!(gh, wh, "hc_head_weights rows {rows} blocks {bd}");
        }
    }
    for &(n, rows) in &[(256usize, 1usize), (37, 3), (4100, 2)] {
        let hc = rng.vec(4 * n * rows, 2.0);
        let w = rng.vec(4 * rows, 1.0);
        let y = rng.vec(n * rows, 2.0);
        let comb = rng.vec(16 * rows, 1.0);
        let (mut ws, mut wpst) = (vec![0.0; n * rows], vec![0.0; 4 * n * rows]);
        for t in 0..rows {
            let hr = &hc[4 * n * t..4 * n * (t + 1)];
            cpu::hc_weighted_sum(hr, &w[4 * t..4 * t + 4], &mut ws[n * t..n * (t + 1)]);
            cpu::hc_post(
                &y[n * t..n * (t + 1)],
                hr,
                &w[4 * t..4 * t + 4],
                &comb[16 * t..16 * t + 16],
                &mut wpst[4 * n * t..4 * n * (t + 1)],
            );
        }
        for bd in BLOCKS {
            let mut gs = vec![0.0f32; n * rows];
            unsafe {
                aclrtlaunch_hc_weighted_sum(
                    bd,
                    null_mut(),
                    p(&hc),
                    p(&w),
                    m(&mut gs),
                    rows as u32,
                    n as u32,
                )
            };
            assert_eq!(gs, ws, "hc_weighted_sum n {n} blocks {bd}");
            let mut gpst = vec![0.0f32; 4 * n * rows];
            unsafe {
                aclrtlaunch_hc_post(
                    bd,
                    null_mut(),
                    p(&y),
                    p(&hc),
                    p(&w),
                    p(&comb),
                    m(&mut gpst),
                    rows as u32,
                    n as u32,
                )
            };
            assert_eq!(gpst, wpst, "hc_post n {n} blocks {bd}");
        }
    }
}

#[test]
fn ascend_router_matches_cpu() {
    let mut rng = Rng(721);
    // router_probs: ln(u)·e/(u−1) is within a few f32 ulps of log1p(e) (Goldberg's
    // log1p; each of exp, ln, the division and the product adds ≤ 1 ulp), then sqrt halves
    // the relative error: 1e-6 relative is a safe bound for z in [-30, 30].
    for &(ne, rows) in &[(16usize, 1usize), (256, 3), (37, 2)] {
        let z = rng.vec(ne * rows, 30.0);
        let mut want = vec![0.0; ne * rows];
        cpu::router_probs(&z, &mut want);
        for bd in BLOCKS {
            let mut got = vec![0.0f32; ne * rows];
            unsafe {
                aclrtlaunch_router_probs(bd, null_mut(), p(&z), m(&mut got), rows as u32, ne as u32)
            };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs(),
                    "router_probs elem {i}: {g} vs {w}"
                );
            }
        }
    }
    // topk / hash: the selection and the weights are the CPU's scalar steps: exact. Probs
    // on a coarse grid make ties, which must go to the lower expert id.
    for &(ne, k, rows) in &[(16usize, 6usize, 1usize), (256, 6, 3), (37, 4, 2)] {
        let prob: Vec<f32> = (0..ne * rows)
            .map(|_| rng.below(20) as f32 * 0.125)
            .collect();
        let bias: Vec<f32> = (0..ne).map(|_| rng.below(3) as f32 * 0.125).collect();
        let vocab = 11;
        let table: Vec<i32> = (0..vocab * k).map(|_| rng.below(ne) as i32).collect();
        let tokens: Vec<i32> = (0..rows).map(|_| rng.below(vocab) as i32).collect();
        for b in [None, Some(&bias[..])] {
            let (mut wi, mut ww) = (vec![0; k * rows], vec![0.0; k * rows]);
            for t in 0..rows {
                cpu::router_topk(
                    &prob[ne * t..ne * (t + 1)],
                    b,
                    k,
                    1.5,
                    &mut wi[k * t..k * (t + 1)],
                    &mut ww[k * t..k * (t + 1)],
                );
            }
            for bd in BLOCKS {
                let (mut gi, mut gw) = (vec![0i32; k * rows], vec![0.0f32; k * rows]);
                let bp = b.map_or(null(), p);
                unsafe {
                    aclrtlaunch_router_topk(
                        bd,
                        null_mut(),
                        p(&prob),
                        bp,
                        m(&mut gi),
                        m(&mut gw),
                        rows as u32,
                        ne as u32,
                        k as u32,
                        1.5,
                    )
                };
                assert_eq!(
                    (&gi, &gw),
                    (&wi, &ww),
                    "router_topk ne {ne} k {k} bias {} blocks {bd}",
                    b.is_some()
                );
            }
        }
        let (mut wi, mut ww) = (vec![0; k * rows], vec![0.0; k * rows]);
        for t in 0..rows {
            let tok = tokens[t] as usize;
            cpu::router_hash(
                &prob[ne * t..ne * (t + 1)],
                &table[tok * k..tok * k + k],
                1.5,
                &mut wi[k * t..k * (t + 1)],
                &mut ww[k * t..k * (t + 1)],
            );
        }
        for bd in BLOCKS {
            let (mut gi, mut gw) = (vec![0i32; k * rows], vec![0.0f32; k * rows]);
            unsafe {
                aclrtlaunch_router_hash(
                    bd,
                    null_mut(),
                    p(&prob),
                    p(&table),
                    p(&tokens),
                    m(&mut gi),
                    m(&mut gw),
                    rows as u32,
                    ne as u32,
                    k as u32,
                    1.5,
                    vocab as u32,
                )
            };
            assert_eq!((&gi, &gw), (&wi, &ww), "router_hash ne {ne} blocks {bd}");
        }
    }
    let _ = close;
}
