//! The bounded cursor and the single pass that validates a whole GGUF file.
//!
//! Every count and length is checked against the bytes left in the file before
//! anything is allocated, every size is computed with checked u64 arithmetic,
//! and bounds checks are written as subtractions so they cannot wrap. The pass
//! touches each header byte once, so its cost is linear in the header size.

use std::collections::HashMap;

use super::error::GgufError;
use super::value::{Array, Value, ValueType};
use super::{
    TensorInfo, DEFAULT_ALIGNMENT, MAX_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS, MAX_NAME_LEN,
};
use crate::quant::GgmlType;

/// `GGUF` read as a little-endian u32.
pub const MAGIC: u32 = 0x4655_4747;

/// Smallest encoding of one metadata entry: key length, 1 key byte, type, 1 value byte.
const MIN_KV_BYTES: u64 = 8 + 1 + 4 + 1;
/// Smallest encoding of one tensor-info entry: name length, 1 name byte, n_dims, 1 dim, type, offset.
const MIN_TENSOR_BYTES: u64 = 8 + 1 + 4 + 8 + 4 + 8;

/// Everything the header describes.
pub(crate) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub data_start: u64,
    pub metadata: Vec<(String, Value)>,
    pub key_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
}

/// A read position in the file that never reads past its end.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Cursor<'a> {
        Cursor { buf, pos }
    }

    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    pub fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    pub fn bytes(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos(),
                need: n,
                have: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let b = self.bytes(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length, then that many bytes, which must be UTF-8.
    pub fn string(&mut self, what: &dyn Fn() -> String) -> Result<&'a str, GgufError> {
        let len_at = self.pos();
        let len = self.u64(&|| format!("length of {}", what()))?;
        let at = self.pos();
        let b = self.bytes(len, &|| {
            format!("{} (declared length {len} at byte {len_at})", what())
        })?;
        std::str::from_utf8(b).map_err(|_| GgufError::InvalidUtf8 {
            what: what(),
            offset: at,
        })
    }
}

/// Parses and validates the header, metadata and tensor directory of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, GgufError> {
    let mut c = Cursor::new(buf, 0);

    let magic = c.u32(&|| "magic".into())?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32(&|| "version".into())?;
    if version != 3 {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let n_tensors = c.u64(&|| "n_tensors".into())?;
    let n_kv = c.u64(&|| "n_kv".into())?;

    if n_tensors > c.remaining() / MIN_TENSOR_BYTES {
        return Err(GgufError::CountTooLarge {
            field: "n_tensors".into(),
            count: n_tensors,
            offset: 8,
            remaining: c.remaining(),
        });
    }

    let (metadata, key_index, alignment) = parse_metadata(&mut c, n_kv, n_tensors)?;
    let (mut tensors, tensor_index, info_offsets) = parse_tensor_infos(&mut c, n_tensors)?;

    let data_start = align_up(c.pos(), alignment).ok_or_else(|| GgufError::BadAlignment {
        reason: format!(
            "aligning the data section start {} to {alignment} overflows",
            c.pos()
        ),
        offset: c.pos(),
    })?;
    place_tensors(
        &mut tensors,
        &info_offsets,
        data_start,
        alignment,
        buf.len() as u64,
    )?;

    Ok(Parsed {
        version,
        alignment,
        data_start,
        metadata,
        key_index,
        tensors,
        tensor_index,
    })
}

/// `v` rounded up to a multiple of `a` (a power of two), or `None` on overflow.
pub(crate) fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

type Metadata = (Vec<(String, Value)>, HashMap<String, usize>, u64);

fn parse_metadata(c: &mut Cursor, n_kv: u64, n_tensors: u64) -> Result<Metadata, GgufError> {
    // Every entry takes at least MIN_KV_BYTES, and the tensor infos need their room too
    // (n_tensors was bounded by the caller, so the product cannot overflow).
    let room = c.remaining().saturating_sub(n_tensors * MIN_TENSOR_BYTES);
    if n_kv > room / MIN_KV_BYTES {
        return Err(GgufError::CountTooLarge {
            field: "n_kv".into(),
            count: n_kv,
            offset: 16,
            remaining: c.remaining(),
        });
    }

    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut index = HashMap::with_capacity(n_kv as usize);
    let mut alignment = DEFAULT_ALIGNMENT;

    for i in 0..n_kv {
        let key_at = c.pos();
        let key = c.string(&|| format!("metadata key #{i}"))?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey {
                index: i,
                offset: key_at,
            });
        }
        if key.contains('\0') {
            return Err(GgufError::NulInName {
                what: "metadata key",
                name: key.into(),
                offset: key_at,
            });
        }
        if index.contains_key(key) {
            return Err(GgufError::DuplicateKey {
                key: key.into(),
                offset: key_at,
            });
        }

        let type_at = c.pos();
        let type_id = c.u32(&|| format!("value type of {key:?}"))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.into(),
            type_id,
            offset: type_at,
        })?;
        let value_at = c.pos();
        let value = read_value(c, key, ty, 1)?;

        if key == "general.alignment" {
            alignment = check_alignment(&value, value_at)?;
        }
        index.insert(key.to_string(), metadata.len());
        metadata.push((key.to_string(), value));
    }
    Ok((metadata, index, alignment))
}

