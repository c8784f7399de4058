//! `libascendcl.so` loaded at run time with libloading.
//!
//! Every function of ASCEND.md §2.1 and the asynchronous, event and peer functions
//! of §2.4 are resolved when the library is opened, so a library that lacks one is
//! reported by the symbol's name before any work. The prototypes are the C ones:
//! enums and `aclError` are `int32_t`, handles are `void *`.

use super::codes::{self, malloc_policy, mem_attr};
use super::{check, Access, Acl, AclError, DevPtr, Handle, Work};
use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};

type E = i32;
type P = *mut c_void;

macro_rules! acl_fns {
    ($( $field:ident = $sym:literal : fn($($arg:ty),*) -> $ret:ty; )*) => {
        /// The resolved ACL functions (C prototypes of ASCEND.md §2).
        #[allow(non_snake_case, dead_code)]
        struct Fns { $( $field: unsafe extern "C" fn($($arg),*) -> $ret, )* }

        /// Every symbol the binding resolves, in order.
        pub const SYMBOLS: &[&str] = &[$($sym),*];

        impl Fns {
            fn load(lib: &libloading::Library, name: &str) -> Result<Fns, AclError> {
                Ok(Fns { $( $field: {
                    // SAFETY: the symbol is declared with its C prototype from acl_rt.h.
                    let s: libloading::Symbol<unsafe extern "C" fn($($arg),*) -> $ret> =
                        unsafe { lib.get(concat!($sym, "\0").as_bytes()) }.map_err(|_| AclError::MissingSymbol {
                            lib: name.to_owned(), symbol: $sym.to_owned() })?;
                    *s
                }, )* })
            }
        }
    };
}

acl_fns! {
    init = "aclInit": fn(*const c_char) -> E;
    finalize = "aclFinalize": fn() -> E;
    get_device_count = "aclrtGetDeviceCount": fn(*mut u32) -> E;
    set_device = "aclrtSetDevice": fn(i32) -> E;
    reset_device = "aclrtResetDevice": fn(i32) -> E;
    get_device = "aclrtGetDevice": fn(*mut i32) -> E;
    get_device_info = "aclrtGetDeviceInfo": fn(u32, i32, *mut i64) -> E;
    create_context = "aclrtCreateContext": fn(*mut P, i32) -> E;
    set_current_context = "aclrtSetCurrentContext": fn(P) -> E;
    destroy_context = "aclrtDestroyContext": fn(P) -> E;
    synchronize_device = "aclrtSynchronizeDevice": fn() -> E;
    create_stream = "aclrtCreateStream": fn(*mut P) -> E;
    destroy_stream = "aclrtDestroyStream": fn(P) -> E;
    synchronize_stream = "aclrtSynchronizeStream": fn(P) -> E;
    malloc = "aclrtMalloc": fn(*mut P, usize, i32) -> E;
    free = "aclrtFree": fn(P) -> E;
    free_with_dev_sync = "aclrtFreeWithDevSync": fn(P) -> E;
    malloc_host = "aclrtMallocHost": fn(*mut P, usize) -> E;
    free_host = "aclrtFreeHost": fn(P) -> E;
    memcpy = "aclrtMemcpy": fn(P, usize, *const c_void, usize, i32) -> E;
    memcpy_async = "aclrtMemcpyAsync": fn(P, usize, *const c_void, usize, i32, P) -> E;
    memset = "aclrtMemset": fn(P, usize, i32, usize) -> E;
    memset_async = "aclrtMemsetAsync": fn(P, usize, i32, usize, P) -> E;
    get_mem_info = "aclrtGetMemInfo": fn(i32, *mut usize, *mut usize) -> E;
    can_access_peer = "aclrtDeviceCanAccessPeer": fn(*mut i32, i32, i32) -> E;
    enable_peer_access = "aclrtDeviceEnablePeerAccess": fn(i32, u32) -> E;
    disable_peer_access = "aclrtDeviceDisablePeerAccess": fn(i32) -> E;
    peer_access_status = "aclrtDevicePeerAccessStatus": fn(i32, i32, *mut i32) -> E;
    create_event = "aclrtCreateEvent": fn(*mut P) -> E;
    record_event = "aclrtRecordEvent": fn(P, P) -> E;
    stream_wait_event = "aclrtStreamWaitEvent": fn(P, P) -> E;
    synchronize_event = "aclrtSynchronizeEvent": fn(P) -> E;
    destroy_event = "aclrtDestroyEvent": fn(P) -> E;
    recent_err_msg = "aclGetRecentErrMsg": fn() -> *const c_char;
}

