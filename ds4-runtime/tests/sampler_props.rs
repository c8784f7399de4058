//! Sampler behaviour (FORMAT.md §7): allowed sets of top-k, top-p and min-p, the
//! empirical distribution against the softmax, seeding, greedy ties, log-probs.

use ds4_runtime::sampler::{argmax, token_logprob, top_logprobs, Sampler, SamplerConfig};
use proptest::prelude::*;

/// Probabilities `softmax(l / t)` in f64.
fn softmax(logits: &[f32], t: f64) -> Vec<f64> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let w: Vec<f64> = logits.iter().map(|&l| ((l as f64 - m) / t).exp()).collect();
    let s: f64 = w.iter().sum();
    w.into_iter().map(|x| x / s).collect()
}

/// Ids by descending logit, lower id first on ties.
fn ranked(logits: &[f32]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    ids
}

fn counts(sampler: &mut Sampler, logits: &[f32], draws: usize) -> Vec<u64> {
    let mut counts = vec![0u64; logits.len()];
    for _ in 0..draws {
        counts[sampler.sample(logits) as usize] += 1;
    }
    counts
}

/// Pearson's chi-square of `counts` against `expected` probabilities (bins with
/// expected probability 0 must be empty) and its degrees of freedom.
fn chi_square(counts: &[u64], expected: &[f64]) -> (f64, usize) {
    let n: u64 = counts.iter().sum();
    let mut stat = 0.0;
    let mut bins = 0;
    for (&c, &p) in counts.iter().zip(expected) {
        if p == 0.0 {
            assert_eq!(c, 0, "a token outside the allowed set was drawn");
            continue;
        }
        let e = p * n as f64;
        stat += (c as f64 - e).powi(2) / e;
        bins += 1;
    }
    (stat, bins - 1)
}

/// Chi-square value exceeded with probability about 1e-6 under the null hypothesis
/// (Wilson–Hilferty: (X/d)^(1/3) is nearly normal; z = 4.753 is the one-sided 1e-6
/// normal quantile). A correct sampler fails this about once in a million seeds, so
/// a failure means the distribution is wrong, not bad luck; with 200k draws a bin
/// off by 5% of its probability (p = 0.1) adds ~50 to the statistic, well past it.
fn chi_square_limit(dof: usize) -> f64 {
    let d = dof as f64;
    let z = 4.753;
    d * (1.0 - 2.0 / (9.0 * d) + z * (2.0 / (9.0 * d)).sqrt()).powi(3)
}

const LOGITS: [f32; 10] = [1.0, 2.5, 0.3, -1.0, 2.0, 0.0, 1.7, -0.5, 3.0, 0.9];
const DRAWS: usize = 200_000;

fn config(temperature: f32, top_k: usize, top_p: f32, min_p: f32, seed: u64) -> SamplerConfig {
    SamplerConfig {
        temperature,
        top_k,
        top_p,
        min_p,
        seed,
    }
}

fn assert_distribution(cfg: SamplerConfig, expected: &[f64]) {
    let counts = counts(&mut Sampler::new(cfg), &LOGITS, DRAWS);
    let (stat, dof) = chi_square(&counts, expected);
    assert!(
        stat < chi_square_limit(dof),
        "{cfg:?}: chi-square {stat:.1} with {dof} dof, counts {counts:?}"
    );
}

