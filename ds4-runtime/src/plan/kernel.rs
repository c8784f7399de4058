//! The kernel catalog as the runtime sees it: one variant per op of `docs/OPS.md`.
//!
//! The generated plans name these variants, so a kernel the compiler emits but the
//! runtime does not know is a compile error, not a run-time surprise.

/// Every primitive and fused kernel a plan may launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    // Primitives.
    Embed,
    HcExpand,
    RmsNormPlain,
    RmsNorm,
    HeadRmsNorm,
    MatvecF16,
    QuantizeQ8_0,
    MatvecQ8_0,
    MatvecQ8_0Grouped,
    HcSplit,
    HcWeightedSum,
    HcPost,
    HcHeadWeights,
    Rope,
    Fp8Kv,
    KvPushRaw,
    CompressorUpdate,
    IndexerQat,
    IndexerTopk,
    Attention,
    RouterProbs,
    RouterTopk,
    RouterHash,
    QuantizeQ8K,
    MoeGateUp,
    MoeSwiglu,
    MoeDown,
    Swiglu,
    Add,
    TakeLast,
    // Fused kernels (docs/OPS.md, "Fused kernels").
    HcPreNorm,
    Q8Matvec,
    Q8MatvecGrouped,
    Q8MatvecNorm,
    KvRopeStore,
    Compressor,
    Router,
    MoeRouted,
    SharedExpert,
    OutputHead,
}

impl Kernel {
    /// The op name used in the RON and in `docs/OPS.md`.
    pub fn op_name(self) -> &'static str {
        use Kernel::*;
        match self {
            Embed => "embed",
            HcExpand => "hc_expand",
            RmsNormPlain => "rms_norm_plain",
            RmsNorm => "rms_norm",
            HeadRmsNorm => "head_rms_norm",
            MatvecF16 => "matvec_f16",
            QuantizeQ8_0 => "quantize_q8_0",
            MatvecQ8_0 => "matvec_q8_0",
            MatvecQ8_0Grouped => "matvec_q8_0_grouped",
            HcSplit => "hc_split",
            HcWeightedSum => "hc_weighted_sum",
            HcPost => "hc_post",
            HcHeadWeights => "hc_head_weights",
            Rope => "rope",
            Fp8Kv => "fp8_kv",
            KvPushRaw => "kv_push_raw",
            CompressorUpdate => "compressor_update",
            IndexerQat => "indexer_qat",
            IndexerTopk => "indexer_topk",
            Attention => "attention",
            RouterProbs => "router_probs",
            RouterTopk => "router_topk",
            RouterHash => "router_hash",
            QuantizeQ8K => "quantize_q8_k",
            MoeGateUp => "moe_gate_up",
            MoeSwiglu => "moe_swiglu",
            MoeDown => "moe_down",
            Swiglu => "swiglu",
            Add => "add",
            TakeLast => "take_last",
            HcPreNorm => "hc_pre_norm",
            Q8Matvec => "q8_matvec",
            Q8MatvecGrouped => "q8_matvec_grouped",
            Q8MatvecNorm => "q8_matvec_norm",
            KvRopeStore => "kv_rope_store",
            Compressor => "compressor",
            Router => "router",
            MoeRouted => "moe_routed",
            SharedExpert => "shared_expert",
            OutputHead => "output_head",
        }
    }

    /// True for the fused kernels, which carry their primitive parts.
    pub fn is_fused(self) -> bool {
        use Kernel::*;
        matches!(
            self,
            HcPreNorm
                | Q8Matvec
                | Q8MatvecGrouped
                | Q8MatvecNorm
                | KvRopeStore
                | Compressor
                | Router
                | MoeRouted
                | SharedExpert
                | OutputHead
        )
    }
}
