//! The full 43-layer DS4 Flash layout as a sparse file: it must cost little
//! disk, open and bind quickly, and `inspect` must report the real sizes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use ds4_runtime::gguf::{bind, GgufFile};
use ds4_runtime::inspect::{layout_requirements, report};
use ds4_runtime::synth::{self, SynthOptions, SynthProfile};

#[test]
fn sparse_flash_opens_binds_and_reports_routed_expert_bytes() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sparse-flash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flash-sparse.gguf");
    let opts = SynthOptions {
        sparse: true,
        ..SynthOptions::new(SynthProfile::Flash)
    };
    let written = synth::write(&opts, &path).unwrap();

    // About 86 GB apparent size, but only the header's few MB on disk.
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), written.file_bytes);
    assert!(meta.len() > 80_000_000_000, "apparent size {}", meta.len());
    let on_disk = meta.blocks() * 512;
    assert!(
        on_disk < 64 << 20,
        "sparse file uses {on_disk} bytes of disk"
    );

    let t0 = Instant::now();
    let f = GgufFile::open(&path).unwrap();
    let req = layout_requirements(SynthProfile::Flash);
    let bound = bind(&f, &req).unwrap();
    let elapsed = t0.elapsed();
    eprintln!(
        "sparse flash: open + bind of {} tensors took {elapsed:?}",
        f.tensors().len()
    );
    assert_eq!(bound.len(), req.len());
    assert!(bound.iter().all(|b| b.is_some()));
    assert_eq!(f.tensors().len(), 1288 + 40);

    let text = report(&f);
    let experts = text.lines().find(|l| l.contains("routed experts")).unwrap();
    assert!(experts.contains("129 tensors"), "{experts}");
    assert!(
        experts.contains("77,913,391,104 bytes (72.56 GiB)"),
        "{experts}"
    );
    assert!(
        text.contains("profile flash: 1328 tensors required"),
        "{text}"
    );
    assert!(text.contains("OK: every required tensor present"), "{text}");

    drop(f);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inspect_reports_mismatches_of_a_wrong_profile() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sparse-flash4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flash4-sparse.gguf");
    let opts = SynthOptions {
        sparse: true,
        ..SynthOptions::new(SynthProfile::Flash4)
    };
    synth::write(&opts, &path).unwrap();
    let f = GgufFile::open(&path).unwrap();

    let text = ds4_runtime::inspect::report_for(&f, Some("flash"));
    assert!(text.contains("mismatch(es):"), "{text}");
    assert!(
        text.contains("tensor blk.42.attn_norm.weight is missing"),
        "{text}"
    );
    assert!(
        ds4_runtime::inspect::report(&f).contains("profile flash4"),
        "auto-detected"
    );

    drop(f);
    std::fs::remove_dir_all(&dir).unwrap();
}
