//! From one [`Launch`] to one call of a [`crate::cpu`] kernel.
//!
//! Arguments arrive in the order of `docs/OPS.md` (inputs, then outputs). This
//! file only unpacks them: it slices arena buffers, weights and state, reads the
//! attributes and calls the kernel, once for the whole chunk when the kernel is
//! batched and once per token (in order) when it is sequential.

use crate::cpu;
use crate::exec::CpuExecutor;
use crate::plan::{Arg, Buf, Kernel, Launch};
use crate::quant::q8_0::BlockQ8_0Act;
use crate::quant::q8_k::BlockQ8K;

type R<T> = Result<T, String>;

/// Resolved views for one launch.
struct Io<'x, 'a> {
    ex: &'x CpuExecutor<'a>,
    l: &'static Launch,
    rows: usize,
}

impl<'x, 'a: 'x> Io<'x, 'a> {
    fn arg(&self, i: usize) -> R<&'static Arg> {
        self.l
            .args
            .get(i)
            .ok_or_else(|| format!("missing argument {i}"))
    }

    fn buf(&self, i: usize) -> R<Buf> {
        match self.arg(i)? {
            Arg::Buf(b) => {
                let arena = self
                    .ex
                    .arenas
                    .get(b.dev as usize)
                    .ok_or("no arena for device")?;
                if !arena.check(b, self.rows) {
                    return Err(format!("buffer {b:?} outside its arena or misaligned"));
                }
                Ok(*b)
            }
            other => Err(format!("argument {i} should be a buffer, is {other:?}")),
        }
    }

    /// Shared view of buffer argument `i`.
    fn input<T>(&self, i: usize) -> R<&'x [T]> {
        let b = self.buf(i)?;
        // SAFETY: the plan guarantees buffers live at once do not overlap, so no
        // exclusive view of this range exists during the launch; T is POD.
        Ok(unsafe { self.ex.arenas[b.dev as usize].view(&b, self.rows) })
    }

    /// Exclusive view of buffer argument `i` (an output of this launch).
    #[allow(clippy::mut_from_ref)]
    fn output<T>(&self, i: usize) -> R<&'x mut [T]> {
        let b = self.buf(i)?;
        // SAFETY: as for `input`; an output never overlaps an input of the same
        // launch (checked by tests/plan_check.rs).
        Ok(unsafe { self.ex.arenas[b.dev as usize].view_mut(&b, self.rows) })
    }

    fn width(&self, i: usize) -> R<usize> {
        Ok(self.buf(i)?.width)
    }

    fn weight(&self, i: usize) -> R<Option<&'a [u8]>> {
        match self.arg(i)? {
            Arg::Weight(w) => Ok(self.ex.weight(*w)),
            other => Err(format!("argument {i} should be a weight, is {other:?}")),
        }
    }

    fn weight_req(&self, i: usize) -> R<&'x [u8]> {
        let Arg::Weight(w) = self.arg(i)? else {
            return Err(format!("argument {i} is not a weight"));
        };
        self.weight(i)?.ok_or_else(|| {
            let name = self
                .ex
                .plans
                .weights
                .get(*w as usize)
                .map(|s| s.gguf_name)
                .unwrap_or("?");
            format!("weight {name} is not bound")
        })
    }

    fn weight_dims(&self, i: usize) -> R<&'static [u64]> {
        match self.arg(i)? {
            Arg::Weight(w) => Ok(self
                .ex
                .plans
                .weights
                .get(*w as usize)
                .ok_or("bad weight slot")?
                .dims),
            _ => Err(format!("argument {i} is not a weight")),
        }
    }

    fn weight_f32(&self, i: usize) -> R<&'x [f32]> {
        let b = self.weight_req(i)?;
        bytemuck::try_cast_slice(b).map_err(|e| format!("f32 weight misaligned: {e}"))
    }

    fn weight_i32(&self, i: usize) -> R<&'x [i32]> {
        let b = self.weight_req(i)?;
        bytemuck::try_cast_slice(b).map_err(|e| format!("i32 weight misaligned: {e}"))
    }

    fn state_index(&self, i: usize) -> R<usize> {
        match self.arg(i)? {
            Arg::State(s) => Ok(*s as usize),
            other => Err(format!("argument {i} should be state, is {other:?}")),
        }
    }

    fn int(&self, name: &str) -> R<usize> {
        let v = self
            .l
            .int(name)
            .ok_or_else(|| format!("missing attribute {name}"))?;
        usize::try_from(v).map_err(|_| format!("attribute {name} = {v} is negative"))
    }

    fn float(&self, name: &str) -> R<f32> {
        self.l
            .float(name)
            .map(|v| v as f32)
            .ok_or_else(|| format!("missing attribute {name}"))
    }
}

