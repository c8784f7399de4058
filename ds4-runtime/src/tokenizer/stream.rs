//! Incremental decoding for generation output.
//!
//! A token may end in the middle of a UTF-8 character (byte-level BPE splits
//! multi-byte characters freely), so printing each token's bytes as text would show
//! replacement characters that the next token would have completed. The
//! [`StreamDecoder`] keeps such a trailing incomplete sequence until it is completed
//! or proven invalid; invalid bytes become U+FFFD exactly as in
//! [`Tokenizer::decode`], so the concatenated output of a stream always equals the
//! decode of all its ids.

use super::Tokenizer;

/// Turns a stream of ids into text chunks that never split a UTF-8 character.
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    /// Bytes of an incomplete UTF-8 sequence at the end of the stream so far.
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    /// Start an empty stream over `tok`.
    pub fn new(tok: &'a Tokenizer) -> Self {
        Self {
            tok,
            pending: Vec::new(),
        }
    }

    /// Add one id and return the text it completes (possibly empty).
    /// Unknown ids contribute no bytes.
    pub fn push(&mut self, id: u32) -> String {
        self.pending.extend_from_slice(self.tok.token_bytes(id));
        self.drain(false)
    }

    /// Add raw bytes (e.g. from a token already resolved) and return completed text.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        self.drain(false)
    }

    /// End the stream: held-back bytes come out, an incomplete tail as U+FFFD.
    pub fn finish(&mut self) -> String {
        self.drain(true)
    }

    /// Whether bytes are being held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn drain(&mut self, at_end: bool) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    // `valid_up_to` marks a prefix that is well-formed UTF-8.
                    out.push_str(&String::from_utf8_lossy(valid));
                    match err.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None if at_end => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &[];
                            break;
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }
}
