//! Fusion rules are data: turning one off in a copy of the graph changes the
//! emitted plan (more launches, the rule's kernel gone), and keeps every stage.

use ds4_codegen::lower::PlanStep;
use ds4_codegen::{compile, emit, Options};

const GRAPH: &str = include_str!("../graphs/ds4_flash.ron");

fn tiny() -> Options {
    Options {
        profiles: vec!["tiny".into()],
        ..Default::default()
    }
}

fn stages(steps: &[PlanStep]) -> Vec<(String, Option<u16>)> {
    steps
        .iter()
        .filter_map(|s| match s {
            PlanStep::Stage { name, layer, .. } => Some((name.clone(), *layer)),
            _ => None,
        })
        .collect()
}

#[test]
fn disabling_a_rule_in_a_copy_of_the_graph_changes_the_plan() {
    let rule = r#"(name: "shared_expert", kernel: "shared_expert", pattern:"#;
    let copy = GRAPH.replacen(
        rule,
        &rule.replace("pattern:", "enabled: false, pattern:"),
        1,
    );
    assert_ne!(copy, GRAPH);

    let base = compile("ds4_flash.ron", GRAPH, &tiny()).unwrap_or_else(|e| panic!("{e}"));
    let off = compile("copy.ron", &copy, &tiny()).unwrap_or_else(|e| panic!("{e}"));
    let (fa, fb) = (emit(&base), emit(&off));
    assert_ne!(fa.files["plans.rs"], fb.files["plans.rs"]);
    assert!(fa.files["plans.rs"].contains("Kernel::SharedExpert"));
    assert!(!fb.files["plans.rs"].contains("Kernel::SharedExpert"));

    for (a, b) in base.sets.iter().zip(&off.sets) {
        if a.fused {
            // The shared expert becomes q8_matvec (gate), matvec (up), swiglu, q8_matvec (down).
            assert_eq!(
                b.decode.launches,
                a.decode.launches + 3 * 6,
                "{}",
                a.ident()
            );
        } else {
            assert_eq!(a.decode.launches, b.decode.launches);
        }
        assert_eq!(stages(&a.decode.steps), stages(&b.decode.steps));
        assert_eq!(stages(&a.prefill.steps), stages(&b.prefill.steps));
    }
}

#[test]
fn the_option_and_the_ron_flag_agree() {
    let opts = Options {
        disabled_fusions: vec!["shared_expert".into()],
        ..tiny()
    };
    let rule = r#"(name: "shared_expert", kernel: "shared_expert", pattern:"#;
    let copy = GRAPH.replacen(
        rule,
        &rule.replace("pattern:", "enabled: false, pattern:"),
        1,
    );
    let a = emit(&compile("ds4_flash.ron", GRAPH, &opts).unwrap_or_else(|e| panic!("{e}")));
    let b = emit(&compile("ds4_flash.ron", &copy, &tiny()).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(a.files, b.files);
}
