//! The DeepSeek V4 pre-tokenizer as a hand-written scanner.
//!
//! The official `tokenizer.json` splits text with three regexes in sequence, each
//! applied to the pieces of the previous one, every match and every gap between
//! matches becoming a piece ("Isolated"):
//!
//! 1. `\p{N}{1,3}` — digit-like runs, cut into threes;
//! 2. `[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+` — CJK ideographs and kana;
//! 3. the alternation, tried left to right at each position:
//!    A `[ASCII punct][A-Za-z]+` · B `[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+` ·
//!    C ` ?[\p{P}\p{S}]+[\r\n]*` · D `\s*[\r\n]+` · E `\s+(?!\S)` · F `\s+`.
//!
//! Each alternative is decided here by looking at one or two characters and then a
//! run, which is what the backtracking engine ends up matching (derivations beside
//! each arm). Character classes come from `regex-syntax`, the Unicode tables the
//! `regex`/`fancy-regex` engines use, so `\p{L}` here is `\p{L}` there. The
//! `tokenizers` crate runs the regexes themselves; tests compare both on the
//! benchmark text and on random text.

use std::sync::OnceLock;

use regex_syntax::hir::{Class, HirKind};

const LETTER: u8 = 1;
const MARK: u8 = 2;
const PUNCT: u8 = 4;
const SYMBOL: u8 = 8;
const NUMBER: u8 = 16;
const SPACE: u8 = 32;
const CJK: u8 = 64;

/// Class bits of every code point (1.1 MB, built once, on first use).
pub(super) fn classes() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = vec![0u8; 0x11_0000];
        for (pattern, bit) in [
            (r"\p{L}", LETTER),
            (r"\p{M}", MARK),
            (r"\p{P}", PUNCT),
            (r"\p{S}", SYMBOL),
            (r"\p{N}", NUMBER),
            (r"\s", SPACE),
            (
                r"[\x{4e00}-\x{9fa5}\x{3040}-\x{309f}\x{30a0}-\x{30ff}]",
                CJK,
            ),
        ] {
            for (start, end) in class_ranges(pattern) {
                for c in start..=end {
                    table[c as usize] |= bit;
                }
            }
        }
        table
    })
}

/// Inclusive code-point ranges of a one-class pattern, as the regex engines see it.
fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    // The patterns are constants above; a failure is a programming error caught
    // by every test, so an empty class is an acceptable (and loud) fallback.
    let Ok(hir) = regex_syntax::parse(pattern) else {
        tracing::error!("pre-tokenizer class {pattern} does not parse");
        return Vec::new();
    };
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => {
            tracing::error!("pre-tokenizer class {pattern} is not a Unicode class");
            Vec::new()
        }
    }
}

/// A character with its class bits and byte span.
#[derive(Clone, Copy)]
struct Ch {
    c: char,
    bits: u8,
    start: usize,
}

/// Calls `emit` with every piece of `text`, in order; the pieces concatenate to `text`.
pub fn split<'t>(text: &'t str, emit: &mut impl FnMut(&'t str)) {
    let table = classes();
    let chars: Vec<Ch> = text
        .char_indices()
        .map(|(start, c)| Ch {
            c,
            bits: table[c as usize],
            start,
        })
        .collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |ch| ch.start);

    // Splits 1 and 2 only ever cut at number and CJK run boundaries, so one pass
    // finds the pieces the third split then scans.
    let mut i = 0;
    let mut gap_start = 0;
    while i < chars.len() {
        let bits = chars[i].bits;
        if bits & NUMBER != 0 {
            scan_words(&chars[gap_start..i], text, end_of(i), emit);
            let mut j = i;
            while j < chars.len() && chars[j].bits & NUMBER != 0 {
                j += 1;
            }
            // A number run is cut into threes; each cut is one piece that split 3
            // leaves whole (no alternative matches a digit).
            let mut k = i;
            while k < j {
                let next = (k + 3).min(j);
                emit(&text[chars[k].start..end_of(next)]);
                k = next;
            }
            i = j;
            gap_start = j;
        } else if bits & CJK != 0 {
            scan_words(&chars[gap_start..i], text, end_of(i), emit);
            let mut j = i;
            while j < chars.len() && chars[j].bits & CJK != 0 && chars[j].bits & NUMBER == 0 {
                j += 1;
            }
            scan_words(&chars[i..j], text, end_of(j), emit);
            i = j;
            gap_start = j;
        } else {
            i += 1;
        }
    }
    scan_words(&chars[gap_start..], text, text.len(), emit);
}

fn is_ascii_punct(c: char) -> bool {
    c.is_ascii_punctuation()
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Split 3 over one piece: `chars` cover `text[chars[0].start..end]`.
fn scan_words<'t>(chars: &[Ch], text: &'t str, end: usize, emit: &mut impl FnMut(&'t str)) {
    let n = chars.len();
    let at = |i: usize| if i < n { chars[i].start } else { end };
    let run = |from: usize, mask: u8| {
        let mut j = from;
        while j < n && chars[j].bits & mask != 0 {
            j += 1;
        }
        j
    };

    let mut i = 0;
    let mut gap: Option<usize> = None;
    while i < n {
        let c = chars[i];
        let next = chars.get(i + 1);
        let matched = if is_ascii_punct(c.c) && next.is_some_and(|d| d.c.is_ascii_alphabetic()) {
            // A: the punctuation, then the ASCII letter run.
            let mut j = i + 1;
            while j < n && chars[j].c.is_ascii_alphabetic() {
                j += 1;
            }
            Some(j)
        } else if !is_newline(c.c)
            && c.bits & (LETTER | PUNCT | SYMBOL) == 0
            && next.is_some_and(|d| d.bits & (LETTER | MARK) != 0)
        {
            // B with its optional leading character (space, mark, control, …).
            Some(run(i + 1, LETTER | MARK))
        } else if c.bits & (LETTER | MARK) != 0 {
            // B without the optional character.
            Some(run(i, LETTER | MARK))
        } else if c.c == ' ' && next.is_some_and(|d| d.bits & (PUNCT | SYMBOL) != 0) {
            // C with the leading space, then trailing newlines.
            Some(newline_run(chars, run(i + 1, PUNCT | SYMBOL)))
        } else if c.bits & (PUNCT | SYMBOL) != 0 {
            // C without the space.
            Some(newline_run(chars, run(i, PUNCT | SYMBOL)))
        } else if c.bits & SPACE != 0 {
            let j = run(i, SPACE);
            if let Some(last_newline) = (i..j).rev().find(|&k| is_newline(chars[k].c)) {
                // D: `\s*` backtracks to the last newline of the run, `[\r\n]+` takes it.
                Some(last_newline + 1)
            } else if j == n || j - i == 1 {
                // E at the end of the piece takes the whole run; a single space
                // before a non-space fails E and F takes it.
                Some(j)
            } else {
                // E backtracks one character so the lookahead sees a space.
                Some(j - 1)
            }
        } else {
            None
        };

        match matched {
            Some(j) => {
                if let Some(g) = gap.take() {
                    emit(&text[chars[g].start..c.start]);
                }
                emit(&text[c.start..at(j)]);
                i = j;
            }
            None => {
                gap.get_or_insert(i);
                i += 1;
            }
        }
    }
    if let Some(g) = gap {
        emit(&text[chars[g].start..end]);
    }
}

/// End of `[\r\n]*` starting at `from`.
fn newline_run(chars: &[Ch], from: usize) -> usize {
    let mut j = from;
    while j < chars.len() && is_newline(chars[j].c) {
        j += 1;
    }
    j
}
