//! The place pass: devices for ops, values, weights and state; expert sharding;
//! explicit transfers.
//!
//! Each op runs on its block's device (the RON's `device` expression: embedding on
//! 0, layer `il` on `(il + 1) % devices`, the head after the last layer). With
//! more than one device the routed-expert region of a layer (the ops from the first
//! to the last one reading an `experts` weight: `moe_gate_up` .. `moe_down`, or the
//! fused `moe_routed`) is cloned once per device with the expert range `[e0, e1)`
//! of that device's shard, the remote clones first so the devices overlap; the
//! partial results are summed by `add` ops on the layer's device into the original
//! value. Then every use of a value on a device other than its producer's gets a
//! `copy` op (one per value and device, right before the first such use).
//! Weights and state become slots keyed by (tensor, device): a shared RoPE table
//! used on both devices has one slot per device; an expert tensor has one shard
//! slot per device.

use ds4_ir::expand::{layer_env, profile_env};
use ds4_ir::expanded::{Expanded, Op, Ref, Value, ValueId};
use ds4_ir::expr;
use ds4_ir::{IrError, Module};
use std::collections::HashMap;

/// The graph after placement.
#[derive(Debug, Clone)]
pub struct Placed {
    pub g: Expanded,
    pub devices: u8,
    /// Device of each op (index of `g.ops`); `copy` ops: the destination.
    pub op_dev: Vec<u8>,
    /// Device of each value.
    pub val_dev: Vec<u8>,
}

/// The kind name of inserted transfers.
pub const COPY: &str = "copy";

/// Assign devices, shard the experts and insert copies.
pub fn place(m: &Module, profile: usize, mut g: Expanded, devices: u8) -> Result<Placed, IrError> {
    let base = profile_env(m, profile);
    let mut op_dev = Vec::with_capacity(g.ops.len());
    for op in &g.ops {
        let mut env = base.clone();
        env.insert("devices".into(), devices as f64);
        if let Some(l) = op.layer {
            layer_env(m, profile, l as usize, &mut env);
        }
        let block = &m.graph.blocks[op.block];
        let d = expr::eval_int(&block.device, &env).map_err(|e| {
            let at = m.src.quoted_after(&block.device, m.src.block(op.block));
            m.src
                .err(at, format!("device of block `{}`: {e}", block.name))
        })?;
        if d < 0 || d >= devices as i64 {
            return Err(m.src.err(
                m.src.block(op.block),
                format!("device {d} out of range for {devices} devices"),
            ));
        }
        op_dev.push(d as u8);
    }

    if devices > 1 {
        shard_experts(m, &mut g, &mut op_dev, devices)?;
    }

    let mut val_dev = vec![0u8; g.values.len()];
    for (op, &d) in g.ops.iter().zip(&op_dev) {
        for_each_output(op, &mut |v| val_dev[v] = d);
    }
    let mut p = Placed {
        g,
        devices,
        op_dev,
        val_dev,
    };
    insert_copies(&mut p);
    Ok(p)
}

fn for_each_output(op: &Op, f: &mut dyn FnMut(ValueId)) {
    for &v in &op.outputs {
        f(v);
    }
    for part in &op.parts {
        for_each_output(part, f);
    }
}

fn reads_experts(g: &Expanded, op: &Op) -> bool {
    op.inputs
        .iter()
        .any(|r| matches!(r, Ref::Weight(w) if g.weights[*w].experts))
        || op.parts.iter().any(|p| reads_experts(g, p))
}

/// The expert id range device `d` of `devices` holds out of `ne` experts.
pub fn shard_range(ne: u32, d: u8, devices: u8) -> (u32, u32) {
    let per = ne.div_ceil(devices as u32);
    let e0 = (per * d as u32).min(ne);
    (e0, (e0 + per).min(ne))
}

