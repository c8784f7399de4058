//! The reference vectors (VERIFY.md): every case, teacher-forced through the
//! compiled plan on the CPU backend, must reproduce the reference logits.

mod common;

use common::{argmax, cases, tiny};
use ds4_runtime::session::Session;

/// Runs a case: prefill the prompt, then feed the reference continuation.
/// Returns the logits after each step (step 0 = after the prompt).
fn run_case(case: &common::Case, devices: u8, fused: bool, chunk: Option<usize>) -> Vec<Vec<f32>> {
    let plans = ds4_rs::run::plan_set(tiny().profile.name, devices, fused).expect("plan set");
    let mut s = Session::new(tiny(), plans, 4096, chunk).expect("session");
    let mut out = vec![s.prefill(&case.prompt_ids).expect("prefill").to_vec()];
    for &t in &case.generated_ids[..case.generated_ids.len() - 1] {
        out.push(s.decode(t).expect("decode").to_vec());
    }
    out
}

#[test]
fn every_case_matches_the_reference_logits() {
    let mut report = Vec::new();
    for case in cases() {
        let steps = run_case(&case, 1, true, None);
        let mut worst = 0f32;
        for (i, &step) in case.full_rows.iter().enumerate() {
            let want = case.full_row(i);
            let got = &steps[step];
            let max = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            worst = worst.max(max);
            assert!(
                max <= 0.02,
                "{} step {step}: max |logit diff| {max} > 0.02",
                case.name
            );
            assert_eq!(
                argmax(got),
                argmax(&want),
                "{} step {step}: argmax differs",
                case.name
            );
        }
        // The top-20 of every step (not only the stored rows).
        for (step, top) in case.top20.iter().enumerate() {
            for &(id, logit) in top {
                let d = (steps[step][id as usize] - logit).abs();
                assert!(
                    d <= 0.02,
                    "{} step {step} token {id}: |diff| {d} > 0.02",
                    case.name
                );
            }
        }
        report.push(format!("{} {worst:.4}", case.name));
    }
    eprintln!("max |logit diff| per case: {}", report.join(", "));
}
