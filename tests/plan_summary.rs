//! Snapshots of the plan summaries (the JSON each `PlanSet` carries): any change
//! to the graph or the compiler that moves a launch count, an arena, a transfer or
//! a byte total shows up here for review (`cargo insta review`).

use ds4_rs::plans::PLAN_SETS;
use serde_json::Value;

fn snapshot(profile: &str, devices: u8, phase: &str) -> String {
    let mut out = Vec::new();
    for fused in [true, false] {
        let set = PLAN_SETS
            .iter()
            .find(|s| s.profile.name == profile && s.devices == devices && s.fused == fused)
            .unwrap_or_else(|| panic!("no plan set {profile} d{devices} fused={fused}"));
        let mut v: Value = serde_json::from_str(set.summary_json).expect("summary JSON");
        let other = if phase == "decode" {
            "prefill"
        } else {
            "decode"
        };
        if let Some(o) = v.as_object_mut() {
            o.remove(other);
        }
        out.push(v);
    }
    serde_json::to_string_pretty(&out).unwrap_or_default()
}

#[test]
fn summaries() {
    for profile in ["flash", "tiny", "flash4"] {
        for phase in ["decode", "prefill"] {
            for devices in [1u8, 2] {
                insta::assert_snapshot!(
                    format!("{profile}_d{devices}_{phase}"),
                    snapshot(profile, devices, phase)
                );
            }
        }
    }
}
