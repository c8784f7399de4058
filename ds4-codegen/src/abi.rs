//! The kernel ABI: what each device kernel takes, in one table.
//!
//! Every primitive op of `docs/OPS.md` has one AscendC body `ds4_<family>::<op>` in
//! `kernels/ascendc/<family>.h` whose parameters are [`PRIMITIVES`]' row for it: device
//! addresses in OPS.md order (inputs, then outputs), then `n_tokens`, `pos0` where the op
//! reads `@pos`, then dimensions and attributes. A fused kernel of a plan is the sequence of
//! its parts' bodies in one launch, with an all-core barrier between parts; its parameters
//! are a barrier workspace followed by every part's parameters in order. Several part
//! sequences can share a fused kernel name (`router` ends in `router_topk` or in
//! `router_hash`): each distinct sequence is one [`Kernel`] of the library.
//!
//! From this table [`crate::emit_cpp`] writes the device entries and the `extern "C"`
//! launch wrappers, and [`emit_rust_bindings`] the runtime's view of the same library, so
//! the two sides cannot disagree about an argument. Every argument crosses the C boundary
//! as one `u64` slot (addresses as they are, `u32` zero-extended, `f32` as its bits):
//! `aclrtlaunch_<kernel>(uint32_t block_dim, void *stream, const uint64_t *args)`.

use crate::lower::{LaunchDesc, PlanStep};
use crate::Compiled;
use std::collections::BTreeSet;
use std::fmt::Write;

/// One parameter of a kernel body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// A device address the kernel reads.
    In(&'static str),
    /// A device address the kernel writes.
    Out(&'static str),
    U32(&'static str),
    F32(&'static str),
}

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Param::In(n) | Param::Out(n) | Param::U32(n) | Param::F32(n) => n,
        }
    }
}

/// The body of one primitive op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Primitive {
    pub op: &'static str,
    /// The family header `kernels/ascendc/<family>.h` (and namespace `ds4_<family>`).
    pub family: &'static str,
    pub params: &'static [Param],
}

const fn p(op: &'static str, family: &'static str, params: &'static [Param]) -> Primitive {
    Primitive { op, family, params }
}

use Param::{In, Out, F32, U32};

