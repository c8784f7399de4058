//! The shipped graph validates for every profile and phase, and expands to the
//! layer variants its profile's data says.

use ds4_ir::expand::{expand, infer};
use ds4_ir::schema::PhaseTag;

const GRAPH: &str = include_str!("../../graphs/ds4_flash.ron");

#[test]
fn shipped_graph_validates() {
    let m = ds4_ir::validate("graphs/ds4_flash.ron", GRAPH).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.graph.profiles.len(), 3);
}

#[test]
fn tiny_expands_every_variant() {
    let m = ds4_ir::parse("g.ron", GRAPH).unwrap_or_else(|e| panic!("{e}"));
    let p = m.profile("tiny").expect("tiny");
    let mut g = expand(&m, p, PhaseTag::Decode).unwrap_or_else(|e| panic!("{e}"));
    infer(&mut g, &m.src).unwrap_or_else(|e| panic!("{e}"));
    let count = |kind: &str, layer: u16| {
        g.ops
            .iter()
            .filter(|o| o.kind == kind && o.layer == Some(layer))
            .count()
    };
    // Layer 0: dense + hash; layer 2: ratio 4 + hash; layer 3: ratio 128 + top-k.
    assert_eq!(count("compressor_update", 0), 0);
    assert_eq!(count("compressor_update", 2), 2);
    assert_eq!(count("compressor_update", 3), 1);
    assert_eq!(count("indexer_topk", 2), 1);
    assert_eq!(count("router_hash", 2), 1);
    assert_eq!(count("router_topk", 3), 1);
    let logits = g.outputs[0];
    assert_eq!(g.values[logits].width, 129280);
    assert!(g.petgraph().node_count() == g.ops.len());
}
