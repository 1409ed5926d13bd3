//! Suites: which tasks a program is scored on (engine.md §4).

use super::{TaskSpec, TaskType};
use crate::rng::Rng;

/// A deterministic selection of tasks and the seed their evaluation RNGs derive from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteSpec {
    pub task_type: TaskType,
    pub input_dim: usize,
    /// `task_seed + 7919·input_dim`.
    pub suite_seed: u64,
    pub tasks: Vec<TaskSpec>,
}

impl SuiteSpec {
    /// `count` task ids drawn without replacement from the task space with an RNG seeded
    /// by `suite_seed = task_seed + 7919·input_dim`. Used for the validator suite
    /// (`task_count`, `task_seed`) and the miner suite (`miner_task_count`,
    /// `miner_task_seed`) alike.
    pub fn new(task_type: TaskType, input_dim: usize, count: usize, task_seed: u64) -> Self {
        let suite_seed = task_seed.wrapping_add(7919u64.wrapping_mul(input_dim as u64));
        let mut rng = Rng::new(suite_seed);
        let space = task_type.task_space() as usize;
        let tasks = rng
            .sample_indices(space, count)
            .into_iter()
            .map(|id| TaskSpec::new(task_type, id as u32, input_dim))
            .collect();
        SuiteSpec {
            task_type,
            input_dim,
            suite_seed,
            tasks,
        }
    }

    /// Evaluation seed of the `i`-th task.
    pub fn eval_seed(&self, i: usize) -> u64 {
        self.tasks[i].eval_seed(self.suite_seed)
    }
}

/// Median of `values` (mean of the two middle values for an even count; NaN for none).
/// Non-finite values sort by IEEE total order, so the result is deterministic. The
/// middle values are averaged in `f64`, then rounded once to `f32`.
pub fn median(values: &[f32]) -> f32 {
    let wide: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    median_f64(&wide) as f32
}

/// [`median`] for `f64` values (pool consensus scores).
pub fn median_f64(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_is_deterministic_and_distinct() {
        let a = SuiteSpec::new(TaskType::Cifar10Binary, 16, 128, 1337);
        let b = SuiteSpec::new(TaskType::Cifar10Binary, 16, 128, 1337);
        assert_eq!(a, b);
        assert_eq!(a.suite_seed, 1337 + 7919 * 16);
        let mut ids: Vec<u32> = a.tasks.iter().map(|t| t.task_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 128);
        assert!(ids.iter().all(|&i| i < 4500));
    }

    #[test]
    fn eval_seed_formula() {
        // scalar_linear task 0: param 1000, data 11000, no projection/split (count as 0).
        let s = TaskSpec::new(TaskType::ScalarLinear, 0, 16);
        let expect =
            (10u128 + 15_485_863 + 104_729 + 1_000_003 + 1_618_033 * 1001 + 314_159 * 11001)
                % ((1u128 << 31) - 1);
        assert_eq!(s.eval_seed(10), expect as u64);
    }

    #[test]
    fn median_rules() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[f32::NEG_INFINITY, 1.0, 2.0]), 1.0);
    }
}
