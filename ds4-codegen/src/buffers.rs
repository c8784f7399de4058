//! The buffer planning pass: liveness over the schedule, then greedy-by-size
//! placement into one arena per device.
//!
//! Every value written by a step (a launch's outputs, the internal values of a
//! fused launch's parts, a copy's destination) gets a region of its device's arena
//! of `rows × row_bytes` bytes (rows: the phase's token rows, or 1 after
//! `take_last`), rounded up to [`ALIGN`]. A value is live from the step that
//! writes it to the last step that reads it (the end of the run for the graph's
//! outputs). Values are placed largest first, each at the lowest offset that does
//! not overlap a placed value whose live interval intersects its own. The report
//! compares the arena with the max-live lower bound (the largest total of values
//! live at one step) and with no reuse (the sum of all values).

use crate::place::{Placed, COPY};
use crate::schedule::Step;
use ds4_ir::expanded::{Op, ValueId};

/// Byte alignment of every buffer.
pub const ALIGN: usize = 64;

/// The arena layout of one phase.
#[derive(Debug, Clone)]
pub struct Arena {
    /// Offset of each value in its device's arena (None: never written).
    pub offset: Vec<Option<usize>>,
    /// Aligned bytes of each value.
    pub size: Vec<usize>,
    /// Live interval (first, last step) of each written value.
    pub live: Vec<Option<(usize, usize)>>,
    /// Arena bytes per device.
    pub bytes: Vec<usize>,
    /// Max-live lower bound per device.
    pub lower_bound: Vec<usize>,
    /// Bytes without any reuse per device.
    pub no_reuse: Vec<usize>,
}

/// Rows a value holds in a phase of `rows` token rows.
pub fn value_rows(p: &Placed, v: ValueId) -> usize {
    if p.g.values[v].one_row {
        1
    } else {
        p.g.rows
    }
}

fn all_reads(op: &Op, out: &mut Vec<ValueId>) {
    out.extend(op.value_inputs());
    for part in &op.parts {
        all_reads(part, out);
    }
}

fn all_writes(op: &Op, out: &mut Vec<ValueId>) {
    out.extend(op.outputs.iter().copied());
    for part in &op.parts {
        all_writes(part, out);
    }
}

/// Plan the arenas of a scheduled phase.
pub fn plan_buffers(p: &Placed, steps: &[Step]) -> Arena {
    let n = p.g.values.len();
    let mut live: Vec<Option<(usize, usize)>> = vec![None; n];
    let mut touch = |v: ValueId, s: usize, write: bool| match &mut live[v] {
        Some((_, last)) => *last = (*last).max(s),
        None if write => live[v] = Some((s, s)),
        None => {}
    };
    for (s, step) in steps.iter().enumerate() {
        match *step {
            Step::Launch(i) | Step::Copy(i) => {
                let op = &p.g.ops[i];
                let (mut w, mut r) = (Vec::new(), Vec::new());
                all_writes(op, &mut w);
                all_reads(op, &mut r);
                // Reads of values written inside the same fused launch count at this step.
                for v in w {
                    touch(v, s, true);
                }
                for v in r {
                    touch(v, s, false);
                }
                debug_assert!(op.kind != COPY || op.outputs.len() == 1);
            }
            Step::Stage(v) => touch(v, s, false),
            Step::Sync(_) => {}
        }
    }
    for &v in &p.g.outputs {
        if let Some((_, last)) = &mut live[v] {
            *last = steps.len();
        }
    }

    let size: Vec<usize> = (0..n)
        .map(|v| {
            let val = &p.g.values[v];
            (value_rows(p, v) * val.ty.row_bytes(val.width)).div_ceil(ALIGN) * ALIGN
        })
        .collect();

    let devs = p.devices as usize;
    let mut order: Vec<ValueId> = (0..n).filter(|&v| live[v].is_some()).collect();
    order.sort_by(|&a, &b| {
        size[b]
            .cmp(&size[a])
            .then(live[a].cmp(&live[b]))
            .then(a.cmp(&b))
    });

    let mut offset = vec![None; n];
    let mut placed: Vec<Vec<ValueId>> = vec![Vec::new(); devs];
    let mut bytes = vec![0usize; devs];
    for &v in &order {
        let d = p.val_dev[v] as usize;
        let (a0, a1) = live[v].unwrap_or((0, 0));
        let mut busy: Vec<(usize, usize)> = placed[d]
            .iter()
            .filter(|&&u| {
                let (b0, b1) = live[u].unwrap_or((0, 0));
                a0 <= b1 && b0 <= a1
            })
            .filter_map(|&u| offset[u].map(|o| (o, o + size[u])))
            .collect();
        busy.sort_unstable();
        let mut at = 0;
        for (s, e) in busy {
            if s >= at + size[v] {
                break;
            }
            at = at.max(e);
        }
        offset[v] = Some(at);
        bytes[d] = bytes[d].max(at + size[v]);
        placed[d].push(v);
    }

    let mut lower_bound = vec![0usize; devs];
    let mut no_reuse = vec![0usize; devs];
    let mut delta: Vec<Vec<i64>> = vec![vec![0; steps.len() + 2]; devs];
    for v in 0..n {
        if let Some((a, b)) = live[v] {
            let d = p.val_dev[v] as usize;
            no_reuse[d] += size[v];
            delta[d][a] += size[v] as i64;
            delta[d][b + 1] -= size[v] as i64;
        }
    }
    for d in 0..devs {
        let mut cur = 0i64;
        for x in &delta[d] {
            cur += x;
            lower_bound[d] = lower_bound[d].max(cur as usize);
        }
    }
    Arena {
        offset,
        size,
        live,
        bytes,
        lower_bound,
        no_reuse,
    }
}
