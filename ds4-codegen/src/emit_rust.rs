//! The Rust emitter: `plans.rs`, the generated API of `ds4_runtime::plan`.
//!
//! The file defines `PROFILES`, `PLAN_SETS` (every profile × device count ×
//! fusion setting), `DOTS`, and one function per plan (`tiny_d2_fused_decode`)
//! that calls the `Executor` in order with constant launches (promoted to
//! `'static` by rustc). The profile items, `PROFILES`, `PLAN_SETS` and `DOTS` are
//! built with `quote` and printed by `prettyplease`; the plan bodies and slot
//! tables, which are almost all of the bytes, are printed directly in the same
//! layout, because a token round trip through syn for them costs about 9 s of the
//! 2 s codegen budget. Output is deterministic.

use crate::lower::{ArgDesc, AttrDesc, BufDesc, LaunchDesc, PlanStep};
use crate::{Compiled, PhaseResult, PlanSetResult};
use ds4_ir::catalog::ActType;
use ds4_ir::expanded::{InitInst, RowsInst};
use ds4_ir::expr;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use std::fmt::Write;

fn ident(s: &str) -> Ident {
    Ident::new(s, Span::call_site())
}

/// The `Kernel` variant of an op or fused kernel name.
pub fn kernel_variant(kind: &str) -> String {
    match kind {
        "quantize_q8_0" => "QuantizeQ8_0".into(),
        "matvec_q8_0" => "MatvecQ8_0".into(),
        "matvec_q8_0_grouped" => "MatvecQ8_0Grouped".into(),
        "quantize_q8_k" => "QuantizeQ8K".into(),
        _ => kind
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect(),
    }
}

fn dtype_text(t: ActType) -> &'static str {
    match t {
        ActType::F32 => "DType::F32",
        ActType::I32 => "DType::I32",
        ActType::Q8_0 => "DType::Q8_0",
        ActType::Q8K => "DType::Q8K",
    }
}

fn buf(b: &BufDesc) -> String {
    format!(
        "Buf {{ dev: {}, offset: {}, row_bytes: {}, width: {}, dtype: {} }}",
        b.dev,
        b.offset,
        b.row_bytes,
        b.width,
        dtype_text(b.dtype)
    )
}

fn float(v: f64) -> String {
    format!("{v:?}f64")
}

/// A `Launch` literal at indentation `ind` (the plan bodies are printed directly:
/// they are most of the file, and a token round trip through syn costs seconds).
fn launch(l: &LaunchDesc, ind: usize, out: &mut String) {
    let pad = " ".repeat(ind);
    let _ = writeln!(out, "Launch {{");
    let _ = writeln!(
        out,
        "{pad}    kernel: Kernel::{},",
        kernel_variant(&l.kernel)
    );
    let _ = writeln!(out, "{pad}    device: {},", l.device);
    let _ = writeln!(out, "{pad}    args: &[");
    for a in &l.args {
        let t = match a {
            ArgDesc::Buf(b) => format!("Arg::Buf({})", buf(b)),
            ArgDesc::Weight(i) => format!("Arg::Weight({i})"),
            ArgDesc::State(i) => format!("Arg::State({i})"),
            ArgDesc::Tokens => "Arg::Tokens".into(),
            ArgDesc::Pos => "Arg::Pos".into(),
        };
        let _ = writeln!(out, "{pad}        {t},");
    }
    let _ = writeln!(out, "{pad}    ],");
    let attrs: Vec<String> = l
        .attrs
        .iter()
        .map(|(k, v)| match v {
            AttrDesc::Int(i) => format!("(\"{k}\", AttrValue::Int({i}))"),
            AttrDesc::Float(f) => format!("(\"{k}\", AttrValue::Float({}))", float(*f)),
        })
        .collect();
    let _ = writeln!(out, "{pad}    attrs: &[{}],", attrs.join(", "));
    if l.parts.is_empty() {
        let _ = writeln!(out, "{pad}    parts: &[],");
    } else {
        let _ = writeln!(out, "{pad}    parts: &[");
        for p in &l.parts {
            let _ = write!(out, "{pad}        ");
            launch(p, ind + 8, out);
            let _ = writeln!(out, ",");
        }
        let _ = writeln!(out, "{pad}    ],");
    }
    let _ = writeln!(out, "{pad}    one_row: {},", l.one_row);
    let _ = write!(out, "{pad}}}");
}

