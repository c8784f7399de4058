//! Each pass of the compiler checked on its own invariants, on the shipped graph.

use ds4_codegen::abi::library;
use ds4_codegen::buffers::plan_buffers;
use ds4_codegen::emit_cpp::emit_kernels;
use ds4_codegen::place::{place, COPY};
use ds4_codegen::schedule::{schedule, Step};
use ds4_codegen::{compile, emit, fuse, Options};
use ds4_ir::expand::{expand, infer};
use ds4_ir::schema::PhaseTag;
use ds4_ir::{Expanded, Module};

const GRAPH: &str = include_str!("../../graphs/ds4_flash.ron");

fn typed(profile: &str, phase: PhaseTag, fused: bool) -> (Module, usize, Expanded) {
    let m = ds4_ir::parse("ds4_flash.ron", GRAPH).unwrap_or_else(|e| panic!("{e}"));
    let p = m
        .profile(profile)
        .unwrap_or_else(|| panic!("no profile {profile}"));
    let mut g = expand(&m, p, phase).unwrap_or_else(|e| panic!("{e}"));
    infer(&mut g, &m.src).unwrap_or_else(|e| panic!("{e}"));
    if fused {
        fuse::fuse(&mut g, &m.graph.fusions);
    }
    (m, p, g)
}

#[test]
fn place_shards_experts_and_keeps_operands_local() {
    for fused in [true, false] {
        let (m, p, g) = typed("tiny", PhaseTag::Decode, fused);
        let placed = place(&m, p, g, 2).unwrap_or_else(|e| panic!("{e}"));
        let mut ranges = Vec::new();
        for (i, op) in placed.g.ops.iter().enumerate() {
            if op.kind == COPY {
                let src = op.value_inputs().next().expect("copy has a source");
                assert_ne!(
                    placed.val_dev[src], placed.op_dev[i],
                    "a copy crosses devices"
                );
                continue;
            }
            for v in op.value_inputs() {
                assert_eq!(
                    placed.val_dev[v], placed.op_dev[i],
                    "{} reads a value of another device",
                    op.kind
                );
            }
            if op.kind == "moe_down" || op.kind == "moe_routed" {
                ranges.push((placed.op_dev[i], op.attr("e0"), op.attr("e1")));
            }
        }
        // Six layers, two shards each: device 0 holds experts [0, 8), device 1 [8, 16).
        assert_eq!(ranges.len(), 12);
        for (d, e0, e1) in ranges {
            let want = if d == 0 { (0.0, 8.0) } else { (8.0, 16.0) };
            assert_eq!((e0.unwrap_or(-1.0), e1.unwrap_or(-1.0)), want);
        }
    }
}

#[test]
fn schedule_syncs_before_every_copy() {
    let (m, p, g) = typed("flash4", PhaseTag::Prefill, true);
    let placed = place(&m, p, g, 2).unwrap_or_else(|e| panic!("{e}"));
    let steps = schedule(&placed);
    let mut pending = [false; 2];
    for s in &steps {
        match *s {
            Step::Launch(i) => pending[placed.op_dev[i] as usize] = true,
            Step::Sync(d) => pending[d as usize] = false,
            Step::Copy(i) => {
                let src = placed.g.ops[i].value_inputs().next().expect("source");
                assert!(
                    !pending[placed.val_dev[src] as usize],
                    "copy without a sync of its source device"
                );
            }
            Step::Stage(_) => {}
        }
    }
}

