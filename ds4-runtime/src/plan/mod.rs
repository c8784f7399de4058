//! The static plan: what `ds4-codegen` emits and a backend executes.
//!
//! `build.rs` turns `graphs/ds4_flash.ron` into one Rust function per (profile,
//! device count, phase). Each function is a straight-line launch sequence: it
//! calls an [`Executor`] with [`Launch`]es whose buffers are constant offsets into
//! one arena per device, explicit cross-device copies, synchronisation points and
//! stage taps. Everything a backend needs besides that sequence is in the
//! [`PlanInfo`] next to it: arena sizes, the weight table (GGUF names resolved per
//! layer), the per-session state table and the profile's bindings.
//!
//! Invariants the compiler guarantees (and `tests/plan_check.rs` re-proves):
//! buffers live at the same time never overlap; every input is written before it
//! is read; every copy moves exactly what the other device consumes.

mod kernel;

pub use kernel::Kernel;

/// Element type of an activation buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    I32,
    /// Q8_0 activation blocks: f32 scale + 32 × i8 (36 bytes per 32 values).
    Q8_0,
    /// Q8_K activation blocks: f32 scale + 256 × i8 + 16 × i16 (292 bytes per 256).
    Q8K,
}

/// A region of a device arena holding one row per token of the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    pub dev: u8,
    /// Byte offset of row 0 in the device arena.
    pub offset: usize,
    /// Bytes per token row.
    pub row_bytes: usize,
    /// Values per token row (f32/i32 elements, or quantised values).
    pub width: usize,
    pub dtype: DType,
}

/// One kernel argument, in the order of `docs/OPS.md` (inputs, then outputs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg {
    Buf(Buf),
    /// Index into [`PlanInfo::weights`].
    Weight(u32),
    /// Index into [`PlanInfo::states`].
    State(u32),
    /// The chunk's token ids.
    Tokens,
    /// Position of the chunk's first token.
    Pos,
}

/// A static attribute value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f64),
}

/// One kernel launch.
#[derive(Debug)]
pub struct Launch {
    pub kernel: Kernel,
    pub device: u8,
    pub args: &'static [Arg],
    pub attrs: &'static [(&'static str, AttrValue)],
    /// For fused kernels: the primitive launches they replace, in order. A backend
    /// without a native fused kernel runs these instead.
    pub parts: &'static [Launch],
    /// True when the launch works on one row (the output head after `take_last`)
    /// rather than on every token of the chunk.
    pub one_row: bool,
}

impl Launch {
    /// Integer attribute by name.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.attrs
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                AttrValue::Int(i) => Some(*i),
                AttrValue::Float(_) => None,
            })
    }

    /// Float attribute by name (integers are widened).
    pub fn float(&self, name: &str) -> Option<f64> {
        self.attrs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| match v {
                AttrValue::Int(i) => *i as f64,
                AttrValue::Float(f) => *f,
            })
    }
}

/// How a stage dump is named on disk (VERIFY.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageFile {
    /// `prefill_l<L>_<name>.f32` / `decode_p<pos>_l<L>_<name>.f32` (or without `_l<L>`
    /// for stages outside a layer).
    PerPhase,
    /// `<name>_<nnn>.f32`, one file per call, numbered from 000.
    Counter,
}

/// A diagnostic tap: after the producing launch, the backend may dump `buf`.
#[derive(Clone, Copy, Debug)]
pub struct StageTap {
    pub name: &'static str,
    pub layer: Option<u16>,
    pub buf: Buf,
    pub one_row: bool,
    pub file: StageFile,
}

