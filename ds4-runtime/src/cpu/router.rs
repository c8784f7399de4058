//! The MoE router (MODEL §11 F3, F4): probabilities, expert choice and weights.
//!
//! Probabilities are `sqrt(softplus(logit))` (not a softmax). Top-k layers choose by
//! `prob + bias` (bias optional), in descending order with ties to the lower expert id;
//! hash layers read the ids from the token's `tid2eid` row. Both weight the chosen
//! experts with the unbiased probabilities, `prob / max(Σ prob, 2^-14) · scale`.

/// ds4's stable softplus (§0): `z` above 20, `e^z` below -20, else `ln(1 + e^z)`.
///
/// The middle branch is `log1p(e^z)` (ds4's CUDA router uses `log1pf(expf(z))`): a
/// literal f32 `ln(1 + e^z)` returns 0 for z in (-20, -16.6), where `1 + e^z` rounds
/// to 1, which would zero experts the formula gives a weight.
#[inline]
pub fn softplus(z: f32) -> f32 {
    if z > 20.0 {
        z
    } else if z < -20.0 {
        z.exp()
    } else {
        z.exp().ln_1p()
    }
}

/// `prob[e] = sqrt(softplus(logits[e]))`.
pub fn router_probs(logits: &[f32], prob: &mut [f32]) {
    debug_assert_eq!(logits.len(), prob.len());
    for (p, &z) in prob.iter_mut().zip(logits) {
        *p = softplus(z).sqrt();
    }
}

/// Normalised, scaled weights of the experts `ids` (§11 F4).
fn weights(prob: &[f32], ids: &[i32], scale: f32, wt: &mut [f32]) {
    let mut sum = 0.0f32;
    for &e in ids {
        sum += prob[e as usize];
    }
    let denom = sum.max(1.0 / 16384.0);
    for (w, &e) in wt.iter_mut().zip(ids) {
        *w = prob[e as usize] / denom * scale;
    }
}

/// Top-`k` experts by `prob + bias`, descending, ties to the lower id; weights from `prob`.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn router_topk(
    prob: &[f32],
    bias: Option<&[f32]>,
    k: usize,
    scale: f32,
    ids: &mut [i32],
    wt: &mut [f32],
) {
    debug_assert!(ids.len() == k && wt.len() == k && k <= prob.len());
    let sel = |e: usize| prob[e] + bias.map_or(0.0, |b| b[e]);

    // Insertion into a descending list with strict '>': an equal score never passes
    // an earlier (lower) id, and a NaN score never enters a full list.
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for e in 0..prob.len() {
        let s = sel(e);
        if best.len() == k && !(s > best[k - 1].0) {
            continue;
        }
        let at = best.iter().position(|&(b, _)| s > b).unwrap_or(best.len());
        best.insert(at, (s, e));
        best.truncate(k);
    }
    for (i, &(_, e)) in ids.iter_mut().zip(&best) {
        *i = e as i32;
    }
    weights(prob, ids, scale, wt);
}

/// Hash routing (layers 0..2): ids from the token's `tid2eid` row, weights from `prob`.
///
/// The table's ids must be below `prob.len()`: the loader has to check the table once,
/// since an id out of range panics here.
pub fn router_hash(prob: &[f32], tid2eid_row: &[i32], scale: f32, ids: &mut [i32], wt: &mut [f32]) {
    debug_assert!(tid2eid_row.len() >= ids.len() && wt.len() == ids.len());
    debug_assert!(tid2eid_row
        .iter()
        .all(|&e| e >= 0 && (e as usize) < prob.len()));
    ids.copy_from_slice(&tid2eid_row[..ids.len()]);
    weights(prob, ids, scale, wt);
}

