//! The ACL runtime (CANN's `libascendcl`) as the Ascend backend uses it.
//!
//! [`Acl`] is the subset of ACL the backend calls, with two implementations:
//! [`dynlib::AclLib`], the real library loaded at run time (symbols checked at
//! start, no link-time dependency on CANN), and [`sim::SimAcl`], an in-process
//! emulation with separate device memories and streams whose queued work runs only
//! when the host synchronises (so a missing synchronisation gives a wrong answer,
//! and the emulation reports it as a hazard).
//!
//! Device addresses are plain `usize` values; handles (contexts, streams) are
//! opaque `usize` values too. Work queued on a stream that is not an ACL call (a
//! kernel launch through an `aclrtlaunch_*` wrapper) goes through
//! [`Acl::launch`], which takes the memory ranges the work reads and writes so the
//! emulation can check them.

pub mod codes;
pub mod dynlib;
pub mod sim;
#[cfg(test)]
mod tests_dynlib;
#[cfg(test)]
mod tests_sim;

use std::ffi::c_void;

/// A device address.
pub type DevPtr = usize;
/// An opaque ACL handle (`aclrtContext`, `aclrtStream`).
pub type Handle = usize;

/// An ACL failure.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// An ACL call returned a non-zero `aclError`.
    #[error("{call} failed: {msg}{recent}")]
    Call {
        call: &'static str,
        code: i32,
        msg: String,
        recent: String,
    },
    /// `libascendcl.so` could not be found or opened.
    #[error("{0}")]
    NotFound(String),
    /// The library lacks a function the backend needs.
    #[error("{lib} lacks the symbol {symbol}; the CANN installation is incomplete or too old (install CANN >= 8 and source set_env.sh)")]
    MissingSymbol { lib: String, symbol: String },
    /// The emulation refused an operation (bad address, wrong device, ...).
    #[error("{0}")]
    Sim(String),
}

/// Turns an `aclError` into a result, with the library's recent message when known.
pub fn check(
    call: &'static str,
    code: i32,
    recent: impl FnOnce() -> Option<String>,
) -> Result<(), AclError> {
    if code == codes::ACL_SUCCESS {
        return Ok(());
    }
    let recent = recent()
        .filter(|s| !s.is_empty())
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    Err(AclError::Call {
        call,
        code,
        msg: codes::message(code),
        recent,
    })
}

/// A memory range queued work reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub ptr: DevPtr,
    pub len: usize,
    pub write: bool,
}

impl Access {
    /// A read of `len` bytes at `ptr`.
    pub fn read(ptr: DevPtr, len: usize) -> Self {
        Access {
            ptr,
            len,
            write: false,
        }
    }

    /// A write of `len` bytes at `ptr`.
    pub fn write(ptr: DevPtr, len: usize) -> Self {
        Access {
            ptr,
            len,
            write: true,
        }
    }

    /// True when the two ranges overlap and at least one writes.
    pub fn conflicts(&self, o: &Access) -> bool {
        (self.write || o.write) && self.ptr < o.ptr + o.len && o.ptr < self.ptr + self.len
    }
}

/// Work queued on a stream: called with the stream's native handle.
pub type Work = Box<dyn FnOnce(*mut c_void) + Send>;

/// The ACL functions the Ascend backend uses (ASCEND.md §2.1, §2.4). Each maps to
/// one C function of the same name; the "current context" is per thread, as in ACL.
pub trait Acl: Send + Sync {
    /// `aclInit(NULL)`; a repeated initialisation is accepted.
    fn init(&self) -> Result<(), AclError>;
    /// `aclrtGetDeviceCount`.
    fn device_count(&self) -> Result<u32, AclError>;
    /// `aclrtSetDevice`.
    fn set_device(&self, dev: i32) -> Result<(), AclError>;
    /// `aclrtCreateContext` on `dev`.
    fn create_context(&self, dev: i32) -> Result<Handle, AclError>;
    /// `aclrtSetCurrentContext` (for the calling thread).
    fn set_current_context(&self, ctx: Handle) -> Result<(), AclError>;
    /// `aclrtCreateStream` in the current context.
    fn create_stream(&self) -> Result<Handle, AclError>;
    /// `aclrtMalloc` with `ACL_MEM_MALLOC_HUGE_FIRST` on the current device.
    fn malloc(&self, size: usize) -> Result<DevPtr, AclError>;
    /// `aclrtFree`.
    fn free(&self, ptr: DevPtr) -> Result<(), AclError>;
    /// `aclrtMemcpy` (blocking; does not wait for streams).
    ///
    /// # Safety
    /// Host addresses must be valid for `count` bytes in the direction `kind` says.
    unsafe fn memcpy(
        &self,
        dst: usize,
        dst_max: usize,
        src: usize,
        count: usize,
        kind: i32,
    ) -> Result<(), AclError>;
    /// `aclrtMemcpyAsync` on `stream`.
    ///
    /// # Safety
    /// As for [`Acl::memcpy`]; host memory must stay valid until the stream is synchronised.
    unsafe fn memcpy_async(
        &self,
        dst: usize,
        dst_max: usize,
        src: usize,
        count: usize,
        kind: i32,
        stream: Handle,
    ) -> Result<(), AclError>;
    /// `aclrtMemset` (blocking).
    fn memset(&self, ptr: DevPtr, max: usize, value: i32, count: usize) -> Result<(), AclError>;
    /// `aclrtMemsetAsync` on `stream`.
    fn memset_async(
        &self,
        ptr: DevPtr,
        max: usize,
        value: i32,
        count: usize,
        stream: Handle,
    ) -> Result<(), AclError>;
    /// `aclrtSynchronizeStream`.
    fn sync_stream(&self, stream: Handle) -> Result<(), AclError>;
    /// `aclrtSynchronizeDevice` (the current device).
    fn sync_device(&self) -> Result<(), AclError>;
    /// `aclrtGetMemInfo(ACL_MEM_NORMAL)`: (free, total) bytes of the current device.
    fn mem_info(&self) -> Result<(usize, usize), AclError>;
    /// `aclrtDestroyStream`.
    fn destroy_stream(&self, stream: Handle) -> Result<(), AclError>;
    /// `aclrtDestroyContext`.
    fn destroy_context(&self, ctx: Handle) -> Result<(), AclError>;
    /// `aclrtResetDevice`.
    fn reset_device(&self, dev: i32) -> Result<(), AclError>;
    /// Queues `work` (a kernel launch wrapper call) on `stream`. `access` lists the
    /// device memory it reads and writes. The real library runs `work` at once (the
    /// wrapper itself enqueues on the device); the emulation runs it at the next
    /// synchronisation of the stream.
    fn launch(
        &self,
        stream: Handle,
        access: &[Access],
        label: &str,
        work: Work,
    ) -> Result<(), AclError>;
    /// Hazards seen so far (the emulation only): queued work of one stream touching
    /// memory another stream's pending work writes, or the host doing so.
    fn hazards(&self) -> Vec<String> {
        Vec::new()
    }
    /// (live, peak) bytes allocated on `dev` (the emulation only).
    fn mem_counters(&self, _dev: i32) -> Option<(u64, u64)> {
        None
    }
}
