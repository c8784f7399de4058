//! A model file checked against the graph: profile matching and weight binding.
//!
//! Opening a model is: map the GGUF ([`crate::gguf`]), check it is a DeepSeek V4
//! file, find the profile of the compiled graph whose metadata bindings it
//! matches (every mismatch is reported by key), then bind the weight table of
//! a plan set: every tensor the plan names must exist with the plan's dtype and
//! shape. Nothing is copied; kernels read tensors straight from the mapping.

use std::path::{Path, PathBuf};

use crate::gguf::{self, GgufFile, Required};
use crate::plan::{PlanSet, ProfileInfo};
use crate::quant::GgmlType;
use crate::tokenizer::Tokenizer;

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot open model {path}: {source}; pass a DS4 GGUF with -m FILE")]
    Open {
        path: PathBuf,
        source: gguf::GgufError,
    },
    #[error(
        "{path} is a GGUF of architecture '{arch}', not DeepSeek V4 ('deepseek4'); \
         ds4-runtime runs DeepSeek V4 Flash files only"
    )]
    Architecture { path: PathBuf, arch: String },
    #[error("{path} matches no compiled profile ({tried}); closest is '{closest}': {mismatches}")]
    NoProfile {
        path: PathBuf,
        tried: String,
        closest: String,
        mismatches: String,
    },
    #[error("{path} does not fit the '{profile}' plan: {detail}")]
    Bind {
        path: PathBuf,
        profile: String,
        detail: String,
    },
}

/// An opened model file and the profile it matched.
pub struct Model {
    pub path: PathBuf,
    pub file: GgufFile,
    pub profile: &'static ProfileInfo,
}

impl Model {
    /// Opens `path` and matches it against `profiles`.
    pub fn open(path: &Path, profiles: &'static [ProfileInfo]) -> Result<Model, ModelError> {
        let file = GgufFile::open(path).map_err(|source| ModelError::Open {
            path: path.to_owned(),
            source,
        })?;
        let arch = file
            .get_str("general.architecture")
            .unwrap_or("(none)")
            .to_owned();
        if arch != "deepseek4" {
            return Err(ModelError::Architecture {
                path: path.to_owned(),
                arch,
            });
        }
        let profile = match_profile(&file, profiles).map_err(|(closest, mismatches)| {
            ModelError::NoProfile {
                path: path.to_owned(),
                tried: profiles
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", "),
                closest,
                mismatches,
            }
        })?;
        Ok(Model {
            path: path.to_owned(),
            file,
            profile,
        })
    }

    /// The tokenizer this model carries.
    pub fn tokenizer(&self) -> Result<Tokenizer, TokenizerLoadError> {
        tokenizer_from_gguf(&self.file)
    }

    /// Binds the weight table of `plans`: for every slot, the index of its tensor
    /// (None only for optional tensors that are absent).
    pub fn bind(&self, plans: &PlanSet) -> Result<Vec<Option<usize>>, ModelError> {
        let mut names: Vec<&str> = Vec::new();
        let mut req: Vec<Required> = Vec::new();
        for w in plans.weights {
            if names.contains(&w.gguf_name) {
                continue;
            }
            names.push(w.gguf_name);
            let ty = GgmlType::from_id(w.ggml_type).ok_or_else(|| ModelError::Bind {
                path: self.path.clone(),
                profile: self.profile.name.into(),
                detail: format!("plan names unknown ggml type {}", w.ggml_type),
            })?;
            req.push(Required {
                name: w.gguf_name.to_owned(),
                ty,
                dims: w.dims.to_vec(),
                optional: w.optional,
            });
        }
        let bound = gguf::bind(&self.file, &req).map_err(|e| ModelError::Bind {
            path: self.path.clone(),
            profile: self.profile.name.into(),
            detail: e.to_string(),
        })?;
        Ok(plans
            .weights
            .iter()
            .map(|w| {
                let i = names.iter().position(|n| *n == w.gguf_name).unwrap_or(0);
                bound.get(i).copied().flatten()
            })
            .collect())
    }
}

/// The tokenizer a GGUF carries (`tokenizer.ggml.tokens`, `.merges`, `.token_type`).
pub fn tokenizer_from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerLoadError> {
    let tokens: Vec<String> = file
        .get_str_array("tokenizer.ggml.tokens")?
        .into_iter()
        .map(str::to_owned)
        .collect();
    let merges: Vec<String> = file
        .get_str_array("tokenizer.ggml.merges")?
        .into_iter()
        .map(str::to_owned)
        .collect();
    let types = file.get_i32_array("tokenizer.ggml.token_type").ok();
    Ok(Tokenizer::from_vocab(&tokens, &merges, types.as_deref())?)
}

/// Why the model's tokenizer cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerLoadError {
    #[error("tokenizer metadata: {0}")]
    Metadata(#[from] gguf::GgufError),
    #[error("tokenizer: {0}")]
    Build(#[from] crate::tokenizer::TokenizerError),
}

/// The first profile whose metadata all match, or (closest profile, its mismatches).
pub fn match_profile(
    file: &GgufFile,
    profiles: &'static [ProfileInfo],
) -> Result<&'static ProfileInfo, (String, String)> {
    let mut best: Option<(usize, &ProfileInfo, Vec<String>)> = None;
    for p in profiles {
        let mm = profile_mismatches(file, p);
        if mm.is_empty() {
            return Ok(p);
        }
        if best.as_ref().is_none_or(|(n, _, _)| mm.len() < *n) {
            best = Some((mm.len(), p, mm));
        }
    }
    match best {
        Some((_, p, mm)) => Err((p.name.to_owned(), mm.join("; "))),
        None => Err(("(none)".into(), "no profiles compiled".into())),
    }
}

/// Every metadata key of `p` that `file` contradicts, as "key: expected X, got Y".
pub fn profile_mismatches(file: &GgufFile, p: &ProfileInfo) -> Vec<String> {
    let mut out = Vec::new();
    for (key, want) in p.metadata {
        match file.get_u32(key) {
            Ok(v) if i64::from(v) == *want => {}
            Ok(v) => out.push(format!("{key}: expected {want}, got {v}")),
            Err(e) => out.push(format!("{key}: expected {want}, {e}")),
        }
    }
    let key = "deepseek4.attention.compress_ratios";
    match file.get_u32_array(key) {
        Ok(r)
            if r.len() >= p.compress_ratios.len()
                && r[..p.compress_ratios.len()] == *p.compress_ratios => {}
        Ok(r) => out.push(format!(
            "{key}: expected {:?}, got {:?}",
            p.compress_ratios, r
        )),
        Err(e) => out.push(format!("{key}: {e}")),
    }
    let key = "deepseek4.hash_layer_count";
    match file.get_u32(key) {
        Ok(v) if v == p.hash_layer_count => {}
        Ok(v) => out.push(format!("{key}: expected {}, got {v}", p.hash_layer_count)),
        Err(e) => out.push(format!("{key}: {e}")),
    }
    out
}
