//! Plans that must agree (within 1e-4 relative RMS of the logits): fused and
//! unfused, one and two devices, every prefill chunk size, decode and prefill.

mod common;

use common::{cases, rel_rms, tiny};
use ds4_runtime::session::Session;

const BOUND: f64 = 1e-4;

/// Logits after prefilling `prompt` in chunks of `chunk`, then decoding `tail`.
fn logits(
    devices: u8,
    fused: bool,
    chunk: Option<usize>,
    prompt: &[u32],
    tail: &[u32],
) -> Vec<Vec<f32>> {
    let plans = ds4_rs::run::plan_set(tiny().profile.name, devices, fused).expect("plans");
    let mut s = Session::new(tiny(), plans, 4096, chunk).expect("session");
    let mut out = vec![s.prefill(prompt).expect("prefill").to_vec()];
    for &t in tail {
        out.push(s.decode(t).expect("decode").to_vec());
    }
    out
}

fn assert_close(what: &str, a: &[Vec<f32>], b: &[Vec<f32>]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = rel_rms(x, y);
        assert!(
            d <= BOUND,
            "{what}: step {i} relative RMS {d:.3e} > {BOUND:e}"
        );
    }
}

/// c4: 304 prompt tokens (the raw window wraps, ratio-4 and ratio-128 rows are
/// emitted) and a few decoded tokens.
fn case() -> common::Case {
    cases()
        .into_iter()
        .find(|c| c.name.starts_with("c4"))
        .expect("case c4")
}

#[test]
fn fused_and_unfused_plans_agree() {
    let c = case();
    let tail = &c.generated_ids[..4];
    assert_close(
        "fused vs unfused",
        &logits(1, true, None, &c.prompt_ids, tail),
        &logits(1, false, None, &c.prompt_ids, tail),
    );
}

#[test]
fn one_and_two_devices_agree() {
    let c = case();
    let tail = &c.generated_ids[..4];
    let one = logits(1, true, None, &c.prompt_ids, tail);
    assert_close(
        "1 vs 2 devices (fused)",
        &one,
        &logits(2, true, None, &c.prompt_ids, tail),
    );
    assert_close(
        "1 vs 2 devices (unfused)",
        &one,
        &logits(2, false, None, &c.prompt_ids, tail),
    );
}

#[test]
fn prefill_chunk_sizes_agree() {
    let c = case();
    let whole = logits(1, true, Some(c.prompt_ids.len()), &c.prompt_ids, &[]);
    for chunk in [1, 7, 64] {
        assert_close(
            &format!("chunk {chunk} vs whole prompt"),
            &logits(1, true, Some(chunk), &c.prompt_ids, &[]),
            &whole,
        );
    }
}

#[test]
fn a_decoded_token_equals_the_same_token_prefilled() {
    let c = case();
    let (prompt, next) = (&c.prompt_ids[..100], c.prompt_ids[100]);
    let decoded = logits(1, true, None, prompt, &[next]);
    let prefilled = logits(1, true, None, &c.prompt_ids[..101], &[]);
    assert_close("decode vs prefill", &decoded[1..], &prefilled);
}
