//! Interactive chat: multi-turn, reusing the session state.
//!
//! The first turn feeds the whole rendered prompt; every later turn feeds only
//! what is new: the last sampled token of the previous answer (sampled but not
//! yet evaluated), the EOS that closes that answer (FORMAT.md §6.3), then
//! `<｜User｜>` text `<｜Assistant｜>` and the think tag. The history is never re-run.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use ds4_runtime::backend::Backend;
use ds4_runtime::chat::{self, ChatOptions, ThinkMode};
use ds4_runtime::sampler::Sampler;
use ds4_runtime::tokenizer::Tokenizer;

use crate::run::{generate, Dumps};

/// Reads turns from stdin until EOF or `/exit`.
pub fn chat(
    session: &mut dyn Backend,
    tok: &Tokenizer,
    sampler: &mut Sampler,
    opts: &ChatOptions,
    n: usize,
) -> Result<()> {
    eprintln!("ds4-runtime: interactive chat; type a message, /reset to start over, /exit or Ctrl-D to quit");
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut pending: Vec<u32> = Vec::new();
    let mut first = true;
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush().ok();
        }
        let mut raw = Vec::new();
        if stdin.lock().read_until(b'\n', &mut raw)? == 0 {
            return Ok(());
        }
        let Ok(line) = String::from_utf8(raw) else {
            eprintln!(
                "ds4-runtime: that line is not valid UTF-8 and was skipped; type it again in UTF-8"
            );
            continue;
        };
        let text = line.trim_end_matches(['\n', '\r']);
        match text {
            "" => continue,
            "/exit" => return Ok(()),
            "/reset" => {
                session.reset()?;
                pending.clear();
                first = true;
                continue;
            }
            _ => {}
        }

        let restore = pending.clone();
        let mut ids = std::mem::take(&mut pending);
        if first {
            ids.extend(chat::render_prompt(tok, opts, text));
            first = false;
        } else {
            ids.push(tok.eos());
            ids.push(tok.user());
            ids.extend(tok.encode(text));
            ids.push(tok.assistant());
            ids.push(match opts.think {
                ThinkMode::Think => tok.think(),
                ThinkMode::NoThink => tok.think_end(),
            });
        }
        if session.pos() + ids.len() + 1 > session.ctx() {
            if session.pos() == 0 {
                eprintln!(
                    "ds4-runtime: this message needs {} tokens but the context holds {}; raise -c/--ctx",
                    ids.len() + 1,
                    session.ctx()
                );
                first = true;
            } else {
                eprintln!(
                    "ds4-runtime: this message does not fit in the context ({} position(s) left); /reset to start over or raise -c/--ctx",
                    session.ctx() - session.pos()
                );
            }
            // Keep what was pending (the last answer's unfed token) for the next try.
            pending = restore;
            continue;
        }
        let room = session.ctx() - session.pos() - ids.len();
        let mut dumps = Dumps::none();
        let before = session.pos() + ids.len();
        let out = generate(session, tok, sampler, &ids, None, n.min(room), &mut dumps)?;
        // A last sampled token that was printed but not fed opens the next turn.
        let fed = session.pos() - before;
        if fed < out.len() {
            pending.extend_from_slice(&out[fed..]);
        }
    }
}
