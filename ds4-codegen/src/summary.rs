//! The machine-readable plan summary (JSON; field names in docs/PLAN_JSON.md).
//!
//! One object per plan set. Keys are sorted (serde_json's map), numbers are
//! integers, so the text is deterministic and snapshot-friendly.

use crate::lower::PlanStep;
use crate::{device_totals, Compiled, PhaseResult, PlanSetResult};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn phase_json(p: &PhaseResult) -> Value {
    json!({
        "ops_unfused": p.ops_unfused,
        "ops_fused": p.ops_fused,
        "launches": p.launches,
        "launches_per_layer": p.launches_per_layer,
        "arena_bytes": p.arena_bytes,
        "max_live_bytes": p.lower_bound,
        "no_reuse_bytes": p.no_reuse,
        "transfers": p.transfers,
        "transfer_bytes": p.transfer_bytes,
    })
}

/// Kernel names a plan set launches (fused kernels and their parts), sorted.
pub fn kernels_used(set: &PlanSetResult) -> BTreeSet<String> {
    let mut k = BTreeSet::new();
    for phase in [&set.decode, &set.prefill] {
        for s in &phase.steps {
            if let PlanStep::Launch(l) = s {
                k.insert(l.kernel.clone());
                for p in &l.parts {
                    k.insert(p.kernel.clone());
                }
            }
        }
    }
    k
}

/// The summary object of a plan set.
pub fn summary_value(c: &Compiled, set: &PlanSetResult) -> Value {
    let prof = &c.module.graph.profiles[set.profile];
    let budget = (prof.budget_gib * (1u64 << 30) as f64) as u64;
    let ctx = prof.budget_ctx;
    let totals = device_totals(set, ctx);
    let applies = prof.budget_gib > 0.0
        && (prof.budget_devices.is_empty() || prof.budget_devices.contains(&set.devices));
    json!({
        "profile": prof.name,
        "devices": set.devices,
        "fused": set.fused,
        "layers": prof.compress_ratios.len(),
        "chunk": prof.chunk,
        "budget_bytes": if applies { budget } else { 0 },
        "budget_ctx": ctx,
        "weight_slots": set.slots.weights.len(),
        "state_slots": set.slots.states.len(),
        "weight_bytes": totals.iter().map(|t| t.0).collect::<Vec<_>>(),
        "state_bytes_at_budget_ctx": totals.iter().map(|t| t.1).collect::<Vec<_>>(),
        "arena_bytes": totals.iter().map(|t| t.2).collect::<Vec<_>>(),
        "total_bytes_at_budget_ctx": totals.iter().map(|t| t.0 + t.1 + t.2).collect::<Vec<_>>(),
        "kernels": kernels_used(set),
        "decode": phase_json(&set.decode),
        "prefill": phase_json(&set.prefill),
    })
}

/// The summary as pretty JSON text.
pub fn summary_json(c: &Compiled, set: &PlanSetResult) -> String {
    let mut s = serde_json::to_string_pretty(&summary_value(c, set)).unwrap_or_default();
    s.push('\n');
    s
}
