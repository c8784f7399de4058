//! Every SIMD path against its scalar reference: random rows and activations,
//! odd block counts, bit-for-bit equality, on every path this machine offers.

use super::Isa;
use crate::quant::q8_0::{self, BlockQ8_0Act};
use crate::quant::q8_k::{self, BlockQ8K};
use crate::quant::test_util::{random_f16_scale, Rng};
use crate::quant::{iq2_xxs, q2_k, q4_k, QK_K};

/// Block counts: one, a few odd ones (loop tails), one full 4096-wide row.
const BLOCKS: [usize; 6] = [1, 2, 3, 5, 13, 16];

/// A random weight row: per block random bytes, then valid f16 scales at `scale_at`.
fn row(rng: &mut Rng, nb: usize, bytes: usize, scale_at: &[usize]) -> Vec<u8> {
    let mut w: Vec<u8> = (0..nb * bytes).map(|_| rng.next() as u8).collect();
    for b in 0..nb {
        for &o in scale_at {
            // A random sign keeps both signs of the scale covered.
            let h = random_f16_scale(rng) | if rng.next() & 1 == 1 { 0x8000 } else { 0 };
            w[b * bytes + o..b * bytes + o + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    w
}

/// Activation values: mostly moderate, with an occasional outlier so the quants span ±127.
fn values(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v = rng.uniform() * 2.0 - 1.0;
            if rng.next().is_multiple_of(17) {
                v * 40.0
            } else {
                v
            }
        })
        .collect()
}

fn q8k_act(rng: &mut Rng, nb: usize) -> Vec<BlockQ8K> {
    let mut x = vec![BlockQ8K::default(); nb];
    q8_k::quantize(&values(rng, nb * QK_K), &mut x);
    x
}

fn check<X>(
    name: &str,
    seed: u64,
    make: impl Fn(&mut Rng, usize) -> (Vec<u8>, Vec<X>),
    r: impl Fn(&[u8], &[X]) -> f32,
    f: impl Fn(Isa, &[u8], &[X]) -> f32,
) {
    let mut rng = Rng::new(seed);
    for isa in Isa::available() {
        for nb in BLOCKS {
            for rep in 0..8 {
                let (w, x) = make(&mut rng, nb);
                let (want, got) = (r(&w, &x), f(isa, &w, &x));
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{name} {isa:?} nb {nb} rep {rep}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn every_path_of_this_machine_is_tested() {
    let a = Isa::available();
    assert!(a.contains(&Isa::Scalar));
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl") {
        assert!(
            a.contains(&Isa::Avx2) && a.contains(&Isa::Avx512Vnni),
            "{a:?}"
        );
    }
    assert!(a.contains(&super::active()));
}

#[test]
fn q8_0_paths_match_reference() {
    let make = |rng: &mut Rng, nb: usize| {
        let w = row(rng, nb, q8_0::BLOCK_BYTES, &[0]);
        let mut x = vec![BlockQ8_0Act::default(); nb];
        q8_0::quantize_act(&values(rng, nb * 32), &mut x);
        (w, x)
    };
    check("q8_0", 1, make, q8_0::vec_dot_ref, q8_0::vec_dot_isa);
}

#[test]
fn iq2_xxs_paths_match_reference() {
    let make =
        |rng: &mut Rng, nb: usize| (row(rng, nb, iq2_xxs::BLOCK_BYTES, &[0]), q8k_act(rng, nb));
    check(
        "iq2_xxs",
        2,
        make,
        iq2_xxs::vec_dot_ref,
        iq2_xxs::vec_dot_isa,
    );
}

#[test]
fn q2_k_paths_match_reference() {
    let make =
        |rng: &mut Rng, nb: usize| (row(rng, nb, q2_k::BLOCK_BYTES, &[80, 82]), q8k_act(rng, nb));
    check("q2_k", 3, make, q2_k::vec_dot_ref, q2_k::vec_dot_isa);
}

#[test]
fn q4_k_paths_match_reference() {
    let make =
        |rng: &mut Rng, nb: usize| (row(rng, nb, q4_k::BLOCK_BYTES, &[0, 2]), q8k_act(rng, nb));
    check("q4_k", 4, make, q4_k::vec_dot_ref, q4_k::vec_dot_isa);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn q8_0_sixteen_token_kernel_matches_reference() {
    use super::q8_0_x16::{row_x16, Packed16, LANES};
    if !Isa::Avx512Vnni.supported() {
        return;
    }
    let mut rng = Rng::new(5);
    let mut p = Packed16::default();
    for (nb, t, sets) in [(1, 2, 1), (3, 17, 2), (13, 33, 1), (4, 16, 3)] {
        let w: Vec<Vec<u8>> = (0..sets)
            .map(|_| row(&mut rng, nb, q8_0::BLOCK_BYTES, &[0]))
            .collect();
        let x: Vec<Vec<BlockQ8_0Act>> = (0..t * sets)
            .map(|_| {
                let mut b = vec![BlockQ8_0Act::default(); nb];
                q8_0::quantize_act(&values(&mut rng, nb * 32), &mut b);
                b
            })
            .collect();
        p.pack(t, nb, sets, |ti, s| &x[ti * sets + s]);
        for s in 0..sets {
            for g in 0..p.groups() {
                let mut lanes = [0.0f32; LANES];
                // SAFETY: AVX-512 VNNI is supported (checked above); the row has nb blocks.
                unsafe { row_x16(&w[s], &p, s, g, &mut lanes) };
                for (l, got) in lanes.iter().enumerate().take(t - g * LANES) {
                    let want = q8_0::vec_dot_ref(&w[s], &x[(g * LANES + l) * sets + s]);
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "nb {nb} t {t} set {s} token {}",
                        g * LANES + l
                    );
                }
            }
        }
    }
}

#[test]
fn iq2_xxs_two_activation_kernel_matches_reference() {
    let mut rng = Rng::new(6);
    for nb in BLOCKS {
        let w = row(&mut rng, nb, iq2_xxs::BLOCK_BYTES, &[0]);
        let (x0, x1) = (q8k_act(&mut rng, nb), q8k_act(&mut rng, nb));
        let got = iq2_xxs::vec_dot2(&w, &x0, &x1);
        assert_eq!(
            got[0].to_bits(),
            iq2_xxs::vec_dot_ref(&w, &x0).to_bits(),
            "nb {nb}"
        );
        assert_eq!(
            got[1].to_bits(),
            iq2_xxs::vec_dot_ref(&w, &x1).to_bits(),
            "nb {nb}"
        );
    }
}

#[test]
fn q2_k_two_activation_kernel_matches_reference() {
    let mut rng = Rng::new(7);
    for nb in BLOCKS {
        let w = row(&mut rng, nb, q2_k::BLOCK_BYTES, &[80, 82]);
        let (x0, x1) = (q8k_act(&mut rng, nb), q8k_act(&mut rng, nb));
        let got = q2_k::vec_dot2(&w, &x0, &x1);
        assert_eq!(
            got[0].to_bits(),
            q2_k::vec_dot_ref(&w, &x0).to_bits(),
            "nb {nb}"
        );
        assert_eq!(
            got[1].to_bits(),
            q2_k::vec_dot_ref(&w, &x1).to_bits(),
            "nb {nb}"
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn f16_dot8_matches_eight_lane_dot_of_the_widened_row() {
    if !Isa::Avx2.supported() {
        return;
    }
    let mut rng = Rng::new(8);
    for n in [1usize, 7, 8, 13, 64, 203, 4096] {
        let h: Vec<u16> = (0..n)
            .map(|_| crate::quant::f32_to_f16(rng.uniform() * 2.0 - 1.0))
            .collect();
        let w: Vec<u8> = h.iter().flat_map(|v| v.to_le_bytes()).collect();
        let x = values(&mut rng, n);
        // The eight-lane order of `cpu::dot_f32`, written out.
        let (mut acc, mut tail) = ([0.0f32; 8], 0.0f32);
        for i in 0..n / 8 * 8 {
            acc[i % 8] += crate::quant::f16_to_f32(h[i]) * x[i];
        }
        for i in n / 8 * 8..n {
            tail += crate::quant::f16_to_f32(h[i]) * x[i];
        }
        let want = ((acc[0] + acc[4]) + (acc[1] + acc[5]))
            + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
            + tail;
        // SAFETY: AVX2 (with F16C) is supported (checked above).
        let got = unsafe { super::x86::f16_dot8(&w, &x) };
        assert_eq!(got.to_bits(), want.to_bits(), "n {n}");
    }
}

/// Sixteen decoded rows against tokens taken 4, 2 and 1 at a time, every lane
/// against the scalar reference; odd block counts, random rows and activations.
#[cfg(target_arch = "x86_64")]
#[test]
fn sixteen_row_kernels_match_reference() {
    use super::rows16::{Biased, Iq2Rows16, Q2kRows16, ROWS};
    if !Isa::Avx512Vnni.supported() {
        return;
    }
    let mut rng = Rng::new(9);
    let (mut iq2, mut q2k, mut biased) = (
        Iq2Rows16::default(),
        Q2kRows16::default(),
        Biased::default(),
    );
    for nb in [1usize, 2, 3, 8, 16] {
        let wi: Vec<u8> = (0..ROWS)
            .flat_map(|_| row(&mut rng, nb, iq2_xxs::BLOCK_BYTES, &[0]))
            .collect();
        let wq: Vec<u8> = (0..ROWS)
            .flat_map(|_| row(&mut rng, nb, q2_k::BLOCK_BYTES, &[80, 82]))
            .collect();
        let t = 7;
        let x: Vec<BlockQ8K> = (0..t).flat_map(|_| q8k_act(&mut rng, nb)).collect();
        let tok = |i: usize| &x[i * nb..(i + 1) * nb];
        biased.fill(&x, nb);
        // SAFETY: AVX-512 VNNI is supported (checked above); 16 rows of nb blocks.
        let (a4, a2, a1, b4, b2, b1) = unsafe {
            iq2.decode(&wi, nb);
            q2k.decode(&wq, nb);
            (
                iq2.dot(&biased, [0, 1, 2, 3]),
                iq2.dot(&biased, [4, 5]),
                iq2.dot(&biased, [6]),
                q2k.dot([tok(0), tok(1), tok(2), tok(3)]),
                q2k.dot([tok(4), tok(5)]),
                q2k.dot([tok(6)]),
            )
        };
        let gi: Vec<[f32; ROWS]> = a4.into_iter().chain(a2).chain(a1).collect();
        let gq: Vec<[f32; ROWS]> = b4.into_iter().chain(b2).chain(b1).collect();
        for i in 0..t {
            for r in 0..ROWS {
                let ri = &wi[r * nb * iq2_xxs::BLOCK_BYTES..(r + 1) * nb * iq2_xxs::BLOCK_BYTES];
                let want = iq2_xxs::vec_dot_ref(ri, tok(i));
                assert_eq!(
                    gi[i][r].to_bits(),
                    want.to_bits(),
                    "iq2 nb {nb} token {i} row {r}"
                );
                let rq = &wq[r * nb * q2_k::BLOCK_BYTES..(r + 1) * nb * q2_k::BLOCK_BYTES];
                let want = q2_k::vec_dot_ref(rq, tok(i));
                assert_eq!(
                    gq[i][r].to_bits(),
                    want.to_bits(),
                    "q2k nb {nb} token {i} row {r}"
                );
            }
        }
    }
}

/// The several-group Q8_0 kernel against the reference, 1 to 4 groups, partial last group.
#[cfg(target_arch = "x86_64")]
#[test]
fn q8_0_sixteen_token_kernel_over_several_groups_matches_reference() {
    use super::q8_0_x16::{row_x16_groups, rows_x16_groups, Packed16, LANES};
    if !Isa::Avx512Vnni.supported() {
        return;
    }
    let mut rng = Rng::new(10);
    let mut p = Packed16::default();
    for (nb, t, sets) in [(1, 20, 1), (5, 64, 2), (13, 57, 1), (3, 33, 3)] {
        let w: Vec<Vec<u8>> = (0..sets)
            .map(|_| row(&mut rng, nb, q8_0::BLOCK_BYTES, &[0]))
            .collect();
        let x: Vec<Vec<BlockQ8_0Act>> = (0..t * sets)
            .map(|_| {
                let mut b = vec![BlockQ8_0Act::default(); nb];
                q8_0::quantize_act(&values(&mut rng, nb * 32), &mut b);
                b
            })
            .collect();
        p.pack(t, nb, sets, |ti, s| &x[ti * sets + s]);
        for s in 0..sets {
            for g0 in 0..p.groups() {
                // SAFETY: AVX-512 VNNI is supported (checked above); groups g0.. are packed.
                let got: Vec<[f32; LANES]> = unsafe {
                    match p.groups() - g0 {
                        1 => row_x16_groups::<1>(&w[s], &p, s, g0).to_vec(),
                        2 => row_x16_groups::<2>(&w[s], &p, s, g0).to_vec(),
                        3 => row_x16_groups::<3>(&w[s], &p, s, g0).to_vec(),
                        _ => row_x16_groups::<4>(&w[s], &p, s, g0).to_vec(),
                    }
                };
                // Two rows at once: the set's row and one with its quants reversed (so
                // the rows differ), each against the reference.
                let mut w2 = w[s].clone();
                for blk in w2.chunks_exact_mut(q8_0::BLOCK_BYTES) {
                    blk[2..].reverse();
                }
                let ws = [&w[s][..], &w2[..]];
                // SAFETY: as above.
                let pair: [Vec<[f32; LANES]>; 2] = unsafe {
                    match p.groups() - g0 {
                        1 => rows_x16_groups::<2, 1>(ws, &p, s, g0).map(|a| a.to_vec()),
                        2 => rows_x16_groups::<2, 2>(ws, &p, s, g0).map(|a| a.to_vec()),
                        3 => rows_x16_groups::<2, 3>(ws, &p, s, g0).map(|a| a.to_vec()),
                        _ => rows_x16_groups::<2, 4>(ws, &p, s, g0).map(|a| a.to_vec()),
                    }
                };
                for (wr, res) in [(ws[0], &got), (ws[0], &pair[0]), (ws[1], &pair[1])] {
                    for (i, lanes) in res.iter().enumerate() {
                        let t0 = (g0 + i) * LANES;
                        for (l, v) in lanes.iter().enumerate().take(t - t0) {
                            let want = q8_0::vec_dot_ref(wr, &x[(t0 + l) * sets + s]);
                            let token = t0 + l;
                            assert_eq!(v.to_bits(), want.to_bits(), "nb {nb} t {t} token {token}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn q8_0_four_row_kernel_matches_reference() {
    let mut rng = Rng::new(11);
    for nb in BLOCKS {
        let w: Vec<Vec<u8>> = (0..4)
            .map(|_| row(&mut rng, nb, q8_0::BLOCK_BYTES, &[0]))
            .collect();
        let mut x = vec![BlockQ8_0Act::default(); nb];
        q8_0::quantize_act(&values(&mut rng, nb * 32), &mut x);
        let got = q8_0::vec_dot4([&w[0], &w[1], &w[2], &w[3]], &x);
        for (j, g) in got.iter().enumerate() {
            let want = q8_0::vec_dot_ref(&w[j], &x);
            assert_eq!(g.to_bits(), want.to_bits(), "nb {nb} row {j}");
        }
    }
}
