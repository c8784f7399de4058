//! The default command: load a model, render the prompt, prefill, then decode
//! token by token, streaming text, until EOS, `-n` or the context is full.
//!
//! Diagnostics ride along the same loop: `--force-ids` replaces sampling by a
//! given continuation (teacher forcing), `--dump-logits` writes every step's
//! logits, `--dump-logprobs` the top alternatives, `--dump-stages` the stage taps.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ds4_runtime::backend::ascend::{AscendOptions, AscendSession};
use ds4_runtime::backend::setup as ascend_setup;
use ds4_runtime::backend::Backend;
use ds4_runtime::chat::{self, ChatOptions, ThinkMode};
use ds4_runtime::model::Model;
use ds4_runtime::plan::PlanSet;
use ds4_runtime::sampler::{Sampler, SamplerConfig};
use ds4_runtime::session::Session;
use ds4_runtime::tokenizer::{StreamDecoder, Tokenizer};

use crate::cli::RunArgs;
use crate::plans::{PLAN_SETS, PROFILES};

/// Where the synthetic tiny model is cached when no model is given.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DS4_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("ds4-rs");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("ds4-rs"),
        None => std::env::temp_dir().join("ds4-rs"),
    }
}

/// `-m FILE`, else `./ds4flash.gguf`, else the synthetic tiny model (generated once).
pub fn resolve_model(model: Option<&Path>) -> Result<PathBuf> {
    if let Some(m) = model {
        match std::fs::metadata(m) {
            Err(_) => bail!(
                "model file {} does not exist; pass a DS4 GGUF with -m FILE",
                m.display()
            ),
            Ok(md) if md.is_dir() => bail!(
                "{} is a directory; pass the GGUF file itself with -m FILE",
                m.display()
            ),
            Ok(md) if !md.is_file() => bail!(
                "{} is not a regular file; pass a DS4 GGUF file with -m FILE",
                m.display()
            ),
            Ok(_) => {}
        }
        return Ok(m.to_owned());
    }
    let local = PathBuf::from("ds4flash.gguf");
    if local.exists() {
        return Ok(local);
    }
    if let Ok(target) = std::fs::read_link(&local) {
        bail!(
            "./ds4flash.gguf is a link to {}, which does not exist; fix the link or pass -m FILE",
            target.display()
        );
    }
    let dir = cache_dir();
    let path = dir.join("tiny.gguf");
    if !path.exists() {
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "cannot create cache folder {} (pass -m FILE or set DS4_CACHE_DIR)",
                dir.display()
            )
        })?;
        eprintln!(
            "ds4-runtime: generating the synthetic tiny model into {} (once)",
            path.display()
        );
        let tmp = dir.join(format!("tiny.gguf.{}.tmp", std::process::id()));
        let opts = ds4_runtime::synth::SynthOptions::new(ds4_runtime::synth::SynthProfile::Tiny);
        ds4_runtime::synth::write(&opts, &tmp).context("cannot write the synthetic model")?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot move the model to {}", path.display()))?;
    }
    eprintln!(
        "ds4-runtime: no -m and no ./ds4flash.gguf: using the synthetic tiny model {} (random weights, the text is meaningless)",
        path.display()
    );
    Ok(path)
}

/// The plan set of `profile` for `devices`, fused or not.
pub fn plan_set(profile: &str, devices: u8, fused: bool) -> Result<&'static PlanSet> {
    PLAN_SETS
        .iter()
        .find(|p| p.profile.name == profile && p.devices == devices && p.fused == fused)
        .with_context(|| {
            format!(
                "no {} plan for profile {profile} on {devices} device(s) was compiled",
                if fused { "fused" } else { "unfused" }
            )
        })
}

/// Parses "1,2,3" or a JSON array "[1, 2, 3]".
pub fn parse_ids(s: &str, vocab: usize, what: &str) -> Result<Vec<u32>> {
    let t = s.trim();
    let raw: Vec<i64> = if t.starts_with('[') {
        serde_json::from_str(t)
            .map_err(|e| anyhow::anyhow!("{what}: not a JSON array of token ids ({e})"))?
    } else {
        t.split(',')
            .map(|p| {
                let p = p.trim();
                p.parse::<i64>().map_err(|_| {
                    anyhow::anyhow!("{what}: '{p}' is not a token id; give ids like 0,3476,477")
                })
            })
            .collect::<Result<_>>()?
    };
    if raw.is_empty() {
        bail!("{what} is empty; give ids like 0,3476,477");
    }
    raw.into_iter()
        .map(|id| {
            if id < 0 || id as u64 >= vocab as u64 {
                bail!("{what}: token id {id} is outside the vocabulary (0..{vocab})");
            }
            Ok(id as u32)
        })
        .collect()
}

