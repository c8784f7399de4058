//! Tests of the routed-expert kernels against f64 references on dequantised weights.

use super::*;
use crate::cpu::matvec::quantize_q8_k_rows;
use crate::cpu::testutil::{f16_bytes, f16_decode, Rng};

const NE: usize = 5;
const N_EMBD: usize = 3 * 256;
const N_FF: usize = 2 * 256;

/// Random blocks of `block` bytes whose leading (or trailing) f16 scales are sane.
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

/// Naive Q2_K decode from MODEL §3.7: (scale part, min part) of each weight, f64.
fn q2k_decode(row: &[u8]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for blk in row.chunks_exact(84) {
        let dd = f16_decode(&blk[80..84]);
        let mut vals = vec![(0.0, 0.0); 256];
        for k in 0..2 {
            for j in 0..4 {
                for h in 0..2 {
                    for l in 0..16 {
                        let q = (blk[16 + 32 * k + 16 * h + l] >> (2 * j)) & 3;
                        let sc = blk[8 * k + 2 * j + h];
                        vals[128 * k + 32 * j + 16 * h + l] = (
                            dd[0] * (sc & 15) as f64 * q as f64,
                            dd[1] * (sc >> 4) as f64,
                        );
                    }
                }
            }
        }
        out.extend(vals);
    }
    out
}

fn dequant_q8k(x: &[BlockQ8K]) -> Vec<f64> {
    x.iter()
        .flat_map(|b| b.qs.iter().map(move |&q| b.d as f64 * q as f64))
        .collect()
}

fn iq2_row(w: &[u8], row: usize, n_in: usize) -> Vec<f32> {
    let rb = n_in / 256 * 66;
    let mut out = vec![0.0; n_in];
    iq2_xxs::dequantize_row(&w[row * rb..(row + 1) * rb], &mut out);
    out
}

#[test]
fn gate_up_matches_reference_and_respects_the_range() {
    let mut rng = Rng(60);
    let gate = iq2_weight(&mut rng, NE * N_FF, N_EMBD);
    let up = iq2_weight(&mut rng, NE * N_FF, N_EMBD);
    let x = rng.vec(N_EMBD, 2.0);
    let mut xq = vec![BlockQ8K::default(); N_EMBD / 256];
    quantize_q8_k_rows(&x, N_EMBD, 1, &mut xq);
    let xd = dequant_q8k(&xq);
    let ids = [3, 0, 4];
    let (mut g, mut u) = (vec![f32::NAN; 3 * N_FF], vec![f32::NAN; 3 * N_FF]);
    moe_gate_up(&gate, &up, N_EMBD, N_FF, &xq, &ids, (0, 4), &mut g, &mut u);

    for (k, &e) in ids.iter().enumerate() {
        for r in 0..N_FF {
            let i = k * N_FF + r;
            if e == 4 {
                assert!(
                    g[i].is_nan() && u[i].is_nan(),
                    "out-of-range slot was written"
                );
                continue;
            }
            for (w, got) in [(&gate, g[i]), (&up, u[i])] {
                let wr = iq2_row(w, e as usize * N_FF + r, N_EMBD);
                let terms: Vec<f64> = wr.iter().zip(&xd).map(|(a, b)| *a as f64 * b).collect();
                let want: f64 = terms.iter().sum();
                let mag: f64 = terms.iter().map(|v| v.abs()).sum();
                // Integer group sums are exact; per 32-weight sub-block a few f32
                // products and one add (8 per block, 3 blocks): ≤ 64 roundings, so
                // 64·2^-24·Σ|terms| bounds the error.
                assert!(
                    (got as f64 - want).abs() <= 64.0 * 2f64.powi(-24) * mag,
                    "slot {k} row {r}"
                );
            }
        }
    }
}

#[test]
fn swiglu_clamps_gate_above_and_up_both_sides() {
    let mut rng = Rng(61);
    let n = 300;
    let g = rng.vec(2 * n, 25.0);
    let u = rng.vec(2 * n, 25.0);
    let wt = [0.7f32, -1.3];
    let mut mid = vec![0.0; 2 * n];
    moe_swiglu(&g, &u, &wt, n, 10.0, &mut mid);
    let mut m = vec![0.0; n];
    swiglu(&g[..n], &u[..n], 10.0, &mut m);
    let silu = |z: f64| z / (1.0 + (-z).exp());
    for i in 0..2 * n {
        let want =
            silu((g[i] as f64).min(10.0)) * (u[i] as f64).clamp(-10.0, 10.0) * wt[i / n] as f64;
        // exp, divide and three products in f32: ≤ 8 ulps relative.
        assert!(
            (mid[i] as f64 - want).abs() <= 1e-6 * want.abs() + 1e-30,
            "{i}"
        );
        if i < n {
            let want = silu((g[i] as f64).min(10.0)) * (u[i] as f64).clamp(-10.0, 10.0);
            assert!((m[i] as f64 - want).abs() <= 1e-6 * want.abs() + 1e-30);
        }
    }
    // A clamp of 0 disables clamping.
    let mut m1 = [0.0];
    swiglu(&[15.0], &[-20.0], 0.0, &mut m1);
    assert!((m1[0] as f64 - silu(15.0) * -20.0).abs() <= 1e-4);
}

