//! Byte-level BPE merges over one pre-tokenizer piece (FORMAT.md §5.5).
//!
//! A piece starts as one symbol per byte (the vocabulary id of that byte's code
//! point). The adjacent pair with the lowest merge rank is merged, the leftmost one
//! among equal ranks, until no adjacent pair has a rank. A heap of candidate pairs
//! keyed by (rank, left position) keeps this O(n log n) on long pieces such as
//! whitespace runs; entries made stale by earlier merges are skipped when popped.
//! A byte whose code point has no vocabulary entry is dropped, as the official BPE
//! model does without an unknown token (it does not happen with DeepSeek V4).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hasher for the integer and short-string keys of the merge table
/// and the piece cache; the keys are not attacker-controlled in a way that matters
/// for a local tokenizer, and std's SipHash would cost a third of the encode time.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }
}

/// HashMap with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Merge table and byte symbols.
#[derive(Debug, Clone)]
pub struct Bpe {
    /// Vocabulary id of each byte's code point, if any.
    byte_ids: [Option<u32>; 256],
    /// `(left << 32 | right)` → (rank, merged id).
    merges: FastMap<u64, (u32, u32)>,
}

/// One symbol of the piece being merged; `prev`/`next` link the live symbols.
#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: usize,
    next: usize,
    live: bool,
}

const NONE: usize = usize::MAX;

impl Bpe {
    /// Build from byte ids and `(left, right, merged)` id triples in rank order;
    /// a repeated pair keeps its later rank.
    pub fn new(
        byte_ids: [Option<u32>; 256],
        merges: impl IntoIterator<Item = (u32, u32, u32)>,
    ) -> Self {
        let mut table = FastMap::default();
        for (rank, (left, right, merged)) in merges.into_iter().enumerate() {
            table.insert(pair_key(left, right), (rank as u32, merged));
        }
        Self {
            byte_ids,
            merges: table,
        }
    }

    fn merge_of(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        self.merges.get(&pair_key(left, right)).copied()
    }

    /// Append the ids of `piece` to `out`.
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        // Single bytes and pairs are most of the pieces in prose; skip the heap.
        match piece {
            [] => return,
            [b] => {
                out.extend(self.byte_ids[*b as usize]);
                return;
            }
            _ => {}
        }

        let mut symbols: Vec<Symbol> = Vec::with_capacity(piece.len());
        for &b in piece {
            if let Some(id) = self.byte_ids[b as usize] {
                let i = symbols.len();
                symbols.push(Symbol {
                    id,
                    prev: i.wrapping_sub(1),
                    next: i + 1,
                    live: true,
                });
            }
        }
        let n = symbols.len();
        if n == 0 {
            return;
        }
        symbols[0].prev = NONE;
        symbols[n - 1].next = NONE;

        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n - 1 {
            if let Some((rank, _)) = self.merge_of(symbols[i].id, symbols[i + 1].id) {
                heap.push(Reverse((rank, i)));
            }
        }

        while let Some(Reverse((rank, i))) = heap.pop() {
            let left = symbols[i];
            if !left.live || left.next == NONE {
                continue;
            }
            let j = left.next;
            let Some((current, merged)) = self.merge_of(left.id, symbols[j].id) else {
                continue;
            };
            if current != rank {
                continue;
            }

            // Merge j into i.
            symbols[i].id = merged;
            symbols[i].next = symbols[j].next;
            symbols[j].live = false;
            if symbols[j].next != NONE {
                let k = symbols[j].next;
                symbols[k].prev = i;
            }

            if symbols[i].prev != NONE {
                let p = symbols[i].prev;
                if let Some((r, _)) = self.merge_of(symbols[p].id, merged) {
                    heap.push(Reverse((r, p)));
                }
            }
            if symbols[i].next != NONE {
                let k = symbols[i].next;
                if let Some((r, _)) = self.merge_of(merged, symbols[k].id) {
                    heap.push(Reverse((r, i)));
                }
            }
        }

        let mut i = 0;
        while i != NONE {
            out.push(symbols[i].id);
            i = symbols[i].next;
        }
    }
}

fn pair_key(left: u32, right: u32) -> u64 {
    (left as u64) << 32 | right as u64
}
