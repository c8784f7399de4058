//! Cost model of the AscendC kernels of `kernels/ascendc/` and a decode-speed estimate.
//!
//! Decode on a 310P is bound by global-memory traffic (MODEL.md §15: ≈9.5 GB of weights per
//! token against 204.8 GB/s per chip), so the model counts bytes: per launch, what the
//! kernel as written reads and writes in global memory (weights, activations, state), its
//! unified-buffer footprint and its launch count. Re-reads the kernels really do are
//! counted: every core re-reads a norm's row and a matvec's activation, attention rows are
//! read once per core holding heads. Weight reads follow what the kernel touches: one row
//! of the embedding and of the compressor `ape`, the expected `k·shard/NE` of a routed
//! expert tensor (each token picks `k` of `NE` experts), one `tid2eid` row.
//!
//! [`decode_estimate`] runs a plan's decode phase with a recording [`Executor`], sums the
//! bytes per device and turns them into time at [`CHIP_BANDWIDTH`] per chip, the chips'
//! launches running one after another in plan order, plus [`LAUNCH_OVERHEAD_S`] per
//! launch, [`BARRIER_S`] per all-core barrier between the parts of a fused kernel (whose
//! workspace traffic is counted too) and cross-chip copies at [`PCIE_BANDWIDTH`].

use crate::plan::{Arg, Buf, Executor, Kernel, Launch, PlanSet, StageTap};
use crate::quant::GgmlType;

/// LPDDR4X bandwidth of one 310P chip (an Atlas 300I Duo has two).
pub const CHIP_BANDWIDTH: f64 = 204.8e9;
/// Assumed host-side cost of one kernel launch (ACL stream submission).
pub const LAUNCH_OVERHEAD_S: f64 = 5e-6;
/// Assumed cost of one soft all-core barrier (SyncAll through global memory).
pub const BARRIER_S: f64 = 2e-6;
/// Assumed bandwidth of a chip-to-chip copy through the host bridge (PCIe 4.0 x16).
pub const PCIE_BANDWIDTH: f64 = 25e9;
/// Position the decode estimate is taken at (sets the attention rows).
pub const DEFAULT_POS: usize = 4095;
/// AI cores per chip: the block count of every launch.
const CORES: u64 = 8;

/// Global-memory traffic and resources of one launch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCost {
    /// Bytes read from global memory, weights included.
    pub gm_read: u64,
    /// Bytes written to global memory.
    pub gm_write: u64,
    /// The part of `gm_read` that is model weights.
    pub weight_read: u64,
    /// Unified-buffer bytes one core allocates (sum of its InitBuffer sizes).
    pub ub_bytes: u32,
    /// Kernel launches.
    pub launches: u32,
    /// All-core barriers inside the launches (between a fused kernel's parts).
    pub barriers: u32,
}

impl std::ops::AddAssign for KernelCost {
    fn add_assign(&mut self, o: KernelCost) {
        self.gm_read += o.gm_read;
        self.gm_write += o.gm_write;
        self.weight_read += o.weight_read;
        self.ub_bytes = self.ub_bytes.max(o.ub_bytes);
        self.launches += o.launches;
        self.barriers += o.barriers;
    }
}

/// One weight argument as a kernel sees it.
#[derive(Clone, Copy, Debug)]
pub struct WeightDims {
    /// Bytes this device holds.
    pub bytes: u64,
    pub ggml_type: u32,
    /// GGUF `ne0` (the row length) and `ne1`.
    pub ne0: u64,
    pub ne1: u64,
    /// Routed experts: how many expert ids the device holds, of `n_expert`.
    pub experts: Option<(u32, u32)>,
}

