//! Text ↔ token ids for DeepSeek V4 (FORMAT.md §5).
//!
//! The tokenizer is byte-level BPE with the official DeepSeek V4 pre-tokenizer: three
//! regex splits (digit runs of at most three, CJK runs, then words, punctuation and
//! whitespace), the GPT-2 byte-to-code-point mapping ([`bytes`]), and rank-ordered
//! merges. Added tokens (`<｜begin▁of▁sentence｜>`, `<｜User｜>`, `<think>`, …) are cut
//! out of the text by their exact spelling before any of that, so `encode` is the
//! special-aware tokenisation; it never adds BOS.
//!
//! Encoding runs through the `tokenizers` crate (pure-Rust `fancy-regex` backend), so
//! it agrees with the official `tokenizer.json` by construction, including where ds4's
//! hand-written pre-tokenizer differs (FORMAT.md §5.3 lists those cases). Decoding is
//! ours: every id owns the bytes its vocabulary string denotes, which makes decoding
//! total (unknown ids give nothing) and lets [`StreamDecoder`] hold back incomplete
//! UTF-8 characters.
//!
//! Both constructors build the same configuration: [`Tokenizer::embedded`] reads the
//! committed official file; [`Tokenizer::from_vocab`] takes the arrays a GGUF carries
//! and splices them into the official file's normalizer, pre-tokenizer and decoder.

pub mod bytes;
mod command;
mod stream;

pub use command::{run_tokenize, TokenizeOptions};
pub use stream::StreamDecoder;

use std::collections::HashMap;

use bytes::ByteTable;
use serde_json::{json, Map, Value};

/// The official DeepSeek V4 `tokenizer.json` (provenance in `data/tokenizer/README.md`).
pub const EMBEDDED_JSON: &str = include_str!("../../data/tokenizer/deepseek-v4-tokenizer.json");

/// Spellings of the special tokens the engine needs (FORMAT.md §5.2).
pub mod special {
    /// Beginning of sequence.
    pub const BOS: &str = "<｜begin▁of▁sentence｜>";
    /// End of sequence; ends a generated turn.
    pub const EOS: &str = "<｜end▁of▁sentence｜>";
    /// Opens a user turn.
    pub const USER: &str = "<｜User｜>";
    /// Opens an assistant turn.
    pub const ASSISTANT: &str = "<｜Assistant｜>";
    /// Starts the thinking section.
    pub const THINK: &str = "<think>";
    /// Ends the thinking section (or skips it in non-thinking mode).
    pub const THINK_END: &str = "</think>";
    /// Marker of the DSML tool-call language.
    pub const DSML: &str = "｜DSML｜";
}

/// GGUF `tokenizer.ggml.token_type` of an ordinary vocabulary entry.
pub const TOKEN_TYPE_NORMAL: i32 = 1;
/// GGUF token type of a control (special) token.
pub const TOKEN_TYPE_CONTROL: i32 = 3;
/// GGUF token type of a user-defined added token.
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// What can go wrong while building or using the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The tokenizer description could not be parsed.
    #[error("cannot load the tokenizer: {0}; check that the tokenizer data is a DeepSeek V4 tokenizer.json or GGUF tokenizer arrays")]
    Load(String),
    /// A token the engine relies on is not in the vocabulary.
    #[error("required tokenizer token {text:?} ({role}) is missing from the vocabulary; the model file is not a DeepSeek V4 tokenizer")]
    MissingToken {
        /// What the token is used for.
        role: &'static str,
        /// Its exact spelling.
        text: &'static str,
    },
    /// `tokenizer.ggml.token_type` and `tokenizer.ggml.tokens` disagree in length.
    #[error("tokenizer.ggml.token_type has {types} entries but tokenizer.ggml.tokens has {tokens}; the GGUF tokenizer arrays are inconsistent")]
    TypeCount {
        /// Entries in the type array.
        types: usize,
        /// Entries in the token array.
        tokens: usize,
    },
    /// An added token did not keep the id the vocabulary gives it.
    #[error("added token {text:?} should have id {expected} but the tokenizer gave it {got:?}; the vocabulary has duplicate or conflicting entries")]
    AddedTokenId {
        /// The token text.
        text: String,
        /// Its index in the token array.
        expected: u32,
        /// What the built tokenizer resolves it to.
        got: Option<u32>,
    },
    /// The BPE encoder failed on some input (a regex backtracking limit, for example).
    #[error("cannot tokenize the text: {0}")]
    Encode(String),
    /// Input to `tokenize --decode` was not a JSON array of ids.
    #[error("expected a JSON array of token ids such as [0, 19923]: {0}")]
    BadIdList(String),
    /// An id given to `tokenize --decode` is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary (0..{vocab_size}); pass ids produced by this tokenizer")]
    IdOutOfRange {
        /// The offending id.
        id: u64,
        /// Number of ids the vocabulary has.
        vocab_size: usize,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, TokenizerError>;

/// Ids of the special tokens, looked up by their spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpecialIds {
    bos: u32,
    eos: u32,
    user: u32,
    assistant: u32,
    think: u32,
    think_end: u32,
}

