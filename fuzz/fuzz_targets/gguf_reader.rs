//! Fuzz target: arbitrary bytes through the GGUF reader and everything a
//! consumer does with an accepted file (getters of every type on every key,
//! array decoding, tensor views, binding and the inspect report).
//!
//! Run: `cargo +nightly fuzz run gguf_reader` (or on stable:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run gguf_reader -s none`).
#![no_main]

use ds4_runtime::gguf::{bind, GgufFile, Value};
use ds4_runtime::inspect::{layout_requirements, report};
use ds4_runtime::synth::SynthProfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };

    for (key, value) in f.metadata() {
        let _ = f.get_u32(key);
        let _ = f.get_u64(key);
        let _ = f.get_f32(key);
        let _ = f.get_bool(key);
        let _ = f.get_str(key);
        let _ = f.get_u32_array(key);
        let _ = f.get_i32_array(key);
        let _ = f.get_f32_array(key);
        let _ = f.get_str_array(key);
        if let Value::Array(a) = value {
            if let Ok(items) = f.array_values(a) {
                for item in items {
                    if let Value::Array(inner) = item {
                        let _ = f.array_values(&inner);
                    }
                }
            }
        }
    }

    let mut sum = 0u64;
    for t in f.tensors() {
        let bytes = f.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.n_bytes);
        sum = sum.wrapping_add(bytes.first().copied().unwrap_or(0) as u64);
    }
    std::hint::black_box(sum);

    let _ = bind(&f, &layout_requirements(SynthProfile::Tiny));
    let _ = report(&f);
});
