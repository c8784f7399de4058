//! ACL enum constants and error codes (ASCEND.md §2.2–2.3), as the C headers define them.
//!
//! Every enum is passed to the C functions as `int32_t`; `aclError` is an `int32_t`
//! where 0 is success.

/// `aclrtMemcpyKind`.
pub mod memcpy_kind {
    pub const HOST_TO_HOST: i32 = 0;
    pub const HOST_TO_DEVICE: i32 = 1;
    pub const DEVICE_TO_HOST: i32 = 2;
    pub const DEVICE_TO_DEVICE: i32 = 3;
    pub const DEFAULT: i32 = 4;
    pub const HOST_TO_BUF_TO_DEVICE: i32 = 5;
    pub const INNER_DEVICE_TO_DEVICE: i32 = 6;
    pub const INTER_DEVICE_TO_DEVICE: i32 = 7;
}

/// `aclrtMemMallocPolicy` and its flag bits.
pub mod malloc_policy {
    pub const HUGE_FIRST: i32 = 0;
    pub const HUGE_ONLY: i32 = 1;
    pub const NORMAL_ONLY: i32 = 2;
    pub const HUGE_FIRST_P2P: i32 = 3;
    pub const HUGE_ONLY_P2P: i32 = 4;
    pub const NORMAL_ONLY_P2P: i32 = 5;
    pub const HUGE1G_ONLY: i32 = 6;
    pub const HUGE1G_ONLY_P2P: i32 = 7;
    pub const TYPE_LOW_BAND_WIDTH: i32 = 0x0100;
    pub const TYPE_HIGH_BAND_WIDTH: i32 = 0x1000;
    pub const ACCESS_USER_SPACE_READONLY: i32 = 0x10_0000;
}

/// `aclrtMemAttr` (12..=17 exist only in CANN >= 8 headers).
pub mod mem_attr {
    pub const DDR_MEM: i32 = 0;
    pub const HBM_MEM: i32 = 1;
    pub const DDR_MEM_HUGE: i32 = 2;
    pub const DDR_MEM_NORMAL: i32 = 3;
    pub const HBM_MEM_HUGE: i32 = 4;
    pub const HBM_MEM_NORMAL: i32 = 5;
    pub const DDR_MEM_P2P_HUGE: i32 = 6;
    pub const DDR_MEM_P2P_NORMAL: i32 = 7;
    pub const HBM_MEM_P2P_HUGE: i32 = 8;
    pub const HBM_MEM_P2P_NORMAL: i32 = 9;
    pub const HBM_MEM_HUGE1G: i32 = 10;
    pub const HBM_MEM_P2P_HUGE1G: i32 = 11;
    pub const MEM_NORMAL: i32 = 12;
    pub const MEM_HUGE: i32 = 13;
    pub const MEM_HUGE1G: i32 = 14;
    pub const MEM_P2P_NORMAL: i32 = 15;
    pub const MEM_P2P_HUGE: i32 = 16;
    pub const MEM_P2P_HUGE1G: i32 = 17;
}

/// `aclrtDevAttr` values used with `aclrtGetDeviceInfo`.
pub mod dev_attr {
    pub const AICPU_CORE_NUM: i32 = 1;
    pub const AICORE_CORE_NUM: i32 = 101;
    pub const CUBE_CORE_NUM: i32 = 102;
    pub const VECTOR_CORE_NUM: i32 = 201;
}

/// Success.
pub const ACL_SUCCESS: i32 = 0;
/// Returned by `aclInit` when another component initialised ACL first (benign).
pub const ACL_ERROR_REPEAT_INITIALIZE: i32 = 100_002;

