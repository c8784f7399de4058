//! Hostile GGUF files, one test per class of `GGUF_SECURITY.md` §1: each must be
//! rejected with an error that names the field, never a panic, a hang or a
//! huge allocation (every count here is up to 2^64-1 in a file of a few bytes).

use ds4_runtime::gguf::write::{self, Builder};
use ds4_runtime::gguf::{GgufError, GgufFile};
use ds4_runtime::quant::GgmlType;

const ARRAY: u32 = 9;
const STRING: u32 = 8;

/// Header with raw counts.
fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut v = Vec::new();
    write::header(&mut v, n_tensors, n_kv).unwrap();
    v
}

fn push_str(v: &mut Vec<u8>, s: &[u8]) {
    v.extend_from_slice(&(s.len() as u64).to_le_bytes());
    v.extend_from_slice(s);
}

fn push_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn push_u64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// A file with one raw tensor info (type id, dims and offset as given) and `data` bytes.
fn one_tensor(name: &[u8], dims: &[u64], type_id: u32, rel: u64, data: usize) -> Vec<u8> {
    let mut v = header(1, 0);
    push_str(&mut v, name);
    push_u32(&mut v, dims.len() as u32);
    dims.iter().for_each(|&d| push_u64(&mut v, d));
    push_u32(&mut v, type_id);
    push_u64(&mut v, rel);
    v.resize(v.len().div_ceil(32) * 32 + data, 0);
    v
}

fn err(bytes: Vec<u8>) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(_) => panic!("hostile file was accepted"),
        Err(e) => e,
    }
}

fn expect(bytes: Vec<u8>, pattern: &str) -> GgufError {
    let e = err(bytes);
    assert!(
        e.to_string().contains(pattern),
        "error {:?} lacks {pattern:?}",
        e.to_string()
    );
    e
}

fn valid_small() -> Vec<u8> {
    Builder::new()
        .kv(|w| write::kv_str(w, "general.architecture", "deepseek4"))
        .kv(|w| write::kv_array_str(w, "tokenizer.ggml.tokens", &["a", "b"]))
        .kv(|w| write::kv_array_u32(w, "r", &[1, 2, 3]))
        .kv(|w| write::kv_bool(w, "b", true))
        .tensor("t0", &[32], GgmlType::Q8_0, vec![1; 34])
        .tensor("t1", &[2, 2], GgmlType::F32, vec![2; 16])
        .build()
}

#[test]
fn every_truncation_of_a_valid_file_is_rejected() {
    let full = valid_small();
    let f = GgufFile::from_bytes(full.clone()).expect("the untruncated file is valid");
    let data_end = f
        .tensors()
        .iter()
        .map(|t| t.offset + t.n_bytes)
        .max()
        .unwrap() as usize;
    for n in 0..full.len() {
        let r = GgufFile::from_bytes(full[..n].to_vec());
        if n < data_end {
            let e = r
                .err()
                .unwrap_or_else(|| panic!("truncation at {n} accepted"));
            assert!(
                matches!(
                    e,
                    GgufError::Truncated { .. }
                        | GgufError::CountTooLarge { .. }
                        | GgufError::TensorPastEof { .. }
                ),
                "truncation at {n}: {e}"
            );
        } else {
            // Only trailing padding is missing: the tensors are all still there.
            assert!(r.is_ok(), "truncation at {n} in trailing padding rejected");
        }
    }
    let e = err(full[..20].to_vec());
    assert_eq!(
        e.to_string(),
        "truncated GGUF file: n_kv needs 8 bytes at byte 16, only 4 left"
    );
}

#[test]
fn wrong_magic_and_versions() {
    let mut v = valid_small();
    v[0] = b'X';
    assert!(matches!(err(v), GgufError::BadMagic { .. }));
    for version in [0u32, 1, 2, 4, 0x0300_0000] {
        let mut v = valid_small();
        v[4..8].copy_from_slice(&version.to_le_bytes());
        let e = expect(v, "unsupported GGUF version");
        assert!(matches!(e, GgufError::UnsupportedVersion { version: x } if x == version));
    }
}

#[test]
fn huge_header_counts() {
    let e = expect(header(u64::MAX, 0), "n_tensors = 18446744073709551615");
    assert!(matches!(e, GgufError::CountTooLarge { offset: 8, .. }));
    let e = expect(header(0, u64::MAX), "n_kv = 18446744073709551615");
    assert!(matches!(e, GgufError::CountTooLarge { offset: 16, .. }));
    // Plausible-looking but still impossible for the bytes present.
    let mut v = header(0, 5_000_000);
    v.extend_from_slice(&[0; 64]);
    expect(v, "n_kv = 5000000");
}

