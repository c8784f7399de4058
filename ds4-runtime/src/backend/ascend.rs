//! The Ascend backend: a session whose state, weights and activations live in
//! device memory, and the [`Executor`] that turns a plan's steps into ACL calls.
//!
//! Per device: one context, one stream, one arena (`aclrtMalloc`'d, sized for the
//! larger of the decode and prefill plans; the two never run at once), a token
//! buffer where the device reads `@tokens`, the fused kernels' barrier workspaces
//! (zeroed at the start of each run) and the state slots the plan places there
//! ([`device_bytes`]; a session that a device cannot hold is refused before any
//! upload). Weights are uploaded once at start. A run uploads the chunk's token ids
//! (blocking `aclrtMemcpy`: the previous run ended with every stream synchronised),
//! queues every launch on its device's stream, and turns each plan copy into an
//! `aclrtMemcpyAsync` device-to-device issued on the destination device's stream
//! (the order that works on the 310P Duo, ASCEND.md §6.4); the plan synchronises the
//! source device before a copy and the destination after it, and `sync(dev)`
//! synchronises that device's stream: there is no synchronisation of our own. Nothing crosses the host inside a run except stage dumps,
//! which synchronise the tapped device first. Logits are read after the final
//! synchronisation. Memory is freed only when the session ends, after syncing.

use super::ktable::KernelTable;
use super::launch::{resolve, resolve_fused, Resolver};
use super::upload;
use crate::acl::codes::memcpy_kind;
use crate::acl::{Acl, DevPtr, Handle};
use crate::ascend::kernels::{BLOCK_DIM, SYNC_BYTES_PER_BLOCK};
use crate::exec::stages::StageDumper;
use crate::exec::state::SessionState;
use crate::model::Model;
use crate::plan::{Arg, Buf, Executor, Launch, Phase, PlanSet, StageTap};
use crate::session::SessionError;
use std::sync::Arc;

struct Device {
    ctx: Handle,
    stream: Handle,
    arena: DevPtr,
    tokens: DevPtr,
    /// Barrier workspaces of the fused launches of one run, one after another.
    sync_ws: DevPtr,
    sync_bytes: usize,
}

/// Barrier workspace bytes each device needs: one per fused launch of the larger of the
/// decode and prefill runs, [`SYNC_BYTES_PER_BLOCK`] per block each (zeroed per run).
pub fn sync_workspace_bytes(plans: &'static PlanSet) -> Vec<usize> {
    struct Count(Vec<usize>);
    impl Executor for Count {
        fn launch(&mut self, l: &'static Launch) {
            if l.kernel.is_fused() && !l.parts.is_empty() {
                self.0[l.device as usize] += 1;
            }
        }
        fn copy(&mut self, _: Buf, _: Buf, _: bool) {}
        fn sync(&mut self, _: u8) {}
        fn stage(&mut self, _: &'static StageTap) {}
    }
    let n = plans.devices as usize;
    let (mut d, mut p) = (Count(vec![0; n]), Count(vec![0; n]));
    (plans.decode.run)(&mut d);
    (plans.prefill.run)(&mut p);
    let per = BLOCK_DIM as usize * SYNC_BYTES_PER_BLOCK;
    d.0.iter().zip(&p.0).map(|(a, b)| a.max(b) * per).collect()
}

/// What one device holds for a session of a plan set (the figures `plan` prints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceBytes {
    pub weights: u64,
    /// Per-session state at the context size (f32).
    pub state: u64,
    /// The larger of the decode and prefill arenas.
    pub arena: u64,
    /// The chunk's token ids, on a device that reads `@tokens`.
    pub tokens: u64,
    /// The fused kernels' barrier workspaces.
    pub sync: u64,
}

impl DeviceBytes {
    pub fn total(&self) -> u64 {
        self.weights + self.state + self.arena + self.tokens + self.sync
    }
}

