//! `inspect`: a human summary of a GGUF file and a check of its DS4 layout.
//!
//! The report lists the header, every metadata entry (arrays by type and
//! length), tensor counts and bytes by storage type and by role — routed
//! experts (`*_exps`), embeddings (`token_embd`), output head (`output*`), MTP
//! (`mtp.*`) and the remaining dense tensors — and finally the layout check:
//! the file's tensors bound against the DS4 layout of the matching profile
//! (`FORMAT.md` §2; the synthetic `tiny`/`flash4` shapes of `SYNTH.md` §2 for
//! the test models). Routed experts may be stored as IQ2_XXS, Q2_K or Q4_K
//! (`FORMAT.md` §2.9) and `exp_probs_b.bias` is optional.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::gguf::{bind, extra_tensors, BindProblem, GgufFile, Required};
use crate::quant::GgmlType;
use crate::synth::{plan, Dims, Rule, SynthProfile};

/// The role of a tensor in the model, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `token_embd.*`.
    Embedding,
    /// Dense weights of the layers and globals.
    Dense,
    /// Routed experts (`*_exps`).
    RoutedExperts,
    /// `output*` (LM head, output HC and norm).
    Output,
    /// Multi-token-prediction tensors (`mtp.*`).
    Mtp,
}

impl Role {
    /// The role of the tensor called `name`.
    pub fn of(name: &str) -> Role {
        let stem = name.strip_suffix(".weight").unwrap_or(name);
        if name.starts_with("mtp.") {
            Role::Mtp
        } else if stem.ends_with("_exps") {
            Role::RoutedExperts
        } else if name.starts_with("token_embd") {
            Role::Embedding
        } else if name.starts_with("output") {
            Role::Output
        } else {
            Role::Dense
        }
    }

    fn label(self) -> &'static str {
        match self {
            Role::Embedding => "embeddings (token_embd)",
            Role::Dense => "dense",
            Role::RoutedExperts => "routed experts (*_exps)",
            Role::Output => "output (output*)",
            Role::Mtp => "mtp (mtp.*)",
        }
    }
}

/// The DS4 tensors a file of `profile`'s shape must hold, for [`bind`].
pub fn layout_requirements(profile: SynthProfile) -> Vec<Required> {
    plan(profile, Rule::V1)
        .into_iter()
        .map(|t| Required {
            optional: t.name.ends_with("exp_probs_b.bias"),
            name: t.name,
            ty: t.ty,
            dims: t.dims,
        })
        .collect()
}

/// The profile whose shape the file's metadata announces, if any.
pub fn detect_profile(file: &GgufFile) -> Option<SynthProfile> {
    let layers = file.get_u32("deepseek4.block_count").ok()? as usize;
    let embd = file.get_u32("deepseek4.embedding_length").ok()? as u64;
    [
        SynthProfile::Tiny,
        SynthProfile::Flash4,
        SynthProfile::Flash,
    ]
    .into_iter()
    .find(|&p| {
        let d = Dims::of(p);
        d.n_layer == layers && d.n_embd == embd
    })
}

fn profile_by_name(name: &str) -> Option<SynthProfile> {
    match name {
        "tiny" => Some(SynthProfile::Tiny),
        "flash4" => Some(SynthProfile::Flash4),
        "flash" => Some(SynthProfile::Flash),
        _ => None,
    }
}

/// `77,913,391,104 bytes (72.56 GiB)`.
pub fn format_bytes(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!(
        "{grouped} bytes ({:.2} GiB)",
        n as f64 / (1u64 << 30) as f64
    )
}

/// The report, with the layout checked against the profile the metadata announces.
pub fn report(file: &GgufFile) -> String {
    report_for(file, None)
}

