//! Our encoder against the `tokenizers` crate (the official implementation, here
//! with its pure-Rust regex engine) over the same official `tokenizer.json`: the
//! benchmark novel and random text that stresses every pre-tokenizer branch and
//! Unicode class must give identical ids.

use std::sync::OnceLock;

use ds4_runtime::tokenizer::{special, Tokenizer, EMBEDDED_JSON};
use proptest::prelude::*;

fn ours() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::embedded().expect("embedded tokenizer loads"))
}

fn reference() -> &'static tokenizers::Tokenizer {
    static TOK: OnceLock<tokenizers::Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        tokenizers::Tokenizer::from_bytes(EMBEDDED_JSON.as_bytes()).expect("official file loads")
    })
}

fn reference_ids(text: &str) -> Vec<u32> {
    reference()
        .encode_fast(text, false)
        .expect("reference encodes")
        .get_ids()
        .to_vec()
}

#[test]
fn novel_matches_reference() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/text/promessi_sposi.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}; the tests need the shared/ folder beside the project")
    });
    let ids = ours().encode(&text);
    // The count the Python `tokenizers` package gives for this file.
    assert_eq!(ids.len(), 417_059);
    assert_eq!(ids, reference_ids(&text));
}

/// Characters from every class the pre-tokenizer distinguishes, several scripts,
/// and the edges of its CJK ranges.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            ' ',
            '\t',
            '\n',
            '\r',
            '\u{b}',
            '\u{c}',
            '\u{85}',
            '\u{a0}',
            '\u{2028}',
            '\u{3000}',
            '\u{200b}',
            '\u{200d}',
            '\u{0}',
            '\u{1b}',
            '\u{7f}',
            '\u{ad}',
            '\u{feff}',
            '\u{e000}',
            '\u{0301}',
            '\u{0669}',
            '\u{2165}',
            '½',
            '²',
            '①',
            '〇',
            '一',
            '\u{9fa5}',
            '\u{9fa6}',
            '\u{4dff}',
            '\u{3040}',
            '\u{309b}',
            '\u{30a0}',
            '\u{30fb}',
            '\u{30fc}',
            '\u{30ff}',
            '\u{3100}',
            'ー',
            '・',
            '。',
            '、',
            '！',
            '€',
            '$',
            '+',
            '^',
            '`',
            '|',
            '~',
            '_',
            '-',
            '\'',
            '"',
            '.',
            ',',
            '(',
            ')',
            '«',
            '»',
            '¿',
            '¡',
            'é',
            'ß',
            'Ж',
            'ה',
            'ب',
            '한',
            'ก',
            '\u{0e31}',
            'ñ',
            'Ⅻ',
            '∑',
            '😀',
            '\u{1f3fd}',
            '\u{e0041}',
            '\u{10ffff}',
        ]),
        prop::char::range('a', 'z'),
        prop::char::range('0', '9'),
        prop::char::range('!', '/'),
        any::<char>(),
    ]
}

fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => prop::collection::vec(tricky_char(), 1..6).prop_map(|v| v.into_iter().collect::<String>()),
        1 => "[ \t\r\n]{1,6}",
        1 => "[a-zA-Z]{1,10}",
        1 => prop::sample::select(vec![
            special::BOS, special::EOS, special::USER, special::ASSISTANT, special::THINK,
            special::THINK_END, special::DSML, "<dsml:", "</dsml:", "<|EOT|>", "<｜/table>｜",
            "<｜begin▁of▁sentence", "<thi",
        ]).prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..20).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_text_matches_reference(text in tricky_text()) {
        prop_assert_eq!(ours().encode(&text), reference_ids(&text), "text {:?}", text);
    }

    #[test]
    fn arbitrary_unicode_matches_reference(text in any::<String>()) {
        prop_assert_eq!(ours().encode(&text), reference_ids(&text), "text {:?}", text);
    }
}
