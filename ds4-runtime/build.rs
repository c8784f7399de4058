//! Builds the AscendC kernels of `kernels/ascendc/`.
//!
//! Always: the kernel sources compiled for the host against the header-only emulation in
//! `kernels/ascendc/emu/` (one translation unit per kernel family, -O2) into the static
//! library `ds4_ascend_emu`, linked into this crate for the kernel tests and the
//! `ascend-sim` backend. The emulation checks the device's rules, so a kernel that would
//! fault on a 310P aborts here.
//!
//! With CANN (`ASCEND_HOME_PATH` set, or `ccec` on PATH): additionally the same sources for
//! the 310P AI core (`--cce-aicore-arch=dav-m200`, flags of ASCEND.md §1.1) into
//! `$OUT_DIR/ascendc/*.o`. Without CANN that step is skipped with a cargo warning, so the
//! crate builds on any host.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Kernel families, one translation unit each.
const FAMILIES: &[&str] = &[
    "norm",
    "elementwise",
    "hc",
    "matvec",
    "rope_kv",
    "router",
    "moe",
    "attention",
];

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../kernels/ascendc");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-env-changed=ASCEND_HOME_PATH");

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
    for f in FAMILIES {
        b.file(root.join(format!("{f}.cpp")));
    }
    // Deliberately broken kernels: only for the emulation's own tests.
    b.file(root.join("tests/broken.cpp"));
    b.compile("ds4_ascend_emu");

    build_device(&root);
}

/// The real 310P kernel objects, when a CANN toolchain is present.
fn build_device(root: &Path) {
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
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("ascendc");
    std::fs::create_dir_all(&out).expect("create $OUT_DIR/ascendc");
    for f in FAMILIES {
        let mut cmd = Command::new(&ccec);
        cmd.args([
            "-c",
            "-x",
            "cce",
            "--cce-aicore-arch=dav-m200",
            "-O2",
            "-std=c++17",
        ])
        .args(["-mllvm", "-cce-aicore-function-stack-size=16000"])
        .args(["-mllvm", "-cce-aicore-fp-ceiling=2"])
        .args(["-mllvm", "-cce-aicore-record-overflow=false"])
        .arg(format!("-I{}", root.display()));
        for i in incs {
            cmd.arg(format!("-I{}", base.join(i).display()));
        }
        cmd.arg("-o")
            .arg(out.join(format!("{f}.o")))
            .arg(root.join(format!("{f}.cpp")));
        match cmd.status() {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("ccec failed on {f}.cpp ({s}): {cmd:?}"),
            Err(e) => panic!("cannot run {}: {e}", ccec.display()),
        }
    }
    println!("cargo:rustc-env=DS4_ASCEND_KERNEL_OBJS={}", out.display());
}
