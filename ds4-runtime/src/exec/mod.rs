//! The CPU backend's plan executor.
//!
//! A generated plan function calls [`CpuExecutor`] once per launch, copy,
//! synchronisation point and stage tap. The executor resolves each [`Arg`] to a
//! view of an arena, a weight in the mapped file or a state buffer, and calls the
//! kernel of [`crate::cpu`]. It holds no model knowledge: which kernels run, in
//! which order, on which buffers, is entirely the plan's. Fused kernels run as
//! their primitive parts (the same numbers as the unfused plan).
//!
//! Two-device plans run with one arena per device; a copy is a memcpy between
//! arenas and a synchronisation point is a no-op (work is synchronous here).

pub mod arena;
mod dispatch;
pub mod stages;
pub mod state;

use crate::gguf::GgufFile;
use crate::plan::{Buf, Executor, Launch, PhasePlan, PlanSet, StageTap};
use arena::Arena;
use stages::StageDumper;
use state::SessionState;

/// Everything a run of one phase needs, borrowed for the duration of the run.
pub struct CpuExecutor<'a> {
    pub(crate) plans: &'static PlanSet,
    pub(crate) file: &'a GgufFile,
    pub(crate) weights: &'a [Option<usize>],
    pub(crate) arenas: &'a mut [Arena],
    pub(crate) state: &'a mut SessionState,
    pub(crate) tokens: &'a [u32],
    pub(crate) pos0: usize,
    pub(crate) stages: Option<&'a mut StageDumper>,
    /// The first kernel error of this run; later launches are skipped.
    pub(crate) error: Option<String>,
}

impl<'a> CpuExecutor<'a> {
    /// Number of token rows in this run.
    pub fn rows(&self) -> usize {
        self.tokens.len()
    }

    fn rows_for(&self, one_row: bool) -> usize {
        if one_row {
            1
        } else {
            self.tokens.len()
        }
    }

    /// Bytes of the weight in slot `i`, or None for an absent optional tensor.
    pub(crate) fn weight(&self, i: u32) -> Option<&'a [u8]> {
        let idx = (*self.weights.get(i as usize)?)?;
        let file: &'a GgufFile = self.file;
        let info = file.tensors().get(idx)?;
        Some(file.tensor_data(info))
    }

    /// Runs one phase plan over `tokens` starting at `pos0`; the first kernel error
    /// (a malformed tensor, say) is returned instead of panicking.
    pub fn run(mut self, plan: &PhasePlan) -> Result<(), String> {
        for (dev, bytes) in plan.arena_bytes.iter().enumerate() {
            if self.arenas.get(dev).is_none_or(|a| a.len_bytes() < *bytes) {
                return Err(format!(
                    "arena of device {dev} is smaller than the plan's {bytes} bytes"
                ));
            }
        }
        (plan.run)(&mut self);
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Executor for CpuExecutor<'_> {
    fn launch(&mut self, launch: &'static Launch) {
        if self.error.is_some() {
            return;
        }
        if launch.kernel.is_fused() && !launch.parts.is_empty() {
            for part in launch.parts {
                self.launch(part);
            }
            return;
        }
        if let Err(e) = dispatch::run(self, launch) {
            self.error = Some(format!("kernel {} failed: {e}", launch.kernel.op_name()));
        }
    }

    fn copy(&mut self, src: Buf, dst: Buf, one_row: bool) {
        let rows = self.rows_for(one_row);
        let (s, d) = (src.dev as usize, dst.dev as usize);
        if s == d {
            self.error = Some(format!("plan copies within device {s}"));
            return;
        }
        let (lo, hi) = self.arenas.split_at_mut(s.max(d));
        let (from, to) = if s < d {
            (&lo[s], &mut hi[0])
        } else {
            (&hi[0], &mut lo[d])
        };
        to.copy_from(&dst, from, &src, rows);
    }

    fn sync(&mut self, _dev: u8) {}

    fn stage(&mut self, tap: &'static StageTap) {
        let rows = self.rows_for(tap.one_row);
        let pos0 = self.pos0;
        let Some(d) = self.stages.as_deref_mut() else {
            return;
        };
        let arena = &self.arenas[tap.buf.dev as usize];
        // SAFETY: a stage tap only reads a buffer the plan has just written.
        let data: &[f32] = unsafe { arena.view(&tap.buf, rows) };
        if let Err(e) = d.dump(tap, data, rows, pos0) {
            self.error = Some(e);
        }
    }
}
