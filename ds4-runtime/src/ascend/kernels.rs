//! FFI declarations of the AscendC kernels' launch wrappers (`kernels/ascendc/README.md`).
//!
//! One ABI for every kernel: `aclrtlaunch_<op>(block_dim, stream, <pointers>, <scalars>)`.
//! Pointers are device addresses of the plan's Buf/Weight/State arguments in `docs/OPS.md`
//! order (inputs, then outputs; `@tokens` is a device array of i32 ids); scalars follow:
//! `n_tokens`, then `pos0` where the op reads `@pos`, then dimensions and attributes. With
//! CANN the wrapper launches `<<<block_dim, nullptr, stream>>>`; in this crate's build
//! (the host emulation) it runs the kernel body once per block index and `stream` is
//! ignored. All functions are `unsafe`: the pointers must cover the sizes the README gives.

use std::ffi::c_void;

/// AI cores of one 310P: the block count every launch uses.
pub const BLOCK_DIM: u32 = 8;

#[allow(clippy::too_many_arguments)]
extern "C" {
    pub fn aclrtlaunch_embed(
        bd: u32,
        s: *mut c_void,
        table: *const u8,
        tokens: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n_embd: u32,
        vocab: u32,
    );
    pub fn aclrtlaunch_hc_expand(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        hc: *mut u8,
        n_tokens: u32,
        n_embd: u32,
    );
    pub fn aclrtlaunch_take_last(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n: u32,
    );
    pub fn aclrtlaunch_add(
        bd: u32,
        s: *mut c_void,
        a: *const u8,
        b: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n: u32,
    );
    pub fn aclrtlaunch_swiglu(
        bd: u32,
        s: *mut c_void,
        g: *const u8,
        u: *const u8,
        m: *mut u8,
        n_tokens: u32,
        n: u32,
        clamp: f32,
    );
    pub fn aclrtlaunch_moe_swiglu(
        bd: u32,
        s: *mut c_void,
        g: *const u8,
        u: *const u8,
        wt: *const u8,
        mid: *mut u8,
        n_tokens: u32,
        k: u32,
        n_ff: u32,
        clamp: f32,
    );

    pub fn aclrtlaunch_matvec_f16(
        bd: u32,
        s: *mut c_void,
        w: *const u8,
        x: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n_in: u32,
        n_out: u32,
    );
    pub fn aclrtlaunch_matvec_q8_0(
        bd: u32,
        s: *mut c_void,
        w: *const u8,
        xq: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n_in: u32,
        n_out: u32,
    );
    pub fn aclrtlaunch_matvec_q8_0_grouped(
        bd: u32,
        s: *mut c_void,
        w: *const u8,
        xq: *const u8,
        y: *mut u8,
        n_tokens: u32,
        group_in: u32,
        n_out: u32,
        groups: u32,
    );
    pub fn aclrtlaunch_quantize_q8_0(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        xq: *mut u8,
        n_tokens: u32,
        n: u32,
    );
    pub fn aclrtlaunch_quantize_q8_k(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        xq: *mut u8,
        n_tokens: u32,
        n: u32,
    );

    pub fn aclrtlaunch_hc_split(
        bd: u32,
        s: *mut c_void,
        mix: *const u8,
        scale: *const u8,
        base: *const u8,
        pre: *mut u8,
        post: *mut u8,
        comb: *mut u8,
        n_tokens: u32,
        iters: u32,
        eps: f32,
    );
    pub fn aclrtlaunch_hc_weighted_sum(
        bd: u32,
        s: *mut c_void,
        hc: *const u8,
        w: *const u8,
        x: *mut u8,
        n_tokens: u32,
        n_embd: u32,
    );
    pub fn aclrtlaunch_hc_post(
        bd: u32,
        s: *mut c_void,
        y: *const u8,
        res: *const u8,
        post: *const u8,
        comb: *const u8,
        out: *mut u8,
        n_tokens: u32,
        n_embd: u32,
    );
    pub fn aclrtlaunch_hc_head_weights(
        bd: u32,
        s: *mut c_void,
        pre: *const u8,
        scale: *const u8,
        base: *const u8,
        w: *mut u8,
        n_tokens: u32,
        eps: f32,
    );

    pub fn aclrtlaunch_router_probs(
        bd: u32,
        s: *mut c_void,
        logits: *const u8,
        prob: *mut u8,
        n_tokens: u32,
        n_expert: u32,
    );
    /// `bias` may be null (no `exp_probs_b` tensor).
    pub fn aclrtlaunch_router_topk(
        bd: u32,
        s: *mut c_void,
        prob: *const u8,
        bias: *const u8,
        ids: *mut u8,
        wt: *mut u8,
        n_tokens: u32,
        n_expert: u32,
        k: u32,
        scale: f32,
    );
    pub fn aclrtlaunch_router_hash(
        bd: u32,
        s: *mut c_void,
        prob: *const u8,
        tid2eid: *const u8,
        tokens: *const u8,
        ids: *mut u8,
        wt: *mut u8,
        n_tokens: u32,
        n_expert: u32,
        k: u32,
        scale: f32,
        vocab: u32,
    );

    pub fn aclrtlaunch_moe_gate_up(
        bd: u32,
        s: *mut c_void,
        gate: *const u8,
        up: *const u8,
        xq: *const u8,
        ids: *const u8,
        g: *mut u8,
        u: *mut u8,
        n_tokens: u32,
        n_embd: u32,
        n_ff: u32,
        n_expert: u32,
        k: u32,
        e0: u32,
        e1: u32,
    );
    pub fn aclrtlaunch_moe_down(
        bd: u32,
        s: *mut c_void,
        down: *const u8,
        midq: *const u8,
        ids: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n_ff: u32,
        n_embd: u32,
        n_expert: u32,
        k: u32,
        e0: u32,
        e1: u32,
    );

    /// `table` is the session RoPE table (`table_rows` rows of `n_rot` values, MODEL.md §7).
    pub fn aclrtlaunch_rope(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        table: *const u8,
        y: *mut u8,
        n_tokens: u32,
        pos0: u32,
        heads: u32,
        head_dim: u32,
        n_rot: u32,
        inverse: u32,
        table_rows: u32,
    );
    pub fn aclrtlaunch_fp8_kv(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        y: *mut u8,
        n_tokens: u32,
        head_dim: u32,
        n_quant: u32,
    );
    pub fn aclrtlaunch_indexer_qat(
        bd: u32,
        s: *mut c_void,
        q: *const u8,
        y: *mut u8,
        n_tokens: u32,
        heads: u32,
        head_dim: u32,
    );
    /// `raw` is the ring state of `ring_rows` rows; row `pos % ring_rows` is written.
    pub fn aclrtlaunch_kv_push_raw(
        bd: u32,
        s: *mut c_void,
        kv: *const u8,
        raw: *mut u8,
        n_tokens: u32,
        pos0: u32,
        head_dim: u32,
        window: u32,
        ring_rows: u32,
    );

    /// `comp` is null for ratio 0 and `sel` null unless ratio 4 (then `top_k` ids per token).
    pub fn aclrtlaunch_attention(
        bd: u32,
        s: *mut c_void,
        q: *const u8,
        sinks: *const u8,
        raw: *const u8,
        comp: *const u8,
        sel: *const u8,
        out: *mut u8,
        n_tokens: u32,
        pos0: u32,
        heads: u32,
        head_dim: u32,
        window: u32,
        ratio: u32,
        ring_rows: u32,
        comp_rows: u32,
        top_k: u32,
    );
    pub fn aclrtlaunch_indexer_topk(
        bd: u32,
        s: *mut c_void,
        q: *const u8,
        wts: *const u8,
        index_rows: *const u8,
        sel: *mut u8,
        n_tokens: u32,
        pos0: u32,
        heads: u32,
        head_dim: u32,
        top_k: u32,
        ratio: u32,
        n_rows: u32,
    );

    /// `post`: 0 FP8 on the first `n_quant` dims, 1 Hadamard + FP4 (indexer rows).
    pub fn aclrtlaunch_compressor_update(
        bd: u32,
        s: *mut c_void,
        kv_t: *const u8,
        sc_t: *const u8,
        ape: *const u8,
        norm: *const u8,
        st_kv: *mut u8,
        st_score: *mut u8,
        comp: *mut u8,
        table: *const u8,
        n_tokens: u32,
        pos0: u32,
        ratio: u32,
        head_dim: u32,
        n_rot: u32,
        post: u32,
        n_quant: u32,
        eps: f32,
        comp_rows: u32,
        table_rows: u32,
    );

    pub fn aclrtlaunch_rms_norm_plain(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n: u32,
        eps: f32,
    );
    pub fn aclrtlaunch_rms_norm(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        w: *const u8,
        y: *mut u8,
        n_tokens: u32,
        n: u32,
        eps: f32,
    );
    pub fn aclrtlaunch_head_rms_norm(
        bd: u32,
        s: *mut c_void,
        x: *const u8,
        y: *mut u8,
        n_tokens: u32,
        heads: u32,
        head_dim: u32,
        eps: f32,
    );
}

#[cfg(test)]
extern "C" {
    /// Test-only kernels that break one device rule each (0 misaligned DataCopy, 1 read past
    /// a buffer, 2 unified buffer over capacity, 3 queue depth).
    pub fn aclrtlaunch_broken(which: u32, x: *mut u8);
    /// The emulation's largest per-block unified-buffer allocation since the last reset.
    pub fn ascendc_emu_ub_peak(reset: u32) -> u32;
}
