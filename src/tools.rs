//! The small subcommands: `synth`, `inspect`, `tokenize`, `diff-stages`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ds4_runtime::gguf::GgufFile;
use ds4_runtime::tokenizer::{self, Tokenizer};

use crate::cli::{DiffArgs, InspectArgs, SynthArgs, TokenizeArgs};
use crate::plans::PROFILES;

/// `synth`: write a synthetic model.
pub fn synth(a: &SynthArgs) -> Result<()> {
    use ds4_runtime::synth::{Rule, SynthOptions, SynthProfile};
    let profile = match a.profile.as_str() {
        "tiny" => SynthProfile::Tiny,
        "flash4" => SynthProfile::Flash4,
        _ => SynthProfile::Flash,
    };
    if profile == SynthProfile::Flash && !a.sparse {
        bail!("synth --profile flash writes the real 43-layer layout only with --sparse (tensor data as file holes)");
    }
    let mut opts = SynthOptions::new(profile);
    opts.seed = a.seed;
    opts.sparse = a.sparse;
    opts.progress = true;
    if let Some(r) = &a.rule {
        opts.rule = if r == "v1" { Rule::V1 } else { Rule::V2 };
    }
    let report = ds4_runtime::synth::write(&opts, &a.output)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    eprintln!(
        "ds4-runtime: wrote {} ({} tensors, {} bytes{})",
        a.output.display(),
        report.n_tensors,
        report.file_bytes,
        if report.sparse { ", sparse" } else { "" }
    );
    Ok(())
}

/// `inspect`: summary and layout check.
pub fn inspect(a: &InspectArgs) -> Result<()> {
    let file =
        GgufFile::open(&a.file).with_context(|| format!("cannot open {}", a.file.display()))?;
    let profile = ds4_runtime::model::match_profile(&file, PROFILES);
    let name = profile.as_ref().ok().map(|p| p.name);
    print!("{}", ds4_runtime::inspect::report_for(&file, name));
    match profile {
        Ok(p) => {
            let plans = crate::run::plan_set(p.name, 1, true)?;
            let model = ds4_runtime::model::Model::open(&a.file, PROFILES)?;
            match model.bind(plans) {
                Ok(_) => println!(
                    "layout: every tensor of profile {} present with its dtype and shape",
                    p.name
                ),
                Err(e) => println!("layout: {e}"),
            }
        }
        Err((closest, mm)) => {
            println!("profile: none matches (closest {closest}: {mm})");
            bail!(
                "{} matches no compiled profile (closest {closest}); ds4-runtime cannot run it",
                a.file.display()
            );
        }
    }
    Ok(())
}

/// `tokenize`: ids of stdin as JSON, or text of a JSON id array.
pub fn tokenize(a: &TokenizeArgs) -> Result<()> {
    let tok = match &a.model {
        Some(m) => {
            let f = GgufFile::open(m).with_context(|| format!("cannot open {}", m.display()))?;
            ds4_runtime::model::tokenizer_from_gguf(&f)?
        }
        None => Tokenizer::embedded()?,
    };
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("cannot read stdin")?;
    let input = String::from_utf8(input).map_err(|e| {
        anyhow::anyhow!(
            "stdin is not valid UTF-8 (byte {}); convert it to UTF-8",
            e.utf8_error().valid_up_to()
        )
    })?;
    let opts = tokenizer::TokenizeOptions {
        chat: a.chat,
        nothink: a.nothink,
        system: a.system.clone(),
        decode: a.decode,
    };
    println!("{}", tokenizer::run_tokenize(&tok, &input, &opts)?);
    Ok(())
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if b.len() % 4 != 0 {
        bail!(
            "{} is not a little-endian f32 file ({} bytes)",
            path.display(),
            b.len()
        );
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Max-abs, RMS and relative-RMS difference of two equally long vectors.
pub fn diff(a: &[f32], r: &[f32]) -> (f64, f64, f64) {
    let (mut max, mut ss, mut rr) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(r) {
        let d = f64::from(*x) - f64::from(*y);
        // NaN must show, not vanish in f64::max.
        max = if d.is_nan() || max.is_nan() {
            f64::NAN
        } else {
            max.max(d.abs())
        };
        ss += d * d;
        rr += f64::from(*y) * f64::from(*y);
    }
    let n = a.len().max(1) as f64;
    (
        max,
        (ss / n).sqrt(),
        if rr > 0.0 {
            (ss / rr).sqrt()
        } else {
            ss.sqrt()
        },
    )
}

fn stage_names(dir: &Path) -> Result<std::collections::BTreeSet<String>> {
    if !dir.is_dir() {
        bail!(
            "stage folder {} does not exist; pass two folders written by --dump-stages",
            dir.display()
        );
    }
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot read stage folder {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".f32"))
        .collect())
}

/// `diff-stages A B`: per stage file present in both, the differences of A against B
/// (relative RMS is against B). Fails when the folders are not comparable: files
/// missing on either side, different lengths, or non-finite differences.
pub fn diff_stages(a: &DiffArgs) -> Result<()> {
    let (na, nb) = (stage_names(&a.a)?, stage_names(&a.b)?);
    println!(
        "{:<40} {:>12} {:>12} {:>12}",
        "stage", "max_abs", "rms", "rel_rms"
    );
    let mut problems = 0;
    for n in na.intersection(&nb) {
        let (x, y) = (read_f32(&a.a.join(n))?, read_f32(&a.b.join(n))?);
        if x.len() != y.len() {
            println!("{n:<40} length {} vs {}", x.len(), y.len());
            problems += 1;
            continue;
        }
        let (m, r, rel) = diff(&x, &y);
        if !m.is_finite() {
            problems += 1;
        }
        println!("{n:<40} {m:>12.3e} {r:>12.3e} {rel:>12.3e}");
    }
    let only_a = na.difference(&nb).count();
    let only_b = nb.difference(&na).count();
    if only_a + only_b > 0 {
        println!(
            "({only_a} stage files only in {}, {only_b} only in {})",
            a.a.display(),
            a.b.display()
        );
    }
    if problems + only_a + only_b > 0 {
        bail!(
            "the stage folders differ in shape: {problems} files with other lengths or non-finite values, {} files on one side only",
            only_a + only_b
        );
    }
    Ok(())
}
