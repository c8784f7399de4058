//! GGUF v3 reader: a memory-mapped model file, its metadata and its tensors.
//!
//! [`GgufFile::open`] maps the file read-only and validates the whole header in
//! one pass (`parse`): magic and version, every metadata entry, the tensor
//! directory, and where every tensor's bytes lie. After that the file is
//! trusted: [`GgufFile::tensor_data`] hands out zero-copy slices of the mapping
//! and cannot fail.
//!
//! The reader is built to survive hostile files (`GGUF_SECURITY.md`): every
//! count and length is bounded by the bytes left in the file before anything is
//! allocated, sizes use checked arithmetic, and each way a file can be wrong is
//! its own [`GgufError`] variant naming the key or tensor and the byte offset.
//! Policy choices, stricter than ds4 where ds4 is silent:
//! * only version 3; BOOL bytes must be 0 or 1; keys and tensor names must be
//!   non-empty UTF-8 without NUL; duplicates of either are rejected;
//! * arrays may nest (arrays of arrays) up to [`MAX_ARRAY_DEPTH`] levels;
//! * `n_dims` must be 1..=[`MAX_DIMS`] (a 0-dim scalar is rejected, no DS4 tensor is
//!   one) and every dimension non-zero (no empty tensors);
//! * `ne0` must be a whole number of blocks; offsets must be multiples of the
//!   alignment; tensor data must lie inside the file and tensors must not overlap;
//! * `general.alignment`, when present, must be a UINT32 power of two in
//!   1..=[`MAX_ALIGNMENT`] (ds4 silently ignores a bad one; we reject it).
//!
//! Typed getters follow ds4's strictness (`FORMAT.md` §1.2, §2.2): `get_u32`
//! accepts only UINT32, while `get_f32` accepts FLOAT32, FLOAT64, UINT32 and
//! INT32 like ds4's `required_f32`. Binding a model's required tensors lives in
//! [`bind`].

mod bind_impl;
mod error;
mod getters;
mod parse;
mod value;
pub mod write;

use std::collections::HashMap;
use std::path::Path;

pub use bind_impl::{bind, extra_tensors, BindError, BindProblem, Required};
pub use error::GgufError;
pub use value::{Array, Value, ValueType};

use crate::quant::GgmlType;

/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest `general.alignment` accepted (1 MiB).
pub const MAX_ALIGNMENT: u64 = 1 << 20;
/// Deepest nesting of arrays accepted (a plain array is depth 1).
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// Largest `n_dims` accepted.
pub const MAX_DIMS: u32 = 8;
/// Tensor names must be shorter than this many bytes (ggml's `GGML_MAX_NAME`).
pub const MAX_NAME_LEN: usize = 64;

/// One entry of the tensor directory.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q_a.weight`.
    pub name: String,
    /// Dimensions in GGUF order (`ne0` first, the contiguous axis).
    pub dims: Vec<u64>,
    /// Storage type.
    pub ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (the product of `dims`; validated not to overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes of one row of `ne0` elements.
    pub fn row_bytes(&self) -> u64 {
        self.dims[0] / self.ty.block_elems() as u64 * self.ty.block_bytes() as u64
    }

    /// Number of rows (`n_elements / ne0`).
    pub fn n_rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An open, validated GGUF file.
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl GgufFile {
    /// Maps `path` read-only and validates it.
    ///
    /// The mapping assumes the file is not modified while open (as every
    /// mmap-based model loader does); a concurrent writer could change tensor
    /// bytes under us but cannot break the header checks already done.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Stat first: opening a FIFO would block, and mapping a directory fails obscurely.
        let md = std::fs::metadata(path).map_err(io)?;
        if !md.is_file() {
            let what = if md.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return Err(io(std::io::Error::other(format!(
                "is {what}; give the path of a GGUF file"
            ))));
        }
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();

        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: read-only private use of the mapping; see the doc comment above.
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        GgufFile::from_backing(bytes).map_err(|e| GgufError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Validates an in-memory GGUF image (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::from_backing(Bytes::Owned(bytes))
    }

    fn from_backing(bytes: Bytes) -> Result<GgufFile, GgufError> {
        let p = parse::parse(bytes.as_slice())?;
        Ok(GgufFile {
            bytes,
            version: p.version,
            alignment: p.alignment,
            data_start: p.data_start,
            metadata: p.metadata,
            key_index: p.key_index,
            tensors: p.tensors,
            tensor_index: p.tensor_index,
        })
    }

    /// GGUF version (always 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Tensor data alignment (`general.alignment` or 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset of the tensor data section.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// File size in bytes.
    pub fn file_len(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// All metadata entries in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The tensor directory in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index(name).map(|i| &self.tensors[i])
    }

    /// Index into [`Self::tensors`] of the tensor called `name`.
    pub fn tensor_index(&self, name: &str) -> Option<usize> {
        self.tensor_index.get(name).copied()
    }

    /// The bytes of a tensor of this file, zero-copy.
    ///
    /// # Panics
    /// If `t` does not come from this file's directory (its extent is then unchecked).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        &self.bytes.as_slice()[t.offset as usize..(t.offset + t.n_bytes) as usize]
    }

    /// An F32 tensor as `&[f32]`, zero-copy; `None` if `t` is not F32 or its
    /// data is not 4-byte aligned (only possible with `general.alignment` < 4).
    pub fn tensor_f32(&self, t: &TensorInfo) -> Option<&[f32]> {
        (t.ty == GgmlType::F32).then(|| bytemuck::try_cast_slice(self.tensor_data(t)).ok())?
    }

    /// An I32 tensor as `&[i32]`, zero-copy, with the same conditions as [`Self::tensor_f32`].
    pub fn tensor_i32(&self, t: &TensorInfo) -> Option<&[i32]> {
        (t.ty == GgmlType::I32).then(|| bytemuck::try_cast_slice(self.tensor_data(t)).ok())?
    }

    /// The whole file image.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}
