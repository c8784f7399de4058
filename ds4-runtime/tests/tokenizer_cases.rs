//! The official tokenizer's cases (`shared/vectors/tokenizer/tokenizer_cases.json`,
//! produced by HF tokenizers over the official file): ids and decoded text must
//! match exactly, for both constructors.

use std::sync::OnceLock;

use ds4_runtime::tokenizer::{
    official_vocab_arrays, run_tokenize, special, TokenizeOptions, Tokenizer, TokenizerError,
};
use serde_json::Value;

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::embedded().expect("embedded tokenizer loads"))
}

struct Case {
    text: String,
    ids: Vec<u32>,
    decoded: String,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/tokenizer/tokenizer_cases.json"
    );
    let raw = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}; the tests need the shared/ folder beside the project")
    });
    let json: Value = serde_json::from_str(&raw).expect("tokenizer_cases.json is JSON");
    json["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().expect("text").to_owned(),
            ids: c["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|i| i.as_u64().expect("id") as u32)
                .collect(),
            decoded: c["decoded"].as_str().expect("decoded").to_owned(),
        })
        .collect()
}

#[test]
fn official_cases_encode_and_decode() {
    let cases = cases();
    assert!(
        cases.len() >= 50,
        "expected the full case file, got {} cases",
        cases.len()
    );
    for case in &cases {
        assert_eq!(tok().encode(&case.text), case.ids, "ids of {:?}", case.text);
        assert_eq!(
            tok().decode(&case.ids),
            case.decoded,
            "decode of {:?}",
            case.text
        );
        assert_eq!(case.decoded, case.text);
    }
}

#[test]
fn from_vocab_matches_embedded_on_all_cases() {
    let (tokens, merges, types) = official_vocab_arrays().expect("official arrays");
    let with_types =
        Tokenizer::from_vocab(&tokens, &merges, Some(&types)).expect("from_vocab with types");
    let without_types =
        Tokenizer::from_vocab(&tokens, &merges, None).expect("from_vocab without types");

    for built in [&with_types, &without_types] {
        assert_eq!(built.vocab_size(), tok().vocab_size());
        assert_eq!(
            [
                built.bos(),
                built.eos(),
                built.user(),
                built.assistant(),
                built.think(),
                built.think_end()
            ],
            [
                tok().bos(),
                tok().eos(),
                tok().user(),
                tok().assistant(),
                tok().think(),
                tok().think_end()
            ]
        );
        for case in cases() {
            assert_eq!(
                built.encode(&case.text),
                case.ids,
                "from_vocab ids of {:?}",
                case.text
            );
            assert_eq!(built.decode(&case.ids), case.decoded);
        }
    }
}

#[test]
fn from_vocab_with_llama_cpp_style_types() {
    // llama.cpp's converter marks every `<｜…｜>`-looking added token CONTROL (3),
    // the official file has many of them non-special; ids must not change.
    let (tokens, merges, mut types) = official_vocab_arrays().expect("official arrays");
    for ty in types.iter_mut().filter(|t| **t == 4) {
        *ty = 3;
    }
    let built = Tokenizer::from_vocab(&tokens, &merges, Some(&types)).expect("from_vocab");
    for case in cases() {
        assert_eq!(built.encode(&case.text), case.ids, "ids of {:?}", case.text);
    }
}

#[test]
fn from_vocab_rejects_inconsistent_arrays() {
    let (tokens, merges, types) = official_vocab_arrays().expect("official arrays");
    let short = &types[..10];
    assert!(matches!(
        Tokenizer::from_vocab(&tokens, &merges, Some(short)),
        Err(TokenizerError::TypeCount { types: 10, .. })
    ));
    let no_specials: Vec<String> = tokens
        .iter()
        .filter(|t| t.as_str() != special::EOS)
        .cloned()
        .collect();
    assert!(matches!(
        Tokenizer::from_vocab(&no_specials, &merges, None),
        Err(TokenizerError::MissingToken {
            text: special::EOS,
            ..
        })
    ));
}

#[test]
fn special_ids_and_lookups() {
    let t = tok();
    assert_eq!(t.vocab_size(), 129280);
    assert_eq!(
        (t.bos(), t.eos(), t.user(), t.assistant()),
        (0, 1, 128803, 128804)
    );
    assert_eq!((t.think(), t.think_end()), (128821, 128822));
    assert_eq!(t.id_of(special::DSML), Some(128825));
    assert_eq!(t.id_of("Hello"), Some(19923));
    assert_eq!(t.token_text(2058), Some("Ġworld"));
    assert_eq!(t.token_text(u32::MAX), None);
    assert!(t.is_eos(1) && !t.is_eos(0));
    // Specials decode to their spelling; unknown ids to nothing.
    assert_eq!(
        t.decode(&[0, 19923, 1]),
        format!("{}Hello{}", special::BOS, special::EOS)
    );
    assert_eq!(t.decode(&[19923, 200_000, u32::MAX]), "Hello");
}

#[test]
fn official_behaviour_where_ds4_differs() {
    // Expected ids from HF tokenizers 0.23.3 (Python) over the same file.
    let t = tok();
    // ds4's rule 4 lets a Latin run absorb CJK ("abc中文" one piece); the official
    // pre-tokenizer splits CJK runs first.
    assert_eq!(t.encode("abc中文"), [32372, 21134]);
    // ds4 recognises only seven specials; every added token counts officially.
    assert_eq!(t.encode("<dsml:x</｜DSML｜"), [128840, 90, 1718, 128825]);
    // Cases where both agree (FORMAT.md §5.3 table).
    assert_eq!(t.encode("x  1"), [90, 262, 19]);
    assert_eq!(t.encode("a \n\n  b"), [67, 1004, 223, 291]);
    assert_eq!(t.encode("x <think>"), [90, 223, 128821]);
}

#[test]
fn tokenize_command() {
    let t = tok();
    let plain = TokenizeOptions::default();
    assert_eq!(
        run_tokenize(t, "Hello world", &plain).expect("encode"),
        "[19923, 2058]"
    );

    let chat = TokenizeOptions {
        chat: true,
        system: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(
        run_tokenize(t, "Hello", &chat).expect("chat"),
        "[0, 128803, 19923, 128804, 128821]"
    );
    let nothink = TokenizeOptions {
        nothink: true,
        ..chat.clone()
    };
    assert_eq!(
        run_tokenize(t, "Hello", &nothink).expect("chat"),
        "[0, 128803, 19923, 128804, 128822]"
    );

    let decode = TokenizeOptions {
        decode: true,
        ..Default::default()
    };
    assert_eq!(
        run_tokenize(t, " [19923, 2058]\n", &decode).expect("decode"),
        "Hello world"
    );
    assert_eq!(run_tokenize(t, "[]", &decode).expect("decode"), "");
    assert!(matches!(
        run_tokenize(t, "[1, 2", &decode),
        Err(TokenizerError::BadIdList(_))
    ));
    assert!(matches!(
        run_tokenize(t, "{\"a\": 1}", &decode),
        Err(TokenizerError::BadIdList(_))
    ));
    assert!(matches!(
        run_tokenize(t, "[1, -2]", &decode),
        Err(TokenizerError::BadIdList(_))
    ));
    assert!(matches!(
        run_tokenize(t, "[1.5]", &decode),
        Err(TokenizerError::BadIdList(_))
    ));
    assert!(matches!(
        run_tokenize(t, "[129280]", &decode),
        Err(TokenizerError::IdOutOfRange {
            id: 129280,
            vocab_size: 129280
        })
    ));
}

#[test]
fn tokenizer_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
}
