//! The `plan` subcommand: what the compiled plans of a profile do and cost.
//!
//! Everything comes from the generated [`crate::plans`]: op counts before and
//! after fusion, kernel launches per decoded token and per prefill chunk (fused
//! and unfused), per-device weight, state (at `--ctx`) and arena bytes against the
//! profile's budget, arena against the max-live lower bound and against no reuse,
//! and cross-device transfers. `--dot` prints the Graphviz graph instead and
//! `--json` one JSON object (fields in docs/PLAN_JSON.md).

use crate::plans::{DOTS, PLAN_SETS};
use anyhow::{anyhow, bail, Context};
use ds4_runtime::plan::{Phase, PlanSet};
use serde_json::{json, Value};

/// Arguments of `plan`.
#[derive(clap::Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct PlanArgs {
    /// Profile: flash, flash4 or tiny.
    #[arg(long, default_value = "flash")]
    pub profile: String,
    /// Phase for `--dot` (decode or prefill); the summary covers both.
    #[arg(long, default_value = "decode", value_parser = ["decode", "prefill"])]
    pub phase: String,
    /// Context length the state is sized for (1 to 2^30 tokens).
    #[arg(long, default_value_t = 32768, value_parser = parse_ctx)]
    pub ctx: usize,
    /// Device count (1 or 2).
    #[arg(long, default_value_t = 2)]
    pub devices: u8,
    /// Print Graphviz DOT of the placed graph instead of the summary.
    #[arg(long, conflicts_with = "json")]
    pub dot: bool,
    /// With `--dot`: the graph before fusion.
    #[arg(long, requires = "dot")]
    pub unfused: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn find(profile: &str, devices: u8, fused: bool) -> Option<&'static PlanSet> {
    PLAN_SETS
        .iter()
        .find(|s| s.profile.name == profile && s.devices == devices && s.fused == fused)
}

/// The summary object `plan --json` prints.
pub fn summary(args: &PlanArgs) -> anyhow::Result<Value> {
    let fused = find(&args.profile, args.devices, true).ok_or_else(|| {
        let mut known: Vec<String> = PLAN_SETS
            .iter()
            .map(|s| format!("{} with {}", s.profile.name, s.devices))
            .collect();
        known.dedup();
        anyhow!(
            "no plan for profile `{}` with {} device(s); known: {} (device counts)",
            args.profile,
            args.devices,
            known.join(", ")
        )
    })?;
    let unfused = find(&args.profile, args.devices, false);
    let parse = |s: &PlanSet| -> anyhow::Result<Value> {
        serde_json::from_str(s.summary_json).context("generated plan summary is not JSON")
    };
    let fj = parse(fused)?;
    let uj = unfused.map(parse).transpose()?;

    let budget = fj["budget_bytes"].as_u64().unwrap_or(0);
    let chip = ds4_runtime::backend::setup::SIM_DEVICE_BYTES;
    let mut devices = Vec::new();
    for (d, b) in ds4_runtime::backend::ascend::device_bytes(fused, args.ctx)
        .into_iter()
        .enumerate()
    {
        let total = b.total();
        devices.push(json!({
            "device": d,
            "weight_bytes": b.weights,
            "state_bytes": b.state,
            "arena_bytes": b.arena,
            "token_bytes": b.tokens,
            "sync_bytes": b.sync,
            "total_bytes": total,
            "budget_bytes": budget,
            "fits": budget == 0 || total <= budget,
            "fits_one_310p": total <= chip,
        }));
    }
    let phase = |key: &str| -> Value {
        let f = &fj[key];
        let u = uj.as_ref().map(|u| u[key].clone()).unwrap_or(Value::Null);
        json!({
            "ops_unfused": f["ops_unfused"],
            "ops_fused": f["ops_fused"],
            "launches_fused": f["launches"],
            "launches_unfused": u["launches"],
            "launches_per_layer_fused": f["launches_per_layer"],
            "launches_per_layer_unfused": u["launches_per_layer"],
            "arena_bytes": f["arena_bytes"],
            "max_live_bytes": f["max_live_bytes"],
            "no_reuse_bytes": f["no_reuse_bytes"],
            "transfers": f["transfers"],
            "transfer_bytes": f["transfer_bytes"],
        })
    };
    // The AscendC kernels' cost model over the fused decode plan: one Atlas 300I Duo.
    let est = ds4_runtime::ascend::cost::decode_estimate(fused);
    Ok(json!({
        "profile": args.profile,
        "devices": args.devices,
        "ctx": args.ctx,
        "layers": fj["layers"],
        "chunk": fj["chunk"],
        "decode": phase("decode"),
        "prefill": phase("prefill"),
        "per_device": devices,
        "ascend_decode_estimate": {
            "tokens_per_s": est.tokens_per_s,
            "seconds_per_token": est.seconds,
            "weight_bytes_per_token": est.total_weight_bytes(),
            "weight_bytes_per_device": est.weight_bytes,
            "global_bytes_per_device": est.device_bytes,
            "launches": est.launches,
            "barriers": est.barriers,
            "copy_bytes": est.copy_bytes,
        },
    }))
}