/// The dimensions of one launch that its cost depends on.
#[derive(Clone, Debug, Default)]
pub struct LaunchDims {
    /// Token rows of the launch (1 in decode).
    pub tokens: u64,
    /// Position of the last token (sets the attention rows).
    pub pos: u64,
    /// Activation bytes per token row: each input, then each output, in argument order.
    pub inputs: Vec<u64>,
    pub outputs: Vec<u64>,
    pub weights: Vec<WeightDims>,
    /// Bytes per row of each state argument.
    pub state_rows: Vec<u64>,
    pub heads: u64,
    pub head_dim: u64,
    pub window: u64,
    pub ratio: u64,
    pub top_k: u64,
    pub k: u64,
    pub n_expert: u64,
}

fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

/// Unified-buffer bytes one core of `kernel` allocates (the InitBuffer sums of its source;
/// `tests_basic` checks them against the emulation).
pub fn ub_bytes(kernel: Kernel) -> u32 {
    use Kernel::*;
    match kernel {
        RmsNormPlain | RmsNorm | HeadRmsNorm | Embed => 98_560,
        HcExpand | TakeLast | Add | Swiglu | MoeSwiglu => 114_944,
        MatvecF16 => 57_472,
        MatvecQ8_0 | MatvecQ8_0Grouped => 123_200,
        QuantizeQ8_0 | QuantizeQ8K => 35_520,
        HcWeightedSum | HcPost => 65_728,
        HcSplit => 3_392,
        HcHeadWeights => 320,
        RouterProbs => 81_984,
        RouterTopk | RouterHash => 9_280,
        MoeGateUp | MoeDown => 155_616,
        Rope | Fp8Kv | IndexerQat | KvPushRaw => 167_040,
        CompressorUpdate => 179_328,
        Attention => 133_504,
        IndexerTopk => 116_864,
        _ => 0,
    }
}

/// Bytes read and written by one primitive launch of `kernel` with dimensions `d`.
pub fn kernel_cost(kernel: Kernel, d: &LaunchDims) -> KernelCost {
    use Kernel::*;
    let t = d.tokens;
    let (ain, aout) = (sum(&d.inputs) * t, sum(&d.outputs) * t);
    let wfull: u64 = d.weights.iter().map(|w| w.bytes).sum();
    let row = |w: &WeightDims| {
        GgmlType::from_id(w.ggml_type).map_or(0, |g| g.row_bytes(w.ne0 as usize) as u64)
    };
    let cores_on = |units: u64| units.clamp(1, CORES);
    let (mut read, mut write, mut weight) = (ain, aout, 0u64);
    match kernel {
        Embed => weight = t * d.weights.first().map_or(0, row),
        RmsNormPlain | RmsNorm | HeadRmsNorm => {
            // One row per core when there are fewer rows than cores: every core reads it
            // for the sum of squares, then its own slice again.
            let segs = if kernel == HeadRmsNorm {
                t * d.heads
            } else {
                t
            };
            if segs < CORES {
                read = ain * (CORES + 1);
            } else {
                read = 2 * ain;
            }
            weight = wfull * if segs < CORES { 1 } else { segs };
        }
        MatvecF16 | MatvecQ8_0 | MatvecQ8_0Grouped => {
            // The weight is streamed once per token; every core reads the activation.
            let rows = d.weights.first().map_or(1, |w| w.ne1);
            weight = wfull * t;
            read = ain * cores_on(rows / 8);
        }
        // hc_post reads y and the residual streams once per destination stream.
        HcPost => read = 4 * ain,
        HcSplit | HcHeadWeights | RouterTopk => weight = wfull,
        RouterHash => weight = t * d.k * 4,
        Rope => read = ain + t * d.state_rows.first().copied().unwrap_or(0),
        KvPushRaw => write = t * d.state_rows.first().copied().unwrap_or(0),
        CompressorUpdate => {
            // Per token: store kv and score rows (+ one ape row); at a window end read the
            // candidates (twice the scores, once the kv), the norm and a table row, write
            // the compressed row, and (ratio 4) roll half the state.
            let w = d.inputs.first().copied().unwrap_or(0);
            let hd4 = d.head_dim * 4;
            let ape_row = d.weights.first().map_or(0, |a| a.bytes / d.ratio.max(1));
            let cands = if d.ratio == 4 { 8 } else { d.ratio };
            let emit = (0..t)
                .filter(|i| (d.pos + 1 - (t - 1) + i).is_multiple_of(d.ratio.max(1)))
                .count() as u64;
            let norm = d.weights.get(1).map_or(0, |n| n.bytes);
            weight = t * ape_row + emit * norm;
            read = ain + weight + emit * (3 * cands * hd4 + 256);
            write = t * 2 * w + emit * (hd4 + if d.ratio == 4 { 8 * w } else { 0 });
            return KernelCost {
                gm_read: read,
                gm_write: write,
                weight_read: weight,
                ub_bytes: ub_bytes(kernel),
                launches: 1,
                barriers: 0,
            };
        }
        IndexerTopk => {
            let n = (d.pos + 1) / d.ratio.max(1);
            if n > d.top_k {
                read = ain + t * n * d.head_dim * 4;
            }
        }
        Attention => {
            let raw = (d.pos + 1).min(d.window);
            let comp = match d.ratio {
                0 => 0,
                4 => ((d.pos + 1) / 4).min(d.top_k),
                r => (d.pos + 1) / r,
            };
            weight = wfull;
            read = ain + weight + t * (raw + comp) * d.head_dim * 4 * cores_on(d.heads);
        }
        MoeGateUp | MoeDown => {
            // Expected: each of the k slots falls in this device's shard with probability
            // shard/NE, and costs one expert's rows.
            for w in &d.weights {
                let (e0, e1) = w.experts.unwrap_or((0, d.n_expert as u32));
                let shard = (e1 - e0) as u64;
                if shard > 0 && d.n_expert > 0 {
                    weight += t * d.k * (w.bytes / shard) * shard / d.n_expert;
                }
            }
            read = ain * CORES;
        }
        _ => {}
    }
    KernelCost {
        gm_read: read + weight,
        gm_write: write,
        weight_read: weight,
        ub_bytes: ub_bytes(kernel),
        launches: 1,
        barriers: 0,
    }
}

