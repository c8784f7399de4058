//! Expansion and type inference: from the RON blocks to an [`Expanded`] graph.
//!
//! [`expand`] instantiates the blocks for one profile and phase: `Once` blocks
//! once, `PerLayer` blocks for every layer of the profile's `compress_ratios`,
//! keeping the ops whose `when` tags hold for that layer and phase. The layer
//! variant comes only from the profile's data: `ratio` = `compress_ratios[il]`,
//! `hash` = `il < hash_layer_count`. Every symbol is resolved here; an unbound one,
//! a dangling or doubly defined value, or a weight missing from a variant is an
//! error at the RON position of the op. [`infer`] then walks the ops in order and
//! gives every value its dtype and width from the catalog.

use crate::catalog::{self, ActType, Operand};
use crate::error::{IrError, Result, SourceMap};
use crate::expanded::*;
use crate::expr::{self, Env};
use crate::schema::{Init, PhaseTag, Rows, Scope};
use crate::Module;
use std::collections::HashMap;

/// Layer tags a `when` list may name (each may be negated with `!`).
pub const TAGS: &[&str] = &[
    "dense",
    "compressed",
    "r4",
    "hash",
    "topk",
    "decode",
    "prefill",
];

/// The profile's symbols as an evaluation environment (plus `n_layer`, `chunk`).
pub fn profile_env(m: &Module, profile: usize) -> Env {
    let p = &m.graph.profiles[profile];
    let mut env: Env = p
        .symbols
        .iter()
        .map(|(k, v)| (k.clone(), *v as f64))
        .collect();
    env.extend(p.floats.iter().map(|(k, v)| (k.clone(), *v)));
    env.insert("n_layer".into(), p.compress_ratios.len() as f64);
    env.insert("chunk".into(), p.chunk as f64);
    env
}

/// The symbols and tags of layer `il` (`layer`, `ratio`, `coff`, `hash`).
pub fn layer_env(m: &Module, profile: usize, il: usize, env: &mut Env) -> Vec<&'static str> {
    let p = &m.graph.profiles[profile];
    let ratio = p.compress_ratios[il];
    let hash = (il as u32) < p.hash_layer_count;
    env.insert("layer".into(), il as f64);
    env.insert("ratio".into(), ratio as f64);
    env.insert("coff".into(), if ratio == 4 { 2.0 } else { 1.0 });
    env.insert("hash".into(), if hash { 1.0 } else { 0.0 });
    let mut tags = vec![if ratio == 0 { "dense" } else { "compressed" }];
    if ratio == 4 {
        tags.push("r4");
    }
    tags.push(if hash { "hash" } else { "topk" });
    tags
}

/// True when every tag of `when` holds (`!t` holds when `t` does not).
pub fn tags_hold(when: &[String], tags: &[&str]) -> bool {
    when.iter().all(|t| match t.strip_prefix('!') {
        Some(neg) => !tags.contains(&neg),
        None => tags.contains(&t.as_str()),
    })
}

/// The YaRN correction dims `(lo, hi)` for RoPE with `n_rot` dims, base `base`,
/// original context `orig` and betas (MODEL.md §7):
/// `corr(β) = n_rot·ln(orig / (β·2π)) / (2·ln base)`, lo = floor(corr(β_fast)),
/// hi = ceil(corr(β_slow)), clamped to `[0, n_rot - 1]`.
pub fn yarn_corr_dims(
    n_rot: f64,
    base: f64,
    orig: f64,
    beta_fast: f64,
    beta_slow: f64,
) -> (f64, f64) {
    let corr =
        |beta: f64| n_rot * (orig / (beta * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln());
    let lo = corr(beta_fast).floor().max(0.0);
    let hi = corr(beta_slow).ceil().min(n_rot - 1.0);
    (lo, hi)
}

struct Ctx<'a> {
    m: &'a Module,
    src: &'a SourceMap,
    g: Expanded,
    weights: HashMap<(usize, Option<u16>), usize>,
    states: HashMap<(String, Option<u16>), usize>,
}