#[cfg(test)]
// The self-check values are quoted as MODEL.md prints them.
#[allow(clippy::excessive_precision, clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::cpu::testutil::Rng;

    fn softplus_ref(z: f64) -> f64 {
        if z > 20.0 {
            z
        } else if z < -20.0 {
            z.exp()
        } else {
            z.exp().ln_1p()
        }
    }

    #[test]
    fn sqrt_softplus_self_check_and_reference() {
        let mut p = [0.0f32; 2];
        router_probs(&[0.0, 2.0], &mut p);
        // MODEL §17, printed to 8 digits: 1e-7 is print rounding plus an ulp.
        assert!((p[0] - 0.83255464).abs() <= 1e-7 && (p[1] - 1.45839918).abs() <= 1e-7);

        // Random logits across the three branches: exp, log1p and sqrt each add an
        // ulp or so of relative error, and the branch switches at ±20 are continuous
        // to f32 precision (e^-20 ≈ 2e-9 vs log1p(e^-20), and 20 vs 20 + 2e-9), so 1e-6
        // relative holds everywhere.
        let mut rng = Rng(40);
        let z = rng.vec(1000, 30.0);
        let mut p = vec![0.0; 1000];
        router_probs(&z, &mut p);
        for (g, &zi) in p.iter().zip(&z) {
            let r = softplus_ref(zi as f64).sqrt();
            assert!((*g as f64 - r).abs() <= 1e-6 * r, "z {zi}: {g} vs {r}");
        }
    }

    /// Sort-based reference: by (score desc, id asc).
    fn topk_ref(prob: &[f32], bias: Option<&[f32]>, k: usize, scale: f64) -> (Vec<i32>, Vec<f64>) {
        let mut idx: Vec<usize> = (0..prob.len()).collect();
        let s = |e: usize| prob[e] + bias.map_or(0.0, |b| b[e]);
        idx.sort_by(|&a, &b| s(b).partial_cmp(&s(a)).unwrap().then(a.cmp(&b)));
        let ids: Vec<i32> = idx[..k].iter().map(|&e| e as i32).collect();
        let sum: f64 = ids
            .iter()
            .map(|&e| prob[e as usize] as f64)
            .sum::<f64>()
            .max(2f64.powi(-14));
        let wt = ids
            .iter()
            .map(|&e| prob[e as usize] as f64 / sum * scale)
            .collect();
        (ids, wt)
    }

    #[test]
    fn topk_matches_reference_with_and_without_bias() {
        // Weights: one f32 sum of k terms and a divide, multiply: ≤ (k+2) ulps relative.
        let mut rng = Rng(41);
        for case in 0..100 {
            let n = 37 + rng.below(250);
            let k = 1 + rng.below(8);
            // Quantised probabilities produce exact ties.
            let prob: Vec<f32> = (0..n).map(|_| (rng.below(20) as f32) * 0.125).collect();
            let bias: Vec<f32> = (0..n).map(|_| (rng.below(3) as f32) * 0.125).collect();
            for b in [None, Some(&bias[..])] {
                let (mut ids, mut wt) = (vec![0; k], vec![0.0; k]);
                router_topk(&prob, b, k, 1.5, &mut ids, &mut wt);
                let (rid, rwt) = topk_ref(&prob, b, k, 1.5);
                assert_eq!(ids, rid, "case {case}");
                for (g, r) in wt.iter().zip(&rwt) {
                    assert!(
                        (*g as f64 - r).abs() <= 1e-6 * r.abs().max(1e-3),
                        "case {case}"
                    );
                }
            }
        }
    }

    #[test]
    fn tiny_probabilities_use_the_floor() {
        let prob = [1e-6f32, 2e-6, 0.0, 3e-6];
        let (mut ids, mut wt) = ([0; 2], [0.0; 2]);
        router_topk(&prob, None, 2, 1.5, &mut ids, &mut wt);
        assert_eq!(ids, [3, 1]);
        // The sum 6e-6 is below 2^-14, so the floor divides: w = p·2^14·1.5 (exact
        // scaling by a power of two, then one rounding of the ×1.5).
        let want = prob[3] as f64 * 16384.0 * 1.5;
        assert!((wt[0] as f64 - want).abs() <= 1e-7 * want);
    }

    #[test]
    fn hash_uses_the_table_row() {
        let prob: Vec<f32> = (0..16).map(|e| 0.1 + e as f32 * 0.05).collect();
        let row = [5, 2, 9, 2, 0, 15];
        let (mut ids, mut wt) = ([0; 6], [0.0; 6]);
        router_hash(&prob, &row, 1.5, &mut ids, &mut wt);
        assert_eq!(ids, row);
        let sum: f64 = row.iter().map(|&e| prob[e as usize] as f64).sum();
        for (w, &e) in wt.iter().zip(&row) {
            assert!((*w as f64 - prob[e as usize] as f64 / sum * 1.5).abs() <= 1e-6);
        }
    }
}