/// The library file name.
pub const LIB_NAME: &str = "libascendcl.so";

/// Where `libascendcl.so` is looked for, in order: `$ASCEND_HOME_PATH/lib64`,
/// `$ASCEND_TOOLKIT_HOME/lib64`, the standard install paths; then the bare name
/// (the loader path: `LD_LIBRARY_PATH`, ld.so.cache).
pub fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for var in ["ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"] {
        if let Some(d) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            v.push(PathBuf::from(d).join("lib64").join(LIB_NAME));
        }
    }
    for d in [
        "/usr/local/Ascend/ascend-toolkit/latest/lib64",
        "/usr/local/Ascend/cann/lib64",
        "/usr/local/Ascend/latest/lib64",
    ] {
        v.push(Path::new(d).join(LIB_NAME));
    }
    v
}

/// The real ACL runtime.
pub struct AclLib {
    f: Fns,
    path: String,
    _lib: libloading::Library,
}

// SAFETY: ACL functions are thread safe (the current context is per thread);
// the struct only holds function pointers and the library handle.
unsafe impl Send for AclLib {}
// SAFETY: as above.
unsafe impl Sync for AclLib {}

impl AclLib {
    /// Finds and opens `libascendcl.so` (see [`candidates`]) and resolves every symbol.
    pub fn load() -> Result<AclLib, AclError> {
        let cands = candidates();
        for c in &cands {
            if c.exists() {
                return Self::open(c);
            }
        }
        // The loader path, by bare name.
        // SAFETY: loading a shared library runs its initialisers; libascendcl's are
        // the vendor's and expected to be sound.
        if let Ok(lib) = unsafe { libloading::Library::new(LIB_NAME) } {
            return Self::from_lib(lib, LIB_NAME.to_owned());
        }
        let looked: Vec<String> = cands.iter().map(|p| p.display().to_string()).collect();
        Err(AclError::NotFound(format!(
            "the Ascend backend needs CANN's {LIB_NAME}, not found in {} nor on the loader path; install CANN and run `source /usr/local/Ascend/ascend-toolkit/set_env.sh` (or set ASCEND_HOME_PATH to the toolkit folder), or use --backend cpu / ascend-sim",
            looked.join(", ")
        )))
    }

    /// Opens the library at `path` and resolves every symbol.
    pub fn open(path: &Path) -> Result<AclLib, AclError> {
        // SAFETY: as in `load`.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
            AclError::NotFound(format!(
                "cannot open {}: {e}; reinstall CANN or fix ASCEND_HOME_PATH",
                path.display()
            ))
        })?;
        Self::from_lib(lib, path.display().to_string())
    }

    fn from_lib(lib: libloading::Library, path: String) -> Result<AclLib, AclError> {
        let f = Fns::load(&lib, &path)?;
        Ok(AclLib { f, path, _lib: lib })
    }

    /// The file the library was loaded from.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn recent(&self) -> Option<String> {
        // SAFETY: aclGetRecentErrMsg returns NULL or a NUL-terminated thread-local string.
        let p = unsafe { (self.f.recent_err_msg)() };
        if p.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated (ACL contract).
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    fn ck(&self, call: &'static str, code: E) -> Result<(), AclError> {
        check(call, code, || self.recent())
    }
}

impl Acl for AclLib {
    fn init(&self) -> Result<(), AclError> {
        // SAFETY: NULL config path is allowed.
        let r = unsafe { (self.f.init)(std::ptr::null()) };
        if r == codes::ACL_ERROR_REPEAT_INITIALIZE {
            return Ok(());
        }
        self.ck("aclInit", r)
    }

    fn device_count(&self) -> Result<u32, AclError> {
        let mut n = 0u32;
        // SAFETY: valid out pointer.
        self.ck("aclrtGetDeviceCount", unsafe {
            (self.f.get_device_count)(&mut n)
        })?;
        Ok(n)
    }

    fn set_device(&self, dev: i32) -> Result<(), AclError> {
        // SAFETY: plain value argument.
        self.ck("aclrtSetDevice", unsafe { (self.f.set_device)(dev) })
    }

    fn create_context(&self, dev: i32) -> Result<Handle, AclError> {
        let mut c: P = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        self.ck("aclrtCreateContext", unsafe {
            (self.f.create_context)(&mut c, dev)
        })?;
        Ok(c as Handle)
    }

