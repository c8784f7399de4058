//! Tests of the compressor: an f64 reference built from the token history (§8), the
//! emission schedule, the ratio-4 roll and the two row post-processings.

use super::*;
use crate::cpu::rope::{rope_table_fill, RopeParams};
use crate::cpu::testutil::{f16_bytes, f16_decode, Rng};
use crate::cpu::NEG_INF;

struct Setup {
    ratio: usize,
    hd: usize,
    n_rot: usize,
    ape: Vec<u8>,
    norm_w: Vec<f32>,
    table: Vec<f32>,
    kv: Vec<Vec<f32>>,
    sc: Vec<Vec<f32>>,
}

fn setup(seed: u64, ratio: usize, hd: usize, n_rot: usize, n: usize) -> Setup {
    let mut rng = Rng(seed);
    let w = if ratio == 4 { 2 * hd } else { hd };
    let p = RopeParams {
        n_rot,
        ..RopeParams::compressed()
    };
    let mut table = vec![0.0; n * n_rot];
    rope_table_fill(&p, 0, &mut table);
    Setup {
        ratio,
        hd,
        n_rot,
        ape: f16_bytes(&rng.vec(w * ratio, 1.0)),
        norm_w: rng.vec(hd, 1.5),
        table,
        kv: (0..n).map(|_| rng.vec(w, 2.0)).collect(),
        sc: (0..n).map(|_| rng.vec(w, 3.0)).collect(),
    }
}

/// Runs the kernel over all tokens; returns the rows and, per pos, the rows written so far.
fn run(s: &Setup, post: RowPost) -> (Vec<f32>, Vec<usize>) {
    let coff = if s.ratio == 4 { 2 } else { 1 };
    let w = coff * s.hd;
    let mut kv = vec![0.0; coff * s.ratio * w];
    let mut score = vec![NEG_INF; coff * s.ratio * w];
    let n = s.kv.len();
    let mut comp = vec![f32::NAN; (n / s.ratio + 1) * s.hd];
    let mut written = Vec::new();
    for pos in 0..n {
        let st = CompressorState {
            kv: &mut kv,
            score: &mut score,
        };
        compressor_update(
            &s.kv[pos], &s.sc[pos], &s.ape, &s.norm_w, st, &mut comp, &s.table, s.ratio, s.hd,
            s.n_rot, post, pos, 1e-6,
        );
        written.push(comp.chunks(s.hd).filter(|r| !r[0].is_nan()).count());
    }
    (comp, written)
}

/// f64 row `c` from the history: pool, norm, rope (no quantisation, no f16 rounding).
fn reference_row(s: &Setup, c: usize) -> Vec<f64> {
    let (r, hd) = (s.ratio, s.hd);
    let w = if r == 4 { 2 * hd } else { hd };
    let ape = f16_decode(&s.ape);
    // (token, state-width offset) candidates of every output dim.
    let mut cand: Vec<(usize, usize)> = Vec::new();
    if r == 4 {
        if c > 0 {
            cand.extend((4 * c - 4..4 * c).map(|t| (t, 0)));
        }
        cand.extend((4 * c..4 * c + 4).map(|t| (t, hd)));
    } else {
        cand.extend((r * c..r * c + r).map(|t| (t, 0)));
    }
    let mut pooled = vec![0.0f64; hd];
    for (j, p) in pooled.iter_mut().enumerate() {
        let sc: Vec<f64> = cand
            .iter()
            .map(|&(t, off)| s.sc[t][off + j] as f64 + ape[(t % r) * w + off + j])
            .collect();
        let m = sc.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let z: f64 = sc.iter().map(|v| (v - m).exp()).sum();
        *p = cand
            .iter()
            .zip(&sc)
            .map(|(&(t, off), v)| (v - m).exp() / z * s.kv[t][off + j] as f64)
            .sum();
    }
    let ms = pooled.iter().map(|v| v * v).sum::<f64>() / hd as f64;
    let inv = 1.0 / (ms + 1e-6).sqrt();
    let mut y: Vec<f64> = pooled
        .iter()
        .zip(&s.norm_w)
        .map(|(v, g)| v * inv * *g as f64)
        .collect();
    let start = r * c;
    let n0 = hd - s.n_rot;
    for k in 0..s.n_rot / 2 {
        let (co, si) = (
            s.table[start * s.n_rot + 2 * k] as f64,
            s.table[start * s.n_rot + 2 * k + 1] as f64,
        );
        let (x0, x1) = (y[n0 + 2 * k], y[n0 + 2 * k + 1]);
        y[n0 + 2 * k] = x0 * co - x1 * si;
        y[n0 + 2 * k + 1] = x0 * si + x1 * co;
    }
    y
}

