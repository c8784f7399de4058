//! Next-token choice from logits (FORMAT.md §7), the same rules as the reference CLI.
//!
//! At temperature ≤ 0 the sampler is greedy: the first id holding the largest logit.
//! Otherwise weights are `w_i = exp((l_i − m) / T)` over the finite logits (`m` the
//! largest), so the top token has weight 1 and min-p is a threshold on weights
//! relative to it. Three paths, as in ds4:
//!
//! * no top-k and top-p = 1 (the CLI default): keep `w_i ≥ min_p`, draw by walking the
//!   kept tokens in id order — no sort, no allocation;
//! * top-p < 1: sort by logit (ties: lower id first), keep tokens while they pass
//!   min-p, stop once the kept mass reaches top-p, draw in sorted order;
//! * top-k > 0: the same on the k largest logits only (k capped at 1024), with the
//!   mass taken over those k.
//!
//! Non-finite logits never take part; if none is finite the sampler falls back to
//! argmax. Draws come from xorshift64* (§7.3), so a seed repeats its tokens.

use crate::tokenizer::Tokenizer;

/// Largest top-k honoured, as in ds4.
pub const MAX_TOP_K: usize = 1024;

/// Seed used when none is given; fixed so runs are reproducible. A caller that wants
/// ds4's time-based behaviour passes [`time_seed`].
pub const DEFAULT_SEED: u64 = 0x5EED_D54F_1A54_0001;

/// Replacement for an all-zero RNG state (xorshift would stay at zero).
const ZERO_STATE_REPLACEMENT: u64 = 0x9E37_79B9_7F4A_7C15;

/// Sampling parameters (FORMAT.md §7.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; ≤ 0 means greedy.
    pub temperature: f32,
    /// Keep only the k largest logits; 0 disables.
    pub top_k: usize,
    /// Nucleus mass; ≤ 0 or > 1 is treated as 1 (disabled).
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the top one; < 0 is 0.
    pub min_p: f32,
    /// RNG seed; the same seed and logits give the same tokens.
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// The reference CLI defaults (temperature 1, no top-k, top-p 1, min-p 0.05)
    /// with [`DEFAULT_SEED`].
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.05,
            seed: DEFAULT_SEED,
        }
    }
}

/// A seed from the clock and process id, like ds4's default; never 0.
pub fn time_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seed = nanos ^ ((std::process::id() as u64) << 32);
    if seed == 0 {
        DEFAULT_SEED
    } else {
        seed
    }
}

/// xorshift64* generator of FORMAT.md §7.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = if self.state == 0 {
            ZERO_STATE_REPLACEMENT
        } else {
            self.state
        };
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1) with 24 bits, as ds4 draws it.
    pub fn next_f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) & 0xFF_FFFF) as f32 / 16_777_216.0
    }
}

