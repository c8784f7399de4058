//! TODO: ds4-codegen (placeholder so the workspace builds while it is written).
