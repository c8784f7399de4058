//! The op catalog of `docs/OPS.md` as shape and dtype rules.
//!
//! [`infer`] checks an op's resolved inputs (activation widths and dtypes, weight
//! types and dims, state and token/position operands, in the order of OPS.md) and
//! returns the dtype and per-token width of each output. It is the single place
//! where the contract's shapes live; validation and the compiler's infer pass both
//! call it. Widths are per token row; the token dimension is implicit.

use crate::schema::GgmlType;

/// Element type of an activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActType {
    F32,
    I32,
    Q8_0,
    Q8K,
}

impl ActType {
    /// Bytes of one row of `width` values.
    pub fn row_bytes(self, width: usize) -> usize {
        match self {
            ActType::F32 | ActType::I32 => 4 * width,
            ActType::Q8_0 => width.div_ceil(32) * 36,
            ActType::Q8K => width.div_ceil(256) * 292,
        }
    }
}

/// One resolved op operand.
#[derive(Debug, Clone)]
pub enum Operand {
    Act { ty: ActType, width: usize },
    Weight { ty: GgmlType, dims: Vec<i64> },
    State,
    Tokens,
    Pos,
}

/// Every primitive op of the catalog.
pub const PRIMITIVES: &[&str] = &[
    "embed",
    "hc_expand",
    "rms_norm_plain",
    "rms_norm",
    "head_rms_norm",
    "matvec_f16",
    "quantize_q8_0",
    "matvec_q8_0",
    "matvec_q8_0_grouped",
    "hc_split",
    "hc_weighted_sum",
    "hc_post",
    "hc_head_weights",
    "rope",
    "fp8_kv",
    "kv_push_raw",
    "compressor_update",
    "indexer_qat",
    "indexer_topk",
    "attention",
    "router_probs",
    "router_topk",
    "router_hash",
    "quantize_q8_k",
    "moe_gate_up",
    "moe_swiglu",
    "moe_down",
    "swiglu",
    "add",
    "take_last",
];

/// Every fused kernel of the catalog.
pub const FUSED: &[&str] = &[
    "hc_pre_norm",
    "q8_matvec",
    "q8_matvec_grouped",
    "q8_matvec_norm",
    "kv_rope_store",
    "compressor",
    "router",
    "moe_routed",
    "shared_expert",
    "output_head",
];

/// Attributes the kernels read as floats; every other attribute is an integer.
pub fn attr_is_float(name: &str) -> bool {
    matches!(name, "eps" | "clamp" | "scale")
}

/// The attributes an op must carry.
pub fn required_attrs(kind: &str) -> &'static [&'static str] {
    match kind {
        "rms_norm" | "rms_norm_plain" => &["eps"],
        "head_rms_norm" => &["heads", "head_dim", "eps"],
        "matvec_q8_0_grouped" => &["groups"],
        "hc_split" => &["iters", "eps"],
        "hc_head_weights" => &["eps"],
        "rope" => &["heads", "head_dim", "n_rot", "inverse"],
        "fp8_kv" => &["n_quant"],
        "kv_push_raw" => &["window"],
        "compressor_update" => &["ratio", "head_dim", "n_rot", "post", "n_quant", "eps"],
        "indexer_qat" => &["heads", "head_dim"],
        "indexer_topk" => &["heads", "head_dim", "top_k", "ratio"],
        "attention" => &["heads", "head_dim", "window", "ratio"],
        "router_topk" | "router_hash" => &["k", "scale"],
        "moe_gate_up" | "moe_down" => &["k", "n_ff", "e0", "e1"],
        "moe_swiglu" => &["n_ff", "clamp"],
        "swiglu" => &["clamp"],
        _ => &[],
    }
}

/// True when `kind` is a primitive of the catalog.
pub fn is_primitive(kind: &str) -> bool {
    PRIMITIVES.contains(&kind)
}

/// True for ops that only update state (no activation output).
pub fn is_side_effect(kind: &str) -> bool {
    matches!(kind, "kv_push_raw" | "compressor_update")
}

