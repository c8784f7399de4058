//! An in-process emulation of the ACL subset the backend uses (`--backend ascend-sim`).
//!
//! Two (or more) devices with separate memories: every `aclrtMalloc` is a host
//! allocation registered to the current device, with per-device live and peak byte
//! counters and a fixed capacity that `aclrtGetMemInfo` reports against. Streams
//! keep their work in a queue that runs only when the host synchronises the stream
//! or its device, in order. Kernel launches arrive as [`Work`] with the ranges they
//! touch. Whenever work is queued on one stream (or the host copies or sets memory
//! itself) while another stream has pending work whose ranges conflict with it (one
//! of the two writes), the emulation records a hazard: on real hardware the two
//! would race. The rules of the real runtime that the backend must follow are
//! enforced: a context or device must be current, a stream may be used only while
//! its own device is current, addresses must lie inside live allocations of the
//! device the copy kind names.

use super::codes::memcpy_kind as kind;
use super::{Access, Acl, AclError, DevPtr, Handle, Work};
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::sync::Mutex;
use std::thread::ThreadId;

struct Alloc {
    dev: i32,
    len: usize,
    _mem: Box<[u64]>,
}

#[derive(Default)]
struct Stream {
    dev: i32,
    queue: Vec<(Vec<Access>, String, Work)>,
}

#[derive(Default)]
struct State {
    inited: bool,
    live: Vec<u64>,
    peak: Vec<u64>,
    allocs: BTreeMap<usize, Alloc>,
    contexts: HashMap<Handle, i32>,
    streams: HashMap<Handle, Stream>,
    current: HashMap<ThreadId, i32>,
    next: Handle,
    hazards: Vec<String>,
}

/// The emulated ACL runtime.
pub struct SimAcl {
    devices: usize,
    capacity: u64,
    st: Mutex<State>,
}

fn sim(msg: String) -> AclError {
    AclError::Sim(format!("ascend-sim: {msg}"))
}

