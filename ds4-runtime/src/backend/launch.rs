//! From one primitive [`Launch`] to one call of an `aclrtlaunch_*` wrapper.
//!
//! The arguments are resolved to device addresses per the kernel ABI of
//! [`crate::ascend::kernels`] (pointers in `docs/OPS.md` order, then `n_tokens`,
//! `pos0` where the op reads `@pos`, then dimensions and attributes). The result is
//! a closure that the ACL layer queues on the launch device's stream, together with
//! the arena, state and token ranges it reads and writes (weights are read-only and
//! not listed).
//!
//! Under the emulation (device memory is host memory) the three stateful ops
//! `compressor_update`, `indexer_topk` and `attention` can instead run as queued
//! host work over the CPU kernels ([`Resolver::host_ops`]), to tell kernel
//! differences from orchestration ones.

use super::ktable::KernelTable;
use crate::acl::{Access, DevPtr, Work};
use crate::plan::{Arg, Kernel, Launch, PlanSet};
use std::ffi::c_void;

/// Where the arguments of a run live on the devices.
pub struct Resolver<'a> {
    pub plans: &'static PlanSet,
    pub kernels: &'a KernelTable,
    /// Device address of each weight slot as the kernel indexes it (for an expert
    /// shard: the shard's address minus `e0` experts), 0 when absent.
    pub weights: &'a [DevPtr],
    /// Device address, rows and bytes of each state slot.
    pub states: &'a [(DevPtr, usize, usize)],
    pub arenas: &'a [DevPtr],
    pub tokens: &'a [DevPtr],
    pub n_tokens: usize,
    pub pos0: usize,
    /// True under the emulation (device memory is host memory).
    pub host_memory: bool,
    /// Run `compressor_update`, `indexer_topk` and `attention` as host work over the
    /// CPU kernels instead of their AscendC kernels (emulation only; a diagnostic).
    pub host_ops: bool,
}

type R<T> = Result<T, String>;

/// Pointers and sizes of one launch's arguments.
pub(super) struct A<'r, 'a> {
    pub(super) r: &'r Resolver<'a>,
    pub(super) l: &'static Launch,
    pub(super) rows: usize,
    pub(super) acc: Vec<Access>,
}

impl A<'_, '_> {
    pub(super) fn arg(&self, i: usize) -> R<&'static Arg> {
        self.l
            .args
            .get(i)
            .ok_or_else(|| format!("missing argument {i}"))
    }

    /// Address of argument `i`, recording the access (`write` for outputs).
    pub(super) fn p(&mut self, i: usize, write: bool) -> R<usize> {
        self.p_rows(i, write, self.rows)
    }

    pub(super) fn p_rows(&mut self, i: usize, write: bool, rows: usize) -> R<usize> {
        let (ptr, len) = match *self.arg(i)? {
            Arg::Buf(b) => {
                let base = *self
                    .r
                    .arenas
                    .get(b.dev as usize)
                    .ok_or("no arena for the device")?;
                (base + b.offset, b.row_bytes * rows)
            }
            Arg::Weight(w) => {
                return Ok(*self.r.weights.get(w as usize).ok_or("bad weight slot")?)
            }
            Arg::State(s) => {
                let (p, _, bytes) = *self.r.states.get(s as usize).ok_or("bad state slot")?;
                (p, bytes)
            }
            Arg::Tokens => (
                *self
                    .r
                    .tokens
                    .get(self.l.device as usize)
                    .ok_or("no token buffer")?,
                self.rows * 4,
            ),
            Arg::Pos => return Err(format!("argument {i} is @pos, not memory")),
        };
        if len > 0 {
            self.acc.push(Access { ptr, len, write });
        }
        Ok(ptr)
    }

    pub(super) fn wreq(&mut self, i: usize) -> R<usize> {
        let p = self.p(i, false)?;
        if p == 0 {
            let Arg::Weight(w) = self.arg(i)? else {
                return Err(format!("argument {i} is not a weight"));
            };
            let name = self
                .r
                .plans
                .weights
                .get(*w as usize)
                .map(|s| s.gguf_name)
                .unwrap_or("?");
            return Err(format!("weight {name} is not bound"));
        }
        Ok(p)
    }

    pub(super) fn width(&self, i: usize) -> R<u32> {
        match self.arg(i)? {
            Arg::Buf(b) => Ok(b.width as u32),
            other => Err(format!("argument {i} should be a buffer, is {other:?}")),
        }
    }

    pub(super) fn dims(&self, i: usize) -> R<&'static [u64]> {
        match self.arg(i)? {
            Arg::Weight(w) => Ok(self
                .r
                .plans
                .weights
                .get(*w as usize)
                .ok_or("bad weight slot")?
                .dims),
            _ => Err(format!("argument {i} is not a weight")),
        }
    }

    pub(super) fn state_rows(&self, i: usize) -> R<u32> {
        match self.arg(i)? {
            Arg::State(s) => Ok(self.r.states.get(*s as usize).ok_or("bad state slot")?.1 as u32),
            _ => Err(format!("argument {i} is not state")),
        }
    }

    pub(super) fn int(&self, name: &str) -> R<u32> {
        let v = self
            .l
            .int(name)
            .ok_or_else(|| format!("missing attribute {name}"))?;
        u32::try_from(v).map_err(|_| format!("attribute {name} = {v} out of range"))
    }

    pub(super) fn float(&self, name: &str) -> R<f32> {
        self.l
            .float(name)
            .map(|v| v as f32)
            .ok_or_else(|| format!("missing attribute {name}"))
    }
}

