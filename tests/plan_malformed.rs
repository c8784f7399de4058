//! Malformed graphs: each is the shipped graph with one mistake, and each must be
//! rejected with an error naming the file, the line of the mistake and a column,
//! without a panic.

use ds4_codegen::{compile, Options};

const GRAPH: &str = include_str!("../graphs/ds4_flash.ron");

/// (name, text to replace, replacement, expected message fragment, error on the
/// replaced line). The replaced text must occur in the graph.
const CASES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "syntax",
        r#"(op: "hc_expand", in: ["embd"], out: ["hc"]),"#,
        r#"(op: "hc_expand", in: ["embd"] out: ["hc"]),"#,
        "RON",
        true,
    ),
    (
        "unknown op",
        r#"(op: "router_probs","#,
        r#"(op: "router_probz","#,
        "unknown op kind `router_probz`",
        true,
    ),
    (
        "unknown fused kernel",
        r#"kernel: "router","#,
        r#"kernel: "routerx","#,
        "unknown fused kernel",
        true,
    ),
    (
        "unknown op in pattern",
        r#""router_topk|router_hash"]"#,
        r#""router_topk|router_hsh"]"#,
        "unknown op kind `router_hsh`",
        true,
    ),
    (
        "dangling value",
        r#"in: ["attn_out", "hc", "attn_post", "attn_comb"]"#,
        r#"in: ["attn_outt", "hc", "attn_post", "attn_comb"]"#,
        "dangling value `attn_outt`",
        true,
    ),
    (
        "doubly defined value",
        r#"out: ["kv_normed"]"#,
        r#"out: ["kv_raw"]"#,
        "defined twice",
        true,
    ),
    (
        "shape mismatch",
        r#"(name: "attn_q_a_norm", gguf: "blk.{layer}.attn_q_a_norm.weight", ty: F32, dims: ["Q"]),"#,
        r#"(name: "attn_q_a_norm", gguf: "blk.{layer}.attn_q_a_norm.weight", ty: F32, dims: ["E"]),"#,
        "shape mismatch",
        false,
    ),
    (
        "dtype mismatch",
        r#"(op: "matvec_q8_0", in: ["w:attn_kv", "attn_norm_q"], out: ["kv_raw"]),"#,
        r#"(op: "matvec_q8_0", in: ["w:attn_kv", "attn_norm"], out: ["kv_raw"]),"#,
        "dtype mismatch",
        true,
    ),
    (
        "unbound symbol",
        r#"dims: ["E", "Q"]),"#,
        r#"dims: ["E", "QQ"]),"#,
        "unbound symbol `QQ`",
        true,
    ),
    (
        "duplicate weight",
        r#"(name: "ffn_down_shexp","#,
        r#"(name: "ffn_up_shexp","#,
        "duplicate weight name",
        true,
    ),
    (
        "unknown weight",
        r#""w:attn_sinks""#,
        r#""w:attn_sink""#,
        "unknown weight `attn_sink`",
        true,
    ),
    (
        "unknown state",
        r#"in: ["kv", "s:raw_kv", "@pos"]"#,
        r#"in: ["kv", "s:raw_kvv", "@pos"]"#,
        "unknown state `raw_kvv`",
        true,
    ),
    (
        "unknown tag",
        r#"out: ["sel"], attrs: {"heads": "IH", "head_dim": "ID", "top_k": "TOPK", "ratio": "4"}, when: ["r4"]"#,
        r#"out: ["sel"], attrs: {"heads": "IH", "head_dim": "ID", "top_k": "TOPK", "ratio": "4"}, when: ["r8"]"#,
        "unknown tag `r8`",
        true,
    ),
    (
        "unknown attribute",
        r#"attrs: {"groups": "G"}"#,
        r#"attrs: {"groupz": "G"}"#,
        "has no attribute `groupz`",
        true,
    ),
    (
        "missing attribute",
        r#"(op: "swiglu", in: ["sh_gate", "sh_up"], out: ["sh_mid"], attrs: {"clamp": "clamp"}),"#,
        r#"(op: "swiglu", in: ["sh_gate", "sh_up"], out: ["sh_mid"]),"#,
        "needs attribute `clamp`",
        true,
    ),
    (
        "wrong output count",
        r#"out: ["a_pre", "attn_post", "attn_comb"]"#,
        r#"out: ["a_pre", "attn_post", "attn_comb", "a_extra"]"#,
        "has 3 outputs, the RON names 4",
        true,
    ),
    (
        "undefined block output",
        r#"outputs: ["logits"],"#,
        r#"outputs: ["logit"],"#,
        "never defined",
        true,
    ),
    (
        "duplicate block",
        r#"name: "head","#,
        r#"name: "layer","#,
        "duplicate block name",
        true,
    ),
    (
        "stage of unknown value",
        r#"(value: "shared"),"#,
        r#"(value: "sharedd"),"#,
        "unknown value `sharedd`",
        true,
    ),
    (
        "over budget",
        "budget_gib: 42.7,",
        "budget_gib: 30.0,",
        "over its budget",
        false,
    ),
];

fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("fixture text not in the graph: {needle}"));
    text[..at].matches('\n').count() + 1
}

#[test]
fn malformed_graphs_are_rejected_with_positions() {
    assert!(CASES.len() >= 12);
    for &(name, from, to, want, on_line) in CASES {
        let bad = GRAPH.replacen(from, to, 1);
        assert_ne!(bad, GRAPH, "{name}: fixture did not apply");
        let opts = Options {
            profiles: vec!["flash".into(), "tiny".into()],
            fused_only: vec!["flash".into()],
            ..Default::default()
        };
        let err = match std::panic::catch_unwind(|| compile("bad.ron", &bad, &opts)) {
            Ok(Ok(_)) => panic!("{name}: accepted"),
            Ok(Err(e)) => e,
            Err(_) => panic!("{name}: panicked"),
        };
        let text = err.to_string();
        assert!(text.starts_with("bad.ron:"), "{name}: {text}");
        assert!(text.contains(want), "{name}: `{text}` lacks `{want}`");
        assert!(err.loc.line > 0 && err.loc.col > 0, "{name}: {text}");
        if on_line {
            assert_eq!(err.loc.line, line_of(GRAPH, from), "{name}: {text}");
        }
    }
}

#[test]
fn not_ron_at_all() {
    for bad in ["", "Graph(", "[1, 2", "Graph(profiles: 3)"] {
        let err = match compile("bad.ron", bad, &Options::default()) {
            Ok(_) => panic!("accepted {bad:?}"),
            Err(e) => e,
        };
        assert!(err.to_string().starts_with("bad.ron:1:"), "{err}");
    }
}
