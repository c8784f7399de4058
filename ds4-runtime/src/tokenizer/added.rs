//! Cutting added tokens (`<｜User｜>`, `<think>`, …) out of text by their spelling.
//!
//! As the official tokenizer does, two passes of leftmost-longest matching run: the
//! tokens marked not-normalized (the special ones) over the whole text first, then
//! the normalized ones over the gaps the first pass left. DeepSeek V4's normalizer is
//! the identity, so the two passes differ from one pass only in precedence when two
//! spellings overlap, and keeping them keeps that precedence.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{Result, TokenizerError};

/// One added token: its id, spelling and flags.
#[derive(Debug, Clone)]
pub struct AddedToken {
    /// Vocabulary id.
    pub id: u32,
    /// Exact spelling.
    pub content: String,
    /// Whether it is matched in the second (normalized) pass.
    pub normalized: bool,
}

/// A leftmost-longest matcher over a set of spellings and their ids.
#[derive(Debug, Clone)]
struct Pass {
    matcher: AhoCorasick,
    ids: Vec<u32>,
}

impl Pass {
    fn new(tokens: &[&AddedToken]) -> Result<Option<Self>> {
        if tokens.is_empty() {
            return Ok(None);
        }
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(tokens.iter().map(|t| t.content.as_bytes()))
            .map_err(|e| TokenizerError::Load(format!("added-token matcher: {e}")))?;
        Ok(Some(Self {
            matcher,
            ids: tokens.iter().map(|t| t.id).collect(),
        }))
    }
}

/// Both passes.
#[derive(Debug, Clone)]
pub struct AddedTokens {
    first: Option<Pass>,
    second: Option<Pass>,
}

impl AddedTokens {
    /// Matchers over `tokens`; empty spellings are ignored (they would match anywhere).
    pub fn new(tokens: &[AddedToken]) -> Result<Self> {
        let raw: Vec<&AddedToken> = tokens
            .iter()
            .filter(|t| !t.content.is_empty() && !t.normalized)
            .collect();
        let normalized: Vec<&AddedToken> = tokens
            .iter()
            .filter(|t| !t.content.is_empty() && t.normalized)
            .collect();
        Ok(Self {
            first: Pass::new(&raw)?,
            second: Pass::new(&normalized)?,
        })
    }

    /// Walk `text`, calling `emit` for each stretch without added tokens and each
    /// added token, in order.
    pub fn split<'t>(&self, text: &'t str, emit: &mut impl FnMut(Segment<'t>)) {
        walk(self.first.as_ref(), text, &mut |segment| match segment {
            Segment::Text(gap) => walk(self.second.as_ref(), gap, emit),
            token => emit(token),
        });
    }
}

/// A part of the text: plain text or an added token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'t> {
    /// Text without added tokens (never empty).
    Text(&'t str),
    /// The id of an added token.
    Token(u32),
}

fn walk<'t>(pass: Option<&Pass>, text: &'t str, emit: &mut impl FnMut(Segment<'t>)) {
    let Some(pass) = pass else {
        if !text.is_empty() {
            emit(Segment::Text(text));
        }
        return;
    };
    let mut last = 0;
    for m in pass.matcher.find_iter(text) {
        if m.start() > last {
            emit(Segment::Text(&text[last..m.start()]));
        }
        emit(Segment::Token(pass.ids[m.pattern().as_usize()]));
        last = m.end();
    }
    if last < text.len() {
        emit(Segment::Text(&text[last..]));
    }
}