#[test]
fn huge_string_lengths() {
    // Key length.
    let mut v = header(0, 1);
    push_u64(&mut v, u64::MAX);
    v.extend_from_slice(&[b'a'; 64]);
    let e = expect(
        v,
        "metadata key #0 (declared length 18446744073709551615 at byte 24)",
    );
    assert!(matches!(e, GgufError::Truncated { .. }));

    // String value length.
    let mut v = header(0, 1);
    push_str(&mut v, b"k");
    push_u32(&mut v, STRING);
    push_u64(&mut v, u64::MAX - 3);
    v.extend_from_slice(&[b'a'; 64]);
    expect(v, "value of \"k\"");

    // Tensor name length.
    let mut v = header(1, 0);
    push_u64(&mut v, u64::MAX);
    v.extend_from_slice(&[0; 40]);
    expect(v, "name of tensor #0");
}

#[test]
fn huge_array_lengths() {
    for (elem, label) in [
        (0u32, "UINT8"),
        (4, "UINT32"),
        (12, "FLOAT64"),
        (STRING, "STRING"),
        (ARRAY, "ARRAY"),
    ] {
        for len in [u64::MAX, 1 << 63, 1 << 40] {
            let mut v = header(0, 1);
            push_str(&mut v, b"arr");
            push_u32(&mut v, ARRAY);
            push_u32(&mut v, elem);
            push_u64(&mut v, len);
            v.extend_from_slice(&[0; 16]);
            let e = expect(v, "length of array \"arr\"");
            assert!(matches!(e, GgufError::CountTooLarge { .. }), "{label}: {e}");
        }
    }
}

fn nested(depth: u32) -> Vec<u8> {
    let mut v = header(0, 1);
    push_str(&mut v, b"deep");
    push_u32(&mut v, ARRAY);
    for _ in 1..depth {
        push_u32(&mut v, ARRAY);
        push_u64(&mut v, 1);
    }
    push_u32(&mut v, 4);
    push_u64(&mut v, 1);
    push_u32(&mut v, 42);
    v
}

#[test]
fn nesting_is_bounded_at_eight_levels() {
    assert!(GgufFile::from_bytes(nested(8)).is_ok());
    let e = expect(nested(9), "arrays nested deeper than 8 levels");
    assert!(matches!(e, GgufError::ArrayTooDeep { .. }));
    // A long chain (the ferrox pattern) fails at level 9 without recursing further.
    expect(nested(10_000), "nested deeper than 8");
}

#[test]
fn n_dims_outside_one_to_eight() {
    for n in [0u32, 9, u32::MAX] {
        let mut v = header(1, 0);
        push_str(&mut v, b"t");
        push_u32(&mut v, n);
        v.extend_from_slice(&[1; 100]);
        let e = expect(v, &format!("n_dims = {n}"));
        assert!(matches!(e, GgufError::BadDimCount { .. }));
    }
    let eight = one_tensor(b"t", &[1; 8], 0, 0, 4);
    assert!(GgufFile::from_bytes(eight).is_ok());
}

#[test]
fn shape_and_byte_size_overflow() {
    let e = expect(one_tensor(b"t", &[1 << 32, 1 << 32], 0, 0, 4), "overflows");
    assert!(matches!(e, GgufError::ShapeOverflow { .. }));
    // Element count fits, bytes do not (F32: 4 · 2^62).
    expect(
        one_tensor(b"t", &[1 << 62], 0, 0, 4),
        "tensor \"t\": shape [4611686018427387904]",
    );
    // Quantised: 34 · 2^58 blocks overflow.
    expect(
        one_tensor(b"t", &[1 << 63], GgmlType::Q8_0.id(), 0, 4),
        "overflows",
    );
    // The gguf-py wrap example: [4194305, 4194305, 211106198978564].
    expect(
        one_tensor(b"t", &[4194305, 4194305, 211106198978564], 0, 0, 4),
        "overflows",
    );
    // Fits in u64 but not in i64 bytes: rejected too.
    expect(
        one_tensor(b"t", &[1 << 63], GgmlType::I8.id(), 0, 4),
        "overflows",
    );
}

#[test]
fn zero_sized_dimension() {
    let e = expect(one_tensor(b"t", &[4, 0], 0, 0, 0), "dimension 1 is 0");
    assert!(matches!(e, GgufError::ZeroDim { axis: 1, .. }));
}

#[test]
fn partial_blocks() {
    let e = expect(
        one_tensor(b"t", &[33], GgmlType::Q8_0.id(), 0, 68),
        "ne0 = 33 is not a multiple",
    );
    assert!(matches!(e, GgufError::PartialBlock { .. }));
}

#[test]
fn data_past_eof_and_overlap() {
    let e = expect(one_tensor(b"t", &[8], 0, 0, 31), "lies outside");
    assert!(matches!(e, GgufError::TensorPastEof { .. }));
    expect(one_tensor(b"t", &[8], 0, 1 << 40, 32), "lies outside");
    // An offset near 2^64 must not wrap around to a small address.
    expect(one_tensor(b"t", &[8], 0, u64::MAX - 31, 32), "lies outside");

    let mut v = header(2, 0);
    for name in [b"a", b"b"] {
        push_str(&mut v, name);
        push_u32(&mut v, 1);
        push_u64(&mut v, 16);
        push_u32(&mut v, 0);
        push_u64(&mut v, 0);
    }
    v.resize(v.len().div_ceil(32) * 32 + 64, 0);
    let e = expect(v, "overlaps tensor");
    assert!(matches!(e, GgufError::TensorOverlap { .. }));
}

