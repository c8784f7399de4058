//! Property tests: encode/decode round trip on arbitrary Unicode, and decoding and
//! streaming never panic on arbitrary ids or bytes.

use std::sync::OnceLock;

use ds4_runtime::tokenizer::{special, StreamDecoder, Tokenizer};
use proptest::prelude::*;

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::embedded().expect("embedded tokenizer loads"))
}

/// Text built from pieces that exercise every pre-tokenizer branch: letters, digits,
/// CJK and kana, punctuation, whitespace runs, emoji, combining marks, specials.
fn mixed_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z]{1,8}",
        "[0-9]{1,6}",
        "[\u{4e00}-\u{9fa5}\u{3040}-\u{30ff}]{1,4}",
        "[!-/:-@\\[-`{-~]{1,4}",
        "[ \t\r\n\u{a0}\u{3000}]{1,5}",
        "[\u{1f600}-\u{1f64f}\u{200d}\u{0300}-\u{036f}é€½²]{1,3}",
        Just(special::BOS.to_owned()),
        Just(special::USER.to_owned()),
        Just(special::THINK_END.to_owned()),
        Just("<dsml:".to_owned()),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn round_trip_arbitrary_unicode(s in any::<String>()) {
        prop_assert_eq!(tok().decode(&tok().encode(&s)), s);
    }

    #[test]
    fn round_trip_mixed_text(s in mixed_text()) {
        let ids = tok().encode(&s);
        prop_assert!(ids.iter().all(|&id| (id as usize) < tok().vocab_size()));
        prop_assert_eq!(tok().decode(&ids), s);
    }

    #[test]
    fn decode_any_ids_without_panic(ids in prop::collection::vec(any::<u32>(), 0..64)) {
        let text = tok().decode(&ids);
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| tok().token_bytes(id).to_vec()).collect();
        prop_assert_eq!(text, String::from_utf8_lossy(&bytes));
    }

    /// Ids mostly inside the vocabulary (so multi-byte pieces meet), some outside.
    #[test]
    fn stream_equals_decode(ids in prop::collection::vec(
        prop_oneof![8 => 0u32..129_280, 1 => any::<u32>()], 0..96)
    ) {
        let mut stream = StreamDecoder::new(tok());
        let mut out = String::new();
        for &id in &ids {
            out.push_str(&stream.push(id));
        }
        out.push_str(&stream.finish());
        prop_assert!(!stream.has_pending());
        prop_assert_eq!(out, tok().decode(&ids));
    }

    #[test]
    fn stream_of_arbitrary_bytes(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..6), 0..40)) {
        let mut stream = StreamDecoder::new(tok());
        let mut out = String::new();
        for chunk in &chunks {
            out.push_str(&stream.push_bytes(chunk));
        }
        out.push_str(&stream.finish());
        let all = chunks.concat();
        prop_assert_eq!(out, String::from_utf8_lossy(&all));
    }
}

#[test]
fn stream_holds_back_split_characters() {
    // "中" is E4 B8 AD; push it one byte at a time through single-byte tokens.
    let t = tok();
    let byte_id = |b: u8| {
        let text = ds4_runtime::tokenizer::bytes::byte_to_char(b).to_string();
        t.id_of(&text).expect("every byte has a token")
    };
    let mut stream = StreamDecoder::new(t);
    assert_eq!(stream.push(byte_id(0xE4)), "");
    assert_eq!(stream.push(byte_id(0xB8)), "");
    assert!(stream.has_pending());
    assert_eq!(stream.push(byte_id(0xAD)), "中");
    // An invalid continuation is replaced at once, the next character kept whole.
    assert_eq!(stream.push(byte_id(0xE4)), "");
    assert_eq!(stream.push(byte_id(b'a')), "\u{FFFD}a");
    // An unfinished character at the end comes out as one replacement.
    assert_eq!(stream.push(byte_id(0xF0)), "");
    assert_eq!(stream.finish(), "\u{FFFD}");
    assert_eq!(stream.finish(), "");
}

#[test]
fn long_runs_round_trip() {
    // One pre-tokenizer piece of 200k bytes: the BPE heap keeps this n log n (a
    // quadratic merge loop would take minutes here).
    for unit in [" ", "a", "\n", "中", "!", "ab "] {
        let text = unit.repeat(200_000 / unit.len());
        let ids = tok().encode(&text);
        assert!(ids.len() < text.len(), "{unit:?} should merge");
        assert_eq!(tok().decode(&ids), text, "{unit:?}");
    }
}
