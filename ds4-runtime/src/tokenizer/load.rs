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

use serde_json::Value;

use super::added::{AddedToken, AddedTokens};
use super::bpe::Bpe;
use super::bytes::byte_to_char;
use super::{
    Result, TokenizerError, EMBEDDED_JSON, TOKEN_TYPE_CONTROL, TOKEN_TYPE_NORMAL,
    TOKEN_TYPE_USER_DEFINED,
};

/// The official file as the arrays a GGUF carries: tokens (id = index), merges
/// (`"A B"`) and token types (3 for special added tokens, 4 for other added tokens,
/// 1 otherwise). Feeding them to [`Tokenizer::from_vocab`] rebuilds the official tokenizer.
pub fn official_vocab_arrays() -> Result<(Vec<String>, Vec<String>, Vec<i32>)> {
    let official: Value =
        serde_json::from_str(EMBEDDED_JSON).map_err(|e| TokenizerError::Load(e.to_string()))?;
    let bad =
        |what: &str| TokenizerError::Load(format!("the embedded tokenizer.json has no {what}"));

    let mut tokens: Vec<Option<String>> = Vec::new();
    let mut types: Vec<i32> = Vec::new();
    let mut place = |id: u64, text: &str, ty: i32| {
        let i = id as usize;
        if tokens.len() <= i {
            tokens.resize(i + 1, None);
            types.resize(i + 1, TOKEN_TYPE_NORMAL);
        }
        tokens[i] = Some(text.to_owned());
        types[i] = ty;
    };
    let vocab = official["model"]["vocab"]
        .as_object()
        .ok_or_else(|| bad("model.vocab"))?;
    for (text, id) in vocab {
        place(
            id.as_u64().ok_or_else(|| bad("integer vocabulary ids"))?,
            text,
            TOKEN_TYPE_NORMAL,
        );
    }
    for token in official["added_tokens"]
        .as_array()
        .ok_or_else(|| bad("added_tokens"))?
    {
        let id = token["id"].as_u64().ok_or_else(|| bad("added token ids"))?;
        let text = token["content"]
            .as_str()
            .ok_or_else(|| bad("added token contents"))?;
        let special = token["special"].as_bool().unwrap_or(false);
        place(
            id,
            text,
            if special {
                TOKEN_TYPE_CONTROL
            } else {
                TOKEN_TYPE_USER_DEFINED
            },
        );
    }
    let tokens = tokens
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| bad("dense id range"))?;

    let merges = official["model"]["merges"]
        .as_array()
        .ok_or_else(|| bad("model.merges"))?
        .iter()
        .map(|m| m.as_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| bad("string merges"))?;
    Ok((tokens, merges, types))
}

/// `(special, normalized)` flags of the official file's added tokens, by spelling.
fn official_added_flags() -> &'static HashMap<String, (bool, bool)> {
    static FLAGS: OnceLock<HashMap<String, (bool, bool)>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        let official: Value = serde_json::from_str(EMBEDDED_JSON).unwrap_or(Value::Null);
        added_flags(&official)
    })
}

fn added_flags(official: &Value) -> HashMap<String, (bool, bool)> {
    let mut map = HashMap::new();
    for token in official["added_tokens"].as_array().into_iter().flatten() {
        if let Some(content) = token["content"].as_str() {
            let special = token["special"].as_bool().unwrap_or(false);
            let normalized = token["normalized"].as_bool().unwrap_or(!special);
            map.insert(content.to_owned(), (special, normalized));
        }
    }
    map
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
    ids: &HashMap<String, u32>,
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
    for (rank, merge) in merges.iter().enumerate() {
        let bad = |why: &str| TokenizerError::Load(format!("merge {rank} {merge:?} {why}"));
        let (left, right) = merge
            .split_once(' ')
            .ok_or_else(|| bad("is not two symbols separated by a space"))?;
        let id = |s: &str| {
            ids.get(s)
                .copied()
                .ok_or_else(|| bad(&format!("uses {s:?}, which is not in the vocabulary")))
        };
        triples.push((id(left)?, id(right)?, id(&format!("{left}{right}"))?));
    }

    Ok(Tables {
        bpe: Bpe::new(byte_ids, triples),
        added: AddedTokens::new(&added)?,
    })
}
