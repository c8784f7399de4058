//! Binding: matching the tensors a model needs against a file's directory.
//!
//! [`bind`] checks every required tensor's presence, type and shape and reports
//! *every* mismatch at once, so a wrong file is diagnosed in one run. Tensors
//! the file has but nobody asked for are not errors (ds4 ignores them, and MTP
//! files carry `mtp.*` extras); [`extra_tensors`] lists them for a warning.

use super::GgufFile;
use crate::quant::GgmlType;

/// One tensor a model needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Required {
    /// Exact tensor name.
    pub name: String,
    /// Expected storage type.
    pub ty: GgmlType,
    /// Expected dimensions (GGUF order).
    pub dims: Vec<u64>,
    /// Whether the tensor may be absent.
    pub optional: bool,
}

/// One reason a file does not fit the required tensors.
#[derive(Clone, Debug, PartialEq)]
pub enum BindProblem {
    /// A required tensor is absent.
    Missing { name: String },
    /// Present with another storage type.
    WrongType {
        name: String,
        expected: GgmlType,
        found: GgmlType,
    },
    /// Present with another shape.
    WrongShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
}

impl std::fmt::Display for BindProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindProblem::Missing { name } => write!(f, "tensor {name} is missing"),
            BindProblem::WrongType {
                name,
                expected,
                found,
            } => {
                write!(f, "tensor {name} has type {found}, expected {expected}")
            }
            BindProblem::WrongShape {
                name,
                expected,
                found,
            } => {
                write!(
                    f,
                    "tensor {name} has shape {found:?}, expected {expected:?}"
                )
            }
        }
    }
}

/// All the mismatches found by [`bind`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct BindError {
    /// Every problem, in the order of the requirement list.
    pub problems: Vec<BindProblem>,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tensor mismatch(es) against the expected model layout:",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Matches `req` against `file`: for each requirement the index into
/// [`GgufFile::tensors`] (`None` for an absent optional tensor), or every mismatch.
pub fn bind(file: &GgufFile, req: &[Required]) -> Result<Vec<Option<usize>>, BindError> {
    let mut out = Vec::with_capacity(req.len());
    let mut problems = Vec::new();

    for r in req {
        let Some(i) = file.tensor_index(&r.name) else {
            if !r.optional {
                problems.push(BindProblem::Missing {
                    name: r.name.clone(),
                });
            }
            out.push(None);
            continue;
        };
        let t = &file.tensors()[i];
        if t.ty != r.ty {
            problems.push(BindProblem::WrongType {
                name: r.name.clone(),
                expected: r.ty,
                found: t.ty,
            });
        }
        if t.dims != r.dims {
            problems.push(BindProblem::WrongShape {
                name: r.name.clone(),
                expected: r.dims.clone(),
                found: t.dims.clone(),
            });
        }
        out.push(Some(i));
    }

    if problems.is_empty() {
        let extras = extra_tensors(file, req);
        if !extras.is_empty() {
            tracing::warn!(
                count = extras.len(),
                first = extras[0],
                "tensors not used by the model"
            );
        }
        Ok(out)
    } else {
        Err(BindError { problems })
    }
}

/// Names of the file's tensors that no requirement mentions, except `mtp.*`.
pub fn extra_tensors<'f>(file: &'f GgufFile, req: &[Required]) -> Vec<&'f str> {
    let wanted: std::collections::HashSet<&str> = req.iter().map(|r| r.name.as_str()).collect();
    file.tensors()
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !wanted.contains(n) && !n.starts_with("mtp."))
        .collect()
}