#[test]
fn unaligned_offset() {
    let e = expect(one_tensor(b"t", &[1], 0, 4, 64), "data offset 4");
    assert!(matches!(
        e,
        GgufError::MisalignedTensor { alignment: 32, .. }
    ));
}

fn with_alignment_kv(ty: u32, value: &[u8]) -> Vec<u8> {
    let mut v = header(0, 1);
    push_str(&mut v, b"general.alignment");
    push_u32(&mut v, ty);
    v.extend_from_slice(value);
    v
}

#[test]
fn bad_general_alignment() {
    expect(
        with_alignment_kv(4, &0u32.to_le_bytes()),
        "general.alignment at byte 53: value is 0",
    );
    expect(
        with_alignment_kv(4, &13u32.to_le_bytes()),
        "13 is not a power of two",
    );
    expect(
        with_alignment_kv(4, &(1u32 << 31).to_le_bytes()),
        "exceeds the cap",
    );
    expect(
        with_alignment_kv(5, &32u32.to_le_bytes()),
        "has type INT32, expected UINT32",
    );
    expect(
        with_alignment_kv(10, &32u64.to_le_bytes()),
        "has type UINT64, expected UINT32",
    );
    assert!(GgufFile::from_bytes(with_alignment_kv(4, &64u32.to_le_bytes())).is_ok());
}

#[test]
fn unknown_type_ids() {
    let mut v = header(0, 1);
    push_str(&mut v, b"k");
    push_u32(&mut v, 13);
    v.extend_from_slice(&[0; 8]);
    let e = expect(v, "unknown value type id 13");
    assert!(matches!(e, GgufError::UnknownValueType { type_id: 13, .. }));

    let mut v = header(0, 1);
    push_str(&mut v, b"k");
    push_u32(&mut v, ARRAY);
    push_u32(&mut v, u32::MAX);
    push_u64(&mut v, 1);
    expect(v, "unknown value type id 4294967295");

    for id in [4u32, 5, 31, u32::MAX] {
        let e = expect(
            one_tensor(b"t", &[32], id, 0, 64),
            &format!("unknown ggml type id {id}"),
        );
        assert!(matches!(e, GgufError::UnknownTensorType { .. }));
    }
}

fn one_key(key: &[u8]) -> Vec<u8> {
    let mut v = header(0, 1);
    push_str(&mut v, key);
    push_u32(&mut v, 4);
    push_u32(&mut v, 1);
    v
}

#[test]
fn empty_keys_nul_keys_and_bad_names() {
    let e = expect(one_key(b""), "metadata key #0 at byte 24 is empty");
    assert!(matches!(e, GgufError::EmptyKey { .. }));
    let e = expect(one_key(b"general.alignment\0x"), "contains a NUL byte");
    assert!(matches!(e, GgufError::NulInName { .. }));
    expect(one_key(b"\xff\xfe"), "is not valid UTF-8");

    expect(one_tensor(b"", &[1], 0, 0, 4), "name length 0");
    expect(one_tensor(&[b'x'; 64], &[1], 0, 0, 4), "name length 64");
    expect(one_tensor(b"a\0b", &[1], 0, 0, 4), "tensor name \"a\\0b\"");
}

#[test]
fn duplicate_keys_and_tensor_names() {
    let v = Builder::new()
        .kv(|w| write::kv_u32(w, "k", 1))
        .kv(|w| write::kv_u32(w, "k", 2))
        .build();
    let e = expect(v, "duplicate metadata key \"k\"");
    assert!(matches!(e, GgufError::DuplicateKey { .. }));

    let v = Builder::new()
        .tensor("t", &[1], GgmlType::F32, vec![0; 4])
        .tensor("t", &[1], GgmlType::F32, vec![0; 4])
        .build();
    let e = expect(v, "duplicate tensor name \"t\"");
    assert!(matches!(e, GgufError::DuplicateTensor { .. }));
}

#[test]
fn bool_bytes_other_than_zero_or_one() {
    let mut v = header(0, 1);
    push_str(&mut v, b"flag");
    push_u32(&mut v, 7);
    v.push(2);
    let e = expect(v, "bool byte 2");
    assert!(matches!(e, GgufError::BadBool { .. }));
}

#[test]
fn consumer_type_confusion_is_a_clear_error() {
    // A vocabulary declared as INT8 must not be read as strings (llama.cpp #26690).
    let mut v = header(0, 1);
    push_str(&mut v, b"tokenizer.ggml.tokens");
    push_u32(&mut v, ARRAY);
    push_u32(&mut v, 1);
    push_u64(&mut v, 3);
    v.extend_from_slice(&[1, 2, 3]);
    let f = GgufFile::from_bytes(v).unwrap();
    let e = f.get_str_array("tokenizer.ggml.tokens").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key tokenizer.ggml.tokens has type ARRAY of INT8, expected ARRAY of STRING"
    );
    assert!(f.get_u32("tokenizer.ggml.tokens").is_err());
}