/// Instantiate every block for `profile` and `phase` (values untyped until [`infer`]).
pub fn expand(m: &Module, profile: usize, phase: PhaseTag) -> Result<Expanded> {
    let p = &m.graph.profiles[profile];
    let rows = match phase {
        PhaseTag::Decode => 1,
        PhaseTag::Prefill => p.chunk,
    };
    let g = Expanded {
        profile: p.name.clone(),
        phase,
        rows,
        ops: vec![],
        values: vec![],
        weights: vec![],
        states: vec![],
        outputs: vec![],
    };
    let mut cx = Ctx {
        m,
        src: &m.src,
        g,
        weights: HashMap::new(),
        states: HashMap::new(),
    };
    let phase_tag = match phase {
        PhaseTag::Decode => "decode",
        PhaseTag::Prefill => "prefill",
    };
    let base_env = profile_env(m, profile);
    let mut carry: Vec<ValueId> = vec![];
    for (bi, block) in m.graph.blocks.iter().enumerate() {
        let layers: Vec<Option<usize>> = match block.scope {
            Scope::Once => vec![None],
            Scope::PerLayer => (0..p.compress_ratios.len()).map(Some).collect(),
        };
        for il in layers {
            let mut env = base_env.clone();
            let mut tags = match il {
                Some(il) => layer_env(m, profile, il, &mut env),
                None => vec![],
            };
            tags.push(phase_tag);
            carry = cx.block(bi, il.map(|l| l as u16), &env, &tags, &carry)?;
        }
    }
    cx.g.outputs = carry;
    Ok(cx.g)
}

