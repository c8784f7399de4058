//! The lightning indexer of ratio-4 layers (MODEL §9): picks which compressed rows a
//! query may attend to.
//!
//! With `n = ⌊(pos+1)/ratio⌋` visible indexer rows: none visible gives an all `-1`
//! selection; `n <= top_k` selects `0..n` without scoring; otherwise every row gets
//! `score[c] = Σ_h max(0, q_h·row_c) · wts[h] / sqrt(head_dim·heads)` and the `top_k`
//! best are chosen as ds4 does (repeated strict-`>` argmax, so equal scores go to the
//! lower index). The selection is written in ascending row order, `-1` padded, which
//! is the order attention visits rows in.

use rayon::prelude::*;

use super::dot_f32;
use crate::quant::{fp4, hadamard};

/// Quantisation-aware simulation of the indexer query: `fp4(hadamard128(head))` per head.
pub fn indexer_qat(q: &mut [f32], head_dim: usize) {
    debug_assert!(head_dim == 128 && q.len().is_multiple_of(head_dim));
    for h in q.chunks_exact_mut(head_dim) {
        hadamard::hadamard128(h);
        fp4::quantize_row(h);
    }
}

/// Selects the compressed rows visible to the query at `pos` (see the module doc).
///
/// `q` is `heads × head_dim` after RoPE and QAT, `wts` the unscaled `indexer.proj`
/// output, `rows` the indexer rows (row `c` at `c·head_dim`), `sel` at least `top_k` long.
#[allow(clippy::too_many_arguments)]
pub fn indexer_topk(
    q: &[f32],
    wts: &[f32],
    rows: &[f32],
    heads: usize,
    head_dim: usize,
    top_k: usize,
    ratio: usize,
    pos: usize,
    sel: &mut [i32],
) {
    debug_assert!(q.len() == heads * head_dim && wts.len() >= heads && sel.len() >= top_k);
    let n = (pos + 1) / ratio;
    debug_assert!(rows.len() >= n * head_dim);
    sel.iter_mut().for_each(|s| *s = -1);

    if n <= top_k {
        for (c, s) in sel.iter_mut().take(n).enumerate() {
            *s = c as i32;
        }
        return;
    }

    let scale = 1.0 / ((head_dim * heads) as f32).sqrt();
    let w: Vec<f32> = wts[..heads].iter().map(|&v| v * scale).collect();
    let mut scores = vec![0.0f32; n];
    scores
        .par_iter_mut()
        .enumerate()
        .with_min_len(64)
        .for_each(|(c, s)| {
            let row = &rows[c * head_dim..(c + 1) * head_dim];
            let mut acc = 0.0f32;
            for (h, qh) in q.chunks_exact(head_dim).enumerate() {
                acc += dot_f32(qh, row).max(0.0) * w[h];
            }
            *s = acc;
        });

    // Order: higher score first, then lower index; NaN ranks below everything, as it
    // never wins a strict '>' comparison.
    let key = |c: usize| {
        if scores[c].is_nan() {
            f32::NEG_INFINITY
        } else {
            scores[c]
        }
    };
    let mut idx: Vec<usize> = (0..n).collect();
    idx.select_nth_unstable_by(top_k - 1, |&a, &b| {
        key(b).total_cmp(&key(a)).then(a.cmp(&b))
    });
    let chosen = &mut idx[..top_k];
    chosen.sort_unstable();
    for (s, &c) in sel.iter_mut().zip(chosen.iter()) {
        *s = c as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testutil::Rng;

    /// ds4's selection written naively: `top_k` rounds of strict-`>` argmax in f64.
    fn reference(
        q: &[f32],
        wts: &[f32],
        rows: &[f32],
        heads: usize,
        hd: usize,
        top_k: usize,
        n: usize,
    ) -> Vec<i32> {
        let scale = 1.0 / ((hd * heads) as f64).sqrt();
        let score: Vec<f64> = (0..n)
            .map(|c| {
                (0..heads)
                    .map(|h| {
                        let d: f64 = (0..hd)
                            .map(|i| q[h * hd + i] as f64 * rows[c * hd + i] as f64)
                            .sum();
                        d.max(0.0) * wts[h] as f64 * scale
                    })
                    .sum()
            })
            .collect();
        let mut taken = vec![false; n];
        for _ in 0..top_k {
            let mut best: Option<usize> = None;
            for c in 0..n {
                if !taken[c] && best.is_none_or(|b| score[c] > score[b]) {
                    best = Some(c);
                }
            }
            if let Some(b) = best {
                taken[b] = true;
            }
        }
        (0..n).filter(|&c| taken[c]).map(|c| c as i32).collect()
    }

    #[test]
    fn small_counts_select_everything_visible() {
        let (heads, hd, top_k) = (2, 8, 5);
        let q = vec![1.0; heads * hd];
        let rows = vec![1.0; 10 * hd];
        let mut sel = vec![7; top_k];
        for pos in 0..24usize {
            indexer_topk(&q, &[1.0, 1.0], &rows, heads, hd, top_k, 4, pos, &mut sel);
            let n = (pos + 1) / 4;
            if n <= top_k {
                let want: Vec<i32> = (0..top_k as i32)
                    .map(|c| if (c as usize) < n { c } else { -1 })
                    .collect();
                assert_eq!(sel, want, "pos {pos}");
            }
        }
        // n == 0: all -1.
        indexer_topk(&q, &[1.0, 1.0], &rows, heads, hd, top_k, 4, 2, &mut sel);
        assert!(sel.iter().all(|&s| s == -1));
    }

    #[test]
    fn top_k_matches_reference() {
        // Scores are compared, not just summed: the random rows keep adjacent scores
        // far apart relative to f32 error (~1e-7 relative), so the selections must be
        // identical. The check runs on 200 random cases.
        let mut rng = Rng(30);
        for case in 0..200 {
            let (heads, hd, top_k) = (3, 16, 1 + rng.below(9));
            let n = top_k + 1 + rng.below(40);
            let pos = 4 * n + rng.below(4) - 1;
            let q = rng.vec(heads * hd, 1.0);
            let wts = rng.vec(heads, 2.0);
            let rows = rng.vec(n * hd, 1.0);
            let mut sel = vec![0; top_k + 2];
            indexer_topk(&q, &wts, &rows, heads, hd, top_k, 4, pos, &mut sel);
            let want = reference(&q, &wts, &rows, heads, hd, top_k, n);
            assert_eq!(&sel[..top_k], &want[..], "case {case}");
            assert_eq!(&sel[top_k..], &[-1, -1]);
        }
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        // Rows repeat with period 3, so scores come in exact ties; negative weights and
        // ReLU'd heads make some rows score exactly 0.
        let mut rng = Rng(31);
        let (heads, hd, top_k, n) = (2, 8, 7, 30);
        let q = rng.vec(heads * hd, 1.0);
        let base = rng.vec(3 * hd, 1.0);
        let rows: Vec<f32> = (0..n)
            .flat_map(|c| base[(c % 3) * hd..(c % 3 + 1) * hd].to_vec())
            .collect();
        for wts in [vec![1.0, 0.5], vec![-1.0, 0.3], vec![0.0, 0.0]] {
            let mut sel = vec![0; top_k];
            indexer_topk(&q, &wts, &rows, heads, hd, top_k, 4, 4 * n - 1, &mut sel);
            assert_eq!(
                sel,
                reference(&q, &wts, &rows, heads, hd, top_k, n),
                "wts {wts:?}"
            );
        }
        // All-equal scores: the first top_k rows.
        let mut sel = vec![0; top_k];
        indexer_topk(
            &q,
            &[0.0, 0.0],
            &rows,
            heads,
            hd,
            top_k,
            4,
            4 * n - 1,
            &mut sel,
        );
        assert_eq!(sel, (0..top_k as i32).collect::<Vec<_>>());
    }

    #[test]
    fn qat_is_hadamard_then_fp4_per_head() {
        // MODEL §17 self-check: z[i] = cos(0.11 i) - 0.2 gives -1.5, 0, 0.125, -0.
        let mut q: Vec<f32> = (0..256)
            .map(|i| ((0.11 * (i % 128) as f32).cos()) - 0.2)
            .collect();
        indexer_qat(&mut q, 128);
        assert_eq!(&q[..4], &[-1.5, 0.0, 0.125, -0.0]);
        assert_eq!(&q[128..132], &[-1.5, 0.0, 0.125, -0.0]);
    }
}