fn shard_experts(
    m: &Module,
    g: &mut Expanded,
    op_dev: &mut Vec<u8>,
    devices: u8,
) -> Result<(), IrError> {
    let ops = std::mem::take(&mut g.ops);
    let old_dev = std::mem::take(op_dev);
    let mut i = 0;
    while i < ops.len() {
        if !reads_experts(g, &ops[i]) {
            g.ops.push(ops[i].clone());
            op_dev.push(old_dev[i]);
            i += 1;
            continue;
        }
        let layer = ops[i].layer;
        let mut end = i + 1;
        for j in i + 1..ops.len() {
            if ops[j].layer != layer || ops[j].block != ops[i].block {
                break;
            }
            if reads_experts(g, &ops[j]) {
                end = j + 1;
            }
        }
        let region = &ops[i..end];
        let home = old_dev[i];

        let produced: Vec<ValueId> = region.iter().flat_map(all_outputs).collect();
        let used_after: Vec<ValueId> = produced
            .iter()
            .copied()
            .filter(|v| ops[end..].iter().any(|o| uses(o, *v)) || g.outputs.contains(v))
            .collect();
        let [result] = used_after.as_slice() else {
            let at = m.src.op(region[0].block, region[0].op_index);
            return Err(m.src.err(
                at,
                "an expert region must produce exactly one value used after it",
            ));
        };
        let ne = g.weights[region
            .iter()
            .flat_map(|o| expert_weights(g, o))
            .next()
            .unwrap_or(0)]
        .dims
        .last()
        .copied()
        .unwrap_or(0) as u32;

        let order: Vec<u8> = (0..devices)
            .filter(|&d| d != home)
            .chain(std::iter::once(home))
            .collect();
        let mut partials = Vec::new();
        for d in order {
            let (e0, e1) = shard_range(ne, d, devices);
            let mut rename: HashMap<ValueId, ValueId> = HashMap::new();
            for &v in &produced {
                let mut val: Value = g.values[v].clone();
                val.name = if v == *result {
                    format!("{}.part{d}", val.name)
                } else {
                    format!("{}@{d}", val.name)
                };
                val.stage = None;
                rename.insert(v, g.values.len());
                g.values.push(val);
            }
            for op in region {
                let mut c = op.clone();
                rewrite(&mut c, &rename, e0, e1);
                g.ops.push(c);
                op_dev.push(d);
            }
            partials.push((d, rename[result]));
        }
        // Sum the partials on the layer's device into the original value.
        let last = &region[region.len() - 1];
        let mut acc = partials[partials.len() - 1].1;
        for (k, &(_, part)) in partials.iter().rev().skip(1).enumerate() {
            let is_last = k + 2 == partials.len();
            let out = if is_last {
                *result
            } else {
                let mut val = g.values[*result].clone();
                val.name = format!("{}.sum{k}", val.name);
                val.stage = None;
                g.values.push(val);
                g.values.len() - 1
            };
            g.ops.push(Op {
                kind: "add".into(),
                block: last.block,
                op_index: last.op_index,
                layer,
                inputs: vec![Ref::Value(acc), Ref::Value(part)],
                outputs: vec![out],
                attrs: vec![],
                loc: last.loc,
                parts: vec![],
            });
            op_dev.push(home);
            acc = out;
        }
        i = end;
    }
    Ok(())
}

fn all_outputs(op: &Op) -> Vec<ValueId> {
    let mut v = Vec::new();
    for_each_output(op, &mut |x| {
        if !v.contains(&x) {
            v.push(x)
        }
    });
    v
}

fn uses(op: &Op, v: ValueId) -> bool {
    op.value_inputs().any(|x| x == v) || op.parts.iter().any(|p| uses(p, v))
}

fn expert_weights<'a>(g: &'a Expanded, op: &'a Op) -> Vec<usize> {
    let mut w: Vec<usize> = op
        .inputs
        .iter()
        .filter_map(|r| match r {
            Ref::Weight(w) if g.weights[*w].experts => Some(*w),
            _ => None,
        })
        .collect();
    for p in &op.parts {
        w.extend(expert_weights(g, p));
    }
    w
}

fn rewrite(op: &mut Op, rename: &HashMap<ValueId, ValueId>, e0: u32, e1: u32) {
    for r in op.inputs.iter_mut() {
        if let Ref::Value(v) = r {
            if let Some(&n) = rename.get(v) {
                *v = n;
            }
        }
    }
    for v in op.outputs.iter_mut() {
        if let Some(&n) = rename.get(v) {
            *v = n;
        }
    }
    if op.attr("e0").is_some() || op.parts.iter().any(|p| p.attr("e0").is_some()) {
        op.set_attr("e0", e0 as f64);
        op.set_attr("e1", e1 as f64);
    }
    for p in op.parts.iter_mut() {
        rewrite(p, rename, e0, e1);
    }
}

/// Insert a `copy` op before the first use of a value on another device.
fn insert_copies(p: &mut Placed) {
    let ops = std::mem::take(&mut p.g.ops);
    let devs = std::mem::take(&mut p.op_dev);
    let mut avail: HashMap<(ValueId, u8), ValueId> = HashMap::new();
    for (mut op, d) in ops.into_iter().zip(devs) {
        let mut rename: HashMap<ValueId, ValueId> = HashMap::new();
        let mut inputs: Vec<ValueId> = op.value_inputs().collect();
        collect_part_inputs(&op, &mut inputs);
        for v in inputs {
            if p.val_dev[v] == d || rename.contains_key(&v) {
                continue;
            }
            let c = match avail.get(&(v, d)) {
                Some(&c) => c,
                None => {
                    let mut val = p.g.values[v].clone();
                    val.name = format!("{}@dev{d}", val.name);
                    val.stage = None;
                    p.g.values.push(val);
                    p.val_dev.push(d);
                    let c = p.g.values.len() - 1;
                    p.g.ops.push(Op {
                        kind: COPY.into(),
                        block: op.block,
                        op_index: op.op_index,
                        layer: op.layer,
                        inputs: vec![Ref::Value(v)],
                        outputs: vec![c],
                        attrs: vec![],
                        loc: op.loc,
                        parts: vec![],
                    });
                    p.op_dev.push(d);
                    avail.insert((v, d), c);
                    c
                }
            };
            rename.insert(v, c);
        }
        rename_inputs(&mut op, &rename);
        p.g.ops.push(op);
        p.op_dev.push(d);
    }
}

fn collect_part_inputs(op: &Op, out: &mut Vec<ValueId>) {
    for part in &op.parts {
        out.extend(part.value_inputs());
        collect_part_inputs(part, out);
    }
}

fn rename_inputs(op: &mut Op, rename: &HashMap<ValueId, ValueId>) {
    for r in op.inputs.iter_mut() {
        if let Ref::Value(v) = r {
            if let Some(&n) = rename.get(v) {
                *v = n;
            }
        }
    }
    for p in op.parts.iter_mut() {
        rename_inputs(p, rename);
    }
}
