//! Deterministic random inputs for the kernel tests.

/// xorshift64* generator: small, seedable, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A positive normal f16 scale between 2^-12 and 2^-4.
pub fn random_f16_scale(rng: &mut Rng) -> u16 {
    let e = 3 + (rng.next() % 9) as u16;
    (e << 10) | (rng.next() as u16 & 0x3ff)
}
