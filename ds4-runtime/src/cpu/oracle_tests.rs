//! The kernels composed into the whole forward pass of the synthetic tiny model and
//! compared with the reference's stage dumps and logits (`VERIFY.md`).
//!
//! This is a deliberately plain token-by-token driver, not the executor: it exists to
//! check that the kernels, wired as MODEL §16 says, reproduce ds4's numbers. The
//! reference files live in `../shared/vectors/oracle/`; when they are absent the test
//! says so and checks nothing.

use std::path::{Path, PathBuf};

use super::*;
use crate::gguf::GgufFile;
use crate::quant::q8_0::BlockQ8_0Act;
use crate::quant::q8_k::BlockQ8K;
use crate::synth::{self, SynthOptions, SynthProfile};

const E: usize = 256;
const H: usize = 8;
const D: usize = 128;
const R: usize = 64;
const G: usize = 2;
const Q: usize = 128;
const O: usize = 128;
const NE: usize = 16;
const K: usize = 6;
const FF: usize = 256;
const IH: usize = 4;
const ID: usize = 128;
const TOP_K: usize = 32;
const WINDOW: usize = 128;
const EPS: f32 = 1e-6;

fn ratio(il: usize) -> usize {
    match il {
        0 | 1 => 0,
        _ if il.is_multiple_of(2) => 4,
        _ => 128,
    }
}

struct Model {
    f: GgufFile,
}

impl Model {
    fn w(&self, name: &str) -> &[u8] {
        let t = self
            .f
            .tensor(name)
            .unwrap_or_else(|| panic!("missing tensor {name}"));
        self.f.tensor_data(t)
    }
    fn f32s(&self, name: &str) -> Vec<f32> {
        self.w(name)
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
    fn has(&self, name: &str) -> bool {
        self.f.tensor(name).is_some()
    }
}

fn q8(x: &[f32]) -> Vec<BlockQ8_0Act> {
    let mut q = vec![BlockQ8_0Act::default(); x.len() / 32];
    quantize_q8_0_rows(x, x.len(), 1, &mut q);
    q
}

fn q8k(x: &[f32], rows: usize) -> Vec<BlockQ8K> {
    let mut q = vec![BlockQ8K::default(); x.len() / 256];
    quantize_q8_k_rows(x, x.len() / rows, rows, &mut q);
    q
}

fn mv_f16(w: &[u8], n_in: usize, n_out: usize, x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; n_out];
    matmul_f16(w, n_in, n_out, x, 1, &mut y);
    y
}

fn mv_q8(w: &[u8], n_in: usize, n_out: usize, x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; n_out];
    matmul_q8_0(w, n_in, n_out, &q8(x), 1, &mut y);
    y
}

/// Per-layer cache and compressor states.
struct Cache {
    raw: Vec<f32>,
    comp: Vec<f32>,
    icomp: Vec<f32>,
    st: (Vec<f32>, Vec<f32>),
    ist: (Vec<f32>, Vec<f32>),
}

impl Cache {
    fn new(r: usize, ctx: usize) -> Cache {
        let coff = if r == 4 { 2 } else { 1 };
        let rows = ctx.checked_div(r).map_or(0, |n| n + 2);
        let sw = coff * r.max(1) * coff;
        Cache {
            raw: vec![0.0; WINDOW * D],
            comp: vec![0.0; rows * D],
            icomp: vec![0.0; rows * ID],
            st: (vec![0.0; sw * D], vec![NEG_INF; sw * D]),
            ist: (vec![0.0; sw * ID], vec![NEG_INF; sw * ID]),
        }
    }
}

/// Collected stage rows: name -> concatenated rows.
type Stages = std::collections::BTreeMap<String, Vec<f32>>;

fn put(st: &mut Stages, name: String, v: &[f32]) {
    st.entry(name).or_default().extend_from_slice(v);
}