fn check_alignment(value: &Value, offset: u64) -> Result<u64, GgufError> {
    let reason = match value {
        Value::U32(0) => "value is 0".to_string(),
        Value::U32(a) if !a.is_power_of_two() => format!("{a} is not a power of two"),
        Value::U32(a) if *a as u64 > MAX_ALIGNMENT => {
            format!("{a} exceeds the cap of {MAX_ALIGNMENT}")
        }
        Value::U32(a) => return Ok(*a as u64),
        v => format!("has type {}, expected UINT32", v.type_name()),
    };
    Err(GgufError::BadAlignment { reason, offset })
}

fn read_value(c: &mut Cursor, key: &str, ty: ValueType, depth: u32) -> Result<Value, GgufError> {
    let what = || format!("value of {key:?}");
    Ok(match ty {
        ValueType::U8 => Value::U8(c.u8(&what)?),
        ValueType::I8 => Value::I8(c.u8(&what)? as i8),
        ValueType::U16 => Value::U16(u16::from_le_bytes(c.array(&what)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(c.array(&what)?)),
        ValueType::U32 => Value::U32(c.u32(&what)?),
        ValueType::I32 => Value::I32(c.u32(&what)? as i32),
        ValueType::F32 => Value::F32(f32::from_bits(c.u32(&what)?)),
        ValueType::U64 => Value::U64(c.u64(&what)?),
        ValueType::I64 => Value::I64(c.u64(&what)? as i64),
        ValueType::F64 => Value::F64(f64::from_bits(c.u64(&what)?)),
        ValueType::Bool => {
            let at = c.pos();
            match c.u8(&what)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                value => {
                    return Err(GgufError::BadBool {
                        key: key.into(),
                        value,
                        offset: at,
                    })
                }
            }
        }
        ValueType::String => Value::String(c.string(&what)?.to_string()),
        ValueType::Array => Value::Array(walk_array(c, key, depth)?),
    })
}

/// Validates an array (recursively, up to [`MAX_ARRAY_DEPTH`]) and returns its extent.
fn walk_array(c: &mut Cursor, key: &str, depth: u32) -> Result<Array, GgufError> {
    let at = c.pos();
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::ArrayTooDeep {
            key: key.into(),
            max: MAX_ARRAY_DEPTH,
            offset: at,
        });
    }
    let type_id = c.u32(&|| format!("element type of array {key:?}"))?;
    let elem = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
        key: key.into(),
        type_id,
        offset: at,
    })?;
    let len_at = c.pos();
    let len = c.u64(&|| format!("length of array {key:?}"))?;

    let min_elem = elem
        .fixed_size()
        .unwrap_or(if elem == ValueType::String { 8 } else { 12 });
    if len > c.remaining() / min_elem {
        return Err(GgufError::CountTooLarge {
            field: format!("length of array {key:?}"),
            count: len,
            offset: len_at,
            remaining: c.remaining(),
        });
    }

    let start = c.pos();
    match elem {
        ValueType::String => {
            for i in 0..len {
                c.string(&|| format!("element {i} of array {key:?}"))?;
            }
        }
        ValueType::Array => {
            for _ in 0..len {
                walk_array(c, key, depth + 1)?;
            }
        }
        ValueType::Bool => {
            for _ in 0..len {
                read_value(c, key, ValueType::Bool, depth)?;
            }
        }
        _ => {
            // len · size <= remaining was checked above.
            c.bytes(len * min_elem, &|| format!("elements of array {key:?}"))?;
        }
    }
    Ok(Array {
        elem,
        len,
        start,
        end: c.pos(),
    })
}

/// Tensor infos, name index, and the file offset of each tensor's data-offset field.
type Directory = (Vec<TensorInfo>, HashMap<String, usize>, Vec<u64>);

