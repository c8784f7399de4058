//! Host versions of the stateful ops, emulation only (a diagnostic switch).
//!
//! `compressor_update`, `indexer_topk` and `attention` run as work queued on the
//! launch device's stream like any kernel (so ordering and hazards are checked the
//! same way), calling the CPU kernels of [`crate::cpu`] on the emulated device
//! memory, which is host memory. They run token by token in position order, as the
//! CPU executor does.

use super::launch::A;
use crate::acl::Work;
use crate::cpu;
use crate::plan::{Arg, Kernel};

type R<T> = Result<T, String>;

/// A raw `[f32]` region: address and element count.
#[derive(Clone, Copy)]
struct Region(usize, usize);

impl Region {
    /// # Safety
    /// The region must be a live allocation not written by anyone else meanwhile.
    unsafe fn f32s<'x>(self) -> &'x [f32] {
        std::slice::from_raw_parts(self.0 as *const f32, self.1)
    }
    /// # Safety
    /// As for `f32s`, and no other view of the region may be alive.
    #[allow(clippy::mut_from_ref)]
    unsafe fn f32s_mut<'x>(self) -> &'x mut [f32] {
        std::slice::from_raw_parts_mut(self.0 as *mut f32, self.1)
    }
}

/// Address and byte length of argument `i` (weights: the slot's bytes).
fn region(a: &mut A<'_, '_>, i: usize, write: bool) -> R<(usize, usize)> {
    if let Arg::Weight(w) = *a.arg(i)? {
        let len =
            a.r.plans
                .weights
                .get(w as usize)
                .ok_or("bad weight slot")?
                .bytes as usize;
        return Ok((a.wreq(i)?, len));
    }
    let before = a.acc.len();
    let p = a.p(i, write)?;
    let len = if a.acc.len() > before {
        a.acc[a.acc.len() - 1].len
    } else {
        0
    };
    Ok((p, len))
}

fn f32_region(a: &mut A<'_, '_>, i: usize, write: bool) -> R<Region> {
    let (p, len) = region(a, i, write)?;
    Ok(Region(p, len / 4))
}

/// The queued host work of one host-only op.
pub(super) fn host_op(a: &mut A<'_, '_>) -> R<Work> {
    let (rows, pos0) = (a.rows, a.r.pos0);
    let l = a.l;
    match l.kernel {
        Kernel::CompressorUpdate => {
            let (ratio, hd, n_rot) = (
                a.int("ratio")? as usize,
                a.int("head_dim")? as usize,
                a.int("n_rot")? as usize,
            );
            let (post, n_quant, eps) =
                (a.int("post")?, a.int("n_quant")? as usize, a.float("eps")?);
            let (kv, sc) = (f32_region(a, 0, false)?, f32_region(a, 1, false)?);
            let (ape, ape_len) = region(a, 2, false)?;
            let norm = f32_region(a, 3, false)?;
            let (skv, ssc, comp) = (
                f32_region(a, 4, true)?,
                f32_region(a, 5, true)?,
                f32_region(a, 6, true)?,
            );
            let table = f32_region(a, 7, false)?;
            let row_post = if post == 0 {
                cpu::compressor::RowPost::Fp8 { n_quant }
            } else {
                cpu::compressor::RowPost::Qat
            };
            Ok(Box::new(move |_s| {
                // SAFETY: regions are live device (host) allocations sized by the plan; this
                // work runs alone (streams run one item at a time) and the emulation checks
                // that no other stream's pending work touches them.
                unsafe {
                    let (kv, sc) = (kv.f32s(), sc.f32s());
                    let ape = std::slice::from_raw_parts(ape as *const u8, ape_len);
                    let (norm, table) = (norm.f32s(), table.f32s());
                    let (skv, ssc, comp) = (skv.f32s_mut(), ssc.f32s_mut(), comp.f32s_mut());
                    let w = kv.len() / rows.max(1);
                    for t in 0..rows {
                        let st = cpu::compressor::CompressorState {
                            kv: &mut *skv,
                            score: &mut *ssc,
                        };
                        cpu::compressor::compressor_update(
                            &kv[t * w..(t + 1) * w],
                            &sc[t * w..(t + 1) * w],
                            ape,
                            norm,
                            st,
                            comp,
                            table,
                            ratio,
                            hd,
                            n_rot,
                            row_post,
                            pos0 + t,
                            eps,
                        );
                    }
                }
            }))
        }
        Kernel::IndexerTopk => {
            let (heads, hd) = (a.int("heads")? as usize, a.int("head_dim")? as usize);
            let (top_k, ratio) = (a.int("top_k")? as usize, a.int("ratio")? as usize);
            let (q, wts, idx) = (
                f32_region(a, 0, false)?,
                f32_region(a, 1, false)?,
                f32_region(a, 2, false)?,
            );
            let sel = f32_region(a, 4, true)?;
            Ok(Box::new(move |_s| {
                // SAFETY: as for the compressor; `sel` holds i32 values of the same size.
                unsafe {
                    let (q, wts, idx) = (q.f32s(), wts.f32s(), idx.f32s());
                    let sel = std::slice::from_raw_parts_mut(sel.0 as *mut i32, sel.1);
                    let (qw, ww, sw) = (
                        q.len() / rows.max(1),
                        wts.len() / rows.max(1),
                        sel.len() / rows.max(1),
                    );
                    for t in 0..rows {
                        cpu::indexer::indexer_topk(
                            &q[t * qw..(t + 1) * qw],
                            &wts[t * ww..(t + 1) * ww],
                            idx,
                            heads,
                            hd,
                            top_k,
                            ratio,
                            pos0 + t,
                            &mut sel[t * sw..(t + 1) * sw],
                        );
                    }
                }
            }))
        }
        Kernel::Attention => {
            let (heads, hd) = (a.int("heads")? as usize, a.int("head_dim")? as usize);
            let (window, ratio) = (a.int("window")? as usize, a.int("ratio")? as usize);
            let (q, sinks, raw) = (
                f32_region(a, 0, false)?,
                f32_region(a, 1, false)?,
                f32_region(a, 2, false)?,
            );
            let raw_cap = a.state_rows(2)? as usize;
            let (comp, sel, out_i) = match ratio {
                0 => (None, None, 4),
                4 => (
                    Some(f32_region(a, 3, false)?),
                    Some(f32_region(a, 4, false)?),
                    6,
                ),
                _ => (Some(f32_region(a, 3, false)?), None, 5),
            };
            let out = f32_region(a, out_i, true)?;
            Ok(Box::new(move |_s| {
                // SAFETY: as for the compressor; `sel` holds i32 values of the same size.
                unsafe {
                    let (q, sinks, raw, out) = (q.f32s(), sinks.f32s(), raw.f32s(), out.f32s_mut());
                    let comp = comp.map(|c| c.f32s());
                    let sel = sel.map(|s| std::slice::from_raw_parts(s.0 as *const i32, s.1));
                    let top_k = sel.map(|s| s.len() / rows.max(1)).unwrap_or(0);
                    let w = q.len() / rows.max(1);
                    for t in 0..rows {
                        let sel_row = sel.map(|s| &s[t * top_k..(t + 1) * top_k]);
                        cpu::attention::attention(
                            &q[t * w..(t + 1) * w],
                            sinks,
                            raw,
                            raw_cap,
                            window,
                            comp,
                            ratio,
                            sel_row,
                            heads,
                            hd,
                            pos0 + t,
                            &mut out[t * w..(t + 1) * w],
                        );
                    }
                }
            }))
        }
        other => Err(format!("kernel {other:?} is not a host fallback")),
    }
}
