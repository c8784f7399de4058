//! Stage dumps: the named intermediate values of a run, written as the reference
//! engine names them (VERIFY.md), so two dumps can be diffed stage by stage.
//!
//! Files are little-endian f32, one row per token. Prefill stages append the rows
//! of every chunk to `prefill_l<L>_<name>.f32` (or `prefill_<name>.f32` outside a
//! layer); decode stages write `decode_p<pos>_l<L>_<name>.f32`; counter stages
//! write `<name>_<nnn>.f32`, one file per call.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use crate::plan::{Phase, StageFile, StageTap};

/// Writes stage taps into one folder.
pub struct StageDumper {
    dir: PathBuf,
    /// The phase of the run in progress.
    pub phase: Phase,
    started: HashSet<String>,
    counters: HashMap<&'static str, usize>,
}

impl StageDumper {
    /// Creates `dir` if needed and removes stage files of an earlier run from it (only
    /// files named like stage dumps), so that a later diff never compares stale data.
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(".f32")
                && (name.starts_with("prefill_")
                    || name.starts_with("decode_p")
                    || name.starts_with("head_in_"));
            if ours {
                std::fs::remove_file(dir.join(&name))?;
            }
        }
        Ok(StageDumper {
            dir,
            phase: Phase::Prefill,
            started: HashSet::new(),
            counters: HashMap::new(),
        })
    }

    fn file_name(&mut self, tap: &StageTap, pos0: usize) -> String {
        let layer = tap.layer.map(|l| format!("_l{l}")).unwrap_or_default();
        match (tap.file, self.phase) {
            (StageFile::Counter, _) => {
                let n = self.counters.entry(tap.name).or_insert(0);
                let name = format!("{}_{:03}.f32", tap.name, *n);
                *n += 1;
                name
            }
            (StageFile::PerPhase, Phase::Decode) => {
                format!("decode_p{pos0}{layer}_{}.f32", tap.name)
            }
            (StageFile::PerPhase, _) => format!("prefill{layer}_{}.f32", tap.name),
        }
    }

    /// Appends `rows` rows of `data` for `tap`.
    pub fn dump(
        &mut self,
        tap: &StageTap,
        data: &[f32],
        rows: usize,
        pos0: usize,
    ) -> Result<(), String> {
        let name = self.file_name(tap, pos0);
        let path = self.dir.join(&name);
        let append = !self.started.insert(name);
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&path)
            .map_err(|e| format!("cannot write stage dump {}: {e}", path.display()))?;
        let n = tap.buf.width * rows;
        let bytes: Vec<u8> = data[..n.min(data.len())]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        f.write_all(&bytes)
            .map_err(|e| format!("cannot write stage dump {}: {e}", path.display()))
    }
}
