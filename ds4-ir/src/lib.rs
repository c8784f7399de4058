//! The DS4 graph IR: the RON schema, validation with source positions, the
//! expanded graph as a petgraph, and DOT.
//!
//! Data flow: [`parse`] reads a graph file into a [`Module`] (the serde [`Graph`]
//! plus a [`SourceMap`] for error positions) and checks what needs no profile:
//! unknown op kinds and fusion kernels, duplicate names, references to undeclared
//! weights or states, unknown tags. [`validate`] then expands every profile and
//! phase ([`expand::expand`] + [`expand::infer`]), which catches dangling or
//! doubly defined values, unbound symbols and shape or dtype mismatches. Every
//! error is an [`IrError`] printing `file:line:col: message`. This crate knows
//! nothing of devices or kernel code; `ds4-codegen` does the rest.

pub mod catalog;
pub mod error;
pub mod expand;
pub mod expanded;
pub mod expr;
pub mod schema;

pub use error::{IrError, Loc, Result, SourceMap};
pub use expanded::Expanded;
pub use schema::Graph;

use schema::PhaseTag;
use std::collections::HashSet;

/// A parsed graph file with its source map.
#[derive(Debug, Clone)]
pub struct Module {
    pub graph: Graph,
    pub src: SourceMap,
}

impl Module {
    /// Index of the profile named `name`.
    pub fn profile(&self, name: &str) -> Option<usize> {
        self.graph.profiles.iter().position(|p| p.name == name)
    }
}

/// Parse and structurally check a graph file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Module> {
    let graph: Graph = ron::from_str(text).map_err(|e| IrError {
        file: file.to_string(),
        loc: Loc {
            line: e.position.line,
            col: e.position.col,
        },
        msg: format!("RON: {}", e.code),
    })?;
    let names: Vec<&str> = graph.blocks.iter().map(|b| b.name.as_str()).collect();
    let counts: Vec<usize> = graph.blocks.iter().map(|b| b.ops.len()).collect();
    let src = SourceMap::new(file, text, &names, &counts);
    let m = Module { graph, src };
    check_structure(&m)?;
    Ok(m)
}

/// Parse, then expand and type every profile and phase.
pub fn validate(file: &str, text: &str) -> Result<Module> {
    let m = parse(file, text)?;
    for p in 0..m.graph.profiles.len() {
        for phase in [PhaseTag::Decode, PhaseTag::Prefill] {
            let mut g = expand::expand(&m, p, phase)?;
            expand::infer(&mut g, &m.src)?;
        }
    }
    Ok(m)
}

fn dup<'a>(
    src: &SourceMap,
    section: &str,
    what: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let mut seen = HashSet::new();
    let start = src.section(section);
    for n in names {
        if !seen.insert(n) {
            let first = src.quoted_after(n, start);
            let at = src.quoted_after(n, first + 1);
            return Err(src.err(at, format!("duplicate {what} name `{n}`")));
        }
    }
    Ok(())
}

