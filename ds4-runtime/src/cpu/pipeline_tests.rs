//! The stateful kernels together, as a ratio-4 layer runs them: token-major (decode)
//! against layer-major chunks (prefill pushes every row of a chunk, raw and compressed,
//! before any of its tokens selects and attends). The outputs must be bit-identical.

use super::testutil::{f16_bytes, Rng};
use super::*;

const HEADS: usize = 3;
const HD: usize = 64;
const N_ROT: usize = 16;
const IHEADS: usize = 2;
const IHD: usize = 128;
const WINDOW: usize = 16;
const TOP_K: usize = 5;
const N: usize = 150;

struct Inputs {
    kv: Vec<Vec<f32>>,
    q: Vec<Vec<f32>>,
    iq: Vec<Vec<f32>>,
    iw: Vec<Vec<f32>>,
    ckv: Vec<Vec<f32>>,
    csc: Vec<Vec<f32>>,
    ikv: Vec<Vec<f32>>,
    isc: Vec<Vec<f32>>,
    ape: Vec<u8>,
    iape: Vec<u8>,
    norm: Vec<f32>,
    inorm: Vec<f32>,
    sinks: Vec<f32>,
    table: Vec<f32>,
}

fn inputs() -> Inputs {
    let mut r = Rng(70);
    let mut table = vec![0.0; N * N_ROT];
    rope_table_fill(
        &RopeParams {
            n_rot: N_ROT,
            ..RopeParams::compressed()
        },
        0,
        &mut table,
    );
    Inputs {
        kv: (0..N).map(|_| r.vec(HD, 1.0)).collect(),
        q: (0..N).map(|_| r.vec(HEADS * HD, 1.0)).collect(),
        iq: (0..N).map(|_| r.vec(IHEADS * IHD, 1.0)).collect(),
        iw: (0..N).map(|_| r.vec(IHEADS, 1.0)).collect(),
        ckv: (0..N).map(|_| r.vec(2 * HD, 1.0)).collect(),
        csc: (0..N).map(|_| r.vec(2 * HD, 2.0)).collect(),
        ikv: (0..N).map(|_| r.vec(2 * IHD, 1.0)).collect(),
        isc: (0..N).map(|_| r.vec(2 * IHD, 2.0)).collect(),
        ape: f16_bytes(&r.vec(2 * HD * 4, 0.5)),
        iape: f16_bytes(&r.vec(2 * IHD * 4, 0.5)),
        norm: r.vec(HD, 1.0),
        inorm: r.vec(IHD, 1.0),
        sinks: r.vec(HEADS, 1.0),
        table,
    }
}

struct Layer {
    cap: usize,
    raw: Vec<f32>,
    comp: Vec<f32>,
    icomp: Vec<f32>,
    st: (Vec<f32>, Vec<f32>),
    ist: (Vec<f32>, Vec<f32>),
}

impl Layer {
    fn new(cap: usize) -> Self {
        Layer {
            cap,
            raw: vec![0.0; cap * HD],
            comp: vec![0.0; (N / 4 + 2) * HD],
            icomp: vec![0.0; (N / 4 + 2) * IHD],
            st: (vec![0.0; 8 * 2 * HD], vec![NEG_INF; 8 * 2 * HD]),
            ist: (vec![0.0; 8 * 2 * IHD], vec![NEG_INF; 8 * 2 * IHD]),
        }
    }

    /// Pushes token `pos`: raw row, attention compressor, indexer compressor.
    fn push(&mut self, x: &Inputs, pos: usize) {
        let mut kv = x.kv[pos].clone();
        fp8_kv(&mut kv, HD - N_ROT);
        kv_push_raw(&mut self.raw, self.cap, HD, pos, &kv);
        let st = CompressorState {
            kv: &mut self.st.0,
            score: &mut self.st.1,
        };
        compressor_update(
            &x.ckv[pos],
            &x.csc[pos],
            &x.ape,
            &x.norm,
            st,
            &mut self.comp,
            &x.table,
            4,
            HD,
            N_ROT,
            RowPost::Fp8 {
                n_quant: HD - N_ROT,
            },
            pos,
            1e-6,
        );
        let st = CompressorState {
            kv: &mut self.ist.0,
            score: &mut self.ist.1,
        };
        compressor_update(
            &x.ikv[pos],
            &x.isc[pos],
            &x.iape,
            &x.inorm,
            st,
            &mut self.icomp,
            &x.table,
            4,
            IHD,
            N_ROT,
            RowPost::Qat,
            pos,
            1e-6,
        );
    }

    /// Selects and attends for token `pos`.
    fn attend(&self, x: &Inputs, pos: usize) -> (Vec<i32>, Vec<f32>) {
        let mut iq = x.iq[pos].clone();
        indexer_qat(&mut iq, IHD);
        let mut sel = vec![0; TOP_K];
        indexer_topk(
            &iq,
            &x.iw[pos],
            &self.icomp,
            IHEADS,
            IHD,
            TOP_K,
            4,
            pos,
            &mut sel,
        );
        let mut out = vec![0.0; HEADS * HD];
        attention(
            &x.q[pos],
            &x.sinks,
            &self.raw,
            self.cap,
            WINDOW,
            Some(&self.comp),
            4,
            Some(&sel),
            HEADS,
            HD,
            pos,
            &mut out,
        );
        (sel, out)
    }
}

#[test]
fn chunked_layer_equals_token_by_token() {
    let x = inputs();
    let mut seq = Layer::new(WINDOW);
    let want: Vec<(Vec<i32>, Vec<f32>)> = (0..N)
        .map(|pos| {
            seq.push(&x, pos);
            seq.attend(&x, pos)
        })
        .collect();
    // The indexer really selected: late selections are not simply 0..TOP_K.
    assert!(want[N - 1].0 != (0..TOP_K as i32).collect::<Vec<_>>());

    for chunk in [1usize, 7, 32] {
        let mut lay = Layer::new(WINDOW + chunk);
        let mut pos0 = 0;
        while pos0 < N {
            let end = (pos0 + chunk).min(N);
            (pos0..end).for_each(|pos| lay.push(&x, pos));
            for (pos, w) in want.iter().enumerate().take(end).skip(pos0) {
                assert_eq!(&lay.attend(&x, pos), w, "chunk {chunk}, pos {pos}");
            }
            pos0 = end;
        }
        assert_eq!(lay.comp, seq.comp);
        assert_eq!(lay.icomp, seq.icomp);
    }
}