impl SimAcl {
    /// `devices` emulated devices of `capacity` bytes each.
    pub fn new(devices: usize, capacity: u64) -> Self {
        let st = State {
            live: vec![0; devices],
            peak: vec![0; devices],
            next: 1,
            ..State::default()
        };
        SimAcl {
            devices,
            capacity,
            st: Mutex::new(st),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic in another thread leaves the state consistent (no partial updates).
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(st: &State) -> Result<i32, AclError> {
        st.current.get(&std::thread::current().id()).copied().ok_or_else(|| {
            sim("no current context on this thread (ACL_ERROR_RT_CONTEXT_NULL): call aclrtSetDevice/aclrtSetCurrentContext first".into())
        })
    }

    /// The device owning `[ptr, ptr + len)`, which must lie inside one allocation.
    fn owner(st: &State, ptr: usize, len: usize) -> Option<i32> {
        let (base, a) = st.allocs.range(..=ptr).next_back()?;
        (ptr + len <= base + a.len).then_some(a.dev)
    }

    fn device_range(st: &State, ptr: usize, len: usize, what: &str) -> Result<i32, AclError> {
        Self::owner(st, ptr, len).ok_or_else(|| {
            sim(format!(
                "{what}: {len} bytes at {ptr:#x} are not inside one device allocation"
            ))
        })
    }

    fn stream_dev(st: &State, stream: Handle) -> Result<i32, AclError> {
        let s = st
            .streams
            .get(&stream)
            .ok_or_else(|| sim(format!("unknown stream {stream}")))?;
        let cur = Self::current(st)?;
        if cur != s.dev {
            return Err(sim(format!(
                "stream of device {} used while device {cur} is current (ACL_ERROR_RT_STREAM_CONTEXT)",
                s.dev
            )));
        }
        Ok(s.dev)
    }

    /// Records a hazard for every pending work item (on streams other than `own`)
    /// that conflicts with `acc`.
    fn check_hazards(st: &mut State, own: Option<Handle>, acc: &[Access], what: &str) {
        let mut found = Vec::new();
        for (h, s) in &st.streams {
            if Some(*h) == own {
                continue;
            }
            for (pend, label, _) in &s.queue {
                if let Some(a) = acc.iter().find(|a| pend.iter().any(|p| p.conflicts(a))) {
                    found.push(format!(
                        "hazard: {what} {} {} bytes at {:#x} that pending '{label}' on a stream of device {} still {}",
                        if a.write { "writes" } else { "reads" },
                        a.len,
                        a.ptr,
                        s.dev,
                        if pend.iter().any(|p| p.write && p.conflicts(a)) { "writes" } else { "reads" },
                    ));
                    break;
                }
            }
        }
        st.hazards.extend(found);
    }

    fn enqueue(
        &self,
        stream: Handle,
        acc: Vec<Access>,
        label: String,
        work: Work,
    ) -> Result<(), AclError> {
        let mut st = self.lock();
        let dev = Self::stream_dev(&st, stream)?;
        Self::check_hazards(
            &mut st,
            Some(stream),
            &acc,
            &format!("'{label}' queued on device {dev}"),
        );
        if let Some(s) = st.streams.get_mut(&stream) {
            s.queue.push((acc, label, work));
        }
        Ok(())
    }

    fn run_queue(&self, streams: &[Handle]) {
        let mut work = Vec::new();
        {
            let mut st = self.lock();
            for h in streams {
                if let Some(s) = st.streams.get_mut(h) {
                    work.push(std::mem::take(&mut s.queue));
                }
            }
        }
        for q in work {
            for (_, _, w) in q {
                w(std::ptr::null_mut());
            }
        }
    }

    fn copy_accesses(
        st: &State,
        dst: usize,
        src: usize,
        count: usize,
        k: i32,
    ) -> Result<Vec<Access>, AclError> {
        let mut acc = Vec::new();
        match k {
            kind::HOST_TO_DEVICE => {
                Self::device_range(st, dst, count, "aclrtMemcpy destination")?;
                acc.push(Access::write(dst, count));
            }
            kind::DEVICE_TO_HOST => {
                Self::device_range(st, src, count, "aclrtMemcpy source")?;
                acc.push(Access::read(src, count));
            }
            kind::DEVICE_TO_DEVICE => {
                Self::device_range(st, dst, count, "aclrtMemcpy destination")?;
                Self::device_range(st, src, count, "aclrtMemcpy source")?;
                acc.push(Access::read(src, count));
                acc.push(Access::write(dst, count));
            }
            other => return Err(sim(format!("memcpy kind {other} is not supported by this card's runtime path (use HOST_TO_DEVICE, DEVICE_TO_HOST or DEVICE_TO_DEVICE)"))),
        }
        Ok(acc)
    }
}

impl Acl for SimAcl {
    fn init(&self) -> Result<(), AclError> {
        self.lock().inited = true;
        Ok(())
    }

    fn device_count(&self) -> Result<u32, AclError> {
        Ok(self.devices as u32)
    }

    fn set_device(&self, dev: i32) -> Result<(), AclError> {
        let mut st = self.lock();
        if !st.inited {
            return Err(sim(
                "aclrtSetDevice before aclInit (ACL_ERROR_UNINITIALIZE)".into(),
            ));
        }
        if dev < 0 || dev as usize >= self.devices {
            return Err(sim(format!(
                "no device {dev} (ACL_ERROR_RT_INVALID_DEVICEID)"
            )));
        }
        st.current.insert(std::thread::current().id(), dev);
        Ok(())
    }

    fn create_context(&self, dev: i32) -> Result<Handle, AclError> {
        self.set_device(dev)?;
        let mut st = self.lock();
        let h = st.next;
        st.next += 1;
        st.contexts.insert(h, dev);
        Ok(h)
    }

    fn set_current_context(&self, ctx: Handle) -> Result<(), AclError> {
        let mut st = self.lock();
        let dev = *st
            .contexts
            .get(&ctx)
            .ok_or_else(|| sim(format!("unknown context {ctx}")))?;
        st.current.insert(std::thread::current().id(), dev);
        Ok(())
    }

    fn create_stream(&self) -> Result<Handle, AclError> {
        let mut st = self.lock();
        let dev = Self::current(&st)?;
        let h = st.next;
        st.next += 1;
        st.streams.insert(
            h,
            Stream {
                dev,
                queue: Vec::new(),
            },
        );
        Ok(h)
    }

    fn malloc(&self, size: usize) -> Result<DevPtr, AclError> {
        let mut st = self.lock();
        let dev = Self::current(&st)?;
        let d = dev as usize;
        if size == 0 {
            return Err(sim(
                "aclrtMalloc of 0 bytes (ACL_ERROR_INVALID_PARAM)".into()
            ));
        }
        if st.live[d] + size as u64 > self.capacity {
            return Err(sim(format!("device {dev} out of memory: {} live + {size} > {} (ACL_ERROR_RT_MEMORY_ALLOCATION)", st.live[d], self.capacity)));
        }
        let mem = vec![0u64; size.div_ceil(8)].into_boxed_slice();
        let ptr = mem.as_ptr() as usize;
        st.allocs.insert(
            ptr,
            Alloc {
                dev,
                len: size,
                _mem: mem,
            },
        );
        st.live[d] += size as u64;
        st.peak[d] = st.peak[d].max(st.live[d]);
        Ok(ptr)
    }

    fn free(&self, ptr: DevPtr) -> Result<(), AclError> {
        let mut st = self.lock();
        let Some(a) = st.allocs.get(&ptr) else {
            return Err(sim(format!("aclrtFree of unknown address {ptr:#x}")));
        };
        let acc = [Access::write(ptr, a.len)];
        let dev = a.dev as usize;
        Self::check_hazards(&mut st, None, &acc, "aclrtFree");
        if let Some(a) = st.allocs.remove(&ptr) {
            st.live[dev] -= a.len as u64;
        }
        Ok(())
    }

    unsafe fn memcpy(
        &self,
        dst: usize,
        dst_max: usize,
        src: usize,
        count: usize,
        k: i32,
    ) -> Result<(), AclError> {
        if count > dst_max {
            return Err(sim(format!(
                "aclrtMemcpy of {count} bytes into {dst_max} (ACL_ERROR_INVALID_PARAM)"
            )));
        }
        {
            let mut st = self.lock();
            Self::current(&st)?;
            let acc = Self::copy_accesses(&st, dst, src, count, k)?;
            Self::check_hazards(&mut st, None, &acc, "host aclrtMemcpy");
        }
        // SAFETY: device ranges were checked against live allocations; the caller
        // guarantees the host range; the ranges belong to different allocations or
        // host buffers, which cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, count) };
        Ok(())
    }

    unsafe fn memcpy_async(
        &self,
        dst: usize,
        dst_max: usize,
        src: usize,
        count: usize,
        k: i32,
        stream: Handle,
    ) -> Result<(), AclError> {
        if count > dst_max {
            return Err(sim(format!(
                "aclrtMemcpyAsync of {count} bytes into {dst_max} (ACL_ERROR_INVALID_PARAM)"
            )));
        }
        let acc = {
            let st = self.lock();
            let sdev = Self::stream_dev(&st, stream)?;
            let acc = Self::copy_accesses(&st, dst, src, count, k)?;
            if k == kind::DEVICE_TO_DEVICE && Self::owner(&st, dst, count) != Some(sdev) {
                return Err(sim("aclrtMemcpyAsync device-to-device must be issued on the destination device's stream".into()));
            }
            acc
        };
        let work: Work = Box::new(move |_s: *mut c_void| {
            // SAFETY: checked at enqueue; buffers are never freed while work is pending
            // (an aclrtFree of them would have been reported as a hazard).
            unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, count) }
        });
        self.enqueue(stream, acc, format!("aclrtMemcpyAsync {count} bytes"), work)
    }

