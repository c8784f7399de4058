//! The expanded graph: one profile and phase, every layer instantiated.
//!
//! Built by [`crate::expand::expand`] and typed by [`crate::expand::infer`]. Ops
//! are in written order (blocks in order, layers in order, ops in block order),
//! which is a valid topological order: a value is always defined before use.
//! Values are single-assignment; weights and states are instances of the RON's
//! declarations with every symbol resolved. [`Expanded::petgraph`] gives the
//! dataflow as a petgraph and [`Expanded::dot`] as Graphviz text.

use crate::catalog::ActType;
use crate::error::Loc;
use crate::schema::{GgmlType, PhaseTag, StageFileKind};
use petgraph::graph::{DiGraph, NodeIndex};
use std::fmt::Write;

/// Index into [`Expanded::values`].
pub type ValueId = usize;

/// An op operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ref {
    Value(ValueId),
    /// Index into [`Expanded::weights`].
    Weight(usize),
    /// Index into [`Expanded::states`].
    State(usize),
    Tokens,
    Pos,
}

/// One op instance.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: String,
    /// Block index in the RON and the op's index inside it.
    pub block: usize,
    pub op_index: usize,
    pub layer: Option<u16>,
    pub inputs: Vec<Ref>,
    pub outputs: Vec<ValueId>,
    /// Attributes, sorted by name (ints are integral floats).
    pub attrs: Vec<(String, f64)>,
    pub loc: Loc,
    /// For fused ops: the primitives they replace (empty otherwise).
    pub parts: Vec<Op>,
}

impl Op {
    /// Attribute by name.
    pub fn attr(&self, name: &str) -> Option<f64> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Set (or add) an attribute, keeping them sorted.
    pub fn set_attr(&mut self, name: &str, v: f64) {
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some(a) => a.1 = v,
            None => {
                self.attrs.push((name.to_string(), v));
                self.attrs.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
    }

    /// Input values.
    pub fn value_inputs(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.inputs.iter().filter_map(|r| match r {
            Ref::Value(v) => Some(*v),
            _ => None,
        })
    }
}

/// A diagnostic tap on a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub layer: Option<u16>,
    pub file: StageFileKind,
}

/// One single-assignment value.
#[derive(Debug, Clone)]
pub struct Value {
    /// `l<layer>.<name>` inside layers, the plain name outside.
    pub name: String,
    pub layer: Option<u16>,
    pub ty: ActType,
    /// Values per token row (0 until inferred).
    pub width: usize,
    /// Holds one row (after `take_last`) rather than one per token.
    pub one_row: bool,
    pub stage: Option<Stage>,
}

/// A weight with its template resolved.
#[derive(Debug, Clone)]
pub struct WeightInst {
    pub decl: usize,
    pub gguf: String,
    pub ty: GgmlType,
    pub dims: Vec<i64>,
    pub layer: Option<u16>,
    pub optional: bool,
    pub experts: bool,
}

impl WeightInst {
    /// Bytes of the whole tensor.
    pub fn bytes(&self) -> u64 {
        self.ty.bytes(self.dims.iter().map(|&d| d as u64).product())
    }
}

/// State row counts, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowsInst {
    Fixed(usize),
    PerCtx { div: usize, add: usize },
}

/// State initial content, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitInst {
    Zero,
    NegInf,
    Rope {
        base: f64,
        freq_scale: f64,
        ext_factor: f64,
        corr_lo: f64,
        corr_hi: f64,
    },
}

/// A state tensor instance: per layer, or shared (`layer` = None).
#[derive(Debug, Clone)]
pub struct StateInst {
    pub name: String,
    pub layer: Option<u16>,
    pub width: usize,
    pub rows: RowsInst,
    pub init: InitInst,
}

/// The expanded graph of one profile and phase.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub profile: String,
    pub phase: PhaseTag,
    /// Token rows of a full-size run (1 in decode, `chunk` in prefill).
    pub rows: usize,
    pub ops: Vec<Op>,
    pub values: Vec<Value>,
    pub weights: Vec<WeightInst>,
    pub states: Vec<StateInst>,
    /// The values the run returns (the logits).
    pub outputs: Vec<ValueId>,
}

impl Expanded {
    /// The dataflow as a petgraph: one node per op, an edge per value use
    /// (weighted by the value id).
    pub fn petgraph(&self) -> DiGraph<String, ValueId> {
        let mut g = DiGraph::new();
        let nodes: Vec<NodeIndex> = self.ops.iter().map(|o| g.add_node(op_label(o))).collect();
        let mut producer = vec![None; self.values.len()];
        for (i, op) in self.ops.iter().enumerate() {
            for &v in &op.outputs {
                producer[v] = Some(i);
            }
        }
        for (i, op) in self.ops.iter().enumerate() {
            for v in op.value_inputs() {
                if let Some(p) = producer[v] {
                    g.add_edge(nodes[p], nodes[i], v);
                }
            }
        }
        g
    }

    /// Graphviz DOT: ops clustered by `cluster_of` (the device), value edges
    /// labelled by value name. Ops for which `is_transfer` holds (copies between
    /// devices) are drawn as bold red edges from the value's producer to its
    /// consumers on the other cluster rather than as nodes.
    pub fn dot(
        &self,
        title: &str,
        cluster_of: &dyn Fn(usize) -> u8,
        is_transfer: &dyn Fn(usize) -> bool,
    ) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "digraph \"{}\" {{", escape(title));
        let _ = writeln!(s, "  rankdir=TB;\n  node [shape=box, fontsize=10];");
        let nodes: Vec<usize> = (0..self.ops.len()).filter(|&i| !is_transfer(i)).collect();
        let mut clusters: Vec<u8> = nodes.iter().map(|&i| cluster_of(i)).collect();
        clusters.sort_unstable();
        clusters.dedup();
        for c in clusters {
            let _ = writeln!(s, "  subgraph cluster_dev{c} {{\n    label=\"device {c}\";");
            for &i in nodes.iter().filter(|&&i| cluster_of(i) == c) {
                let _ = writeln!(
                    s,
                    "    n{i} [label=\"{}\"];",
                    escape(&op_label(&self.ops[i]))
                );
            }
            let _ = writeln!(s, "  }}");
        }
        let mut producer = vec![None; self.values.len()];
        for (i, op) in self.ops.iter().enumerate() {
            for &v in &op.outputs {
                producer[v] = Some(i);
            }
        }
        // Follow transfers back to the op that produced the value.
        let source = |mut v: ValueId| -> Option<(usize, bool)> {
            let mut crossed = false;
            loop {
                let p = producer[v]?;
                if !is_transfer(p) {
                    return Some((p, crossed));
                }
                crossed = true;
                v = self.ops[p].value_inputs().next()?;
            }
        };
        for &i in &nodes {
            for v in self.ops[i].value_inputs() {
                if let Some((p, crossed)) = source(v) {
                    let name = escape(&self.values[v].name);
                    if crossed {
                        let _ = writeln!(
                            s,
                            "  n{p} -> n{i} [label=\"copy {name}\", style=bold, color=red];"
                        );
                    } else {
                        let _ = writeln!(s, "  n{p} -> n{i} [label=\"{name}\"];");
                    }
                }
            }
        }
        s.push_str("}\n");
        s
    }
}

fn op_label(op: &Op) -> String {
    match op.layer {
        Some(l) => format!("l{l} {}", op.kind),
        None => op.kind.clone(),
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
