//! Cost model of the AscendC kernels (placeholder while the kernels land).
