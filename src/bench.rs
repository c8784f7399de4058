//! `ds4-runtime bench`: prefill and decode speed at context frontiers.
//!
//! Without frontiers, the prompt (`--prompt-file`, rendered with the chat template,
//! no thinking, empty system prompt; else a fixed sentence repeated) is prefilled
//! once and `--gen-tokens` greedy tokens are decoded after it. With `--ctx-start`,
//! each frontier `N` of `ctx-start, ctx-start + step, …, ctx-max` gets a fresh
//! session: `N` prompt tokens (the prompt's ids repeated to length) are prefilled,
//! then `--gen-tokens` tokens are decoded. One CSV row per run goes to stdout,
//! progress to stderr.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use ds4_runtime::chat::{self, ChatOptions, ThinkMode};
use ds4_runtime::model::Model;
use ds4_runtime::session::Session;

use crate::plans::PROFILES;
use crate::run::{plan_set, resolve_model};

/// Options of `ds4-runtime bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model GGUF (default: ./ds4flash.gguf, else the synthetic tiny model).
    #[arg(short = 'm', long = "model")]
    pub model: Option<std::path::PathBuf>,
    /// Prompt text file (UTF-8), rendered with the chat template (--nothink, no system prompt).
    #[arg(long = "prompt-file")]
    pub prompt_file: Option<std::path::PathBuf>,
    /// First context frontier (prompt tokens); without it the prompt is run once as is.
    #[arg(long = "ctx-start", value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx_start: Option<u32>,
    /// Last context frontier.
    #[arg(long = "ctx-max", value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx_max: Option<u32>,
    /// Distance between frontiers.
    #[arg(long = "step", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub step: u32,
    /// Tokens decoded (greedy) after each prefill.
    #[arg(long = "gen-tokens", default_value_t = 16)]
    pub gen_tokens: u32,
    /// CPU worker threads (default: all cores).
    #[arg(short = 't', long = "threads", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
}

fn prompt_ids(args: &BenchArgs, model: &Model) -> Result<Vec<u32>> {
    let tok = model
        .tokenizer()
        .context("cannot build the tokenizer from the model")?;
    let text = match &args.prompt_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read prompt file {}", f.display()))?,
        None => "The quick brown fox jumps over the lazy dog, again and again. ".repeat(8),
    };
    let opts = ChatOptions {
        system: None,
        think: ThinkMode::NoThink,
    };
    Ok(chat::render_prompt(&tok, &opts, &text))
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`
/// (0 where that file does not exist). With other load on the machine, CPU time per
/// token is steadier than wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .ok();
    }
    let path = resolve_model(args.model.as_deref())?;
    let model = Model::open(&path, PROFILES)?;
    let plans = plan_set(model.profile.name, 1, true)?;
    let base = prompt_ids(args, &model)?;
    let frontiers: Vec<usize> = match (args.ctx_start, args.ctx_max) {
        (None, None) => vec![base.len()],
        (Some(s), m) => {
            let m = m.unwrap_or(s);
            if m < s {
                bail!("--ctx-max {m} is below --ctx-start {s}");
            }
            (s..=m)
                .step_by(args.step as usize)
                .map(|n| n as usize)
                .collect()
        }
        (None, Some(_)) => bail!("--ctx-max needs --ctx-start"),
    };
    let gen = args.gen_tokens as usize;
    let threads = rayon::current_num_threads();
    println!("profile,threads,ctx,prefill_tokens,prefill_s,prefill_tok_s,decode_tokens,decode_s,decode_ms_per_tok,decode_tok_s,prefill_cpu_s,decode_cpu_ms_per_tok");
    for &n in &frontiers {
        let ids: Vec<u32> = base.iter().copied().cycle().take(n).collect();
        let mut session = Session::new(&model, plans, n + gen + 1, None)?;
        eprintln!("bench: prefill {n} tokens");
        let (t0, c0) = (Instant::now(), cpu_seconds());
        session.prefill(&ids)?;
        let (prefill_s, prefill_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        eprintln!(
            "bench: {:.2} tokens/s; decode {gen} tokens",
            n as f64 / prefill_s
        );
        let mut next = argmax(session.logits());
        let (t1, c1) = (Instant::now(), cpu_seconds());
        for _ in 0..gen {
            session.decode(next)?;
            next = argmax(session.logits());
        }
        let (decode_s, decode_cpu) = (t1.elapsed().as_secs_f64(), cpu_seconds() - c1);
        let per = if gen > 0 { decode_s / gen as f64 } else { 0.0 };
        eprintln!("bench: {:.1} ms/token", per * 1e3);
        println!(
            "{},{threads},{n},{n},{prefill_s:.3},{:.3},{gen},{decode_s:.3},{:.1},{:.3},{prefill_cpu:.2},{:.1}",
            model.profile.name,
            n as f64 / prefill_s,
            per * 1e3,
            if per > 0.0 { 1.0 / per } else { 0.0 },
            if gen > 0 { decode_cpu * 1e3 / gen as f64 } else { 0.0 },
        );
    }
    Ok(())
}
