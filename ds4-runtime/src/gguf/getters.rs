//! Typed metadata getters, strict in the way ds4 is (`FORMAT.md` §1.2, §2.2).
//!
//! A getter fails with [`GgufError::MissingKey`] when the key is absent and with
//! [`GgufError::WrongType`] ("key K has type X, expected Y") when it is stored
//! with a type the consumer does not accept. Arrays are decoded from the mapped
//! file on demand; string arrays borrow from the mapping.

use super::parse::Cursor;
use super::{Array, GgufError, GgufFile, Value, ValueType};

impl GgufFile {
    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key)
            .ok_or_else(|| GgufError::MissingKey { key: key.into() })
    }

    fn array_of(
        &self,
        key: &str,
        accept: &[ValueType],
        expected: &'static str,
    ) -> Result<&Array, GgufError> {
        match self.require(key)? {
            Value::Array(a) if accept.contains(&a.elem) => Ok(a),
            v => Err(wrong(key, v, expected)),
        }
    }

    /// A UINT32 value (only UINT32 is accepted).
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        match self.require(key)? {
            Value::U32(v) => Ok(*v),
            v => Err(wrong(key, v, "UINT32")),
        }
    }

    /// A UINT64 or UINT32 value (ds4's `required_u64`).
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        match self.require(key)? {
            Value::U64(v) => Ok(*v),
            Value::U32(v) => Ok(*v as u64),
            v => Err(wrong(key, v, "UINT64 or UINT32")),
        }
    }

    /// A FLOAT32, FLOAT64, UINT32 or INT32 value as f32 (ds4's `required_f32`).
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.require(key)? {
            Value::F32(v) => Ok(*v),
            Value::F64(v) => Ok(*v as f32),
            Value::U32(v) => Ok(*v as f32),
            Value::I32(v) => Ok(*v as f32),
            v => Err(wrong(key, v, "FLOAT32, FLOAT64, UINT32 or INT32")),
        }
    }

    /// A BOOL value.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            Value::Bool(v) => Ok(*v),
            v => Err(wrong(key, v, "BOOL")),
        }
    }

    /// A STRING value.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            v => Err(wrong(key, v, "STRING")),
        }
    }

    /// An ARRAY of UINT32, or of INT32 with no negative element (`compress_ratios`).
    pub fn get_u32_array(&self, key: &str) -> Result<Vec<u32>, GgufError> {
        let a = self.array_of(
            key,
            &[ValueType::U32, ValueType::I32],
            "ARRAY of UINT32 or INT32",
        )?;
        let raw = self.fixed_elems(a, 4);
        let mut out = Vec::with_capacity(a.len as usize);
        for (i, b) in raw.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if a.elem == ValueType::I32 && (v as i32) < 0 {
                let detail = format!("element {i} is negative ({})", v as i32);
                return Err(GgufError::OutOfRange {
                    key: key.into(),
                    detail,
                });
            }
            out.push(v);
        }
        Ok(out)
    }

    /// An ARRAY of INT32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        let a = self.array_of(key, &[ValueType::I32], "ARRAY of INT32")?;
        let raw = self.fixed_elems(a, 4);
        Ok(raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// An ARRAY of FLOAT32 or FLOAT64, as f32.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        let a = self.array_of(
            key,
            &[ValueType::F32, ValueType::F64],
            "ARRAY of FLOAT32 or FLOAT64",
        )?;
        Ok(if a.elem == ValueType::F32 {
            let raw = self.fixed_elems(a, 4);
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            let raw = self.fixed_elems(a, 8);
            raw.chunks_exact(8)
                .map(|b| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(b);
                    f64::from_le_bytes(w) as f32
                })
                .collect()
        })
    }

    /// An ARRAY of STRING, borrowed from the mapping.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        let a = self.array_of(key, &[ValueType::String], "ARRAY of STRING")?;
        let mut c = Cursor::new(&self.bytes()[..a.end as usize], a.start as usize);
        let mut out = Vec::with_capacity(a.len as usize);
        for i in 0..a.len {
            out.push(c.string(&|| format!("element {i} of array {key:?}"))?);
        }
        Ok(out)
    }

    /// Every element of an array of this file, decoded (nested arrays stay [`Value::Array`]).
    pub fn array_values(&self, a: &Array) -> Result<Vec<Value>, GgufError> {
        let mut c = Cursor::new(&self.bytes()[..a.end as usize], a.start as usize);
        let mut out = Vec::with_capacity(a.len as usize);
        for i in 0..a.len {
            let what = || format!("array element {i}");
            let at = c.pos();
            out.push(match a.elem {
                ValueType::U8 => Value::U8(c.u8(&what)?),
                ValueType::I8 => Value::I8(c.u8(&what)? as i8),
                ValueType::U16 => Value::U16(u16::from_le_bytes(two(c.bytes(2, &what)?))),
                ValueType::I16 => Value::I16(i16::from_le_bytes(two(c.bytes(2, &what)?))),
                ValueType::U32 => Value::U32(c.u32(&what)?),
                ValueType::I32 => Value::I32(c.u32(&what)? as i32),
                ValueType::F32 => Value::F32(f32::from_bits(c.u32(&what)?)),
                ValueType::U64 => Value::U64(c.u64(&what)?),
                ValueType::I64 => Value::I64(c.u64(&what)? as i64),
                ValueType::F64 => Value::F64(f64::from_bits(c.u64(&what)?)),
                ValueType::Bool => Value::Bool(c.u8(&what)? != 0),
                ValueType::String => Value::String(c.string(&what)?.to_string()),
                ValueType::Array => {
                    let elem_id = c.u32(&what)?;
                    let elem = ValueType::from_id(elem_id).ok_or(GgufError::UnknownValueType {
                        key: "(nested array)".into(),
                        type_id: elem_id,
                        offset: at,
                    })?;
                    let len = c.u64(&what)?;
                    let start = c.pos();
                    skip_elems(&mut c, elem, len)?;
                    Value::Array(Array {
                        elem,
                        len,
                        start,
                        end: c.pos(),
                    })
                }
            });
        }
        Ok(out)
    }

    /// The raw bytes of a fixed-size-element array (validated at open).
    fn fixed_elems(&self, a: &Array, size: u64) -> &[u8] {
        let end = a.start + a.len * size;
        &self.bytes()[a.start as usize..end as usize]
    }
}

fn two(b: &[u8]) -> [u8; 2] {
    [b[0], b[1]]
}

/// Skips `len` elements of type `elem` (already validated at open).
fn skip_elems(c: &mut Cursor, elem: ValueType, len: u64) -> Result<(), GgufError> {
    let what = || "nested array element".to_string();
    match elem.fixed_size() {
        Some(size) => {
            c.bytes(len.saturating_mul(size), &what)?;
        }
        None if elem == ValueType::String => {
            for _ in 0..len {
                c.string(&what)?;
            }
        }
        None => {
            for _ in 0..len {
                let id = c.u32(&what)?;
                let inner = ValueType::from_id(id).unwrap_or(ValueType::U8);
                let n = c.u64(&what)?;
                skip_elems(c, inner, n)?;
            }
        }
    }
    Ok(())
}

fn wrong(key: &str, v: &Value, expected: &'static str) -> GgufError {
    GgufError::WrongType {
        key: key.into(),
        found: v.type_name(),
        expected,
    }
}
