//! The GGUF reader on well-formed files: metadata, getters, tensors, binding.

use ds4_runtime::gguf::write::{self, Builder};
use ds4_runtime::gguf::{bind, extra_tensors, BindProblem, GgufError, GgufFile, Required, Value};
use ds4_runtime::quant::GgmlType;

fn sample() -> Vec<u8> {
    Builder::new()
        .kv(|w| write::kv_str(w, "general.architecture", "deepseek4"))
        .kv(|w| write::kv_u32(w, "deepseek4.block_count", 43))
        .kv(|w| write::kv_i32(w, "some.i32", -7))
        .kv(|w| write::kv_f32(w, "deepseek4.expert_weights_scale", 1.5))
        .kv(|w| write::kv_u64(w, "deepseek4.context_length", 1 << 20))
        .kv(|w| write::kv_bool(w, "deepseek4.expert_weights_norm", true))
        .kv(|w| write::kv_array_u32(w, "deepseek4.attention.compress_ratios", &[0, 0, 4, 128]))
        .kv(|w| write::kv_array_i32(w, "neg.ratios", &[0, -4]))
        .kv(|w| write::kv_array_f32(w, "deepseek4.swiglu_clamp_exp", &[10.0, 10.0]))
        .kv(|w| write::kv_array_str(w, "tokenizer.ggml.tokens", &["a", "bé", ""]))
        .tensor("w.f32", &[4, 2], GgmlType::F32, (0..32).collect())
        .tensor("w.q8", &[64], GgmlType::Q8_0, vec![7; 68])
        .tensor("mtp.0.x", &[1], GgmlType::F16, vec![1, 2])
        .build()
}

#[test]
fn reads_metadata_with_typed_getters() {
    let f = GgufFile::from_bytes(sample()).expect("valid file");
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.metadata().len(), 10);
    assert_eq!(f.get_str("general.architecture").unwrap(), "deepseek4");
    assert_eq!(f.get_u32("deepseek4.block_count").unwrap(), 43);
    assert_eq!(f.get_f32("deepseek4.expert_weights_scale").unwrap(), 1.5);
    assert_eq!(
        f.get_f32("deepseek4.block_count").unwrap(),
        43.0,
        "f32 getter accepts UINT32"
    );
    assert_eq!(
        f.get_f32("some.i32").unwrap(),
        -7.0,
        "f32 getter accepts INT32"
    );
    assert_eq!(f.get_u64("deepseek4.context_length").unwrap(), 1 << 20);
    assert_eq!(
        f.get_u64("deepseek4.block_count").unwrap(),
        43,
        "u64 getter accepts UINT32"
    );
    assert!(f.get_bool("deepseek4.expert_weights_norm").unwrap());
    assert_eq!(
        f.get_u32_array("deepseek4.attention.compress_ratios")
            .unwrap(),
        vec![0, 0, 4, 128]
    );
    assert_eq!(
        f.get_f32_array("deepseek4.swiglu_clamp_exp").unwrap(),
        vec![10.0, 10.0]
    );
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap(),
        vec!["a", "bé", ""]
    );
    assert_eq!(f.get_i32_array("neg.ratios").unwrap(), vec![0, -4]);
    match f.get("deepseek4.attention.compress_ratios") {
        Some(Value::Array(a)) => {
            assert_eq!(a.len, 4);
            assert_eq!(f.array_values(a).unwrap()[3], Value::U32(128));
        }
        v => panic!("unexpected {v:?}"),
    }
}

#[test]
fn getters_name_key_and_types_on_mismatch() {
    let f = GgufFile::from_bytes(sample()).unwrap();
    let e = f.get_u32("deepseek4.expert_weights_scale").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key deepseek4.expert_weights_scale has type FLOAT32, expected UINT32"
    );
    let e = f.get_u32("some.i32").unwrap_err();
    assert!(matches!(e, GgufError::WrongType { .. }), "{e}");
    let e = f
        .get_str_array("deepseek4.attention.compress_ratios")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("has type ARRAY of UINT32, expected ARRAY of STRING"),
        "{e}"
    );
    let e = f.get_bool("nope").unwrap_err();
    assert_eq!(e.to_string(), "required metadata key is missing: nope");
    let e = f.get_u32_array("neg.ratios").unwrap_err();
    assert!(e.to_string().contains("element 1 is negative (-4)"), "{e}");
    let e = f.get_f32("general.architecture").unwrap_err();
    assert!(e.to_string().contains("has type STRING"), "{e}");
}