/// Device memory a session of `plans` with `ctx` positions takes, per device: exactly
/// what [`AscendSession::new`] allocates.
pub fn device_bytes(plans: &'static PlanSet, ctx: usize) -> Vec<DeviceBytes> {
    let n = plans.devices as usize;
    let mut v = vec![DeviceBytes::default(); n];
    for w in plans.weights {
        v[w.device as usize].weights += w.bytes;
    }
    for s in plans.states {
        v[s.device as usize].state += (s.rows.at(ctx) * s.width * 4) as u64;
    }
    let reads = token_devices(plans);
    let sync = sync_workspace_bytes(plans);
    for (d, b) in v.iter_mut().enumerate() {
        b.arena = plans.decode.arena_bytes[d].max(plans.prefill.arena_bytes[d]) as u64;
        if reads.contains(&(d as u8)) {
            b.tokens = (plans.profile.chunk * 4) as u64;
        }
        b.sync = sync[d] as u64;
    }
    v
}

/// Options of an Ascend session.
#[derive(Clone, Debug, Default)]
pub struct AscendOptions {
    /// Prefill chunk cap (default: the profile's).
    pub chunk: Option<usize>,
    /// Drop the n-th synchronisation the plan asks for (counted from 0 over the
    /// session): a debug switch to prove that the emulation reports the hazard.
    pub drop_sync: Option<usize>,
    /// Show the upload progress bar.
    pub progress: bool,
    /// Emulation only: run the stateful ops as host work over the CPU kernels.
    pub host_ops: bool,
}

/// One conversation on the Ascend backend (real or emulated ACL).
pub struct AscendSession<'m> {
    acl: Arc<dyn Acl>,
    kernels: KernelTable,
    host_memory: bool,
    _lib: Option<Arc<libloading::Library>>,
    _model: &'m Model,
    plans: &'static PlanSet,
    devs: Vec<Device>,
    weights: Vec<DevPtr>,
    allocs: Vec<(u8, DevPtr)>,
    states: Vec<(DevPtr, usize, usize)>,
    ctx: usize,
    pos: usize,
    chunk: usize,
    stages: Option<StageDumper>,
    logits: Vec<f32>,
    drop_sync: Option<usize>,
    host_ops: bool,
    syncs: usize,
    /// Host zeros as large as the largest barrier workspace (copied in at each run).
    zeros: Vec<u8>,
}

fn acl_err(e: crate::acl::AclError) -> SessionError {
    SessionError::Kernel(e.to_string())
}

