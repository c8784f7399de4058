//! Opening an Ascend runtime: the real ACL and kernel library, or the emulation.
//!
//! Device selection follows the fork (ASCEND.md §1.3): `DS4_ASCEND_VISIBLE_DEVICES`
//! (else the `--devices` count, by default both chips: `0,1`) is exported as
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

/// The visible device list and the device count of the plan. `DS4_ASCEND_VISIBLE_DEVICES`,
/// when set, must be one or two distinct device ids (`0`, `0,1`, `1,0`); `devices` is the
/// `--devices` flag when given, which must then agree with the list. Without either, the
/// plan uses both chips of the card.
pub fn visible_devices(devices: Option<u8>) -> Result<(String, u8), String> {
    let env = std::env::var("DS4_ASCEND_VISIBLE_DEVICES").unwrap_or_default();
    if env.trim().is_empty() {
        let n = devices.unwrap_or(2);
        let list = (0..n).map(|d| d.to_string()).collect::<Vec<_>>().join(",");
        return Ok((list, n));
    }
    let bad = || {
        format!(
            "DS4_ASCEND_VISIBLE_DEVICES={env} is not a list of one or two device ids (like 0 or 0,1); fix or unset it"
        )
    };
    let ids: Vec<u32> = env
        .split(',')
        .map(|s| s.trim().parse::<u32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() || ids.len() > 2 || (ids.len() == 2 && ids[0] == ids[1]) {
        return Err(bad());
    }
    let n = ids.len() as u8;
    if let Some(d) = devices.filter(|&d| d != n) {
        return Err(format!(
            "--devices {d} conflicts with DS4_ASCEND_VISIBLE_DEVICES={env} ({n} device(s)); drop one of them"
        ));
    }
    Ok((env, n))
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
