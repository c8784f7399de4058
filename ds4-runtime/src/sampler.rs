//! TODO: sampler (placeholder so the crate builds while it is written).