/// Fails when `out` is the model file itself (a mistyped dump path must not destroy it).
fn check_dump_path(out: &Path, model: &Path, flag: &str) -> Result<()> {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(out), std::fs::canonicalize(model)) {
        if a == b {
            bail!(
                "{flag} {} is the model file; choose another output path",
                out.display()
            );
        }
    }
    Ok(())
}

/// Runs generation (or the interactive chat when no prompt is given).
pub fn run(args: &RunArgs) -> Result<()> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .ok();
    }
    // The Ascend runtimes open first: without CANN, `--backend ascend` fails here
    // with one line, before any model work.
    let (visible, devices) = match args.backend.as_str() {
        "cpu" => (String::new(), args.devices.unwrap_or(1)),
        _ => ascend_setup::visible_devices(args.devices).map_err(|e| anyhow::anyhow!(e))?,
    };
    let drop_sync = match std::env::var("DS4_SIM_DROP_SYNC") {
        Err(_) => None,
        Ok(_) if args.backend != "ascend-sim" => {
            bail!("DS4_SIM_DROP_SYNC is a switch of the emulation; use it with --backend ascend-sim or unset it")
        }
        Ok(v) => Some(v.trim().parse::<usize>().map_err(|_| {
            anyhow::anyhow!("DS4_SIM_DROP_SYNC={v} is not a synchronisation number (0, 1, 2, ...)")
        })?),
    };
    let runtime = match args.backend.as_str() {
        "cpu" => None,
        "ascend" => Some(ascend_setup::open_real(&visible).map_err(|e| anyhow::anyhow!(e))?),
        "ascend-sim" => Some(ascend_setup::open_sim().map_err(|e| anyhow::anyhow!(e))?),
        other => bail!("unknown backend '{other}'; use cpu, ascend or ascend-sim"),
    };

    // Read the prompt before the model so that bad input fails fast.
    let prompt_text = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(f)) => {
            let bytes = std::fs::read(f)
                .with_context(|| format!("cannot read prompt file {}", f.display()))?;
            Some(String::from_utf8(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "prompt file {} is not valid UTF-8 (byte {}); convert it to UTF-8",
                    f.display(),
                    e.utf8_error().valid_up_to()
                )
            })?)
        }
        (None, None) => None,
    };

    let path = resolve_model(args.model.as_deref())?;
    for (flag, p) in [
        ("--dump-logits", &args.dump_logits),
        ("--dump-logprobs", &args.dump_logprobs),
    ] {
        if let Some(p) = p {
            check_dump_path(p, &path, flag)?;
        }
    }
    let t_load = Instant::now();
    let model = Model::open(&path, PROFILES).map_err(|e| {
        if args.model.is_none() && path == cache_dir().join("tiny.gguf") {
            anyhow::anyhow!(
                "the cached synthetic model {} is damaged ({e}); delete it and it is generated again",
                path.display()
            )
        } else {
            e.into()
        }
    })?;
    let plans = plan_set(model.profile.name, devices, !args.unfused)?;
    if args.upload_dry_run {
        return upload_dry_run(&model, plans, args.ctx as usize);
    }
    let tok = model
        .tokenizer()
        .context("cannot build the tokenizer from the model")?;
    let vocab = model.profile.vocab;
    let ctx = args.ctx as usize;
    let trained = model
        .file
        .get_u64("deepseek4.context_length")
        .unwrap_or(1 << 20) as usize;
    if ctx > trained {
        bail!("-c {ctx} is larger than the model's context length {trained}; lower -c/--ctx");
    }
    tracing::info!(
        profile = model.profile.name,
        devices,
        "model loaded in {:?}",
        t_load.elapsed()
    );

    let system = args
        .system
        .clone()
        .unwrap_or_else(|| chat::DEFAULT_SYSTEM.to_owned());
    let chat_opts = ChatOptions {
        system: if system.is_empty() {
            None
        } else {
            Some(system)
        },
        think: if args.nothink {
            ThinkMode::NoThink
        } else {
            ThinkMode::Think
        },
    };
    let prompt_ids = match (&args.prompt_ids, &prompt_text) {
        (Some(ids), _) => Some(parse_ids(ids, vocab, "--prompt-ids")?),
        (None, Some(text)) => Some(chat::render_prompt(&tok, &chat_opts, text)),
        (None, None) => None,
    };
    let forced = match &args.force_ids {
        Some(s) => Some(parse_ids(s, vocab, "--force-ids")?),
        None => None,
    };

    // Refuse before any work (the weight upload included) when the prompt cannot fit:
    // its tokens and the position of the first generated one.
    if let Some(ids) = &prompt_ids {
        if ids.len() + 1 > ctx {
            bail!(
                "the prompt has {} tokens and generation needs one more position, but the context holds {ctx}; shorten it or raise -c/--ctx",
                ids.len()
            );
        }
    }
    let chunk = args.chunk.map(|c| c as usize);
    let mut session: Box<dyn Backend + '_> = match &runtime {
        None => Box::new(Session::new(&model, plans, ctx, chunk)?),
        Some(rt) => {
            let opts = AscendOptions {
                chunk,
                drop_sync,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                host_ops: std::env::var("DS4_SIM_HOST_OPS").is_ok_and(|v| v == "1"),
            };
            Box::new(AscendSession::new(rt, &model, plans, ctx, &opts)?)
        }
    };
    let session = &mut *session;
    if let Some(dir) = &args.dump_stages {
        session
            .dump_stages(dir.clone())
            .with_context(|| format!("cannot create stage folder {}", dir.display()))?;
    }
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: args.temp,
        top_k: args.top_k as usize,
        top_p: args.top_p,
        min_p: args.min_p,
        seed: args.seed.unwrap_or_else(ds4_runtime::sampler::time_seed),
    });

    match prompt_ids {
        Some(ids) => {
            let mut dumps = Dumps::open(args)?;
            generate(
                session,
                &tok,
                &mut sampler,
                &ids,
                forced.as_deref(),
                args.tokens as usize,
                &mut dumps,
            )?;
            dumps.finish(ids.len())?;
            Ok(())
        }
        None => {
            if args.force_ids.is_some()
                || args.dump_logits.is_some()
                || args.dump_logprobs.is_some()
            {
                bail!("--force-ids, --dump-logits and --dump-logprobs need a prompt (-p, --prompt-file or --prompt-ids)");
            }
            crate::repl::chat(
                session,
                &tok,
                &mut sampler,
                &chat_opts,
                args.tokens as usize,
            )
        }
    }
}