impl<'m> AscendSession<'m> {
    /// Sets up every device of `plans` on the opened runtime `rt`, uploads the
    /// weights and allocates state and arenas.
    pub fn new(
        rt: &super::setup::AscendRuntime,
        model: &'m Model,
        plans: &'static PlanSet,
        ctx: usize,
        opts: &AscendOptions,
    ) -> Result<Self, SessionError> {
        let (acl, kernels, host_memory) = (rt.acl.clone(), rt.kernels.clone(), rt.host_memory);
        let n = plans.devices as usize;
        let have = acl.device_count().map_err(acl_err)? as usize;
        if have < n {
            return Err(SessionError::Kernel(format!(
                "the plan needs {n} Ascend devices, {have} are visible"
            )));
        }
        let bound = model.bind(plans)?;
        let items =
            upload::upload_items(plans, &model.file, &bound).map_err(SessionError::Kernel)?;
        let mut devs = Vec::with_capacity(n);
        for d in 0..n {
            // The fork's order (ASCEND.md §2.1): set the device, then its explicit context.
            acl.set_device(d as i32).map_err(acl_err)?;
            let c = acl.create_context(d as i32).map_err(acl_err)?;
            acl.set_current_context(c).map_err(acl_err)?;
            let s = acl.create_stream().map_err(acl_err)?;
            devs.push(Device {
                ctx: c,
                stream: s,
                arena: 0,
                tokens: 0,
                sync_ws: 0,
                sync_bytes: 0,
            });
        }
        // Refuse before the upload when a device cannot hold its share.
        let need = device_bytes(plans, ctx);
        for (d, dev) in devs.iter().enumerate() {
            acl.set_current_context(dev.ctx).map_err(acl_err)?;
            let (free, _) = acl.mem_info().map_err(acl_err)?;
            let b = need[d];
            if b.total() > free as u64 {
                let gib = |x: u64| x as f64 / (1u64 << 30) as f64;
                return Err(SessionError::Kernel(format!(
                    "device {d} cannot hold this plan: it needs {:.2} GiB (weights {:.2} GiB, state {:.2} GiB at -c {ctx}, activations {:.2} GiB) and has {:.2} GiB free; use both chips (--devices 2), a smaller -c, or free the device",
                    gib(b.total()),
                    gib(b.weights),
                    gib(b.state),
                    gib(b.arena + b.tokens + b.sync),
                    gib(free as u64)
                )));
            }
        }
        let ctxs: Vec<Handle> = devs.iter().map(|d| d.ctx).collect();
        let upload::Uploaded {
            ptrs: weights,
            mut allocs,
        } = upload::upload(
            &*acl,
            &ctxs,
            &model.file,
            plans.weights.len(),
            &items,
            opts.progress,
        )
        .map_err(SessionError::Kernel)?;

        // State slots, initialised on the host and copied in.
        let mut states = Vec::with_capacity(plans.states.len());
        for slot in plans.states {
            let init =
                SessionState::new(std::slice::from_ref(slot), ctx).map_err(SessionError::Kernel)?;
            let (rows, data) = (init.rows[0], &init.bufs[0]);
            let bytes = data.len() * 4;
            let mut p = 0;
            if bytes > 0 {
                acl.set_current_context(devs[slot.device as usize].ctx)
                    .map_err(acl_err)?;
                p = acl.malloc(bytes).map_err(acl_err)?;
                allocs.push((slot.device, p));
            }
            states.push((p, rows, bytes));
        }
        let chunk_max = plans.profile.chunk;
        // Arena, token ids and barrier workspaces: the sizes checked above.
        for (d, dev) in devs.iter_mut().enumerate() {
            acl.set_current_context(dev.ctx).map_err(acl_err)?;
            let b = need[d];
            let mut alloc = |bytes: u64| -> Result<DevPtr, SessionError> {
                if bytes == 0 {
                    return Ok(0);
                }
                let p = acl.malloc(bytes as usize).map_err(acl_err)?;
                allocs.push((d as u8, p));
                Ok(p)
            };
            dev.arena = alloc(b.arena)?;
            dev.tokens = alloc(b.tokens)?;
            dev.sync_ws = alloc(b.sync)?;
            dev.sync_bytes = b.sync as usize;
        }
        for (d, dev) in devs.iter().enumerate() {
            acl.set_current_context(dev.ctx).map_err(acl_err)?;
            let (free, total) = acl.mem_info().map_err(acl_err)?;
            tracing::info!(
                device = d,
                free_mib = free >> 20,
                total_mib = total >> 20,
                "device memory after setup"
            );
        }
        let mut s = AscendSession {
            acl,
            kernels,
            host_memory,
            _lib: rt.lib.clone(),
            _model: model,
            plans,
            devs,
            weights,
            allocs,
            states,
            ctx,
            pos: 0,
            chunk: opts.chunk.unwrap_or(chunk_max).clamp(1, chunk_max),
            stages: None,
            logits: vec![0.0; plans.profile.vocab],
            drop_sync: opts.drop_sync,
            host_ops: opts.host_ops && host_memory,
            syncs: 0,
            zeros: vec![0; need.iter().map(|b| b.sync as usize).max().unwrap_or(0)],
        };
        s.reset_state()?;
        Ok(s)
    }

    fn reset_state(&mut self) -> Result<(), SessionError> {
        for (slot, &(p, _, bytes)) in self.plans.states.iter().zip(&self.states) {
            if bytes == 0 {
                continue;
            }
            let init = SessionState::new(std::slice::from_ref(slot), self.ctx)
                .map_err(SessionError::Kernel)?;
            self.acl
                .set_current_context(self.devs[slot.device as usize].ctx)
                .map_err(acl_err)?;
            // SAFETY: host buffer of `bytes` bytes; device slot of the same size.
            unsafe {
                self.acl.memcpy(
                    p,
                    bytes,
                    init.bufs[0].as_ptr() as usize,
                    bytes,
                    memcpy_kind::HOST_TO_DEVICE,
                )
            }
            .map_err(acl_err)?;
        }
        Ok(())
    }

