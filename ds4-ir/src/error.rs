//! Errors with source positions, and the locator that finds items in the RON text.
//!
//! serde gives positions only for syntax errors. Semantic errors (an unknown op, a
//! dangling value, a shape mismatch) are located afterwards by [`SourceMap`], which
//! scans the source text for the block and op an error belongs to and then for the
//! offending string inside it. Every [`IrError`] therefore prints as
//! `file:line:col: message`.

use std::fmt;

/// A 1-based position in the graph file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
}

/// Any error of parsing, validating or compiling a graph.
#[derive(Debug, Clone, thiserror::Error)]
pub struct IrError {
    pub file: String,
    pub loc: Loc,
    pub msg: String,
}

impl fmt::Display for IrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.loc.line, self.loc.col, self.msg
        )
    }
}

/// `Result` with [`IrError`].
pub type Result<T> = std::result::Result<T, IrError>;

/// Byte offsets of the items of a graph file, for locating semantic errors.
#[derive(Debug, Clone)]
pub struct SourceMap {
    pub file: String,
    text: String,
    /// Offset of each block's `name:` field.
    blocks: Vec<usize>,
    /// Offset of each op (its `op:` field), per block.
    ops: Vec<Vec<usize>>,
}

impl SourceMap {
    /// Index the source. `op_counts[b]` is the number of ops of block `b`.
    pub fn new(file: &str, text: &str, block_names: &[&str], op_counts: &[usize]) -> Self {
        let mut blocks = Vec::new();
        let mut ops = Vec::new();
        let blocks_at = find_key(text, "blocks", 0).unwrap_or(0);
        let mut cursor = blocks_at;
        for (name, &n_ops) in block_names.iter().zip(op_counts) {
            let needle = format!("\"{name}\"");
            let start = text[cursor..]
                .find(&needle)
                .map(|i| cursor + i)
                .unwrap_or(cursor);
            blocks.push(start);
            let mut at = start;
            let mut block_ops = Vec::new();
            for _ in 0..n_ops {
                match find_key(text, "op", at) {
                    Some(i) => {
                        block_ops.push(i);
                        at = i + 1;
                    }
                    None => block_ops.push(at),
                }
            }
            cursor = at;
            ops.push(block_ops);
        }
        SourceMap {
            file: file.to_string(),
            text: text.to_string(),
            blocks,
            ops,
        }
    }

    /// Line and column of a byte offset.
    pub fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
        Loc { line, col }
    }

    /// Offset of block `b`.
    pub fn block(&self, b: usize) -> usize {
        self.blocks.get(b).copied().unwrap_or(0)
    }

    /// Offset of op `o` of block `b`.
    pub fn op(&self, b: usize, o: usize) -> usize {
        self.ops
            .get(b)
            .and_then(|v| v.get(o))
            .copied()
            .unwrap_or_else(|| self.block(b))
    }

    /// Offset of the quoted string `s` at or after `from` (or `from` when absent).
    pub fn quoted_after(&self, s: &str, from: usize) -> usize {
        let needle = format!("\"{s}\"");
        self.text[from.min(self.text.len())..]
            .find(&needle)
            .map(|i| from + i)
            .unwrap_or(from)
    }

    /// Offset of the first `key:` at or after `from`.
    pub fn key_after(&self, key: &str, from: usize) -> usize {
        find_key(&self.text, key, from).unwrap_or(from)
    }

    /// Offset of the section `key:` (top level), e.g. `weights`.
    pub fn section(&self, key: &str) -> usize {
        self.key_after(key, 0)
    }

    /// An error at a byte offset.
    pub fn err(&self, offset: usize, msg: impl Into<String>) -> IrError {
        IrError {
            file: self.file.clone(),
            loc: self.loc(offset),
            msg: msg.into(),
        }
    }
}

/// Offset of `key` followed by optional spaces and `:`, as a whole word, outside
/// comments; `None` when absent.
fn find_key(text: &str, key: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(i) = text.get(at..)?.find(key) {
        let pos = at + i;
        let before_ok = pos == 0 || !is_ident(bytes[pos - 1]);
        let mut j = pos + key.len();
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let after_ok = j < bytes.len() && bytes[j] == b':' && !in_comment(text, pos);
        if before_ok && after_ok {
            return Some(pos);
        }
        at = pos + key.len();
    }
    None
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'"'
}

fn in_comment(text: &str, pos: usize) -> bool {
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    text[line_start..pos].contains("//")
}
