// Host emulation of exactly the AscendC subset the ds4 kernels use (kernels/ascendc/*.cpp).
//
// The kernel sources include "kernel_operator.h"; with CANN that is the real header, here it
// is this file (the build puts emu/ first on the include path and defines ASCENDC_EMU).
// A launch runs the kernel body once per block index, each block a coroutine with its own
// 256 KiB unified buffer and stack. Blocks run one after another, in index order, up to the
// end of the body or to a SyncAll; SyncAll switches to the next block, and the blocks resume
// (again in order) once every block has reached it. So the results do not depend on timing,
// and a kernel that reads another block's output without a barrier reads stale data here
// too. The emulation enforces the device rules a kernel could break:
//   * DataCopy: length a multiple of 32 bytes, unified-buffer side 32-byte aligned;
//   * vector instructions: every unified-buffer operand 32-byte aligned;
//   * unified buffer capacity: the sum of a block's InitBuffer sizes <= 256 KiB;
//   * queues: AllocTensor beyond the queue's buffer count, DeQue of an empty queue,
//     FreeTensor of a buffer that is not allocated;
//   * bounds: every Global/Local access (DMA, vector or scalar) inside its tensor
//     (a GlobalTensor knows the size given to SetGlobalBuffer);
//   * one live TPipe per block (a second one hangs the device): a kernel that runs several
//     bodies one after another (a fused kernel) must end each body's TPipe first;
//   * SyncAll (soft synchronisation): reached by every block the same number of times, with
//     a global workspace of >= 32 bytes per block that holds zeros when the launch starts
//     (each block's slot counts its barriers, as the device's algorithm does), and a
//     unified-buffer workspace of >= 32 bytes per block.
// A violation prints one line "ascendc-emu: <rule>: kernel <name> block <i>/<n>: <values>"
// and aborts the process. Arithmetic is IEEE f32 (Exp/Sqrt/Ln from libm). Reductions follow
// the documented orders: ReduceSum adds a tree within each 256-byte repeat and the repeats'
// sums in order; WholeReduceSum is a tree per repeat.
#pragma once
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <functional>
#include <type_traits>
#include <ucontext.h>
#include <vector>

#define __global__
#define __aicore__
#define __gm__
#define GM_ADDR uint8_t *

namespace ascendc_emu {

constexpr uint32_t UB_BYTES = 256 * 1024;

// One block's state: its unified buffer, its pipe and its place in the launch.
struct Ctx {
    const char *kernel = "?";
    uint32_t block = 0, blocks = 1;
    uint32_t ub_used = 0;
    uint32_t pipes = 0;  // live TPipe objects
    uint32_t syncs = 0;  // SyncAll calls so far
    bool waiting = false, done = false;
    ucontext_t uc;
    std::vector<uint8_t> stack;
    alignas(64) uint8_t ub[UB_BYTES];
};

// This thread's blocks (reused by every launch) and the one running now.
inline thread_local std::vector<Ctx *> blocks_pool;
inline thread_local Ctx outside;  // the context outside any launch
inline thread_local Ctx *cur = &outside;
inline thread_local ucontext_t scheduler;
inline thread_local const std::function<void()> *body = nullptr;
// Largest ub_used of any block since the last reset (for the cost model's tests).
inline thread_local uint32_t ub_peak = 0;

inline Ctx &ctx() { return *cur; }

[[noreturn]] inline void fail(const char *rule, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ascendc-emu: %s: kernel %s block %u/%u: %s\n", rule, ctx().kernel, ctx().block,
            ctx().blocks, buf);
    fflush(stderr);
    abort();
}

inline uint32_t ub_offset(const void *p) {
    return (uint32_t)((const uint8_t *)p - ctx().ub);
}