    fn set_current_context(&self, ctx: Handle) -> Result<(), AclError> {
        // SAFETY: ctx came from aclrtCreateContext.
        self.ck("aclrtSetCurrentContext", unsafe {
            (self.f.set_current_context)(ctx as P)
        })
    }

    fn create_stream(&self) -> Result<Handle, AclError> {
        let mut s: P = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        self.ck("aclrtCreateStream", unsafe {
            (self.f.create_stream)(&mut s)
        })?;
        Ok(s as Handle)
    }

    fn malloc(&self, size: usize) -> Result<DevPtr, AclError> {
        let mut p: P = std::ptr::null_mut();
        // SAFETY: valid out pointer.
        self.ck("aclrtMalloc", unsafe {
            (self.f.malloc)(&mut p, size.max(1), malloc_policy::HUGE_FIRST)
        })?;
        Ok(p as DevPtr)
    }

    fn free(&self, ptr: DevPtr) -> Result<(), AclError> {
        // SAFETY: ptr came from aclrtMalloc; callers sync before freeing.
        self.ck("aclrtFree", unsafe { (self.f.free)(ptr as P) })
    }

    unsafe fn memcpy(
        &self,
        dst: usize,
        dst_max: usize,
        src: usize,
        count: usize,
        kind: i32,
    ) -> Result<(), AclError> {
        // SAFETY: the caller guarantees the ranges (trait contract).
        self.ck("aclrtMemcpy", unsafe {
            (self.f.memcpy)(dst as P, dst_max, src as *const c_void, count, kind)
        })
    }

    unsafe fn memcpy_async(
        &self,
        dst: usize,
        dst_max: usize,
        src: usize,
        count: usize,
        kind: i32,
        stream: Handle,
    ) -> Result<(), AclError> {
        // SAFETY: the caller guarantees the ranges (trait contract).
        let r = unsafe {
            (self.f.memcpy_async)(
                dst as P,
                dst_max,
                src as *const c_void,
                count,
                kind,
                stream as P,
            )
        };
        self.ck("aclrtMemcpyAsync", r)
    }

    fn memset(&self, ptr: DevPtr, max: usize, value: i32, count: usize) -> Result<(), AclError> {
        // SAFETY: device range from aclrtMalloc, checked by the runtime.
        self.ck("aclrtMemset", unsafe {
            (self.f.memset)(ptr as P, max, value, count)
        })
    }

    fn memset_async(
        &self,
        ptr: DevPtr,
        max: usize,
        value: i32,
        count: usize,
        stream: Handle,
    ) -> Result<(), AclError> {
        // SAFETY: as above.
        self.ck("aclrtMemsetAsync", unsafe {
            (self.f.memset_async)(ptr as P, max, value, count, stream as P)
        })
    }

    fn sync_stream(&self, stream: Handle) -> Result<(), AclError> {
        // SAFETY: stream came from aclrtCreateStream.
        self.ck("aclrtSynchronizeStream", unsafe {
            (self.f.synchronize_stream)(stream as P)
        })
    }

    fn sync_device(&self) -> Result<(), AclError> {
        // SAFETY: no arguments.
        self.ck("aclrtSynchronizeDevice", unsafe {
            (self.f.synchronize_device)()
        })
    }

    fn mem_info(&self) -> Result<(usize, usize), AclError> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: valid out pointers. DDR: the 310P's memory is LPDDR (ASCEND.md §2.2).
        self.ck("aclrtGetMemInfo", unsafe {
            (self.f.get_mem_info)(mem_attr::DDR_MEM, &mut free, &mut total)
        })?;
        Ok((free, total))
    }

    fn destroy_stream(&self, stream: Handle) -> Result<(), AclError> {
        // SAFETY: stream came from aclrtCreateStream.
        self.ck("aclrtDestroyStream", unsafe {
            (self.f.destroy_stream)(stream as P)
        })
    }

    fn destroy_context(&self, ctx: Handle) -> Result<(), AclError> {
        // SAFETY: ctx came from aclrtCreateContext.
        self.ck("aclrtDestroyContext", unsafe {
            (self.f.destroy_context)(ctx as P)
        })
    }

    fn reset_device(&self, dev: i32) -> Result<(), AclError> {
        // SAFETY: plain value.
        self.ck("aclrtResetDevice", unsafe { (self.f.reset_device)(dev) })
    }

    fn launch(
        &self,
        stream: Handle,
        _access: &[Access],
        _label: &str,
        work: Work,
    ) -> Result<(), AclError> {
        // The launch wrapper enqueues on the device stream itself.
        work(stream as P);
        Ok(())
    }
}
