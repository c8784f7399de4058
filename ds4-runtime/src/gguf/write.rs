//! A minimal GGUF v3 writer: the encoding primitives and an in-memory builder.
//!
//! `synth` streams multi-gigabyte files through the primitives; tests, fuzz
//! seeds and tools use [`Builder`], which lays out a small file with padding
//! and offsets exactly as `SYNTH.md` §3 describes.

use std::io::{self, Write};

use crate::quant::GgmlType;

use super::ValueType;

/// Writes the 24-byte header.
pub fn header(w: &mut impl Write, n_tensors: u64, n_kv: u64) -> io::Result<()> {
    w.write_all(&super::parse::MAGIC.to_le_bytes())?;
    w.write_all(&3u32.to_le_bytes())?;
    w.write_all(&n_tensors.to_le_bytes())?;
    w.write_all(&n_kv.to_le_bytes())
}

/// Writes a GGUF string (u64 length + bytes).
pub fn string(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn kv_head(w: &mut impl Write, key: &str, ty: ValueType) -> io::Result<()> {
    string(w, key)?;
    w.write_all(&(ty as u32).to_le_bytes())
}

/// Writes a UINT32 entry.
pub fn kv_u32(w: &mut impl Write, key: &str, v: u32) -> io::Result<()> {
    kv_head(w, key, ValueType::U32)?;
    w.write_all(&v.to_le_bytes())
}

/// Writes an INT32 entry.
pub fn kv_i32(w: &mut impl Write, key: &str, v: i32) -> io::Result<()> {
    kv_head(w, key, ValueType::I32)?;
    w.write_all(&v.to_le_bytes())
}

/// Writes a UINT64 entry.
pub fn kv_u64(w: &mut impl Write, key: &str, v: u64) -> io::Result<()> {
    kv_head(w, key, ValueType::U64)?;
    w.write_all(&v.to_le_bytes())
}

/// Writes a FLOAT32 entry.
pub fn kv_f32(w: &mut impl Write, key: &str, v: f32) -> io::Result<()> {
    kv_head(w, key, ValueType::F32)?;
    w.write_all(&v.to_le_bytes())
}

/// Writes a BOOL entry.
pub fn kv_bool(w: &mut impl Write, key: &str, v: bool) -> io::Result<()> {
    kv_head(w, key, ValueType::Bool)?;
    w.write_all(&[v as u8])
}

/// Writes a STRING entry.
pub fn kv_str(w: &mut impl Write, key: &str, v: &str) -> io::Result<()> {
    kv_head(w, key, ValueType::String)?;
    string(w, v)
}

fn array_head(w: &mut impl Write, key: &str, elem: ValueType, len: usize) -> io::Result<()> {
    kv_head(w, key, ValueType::Array)?;
    w.write_all(&(elem as u32).to_le_bytes())?;
    w.write_all(&(len as u64).to_le_bytes())
}

/// Writes an ARRAY of UINT32 entry.
pub fn kv_array_u32(w: &mut impl Write, key: &str, v: &[u32]) -> io::Result<()> {
    array_head(w, key, ValueType::U32, v.len())?;
    v.iter().try_for_each(|x| w.write_all(&x.to_le_bytes()))
}

/// Writes an ARRAY of INT32 entry.
pub fn kv_array_i32(w: &mut impl Write, key: &str, v: &[i32]) -> io::Result<()> {
    array_head(w, key, ValueType::I32, v.len())?;
    v.iter().try_for_each(|x| w.write_all(&x.to_le_bytes()))
}

/// Writes an ARRAY of FLOAT32 entry.
pub fn kv_array_f32(w: &mut impl Write, key: &str, v: &[f32]) -> io::Result<()> {
    array_head(w, key, ValueType::F32, v.len())?;
    v.iter().try_for_each(|x| w.write_all(&x.to_le_bytes()))
}

/// Writes an ARRAY of STRING entry.
pub fn kv_array_str<S: AsRef<str>>(w: &mut impl Write, key: &str, v: &[S]) -> io::Result<()> {
    array_head(w, key, ValueType::String, v.len())?;
    v.iter().try_for_each(|s| string(w, s.as_ref()))
}

/// Writes one tensor-info record.
pub fn tensor_info(
    w: &mut impl Write,
    name: &str,
    dims: &[u64],
    ty: GgmlType,
    rel_offset: u64,
) -> io::Result<()> {
    string(w, name)?;
    w.write_all(&(dims.len() as u32).to_le_bytes())?;
    dims.iter()
        .try_for_each(|d| w.write_all(&d.to_le_bytes()))?;
    w.write_all(&ty.id().to_le_bytes())?;
    w.write_all(&rel_offset.to_le_bytes())
}

/// Bytes of zero padding that bring `pos` to a multiple of `align`.
pub fn padding(pos: u64, align: u64) -> u64 {
    (align - pos % align) % align
}

/// Builds a small GGUF image in memory.
#[derive(Default)]
pub struct Builder {
    n_kv: u64,
    kv: Vec<u8>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
    alignment: Option<u32>,
}

impl Builder {
    /// An empty file description.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Appends a metadata entry written by one of the `kv_*` functions.
    pub fn kv(mut self, f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> Builder {
        // Writing into a Vec cannot fail.
        let _ = f(&mut self.kv);
        self.n_kv += 1;
        self
    }

    /// Appends a `general.alignment` UINT32 entry and lays tensors out with it.
    pub fn alignment(mut self, a: u32) -> Builder {
        self = self.kv(|w| kv_u32(w, "general.alignment", a));
        self.alignment = Some(a);
        self
    }

    /// Appends a tensor with its data bytes.
    pub fn tensor(mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> Builder {
        self.tensors.push((name.into(), dims.to_vec(), ty, data));
        self
    }

    /// The finished file image.
    pub fn build(&self) -> Vec<u8> {
        let align = self.alignment.unwrap_or(32).max(1) as u64;
        let mut out = Vec::new();
        let _ = header(&mut out, self.tensors.len() as u64, self.n_kv);
        out.extend_from_slice(&self.kv);

        let mut rel = 0u64;
        for (name, dims, ty, data) in &self.tensors {
            let _ = tensor_info(&mut out, name, dims, *ty, rel);
            rel += data.len() as u64 + padding(data.len() as u64, align);
        }
        out.resize(out.len() + padding(out.len() as u64, align) as usize, 0);
        for (_, _, _, data) in &self.tensors {
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64, align) as usize, 0);
        }
        out
    }
}
