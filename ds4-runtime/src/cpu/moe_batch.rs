//! Routed experts for a whole prefill chunk, grouped by expert (MODEL §11 F5).
//!
//! The `t × k` (token, slot) pairs of a chunk are sorted by expert; each selected
//! expert's weight rows are then read once and applied to every pair routed to it.
//! On AVX-512 VNNI each task decodes its sixteen rows once into plain bytes
//! ([`crate::quant::simd::rows16`]) and applies them to every pair of the expert;
//! elsewhere every (row, pair) dot product is the `vec_dot` call of the one-token
//! kernels of [`super::moe`] (two pairs at a time share the decoding of each row).
//! Both give `vec_dot`'s bits, and `moe_down` still adds the slots of a token in slot
//! order, so the results are bit-identical to running the tokens one by one.
//!
//! The pair lists, the task list and the `[expert][row][pair]` partial products live
//! in a per-thread scratch that grows to the largest chunk once and is then reused.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::quant::q8_k::BlockQ8K;
#[cfg(target_arch = "x86_64")]
use crate::quant::simd::rows16::{Biased, Iq2Rows16, Q2kRows16};
use crate::quant::{iq2_xxs, q2_k, QK_K};

/// Weight rows per rayon task (the sixteen-row kernels' set).
const ROWS: usize = 16;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(ROWS == crate::quant::simd::rows16::ROWS);

/// The chunk's pairs grouped by expert.
#[derive(Default)]
struct Groups {
    /// Pair indices `token·k + slot`, sorted by expert (stable: token order within one).
    pairs: Vec<u32>,
    /// `(expert, first, end)` ranges of `pairs`, one per selected in-range expert.
    spans: Vec<(u32, usize, usize)>,
    /// Per pair: `(first of its group, pairs in its group, its index in the group)`;
    /// `n = 0` for slots out of range.
    loc: Vec<(u32, u32, u32)>,
    /// Partial products, `[group][row][pair]`.
    tmp: Vec<f32>,
    /// The tasks of [`Self::products16`]: `(expert, first pair, end pair, first row)`.
    tasks: Vec<(u32, u32, u32, u32)>,
    /// The chunk's activations biased to unsigned, for the sixteen-row IQ2_XXS kernel.
    #[cfg(target_arch = "x86_64")]
    biased: Biased,
}

thread_local! {
    static SCRATCH: RefCell<Groups> = RefCell::new(Groups::default());
}

/// The partial-product buffer shared by the tasks, each writing its own range.
#[derive(Clone, Copy)]
struct Shared(*mut f32);

// SAFETY: the tasks write disjoint ranges (see `products16`).
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so closures capture the whole `Send + Sync` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Per-thread decoded rows of the sixteen-row kernels (a task never nests another).
#[cfg(target_arch = "x86_64")]
#[derive(Default)]
struct Decoded {
    iq2: Iq2Rows16,
    q2k: Q2kRows16,
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    static DECODED: RefCell<Decoded> = RefCell::new(Decoded::default());
}

/// Whether the sixteen-row kernels apply: AVX-512 VNNI and whole sets of sixteen rows
/// (`rows` per expert). Then the batched path is the faster one even for one token.
pub fn rows16(rows: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::simd::active() == crate::quant::simd::Isa::Avx512Vnni {
        return rows.is_multiple_of(ROWS);
    }
    let _ = rows;
    false
}

/// Calls `dot(first, n)` for pairs `first..first + n` of `pairs` in runs of four,
/// then two, then one, with `n` the run's length.
#[inline]
fn runs(pairs: usize, mut dot: impl FnMut(usize, usize)) {
    let mut i = 0;
    while i + 4 <= pairs {
        dot(i, 4);
        i += 4;
    }
    if i + 2 <= pairs {
        dot(i, 2);
        i += 2;
    }
    if i < pairs {
        dot(i, 1);
    }
}

/// Writes `res[t][ri]` to `out[ri·n + i + t]` (the `[row][pair]` layout of a task).
#[inline]
fn scatter<const T: usize>(out: &mut [f32], n: usize, i: usize, res: [[f32; ROWS]; T]) {
    for (t, r) in res.iter().enumerate() {
        for (ri, v) in r.iter().enumerate() {
            out[ri * n + i + t] = *v;
        }
    }
}