// Tolerance: with no quantisation the row differs from the f64 reference by the f16
// rounding (≤ 2^-11 relative) plus f32 error of softmax pooling, norm and rope (a few
// 1e-7 relative on O(1) values); 4.9e-4·|r| + 2e-5 bounds both.
fn check_rows(s: &Setup, comp: &[f32], n_rows: usize) {
    for c in 0..n_rows {
        let want = reference_row(s, c);
        for (j, (g, w)) in comp[c * s.hd..(c + 1) * s.hd].iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 4.9e-4 * w.abs() + 2e-5,
                "row {c} dim {j}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn ratio4_rows_match_reference_and_schedule() {
    let s = setup(20, 4, 24, 8, 43);
    let (comp, written) = run(&s, RowPost::Fp8 { n_quant: 0 });
    for (pos, &n) in written.iter().enumerate() {
        assert_eq!(n, (pos + 1) / 4, "rows written by pos {pos}");
    }
    check_rows(&s, &comp, 43 / 4);
}

#[test]
fn ratio128_rows_match_reference_and_schedule() {
    let s = setup(21, 128, 20, 6, 3 * 128 + 5);
    let (comp, written) = run(&s, RowPost::Fp8 { n_quant: 0 });
    for (pos, &n) in written.iter().enumerate() {
        assert_eq!(n, (pos + 1) / 128, "rows written by pos {pos}");
    }
    check_rows(&s, &comp, 3);
}

#[test]
fn ratio4_roll_and_empty_previous_window() {
    let s = setup(22, 4, 16, 4, 8);
    let w = 32;
    let mut kv = vec![0.0; 8 * w];
    let mut score = vec![NEG_INF; 8 * w];
    // Garbage kv under NEG_INF scores in the previous-window rows has weight zero.
    kv[..4 * w].iter_mut().for_each(|v| *v = 1e6);
    let mut comp = vec![0.0; 2 * 16];
    for pos in 0..4 {
        let st = CompressorState {
            kv: &mut kv,
            score: &mut score,
        };
        compressor_update(
            &s.kv[pos],
            &s.sc[pos],
            &s.ape,
            &s.norm_w,
            st,
            &mut comp,
            &s.table,
            4,
            16,
            4,
            RowPost::Fp8 { n_quant: 0 },
            pos,
            1e-6,
        );
    }
    check_rows(&s, &comp, 1);
    // After the emission rows 0..3 hold the finished window (rows 4..7).
    assert_eq!(kv[..4 * w], kv[4 * w..]);
    assert_eq!(score[..4 * w], score[4 * w..]);
    assert_eq!(&kv[w..2 * w], &s.kv[1][..]);
}

#[test]
fn post_processing_is_quant_of_the_pooled_row() {
    // Attention row (ratio 128, FP8 on the nope dims) and indexer row (ratio 4, QAT):
    // the emitted row must be exactly the quant functions applied to the pooled row.
    for (ratio, hd, n_rot, post) in [
        (128usize, 40usize, 8usize, RowPost::Fp8 { n_quant: 32 }),
        (4, 128, 64, RowPost::Qat),
    ] {
        let s = setup(23, ratio, hd, n_rot, 2 * ratio);
        let coff = if ratio == 4 { 2 } else { 1 };
        let w = coff * hd;
        let mut kv = vec![0.0; coff * ratio * w];
        let mut score = vec![NEG_INF; coff * ratio * w];
        let mut comp = vec![0.0; 2 * hd];
        for pos in 0..2 * ratio {
            let before = (kv.clone(), score.clone());
            let st = CompressorState {
                kv: &mut kv,
                score: &mut score,
            };
            compressor_update(
                &s.kv[pos], &s.sc[pos], &s.ape, &s.norm_w, st, &mut comp, &s.table, ratio, hd,
                n_rot, post, pos, 1e-6,
            );
            if !(pos + 1).is_multiple_of(ratio) {
                continue;
            }
            // The state the pool saw: for ratio 4, rows 0..3 were rolled over afterwards.
            let (mut pk, mut ps) = (kv.clone(), score.clone());
            if ratio == 4 {
                pk[..4 * w].copy_from_slice(&before.0[..4 * w]);
                ps[..4 * w].copy_from_slice(&before.1[..4 * w]);
            }
            let start = pos + 1 - ratio;
            let mut row = vec![0.0; hd];
            pool_norm_rope(
                &pk,
                &ps,
                &s.norm_w,
                &s.table[start * n_rot..(start + 1) * n_rot],
                ratio,
                hd,
                n_rot,
                1e-6,
                &mut row,
            );
            match post {
                RowPost::Fp8 { n_quant } => fp8::kv_quantize_row(&mut row[..n_quant]),
                RowPost::Qat => {
                    hadamard::hadamard128(&mut row);
                    fp4::quantize_row(&mut row);
                }
            }
            row.iter_mut().for_each(|v| *v = f16_round(*v));
            let c = pos / ratio;
            assert_eq!(
                &comp[c * hd..(c + 1) * hd],
                &row[..],
                "ratio {ratio} row {c}"
            );
        }
    }
}

#[test]
fn model_self_check_vectors_through_finish_row() {
    // MODEL §17: FP8 of x[i] = sin(0.37 i)(1 + 0.01 i); the listed values are
    // f16-exact, and the unquantised tail only gets the f16 rounding.
    let mut x: Vec<f32> = (0..512)
        .map(|i| (0.37 * i as f32).sin() * (1.0 + 0.01 * i as f32))
        .collect();
    finish_row(&mut x, RowPost::Fp8 { n_quant: 448 });
    assert_eq!(
        &x[..8],
        &[0.0, 0.375, 0.6875, 0.9375, 1.0, 1.0, 0.875, 0.5625]
    );
    assert_eq!(x[447], 5.0);
    assert_eq!(x[448], f16_round(3.7128716));

    // Hadamard + FP4 of z[i] = cos(0.11 i) - 0.2.
    let mut z: Vec<f32> = (0..128).map(|i| (0.11 * i as f32).cos() - 0.2).collect();
    finish_row(&mut z, RowPost::Qat);
    assert_eq!(&z[..4], &[-1.5, 0.0, 0.125, -0.0]);
    assert!(z[3].is_sign_negative());
}
