//! The `ds4-runtime` binary. Only the `plan` subcommand is wired here so far; the
//! integrator's CLI (generation, inspect, synth, ...) replaces this file.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ds4-runtime", about = "DeepSeek V4 Flash inference as an ahead-of-time compiled graph")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Summarise the compiled plans (launches, memory per device, transfers) or print DOT.
    Plan(ds4_rs::plan_cmd::PlanArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Some(Cmd::Plan(args)) => ds4_rs::plan_cmd::run(&args),
        None => Ok(()),
    }
}
