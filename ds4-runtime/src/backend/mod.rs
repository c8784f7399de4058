//! Backends behind one stepping interface: the CPU [`Session`] and the Ascend
//! session ([`ascend::AscendSession`], over the real ACL or its emulation).
//!
//! [`Backend`] is what the CLI's generation loop and chat need: prefill a run of
//! tokens, decode one, read the logits, reset, and dump stages.

pub mod ascend;
mod hostops;
pub mod ktable;
pub mod launch;
pub mod setup;
pub mod upload;

use crate::session::{Session, SessionError};
use ascend::AscendSession;

/// Session-like stepping, whatever runs the plans.
pub trait Backend {
    /// Feeds `tokens` through the prefill plan (chunked); returns the last logits.
    fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], SessionError>;
    /// Feeds one token through the decode plan.
    fn decode(&mut self, token: u32) -> Result<&[f32], SessionError>;
    /// The logits of the last token fed.
    fn logits(&self) -> &[f32];
    /// Tokens fed so far.
    fn pos(&self) -> usize;
    /// The context size.
    fn ctx(&self) -> usize;
    /// Forgets the conversation.
    fn reset(&mut self) -> Result<(), SessionError>;
    /// Dumps every stage tap into `dir` from now on.
    fn dump_stages(&mut self, dir: std::path::PathBuf) -> std::io::Result<()>;
}

impl Backend for Session<'_> {
    fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], SessionError> {
        Session::prefill(self, tokens)
    }
    fn decode(&mut self, token: u32) -> Result<&[f32], SessionError> {
        Session::decode(self, token)
    }
    fn logits(&self) -> &[f32] {
        Session::logits(self)
    }
    fn pos(&self) -> usize {
        Session::pos(self)
    }
    fn ctx(&self) -> usize {
        Session::ctx(self)
    }
    fn reset(&mut self) -> Result<(), SessionError> {
        Session::reset(self);
        Ok(())
    }
    fn dump_stages(&mut self, dir: std::path::PathBuf) -> std::io::Result<()> {
        Session::dump_stages(self, dir)
    }
}

impl Backend for AscendSession<'_> {
    fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], SessionError> {
        AscendSession::prefill(self, tokens)
    }
    fn decode(&mut self, token: u32) -> Result<&[f32], SessionError> {
        AscendSession::decode(self, token)
    }
    fn logits(&self) -> &[f32] {
        AscendSession::logits(self)
    }
    fn pos(&self) -> usize {
        AscendSession::pos(self)
    }
    fn ctx(&self) -> usize {
        AscendSession::ctx(self)
    }
    fn reset(&mut self) -> Result<(), SessionError> {
        AscendSession::reset(self)
    }
    fn dump_stages(&mut self, dir: std::path::PathBuf) -> std::io::Result<()> {
        AscendSession::dump_stages(self, dir)
    }
}
