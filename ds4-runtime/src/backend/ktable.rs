//! The AscendC kernels' launch wrappers as a table of function pointers.
//!
//! `ascend-sim` fills the table with the wrappers compiled into this crate against
//! the host emulation of AscendC ([`crate::ascend::kernels`]); `ascend` fills it from
//! the kernel library built by `ccec` (`libds4_ascend_kernels.so`), loaded at run
//! time, whose wrappers have the same C ABI.

use std::ffi::c_void;
use std::path::PathBuf;

type S = *mut c_void;
type I = *const u8;
type O = *mut u8;

macro_rules! kernel_table {
    ($( $name:ident : fn($($arg:ty),*); )*) => {
        /// One launch wrapper per kernel of the library (`aclrtlaunch_<op>`).
        #[derive(Clone, Copy)]
        pub struct KernelTable { $( pub $name: unsafe extern "C" fn($($arg),*), )* }

        impl KernelTable {
            /// The wrappers compiled against the AscendC host emulation.
            pub fn emulated() -> KernelTable {
                use crate::ascend::kernels as k;
                paste_fields!(k; $($name),*)
            }

            /// Resolves every wrapper in `lib`; a missing one is named.
            pub fn load(lib: &libloading::Library, path: &str) -> Result<KernelTable, String> {
                Ok(KernelTable { $( $name: {
                    let sym = concat!("aclrtlaunch_", stringify!($name), "\0");
                    // SAFETY: the wrapper is declared with the C ABI of kernels/ascendc/README.md.
                    let s: libloading::Symbol<unsafe extern "C" fn($($arg),*)> = unsafe { lib.get(sym.as_bytes()) }
                        .map_err(|_| format!("kernel library {path} lacks aclrtlaunch_{}; rebuild it from kernels/ascendc", stringify!($name)))?;
                    *s
                }, )* })
            }
        }
    };
}

macro_rules! paste_fields {
    ($k:ident; $($name:ident),*) => {
        KernelTable { $( $name: paste_one!($k, $name), )* }
    };
}

macro_rules! paste_one {
    ($k:ident, embed) => {
        $k::aclrtlaunch_embed
    };
    ($k:ident, hc_expand) => {
        $k::aclrtlaunch_hc_expand
    };
    ($k:ident, take_last) => {
        $k::aclrtlaunch_take_last
    };
    ($k:ident, add) => {
        $k::aclrtlaunch_add
    };
    ($k:ident, swiglu) => {
        $k::aclrtlaunch_swiglu
    };
    ($k:ident, moe_swiglu) => {
        $k::aclrtlaunch_moe_swiglu
    };
    ($k:ident, matvec_f16) => {
        $k::aclrtlaunch_matvec_f16
    };
    ($k:ident, matvec_q8_0) => {
        $k::aclrtlaunch_matvec_q8_0
    };
    ($k:ident, matvec_q8_0_grouped) => {
        $k::aclrtlaunch_matvec_q8_0_grouped
    };
    ($k:ident, quantize_q8_0) => {
        $k::aclrtlaunch_quantize_q8_0
    };
    ($k:ident, quantize_q8_k) => {
        $k::aclrtlaunch_quantize_q8_k
    };
    ($k:ident, hc_split) => {
        $k::aclrtlaunch_hc_split
    };
    ($k:ident, hc_weighted_sum) => {
        $k::aclrtlaunch_hc_weighted_sum
    };
    ($k:ident, hc_post) => {
        $k::aclrtlaunch_hc_post
    };
    ($k:ident, hc_head_weights) => {
        $k::aclrtlaunch_hc_head_weights
    };
    ($k:ident, router_probs) => {
        $k::aclrtlaunch_router_probs
    };
    ($k:ident, router_topk) => {
        $k::aclrtlaunch_router_topk
    };
    ($k:ident, router_hash) => {
        $k::aclrtlaunch_router_hash
    };
    ($k:ident, moe_gate_up) => {
        $k::aclrtlaunch_moe_gate_up
    };
    ($k:ident, moe_down) => {
        $k::aclrtlaunch_moe_down
    };
    ($k:ident, rope) => {
        $k::aclrtlaunch_rope
    };
    ($k:ident, fp8_kv) => {
        $k::aclrtlaunch_fp8_kv
    };
    ($k:ident, indexer_qat) => {
        $k::aclrtlaunch_indexer_qat
    };
    ($k:ident, kv_push_raw) => {
        $k::aclrtlaunch_kv_push_raw
    };
    ($k:ident, rms_norm_plain) => {
        $k::aclrtlaunch_rms_norm_plain
    };
    ($k:ident, rms_norm) => {
        $k::aclrtlaunch_rms_norm
    };
    ($k:ident, head_rms_norm) => {
        $k::aclrtlaunch_head_rms_norm
    };
    ($k:ident, attention) => {
        $k::aclrtlaunch_attention
    };
    ($k:ident, indexer_topk) => {
        $k::aclrtlaunch_indexer_topk
    };
    ($k:ident, compressor_update) => {
        $k::aclrtlaunch_compressor_update
    };
}