/// Runs one primitive launch.
pub(super) fn run(ex: &mut CpuExecutor<'_>, l: &'static Launch) -> R<()> {
    let rows = if l.one_row { 1 } else { ex.tokens.len() };
    match l.kernel {
        Kernel::KvPushRaw | Kernel::CompressorUpdate | Kernel::IndexerTopk | Kernel::Attention => {
            stateful(ex, l, rows)
        }
        _ => {
            let io = Io { ex: &*ex, l, rows };
            stateless(&io)
        }
    }
}

fn per_row<T>(s: &[T], rows: usize) -> impl Iterator<Item = &[T]> {
    let w = s.len() / rows.max(1);
    s.chunks_exact(w.max(1))
}

fn per_row_mut<T>(s: &mut [T], rows: usize) -> impl Iterator<Item = &mut [T]> {
    let w = s.len() / rows.max(1);
    s.chunks_exact_mut(w.max(1))
}

fn stateless(io: &Io<'_, '_>) -> R<()> {
    let rows = io.rows;
    match io.l.kernel {
        Kernel::Embed => {
            let table = io.weight_req(0)?;
            let n_embd = io.width(2)?;
            let out = io.output::<f32>(2)?;
            let vocab = table.len() / (2 * n_embd);
            for (t, o) in per_row_mut(out, rows).enumerate() {
                let tok = io.ex.tokens[t];
                if tok as usize >= vocab {
                    return Err(format!(
                        "token id {tok} is outside the vocabulary of {vocab}"
                    ));
                }
                cpu::hc::embed_f16(table, n_embd, tok, o);
            }
        }
        Kernel::HcExpand => {
            let (x, hc) = (io.input::<f32>(0)?, io.output::<f32>(1)?);
            for (xr, hr) in per_row(x, rows).zip(per_row_mut(hc, rows)) {
                cpu::hc::hc_expand(xr, hr);
            }
        }
        Kernel::RmsNormPlain => {
            let eps = io.float("eps")?;
            let (x, y) = (io.input::<f32>(0)?, io.output::<f32>(1)?);
            for (xr, yr) in per_row(x, rows).zip(per_row_mut(y, rows)) {
                cpu::norm::rms_norm_plain(xr, yr, eps);
            }
        }
        Kernel::RmsNorm => {
            let eps = io.float("eps")?;
            let (x, w, y) = (io.input::<f32>(0)?, io.weight_f32(1)?, io.output::<f32>(2)?);
            for (xr, yr) in per_row(x, rows).zip(per_row_mut(y, rows)) {
                cpu::norm::rms_norm(xr, w, yr, eps);
            }
        }
        Kernel::HeadRmsNorm => {
            let (eps, hd) = (io.float("eps")?, io.int("head_dim")?);
            let (x, y) = (io.input::<f32>(0)?, io.output::<f32>(1)?);
            for (xr, yr) in per_row(x, rows).zip(per_row_mut(y, rows)) {
                cpu::norm::head_rms_norm(xr, yr, hd, eps);
            }
        }
        Kernel::MatvecF16 => {
            let (w, d) = (io.weight_req(0)?, io.weight_dims(0)?);
            let (x, y) = (io.input::<f32>(1)?, io.output::<f32>(2)?);
            cpu::matvec::matmul_f16(w, d[0] as usize, d[1] as usize, x, rows, y);
        }
        Kernel::QuantizeQ8_0 => {
            let n = io.width(0)?;
            let (x, q) = (io.input::<f32>(0)?, io.output::<BlockQ8_0Act>(1)?);
            cpu::matvec::quantize_q8_0_rows(x, n, rows, q);
        }
        Kernel::MatvecQ8_0 => {
            let (w, d) = (io.weight_req(0)?, io.weight_dims(0)?);
            let (xq, y) = (io.input::<BlockQ8_0Act>(1)?, io.output::<f32>(2)?);
            cpu::matvec::matmul_q8_0(w, d[0] as usize, d[1] as usize, xq, rows, y);
        }
        Kernel::MatvecQ8_0Grouped => {
            let (w, d, groups) = (io.weight_req(0)?, io.weight_dims(0)?, io.int("groups")?);
            let (xq, y) = (io.input::<BlockQ8_0Act>(1)?, io.output::<f32>(2)?);
            cpu::matvec::matmul_q8_0_grouped(
                w,
                d[0] as usize,
                groups,
                d[1] as usize / groups,
                xq,
                rows,
                y,
            );
        }
        Kernel::HcSplit => {
            let (iters, eps) = (io.int("iters")?, io.float("eps")?);
            let (mix, scale, base) = (io.input::<f32>(0)?, io.weight_f32(1)?, io.weight_f32(2)?);
            let (pre, post, comb) = (
                io.output::<f32>(3)?,
                io.output::<f32>(4)?,
                io.output::<f32>(5)?,
            );
            for (((m, a), b), c) in per_row(mix, rows)
                .zip(per_row_mut(pre, rows))
                .zip(per_row_mut(post, rows))
                .zip(per_row_mut(comb, rows))
            {
                cpu::hc::hc_split(m, scale, base, iters, eps, a, b, c);
            }
        }
        Kernel::HcWeightedSum => {
            let (hc, w, x) = (
                io.input::<f32>(0)?,
                io.input::<f32>(1)?,
                io.output::<f32>(2)?,
            );
            for ((h, wr), xr) in per_row(hc, rows)
                .zip(per_row(w, rows))
                .zip(per_row_mut(x, rows))
            {
                cpu::hc::hc_weighted_sum(h, wr, xr);
            }
        }
        Kernel::HcPost => {
            let (y, res) = (io.input::<f32>(0)?, io.input::<f32>(1)?);
            let (post, comb, out) = (
                io.input::<f32>(2)?,
                io.input::<f32>(3)?,
                io.output::<f32>(4)?,
            );
            for ((((yr, rr), p), c), o) in per_row(y, rows)
                .zip(per_row(res, rows))
                .zip(per_row(post, rows))
                .zip(per_row(comb, rows))
                .zip(per_row_mut(out, rows))
            {
                cpu::hc::hc_post(yr, rr, p, c, o);
            }
        }
        Kernel::HcHeadWeights => {
            let eps = io.float("eps")?;
            let (pre, scale, base) = (io.input::<f32>(0)?, io.weight_f32(1)?, io.weight_f32(2)?);
            let w = io.output::<f32>(3)?;
            let s = *scale.first().ok_or("empty output_hc_scale")?;
            for (p, wr) in per_row(pre, rows).zip(per_row_mut(w, rows)) {
                cpu::hc::hc_head_weights(p, s, base, eps, wr);
            }
        }
        Kernel::Fp8Kv => {
            let n_quant = io.int("n_quant")?;
            let (x, y) = (io.input::<f32>(0)?, io.output::<f32>(1)?);
            y.copy_from_slice(&x[..y.len()]);
            for yr in per_row_mut(y, rows) {
                crate::quant::fp8::kv_quantize_row(&mut yr[..n_quant]);
            }
        }
        Kernel::IndexerQat => {
            let hd = io.int("head_dim")?;
            let (x, y) = (io.input::<f32>(0)?, io.output::<f32>(1)?);
            y.copy_from_slice(&x[..y.len()]);
            for yr in per_row_mut(y, rows) {
                cpu::indexer::indexer_qat(yr, hd);
            }
        }
        Kernel::RouterProbs => {
            let (x, p) = (io.input::<f32>(0)?, io.output::<f32>(1)?);
            for (xr, pr) in per_row(x, rows).zip(per_row_mut(p, rows)) {
                cpu::router::router_probs(xr, pr);
            }
        }
        Kernel::RouterTopk => {
            let (k, scale) = (io.int("k")?, io.float("scale")?);
            let (prob, bias) = (io.input::<f32>(0)?, io.weight(1)?);
            let bias: Option<&[f32]> = match bias {
                Some(b) => {
                    Some(bytemuck::try_cast_slice(b).map_err(|e| format!("bias misaligned: {e}"))?)
                }
                None => None,
            };
            let (ids, wt) = (io.output::<i32>(2)?, io.output::<f32>(3)?);
            for ((p, i), w) in per_row(prob, rows)
                .zip(per_row_mut(ids, rows))
                .zip(per_row_mut(wt, rows))
            {
                cpu::router::router_topk(p, bias, k, scale, i, w);
            }
        }
        Kernel::RouterHash => {
            let (k, scale) = (io.int("k")?, io.float("scale")?);
            let (prob, table) = (io.input::<f32>(0)?, io.weight_i32(1)?);
            let (ids, wt) = (io.output::<i32>(3)?, io.output::<f32>(4)?);
            for (t, ((p, i), w)) in per_row(prob, rows)
                .zip(per_row_mut(ids, rows))
                .zip(per_row_mut(wt, rows))
                .enumerate()
            {
                let tok = io.ex.tokens[t] as usize;
                let row = table
                    .get(tok * k..tok * k + k)
                    .ok_or("token outside ffn_gate_tid2eid")?;
                cpu::router::router_hash(p, row, scale, i, w);
            }
        }
        Kernel::QuantizeQ8K => {
            let n = io.width(0)?;
            let (x, q) = (io.input::<f32>(0)?, io.output::<BlockQ8K>(1)?);
            cpu::matvec::quantize_q8_k_rows(x, n, rows, q);
        }
        Kernel::MoeGateUp => {
            let (e0, e1) = (io.int("e0")? as u32, io.int("e1")? as u32);
            let (gate, up, d) = (io.weight_req(0)?, io.weight_req(1)?, io.weight_dims(0)?);
            let (n_embd, n_ff) = (d[0] as usize, d[1] as usize);
            let (xq, ids) = (io.input::<BlockQ8K>(2)?, io.input::<i32>(3)?);
            let (g, u) = (io.output::<f32>(4)?, io.output::<f32>(5)?);
            // Decode too when the sixteen-row kernels apply (a task decodes its rows
            // once, cheaper than the one-token dot); the same bits either way.
            if rows > 1 || cpu::moe_batch::rows16(n_ff) {
                let k = ids.len() / rows;
                cpu::moe_batch::moe_gate_up_batch(
                    gate,
                    up,
                    n_embd,
                    n_ff,
                    xq,
                    ids,
                    k,
                    (e0, e1),
                    g,
                    u,
                );
                return Ok(());
            }
            for ((((x, i), gr), ur), _) in per_row(xq, rows)
                .zip(per_row(ids, rows))
                .zip(per_row_mut(g, rows))
                .zip(per_row_mut(u, rows))
                .zip(0..rows)
            {
                cpu::moe::moe_gate_up(gate, up, n_embd, n_ff, x, i, (e0, e1), gr, ur);
            }
        }
        Kernel::MoeSwiglu => {
            let (n_ff, clamp) = (io.int("n_ff")?, io.float("clamp")?);
            let (g, u, wt) = (
                io.input::<f32>(0)?,
                io.input::<f32>(1)?,
                io.input::<f32>(2)?,
            );
            let mid = io.output::<f32>(3)?;
            for (((gr, ur), w), m) in per_row(g, rows)
                .zip(per_row(u, rows))
                .zip(per_row(wt, rows))
                .zip(per_row_mut(mid, rows))
            {
                cpu::moe::moe_swiglu(gr, ur, w, n_ff, clamp, m);
            }
        }
        Kernel::MoeDown => {
            let (e0, e1) = (io.int("e0")? as u32, io.int("e1")? as u32);
            let (down, d) = (io.weight_req(0)?, io.weight_dims(0)?);
            let (n_ff, n_embd) = (d[0] as usize, d[1] as usize);
            let (midq, ids, y) = (
                io.input::<BlockQ8K>(1)?,
                io.input::<i32>(2)?,
                io.output::<f32>(3)?,
            );
            if rows > 1 || cpu::moe_batch::rows16(n_embd) {
                let k = ids.len() / rows;
                cpu::moe_batch::moe_down_batch(down, n_ff, n_embd, midq, ids, k, (e0, e1), y);
                return Ok(());
            }
            for ((m, i), yr) in per_row(midq, rows)
                .zip(per_row(ids, rows))
                .zip(per_row_mut(y, rows))
            {
                cpu::moe::moe_down(down, n_ff, n_embd, m, i, (e0, e1), yr);
            }
        }
        Kernel::Swiglu => {
            let clamp = io.float("clamp")?;
            let (g, u, m) = (
                io.input::<f32>(0)?,
                io.input::<f32>(1)?,
                io.output::<f32>(2)?,
            );
            cpu::moe::swiglu(g, u, clamp, m);
        }
        Kernel::Add => {
            let (a, b, y) = (
                io.input::<f32>(0)?,
                io.input::<f32>(1)?,
                io.output::<f32>(2)?,
            );
            for ((yv, av), bv) in y.iter_mut().zip(a).zip(b) {
                *yv = av + bv;
            }
        }
        Kernel::TakeLast => {
            let xb = io.buf(0)?;
            let x: &[f32] = {
                // SAFETY: input view over all chunk rows; see `Io::input`.
                unsafe { io.ex.arenas[xb.dev as usize].view(&xb, io.ex.tokens.len()) }
            };
            let y = io.output::<f32>(1)?;
            let w = xb.width;
            let last = io.ex.tokens.len().checked_sub(1).ok_or("empty chunk")?;
            y[..w].copy_from_slice(&x[last * w..last * w + w]);
        }
        Kernel::Rope => {
            let (heads, hd, n_rot) = (io.int("heads")?, io.int("head_dim")?, io.int("n_rot")?);
            let inverse = io.int("inverse")? != 0;
            let table = &io.ex.state.bufs[io.state_index(1)?];
            let (x, y) = (io.input::<f32>(0)?, io.output::<f32>(3)?);
            y.copy_from_slice(&x[..y.len()]);
            for (t, yr) in per_row_mut(y, rows).enumerate() {
                let pos = io.ex.pos0 + t;
                let row = table
                    .get(pos * n_rot..(pos + 1) * n_rot)
                    .ok_or("position outside the RoPE table")?;
                cpu::rope::rope_apply(yr, heads, hd, n_rot, row, inverse);
            }
        }
        k => return Err(format!("kernel {k:?} has no CPU implementation")),
    }
    Ok(())
}