#[test]
fn down_sums_slots_in_order_and_shards_add_up() {
    let mut rng = Rng(62);
    let down = q2k_weight(&mut rng, NE * N_EMBD, N_FF);
    let ids = [2, 4, 2, 0];
    let mid = rng.vec(ids.len() * N_FF, 1.0);
    let mut midq = vec![BlockQ8K::default(); ids.len() * N_FF / 256];
    quantize_q8_k_rows(&mid, N_FF, ids.len(), &mut midq);
    let md = dequant_q8k(&midq);

    let mut y = vec![0.0; N_EMBD];
    moe_down(&down, N_FF, N_EMBD, &midq, &ids, (0, NE as u32), &mut y);
    let rb = N_FF / 256 * 84;
    for o in 0..N_EMBD {
        let (mut want, mut mag) = (0.0, 0.0);
        for (k, &e) in ids.iter().enumerate() {
            let row = q2k_decode(&down[(e as usize * N_EMBD + o) * rb..][..rb]);
            for (i, (s, m)) in row.iter().enumerate() {
                let x = md[k * N_FF + i];
                want += (s - m) * x;
                mag += (s.abs() + m.abs()) * x.abs();
            }
        }
        // Per block: exact integer sums, four f32 roundings, one accumulation; per
        // slot one more add: (4·2 + 2)·4 slots ≤ 48 roundings of terms bounded by the
        // scale and min parts separately (they cancel), so 48·2^-24·mag.
        assert!(
            (y[o] as f64 - want).abs() <= 48.0 * 2f64.powi(-24) * mag,
            "o {o}"
        );
    }

    // Sharded: [0,3) + [3,5) equals the whole within the same bound; no slot in range
    // gives zeros.
    let (mut a, mut b) = (vec![0.0; N_EMBD], vec![0.0; N_EMBD]);
    moe_down(&down, N_FF, N_EMBD, &midq, &ids, (0, 3), &mut a);
    moe_down(&down, N_FF, N_EMBD, &midq, &ids, (3, 5), &mut b);
    for o in 0..N_EMBD {
        assert!((a[o] + b[o] - y[o]).abs() <= 1e-5 * (1.0 + y[o].abs()));
    }
    let mut z = vec![1.0; N_EMBD];
    moe_down(&down, N_FF, N_EMBD, &midq, &ids, (1, 2), &mut z);
    assert!(z.iter().all(|&v| v == 0.0));
}

#[test]
fn batched_by_expert_equals_token_by_token() {
    use crate::cpu::moe_batch::{moe_down_batch, moe_gate_up_batch};
    let mut rng = Rng(63);
    let gate = iq2_weight(&mut rng, NE * N_FF, N_EMBD);
    let up = iq2_weight(&mut rng, NE * N_FF, N_EMBD);
    let down = q2k_weight(&mut rng, NE * N_EMBD, N_FF);
    let (t, k) = (5, 3);
    // Experts repeat across tokens and within a token; 4 is out of the shard below.
    let ids: Vec<i32> = vec![3, 0, 4, 0, 3, 1, 2, 2, 0, 4, 4, 4, 1, 3, 0];
    let x = rng.vec(t * N_EMBD, 2.0);
    let mut xq = vec![BlockQ8K::default(); t * N_EMBD / 256];
    quantize_q8_k_rows(&x, N_EMBD, t, &mut xq);
    let mid = rng.vec(t * k * N_FF, 1.0);
    let mut midq = vec![BlockQ8K::default(); t * k * N_FF / 256];
    quantize_q8_k_rows(&mid, N_FF, t * k, &mut midq);
    let nb = N_EMBD / 256;
    for range in [(0, NE as u32), (0, 4), (4, 5)] {
        let (mut g, mut u) = (vec![f32::NAN; t * k * N_FF], vec![f32::NAN; t * k * N_FF]);
        moe_gate_up_batch(
            &gate, &up, N_EMBD, N_FF, &xq, &ids, k, range, &mut g, &mut u,
        );
        let mut y = vec![f32::NAN; t * N_EMBD];
        moe_down_batch(&down, N_FF, N_EMBD, &midq, &ids, k, range, &mut y);
        for ti in 0..t {
            let (mut g1, mut u1) = (vec![f32::NAN; k * N_FF], vec![f32::NAN; k * N_FF]);
            let i = &ids[ti * k..(ti + 1) * k];
            moe_gate_up(
                &gate,
                &up,
                N_EMBD,
                N_FF,
                &xq[ti * nb..(ti + 1) * nb],
                i,
                range,
                &mut g1,
                &mut u1,
            );
            let r = ti * k * N_FF..(ti + 1) * k * N_FF;
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&g[r.clone()]),
                bits(&g1),
                "gate, token {ti}, range {range:?}"
            );
            assert_eq!(bits(&u[r]), bits(&u1), "up, token {ti}, range {range:?}");
            let mut y1 = vec![0.0; N_EMBD];
            let mq = &midq[ti * k * (N_FF / 256)..(ti + 1) * k * (N_FF / 256)];
            moe_down(&down, N_FF, N_EMBD, mq, i, range, &mut y1);
            assert_eq!(
                bits(&y[ti * N_EMBD..(ti + 1) * N_EMBD]),
                bits(&y1),
                "down, token {ti}"
            );
        }
    }
}