    fn memset(&self, ptr: DevPtr, max: usize, value: i32, count: usize) -> Result<(), AclError> {
        let mut st = self.lock();
        Self::current(&st)?;
        if count > max {
            return Err(sim(format!("aclrtMemset of {count} bytes into {max}")));
        }
        Self::device_range(&st, ptr, count, "aclrtMemset")?;
        Self::check_hazards(
            &mut st,
            None,
            &[Access::write(ptr, count)],
            "host aclrtMemset",
        );
        // SAFETY: the range lies inside a live allocation.
        unsafe { std::ptr::write_bytes(ptr as *mut u8, value as u8, count) };
        Ok(())
    }

    fn memset_async(
        &self,
        ptr: DevPtr,
        max: usize,
        value: i32,
        count: usize,
        stream: Handle,
    ) -> Result<(), AclError> {
        {
            let st = self.lock();
            if count > max {
                return Err(sim(format!("aclrtMemsetAsync of {count} bytes into {max}")));
            }
            Self::device_range(&st, ptr, count, "aclrtMemsetAsync")?;
        }
        // SAFETY: the range lies inside a live allocation, kept alive while pending.
        let work: Work = Box::new(move |_s| unsafe {
            std::ptr::write_bytes(ptr as *mut u8, value as u8, count)
        });
        self.enqueue(
            stream,
            vec![Access::write(ptr, count)],
            format!("aclrtMemsetAsync {count} bytes"),
            work,
        )
    }

