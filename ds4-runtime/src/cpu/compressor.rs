//! The KV compressor (MODEL §8): pools windows of `ratio` tokens into one cached row.
//!
//! Each compressed layer feeds every token's projections `kv_t`, `sc_t` (width
//! `W = coff·head_dim`, `coff = 2` for ratio 4, else 1) into a state of
//! `coff·ratio` rows. Token `pos` is stored in state row `pos % ratio` (ratio 128) or
//! `4 + pos % 4` (ratio 4), its score biased by the absolute-position embedding `ape`.
//! At the last token of each window (`(pos+1) % ratio == 0`) the state is pooled into
//! compressed row `c = pos / ratio`: a per-dim softmax over the candidate scores
//! (ratio 4: lane A = dims `[0, hd)` of rows 0..3, the previous window, and lane B =
//! dims `[hd, 2hd)` of rows 4..7, the current one), then RMS-normed, RoPE'd at the
//! window start `pos + 1 - ratio`, quantised (FP8 for attention rows, FP4 of the
//! Hadamard transform for indexer rows), f16-rounded and written to row `c`. Ratio 4
//! then rolls rows 4..7 into 0..3 so the finished window becomes the previous one.
//!
//! The caller initialises the state to kv = 0, score = [`NEG_INF`](super::NEG_INF):
//! an unwritten lane-A candidate then has weight exactly zero.

use super::f16_at;
use super::norm::rms_norm;
use super::rope::rope_apply;
use crate::quant::{f16_round, fp4, fp8, hadamard};

/// Pooling returns zero when every candidate score is at or below this (§8.3).
const EMPTY_SCORE: f32 = -5e29;

/// The compressor's window state: `(coff·ratio) × (coff·head_dim)` kv and scores.
pub struct CompressorState<'a> {
    /// Projected kv of the tokens in the current (and, ratio 4, previous) window.
    pub kv: &'a mut [f32],
    /// Their scores, `sc_t + ape`; `NEG_INF` where nothing was written.
    pub score: &'a mut [f32],
}

/// How an emitted row is quantised before the f16 rounding (§8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowPost {
    /// Attention rows: FP8 E4M3 simulation on dims `[0, n_quant)` (the nope part).
    Fp8 {
        /// Dims to quantise, `head_dim - n_rot`.
        n_quant: usize,
    },
    /// Indexer rows: `fp4(hadamard128(row))` over the whole 128-wide row.
    Qat,
}

/// Feeds one token to the compressor and emits compressed row `pos / ratio` at a window end.
///
/// `kv_t`, `sc_t` are the token's two F16-matvec projections (`W` wide), `ape` the F16
/// `[W, ratio]` position bias, `norm_w` the `head_dim` norm weight, `comp` the
/// compressed-row cache (row `c` at `c·head_dim`) and `rope_table` the session table
/// (row `p` at `p·n_rot`).
#[allow(clippy::too_many_arguments)]
pub fn compressor_update(
    kv_t: &[f32],
    sc_t: &[f32],
    ape: &[u8],
    norm_w: &[f32],
    st: CompressorState,
    comp: &mut [f32],
    rope_table: &[f32],
    ratio: usize,
    head_dim: usize,
    n_rot: usize,
    post: RowPost,
    pos: usize,
    eps: f32,
) {
    let coff = if ratio == 4 { 2 } else { 1 };
    let w = coff * head_dim;
    debug_assert!(ratio > 0 && kv_t.len() == w && sc_t.len() == w && ape.len() >= 2 * w * ratio);
    debug_assert!(st.kv.len() == coff * ratio * w && st.score.len() == coff * ratio * w);

    let r = pos % ratio;
    let row = if ratio == 4 { 4 + r } else { r };
    st.kv[row * w..(row + 1) * w].copy_from_slice(kv_t);
    let ape_r = &ape[r * w * 2..(r + 1) * w * 2];
    for (j, s) in st.score[row * w..(row + 1) * w].iter_mut().enumerate() {
        *s = sc_t[j] + f16_at(ape_r, j);
    }

    if !(pos + 1).is_multiple_of(ratio) {
        return;
    }

    let c = pos / ratio;
    debug_assert!(comp.len() >= (c + 1) * head_dim);
    let start = pos + 1 - ratio;
    let table_row = &rope_table[start * n_rot..(start + 1) * n_rot];
    let out = &mut comp[c * head_dim..(c + 1) * head_dim];
    pool_norm_rope(
        st.kv, st.score, norm_w, table_row, ratio, head_dim, n_rot, eps, out,
    );
    finish_row(out, post);

    if ratio == 4 {
        st.kv.copy_within(4 * w..8 * w, 0);
        st.score.copy_within(4 * w..8 * w, 0);
    }
}

/// Pools the state into `out` (`head_dim`), then RMS-norms and RoPEs it (§8.3, §8.4).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_norm_rope(
    kv: &[f32],
    score: &[f32],
    norm_w: &[f32],
    rope_row: &[f32],
    ratio: usize,
    head_dim: usize,
    n_rot: usize,
    eps: f32,
    out: &mut [f32],
) {
    let coff = if ratio == 4 { 2 } else { 1 };
    let w = coff * head_dim;
    // Candidate k of dim j sits at state index (row_k · w + lane_k) + j.
    let candidates: Vec<usize> = if ratio == 4 {
        (0..4)
            .map(|r| r * w)
            .chain((4..8).map(|r| r * w + head_dim))
            .collect()
    } else {
        (0..ratio).map(|r| r * w).collect()
    };

    let mut pooled = vec![0.0f32; head_dim];
    for (j, p) in pooled.iter_mut().enumerate() {
        let m = candidates
            .iter()
            .fold(f32::NEG_INFINITY, |m, &b| m.max(score[b + j]));
        if m <= EMPTY_SCORE {
            *p = 0.0;
            continue;
        }
        let (mut num, mut den) = (0.0f32, 0.0f32);
        for &b in &candidates {
            let e = (score[b + j] - m).exp();
            den += e;
            num += e * kv[b + j];
        }
        *p = num / den;
    }

    rms_norm(&pooled, norm_w, out, eps);
    rope_apply(out, 1, head_dim, n_rot, rope_row, false);
}

/// Quantises an emitted row as `post` says, then rounds it to f16 (§8.4).
pub(crate) fn finish_row(row: &mut [f32], post: RowPost) {
    match post {
        RowPost::Fp8 { n_quant } => fp8::kv_quantize_row(&mut row[..n_quant]),
        RowPost::Qat => {
            debug_assert_eq!(row.len(), 128);
            hadamard::hadamard128(row);
            fp4::quantize_row(row);
        }
    }
    row.iter_mut().for_each(|v| *v = f16_round(*v));
}

#[cfg(test)]
#[path = "compressor_tests.rs"]
mod tests;
