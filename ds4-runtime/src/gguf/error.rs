//! The errors of the GGUF reader: one variant per way a file can be wrong.
//!
//! Every message is one line that names the field, key or tensor and the byte
//! offset where the problem was found, so a hostile or damaged file can be
//! located with a hex dump.

use std::path::PathBuf;

/// Everything that can go wrong opening a GGUF file or reading a metadata value.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened, stat'ed or mapped.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A parse error in a named file (wraps the other variants).
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<GgufError>,
    },

    // --- header ---------------------------------------------------------------
    /// A read ran past the end of the file.
    #[error("truncated GGUF file: {what} needs {need} bytes at byte {offset}, only {have} left")]
    Truncated {
        what: String,
        offset: u64,
        need: u64,
        have: u64,
    },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic is {found:#010x} at byte 0, expected 0x46554747 (\"GGUF\")")]
    BadMagic { found: u32 },
    /// Only GGUF v3 is read.
    #[error("unsupported GGUF version {version} at byte 4 (only version 3 is supported)")]
    UnsupportedVersion { version: u32 },
    /// A count is larger than the bytes left in the file could hold.
    #[error(
        "{field} = {count} at byte {offset} cannot fit in the {remaining} bytes left in the file"
    )]
    CountTooLarge {
        field: String,
        count: u64,
        offset: u64,
        remaining: u64,
    },

    // --- metadata -------------------------------------------------------------
    /// A string is not valid UTF-8.
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },
    /// A metadata key of length zero.
    #[error("metadata key #{index} at byte {offset} is empty")]
    EmptyKey { index: u64, offset: u64 },
    /// A key or tensor name containing a NUL byte (it could shadow another on C lookups).
    #[error("{what} {name:?} at byte {offset} contains a NUL byte")]
    NulInName {
        what: &'static str,
        name: String,
        offset: u64,
    },
    /// The same key twice.
    #[error("duplicate metadata key {key:?} at byte {offset}")]
    DuplicateKey { key: String, offset: u64 },
    /// A value type id outside 0..=12.
    #[error("metadata key {key:?}: unknown value type id {type_id} at byte {offset}")]
    UnknownValueType {
        key: String,
        type_id: u32,
        offset: u64,
    },
    /// Arrays nested deeper than [`super::MAX_ARRAY_DEPTH`].
    #[error("metadata key {key:?}: arrays nested deeper than {max} levels at byte {offset}")]
    ArrayTooDeep { key: String, max: u32, offset: u64 },
    /// A BOOL byte other than 0 or 1.
    #[error("metadata key {key:?}: bool byte {value} at byte {offset} is neither 0 nor 1")]
    BadBool { key: String, value: u8, offset: u64 },
    /// `general.alignment` present but unusable.
    #[error("general.alignment at byte {offset}: {reason}")]
    BadAlignment { reason: String, offset: u64 },

    // --- tensor directory -----------------------------------------------------
    /// A tensor name that is empty or too long.
    #[error("tensor #{index} at byte {offset}: name {reason}")]
    BadTensorName {
        index: u64,
        reason: String,
        offset: u64,
    },
    /// The same tensor name twice.
    #[error("duplicate tensor name {name:?} at byte {offset}")]
    DuplicateTensor { name: String, offset: u64 },
    /// `n_dims` outside 1..=8.
    #[error("tensor {name:?}: n_dims = {n_dims} at byte {offset}, must be 1..=8")]
    BadDimCount {
        name: String,
        n_dims: u32,
        offset: u64,
    },
    /// A dimension of size zero (rejected: no DS4 tensor is empty).
    #[error(
        "tensor {name:?}: dimension {axis} is 0 at byte {offset} (empty tensors are rejected)"
    )]
    ZeroDim {
        name: String,
        axis: usize,
        offset: u64,
    },
    /// The element count or byte size does not fit in 63 bits.
    #[error("tensor {name:?}: shape {dims:?} of type {ty} overflows (element count or byte size) at byte {offset}")]
    ShapeOverflow {
        name: String,
        dims: Vec<u64>,
        ty: String,
        offset: u64,
    },
    /// A tensor type id ggml does not define.
    #[error("tensor {name:?}: unknown ggml type id {type_id} at byte {offset}")]
    UnknownTensorType {
        name: String,
        type_id: u32,
        offset: u64,
    },
    /// `ne0` is not a whole number of blocks.
    #[error("tensor {name:?}: ne0 = {ne0} is not a multiple of the {ty} block size {block} (byte {offset})")]
    PartialBlock {
        name: String,
        ne0: u64,
        ty: String,
        block: u64,
        offset: u64,
    },
    /// A data offset that is not a multiple of the alignment.
    #[error("tensor {name:?}: data offset {rel_offset} (directory byte {offset}) is not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        name: String,
        rel_offset: u64,
        alignment: u64,
        offset: u64,
    },
    /// Tensor data outside the file.
    #[error("tensor {name:?}: data [{start}, +{n_bytes}) lies outside the {file_len}-byte file")]
    TensorPastEof {
        name: String,
        start: u64,
        n_bytes: u64,
        file_len: u64,
    },
    /// Two tensors share bytes.
    #[error(
        "tensor {name:?} at byte {start} overlaps tensor {other:?} ending at byte {other_end}"
    )]
    TensorOverlap {
        name: String,
        start: u64,
        other: String,
        other_end: u64,
    },

    // --- typed getters --------------------------------------------------------
    /// A required key is absent.
    #[error("required metadata key is missing: {key}")]
    MissingKey { key: String },
    /// A key holds another type than the consumer expects.
    #[error("metadata key {key} has type {found}, expected {expected}")]
    WrongType {
        key: String,
        found: String,
        expected: &'static str,
    },
    /// A value of the right type but outside the accepted range.
    #[error("metadata key {key}: {detail}")]
    OutOfRange { key: String, detail: String },
}

impl GgufError {
    /// The underlying error, looking through [`GgufError::InFile`].
    pub fn root(&self) -> &GgufError {
        match self {
            GgufError::InFile { source, .. } => source.root(),
            e => e,
        }
    }
}
