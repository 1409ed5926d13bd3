//! `scalar_linear`: synthetic linear regression, `y = x·w`, no noise (engine.md §3).

use super::{Task, TaskSpec, TaskType};
use crate::rng::Rng;

/// Example counts of a synthetic task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinearSizes {
    pub train: usize,
    pub val: usize,
}

impl Default for LinearSizes {
    fn default() -> Self {
        LinearSizes {
            train: 1000,
            val: 1000,
        }
    }
}

/// Build a `scalar_linear` task: `w ~ N(0,1)^F` from `param_seed`, then the training and
/// validation rows `x ~ N(0,1)^F` from `data_seed`, `y = x·w` summed in index order.
pub fn build(spec: &TaskSpec, sizes: LinearSizes) -> Task {
    assert_eq!(spec.task_type, TaskType::ScalarLinear);
    let dim = spec.input_dim;
    let mut param_rng = Rng::new(spec.param_seed.unwrap_or(0));
    let w: Vec<f32> = (0..dim).map(|_| param_rng.normal_f32(0.0, 1.0)).collect();
    let mut data_rng = Rng::new(spec.data_seed.unwrap_or(0));
    let mut rows = |n: usize| {
        let mut xs = Vec::with_capacity(n * dim);
        let mut ys = Vec::with_capacity(n);
        for _ in 0..n {
            let mut y = 0.0f32;
            for wj in &w {
                let x = data_rng.normal_f32(0.0, 1.0);
                xs.push(x);
                y += x * wj;
            }
            ys.push(y);
        }
        (xs, ys)
    };
    let (train_x, train_y) = rows(sizes.train);
    let (val_x, val_y) = rows(sizes.val);
    Task {
        spec: *spec,
        metric: TaskType::ScalarLinear.metric(),
        input_dim: dim,
        train_x,
        train_y,
        val_x,
        val_y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_determinism() {
        let spec = TaskSpec::new(TaskType::ScalarLinear, 5, 4);
        let a = build(&spec, LinearSizes { train: 10, val: 7 });
        let b = build(&spec, LinearSizes { train: 10, val: 7 });
        assert_eq!(a, b);
        assert_eq!(a.train_x.len(), 40);
        assert_eq!(a.val_len(), 7);
        let other = build(
            &TaskSpec::new(TaskType::ScalarLinear, 6, 4),
            LinearSizes { train: 10, val: 7 },
        );
        assert_ne!(a.train_y, other.train_y);
    }
}
