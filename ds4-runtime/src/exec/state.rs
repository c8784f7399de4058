//! Per-session persistent state: the tensors of a plan set's state table.
//!
//! The raw KV ring, compressed rows, indexer rows, compressor window state and
//! the RoPE tables live here, one buffer per state slot, allocated once for the
//! session's context size. The HC state is not here: it is an activation that the
//! plan threads from layer to layer inside one run.

use crate::cpu::rope::{rope_table_row, RopeParams};
use crate::plan::{StateInit, StateSlot};

/// ds4's NEG_INF sentinel (a large finite number, not IEEE infinity).
pub const NEG_INF: f32 = -1e30;

/// The state buffers of one session.
pub struct SessionState {
    pub bufs: Vec<Vec<f32>>,
    pub rows: Vec<usize>,
    pub ctx: usize,
}

impl SessionState {
    /// Allocates and initialises every slot for a context of `ctx` tokens; fails
    /// (instead of aborting) when the memory cannot be had.
    pub fn new(slots: &[StateSlot], ctx: usize) -> Result<Self, String> {
        let mut bufs = Vec::with_capacity(slots.len());
        let mut rows = Vec::with_capacity(slots.len());
        for s in slots {
            let n = s.rows.at(ctx);
            rows.push(n);
            let len = n.checked_mul(s.width).ok_or("state size overflows")?;
            let mut v: Vec<f32> = Vec::new();
            v.try_reserve_exact(len).map_err(|_| {
                format!(
                    "cannot allocate {:.2} GiB of session state for a context of {ctx} tokens; lower -c/--ctx",
                    Self::bytes_at(slots, ctx) as f64 / (1u64 << 30) as f64
                )
            })?;
            v.resize(len, 0.0);
            bufs.push(v);
        }
        let mut st = SessionState { bufs, rows, ctx };
        st.reset(slots);
        Ok(st)
    }

    /// Bytes the state of `slots` takes at `ctx`.
    pub fn bytes_at(slots: &[StateSlot], ctx: usize) -> u64 {
        slots
            .iter()
            .map(|s| (s.rows.at(ctx) as u64).saturating_mul(s.width as u64 * 4))
            .sum()
    }

    /// Returns every slot to its initial content (a new conversation).
    pub fn reset(&mut self, slots: &[StateSlot]) {
        for (i, s) in slots.iter().enumerate() {
            let buf = &mut self.bufs[i];
            match s.init {
                StateInit::Zero => buf.fill(0.0),
                StateInit::NegInf => buf.fill(NEG_INF),
                StateInit::Rope {
                    base,
                    freq_scale,
                    ext_factor,
                    corr_lo,
                    corr_hi,
                } => {
                    let p = RopeParams {
                        base: base as f32,
                        freq_scale: freq_scale as f32,
                        ext_factor: ext_factor as f32,
                        corr_lo: corr_lo as f32,
                        corr_hi: corr_hi as f32,
                        n_rot: s.width,
                    };
                    for (pos, row) in buf.chunks_exact_mut(s.width).enumerate() {
                        rope_table_row(&p, pos, row);
                    }
                }
            }
        }
    }
}