    fn sync_stream(&self, stream: Handle) -> Result<(), AclError> {
        Self::stream_dev(&self.lock(), stream)?;
        self.run_queue(&[stream]);
        Ok(())
    }

    fn sync_device(&self) -> Result<(), AclError> {
        let hs: Vec<Handle> = {
            let st = self.lock();
            let dev = Self::current(&st)?;
            st.streams
                .iter()
                .filter(|(_, s)| s.dev == dev)
                .map(|(h, _)| *h)
                .collect()
        };
        self.run_queue(&hs);
        Ok(())
    }

    fn mem_info(&self) -> Result<(usize, usize), AclError> {
        let st = self.lock();
        let dev = Self::current(&st)? as usize;
        Ok((
            (self.capacity - st.live[dev]) as usize,
            self.capacity as usize,
        ))
    }

    fn destroy_stream(&self, stream: Handle) -> Result<(), AclError> {
        self.sync_stream(stream)?;
        self.lock().streams.remove(&stream);
        Ok(())
    }

    fn destroy_context(&self, ctx: Handle) -> Result<(), AclError> {
        self.lock().contexts.remove(&ctx);
        Ok(())
    }

    fn reset_device(&self, _dev: i32) -> Result<(), AclError> {
        Ok(())
    }

    fn launch(
        &self,
        stream: Handle,
        access: &[Access],
        label: &str,
        work: Work,
    ) -> Result<(), AclError> {
        {
            let st = self.lock();
            let dev = Self::stream_dev(&st, stream)?;
            for a in access {
                match Self::owner(&st, a.ptr, a.len) {
                    Some(d) if d == dev => {}
                    Some(d) => {
                        return Err(sim(format!(
                            "kernel {label} on device {dev} touches memory of device {d}"
                        )))
                    }
                    None => {
                        return Err(sim(format!(
                            "kernel {label}: {} bytes at {:#x} outside every allocation",
                            a.len, a.ptr
                        )))
                    }
                }
            }
        }
        self.enqueue(stream, access.to_vec(), label.to_owned(), work)
    }

    fn hazards(&self) -> Vec<String> {
        self.lock().hazards.clone()
    }

    fn mem_counters(&self, dev: i32) -> Option<(u64, u64)> {
        let st = self.lock();
        Some((*st.live.get(dev as usize)?, *st.peak.get(dev as usize)?))
    }
}
