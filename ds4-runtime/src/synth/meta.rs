//! The 49 metadata entries of `SYNTH.md` §4, including the tokenizer arrays
//! built from the embedded `tokenizer.json` (§4.1).

use std::io::{self, Write};

use crate::gguf::write as w;

use super::layout::Dims;
use super::{Rule, SynthError, SynthProfile};

/// The embedded DeepSeek V4 tokenizer (see `data/tokenizer/README.md`).
pub static TOKENIZER_JSON: &[u8] =
    include_bytes!("../../data/tokenizer/deepseek-v4-tokenizer.json");

/// Number of metadata entries written.
pub const N_KV: u64 = 49;

/// Token strings, token types and merges, in id order.
pub struct Vocab {
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub merges: Vec<String>,
}

/// Builds the vocabulary arrays for `n_vocab` ids from the embedded tokenizer.
pub fn vocab(n_vocab: usize) -> Result<Vocab, SynthError> {
    let bad = |what: &str| SynthError::Tokenizer(what.to_string());
    let json: serde_json::Value =
        serde_json::from_slice(TOKENIZER_JSON).map_err(|e| SynthError::Tokenizer(e.to_string()))?;

    let mut tokens: Vec<Option<String>> = vec![None; n_vocab];
    let mut types = vec![1i32; n_vocab];

    let model_vocab = json["model"]["vocab"]
        .as_object()
        .ok_or_else(|| bad("model.vocab is not an object"))?;
    for (text, id) in model_vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| bad("model.vocab id is not an integer"))? as usize;
        if id < n_vocab {
            tokens[id] = Some(text.clone());
        }
    }
    let added = json["added_tokens"]
        .as_array()
        .ok_or_else(|| bad("added_tokens is not an array"))?;
    for t in added {
        let id = t["id"]
            .as_u64()
            .ok_or_else(|| bad("added token without id"))? as usize;
        let content = t["content"]
            .as_str()
            .ok_or_else(|| bad("added token without content"))?;
        if id < n_vocab {
            tokens[id] = Some(content.to_string());
            types[id] = if t["special"].as_bool() == Some(true) {
                3
            } else {
                4
            };
        }
    }
    let tokens = tokens
        .into_iter()
        .enumerate()
        .map(|(id, t)| t.ok_or_else(|| SynthError::Tokenizer(format!("no token for id {id}"))))
        .collect::<Result<Vec<_>, _>>()?;

    let merges = json["model"]["merges"]
        .as_array()
        .ok_or_else(|| bad("model.merges is not an array"))?;
    let merges = merges
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Array(p) if p.len() == 2 => Ok(format!(
                "{} {}",
                p[0].as_str().unwrap_or_default(),
                p[1].as_str().unwrap_or_default()
            )),
            _ => Err(bad("a merge is neither a string nor a pair")),
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Vocab {
        tokens,
        types,
        merges,
    })
}

/// `general.name` of a profile under a rule.
pub fn model_name(profile: SynthProfile, rule: Rule) -> String {
    let base = format!("ds4-oracle-synth-{}", profile.name());
    match rule {
        Rule::V1 => base,
        Rule::V2 => format!("{base}-v2"),
    }
}