fn i(p: usize) -> *const u8 {
    p as *const u8
}
fn o(p: usize) -> *mut u8 {
    p as *mut u8
}

/// Resolves one primitive launch into its queued work and memory accesses.
pub fn resolve(r: &Resolver<'_>, l: &'static Launch) -> R<(Vec<Access>, Work)> {
    let rows = if l.one_row { 1 } else { r.n_tokens };
    let mut a = A {
        r,
        l,
        rows,
        acc: Vec::new(),
    };
    let k = *r.kernels;
    let n = rows as u32;
    let pos0 = r.pos0 as u32;
    let bd = crate::ascend::kernels::BLOCK_DIM;
    // SAFETY (every wrapper call below): the pointers are device addresses of
    // allocations sized by the plan for `rows` rows (arena buffers, state slots,
    // weights of the bound GGUF tensors), resolved exactly as the kernel ABI orders
    // them; the ranges the kernel writes are listed in `acc` and checked by the
    // emulation; the memory stays allocated until the session ends, after a sync.
    let work: Work = match l.kernel {
        Kernel::Embed => {
            let (t, tok, y) = (a.wreq(0)?, a.p(1, false)?, a.p(2, true)?);
            let (e, v) = (a.width(2)?, a.dims(0)?[1] as u32);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s: *mut c_void| unsafe { (k.embed)(bd, s, i(t), i(tok), o(y), n, e, v) })
        }
        Kernel::HcExpand => {
            let (x, y, e) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.hc_expand)(bd, s, i(x), o(y), n, e) })
        }
        Kernel::TakeLast => {
            let all = r.n_tokens;
            let (x, y, w) = (a.p_rows(0, false, all)?, a.p(1, true)?, a.width(0)?);
            let nt = all as u32;
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.take_last)(bd, s, i(x), o(y), nt, w) })
        }
        Kernel::Add => {
            let (x, b, y, w) = (a.p(0, false)?, a.p(1, false)?, a.p(2, true)?, a.width(0)?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.add)(bd, s, i(x), i(b), o(y), n, w) })
        }
        Kernel::Swiglu => {
            let (g, u, m, w, c) = (
                a.p(0, false)?,
                a.p(1, false)?,
                a.p(2, true)?,
                a.width(0)?,
                a.float("clamp")?,
            );
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.swiglu)(bd, s, i(g), i(u), o(m), n, w, c) })
        }
        Kernel::MoeSwiglu => {
            let (g, u, wt, m) = (
                a.p(0, false)?,
                a.p(1, false)?,
                a.p(2, false)?,
                a.p(3, true)?,
            );
            let (kk, ff, c) = (a.width(2)?, a.int("n_ff")?, a.float("clamp")?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.moe_swiglu)(bd, s, i(g), i(u), i(wt), o(m), n, kk, ff, c)
            })
        }
        Kernel::MatvecF16 | Kernel::MatvecQ8_0 | Kernel::MatvecQ8_0Grouped => {
            let (w, x, y, d) = (a.wreq(0)?, a.p(1, false)?, a.p(2, true)?, a.dims(0)?);
            let (din, dout) = (d[0] as u32, d[1] as u32);
            match l.kernel {
                // SAFETY: device addresses resolved per the kernel ABI (see above).
                Kernel::MatvecF16 => Box::new(move |s| unsafe {
                    (k.matvec_f16)(bd, s, i(w), i(x), o(y), n, din, dout)
                }),
                // SAFETY: device addresses resolved per the kernel ABI (see above).
                Kernel::MatvecQ8_0 => Box::new(move |s| unsafe {
                    (k.matvec_q8_0)(bd, s, i(w), i(x), o(y), n, din, dout)
                }),
                _ => {
                    let g = a.int("groups")?;
                    // SAFETY: device addresses resolved per the kernel ABI (see above).
                    Box::new(move |s| unsafe {
                        (k.matvec_q8_0_grouped)(bd, s, i(w), i(x), o(y), n, din, dout, g)
                    })
                }
            }
        }
        Kernel::QuantizeQ8_0 | Kernel::QuantizeQ8K => {
            let (x, q, w) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            let f = if l.kernel == Kernel::QuantizeQ8_0 {
                k.quantize_q8_0
            } else {
                k.quantize_q8_k
            };
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { f(bd, s, i(x), o(q), n, w) })
        }
        Kernel::HcSplit => {
            let (m, sc, ba) = (a.p(0, false)?, a.wreq(1)?, a.wreq(2)?);
            let (pre, post, comb) = (a.p(3, true)?, a.p(4, true)?, a.p(5, true)?);
            let (it, eps) = (a.int("iters")?, a.float("eps")?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.hc_split)(
                    bd,
                    s,
                    i(m),
                    i(sc),
                    i(ba),
                    o(pre),
                    o(post),
                    o(comb),
                    n,
                    it,
                    eps,
                )
            })
        }
        Kernel::HcWeightedSum => {
            let (hc, w, x, e) = (a.p(0, false)?, a.p(1, false)?, a.p(2, true)?, a.width(2)?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.hc_weighted_sum)(bd, s, i(hc), i(w), o(x), n, e) })
        }
        Kernel::HcPost => {
            let (y, res, post, comb) = (
                a.p(0, false)?,
                a.p(1, false)?,
                a.p(2, false)?,
                a.p(3, false)?,
            );
            let (out, e) = (a.p(4, true)?, a.width(0)?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.hc_post)(bd, s, i(y), i(res), i(post), i(comb), o(out), n, e)
            })
        }
        Kernel::HcHeadWeights => {
            let (pre, sc, ba, w, eps) = (
                a.p(0, false)?,
                a.wreq(1)?,
                a.wreq(2)?,
                a.p(3, true)?,
                a.float("eps")?,
            );
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.hc_head_weights)(bd, s, i(pre), i(sc), i(ba), o(w), n, eps)
            })
        }
        Kernel::RouterProbs => {
            let (x, p, ne) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.router_probs)(bd, s, i(x), o(p), n, ne) })
        }
        Kernel::RouterTopk => {
            let (p, b, ids, wt) = (a.p(0, false)?, a.p(1, false)?, a.p(2, true)?, a.p(3, true)?);
            let (ne, kk, sc) = (a.width(0)?, a.int("k")?, a.float("scale")?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.router_topk)(bd, s, i(p), i(b), o(ids), o(wt), n, ne, kk, sc)
            })
        }
        Kernel::RouterHash => {
            let (p, tab, tok) = (a.p(0, false)?, a.wreq(1)?, a.p(2, false)?);
            let (ids, wt) = (a.p(3, true)?, a.p(4, true)?);
            let (ne, kk, sc, v) = (
                a.width(0)?,
                a.int("k")?,
                a.float("scale")?,
                a.dims(1)?[1] as u32,
            );
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.router_hash)(bd, s, i(p), i(tab), i(tok), o(ids), o(wt), n, ne, kk, sc, v)
            })
        }
        Kernel::MoeGateUp => {
            let (g, u, xq, ids) = (a.wreq(0)?, a.wreq(1)?, a.p(2, false)?, a.p(3, false)?);
            let (go, uo, d) = (a.p(4, true)?, a.p(5, true)?, a.dims(0)?);
            let (e, ff, ne, kk) = (d[0] as u32, d[1] as u32, d[2] as u32, a.width(3)?);
            let (e0, e1) = (a.int("e0")?, a.int("e1")?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.moe_gate_up)(
                    bd,
                    s,
                    i(g),
                    i(u),
                    i(xq),
                    i(ids),
                    o(go),
                    o(uo),
                    n,
                    e,
                    ff,
                    ne,
                    kk,
                    e0,
                    e1,
                )
            })
        }
        Kernel::MoeDown => {
            let (w, mq, ids, y, d) = (
                a.wreq(0)?,
                a.p(1, false)?,
                a.p(2, false)?,
                a.p(3, true)?,
                a.dims(0)?,
            );
            let (ff, e, ne, kk) = (d[0] as u32, d[1] as u32, d[2] as u32, a.width(2)?);
            let (e0, e1) = (a.int("e0")?, a.int("e1")?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.moe_down)(bd, s, i(w), i(mq), i(ids), o(y), n, ff, e, ne, kk, e0, e1)
            })
        }
        Kernel::Rope => {
            let (x, tab, y) = (a.p(0, false)?, a.p(1, false)?, a.p(3, true)?);
            let (h, hd, nr, inv, tr) = (
                a.int("heads")?,
                a.int("head_dim")?,
                a.int("n_rot")?,
                a.int("inverse")?,
                a.state_rows(1)?,
            );
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.rope)(bd, s, i(x), i(tab), o(y), n, pos0, h, hd, nr, inv, tr)
            })
        }
        Kernel::Fp8Kv => {
            let (x, y, d, nq) = (
                a.p(0, false)?,
                a.p(1, true)?,
                a.width(1)?,
                a.int("n_quant")?,
            );
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.fp8_kv)(bd, s, i(x), o(y), n, d, nq) })
        }
        Kernel::IndexerQat => {
            let (x, y, hd) = (a.p(0, false)?, a.p(1, true)?, a.int("head_dim")?);
            let h = a.width(1)? / hd.max(1);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.indexer_qat)(bd, s, i(x), o(y), n, h, hd) })
        }
        Kernel::KvPushRaw => {
            let (kv, raw, hd) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            let (win, ring) = (a.int("window")?, a.state_rows(1)?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.kv_push_raw)(bd, s, i(kv), o(raw), n, pos0, hd, win, ring)
            })
        }
        Kernel::RmsNormPlain => {
            let (x, y, w, eps) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?, a.float("eps")?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.rms_norm_plain)(bd, s, i(x), o(y), n, w, eps) })
        }
        Kernel::RmsNorm => {
            let (x, wt, y, w, eps) = (
                a.p(0, false)?,
                a.wreq(1)?,
                a.p(2, true)?,
                a.width(0)?,
                a.float("eps")?,
            );
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.rms_norm)(bd, s, i(x), i(wt), o(y), n, w, eps) })
        }
        Kernel::HeadRmsNorm => {
            let (x, y, hd, eps) = (
                a.p(0, false)?,
                a.p(1, true)?,
                a.int("head_dim")?,
                a.float("eps")?,
            );
            let h = a.width(0)? / hd.max(1);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe { (k.head_rms_norm)(bd, s, i(x), o(y), n, h, hd, eps) })
        }
        Kernel::CompressorUpdate | Kernel::IndexerTopk | Kernel::Attention if r.host_ops => {
            if !r.host_memory {
                return Err(format!(
                    "kernel {}: host fallbacks need the emulation",
                    l.kernel.op_name()
                ));
            }
            super::hostops::host_op(&mut a)?
        }
        Kernel::Attention => {
            let (q, sinks, raw) = (a.p(0, false)?, a.wreq(1)?, a.p(2, false)?);
            let (h, hd, win, ratio) = (
                a.int("heads")?,
                a.int("head_dim")?,
                a.int("window")?,
                a.int("ratio")?,
            );
            let ring = a.state_rows(2)?;
            let (comp, comp_rows, sel, top_k, out_i) = match ratio {
                0 => (0, 0, 0, 0, 4),
                4 => (
                    a.p(3, false)?,
                    a.state_rows(3)?,
                    a.p(4, false)?,
                    a.width(4)?,
                    6,
                ),
                _ => (a.p(3, false)?, a.state_rows(3)?, 0, 0, 5),
            };
            let out = a.p(out_i, true)?;
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.attention)(
                    bd,
                    s,
                    i(q),
                    i(sinks),
                    i(raw),
                    i(comp),
                    i(sel),
                    o(out),
                    n,
                    pos0,
                    h,
                    hd,
                    win,
                    ratio,
                    ring,
                    comp_rows,
                    top_k,
                )
            })
        }
        Kernel::IndexerTopk => {
            let (q, w, rows_p, sel) = (
                a.p(0, false)?,
                a.p(1, false)?,
                a.p(2, false)?,
                a.p(4, true)?,
            );
            let (h, hd, tk, ratio, nr) = (
                a.int("heads")?,
                a.int("head_dim")?,
                a.int("top_k")?,
                a.int("ratio")?,
                a.state_rows(2)?,
            );
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.indexer_topk)(
                    bd,
                    s,
                    i(q),
                    i(w),
                    i(rows_p),
                    o(sel),
                    n,
                    pos0,
                    h,
                    hd,
                    tk,
                    ratio,
                    nr,
                )
            })
        }
        Kernel::CompressorUpdate => {
            let (kv, sc, ape, norm) = (a.p(0, false)?, a.p(1, false)?, a.wreq(2)?, a.wreq(3)?);
            let (skv, ssc, comp, tab) =
                (a.p(4, true)?, a.p(5, true)?, a.p(6, true)?, a.p(7, false)?);
            let (ratio, hd, nr) = (a.int("ratio")?, a.int("head_dim")?, a.int("n_rot")?);
            let (post, nq, eps) = (a.int("post")?, a.int("n_quant")?, a.float("eps")?);
            let (crows, trows) = (a.state_rows(6)?, a.state_rows(7)?);
            // SAFETY: device addresses resolved per the kernel ABI (see above).
            Box::new(move |s| unsafe {
                (k.compressor_update)(
                    bd,
                    s,
                    i(kv),
                    i(sc),
                    i(ape),
                    i(norm),
                    o(skv),
                    o(ssc),
                    o(comp),
                    i(tab),
                    n,
                    pos0,
                    ratio,
                    hd,
                    nr,
                    post,
                    nq,
                    eps,
                    crows,
                    trows,
                )
            })
        }
        other => {
            return Err(format!(
                "kernel {other:?} is fused or unknown; run its parts"
            ))
        }
    };
    Ok((a.acc, work))
}