/// What a generated plan function calls, in order.
pub trait Executor {
    fn launch(&mut self, launch: &'static Launch);
    /// Copy `src` (on one device) to `dst` (on another): `rows` token rows.
    fn copy(&mut self, src: Buf, dst: Buf, one_row: bool);
    /// The host waits for everything queued on `dev`.
    fn sync(&mut self, dev: u8);
    fn stage(&mut self, tap: &'static StageTap);
}

/// Decode (one token) or prefill (a chunk of tokens, layer-major).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Session start: builds the RoPE tables and resets the state.
    Init,
    Decode,
    Prefill,
}

/// A weight as one device sees it.
#[derive(Debug)]
pub struct WeightSlot {
    /// GGUF tensor name, resolved for its layer.
    pub gguf_name: &'static str,
    /// ggml type id (FORMAT.md §1.5).
    pub ggml_type: u32,
    /// GGUF dims, `ne0` first.
    pub dims: &'static [u64],
    pub optional: bool,
    pub device: u8,
    /// Routed experts: the expert ids `[e0, e1)` this device holds.
    pub experts: Option<(u32, u32)>,
    /// Bytes this device holds of the tensor (the shard for experts).
    pub bytes: u64,
}

/// How many rows a state tensor has for a session of `ctx` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateRows {
    Fixed(usize),
    /// `ctx / div + add` rows (compressed rows: `ctx / ratio + 2`).
    PerCtx {
        div: usize,
        add: usize,
    },
}

impl StateRows {
    pub fn at(&self, ctx: usize) -> usize {
        match *self {
            StateRows::Fixed(n) => n,
            StateRows::PerCtx { div, add } => ctx / div + add,
        }
    }
}

/// What a state tensor holds at session start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StateInit {
    Zero,
    /// Compressor scores start at ds4's NEG_INF sentinel (-1e30).
    NegInf,
    /// A RoPE cos/sin table: one row per position, `n_rot/2` (cos, sin) pairs,
    /// built once per session by MODEL.md §7's iterative procedure.
    Rope {
        base: f64,
        freq_scale: f64,
        ext_factor: f64,
        corr_lo: f64,
        corr_hi: f64,
    },
}

/// A per-session persistent tensor.
#[derive(Debug)]
pub struct StateSlot {
    pub name: &'static str,
    pub layer: Option<u16>,
    pub device: u8,
    pub dtype: DType,
    /// Values per row.
    pub width: usize,
    pub rows: StateRows,
    pub init: StateInit,
}

/// Profile bindings and the metadata they must match.
#[derive(Debug)]
pub struct ProfileInfo {
    pub name: &'static str,
    /// Shape symbols and their values.
    pub symbols: &'static [(&'static str, i64)],
    /// GGUF metadata keys and the integer each must hold.
    pub metadata: &'static [(&'static str, i64)],
    /// Per-layer compression ratio, checked against `deepseek4.attention.compress_ratios`.
    pub compress_ratios: &'static [u32],
    pub hash_layer_count: u32,
    /// Largest prefill chunk the prefill plans are sized for.
    pub chunk: usize,
    pub vocab: usize,
    pub n_embd: usize,
    /// Per-device memory budget in bytes (0 = none).
    pub budget_bytes: u64,
}

/// The plan of one phase.
#[derive(Debug)]
pub struct PhasePlan {
    pub phase: Phase,
    /// Arena bytes per device.
    pub arena_bytes: &'static [usize],
    /// The logits buffer (one row of `vocab` f32); absent in `Init`.
    pub logits: Option<Buf>,
    /// Kernel launches per run (per decoded token, or per prefill chunk).
    pub launches: usize,
    pub run: fn(&mut dyn Executor),
}

/// Every phase of one (profile, device count, fusion) combination. The weight and
/// state tables are shared by its phases: `Arg::Weight(i)` and `Arg::State(i)` index
/// them.
#[derive(Debug)]
pub struct PlanSet {
    pub profile: &'static ProfileInfo,
    pub devices: u8,
    pub fused: bool,
    pub weights: &'static [WeightSlot],
    pub states: &'static [StateSlot],
    pub init: PhasePlan,
    pub decode: PhasePlan,
    pub prefill: PhasePlan,
    /// The machine-readable plan summary (JSON, field names documented in docs/PLAN_JSON.md).
    pub summary_json: &'static str,
}
