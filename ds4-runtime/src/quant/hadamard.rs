//! Orthonormal Walsh–Hadamard transform of 128 values (`FORMAT.md` §4.4).
//!
//! Natural (Sylvester) order: butterflies with stride 1, 2, …, 64, then a scale
//! by `1/√128`, so `y[i] = 2^-3.5 Σ_j (−1)^popcount(i & j) x[j]`. The transform is
//! its own inverse.

/// `1/√128` as ds4 writes it.
#[allow(clippy::excessive_precision)]
pub const SCALE: f32 = 0.088_388_347_648_318_45;

/// Transforms `x` (exactly 128 values) in place.
///
/// # Panics
/// If `x.len() != 128`.
pub fn hadamard128(x: &mut [f32]) {
    assert_eq!(x.len(), 128, "hadamard128: length {}", x.len());
    let mut h = 1;
    while h < 128 {
        for base in (0..128).step_by(2 * h) {
            for i in base..base + h {
                let (a, c) = (x[i], x[i + h]);
                x[i] = a + c;
                x[i + h] = a - c;
            }
        }
        h *= 2;
    }
    for v in x.iter_mut() {
        *v *= SCALE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::fp4;

    #[test]
    fn unit_vectors_give_sylvester_rows() {
        let s = SCALE;
        let mut e0 = [0.0f32; 128];
        e0[0] = 1.0;
        hadamard128(&mut e0);
        assert!(e0.iter().all(|&v| v == s));

        let mut e1 = [0.0f32; 128];
        e1[1] = 1.0;
        hadamard128(&mut e1);
        for (i, &v) in e1.iter().enumerate() {
            assert_eq!(v, if i % 2 == 0 { s } else { -s });
        }
    }

    #[test]
    fn matches_the_popcount_definition_in_f64() {
        let x: Vec<f32> = (0..128)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let mut y = x.clone();
        hadamard128(&mut y);
        for (i, &yi) in y.iter().enumerate() {
            let r: f64 = (0..128)
                .map(|j| {
                    if (i & j).count_ones() % 2 == 0 {
                        x[j] as f64
                    } else {
                        -(x[j] as f64)
                    }
                })
                .sum::<f64>()
                / 128f64.sqrt();
            assert!((yi as f64 - r).abs() < 1e-5, "y[{i}] = {yi}, want {r}");
        }
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the documented digits
    fn self_check_vector_from_model_md() {
        let mut z: Vec<f32> = (0..128).map(|i| (0.11 * i as f32).cos() - 0.2).collect();
        hadamard128(&mut z);
        let want = [-1.419664f32, 0.039239876, 0.078718260, -0.0051264786];
        for (got, want) in z.iter().zip(want) {
            assert!(
                (got - want).abs() <= 2e-6 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
        fp4::quantize_row(&mut z);
        assert_eq!(&z[..4], &[-1.5, 0.0, 0.125, -0.0]);
    }
}
