//! The DeepSeek V4 chat template (FORMAT.md §6): from a user message to prompt ids.
//!
//! A one-turn prompt is `BOS [system] <｜User｜> prompt <｜Assistant｜> <think>` (or
//! `</think>` without thinking). The system text has no marker of its own. Every
//! piece is tokenised with [`Tokenizer::encode`], which also recognises added
//! tokens written inside the texts, as the official renderer does (it renders a
//! string and tokenises it whole); so the ids are always `encode(render_text(..))`.
//!
//! A prompt that already starts with the literal BOS spelling is taken as rendered
//! (FORMAT.md §6.3): it is tokenised as written and the options are not applied.
//!
//! [`Conversation`] keeps a multi-turn transcript in the REPL layout of FORMAT.md
//! §6.3 and hands out only the ids each turn adds, so a caller can keep its model
//! state and feed the suffix.

use crate::tokenizer::{special, Tokenizer};

/// System prompt the reference CLI uses unless `-sys` is given (no final period).
pub const DEFAULT_SYSTEM: &str = "You are a helpful assistant";

/// Whether the assistant turn opens a thinking section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThinkMode {
    /// Prompt ends with `<think>`: the model reasons first (the CLI default).
    #[default]
    Think,
    /// Prompt ends with `</think>`: the model answers directly.
    NoThink,
}

/// How a prompt is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOptions {
    /// System text placed after BOS; `None` or empty means no system text.
    pub system: Option<String>,
    /// Thinking or not.
    pub think: ThinkMode,
}

impl Default for ChatOptions {
    /// The reference CLI defaults: [`DEFAULT_SYSTEM`] and thinking.
    fn default() -> Self {
        Self {
            system: Some(DEFAULT_SYSTEM.to_owned()),
            think: ThinkMode::Think,
        }
    }
}

impl ChatOptions {
    /// System text if there is a non-empty one.
    fn system_text(&self) -> Option<&str> {
        self.system.as_deref().filter(|s| !s.is_empty())
    }
}

/// Whether `prompt` is an already rendered chat (starts with the BOS spelling).
pub fn is_rendered(prompt: &str) -> bool {
    prompt.starts_with(special::BOS)
}

fn think_tag(think: ThinkMode) -> &'static str {
    match think {
        ThinkMode::Think => special::THINK,
        ThinkMode::NoThink => special::THINK_END,
    }
}

fn think_id(tok: &Tokenizer, think: ThinkMode) -> u32 {
    match think {
        ThinkMode::Think => tok.think(),
        ThinkMode::NoThink => tok.think_end(),
    }
}

/// Text of the one-turn prompt for `user`.
pub fn render_text(opts: &ChatOptions, user: &str) -> String {
    if is_rendered(user) {
        return user.to_owned();
    }
    let mut text = String::from(special::BOS);
    text.push_str(opts.system_text().unwrap_or(""));
    text.push_str(&user_turn_text(opts.think, user));
    text
}

/// Ids of the one-turn prompt for `user`: BOS, system, user turn, assistant marker
/// and think tag.
pub fn render_prompt(tok: &Tokenizer, opts: &ChatOptions, user: &str) -> Vec<u32> {
    if is_rendered(user) {
        return tok.encode(user);
    }
    let mut ids = vec![tok.bos()];
    if let Some(system) = opts.system_text() {
        ids.extend(tok.encode(system));
    }
    ids.extend(user_turn_ids(tok, opts.think, user));
    ids
}

fn user_turn_text(think: ThinkMode, user: &str) -> String {
    format!(
        "{}{user}{}{}",
        special::USER,
        special::ASSISTANT,
        think_tag(think)
    )
}

fn user_turn_ids(tok: &Tokenizer, think: ThinkMode, user: &str) -> Vec<u32> {
    let mut ids = vec![tok.user()];
    ids.extend(tok.encode(user));
    ids.push(tok.assistant());
    ids.push(think_id(tok, think));
    ids
}

/// A multi-turn chat transcript (FORMAT.md §6.3, REPL layout).
///
/// The first turn starts the transcript with BOS and the system text; each turn
/// appends `<｜User｜>` text `<｜Assistant｜>` and the think tag; [`Conversation::end_turn`]
/// appends the generated ids and an EOS. Every method returns only the ids it
/// added, which is what the caller still has to feed to its model state.
#[derive(Debug, Clone)]
pub struct Conversation {
    opts: ChatOptions,
    transcript: Vec<u32>,
    /// Transcript length before the turn in progress, for [`Conversation::rollback_turn`].
    turn_start: Option<usize>,
}

impl Conversation {
    /// An empty conversation rendered with `opts`.
    pub fn new(opts: ChatOptions) -> Self {
        Self {
            opts,
            transcript: Vec::new(),
            turn_start: None,
        }
    }

    /// Start a user turn and return the new ids to feed. On an empty transcript
    /// they begin with BOS and the system text; a text that starts with the BOS
    /// spelling is taken as rendered and fed as written.
    pub fn user_turn(&mut self, tok: &Tokenizer, text: &str) -> Vec<u32> {
        let new = if is_rendered(text) {
            tok.encode(text)
        } else if self.transcript.is_empty() {
            render_prompt(tok, &self.opts, text)
        } else {
            user_turn_ids(tok, self.opts.think, text)
        };
        self.turn_start = Some(self.transcript.len());
        self.transcript.extend_from_slice(&new);
        new
    }

    /// Close the assistant turn: record `generated` (the sampled ids, EOS included
    /// if the model produced it) and return the ids that still have to follow them,
    /// which is the EOS when generation stopped for another reason (a length limit).
    pub fn end_turn(&mut self, tok: &Tokenizer, generated: &[u32]) -> Vec<u32> {
        self.transcript.extend_from_slice(generated);
        self.turn_start = None;
        if generated.last() == Some(&tok.eos()) {
            return Vec::new();
        }
        self.transcript.push(tok.eos());
        vec![tok.eos()]
    }

    /// Drop the turn in progress (an interrupt before any token was generated);
    /// returns how many ids were removed so the caller can rewind its state.
    pub fn rollback_turn(&mut self) -> usize {
        match self.turn_start.take() {
            Some(start) => {
                let removed = self.transcript.len() - start;
                self.transcript.truncate(start);
                removed
            }
            None => 0,
        }
    }

    /// Every id of the conversation so far.
    pub fn transcript(&self) -> &[u32] {
        &self.transcript
    }

    /// The options the conversation renders with.
    pub fn options(&self) -> &ChatOptions {
        &self.opts
    }
}
