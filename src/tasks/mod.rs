//! Tasks: what a program is evaluated on.
//!
//! A [`TaskSpec`] names one task of a task space (type + id + derived seeds); building it
//! gives a [`Task`] — contiguous row-major `f32` examples ready for the interpreter.
//! Suites ([`suite`]) pick task ids deterministically from a seed, and
//! [`TaskSpec::eval_seed`] gives the seed of the evaluation RNG (engine.md §4.3).
//!
//! Image tasks ([`image`]) are built from real dataset files ([`datasets`]); services get
//! built tasks through [`prepare_suite`], which goes through an in-memory LRU and an
//! on-disk cache ([`cache`]). [`hyperparams`] reads the reference's suite configuration.

pub mod cache;
pub mod datasets;
mod error;
pub mod hyperparams;
pub mod image;
pub mod prepare;
pub mod scalar_linear;
pub mod suite;

/// Largest `input_dim` a submission may ask for. Each distinct dimension costs a whole
/// prepared suite (for images: 128 tasks × 2000 rows × `input_dim` floats), so a miner
/// must not be able to make validators allocate without bound.
pub const MAX_INPUT_DIM: usize = 64;

pub use error::TaskError;
pub use prepare::{prepare_suite, prepare_suite_until, DataConfig};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The task types a program can be submitted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    ScalarLinear,
    MnistBinary,
    Cifar10Binary,
}

/// How close to the top score (1) a SOTA is at its ceiling ([`TaskType::sota_at_ceiling`]).
pub const CEILING_MARGIN: f64 = 1e-6;

impl TaskType {
    pub const ALL: [TaskType; 3] = [
        TaskType::ScalarLinear,
        TaskType::MnistBinary,
        TaskType::Cifar10Binary,
    ];

    /// The wire name (`scalar_linear`, `mnist_binary`, `cifar10_binary`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::ScalarLinear => "scalar_linear",
            TaskType::MnistBinary => "mnist_binary",
            TaskType::Cifar10Binary => "cifar10_binary",
        }
    }

    /// Whether a SOTA of `sota` leaves nothing to mine for: every score is at most 1, and
    /// within [`CEILING_MARGIN`] of it a learner is exact up to `f32` rounding (the shipped
    /// scalar_linear loop reaches 0.9999997 in under a minute). No candidate can then be
    /// accepted, since the relay takes only scores above the SOTA.
    pub fn sota_at_ceiling(self, sota: f64) -> bool {
        sota >= 1.0 - CEILING_MARGIN
    }

    /// The task to mine once this one is solved: the next harder one, if any.
    pub fn next_task(self) -> Option<TaskType> {
        match self {
            TaskType::ScalarLinear => Some(TaskType::MnistBinary),
            TaskType::MnistBinary => Some(TaskType::Cifar10Binary),
            TaskType::Cifar10Binary => None,
        }
    }

    /// Number of task ids in this type's task space.
    pub fn task_space(self) -> u32 {
        match self {
            TaskType::ScalarLinear | TaskType::MnistBinary => 10_000,
            TaskType::Cifar10Binary => 4_500,
        }
    }

    /// The engine profile miners search programs of this type in (and whose phase
    /// sizes bound what validators accept, see `engine::cost`).
    pub fn profile_name(self) -> &'static str {
        match self {
            TaskType::ScalarLinear => "scalar_linear",
            TaskType::MnistBinary | TaskType::Cifar10Binary => "cifar",
        }
    }

    /// How predictions are scored.
    pub fn metric(self) -> Metric {
        match self {
            TaskType::ScalarLinear => Metric::InverseAtanRmse,
            TaskType::MnistBinary | TaskType::Cifar10Binary => Metric::Accuracy,
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown task-type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task type '{0}' (known: scalar_linear, mnist_binary, cifar10_binary)")]
pub struct UnknownTaskType(pub String);

impl FromStr for TaskType {
    type Err = UnknownTaskType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTaskType(s.to_string()))
    }
}

