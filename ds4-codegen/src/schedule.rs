//! The schedule pass: one linear sequence of steps per phase.
//!
//! The placed op list is already a topological order (written order, with the
//! remote expert shards ahead of the local one and each copy right before its
//! first consumer). Scheduling turns it into the steps the plan function makes:
//! a launch per op, a `sync` of the source device before each group of copies
//! from it (only when the source device launched something since its last sync),
//! the copy itself followed by a `sync` of the destination device (a device
//! backend queues the copy on the destination and the source may reuse the buffer
//! only once it is done), and a stage tap after the launch that writes a staged
//! value.

use crate::place::{Placed, COPY};
use ds4_ir::expanded::ValueId;

/// One step of a plan function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Launch op `i` of the placed graph.
    Launch(usize),
    /// The host waits for a device.
    Sync(u8),
    /// Copy op `i` (one value to another device).
    Copy(usize),
    /// Dump a staged value.
    Stage(ValueId),
}

/// Linearise a placed graph.
pub fn schedule(p: &Placed) -> Vec<Step> {
    let mut steps = Vec::with_capacity(p.g.ops.len() * 2);
    let mut dirty = vec![false; p.devices as usize];
    for (i, op) in p.g.ops.iter().enumerate() {
        if op.kind == COPY {
            let src = op.value_inputs().next().map(|v| p.val_dev[v]).unwrap_or(0);
            if dirty[src as usize] {
                steps.push(Step::Sync(src));
                dirty[src as usize] = false;
            }
            steps.push(Step::Copy(i));
            // The copy runs on the destination's queue; the host waits for it so that
            // the source device may overwrite the buffer afterwards.
            let dst = p.op_dev[i];
            steps.push(Step::Sync(dst));
            dirty[dst as usize] = false;
            continue;
        }
        steps.push(Step::Launch(i));
        dirty[p.op_dev[i] as usize] = true;
        for &v in &op.outputs {
            if p.g.values[v].stage.is_some() {
                steps.push(Step::Stage(v));
            }
        }
    }
    steps
}
