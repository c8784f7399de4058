//! Builds the AscendC kernel library of `kernels/ascendc/`.
//!
//! First the graph compiler lists the kernels the plans of `graphs/ds4_flash.ron` use
//! (every primitive, and one kernel per fused part sequence; `ds4_codegen::abi`) and
//! writes their entries and launch wrappers to `$OUT_DIR/kernels_ascendc/<kernel>.cpp`,
//! and the runtime's bindings of the same table to `$OUT_DIR/kernel_abi.rs`.
//!
//! Always: those units compiled for the host against the header-only emulation in
//! `kernels/ascendc/emu/` (-O2) into the static library `ds4_ascend_emu`, linked into this
//! crate for the kernel tests and the `ascend-sim` backend. The emulation checks the
//! device's rules, so a kernel that would fault on a 310P aborts here.
//!
//! With CANN (`ASCEND_HOME_PATH` set, or `ccec` on PATH): additionally the same units for
//! the 310P AI core (`--cce-aicore-arch=dav-m200`, flags of ASCEND.md §1.1), linked by
//! ccec into `libds4_ascend_kernels.so` (ASCEND.md §1.2) next to the crate's build output;
//! its path is exported as `DS4_ASCEND_KERNEL_LIB`. Without CANN that step is skipped with
//! a cargo warning, so the crate builds on any host.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../kernels/ascendc");
    let graph = manifest.join("../graphs/ds4_flash.ron");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed={}", graph.display());
    println!("cargo:rerun-if-env-changed=ASCEND_HOME_PATH");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    let units = generate(&graph, &out);

    let mut b = cc::Build::new();
    b.cpp(true)
        .std("c++17")
        .opt_level(2)
        .define("ASCENDC_EMU", None)
        .include(root.join("emu"))
        .include(&root)
        // Bit-faithful f32: no contraction of a*b+c into fma.
        .flag_if_supported("-ffp-contract=off")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false);
    for u in &units {
        b.file(u);
    }
    // Deliberately broken kernels: only for the emulation's own tests.
    b.file(root.join("tests/broken.cpp"));
    b.compile("ds4_ascend_emu");

    build_device(&root, &units, &out);
}

/// Writes the kernel units and the Rust bindings; returns the units' paths.
fn generate(graph: &Path, out: &Path) -> Vec<PathBuf> {
    let text =
        std::fs::read_to_string(graph).unwrap_or_else(|e| panic!("{}: {e}", graph.display()));
    let file = graph.display().to_string();
    let compiled = ds4_codegen::compile(&file, &text, &ds4_codegen::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let lib = ds4_codegen::abi::library(&compiled).unwrap_or_else(|e| panic!("{e}"));

    let dir = out.join("kernels_ascendc");
    std::fs::create_dir_all(&dir).expect("create $OUT_DIR/kernels_ascendc");
    let mut units = Vec::new();
    for (name, body) in ds4_codegen::emit_cpp::emit_kernels(&lib) {
        let path = dir.join(name);
        write_if_changed(&path, &body);
        units.push(path);
    }
    write_if_changed(
        &out.join("kernel_abi.rs"),
        &ds4_codegen::abi::emit_rust_bindings(&lib),
    );
    units
}

/// Rewrites `path` only when its bytes change, so cc does not recompile unchanged units.
fn write_if_changed(path: &Path, body: &str) {
    if std::fs::read_to_string(path).ok().as_deref() == Some(body) {
        return;
    }
    std::fs::write(path, body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The real 310P kernel library, when a CANN toolchain is present.
fn build_device(root: &Path, units: &[PathBuf], out: &Path) {
    let home = std::env::var_os("ASCEND_HOME_PATH").map(PathBuf::from);
    let ccec = match &home {
        Some(h) if h.join("aarch64-linux/bin/ccec").exists() => h.join("aarch64-linux/bin/ccec"),
        Some(h) if h.join("bin/ccec").exists() => h.join("bin/ccec"),
        _ if Command::new("ccec").arg("--version").output().is_ok() => PathBuf::from("ccec"),
        _ => {
            println!(
                "cargo:warning=CANN not found (no ASCEND_HOME_PATH, no ccec on PATH): \
                 skipping the 310P kernel build; the emulated kernels are built"
            );
            return;
        }
    };
    let base = home
        .unwrap_or_else(|| PathBuf::from("/usr/local/Ascend/cann-9.0.0"))
        .join("aarch64-linux");
    let incs = [
        "include",
        "include/experiment",
        "asc",
        "asc/include",
        "asc/include/basic_api",
        "asc/include/interface",
        "asc/impl/basic_api",
        "ascendc/include",
        "ascendc/include/basic_api",
        "ascendc/include/basic_api/impl",
        "ascendc/include/highlevel_api",
    ];
    let dev = out.join("ascendc");
    std::fs::create_dir_all(&dev).expect("create $OUT_DIR/ascendc");
    let mut objs = Vec::new();
    for u in units {
        let obj = dev.join(u.file_stem().unwrap()).with_extension("o");
        let mut cmd = Command::new(&ccec);
        cmd.args([
            "-c",
            "-x",
            "cce",
            "--cce-aicore-arch=dav-m200",
            "-O2",
            "-std=c++17",
            "-fPIC",
        ])
        .args(["-mllvm", "-cce-aicore-function-stack-size=16000"])
        .args(["-mllvm", "-cce-aicore-fp-ceiling=2"])
        .args(["-mllvm", "-cce-aicore-record-overflow=false"])
        .arg(format!("-I{}", root.display()));
        for i in incs {
            cmd.arg(format!("-I{}", base.join(i).display()));
        }
        cmd.arg("-o").arg(&obj).arg(u);
        run(&mut cmd, &format!("ccec on {}", u.display()));
        objs.push(obj);
    }

    // ccec as the link driver (ASCEND.md §1.2): the <<<>>> host stubs need libruntime, and
    // CANN 9.0's output references the profiling API.
    let so = dev.join("libds4_ascend_kernels.so");
    let driver = "/usr/local/Ascend/driver/lib64/driver";
    let mut cmd = Command::new(&ccec);
    cmd.arg("-shared")
        .arg("-o")
        .arg(&so)
        .args(&objs)
        .arg(format!("-L{}", base.join("lib64").display()))
        .arg(format!("-Wl,-rpath,{}", base.join("lib64").display()))
        .arg(format!("-L{driver}"))
        .arg(format!("-Wl,-rpath,{driver}"))
        .args([
            "-lruntime",
            "-lascendcl",
            "-lascend_hal",
            "-lprofapi",
            "-lstdc++",
        ]);
    run(&mut cmd, "ccec link of libds4_ascend_kernels.so");
    println!("cargo:rustc-env=DS4_ASCEND_KERNEL_LIB={}", so.display());
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{what} failed ({s}): {cmd:?}"),
        Err(e) => panic!("cannot run {what}: {e}"),
    }
}
