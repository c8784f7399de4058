//! The byte-level alphabet of GPT-2 style BPE (FORMAT.md §5.4).
//!
//! Every byte of the input is written as one printable code point before BPE, so
//! a vocabulary string such as `Ġworld` stands for the bytes ` world`. Bytes
//! 33–126, 161–172 and 174–255 keep their own code point; the other 68 bytes, in
//! increasing order, take U+0100, U+0101, … . This module holds both directions
//! of that table and turns a vocabulary string back into the bytes it denotes.

/// Code point that stands for `byte` in vocabulary strings.
pub fn byte_to_char(byte: u8) -> char {
    let b = byte as u32;
    let keeps_own = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    if keeps_own {
        return byte as char;
    }

    // Rank of `byte` among the 68 bytes that do not keep their own code point.
    let rank = (0..byte).filter(|&x| !keeps_own_code_point(x)).count() as u32;
    char::from_u32(0x100 + rank).unwrap_or('\u{FFFD}')
}

fn keeps_own_code_point(byte: u8) -> bool {
    matches!(byte, 33..=126 | 161..=172 | 174..=255)
}

/// Inverse table: byte for a code point of the byte-level alphabet, if it is one.
#[derive(Debug, Clone)]
pub struct ByteTable {
    /// Indexed by code point; entries above 0x143 are never part of the alphabet.
    to_byte: [Option<u8>; 0x144],
}

impl ByteTable {
    /// Build the inverse of [`byte_to_char`].
    pub fn new() -> Self {
        let mut to_byte = [None; 0x144];
        for b in 0..=255u8 {
            to_byte[byte_to_char(b) as usize] = Some(b);
        }
        Self { to_byte }
    }

    /// Byte denoted by `c`, or `None` when `c` is outside the alphabet.
    pub fn byte_of(&self, c: char) -> Option<u8> {
        self.to_byte.get(c as usize).copied().flatten()
    }

    /// Bytes a vocabulary string denotes. As the official byte-level decoder does,
    /// a string with any code point outside the alphabet (the `<｜User｜>` family)
    /// stands for its own UTF-8 text.
    pub fn token_bytes(&self, token: &str) -> Vec<u8> {
        let mapped: Option<Vec<u8>> = token.chars().map(|c| self.byte_of(c)).collect();
        mapped.unwrap_or_else(|| token.as_bytes().to_vec())
    }
}

impl Default for ByteTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        assert_eq!(byte_to_char(b' '), '\u{120}');
        assert_eq!(byte_to_char(b'\n'), '\u{10A}');
        assert_eq!(byte_to_char(0x00), '\u{100}');
        assert_eq!(byte_to_char(0x7F), '\u{121}');
        assert_eq!(byte_to_char(0xA0), '\u{142}');
        assert_eq!(byte_to_char(0xAD), '\u{143}');
        assert_eq!(byte_to_char(b'A'), 'A');
    }

    #[test]
    fn table_round_trips_every_byte() {
        let table = ByteTable::new();
        for b in 0..=255u8 {
            assert_eq!(table.byte_of(byte_to_char(b)), Some(b));
        }
        assert_eq!(table.token_bytes("Ġworld"), b" world");
        assert_eq!(table.token_bytes("<｜User｜>"), "<｜User｜>".as_bytes());
    }
}
