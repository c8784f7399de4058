//! From one [`Launch`] to one call of an `aclrtlaunch_*` wrapper.
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
use crate::ascend::kernels::{find, BLOCK_DIM, KERNELS, SYNC_BYTES_PER_BLOCK};
use crate::plan::{Arg, Kernel, Launch, PlanSet};
use std::ffi::c_void;

/// Where the arguments of a run live on the devices.
pub struct Resolver<'a> {
    pub plans: &'static PlanSet,
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

/// A value as one argument slot of the packed kernel ABI.
trait Slot {
    fn slot(self) -> u64;
}
impl Slot for usize {
    fn slot(self) -> u64 {
        self as u64
    }
}
impl Slot for u32 {
    fn slot(self) -> u64 {
        u64::from(self)
    }
}
impl Slot for f32 {
    fn slot(self) -> u64 {
        u64::from(self.to_bits())
    }
}

/// Argument slots in the order of the kernel's parameters.
macro_rules! slots {
    ($($e:expr),* $(,)?) => { vec![$(Slot::slot($e)),*] };
}

/// What one launch does on its stream: a library kernel with its argument slots, or (the
/// emulation's host ops) host work.
pub enum Call {
    Kernel { id: usize, args: Vec<u64> },
    Host(Work),
}

impl Call {
    /// The work to queue: the kernel's wrapper on [`BLOCK_DIM`] cores, or the host work.
    pub fn into_work(self, table: &KernelTable) -> Work {
        match self {
            Call::Host(w) => w,
            Call::Kernel { id, args } => {
                let f = table.get(id);
                // SAFETY: the slots are device addresses resolved per the kernel ABI
                // (allocations sized by the plan for the launch's rows: arena buffers,
                // state slots, weights of the bound GGUF tensors, in parameter order; the
                // count is checked against the ABI by `call`); the ranges the kernel
                // writes are listed in the launch's accesses and checked by the
                // emulation; the memory stays allocated until the session ends, after a
                // sync.
                Box::new(move |s: *mut c_void| unsafe { f(BLOCK_DIM, s, args.as_ptr()) })
            }
        }
    }
}

/// The primitive kernel `op` with these argument slots.
fn call(op: &str, args: Vec<u64>) -> R<Call> {
    let id = find(op, &[]).ok_or_else(|| format!("no device kernel for {op}"))?;
    let want = KERNELS[id].params.len();
    if args.len() != want {
        return Err(format!(
            "{op}: {} arguments for {want} parameters",
            args.len()
        ));
    }
    Ok(Call::Kernel { id, args })
}

/// Resolves a fused launch into one call of its library kernel: the barrier workspace
/// `ws` (zeroed, [`SYNC_BYTES_PER_BLOCK`] per block), then every part's argument slots.
/// `None` when a part runs as host work (the emulation's host ops): the caller then
/// launches the parts one by one.
pub fn resolve_fused(
    r: &Resolver<'_>,
    l: &'static Launch,
    ws: DevPtr,
) -> R<Option<(Vec<Access>, Call)>> {
    let op = l.kernel.op_name();
    let parts = || l.parts.iter().map(|p| p.kernel.op_name());
    let id = KERNELS
        .iter()
        .position(|k| k.op == op && k.parts.iter().copied().eq(parts()))
        .ok_or_else(|| {
            let names: Vec<&str> = parts().collect();
            format!("no device kernel for fused {op} of {}", names.join(", "))
        })?;
    let ws_bytes = BLOCK_DIM as usize * SYNC_BYTES_PER_BLOCK;
    let mut acc = vec![Access::write(ws, ws_bytes)];
    let mut args = vec![ws as u64];
    for p in l.parts {
        match resolve(r, p)? {
            (a, Call::Kernel { args: pa, .. }) => {
                acc.extend(a);
                args.extend(pa);
            }
            (_, Call::Host(_)) => return Ok(None),
        }
    }
    let want = KERNELS[id].params.len();
    if args.len() != want {
        return Err(format!(
            "{op}: {} arguments for {want} parameters",
            args.len()
        ));
    }
    Ok(Some((acc, Call::Kernel { id, args })))
}

