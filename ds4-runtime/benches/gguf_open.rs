//! Quick benchmark (no criterion): open + bind of the sparse 43-layer flash file.
//!
//! `cargo bench -p ds4-runtime --bench gguf_open`. Target: under 0.5 s. The file
//! is written once with its tensor data as holes, then opened and bound ten
//! times; the minimum and median are printed.

use std::time::{Duration, Instant};

use ds4_runtime::gguf::{bind, GgufFile};
use ds4_runtime::inspect::layout_requirements;
use ds4_runtime::synth::{self, SynthOptions, SynthProfile};

fn main() {
    let dir = std::env::temp_dir().join(format!("ds4-bench-gguf-open-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let path = dir.join("flash-sparse.gguf");
    let opts = SynthOptions {
        sparse: true,
        ..SynthOptions::new(SynthProfile::Flash)
    };
    if let Err(e) = synth::write(&opts, &path) {
        eprintln!("synth failed: {e}");
        std::process::exit(1);
    }
    let req = layout_requirements(SynthProfile::Flash);

    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let f = match GgufFile::open(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("open failed: {e}");
                std::process::exit(1);
            }
        };
        let bound = bind(&f, &req).map(|b| b.len()).unwrap_or(0);
        times.push(t0.elapsed());
        assert_eq!(bound, req.len());
    }
    times.sort();
    println!(
        "gguf_open: open + bind of the sparse flash file ({} tensors): min {:?}, median {:?} (target < 0.5 s)",
        req.len(),
        times[0],
        times[times.len() / 2]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
