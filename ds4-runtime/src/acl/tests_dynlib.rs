//! The run-time binding against stub `libascendcl.so` files built here with `cc`:
//! a library lacking one symbol is refused by that symbol's name; a complete one
//! loads, and its error codes come back as named messages with the recent message.

use super::dynlib::{AclLib, SYMBOLS};
use super::{Acl, AclError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds a stub library defining every symbol but `skip`; every function returns
/// `ret` (aclGetRecentErrMsg returns a fixed string).
fn stub(dir: &Path, skip: Option<&str>, ret: i32) -> PathBuf {
    std::fs::create_dir_all(dir).expect("stub folder");
    let mut c = String::from("#include <stddef.h>\n");
    for s in SYMBOLS.iter().filter(|s| Some(**s) != skip) {
        if *s == "aclGetRecentErrMsg" {
            c.push_str("const char *aclGetRecentErrMsg(void) { return \"stub says no\"; }\n");
        } else {
            c.push_str(&format!("int {s}() {{ return {ret}; }}\n"));
        }
    }
    let src = dir.join("stub.c");
    std::fs::write(&src, c).expect("write stub source");
    let lib = dir.join("libascendcl.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc failed to build the stub library");
    lib
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ds4-acl-stub-{}-{name}", std::process::id()))
}

#[test]
fn acl_stub_missing_a_symbol_is_named() {
    for skip in [
        "aclrtMemcpyAsync",
        "aclrtStreamWaitEvent",
        "aclGetRecentErrMsg",
    ] {
        let lib = stub(&tmp(skip), Some(skip), 0);
        match AclLib::open(&lib) {
            Err(e @ AclError::MissingSymbol { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(skip) && msg.contains("libascendcl.so"),
                    "message: {msg}"
                );
                assert_eq!(msg.lines().count(), 1);
            }
            Err(e) => panic!("wrong error for a stub without {skip}: {e}"),
            Ok(_) => panic!("a stub without {skip} was accepted"),
        }
    }
}

#[test]
fn acl_stub_complete_loads_and_reports_errors() {
    let ok = AclLib::open(&stub(&tmp("ok"), None, 0)).expect("complete stub loads");
    ok.init().expect("aclInit returns 0");
    assert_eq!(ok.device_count().expect("count"), 0);
    let bad = AclLib::open(&stub(&tmp("bad"), None, 507_013)).expect("complete stub loads");
    let e = bad.set_device(0).expect_err("stub fails").to_string();
    assert!(
        e.contains("aclrtSetDevice")
            && e.contains("ACL_ERROR_RT_SYS_DMA")
            && e.contains("stub says no"),
        "{e}"
    );
}