/// Softmax at temperature `t` restricted to `allowed`, renormalised.
fn restricted(t: f64, allowed: &[usize]) -> Vec<f64> {
    let p = softmax(&LOGITS, t);
    let mass: f64 = allowed.iter().map(|&i| p[i]).sum();
    (0..LOGITS.len())
        .map(|i| {
            if allowed.contains(&i) {
                p[i] / mass
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn temperature_one_matches_softmax() {
    assert_distribution(config(1.0, 0, 1.0, 0.0, 7), &softmax(&LOGITS, 1.0));
}

#[test]
fn other_temperatures_match_scaled_softmax() {
    assert_distribution(config(0.6, 0, 1.0, 0.0, 8), &softmax(&LOGITS, 0.6));
    assert_distribution(config(2.0, 0, 1.0, 0.0, 9), &softmax(&LOGITS, 2.0));
}

#[test]
fn filtered_distributions_are_renormalised_softmax() {
    // min-p 0.2 at T = 1: tokens with p ≥ 0.2 · p_max, i.e. logit ≥ 3 + ln 0.2.
    let min_p_allowed: Vec<usize> = (0..10)
        .filter(|&i| LOGITS[i] as f64 >= 3.0 + 0.2f64.ln())
        .collect();
    assert_distribution(
        config(1.0, 0, 1.0, 0.2, 10),
        &restricted(1.0, &min_p_allowed),
    );

    // top-k 3: ids 8, 1, 4.
    assert_distribution(config(1.0, 3, 1.0, 0.0, 11), &restricted(1.0, &[8, 1, 4]));

    // top-p 0.7: the shortest prefix by rank whose mass reaches 0.7.
    let p = softmax(&LOGITS, 1.0);
    let mut allowed = Vec::new();
    let mut mass = 0.0;
    for i in ranked(&LOGITS) {
        allowed.push(i);
        mass += p[i];
        if mass >= 0.7 {
            break;
        }
    }
    assert_distribution(config(1.0, 0, 0.7, 0.0, 12), &restricted(1.0, &allowed));
}

#[test]
fn same_seed_same_tokens() {
    let logits: Vec<f32> = (0..1000)
        .map(|i| ((i * 7919) % 113) as f32 / 20.0)
        .collect();
    for cfg in [
        config(1.0, 0, 1.0, 0.05, 99),
        config(0.8, 40, 0.9, 0.0, 99),
        config(1.2, 0, 0.95, 0.01, 99),
    ] {
        let a: Vec<u32> = {
            let mut s = Sampler::new(cfg);
            (0..500).map(|_| s.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(cfg);
            (0..500).map(|_| s.sample(&logits)).collect()
        };
        let c: Vec<u32> = {
            let mut s = Sampler::new(SamplerConfig { seed: 100, ..cfg });
            (0..500).map(|_| s.sample(&logits)).collect()
        };
        assert_eq!(a, b, "{cfg:?}");
        assert_ne!(a, c, "a different seed should give a different sequence");
    }
}

#[test]
fn greedy_ties_go_to_the_lowest_id() {
    let logits = [1.0, 3.0, f32::NAN, 3.0, 2.0];
    assert_eq!(argmax(&logits), 1);
    for t in [0.0, -1.0, f32::NAN] {
        assert_eq!(Sampler::new(config(t, 0, 1.0, 0.05, 1)).sample(&logits), 1);
    }
    assert_eq!(argmax(&[]), 0);
    assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
}

#[test]
fn non_finite_logits_are_never_drawn() {
    let logits = [f32::NAN, 0.0, f32::NEG_INFINITY, 0.0, f32::INFINITY];
    let mut s = Sampler::new(config(1.0, 0, 1.0, 0.0, 3));
    for _ in 0..2000 {
        let id = s.sample(&logits);
        assert!(id == 1 || id == 3, "drew {id}");
    }
    // Nothing finite: argmax, which picks +inf.
    assert_eq!(
        Sampler::new(SamplerConfig::default()).sample(&[f32::NAN, f32::INFINITY]),
        1
    );
}

#[test]
fn defaults_are_the_cli_defaults() {
    let d = SamplerConfig::default();
    assert_eq!(
        (d.temperature, d.top_k, d.top_p, d.min_p),
        (1.0, 0, 1.0, 0.05)
    );
}

#[test]
fn log_probabilities_are_a_log_softmax() {
    let p = softmax(&LOGITS, 1.0);
    let top = top_logprobs(&LOGITS, 3);
    let ids: Vec<u32> = top.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids, [8, 1, 4]);
    for (id, lp) in top {
        assert!((lp - p[id as usize].ln()).abs() < 1e-12);
    }
    let total: f64 = (0..10)
        .map(|i| token_logprob(&LOGITS, i).expect("finite").exp())
        .sum();
    assert!((total - 1.0).abs() < 1e-12);
    assert_eq!(token_logprob(&LOGITS, 10), None);
    assert_eq!(top_logprobs(&[f32::NAN], 5), []);
    assert_eq!(top_logprobs(&LOGITS, 50).len(), 10);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over many draws, each filter only ever emits tokens of its allowed set.
    #[test]
    fn filters_stay_in_their_allowed_sets(
        logits in prop::collection::vec(-8.0f32..8.0, 2..200),
        k in 1usize..20,
        top_p in 0.05f32..0.99,
        min_p in 0.01f32..0.9,
        temperature in 0.2f32..2.0,
        seed in 1u64..u64::MAX,
    ) {
        let rank = ranked(&logits);
        let max = logits[rank[0]];
        let p = softmax(&logits, temperature as f64);

        // top-k: the k first by rank.
        let top_k_set = &rank[..k.min(logits.len())];
        let mut s = Sampler::new(config(temperature, k, 1.0, 0.0, seed));
        for _ in 0..300 {
            let id = s.sample(&logits) as usize;
            prop_assert!(top_k_set.contains(&id), "top-k {k} drew {id}");
        }

        // top-p: the shortest rank prefix reaching top_p, plus a little slack only for
        // the f32 weights the sampler uses (boundary tokens within 1e-5 of the cut).
        let mut allowed = Vec::new();
        let mut mass = 0.0;
        for &i in &rank {
            allowed.push(i);
            mass += p[i];
            if mass >= top_p as f64 + 1e-5 {
                break;
            }
        }
        let mut s = Sampler::new(config(temperature, 0, top_p, 0.0, seed));
        for _ in 0..300 {
            let id = s.sample(&logits) as usize;
            prop_assert!(allowed.contains(&id), "top-p {top_p} drew {id}");
        }

        // min-p: weight relative to the top token at least min_p (f32 weights as ds4).
        let mut s = Sampler::new(config(temperature, 0, 1.0, min_p, seed));
        for _ in 0..300 {
            let id = s.sample(&logits) as usize;
            let w = ((logits[id] - max) / temperature).exp();
            prop_assert!(w >= min_p, "min-p {min_p} drew {id} with relative weight {w}");
        }
    }
}