/// `--upload-dry-run`: the bytes each device would receive, against the plan's
/// per-device weight bytes; nothing is allocated.
fn upload_dry_run(model: &Model, plans: &'static PlanSet, ctx: usize) -> Result<()> {
    let bound = model.bind(plans)?;
    let items = ds4_runtime::backend::upload::upload_items(plans, &model.file, &bound)
        .map_err(|e| anyhow::anyhow!(e))?;
    let got = ds4_runtime::backend::upload::bytes_per_device(&items, plans.devices as usize);
    let need = ds4_runtime::backend::ascend::device_bytes(plans, ctx);
    let chip = ds4_runtime::backend::setup::SIM_DEVICE_BYTES;
    for (d, b) in got.iter().enumerate() {
        let (want, total) = (need[d].weights, need[d].total());
        println!(
            "device {d}: upload {b} bytes, plan weight bytes {want}{}; with state at -c {ctx} and activations {total} bytes ({:.2} GiB), {} one 310P3 ({:.2} GiB usable)",
            if *b == want { "" } else { " (MISMATCH)" },
            total as f64 / (1u64 << 30) as f64,
            if total <= chip { "fits" } else { "does NOT fit" },
            chip as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

/// Optional per-step outputs.
pub struct Dumps {
    logits: Option<std::io::BufWriter<std::fs::File>>,
    logprobs: Option<(PathBuf, usize, Vec<serde_json::Value>)>,
}

impl Dumps {
    /// No dumps.
    pub fn none() -> Dumps {
        Dumps {
            logits: None,
            logprobs: None,
        }
    }

    fn open(args: &RunArgs) -> Result<Dumps> {
        let logits = match &args.dump_logits {
            Some(p) => Some(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            )),
            None => None,
        };
        if let Some(p) = &args.dump_logprobs {
            // Fail before generating, not after.
            std::fs::write(p, b"").with_context(|| format!("cannot create {}", p.display()))?;
        }
        let logprobs = args
            .dump_logprobs
            .clone()
            .map(|p| (p, args.logprobs_top_k as usize, Vec::new()));
        Ok(Dumps { logits, logprobs })
    }

    fn step(&mut self, step: usize, logits: &[f32], selected: u32) -> Result<()> {
        if let Some(w) = self.logits.as_mut() {
            let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
            w.write_all(&bytes).context("cannot write --dump-logits")?;
        }
        if let Some((_, k, steps)) = self.logprobs.as_mut() {
            let top = ds4_runtime::sampler::top_logprobs(logits, *k);
            let alts: Vec<_> = top
                .iter()
                .map(|(id, lp)| serde_json::json!({"id": id, "logit": logits[*id as usize], "logprob": lp}))
                .collect();
            steps.push(
                serde_json::json!({"step": step, "selected": selected, "top_logprobs": alts}),
            );
        }
        Ok(())
    }

    fn finish(self, prompt_tokens: usize) -> Result<()> {
        if let Some(mut w) = self.logits {
            w.flush().context("cannot write --dump-logits")?;
        }
        if let Some((p, k, steps)) = self.logprobs {
            let doc = serde_json::json!({"source": "ds4-rs", "prompt_tokens": prompt_tokens, "top_k": k, "steps": steps});
            std::fs::write(&p, serde_json::to_string_pretty(&doc)?)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(())
    }
}

/// Prefill `ids`, then generate up to `n` tokens (or feed `forced`), streaming text.
pub fn generate(
    session: &mut dyn Backend,
    tok: &Tokenizer,
    sampler: &mut Sampler,
    ids: &[u32],
    forced: Option<&[u32]>,
    n: usize,
    dumps: &mut Dumps,
) -> Result<Vec<u32>> {
    let t0 = Instant::now();
    session.prefill(ids)?;
    let prefill_s = t0.elapsed().as_secs_f64();

    let mut out = Vec::new();
    let mut truncated = false;
    let mut stream = StreamDecoder::new(tok);
    let stdout = std::io::stdout();
    let t1 = Instant::now();
    let steps = forced.map(|f| f.len()).unwrap_or(n);
    for step in 0..steps {
        if let Some(i) = session.logits().iter().position(|v| !v.is_finite()) {
            bail!(
                "the model produced a non-finite logit (token {i}, step {step}); the model file is corrupt or not a DS4 model"
            );
        }
        let next = match forced {
            Some(f) => f[step],
            None => sampler.sample(session.logits()),
        };
        dumps.step(step, session.logits(), next)?;
        if forced.is_none() && next == tok.eos() {
            break;
        }
        out.push(next);
        let text = stream.push(next);
        if !text.is_empty() {
            let mut lock = stdout.lock();
            lock.write_all(text.as_bytes()).ok();
            lock.flush().ok();
        }
        let last_sampled = forced.is_none() && step + 1 == steps;
        if last_sampled {
            break;
        }
        if session.pos() + 1 > session.ctx() {
            truncated = true;
            break;
        }
        session.decode(next)?;
    }
    let tail = stream.finish();
    let mut lock = stdout.lock();
    lock.write_all(tail.as_bytes()).ok();
    lock.write_all(b"\n").ok();
    lock.flush().ok();
    let decode_s = t1.elapsed().as_secs_f64();
    if truncated {
        eprintln!("ds4-runtime: stopped at the context limit ({} tokens); raise -c/--ctx for longer output", session.ctx());
    }
    let decoded = out
        .len()
        .saturating_sub(if forced.is_some() { 0 } else { 1 });
    eprintln!(
        "prompt tokens: {}, prefill: {:.2} tokens/s, generated tokens: {}, decode: {:.2} tokens/s",
        ids.len(),
        ids.len() as f64 / prefill_s.max(1e-9),
        out.len(),
        decoded as f64 / decode_s.max(1e-9),
    );
    Ok(out)
}
