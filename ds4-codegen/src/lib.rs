//! The DS4 graph compiler: from `graphs/ds4_flash.ron` to static plans.
//!
//! Passes, each a function with its own tests (DESIGN.md §4):
//! 1. expand and 2. infer ([`ds4_ir::expand`]): layers from the profile's data,
//!    symbols resolved, dtypes and widths from the op catalog;
//! 3. [`fuse::fuse`]: the RON's fusion rules;
//! 4. [`place::place`]: devices, expert shards, explicit copies;
//! 5. [`schedule::schedule`]: one linear order per phase;
//! 6. [`buffers::plan_buffers`]: liveness and greedy-by-size arenas;
//! 7. emit: [`emit_rust`] (quote + prettyplease), [`summary`] (plan summary JSON)
//!    and DOT; for the device library, [`abi::library`] lists the kernels the plans
//!    use and [`emit_cpp`] writes their AscendC entries and launch wrappers (run by
//!    `ds4-runtime`'s build script, which compiles them).
//!
//! [`compile`] runs them for every profile, device count, fusion setting and
//! phase and checks each plan set against its profile's memory budget;
//! [`emit`] turns the result into files. Everything is deterministic: the same
//! RON gives the same bytes.

pub mod abi;
pub mod buffers;
pub mod emit_cpp;
pub mod emit_rust;
pub mod fuse;
pub mod lower;
pub mod place;
pub mod schedule;
pub mod slots;
pub mod summary;

use ds4_ir::expand::{expand, infer};
use ds4_ir::schema::PhaseTag;
use ds4_ir::{IrError, Module};
use lower::PlanStep;
use slots::Slots;
use std::collections::BTreeMap;

/// Compiler options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Fusion rules to turn off (by rule name).
    pub disabled_fusions: Vec<String>,
    /// Profiles to compile (all when empty).
    pub profiles: Vec<String>,
    /// Profiles for which no unfused plans are built.
    pub fused_only: Vec<String>,
}

/// One compiled phase.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub phase: PhaseTag,
    pub steps: Vec<PlanStep>,
    /// Primitive ops before fusion (one device, no copies).
    pub ops_unfused: usize,
    /// Ops after fusion (one device, no copies).
    pub ops_fused: usize,
    /// Kernel launches per run.
    pub launches: usize,
    /// Launches per layer (index = layer).
    pub launches_per_layer: Vec<usize>,
    pub arena_bytes: Vec<usize>,
    pub lower_bound: Vec<usize>,
    pub no_reuse: Vec<usize>,
    /// Copies per run and the bytes they move (full-size rows).
    pub transfers: usize,
    pub transfer_bytes: usize,
    /// DOT of the placed graph.
    pub dot: String,
    /// The buffer holding the run's result (the logits).
    pub logits: Option<lower::BufDesc>,
}

/// One (profile, devices, fused) combination.
#[derive(Debug, Clone)]
pub struct PlanSetResult {
    pub profile: usize,
    pub name: String,
    pub devices: u8,
    pub fused: bool,
    pub slots: Slots,
    pub decode: PhaseResult,
    pub prefill: PhaseResult,
}

impl PlanSetResult {
    /// The identifier prefix of this plan set, e.g. `tiny_d2_fused`.
    pub fn ident(&self) -> String {
        let f = if self.fused { "fused" } else { "unfused" };
        format!("{}_d{}_{f}", self.name, self.devices)
    }
}

/// Everything [`compile`] produced.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub module: Module,
    pub sets: Vec<PlanSetResult>,
}

/// Compile a graph file's text (`file` names it in errors).
pub fn compile(file: &str, text: &str, opts: &Options) -> Result<Compiled, IrError> {
    let mut module = ds4_ir::parse(file, text)?;
    for f in module.graph.fusions.iter_mut() {
        if opts.disabled_fusions.contains(&f.name) {
            f.enabled = false;
        }
    }
    let m = &module;
    let mut sets = Vec::new();
    for (pi, prof) in m.graph.profiles.iter().enumerate() {
        if !opts.profiles.is_empty() && !opts.profiles.contains(&prof.name) {
            continue;
        }
        let mut typed = Vec::new();
        for phase in [PhaseTag::Decode, PhaseTag::Prefill] {
            let mut g = expand(m, pi, phase)?;
            infer(&mut g, &m.src)?;
            typed.push(g);
        }
        let fusings: &[bool] = if opts.fused_only.contains(&prof.name) {
            &[true]
        } else {
            &[true, false]
        };
        for &devices in &prof.devices {
            for &fused in fusings {
                let mut slots = Slots::default();
                let decode = compile_phase(m, pi, &typed[0], devices, fused, &mut slots)?;
                let prefill = compile_phase(m, pi, &typed[1], devices, fused, &mut slots)?;
                let set = PlanSetResult {
                    profile: pi,
                    name: prof.name.clone(),
                    devices,
                    fused,
                    slots,
                    decode,
                    prefill,
                };
                check_budget(m, &set)?;
                sets.push(set);
            }
        }
    }
    Ok(Compiled { module, sets })
}

