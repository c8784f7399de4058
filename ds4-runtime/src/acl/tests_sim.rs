//! The ACL emulation's rules: queued work runs only at synchronisation, cross-stream
//! conflicts and frees of memory in use are reported, and a stream may only be used
//! while its device is current.

use super::codes::memcpy_kind as kind;
use super::sim::SimAcl;
use super::{Access, Acl};

fn two_devices() -> (SimAcl, [usize; 2], [usize; 2]) {
    let acl = SimAcl::new(2, 1 << 20);
    acl.init().expect("init");
    let mut ctx = [0; 2];
    let mut st = [0; 2];
    for d in 0..2 {
        ctx[d] = acl.create_context(d as i32).expect("context");
        st[d] = acl.create_stream().expect("stream");
    }
    (acl, ctx, st)
}

#[test]
fn sim_work_runs_only_at_sync_and_counts_memory() {
    let (acl, ctx, st) = two_devices();
    acl.set_current_context(ctx[0]).expect("ctx");
    let p = acl.malloc(64).expect("malloc");
    acl.memset_async(p, 64, 7, 64, st[0]).expect("memset");
    let mut host = [0u8; 64];
    // SAFETY: host buffer of 64 bytes.
    unsafe { acl.memcpy(host.as_mut_ptr() as usize, 64, p, 64, kind::DEVICE_TO_HOST) }
        .expect("read");
    assert_eq!(host[0], 0, "queued work ran before the sync");
    assert!(
        acl.hazards().iter().any(|h| h.contains("host aclrtMemcpy")),
        "{:?}",
        acl.hazards()
    );
    acl.sync_stream(st[0]).expect("sync");
    // SAFETY: as above.
    unsafe { acl.memcpy(host.as_mut_ptr() as usize, 64, p, 64, kind::DEVICE_TO_HOST) }
        .expect("read");
    assert_eq!(host, [7u8; 64]);
    assert_eq!(acl.mem_counters(0), Some((64, 64)));
    assert_eq!(acl.mem_info().expect("info"), ((1 << 20) - 64, 1 << 20));
    acl.free(p).expect("free");
    assert_eq!(acl.mem_counters(0), Some((0, 64)));
}

#[test]
fn sim_reports_cross_stream_conflicts_and_wrong_device_streams() {
    let (acl, ctx, st) = two_devices();
    acl.set_current_context(ctx[0]).expect("ctx");
    let a = acl.malloc(256).expect("malloc");
    acl.launch(
        st[0],
        &[Access::write(a, 256)],
        "producer",
        Box::new(|_| {}),
    )
    .expect("launch");
    // A device-1 stream cannot be used while device 0 is current.
    assert!(acl.sync_stream(st[1]).is_err());
    acl.set_current_context(ctx[1]).expect("ctx");
    let b = acl.malloc(256).expect("malloc");
    // SAFETY: both ranges are live device allocations.
    unsafe { acl.memcpy_async(b, 256, a, 256, kind::DEVICE_TO_DEVICE, st[1]) }.expect("copy");
    let h = acl.hazards();
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(
        h[0].contains("'producer'") && h[0].contains("still writes"),
        "{}",
        h[0]
    );
    // Copies must be issued on the destination's stream.
    acl.set_current_context(ctx[0]).expect("ctx");
    // SAFETY: as above.
    assert!(unsafe { acl.memcpy_async(b, 256, a, 256, kind::DEVICE_TO_DEVICE, st[0]) }.is_err());
    // Freeing memory that pending work reads is a hazard too.
    acl.set_current_context(ctx[1]).expect("ctx");
    acl.free(b).expect("free");
    assert!(
        acl.hazards().iter().any(|h| h.contains("aclrtFree")),
        "{:?}",
        acl.hazards()
    );
}
