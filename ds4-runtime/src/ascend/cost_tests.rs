//! The cost model against an independent count of a decode token's weight bytes.
//!
//! The plan is a hand-written two-device decode fragment of the tiny profile (E = 256,
//! H = 8, D = 128, FF = 256, NE = 16, K = 6) that uses every weight-reading kernel once:
//! embedding, HC pre, a Q8_0 projection, attention with sinks, the ratio-4 compressor, the
//! router with bias and with the hash table, the routed experts sharded 8/8 over two
//! devices and the Q8_0 output head. The expected bytes are computed from the weight table
//! alone with MODEL.md §15's rules (a dense weight is read whole, the embedding and `ape`
//! one row, routed experts `k/NE` of each shard, `tid2eid` one row of `k` ids).

use super::*;
use crate::plan::{
    AttrValue, DType, Phase, PhasePlan, ProfileInfo, StateInit, StateRows, StateSlot, WeightSlot,
};
use crate::quant::GgmlType;

const E: usize = 256;
const V: u64 = 129_280;

const fn buf(dev: u8, width: usize, dtype: DType) -> Buf {
    let row_bytes = match dtype {
        DType::F32 | DType::I32 => 4 * width,
        DType::Q8_0 => width / 32 * 36,
        DType::Q8K => width / 256 * 292,
    };
    Buf {
        dev,
        offset: 0,
        row_bytes,
        width,
        dtype,
    }
}

const fn w(
    name: &'static str,
    t: u32,
    dims: &'static [u64],
    bytes: u64,
    dev: u8,
    experts: Option<(u32, u32)>,
) -> WeightSlot {
    WeightSlot {
        gguf_name: name,
        ggml_type: t,
        dims,
        optional: false,
        device: dev,
        experts,
        bytes,
    }
}

const IQ2: u64 = 256 * 66 / 256;
static WEIGHTS: [WeightSlot; 19] = [
    w(
        "token_embd.weight",
        1,
        &[E as u64, V],
        E as u64 * V * 2,
        0,
        None,
    ),
    w(
        "blk.0.hc_attn_fn.weight",
        1,
        &[4 * E as u64, 24],
        4 * E as u64 * 24 * 2,
        0,
        None,
    ),
    w("blk.0.hc_attn_scale", 0, &[3], 12, 0, None),
    w("blk.0.hc_attn_base", 0, &[24], 96, 0, None),
    w(
        "blk.0.attn_norm.weight",
        0,
        &[E as u64],
        4 * E as u64,
        0,
        None,
    ),
    w(
        "blk.0.attn_q_a.weight",
        8,
        &[E as u64, 128],
        128 * (E as u64 / 32) * 34,
        0,
        None,
    ),
    w("blk.0.attn_sinks", 0, &[8], 32, 0, None),
    w(
        "blk.0.attn_compressor_ape.weight",
        1,
        &[256, 4],
        256 * 4 * 2,
        0,
        None,
    ),
    w("blk.0.attn_compressor_norm.weight", 0, &[128], 512, 0, None),
    w(
        "blk.0.ffn_gate_inp.weight",
        1,
        &[E as u64, 16],
        E as u64 * 16 * 2,
        0,
        None,
    ),
    w("blk.0.exp_probs_b.bias", 0, &[16], 64, 0, None),
    w(
        "blk.0.ffn_gate_exps.weight",
        16,
        &[E as u64, 256, 16],
        8 * 256 * IQ2 * (E as u64 / 256),
        0,
        Some((0, 8)),
    ),
    w(
        "blk.0.ffn_up_exps.weight",
        16,
        &[E as u64, 256, 16],
        8 * 256 * IQ2 * (E as u64 / 256),
        0,
        Some((0, 8)),
    ),
    w(
        "blk.0.ffn_down_exps.weight",
        10,
        &[256, E as u64, 16],
        8 * E as u64 * 84,
        0,
        Some((0, 8)),
    ),
    w(
        "blk.0.ffn_gate_exps.weight",
        16,
        &[E as u64, 256, 16],
        8 * 256 * IQ2 * (E as u64 / 256),
        1,
        Some((8, 16)),
    ),
    w(
        "blk.0.ffn_up_exps.weight",
        16,
        &[E as u64, 256, 16],
        8 * 256 * IQ2 * (E as u64 / 256),
        1,
        Some((8, 16)),
    ),
    w(
        "blk.0.ffn_down_exps.weight",
        10,
        &[256, E as u64, 16],
        8 * E as u64 * 84,
        1,
        Some((8, 16)),
    ),
    w(
        "blk.1.ffn_gate_tid2eid.weight",
        26,
        &[6, V],
        6 * V * 4,
        0,
        None,
    ),
    w(
        "output.weight",
        8,
        &[E as u64, V],
        V * (E as u64 / 32) * 34,
        0,
        None,
    ),
];