/// Kernels that update session state, run token by token in position order.
fn stateful(ex: &mut CpuExecutor<'_>, l: &'static Launch, rows: usize) -> R<()> {
    // The state buffers are moved out for the call so that the kernel can hold
    // exclusive views of several of them while `io` reads arenas and weights.
    let mut bufs = std::mem::take(&mut ex.state.bufs);
    let io = Io { ex: &*ex, l, rows };
    let result = stateful_call(&io, &mut bufs);
    ex.state.bufs = bufs;
    result
}

fn disjoint<const N: usize>(bufs: &mut [Vec<f32>], idx: [usize; N]) -> R<[&mut Vec<f32>; N]> {
    bufs.get_disjoint_mut(idx)
        .map_err(|e| format!("state slots {idx:?}: {e}"))
}

fn stateful_call(io: &Io<'_, '_>, bufs: &mut [Vec<f32>]) -> R<()> {
    let (rows, pos0, l) = (io.rows, io.ex.pos0, io.l);
    let state_rows = &io.ex.state.rows;
    match l.kernel {
        Kernel::KvPushRaw => {
            let kv = io.input::<f32>(0)?;
            let si = io.state_index(1)?;
            let hd = io.width(0)?;
            let cap = state_rows[si];
            let [raw] = disjoint(bufs, [si])?;
            for (t, row) in per_row(kv, rows).enumerate() {
                cpu::attention::kv_push_raw(raw, cap, hd, pos0 + t, row);
            }
        }
        Kernel::CompressorUpdate => {
            let (ratio, hd, n_rot) = (io.int("ratio")?, io.int("head_dim")?, io.int("n_rot")?);
            let (post, n_quant, eps) = (io.int("post")?, io.int("n_quant")?, io.float("eps")?);
            let (kv_t, sc_t) = (io.input::<f32>(0)?, io.input::<f32>(1)?);
            let (ape, norm) = (io.weight_req(2)?, io.weight_f32(3)?);
            let idx = [
                io.state_index(4)?,
                io.state_index(5)?,
                io.state_index(6)?,
                io.state_index(7)?,
            ];
            let [skv, ssc, comp, table] = disjoint(bufs, idx)?;
            let row_post = if post == 0 {
                cpu::compressor::RowPost::Fp8 { n_quant }
            } else {
                cpu::compressor::RowPost::Qat
            };
            for (t, (k, s)) in per_row(kv_t, rows).zip(per_row(sc_t, rows)).enumerate() {
                let state = cpu::compressor::CompressorState {
                    kv: skv,
                    score: ssc,
                };
                cpu::compressor::compressor_update(
                    k,
                    s,
                    ape,
                    norm,
                    state,
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
        Kernel::IndexerTopk => {
            let (heads, hd) = (io.int("heads")?, io.int("head_dim")?);
            let (top_k, ratio) = (io.int("top_k")?, io.int("ratio")?);
            let (q, wts) = (io.input::<f32>(0)?, io.input::<f32>(1)?);
            let [index_rows] = disjoint(bufs, [io.state_index(2)?])?;
            let sel = io.output::<i32>(4)?;
            for (t, ((qr, w), s)) in per_row(q, rows)
                .zip(per_row(wts, rows))
                .zip(per_row_mut(sel, rows))
                .enumerate()
            {
                cpu::indexer::indexer_topk(qr, w, index_rows, heads, hd, top_k, ratio, pos0 + t, s);
            }
        }
        Kernel::Attention => {
            let (heads, hd) = (io.int("heads")?, io.int("head_dim")?);
            let (window, ratio) = (io.int("window")?, io.int("ratio")?);
            let (q, sinks) = (io.input::<f32>(0)?, io.weight_f32(1)?);
            let raw_i = io.state_index(2)?;
            let raw_cap = state_rows[raw_i];
            let (comp_i, sel, out_i) = match ratio {
                0 => (None, None, 4),
                4 => (Some(io.state_index(3)?), Some(io.input::<i32>(4)?), 6),
                _ => (Some(io.state_index(3)?), None, 5),
            };
            let out = io.output::<f32>(out_i)?;
            let raw: &[f32] = &bufs[raw_i];
            let comp: Option<&[f32]> = comp_i.map(|c| &bufs[c][..]);
            let top_k = sel.map(|s| s.len() / rows.max(1)).unwrap_or(0);
            for (t, (qr, o)) in per_row(q, rows).zip(per_row_mut(out, rows)).enumerate() {
                let sel_row = sel.map(|s| &s[t * top_k..(t + 1) * top_k]);
                cpu::attention::attention(
                    qr,
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
                    o,
                );
            }
        }
        k => return Err(format!("kernel {k:?} is not a state kernel")),
    }
    Ok(())
}
