//! Errors of dataset loading, task preparation and dataset fetching.
//!
//! Every variant names the file or setting at fault, so a user can act on one line; a
//! missing dataset names the command that installs it.

use std::path::PathBuf;

/// Why a task or dataset could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A dataset file is absent: says which, and how to get it.
    #[error("{dataset} dataset: {file} not found in {dir}; run `bitsota data fetch {dataset}` (or `bitsota data fetch {dataset} --from DIR` to import files already on disk)", dir = .dir.display())]
    DatasetMissing {
        dataset: &'static str,
        dir: PathBuf,
        file: String,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: truncated: expected {expected} bytes, found {actual}", .path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{}: wrong magic number {found} (expected {expected}); not an IDX {what} file", .path.display())]
    WrongMagic {
        path: PathBuf,
        what: &'static str,
        expected: u32,
        found: u32,
    },
    /// The file parses but its shape is wrong (size, dimensions, labels out of range).
    #[error("{}: {reason}", .path.display())]
    BadFormat { path: PathBuf, reason: String },
    #[error("{}: {algorithm} mismatch: expected {expected}, got {actual}", .path.display())]
    ChecksumMismatch {
        path: PathBuf,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    /// A setting (sizes, input_dim, hyperparameter file) is invalid.
    #[error("{0}")]
    Config(String),
    /// Preparation gave up because its caller was cancelled (shutdown).
    #[error("task preparation cancelled")]
    Cancelled,
    /// The dataset holds too few images for the task.
    #[error("{dataset} dataset: task {task_id} has only {available} candidate images ({detail})")]
    NotEnoughImages {
        dataset: &'static str,
        task_id: u32,
        available: usize,
        detail: String,
    },
}

impl TaskError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TaskError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn bad(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TaskError::BadFormat {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
