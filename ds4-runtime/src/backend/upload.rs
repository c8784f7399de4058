//! Weight upload: every weight slot of a plan set, copied once from the mapped
//! GGUF into device memory on the device the plan gives it.
//!
//! A routed-expert slot holds experts `[e0, e1)`: one contiguous range of the
//! stacked tensor (`e0 · expert_bytes .. e1 · expert_bytes`), so no reshuffling
//! happens at start. Q8_0 tensors are converted on the way to the device layout of
//! [`crate::ascend::layout`] (quants plane, then scales plane), chunk by chunk through a
//! staging buffer; everything else is copied as it is. Both devices upload in parallel
//! (one thread each, each with its device's context current) under one progress bar
//! that shows bytes/s.

use crate::acl::codes::memcpy_kind;
use crate::acl::{Acl, DevPtr, Handle};
use crate::ascend::layout;
use crate::gguf::GgufFile;
use crate::plan::PlanSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One contiguous copy: a byte range of a tensor to one device.
#[derive(Clone, Debug)]
pub struct UploadItem {
    pub slot: usize,
    /// Index of the tensor in the GGUF.
    pub tensor: usize,
    pub device: u8,
    /// Byte range inside the tensor's data.
    pub start: usize,
    pub len: usize,
    /// Experts `e0` of the slot (0 for dense weights); the kernels index experts from
    /// the full tensor's base, so the device address they get is `ptr - e0 · expert_bytes`.
    pub base_shift: usize,
    /// Converted to the split Q8_0 device layout on the way (whole tensors only).
    pub split_q8_0: bool,
}

/// The copies that place every bound weight slot of `plans` (slots of absent optional
/// tensors are skipped).
pub fn upload_items(
    plans: &PlanSet,
    file: &GgufFile,
    bound: &[Option<usize>],
) -> Result<Vec<UploadItem>, String> {
    let mut v = Vec::new();
    for (slot, w) in plans.weights.iter().enumerate() {
        let Some(idx) = bound.get(slot).copied().flatten() else {
            continue;
        };
        let info = file.tensors().get(idx).ok_or("bad tensor index")?;
        let full = info.n_bytes as usize;
        let (start, len, shift) = match w.experts {
            Some((e0, e1)) => {
                let ne = *w.dims.last().ok_or("expert tensor without dims")? as usize;
                if ne == 0 || !full.is_multiple_of(ne) {
                    return Err(format!(
                        "{}: {full} bytes do not split into {ne} experts",
                        w.gguf_name
                    ));
                }
                let eb = full / ne;
                (e0 as usize * eb, (e1 - e0) as usize * eb, e0 as usize * eb)
            }
            None => (0, full, 0),
        };
        if len as u64 != w.bytes {
            return Err(format!(
                "{}: the plan expects {} bytes on device {}, the file gives {len}",
                w.gguf_name, w.bytes, w.device
            ));
        }
        let split_q8_0 = crate::ascend::layout::is_split(w.ggml_type);
        if split_q8_0 && (w.experts.is_some() || len % 34 != 0) {
            return Err(format!(
                "{}: a Q8_0 weight must be uploaded whole (its device layout splits quants and scales)",
                w.gguf_name
            ));
        }
        v.push(UploadItem {
            slot,
            tensor: idx,
            device: w.device,
            start,
            len,
            base_shift: shift,
            split_q8_0,
        });
    }
    Ok(v)
}

/// Bytes each device receives (the dry run: nothing is allocated).
pub fn bytes_per_device(items: &[UploadItem], devices: usize) -> Vec<u64> {
    let mut b = vec![0u64; devices];
    for it in items {
        if let Some(x) = b.get_mut(it.device as usize) {
            *x += it.len as u64;
        }
    }
    b
}

/// Where the weights went.
pub struct Uploaded {
    /// Each slot's kernel address (0 when absent).
    pub ptrs: Vec<DevPtr>,
    /// Every allocation made: (device, address).
    pub allocs: Vec<(u8, DevPtr)>,
}

/// Per device thread: (slot, address) of each allocation, and the bytes copied.
type DeviceUpload = Result<(Vec<(usize, DevPtr)>, u64), String>;

