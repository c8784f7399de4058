//! TODO: tokenizer (placeholder so the crate builds while it is written).