fn step(s: &PlanStep, out: &mut String) {
    match s {
        PlanStep::Launch(l) => {
            let _ = write!(out, "    x.launch(&");
            launch(l, 4, out);
            let _ = writeln!(out, ");");
        }
        PlanStep::Sync(d) => {
            let _ = writeln!(out, "    x.sync({d});");
        }
        PlanStep::Copy {
            src, dst, one_row, ..
        } => {
            let _ = writeln!(
                out,
                "    x.copy(\n        {},\n        {},\n        {one_row},\n    );",
                buf(src),
                buf(dst)
            );
        }
        PlanStep::Stage {
            name,
            layer,
            buf: b,
            one_row,
            counter,
        } => {
            let layer = match layer {
                Some(l) => format!("Some({l})"),
                None => "None".into(),
            };
            let file = if *counter {
                "StageFile::Counter"
            } else {
                "StageFile::PerPhase"
            };
            let _ = writeln!(
                out,
                "    x.stage(&StageTap {{\n        name: \"{name}\",\n        layer: {layer},\n        buf: {},\n        one_row: {one_row},\n        file: {file},\n    }});",
                buf(b)
            );
        }
    }
}

fn print(items: TokenStream, out: &mut String) {
    match syn::parse2::<syn::File>(items.clone()) {
        Ok(f) => out.push_str(&prettyplease::unparse(&f)),
        // Unreachable for well-formed quotes; keep the raw tokens so rustc reports it.
        Err(_) => out.push_str(&items.to_string()),
    }
}

fn phase_fn(set: &PlanSetResult, p: &PhaseResult, out: &mut String) {
    let name = format!("{}_{}", set.ident(), phase_name(p));
    let _ = writeln!(
        out,
        "/// {} {} device(s), {}: {} launches, {} copies.",
        set.name,
        set.devices,
        phase_name(p),
        p.launches,
        p.transfers
    );
    let _ = writeln!(out, "fn {name}(x: &mut dyn Executor) {{");
    for s in &p.steps {
        step(s, out);
    }
    let _ = writeln!(out, "}}");
}

fn phase_name(p: &PhaseResult) -> &'static str {
    match p.phase {
        ds4_ir::schema::PhaseTag::Decode => "decode",
        ds4_ir::schema::PhaseTag::Prefill => "prefill",
    }
}