/// Picks token ids from logits with a [`SamplerConfig`].
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplerConfig,
    rng: Rng,
    /// Scratch list of `(id, logit)` candidates, kept to avoid reallocating.
    scratch: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler with its RNG seeded from `config.seed`.
    pub fn new(config: SamplerConfig) -> Self {
        Self {
            config,
            rng: Rng::new(config.seed),
            scratch: Vec::new(),
        }
    }

    /// The parameters in use.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Choose the next token from `logits` (one per vocabulary id).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let c = self.config;
        // NaN counts as "not positive": greedy.
        if c.temperature.is_nan() || c.temperature <= 0.0 {
            return argmax(logits);
        }
        let Some(max) = max_finite(logits) else {
            return argmax(logits);
        };
        let top_p = if c.top_p > 0.0 && c.top_p <= 1.0 {
            c.top_p
        } else {
            1.0
        };
        let min_p = c.min_p.max(0.0);
        let top_k = c.top_k.min(MAX_TOP_K).min(logits.len());

        if top_k == 0 && top_p >= 1.0 {
            return self.sample_in_id_order(logits, max, min_p);
        }
        self.sample_sorted(logits, max, top_k, top_p, min_p)
    }

    /// Default path: tokens with weight ≥ min_p, drawn in id order.
    fn sample_in_id_order(&mut self, logits: &[f32], max: f32, min_p: f32) -> u32 {
        let t = self.config.temperature;
        let weight = |l: f32| {
            if l.is_finite() {
                ((l - max) / t).exp()
            } else {
                0.0
            }
        };

        let total: f64 = logits
            .iter()
            .map(|&l| weight(l))
            .filter(|&w| w > 0.0 && w >= min_p)
            .map(f64::from)
            .sum();
        let mut r = f64::from(self.rng.next_f32()) * total;
        for (id, &l) in logits.iter().enumerate() {
            let w = weight(l);
            if w > 0.0 && w >= min_p {
                r -= f64::from(w);
                if r <= 0.0 {
                    return id as u32;
                }
            }
        }
        argmax(logits)
    }

    /// top-p and top-k paths: candidates by descending logit, then min-p and top-p.
    fn sample_sorted(
        &mut self,
        logits: &[f32],
        max: f32,
        top_k: usize,
        top_p: f32,
        min_p: f32,
    ) -> u32 {
        let t = self.config.temperature;
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));

        self.scratch.clear();
        self.scratch.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(i, &l)| (i as u32, l)),
        );
        let total: f64;
        if top_k > 0 {
            // The k largest; the mass is taken over them only.
            if self.scratch.len() > top_k {
                self.scratch.select_nth_unstable_by(top_k - 1, by_logit);
                self.scratch.truncate(top_k);
            }
            total = self
                .scratch
                .iter()
                .map(|&(_, l)| f64::from(((l - max) / t).exp()))
                .sum();
        } else {
            total = self
                .scratch
                .iter()
                .map(|&(_, l)| f64::from(((l - max) / t).exp()))
                .sum();
            // Tokens below min-p of the top one can never be kept: skip sorting them.
            self.scratch
                .retain(|&(_, l)| ((l - max) / t).exp() >= min_p);
        }
        self.scratch.sort_unstable_by(by_logit);

        // min-p threshold relative to the first (largest) weight, which is 1.
        let mut kept = 0usize;
        let mut kept_mass = 0.0f64;
        for (i, &(_, l)) in self.scratch.iter().enumerate() {
            let w = f64::from(((l - max) / t).exp());
            if i > 0 && w < f64::from(min_p) {
                break;
            }
            kept += 1;
            kept_mass += w;
            if kept_mass / total >= f64::from(top_p) {
                break;
            }
        }
        let kept = kept.max(1).min(self.scratch.len());

        let mut r = f64::from(self.rng.next_f32()) * kept_mass;
        for &(id, l) in &self.scratch[..kept] {
            r -= f64::from(((l - max) / t).exp());
            if r <= 0.0 {
                return id;
            }
        }
        self.scratch
            .get(kept.wrapping_sub(1))
            .map_or_else(|| argmax(logits), |&(id, _)| id)
    }
}

/// Largest finite logit, if any.
fn max_finite(logits: &[f32]) -> Option<f32> {
    logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .reduce(f32::max)
}

/// First id holding the largest logit (NaN ignored); 0 for an empty or all-NaN slice.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best_value {
            best = i;
            best_value = l;
        }
    }
    best as u32
}

/// Log-softmax at temperature 1 over the finite logits, in f64 (FORMAT.md §7.4).
/// Returns the normaliser `m + ln Σ exp(l_j − m)`, or `None` if no logit is finite.
pub fn log_normalizer(logits: &[f32]) -> Option<f64> {
    let max = f64::from(max_finite(logits)?);
    let sum: f64 = logits
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| (f64::from(l) - max).exp())
        .sum();
    Some(max + sum.ln())
}

/// Log-probability of `id`; `None` if it is out of range or its logit is not finite.
pub fn token_logprob(logits: &[f32], id: u32) -> Option<f64> {
    let l = *logits.get(id as usize)?;
    if !l.is_finite() {
        return None;
    }
    Some(f64::from(l) - log_normalizer(logits)?)
}

/// The `k` most probable ids with their log-probabilities, most probable first
/// (equal logits: lower id first).
pub fn top_logprobs(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let Some(norm) = log_normalizer(logits) else {
        return Vec::new();
    };
    let mut finite: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| (i as u32, l))
        .collect();
    let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let k = k.min(finite.len());
    if k == 0 {
        return Vec::new();
    }
    if finite.len() > k {
        finite.select_nth_unstable_by(k - 1, by_logit);
        finite.truncate(k);
    }
    finite.sort_unstable_by(by_logit);
    finite
        .into_iter()
        .map(|(id, l)| (id, f64::from(l) - norm))
        .collect()
}

/// Whether `id` ends generation; stopping is the caller's job (FORMAT.md §6.5).
pub fn is_eos(tok: &Tokenizer, id: u32) -> bool {
    tok.is_eos(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_matches_hand_computed_steps() {
        // Seed 1: x = 1 ^ (1 >> 12) = 1; x ^= 1 << 25; x ^= x >> 27 (= 0).
        let mut rng = Rng::new(1);
        let x: u64 = 1 ^ (1 << 25);
        assert_eq!(rng.next_u64(), x.wrapping_mul(0x2545_F491_4F6C_DD1D));
        // A zero state behaves like the replacement constant.
        assert_eq!(
            Rng::new(0).next_u64(),
            Rng::new(ZERO_STATE_REPLACEMENT).next_u64()
        );
    }

    #[test]
    fn uniform_is_in_unit_interval() {
        let mut rng = Rng::new(42);
        for _ in 0..10_000 {
            let u = rng.next_f32();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
