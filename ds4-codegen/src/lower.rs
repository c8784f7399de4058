//! Lowering: a scheduled, buffer-planned phase as the plan steps the emitters print.
//!
//! Each step mirrors one call of the generated function (`launch`, `sync`, `copy`,
//! `stage`) with every operand resolved: values to arena buffers, weights and
//! states to slots of the plan set. A launch's args are its inputs then its
//! outputs (docs/OPS.md order); a fused launch carries its parts, each lowered the
//! same way, so internal values have buffers too.

use crate::buffers::{value_rows, Arena};
use crate::place::Placed;
use crate::schedule::Step;
use crate::slots::Slots;
use ds4_ir::catalog::{attr_is_float, ActType};
use ds4_ir::expanded::{Op, Ref, ValueId};
use ds4_ir::schema::StageFileKind;

/// An arena region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufDesc {
    pub dev: u8,
    pub offset: usize,
    pub row_bytes: usize,
    pub width: usize,
    pub dtype: ActType,
}

/// A kernel argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgDesc {
    Buf(BufDesc),
    Weight(u32),
    State(u32),
    Tokens,
    Pos,
}

/// An attribute value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrDesc {
    Int(i64),
    Float(f64),
}

/// A kernel launch.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchDesc {
    pub kernel: String,
    pub device: u8,
    pub layer: Option<u16>,
    pub args: Vec<ArgDesc>,
    pub attrs: Vec<(String, AttrDesc)>,
    pub parts: Vec<LaunchDesc>,
    pub one_row: bool,
}

/// One call of a plan function.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanStep {
    Launch(LaunchDesc),
    Sync(u8),
    Copy {
        src: BufDesc,
        dst: BufDesc,
        one_row: bool,
        bytes: usize,
    },
    Stage {
        name: String,
        layer: Option<u16>,
        buf: BufDesc,
        one_row: bool,
        counter: bool,
    },
}

struct Lower<'a> {
    p: &'a Placed,
    arena: &'a Arena,
    slots: &'a mut Slots,
}

/// Lower a phase; new weight and state slots are added to `slots`.
pub fn lower(p: &Placed, steps: &[Step], arena: &Arena, slots: &mut Slots) -> Vec<PlanStep> {
    let mut l = Lower { p, arena, slots };
    steps
        .iter()
        .map(|s| match *s {
            Step::Launch(i) => PlanStep::Launch(l.launch(&p.g.ops[i], p.op_dev[i])),
            Step::Sync(d) => PlanStep::Sync(d),
            Step::Copy(i) => {
                let op = &p.g.ops[i];
                let src = op.value_inputs().next().unwrap_or(op.outputs[0]);
                let dst = op.outputs[0];
                let one_row = p.g.values[dst].one_row;
                let bytes = value_rows(p, dst) * l.buf(dst).row_bytes;
                PlanStep::Copy {
                    src: l.buf(src),
                    dst: l.buf(dst),
                    one_row,
                    bytes,
                }
            }
            Step::Stage(v) => {
                let st = p.g.values[v]
                    .stage
                    .clone()
                    .unwrap_or_else(|| ds4_ir::expanded::Stage {
                        name: p.g.values[v].name.clone(),
                        layer: None,
                        file: StageFileKind::PerPhase,
                    });
                PlanStep::Stage {
                    name: st.name,
                    layer: st.layer,
                    buf: l.buf(v),
                    one_row: p.g.values[v].one_row,
                    counter: st.file == StageFileKind::Counter,
                }
            }
        })
        .collect()
}

impl Lower<'_> {
    fn buf(&self, v: ValueId) -> BufDesc {
        let val = &self.p.g.values[v];
        BufDesc {
            dev: self.p.val_dev[v],
            offset: self.arena.offset[v].unwrap_or(0),
            row_bytes: val.ty.row_bytes(val.width),
            width: val.width,
            dtype: val.ty,
        }
    }

    fn launch(&mut self, op: &Op, dev: u8) -> LaunchDesc {
        let mut args = Vec::with_capacity(op.inputs.len() + op.outputs.len());
        for r in &op.inputs {
            args.push(match *r {
                Ref::Value(v) => ArgDesc::Buf(self.buf(v)),
                Ref::Weight(w) => {
                    ArgDesc::Weight(self.slots.weight(&self.p.g, w, dev, self.p.devices))
                }
                Ref::State(s) => ArgDesc::State(self.slots.state(&self.p.g, s, dev)),
                Ref::Tokens => ArgDesc::Tokens,
                Ref::Pos => ArgDesc::Pos,
            });
        }
        for &v in &op.outputs {
            args.push(ArgDesc::Buf(self.buf(v)));
        }
        let attrs = op
            .attrs
            .iter()
            .map(|(k, v)| {
                let a = if attr_is_float(k) {
                    AttrDesc::Float(*v)
                } else {
                    AttrDesc::Int(*v as i64)
                };
                (k.clone(), a)
            })
            .collect();
        let parts: Vec<LaunchDesc> = op.parts.iter().map(|part| self.launch(part, dev)).collect();
        // Ops after `take_last` read one row; `take_last` itself reads the chunk.
        let one_row = op.value_inputs().any(|v| self.p.g.values[v].one_row);
        LaunchDesc {
            kernel: op.kind.clone(),
            device: dev,
            layer: op.layer,
            args,
            attrs,
            parts,
            one_row,
        }
    }
}