fn check_structure(m: &Module) -> Result<()> {
    let g = &m.graph;
    let src = &m.src;
    dup(
        src,
        "profiles",
        "profile",
        g.profiles.iter().map(|p| p.name.as_str()),
    )?;
    dup(
        src,
        "weights",
        "weight",
        g.weights.iter().map(|w| w.name.as_str()),
    )?;
    dup(
        src,
        "blocks",
        "block",
        g.blocks.iter().map(|b| b.name.as_str()),
    )?;
    dup(
        src,
        "fusions",
        "fusion",
        g.fusions.iter().map(|f| f.name.as_str()),
    )?;

    let mut states = HashSet::new();
    for s in &g.states {
        let mut when = s.when.clone();
        when.sort();
        if !states.insert((s.name.as_str(), when)) {
            let at = src.section("states");
            let first = src.quoted_after(&s.name, at);
            return Err(src.err(
                src.quoted_after(&s.name, first + 1),
                format!("duplicate state name `{}`", s.name),
            ));
        }
    }

    let check_tags = |when: &[String], at: usize| -> Result<()> {
        for t in when {
            let bare = t.strip_prefix('!').unwrap_or(t);
            if !expand::TAGS.contains(&bare) {
                return Err(src.err(
                    src.quoted_after(t, at),
                    format!("unknown tag `{t}` (known: {:?})", expand::TAGS),
                ));
            }
        }
        Ok(())
    };
    for w in &g.weights {
        check_tags(&w.when, src.quoted_after(&w.name, src.section("weights")))?;
    }

    for (bi, b) in g.blocks.iter().enumerate() {
        for (oi, op) in b.ops.iter().enumerate() {
            let at = src.op(bi, oi);
            if !catalog::is_primitive(&op.op) {
                return Err(src.err(
                    at,
                    format!("unknown op kind `{}` in block `{}`", op.op, b.name),
                ));
            }
            check_tags(&op.when, at)?;
            for r in &op.inputs {
                if let Some(w) = r.strip_prefix("w:") {
                    if !g.weights.iter().any(|d| d.name == w) {
                        return Err(
                            src.err(src.quoted_after(r, at), format!("unknown weight `{w}`"))
                        );
                    }
                } else if let Some(s) = r.strip_prefix("s:") {
                    if !g.states.iter().any(|d| d.name == s) {
                        return Err(
                            src.err(src.quoted_after(r, at), format!("unknown state `{s}`"))
                        );
                    }
                } else if r.starts_with('@') && r != "@tokens" && r != "@pos" {
                    return Err(src.err(src.quoted_after(r, at), format!("unknown operand `{r}`")));
                }
            }
            for k in op.attrs.keys() {
                if !catalog::required_attrs(&op.op).contains(&k.as_str()) {
                    return Err(src.err(
                        src.quoted_after(k, at),
                        format!("`{}` has no attribute `{k}`", op.op),
                    ));
                }
            }
        }
        for st in &b.stages {
            if !b.ops.iter().any(|o| o.outputs.contains(&st.value)) && !b.inputs.contains(&st.value)
            {
                let at = src.quoted_after(&st.value, src.key_after("stages", src.block(bi)));
                return Err(src.err(
                    at,
                    format!(
                        "stage `{}` names unknown value `{}`",
                        st.stage_name(),
                        st.value
                    ),
                ));
            }
        }
    }

    let fus_at = src.section("fusions");
    for f in &g.fusions {
        let at = src.quoted_after(&f.name, fus_at);
        if !catalog::FUSED.contains(&f.kernel.as_str()) {
            return Err(src.err(
                src.quoted_after(&f.kernel, at),
                format!("unknown fused kernel `{}`", f.kernel),
            ));
        }
        if f.pattern.len() < 2 {
            return Err(src.err(
                at,
                format!("fusion `{}` needs a pattern of at least two ops", f.name),
            ));
        }
        for alt in &f.pattern {
            for k in alt.split('|') {
                if !catalog::is_primitive(k) {
                    return Err(src.err(
                        src.quoted_after(alt, at),
                        format!("unknown op kind `{k}` in fusion pattern"),
                    ));
                }
            }
        }
    }

    for p in &g.profiles {
        let at = src.quoted_after(&p.name, src.section("profiles"));
        if p.compress_ratios.is_empty() {
            return Err(src.err(at, format!("profile `{}` has no layers", p.name)));
        }
        if p.devices.is_empty() || p.devices.iter().any(|&d| d == 0 || d > 2) {
            return Err(src.err(src.key_after("devices", at), "devices must be 1 or 2"));
        }
        if let Some(r) = p
            .compress_ratios
            .iter()
            .find(|&&r| r != 0 && r != 4 && r != 128)
        {
            return Err(src.err(
                src.key_after("compress_ratios", at),
                format!("unsupported compress ratio {r}"),
            ));
        }
    }
    Ok(())
}
