//! The official chat template cases (`shared/vectors/tokenizer/chat_cases.json`,
//! from DeepSeek's `encoding_dsv4.encode_messages` and HF tokenizers) and the
//! reference CLI's prompt sequences (FORMAT.md §6.2).

use std::sync::OnceLock;

use ds4_runtime::chat::{
    render_prompt, render_text, ChatOptions, Conversation, ThinkMode, DEFAULT_SYSTEM,
};
use ds4_runtime::tokenizer::Tokenizer;
use serde_json::Value;

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| Tokenizer::embedded().expect("embedded tokenizer loads"))
}

fn cases() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/tokenizer/chat_cases.json"
    );
    let raw = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}; the tests need the shared/ folder beside the project")
    });
    let json: Value = serde_json::from_str(&raw).expect("chat_cases.json is JSON");
    json["cases"].as_array().expect("cases array").clone()
}

/// Replay a case through [`Conversation`]: system messages set the options, user
/// messages open turns, assistant messages stand for generated text.
fn replay(case: &Value) -> Vec<u32> {
    let think = match case["thinking_mode"].as_str() {
        Some("thinking") => ThinkMode::Think,
        Some("chat") => ThinkMode::NoThink,
        other => panic!("unknown thinking_mode {other:?}"),
    };
    let messages = case["messages"].as_array().expect("messages");
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m["role"] == "system")
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    let opts = ChatOptions {
        system: Some(system.join("\n\n")),
        think,
    };

    let mut conv = Conversation::new(opts);
    let mut fed = Vec::new();
    for m in messages {
        let content = m["content"].as_str().expect("content");
        match m["role"].as_str() {
            Some("user") => fed.extend(conv.user_turn(tok(), content)),
            Some("assistant") => {
                let generated = tok().encode(content);
                fed.extend(&generated);
                fed.extend(conv.end_turn(tok(), &generated));
            }
            _ => {}
        }
    }
    assert_eq!(
        fed,
        conv.transcript(),
        "the fed suffixes add up to the transcript"
    );
    fed
}

#[test]
fn official_chat_cases() {
    let cases = cases();
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let rendered = case["rendered"].as_str().expect("rendered");
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|i| i.as_u64().expect("id") as u32)
            .collect();

        let fed = replay(case);
        assert_eq!(fed, ids, "ids of {rendered:?}");
        assert_eq!(tok().decode(&fed), rendered);

        // One-turn cases also through the one-shot functions.
        let messages = case["messages"].as_array().expect("messages");
        if messages.iter().filter(|m| m["role"] != "system").count() == 1 {
            let user = messages.iter().find(|m| m["role"] == "user").expect("user");
            let user = user["content"].as_str().expect("content");
            let system = messages
                .iter()
                .find(|m| m["role"] == "system")
                .map(|m| m["content"].as_str().expect("content").to_owned());
            let think = if case["thinking_mode"] == "thinking" {
                ThinkMode::Think
            } else {
                ThinkMode::NoThink
            };
            let opts = ChatOptions { system, think };
            assert_eq!(render_text(&opts, user), rendered);
            assert_eq!(render_prompt(tok(), &opts, user), ids);
            // A prompt that is already rendered is taken as written.
            assert_eq!(render_prompt(tok(), &ChatOptions::default(), rendered), ids);
        }
    }
}

#[test]
fn cli_prompt_sequences() {
    // FORMAT.md §6.2, `./ds4 -p Hello` and its variants.
    let t = tok();
    let system_ids = t.encode(DEFAULT_SYSTEM);
    assert_eq!(system_ids.len(), 5, "You · are · a · helpful · assistant");

    let default = render_prompt(t, &ChatOptions::default(), "Hello");
    let mut expected = vec![t.bos()];
    expected.extend(&system_ids);
    expected.extend([t.user(), 19923, t.assistant(), t.think()]);
    assert_eq!(default, expected);

    let nothink = ChatOptions {
        think: ThinkMode::NoThink,
        ..ChatOptions::default()
    };
    *expected.last_mut().expect("non-empty") = t.think_end();
    assert_eq!(render_prompt(t, &nothink, "Hello"), expected);

    for system in [None, Some(String::new())] {
        let opts = ChatOptions {
            system,
            think: ThinkMode::Think,
        };
        assert_eq!(
            render_prompt(t, &opts, "Hello"),
            [0, 128803, 19923, 128804, 128821]
        );
    }
    assert_eq!(
        render_text(&ChatOptions::default(), "Hello"),
        "<｜begin▁of▁sentence｜>You are a helpful assistant<｜User｜>Hello<｜Assistant｜><think>"
    );
}

#[test]
fn conversation_feeds_only_new_ids_and_rolls_back() {
    let t = tok();
    let mut conv = Conversation::new(ChatOptions::default());
    let first = conv.user_turn(t, "Hi");
    assert_eq!(first, render_prompt(t, &ChatOptions::default(), "Hi"));

    // A length stop: the EOS still closes the turn.
    let generated = t.encode("Hello");
    assert_eq!(conv.end_turn(t, &generated), [t.eos()]);
    // A model-produced EOS is not doubled.
    let second = conv.user_turn(t, "Again");
    assert_eq!(
        second,
        [t.user(), t.encode("Again")[0], t.assistant(), t.think()]
    );
    assert_eq!(conv.end_turn(t, &[19923, t.eos()]), Vec::<u32>::new());

    let before = conv.transcript().len();
    let third = conv.user_turn(t, "More");
    assert_eq!(conv.rollback_turn(), third.len());
    assert_eq!(conv.transcript().len(), before);
    assert_eq!(conv.rollback_turn(), 0);
}
