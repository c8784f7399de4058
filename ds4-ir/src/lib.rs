//! TODO: ds4-ir (placeholder so the workspace builds while it is written).
