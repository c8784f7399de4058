//! Single-thread encode throughput on `shared/data/text/promessi_sposi.txt`.
//!
//! Run with `cargo bench -p ds4-runtime --bench tokenizer_encode`. The whole file is
//! encoded as one text (as the Python comparison `Tokenizer.encode(text)` does),
//! several times; the best and median wall times are reported as MB/s (10^6 bytes).
//! The first run is reported separately (page faults, allocator warm-up); the piece
//! cache lives inside one `encode` call, so every run starts with it empty.

use std::time::Instant;

use ds4_runtime::tokenizer::Tokenizer;

const RUNS: usize = 7;

fn main() {
    // Encoding one text never fans out, but make sure no helper pool does either.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("TOKENIZERS_PARALLELISM", "false");

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/text/promessi_sposi.txt"
    );
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{path}: {err}; the benchmark needs the shared/ folder beside the project");
            std::process::exit(2);
        }
    };
    let tok = match Tokenizer::embedded() {
        Ok(tok) => tok,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    };

    let mb = text.len() as f64 / 1e6;
    let mut times = Vec::with_capacity(RUNS);
    let mut count = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let ids = tok.encode(&text);
        times.push(start.elapsed().as_secs_f64());
        count = ids.len();
    }

    let first = times[0];
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let (best, median) = (sorted[0], sorted[RUNS / 2]);
    println!("tokenizer_encode: {} bytes, {count} tokens", text.len());
    println!(
        "  first run {:.3} s ({:.2} MB/s, first touch)",
        first,
        mb / first
    );
    println!("  best      {:.3} s ({:.2} MB/s)", best, mb / best);
    println!("  median    {:.3} s ({:.2} MB/s)", median, mb / median);
}
