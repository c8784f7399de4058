//! The binary as a user meets it: the main job, and bad input that must end in
//! one clear line and a non-zero exit, never a panic.

mod common;

use std::process::{Command, Output};

fn ds4(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ds4-runtime"))
        .args(args)
        .env(
            "DS4_CACHE_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        )
        .output()
        .expect("run ds4-runtime")
}

/// Asserts a failure with one line on stderr mentioning `needle`.
fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "expected one line, got: {err}"
    );
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "expected '{needle}' in: {err}"
    );
}

fn tiny() -> String {
    common::tiny_path().display().to_string()
}

#[test]
fn hello_prints_text_and_the_summary_line() {
    let out = ds4(&["-m", &tiny(), "-p", "Hello", "-n", "8", "--temp", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "no text generated"
    );
    assert!(
        err.contains("prompt tokens: 10") && err.contains("decode:"),
        "summary line missing: {err}"
    );
}

#[test]
fn teacher_forced_c1_matches_the_reference() {
    let c = common::cases()
        .into_iter()
        .find(|c| c.name.starts_with("c1"))
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let logits = dir.join("c1_logits.f32");
    let stages = dir.join("c1_cli_stages");
    let _ = std::fs::remove_dir_all(&stages);
    let ids = |v: &[u32]| {
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let out = ds4(&[
        "-m",
        &tiny(),
        "--prompt-ids",
        &ids(&c.prompt_ids),
        "--force-ids",
        &ids(&c.generated_ids),
        "--dump-logits",
        logits.to_str().unwrap(),
        "--dump-stages",
        stages.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&logits).unwrap();
    assert_eq!(
        bytes.len(),
        c.generated_ids.len() * c.vocab * 4,
        "one logits row per forced step"
    );
    for (i, &step) in c.full_rows.iter().enumerate() {
        let row = &bytes[step * c.vocab * 4..(step + 1) * c.vocab * 4];
        let got: Vec<f32> = row
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let want = c.full_row(i);
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max <= 0.02, "step {step}: max |diff| {max}");
        assert_eq!(
            common::argmax(&got),
            common::argmax(&want),
            "step {step}: argmax"
        );
    }
    // The stage files carry the reference's names (their values: tests/stages.rs).
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&stages), names(&c.dir.join("stages")));
}

#[test]
fn interactive_chat_answers_two_turns() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ds4-runtime"))
        .args(["-m", &tiny(), "-n", "4", "--temp", "0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello\nAnd again\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Turn 1 feeds the rendered prompt (10 tokens with the default system and
    // <think>); turn 2 only what is new, not the history.
    let prompts: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("prompt tokens:"))
        .collect();
    assert_eq!(prompts.len(), 2, "{err}");
    assert!(prompts[0].starts_with("prompt tokens: 10,"), "{err}");
    let second: usize = prompts[1]
        .split("prompt tokens: ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(second < 10, "the second turn re-ran the history: {err}");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused() {
    fails_with(
        &ds4(&["-m", &tiny(), "-p", "Hello there, how are you?", "-c", "8"]),
        "context",
    );
}

#[test]
fn bad_flag_values_are_refused() {
    fails_with(&ds4(&["-m", &tiny(), "-p", "Hi", "--temp", "abc"]), "temp");
    fails_with(&ds4(&["-m", &tiny(), "-p", "Hi", "--top-p", "2"]), "top-p");
    fails_with(&ds4(&["-m", &tiny(), "-p", "Hi", "-c", "0"]), "ctx");
    fails_with(
        &ds4(&["-m", &tiny(), "-p", "Hi", "--devices", "3"]),
        "devices",
    );
}

#[test]
fn a_bad_isa_choice_and_non_files_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ds4-runtime"))
        .args(["-m", &tiny(), "-p", "Hi"])
        .env("DS4_ISA", "bogus")
        .output()
        .expect("run ds4-runtime");
    fails_with(&out, "DS4_ISA=bogus is not one of scalar, avx2");
    // A directory (and, the same path, a FIFO) is named as not a GGUF file.
    let dir = env!("CARGO_TARGET_TMPDIR");
    fails_with(&ds4(&["inspect", dir]), "is a directory");
}

#[test]
fn a_missing_model_file_is_named() {
    fails_with(
        &ds4(&["-m", "/nonexistent/model.gguf", "-p", "Hi"]),
        "/nonexistent/model.gguf",
    );
}

#[test]
fn a_gguf_of_another_architecture_is_refused() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("llama.gguf");
    let mut f = std::fs::File::create(&path).unwrap();
    ds4_runtime::gguf::write::header(&mut f, 0, 1).unwrap();
    ds4_runtime::gguf::write::kv_str(&mut f, "general.architecture", "llama").unwrap();
    drop(f);
    fails_with(
        &ds4(&["-m", path.to_str().unwrap(), "-p", "Hi"]),
        "architecture",
    );
}

#[test]
fn invalid_utf8_in_a_prompt_file_is_refused() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_prompt.txt");
    std::fs::write(&path, b"caf\xe9 au lait").unwrap();
    fails_with(
        &ds4(&["-m", &tiny(), "--prompt-file", path.to_str().unwrap()]),
        "UTF-8",
    );
}

#[test]
fn force_ids_out_of_vocabulary_are_refused() {
    fails_with(
        &ds4(&["-m", &tiny(), "-p", "Hi", "--force-ids", "5,999999"]),
        "999999",
    );
}
