//! The `ds4-runtime` binary's library: the generated plans and the command line.
//!
//! `build.rs` compiles `graphs/ds4_flash.ron` into [`plans`]; the rest is the
//! CLI around the `ds4-runtime` library: [`cli`] parses, [`run`] generates,
//! [`repl`] chats, [`tools`] and [`plan_cmd`] are the subcommands.

pub mod bench;
pub mod cli;
pub mod plan_cmd;
pub mod plans;
pub mod repl;
pub mod run;
pub mod tools;
