//! The `plan` subcommand (placeholder while it is written).

/// Arguments of `plan`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {}

/// Print the plan summary.
pub fn run(_args: &PlanArgs) -> anyhow::Result<()> {
    Ok(())
}