#[test]
fn buffers_never_overlap_while_live_and_stay_near_the_bound() {
    for profile in ["tiny", "flash4"] {
        for phase in [PhaseTag::Decode, PhaseTag::Prefill] {
            let (m, p, g) = typed(profile, phase, true);
            let placed = place(&m, p, g, 2).unwrap_or_else(|e| panic!("{e}"));
            let steps = schedule(&placed);
            let a = plan_buffers(&placed, &steps);
            let live: Vec<usize> = (0..placed.g.values.len())
                .filter(|&v| a.live[v].is_some())
                .collect();
            for (i, &x) in live.iter().enumerate() {
                for &y in &live[i + 1..] {
                    if placed.val_dev[x] != placed.val_dev[y] {
                        continue;
                    }
                    let ((x0, x1), (y0, y1)) =
                        (a.live[x].unwrap_or_default(), a.live[y].unwrap_or_default());
                    let (ox, oy) = (a.offset[x].unwrap_or(0), a.offset[y].unwrap_or(0));
                    let time = x0 <= y1 && y0 <= x1;
                    let space = ox < oy + a.size[y] && oy < ox + a.size[x];
                    assert!(!(time && space), "{profile}: values {x} and {y} overlap");
                }
            }
            for d in 0..2 {
                assert!(a.bytes[d] as f64 <= 1.10 * a.lower_bound[d] as f64);
                assert!(a.lower_bound[d] <= a.no_reuse[d]);
            }
        }
    }
}

#[test]
fn emission_is_deterministic_and_fast() {
    let t = std::time::Instant::now();
    let a = compile("ds4_flash.ron", GRAPH, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let compiled = t.elapsed();
    let fa = emit(&a);
    let elapsed = t.elapsed();
    eprintln!("codegen (compile + emit, all profiles): {elapsed:?} (compile {compiled:?})");
    let b = compile("ds4_flash.ron", GRAPH, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let fb = emit(&b);
    assert_eq!(fa.files, fb.files);
    assert!(fa.files.contains_key("plans.rs"));
    let (la, lb) = (library(&a).unwrap(), library(&b).unwrap());
    assert_eq!(emit_kernels(&la), emit_kernels(&lb));
}

/// The device library has one kernel per primitive and per fused part sequence of the
/// plans; a fused kernel takes the barrier workspace and then its parts' parameters.
#[test]
fn kernel_library_covers_every_launch_of_every_plan() {
    use ds4_codegen::abi::{primitive, Param, PRIMITIVES};
    use ds4_codegen::lower::PlanStep;
    let c = compile("ds4_flash.ron", GRAPH, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let lib = library(&c).unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<&str> = lib.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), lib.len(), "kernel names are unique");
    assert_eq!(
        lib.iter().filter(|k| k.parts.is_empty()).count(),
        PRIMITIVES.len()
    );
    // `router` has two part sequences (learned top-k, hash routing).
    assert_eq!(lib.iter().filter(|k| k.op == "router").count(), 2);

    for set in &c.sets {
        for phase in [&set.decode, &set.prefill] {
            for s in &phase.steps {
                let PlanStep::Launch(l) = s else { continue };
                let parts: Vec<&str> = l.parts.iter().map(|p| p.kernel.as_str()).collect();
                let k = lib
                    .iter()
                    .find(|k| {
                        k.op == l.kernel && k.parts.iter().map(|p| p.op).eq(parts.iter().copied())
                    })
                    .unwrap_or_else(|| panic!("no kernel for {} {parts:?}", l.kernel));
                let params = k.params();
                if parts.is_empty() {
                    assert_eq!(params, primitive(&l.kernel).unwrap().params);
                } else {
                    assert_eq!(params[0], Param::Out("sync_ws"));
                    let n: usize = k.parts.iter().map(|p| p.params.len()).sum();
                    assert_eq!(params.len(), 1 + n, "{}", k.name);
                }
            }
        }
    }
}

/// The generated AscendC units: a primitive's entry forwards to its body, a fused kernel's
/// runs its parts with a barrier between them; the wrappers unpack the argument slots.
#[test]
fn kernel_units_snapshot() {
    let c = compile("ds4_flash.ron", GRAPH, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let units = emit_kernels(&library(&c).unwrap_or_else(|e| panic!("{e}")));
    let names: Vec<&str> = units.iter().map(|(n, _)| n.as_str()).collect();
    insta::assert_snapshot!("kernel_unit_names", names.join("\n"));
    for name in ["rms_norm.cpp", "q8_matvec.cpp"] {
        let (_, text) = units.iter().find(|(n, _)| n == name).expect("unit");
        insta::assert_snapshot!(name.replace(".cpp", "_unit"), text);
    }
}
