//! Runs the graph compiler (ds4-codegen) over `graphs/` into `$OUT_DIR`.
//!
//! Writes `plans.rs` (included by `src/plans.rs`) and one plan summary per plan set
//! under `summary/` (the AscendC entries and wrappers of the same plans are written and
//! compiled by `ds4-runtime`'s build script, beside the kernel bodies). A graph
//! error or a profile over its memory budget fails the build with the RON
//! position. Files are rewritten only when their bytes change, so an unchanged
//! graph does not recompile the crate.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=graphs/");
    println!("cargo:rerun-if-changed=graphs/ds4_flash.ron");
    let graph = "graphs/ds4_flash.ron";
    let text = match std::fs::read_to_string(graph) {
        Ok(t) => t,
        Err(e) => fail(&format!("{graph}: {e}")),
    };
    let compiled = match ds4_codegen::compile(graph, &text, &ds4_codegen::Options::default()) {
        Ok(c) => c,
        Err(e) => fail(&e.to_string()),
    };
    let out = ds4_codegen::emit(&compiled);
    let Some(dir) = std::env::var_os("OUT_DIR") else {
        fail("OUT_DIR is not set")
    };
    let dir = Path::new(&dir);
    for (name, body) in &out.files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                fail(&format!("{}: {e}", parent.display()));
            }
        }
        if std::fs::read_to_string(&path).ok().as_deref() == Some(body.as_str()) {
            continue;
        }
        if let Err(e) = std::fs::write(&path, body) {
            fail(&format!("{}: {e}", path.display()));
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    println!("cargo:warning={msg}");
    std::process::exit(1)
}
