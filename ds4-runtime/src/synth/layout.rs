//! What a synthetic file contains: profile dimensions, tensor list and generators.
//!
//! The tensor order, names, shapes and per-tensor generator parameters are
//! those of `SYNTH.md` §6-§7 (rule v1) plus the masks and changed values of
//! §11 (rule v2). The same list, with 43 layers, is the real DS4 Flash layout
//! of `FORMAT.md` §2 that the sparse `Flash` profile writes.

use crate::quant::GgmlType;

use super::{Rule, SynthProfile};

/// The dimensions of a profile (`SYNTH.md` §2).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub n_layer: usize,
    pub n_embd: u64,
    pub n_vocab: u64,
    pub n_head: u64,
    pub head_dim: u64,
    pub out_group: u64,
    pub lora_q: u64,
    pub lora_o: u64,
    pub n_expert: u64,
    pub n_expert_used: u64,
    pub n_ff_exp: u64,
    pub hash_layers: usize,
    pub idx_heads: u64,
    pub idx_head_dim: u64,
    pub idx_top_k: u32,
    pub n_hc: u64,
}

impl Dims {
    /// The dimensions of `profile`.
    pub fn of(profile: SynthProfile) -> Dims {
        let flash = Dims {
            n_layer: 43,
            n_embd: 4096,
            n_vocab: 129280,
            n_head: 64,
            head_dim: 512,
            out_group: 8,
            lora_q: 1024,
            lora_o: 1024,
            n_expert: 256,
            n_expert_used: 6,
            n_ff_exp: 2048,
            hash_layers: 3,
            idx_heads: 64,
            idx_head_dim: 128,
            idx_top_k: 512,
            n_hc: 4,
        };
        match profile {
            SynthProfile::Flash => flash,
            SynthProfile::Flash4 => Dims {
                n_layer: 4,
                ..flash
            },
            SynthProfile::Tiny => Dims {
                n_layer: 6,
                n_embd: 256,
                n_head: 8,
                head_dim: 128,
                out_group: 2,
                lora_q: 128,
                lora_o: 128,
                n_expert: 16,
                n_ff_exp: 256,
                idx_heads: 4,
                idx_top_k: 32,
                ..flash
            },
        }
    }

    /// Compression ratio of layer `il`: 0, 0, then 4 (even) / 128 (odd).
    pub fn ratio(&self, il: usize) -> u32 {
        match il {
            0 | 1 => 0,
            _ if il.is_multiple_of(2) => 4,
            _ => 128,
        }
    }

    pub fn hc_dim(&self) -> u64 {
        self.n_embd * self.n_hc
    }

    pub fn hc_mix(&self) -> u64 {
        2 * self.n_hc + self.n_hc * self.n_hc
    }
}

/// How a tensor's values are generated (`SYNTH.md` §7, §11).
#[derive(Clone, Debug, PartialEq)]
pub enum Gen {
    /// F16 `sym_6(w)·2^−E`; `zero_in_hi`: zero inputs `k mod n_embd >= H` (v2).
    F16w { e: i32, zero_in_hi: Option<u64> },
    /// F32 `(center + sym_3(w))/64` (center 64 in v1).
    Norm { center: i64 },
    /// F32 `sym_bits(w)/2^shift`, minus `post_bias` on entries `HC..2HC` (v2).
    Small {
        bits: u32,
        shift: i32,
        post_bias: Option<f32>,
    },
    /// F32 `(8 + w mod 8)/16`.
    HcScale,
    /// F32 tiered router bias (v2): +bias at 2 experts, −bias at 1, 0 elsewhere.
    Tier { bias: f32 },
    /// Q8_0 with the given exponent and quant bits, plus the v2 masks.
    Q8_0 { e: i32, qbits: u32, mask: Q8Mask },
    /// IQ2_XXS: f16 scales and raw random payload bytes.
    Iq2Xxs { e: i32 },
    /// Q2_K; `zero_out_lo`: zero blocks of output rows `< H` (v2).
    Q2K { e: i32, zero_out_lo: Option<u64> },
    /// I32 hash-routing table: K distinct experts per token.
    Tid2Eid { n_expert: u64 },
}

/// The v2 block masks of a Q8_0 tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Q8Mask {
    /// Zero blocks reading inputs `>= H`.
    pub zero_in_hi: Option<u64>,
    /// Zero blocks of output rows `< H`.
    pub zero_out_lo: Option<u64>,
    /// Blocks reading inputs `>= hi_from` use exponent `E − hi_gain`, and row `zero_row` is zero.
    pub hi: Option<(u64, i32, u64)>,
}