impl Ctx<'_> {
    fn block(
        &mut self,
        bi: usize,
        layer: Option<u16>,
        env: &Env,
        tags: &[&str],
        carry: &[ValueId],
    ) -> Result<Vec<ValueId>> {
        let block = &self.m.graph.blocks[bi];
        let at = self.src.block(bi);
        if block.inputs.len() != carry.len() {
            return Err(self.src.err(
                at,
                format!(
                    "block `{}` takes {} inputs but the previous block passes {}",
                    block.name,
                    block.inputs.len(),
                    carry.len()
                ),
            ));
        }
        let mut scope: HashMap<String, ValueId> = block
            .inputs
            .iter()
            .cloned()
            .zip(carry.iter().copied())
            .collect();

        for (oi, decl) in block.ops.iter().enumerate() {
            if !tags_hold(&decl.when, tags) {
                continue;
            }
            let op_at = self.src.op(bi, oi);
            let mut inputs = Vec::new();
            for name in &decl.inputs {
                inputs.push(self.resolve(name, &scope, layer, env, tags, op_at)?);
            }
            let mut attrs = Vec::new();
            for (k, e) in &decl.attrs {
                let v = expr::eval(e, env).map_err(|err| {
                    self.src.err(
                        self.src.quoted_after(e, op_at),
                        format!("attribute `{k}`: {err}"),
                    )
                })?;
                attrs.push((k.clone(), v));
            }
            let mut outputs = Vec::new();
            for name in &decl.outputs {
                if scope.contains_key(name) {
                    let at = self
                        .src
                        .quoted_after(name, self.src.key_after("out", op_at));
                    return Err(self.src.err(at, format!("value `{name}` is defined twice")));
                }
                let id = self.g.values.len();
                self.g.values.push(Value {
                    name: match layer {
                        Some(l) => format!("l{l}.{name}"),
                        None => name.clone(),
                    },
                    layer,
                    ty: ActType::F32,
                    width: 0,
                    one_row: false,
                    stage: None,
                });
                scope.insert(name.clone(), id);
                outputs.push(id);
            }
            self.g.ops.push(Op {
                kind: decl.op.clone(),
                block: bi,
                op_index: oi,
                layer,
                inputs,
                outputs,
                attrs,
                loc: self.src.loc(op_at),
                parts: vec![],
            });
        }

        let phase = self.g.phase;
        for st in &block.stages {
            if !st.phases.contains(&phase) {
                continue;
            }
            if let Some(&v) = scope.get(&st.value) {
                self.g.values[v].stage = Some(Stage {
                    name: st.stage_name().to_string(),
                    layer,
                    file: st.file,
                });
            }
        }

        let mut out = Vec::new();
        for name in &block.outputs {
            match scope.get(name) {
                Some(&v) => out.push(v),
                None => {
                    let at = self
                        .src
                        .quoted_after(name, self.src.key_after("outputs", at));
                    return Err(self
                        .src
                        .err(at, format!("block output `{name}` is never defined")));
                }
            }
        }
        Ok(out)
    }

    fn resolve(
        &mut self,
        name: &str,
        scope: &HashMap<String, ValueId>,
        layer: Option<u16>,
        env: &Env,
        tags: &[&str],
        op_at: usize,
    ) -> Result<Ref> {
        let at = self.src.quoted_after(name, op_at);
        if name == "@tokens" {
            return Ok(Ref::Tokens);
        }
        if name == "@pos" {
            return Ok(Ref::Pos);
        }
        if let Some(w) = name.strip_prefix("w:") {
            return self.weight(w, layer, env, tags, at).map(Ref::Weight);
        }
        if let Some(s) = name.strip_prefix("s:") {
            return self.state(s, layer, env, tags, at).map(Ref::State);
        }
        match scope.get(name) {
            Some(&v) => Ok(Ref::Value(v)),
            None => Err(self.src.err(
                at,
                format!("dangling value `{name}`: not defined before use"),
            )),
        }
    }

    fn weight(
        &mut self,
        name: &str,
        layer: Option<u16>,
        env: &Env,
        tags: &[&str],
        at: usize,
    ) -> Result<usize> {
        let decls = &self.m.graph.weights;
        let Some(di) = decls.iter().position(|w| w.name == name) else {
            return Err(self.src.err(at, format!("unknown weight `{name}`")));
        };
        let d = &decls[di];
        if !tags_hold(&d.when, tags) {
            return Err(self.src.err(
                at,
                format!("weight `{name}` is absent in this layer variant"),
            ));
        }
        let per_layer = d.gguf.contains("{layer}");
        let key = (di, if per_layer { layer } else { None });
        if let Some(&i) = self.weights.get(&key) {
            return Ok(i);
        }
        let decl_at = self.src.quoted_after(name, self.src.section("weights"));
        let gguf = match (per_layer, layer) {
            (true, Some(l)) => d.gguf.replace("{layer}", &l.to_string()),
            (true, None) => {
                return Err(self.src.err(
                    at,
                    format!("weight `{name}` is per layer but used outside a layer"),
                ))
            }
            (false, _) => d.gguf.clone(),
        };
        let mut dims = Vec::new();
        for e in &d.dims {
            let at = self.src.quoted_after(e, decl_at);
            let v = expr::eval_int(e, env)
                .map_err(|err| self.src.err(at, format!("dim of `{name}`: {err}")))?;
            if !(1..=1 << 40).contains(&v) {
                return Err(self
                    .src
                    .err(at, format!("dim of `{name}`: {v} is not a positive size")));
            }
            dims.push(v);
        }
        let i = self.g.weights.len();
        self.g.weights.push(WeightInst {
            decl: di,
            gguf,
            ty: d.ty,
            dims,
            layer: key.1,
            optional: d.optional,
            experts: d.experts,
        });
        self.weights.insert(key, i);
        Ok(i)
    }

    fn state(
        &mut self,
        name: &str,
        layer: Option<u16>,
        env: &Env,
        tags: &[&str],
        at: usize,
    ) -> Result<usize> {
        let decls = &self.m.graph.states;
        let found: Vec<usize> = (0..decls.len())
            .filter(|&i| decls[i].name == name && tags_hold(&decls[i].when, tags))
            .collect();
        let di = match found.as_slice() {
            [i] => *i,
            [] => {
                return Err(self
                    .src
                    .err(at, format!("unknown state `{name}` for this layer variant")))
            }
            _ => {
                return Err(self.src.err(
                    at,
                    format!("state `{name}` is declared twice for this layer variant"),
                ))
            }
        };
        let d = &decls[di];
        let key = match &d.shared {
            Some(s) => (s.clone(), None),
            None => (d.name.clone(), layer),
        };
        if let Some(&i) = self.states.get(&key) {
            return Ok(i);
        }
        let decl_at = self.src.quoted_after(name, self.src.section("states"));
        let ev = |e: &str| -> Result<f64> {
            expr::eval(e, env).map_err(|err| {
                self.src.err(
                    self.src.quoted_after(e, decl_at),
                    format!("state `{name}`: {err}"),
                )
            })
        };
        let evi = |e: &str| -> Result<usize> {
            let v = ev(e)?;
            if v < 0.0 || v.fract() != 0.0 {
                return Err(self.src.err(
                    self.src.quoted_after(e, decl_at),
                    format!("state `{name}`: {v} is not a size"),
                ));
            }
            Ok(v as usize)
        };
        let width = evi(&d.width)?;
        let rows = match &d.rows {
            Rows::Fixed(e) => RowsInst::Fixed(evi(e)?),
            Rows::PerCtx { div, add } => RowsInst::PerCtx {
                div: evi(div)?.max(1),
                add: evi(add)?,
            },
        };
        let init = match &d.init {
            Init::Zero => InitInst::Zero,
            Init::NegInf => InitInst::NegInf,
            Init::Rope {
                base,
                freq_scale,
                ext_factor,
                yarn,
            } => {
                let base = ev(base)?;
                let (corr_lo, corr_hi) = if *yarn {
                    let (r, o, bf, bs) = (
                        ev("R")?,
                        ev("orig_ctx")?,
                        ev("beta_fast")?,
                        ev("beta_slow")?,
                    );
                    yarn_corr_dims(r, base, o, bf, bs)
                } else {
                    (0.0, 0.0)
                };
                InitInst::Rope {
                    base,
                    freq_scale: ev(freq_scale)?,
                    ext_factor: ev(ext_factor)?,
                    corr_lo,
                    corr_hi,
                }
            }
        };
        let i = self.g.states.len();
        self.g.states.push(StateInst {
            name: key.0.clone(),
            layer: key.1,
            width,
            rows,
            init,
        });
        self.states.insert(key, i);
        Ok(i)
    }
}

