//! The AscendC kernels' launch wrappers as a table of function pointers.
//!
//! One entry per kernel of [`crate::ascend::kernels::KERNELS`] (primitives and fused part
//! sequences), all with the packed C ABI. `ascend-sim` fills the table with the wrappers
//! compiled into this crate against the host emulation of AscendC; `ascend` fills it from
//! the kernel library built by `ccec` (`libds4_ascend_kernels.so`), loaded at run time.

use crate::ascend::kernels::{Packed, KERNELS};
use std::path::PathBuf;

/// One launch wrapper per kernel of the library, in the order of `KERNELS`.
#[derive(Clone)]
pub struct KernelTable {
    fns: Vec<Packed>,
}

impl KernelTable {
    /// The wrappers compiled against the AscendC host emulation.
    pub fn emulated() -> KernelTable {
        KernelTable {
            fns: crate::ascend::kernels::EMULATED.to_vec(),
        }
    }

    /// Resolves every wrapper in `lib`; a missing one is named.
    pub fn load(lib: &libloading::Library, path: &str) -> Result<KernelTable, String> {
        let mut fns = Vec::with_capacity(KERNELS.len());
        for k in KERNELS {
            let sym = format!("aclrtlaunch_{}\0", k.name);
            // SAFETY: the library's wrappers are generated from the same ABI table as
            // `Packed` (ds4_codegen::abi).
            let f: libloading::Symbol<Packed> = unsafe { lib.get(sym.as_bytes()) }.map_err(|_| {
                format!(
                    "kernel library {path} lacks aclrtlaunch_{}; rebuild it (cargo build with CANN) from this checkout",
                    k.name
                )
            })?;
            fns.push(*f);
        }
        Ok(KernelTable { fns })
    }

    /// The wrapper of library kernel `id` (an index into `KERNELS`).
    pub fn get(&self, id: usize) -> Packed {
        self.fns[id]
    }
}

/// The device kernel library: `$DS4_ASCEND_KERNELS`, else the one this build made (with
/// CANN), else `libds4_ascend_kernels.so` beside the executable, else by bare name on the
/// loader path.
pub fn load_device_kernels() -> Result<(KernelTable, libloading::Library), String> {
    let name = "libds4_ascend_kernels.so";
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("DS4_ASCEND_KERNELS").filter(|p| !p.is_empty()) {
        cands.push(PathBuf::from(p));
    }
    // The library this build made, when CANN was present at build time.
    if let Some(p) = option_env!("DS4_ASCEND_KERNEL_LIB") {
        cands.push(PathBuf::from(p));
    }
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|p| p.to_owned()))
    {
        cands.push(d.join(name));
    }
    if let Some(c) = cands.iter().find(|c| c.exists()) {
        // SAFETY: the kernel library's initialisers register its device binaries.
        let lib = unsafe { libloading::Library::new(c) }.map_err(|e| {
            format!(
                "cannot load the Ascend kernel library ({e}); rebuild libds4_ascend_kernels.so (cargo build with CANN installed) or point DS4_ASCEND_KERNELS at it"
            )
        })?;
        let t = KernelTable::load(&lib, &c.display().to_string())?;
        return Ok((t, lib));
    }
    // SAFETY: as above.
    match unsafe { libloading::Library::new(name) } {
        Ok(lib) => Ok((KernelTable::load(&lib, name)?, lib)),
        Err(_) => Err(format!(
            "the Ascend kernel library {name} was not found ({}, loader path); build kernels/ascendc with ccec (CANN installed) and set DS4_ASCEND_KERNELS to it",
            cands.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}