/// Allocates and copies every item; returns each slot's kernel address (0 when
/// absent) and the allocations made (device, address). `ctxs[d]` is device d's context.
pub fn upload(
    acl: &dyn Acl,
    ctxs: &[Handle],
    file: &GgufFile,
    n_slots: usize,
    items: &[UploadItem],
    progress: bool,
) -> Result<Uploaded, String> {
    let total: u64 = items.iter().map(|i| i.len as u64).sum();
    let done = AtomicU64::new(0);
    let bar = if progress {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "uploading weights {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let t0 = Instant::now();
    let results: Vec<DeviceUpload> = std::thread::scope(|sc| {
        let handles: Vec<_> = ctxs
            .iter()
            .enumerate()
            .map(|(d, &ctx)| {
                let (done, bar) = (&done, bar.as_ref());
                sc.spawn(move || -> DeviceUpload {
                    acl.set_current_context(ctx).map_err(|e| e.to_string())?;
                    // Host bytes to device memory at `dst` (`room` bytes left there).
                    let copy = |dst: DevPtr, room: usize, src: &[u8]| -> Result<(), String> {
                        // SAFETY: `src` is host memory of src.len() bytes; `dst` lies in a
                        // fresh allocation with `room >= src.len()` bytes from it.
                        unsafe {
                            acl.memcpy(
                                dst,
                                room,
                                src.as_ptr() as usize,
                                src.len(),
                                memcpy_kind::HOST_TO_DEVICE,
                            )
                        }
                        .map_err(|e| e.to_string())
                    };
                    let needs_staging =
                        items.iter().any(|i| i.device as usize == d && i.split_q8_0);
                    let mut staging = vec![
                        0u8;
                        if needs_staging {
                            (64 << 20) / 34 * 34
                        } else {
                            0
                        }
                    ];
                    let mut out = Vec::new();
                    let mut bytes = 0u64;
                    for it in items.iter().filter(|i| i.device as usize == d && i.len > 0) {
                        let info = file.tensors().get(it.tensor).ok_or("bad tensor index")?;
                        let data = &file.tensor_data(info)[it.start..it.start + it.len];
                        let ptr = acl.malloc(it.len).map_err(|e| e.to_string())?;
                        out.push((it.slot, ptr));
                        // Whole Q8_0 blocks per chunk, so a chunk splits on its own.
                        const STEP: usize = (64 << 20) / 34 * 34;
                        for off in (0..it.len).step_by(STEP) {
                            let n = STEP.min(it.len - off);
                            let src = &data[off..off + n];
                            if it.split_q8_0 {
                                let (b0, nb, total) = (off / 34, n / 34, it.len / 34);
                                let (q, s) = staging.split_at_mut(32 * nb);
                                layout::split_q8_0(src, q, &mut s[..2 * nb]);
                                copy(ptr + 32 * b0, it.len - 32 * b0, q)?;
                                copy(ptr + 32 * total + 2 * b0, 2 * (total - b0), &s[..2 * nb])?;
                            } else {
                                copy(ptr + off, it.len - off, src)?;
                            }
                            let now = done.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                            if let Some(b) = bar {
                                b.set_position(now);
                            }
                        }
                        bytes += it.len as u64;
                    }
                    Ok((out, bytes))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("upload thread panicked".into()))
            })
            .collect()
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = t0.elapsed().max(Duration::from_micros(1)).as_secs_f64();
    let mut ptrs = vec![0usize; n_slots];
    let mut allocs = Vec::new();
    let mut per_dev = Vec::new();
    for (d, r) in results.into_iter().enumerate() {
        let (slots, bytes) = r?;
        per_dev.push(format!(
            "device {d}: {:.1} MiB",
            bytes as f64 / (1 << 20) as f64
        ));
        for (slot, p) in slots {
            allocs.push((d as u8, p));
            let shift = items
                .iter()
                .find(|i| i.slot == slot)
                .map_or(0, |i| i.base_shift);
            ptrs[slot] = p.wrapping_sub(shift);
        }
    }
    eprintln!(
        "ds4-runtime: uploaded weights ({}) in {secs:.2} s ({:.1} MiB/s)",
        per_dev.join(", "),
        total as f64 / (1 << 20) as f64 / secs
    );
    Ok(Uploaded { ptrs, allocs })
}