/// Give every value its dtype and width, checking each op against the catalog.
pub fn infer(g: &mut Expanded, src: &SourceMap) -> Result<()> {
    for oi in 0..g.ops.len() {
        let op = &g.ops[oi];
        let operands: Vec<Operand> = op
            .inputs
            .iter()
            .map(|r| match *r {
                Ref::Value(v) => Operand::Act {
                    ty: g.values[v].ty,
                    width: g.values[v].width,
                },
                Ref::Weight(w) => Operand::Weight {
                    ty: g.weights[w].ty,
                    dims: g.weights[w].dims.clone(),
                },
                Ref::State(_) => Operand::State,
                Ref::Tokens => Operand::Tokens,
                Ref::Pos => Operand::Pos,
            })
            .collect();
        let outs = catalog::infer(&op.kind, &operands, &|n| op.attr(n))
            .map_err(|msg| err_at(src, op, msg))?;
        if outs.len() != op.outputs.len() {
            return Err(err_at(
                src,
                op,
                format!(
                    "`{}` has {} outputs, the RON names {}",
                    op.kind,
                    outs.len(),
                    op.outputs.len()
                ),
            ));
        }
        let one_row = op.kind == "take_last" || op.value_inputs().any(|v| g.values[v].one_row);
        let outputs = op.outputs.clone();
        for (v, (ty, width)) in outputs.into_iter().zip(outs) {
            let val = &mut g.values[v];
            val.ty = ty;
            val.width = width;
            val.one_row = one_row;
        }
    }
    Ok(())
}

fn err_at(src: &SourceMap, op: &Op, msg: String) -> IrError {
    let layer = op.layer.map(|l| format!(", layer {l}")).unwrap_or_default();
    IrError {
        file: src.file.clone(),
        loc: op.loc,
        msg: format!("{msg} (op `{}`{layer})", op.kind),
    }
}
