//! `ds4-runtime plan`: the DOT output renders with Graphviz, and `--json` prints
//! the documented fields (docs/PLAN_JSON.md).

use std::io::Write;
use std::process::{Command, Stdio};

fn plan(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ds4-runtime"))
        .arg("plan")
        .args(args)
        .output()
        .expect("run ds4-runtime plan");
    assert!(
        out.status.success(),
        "plan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn render(dot: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graphviz `dot` on PATH (apt-get install graphviz)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot.as_bytes())
        .expect("write DOT");
    let out = child.wait_with_output().expect("dot runs");
    assert!(
        out.status.success(),
        "dot -Tsvg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn plan_dot_renders_with_graphviz() {
    for args in [
        &["--profile", "tiny", "--devices", "2", "--dot"][..],
        &[
            "--profile",
            "tiny",
            "--devices",
            "2",
            "--dot",
            "--unfused",
            "--phase",
            "prefill",
        ][..],
        &["--profile", "flash4", "--devices", "1", "--dot"][..],
    ] {
        let dot = plan(args);
        assert!(dot.starts_with("digraph"));
        if args.contains(&"2") {
            assert!(
                dot.contains("cluster_dev1") && dot.contains("color=red"),
                "devices as clusters, transfers as edges"
            );
        }
        assert!(render(&dot).contains("<svg"));
    }
}

#[test]
fn plan_json_has_the_documented_fields() {
    let v: serde_json::Value =
        serde_json::from_str(&plan(&["--profile", "flash", "--json"])).expect("JSON");
    for k in [
        "profile",
        "devices",
        "ctx",
        "layers",
        "chunk",
        "decode",
        "prefill",
        "per_device",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    for k in [
        "ops_unfused",
        "ops_fused",
        "launches_fused",
        "launches_unfused",
        "launches_per_layer_fused",
        "launches_per_layer_unfused",
        "arena_bytes",
        "max_live_bytes",
        "no_reuse_bytes",
        "transfers",
        "transfer_bytes",
    ] {
        assert!(v["decode"].get(k).is_some(), "missing decode.{k}");
    }
    let budget = (42.7 * (1u64 << 30) as f64) as u64;
    for d in v["per_device"].as_array().expect("per_device") {
        assert!(d["total_bytes"].as_u64().expect("total") <= budget);
        assert_eq!(d["fits"], true);
    }
}

#[test]
fn plan_text_prints_budget_and_launches() {
    let text = plan(&["--profile", "flash"]);
    assert!(text.contains("budget 42.70 GiB, fits"), "{text}");
    assert!(text.contains("kernel launches per decoded token: fused"));
    assert!(text.contains("max-live lower bound"));
}
