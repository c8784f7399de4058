//! Replays the committed fuzz corpus (`fuzz/corpus/gguf_reader`) through the
//! reader and its consumers on the stable toolchain, so the seeds stay valid
//! and anything the fuzzer once found stays fixed.

use std::path::Path;

use ds4_runtime::gguf::{bind, GgufFile, Value};
use ds4_runtime::inspect::{layout_requirements, report};
use ds4_runtime::synth::SynthProfile;

fn exercise(data: &[u8]) -> bool {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else {
        return false;
    };
    for (key, value) in f.metadata() {
        let _ = (
            f.get_u32(key),
            f.get_u64(key),
            f.get_f32(key),
            f.get_bool(key),
            f.get_str(key),
        );
        let _ = (
            f.get_u32_array(key),
            f.get_i32_array(key),
            f.get_f32_array(key),
        );
        let _ = f.get_str_array(key);
        if let Value::Array(a) = value {
            for item in f.array_values(a).unwrap() {
                if let Value::Array(inner) = item {
                    f.array_values(&inner).unwrap();
                }
            }
        }
    }
    for t in f.tensors() {
        assert_eq!(f.tensor_data(t).len() as u64, t.n_bytes);
    }
    let _ = bind(&f, &layout_requirements(SynthProfile::Tiny));
    !report(&f).is_empty()
}

#[test]
fn corpus_seeds_are_valid_files_and_survive_consumers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gguf_reader");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        assert!(
            exercise(&data),
            "seed {} is not a valid GGUF",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 5, "expected the committed seeds in {}", dir.display());
}

#[test]
fn single_byte_mutations_of_the_seeds_never_panic() {
    // A cheap deterministic stand-in for fuzzing on the stable toolchain.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/gguf_reader");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for i in 0..data.len() {
            for v in [0u8, 0x80, 0xff] {
                let mut m = data.clone();
                m[i] = v;
                exercise(&m);
            }
        }
    }
}