kernel_table! {
    embed: fn(u32, S, I, I, O, u32, u32, u32);
    hc_expand: fn(u32, S, I, O, u32, u32);
    take_last: fn(u32, S, I, O, u32, u32);
    add: fn(u32, S, I, I, O, u32, u32);
    swiglu: fn(u32, S, I, I, O, u32, u32, f32);
    moe_swiglu: fn(u32, S, I, I, I, O, u32, u32, u32, f32);
    matvec_f16: fn(u32, S, I, I, O, u32, u32, u32);
    matvec_q8_0: fn(u32, S, I, I, O, u32, u32, u32);
    matvec_q8_0_grouped: fn(u32, S, I, I, O, u32, u32, u32, u32);
    quantize_q8_0: fn(u32, S, I, O, u32, u32);
    quantize_q8_k: fn(u32, S, I, O, u32, u32);
    hc_split: fn(u32, S, I, I, I, O, O, O, u32, u32, f32);
    hc_weighted_sum: fn(u32, S, I, I, O, u32, u32);
    hc_post: fn(u32, S, I, I, I, I, O, u32, u32);
    hc_head_weights: fn(u32, S, I, I, I, O, u32, f32);
    router_probs: fn(u32, S, I, O, u32, u32);
    router_topk: fn(u32, S, I, I, O, O, u32, u32, u32, f32);
    router_hash: fn(u32, S, I, I, I, O, O, u32, u32, u32, f32, u32);
    moe_gate_up: fn(u32, S, I, I, I, I, O, O, u32, u32, u32, u32, u32, u32, u32);
    moe_down: fn(u32, S, I, I, I, O, u32, u32, u32, u32, u32, u32, u32);
    rope: fn(u32, S, I, I, O, u32, u32, u32, u32, u32, u32, u32);
    fp8_kv: fn(u32, S, I, O, u32, u32, u32);
    indexer_qat: fn(u32, S, I, O, u32, u32, u32);
    kv_push_raw: fn(u32, S, I, O, u32, u32, u32, u32, u32);
    rms_norm_plain: fn(u32, S, I, O, u32, u32, f32);
    rms_norm: fn(u32, S, I, I, O, u32, u32, f32);
    head_rms_norm: fn(u32, S, I, O, u32, u32, u32, f32);
    attention: fn(u32, S, I, I, I, I, I, O, u32, u32, u32, u32, u32, u32, u32, u32, u32);
    indexer_topk: fn(u32, S, I, I, I, O, u32, u32, u32, u32, u32, u32, u32);
    compressor_update: fn(u32, S, I, I, I, I, O, O, O, I, u32, u32, u32, u32, u32, u32, u32, f32, u32, u32);
}

/// The device kernel library: `$DS4_ASCEND_KERNELS`, else `libds4_ascend_kernels.so`
/// beside the executable, else by bare name on the loader path.
pub fn load_device_kernels() -> Result<(KernelTable, libloading::Library), String> {
    let name = "libds4_ascend_kernels.so";
    let mut cands: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("DS4_ASCEND_KERNELS") {
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
        let lib = unsafe { libloading::Library::new(c) }
            .map_err(|e| format!("cannot open {}: {e}", c.display()))?;
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
