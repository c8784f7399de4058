//! IEEE binary16 conversions, bit-exact to ds4's software path (`FORMAT.md` §4.1).
//!
//! f16 → f32 is exact. f32 → f16 rounds to nearest, ties to even, in the normal
//! and the subnormal range; NaN becomes `sign | 0x7E00` (payload dropped).

/// Widens an IEEE binary16 bit pattern to f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;

    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise by shifting until the implicit bit appears.
            let mut m = m;
            let mut e: i32 = -14;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (((e + 127) as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (31, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Rounds an f32 to the nearest binary16 (ties to even), including subnormals.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let e32 = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;

    if e32 == 0xff {
        return if mant != 0 {
            sign | 0x7e00
        } else {
            sign | 0x7c00
        };
    }

    let e = e32 - 127 + 15;
    if e >= 31 {
        return sign | 0x7c00;
    }

    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // 24-bit significand with the implicit bit, shifted into the subnormal range.
        let sig = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let mut half = sig >> shift;
        let round_bit = 1u32 << (shift - 1);
        let rem = sig & ((1u32 << shift) - 1);
        if rem > round_bit || (rem == round_bit && half & 1 == 1) {
            half += 1;
        }
        return sign | half as u16;
    }

    let mut h = ((e as u32) << 10) | (mant >> 13);
    let dropped = mant & 0x1fff;
    if dropped > 0x1000 || (dropped == 0x1000 && h & 1 == 1) {
        // A carry out of the mantissa correctly rolls into the exponent (→ Inf at the top).
        h += 1;
    }
    sign | h as u16
}

/// `f16_to_f32(f32_to_f16(x))`: the value an f16 store of `x` reads back as.
pub fn f16_round(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_values_from_format_md() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(0.1), 0x2e66);
        assert_eq!(f32_to_f16(2f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0x0000);
        assert_eq!(
            f32_to_f16(f32::from_bits(2f32.powi(-25).to_bits() + 1)),
            0x0001
        );
        assert_eq!(f32_to_f16(f32::NAN), 0x7e00);
        assert_eq!(f32_to_f16(-f32::NAN), 0xfe00);
        assert_eq!(f32_to_f16(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
    }

    #[test]
    fn f16_to_f32_matches_half_crate_for_every_pattern() {
        for h in 0..=u16::MAX {
            let ours = f16_to_f32(h);
            let theirs = half::f16::from_bits(h).to_f32();
            if theirs.is_nan() {
                assert!(ours.is_nan(), "{h:#06x}");
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{h:#06x}");
            }
        }
    }

    #[test]
    fn f32_to_f16_matches_half_crate_on_a_sweep() {
        // Every 2^13/7-th f32 pattern covers all exponents and many rounding cases.
        let mut bits: u32 = 0;
        while let Some(next) = bits.checked_add(1171) {
            let x = f32::from_bits(bits);
            if !x.is_nan() {
                let theirs = half::f16::from_f32(x).to_bits();
                assert_eq!(f32_to_f16(x), theirs, "{x:e} ({bits:#010x})");
            }
            bits = next;
        }
    }

    #[test]
    fn every_f16_round_trips() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if !x.is_nan() {
                assert_eq!(f32_to_f16(x), h);
            }
        }
    }
}