/// The report, with the layout checked against `profile` (`tiny`, `flash4`,
/// `flash`) or, when `None`, against the profile the metadata announces.
pub fn report_for(file: &GgufFile, profile: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "GGUF v{}  {}",
        file.version(),
        format_bytes(file.file_len())
    );
    let _ = writeln!(
        s,
        "alignment {}  data section at byte {}  {} metadata entries  {} tensors",
        file.alignment(),
        file.data_start(),
        file.metadata().len(),
        file.tensors().len()
    );

    s.push_str("\nmetadata:\n");
    for (k, v) in file.metadata() {
        let _ = writeln!(s, "  {k:<52} {}", v.display_short());
    }

    let mut by_type: BTreeMap<u32, (GgmlType, usize, u64)> = BTreeMap::new();
    let mut by_role: BTreeMap<Role, (usize, u64)> = BTreeMap::new();
    for t in file.tensors() {
        let e = by_type.entry(t.ty.id()).or_insert((t.ty, 0, 0));
        e.1 += 1;
        e.2 += t.n_bytes;
        let r = by_role.entry(Role::of(&t.name)).or_insert((0, 0));
        r.0 += 1;
        r.1 += t.n_bytes;
    }
    s.push_str("\ntensors by type:\n");
    for (ty, n, bytes) in by_type.values() {
        let _ = writeln!(
            s,
            "  {:<24} {n:>5} tensors  {}",
            ty.name(),
            format_bytes(*bytes)
        );
    }
    s.push_str("\ntensors by role:\n");
    for (role, (n, bytes)) in &by_role {
        let _ = writeln!(
            s,
            "  {:<24} {n:>5} tensors  {}",
            role.label(),
            format_bytes(*bytes)
        );
    }

    s.push_str("\nlayout check:\n");
    s.push_str(&layout_check(file, profile));
    s
}

/// The layout-check section of the report.
fn layout_check(file: &GgufFile, profile: Option<&str>) -> String {
    let chosen = match profile {
        Some(name) => match profile_by_name(name) {
            Some(p) => p,
            None => {
                return format!("  unknown profile {name:?} (expected tiny, flash4 or flash)\n")
            }
        },
        None => match detect_profile(file) {
            Some(p) => p,
            None => {
                return "  no DS4 profile matches deepseek4.block_count / embedding_length\n".into()
            }
        },
    };

    let req = layout_requirements(chosen);
    let problems: Vec<BindProblem> = match bind(file, &req) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .into_iter()
            .filter(|p| !is_allowed_expert_type(p))
            .collect(),
    };
    let mut s = format!(
        "  profile {}: {} tensors required\n",
        chosen.name(),
        req.len()
    );
    if problems.is_empty() {
        s.push_str("  OK: every required tensor present with the expected type and shape\n");
    } else {
        let _ = writeln!(s, "  {} mismatch(es):", problems.len());
        for p in &problems {
            let _ = writeln!(s, "    {p}");
        }
    }
    let extras = extra_tensors(file, &req);
    if !extras.is_empty() {
        let _ = writeln!(
            s,
            "  {} extra tensor(s) ignored, e.g. {}",
            extras.len(),
            extras[0]
        );
    }
    s
}

/// Routed experts may use any of the three expert types (`FORMAT.md` §2.9).
fn is_allowed_expert_type(p: &BindProblem) -> bool {
    matches!(p, BindProblem::WrongType { name, found, .. }
        if name.contains("_exps")
            && matches!(found, GgmlType::IQ2_XXS | GgmlType::Q2_K | GgmlType::Q4_K))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_byte_format() {
        assert_eq!(Role::of("blk.3.ffn_down_exps.weight"), Role::RoutedExperts);
        assert_eq!(Role::of("blk.3.ffn_down_shexp.weight"), Role::Dense);
        assert_eq!(Role::of("token_embd.weight"), Role::Embedding);
        assert_eq!(Role::of("output_hc_fn.weight"), Role::Output);
        assert_eq!(Role::of("mtp.0.ffn_up_exps.weight"), Role::Mtp);
        assert_eq!(
            format_bytes(77_913_391_104),
            "77,913,391,104 bytes (72.56 GiB)"
        );
        assert_eq!(format_bytes(999), "999 bytes (0.00 GiB)");
    }

    #[test]
    fn flash_layout_has_the_derived_tensor_count() {
        // FORMAT.md §2.11: 1288 required + 40 optional exp_probs_b (non-hash layers).
        let req = layout_requirements(SynthProfile::Flash);
        assert_eq!(req.iter().filter(|r| !r.optional).count(), 1288);
        assert_eq!(req.iter().filter(|r| r.optional).count(), 40);
    }
}