#[test]
fn tensors_are_zero_copy_views_at_aligned_offsets() {
    let f = GgufFile::from_bytes(sample()).unwrap();
    assert_eq!(f.tensors().len(), 3);
    let t = f.tensor("w.f32").unwrap();
    assert_eq!(
        (t.dims.clone(), t.ty, t.n_bytes),
        (vec![4, 2], GgmlType::F32, 32)
    );
    assert_eq!(t.offset % 32, 0);
    assert_eq!(t.offset, f.data_start());
    assert_eq!(f.tensor_data(t), (0..32).collect::<Vec<u8>>().as_slice());
    let q = f.tensor("w.q8").unwrap();
    assert_eq!(q.offset, f.data_start() + 32);
    assert_eq!(q.n_bytes, 68);
    assert_eq!(q.row_bytes(), 68);
    assert!(f.tensor_data(q).iter().all(|&b| b == 7));
    assert!(f.tensor("absent").is_none());
    // Typed zero-copy views (little-endian host, 32-byte aligned data).
    let floats = f.tensor_f32(t).unwrap();
    assert_eq!(floats.len(), 8);
    assert_eq!(floats[0].to_bits(), u32::from_le_bytes([0, 1, 2, 3]));
    assert!(f.tensor_f32(q).is_none());
    assert!(f.tensor_i32(t).is_none());
}

#[test]
fn custom_alignment_is_honoured() {
    let bytes = Builder::new()
        .alignment(64)
        .tensor("a", &[3], GgmlType::F32, vec![1; 12])
        .tensor("b", &[3], GgmlType::F32, vec![2; 12])
        .build();
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_start() % 64, 0);
    assert_eq!(f.tensor("b").unwrap().offset, f.data_start() + 64);
}

#[test]
fn open_maps_a_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("ds4-gguf-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.gguf");
    std::fs::write(&good, sample()).unwrap();
    let f = GgufFile::open(&good).unwrap();
    assert_eq!(f.file_len(), sample().len() as u64);
    assert_eq!(f.tensor_data(f.tensor("w.f32").unwrap())[5], 5);

    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"GGUF").unwrap();
    let e = GgufFile::open(&bad).err().unwrap();
    assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");
    assert!(matches!(e.root(), GgufError::Truncated { .. }), "{e}");

    let empty = dir.join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(GgufFile::open(&empty).is_err());
    assert!(matches!(
        GgufFile::open(&dir.join("missing.gguf")).err().unwrap(),
        GgufError::Io { .. }
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bind_reports_every_mismatch_at_once() {
    let f = GgufFile::from_bytes(sample()).unwrap();
    let req = |name: &str, ty, dims: &[u64], optional| Required {
        name: name.into(),
        ty,
        dims: dims.to_vec(),
        optional,
    };

    let ok = bind(
        &f,
        &[
            req("w.f32", GgmlType::F32, &[4, 2], false),
            req("opt", GgmlType::F32, &[1], true),
        ],
    );
    assert_eq!(ok.unwrap(), vec![Some(0), None]);

    let e = bind(
        &f,
        &[
            req("w.f32", GgmlType::F16, &[4, 2], false),
            req("w.q8", GgmlType::Q8_0, &[32, 2], false),
            req("gone", GgmlType::F32, &[1], false),
            req("opt", GgmlType::F32, &[1], true),
        ],
    )
    .unwrap_err();
    assert_eq!(
        e.problems,
        vec![
            BindProblem::WrongType {
                name: "w.f32".into(),
                expected: GgmlType::F16,
                found: GgmlType::F32
            },
            BindProblem::WrongShape {
                name: "w.q8".into(),
                expected: vec![32, 2],
                found: vec![64]
            },
            BindProblem::Missing {
                name: "gone".into()
            },
        ]
    );
    let msg = e.to_string();
    assert!(msg.contains("3 tensor mismatch"), "{msg}");
    assert!(msg.contains("tensor gone is missing"), "{msg}");

    // mtp.* extras are allowed silently; others are listed.
    let extras = extra_tensors(&f, &[req("w.f32", GgmlType::F32, &[4, 2], false)]);
    assert_eq!(extras, vec!["w.q8"]);
}