fn attr(l: &Launch, name: &str) -> u64 {
    l.int(name).unwrap_or(0).max(0) as u64
}

/// The dimensions of `l` in `plans` for `tokens` rows ending at position `pos`.
pub fn launch_dims(plans: &PlanSet, l: &Launch, tokens: usize, pos: usize) -> LaunchDims {
    let outputs = match l.kernel {
        Kernel::HcSplit => 3,
        Kernel::RouterTopk | Kernel::RouterHash | Kernel::MoeGateUp => 2,
        Kernel::KvPushRaw | Kernel::CompressorUpdate => 0,
        _ => 1,
    };
    let bufs: Vec<Buf> = l
        .args
        .iter()
        .filter_map(|a| if let Arg::Buf(b) = a { Some(*b) } else { None })
        .collect();
    let split = bufs.len().saturating_sub(outputs);
    let mut d = LaunchDims {
        tokens: if l.one_row { 1 } else { tokens as u64 },
        pos: pos as u64,
        inputs: bufs[..split].iter().map(|b| b.row_bytes as u64).collect(),
        outputs: bufs[split..].iter().map(|b| b.row_bytes as u64).collect(),
        heads: attr(l, "heads"),
        head_dim: attr(l, "head_dim"),
        window: attr(l, "window"),
        ratio: attr(l, "ratio"),
        top_k: attr(l, "top_k"),
        k: attr(l, "k"),
        ..Default::default()
    };
    for a in l.args {
        match a {
            Arg::Weight(i) => {
                if let Some(w) = plans.weights.get(*i as usize) {
                    d.weights.push(WeightDims {
                        bytes: w.bytes,
                        ggml_type: w.ggml_type,
                        ne0: w.dims.first().copied().unwrap_or(0),
                        ne1: w.dims.get(1).copied().unwrap_or(1),
                        experts: w.experts,
                    });
                    if w.experts.is_some() {
                        d.n_expert = w.dims.last().copied().unwrap_or(0);
                    }
                }
            }
            Arg::State(i) => {
                if let Some(s) = plans.states.get(*i as usize) {
                    d.state_rows.push(s.width as u64 * 4);
                }
            }
            _ => {}
        }
    }
    if l.kernel == Kernel::Attention && d.top_k == 0 && d.ratio == 4 {
        d.top_k = bufs.get(1).map_or(0, |b| b.width as u64);
    }
    d
}

