//! `ds4-runtime`: see `ds4_rs::cli` for the commands.

use std::process::ExitCode;

use clap::Parser;
use ds4_rs::cli::{normalise_args, Cli, Command};

fn main() -> ExitCode {
    restore_sigpipe();
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DS4_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse_from(normalise_args(std::env::args_os())) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            eprintln!("ds4-runtime: an argument is not valid UTF-8; put the text in a UTF-8 file and pass it with --prompt-file");
            return ExitCode::from(2);
        }
        Err(e) => {
            // A usage error, folded onto one line: the problem, the arguments it names
            // and clap's tip, without the usage block (its first line and the lines that
            // continue it).
            let text = e.render().to_string();
            let mut in_usage = false;
            let parts: Vec<&str> = text
                .lines()
                .filter(|l| {
                    let t = l.trim();
                    if t.starts_with("Usage:") {
                        in_usage = true;
                    } else if t.is_empty() {
                        in_usage = false;
                    }
                    !in_usage && !t.is_empty() && !t.starts_with("For more information")
                })
                .map(str::trim)
                .collect();
            eprintln!(
                "ds4-runtime: {} (see --help)",
                parts.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    if let Err(e) = ds4_runtime::quant::simd::Isa::from_env() {
        eprintln!("ds4-runtime: {e}");
        return ExitCode::from(2);
    }
    let result = match &cli.command {
        None => ds4_rs::run::run(&cli.run),
        Some(Command::Plan(a)) => ds4_rs::plan_cmd::run(a),
        Some(Command::Synth(a)) => ds4_rs::tools::synth(a),
        Some(Command::Inspect(a)) => ds4_rs::tools::inspect(a),
        Some(Command::Tokenize(a)) => ds4_rs::tools::tokenize(a),
        Some(Command::DiffStages(a)) => ds4_rs::tools::diff_stages(a),
        Some(Command::Bench(a)) => ds4_rs::bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ds4-runtime: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// Dies quietly on a closed stdout (`ds4-runtime ... | head`), as command-line tools
/// do, instead of panicking in `println!` or generating on for nobody.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
