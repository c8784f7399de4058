//! BF16: the high 16 bits of an f32. No DS4 tensor is stored as BF16; the
//! conversions exist for tools and tests (`FORMAT.md` §3.1).

/// Widens one BF16 bit pattern (exact).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Rounds an f32 to BF16, nearest with ties to even; NaN keeps a quiet payload.
pub fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Widens a little-endian BF16 row into `out`.
///
/// # Panics
/// If `row` is shorter than `2 · out.len()` bytes.
pub fn dequantize_row(row: &[u8], out: &mut [f32]) {
    assert!(
        row.len() >= 2 * out.len(),
        "bf16::dequantize_row: short row"
    );
    for (b, o) in row.chunks_exact(2).zip(out.iter_mut()) {
        *o = bf16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ties() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (down).
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
        let mut out = [0.0f32; 2];
        dequantize_row(&[0x80, 0x3f, 0x00, 0xc0], &mut out);
        assert_eq!(out, [1.0, -2.0]);
    }
}
