//! The RON schema of `graphs/ds4_flash.ron`, as serde types.
//!
//! A graph file is one [`Graph`]: the profiles (symbol bindings per model), the
//! weight table (GGUF name templates), the per-session state, the blocks of ops
//! (embedding, one layer, output head), and the fusion rules. Nothing here is
//! resolved yet: dimensions and attributes are symbol expressions (see
//! [`crate::expr`]), value references are plain strings, and which ops a layer has
//! depends on `when` tags evaluated per layer by the compiler.
//!
//! References inside op inputs:
//! * `w:<name>` a weight of [`Graph::weights`],
//! * `s:<name>` a state tensor of [`Graph::states`],
//! * `@tokens`, `@pos` the chunk's token ids and first position,
//! * anything else: a value produced earlier in the block, or a block input.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole graph file.
#[derive(Debug, Clone, Deserialize)]
pub struct Graph {
    pub profiles: Vec<Profile>,
    pub weights: Vec<WeightDecl>,
    pub states: Vec<StateDecl>,
    pub blocks: Vec<Block>,
    #[serde(default)]
    pub fusions: Vec<Fusion>,
}

/// Named bindings of the shape symbols for one model.
#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    pub name: String,
    /// Integer symbols (`E`, `H`, `D`, ...).
    pub symbols: BTreeMap<String, i64>,
    /// Float symbols (`eps`, `clamp`, RoPE bases, ...).
    #[serde(default)]
    pub floats: BTreeMap<String, f64>,
    /// GGUF metadata key -> integer expression it must equal.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Compression ratio per layer; the layer count is its length.
    pub compress_ratios: Vec<u32>,
    /// Layers `il < hash_layer_count` route by token id.
    pub hash_layer_count: u32,
    /// Rows of the largest prefill chunk.
    pub chunk: usize,
    /// Device counts to build plans for.
    pub devices: Vec<u8>,
    /// Per-device memory budget in GiB (0 = none).
    #[serde(default)]
    pub budget_gib: f64,
    /// Context length the budget is checked at.
    #[serde(default)]
    pub budget_ctx: usize,
    /// Device counts whose plans must fit the budget (all when empty): a
    /// one-device `flash` plan is for the CPU backend, whose memory is the host's.
    #[serde(default)]
    pub budget_devices: Vec<u8>,
}

/// GGUF element types the weights may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q8_0,
    Q2_K,
    IQ2_XXS,
    I32,
}

impl GgmlType {
    /// ggml type id (FORMAT.md §1.5).
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q8_0 => 8,
            GgmlType::Q2_K => 10,
            GgmlType::IQ2_XXS => 16,
            GgmlType::I32 => 26,
        }
    }

    /// (values per block, bytes per block).
    pub fn block(self) -> (u64, u64) {
        match self {
            GgmlType::F32 | GgmlType::I32 => (1, 4),
            GgmlType::F16 => (1, 2),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q2_K => (256, 84),
            GgmlType::IQ2_XXS => (256, 66),
        }
    }

    /// Bytes of a tensor with `n` elements.
    pub fn bytes(self, n: u64) -> u64 {
        let (vals, bytes) = self.block();
        n.div_ceil(vals) * bytes
    }
}

/// One weight tensor, per layer when its template contains `{layer}`.
#[derive(Debug, Clone, Deserialize)]
pub struct WeightDecl {
    pub name: String,
    /// GGUF tensor name template, e.g. `blk.{layer}.attn_q_a.weight`.
    pub gguf: String,
    pub ty: GgmlType,
    /// Dims as expressions, `ne0` first.
    pub dims: Vec<String>,
    /// Layer tags that must hold for a layer to have this weight.
    #[serde(default)]
    pub when: Vec<String>,
    #[serde(default)]
    pub optional: bool,
    /// Routed experts: the last dim is the expert id and is sharded over devices.
    #[serde(default)]
    pub experts: bool,
}

/// How many rows a state tensor has.
#[derive(Debug, Clone, Deserialize)]
pub enum Rows {
    /// A fixed number of rows (expression).
    Fixed(String),
    /// `ctx / div + add` rows.
    PerCtx { div: String, add: String },
}

/// What a state tensor holds at session start.
#[derive(Debug, Clone, Deserialize)]
pub enum Init {
    Zero,
    NegInf,
    /// A RoPE table; `yarn` selects the YaRN corr dims derived from the
    /// `orig_ctx`, `beta_fast`, `beta_slow` symbols (MODEL.md §7).
    Rope {
        base: String,
        freq_scale: String,
        ext_factor: String,
        yarn: bool,
    },
}

/// A per-session persistent tensor.
#[derive(Debug, Clone, Deserialize)]
pub struct StateDecl {
    pub name: String,
    /// Layer tags under which this declaration applies; two declarations may share a
    /// name when their tags never hold together.
    #[serde(default)]
    pub when: Vec<String>,
    /// Shared by every layer that uses it (one tensor per device), under this name.
    #[serde(default)]
    pub shared: Option<String>,
    pub width: String,
    pub rows: Rows,
    pub init: Init,
}

/// Where a block is instantiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scope {
    Once,
    PerLayer,
}

/// A sequence of ops, instantiated once or per layer.
#[derive(Debug, Clone, Deserialize)]
pub struct Block {
    pub name: String,
    pub scope: Scope,
    /// Names bound, in order, to the previous block's outputs.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Values passed, in order, to the next block.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Device expression (symbols: `layer`, `devices`, `n_layer`, profile symbols).
    #[serde(default = "default_device")]
    pub device: String,
    pub ops: Vec<OpDecl>,
    #[serde(default)]
    pub stages: Vec<StageDecl>,
}

fn default_device() -> String {
    "0".to_string()
}

/// One op of a block.
#[derive(Debug, Clone, Deserialize)]
pub struct OpDecl {
    /// Op kind, a primitive of docs/OPS.md.
    pub op: String,
    #[serde(rename = "in", default)]
    pub inputs: Vec<String>,
    #[serde(rename = "out", default)]
    pub outputs: Vec<String>,
    /// Attribute name -> expression.
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
    /// Tags that must all hold (`!tag` negates).
    #[serde(default)]
    pub when: Vec<String>,
}

/// A phase a stage can be dumped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PhaseTag {
    Decode,
    Prefill,
}

/// How a stage dump file is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum StageFileKind {
    #[default]
    PerPhase,
    Counter,
}

/// A diagnostic name for a value (VERIFY.md).
#[derive(Debug, Clone, Deserialize)]
pub struct StageDecl {
    pub value: String,
    /// Stage name; defaults to the value name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_phases")]
    pub phases: Vec<PhaseTag>,
    #[serde(default)]
    pub file: StageFileKind,
}

fn default_phases() -> Vec<PhaseTag> {
    vec![PhaseTag::Prefill]
}

impl StageDecl {
    /// The stage name.
    pub fn stage_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.value)
    }
}

/// A fusion rule: a run of primitives replaced by one kernel.
#[derive(Debug, Clone, Deserialize)]
pub struct Fusion {
    pub name: String,
    pub kernel: String,
    /// Op kinds in order; `a|b` accepts either.
    pub pattern: Vec<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}