/// HC-pre: returns (x, post, comb).
fn hc_pre(m: &Model, il: usize, which: &str, h: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut flat = vec![0.0; 4 * E];
    rms_norm_plain(h, &mut flat, EPS);
    let mix = mv_f16(
        m.w(&format!("blk.{il}.hc_{which}_fn.weight")),
        4 * E,
        24,
        &flat,
    );
    let scale = m.f32s(&format!("blk.{il}.hc_{which}_scale.weight"));
    let base = m.f32s(&format!("blk.{il}.hc_{which}_base.weight"));
    let (mut pre, mut post, mut comb) = (vec![0.0; 4], vec![0.0; 4], vec![0.0; 16]);
    hc_split(&mix, &scale, &base, 20, EPS, &mut pre, &mut post, &mut comb);
    let mut x = vec![0.0; E];
    hc_weighted_sum(h, &pre, &mut x);
    (x, post, comb)
}

#[allow(clippy::too_many_arguments)]
fn layer(
    m: &Model,
    il: usize,
    c: &mut Cache,
    h: &mut [f32],
    pos: usize,
    token: u32,
    tables: &[Vec<f32>; 2],
    st: &mut Stages,
    tag: &str,
) {
    let r = ratio(il);
    let n = |s: &str| format!("blk.{il}.{s}");
    let table = &tables[(r != 0) as usize];
    let trow = &table[pos * R..(pos + 1) * R];

    // Attention half.
    let res = h.to_vec();
    let (cur, post, comb) = hc_pre(m, il, "attn", h);
    put(st, format!("{tag}_l{il}_attn_cur"), &cur);
    put(st, format!("{tag}_l{il}_attn_post"), &post);
    put(st, format!("{tag}_l{il}_attn_comb"), &comb);
    let mut an = vec![0.0; E];
    rms_norm(&cur, &m.f32s(&n("attn_norm.weight")), &mut an, EPS);
    put(st, format!("{tag}_l{il}_attn_norm"), &an);
    let qr = mv_q8(m.w(&n("attn_q_a.weight")), E, Q, &an);
    let mut qrn = vec![0.0; Q];
    rms_norm(&qr, &m.f32s(&n("attn_q_a_norm.weight")), &mut qrn, EPS);
    put(st, format!("{tag}_l{il}_qr_norm"), &qrn);
    let qraw = mv_q8(m.w(&n("attn_q_b.weight")), Q, H * D, &qrn);
    let mut q = vec![0.0; H * D];
    head_rms_norm(&qraw, &mut q, D, EPS);
    // The reference's stage `q` is taken after the head norm, before RoPE (as ds4's
    // `blk.0 q` trace label, MODEL §14.2); after RoPE it differs by ~0.4 rel RMS.
    put(st, format!("{tag}_l{il}_q"), &q);
    rope_apply(&mut q, H, D, R, trow, false);
    let kvraw = mv_q8(m.w(&n("attn_kv.weight")), E, D, &an);
    let mut kv = vec![0.0; D];
    rms_norm(&kvraw, &m.f32s(&n("attn_kv_a_norm.weight")), &mut kv, EPS);
    rope_apply(&mut kv, 1, D, R, trow, false);
    put(st, format!("{tag}_l{il}_kv_prefp8"), &kv);
    fp8_kv(&mut kv, D - R);
    put(st, format!("{tag}_l{il}_kv"), &kv);
    kv_push_raw(&mut c.raw, WINDOW, D, pos, &kv);

    let mut sel = None;
    if r != 0 {
        let coff = if r == 4 { 2 } else { 1 };
        let ckv = mv_f16(m.w(&n("attn_compressor_kv.weight")), E, coff * D, &an);
        let csc = mv_f16(m.w(&n("attn_compressor_gate.weight")), E, coff * D, &an);
        let s = CompressorState {
            kv: &mut c.st.0,
            score: &mut c.st.1,
        };
        compressor_update(
            &ckv,
            &csc,
            m.w(&n("attn_compressor_ape.weight")),
            &m.f32s(&n("attn_compressor_norm.weight")),
            s,
            &mut c.comp,
            table,
            r,
            D,
            R,
            RowPost::Fp8 { n_quant: D - R },
            pos,
            EPS,
        );
        if r == 4 {
            let ikv = mv_f16(m.w(&n("indexer_compressor_kv.weight")), E, 2 * ID, &an);
            let isc = mv_f16(m.w(&n("indexer_compressor_gate.weight")), E, 2 * ID, &an);
            let s = CompressorState {
                kv: &mut c.ist.0,
                score: &mut c.ist.1,
            };
            compressor_update(
                &ikv,
                &isc,
                m.w(&n("indexer_compressor_ape.weight")),
                &m.f32s(&n("indexer_compressor_norm.weight")),
                s,
                &mut c.icomp,
                table,
                4,
                ID,
                R,
                RowPost::Qat,
                pos,
                EPS,
            );
            let mut iq = mv_f16(m.w(&n("indexer.attn_q_b.weight")), Q, IH * ID, &qrn);
            rope_apply(&mut iq, IH, ID, R, trow, false);
            indexer_qat(&mut iq, ID);
            let wts = mv_f16(m.w(&n("indexer.proj.weight")), E, IH, &an);
            let mut s = vec![0; TOP_K];
            indexer_topk(&iq, &wts, &c.icomp, IH, ID, TOP_K, 4, pos, &mut s);
            sel = Some(s);
        }
    }
    let mut heads = vec![0.0; H * D];
    let comp = (r != 0).then_some(&c.comp[..]);
    attention(
        &q,
        &m.f32s(&n("attn_sinks.weight")),
        &c.raw,
        WINDOW,
        WINDOW,
        comp,
        r,
        sel.as_deref(),
        H,
        D,
        pos,
        &mut heads,
    );
    rope_apply(&mut heads, H, D, R, trow, true);
    put(st, format!("{tag}_l{il}_heads"), &heads);
    let mut low = vec![0.0; G * O];
    matmul_q8_0_grouped(
        m.w(&n("attn_output_a.weight")),
        D * H / G,
        G,
        O,
        &q8(&heads),
        1,
        &mut low,
    );
    let out = mv_q8(m.w(&n("attn_output_b.weight")), G * O, E, &low);
    put(st, format!("{tag}_l{il}_attn_out"), &out);
    hc_post(&out, &res, &post, &comb, h);
    put(st, format!("{tag}_l{il}_attn_hc"), h);

    // FFN half.
    let res = h.to_vec();
    let (cur, post, comb) = hc_pre(m, il, "ffn", h);
    put(st, format!("{tag}_l{il}_ffn_post"), &post);
    put(st, format!("{tag}_l{il}_ffn_comb"), &comb);
    let mut f = vec![0.0; E];
    rms_norm(&cur, &m.f32s(&n("ffn_norm.weight")), &mut f, EPS);
    put(st, format!("{tag}_l{il}_ffn_norm"), &f);
    let logits = mv_f16(m.w(&n("ffn_gate_inp.weight")), E, NE, &f);
    let mut prob = vec![0.0; NE];
    router_probs(&logits, &mut prob);
    let (mut ids, mut wt) = (vec![0; K], vec![0.0; K]);
    if il < 3 {
        let t = m.f32s(&n("ffn_gate_tid2eid.weight"));
        let row: Vec<i32> = t[token as usize * K..(token as usize + 1) * K]
            .iter()
            .map(|v| v.to_bits() as i32)
            .collect();
        router_hash(&prob, &row, 1.5, &mut ids, &mut wt);
    } else {
        let bias = m
            .has(&n("exp_probs_b.bias"))
            .then(|| m.f32s(&n("exp_probs_b.bias")));
        router_topk(&prob, bias.as_deref(), K, 1.5, &mut ids, &mut wt);
    }
    let xq = q8k(&f, 1);
    let (mut g, mut u) = (vec![0.0; K * FF], vec![0.0; K * FF]);
    moe_gate_up(
        m.w(&n("ffn_gate_exps.weight")),
        m.w(&n("ffn_up_exps.weight")),
        E,
        FF,
        &xq,
        &ids,
        (0, NE as u32),
        &mut g,
        &mut u,
    );
    let mut mid = vec![0.0; K * FF];
    moe_swiglu(&g, &u, &wt, FF, 10.0, &mut mid);
    let mut moe = vec![0.0; E];
    moe_down(
        m.w(&n("ffn_down_exps.weight")),
        FF,
        E,
        &q8k(&mid, K),
        &ids,
        (0, NE as u32),
        &mut moe,
    );
    put(st, format!("{tag}_l{il}_moe"), &moe);
    let gs = mv_q8(m.w(&n("ffn_gate_shexp.weight")), E, FF, &f);
    let us = mv_q8(m.w(&n("ffn_up_shexp.weight")), E, FF, &f);
    let mut ms = vec![0.0; FF];
    swiglu(&gs, &us, 10.0, &mut ms);
    let shared = mv_q8(m.w(&n("ffn_down_shexp.weight")), FF, E, &ms);
    put(st, format!("{tag}_l{il}_shared"), &shared);
    let ffn: Vec<f32> = moe.iter().zip(&shared).map(|(a, b)| a + b).collect();
    hc_post(&ffn, &res, &post, &comb, h);
    put(st, format!("{tag}_l{il}_out_hc"), h);
}

