//! The Ascend decode estimate that `plan` prints counts every weight byte a decoded
//! token reads: recomputed here from the weight table alone.

use ds4_runtime::plan::PlanSet;

fn plan(profile: &str) -> &'static PlanSet {
    ds4_rs::plans::PLAN_SETS
        .iter()
        .find(|s| s.profile.name == profile && s.devices == 2 && s.fused)
        .expect("plan set")
}

/// Bytes one decode token reads of each weight: a routed-expert shard reads the
/// selected experts only (k of n_expert, spread evenly in expectation); the
/// embedding, the hash table and the compressors' position biases one row each
/// (the token's, the position's); every other weight all of its bytes.
fn expected_weight_bytes(p: &PlanSet) -> f64 {
    let sym = |n: &str| {
        p.profile
            .symbols
            .iter()
            .find(|(s, _)| *s == n)
            .map(|(_, v)| *v as f64)
            .unwrap()
    };
    let (k, ne, e) = (sym("K"), sym("NE"), sym("E"));
    p.weights
        .iter()
        .map(|w| {
            if w.experts.is_some() {
                w.bytes as f64 * k / ne
            } else if w.gguf_name == "token_embd.weight" {
                e * 2.0
            } else if w.gguf_name.ends_with("ffn_gate_tid2eid.weight") {
                k * 4.0
            } else if w.gguf_name.ends_with("compressor_ape.weight") {
                w.dims[0] as f64 * 2.0
            } else {
                w.bytes as f64
            }
        })
        .sum()
}

#[test]
fn the_estimate_counts_every_weight_byte_of_a_decoded_token() {
    for profile in ["flash", "flash4", "tiny"] {
        let p = plan(profile);
        let est = ds4_runtime::ascend::cost::decode_estimate(p);
        let (got, want) = (est.total_weight_bytes() as f64, expected_weight_bytes(p));
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "{profile}: estimate reads {got} weight bytes, the table says {want}"
        );
        assert!(est.tokens_per_s > 0.0);
    }
}

#[test]
fn plan_prints_the_estimate_for_flash() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ds4-runtime"))
        .args(["plan", "--profile", "flash"])
        .output()
        .expect("run plan");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("ascend estimate") && text.contains("tokens/s decode"),
        "{text}"
    );
}
