//! ds4-rs: DeepSeek V4 Flash inference as an ahead-of-time compiled graph.
//!
//! The library half of the root package: the plans generated at build time from
//! `graphs/ds4_flash.ron` ([`plans`]) and the `plan` subcommand that reports on
//! them ([`plan_cmd`]). The runtime itself is the `ds4-runtime` crate.

pub mod plan_cmd;
pub mod plans;
