// Shared pieces of the ds4 AscendC kernels: per-core ranges, tail-safe GM<->UB copies, the
// barrier between the parts of a fused kernel, the packed-argument helpers of the generated
// launch wrappers, and the declaration macros. Included by every kernel family.
//
// 310P rules these helpers encode: DataCopy moves whole 32-byte blocks between GM and a
// 32-byte-aligned UB address, and there is no DataCopyPad. A copy of n elements therefore
// moves floor(n / E) blocks (E = elements per 32 bytes) and handles the tail by
//   * reading/writing one more whole block when the GM tensor extends that far (loads only);
//   * otherwise a 32-byte window ending exactly at element n ("back-shifted"), staged
//     through a small scratch tile, which rewrites a few elements with their own values;
//   * and only when n < E (a buffer shorter than 32 bytes) element-wise scalar access.
#pragma once
#include "kernel_operator.h"

using namespace AscendC;

namespace ds4 {

template <typename T> struct Epb { static constexpr uint32_t value = 32 / sizeof(T); };

__aicore__ inline uint32_t RoundUp(uint32_t n, uint32_t a) { return (n + a - 1) / a * a; }
__aicore__ inline uint32_t MinU(uint32_t a, uint32_t b) { return a < b ? a : b; }

struct Range {
    uint32_t begin;
    uint32_t end;
};

// This core's contiguous share of `total` items; shares are multiples of `align` items so
// that neighbouring cores never write into the same 64-byte line (except the final tail).
__aicore__ inline Range CoreRange(uint32_t total, uint32_t align) {
    uint32_t blocks = (uint32_t)GetBlockNum(), idx = (uint32_t)GetBlockIdx();
    uint32_t per = RoundUp((total + blocks - 1) / blocks, align);
    Range r;
    r.begin = MinU(idx * per, total);
    r.end = MinU(r.begin + per, total);
    return r;
}

// n elements GM -> UB. `dst` holds at least RoundUp(n, E) elements; `scratch` at least E.
template <typename T>
__aicore__ inline void LoadGm(const LocalTensor<T> &dst, const GlobalTensor<T> &src, uint32_t n,
                              const LocalTensor<T> &scratch) {
    constexpr uint32_t E = Epb<T>::value;
    uint32_t full = n / E * E, rem = n - full;
    if (full > 0) DataCopy(dst, src, full);
    if (rem == 0) return;
    if (src.GetSize() >= full + E) {
        DataCopy(dst[full], src[full], E);
    } else if (n >= E) {
        DataCopy(scratch, src[n - E], E);
        PipeBarrier<PIPE_ALL>();
        for (uint32_t i = 0; i < rem; i++) dst.SetValue(full + i, scratch.GetValue(E - rem + i));
    } else {
        PipeBarrier<PIPE_ALL>();
        for (uint32_t i = 0; i < rem; i++) dst.SetValue(i, src.GetValue(i));
    }
    PipeBarrier<PIPE_ALL>();
}

// n elements UB -> GM, never writing past element n of `dst`.
template <typename T>
__aicore__ inline void StoreGm(const GlobalTensor<T> &dst, const LocalTensor<T> &src, uint32_t n,
                               const LocalTensor<T> &scratch) {
    constexpr uint32_t E = Epb<T>::value;
    uint32_t full = n / E * E, rem = n - full;
    if (full > 0) DataCopy(dst, src, full);
    if (rem == 0) return;
    PipeBarrier<PIPE_ALL>();
    if (n >= E) {
        for (uint32_t i = 0; i < E; i++) scratch.SetValue(i, src.GetValue(n - E + i));
        PipeBarrier<PIPE_ALL>();
        DataCopy(dst[n - E], scratch, E);
    } else {
        for (uint32_t i = 0; i < rem; i++) dst.SetValue(i, src.GetValue(i));
        DataCacheCleanAndInvalid<T, CacheLine::ENTIRE_DATA_CACHE, DcciDst::CACHELINE_OUT>(dst);
    }
    PipeBarrier<PIPE_ALL>();
}

// f32 reciprocal square root of a scalar through a one-block vector tile (no scalar libm).
__aicore__ inline float RsqrtScalar(float v, const LocalTensor<float> &tile) {
    tile.SetValue(0, v);
    PipeBarrier<PIPE_ALL>();
    Sqrt(tile, tile, 8);
    PipeBarrier<PIPE_ALL>();
    return 1.0f / tile.GetValue(0);
}

// Sum of n f32 values in UB (n > 0); `work` is a one-block tile.
__aicore__ inline float SumScalar(const LocalTensor<float> &v, uint32_t n, const LocalTensor<float> &work) {
    ReduceSum(work, v, work, (int32_t)n);
    PipeBarrier<PIPE_ALL>();
    return work.GetValue(0);
}

__aicore__ inline float MaxScalar(const LocalTensor<float> &v, uint32_t n, const LocalTensor<float> &work) {
    ReduceMax(work, v, work, (int32_t)n);
    PipeBarrier<PIPE_ALL>();
    return work.GetValue(0);
}

__aicore__ inline uint32_t FloatBits(float f) {
    union {
        float f;
        uint32_t u;
    } c;
    c.f = f;
    return c.u;
}
__aicore__ inline float BitsFloat(uint32_t u) {
    union {
        float f;
        uint32_t u;
    } c;
    c.u = u;
    return c.f;
}
// 2^ceil(log2(r)) for a normal positive r, exactly.
__aicore__ inline float Pow2Ceil(float r) {
    uint32_t b = FloatBits(r);
    uint32_t e = (b >> 23) & 0xff;
    if ((b & 0x7fffff) != 0) e += 1;
    return BitsFloat(e << 23);
}

}  // namespace ds4

