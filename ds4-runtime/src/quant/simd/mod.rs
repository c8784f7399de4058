//! Run-time ISA dispatch for the quantised dot products.
//!
//! Each block format keeps its scalar reference (`vec_dot_ref`); its `vec_dot`
//! asks [`active`] which instruction set this machine offers and calls the
//! matching kernel of [`x86`] (AArch64 has no NEON kernels yet and runs the
//! references). The SIMD kernels compute every
//! integer block sum exactly and then combine the blocks in f32 in the same
//! order, with the same operations, as the reference, so they return the same
//! bits as the reference for every input the activation quantisers produce
//! (quants in −127..=127; see each kernel's note). Tests force every path that
//! the machine offers ([`Isa::available`]).
//!
//! `DS4_ISA=scalar|avx2|avx512vnni|neondot` overrides the choice (for
//! benchmarks); an ISA the machine lacks falls back to the detected one.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "x86_64")]
pub mod q8_0_x16;
#[cfg(target_arch = "x86_64")]
pub mod rows16;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// An instruction-set path of the dot-product kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The scalar references.
    Scalar = 1,
    /// x86-64 AVX2 (with FMA and F16C).
    Avx2 = 2,
    /// x86-64 AVX-512 F/BW/VL with VNNI (256-bit vectors, mask registers, `vpdpbusd`).
    Avx512Vnni = 3,
    /// AArch64 NEON with the dot-product extension (`sdot`); not implemented yet,
    /// so never [`Isa::supported`].
    NeonDot = 4,
}

impl Isa {
    /// Whether this machine can run the path.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            // The NEON kernels are not written yet: AArch64 runs the references.
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every path this machine can run, slowest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni, Isa::NeonDot]
            .into_iter()
            .filter(|i| i.supported())
            .collect()
    }

    /// The `DS4_ISA` name of the path.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::NeonDot => "neondot",
        }
    }

    /// The path `DS4_ISA` names: `Ok(None)` when unset, an error naming the choices when
    /// the name is unknown or this CPU lacks it.
    pub fn from_env() -> Result<Option<Isa>, String> {
        let Ok(v) = std::env::var("DS4_ISA") else {
            return Ok(None);
        };
        let all = [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni, Isa::NeonDot];
        let names = |v: &[Isa]| v.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ");
        let Some(&isa) = all.iter().find(|i| i.name() == v.trim()) else {
            return Err(format!(
                "DS4_ISA={v} is not one of {}; fix or unset it",
                names(&all)
            ));
        };
        if !isa.supported() {
            return Err(format!(
                "DS4_ISA={v}: this CPU cannot run it (it can: {}); choose one of those or unset it",
                names(&Isa::available())
            ));
        }
        Ok(Some(isa))
    }

    /// The best path of this machine, or the one `DS4_ISA` names when it is valid
    /// (the binary refuses an invalid one at start, [`Isa::from_env`]).
    pub fn detect() -> Isa {
        let best = *Isa::available().last().unwrap_or(&Isa::Scalar);
        Isa::from_env().ok().flatten().unwrap_or(best)
    }

    fn from_u8(v: u8) -> Isa {
        match v {
            2 => Isa::Avx2,
            3 => Isa::Avx512Vnni,
            4 => Isa::NeonDot,
            _ => Isa::Scalar,
        }
    }
}

static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The path the dispatching kernels use (detected once).
#[inline]
pub fn active() -> Isa {
    match ACTIVE.load(Ordering::Relaxed) {
        0 => {
            let isa = Isa::detect();
            ACTIVE.store(isa as u8, Ordering::Relaxed);
            isa
        }
        v => Isa::from_u8(v),
    }
}
