//! Opening an Ascend runtime: the real ACL and kernel library, or the emulation.
//!
//! Device selection follows the fork (ASCEND.md §1.3): `DS4_ASCEND_VISIBLE_DEVICES`
//! (else the `--devices` count: `0` or `0,1`) is exported as
//! `ASCEND_RT_VISIBLE_DEVICES` before `aclInit`.

use super::ktable::{self, KernelTable};
use crate::acl::dynlib::AclLib;
use crate::acl::sim::SimAcl;
use crate::acl::Acl;
use std::sync::Arc;

/// Bytes of one emulated device: the usable memory CANN reports for one 310P3
/// (43,693 MB, ASCEND.md §3.3).
pub const SIM_DEVICE_BYTES: u64 = 43_693 * 1024 * 1024;

/// An opened ACL runtime with its kernel launch wrappers.
pub struct AscendRuntime {
    pub acl: Arc<dyn Acl>,
    pub kernels: KernelTable,
    /// True for the emulation (device memory is host memory).
    pub host_memory: bool,
    /// The loaded device kernel library (kept alive while its wrappers are used).
    pub lib: Option<Arc<libloading::Library>>,
}

/// The visible device list and its count: `DS4_ASCEND_VISIBLE_DEVICES` when set,
/// else the first `devices` ids.
pub fn visible_devices(devices: u8) -> (String, u8) {
    match std::env::var("DS4_ASCEND_VISIBLE_DEVICES") {
        Ok(v) if !v.trim().is_empty() => {
            let n = v
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .count()
                .clamp(1, 2) as u8;
            (v, n)
        }
        _ => (
            (0..devices)
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(","),
            devices,
        ),
    }
}

/// Opens the real runtime: exports `ASCEND_RT_VISIBLE_DEVICES`, loads and checks
/// `libascendcl.so`, calls `aclInit` and loads the kernel library.
pub fn open_real(visible: &str) -> Result<AscendRuntime, String> {
    std::env::set_var("ASCEND_RT_VISIBLE_DEVICES", visible);
    let acl = AclLib::load().map_err(|e| e.to_string())?;
    let (kernels, lib) = ktable::load_device_kernels()?;
    acl.init().map_err(|e| e.to_string())?;
    Ok(AscendRuntime {
        acl: Arc::new(acl),
        kernels,
        host_memory: false,
        lib: Some(Arc::new(lib)),
    })
}

/// Opens the emulation: two devices and the kernels compiled against the AscendC
/// host emulation.
pub fn open_sim() -> Result<AscendRuntime, String> {
    let acl = SimAcl::new(2, SIM_DEVICE_BYTES);
    acl.init().map_err(|e| e.to_string())?;
    Ok(AscendRuntime {
        acl: Arc::new(acl),
        kernels: KernelTable::emulated(),
        host_memory: true,
        lib: None,
    })
}
