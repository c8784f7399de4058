//! `synth` against the reference vectors: the tiny file byte for byte, every
//! tensor hash of its manifest, the `SYNTH.md` §10 debug values, and the
//! flash4 layout (sparse) against its manifest.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ds4_runtime::gguf::GgufFile;
use ds4_runtime::quant::f16_to_f32;
use ds4_runtime::synth::{self, Rule, SynthOptions, SynthProfile};
use sha2::{Digest, Sha256};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/synth");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

/// The tiny file, generated once per test binary.
fn tiny() -> &'static (PathBuf, synth::SynthReport) {
    static TINY: OnceLock<(PathBuf, synth::SynthReport)> = OnceLock::new();
    TINY.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth-tiny-v2-seed1.gguf");
        let report = synth::write(&SynthOptions::new(SynthProfile::Tiny), &path).unwrap();
        (path, report)
    })
}

fn manifest(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{VECTORS}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn tiny_file_matches_reference_sha256() {
    let (path, report) = tiny();
    assert_eq!(report.file_bytes, 127_308_000);
    assert_eq!(report.header_bytes, 5_253_408);
    assert_eq!(report.n_tensors, 178);
    let want = std::fs::read_to_string(format!("{VECTORS}/tiny.sha256")).unwrap();
    let want = want.split_whitespace().next().unwrap().to_string();
    assert_eq!(sha256_file(path), want);
}

#[test]
fn tiny_tensors_match_manifest() {
    let (path, _) = tiny();
    let f = GgufFile::open(path).unwrap();
    let m = manifest("tiny.manifest.json");
    let entries = m["tensors"].as_array().unwrap();
    assert_eq!(entries.len(), f.tensors().len());
    let mut bad = Vec::new();
    for (e, t) in entries.iter().zip(f.tensors()) {
        assert_eq!(e["name"].as_str().unwrap(), t.name);
        let dims: Vec<u64> = e["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(dims, t.dims, "{}", t.name);
        assert_eq!(
            e["type"].as_str().unwrap().to_lowercase(),
            t.ty.name().to_lowercase(),
            "{}",
            t.name
        );
        assert_eq!(
            e["offset"].as_u64().unwrap(),
            t.offset - f.data_start(),
            "{}",
            t.name
        );
        assert_eq!(e["nbytes"].as_u64().unwrap(), t.n_bytes, "{}", t.name);
        if hex(&Sha256::digest(f.tensor_data(t))) != e["sha256"].as_str().unwrap() {
            bad.push(t.name.clone());
        }
    }
    assert!(
        bad.is_empty(),
        "tensors whose bytes differ from the manifest: {bad:?}"
    );
}

fn f32s(f: &GgufFile, name: &str) -> Vec<f32> {
    let t = f.tensor(name).unwrap();
    f.tensor_data(t)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn tiny_debug_values_of_synth_md_section_10() {
    let (path, _) = tiny();
    let f = GgufFile::open(path).unwrap();

    let embd = f.tensor_data(f.tensor("token_embd.weight").unwrap());
    let first: Vec<f32> = embd[..16]
        .chunks(2)
        .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
        .collect();
    assert_eq!(
        first,
        [-0.40625, -0.84375, -1.65625, 0.28125, -0.84375, 1.59375, -1.28125, 1.34375]
    );
    assert!(
        embd[256..512].iter().all(|&b| b == 0),
        "row 0 elements 128..255 are masked"
    );

    let qa = f.tensor_data(f.tensor("blk.0.attn_q_a.weight").unwrap());
    assert_eq!(
        hex(&qa[..34]),
        "0012bb1723e3e79929770b2d231b6de3f9d7a35d1bc7813d9799b30dd933ed99a5bd"
    );
    assert!(
        qa[4 * 34..5 * 34].iter().all(|&b| b == 0),
        "block 4 is masked"
    );

    let tid = f.tensor_data(f.tensor("blk.0.ffn_gate_tid2eid.weight").unwrap());
    let rows: Vec<i32> = tid[..48]
        .chunks(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(rows, [14, 10, 6, 11, 5, 12, 10, 7, 2, 0, 12, 14]);

    assert_eq!(
        &f32s(&f, "blk.0.attn_norm.weight")[..4],
        &[1.015625, 0.984375, 0.890625, 0.953125]
    );
    assert_eq!(
        f32s(&f, "blk.0.hc_attn_scale.weight"),
        [0.6875, 0.75, 0.625]
    );
    assert_eq!(
        &f32s(&f, "blk.0.hc_attn_base.weight")[..10],
        &[0.6875, -0.0625, -0.4375, 0.4375, -8.1875, -8.4375, -9.1875, -7.6875, -0.5625, 0.3125]
    );
    for (layer, plus, minus) in [(3, [3, 4], 7), (4, [1, 6], 13), (5, [8, 11], 13)] {
        let b = f32s(&f, &format!("blk.{layer}.exp_probs_b.bias"));
        for (i, &v) in b.iter().enumerate() {
            let want = if plus.contains(&i) {
                8.0
            } else if i == minus {
                -8.0
            } else {
                0.0
            };
            assert_eq!(v, want, "layer {layer} expert {i}");
        }
    }
    assert_eq!(
        &f32s(&f, "output_norm.weight")[..4],
        &[1.421875, 1.609375, 1.546875, 1.546875]
    );

    let out = f.tensor_data(f.tensor("output.weight").unwrap());
    assert_eq!(
        f16_to_f32(u16::from_le_bytes([out[0], out[1]])),
        7.0 * 2f32.powi(-11)
    );
    assert_eq!(
        f16_to_f32(u16::from_le_bytes([out[4 * 34], out[4 * 34 + 1]])),
        0.046875
    );
    assert_eq!(
        hex(&out[4 * 34..5 * 34]),
        "002ab90d01534d71c1334be3213305fd7525c5d58707df33fd93fdc379871fd569b1"
    );
    assert!(
        out[8 * 34..16 * 34].iter().all(|&b| b == 0),
        "EOS row is zero"
    );
}

#[test]
fn tiny_metadata_carries_the_tokenizer() {
    let (path, _) = tiny();
    let f = GgufFile::open(path).unwrap();
    assert_eq!(f.metadata().len(), 49);
    assert_eq!(
        f.get_str("general.name").unwrap(),
        "ds4-oracle-synth-tiny-v2"
    );
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 129280);
    assert_eq!(tokens[0], "<｜begin▁of▁sentence｜>");
    assert_eq!(tokens[128803], "<｜User｜>");
    assert_eq!(
        f.get_str_array("tokenizer.ggml.merges").unwrap().len(),
        127741
    );
    let types = f.get_i32_array("tokenizer.ggml.token_type").unwrap();
    assert_eq!((types[0], types[5]), (3, 1));
    assert_eq!(
        f.get_u32_array("deepseek4.attention.compress_ratios")
            .unwrap(),
        [0, 0, 4, 128, 4, 128]
    );
    assert_eq!(
        f.get_f32("deepseek4.attention.layer_norm_rms_epsilon")
            .unwrap()
            .to_bits(),
        0x358637BD
    );
}

#[test]
fn tiny_rule_v1_matches_reference_sha256() {
    // SYNTH.md's table: tiny under rule v1 (the rule flash4 uses) has its own hash.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth-tiny-v1-seed1.gguf");
    let opts = SynthOptions {
        rule: Rule::V1,
        ..SynthOptions::new(SynthProfile::Tiny)
    };
    let report = synth::write(&opts, &path).unwrap();
    assert_eq!(report.file_bytes, 127_308_000);
    assert_eq!(
        sha256_file(&path),
        "18a1005a37094351bde4a65e76bc708fac2d1cfbcf94682a0c1a05f7d30e890b"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn flash4_layout_matches_its_manifest() {
    // The 9.5 GB data is left as holes: names, shapes, offsets and sizes are what is compared.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synth-flash4-sparse.gguf");
    let opts = SynthOptions {
        sparse: true,
        ..SynthOptions::new(SynthProfile::Flash4)
    };
    assert_eq!(opts.rule, Rule::V1);
    let report = synth::write(&opts, &path).unwrap();
    let m = manifest("flash4.manifest.json");
    assert_eq!(report.file_bytes, m["file_bytes"].as_u64().unwrap());
    assert_eq!(report.header_bytes, m["header_bytes"].as_u64().unwrap());

    let f = GgufFile::open(&path).unwrap();
    assert_eq!(
        f.get_str("general.name").unwrap(),
        "ds4-oracle-synth-flash4"
    );
    let entries = m["tensors"].as_array().unwrap();
    assert_eq!(entries.len(), f.tensors().len());
    for (e, t) in entries.iter().zip(f.tensors()) {
        assert_eq!(e["name"].as_str().unwrap(), t.name);
        assert_eq!(
            e["offset"].as_u64().unwrap(),
            t.offset - f.data_start(),
            "{}",
            t.name
        );
        assert_eq!(e["nbytes"].as_u64().unwrap(), t.n_bytes, "{}", t.name);
    }
    drop(f);
    std::fs::remove_file(&path).unwrap();
}
