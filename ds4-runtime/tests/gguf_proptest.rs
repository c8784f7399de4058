//! Property tests: random metadata and tensors written by the builder read back
//! unchanged, and random bytes behind a valid magic never panic the reader.

use ds4_runtime::gguf::write::{self, Builder};
use ds4_runtime::gguf::GgufFile;
use ds4_runtime::quant::GgmlType;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn metadata_and_tensors_round_trip(
        ints in proptest::collection::vec(any::<u32>(), 0..40),
        floats in proptest::collection::vec(-1e6f32..1e6, 0..40),
        strings in proptest::collection::vec("[a-zé ]{0,12}", 0..20),
        scalar in any::<u32>(),
        flag in any::<bool>(),
        rows in 1u64..4,
        align_shift in 0u32..8,
    ) {
        let data: Vec<u8> = (0..rows * 34).map(|i| i as u8).collect();
        let bytes = Builder::new()
            .alignment(1 << align_shift)
            .kv(|w| write::kv_u32(w, "s", scalar))
            .kv(|w| write::kv_bool(w, "b", flag))
            .kv(|w| write::kv_array_u32(w, "ints", &ints))
            .kv(|w| write::kv_array_f32(w, "floats", &floats))
            .kv(|w| write::kv_array_str(w, "strings", &strings))
            .tensor("q", &[32, rows], GgmlType::Q8_0, data.clone())
            .tensor("f", &[3], GgmlType::F32, vec![9; 12])
            .build();
        let f = GgufFile::from_bytes(bytes).unwrap();
        prop_assert_eq!(f.alignment(), 1u64 << align_shift);
        prop_assert_eq!(f.get_u32("s").unwrap(), scalar);
        prop_assert_eq!(f.get_bool("b").unwrap(), flag);
        prop_assert_eq!(f.get_u32_array("ints").unwrap(), ints);
        prop_assert_eq!(f.get_f32_array("floats").unwrap(), floats);
        prop_assert_eq!(f.get_str_array("strings").unwrap(), strings.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let q = f.tensor("q").unwrap();
        prop_assert_eq!(f.tensor_data(q), data.as_slice());
        prop_assert_eq!(q.offset % (1u64 << align_shift), 0);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        n_tensors in 0u64..4,
        n_kv in 0u64..4,
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = Vec::new();
        write::header(&mut bytes, n_tensors, n_kv).unwrap();
        bytes.extend_from_slice(&body);
        let _ = GgufFile::from_bytes(bytes);
    }
}