/// Resolves one primitive launch into its call and memory accesses.
pub fn resolve(r: &Resolver<'_>, l: &'static Launch) -> R<(Vec<Access>, Call)> {
    let rows = if l.one_row { 1 } else { r.n_tokens };
    let mut a = A {
        r,
        l,
        rows,
        acc: Vec::new(),
    };
    let n = rows as u32;
    let pos0 = r.pos0 as u32;
    let work: Call = match l.kernel {
        Kernel::Embed => {
            let (t, tok, y) = (a.wreq(0)?, a.p(1, false)?, a.p(2, true)?);
            let (e, v) = (a.width(2)?, a.dims(0)?[1] as u32);
            call("embed", slots![t, tok, y, n, e, v])?
        }
        Kernel::HcExpand => {
            let (x, y, e) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            call("hc_expand", slots![x, y, n, e])?
        }
        Kernel::TakeLast => {
            let all = r.n_tokens;
            let (x, y, w) = (a.p_rows(0, false, all)?, a.p(1, true)?, a.width(0)?);
            let nt = all as u32;
            call("take_last", slots![x, y, nt, w])?
        }
        Kernel::Add => {
            let (x, b, y, w) = (a.p(0, false)?, a.p(1, false)?, a.p(2, true)?, a.width(0)?);
            call("add", slots![x, b, y, n, w])?
        }
        Kernel::Swiglu => {
            let (g, u, m, w, c) = (
                a.p(0, false)?,
                a.p(1, false)?,
                a.p(2, true)?,
                a.width(0)?,
                a.float("clamp")?,
            );
            call("swiglu", slots![g, u, m, n, w, c])?
        }
        Kernel::MoeSwiglu => {
            let (g, u, wt, m) = (
                a.p(0, false)?,
                a.p(1, false)?,
                a.p(2, false)?,
                a.p(3, true)?,
            );
            let (kk, ff, c) = (a.width(2)?, a.int("n_ff")?, a.float("clamp")?);
            call("moe_swiglu", slots![g, u, wt, m, n, kk, ff, c])?
        }
        Kernel::MatvecF16 | Kernel::MatvecQ8_0 | Kernel::MatvecQ8_0Grouped => {
            let (w, x, y, d) = (a.wreq(0)?, a.p(1, false)?, a.p(2, true)?, a.dims(0)?);
            let (din, dout) = (d[0] as u32, d[1] as u32);
            match l.kernel {
                Kernel::MatvecF16 => call("matvec_f16", slots![w, x, y, n, din, dout])?,
                Kernel::MatvecQ8_0 => call("matvec_q8_0", slots![w, x, y, n, din, dout])?,
                _ => {
                    let g = a.int("groups")?;
                    call("matvec_q8_0_grouped", slots![w, x, y, n, din, dout, g])?
                }
            }
        }
        Kernel::QuantizeQ8_0 | Kernel::QuantizeQ8K => {
            let (x, q, w) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            call(l.kernel.op_name(), slots![x, q, n, w])?
        }
        Kernel::HcSplit => {
            let (m, sc, ba) = (a.p(0, false)?, a.wreq(1)?, a.wreq(2)?);
            let (pre, post, comb) = (a.p(3, true)?, a.p(4, true)?, a.p(5, true)?);
            let (it, eps) = (a.int("iters")?, a.float("eps")?);
            call("hc_split", slots![m, sc, ba, pre, post, comb, n, it, eps])?
        }
        Kernel::HcWeightedSum => {
            let (hc, w, x, e) = (a.p(0, false)?, a.p(1, false)?, a.p(2, true)?, a.width(2)?);
            call("hc_weighted_sum", slots![hc, w, x, n, e])?
        }
        Kernel::HcPost => {
            let (y, res, post, comb) = (
                a.p(0, false)?,
                a.p(1, false)?,
                a.p(2, false)?,
                a.p(3, false)?,
            );
            let (out, e) = (a.p(4, true)?, a.width(0)?);
            call("hc_post", slots![y, res, post, comb, out, n, e])?
        }
        Kernel::HcHeadWeights => {
            let (pre, sc, ba, w, eps) = (
                a.p(0, false)?,
                a.wreq(1)?,
                a.wreq(2)?,
                a.p(3, true)?,
                a.float("eps")?,
            );
            call("hc_head_weights", slots![pre, sc, ba, w, n, eps])?
        }
        Kernel::RouterProbs => {
            let (x, p, ne) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            call("router_probs", slots![x, p, n, ne])?
        }
        Kernel::RouterTopk => {
            let (p, b, ids, wt) = (a.p(0, false)?, a.p(1, false)?, a.p(2, true)?, a.p(3, true)?);
            let (ne, kk, sc) = (a.width(0)?, a.int("k")?, a.float("scale")?);
            call("router_topk", slots![p, b, ids, wt, n, ne, kk, sc])?
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
            call(
                "router_hash",
                slots![p, tab, tok, ids, wt, n, ne, kk, sc, v],
            )?
        }
        Kernel::MoeGateUp => {
            let (g, u, xq, ids) = (a.wreq(0)?, a.wreq(1)?, a.p(2, false)?, a.p(3, false)?);
            let (go, uo, d) = (a.p(4, true)?, a.p(5, true)?, a.dims(0)?);
            let (e, ff, ne, kk) = (d[0] as u32, d[1] as u32, d[2] as u32, a.width(3)?);
            let (e0, e1) = (a.int("e0")?, a.int("e1")?);
            call(
                "moe_gate_up",
                slots![g, u, xq, ids, go, uo, n, e, ff, ne, kk, e0, e1],
            )?
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
            call("moe_down", slots![w, mq, ids, y, n, ff, e, ne, kk, e0, e1])?
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
            call("rope", slots![x, tab, y, n, pos0, h, hd, nr, inv, tr])?
        }
        Kernel::Fp8Kv => {
            let (x, y, d, nq) = (
                a.p(0, false)?,
                a.p(1, true)?,
                a.width(1)?,
                a.int("n_quant")?,
            );
            call("fp8_kv", slots![x, y, n, d, nq])?
        }
        Kernel::IndexerQat => {
            let (x, y, hd) = (a.p(0, false)?, a.p(1, true)?, a.int("head_dim")?);
            let h = a.width(1)? / hd.max(1);
            call("indexer_qat", slots![x, y, n, h, hd])?
        }
        Kernel::KvPushRaw => {
            let (kv, raw, hd) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?);
            let (win, ring) = (a.int("window")?, a.state_rows(1)?);
            call("kv_push_raw", slots![kv, raw, n, pos0, hd, win, ring])?
        }
        Kernel::RmsNormPlain => {
            let (x, y, w, eps) = (a.p(0, false)?, a.p(1, true)?, a.width(0)?, a.float("eps")?);
            call("rms_norm_plain", slots![x, y, n, w, eps])?
        }
        Kernel::RmsNorm => {
            let (x, wt, y, w, eps) = (
                a.p(0, false)?,
                a.wreq(1)?,
                a.p(2, true)?,
                a.width(0)?,
                a.float("eps")?,
            );
            call("rms_norm", slots![x, wt, y, n, w, eps])?
        }
        Kernel::HeadRmsNorm => {
            let (x, y, hd, eps) = (
                a.p(0, false)?,
                a.p(1, true)?,
                a.int("head_dim")?,
                a.float("eps")?,
            );
            let h = a.width(0)? / hd.max(1);
            call("head_rms_norm", slots![x, y, n, h, hd, eps])?
        }
        Kernel::CompressorUpdate | Kernel::IndexerTopk | Kernel::Attention if r.host_ops => {
            if !r.host_memory {
                return Err(format!(
                    "kernel {}: host fallbacks need the emulation",
                    l.kernel.op_name()
                ));
            }
            Call::Host(super::hostops::host_op(&mut a)?)
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
            call(
                "attention",
                slots![
                    q, sinks, raw, comp, sel, out, n, pos0, h, hd, win, ratio, ring, comp_rows,
                    top_k
                ],
            )?
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
            call(
                "indexer_topk",
                slots![q, w, rows_p, sel, n, pos0, h, hd, tk, ratio, nr],
            )?
        }
        Kernel::CompressorUpdate => {
            let (kv, sc, ape, norm) = (a.p(0, false)?, a.p(1, false)?, a.wreq(2)?, a.wreq(3)?);
            let (skv, ssc, comp, tab) =
                (a.p(4, true)?, a.p(5, true)?, a.p(6, true)?, a.p(7, false)?);
            let (ratio, hd, nr) = (a.int("ratio")?, a.int("head_dim")?, a.int("n_rot")?);
            let (post, nq, eps) = (a.int("post")?, a.int("n_quant")?, a.float("eps")?);
            let (crows, trows) = (a.state_rows(6)?, a.state_rows(7)?);
            call(
                "compressor_update",
                slots![
                    kv, sc, ape, norm, skv, ssc, comp, tab, n, pos0, ratio, hd, nr, post, nq, eps,
                    crows, trows
                ],
            )?
        }
        other => {
            return Err(format!(
                "kernel {other:?} is fused or unknown; run its parts"
            ))
        }
    };
    Ok((a.acc, work))
}