/// Every primitive body, in the order of `docs/OPS.md`'s ABI table.
#[rustfmt::skip]
pub const PRIMITIVES: &[Primitive] = &[
    p("embed", "elementwise", &[In("table"), In("tokens"), Out("y"), U32("n_tokens"), U32("n_embd"), U32("vocab")]),
    p("hc_expand", "elementwise", &[In("x"), Out("hc"), U32("n_tokens"), U32("n_embd")]),
    p("take_last", "elementwise", &[In("x"), Out("y"), U32("n_tokens"), U32("n")]),
    p("add", "elementwise", &[In("a"), In("b"), Out("y"), U32("n_tokens"), U32("n")]),
    p("swiglu", "elementwise", &[In("g"), In("u"), Out("m"), U32("n_tokens"), U32("n"), F32("clamp")]),
    p("moe_swiglu", "elementwise", &[In("g"), In("u"), In("wt"), Out("mid"), U32("n_tokens"), U32("k"), U32("n_ff"), F32("clamp")]),
    p("matvec_f16", "matvec", &[In("w"), In("x"), Out("y"), U32("n_tokens"), U32("n_in"), U32("n_out")]),
    p("matvec_q8_0", "matvec", &[In("w"), In("xq"), Out("y"), U32("n_tokens"), U32("n_in"), U32("n_out")]),
    p("matvec_q8_0_grouped", "matvec", &[In("w"), In("xq"), Out("y"), U32("n_tokens"), U32("group_in"), U32("n_out"), U32("groups")]),
    p("quantize_q8_0", "matvec", &[In("x"), Out("xq"), U32("n_tokens"), U32("n")]),
    p("quantize_q8_k", "matvec", &[In("x"), Out("xq"), U32("n_tokens"), U32("n")]),
    p("hc_split", "hc", &[In("mix"), In("scale"), In("base"), Out("pre"), Out("post"), Out("comb"), U32("n_tokens"), U32("iters"), F32("eps")]),
    p("hc_weighted_sum", "hc", &[In("hc"), In("w"), Out("x"), U32("n_tokens"), U32("n_embd")]),
    p("hc_post", "hc", &[In("y"), In("res"), In("post"), In("comb"), Out("out"), U32("n_tokens"), U32("n_embd")]),
    p("hc_head_weights", "hc", &[In("pre"), In("scale"), In("base"), Out("w"), U32("n_tokens"), F32("eps")]),
    p("router_probs", "router", &[In("logits"), Out("prob"), U32("n_tokens"), U32("n_expert")]),
    p("router_topk", "router", &[In("prob"), In("bias"), Out("ids"), Out("wt"), U32("n_tokens"), U32("n_expert"), U32("k"), F32("scale")]),
    p("router_hash", "router", &[In("prob"), In("tid2eid"), In("tokens"), Out("ids"), Out("wt"), U32("n_tokens"), U32("n_expert"), U32("k"), F32("scale"), U32("vocab")]),
    p("moe_gate_up", "moe", &[In("gate"), In("up"), In("xq"), In("ids"), Out("g"), Out("u"), U32("n_tokens"), U32("n_embd"), U32("n_ff"), U32("n_expert"), U32("k"), U32("e0"), U32("e1")]),
    p("moe_down", "moe", &[In("down"), In("midq"), In("ids"), Out("y"), U32("n_tokens"), U32("n_ff"), U32("n_embd"), U32("n_expert"), U32("k"), U32("e0"), U32("e1")]),
    p("rope", "rope_kv", &[In("x"), In("table"), Out("y"), U32("n_tokens"), U32("pos0"), U32("heads"), U32("head_dim"), U32("n_rot"), U32("inverse"), U32("table_rows")]),
    p("fp8_kv", "rope_kv", &[In("x"), Out("y"), U32("n_tokens"), U32("head_dim"), U32("n_quant")]),
    p("indexer_qat", "rope_kv", &[In("q"), Out("y"), U32("n_tokens"), U32("heads"), U32("head_dim")]),
    p("kv_push_raw", "rope_kv", &[In("kv"), Out("raw"), U32("n_tokens"), U32("pos0"), U32("head_dim"), U32("window"), U32("ring_rows")]),
    p("attention", "attention", &[In("q"), In("sinks"), In("raw"), In("comp"), In("sel"), Out("out"), U32("n_tokens"), U32("pos0"), U32("heads"), U32("head_dim"), U32("window"), U32("ratio"), U32("ring_rows"), U32("comp_rows"), U32("top_k")]),
    p("indexer_topk", "attention", &[In("q"), In("wts"), In("index_rows"), Out("sel"), U32("n_tokens"), U32("pos0"), U32("heads"), U32("head_dim"), U32("top_k"), U32("ratio"), U32("n_rows")]),
    p("compressor_update", "rope_kv", &[In("kv_t"), In("sc_t"), In("ape"), In("norm"), Out("st_kv"), Out("st_score"), Out("comp"), In("table"), U32("n_tokens"), U32("pos0"), U32("ratio"), U32("head_dim"), U32("n_rot"), U32("post"), U32("n_quant"), F32("eps"), U32("comp_rows"), U32("table_rows")]),
    p("rms_norm_plain", "norm", &[In("x"), Out("y"), U32("n_tokens"), U32("n"), F32("eps")]),
    p("rms_norm", "norm", &[In("x"), In("w"), Out("y"), U32("n_tokens"), U32("n"), F32("eps")]),
    p("head_rms_norm", "norm", &[In("x"), Out("y"), U32("n_tokens"), U32("heads"), U32("head_dim"), F32("eps")]),
];

/// The primitive body of `op`.
pub fn primitive(op: &str) -> Option<&'static Primitive> {
    PRIMITIVES.iter().find(|p| p.op == op)
}

/// Bytes of barrier workspace a fused kernel needs per block (soft SyncAll).
pub const SYNC_BYTES_PER_BLOCK: usize = 32;

/// One kernel of the device library: a primitive, or one part sequence of a fused kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The wrapper is `aclrtlaunch_<name>`, the entry `ds4k_<name>`.
    pub name: String,
    /// The op or fused kernel of the plans (`Launch.kernel`).
    pub op: String,
    /// For a fused kernel: its parts' primitives in order; empty for a primitive.
    pub parts: Vec<&'static Primitive>,
}

impl Kernel {
    /// The parameters of the wrapper: a primitive's own, or for a fused kernel the
    /// barrier workspace then each part's parameters.
    pub fn params(&self) -> Vec<Param> {
        match primitive(&self.op) {
            Some(p) if self.parts.is_empty() => p.params.to_vec(),
            _ => {
                let mut v = vec![Param::Out("sync_ws")];
                for p in &self.parts {
                    v.extend_from_slice(p.params);
                }
                v
            }
        }
    }
}