    /// (live, peak) bytes of each device as the ACL layer counts them (emulation only).
    pub fn mem_counters(&self) -> Vec<Option<(u64, u64)>> {
        (0..self.devs.len())
            .map(|d| self.acl.mem_counters(d as i32))
            .collect()
    }

    /// Bytes of the token buffers (4 · chunk on each device that reads `@tokens`).
    pub fn token_buffer_bytes(&self) -> Vec<u64> {
        self.devs
            .iter()
            .map(|d| {
                if d.tokens != 0 {
                    (self.plans.profile.chunk * 4) as u64
                } else {
                    0
                }
            })
            .collect()
    }

    /// Hazards the ACL layer saw (emulation only).
    pub fn hazards(&self) -> Vec<String> {
        self.acl.hazards()
    }

    fn run(&mut self, phase: Phase, tokens: &[u32]) -> Result<(), SessionError> {
        let plan = match phase {
            Phase::Decode => &self.plans.decode,
            _ => &self.plans.prefill,
        };
        if let Some(d) = self.stages.as_mut() {
            d.phase = phase;
        }
        let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        for dev in &self.devs {
            if dev.sync_bytes > 0 {
                // The fused kernels' barriers expect zeroed workspaces; nothing is queued
                // (the previous run ended with every stream synchronised).
                self.acl.set_current_context(dev.ctx).map_err(acl_err)?;
                // SAFETY: `zeros` holds at least sync_bytes bytes, the workspace as many.
                unsafe {
                    self.acl.memcpy(
                        dev.sync_ws,
                        dev.sync_bytes,
                        self.zeros.as_ptr() as usize,
                        dev.sync_bytes,
                        memcpy_kind::HOST_TO_DEVICE,
                    )
                }
                .map_err(acl_err)?;
            }
            if dev.tokens != 0 {
                self.acl.set_current_context(dev.ctx).map_err(acl_err)?;
                let n = ids.len() * 4;
                // SAFETY: `ids` holds n bytes; the token buffer holds chunk · 4 >= n.
                unsafe {
                    self.acl.memcpy(
                        dev.tokens,
                        self.plans.profile.chunk * 4,
                        ids.as_ptr() as usize,
                        n,
                        memcpy_kind::HOST_TO_DEVICE,
                    )
                }
                .map_err(acl_err)?;
            }
        }
        let arenas: Vec<DevPtr> = self.devs.iter().map(|d| d.arena).collect();
        let n_devs = self.devs.len();
        let toks: Vec<DevPtr> = self.devs.iter().map(|d| d.tokens).collect();
        let mut ex = AscendExecutor {
            s: &mut *self,
            arenas,
            toks,
            n_tokens: tokens.len(),
            fused_seen: vec![0; n_devs],
            error: None,
        };
        (plan.run)(&mut ex);
        let err = ex.error.take();
        // The end of a run: every device is synchronised (the logits are read next).
        for d in 0..self.devs.len() {
            self.sync_dev(d).map_err(acl_err)?;
        }
        if let Some(e) = err {
            return Err(SessionError::Kernel(e));
        }
        if let Some(h) = self.acl.hazards().first() {
            return Err(SessionError::Kernel(format!("ascend-sim: {h}")));
        }
        self.pos += tokens.len();
        if let Some(b) = plan.logits {
            let dev = &self.devs[b.dev as usize];
            let n = self.logits.len().min(b.width) * 4;
            self.acl.set_current_context(dev.ctx).map_err(acl_err)?;
            // SAFETY: the logits row lies in the arena; the host buffer holds n bytes.
            unsafe {
                self.acl.memcpy(
                    self.logits.as_mut_ptr() as usize,
                    n,
                    dev.arena + b.offset,
                    n,
                    memcpy_kind::DEVICE_TO_HOST,
                )
            }
            .map_err(acl_err)?;
        }
        Ok(())
    }

    fn sync_dev(&self, d: usize) -> Result<(), crate::acl::AclError> {
        let dev = &self.devs[d];
        self.acl.set_current_context(dev.ctx)?;
        self.acl.sync_stream(dev.stream)
    }
}

