//! Text ↔ token ids for DeepSeek V4 (FORMAT.md §5).
//!
//! The tokenizer is byte-level BPE with the official DeepSeek V4 pre-tokenizer: three
//! regex splits (digit runs of at most three, CJK runs, then words, punctuation and
//! whitespace), the GPT-2 byte-to-code-point mapping ([`bytes`]), and rank-ordered
//! merges. Added tokens (`<｜begin▁of▁sentence｜>`, `<｜User｜>`, `<think>`, …) are cut
//! out of the text by their exact spelling before any of that, so `encode` is the
//! special-aware tokenisation; it never adds BOS.
//!
//! Encoding is ours and runs in three layers: `added` cuts added tokens out,
//! `pretok` splits the rest exactly as the official regexes do (not as ds4's
//! hand-written approximation, FORMAT.md §5.3), and `bpe` merges each piece, with
//! a per-call cache of pieces already seen. The `tokenizers` crate over the same file
//! is the oracle in the tests (`tests/tokenizer_reference.rs`): identical ids on the
//! benchmark novel and on random text, at about ten times its speed.
//!
//! Decoding maps every id to the bytes its vocabulary string denotes ([`bytes`]), so
//! it is total (unknown ids give nothing) and lets [`StreamDecoder`] hold back
//! incomplete UTF-8 characters.
//!
//! Both constructors share one path: [`Tokenizer::embedded`] turns the committed
//! official file into the arrays a GGUF carries and calls [`Tokenizer::from_vocab`].

mod added;
mod bpe;
pub mod bytes;
mod command;
mod load;
mod pretok;
mod stream;

pub use command::{run_tokenize, TokenizeOptions};
pub use load::official_vocab_arrays;
pub use stream::StreamDecoder;

use added::Segment;
use bpe::FastMap;
use bytes::ByteTable;

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
    tables: load::Tables,
    /// Vocabulary strings by id.
    tokens: Vec<String>,
    /// Bytes of every id, concatenated; `byte_ends[id]` closes the span of `id`.
    token_bytes: Vec<u8>,
    byte_ends: Vec<u32>,
    /// Spelling → id; a later duplicate wins, as in ds4 (FORMAT.md §5.1).
    ids: FastMap<String, u32>,
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
        let (tokens, merges, types) = official_vocab_arrays()?;
        Self::from_vocab(&tokens, &merges, Some(&types))
    }

    /// Build from the arrays a GGUF carries: `tokenizer.ggml.tokens` (id = index),
    /// `tokenizer.ggml.merges` (`"A B"`, rank = index) and optionally
    /// `tokenizer.ggml.token_type`. Types 3 (control) and 4 (user-defined) become
    /// added tokens, recognised in text by their spelling; without types, the tokens
    /// spelled like an added token of the official file are added tokens.
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

        let table = ByteTable::new();
        let mut token_bytes = Vec::new();
        let mut byte_ends = Vec::with_capacity(tokens.len());
        let mut ids = FastMap::with_capacity_and_hasher(tokens.len(), Default::default());
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

        let tables = load::build_tables(tokens, merges, token_types, &ids)?;
        // Build the shared Unicode class table now rather than in the first encode.
        pretok::classes();
        Ok(Self {
            tables,
            tokens: tokens.to_vec(),
            token_bytes,
            byte_ends,
            ids,
            specials,
        })
    }

    /// Token ids of `text`; added tokens are recognised by their spelling, no BOS is added.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        // Pieces repeat a lot in prose; a piece seen before copies its earlier ids.
        let mut seen: FastMap<&str, (usize, usize)> = FastMap::default();
        let bpe = &self.tables.bpe;
        self.tables.added.split(text, &mut |segment| match segment {
            Segment::Token(id) => out.push(id),
            Segment::Text(stretch) => pretok::split(stretch, &mut |piece| {
                if let Some(&(start, len)) = seen.get(piece) {
                    out.extend_from_within(start..start + len);
                    return;
                }
                let start = out.len();
                bpe.encode_piece(piece.as_bytes(), &mut out);
                seen.insert(piece, (start, out.len() - start));
            }),
        });
        out
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