/// Error codes and their meaning (acl_base.h, rt_error_codes.h).
const MESSAGES: &[(i32, &str)] = &[
    (0, "success"),
    (100_000, "ACL_ERROR_INVALID_PARAM: invalid parameter"),
    (100_001, "ACL_ERROR_UNINITIALIZE: ACL is not initialised"),
    (
        100_002,
        "ACL_ERROR_REPEAT_INITIALIZE: ACL was already initialised",
    ),
    (
        100_037,
        "ACL_ERROR_REPEAT_FINALIZE: ACL was already finalised",
    ),
    (200_000, "ACL_ERROR_BAD_ALLOC: memory allocation failed"),
    (200_001, "ACL_ERROR_API_NOT_SUPPORT: API not supported"),
    (200_002, "ACL_ERROR_INVALID_DEVICE: invalid device"),
    (
        200_003,
        "ACL_ERROR_MEMORY_ADDRESS_UNALIGNED: memory address not aligned",
    ),
    (
        200_006,
        "ACL_ERROR_FEATURE_UNSUPPORTED: feature not supported",
    ),
    (300_000, "ACL_ERROR_STORAGE_OVER_LIMIT: storage over limit"),
    (500_000, "ACL_ERROR_INTERNAL_ERROR: internal error"),
    (500_001, "ACL_ERROR_FAILURE: failure"),
    (500_003, "ACL_ERROR_RT_FAILURE: runtime failure"),
    (500_004, "ACL_ERROR_DRV_FAILURE: driver failure"),
    (
        107_000,
        "ACL_ERROR_RT_PARAM_INVALID: invalid runtime parameter",
    ),
    (107_001, "ACL_ERROR_RT_INVALID_DEVICEID: invalid device id"),
    (
        107_002,
        "ACL_ERROR_RT_CONTEXT_NULL: no current context (set a device/context first)",
    ),
    (
        107_003,
        "ACL_ERROR_RT_STREAM_CONTEXT: stream is not in the current context",
    ),
    (107_008, "ACL_ERROR_RT_ADDR_UNALIGNED: address not aligned"),
    (107_019, "ACL_ERROR_RT_WAIT_TIMEOUT: wait timeout"),
    (107_020, "ACL_ERROR_RT_TASK_TIMEOUT: task timeout"),
    (
        207_000,
        "ACL_ERROR_RT_FEATURE_NOT_SUPPORT: feature not supported",
    ),
    (
        207_001,
        "ACL_ERROR_RT_MEMORY_ALLOCATION: device memory allocation failed",
    ),
    (
        207_002,
        "ACL_ERROR_RT_MEMORY_FREE: device memory free failed",
    ),
    (207_003, "ACL_ERROR_RT_AICORE_OVER_FLOW: AI core overflow"),
    (207_004, "ACL_ERROR_RT_NO_DEVICE: no device"),
    (
        207_005,
        "ACL_ERROR_RT_RESOURCE_ALLOC_FAIL: resource allocation failed",
    ),
    (
        207_008,
        "ACL_ERROR_RT_NO_STREAM_RESOURCE: no stream resource",
    ),
    (207_018, "ACL_ERROR_RT_DEVIDE_OOM: device out of memory"),
    (
        507_000,
        "ACL_ERROR_RT_INTERNAL_ERROR: runtime internal error",
    ),
    (
        507_002,
        "ACL_ERROR_RT_STREAM_TASK_FULL: stream task queue full",
    ),
    (507_013, "ACL_ERROR_RT_SYS_DMA: DMA (SDMA/SMMU) copy fault"),
    (507_014, "ACL_ERROR_RT_AICORE_TIMEOUT: AI core timeout"),
    (507_015, "ACL_ERROR_RT_AICORE_EXCEPTION: AI core exception"),
    (
        507_016,
        "ACL_ERROR_RT_AICORE_TRAP_EXCEPTION: AI core trap exception",
    ),
    (
        507_034,
        "ACL_ERROR_RT_VECTOR_CORE_TIMEOUT: vector core timeout",
    ),
    (
        507_035,
        "ACL_ERROR_RT_VECTOR_CORE_EXCEPTION: vector core exception",
    ),
    (
        507_042,
        "ACL_ERROR_RT_AICORE_TRAP_READ_OVERFLOW: AI core read overflow",
    ),
    (
        507_043,
        "ACL_ERROR_RT_AICORE_TRAP_WRITE_OVERFLOW: AI core write overflow",
    ),
    (
        507_044,
        "ACL_ERROR_RT_VECTOR_CORE_TRAP_READ_OVERFLOW: vector core read overflow",
    ),
    (
        507_045,
        "ACL_ERROR_RT_VECTOR_CORE_TRAP_WRITE_OVERFLOW: vector core write overflow",
    ),
    (
        507_046,
        "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT: stream synchronisation timeout",
    ),
    (
        507_899,
        "ACL_ERROR_RT_DRV_INTERNAL_ERROR: driver internal error",
    ),
];

/// The name and meaning of an `aclError` code.
pub fn message(code: i32) -> String {
    match MESSAGES.iter().find(|(c, _)| *c == code) {
        Some((_, m)) => (*m).to_owned(),
        None => format!("unknown ACL error {code}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_unknown_codes_have_messages() {
        assert!(super::message(107_002).contains("CONTEXT_NULL"));
        assert!(super::message(507_013).contains("DMA"));
        assert_eq!(super::message(42), "unknown ACL error 42");
    }
}
