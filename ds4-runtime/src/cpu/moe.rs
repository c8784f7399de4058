//! Routed and shared expert FFN pieces (MODEL §11 F5, F6).
//!
//! Routed experts: IQ2_XXS gate/up against the token's Q8_K activation, a clamped
//! SwiGLU scaled by the router weight, then Q2_K down against the Q8_K-quantised mid,
//! summed over the `k` slots in slot order. Expert `e`, row `r` of an `[IN, OUT, NE]`
//! tensor starts at byte `(e·OUT + r)·row_bytes`. Experts can be sharded by id: the
//! `experts = (e0, e1)` range restricts the work to slots whose expert lies in it, and
//! the shards' `moe_down` outputs are added by the caller.

use rayon::prelude::*;

use super::sigmoid;
use crate::quant::q8_k::BlockQ8K;
use crate::quant::{iq2_xxs, q2_k, QK_K};

/// The clamp only applies above this (ds4 skips it for a zero clamp).
const CLAMP_MIN: f32 = 1e-6;

#[inline]
fn in_range(e: i32, experts: (u32, u32)) -> bool {
    e >= 0 && (e as u32) >= experts.0 && (e as u32) < experts.1
}

/// Clamped SwiGLU of one element: `silu(min(g, c)) · clamp(u, -c, c)`.
#[inline]
fn swiglu_one(g: f32, u: f32, clamp: f32) -> f32 {
    let (g, u) = if clamp > CLAMP_MIN {
        (g.min(clamp), u.clamp(-clamp, clamp))
    } else {
        (g, u)
    };
    g * sigmoid(g) * u
}

/// Gate and up projections of the routed experts for one token.
///
/// `g`, `u` are `k × n_ff` (slot-major); slots whose expert is outside `[e0, e1)`
/// are left untouched.
#[allow(clippy::too_many_arguments)]
pub fn moe_gate_up(
    gate: &[u8],
    up: &[u8],
    n_embd: usize,
    n_ff: usize,
    xq: &[BlockQ8K],
    ids: &[i32],
    experts: (u32, u32),
    g: &mut [f32],
    u: &mut [f32],
) {
    let nb = n_embd / QK_K;
    let rb = nb * iq2_xxs::BLOCK_BYTES;
    debug_assert!(n_embd.is_multiple_of(QK_K) && xq.len() >= nb);
    debug_assert!(g.len() >= ids.len() * n_ff && u.len() >= ids.len() * n_ff);
    let xq = &xq[..nb];
    let k = ids.len();
    g[..k * n_ff]
        .par_iter_mut()
        .zip(u[..k * n_ff].par_iter_mut())
        .enumerate()
        .with_min_len(32)
        .for_each(|(i, (gv, uv))| {
            let e = ids[i / n_ff];
            if !in_range(e, experts) {
                return;
            }
            let off = (e as usize * n_ff + i % n_ff) * rb;
            *gv = iq2_xxs::vec_dot(&gate[off..off + rb], xq);
            *uv = iq2_xxs::vec_dot(&up[off..off + rb], xq);
        });
}

/// `mid[k][i] = silu(min(g, clamp)) · clamp(u, ±clamp) · wt[k]` for every slot.
pub fn moe_swiglu(g: &[f32], u: &[f32], wt: &[f32], n_ff: usize, clamp: f32, mid: &mut [f32]) {
    debug_assert!(
        g.len() >= wt.len() * n_ff && u.len() >= wt.len() * n_ff && mid.len() >= wt.len() * n_ff
    );
    for (k, &w) in wt.iter().enumerate() {
        let r = k * n_ff..(k + 1) * n_ff;
        for ((m, &gv), &uv) in mid[r.clone()].iter_mut().zip(&g[r.clone()]).zip(&u[r]) {
            *m = swiglu_one(gv, uv, clamp) * w;
        }
    }
}

/// `m = silu(min(g, clamp)) · clamp(u, ±clamp)` (shared expert, §11 F6).
pub fn swiglu(g: &[f32], u: &[f32], clamp: f32, m: &mut [f32]) {
    debug_assert!(g.len() == m.len() && u.len() == m.len());
    for ((o, &gv), &uv) in m.iter_mut().zip(g).zip(u) {
        *o = swiglu_one(gv, uv, clamp);
    }
}

/// Down projections of the in-range slots, summed in slot order into `y` (`n_embd`).
///
/// `midq` holds `n_ff/256` Q8_K blocks per slot; `y` is all zeros when no slot is in range.
#[allow(clippy::too_many_arguments)]
pub fn moe_down(
    down: &[u8],
    n_ff: usize,
    n_embd: usize,
    midq: &[BlockQ8K],
    ids: &[i32],
    experts: (u32, u32),
    y: &mut [f32],
) {
    let nb = n_ff / QK_K;
    let rb = nb * q2_k::BLOCK_BYTES;
    debug_assert!(n_ff.is_multiple_of(QK_K) && midq.len() >= ids.len() * nb && y.len() == n_embd);
    y.par_iter_mut()
        .enumerate()
        .with_min_len(32)
        .for_each(|(o, yo)| {
            let mut acc = 0.0f32;
            for (k, &e) in ids.iter().enumerate() {
                if in_range(e, experts) {
                    let off = (e as usize * n_embd + o) * rb;
                    acc += q2_k::vec_dot(&down[off..off + rb], &midq[k * nb..(k + 1) * nb]);
                }
            }
            *yo = acc;
        });
}

#[cfg(test)]
#[path = "moe_tests.rs"]
mod tests;
