//! The Ascend backends at the command line: `--backend ascend` without CANN fails
//! at start with one line naming what was looked for and how to fix it; the upload
//! dry run on the sparse `flash` file gives each device the plan's weight bytes.

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

#[test]
fn upload_dry_run_on_sparse_flash_matches_the_plan() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("flash-sparse-upload.gguf");
    if !path.exists() {
        let mut opts =
            ds4_runtime::synth::SynthOptions::new(ds4_runtime::synth::SynthProfile::Flash);
        opts.sparse = true;
        let tmp = path.with_extension("tmp");
        ds4_runtime::synth::write(&opts, &tmp).expect("synth flash --sparse");
        std::fs::rename(&tmp, &path).expect("rename");
    }
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
}