const fn st(name: &'static str, width: usize, rows: usize) -> StateSlot {
    StateSlot {
        name,
        layer: Some(0),
        device: 0,
        dtype: DType::F32,
        width,
        rows: StateRows::Fixed(rows),
        init: StateInit::Zero,
    }
}
static STATES: [StateSlot; 5] = [
    st("raw_kv", 128, 135),
    st("comp_rows", 128, 1100),
    st("cmp_kv", 256, 8),
    st("cmp_score", 256, 8),
    st("rope_comp", 64, 4400),
];

const X: Buf = buf(0, E, DType::F32);
const HC: Buf = buf(0, 4 * E, DType::F32);
const MIX: Buf = buf(0, 24, DType::F32);
const P4: Buf = buf(0, 4, DType::F32);
const C16: Buf = buf(0, 16, DType::F32);
const XQ: Buf = buf(0, E, DType::Q8_0);
const QA: Buf = buf(0, 128, DType::F32);
const Q: Buf = buf(0, 8 * 128, DType::F32);
const SEL: Buf = buf(0, 32, DType::I32);
const KVT: Buf = buf(0, 256, DType::F32);
const NE16: Buf = buf(0, 16, DType::F32);
const IDS: Buf = buf(0, 6, DType::I32);
const WT: Buf = buf(0, 6, DType::F32);
const XK: Buf = buf(0, E, DType::Q8K);
const G: Buf = buf(0, 6 * 256, DType::F32);
const GQ: Buf = buf(0, 6 * 256, DType::Q8K);
const LOG: Buf = buf(0, V as usize, DType::F32);
const fn on1(b: Buf) -> Buf {
    Buf { dev: 1, ..b }
}

macro_rules! launch {
    ($k:ident, $dev:expr, [$($a:expr),*], [$($n:literal = $v:expr),*]) => {
        Launch { kernel: Kernel::$k, device: $dev, args: &[$($a),*], attrs: &[$(($n, AttrValue::Int($v))),*], parts: &[], one_row: false }
    };
}
use Arg::{Buf as B, Pos, State as S, Tokens, Weight as W};

static LAUNCHES: [Launch; 22] = [
    launch!(Embed, 0, [W(0), Tokens, B(X)], []),
    launch!(HcExpand, 0, [B(X), B(HC)], []),
    launch!(RmsNormPlain, 0, [B(HC), B(HC)], []),
    launch!(MatvecF16, 0, [W(1), B(HC), B(MIX)], []),
    launch!(
        HcSplit,
        0,
        [B(MIX), W(2), W(3), B(P4), B(P4), B(C16)],
        ["iters" = 20]
    ),
    launch!(HcWeightedSum, 0, [B(HC), B(P4), B(X)], []),
    launch!(RmsNorm, 0, [B(X), W(4), B(X)], []),
    launch!(QuantizeQ8_0, 0, [B(X), B(XQ)], []),
    launch!(MatvecQ8_0, 0, [W(5), B(XQ), B(QA)], []),
    launch!(
        Attention,
        0,
        [B(Q), W(6), S(0), S(1), B(SEL), Pos, B(Q)],
        [
            "heads" = 8,
            "head_dim" = 128,
            "window" = 128,
            "ratio" = 4,
            "top_k" = 32
        ]
    ),
    launch!(
        CompressorUpdate,
        0,
        [B(KVT), B(KVT), W(7), W(8), S(2), S(3), S(1), S(4), Pos],
        [
            "ratio" = 4,
            "head_dim" = 128,
            "n_rot" = 64,
            "post" = 0,
            "n_quant" = 64
        ]
    ),
    launch!(MatvecF16, 0, [W(9), B(X), B(NE16)], []),
    launch!(RouterProbs, 0, [B(NE16), B(NE16)], []),
    launch!(RouterTopk, 0, [B(NE16), W(10), B(IDS), B(WT)], ["k" = 6]),
    launch!(QuantizeQ8K, 0, [B(X), B(XK)], []),
    launch!(
        MoeGateUp,
        0,
        [W(11), W(12), B(XK), B(IDS), B(G), B(G)],
        ["k" = 6, "n_ff" = 256, "e0" = 0, "e1" = 8]
    ),
    launch!(
        MoeGateUp,
        1,
        [W(14), W(15), B(on1(XK)), B(on1(IDS)), B(on1(G)), B(on1(G))],
        ["k" = 6, "n_ff" = 256, "e0" = 8, "e1" = 16]
    ),
    launch!(
        MoeDown,
        0,
        [W(13), B(GQ), B(IDS), B(X)],
        ["k" = 6, "n_ff" = 256, "e0" = 0, "e1" = 8]
    ),
    launch!(
        MoeDown,
        1,
        [W(16), B(on1(GQ)), B(on1(IDS)), B(on1(X))],
        ["k" = 6, "n_ff" = 256, "e0" = 8, "e1" = 16]
    ),
    launch!(
        RouterHash,
        0,
        [B(NE16), W(17), Tokens, B(IDS), B(WT)],
        ["k" = 6]
    ),
    launch!(MatvecQ8_0, 0, [W(18), B(XQ), B(LOG)], []),
    launch!(Add, 0, [B(X), B(X), B(X)], []),
];

