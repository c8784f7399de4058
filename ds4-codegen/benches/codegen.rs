//! Codegen time for every profile: compile (all passes) and emit all files.
//! The budget is 2 s for the whole graph (issue 2).

use criterion::{criterion_group, criterion_main, Criterion};

const GRAPH: &str = include_str!("../../graphs/ds4_flash.ron");

fn codegen(c: &mut Criterion) {
    let mut g = c.benchmark_group("codegen");
    g.sample_size(10);
    g.bench_function("compile_all_profiles", |b| {
        b.iter(|| {
            ds4_codegen::compile("ds4_flash.ron", GRAPH, &Default::default()).map(|c| c.sets.len())
        })
    });
    g.bench_function("compile_and_emit_all_profiles", |b| {
        b.iter(|| {
            ds4_codegen::compile("ds4_flash.ron", GRAPH, &Default::default())
                .map(|c| ds4_codegen::emit(&c).files.len())
        })
    });
    g.finish();
}

criterion_group!(benches, codegen);
criterion_main!(benches);