/// Devices whose launches read `@tokens`.
fn token_devices(plans: &PlanSet) -> Vec<u8> {
    struct Find(Vec<u8>);
    impl Executor for Find {
        fn launch(&mut self, l: &'static Launch) {
            if l.args.iter().any(|a| matches!(a, Arg::Tokens)) && !self.0.contains(&l.device) {
                self.0.push(l.device);
            }
            for p in l.parts {
                self.launch(p);
            }
        }
        fn copy(&mut self, _: Buf, _: Buf, _: bool) {}
        fn sync(&mut self, _: u8) {}
        fn stage(&mut self, _: &'static StageTap) {}
    }
    let mut f = Find(Vec::new());
    (plans.prefill.run)(&mut f);
    (plans.decode.run)(&mut f);
    f.0
}

impl Drop for AscendSession<'_> {
    fn drop(&mut self) {
        // Queued work may still use the buffers: synchronise before freeing.
        for d in 0..self.devs.len() {
            let _ = self.sync_dev(d);
        }
        for &(d, p) in &self.allocs {
            if self
                .acl
                .set_current_context(self.devs[d as usize].ctx)
                .is_ok()
            {
                let _ = self.acl.free(p);
            }
        }
        for (d, dev) in self.devs.iter().enumerate() {
            let _ = self.acl.set_current_context(dev.ctx);
            let _ = self.acl.destroy_stream(dev.stream);
            let _ = self.acl.destroy_context(dev.ctx);
            let _ = self.acl.reset_device(d as i32);
        }
    }
}

/// The plan executor over one [`AscendSession`] run.
pub struct AscendExecutor<'s, 'm> {
    s: &'s mut AscendSession<'m>,
    arenas: Vec<DevPtr>,
    toks: Vec<DevPtr>,
    n_tokens: usize,
    /// Fused launches queued so far in this run, per device (the next workspace slot).
    fused_seen: Vec<usize>,
    error: Option<String>,
}

impl AscendExecutor<'_, '_> {
    fn fail(&mut self, e: String) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn enter(&mut self, dev: u8) -> Option<Handle> {
        let d = self.s.devs.get(dev as usize)?;
        let (ctx, stream) = (d.ctx, d.stream);
        match self.s.acl.set_current_context(ctx) {
            Ok(()) => Some(stream),
            Err(e) => {
                self.fail(e.to_string());
                None
            }
        }
    }
}

impl Executor for AscendExecutor<'_, '_> {
    fn launch(&mut self, l: &'static Launch) {
        if self.error.is_some() {
            return;
        }
        let fused = l.kernel.is_fused() && !l.parts.is_empty();
        let r = Resolver {
            plans: self.s.plans,
            weights: &self.s.weights,
            states: &self.s.states,
            arenas: &self.arenas,
            tokens: &self.toks,
            n_tokens: self.n_tokens,
            pos0: self.s.pos,
            host_memory: self.s.host_memory,
            host_ops: self.s.host_ops,
        };
        let resolved = if fused {
            // One launch of the fused kernel, on its own zeroed barrier workspace.
            let dev = &self.s.devs[l.device as usize];
            let slot = self.fused_seen[l.device as usize];
            let per = BLOCK_DIM as usize * SYNC_BYTES_PER_BLOCK;
            if (slot + 1) * per > dev.sync_bytes {
                return self.fail(format!("fused launch {slot} past the barrier workspaces"));
            }
            self.fused_seen[l.device as usize] += 1;
            resolve_fused(&r, l, dev.sync_ws + slot * per)
        } else {
            resolve(&r, l).map(Some)
        };
        let (acc, call) = match resolved {
            Ok(Some(x)) => x,
            Ok(None) => {
                // A part runs as host work: the parts one by one.
                for p in l.parts {
                    self.launch(p);
                }
                return;
            }
            Err(e) => return self.fail(format!("kernel {} failed: {e}", l.kernel.op_name())),
        };
        let work = call.into_work(&self.s.kernels);
        let Some(stream) = self.enter(l.device) else {
            return;
        };
        if let Err(e) = self.s.acl.launch(stream, &acc, l.kernel.op_name(), work) {
            self.fail(e.to_string());
        }
    }

