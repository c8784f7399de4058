//! Tensor data generators: the byte-exact rules of `SYNTH.md` §7 and §11.
//!
//! Each generator streams a tensor's bytes in chunks of about 1 MiB to a sink,
//! so a 560 MB tensor never sits in memory. Values are computed per element
//! or per block from the indexed PRNG; every value is a dyadic rational that
//! the stored type represents exactly.

use std::io;

use crate::quant::f32_to_f16;

use super::layout::{Gen, Q8Mask, TensorPlan};
use super::prng::{dscale, sym, Stream};

const CHUNK: usize = 1 << 20;

/// Collects bytes and hands them to the sink in chunks.
struct Chunker<'s> {
    buf: Vec<u8>,
    sink: &'s mut dyn FnMut(&[u8]) -> io::Result<()>,
}

impl Chunker<'_> {
    fn push(&mut self, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            (self.sink)(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            (self.sink)(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Streams the data bytes of `t` (without padding) to `sink`.
pub fn generate(
    t: &TensorPlan,
    seed: u64,
    n_embd: u64,
    n_hc: u64,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = Chunker {
        buf: Vec::with_capacity(CHUNK + 512),
        sink,
    };
    let n: u64 = t.dims.iter().product();
    let s = Stream::new(&t.name, seed);
    let label = |suffix: &str| Stream::new(&format!("{}{suffix}", t.name), seed);

    match &t.gen {
        Gen::F16w { e, zero_in_hi } => {
            let scale = 2f32.powi(-e);
            for k in 0..n {
                let masked = zero_in_hi.is_some_and(|h| k % n_embd >= h);
                let v = if masked {
                    0
                } else {
                    f32_to_f16(sym(s.word(k), 6) as f32 * scale)
                };
                out.push(&v.to_le_bytes())?;
            }
        }
        Gen::Norm { center } => {
            for k in 0..n {
                let v = (center + sym(s.word(k), 3)) as f32 / 64.0;
                out.push(&v.to_le_bytes())?;
            }
        }
        Gen::Small {
            bits,
            shift,
            post_bias,
        } => {
            for k in 0..n {
                let mut v = sym(s.word(k), *bits) as f32 / 2f32.powi(*shift);
                if let Some(b) = post_bias {
                    if (n_hc..2 * n_hc).contains(&k) {
                        v -= b;
                    }
                }
                out.push(&v.to_le_bytes())?;
            }
        }
        Gen::HcScale => {
            for k in 0..n {
                let v = (8 + s.word(k) % 8) as f32 / 16.0;
                out.push(&v.to_le_bytes())?;
            }
        }
        Gen::Tier { bias } => {
            let tier = label("#tier");
            let perm = partial_shuffle(n, 3, |i| tier.word(i));
            let mut v = vec![0.0f32; n as usize];
            v[perm[0] as usize] = *bias;
            v[perm[1] as usize] = *bias;
            v[perm[2] as usize] = -bias;
            for x in v {
                out.push(&x.to_le_bytes())?;
            }
        }
        Gen::Q8_0 { e, qbits, mask } => {
            let (ds, qs) = (label("#d"), label("#qs"));
            let row_blocks = t.dims[0] / 32;
            for j in 0..n / 32 {
                match q8_block_exponent(j, row_blocks, n_embd, *e, mask) {
                    None => out.push(&[0u8; 34])?,
                    Some(e) => {
                        let mut blk = [0u8; 34];
                        blk[..2].copy_from_slice(&f32_to_f16(dscale(ds.word(j), e)).to_le_bytes());
                        for i in 0..32 {
                            blk[2 + i as usize] = sym(qs.word(32 * j + i), *qbits) as i8 as u8;
                        }
                        out.push(&blk)?;
                    }
                }
            }
        }
        Gen::Iq2Xxs { e } => {
            let (ds, qs) = (label("#d"), label("#qs"));
            for j in 0..n / 256 {
                let mut blk = [0u8; 66];
                blk[..2].copy_from_slice(&f32_to_f16(dscale(ds.word(j), *e)).to_le_bytes());
                for w in 0..8 {
                    blk[2 + 8 * w as usize..10 + 8 * w as usize]
                        .copy_from_slice(&qs.word(8 * j + w).to_le_bytes());
                }
                out.push(&blk)?;
            }
        }
        Gen::Q2K { e, zero_out_lo } => {
            let (ds, sc, qs) = (label("#d"), label("#scales"), label("#qs"));
            let row_blocks = t.dims[0] / 256;
            for j in 0..n / 256 {
                let row = (j / row_blocks) % n_embd;
                if zero_out_lo.is_some_and(|h| row < h) {
                    out.push(&[0u8; 84])?;
                    continue;
                }
                let mut blk = [0u8; 84];
                for w in 0..2 {
                    blk[8 * w as usize..8 * w as usize + 8]
                        .copy_from_slice(&sc.word(2 * j + w).to_le_bytes());
                }
                for w in 0..8 {
                    blk[16 + 8 * w as usize..24 + 8 * w as usize]
                        .copy_from_slice(&qs.word(8 * j + w).to_le_bytes());
                }
                let d = dscale(ds.word(j), *e);
                blk[80..82].copy_from_slice(&f32_to_f16(d).to_le_bytes());
                blk[82..84].copy_from_slice(&f32_to_f16(1.5 * d).to_le_bytes());
                out.push(&blk)?;
            }
        }
        Gen::Tid2Eid { n_expert } => {
            let k = t.dims[0];
            for tok in 0..t.dims[1] {
                let perm = partial_shuffle(*n_expert, k, |i| s.word(tok * k + i));
                for &p in &perm[..k as usize] {
                    out.push(&(p as i32).to_le_bytes())?;
                }
            }
        }
    }
    out.finish()
}

/// Exponent of Q8_0 block `j`, or `None` if a v2 mask zeroes it.
fn q8_block_exponent(j: u64, row_blocks: u64, n_embd: u64, e: i32, m: &Q8Mask) -> Option<i32> {
    let col = 32 * (j % (n_embd / 32));
    let row = j / row_blocks;
    if m.zero_in_hi.is_some_and(|h| col >= h) || m.zero_out_lo.is_some_and(|h| row < h) {
        return None;
    }
    match m.hi {
        Some((_, _, zero_row)) if row == zero_row => None,
        Some((from, gain, _)) if col >= from => Some(e - gain),
        _ => Some(e),
    }
}

/// The first `k` entries of a partial Fisher–Yates shuffle of `0..n` driven by `word(i)`.
fn partial_shuffle(n: u64, k: u64, word: impl Fn(u64) -> u64) -> Vec<u64> {
    let mut perm: Vec<u64> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + word(i) % (n - i);
        perm.swap(i as usize, j as usize);
    }
    perm
}