fn parse_tensor_infos(c: &mut Cursor, n_tensors: u64) -> Result<Directory, GgufError> {
    if n_tensors > c.remaining() / MIN_TENSOR_BYTES {
        return Err(GgufError::CountTooLarge {
            field: "n_tensors".into(),
            count: n_tensors,
            offset: 8,
            remaining: c.remaining(),
        });
    }

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut index = HashMap::with_capacity(n_tensors as usize);
    let mut info_offsets = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let at = c.pos();
        let name = c.string(&|| format!("name of tensor #{i}"))?;
        if name.is_empty() || name.len() >= MAX_NAME_LEN {
            let reason = format!("length {} is outside 1..{MAX_NAME_LEN}", name.len());
            return Err(GgufError::BadTensorName {
                index: i,
                reason,
                offset: at,
            });
        }
        if name.contains('\0') {
            return Err(GgufError::NulInName {
                what: "tensor name",
                name: name.into(),
                offset: at,
            });
        }
        if index.contains_key(name) {
            return Err(GgufError::DuplicateTensor {
                name: name.into(),
                offset: at,
            });
        }

        let (t, off_at) = read_tensor_info(c, name)?;
        index.insert(name.to_string(), tensors.len());
        tensors.push(t);
        info_offsets.push(off_at);
    }
    Ok((tensors, index, info_offsets))
}

/// One tensor info after its name; also returns where its offset field lies.
fn read_tensor_info(c: &mut Cursor, name: &str) -> Result<(TensorInfo, u64), GgufError> {
    let dims_at = c.pos();
    let n_dims = c.u32(&|| format!("n_dims of tensor {name:?}"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::BadDimCount {
            name: name.into(),
            n_dims,
            offset: dims_at,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for axis in 0..n_dims as usize {
        let at = c.pos();
        let d = c.u64(&|| format!("dimension {axis} of tensor {name:?}"))?;
        if d == 0 {
            return Err(GgufError::ZeroDim {
                name: name.into(),
                axis,
                offset: at,
            });
        }
        dims.push(d);
    }

    let type_at = c.pos();
    let type_id = c.u32(&|| format!("type of tensor {name:?}"))?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        name: name.into(),
        type_id,
        offset: type_at,
    })?;

    let overflow = || GgufError::ShapeOverflow {
        name: name.into(),
        dims: dims.clone(),
        ty: ty.name().into(),
        offset: dims_at,
    };
    let elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let block = ty.block_elems() as u64;
    if dims[0] % block != 0 {
        return Err(GgufError::PartialBlock {
            name: name.into(),
            ne0: dims[0],
            ty: ty.name().into(),
            block,
            offset: dims_at,
        });
    }
    let n_bytes = ty
        .checked_bytes(elements)
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(overflow)?;

    let off_at = c.pos();
    let rel = c.u64(&|| format!("data offset of tensor {name:?}"))?;
    // The absolute offset is filled in by `place_tensors`; keep the relative one for now.
    Ok((
        TensorInfo {
            name: name.into(),
            dims,
            ty,
            offset: rel,
            n_bytes,
        },
        off_at,
    ))
}

/// Turns relative offsets into absolute ones and checks alignment, bounds and overlap.
fn place_tensors(
    tensors: &mut [TensorInfo],
    info_offsets: &[u64],
    data_start: u64,
    alignment: u64,
    file_len: u64,
) -> Result<(), GgufError> {
    for (t, &info_at) in tensors.iter_mut().zip(info_offsets) {
        let rel = t.offset;
        if rel % alignment != 0 {
            return Err(GgufError::MisalignedTensor {
                name: t.name.clone(),
                rel_offset: rel,
                alignment,
                offset: info_at,
            });
        }
        let past_eof = || GgufError::TensorPastEof {
            name: t.name.clone(),
            start: data_start.saturating_add(rel),
            n_bytes: t.n_bytes,
            file_len,
        };
        let start = data_start.checked_add(rel).ok_or_else(past_eof)?;
        if start > file_len || t.n_bytes > file_len - start {
            return Err(past_eof());
        }
        t.offset = start;
    }

    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| tensors[i].offset);
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        // Both ends lie inside the file, so this sum cannot overflow.
        let a_end = a.offset + a.n_bytes;
        if b.offset < a_end {
            return Err(GgufError::TensorOverlap {
                name: b.name.clone(),
                start: b.offset,
                other: a.name.clone(),
                other_end: a_end,
            });
        }
    }
    Ok(())
}
