//! Device weight layouts: how the AscendC kernels expect each weight in device memory.
//!
//! Weights are uploaded in their GGUF layout except Q8_0. A Q8_0 block is 34 bytes (an
//! f16 scale, then 32 int8 quants), a stride that breaks the 32-byte alignment every
//! DataCopy needs on the 310P, so a kernel reading GGUF blocks would have to move the
//! quants into an aligned tile with scalar work. At upload a Q8_0 tensor of `n` blocks is
//! split into two planes: the quants of every block in block order (`32 · n` bytes), then
//! the scales (`2 · n` bytes). The matvec kernels then copy quants straight into the
//! unified buffer and widen them with vector casts. The split is per block, so any block
//! range can be converted on its own (the upload streams in chunks); the byte count is
//! the same, so the plan's memory figures hold.

use crate::quant::GgmlType;

const Q8_0_BLOCK: usize = 34;

/// True when weights of `ggml_type` are stored in another layout on the device.
pub fn is_split(ggml_type: u32) -> bool {
    ggml_type == GgmlType::Q8_0 as u32
}

/// Blocks `[b0, b0 + n)` of a Q8_0 tensor: `src` holds them in GGUF layout
/// (`34 · n` bytes); their quants go to `quants` (`32 · n`) and scales to `scales` (`2 · n`),
/// which belong at `32 · b0` and `32 · total + 2 · b0` of the device tensor.
pub fn split_q8_0(src: &[u8], quants: &mut [u8], scales: &mut [u8]) {
    let n = src.len() / Q8_0_BLOCK;
    assert!(
        src.len() == n * Q8_0_BLOCK && quants.len() == 32 * n && scales.len() == 2 * n,
        "split_q8_0: {} source bytes for {} quant and {} scale bytes",
        src.len(),
        quants.len(),
        scales.len()
    );
    for (b, blk) in src.chunks_exact(Q8_0_BLOCK).enumerate() {
        scales[2 * b..2 * b + 2].copy_from_slice(&blk[..2]);
        quants[32 * b..32 * b + 32].copy_from_slice(&blk[2..]);
    }
}

/// A whole Q8_0 tensor in device layout.
pub fn q8_0_device(src: &[u8]) -> Vec<u8> {
    let n = src.len() / Q8_0_BLOCK;
    let mut out = vec![0u8; 34 * n];
    let (q, s) = out.split_at_mut(32 * n);
    split_q8_0(&src[..n * Q8_0_BLOCK], q, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_planes_hold_every_block_and_chunks_compose() {
        let src: Vec<u8> = (0..34 * 5).map(|i| (i * 7 % 251) as u8).collect();
        let whole = q8_0_device(&src);
        for b in 0..5 {
            assert_eq!(&whole[32 * b..32 * b + 32], &src[34 * b + 2..34 * b + 34]);
            assert_eq!(
                &whole[160 + 2 * b..160 + 2 * b + 2],
                &src[34 * b..34 * b + 2]
            );
        }
        // Blocks [2, 5) converted alone land where the whole conversion puts them.
        let (mut q, mut s) = (vec![0u8; 96], vec![0u8; 6]);
        split_q8_0(&src[68..], &mut q, &mut s);
        assert_eq!(&whole[64..160], &q[..]);
        assert_eq!(&whole[164..170], &s[..]);
    }
}
