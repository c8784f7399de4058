//! Runs the graph compiler (ds4-codegen) over `graphs/` into `$OUT_DIR`.
fn main() {
    println!("cargo:rerun-if-changed=graphs/");
}
