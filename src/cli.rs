//! The `ds4-runtime` command line: generation and chat by default, plus the
//! `plan`, `synth`, `inspect`, `tokenize` and `diff-stages` tools.
//!
//! Flags follow the reference CLI (`-m -c -n -p -sys --prompt-file --temp
//! --top-p --min-p --seed --nothink`, FORMAT.md §8) so that commands carry over.
//! Every user mistake ends in one line on stderr naming the problem and the fix,
//! and a non-zero exit.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// DeepSeek V4 Flash inference from an ahead-of-time compiled plan.
#[derive(Parser, Debug)]
#[command(
    name = "ds4-runtime",
    version,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Summarise a compiled plan (launches, memory per device, transfers) or print its DOT.
    Plan(crate::plan_cmd::PlanArgs),
    /// Write a synthetic DS4-layout GGUF (SYNTH.md).
    Synth(SynthArgs),
    /// Summarise a GGUF file and check its layout against the graph.
    Inspect(InspectArgs),
    /// Tokenize stdin (or decode a JSON array of ids with --decode).
    Tokenize(TokenizeArgs),
    /// Compare two stage-dump folders stage by stage.
    DiffStages(DiffArgs),
    /// Prefill and decode tokens/s at context frontiers (CSV on stdout).
    Bench(crate::bench::BenchArgs),
}

/// Options of a generation run (the default command).
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Model GGUF (default: ./ds4flash.gguf, else the synthetic tiny model).
    #[arg(short = 'm', long = "model")]
    pub model: Option<PathBuf>,
    /// One-shot prompt text; without a prompt, an interactive chat starts.
    #[arg(short = 'p', long = "prompt", conflicts_with_all = ["prompt_file", "prompt_ids"])]
    pub prompt: Option<String>,
    /// Read the prompt text from a file (UTF-8).
    #[arg(long = "prompt-file", conflicts_with = "prompt_ids")]
    pub prompt_file: Option<PathBuf>,
    /// Feed these token ids as the whole prompt (no chat template): "0,3476,477" or a JSON array.
    #[arg(long = "prompt-ids")]
    pub prompt_ids: Option<String>,
    /// System prompt ("" for none); also accepted as -sys.
    #[arg(long = "system")]
    pub system: Option<String>,
    /// Context size in tokens.
    #[arg(short = 'c', long = "ctx", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx: u32,
    /// Maximum tokens to generate.
    #[arg(short = 'n', long = "tokens", default_value_t = 256)]
    pub tokens: u32,
    /// Sampling temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 1.0, value_parser = parse_temp)]
    pub temp: f32,
    /// Keep only the K most likely tokens (0 = off; at most 1024 are kept).
    #[arg(long = "top-k", default_value_t = 0)]
    pub top_k: u32,
    /// Nucleus sampling mass (0 or 1 = off, as in the reference CLI).
    #[arg(long = "top-p", default_value_t = 1.0, value_parser = parse_unit)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the top token.
    #[arg(long = "min-p", default_value_t = 0.05, value_parser = parse_unit)]
    pub min_p: f32,
    /// RNG seed (> 0); the same seed gives the same tokens.
    #[arg(long = "seed", value_parser = clap::value_parser!(u64).range(1..))]
    pub seed: Option<u64>,
    /// End the prompt with </think> (no thinking).
    #[arg(long = "nothink")]
    pub nothink: bool,
    /// End the prompt with <think> (the default).
    #[arg(long = "think", conflicts_with = "nothink")]
    pub think: bool,
    /// CPU worker threads (default: all cores).
    #[arg(short = 't', long = "threads", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Backend: cpu, ascend (needs CANN) or ascend-sim.
    #[arg(long = "backend", default_value = "cpu", value_parser = ["cpu", "ascend", "ascend-sim"])]
    pub backend: String,
    /// Devices the plan is split over (1 or 2; default 1 on the CPU, 2 on the Ascend
    /// backends: both chips of the card).
    #[arg(long = "devices", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub devices: Option<u8>,
    /// Largest prefill chunk (default: the profile's).
    #[arg(long = "chunk", value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk: Option<u32>,
    /// Run the unfused plan (for comparisons).
    #[arg(long = "unfused")]
    pub unfused: bool,
    /// Ascend backends: print the weight bytes each device would receive (against
    /// the plan's) without allocating or copying, then exit.
    #[arg(long = "upload-dry-run")]
    pub upload_dry_run: bool,
    /// Write every stage tap into DIR (VERIFY.md names).
    #[arg(long = "dump-stages")]
    pub dump_stages: Option<PathBuf>,
    /// Write each step's full logits (little-endian f32 rows).
    #[arg(long = "dump-logits")]
    pub dump_logits: Option<PathBuf>,
    /// Write each step's top log-probabilities as JSON.
    #[arg(long = "dump-logprobs")]
    pub dump_logprobs: Option<PathBuf>,
    /// Alternatives per step in --dump-logprobs.
    #[arg(long = "logprobs-top-k", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub logprobs_top_k: u32,
    /// Feed these ids as the continuation instead of sampling (teacher forcing; overrides -n).
    #[arg(long = "force-ids")]
    pub force_ids: Option<String>,
}

fn parse_temp(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() || !(0.0..=100.0).contains(&v) {
        return Err(format!("{v} is outside 0..=100"));
    }
    Ok(v)
}

fn parse_unit(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is outside 0..=1"));
    }
    Ok(v)
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// tiny, flash4 or flash (flash needs --sparse).
    #[arg(long, value_parser = ["tiny", "flash4", "flash"])]
    pub profile: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Generation rule v1 or v2 (default: v2 for tiny, v1 otherwise).
    #[arg(long, value_parser = ["v1", "v2"])]
    pub rule: Option<String>,
    /// Leave tensor data as file holes (layout tests at full scale).
    #[arg(long)]
    pub sparse: bool,
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// Take the tokenizer from this GGUF instead of the embedded one.
    #[arg(short = 'm', long = "model")]
    pub model: Option<PathBuf>,
    /// Render the one-turn chat prompt first.
    #[arg(long)]
    pub chat: bool,
    #[arg(long, requires = "chat")]
    pub nothink: bool,
    /// System prompt for --chat ("" for none); also accepted as -sys.
    #[arg(long = "system", requires = "chat")]
    pub system: Option<String>,
    /// Read a JSON array of ids and print the text.
    #[arg(long, conflicts_with = "chat")]
    pub decode: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub a: PathBuf,
    pub b: PathBuf,
}

/// Rewrites the reference CLI's `-sys` spelling to `--system`.
pub fn normalise_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    args.into_iter()
        .map(|a| if a == "-sys" { "--system".into() } else { a })
        .collect()
}