/// DeepSeek V4 tokenizer: encoding, decoding and the special ids.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Vocabulary strings by id.
    tokens: Vec<String>,
    /// Bytes of every id, concatenated; `byte_ends[id]` closes the span of `id`.
    token_bytes: Vec<u8>,
    byte_ends: Vec<u32>,
    /// Spelling → id; a later duplicate wins, as in ds4 (FORMAT.md §5.1).
    ids: HashMap<String, u32>,
    specials: SpecialIds,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.tokens.len())
            .field("specials", &self.specials)
            .finish()
    }
}

impl Tokenizer {
    /// The official DeepSeek V4 tokenizer compiled into the binary.
    pub fn embedded() -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(EMBEDDED_JSON.as_bytes())
            .map_err(|e| TokenizerError::Load(e.to_string()))?;
        let size = inner.get_vocab_size(true);
        let mut tokens = vec![String::new(); size];
        for (text, id) in inner.get_vocab(true) {
            if let Some(slot) = tokens.get_mut(id as usize) {
                *slot = text;
            }
        }
        Self::assemble(inner, tokens)
    }

    /// Build from the arrays a GGUF carries: `tokenizer.ggml.tokens` (id = index),
    /// `tokenizer.ggml.merges` (`"A B"`, rank = index) and optionally
    /// `tokenizer.ggml.token_type`. Types 3 (control) and 4 (user-defined) become
    /// added tokens, recognised in text by their spelling; without types, the tokens
    /// spelled like an added token of the official file are added tokens. Added
    /// tokens keep the official file's flags when the spelling is known there.
    pub fn from_vocab(
        tokens: &[String],
        merges: &[String],
        token_types: Option<&[i32]>,
    ) -> Result<Self> {
        if let Some(types) = token_types {
            if types.len() != tokens.len() {
                return Err(TokenizerError::TypeCount {
                    types: types.len(),
                    tokens: tokens.len(),
                });
            }
        }

        let mut official: Value =
            serde_json::from_str(EMBEDDED_JSON).map_err(|e| TokenizerError::Load(e.to_string()))?;
        let official_added = official_added_tokens(&official);

        // Every token goes into the BPE vocabulary so added tokens keep their index
        // as id; merges never produce their spellings, so BPE output is unchanged.
        let mut vocab = Map::new();
        for (id, text) in tokens.iter().enumerate() {
            vocab.insert(text.clone(), json!(id));
        }

        let mut added = Vec::new();
        for (id, text) in tokens.iter().enumerate() {
            let flags = match token_types {
                Some(types) => match types[id] {
                    TOKEN_TYPE_CONTROL => {
                        Some(official_added.get(text).copied().unwrap_or((true, false)))
                    }
                    TOKEN_TYPE_USER_DEFINED => {
                        Some(official_added.get(text).copied().unwrap_or((false, true)))
                    }
                    _ => None,
                },
                None => official_added.get(text).copied(),
            };
            if let Some((special, normalized)) = flags {
                added.push(json!({
                    "id": id, "content": text, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": normalized, "special": special,
                }));
            }
        }

        official["added_tokens"] = Value::Array(added);
        official["model"]["vocab"] = Value::Object(vocab);
        official["model"]["merges"] = json!(merges);
        let inner = tokenizers::Tokenizer::from_bytes(official.to_string().as_bytes())
            .map_err(|e| TokenizerError::Load(e.to_string()))?;

        let tokenizer = Self::assemble(inner, tokens.to_vec())?;
        tokenizer.check_added_ids(token_types)?;
        Ok(tokenizer)
    }

    /// Shared tail of both constructors: byte table, spelling map, special ids.
    fn assemble(inner: tokenizers::Tokenizer, tokens: Vec<String>) -> Result<Self> {
        let table = ByteTable::new();
        let mut token_bytes = Vec::new();
        let mut byte_ends = Vec::with_capacity(tokens.len());
        let mut ids = HashMap::with_capacity(tokens.len());
        for (id, text) in tokens.iter().enumerate() {
            token_bytes.extend_from_slice(&table.token_bytes(text));
            byte_ends.push(token_bytes.len() as u32);
            ids.insert(text.clone(), id as u32);
        }

        let find = |role: &'static str, text: &'static str| {
            ids.get(text)
                .copied()
                .ok_or(TokenizerError::MissingToken { role, text })
        };
        let specials = SpecialIds {
            bos: find("BOS", special::BOS)?,
            eos: find("EOS", special::EOS)?,
            user: find("user", special::USER)?,
            assistant: find("assistant", special::ASSISTANT)?,
            think: find("think start", special::THINK)?,
            think_end: find("think end", special::THINK_END)?,
        };

        Ok(Self {
            inner,
            tokens,
            token_bytes,
            byte_ends,
            ids,
            specials,
        })
    }

    /// Added tokens must resolve to their own index, or ids would silently shift.
    fn check_added_ids(&self, token_types: Option<&[i32]>) -> Result<()> {
        for (id, text) in self.tokens.iter().enumerate() {
            let is_added = match token_types {
                Some(types) => matches!(types[id], TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED),
                None => false,
            };
            if !is_added || self.ids.get(text) != Some(&(id as u32)) {
                // A shadowed duplicate is resolved by the later id, as ds4 does.
                continue;
            }
            let got = self.inner.token_to_id(text);
            if got != Some(id as u32) {
                return Err(TokenizerError::AddedTokenId {
                    text: text.clone(),
                    expected: id as u32,
                    got,
                });
            }
        }
        Ok(())
    }

    /// Token ids of `text`; added tokens are recognised by their spelling, no BOS is added.
    ///
    /// Falls back to an empty list only if the BPE engine reports an error, which the
    /// DeepSeek V4 pattern does not produce; use [`Tokenizer::try_encode`] to see it.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.try_encode(text) {
            Ok(ids) => ids,
            Err(err) => {
                tracing::error!("{err}");
                Vec::new()
            }
        }
    }

    /// [`Tokenizer::encode`] that reports engine errors instead of hiding them.
    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Bytes that id `id` stands for; empty for ids outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let Some(&end) = self.byte_ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.byte_ends[i - 1] };
        &self.token_bytes[start as usize..end as usize]
    }

    /// Text of `ids`; invalid UTF-8 becomes U+FFFD and unknown ids are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Raw vocabulary string of `id` (byte-level alphabet, e.g. `Ġworld`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Id whose raw vocabulary string is exactly `text`.
    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// Number of ids, added tokens included (129280 for DeepSeek V4).
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// `<｜begin▁of▁sentence｜>`.
    pub fn bos(&self) -> u32 {
        self.specials.bos
    }

    /// `<｜end▁of▁sentence｜>`.
    pub fn eos(&self) -> u32 {
        self.specials.eos
    }

    /// `<｜User｜>`.
    pub fn user(&self) -> u32 {
        self.specials.user
    }

    /// `<｜Assistant｜>`.
    pub fn assistant(&self) -> u32 {
        self.specials.assistant
    }

    /// `<think>`.
    pub fn think(&self) -> u32 {
        self.specials.think
    }

    /// `</think>`.
    pub fn think_end(&self) -> u32 {
        self.specials.think_end
    }

    /// Whether `id` ends generation (EOS; FORMAT.md §6.5).
    pub fn is_eos(&self, id: u32) -> bool {
        id == self.specials.eos
    }
}

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
fn official_added_tokens(official: &Value) -> HashMap<String, (bool, bool)> {
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
