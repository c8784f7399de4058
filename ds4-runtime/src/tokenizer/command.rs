//! The `tokenize` subcommand's work, independent of argument parsing.
//!
//! Text in, a JSON array of ids out (optionally of the rendered one-turn chat
//! prompt); or, with `decode`, a JSON array of ids in and their text out.

use serde_json::Value;

use super::{Result, Tokenizer, TokenizerError};
use crate::chat::{self, ChatOptions, ThinkMode, DEFAULT_SYSTEM};

/// Options of `ds4-runtime tokenize`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenizeOptions {
    /// Render the input as a one-turn chat prompt first (`--chat`).
    pub chat: bool,
    /// End the chat prompt with `</think>` instead of `<think>` (`--nothink`).
    pub nothink: bool,
    /// System text (`-sys`); `None` means [`DEFAULT_SYSTEM`], `Some("")` none.
    pub system: Option<String>,
    /// Input is a JSON array of ids to turn back into text (`--decode`).
    pub decode: bool,
}

/// Run `tokenize` on `input` and return what it prints: a JSON array of ids such as
/// `[0, 19923]`, or with `decode` the decoded text.
pub fn run_tokenize(tok: &Tokenizer, input: &str, opts: &TokenizeOptions) -> Result<String> {
    if opts.decode {
        let ids = parse_ids(input, tok.vocab_size())?;
        return Ok(tok.decode(&ids));
    }

    let ids = if opts.chat {
        let chat_opts = ChatOptions {
            system: Some(
                opts.system
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SYSTEM.to_owned()),
            ),
            think: if opts.nothink {
                ThinkMode::NoThink
            } else {
                ThinkMode::Think
            },
        };
        chat::render_prompt(tok, &chat_opts, input)
    } else {
        tok.encode(input)
    };
    Ok(format_ids(&ids))
}

/// `[a, b, c]`.
fn format_ids(ids: &[u32]) -> String {
    let items: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Parse a JSON array of ids and check each against the vocabulary.
fn parse_ids(input: &str, vocab_size: usize) -> Result<Vec<u32>> {
    let value: Value =
        serde_json::from_str(input.trim()).map_err(|e| TokenizerError::BadIdList(e.to_string()))?;
    let Value::Array(items) = value else {
        return Err(TokenizerError::BadIdList(format!(
            "got {}",
            kind_of(&value)
        )));
    };

    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = item.as_u64().ok_or_else(|| {
            TokenizerError::BadIdList(format!(
                "element {i} is {} {item}, not a non-negative integer",
                kind_of(item)
            ))
        })?;
        if id >= vocab_size as u64 {
            return Err(TokenizerError::IdOutOfRange { id, vocab_size });
        }
        ids.push(id as u32);
    }
    Ok(ids)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
