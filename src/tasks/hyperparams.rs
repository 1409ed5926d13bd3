//! `validator_hyperparams.json` (engine.md §4.1): the reference's suite configuration.
//!
//! Missing keys take the spec's defaults; unknown keys are rejected by name (with their
//! path), so a typo never silently changes which tasks a validator scores on.

use super::error::TaskError;
use super::image::ImageSizes;
use super::prepare::DataConfig;
use super::scalar_linear::LinearSizes;
use super::suite::SuiteSpec;
use super::TaskType;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The validator suite settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuiteConfig {
    pub task_count: usize,
    pub task_seed: u64,
    pub default_task_type: TaskType,
    pub default_input_dim: usize,
    pub tasks: TaskSizes,
}

/// Per-type sizes, as the reference names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSizes {
    pub cifar10_binary: ImageSizes,
    pub mnist_binary: ImageSizes,
    pub scalar_linear: LinearSamples,
}

/// `scalar_linear` sizes in the reference's key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearSamples {
    pub train_samples: usize,
    pub val_samples: usize,
}

impl Default for LinearSamples {
    fn default() -> Self {
        let d = LinearSizes::default();
        LinearSamples {
            train_samples: d.train,
            val_samples: d.val,
        }
    }
}

impl TaskSizes {
    /// Training and validation examples of one task of `task_type` (what the
    /// evaluation budget multiplies a program's per-example work by).
    pub fn examples(&self, task_type: TaskType) -> crate::engine::Examples {
        let image = |s: &ImageSizes| {
            let train = s.train_count(s.n_samples);
            crate::engine::Examples {
                train,
                val: s.n_samples - train,
            }
        };
        match task_type {
            TaskType::ScalarLinear => crate::engine::Examples {
                train: self.scalar_linear.train_samples,
                val: self.scalar_linear.val_samples,
            },
            TaskType::MnistBinary => image(&self.mnist_binary),
            TaskType::Cifar10Binary => image(&self.cifar10_binary),
        }
    }
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            task_count: 128,
            task_seed: 1337,
            default_task_type: TaskType::Cifar10Binary,
            default_input_dim: 16,
            tasks: TaskSizes::default(),
        }
    }
}

impl SuiteConfig {
    /// Parse the JSON text; errors name the offending key path.
    pub fn from_json(text: &str) -> Result<Self, TaskError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: SuiteConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            TaskError::Config(format!("validator hyperparameters: {path}: {}", e.inner()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read and parse a `validator_hyperparams.json` file.
    pub fn from_file(path: &Path) -> Result<Self, TaskError> {
        let text = std::fs::read_to_string(path).map_err(|e| TaskError::io(path, e))?;
        Self::from_json(&text).map_err(|e| TaskError::Config(format!("{}: {e}", path.display())))
    }

    pub fn validate(&self) -> Result<(), TaskError> {
        if self.task_count == 0 {
            return Err(TaskError::Config("task_count must be positive".into()));
        }
        if self.default_input_dim == 0 {
            return Err(TaskError::Config(
                "default_input_dim must be positive".into(),
            ));
        }
        self.data_config(Path::new(".")).validate()
    }

    /// The validator suite for the default task type and input_dim.
    pub fn suite(&self) -> SuiteSpec {
        SuiteSpec::new(
            self.default_task_type,
            self.default_input_dim,
            self.task_count,
            self.task_seed,
        )
    }

    /// A [`DataConfig`] with these sizes and the standard layout under `data_dir`.
    pub fn data_config(&self, data_dir: &Path) -> DataConfig {
        DataConfig {
            mnist_binary: self.tasks.mnist_binary,
            cifar10_binary: self.tasks.cifar10_binary,
            scalar_linear: LinearSizes {
                train: self.tasks.scalar_linear.train_samples,
                val: self.tasks.scalar_linear.val_samples,
            },
            ..DataConfig::for_data_dir(data_dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = r#"{"task_count":128, "task_seed":1337, "default_task_type":"cifar10_binary",
        "default_input_dim":16, "tasks":{"cifar10_binary":{"n_samples":2000,"train_split":0.5},
        "mnist_binary":{"n_samples":2000,"train_split":0.5}, "scalar_linear":{"train_samples":1000,
        "val_samples":1000}}}"#;

    #[test]
    fn reference_file_equals_defaults() {
        assert_eq!(
            SuiteConfig::from_json(REFERENCE).unwrap(),
            SuiteConfig::default()
        );
        assert_eq!(
            SuiteConfig::from_json("{}").unwrap(),
            SuiteConfig::default()
        );
    }

    #[test]
    fn overrides_apply() {
        let c = SuiteConfig::from_json(
            r#"{"task_count":8,"default_task_type":"mnist_binary","tasks":{"scalar_linear":{"val_samples":50}}}"#,
        )
        .unwrap();
        assert_eq!(c.task_count, 8);
        assert_eq!(c.suite().tasks.len(), 8);
        assert_eq!(c.suite().task_type, TaskType::MnistBinary);
        let d = c.data_config(Path::new("/d"));
        assert_eq!(
            d.scalar_linear,
            LinearSizes {
                train: 1000,
                val: 50
            }
        );
        assert_eq!(
            d.cache_dir.as_deref(),
            Some(Path::new("/d/datasets/prepared"))
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = SuiteConfig::from_json(r#"{"task_cuont":8}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("task_cuont"), "{e}");
        let e = SuiteConfig::from_json(r#"{"tasks":{"mnist_binary":{"n_sample":5}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tasks.mnist_binary") && e.contains("n_sample"),
            "{e}"
        );
        let e = SuiteConfig::from_json(r#"{"default_task_type":"imagenet"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("default_task_type"), "{e}");
        let e = SuiteConfig::from_json(r#"{"tasks":{"cifar10_binary":{"train_split":1.5}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("train_split"), "{e}");
        assert!(SuiteConfig::from_json(r#"{"task_count":0}"#).is_err());
    }
}
