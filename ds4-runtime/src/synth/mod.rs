//! Synthetic DS4-layout GGUF files, byte-exact to `SYNTH.md`.
//!
//! Real DS4 Flash weights are 81 GiB; tests run on files this module writes
//! instead: the real metadata keys, tensor names, dtypes and block formats, the
//! real tokenizer, and deterministic well-scaled random weights. Given the same
//! profile, rule and seed the output is identical byte for byte to the
//! reference generator (checked against `vectors/synth/*.sha256`).
//!
//! Data flow: [`layout::plan`] lists the tensors with their generators, `meta`
//! writes the 49 metadata entries, and `gen` streams each tensor's bytes
//! through a `BufWriter`, so memory stays small even for the 9.5 GB `flash4`.
//! With `sparse: true` the tensor data is left as file holes (the header is
//! written and the file extended with `set_len`), which gives the full 43-layer
//! `Flash` layout for loading, binding and planning tests without 80 GB of disk.

mod gen;
pub mod layout;
mod meta;
pub mod prng;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use layout::{plan, Dims, Gen, TensorPlan};
pub use meta::{model_name, TOKENIZER_JSON};

/// Which model shape to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthProfile {
    /// 6 layers, n_embd 256, 16 experts: 127 MB.
    Tiny,
    /// The real per-layer shapes with 4 layers: 9.5 GB.
    Flash4,
    /// The real 43-layer DS4 Flash layout (use `sparse`: about 80 GB of data).
    Flash,
}

impl SynthProfile {
    /// Lower-case name used in `general.name` (`tiny`, `flash4`, `flash`).
    pub fn name(self) -> &'static str {
        match self {
            SynthProfile::Tiny => "tiny",
            SynthProfile::Flash4 => "flash4",
            SynthProfile::Flash => "flash",
        }
    }

    /// The default generation rule: v2 for tiny, v1 otherwise.
    pub fn default_rule(self) -> Rule {
        match self {
            SynthProfile::Tiny => Rule::V2,
            _ => Rule::V1,
        }
    }
}

/// Generation rule (`SYNTH.md` §1-10 for v1, §11 for v2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    V1,
    V2,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub profile: SynthProfile,
    /// Global seed (default 1).
    pub seed: u64,
    pub rule: Rule,
    /// Leave tensor data as file holes.
    pub sparse: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

impl SynthOptions {
    /// Defaults for `profile`: seed 1, the profile's default rule, dense, no progress bar.
    pub fn new(profile: SynthProfile) -> SynthOptions {
        SynthOptions {
            profile,
            seed: 1,
            rule: profile.default_rule(),
            sparse: false,
            progress: false,
        }
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct SynthReport {
    pub path: PathBuf,
    /// Total file size.
    pub file_bytes: u64,
    /// Header + metadata + tensor directory + padding (the data section start).
    pub header_bytes: u64,
    pub n_tensors: usize,
    pub sparse: bool,
}

/// Errors of [`write`].
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("embedded tokenizer.json: {0}")]
    Tokenizer(String),
}

/// `Result` of this module.
pub type Result<T> = std::result::Result<T, SynthError>;

const ALIGN: u64 = 32;

/// Counts the bytes passing through to the inner writer.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn padded(n: u64) -> u64 {
    n + crate::gguf::write::padding(n, ALIGN)
}

/// Writes the synthetic model described by `opts` to `out`.
pub fn write(opts: &SynthOptions, out: &Path) -> Result<SynthReport> {
    let io_err = |source| SynthError::Io {
        path: out.to_path_buf(),
        source,
    };
    let vocab = meta::vocab(Dims::of(opts.profile).n_vocab as usize)?;
    let tensors = plan(opts.profile, opts.rule);
    let data_bytes: u64 = tensors.iter().map(|t| padded(t.n_bytes())).sum();

    let file = File::create(out).map_err(io_err)?;
    let mut w = Counting {
        inner: BufWriter::with_capacity(8 << 20, file),
        n: 0,
    };
    let header_bytes = write_header(&mut w, opts, &vocab, &tensors).map_err(io_err)?;

    if opts.sparse {
        w.flush().map_err(io_err)?;
        let file = w.inner.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.set_len(header_bytes + data_bytes).map_err(io_err)?;
    } else {
        write_data(&mut w, opts, &tensors, data_bytes).map_err(io_err)?;
        w.flush().map_err(io_err)?;
    }

    Ok(SynthReport {
        path: out.to_path_buf(),
        file_bytes: header_bytes + data_bytes,
        header_bytes,
        n_tensors: tensors.len(),
        sparse: opts.sparse,
    })
}

/// Header, metadata, tensor directory and padding; returns the data section start.
fn write_header<W: Write>(
    w: &mut Counting<W>,
    opts: &SynthOptions,
    vocab: &meta::Vocab,
    tensors: &[TensorPlan],
) -> io::Result<u64> {
    crate::gguf::write::header(w, tensors.len() as u64, meta::N_KV)?;
    meta::write_metadata(w, opts.profile, opts.rule, vocab)?;
    let mut rel = 0;
    for t in tensors {
        crate::gguf::write::tensor_info(w, &t.name, &t.dims, t.ty, rel)?;
        rel += padded(t.n_bytes());
    }
    let pad = crate::gguf::write::padding(w.n, ALIGN);
    w.write_all(&vec![0u8; pad as usize])?;
    Ok(w.n)
}

fn write_data<W: Write>(
    w: &mut Counting<W>,
    opts: &SynthOptions,
    tensors: &[TensorPlan],
    total: u64,
) -> io::Result<()> {
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "synth {msg} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        ) {
            b.set_style(style);
        }
        b.set_message(opts.profile.name());
        Some(b)
    } else {
        None
    };

    let d = Dims::of(opts.profile);
    for t in tensors {
        gen::generate(t, opts.seed, d.n_embd, d.n_hc, &mut |chunk| {
            if let Some(b) = &bar {
                b.inc(chunk.len() as u64);
            }
            w.write_all(chunk)
        })?;
        let pad = crate::gguf::write::padding(t.n_bytes(), ALIGN);
        w.write_all(&[0u8; ALIGN as usize][..pad as usize])?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}