impl Groups {
    fn build(&mut self, ids: &[i32], experts: (u32, u32)) {
        self.pairs.clear();
        self.spans.clear();
        self.loc.clear();
        self.loc.resize(ids.len(), (0, 0, 0));
        let in_range = |e: i32| e >= 0 && (e as u32) >= experts.0 && (e as u32) < experts.1;
        self.pairs
            .extend((0..ids.len() as u32).filter(|&p| in_range(ids[p as usize])));
        self.pairs.sort_by_key(|&p| (ids[p as usize], p));
        let mut i = 0;
        while i < self.pairs.len() {
            let e = ids[self.pairs[i] as usize];
            let mut j = i;
            while j < self.pairs.len() && ids[self.pairs[j] as usize] == e {
                j += 1;
            }
            for (x, &p) in self.pairs[i..j].iter().enumerate() {
                self.loc[p as usize] = (i as u32, (j - i) as u32, x as u32);
            }
            self.spans.push((e as u32, i, j));
            i = j;
        }
    }

    /// Fills `tmp` with `dot(row r of expert e, act(pair))` for `rows` rows per expert,
    /// laid out `[group][r][pair]`; a group of `n` pairs starts at `first·rows`.
    /// `dots(e, r, pairs, out)` writes row `r` of expert `e` times each pair into `out`.
    fn products<F>(&mut self, rows: usize, dots: F)
    where
        F: Fn(u32, usize, &[u32], &mut [f32]) + Sync,
    {
        self.products16(rows, |e, r0, pairs, out| {
            for (ri, o) in out.chunks_exact_mut(pairs.len()).enumerate() {
                dots(e, r0 + ri, pairs, o);
            }
        });
    }

    /// As [`Self::products`] with one call per task: `task(e, r0, pairs, out)` writes
    /// rows `r0..r0 + 16` of expert `e` times each pair into `out` (`[row][pair]`).
    fn products16<F>(&mut self, rows: usize, task: F)
    where
        F: Fn(u32, usize, &[u32], &mut [f32]) + Sync,
    {
        let need = self.pairs.len() * rows;
        if self.tmp.len() < need {
            self.tmp.resize(need, 0.0);
        }
        self.tasks.clear();
        for &(e, a, b) in &self.spans {
            self.tasks.extend(
                (0..rows)
                    .step_by(ROWS)
                    .map(|r0| (e, a as u32, b as u32, r0 as u32)),
            );
        }
        let tmp = Shared(self.tmp.as_mut_ptr());
        let pairs = &self.pairs;
        self.tasks.par_iter().for_each(|&(e, a, b, r0)| {
            let (a, n, r0) = (a as usize, (b - a) as usize, r0 as usize);
            let len = ROWS.min(rows - r0) * n;
            // SAFETY: expert span `a..a + n` owns `tmp[a·rows..(a + n)·rows]` and task
            // `r0` the `len` values from `a·rows + r0·n` in it, so tasks are disjoint and
            // inside the `need` values allocated above; `tmp` outlives the loop.
            let out =
                unsafe { std::slice::from_raw_parts_mut(tmp.get().add(a * rows + r0 * n), len) };
            task(e, r0, &pairs[a..a + n], out);
        });
    }

    /// Whether pair `p`'s expert is in range.
    #[inline]
    fn used(&self, p: usize) -> bool {
        self.loc[p].1 != 0
    }

    /// The product of row `r` for pair `p` (which must be in range).
    #[inline]
    fn get(&self, rows: usize, r: usize, p: usize) -> f32 {
        let (a, n, x) = self.loc[p];
        self.tmp[a as usize * rows + r * n as usize + x as usize]
    }
}