fn gib(v: &Value) -> f64 {
    v.as_u64().unwrap_or(0) as f64 / (1u64 << 30) as f64
}

fn mib(v: &Value) -> f64 {
    v.as_u64().unwrap_or(0) as f64 / (1u64 << 20) as f64
}

fn avg(v: &Value) -> f64 {
    let xs: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Run `plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    if args.dot {
        let phase = match args.phase.as_str() {
            "decode" => Phase::Decode,
            "prefill" => Phase::Prefill,
            p => bail!("unknown phase `{p}` (decode or prefill)"),
        };
        let fused = !args.unfused;
        let dot = DOTS
            .iter()
            .find(|d| d.0 == args.profile && d.1 == args.devices && d.2 == phase && d.3 == fused)
            .ok_or_else(|| {
                anyhow!(
                    "no DOT for profile `{}` with {} device(s)",
                    args.profile,
                    args.devices
                )
            })?;
        print!("{}", dot.4);
        return Ok(());
    }
    let s = summary(args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "profile {}: {} layers, {} device(s), ctx {}, prefill chunk {}",
        args.profile, s["layers"], args.devices, args.ctx, s["chunk"]
    );
    for (key, what) in [
        ("decode", "per decoded token"),
        ("prefill", "per prefill chunk"),
    ] {
        let p = &s[key];
        println!(
            "{key}: {} ops before fusion, {} after",
            p["ops_unfused"], p["ops_fused"]
        );
        println!(
            "  kernel launches {what}: fused {}, unfused {} (per layer: {:.1} vs {:.1})",
            p["launches_fused"],
            p["launches_unfused"],
            avg(&p["launches_per_layer_fused"]),
            avg(&p["launches_per_layer_unfused"])
        );
        println!(
            "  cross-device transfers {what}: {} copies, {:.2} MiB",
            p["transfers"],
            mib(&p["transfer_bytes"])
        );
        for d in 0..args.devices as usize {
            let (a, lb, nr) = (
                &p["arena_bytes"][d],
                &p["max_live_bytes"][d],
                &p["no_reuse_bytes"][d],
            );
            let ratio = a.as_f64().unwrap_or(0.0) / lb.as_f64().unwrap_or(1.0).max(1.0);
            println!(
                "  device {d} arena {:.2} MiB = {ratio:.3} x max-live lower bound {:.2} MiB (no reuse: {:.2} MiB)",
                mib(a),
                mib(lb),
                mib(nr)
            );
        }
    }
    let e = &s["ascend_decode_estimate"];
    println!(
        "ascend estimate ({}, 204.8 GB/s per chip): {:.2} tokens/s decode; weights read per token {:.3} GB ({}), {} launches ({} barriers inside fused kernels), {:.2} MiB copied",
        if args.devices == 2 {
            "Atlas 300I Duo"
        } else {
            "one chip of an Atlas 300I Duo"
        },
        e["tokens_per_s"].as_f64().unwrap_or(0.0),
        e["weight_bytes_per_token"].as_f64().unwrap_or(0.0) / 1e9,
        e["weight_bytes_per_device"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, b)| format!("device {i}: {:.3} GB", b.as_f64().unwrap_or(0.0) / 1e9))
            .collect::<Vec<_>>()
            .join(", "),
        e["launches"],
        e["barriers"],
        mib(&e["copy_bytes"]),
    );
    for d in s["per_device"].as_array().into_iter().flatten() {
        let budget = if d["budget_bytes"].as_u64().unwrap_or(0) == 0 {
            // No budget in the profile (a CPU plan): say whether one 310P could hold it.
            format!(
                "no budget; {} one 310P3 ({:.2} GiB usable)",
                if d["fits_one_310p"] == true {
                    "fits"
                } else {
                    "does NOT fit"
                },
                ds4_runtime::backend::setup::SIM_DEVICE_BYTES as f64 / (1u64 << 30) as f64
            )
        } else {
            format!(
                "budget {:.2} GiB, {}",
                gib(&d["budget_bytes"]),
                if d["fits"] == true {
                    "fits"
                } else {
                    "OVER BUDGET"
                }
            )
        };
        println!(
            "device {}: weights {:.2} GiB + state {:.2} GiB (ctx {}) + arena {:.2} MiB + token ids {} B + barriers {} B = {:.2} GiB ({budget})",
            d["device"],
            gib(&d["weight_bytes"]),
            gib(&d["state_bytes"]),
            args.ctx,
            mib(&d["arena_bytes"]),
            d["token_bytes"],
            d["sync_bytes"],
            gib(&d["total_bytes"])
        );
    }
    Ok(())
}

fn parse_ctx(s: &str) -> Result<usize, String> {
    let v: usize = s
        .parse()
        .map_err(|_| format!("'{s}' is not a token count"))?;
    if !(1..=1 << 30).contains(&v) {
        return Err(format!("{v} is outside 1..=1073741824"));
    }
    Ok(v)
}
