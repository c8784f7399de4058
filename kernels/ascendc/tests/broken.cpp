// Deliberately broken kernels: each breaks one device rule, so the emulation must abort.
// Built only into the emulated library (never for the device); used by the Rust tests in
// ds4-runtime/src/ascend/emu_rules.rs, which run them in a child process.
#include "../common.h"

// DataCopy into a UB address 4 bytes past a 32-byte boundary.
DS4_KERNEL ds4_broken_misaligned(GM_ADDR x) {
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 1024);
    GlobalTensor<float> g;
    g.SetGlobalBuffer((__gm__ float *)x, 64);
    DataCopy(buf.Get<float>()[1], g, 8);
}

// Reads 64 floats from a 40-float buffer (the tail was not handled).
DS4_KERNEL ds4_broken_overread(GM_ADDR x) {
    TPipe pipe;
    TBuf<TPosition::VECCALC> buf;
    pipe.InitBuffer(buf, 1024);
    GlobalTensor<float> g;
    g.SetGlobalBuffer((__gm__ float *)x, 40);
    DataCopy(buf.Get<float>(), g, 64);
}

// Asks for 2 x 160 KiB of unified buffer.
DS4_KERNEL ds4_broken_ub_overflow(GM_ADDR x) {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> q;
    pipe.InitBuffer(q, 2, 160 * 1024);
}

// Allocates a third buffer from a two-deep queue.
DS4_KERNEL ds4_broken_queue_depth(GM_ADDR x) {
    TPipe pipe;
    TQue<TPosition::VECIN, 2> q;
    pipe.InitBuffer(q, 2, 1024);
    LocalTensor<float> a = q.AllocTensor<float>();
    LocalTensor<float> b = q.AllocTensor<float>();
    LocalTensor<float> c = q.AllocTensor<float>();
    (void)a;
    (void)b;
    (void)c;
}

// Runs a second part while the first part's TPipe is still alive (a fused kernel that does
// not end each body's pipe hangs the device).
DS4_KERNEL ds4_broken_two_pipes(GM_ADDR x) {
    TPipe first;
    TPipe second;
}

// Block 0 skips the barrier that the other blocks wait at.
DS4_KERNEL ds4_broken_partial_sync(GM_ADDR ws) {
    if (GetBlockIdx() != 0) ds4::GridSync(ws);
}

// Two barriers over a workspace that the host did not zero (x holds ones).
DS4_KERNEL ds4_broken_stale_workspace(GM_ADDR ws) {
    ds4::GridSync(ws);
}

// x: at least 256 bytes; cases 5 and 6 run on 4 blocks and use x as the barrier workspace.
DS4_WRAPPER aclrtlaunch_broken(uint32_t which, uint8_t *x) {
    switch (which) {
    case 0: DS4_LAUNCH(ds4_broken_misaligned, 1, nullptr, x); break;
    case 1: DS4_LAUNCH(ds4_broken_overread, 1, nullptr, x); break;
    case 2: DS4_LAUNCH(ds4_broken_ub_overflow, 1, nullptr, x); break;
    case 3: DS4_LAUNCH(ds4_broken_queue_depth, 1, nullptr, x); break;
    case 4: DS4_LAUNCH(ds4_broken_two_pipes, 1, nullptr, x); break;
    case 5: DS4_LAUNCH(ds4_broken_partial_sync, 4, nullptr, x); break;
    default: DS4_LAUNCH(ds4_broken_stale_workspace, 4, nullptr, x); break;
    }
}

// Largest unified-buffer allocation of any block since the last call with reset != 0
// (this thread's launches), so the tests can check the cost model's UB figures.
extern "C" uint32_t ascendc_emu_ub_peak(uint32_t reset) {
    uint32_t p = ascendc_emu::ub_peak;
    if (reset) ascendc_emu::ub_peak = 0;
    return p;
}
