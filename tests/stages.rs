//! Stage dumps (VERIFY.md step 4): the CPU backend's `--dump-stages` files of c1
//! and c4 have the reference's names and layouts, and each is within its bound.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{cases, rel_rms, tiny};
use ds4_runtime::session::Session;

/// VERIFY.md's bound for a stage file name.
fn bound(name: &str) -> f64 {
    let stage = name.trim_end_matches(".f32");
    if stage.starts_with("head_in") || stage.starts_with("decode_") || stage == "prefill_embd" {
        return 1e-4;
    }
    let kind = stage.splitn(3, '_').nth(2).unwrap_or("");
    match kind {
        "heads" | "shared" => 1e-3,
        "attn_out" => 1e-2,
        _ => 1e-4,
    }
}

fn read(p: &Path) -> Vec<f32> {
    std::fs::read(p)
        .expect("read")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn c1_and_c4_stage_dumps_match_the_reference() {
    for case in cases()
        .into_iter()
        .filter(|c| c.dir.join("stages").exists())
    {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("stages-{}", case.name));
        let _ = std::fs::remove_dir_all(&out);
        let plans = ds4_rs::run::plan_set(tiny().profile.name, 1, true).expect("plans");
        let mut s = Session::new(tiny(), plans, 4096, None).expect("session");
        s.dump_stages(out.clone()).expect("dump folder");
        s.prefill(&case.prompt_ids).expect("prefill");
        for &t in &case.generated_ids {
            s.decode(t).expect("decode");
        }

        let reference = case.dir.join("stages");
        let (want, got) = (names(&reference), names(&out));
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty(),
            "{}: stage files not written: {missing:?}",
            case.name
        );
        assert!(
            extra.is_empty(),
            "{}: stage files the reference does not have: {extra:?}",
            case.name
        );

        let mut worst: Vec<(f64, String)> = Vec::new();
        for n in &want {
            let (r, a) = (read(&reference.join(n)), read(&out.join(n)));
            assert_eq!(
                a.len(),
                r.len(),
                "{}: {n} has {} values, the reference {}",
                case.name,
                a.len(),
                r.len()
            );
            let d = rel_rms(&a, &r);
            assert!(
                d <= bound(n),
                "{}: {n} relative RMS {d:.3e} > {:.0e}",
                case.name,
                bound(n)
            );
            worst.push((d / bound(n), format!("{n} {d:.2e}")));
        }
        worst.sort_by(|a, b| b.0.total_cmp(&a.0));
        eprintln!(
            "{}: closest to their bounds: {:?}",
            case.name,
            &worst[..worst.len().min(3)]
        );
    }
}
