//! The counter-based PRNG of `SYNTH.md` §5 and its integer primitives.
//!
//! Every tensor field has a label; `word(label, i)` is the i-th output of a
//! SplitMix64 generator seeded with `FNV1a64(label) ^ global_seed`. Because a
//! word is addressed by its index, any element can be generated independently
//! and masks never shift the stream.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    })
}

/// SplitMix64's output function.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The word stream of one label.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    seed: u64,
}

impl Stream {
    /// The stream of `label` under `global_seed`.
    pub fn new(label: &str, global_seed: u64) -> Stream {
        Stream {
            seed: fnv1a64(label.as_bytes()) ^ global_seed,
        }
    }

    /// The stream's seed (`FNV1a64(label) ^ global_seed`).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Word `i` (0-based).
    pub fn word(&self, i: u64) -> u64 {
        mix(self
            .seed
            .wrapping_add((i.wrapping_add(1)).wrapping_mul(GOLDEN)))
    }

    /// Byte `n` of the little-endian byte stream of the words.
    pub fn byte(&self, n: u64) -> u8 {
        (self.word(n / 8) >> (8 * (n % 8))) as u8
    }
}

/// `2·(w mod 2^b) − (2^b − 1)`: a uniform odd integer in `[−(2^b−1), 2^b−1]`.
pub fn sym(w: u64, bits: u32) -> i64 {
    2 * (w & ((1u64 << bits) - 1)) as i64 - ((1i64 << bits) - 1)
}

/// `ceil(log2(f) / 2)` for a power of two `f`.
pub fn half_log2(fan_in: u64) -> i32 {
    (fan_in.trailing_zeros() as i32 + 1) / 2
}

/// Block scale `(4 + (w mod 4)) · 2^−(e+2)`.
pub fn dscale(w: u64, e: i32) -> f32 {
    (4 + (w % 4)) as f32 * 2f32.powi(-(e + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_self_test() {
        // State 0: first output 0xE220A8397B1DCDAF (SYNTH.md cross-checks).
        assert_eq!(mix(GOLDEN), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn stream_example_from_synth_md() {
        assert_eq!(fnv1a64(b"token_embd.weight"), 0x2d85_b88e_70e6_7727);
        let s = Stream::new("token_embd.weight", 1);
        assert_eq!(s.seed(), 0x2d85_b88e_70e6_7726);
        assert_eq!(s.word(0), 0xe048_d1ad_ae46_6059);
        assert_eq!(s.word(1), 0xa713_b234_2799_f6d2);
        assert_eq!(s.word(2), 0x3191_3ac5_c154_4e45);
    }

    #[test]
    fn primitives() {
        assert_eq!(sym(0, 3), -7);
        assert_eq!(sym(7, 3), 7);
        assert_eq!(sym(u64::MAX, 6), 63);
        assert_eq!([1, 128, 256, 512, 1024].map(half_log2), [0, 4, 4, 5, 5]);
        assert_eq!(dscale(2, 11), 6.0 * 2f32.powi(-13));
    }
}