fn compile_phase(
    m: &Module,
    pi: usize,
    typed: &ds4_ir::Expanded,
    devices: u8,
    fused: bool,
    slots: &mut Slots,
) -> Result<PhaseResult, IrError> {
    let mut g = typed.clone();
    let ops_unfused = g.ops.len();
    let rules: Vec<_> = m.graph.fusions.iter().filter(|_| fused).cloned().collect();
    fuse::fuse(&mut g, &rules);
    let ops_fused = g.ops.len();

    let placed = place::place(m, pi, g, devices)?;
    let steps = schedule::schedule(&placed);
    let arena = buffers::plan_buffers(&placed, &steps);
    let plan = lower::lower(&placed, &steps, &arena, slots);

    let n_layer = m.graph.profiles[pi].compress_ratios.len();
    let mut per_layer = vec![0usize; n_layer];
    let (mut launches, mut transfers, mut transfer_bytes) = (0, 0, 0);
    for s in &plan {
        match s {
            PlanStep::Launch(l) => {
                launches += 1;
                if let Some(il) = l.layer {
                    per_layer[il as usize] += 1;
                }
            }
            PlanStep::Copy { bytes, .. } => {
                transfers += 1;
                transfer_bytes += bytes;
            }
            _ => {}
        }
    }
    let logits = placed.g.outputs.first().map(|&v| {
        let val = &placed.g.values[v];
        lower::BufDesc {
            dev: placed.val_dev[v],
            offset: arena.offset[v].unwrap_or(0),
            row_bytes: val.ty.row_bytes(val.width),
            width: val.width,
            dtype: val.ty,
        }
    });
    let title = format!(
        "{} d{} {:?} {}",
        placed.g.profile,
        devices,
        placed.g.phase,
        if fused { "fused" } else { "unfused" }
    );
    let dot = placed.g.dot(&title, &|i| placed.op_dev[i], &|i| {
        placed.g.ops[i].kind == place::COPY
    });
    Ok(PhaseResult {
        phase: typed.phase,
        steps: plan,
        ops_unfused,
        ops_fused,
        launches,
        launches_per_layer: per_layer,
        arena_bytes: arena.bytes,
        lower_bound: arena.lower_bound,
        no_reuse: arena.no_reuse,
        transfers,
        transfer_bytes,
        dot,
        logits,
    })
}

/// Per-device totals (weights, state at `ctx`, arena = the larger phase) of a plan set.
pub fn device_totals(set: &PlanSetResult, ctx: usize) -> Vec<(u64, u64, u64)> {
    let w = set.slots.weight_bytes(set.devices);
    let s = set.slots.state_bytes(set.devices, ctx);
    (0..set.devices as usize)
        .map(|d| {
            let a = set.decode.arena_bytes[d].max(set.prefill.arena_bytes[d]) as u64;
            (w[d], s[d], a)
        })
        .collect()
}

fn check_budget(m: &Module, set: &PlanSetResult) -> Result<(), IrError> {
    let prof = &m.graph.profiles[set.profile];
    if prof.budget_gib <= 0.0
        || !(prof.budget_devices.is_empty() || prof.budget_devices.contains(&set.devices))
    {
        return Ok(());
    }
    let budget = (prof.budget_gib * (1u64 << 30) as f64) as u64;
    for (d, (w, s, a)) in device_totals(set, prof.budget_ctx).into_iter().enumerate() {
        if w + s + a > budget {
            let at = m.src.quoted_after(&prof.name, m.src.section("profiles"));
            return Err(m.src.err(
                at,
                format!(
                    "profile `{}` with {} device(s) needs {:.2} GiB on device {d} (weights {:.2}, state {:.2} at ctx {}, arena {:.2}), over its budget of {} GiB",
                    prof.name,
                    set.devices,
                    gib(w + s + a),
                    gib(w),
                    gib(s),
                    prof.budget_ctx,
                    gib(a),
                    prof.budget_gib
                ),
            ));
        }
    }
    Ok(())
}

/// Bytes as GiB.
pub fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

/// Generated files, by path relative to the output folder.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub files: BTreeMap<String, String>,
}

/// Emit every file of a compilation.
pub fn emit(c: &Compiled) -> Output {
    let mut files = BTreeMap::new();
    files.insert("plans.rs".to_string(), emit_rust::emit_plans(c));
    for set in &c.sets {
        files.insert(
            format!("summary/{}.json", set.ident()),
            summary::summary_json(c, set),
        );
    }
    Output { files }
}