/// Check the operands of `kind` and return its outputs (dtype, width).
/// `attr` looks an attribute up by name.
pub fn infer(
    kind: &str,
    ins: &[Operand],
    attr: &dyn Fn(&str) -> Option<f64>,
) -> Result<Vec<(ActType, usize)>, String> {
    use ActType::*;
    use GgmlType as G;
    let c = Check { kind, ins };
    let a = |n: &str| {
        attr(n)
            .map(|v| v as usize)
            .ok_or(format!("`{kind}` needs attribute `{n}`"))
    };
    let out = match kind {
        "embed" => {
            c.arity(2)?;
            let d = c.weight(0, &[G::F16], 2)?;
            c.tokens(1)?;
            vec![(F32, d[0] as usize)]
        }
        "hc_expand" => {
            c.arity(1)?;
            vec![(F32, 4 * c.act(0, F32)?)]
        }
        "rms_norm_plain" | "fp8_kv" | "indexer_qat" => {
            c.arity(1)?;
            let n = c.act(0, F32)?;
            if kind == "indexer_qat" {
                c.eq(n, a("heads")? * a("head_dim")?, "q width vs heads*head_dim")?;
            }
            vec![(F32, n)]
        }
        "head_rms_norm" => {
            c.arity(1)?;
            let n = c.act(0, F32)?;
            c.eq(n, a("heads")? * a("head_dim")?, "width vs heads*head_dim")?;
            vec![(F32, n)]
        }
        "rms_norm" => {
            c.arity(2)?;
            let n = c.act(0, F32)?;
            let d = c.weight(1, &[G::F32], 1)?;
            c.eq(n, d[0] as usize, "x width vs norm weight")?;
            vec![(F32, n)]
        }
        "matvec_f16" | "matvec_q8_0" => {
            c.arity(2)?;
            let (wt, xt) = if kind == "matvec_f16" {
                (G::F16, F32)
            } else {
                (G::Q8_0, Q8_0)
            };
            let d = c.weight(0, &[wt], 2)?;
            let n = c.act(1, xt)?;
            c.eq(n, d[0] as usize, "input width vs weight ne0")?;
            vec![(F32, d[1] as usize)]
        }
        "matvec_q8_0_grouped" => {
            c.arity(2)?;
            let d = c.weight(0, &[G::Q8_0], 2)?;
            let n = c.act(1, Q8_0)?;
            let g = a("groups")?;
            c.eq(n, g * d[0] as usize, "input width vs groups*weight ne0")?;
            c.eq(
                d[1] as usize % g.max(1),
                0,
                "weight ne1 divisible by groups",
            )?;
            vec![(F32, d[1] as usize)]
        }
        "quantize_q8_0" | "quantize_q8_k" => {
            c.arity(1)?;
            let n = c.act(0, F32)?;
            let (blk, t) = if kind == "quantize_q8_0" {
                (32, Q8_0)
            } else {
                (256, Q8K)
            };
            c.eq(n % blk, 0, "width is a multiple of the block")?;
            vec![(t, n)]
        }
        "hc_split" => {
            c.arity(3)?;
            c.eq(c.act(0, F32)?, 24, "mix width")?;
            c.eq(c.weight(1, &[G::F32], 1)?[0] as usize, 3, "scale dims")?;
            c.eq(c.weight(2, &[G::F32], 1)?[0] as usize, 24, "base dims")?;
            vec![(F32, 4), (F32, 4), (F32, 16)]
        }
        "hc_weighted_sum" => {
            c.arity(2)?;
            let n = c.act(0, F32)?;
            c.eq(c.act(1, F32)?, 4, "pre width")?;
            c.eq(n % 4, 0, "hc width")?;
            vec![(F32, n / 4)]
        }
        "hc_post" => {
            c.arity(4)?;
            let e = c.act(0, F32)?;
            c.eq(c.act(1, F32)?, 4 * e, "residual hc width vs 4*y")?;
            c.eq(c.act(2, F32)?, 4, "post width")?;
            c.eq(c.act(3, F32)?, 16, "comb width")?;
            vec![(F32, 4 * e)]
        }
        "hc_head_weights" => {
            c.arity(3)?;
            c.eq(c.act(0, F32)?, 4, "pre width")?;
            c.eq(c.weight(1, &[G::F32], 1)?[0] as usize, 1, "scale dims")?;
            c.eq(c.weight(2, &[G::F32], 1)?[0] as usize, 4, "base dims")?;
            vec![(F32, 4)]
        }
        "rope" => {
            c.arity(3)?;
            let n = c.act(0, F32)?;
            c.state(1)?;
            c.pos(2)?;
            c.eq(n, a("heads")? * a("head_dim")?, "width vs heads*head_dim")?;
            vec![(F32, n)]
        }
        "kv_push_raw" => {
            c.arity(3)?;
            c.act(0, F32)?;
            c.state(1)?;
            c.pos(2)?;
            vec![]
        }
        "compressor_update" => {
            c.arity(9)?;
            let w = c.act(0, F32)?;
            c.eq(c.act(1, F32)?, w, "score width vs kv width")?;
            let ape = c.weight(2, &[G::F16], 2)?;
            c.eq(ape[0] as usize, w, "ape ne0 vs kv width")?;
            c.eq(ape[1] as usize, a("ratio")?, "ape ne1 vs ratio")?;
            let norm = c.weight(3, &[G::F32], 1)?;
            c.eq(norm[0] as usize, a("head_dim")?, "norm dims vs head_dim")?;
            for i in 4..8 {
                c.state(i)?;
            }
            c.pos(8)?;
            vec![]
        }
        "indexer_topk" => {
            c.arity(4)?;
            c.eq(c.act(0, F32)?, a("heads")? * a("head_dim")?, "q width")?;
            c.eq(c.act(1, F32)?, a("heads")?, "weights width")?;
            c.state(2)?;
            c.pos(3)?;
            vec![(I32, a("top_k")?)]
        }
        "attention" => {
            if !(4..=6).contains(&ins.len()) {
                return Err(format!(
                    "`attention` takes 4 to 6 operands, got {}",
                    ins.len()
                ));
            }
            let n = c.act(0, F32)?;
            c.eq(n, a("heads")? * a("head_dim")?, "q width")?;
            c.eq(
                c.weight(1, &[G::F32], 1)?[0] as usize,
                a("heads")?,
                "sinks dims",
            )?;
            c.state(2)?;
            if ins.len() >= 5 {
                c.state(3)?;
            }
            if ins.len() == 6 {
                c.act(4, I32)?;
            }
            c.pos(ins.len() - 1)?;
            vec![(F32, n)]
        }
        "router_probs" => {
            c.arity(1)?;
            vec![(F32, c.act(0, F32)?)]
        }
        "router_topk" | "router_hash" => {
            c.arity(if kind == "router_topk" { 2 } else { 3 })?;
            let ne = c.act(0, F32)?;
            let k = a("k")?;
            if kind == "router_topk" {
                c.eq(c.weight(1, &[G::F32], 1)?[0] as usize, ne, "bias dims")?;
            } else {
                c.eq(
                    c.weight(1, &[G::I32], 2)?[0] as usize,
                    k,
                    "tid2eid ne0 vs k",
                )?;
                c.tokens(2)?;
            }
            vec![(I32, k), (F32, k)]
        }
        "moe_gate_up" => {
            c.arity(4)?;
            let g = c.weight(0, &[G::IQ2_XXS], 3)?;
            let u = c.weight(1, &[G::IQ2_XXS], 3)?;
            c.eq(g.clone(), u, "gate dims vs up dims")?;
            c.eq(c.act(2, Q8K)?, g[0] as usize, "x width vs gate ne0")?;
            c.eq(c.act(3, I32)?, a("k")?, "ids width")?;
            c.eq(g[1] as usize, a("n_ff")?, "gate ne1 vs n_ff")?;
            let w = a("k")? * g[1] as usize;
            vec![(F32, w), (F32, w)]
        }
        "moe_swiglu" => {
            c.arity(3)?;
            let n = c.act(0, F32)?;
            c.eq(c.act(1, F32)?, n, "up width")?;
            let k = c.act(2, F32)?;
            c.eq(n, k * a("n_ff")?, "width vs k*n_ff")?;
            vec![(F32, n)]
        }
        "moe_down" => {
            c.arity(3)?;
            let d = c.weight(0, &[G::Q2_K], 3)?;
            c.eq(
                c.act(1, Q8K)?,
                a("k")? * d[0] as usize,
                "mid width vs k*ne0",
            )?;
            c.eq(c.act(2, I32)?, a("k")?, "ids width")?;
            vec![(F32, d[1] as usize)]
        }
        "swiglu" | "add" => {
            c.arity(2)?;
            let n = c.act(0, F32)?;
            c.eq(c.act(1, F32)?, n, "operand widths")?;
            vec![(F32, n)]
        }
        "take_last" => {
            c.arity(1)?;
            let (ty, n) = c.any_act(0)?;
            vec![(ty, n)]
        }
        _ => return Err(format!("unknown op `{kind}`")),
    };
    for name in required_attrs(kind) {
        if attr(name).is_none() {
            return Err(format!("`{kind}` needs attribute `{name}`"));
        }
    }
    Ok(out)
}