fn phase_plan(set: &PlanSetResult, p: &PhaseResult) -> TokenStream {
    let run = ident(&format!("{}_{}", set.ident(), phase_name(p)));
    let phase = ident(if phase_name(p) == "decode" {
        "Decode"
    } else {
        "Prefill"
    });
    let arena = &p.arena_bytes;
    let logits = match p.logits {
        Some(b) => {
            let b: TokenStream = buf(&b).parse().unwrap_or_default();
            quote!(Some(#b))
        }
        None => quote!(None),
    };
    let launches = p.launches;
    quote!(PhasePlan { phase: Phase::#phase, arena_bytes: &[#(#arena),*], logits: #logits, launches: #launches, run: #run })
}

fn profile_item(c: &Compiled, pi: usize) -> TokenStream {
    let prof = &c.module.graph.profiles[pi];
    let name = ident(&format!("PROFILE_{}", prof.name.to_uppercase()));
    let pname = &prof.name;
    let syms = prof.symbols.iter().map(|(k, v)| quote!((#k, #v)));
    let env = ds4_ir::expand::profile_env(&c.module, pi);
    let meta = prof.metadata.iter().map(|(k, e)| {
        let v = expr::eval_int(e, &env).unwrap_or(-1);
        quote!((#k, #v))
    });
    let ratios = &prof.compress_ratios;
    let hash = prof.hash_layer_count;
    let chunk = prof.chunk;
    let vocab = prof.symbols.get("V").copied().unwrap_or(0) as usize;
    let embd = prof.symbols.get("E").copied().unwrap_or(0) as usize;
    let budget = (prof.budget_gib * (1u64 << 30) as f64) as u64;
    quote!(
        const #name: ProfileInfo = ProfileInfo {
            name: #pname,
            symbols: &[#(#syms),*],
            metadata: &[#(#meta),*],
            compress_ratios: &[#(#ratios),*],
            hash_layer_count: #hash,
            chunk: #chunk,
            vocab: #vocab,
            n_embd: #embd,
            budget_bytes: #budget,
        };
    )
}

fn tables(set: &PlanSetResult, out: &mut String) {
    let up = set.ident().to_uppercase();
    let _ = writeln!(out, "static {up}_WEIGHTS: &[WeightSlot] = &[");
    for w in &set.slots.weights {
        let dims: Vec<String> = w.dims.iter().map(|d| d.to_string()).collect();
        let experts = match w.experts {
            Some((a, b)) => format!("Some(({a}, {b}))"),
            None => "None".into(),
        };
        let _ = writeln!(
            out,
            "    WeightSlot {{ gguf_name: \"{}\", ggml_type: {}, dims: &[{}], optional: {}, device: {}, experts: {experts}, bytes: {} }},",
            w.gguf,
            w.ggml_type,
            dims.join(", "),
            w.optional,
            w.device,
            w.bytes
        );
    }
    let _ = writeln!(out, "];");
    let _ = writeln!(out, "static {up}_STATES: &[StateSlot] = &[");
    for s in &set.slots.states {
        let layer = match s.layer {
            Some(l) => format!("Some({l})"),
            None => "None".into(),
        };
        let rows = match s.rows {
            RowsInst::Fixed(r) => format!("StateRows::Fixed({r})"),
            RowsInst::PerCtx { div, add } => {
                format!("StateRows::PerCtx {{ div: {div}, add: {add} }}")
            }
        };
        let init = match s.init {
            InitInst::Zero => "StateInit::Zero".to_string(),
            InitInst::NegInf => "StateInit::NegInf".to_string(),
            InitInst::Rope { base, freq_scale, ext_factor, corr_lo, corr_hi } => format!(
                "StateInit::Rope {{ base: {}, freq_scale: {}, ext_factor: {}, corr_lo: {}, corr_hi: {} }}",
                float(base),
                float(freq_scale),
                float(ext_factor),
                float(corr_lo),
                float(corr_hi)
            ),
        };
        let _ = writeln!(
            out,
            "    StateSlot {{ name: \"{}\", layer: {layer}, device: {}, dtype: DType::F32, width: {}, rows: {rows}, init: {init} }},",
            s.name,
            s.device,
            s.width
        );
    }
    let _ = writeln!(out, "];");
}

/// The whole `plans.rs`.
pub fn emit_plans(c: &Compiled) -> String {
    let mut out = String::from(
        "// @generated by ds4-codegen from graphs/ds4_flash.ron; do not edit.\n\
         #[allow(unused_imports)]\nuse ds4_runtime::plan::*;\n\n",
    );
    let mut profiles: Vec<usize> = c.sets.iter().map(|s| s.profile).collect();
    profiles.dedup();
    for &pi in &profiles {
        print(profile_item(c, pi), &mut out);
    }
    let pnames = profiles.iter().map(|&pi| {
        ident(&format!(
            "PROFILE_{}",
            c.module.graph.profiles[pi].name.to_uppercase()
        ))
    });
    print(
        quote!(
            /// Every profile of the graph.
            pub static PROFILES: &[ProfileInfo] = &[#(#pnames),*];
        ),
        &mut out,
    );

    let mut sets = Vec::new();
    for set in &c.sets {
        tables(set, &mut out);
        phase_fn(set, &set.decode, &mut out);
        phase_fn(set, &set.prefill, &mut out);
        let init = ident(&format!("{}_init", set.ident()));
        print(quote!(fn #init(_x: &mut dyn Executor) {}), &mut out);

        let up = set.ident().to_uppercase();
        let (wname, sname) = (
            ident(&format!("{up}_WEIGHTS")),
            ident(&format!("{up}_STATES")),
        );
        let prof = ident(&format!("PROFILE_{}", set.name.to_uppercase()));
        let (devices, fused) = (set.devices, set.fused);
        let zeros = vec![0usize; devices as usize];
        let (dec, pre) = (phase_plan(set, &set.decode), phase_plan(set, &set.prefill));
        let json = crate::summary::summary_json(c, set);
        sets.push(quote!(PlanSet {
            profile: &#prof,
            devices: #devices,
            fused: #fused,
            weights: #wname,
            states: #sname,
            init: PhasePlan { phase: Phase::Init, arena_bytes: &[#(#zeros),*], logits: None, launches: 0, run: #init },
            decode: #dec,
            prefill: #pre,
            summary_json: #json,
        }));
    }
    print(
        quote!(
            /// Every plan set: profile × device count × fusion.
            pub static PLAN_SETS: &[PlanSet] = &[#(#sets),*];
        ),
        &mut out,
    );

    let dots = c.sets.iter().flat_map(|set| {
        [&set.decode, &set.prefill].map(|p| {
            let (n, d, f, dot) = (&set.name, set.devices, set.fused, &p.dot);
            let ph = ident(if phase_name(p) == "decode" {
                "Decode"
            } else {
                "Prefill"
            });
            quote!((#n, #d, Phase::#ph, #f, #dot))
        })
    });
    print(
        quote!(
            /// Graphviz DOT per (profile, devices, phase, fused): devices as clusters.
            pub static DOTS: &[(&str, u8, Phase, bool, &str)] = &[#(#dots),*];
        ),
        &mut out,
    );
    out
}
