//! F16 weights times f32 activations (router, HC controls, compressor, indexer).
//!
//! Each weight is widened to f32 and multiplied with the unquantised activation;
//! the products are accumulated in one f32 in index order (ds4's portable path,
//! `MODEL.md` §3.3).

use super::f16_to_f32;

/// Dot product of a little-endian F16 row (`2 · x.len()` bytes) with `x`.
///
/// # Panics
/// If `wrow` is shorter than `2 · x.len()` bytes.
pub fn vec_dot_f32(wrow: &[u8], x: &[f32]) -> f32 {
    assert!(
        wrow.len() >= 2 * x.len(),
        "f16::vec_dot_f32: row shorter than activation"
    );

    let mut acc = 0.0f32;
    for (w, &v) in wrow.chunks_exact(2).zip(x) {
        acc += f16_to_f32(u16::from_le_bytes([w[0], w[1]])) * v;
    }
    acc
}

/// Widens a little-endian F16 row into `out`.
///
/// # Panics
/// If `wrow` is shorter than `2 · out.len()` bytes.
pub fn dequantize_row(wrow: &[u8], out: &mut [f32]) {
    assert!(
        wrow.len() >= 2 * out.len(),
        "f16::dequantize_row: short row"
    );
    for (w, o) in wrow.chunks_exact(2).zip(out.iter_mut()) {
        *o = f16_to_f32(u16::from_le_bytes([w[0], w[1]]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::f32_to_f16;
    use crate::quant::test_util::Rng;

    #[test]
    fn vec_dot_matches_f64_reference_and_index_order() {
        let mut rng = Rng::new(1);
        let n = 4096;
        let w: Vec<u16> = (0..n).map(|_| f32_to_f16(rng.uniform() - 0.5)).collect();
        let bytes: Vec<u8> = w.iter().flat_map(|h| h.to_le_bytes()).collect();
        let x: Vec<f32> = (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect();

        let mut seq = 0.0f32;
        for i in 0..n {
            seq += f16_to_f32(w[i]) * x[i];
        }
        let got = vec_dot_f32(&bytes, &x);
        assert_eq!(got.to_bits(), seq.to_bits());

        let reference: f64 = (0..n).map(|i| f16_to_f32(w[i]) as f64 * x[i] as f64).sum();
        let scale: f64 = (0..n)
            .map(|i| (f16_to_f32(w[i]) as f64 * x[i] as f64).abs())
            .sum();
        assert!((got as f64 - reference).abs() <= 1e-5 * scale);
    }
}