namespace ds4 {

// Barrier over all blocks of the launch, between two parts of a fused kernel: every block's
// writes to global memory are visible to every block afterwards. Soft SyncAll (the form the
// CANN reference's support table gives Atlas inference AI cores, as read here) over `ws`,
// 32 bytes per block, zeroed by the host before the launch; the unified-buffer workspace
// lives only for the barrier, so the parts' own TPipes (one at a time) are untouched.
__aicore__ inline void GridSync(GM_ADDR ws) {
    PipeBarrier<PIPE_ALL>();
    uint32_t blocks = (uint32_t)GetBlockNum();
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 32 * blocks);
    GlobalTensor<int32_t> gm;
    gm.SetGlobalBuffer((__gm__ int32_t *)ws, 8 * blocks);
    SyncAll(gm, buf.Get<int32_t>());
    pipe.Destroy();
}

// Argument slots of the generated launch wrappers: every argument travels as one u64
// (device addresses as they are, u32 zero-extended, f32 as its bit pattern). Host code
// (the wrappers run on the host), hence no __aicore__.
inline uint8_t *ArgPtr(uint64_t v) { return reinterpret_cast<uint8_t *>(v); }
inline uint32_t ArgU32(uint64_t v) { return static_cast<uint32_t>(v); }
inline float ArgF32(uint64_t v) {
    union {
        uint32_t u;
        float f;
    } c;
    c.u = static_cast<uint32_t>(v);
    return c.f;
}

}  // namespace ds4

#ifdef ASCENDC_EMU
#define DS4_LAUNCH(KERNEL, BLOCKS, STREAM, ...) ASCENDC_EMU_LAUNCH(KERNEL, BLOCKS, __VA_ARGS__)
#else
#define DS4_LAUNCH(KERNEL, BLOCKS, STREAM, ...) KERNEL<<<BLOCKS, nullptr, STREAM>>>(__VA_ARGS__)
#endif

// A kernel body of a family: runs on every block of a launch and splits its work itself.
#define DS4_IMPL __aicore__ inline void
// One op of docs/OPS.md with the parameters of its launch ABI (ds4-codegen/src/abi.rs); the
// generated entries (`$OUT_DIR/kernels_ascendc/`) call it, alone or as a part of a fused kernel.
#define DS4_OP __aicore__ inline void
// A device entry point (the generated ones; tests/broken.cpp).
#define DS4_KERNEL extern "C" __global__ __aicore__ void
#define DS4_WRAPPER extern "C" void
