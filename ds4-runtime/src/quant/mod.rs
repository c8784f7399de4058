//! Quantised block formats and their dot products, in ggml's vocabulary.
//!
//! A GGUF tensor is stored as a sequence of fixed-size *blocks* along its
//! contiguous axis (`ne0`); [`GgmlType`] knows how many elements and bytes each
//! block holds (ggml's values, see `FORMAT.md` §1.5). The kernel modules below
//! each own one block format: how to dequantise a row and how to take its dot
//! product with a quantised activation.
//!
//! Each `vec_dot_ref` is a *scalar reference*: plain loops in the summation
//! order `FORMAT.md` §3.8 gives for ds4's portable C path; the tests compare it
//! with a naive f64 dequantise-and-multiply. `vec_dot` dispatches at run time to
//! the SIMD kernels of [`simd`], which return the same bits.
//!
//! Activations: Q8_0 weights meet activations quantised with [`q8_0::quantize_act`]
//! (f32 scale, ties to even); IQ2_XXS, Q2_K and Q4_K weights meet [`q8_k`]
//! activations. F16 weights meet plain f32 activations ([`f16::vec_dot_f32`]).

pub mod bf16;
pub mod f16;
pub mod fp4;
pub mod fp8;
pub mod hadamard;
pub mod iq2_xxs;
mod iq2_xxs_grid;
pub mod q2_k;
pub mod q4_k;
pub mod q8_0;
pub mod q8_k;
pub mod simd;

mod half_conv;
#[cfg(test)]
mod test_util;
pub use half_conv::{f16_round, f16_to_f32, f32_to_f16};

/// Elements per super-block of the k-quants and i-quants (`QK_K`).
pub const QK_K: usize = 256;

/// A ggml tensor storage type, by its GGUF type id.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
}

impl GgmlType {
    /// Every known type, in id order.
    pub const ALL: [GgmlType; 29] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
    ];

    /// The type with GGUF id `id`, or `None` for ids ggml does not define (4, 5, ≥ 31).
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.iter().copied().find(|t| *t as u32 == id)
    }

    /// The GGUF type id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// ggml's lower-case name (`q8_0`, `iq2_xxs`, ...).
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "f32",
            F16 => "f16",
            Q4_0 => "q4_0",
            Q4_1 => "q4_1",
            Q5_0 => "q5_0",
            Q5_1 => "q5_1",
            Q8_0 => "q8_0",
            Q8_1 => "q8_1",
            Q2_K => "q2_K",
            Q3_K => "q3_K",
            Q4_K => "q4_K",
            Q5_K => "q5_K",
            Q6_K => "q6_K",
            Q8_K => "q8_K",
            IQ2_XXS => "iq2_xxs",
            IQ2_XS => "iq2_xs",
            IQ3_XXS => "iq3_xxs",
            IQ1_S => "iq1_s",
            IQ4_NL => "iq4_nl",
            IQ3_S => "iq3_s",
            IQ2_S => "iq2_s",
            IQ4_XS => "iq4_xs",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            F64 => "f64",
            IQ1_M => "iq1_m",
            BF16 => "bf16",
        }
    }

    /// Elements per block (1 for the plain scalar types).
    pub fn block_elems(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | I8 | I16 | I32 | I64 | F64 | BF16 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | IQ4_NL => 32,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K | IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S
            | IQ3_S | IQ2_S | IQ4_XS | IQ1_M => QK_K,
        }
    }

    /// Bytes per block (ggml's values; `FORMAT.md` §1.5 notes where ds4 differs).
    pub fn block_bytes(self) -> usize {
        use GgmlType::*;
        match self {
            F32 => 4,
            F16 => 2,
            Q4_0 => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            Q8_1 => 36,
            Q2_K => 84,
            Q3_K => 110,
            Q4_K => 144,
            Q5_K => 176,
            Q6_K => 210,
            Q8_K => 292,
            IQ2_XXS => 66,
            IQ2_XS => 74,
            IQ3_XXS => 98,
            IQ1_S => 50,
            IQ4_NL => 18,
            IQ3_S => 110,
            IQ2_S => 82,
            IQ4_XS => 136,
            I8 => 1,
            I16 => 2,
            I32 => 4,
            I64 => 8,
            F64 => 8,
            IQ1_M => 56,
            BF16 => 2,
        }
    }

    /// Bytes of a row of `n` elements; `n` must be a multiple of [`Self::block_elems`].
    pub fn row_bytes(self, n: usize) -> usize {
        debug_assert_eq!(
            n % self.block_elems(),
            0,
            "{}: row of {n} elements",
            self.name()
        );
        n / self.block_elems() * self.block_bytes()
    }

    /// Bytes of `elements` elements, overflow-checked; `None` if `elements` is not
    /// a whole number of blocks or the size does not fit in a u64.
    pub fn checked_bytes(self, elements: u64) -> Option<u64> {
        let be = self.block_elems() as u64;
        if !elements.is_multiple_of(be) {
            return None;
        }
        (elements / be).checked_mul(self.block_bytes() as u64)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_none() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert!(t.block_elems() > 0 && t.block_bytes() > 0);
        }
        for id in [4, 5, 31, 32, 1000, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None);
        }
    }

    #[test]
    fn expert_row_sizes_match_format_md() {
        assert_eq!(GgmlType::IQ2_XXS.row_bytes(4096), 1056);
        assert_eq!(GgmlType::Q2_K.row_bytes(2048), 672);
        assert_eq!(GgmlType::Q4_K.row_bytes(4096), 2304);
        assert_eq!(GgmlType::Q8_0.row_bytes(4096), 4352);
        assert_eq!(
            GgmlType::IQ2_XXS.checked_bytes(4096 * 2048 * 256),
            Some(553_648_128)
        );
        assert_eq!(
            GgmlType::Q2_K.checked_bytes(2048 * 4096 * 256),
            Some(704_643_072)
        );
        assert_eq!(GgmlType::Q8_0.checked_bytes(31), None);
        assert_eq!(GgmlType::F32.checked_bytes(u64::MAX), None);
    }
}