/// Writes the metadata entries in the order of `SYNTH.md` §4.
pub fn write_metadata(
    out: &mut impl Write,
    profile: SynthProfile,
    rule: Rule,
    vocab: &Vocab,
) -> io::Result<()> {
    let d = Dims::of(profile);
    let ratios: Vec<u32> = (0..d.n_layer).map(|il| d.ratio(il)).collect();
    let eps = f32::from_bits(0x3586_37BD);
    let u = |v: u64| v as u32;

    w::kv_str(out, "general.architecture", "deepseek4")?;
    w::kv_str(out, "general.name", &model_name(profile, rule))?;
    w::kv_u32(out, "general.quantization_version", 2)?;
    w::kv_u32(out, "deepseek4.context_length", 1_048_576)?;
    w::kv_u32(out, "deepseek4.block_count", d.n_layer as u32)?;
    w::kv_u32(out, "deepseek4.embedding_length", u(d.n_embd))?;
    w::kv_u32(out, "deepseek4.vocab_size", u(d.n_vocab))?;
    w::kv_u32(out, "deepseek4.attention.head_count", u(d.n_head))?;
    w::kv_u32(out, "deepseek4.attention.head_count_kv", 1)?;
    w::kv_u32(out, "deepseek4.attention.key_length", u(d.head_dim))?;
    w::kv_u32(out, "deepseek4.attention.value_length", u(d.head_dim))?;
    w::kv_u32(out, "deepseek4.attention.q_lora_rank", u(d.lora_q))?;
    w::kv_u32(out, "deepseek4.attention.output_lora_rank", u(d.lora_o))?;
    w::kv_u32(
        out,
        "deepseek4.attention.output_group_count",
        u(d.out_group),
    )?;
    w::kv_u32(out, "deepseek4.attention.sliding_window", 128)?;
    w::kv_array_u32(out, "deepseek4.attention.compress_ratios", &ratios)?;
    w::kv_f32(out, "deepseek4.attention.compress_rope_freq_base", 160000.0)?;
    w::kv_u32(
        out,
        "deepseek4.attention.indexer.head_count",
        u(d.idx_heads),
    )?;
    w::kv_u32(
        out,
        "deepseek4.attention.indexer.key_length",
        u(d.idx_head_dim),
    )?;
    w::kv_u32(out, "deepseek4.attention.indexer.top_k", d.idx_top_k)?;
    w::kv_f32(out, "deepseek4.attention.layer_norm_rms_epsilon", eps)?;
    w::kv_u32(out, "deepseek4.rope.dimension_count", 64)?;
    w::kv_f32(out, "deepseek4.rope.freq_base", 10000.0)?;
    w::kv_str(out, "deepseek4.rope.scaling.type", "yarn")?;
    w::kv_f32(out, "deepseek4.rope.scaling.factor", 16.0)?;
    w::kv_u32(out, "deepseek4.rope.scaling.original_context_length", 65536)?;
    w::kv_f32(out, "deepseek4.rope.scaling.yarn_beta_fast", 32.0)?;
    w::kv_f32(out, "deepseek4.rope.scaling.yarn_beta_slow", 1.0)?;
    w::kv_u32(out, "deepseek4.expert_count", u(d.n_expert))?;
    w::kv_u32(out, "deepseek4.expert_used_count", u(d.n_expert_used))?;
    w::kv_u32(out, "deepseek4.expert_shared_count", 1)?;
    w::kv_u32(out, "deepseek4.expert_feed_forward_length", u(d.n_ff_exp))?;
    w::kv_f32(out, "deepseek4.expert_weights_scale", 1.5)?;
    w::kv_bool(out, "deepseek4.expert_weights_norm", true)?;
    w::kv_u32(out, "deepseek4.hash_layer_count", d.hash_layers as u32)?;
    w::kv_array_f32(out, "deepseek4.swiglu_clamp_exp", &vec![10.0; d.n_layer])?;
    w::kv_u32(out, "deepseek4.hyper_connection.count", u(d.n_hc))?;
    w::kv_u32(out, "deepseek4.hyper_connection.sinkhorn_iterations", 20)?;
    w::kv_f32(out, "deepseek4.hyper_connection.epsilon", eps)?;
    w::kv_str(out, "tokenizer.ggml.model", "gpt2")?;
    w::kv_str(out, "tokenizer.ggml.pre", "joyai-llm")?;
    w::kv_array_str(out, "tokenizer.ggml.tokens", &vocab.tokens)?;
    w::kv_array_i32(out, "tokenizer.ggml.token_type", &vocab.types)?;
    w::kv_array_str(out, "tokenizer.ggml.merges", &vocab.merges)?;
    w::kv_u32(out, "tokenizer.ggml.bos_token_id", 0)?;
    w::kv_u32(out, "tokenizer.ggml.eos_token_id", 1)?;
    w::kv_u32(out, "tokenizer.ggml.padding_token_id", 1)?;
    w::kv_bool(out, "tokenizer.ggml.add_bos_token", true)?;
    w::kv_bool(out, "tokenizer.ggml.add_eos_token", false)
}