/// Output head: returns (head_in, logits).
fn head(m: &Model, h: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut flat = vec![0.0; 4 * E];
    rms_norm_plain(h, &mut flat, EPS);
    let pre = mv_f16(m.w("output_hc_fn.weight"), 4 * E, 4, &flat);
    let mut w = vec![0.0; 4];
    hc_head_weights(
        &pre,
        m.f32s("output_hc_scale.weight")[0],
        &m.f32s("output_hc_base.weight"),
        EPS,
        &mut w,
    );
    let mut embd = vec![0.0; E];
    hc_weighted_sum(h, &w, &mut embd);
    let mut norm = vec![0.0; E];
    rms_norm(&embd, &m.f32s("output_norm.weight"), &mut norm, EPS);
    let v =
        m.f.tensor("output.weight")
            .map_or(0, |t| t.n_rows() as usize);
    (norm.clone(), mv_q8(m.w("output.weight"), E, v, &norm))
}

fn read_f32(p: &Path) -> Vec<f32> {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn rel_rms(a: &[f32], r: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(r)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let den: f64 = r.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

/// VERIFY.md's bound for a stage.
fn bound(stage: &str) -> f64 {
    match stage {
        "heads" | "shared" => 1e-3,
        "attn_out" => 1e-2,
        _ => 1e-4,
    }
}

#[test]
fn tiny_model_matches_the_reference_stages_and_logits() {
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/oracle");
    if !oracle.is_dir() {
        eprintln!(
            "no oracle vectors at {}: nothing to compare",
            oracle.display()
        );
        return;
    }
    let path: PathBuf =
        std::env::temp_dir().join(format!("ds4-kern-tiny-{}.gguf", std::process::id()));
    synth::write(&SynthOptions::new(SynthProfile::Tiny), &path).expect("synth tiny");
    let m = Model {
        f: GgufFile::open(&path).expect("open tiny"),
    };
    let _ = std::fs::remove_file(&path);

    let ctx = 4096;
    let mut tables = [vec![0.0; ctx * R], vec![0.0; ctx * R]];
    rope_table_fill(&RopeParams::dense(), 0, &mut tables[0]);
    rope_table_fill(&RopeParams::compressed(), 0, &mut tables[1]);

    for case in ["c1_hello", "c4_code_audit_300"] {
        let dir = oracle.join(case);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("case.json")).expect("case.json"))
                .expect("json");
        let ids = |k: &str| -> Vec<u32> {
            meta[k]
                .as_array()
                .expect(k)
                .iter()
                .map(|v| v.as_u64().expect("id") as u32)
                .collect()
        };
        let prompt = ids("prompt_ids");
        let generated = ids("generated_ids");
        let full_rows: Vec<usize> = ids("full_rows").iter().map(|&v| v as usize).collect();
        let steps = meta["steps"].as_array().expect("steps");
        let all = read_f32(&dir.join("logits.f32.bin"));
        let mut caches: Vec<Cache> = (0..6).map(|il| Cache::new(ratio(il), ctx)).collect();
        let mut st = Stages::new();
        let mut bad: Vec<String> = Vec::new();
        let mut worst_logit = 0.0f32;

        // Prefill (token by token, which MODEL §13.3 makes equivalent), then teacher-
        // forced decode: step i's logits follow prompt + generated[..i].
        let n_steps = steps.len();
        let feed: Vec<u32> = prompt
            .iter()
            .chain(&generated[..n_steps - 1])
            .copied()
            .collect();
        for (pos, &tok) in feed.iter().enumerate() {
            let mut x = vec![0.0; E];
            embed_f16(m.w("token_embd.weight"), E, tok, &mut x);
            let mut h = vec![0.0; 4 * E];
            hc_expand(&x, &mut h);
            let tag = if pos < prompt.len() {
                "prefill".to_string()
            } else {
                format!("decode_p{pos}")
            };
            for (il, cache) in caches.iter_mut().enumerate() {
                layer(&m, il, cache, &mut h, pos, tok, &tables, &mut st, &tag);
            }
            if pos + 1 < prompt.len() {
                continue;
            }

            let step = pos + 1 - prompt.len();
            let (hin, logits) = head(&m, &h);
            let e = rel_rms(
                &hin,
                &read_f32(&dir.join(format!("stages/head_in_{step:03}.f32"))),
            );
            if e > 1e-4 {
                bad.push(format!("head_in_{step:03}: {e:.2e}"));
            }
            let top = steps[step]["top20"].as_array().expect("top20");
            let argmax =
                (0..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
            if Some(argmax as u64) != top[0]["id"].as_u64() {
                bad.push(format!("step {step}: argmax {argmax} vs {}", top[0]["id"]));
            }
            for t in top {
                let (id, l) = (
                    t["id"].as_u64().expect("id") as usize,
                    t["logit"].as_f64().expect("logit"),
                );
                worst_logit = worst_logit.max((logits[id] as f64 - l).abs() as f32);
            }
            if let Some(k) = full_rows.iter().position(|&r| r == step) {
                let row = &all[k * logits.len()..(k + 1) * logits.len()];
                let d = logits
                    .iter()
                    .zip(row)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                worst_logit = worst_logit.max(d);
            }
        }

        for (name, got) in &st {
            let file = dir.join("stages").join(format!("{name}.f32"));
            let bound = match name.strip_prefix("prefill_") {
                Some(rest) => bound(rest.split_once('_').map_or("", |(_, s)| s)),
                // Decode dumps hold only each layer's out_hc.
                None if file.exists() => 1e-4,
                None => continue,
            };
            let e = rel_rms(got, &read_f32(&file));
            if e > bound * 0.1 {
                eprintln!("{case} {name}: rel rms {e:.2e} (bound {bound:.0e})");
            }
            if e > bound {
                bad.push(format!("{name}: {e:.2e}"));
            }
        }
        eprintln!(
            "{case}: {} steps, worst logit diff {worst_logit:.4}",
            n_steps
        );
        assert!(bad.is_empty(), "{case}: over the bounds: {bad:?}");
        assert!(
            worst_logit <= 0.02,
            "{case}: logits differ by {worst_logit}"
        );
    }
}
