//! The Ascend backends at the command line: `--backend ascend` without CANN fails
//! at start with one line naming what was looked for and how to fix it; the upload
//! dry run on the sparse `flash` file gives each device the plan's weight bytes; a plan
//! that a device cannot hold, a bad device list and a bad emulation switch are refused
//! with one line before any upload.

mod common;

use std::process::Command;

use ds4_runtime::backend::upload::{bytes_per_device, upload_items};
use ds4_runtime::model::Model;

#[test]
fn ascend_without_cann_fails_with_one_line() {
    let empty = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-cann");
    std::fs::create_dir_all(&empty).expect("folder");
    let out = Command::new(env!("CARGO_BIN_EXE_ds4-runtime"))
        .args(["--backend", "ascend", "-p", "Hello"])
        .env("ASCEND_HOME_PATH", &empty)
        .env("ASCEND_TOOLKIT_HOME", &empty)
        .env("LD_LIBRARY_PATH", &empty)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    for want in [
        "libascendcl.so",
        "no-cann/lib64",
        "install CANN",
        "set_env.sh",
        "ASCEND_HOME_PATH",
    ] {
        assert!(
            lines[0].contains(want),
            "'{want}' missing from: {}",
            lines[0]
        );
    }
}

/// The sparse full-size `flash` file (holes instead of data), made once per target dir.
fn flash_sparse() -> std::path::PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("flash-sparse-upload.gguf");
    ONCE.call_once(|| {
        if !path.exists() {
            let mut opts =
                ds4_runtime::synth::SynthOptions::new(ds4_runtime::synth::SynthProfile::Flash);
            opts.sparse = true;
            let tmp = path.with_extension("tmp");
            ds4_runtime::synth::write(&opts, &tmp).expect("synth flash --sparse");
            std::fs::rename(&tmp, &path).expect("rename");
        }
    });
    path
}

/// Runs the binary; returns (success, stderr).
fn ds4(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ds4-runtime"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails unless the run failed with exactly one stderr line containing every `want`.
fn assert_one_line_error(args: &[&str], env: &[(&str, &str)], want: &[&str]) {
    let (ok, err) = ds4(args, env);
    assert!(!ok, "{args:?} succeeded; stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: stderr: {err}");
    for w in want {
        assert!(lines[0].contains(w), "'{w}' missing from: {}", lines[0]);
    }
}

#[test]
fn a_plan_over_a_devices_memory_is_refused_before_the_upload() {
    let path = flash_sparse();
    let m = path.to_str().expect("utf-8 path");
    // The whole flash model on one emulated 310P (42.67 GiB).
    assert_one_line_error(
        &[
            "--backend",
            "ascend-sim",
            "--devices",
            "1",
            "-m",
            m,
            "-p",
            "Hi",
        ],
        &[],
        &["device 0 cannot hold this plan", "--devices 2"],
    );
    // Both chips, but a context whose state does not fit next to the weights.
    assert_one_line_error(
        &[
            "--backend",
            "ascend-sim",
            "-c",
            "1048576",
            "-m",
            m,
            "-p",
            "Hi",
        ],
        &[],
        &["cannot hold this plan", "at -c 1048576", "a smaller -c"],
    );
}

#[test]
fn bad_device_lists_and_emulation_switches_are_refused() {
    let tiny = common::tiny_path();
    let t = tiny.to_str().expect("utf-8 path");
    let run = ["--backend", "ascend-sim", "-m", t, "-p", "Hi", "-n", "1"];
    for bad in ["garbage", "5,", "0,0", "0,1,2"] {
        assert_one_line_error(
            &run,
            &[("DS4_ASCEND_VISIBLE_DEVICES", bad)],
            &["DS4_ASCEND_VISIBLE_DEVICES", "one or two device ids"],
        );
    }
    let mut conflict = run.to_vec();
    conflict.extend(["--devices", "1"]);
    assert_one_line_error(
        &conflict,
        &[("DS4_ASCEND_VISIBLE_DEVICES", "0,1")],
        &["--devices 1 conflicts with DS4_ASCEND_VISIBLE_DEVICES=0,1"],
    );
    assert_one_line_error(
        &run,
        &[("DS4_SIM_DROP_SYNC", "abc")],
        &["DS4_SIM_DROP_SYNC=abc is not a synchronisation number"],
    );
    assert_one_line_error(
        &["-m", t, "-p", "Hi", "-n", "1"],
        &[("DS4_SIM_DROP_SYNC", "3")],
        &["DS4_SIM_DROP_SYNC", "--backend ascend-sim"],
    );
    // A prompt over the context is refused before the weights are uploaded.
    let (ok, err) = ds4(
        &[
            "--backend",
            "ascend-sim",
            "-m",
            t,
            "-c",
            "4",
            "-p",
            "a longer prompt than four",
        ],
        &[],
    );
    assert!(!ok && err.contains("the context holds 4"), "{err}");
    assert!(!err.contains("uploaded weights"), "{err}");
}

#[test]
fn upload_dry_run_on_sparse_flash_matches_the_plan() {
    let path = flash_sparse();
    let model = Model::open(&path, ds4_rs::plans::PROFILES).expect("open flash");
    for devices in [1u8, 2] {
        let plans = ds4_rs::run::plan_set("flash", devices, true).expect("flash plans");
        let bound = model.bind(plans).expect("bind");
        let items = upload_items(plans, &model.file, &bound).expect("items");
        let got = bytes_per_device(&items, devices as usize);
        for (d, b) in got.iter().enumerate() {
            let want: u64 = plans
                .weights
                .iter()
                .filter(|w| w.device as usize == d)
                .map(|w| w.bytes)
                .sum();
            eprintln!("flash on {devices} device(s), device {d}: upload {b} bytes, plan {want}");
            assert_eq!(*b, want, "device {d} of {devices}");
        }
    }
    // The CLI's dry run says the same, without allocating.
    let out = Command::new(env!("CARGO_BIN_EXE_ds4-runtime"))
        .args([
            "--backend",
            "ascend-sim",
            "--devices",
            "2",
            "--upload-dry-run",
            "-m",
        ])
        .arg(&path)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("device ")).count(),
        2,
        "{text}"
    );
    assert!(!text.contains("MISMATCH"), "{text}");
    assert_eq!(text.matches("fits one 310P3").count(), 2, "{text}");
}
