//! Shared fixtures of the end-to-end tests: the synthetic tiny model and the
//! reference cases of `../shared/vectors/oracle/`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ds4_runtime::model::Model;

/// The shared read-only material, by relative path from the repository root.
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// The synthetic tiny model, generated once per target directory by the project's
/// own `synth` (and checked against SYNTH.md's SHA-256 by the synth tests).
pub fn tiny_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("models");
        std::fs::create_dir_all(&dir).expect("create test model folder");
        let path = dir.join("tiny.gguf");
        if !path.exists() {
            let tmp = dir.join(format!("tiny.gguf.{}.tmp", std::process::id()));
            let opts =
                ds4_runtime::synth::SynthOptions::new(ds4_runtime::synth::SynthProfile::Tiny);
            ds4_runtime::synth::write(&opts, &tmp).expect("synth tiny");
            std::fs::rename(&tmp, &path).expect("rename tiny model");
        }
        path
    })
    .clone()
}

/// The tiny model, opened and matched against the compiled profiles.
pub fn tiny() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::open(&tiny_path(), ds4_rs::plans::PROFILES).expect("open tiny"))
}

/// One reference case.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    pub full_rows: Vec<usize>,
    /// Per step: the reference's top-20 (id, logit).
    pub top20: Vec<Vec<(u32, f32)>>,
    pub vocab: usize,
}

impl Case {
    /// The reference logits of the `i`-th stored full row.
    pub fn full_row(&self, i: usize) -> Vec<f32> {
        let bytes = std::fs::read(self.dir.join("logits.f32.bin")).expect("read logits");
        let row = &bytes[i * self.vocab * 4..(i + 1) * self.vocab * 4];
        row.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// Every case of `../shared/vectors/oracle/`, in name order.
pub fn cases() -> Vec<Case> {
    let root = shared().join("vectors/oracle");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("oracle folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let j: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("case.json")).expect("case.json"))
                    .expect("json");
            let top20 = j["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .map(|s| {
                    s["top20"]
                        .as_array()
                        .expect("top20")
                        .iter()
                        .map(|e| {
                            (
                                e["id"].as_u64().unwrap() as u32,
                                e["logit"].as_f64().unwrap() as f32,
                            )
                        })
                        .collect()
                })
                .collect();
            Case {
                name: j["case"].as_str().unwrap_or("?").to_owned(),
                prompt_ids: ids(&j["prompt_ids"]),
                generated_ids: ids(&j["generated_ids"]),
                full_rows: j["full_rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as usize)
                    .collect(),
                top20,
                vocab: j["vocab"].as_u64().unwrap() as usize,
                dir,
            }
        })
        .collect()
}

/// Relative RMS difference ||a - b|| / ||b||.
pub fn rel_rms(a: &[f32], b: &[f32]) -> f64 {
    let (mut d, mut n) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        d += (f64::from(*x) - f64::from(*y)).powi(2);
        n += f64::from(*y).powi(2);
    }
    (d / n.max(1e-300)).sqrt()
}

/// Index of the largest value (lowest index on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
