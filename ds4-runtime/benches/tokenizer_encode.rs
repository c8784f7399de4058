//! Single-thread encode throughput on `shared/data/text/promessi_sposi.txt`.
//!
//! Run with `cargo bench -p ds4-runtime --bench tokenizer_encode`. The whole file is
//! encoded as one text (as the Python comparison `Tokenizer.encode(text)` does),
//! several times; the best and median wall times are reported as MB/s (10^6 bytes).
//! The first run is reported separately (page faults, allocator warm-up); the piece
//! cache lives inside one `encode` call, so every run starts with it empty.
//!
//! For reference the same file goes through the `tokenizers` crate (pure-Rust regex
//! backend, the oracle of our tests) over the same `tokenizer.json`. The Python
//! package (`pip install tokenizers`) is measured outside cargo, from the project
//! root, best of 7 like here:
//!
//! ```text
//! TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 python3 -c '
//! import time; from tokenizers import Tokenizer
//! t = Tokenizer.from_file("ds4-runtime/data/tokenizer/deepseek-v4-tokenizer.json")
//! s = open("../shared/data/text/promessi_sposi.txt", encoding="utf-8").read()
//! best = min((lambda t0: (t.encode(s, add_special_tokens=False), time.perf_counter() - t0)[1])(
//!     time.perf_counter()) for _ in range(7))
//! print(len(t.encode(s, add_special_tokens=False).ids), "tokens",
//!       len(s.encode()) / best / 1e6, "MB/s")'
//! ```

use std::time::Instant;

use ds4_runtime::tokenizer::{Tokenizer, EMBEDDED_JSON};

const RUNS: usize = 7;

/// Best, median and first of `RUNS` timings of `encode`, and its token count.
fn time(mut encode: impl FnMut() -> usize) -> (f64, f64, f64, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut count = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        count = encode();
        times.push(start.elapsed().as_secs_f64());
    }
    let first = times[0];
    times.sort_by(f64::total_cmp);
    (times[0], times[RUNS / 2], first, count)
}

fn report(name: &str, mb: f64, (best, median, first, count): (f64, f64, f64, usize)) {
    println!("{name}: {count} tokens");
    println!("  best   {best:.3} s ({:.2} MB/s)", mb / best);
    println!("  median {median:.3} s ({:.2} MB/s)", mb / median);
    println!("  first  {first:.3} s ({:.2} MB/s)", mb / first);
}

fn fail(message: String) -> ! {
    eprintln!("{message}");
    std::process::exit(2);
}

fn main() {
    // Encoding one text never fans out, but make sure no helper pool does either.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("TOKENIZERS_PARALLELISM", "false");

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/text/promessi_sposi.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| {
        fail(format!(
            "{path}: {err}; the benchmark needs the shared/ folder beside the project"
        ))
    });
    let tok = Tokenizer::embedded().unwrap_or_else(|err| fail(err.to_string()));
    let reference = tokenizers::Tokenizer::from_bytes(EMBEDDED_JSON.as_bytes())
        .unwrap_or_else(|err| fail(format!("tokenizers cannot load the official file: {err}")));

    let mb = text.len() as f64 / 1e6;
    println!("tokenizer_encode: {} bytes, single thread", text.len());
    report("ds4-runtime", mb, time(|| tok.encode(&text).len()));
    report(
        "tokenizers crate 0.22 (fancy-regex)",
        mb,
        time(|| {
            reference
                .encode_fast(text.as_str(), false)
                .map_or(0, |e| e.len())
        }),
    );
}