struct Check<'a> {
    kind: &'a str,
    ins: &'a [Operand],
}

impl Check<'_> {
    fn arity(&self, n: usize) -> Result<(), String> {
        if self.ins.len() != n {
            return Err(format!(
                "`{}` takes {n} operands, got {}",
                self.kind,
                self.ins.len()
            ));
        }
        Ok(())
    }

    fn get(&self, i: usize) -> Result<&Operand, String> {
        self.ins
            .get(i)
            .ok_or(format!("`{}` is missing operand {}", self.kind, i + 1))
    }

    fn any_act(&self, i: usize) -> Result<(ActType, usize), String> {
        match self.get(i)? {
            Operand::Act { ty, width } => Ok((*ty, *width)),
            o => Err(format!(
                "`{}` operand {}: expected an activation, got {o:?}",
                self.kind,
                i + 1
            )),
        }
    }

    fn act(&self, i: usize, want: ActType) -> Result<usize, String> {
        let (ty, w) = self.any_act(i)?;
        if ty != want {
            return Err(format!(
                "`{}` operand {}: dtype mismatch, expected {want:?}, got {ty:?}",
                self.kind,
                i + 1
            ));
        }
        Ok(w)
    }

    fn weight(&self, i: usize, tys: &[GgmlType], ndims: usize) -> Result<Vec<i64>, String> {
        match self.get(i)? {
            Operand::Weight { ty, dims } => {
                if !tys.contains(ty) {
                    return Err(format!(
                        "`{}` operand {}: weight dtype mismatch, expected {tys:?}, got {ty:?}",
                        self.kind,
                        i + 1
                    ));
                }
                if dims.len() != ndims {
                    return Err(format!(
                        "`{}` operand {}: weight has {} dims, expected {ndims}",
                        self.kind,
                        i + 1,
                        dims.len()
                    ));
                }
                Ok(dims.clone())
            }
            o => Err(format!(
                "`{}` operand {}: expected a weight, got {o:?}",
                self.kind,
                i + 1
            )),
        }
    }

    fn state(&self, i: usize) -> Result<(), String> {
        match self.get(i)? {
            Operand::State => Ok(()),
            o => Err(format!(
                "`{}` operand {}: expected a state, got {o:?}",
                self.kind,
                i + 1
            )),
        }
    }

    fn tokens(&self, i: usize) -> Result<(), String> {
        match self.get(i)? {
            Operand::Tokens => Ok(()),
            o => Err(format!(
                "`{}` operand {}: expected @tokens, got {o:?}",
                self.kind,
                i + 1
            )),
        }
    }

    fn pos(&self, i: usize) -> Result<(), String> {
        match self.get(i)? {
            Operand::Pos => Ok(()),
            o => Err(format!(
                "`{}` operand {}: expected @pos, got {o:?}",
                self.kind,
                i + 1
            )),
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(
        &self,
        got: T,
        want: T,
        what: &str,
    ) -> Result<(), String> {
        if got != want {
            return Err(format!(
                "`{}`: shape mismatch ({what}): {got:?} != {want:?}",
                self.kind
            ));
        }
        Ok(())
    }
}