/// Cost of a launch, fused kernels as the sum of their parts in one launch with a barrier
/// between consecutive parts (each core writes its 32-byte slot and reads every core's).
pub fn launch_cost(plans: &PlanSet, l: &Launch, tokens: usize, pos: usize) -> KernelCost {
    if l.kernel.is_fused() && !l.parts.is_empty() {
        let mut c = KernelCost::default();
        for p in l.parts {
            c += launch_cost(plans, p, tokens, pos);
        }
        c.launches = 1;
        c.barriers = l.parts.len() as u32 - 1;
        c.gm_write += c.barriers as u64 * CORES * 32;
        c.gm_read += c.barriers as u64 * CORES * CORES * 32;
        return c;
    }
    kernel_cost(l.kernel, &launch_dims(plans, l, tokens, pos))
}

/// Decode speed estimate of one token on one Atlas 300I Duo.
#[derive(Clone, Debug, Default)]
pub struct Estimate {
    /// Global-memory bytes per device (weights, activations and state).
    pub device_bytes: Vec<u64>,
    /// Weight bytes read per token, per device.
    pub weight_bytes: Vec<u64>,
    pub launches: u64,
    pub barriers: u64,
    pub copy_bytes: u64,
    /// Seconds per token and its inverse.
    pub seconds: f64,
    pub tokens_per_s: f64,
}

impl Estimate {
    /// All weight bytes read per token.
    pub fn total_weight_bytes(&self) -> u64 {
        self.weight_bytes.iter().sum()
    }
}

struct Recorder<'p> {
    plans: &'p PlanSet,
    pos: usize,
    est: Estimate,
}

impl Executor for Recorder<'_> {
    fn launch(&mut self, l: &'static Launch) {
        let c = launch_cost(self.plans, l, 1, self.pos);
        let dev = l.device as usize;
        if self.est.device_bytes.len() <= dev {
            self.est.device_bytes.resize(dev + 1, 0);
            self.est.weight_bytes.resize(dev + 1, 0);
        }
        self.est.device_bytes[dev] += c.gm_read + c.gm_write;
        self.est.weight_bytes[dev] += c.weight_read;
        self.est.launches += c.launches as u64;
        self.est.barriers += c.barriers as u64;
        self.est.seconds += (c.gm_read + c.gm_write) as f64 / CHIP_BANDWIDTH
            + LAUNCH_OVERHEAD_S
            + c.barriers as f64 * BARRIER_S;
    }
    fn copy(&mut self, src: Buf, _dst: Buf, _one_row: bool) {
        self.est.copy_bytes += src.row_bytes as u64;
        self.est.seconds += src.row_bytes as f64 / PCIE_BANDWIDTH;
    }
    fn sync(&mut self, _dev: u8) {}
    fn stage(&mut self, _tap: &'static StageTap) {}
}

/// Walks `plans.decode` at [`DEFAULT_POS`] and estimates tokens/s on one Atlas 300I Duo.
pub fn decode_estimate(plans: &PlanSet) -> Estimate {
    decode_estimate_at(plans, DEFAULT_POS)
}

/// [`decode_estimate`] for a token at position `pos`.
pub fn decode_estimate_at(plans: &PlanSet, pos: usize) -> Estimate {
    let mut r = Recorder {
        plans,
        pos,
        est: Estimate::default(),
    };
    (plans.decode.run)(&mut r);
    let mut est = r.est;
    est.tokens_per_s = if est.seconds > 0.0 {
        1.0 / est.seconds
    } else {
        0.0
    };
    est
}

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;