// IEEE binary16 from f32, round to nearest even (subnormals included, NaN -> 0x7e00).
inline uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (x >> 16) & 0x8000;
    int32_t e = (x >> 23) & 0xff;
    uint32_t m = x & 0x7fffff;
    if (e == 0xff) return m ? (sign | 0x7e00) : (sign | 0x7c00);
    int32_t ne = e - 127 + 15;
    if (ne >= 31) return sign | 0x7c00;
    if (ne <= 0) {
        if (ne < -10) return sign;
        m |= 0x800000;
        uint32_t shift = 14 - ne;
        uint32_t q = m >> shift, r = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (r > half || (r == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t q = m >> 13, r = m & 0x1fff;
    uint32_t v = ((uint32_t)ne << 10) | q;
    if (r > 0x1000 || (r == 0x1000 && (q & 1))) v++;
    return sign | (uint16_t)v;
}

inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else {
            int32_t ee = -14;
            while (!(m & 0x400)) { m <<= 1; ee--; }
            bits = sign | ((uint32_t)(ee + 127) << 23) | ((m & 0x3ff) << 13);
        }
    } else if (e == 31) {
        bits = sign | 0x7f800000 | (m << 13);
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

}  // namespace ascendc_emu

// The device's half type: storage only, converted through f32 (RNE).
struct half {
    uint16_t bits = 0;
    half() = default;
    half(float f) : bits(ascendc_emu::f32_to_f16(f)) {}
    operator float() const { return ascendc_emu::f16_to_f32(bits); }
};

namespace AscendC {

using ascendc_emu::ctx;
using ascendc_emu::fail;

enum class TPosition { GM, VECIN, VECOUT, VECCALC };
enum class RoundMode { CAST_NONE, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC };
enum pipe_t { PIPE_V, PIPE_MTE2, PIPE_MTE3, PIPE_S, PIPE_ALL };
enum class CacheLine { SINGLE_CACHE_LINE, ENTIRE_DATA_CACHE };
enum class DcciDst { CACHELINE_OUT, CACHELINE_ALL };

inline int64_t GetBlockIdx() { return ctx().block; }
inline int64_t GetBlockNum() { return ctx().blocks; }
template <pipe_t P> inline void PipeBarrier() {}

template <typename T> class GlobalTensor {
public:
    T *ptr = nullptr;
    uint64_t size = 0;
    void SetGlobalBuffer(__gm__ T *p, uint64_t n) { ptr = p; size = n; }
    GlobalTensor operator[](uint64_t off) const {
        if (off > size) fail("global out of range", "offset %llu past size %llu", (unsigned long long)off, (unsigned long long)size);
        GlobalTensor g;
        g.ptr = ptr + off;
        g.size = size - off;
        return g;
    }
    uint64_t GetSize() const { return size; }
    T GetValue(uint64_t i) const {
        if (i >= size) fail("global out of range", "GetValue(%llu) of %llu", (unsigned long long)i, (unsigned long long)size);
        return ptr[i];
    }
    void SetValue(uint64_t i, T v) const {
        if (i >= size) fail("global out of range", "SetValue(%llu) of %llu", (unsigned long long)i, (unsigned long long)size);
        ptr[i] = v;
    }
};

template <typename T, CacheLine C, DcciDst D> inline void DataCacheCleanAndInvalid(const GlobalTensor<T> &) {}

template <typename T> class LocalTensor {
public:
    T *ptr = nullptr;
    uint32_t size = 0;  // elements
    int32_t buf = -1;   // queue buffer slot, for the queue rules
    LocalTensor operator[](uint32_t off) const {
        if (off > size) fail("local out of range", "offset %u past size %u", off, size);
        LocalTensor t = *this;
        t.ptr = ptr + off;
        t.size = size - off;
        return t;
    }
    uint32_t GetSize() const { return size; }
    T GetValue(uint32_t i) const {
        if (i >= size) fail("local out of range", "GetValue(%u) of %u", i, size);
        return ptr[i];
    }
    void SetValue(uint32_t i, T v) const {
        if (i >= size) fail("local out of range", "SetValue(%u) of %u", i, size);
        ptr[i] = v;
    }
    template <typename U> LocalTensor<U> ReinterpretCast() const {
        LocalTensor<U> t;
        t.ptr = (U *)ptr;
        t.size = (uint32_t)((uint64_t)size * sizeof(T) / sizeof(U));
        t.buf = buf;
        return t;
    }
};

namespace detail {
struct Slot {
    uint32_t off = 0, len = 0;
    bool alloc = false;
};
template <typename T> inline void need_local(const LocalTensor<T> &t, uint32_t n, const char *what) {
    if (n > t.size) fail("local out of range", "%s of %u elements on a tensor of %u", what, n, t.size);
}
template <typename T> inline void vec_operand(const LocalTensor<T> &t, uint32_t n, const char *what) {
    need_local(t, n, what);
    uint32_t o = ascendc_emu::ub_offset(t.ptr);
    if (o % 32) fail("vector operand not 32-byte aligned", "%s operand at UB byte %u", what, o);
}
}  // namespace detail

class TPipe;

template <TPosition P, int32_t DEPTH> class TQue {
public:
    detail::Slot slots[8];
    int32_t num = 0;
    int32_t fifo[8];
    int32_t head = 0, count = 0;
    template <typename T> LocalTensor<T> AllocTensor() {
        for (int32_t i = 0; i < num; i++) {
            if (!slots[i].alloc) {
                slots[i].alloc = true;
                LocalTensor<T> t;
                t.ptr = (T *)(ctx().ub + slots[i].off);
                t.size = slots[i].len / sizeof(T);
                t.buf = i;
                return t;
            }
        }
        fail("queue depth", "AllocTensor with all %d buffers allocated", num);
    }
    template <typename T> void EnQue(const LocalTensor<T> &t) {
        if (t.buf < 0 || t.buf >= num || !slots[t.buf].alloc) fail("queue misuse", "EnQue of a tensor not allocated from this queue");
        if (count >= num) fail("queue depth", "EnQue beyond %d buffers", num);
        fifo[(head + count) % num] = t.buf;
        count++;
    }
    template <typename T> LocalTensor<T> DeQue() {
        if (count == 0) fail("queue misuse", "DeQue of an empty queue");
        int32_t i = fifo[head];
        head = (head + 1) % num;
        count--;
        LocalTensor<T> t;
        t.ptr = (T *)(ctx().ub + slots[i].off);
        t.size = slots[i].len / sizeof(T);
        t.buf = i;
        return t;
    }
    template <typename T> void FreeTensor(const LocalTensor<T> &t) {
        if (t.buf < 0 || t.buf >= num || !slots[t.buf].alloc) fail("queue misuse", "FreeTensor of a buffer that is not allocated");
        slots[t.buf].alloc = false;
    }
};

template <TPosition P> class TBuf {
public:
    uint32_t off = 0, len = 0;
    bool init = false;
    template <typename T> LocalTensor<T> Get() const { return Get<T>(len / sizeof(T)); }
    template <typename T> LocalTensor<T> Get(uint32_t n) const {
        if (!init) fail("queue misuse", "TBuf::Get before InitBuffer");
        if (n * sizeof(T) > len) fail("local out of range", "TBuf::Get(%u) of a %u-byte buffer", n, len);
        LocalTensor<T> t;
        t.ptr = (T *)(ctx().ub + off);
        t.size = n;
        return t;
    }
};

class TPipe {
public:
    TPipe() {
        if (ctx().pipes) fail("two live TPipe objects", "a TPipe was created while another is alive");
        ctx().pipes = 1;
        ctx().ub_used = 0;
    }
    TPipe(const TPipe &) = delete;
    TPipe &operator=(const TPipe &) = delete;
    ~TPipe() { Destroy(); }
    // Releases the pipe's unified buffer (the destructor does it too).
    void Destroy() {
        if (!live) return;
        live = false;
        ctx().pipes = 0;
        ctx().ub_used = 0;
    }
    uint32_t take(uint32_t bytes) {
        if (!live) fail("queue misuse", "InitBuffer on a destroyed TPipe");
        uint32_t len = (bytes + 31) / 32 * 32;
        uint32_t off = ctx().ub_used;
        if ((uint64_t)off + len > ascendc_emu::UB_BYTES)
            fail("unified buffer over capacity", "InitBuffer of %u bytes with %u in use (capacity %u)", len, off, ascendc_emu::UB_BYTES);
        ctx().ub_used = off + len;
        if (ctx().ub_used > ascendc_emu::ub_peak) ascendc_emu::ub_peak = ctx().ub_used;
        return off;
    }
    template <TPosition P, int32_t D> void InitBuffer(TQue<P, D> &q, int32_t num, uint32_t len) {
        if (num < 1 || num > 8) fail("queue depth", "InitBuffer with %d buffers", num);
        q.num = num;
        for (int32_t i = 0; i < num; i++) q.slots[i] = detail::Slot{take(len), (len + 31) / 32 * 32, false};
    }
    template <TPosition P> void InitBuffer(TBuf<P> &b, uint32_t len) {
        b.off = take(len);
        b.len = (len + 31) / 32 * 32;
        b.init = true;
    }

private:
    bool live = true;
};

// ---- DMA -------------------------------------------------------------------------------
namespace detail {
template <typename T> inline void dma_rules(const LocalTensor<T> &l, uint32_t n, const char *dir) {
    uint64_t bytes = (uint64_t)n * sizeof(T);
    if (bytes % 32) fail("DataCopy length not a multiple of 32 bytes", "%s of %llu bytes", dir, (unsigned long long)bytes);
    uint32_t o = ascendc_emu::ub_offset(l.ptr);
    if (o % 32) fail("DataCopy unified-buffer address not 32-byte aligned", "%s at UB byte %u", dir, o);
    need_local(l, n, dir);
}
}  // namespace detail

template <typename T> inline void DataCopy(const LocalTensor<T> &dst, const GlobalTensor<T> &src, uint32_t n) {
    detail::dma_rules(dst, n, "GM->UB");
    if (n > src.size) fail("global out of range", "GM->UB read of %u elements from a buffer of %llu", n, (unsigned long long)src.size);
    memcpy(dst.ptr, src.ptr, (size_t)n * sizeof(T));
}
template <typename T> inline void DataCopy(const GlobalTensor<T> &dst, const LocalTensor<T> &src, uint32_t n) {
    detail::dma_rules(src, n, "UB->GM");
    if (n > dst.size) fail("global out of range", "UB->GM write of %u elements into a buffer of %llu", n, (unsigned long long)dst.size);
    memcpy(dst.ptr, src.ptr, (size_t)n * sizeof(T));
}
template <typename T> inline void DataCopy(const LocalTensor<T> &dst, const LocalTensor<T> &src, uint32_t n) {
    detail::dma_rules(dst, n, "UB->UB dst");
    detail::dma_rules(src, n, "UB->UB src");
    memmove(dst.ptr, src.ptr, (size_t)n * sizeof(T));
}

// ---- vector instructions (count-based forms) ------------------------------------------
#define EMU_BINARY(NAME, EXPR)                                                                  \
    template <typename T>                                                                       \
    inline void NAME(const LocalTensor<T> &d, const LocalTensor<T> &a, const LocalTensor<T> &b, \
                     int32_t n) {                                                               \
        detail::vec_operand(d, n, #NAME);                                                       \
        detail::vec_operand(a, n, #NAME);                                                       \
        detail::vec_operand(b, n, #NAME);                                                       \
        for (int32_t i = 0; i < n; i++) {                                                       \
            T x = a.ptr[i], y = b.ptr[i];                                                       \
            d.ptr[i] = (T)(EXPR);                                                               \
        }                                                                                       \
    }
EMU_BINARY(Add, x + y)
EMU_BINARY(Sub, x - y)
EMU_BINARY(Mul, x * y)
EMU_BINARY(Div, x / y)
EMU_BINARY(Max, x > y ? x : y)
EMU_BINARY(And, x & y)
EMU_BINARY(Min, x < y ? x : y)
#undef EMU_BINARY

#define EMU_SCALAR(NAME, EXPR)                                                                  \
    template <typename T>                                                                       \
    inline void NAME(const LocalTensor<T> &d, const LocalTensor<T> &a, T s, int32_t n) {        \
        detail::vec_operand(d, n, #NAME);                                                       \
        detail::vec_operand(a, n, #NAME);                                                       \
        for (int32_t i = 0; i < n; i++) {                                                       \
            T x = a.ptr[i];                                                                     \
            d.ptr[i] = (T)(EXPR);                                                               \
        }                                                                                       \
    }
EMU_SCALAR(Adds, x + s)
EMU_SCALAR(Muls, x * s)
EMU_SCALAR(Maxs, x > s ? x : s)
EMU_SCALAR(Mins, x < s ? x : s)
#undef EMU_SCALAR

#define EMU_UNARY(NAME, EXPR)                                                                   \
    template <typename T>                                                                       \
    inline void NAME(const LocalTensor<T> &d, const LocalTensor<T> &a, int32_t n) {             \
        detail::vec_operand(d, n, #NAME);                                                       \
        detail::vec_operand(a, n, #NAME);                                                       \
        for (int32_t i = 0; i < n; i++) {                                                       \
            float x = (float)a.ptr[i];                                                          \
            d.ptr[i] = (T)(EXPR);                                                               \
        }                                                                                       \
    }
EMU_UNARY(Exp, expf(x))
EMU_UNARY(Ln, logf(x))
EMU_UNARY(Abs, fabsf(x))
EMU_UNARY(Sqrt, sqrtf(x))
EMU_UNARY(Reciprocal, 1.0f / x)
#undef EMU_UNARY

// dst += src * s
template <typename T> inline void Axpy(const LocalTensor<T> &d, const LocalTensor<T> &a, T s, int32_t n) {
    detail::vec_operand(d, n, "Axpy");
    detail::vec_operand(a, n, "Axpy");
    for (int32_t i = 0; i < n; i++) d.ptr[i] = d.ptr[i] + a.ptr[i] * s;
}

template <typename T> inline void Duplicate(const LocalTensor<T> &d, T v, int32_t n) {
    detail::vec_operand(d, n, "Duplicate");
    for (int32_t i = 0; i < n; i++) d.ptr[i] = v;
}

namespace detail {
inline double round_mode(double v, RoundMode m) {
    switch (m) {
    case RoundMode::CAST_FLOOR: return std::floor(v);
    case RoundMode::CAST_CEIL: return std::ceil(v);
    case RoundMode::CAST_ROUND: return std::round(v);
    case RoundMode::CAST_TRUNC: return std::trunc(v);
    default: return std::nearbyint(v);  // RINT (and NONE for float->int): ties to even
    }
}
template <typename D, typename S> inline D cast_one(S s, RoundMode m) {
    if constexpr (std::is_same<D, half>::value) {
        return half((float)s);  // f32/int -> f16: RNE
    } else if constexpr (std::is_floating_point<D>::value) {
        return (D)(float)s;
    } else {
        double v = round_mode((double)(float)s, m);
        double lo = (double)std::numeric_limits<D>::min(), hi = (double)std::numeric_limits<D>::max();
        return (D)(v < lo ? lo : v > hi ? hi : v);
    }
}
}  // namespace detail

template <typename D, typename S>
inline void Cast(const LocalTensor<D> &d, const LocalTensor<S> &s, RoundMode m, int32_t n) {
    detail::vec_operand(d, n, "Cast");
    detail::vec_operand(s, n, "Cast");
    for (int32_t i = 0; i < n; i++) d.ptr[i] = detail::cast_one<D, S>(s.ptr[i], m);
}

namespace detail {
// Pairwise (tree) sum of n values: the reduction order the emulation defines.
inline float tree_sum(const float *v, int32_t n) {
    if (n <= 8) {
        float s = 0.0f;
        for (int32_t i = 0; i < n; i++) s += v[i];
        return s;
    }
    int32_t h = n / 2;
    return tree_sum(v, h) + tree_sum(v + h, n - h);
}
}  // namespace detail

// dst[0] = sum of src[0..n): a tree within each 256-byte repeat (64 floats), the repeats'
// sums added in order (the documented order of the count-based ReduceSum).
inline void ReduceSum(const LocalTensor<float> &d, const LocalTensor<float> &s, const LocalTensor<float> &work, int32_t n) {
    detail::vec_operand(d, 1, "ReduceSum");
    detail::vec_operand(s, n, "ReduceSum");
    detail::vec_operand(work, 1, "ReduceSum");
    float acc = 0.0f;
    for (int32_t r = 0; r < n; r += 64) acc += detail::tree_sum(s.ptr + r, n - r < 64 ? n - r : 64);
    d.ptr[0] = acc;
}
// dst[0] = max of src[0..n)
inline void ReduceMax(const LocalTensor<float> &d, const LocalTensor<float> &s, const LocalTensor<float> &work, int32_t n) {
    detail::vec_operand(d, 1, "ReduceMax");
    detail::vec_operand(s, n, "ReduceMax");
    detail::vec_operand(work, 1, "ReduceMax");
    float m = s.ptr[0];
    for (int32_t i = 1; i < n; i++) m = s.ptr[i] > m ? s.ptr[i] : m;
    d.ptr[0] = m;
}
// For r < repeat: dst[r * dstRepStride] = reduction of `mask` values starting at
// src[r * srcRepStride * 8] (strides in 32-byte blocks for src, elements for dst; srcBlkStride 1).
#define EMU_WHOLE(NAME, INIT, OP)                                                                \
    inline void NAME(const LocalTensor<float> &d, const LocalTensor<float> &s, int32_t mask,    \
                     int32_t repeat, int32_t dstRep, int32_t srcBlk, int32_t srcRep) {          \
        if (srcBlk != 1 || mask < 1 || mask > 64) fail("unsupported vector form", #NAME " mask %d srcBlkStride %d", mask, srcBlk); \
        detail::vec_operand(d, (uint32_t)((repeat - 1) * dstRep + 1), #NAME);                    \
        detail::vec_operand(s, (uint32_t)((repeat - 1) * srcRep * 8 + mask), #NAME);             \
        for (int32_t r = 0; r < repeat; r++) {                                                   \
            const float *p = s.ptr + r * srcRep * 8;                                             \
            float acc = INIT;                                                                    \
            OP;                                                                                  \
            d.ptr[r * dstRep] = acc;                                                             \
        }                                                                                        \
    }
EMU_WHOLE(WholeReduceSum, 0.0f, acc = detail::tree_sum(p, mask))
#undef EMU_WHOLE

}  // namespace AscendC

// ---- multi-core synchronisation ------------------------------------------------------------
namespace AscendC {
// Soft all-core barrier. Each block counts its barriers in its 32-byte slot of `gm` (which
// must hold zeros when the launch starts), then waits until every block has arrived.
template <bool isAIVOnly = true>
inline void SyncAll(const GlobalTensor<int32_t> &gm, const LocalTensor<int32_t> &ub, int32_t usedCores = 0) {
    ascendc_emu::Ctx &c = ascendc_emu::ctx();
    if (usedCores != 0 && (uint32_t)usedCores != c.blocks) fail("unsupported SyncAll form", "usedCores %d of %u blocks", usedCores, c.blocks);
    if (gm.size < 8ull * c.blocks) fail("SyncAll workspace too small", "global workspace of %llu int32 for %u blocks", (unsigned long long)gm.size, c.blocks);
    if (ub.size < 8u * c.blocks) fail("SyncAll workspace too small", "UB workspace of %u int32 for %u blocks", ub.size, c.blocks);
    detail::vec_operand(ub, 8u * c.blocks, "SyncAll");
    if (ascendc_emu::cur == &ascendc_emu::outside) fail("SyncAll outside a launch", "no blocks to wait for");
    int32_t *slot = gm.ptr + 8ull * c.block;
    if (*slot != (int32_t)c.syncs) fail("SyncAll workspace not zeroed", "slot of block %u holds %d at barrier %u", c.block, *slot, c.syncs + 1);
    c.syncs++;
    *slot = (int32_t)c.syncs;
    c.waiting = true;
    swapcontext(&c.uc, &ascendc_emu::scheduler);
}
}  // namespace AscendC

namespace ascendc_emu {
inline void block_entry() {
    (*body)();
    cur->done = true;
    cur->pipes = 0;
    swapcontext(&cur->uc, &scheduler);
}

// Runs `fn` once per block: every block up to its next SyncAll (or its end), in index order,
// then again until all have finished. A round in which some blocks finished while others
// wait at a barrier is a deadlock on the device.
inline void launch(const char *kernel, uint32_t blocks, const std::function<void()> &fn) {
    if (blocks == 0) return;
    if (cur != &outside) fail("nested launch", "launch of %s from inside a kernel", kernel);
    constexpr size_t STACK = 512 * 1024;
    while (blocks_pool.size() < blocks) {
        Ctx *c = new Ctx();
        c->stack.resize(STACK);
        blocks_pool.push_back(c);
    }
    const std::function<void()> *saved = body;
    body = &fn;
    for (uint32_t b = 0; b < blocks; b++) {
        Ctx *c = blocks_pool[b];
        c->kernel = kernel;
        c->block = b;
        c->blocks = blocks;
        c->ub_used = c->pipes = c->syncs = 0;
        c->waiting = c->done = false;
        getcontext(&c->uc);
        c->uc.uc_stack.ss_sp = c->stack.data();
        c->uc.uc_stack.ss_size = c->stack.size();
        c->uc.uc_link = nullptr;
        makecontext(&c->uc, block_entry, 0);
    }
    for (;;) {
        uint32_t done = 0, waiting = 0;
        for (uint32_t b = 0; b < blocks; b++) {
            Ctx *c = blocks_pool[b];
            if (c->done) {
                done++;
                continue;
            }
            c->waiting = false;
            cur = c;
            swapcontext(&scheduler, &c->uc);
            cur = &outside;
            if (c->done) done++;
            else waiting++;
        }
        if (done == blocks) break;
        if (done > 0) {
            cur = blocks_pool[0];
            fail("SyncAll not reached by every block", "%u blocks finished while %u wait at a barrier", done, waiting);
        }
    }
    body = saved;
}
}  // namespace ascendc_emu

// Emulated launch: KERNEL(args) once per block index (see ascendc_emu::launch).
#define ASCENDC_EMU_LAUNCH(KERNEL, BLOCKS, ...) \
    ascendc_emu::launch(#KERNEL, (BLOCKS), [&]() { KERNEL(__VA_ARGS__); })
