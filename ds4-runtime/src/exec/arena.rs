//! Device memory for the CPU backend: one arena per device, plus typed views.
//!
//! The compiler places every activation of a phase at a constant offset in its
//! device's arena and proves that buffers live at the same time never overlap
//! (`tests/plan_check.rs`). The executor relies on that proof to hand a kernel
//! shared views of its inputs and exclusive views of its outputs, all cut from
//! the same allocation. Arenas are zeroed once and never reallocated while a
//! session runs, so no allocation happens per token or per layer.

use crate::plan::Buf;

/// Alignment every buffer offset must have (the largest element alignment used).
pub const BUF_ALIGN: usize = 4;

/// One device's activation memory.
pub struct Arena {
    words: Vec<u64>,
}

impl Arena {
    /// A zeroed arena of at least `bytes` bytes.
    pub fn new(bytes: usize) -> Self {
        Arena {
            words: vec![0u64; bytes.div_ceil(8).max(1)],
        }
    }

    pub fn len_bytes(&self) -> usize {
        self.words.len() * 8
    }

    fn base(&self) -> *mut u8 {
        self.words.as_ptr() as *mut u8
    }

    /// Checks that `rows` rows of `buf` lie inside the arena with proper alignment.
    pub fn check(&self, buf: &Buf, rows: usize) -> bool {
        let end = buf.offset.checked_add(buf.row_bytes.saturating_mul(rows));
        buf.offset.is_multiple_of(BUF_ALIGN) && end.is_some_and(|e| e <= self.len_bytes())
    }

    /// A view of `rows` rows of `buf` as elements of `T`.
    ///
    /// # Safety
    /// The caller guarantees that no exclusive view of an overlapping region is
    /// alive at the same time (the plan's non-overlap invariant), and that `T` is a
    /// plain-old-data type valid for any bit pattern with alignment at most
    /// [`BUF_ALIGN`].
    pub unsafe fn view<T>(&self, buf: &Buf, rows: usize) -> &[T] {
        debug_assert!(self.check(buf, rows));
        let bytes = buf.row_bytes * rows;
        std::slice::from_raw_parts(
            self.base().add(buf.offset) as *const T,
            bytes / std::mem::size_of::<T>(),
        )
    }

    /// An exclusive view of `rows` rows of `buf`.
    ///
    /// # Safety
    /// As for [`Arena::view`]; additionally no other view of this region may be
    /// alive while the returned slice is used.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn view_mut<T>(&self, buf: &Buf, rows: usize) -> &mut [T] {
        debug_assert!(self.check(buf, rows));
        let bytes = buf.row_bytes * rows;
        std::slice::from_raw_parts_mut(
            self.base().add(buf.offset) as *mut T,
            bytes / std::mem::size_of::<T>(),
        )
    }

    /// Copies `rows` rows from `src` in `from` to `dst` in `self`.
    pub fn copy_from(&mut self, dst: &Buf, from: &Arena, src: &Buf, rows: usize) {
        let n = src.row_bytes * rows;
        assert!(from.check(src, rows) && self.check(dst, rows) && dst.row_bytes == src.row_bytes);
        // SAFETY: both ranges were bounds-checked above; `self` and `from` are
        // distinct arenas (a `&mut` and a `&` cannot alias).
        unsafe {
            std::ptr::copy_nonoverlapping(
                from.base().add(src.offset),
                self.base().add(dst.offset),
                n,
            );
        }
    }
}
