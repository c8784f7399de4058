//! The Rust emitter: `plans.rs`, the generated API of `ds4_runtime::plan`.
//!
//! The file defines `PROFILES`, `PLAN_SETS` (every profile × device count ×
//! fusion setting), `DOTS`, and one function per plan (`tiny_d2_fused_decode`)
//! that calls the [`Executor`](../ds4_runtime/plan/trait.Executor.html) in order
//! with constant launches. Items are built with `quote` and printed one at a time
//! by `prettyplease` (printing the whole file at once costs more memory for no
//! gain); the concatenation is deterministic.

use crate::lower::{ArgDesc, AttrDesc, BufDesc, LaunchDesc, PlanStep};
use crate::{Compiled, PhaseResult, PlanSetResult};
use ds4_ir::catalog::ActType;
use ds4_ir::expanded::{InitInst, RowsInst};
use ds4_ir::expr;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

fn ident(s: &str) -> Ident {
    Ident::new(s, Span::call_site())
}

fn lit_f64(v: f64) -> Literal {
    Literal::f64_suffixed(v)
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

fn dtype(t: ActType) -> TokenStream {
    match t {
        ActType::F32 => quote!(DType::F32),
        ActType::I32 => quote!(DType::I32),
        ActType::Q8_0 => quote!(DType::Q8_0),
        ActType::Q8K => quote!(DType::Q8K),
    }
}

fn buf(b: &BufDesc) -> TokenStream {
    let (dev, off, rb, w, dt) = (b.dev, b.offset, b.row_bytes, b.width, dtype(b.dtype));
    quote!(Buf { dev: #dev, offset: #off, row_bytes: #rb, width: #w, dtype: #dt })
}

fn launch(l: &LaunchDesc) -> TokenStream {
    let kernel = ident(&kernel_variant(&l.kernel));
    let device = l.device;
    let args = l.args.iter().map(|a| match a {
        ArgDesc::Buf(b) => {
            let b = buf(b);
            quote!(Arg::Buf(#b))
        }
        ArgDesc::Weight(i) => quote!(Arg::Weight(#i)),
        ArgDesc::State(i) => quote!(Arg::State(#i)),
        ArgDesc::Tokens => quote!(Arg::Tokens),
        ArgDesc::Pos => quote!(Arg::Pos),
    });
    let attrs = l.attrs.iter().map(|(k, v)| match v {
        AttrDesc::Int(i) => quote!((#k, AttrValue::Int(#i))),
        AttrDesc::Float(f) => {
            let f = lit_f64(*f);
            quote!((#k, AttrValue::Float(#f)))
        }
    });
    let parts = l.parts.iter().map(launch);
    let one_row = l.one_row;
    quote!(Launch {
        kernel: Kernel::#kernel,
        device: #device,
        args: &[#(#args),*],
        attrs: &[#(#attrs),*],
        parts: &[#(#parts),*],
        one_row: #one_row,
    })
}

fn step(s: &PlanStep) -> TokenStream {
    match s {
        PlanStep::Launch(l) => {
            let l = launch(l);
            quote!(x.launch(&#l);)
        }
        PlanStep::Sync(d) => quote!(x.sync(#d);),
        PlanStep::Copy { src, dst, one_row, .. } => {
            let (s, d) = (buf(src), buf(dst));
            quote!(x.copy(#s, #d, #one_row);)
        }
        PlanStep::Stage { name, layer, buf: b, one_row, counter } => {
            let layer = match layer {
                Some(l) => quote!(Some(#l)),
                None => quote!(None),
            };
            let b = buf(b);
            let file = if *counter { quote!(StageFile::Counter) } else { quote!(StageFile::PerPhase) };
            quote!(x.stage(&StageTap { name: #name, layer: #layer, buf: #b, one_row: #one_row, file: #file });)
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
    let name = ident(&format!("{}_{}", set.ident(), phase_name(p)));
    let steps = p.steps.iter().map(step);
    let doc = format!(
        " {} {} device(s), {}: {} launches, {} copies.",
        set.name,
        set.devices,
        phase_name(p),
        p.launches,
        p.transfers
    );
    print(quote!(#[doc = #doc] fn #name(x: &mut dyn Executor) { #(#steps)* }), out);
}

fn phase_name(p: &PhaseResult) -> &'static str {
    match p.phase {
        ds4_ir::schema::PhaseTag::Decode => "decode",
        ds4_ir::schema::PhaseTag::Prefill => "prefill",
    }
}

fn phase_plan(set: &PlanSetResult, p: &PhaseResult) -> TokenStream {
    let run = ident(&format!("{}_{}", set.ident(), phase_name(p)));
    let phase = ident(if phase_name(p) == "decode" { "Decode" } else { "Prefill" });
    let arena = &p.arena_bytes;
    let logits = match p.logits {
        Some(b) => {
            let b = buf(&b);
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

fn tables(set: &PlanSetResult) -> TokenStream {
    let up = set.ident().to_uppercase();
    let wname = ident(&format!("{up}_WEIGHTS"));
    let sname = ident(&format!("{up}_STATES"));
    let ws = set.slots.weights.iter().map(|w| {
        let (g, t, dims, opt, dev, bytes) = (&w.gguf, w.ggml_type, w.dims.iter().map(|&d| d as u64), w.optional, w.device, w.bytes);
        let experts = match w.experts {
            Some((a, b)) => quote!(Some((#a, #b))),
            None => quote!(None),
        };
        quote!(WeightSlot { gguf_name: #g, ggml_type: #t, dims: &[#(#dims),*], optional: #opt, device: #dev, experts: #experts, bytes: #bytes })
    });
    let ss = set.slots.states.iter().map(|s| {
        let (n, dev, w) = (&s.name, s.device, s.width);
        let layer = match s.layer {
            Some(l) => quote!(Some(#l)),
            None => quote!(None),
        };
        let rows = match s.rows {
            RowsInst::Fixed(r) => quote!(StateRows::Fixed(#r)),
            RowsInst::PerCtx { div, add } => quote!(StateRows::PerCtx { div: #div, add: #add }),
        };
        let init = match s.init {
            InitInst::Zero => quote!(StateInit::Zero),
            InitInst::NegInf => quote!(StateInit::NegInf),
            InitInst::Rope { base, freq_scale, ext_factor, corr_lo, corr_hi } => {
                let (a, b, c, d, e) = (lit_f64(base), lit_f64(freq_scale), lit_f64(ext_factor), lit_f64(corr_lo), lit_f64(corr_hi));
                quote!(StateInit::Rope { base: #a, freq_scale: #b, ext_factor: #c, corr_lo: #d, corr_hi: #e })
            }
        };
        quote!(StateSlot { name: #n, layer: #layer, device: #dev, dtype: DType::F32, width: #w, rows: #rows, init: #init })
    });
    quote!(
        static #wname: &[WeightSlot] = &[#(#ws),*];
        static #sname: &[StateSlot] = &[#(#ss),*];
    )
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
    let pnames = profiles.iter().map(|&pi| ident(&format!("PROFILE_{}", c.module.graph.profiles[pi].name.to_uppercase())));
    print(quote!(
        /// Every profile of the graph.
        pub static PROFILES: &[ProfileInfo] = &[#(#pnames),*];
    ), &mut out);

    let mut sets = Vec::new();
    for set in &c.sets {
        print(tables(set), &mut out);
        phase_fn(set, &set.decode, &mut out);
        phase_fn(set, &set.prefill, &mut out);
        let init = ident(&format!("{}_init", set.ident()));
        print(quote!(fn #init(_x: &mut dyn Executor) {}), &mut out);

        let up = set.ident().to_uppercase();
        let (wname, sname) = (ident(&format!("{up}_WEIGHTS")), ident(&format!("{up}_STATES")));
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
    print(quote!(
        /// Every plan set: profile × device count × fusion.
        pub static PLAN_SETS: &[PlanSet] = &[#(#sets),*];
    ), &mut out);

    let dots = c.sets.iter().flat_map(|set| {
        [&set.decode, &set.prefill].map(|p| {
            let (n, d, f, dot) = (&set.name, set.devices, set.fused, &p.dot);
            let ph = ident(if phase_name(p) == "decode" { "Decode" } else { "Prefill" });
            quote!((#n, #d, Phase::#ph, #f, #dot))
        })
    });
    print(quote!(
        /// Graphviz DOT per (profile, devices, phase, fused): devices as clusters.
        pub static DOTS: &[(&str, u8, Phase, bool, &str)] = &[#(#dots),*];
    ), &mut out);
    out
}
