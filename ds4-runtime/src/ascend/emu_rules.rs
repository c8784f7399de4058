//! The emulation enforces the device's rules: deliberately broken kernels must abort.
//!
//! Each broken kernel runs in a child process (this test binary re-run on the one
//! `broken_kernel_child` test with `DS4_ASCEND_BROKEN` set), and the parent checks that the
//! child died and printed the rule's one-line message.

use super::kernels::aclrtlaunch_broken;
use std::process::Command;

/// Runs the broken kernel named by `DS4_ASCEND_BROKEN` when set (in the child process);
/// without the variable it does nothing.
#[test]
fn broken_kernel_child() {
    let Ok(which) = std::env::var("DS4_ASCEND_BROKEN") else {
        return;
    };
    let which: u32 = which.parse().expect("kernel number");
    // Zeros, except for the stale-workspace case: a barrier workspace holding ones.
    let fill = if which == 6 { f32::from_bits(1) } else { 0.0 };
    let mut buf = vec![fill; 64];
    unsafe { aclrtlaunch_broken(which, buf.as_mut_ptr() as *mut u8) };
    println!("broken kernel {which} returned");
}

fn run_child(which: u32) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--exact",
            "ascend::emu_rules::broken_kernel_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DS4_ASCEND_BROKEN", which.to_string())
        .output()
        .expect("spawn the test binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_aborts(which: u32, rule: &str, kernel: &str) {
    let (ok, stderr) = run_child(which);
    assert!(
        !ok,
        "broken kernel {which} did not abort; stderr:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("ascendc-emu: "))
        .unwrap_or_else(|| panic!("no emulator message:\n{stderr}"));
    assert!(
        line.contains(rule) && line.contains(kernel),
        "unexpected message: {line}"
    );
}

#[test]
fn ascend_emu_aborts_on_misaligned_datacopy() {
    assert_aborts(
        0,
        "DataCopy unified-buffer address not 32-byte aligned",
        "ds4_broken_misaligned",
    );
}

#[test]
fn ascend_emu_aborts_on_read_past_buffer() {
    assert_aborts(1, "global out of range", "ds4_broken_overread");
}

#[test]
fn ascend_emu_aborts_on_ub_over_capacity() {
    assert_aborts(2, "unified buffer over capacity", "ds4_broken_ub_overflow");
}

#[test]
fn ascend_emu_aborts_on_queue_depth() {
    assert_aborts(3, "queue depth", "ds4_broken_queue_depth");
}

#[test]
fn ascend_emu_aborts_on_two_live_pipes() {
    assert_aborts(4, "two live TPipe objects", "ds4_broken_two_pipes");
}

#[test]
fn ascend_emu_aborts_on_barrier_missed_by_a_block() {
    assert_aborts(
        5,
        "SyncAll not reached by every block",
        "ds4_broken_partial_sync",
    );
}

#[test]
fn ascend_emu_aborts_on_unzeroed_barrier_workspace() {
    assert_aborts(
        6,
        "SyncAll workspace not zeroed",
        "ds4_broken_stale_workspace",
    );
}