/// Every kernel the library needs for `c`'s plans: all primitives, then each distinct
/// fused part sequence (named `<fused>`, or `<fused>_<i>` when a name has several).
/// Fails with the fused kernel whose part has no primitive body.
pub fn library(c: &Compiled) -> Result<Vec<Kernel>, String> {
    let mut fused: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
    let mut visit = |l: &LaunchDesc| -> Result<(), String> {
        if l.parts.is_empty() {
            return match primitive(&l.kernel) {
                Some(_) => Ok(()),
                None => Err(format!("kernel {} has no device body (abi.rs)", l.kernel)),
            };
        }
        fused.insert((
            l.kernel.clone(),
            l.parts.iter().map(|p| p.kernel.clone()).collect(),
        ));
        Ok(())
    };
    for set in &c.sets {
        for phase in [&set.decode, &set.prefill] {
            for s in &phase.steps {
                if let PlanStep::Launch(l) = s {
                    visit(l)?;
                }
            }
        }
    }

    let mut out: Vec<Kernel> = PRIMITIVES
        .iter()
        .map(|p| Kernel {
            name: p.op.to_string(),
            op: p.op.to_string(),
            parts: Vec::new(),
        })
        .collect();
    let names: Vec<&String> = fused.iter().map(|(n, _)| n).collect();
    let mut index = 0;
    let mut prev: Option<&str> = None;
    for (name, parts) in &fused {
        index = if prev == Some(name.as_str()) {
            index + 1
        } else {
            0
        };
        prev = Some(name);
        let several = names.iter().filter(|n| **n == name).count() > 1;
        let parts = parts
            .iter()
            .map(|k| primitive(k).ok_or_else(|| format!("part {k} of {name} has no device body")))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Kernel {
            name: if several {
                format!("{name}_{index}")
            } else {
                name.clone()
            },
            op: name.clone(),
            parts,
        });
    }
    Ok(out)
}

/// The runtime's bindings of the library (`include!`d by `ds4-runtime`): the table of
/// kernels with their parameters, the wrappers' symbol names, and one typed Rust function
/// per primitive (`aclrtlaunch_<op>(block_dim, stream, <params>)`) that packs its arguments
/// and calls the emulated wrapper.
pub fn emit_rust_bindings(lib: &[Kernel]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "// @generated by ds4-codegen (abi.rs); do not edit.\n");
    let _ = writeln!(
        s,
        "/// Barrier workspace bytes a fused kernel needs per block.\npub const SYNC_BYTES_PER_BLOCK: usize = {SYNC_BYTES_PER_BLOCK};\n"
    );
    let _ = writeln!(s, "/// Every kernel of the library, primitives first.");
    let _ = writeln!(s, "pub const KERNELS: &[KernelAbi] = &[");
    for k in lib {
        let params: Vec<String> = k.params().iter().map(|p| format!("P::{p:?}")).collect();
        let parts: Vec<String> = k.parts.iter().map(|p| format!("{:?}", p.op)).collect();
        let _ = writeln!(
            s,
            "    KernelAbi {{ name: {:?}, op: {:?}, parts: &[{}], params: &[{}] }},",
            k.name,
            k.op,
            parts.join(", "),
            params.join(", ")
        );
    }
    let _ = writeln!(s, "];\n");

    let _ = writeln!(s, "extern \"C\" {{");
    for k in lib {
        let _ = writeln!(
            s,
            "    #[link_name = \"aclrtlaunch_{0}\"]\n    fn packed_{0}(bd: u32, s: *mut c_void, a: *const u64);",
            k.name
        );
    }
    let _ = writeln!(s, "}}\n");
    let _ = writeln!(
        s,
        "/// The emulated wrappers, in the order of [`KERNELS`].\npub static EMULATED: &[Packed] = &["
    );
    for k in lib {
        let _ = writeln!(s, "    packed_{},", k.name);
    }
    let _ = writeln!(s, "];\n");

    for k in lib.iter().filter(|k| k.parts.is_empty()) {
        let params = k.params();
        let sig: Vec<String> = params
            .iter()
            .map(|p| match p {
                Param::In(n) => format!("{n}: *const u8"),
                Param::Out(n) => format!("{n}: *mut u8"),
                Param::U32(n) => format!("{n}: u32"),
                Param::F32(n) => format!("{n}: f32"),
            })
            .collect();
        let vals: Vec<String> = params
            .iter()
            .map(|p| match p {
                Param::In(n) | Param::Out(n) => format!("{n} as u64"),
                Param::U32(n) => format!("{n} as u64"),
                Param::F32(n) => format!("{n}.to_bits() as u64"),
            })
            .collect();
        let _ = writeln!(
            s,
            "/// `aclrtlaunch_{0}` with typed arguments (emulated library).\n///\n/// # Safety\n/// The addresses must cover what the kernel reads and writes (kernels/ascendc/README.md).\n#[allow(clippy::too_many_arguments)]\npub unsafe fn aclrtlaunch_{0}(bd: u32, s: *mut c_void, {1}) {{\n    let a = [{2}];\n    packed_{0}(bd, s, a.as_ptr())\n}}\n",
            k.name,
            sig.join(", "),
            vals.join(", ")
        );
    }
    s
}
