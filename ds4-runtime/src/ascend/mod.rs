//! The Ascend 310P backend pieces that do not need CANN: the AscendC kernels' launch ABI
//! ([`kernels`]), compiled here against the host emulation, the device weight layouts
//! ([`layout`]) and the cost model ([`cost`]).
//!
//! The kernel bodies live in `kernels/ascendc/` (one header per family); `build.rs` writes
//! the entries and wrappers of every kernel the plans use (primitives and fused kernels)
//! and compiles them for the host against `kernels/ascendc/emu/` and, when CANN is
//! installed, for the device.
//! Every kernel is tested against the CPU kernel of [`crate::cpu`] in `tests_*.rs`.

pub mod cost;
pub mod kernels;
pub mod layout;

#[cfg(test)]
mod emu_rules;
#[cfg(test)]
mod tests_attention;
#[cfg(test)]
mod tests_basic;
#[cfg(test)]
mod tests_hc;
#[cfg(test)]
mod tests_matvec;
#[cfg(test)]
mod tests_moe;
#[cfg(test)]
mod tests_rope;