/// One tensor of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorPlan {
    pub name: String,
    pub ty: GgmlType,
    pub dims: Vec<u64>,
    pub gen: Gen,
}

impl TensorPlan {
    /// Data bytes (without padding).
    pub fn n_bytes(&self) -> u64 {
        let n: u64 = self.dims.iter().product();
        n / self.ty.block_elems() as u64 * self.ty.block_bytes() as u64
    }
}

const C_F16W: i32 = 5;
const C_Q8_0: i32 = 7;
const C_IQ2_XXS: i32 = 6;
const C_Q2_K: i32 = 4;

fn exponent(c: i32, fan_in: u64, gain: i32) -> i32 {
    c + super::prng::half_log2(fan_in) - gain
}

/// The tensors of a profile in file order.
pub fn plan(profile: SynthProfile, rule: Rule) -> Vec<TensorPlan> {
    let d = Dims::of(profile);
    let v2 = rule == Rule::V2;
    let h = d.n_embd / 2;
    let zin = v2.then_some(h);
    let e = d.n_embd;

    let f16w = |fan, gain, zero_in_hi| Gen::F16w {
        e: exponent(C_F16W, fan, gain),
        zero_in_hi,
    };
    let q8 = |fan, gain, mask| Gen::Q8_0 {
        e: exponent(C_Q8_0, fan, gain),
        qbits: 7,
        mask,
    };
    let reader = || Q8Mask {
        zero_in_hi: zin,
        ..Q8Mask::default()
    };
    let writer = || Q8Mask {
        zero_out_lo: zin,
        ..Q8Mask::default()
    };
    let norm = Gen::Norm { center: 64 };
    let base = Gen::Small {
        bits: 4,
        shift: 4,
        post_bias: v2.then_some(8.5),
    };

    let mut out = Vec::new();
    let mut add = |name: String, ty, dims: &[u64], gen| {
        out.push(TensorPlan {
            name,
            ty,
            dims: dims.to_vec(),
            gen,
        });
    };
    use GgmlType::*;

    add(
        "token_embd.weight".into(),
        F16,
        &[e, d.n_vocab],
        f16w(1, 0, zin),
    );

    for il in 0..d.n_layer {
        let r = d.ratio(il) as u64;
        let coff = if r == 4 { 2 } else { 1 };
        let n = |s: &str| format!("blk.{il}.{s}");
        let (hcd, mix) = (d.hc_dim(), d.hc_mix());
        let q_dim = d.n_head * d.head_dim;
        let group_dim = d.head_dim * (d.n_head / d.out_group);
        let out_low = d.out_group * d.lora_o;

        add(n("hc_attn_fn.weight"), F16, &[hcd, mix], f16w(hcd, 0, None));
        add(n("hc_attn_scale.weight"), F32, &[3], Gen::HcScale);
        add(n("hc_attn_base.weight"), F32, &[mix], base.clone());
        add(n("attn_norm.weight"), F32, &[e], norm.clone());
        add(
            n("attn_q_a.weight"),
            Q8_0,
            &[e, d.lora_q],
            q8(e, 0, reader()),
        );
        add(n("attn_q_a_norm.weight"), F32, &[d.lora_q], norm.clone());
        add(
            n("attn_q_b.weight"),
            Q8_0,
            &[d.lora_q, q_dim],
            q8(d.lora_q, 0, Q8Mask::default()),
        );
        add(
            n("attn_kv.weight"),
            Q8_0,
            &[e, d.head_dim],
            q8(e, 0, reader()),
        );
        add(n("attn_kv_a_norm.weight"), F32, &[d.head_dim], norm.clone());
        add(
            n("attn_sinks.weight"),
            F32,
            &[d.n_head],
            Gen::Small {
                bits: 4,
                shift: 4,
                post_bias: None,
            },
        );
        add(
            n("attn_output_a.weight"),
            Q8_0,
            &[group_dim, out_low],
            q8(group_dim, 1, Q8Mask::default()),
        );
        add(
            n("attn_output_b.weight"),
            Q8_0,
            &[out_low, e],
            q8(out_low, 1, writer()),
        );

        if r != 0 {
            let w = coff * d.head_dim;
            add(
                n("attn_compressor_ape.weight"),
                F16,
                &[w, r],
                f16w(1, -3, None),
            );
            add(
                n("attn_compressor_kv.weight"),
                F16,
                &[e, w],
                f16w(e, 0, zin),
            );
            add(
                n("attn_compressor_gate.weight"),
                F16,
                &[e, w],
                f16w(e, 0, zin),
            );
            add(
                n("attn_compressor_norm.weight"),
                F32,
                &[d.head_dim],
                norm.clone(),
            );
        }
        if r == 4 {
            let iw = 2 * d.idx_head_dim;
            add(
                n("indexer.attn_q_b.weight"),
                F16,
                &[d.lora_q, d.idx_heads * d.idx_head_dim],
                f16w(d.lora_q, 0, None),
            );
            add(
                n("indexer.proj.weight"),
                F16,
                &[e, d.idx_heads],
                f16w(e, 0, zin),
            );
            add(
                n("indexer_compressor_ape.weight"),
                F16,
                &[iw, 4],
                f16w(1, -3, None),
            );
            add(
                n("indexer_compressor_kv.weight"),
                F16,
                &[e, iw],
                f16w(e, 0, zin),
            );
            add(
                n("indexer_compressor_gate.weight"),
                F16,
                &[e, iw],
                f16w(e, 0, zin),
            );
            add(
                n("indexer_compressor_norm.weight"),
                F32,
                &[d.idx_head_dim],
                norm.clone(),
            );
        }

        add(n("hc_ffn_fn.weight"), F16, &[hcd, mix], f16w(hcd, 0, None));
        add(n("hc_ffn_scale.weight"), F32, &[3], Gen::HcScale);
        add(n("hc_ffn_base.weight"), F32, &[mix], base.clone());
        add(n("ffn_norm.weight"), F32, &[e], norm.clone());
        add(
            n("ffn_gate_inp.weight"),
            F16,
            &[e, d.n_expert],
            f16w(e, 0, zin),
        );

        let hash = il < d.hash_layers;
        if !hash {
            let gen = if v2 {
                Gen::Tier { bias: 8.0 }
            } else {
                Gen::Small {
                    bits: 4,
                    shift: 8,
                    post_bias: None,
                }
            };
            add(n("exp_probs_b.bias"), F32, &[d.n_expert], gen);
        }
        let (ff, ne) = (d.n_ff_exp, d.n_expert);
        let iq2 = Gen::Iq2Xxs {
            e: exponent(C_IQ2_XXS, e, 2),
        };
        add(
            n("ffn_gate_exps.weight"),
            IQ2_XXS,
            &[e, ff, ne],
            iq2.clone(),
        );
        add(n("ffn_up_exps.weight"), IQ2_XXS, &[e, ff, ne], iq2);
        add(
            n("ffn_down_exps.weight"),
            Q2_K,
            &[ff, e, ne],
            Gen::Q2K {
                e: exponent(C_Q2_K, ff, -3),
                zero_out_lo: zin,
            },
        );
        add(
            n("ffn_gate_shexp.weight"),
            Q8_0,
            &[e, ff],
            q8(e, 2, reader()),
        );
        add(n("ffn_up_shexp.weight"), Q8_0, &[e, ff], q8(e, 2, reader()));
        let down = Gen::Q8_0 {
            e: exponent(C_Q8_0, ff, -1),
            qbits: 5,
            mask: writer(),
        };
        add(n("ffn_down_shexp.weight"), Q8_0, &[ff, e], down);
        if hash {
            add(
                n("ffn_gate_tid2eid.weight"),
                I32,
                &[d.n_expert_used, d.n_vocab],
                Gen::Tid2Eid { n_expert: ne },
            );
        }
    }

    add(
        "output_hc_base.weight".into(),
        F32,
        &[d.n_hc],
        Gen::Small {
            bits: 4,
            shift: 4,
            post_bias: None,
        },
    );
    add(
        "output_hc_fn.weight".into(),
        F16,
        &[d.hc_dim(), d.n_hc],
        f16w(d.hc_dim(), 0, None),
    );
    add("output_hc_scale.weight".into(), F32, &[1], Gen::HcScale);
    add(
        "output_norm.weight".into(),
        F32,
        &[e],
        Gen::Norm {
            center: if v2 { 96 } else { 64 },
        },
    );
    let out_mask = Q8Mask {
        hi: v2.then_some((h, 4, 1)),
        ..Q8Mask::default()
    };
    add(
        "output.weight".into(),
        Q8_0,
        &[e, d.n_vocab],
        q8(e, 2, out_mask),
    );
    out
}
