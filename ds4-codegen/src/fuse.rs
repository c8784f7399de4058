//! The fuse pass: replace runs of primitives by the fused kernels of the RON rules.
//!
//! A rule matches a contiguous run of ops of one block instance (same block and
//! layer), in written order, whose kinds equal its pattern, and where every op
//! after the first is connected to the run: it consumes a value produced inside
//! the run, or shares an activation input with an earlier op of the run (the
//! `compressor` rule: its two projections read the same `attn_norm`). At each
//! position the longest matching rule wins (ties: RON order). The fused op keeps
//! its primitives as `parts`; its inputs are the run's external operands in first
//! use order, its outputs every value of the run used outside it, returned by the
//! graph, or tagged as a stage. Values internal to the run stay in the graph (the
//! parts need arena space for them).

use ds4_ir::expanded::{Expanded, Op, Ref, ValueId};
use ds4_ir::schema::Fusion;
use std::collections::HashSet;

/// Apply the enabled rules of `rules`; returns the number of fused ops created.
pub fn fuse(g: &mut Expanded, rules: &[Fusion]) -> usize {
    let mut order: Vec<&Fusion> = rules.iter().filter(|r| r.enabled).collect();
    order.sort_by_key(|r| std::cmp::Reverse(r.pattern.len()));

    let used_by = consumers(g);
    let outputs: HashSet<ValueId> = g.outputs.iter().copied().collect();
    let ops = std::mem::take(&mut g.ops);
    let mut out = Vec::with_capacity(ops.len());
    let mut fused = 0;
    let mut i = 0;
    while i < ops.len() {
        let hit = order.iter().find(|r| matches(&ops, i, r));
        match hit {
            Some(rule) => {
                let n = rule.pattern.len();
                let run = &ops[i..i + n];
                out.push(fuse_run(g, run, i, &rule.kernel, &used_by, &outputs));
                fused += 1;
                i += n;
            }
            None => {
                out.push(ops[i].clone());
                i += 1;
            }
        }
    }
    g.ops = out;
    fused
}

/// For each value, the indices of the ops that consume it.
fn consumers(g: &Expanded) -> Vec<Vec<usize>> {
    let mut used = vec![Vec::new(); g.values.len()];
    for (i, op) in g.ops.iter().enumerate() {
        for v in op.value_inputs() {
            used[v].push(i);
        }
    }
    used
}

fn matches(ops: &[Op], at: usize, rule: &Fusion) -> bool {
    let n = rule.pattern.len();
    if at + n > ops.len() {
        return false;
    }
    let run = &ops[at..at + n];
    let first = &run[0];
    let kinds_ok = run.iter().zip(&rule.pattern).all(|(op, pat)| {
        op.parts.is_empty()
            && op.block == first.block
            && op.layer == first.layer
            && pat.split('|').any(|k| k == op.kind)
    });
    if !kinds_ok {
        return false;
    }
    let mut produced: HashSet<ValueId> = HashSet::new();
    let mut read: HashSet<ValueId> = HashSet::new();
    for (j, op) in run.iter().enumerate() {
        if j > 0
            && !op
                .value_inputs()
                .any(|v| produced.contains(&v) || read.contains(&v))
        {
            return false;
        }
        produced.extend(op.outputs.iter().copied());
        read.extend(op.value_inputs());
    }
    true
}

fn fuse_run(
    g: &Expanded,
    run: &[Op],
    at: usize,
    kernel: &str,
    used_by: &[Vec<usize>],
    graph_outputs: &HashSet<ValueId>,
) -> Op {
    let produced: HashSet<ValueId> = run.iter().flat_map(|o| o.outputs.iter().copied()).collect();
    let end = at + run.len();

    let mut inputs: Vec<Ref> = Vec::new();
    for op in run {
        for r in &op.inputs {
            let internal = matches!(r, Ref::Value(v) if produced.contains(v));
            if !internal && !inputs.contains(r) {
                inputs.push(*r);
            }
        }
    }

    let mut outputs = Vec::new();
    for op in run {
        for &v in &op.outputs {
            let outside = used_by[v].iter().any(|&c| c < at || c >= end);
            if outside || graph_outputs.contains(&v) || g.values[v].stage.is_some() {
                outputs.push(v);
            }
        }
    }

    let mut attrs: Vec<(String, f64)> = Vec::new();
    for op in run {
        for (k, v) in &op.attrs {
            if !attrs.iter().any(|(n, _)| n == k) {
                attrs.push((k.clone(), *v));
            }
        }
    }
    attrs.sort_by(|a, b| a.0.cmp(&b.0));

    Op {
        kind: kernel.to_string(),
        block: run[0].block,
        op_index: run[0].op_index,
        layer: run[0].layer,
        inputs,
        outputs,
        attrs,
        loc: run[0].loc,
        parts: run.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: &str = include_str!("../../graphs/ds4_flash.ron");

    #[test]
    fn fuses_layer_and_keeps_stage_outputs() {
        let m = ds4_ir::parse("g.ron", GRAPH).expect("graph parses");
        let p = m.profile("tiny").expect("tiny");
        let mut g =
            ds4_ir::expand::expand(&m, p, ds4_ir::schema::PhaseTag::Prefill).expect("expand");
        ds4_ir::expand::infer(&mut g, &m.src).expect("infer");
        let before = g.ops.len();
        let n = fuse(&mut g, &m.graph.fusions);
        assert!(n > 0 && g.ops.len() < before);
        // Every stage-tagged value is still written by some op.
        let written: HashSet<ValueId> = g
            .ops
            .iter()
            .flat_map(|o| o.outputs.iter().copied())
            .collect();
        for (v, val) in g.values.iter().enumerate() {
            if val.stage.is_some() {
                assert!(written.contains(&v), "stage {} lost", val.name);
            }
        }
        let hc = g
            .ops
            .iter()
            .find(|o| o.kind == "hc_pre_norm")
            .expect("hc_pre_norm fused");
        assert_eq!(hc.parts.len(), 5);
        let comp = g.ops.iter().filter(|o| o.kind == "compressor").count();
        assert_eq!(
            comp,
            2 + 1 + 2 + 1,
            "tiny: two r4 layers x2, two r128 layers x1"
        );
    }
}
