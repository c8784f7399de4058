//! Building the tokenizer's tables from the arrays a GGUF carries, and reading the
//! committed official `tokenizer.json` into those same arrays.
//!
//! Both constructors meet here: the official file is first turned into GGUF-style
//! arrays (tokens by id, `"A B"` merges by rank, token types), so [`Tokenizer::embedded`]
//! and [`Tokenizer::from_vocab`] share every later step.
//!
//! [`Tokenizer::embedded`]: super::Tokenizer::embedded
//! [`Tokenizer::from_vocab`]: super::Tokenizer::from_vocab

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::added::{AddedToken, AddedTokens};
use super::bpe::{Bpe, FastMap};
use super::bytes::byte_to_char;
use super::{
    Result, TokenizerError, EMBEDDED_JSON, TOKEN_TYPE_CONTROL, TOKEN_TYPE_NORMAL,
    TOKEN_TYPE_USER_DEFINED,
};

/// The parts of `tokenizer.json` this module reads.
#[derive(Deserialize)]
struct OfficialFile {
    added_tokens: Vec<OfficialAdded>,
    model: OfficialModel,
}

#[derive(Deserialize)]
struct OfficialModel {
    vocab: HashMap<String, u32>,
    merges: Vec<String>,
}

#[derive(Deserialize)]
struct OfficialAdded {
    id: u32,
    content: String,
    #[serde(default)]
    special: bool,
    normalized: Option<bool>,
}

/// Only the added tokens (the rest of the file is skipped without being stored).
#[derive(Deserialize)]
struct OfficialAddedOnly {
    added_tokens: Vec<OfficialAdded>,
}

fn load_error(e: serde_json::Error) -> TokenizerError {
    TokenizerError::Load(format!("the embedded tokenizer.json: {e}"))
}

/// The official file as the arrays a GGUF carries: tokens (id = index), merges
/// (`"A B"`) and token types (3 for special added tokens, 4 for other added tokens,
/// 1 otherwise). Feeding them to [`Tokenizer::from_vocab`] rebuilds the official tokenizer.
///
/// [`Tokenizer::from_vocab`]: super::Tokenizer::from_vocab
pub fn official_vocab_arrays() -> Result<(Vec<String>, Vec<String>, Vec<i32>)> {
    let official: OfficialFile = serde_json::from_str(EMBEDDED_JSON).map_err(load_error)?;

    let mut tokens: Vec<Option<String>> = Vec::new();
    let mut types: Vec<i32> = Vec::new();
    let mut place = |id: u32, text: String, ty: i32| {
        let i = id as usize;
        if tokens.len() <= i {
            tokens.resize(i + 1, None);
            types.resize(i + 1, TOKEN_TYPE_NORMAL);
        }
        tokens[i] = Some(text);
        types[i] = ty;
    };
    for (text, id) in official.model.vocab {
        place(id, text, TOKEN_TYPE_NORMAL);
    }
    for token in official.added_tokens {
        let ty = if token.special {
            TOKEN_TYPE_CONTROL
        } else {
            TOKEN_TYPE_USER_DEFINED
        };
        place(token.id, token.content, ty);
    }
    let tokens = tokens
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| {
            TokenizerError::Load("the embedded tokenizer.json leaves ids without a token".into())
        })?;
    Ok((tokens, official.model.merges, types))
}

/// `(special, normalized)` flags of the official file's added tokens, by spelling.
fn official_added_flags() -> &'static HashMap<String, (bool, bool)> {
    static FLAGS: OnceLock<HashMap<String, (bool, bool)>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        // The file is compiled in and parsed by `official_vocab_arrays` in every
        // test, so a parse failure here cannot go unnoticed; no flags then means
        // every added token falls back to its GGUF type.
        let added = serde_json::from_str::<OfficialAddedOnly>(EMBEDDED_JSON)
            .map(|f| f.added_tokens)
            .unwrap_or_default();
        added
            .into_iter()
            .map(|t| (t.content, (t.special, t.normalized.unwrap_or(!t.special))))
            .collect()
    })
}

/// The tables encoding needs.
pub(super) struct Tables {
    pub bpe: Bpe,
    pub added: AddedTokens,
}

/// Build the BPE and added-token tables from GGUF-style arrays. `ids` maps each
/// spelling to its id (a later duplicate wins). Types 3 (control) and 4
/// (user-defined) are added tokens; without types, spellings that are added tokens
/// in the official file are. Flags come from the official file when it knows the
/// spelling, else from the type (control: matched in the first pass).
pub(super) fn build_tables(
    tokens: &[String],
    merges: &[String],
    token_types: Option<&[i32]>,
    ids: &FastMap<String, u32>,
) -> Result<Tables> {
    let official = official_added_flags();
    let mut added = Vec::new();
    for (id, text) in tokens.iter().enumerate() {
        let normalized = match token_types.map(|types| types[id]) {
            Some(TOKEN_TYPE_CONTROL) => official.get(text).is_some_and(|f| f.1),
            Some(TOKEN_TYPE_USER_DEFINED) => official.get(text).is_none_or(|f| f.1),
            Some(_) => continue,
            None => match official.get(text) {
                Some(f) => f.1,
                None => continue,
            },
        };
        // Only the id a spelling resolves to is ever produced.
        if ids.get(text) == Some(&(id as u32)) {
            added.push(AddedToken {
                id: id as u32,
                content: text.clone(),
                normalized,
            });
        }
    }

    let mut byte_ids = [None; 256];
    for (b, slot) in byte_ids.iter_mut().enumerate() {
        *slot = ids.get(byte_to_char(b as u8).to_string().as_str()).copied();
    }

    let mut triples = Vec::with_capacity(merges.len());
    let mut joined = String::new();
    for (rank, merge) in merges.iter().enumerate() {
        let bad = |why: String| TokenizerError::Load(format!("merge {rank} {merge:?} {why}"));
        let (left, right) = merge
            .split_once(' ')
            .ok_or_else(|| bad("is not two symbols separated by a space".into()))?;
        joined.clear();
        joined.push_str(left);
        joined.push_str(right);
        let id = |s: &str| {
            ids.get(s)
                .copied()
                .ok_or_else(|| bad(format!("uses {s:?}, which is not in the vocabulary")))
        };
        triples.push((id(left)?, id(right)?, id(&joined)?));
    }

    Ok(Tables {
        bpe: Bpe::new(byte_ids, triples),
        added: AddedTokens::new(&added)?,
    })
}