/// How a task's validation predictions become a score (engine.md §2 step 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Accuracy of `s0 > 0.5` against 0/1 labels; NaN counts as class 0.
    Accuracy,
    /// `1 − (2/π)·atan(RMSE)`; any non-finite prediction gives `-inf`.
    InverseAtanRmse,
}

/// One task of a task space, with the seeds its data derive from (absent = `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task_type: TaskType,
    pub task_id: u32,
    pub input_dim: usize,
    pub param_seed: Option<u64>,
    pub data_seed: Option<u64>,
    pub projection_seed: Option<u64>,
    pub split_seed: Option<u64>,
}

impl TaskSpec {
    /// The spec of task `task_id` of `task_type` (seeds per engine.md §3).
    pub fn new(task_type: TaskType, task_id: u32, input_dim: usize) -> Self {
        let t = task_id as u64;
        let (param_seed, data_seed, projection_seed, split_seed) = match task_type {
            TaskType::ScalarLinear => (Some(1000 + t), Some(11000 + t), None, None),
            TaskType::MnistBinary => (None, Some(21001 + t), Some(17345 + t), Some(97531 + t)),
            TaskType::Cifar10Binary => (None, None, Some(17345 + t), Some(97531 + t)),
        };
        TaskSpec {
            task_type,
            task_id,
            input_dim,
            param_seed,
            data_seed,
            projection_seed,
            split_seed,
        }
    }

    /// Seed of the evaluation RNG for this task in a suite (engine.md §4.3):
    /// `(suite_seed + 15485863·(task_id+1) + 104729·(projection_seed+1) +
    /// 1000003·(split_seed+1) + 1618033·(param_seed+1) + 314159·(data_seed+1)) mod (2^31−1)`,
    /// 0 → 1, absent seeds counting as 0.
    pub fn eval_seed(&self, suite_seed: u64) -> u64 {
        const MODULUS: u128 = (1u128 << 31) - 1;
        let f = |s: Option<u64>| s.unwrap_or(0) as u128 + 1;
        let sum = suite_seed as u128
            + 15_485_863 * (self.task_id as u128 + 1)
            + 104_729 * f(self.projection_seed)
            + 1_000_003 * f(self.split_seed)
            + 1_618_033 * f(self.param_seed)
            + 314_159 * f(self.data_seed);
        match (sum % MODULUS) as u64 {
            0 => 1,
            s => s,
        }
    }
}

/// A built task: contiguous row-major examples (`n × input_dim`) and 0/1 or real labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub spec: TaskSpec,
    pub metric: Metric,
    pub input_dim: usize,
    pub train_x: Vec<f32>,
    pub train_y: Vec<f32>,
    pub val_x: Vec<f32>,
    pub val_y: Vec<f32>,
}

impl Task {
    pub fn train_len(&self) -> usize {
        self.train_y.len()
    }
    pub fn val_len(&self) -> usize {
        self.val_y.len()
    }
    /// Training example `i` (a slice of `input_dim` features).
    #[inline]
    pub fn train_row(&self, i: usize) -> &[f32] {
        &self.train_x[i * self.input_dim..(i + 1) * self.input_dim]
    }
    /// Validation example `i`.
    #[inline]
    pub fn val_row(&self, i: usize) -> &[f32] {
        &self.val_x[i * self.input_dim..(i + 1) * self.input_dim]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solved_task_is_at_its_ceiling_and_names_the_next() {
        let t = TaskType::ScalarLinear;
        assert!(t.sota_at_ceiling(0.9999997));
        assert!(t.sota_at_ceiling(1.0));
        assert!(!t.sota_at_ceiling(0.99));
        assert!(!TaskType::Cifar10Binary.sota_at_ceiling(0.7165));
        assert_eq!(t.next_task(), Some(TaskType::MnistBinary));
        assert_eq!(
            TaskType::MnistBinary.next_task(),
            Some(TaskType::Cifar10Binary)
        );
        assert_eq!(TaskType::Cifar10Binary.next_task(), None);
    }
}