fn run(ex: &mut dyn Executor) {
    for l in LAUNCHES.iter() {
        ex.launch(l);
    }
    ex.copy(on1(X), X, false);
}
fn nothing(_: &mut dyn Executor) {}

static PROFILE: ProfileInfo = ProfileInfo {
    name: "tiny-fragment",
    symbols: &[],
    metadata: &[],
    compress_ratios: &[4],
    hash_layer_count: 1,
    chunk: 32,
    vocab: V as usize,
    n_embd: E,
    budget_bytes: 0,
};
const fn phase(phase: Phase, run: fn(&mut dyn Executor)) -> PhasePlan {
    PhasePlan {
        phase,
        arena_bytes: &[],
        logits: None,
        launches: 22,
        run,
    }
}
static PLANS: PlanSet = PlanSet {
    profile: &PROFILE,
    devices: 2,
    fused: false,
    weights: &WEIGHTS,
    states: &STATES,
    init: phase(Phase::Init, nothing),
    decode: phase(Phase::Decode, run),
    prefill: phase(Phase::Prefill, nothing),
    summary_json: "{}",
};

/// What one decode token reads of each weight, from the weight table alone.
fn expected_weight_bytes(slot: &WeightSlot) -> u64 {
    let (k, ne) = (6u64, 16u64);
    match (slot.gguf_name, slot.experts) {
        ("token_embd.weight", _) => slot.dims[0] * 2,
        (n, _) if n.ends_with("compressor_ape.weight") => slot.bytes / slot.dims[1],
        (n, _) if n.ends_with("tid2eid.weight") => k * 4,
        (_, Some(_)) => slot.bytes * k / ne,
        _ => slot.bytes,
    }
}

#[test]
fn ascend_cost_counts_every_weight_byte_of_a_decode_token() {
    // Position 4095 ends a window of both compressor ratios, so the norm weight is read.
    let est = decode_estimate_at(&PLANS, 4095);
    let want: Vec<u64> = (0..2u8)
        .map(|d| {
            WEIGHTS
                .iter()
                .filter(|w| w.device == d)
                .map(expected_weight_bytes)
                .sum()
        })
        .collect();
    assert_eq!(est.weight_bytes, want);
    assert_eq!(est.launches, 22);
    assert_eq!(est.copy_bytes, 4 * E as u64);
    // Every device moves at least its weights; the speed follows from the bytes.
    for d in 0..2 {
        assert!(est.device_bytes[d] > est.weight_bytes[d]);
    }
    let bytes: u64 = est.device_bytes.iter().sum();
    let secs =
        bytes as f64 / CHIP_BANDWIDTH + 22.0 * LAUNCH_OVERHEAD_S + (4 * E) as f64 / PCIE_BANDWIDTH;
    assert!((est.seconds - secs).abs() <= 1e-12 * secs.max(1.0));
    assert!((est.tokens_per_s * secs - 1.0).abs() < 1e-9);
    let _ = GgmlType::F16;
}

#[test]
fn ascend_cost_of_kernels_scales_with_dims() {
    // A matvec reads its whole weight once per token; attention reads each visible row once
    // per core holding heads (8 cores for 64 heads) and no more rows than the window.
    let q8 = WeightDims {
        bytes: 1_000_000,
        ggml_type: 8,
        ne0: 4096,
        ne1: 512,
        experts: None,
    };
    let mut d = LaunchDims {
        tokens: 3,
        inputs: vec![4096 / 32 * 36],
        outputs: vec![512 * 4],
        weights: vec![q8],
        ..Default::default()
    };
    let c = kernel_cost(Kernel::MatvecQ8_0, &d);
    assert_eq!(c.weight_read, 3_000_000);
    assert_eq!(c.gm_write, 3 * 512 * 4);
    d = LaunchDims {
        tokens: 1,
        pos: 1000,
        heads: 64,
        head_dim: 512,
        window: 128,
        ratio: 128,
        inputs: vec![64 * 512 * 4],
        outputs: vec![64 * 512 * 4],
        ..Default::default()
    };
    let c = kernel_cost(Kernel::Attention, &d);
    assert_eq!(c.gm_read, 64 * 512 * 4 + (128 + 7) * 512 * 4 * 8);
    assert!(c.ub_bytes > 0 && c.ub_bytes <= 256 * 1024);
}