/// [`super::moe_gate_up`] for `t` tokens (`xq`: `t × n_embd/256` blocks, `ids`:
/// `t × k`, `g`/`u`: `t × k × n_ff`), each expert's rows read once per chunk.
#[allow(clippy::too_many_arguments)]
pub fn moe_gate_up_batch(
    gate: &[u8],
    up: &[u8],
    n_embd: usize,
    n_ff: usize,
    xq: &[BlockQ8K],
    ids: &[i32],
    k: usize,
    experts: (u32, u32),
    g: &mut [f32],
    u: &mut [f32],
) {
    let nb = n_embd / QK_K;
    let rb = nb * iq2_xxs::BLOCK_BYTES;
    debug_assert!(xq.len() >= nb * ids.len() / k.max(1) && g.len() >= ids.len() * n_ff);
    SCRATCH.with_borrow_mut(|s| {
        s.build(ids, experts);
        let fast = rows16(n_ff);
        #[cfg(target_arch = "x86_64")]
        if fast {
            s.biased.fill(&xq[..ids.len() / k.max(1) * nb], nb);
        }
        for (w, out) in [(gate, &mut *g), (up, &mut *u)] {
            #[cfg(target_arch = "x86_64")]
            if fast {
                // Moved out for the call (no copy), so `products16` may borrow `s`.
                let biased = std::mem::take(&mut s.biased);
                let x = &biased;
                s.products16(n_ff, |e, r0, pairs, o| {
                    let off = (e as usize * n_ff + r0) * rb;
                    let n = pairs.len();
                    let tok = |i: usize| pairs[i] as usize / k;
                    DECODED.with_borrow_mut(|d| {
                        // SAFETY: AVX-512 VNNI is active (`rows16`); the expert holds
                        // rows r0..r0 + 16, and every token is one of `x`'s.
                        unsafe {
                            d.iq2.decode(&w[off..off + ROWS * rb], nb);
                            runs(n, |i, m| match m {
                                4 => scatter(
                                    o,
                                    n,
                                    i,
                                    d.iq2.dot(x, std::array::from_fn::<_, 4, _>(|t| tok(i + t))),
                                ),
                                2 => scatter(o, n, i, d.iq2.dot(x, [tok(i), tok(i + 1)])),
                                _ => scatter(o, n, i, d.iq2.dot(x, [tok(i)])),
                            });
                        }
                    });
                });
                s.biased = biased;
            }
            if !fast {
                s.products(n_ff, |e, r, pairs, o| {
                    let off = (e as usize * n_ff + r) * rb;
                    let row = &w[off..off + rb];
                    let x = |p: u32| &xq[p as usize / k * nb..(p as usize / k + 1) * nb];
                    let mut two = pairs.chunks_exact(2);
                    let mut i = 0;
                    for pp in &mut two {
                        o[i..i + 2].copy_from_slice(&iq2_xxs::vec_dot2(row, x(pp[0]), x(pp[1])));
                        i += 2;
                    }
                    for &p in two.remainder() {
                        o[i] = iq2_xxs::vec_dot(row, x(p));
                    }
                });
            }
            let s = &*s;
            out[..ids.len() * n_ff]
                .par_chunks_mut(n_ff)
                .enumerate()
                .for_each(|(p, o)| {
                    if s.used(p) {
                        for (r, v) in o.iter_mut().enumerate() {
                            *v = s.get(n_ff, r, p);
                        }
                    }
                });
        }
    });
}

/// [`super::moe_down`] for `t` tokens (`midq`: `t × k × n_ff/256` blocks, `y`:
/// `t × n_embd`), slots added in slot order per token.
#[allow(clippy::too_many_arguments)]
pub fn moe_down_batch(
    down: &[u8],
    n_ff: usize,
    n_embd: usize,
    midq: &[BlockQ8K],
    ids: &[i32],
    k: usize,
    experts: (u32, u32),
    y: &mut [f32],
) {
    let nb = n_ff / QK_K;
    let rb = nb * q2_k::BLOCK_BYTES;
    debug_assert!(midq.len() >= ids.len() * nb && y.len() >= ids.len() / k.max(1) * n_embd);
    SCRATCH.with_borrow_mut(|s| {
        s.build(ids, experts);
        let x = |p: u32| &midq[p as usize * nb..(p as usize + 1) * nb];
        #[cfg(target_arch = "x86_64")]
        if rows16(n_embd) {
            s.products16(n_embd, |e, r0, pairs, o| {
                let off = (e as usize * n_embd + r0) * rb;
                let n = pairs.len();
                let xi = |i: usize| x(pairs[i]);
                DECODED.with_borrow_mut(|d| {
                    // SAFETY: AVX-512 VNNI is active (`rows16`); the expert holds rows
                    // r0..r0 + 16 and every pair's activation has `nb` blocks.
                    unsafe {
                        d.q2k.decode(&down[off..off + ROWS * rb], nb);
                        runs(n, |i, m| match m {
                            4 => scatter(
                                o,
                                n,
                                i,
                                d.q2k.dot(std::array::from_fn::<_, 4, _>(|t| xi(i + t))),
                            ),
                            2 => scatter(o, n, i, d.q2k.dot([xi(i), xi(i + 1)])),
                            _ => scatter(o, n, i, d.q2k.dot([xi(i)])),
                        });
                    }
                });
            });
        }
        if !rows16(n_embd) {
            s.products(n_embd, |e, r, pairs, o| {
                let off = (e as usize * n_embd + r) * rb;
                let row = &down[off..off + rb];
                let mut two = pairs.chunks_exact(2);
                let mut i = 0;
                for pp in &mut two {
                    o[i..i + 2].copy_from_slice(&q2_k::vec_dot2(row, x(pp[0]), x(pp[1])));
                    i += 2;
                }
                for &p in two.remainder() {
                    o[i] = q2_k::vec_dot(row, x(p));
                }
            });
        }
        let s = &*s;
        let t = ids.len() / k.max(1);
        y[..t * n_embd]
            .par_chunks_mut(n_embd)
            .enumerate()
            .for_each(|(ti, yo)| {
                for (o, v) in yo.iter_mut().enumerate() {
                    let mut acc = 0.0f32;
                    for p in ti * k..(ti + 1) * k {
                        if s.used(p) {
                            acc += s.get(n_embd, o, p);
                        }
                    }
                    *v = acc;
                }
            });
    });
}