    fn copy(&mut self, src: Buf, dst: Buf, one_row: bool) {
        if self.error.is_some() {
            return;
        }
        let rows = if one_row { 1 } else { self.n_tokens };
        let n = src.row_bytes * rows;
        if src.dev == dst.dev || dst.row_bytes != src.row_bytes {
            return self.fail(format!(
                "plan copy {src:?} -> {dst:?} is not a cross-device copy of equal rows"
            ));
        }
        let (sp, dp) = (
            self.arenas[src.dev as usize] + src.offset,
            self.arenas[dst.dev as usize] + dst.offset,
        );
        let Some(stream) = self.enter(dst.dev) else {
            return;
        };
        // SAFETY: both ranges lie in the devices' arenas (plan invariant, checked by
        // the emulation); the copy runs on the destination stream.
        let r = unsafe {
            self.s
                .acl
                .memcpy_async(dp, n, sp, n, memcpy_kind::DEVICE_TO_DEVICE, stream)
        };
        // The plan synchronises the destination right after (schedule pass).
        if let Err(e) = r {
            self.fail(e.to_string());
        }
    }

    fn sync(&mut self, dev: u8) {
        let k = self.s.syncs;
        self.s.syncs += 1;
        if self.s.drop_sync == Some(k) {
            tracing::warn!(
                "ascend-sim: dropped synchronisation #{k} (of device {dev}) as DS4_SIM_DROP_SYNC asks"
            );
            return;
        }
        if let Err(e) = self.s.sync_dev(dev as usize) {
            self.fail(e.to_string());
        }
    }

    fn stage(&mut self, tap: &'static StageTap) {
        if self.error.is_some() || self.s.stages.is_none() {
            return;
        }
        let rows = if tap.one_row { 1 } else { self.n_tokens };
        if let Err(e) = self.s.sync_dev(tap.buf.dev as usize) {
            return self.fail(e.to_string());
        }
        let mut host = vec![0f32; tap.buf.row_bytes * rows / 4];
        let n = host.len() * 4;
        let src = self.arenas[tap.buf.dev as usize] + tap.buf.offset;
        // SAFETY: the tapped rows lie in the arena; the host buffer holds n bytes.
        if let Err(e) = unsafe {
            self.s.acl.memcpy(
                host.as_mut_ptr() as usize,
                n,
                src,
                n,
                memcpy_kind::DEVICE_TO_HOST,
            )
        } {
            return self.fail(e.to_string());
        }
        let pos0 = self.s.pos;
        if let Some(d) = self.s.stages.as_mut() {
            if let Err(e) = d.dump(tap, &host, rows, pos0) {
                self.fail(e);
            }
        }
    }
}

impl AscendSession<'_> {
    /// Dumps every stage tap into `dir` from now on.
    pub fn dump_stages(&mut self, dir: std::path::PathBuf) -> std::io::Result<()> {
        self.stages = Some(StageDumper::new(dir)?);
        Ok(())
    }

    /// Tokens fed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The context size.
    pub fn ctx(&self) -> usize {
        self.ctx
    }

    /// The logits of the last token fed.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Forgets the conversation (state back to its initial content).
    pub fn reset(&mut self) -> Result<(), SessionError> {
        for d in 0..self.devs.len() {
            self.sync_dev(d).map_err(acl_err)?;
        }
        self.reset_state()?;
        self.pos = 0;
        Ok(())
    }

    fn check_room(&self, n: usize) -> Result<(), SessionError> {
        let need = self.pos + n;
        if need > self.ctx {
            return Err(SessionError::ContextFull {
                need,
                ctx: self.ctx,
            });
        }
        Ok(())
    }

    /// Feeds `tokens` through the prefill plan, chunk by chunk.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], SessionError> {
        self.check_room(tokens.len())?;
        for c in tokens.chunks(self.chunk) {
            self.run(Phase::Prefill, c)?;
        }
        Ok(&self.logits)
    }

    /// Feeds one token through the decode plan.
    pub fn decode(&mut self, token: u32) -> Result<&[f32], SessionError> {
        self.check_room(1)?;
        self.run(Phase::Decode, &[token])?;
        Ok(&self.logits)
    }
}
