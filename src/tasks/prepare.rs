//! Suite preparation: turn a [`SuiteSpec`] into built tasks, through the caches.
//!
//! The validators, miners, pool, `eval` and `bench` all call [`prepare_suite`]. For each
//! task: the in-memory LRU, then the disk cache, then a build; builds run in parallel
//! across tasks (rayon) — each task is built by one thread in a fixed order, so results do
//! not depend on scheduling. The dataset is loaded at most once per call, and only when
//! some task has to be built.

use super::cache::{self, CacheKey, DiskLookup, TaskCache};
use super::datasets::{self, DatasetKind, DatasetSource, Images};
use super::error::TaskError;
use super::image::{self, ImageSizes};
use super::scalar_linear::{self, LinearSizes};
use super::suite::SuiteSpec;
use super::{Task, TaskSpec, TaskType};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Where datasets live, where prepared tasks are cached, and the task sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Folder holding `mnist/` and `cifar10/` (normally `<data_dir>/datasets`).
    pub datasets_dir: PathBuf,
    /// Disk cache of prepared tasks (normally `<data_dir>/datasets/prepared`); none = off.
    pub cache_dir: Option<PathBuf>,
    pub mnist_binary: ImageSizes,
    pub cifar10_binary: ImageSizes,
    pub scalar_linear: LinearSizes,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig::for_data_dir(Path::new("bitsota-data"))
    }
}

impl DataConfig {
    /// The standard layout under a data directory, default sizes.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let datasets_dir = data_dir.join("datasets");
        DataConfig {
            cache_dir: Some(datasets_dir.join("prepared")),
            datasets_dir,
            mnist_binary: ImageSizes::default(),
            cifar10_binary: ImageSizes::default(),
            scalar_linear: LinearSizes::default(),
        }
    }

    /// The sizes of an image task type (`None` for `scalar_linear`).
    pub fn image_sizes(&self, task_type: TaskType) -> Option<ImageSizes> {
        match task_type {
            TaskType::ScalarLinear => None,
            TaskType::MnistBinary => Some(self.mnist_binary),
            TaskType::Cifar10Binary => Some(self.cifar10_binary),
        }
    }

    /// Reject sizes no task can be built with.
    pub fn validate(&self) -> Result<(), TaskError> {
        self.mnist_binary.validate("mnist_binary")?;
        self.cifar10_binary.validate("cifar10_binary")?;
        if self.scalar_linear.train == 0 || self.scalar_linear.val == 0 {
            return Err(TaskError::Config(
                "scalar_linear train and validation sizes must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The sizes part of a cache key.
    fn sizes_key(&self, task_type: TaskType) -> String {
        match self.image_sizes(task_type) {
            Some(s) => format!("n{}/split{}", s.n_samples, s.train_split),
            None => format!(
                "train{}/val{}",
                self.scalar_linear.train, self.scalar_linear.val
            ),
        }
    }
}

/// Where a prepared task came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskSource {
    Memory,
    Disk,
    Built,
}

/// One task finished (reported as tasks complete, from any thread).
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub task: TaskSpec,
    pub source: TaskSource,
}

/// Prepare every task of a suite through the process-wide cache.
pub fn prepare_suite(spec: &SuiteSpec, cfg: &DataConfig) -> Result<Vec<Arc<Task>>, TaskError> {
    prepare_suite_until(spec, cfg, &|| false)
}

/// [`prepare_suite`] that gives up with [`TaskError::Cancelled`] once `cancelled` says so,
/// looked at before each task (a daemon's shutdown must not wait out a large suite).
pub fn prepare_suite_until(
    spec: &SuiteSpec,
    cfg: &DataConfig,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Arc<Task>>, TaskError> {
    prepare_tasks_until(
        TaskCache::global(),
        &spec.tasks,
        cfg,
        &log_progress,
        cancelled,
    )
}

/// Progress as `tracing` events: debug per task, info every 16 tasks and at the end.
pub fn log_progress(p: Progress) {
    if p.done == p.total || p.done % 16 == 0 {
        tracing::info!(done = p.done, total = p.total, "preparing tasks");
    } else {
        tracing::debug!(done = p.done, total = p.total, task_id = p.task.task_id, source = ?p.source, "task prepared");
    }
}

/// Prepare tasks (of any types) through `cache`, reporting each finished task.
/// The result is in the order of `specs`.
pub fn prepare_tasks(
    cache: &TaskCache,
    specs: &[TaskSpec],
    cfg: &DataConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<Arc<Task>>, TaskError> {
    prepare_tasks_until(cache, specs, cfg, progress, &|| false)
}

/// [`prepare_tasks`] that looks at `cancelled` before each task and then ends with
/// [`TaskError::Cancelled`]; tasks already built stay in the caches.
pub fn prepare_tasks_until(
    cache: &TaskCache,
    specs: &[TaskSpec],
    cfg: &DataConfig,
    progress: &(dyn Fn(Progress) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Arc<Task>>, TaskError> {
    cfg.validate()?;
    if let Some(bad) = specs.iter().find(|s| s.input_dim == 0) {
        return Err(TaskError::Config(format!(
            "{} task {}: input_dim must be positive",
            bad.task_type, bad.task_id
        )));
    }
    let total = specs.len();
    let done = AtomicUsize::new(0);
    let report = |task: &TaskSpec, source| {
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(Progress {
            done: d,
            total,
            task: *task,
            source,
        });
    };

    // Dataset checksums key the caches; fingerprinting is memoised per file.
    let mut sources: HashMap<DatasetKind, DatasetSource> = HashMap::new();
    for spec in specs {
        if let Some(kind) = DatasetKind::for_task(spec.task_type) {
            if let Entry::Vacant(slot) = sources.entry(kind) {
                slot.insert(datasets::fingerprint(kind, &cfg.datasets_dir)?);
            }
        }
    }
    let key_of = |spec: &TaskSpec| {
        let data = DatasetKind::for_task(spec.task_type)
            .map(|k| sources[&k].checksum.as_str())
            .unwrap_or("synthetic");
        CacheKey::new(spec, &cfg.sizes_key(spec.task_type), data)
    };
    let disk_dir = cfg.cache_dir.as_deref();

    // Memory, then disk (image tasks only: synthetic ones are cheaper to rebuild).
    let found: Vec<Option<Arc<Task>>> = specs
        .par_iter()
        .map(|spec| {
            let key = key_of(spec);
            if let Some(t) = cache.get(&key) {
                report(spec, TaskSource::Memory);
                return Some(t);
            }
            let dir = disk_dir.filter(|_| spec.task_type != TaskType::ScalarLinear)?;
            let path = cache::disk_path(dir, spec.task_type, &key);
            match cache::disk_load(&path, &key) {
                DiskLookup::Hit(task) if task.spec == *spec => {
                    let task = Arc::new(task);
                    cache.put(key, task.clone());
                    cache.count_disk_hit();
                    report(spec, TaskSource::Disk);
                    Some(task)
                }
                DiskLookup::Missing => None,
                DiskLookup::Hit(_) => {
                    cache.count_corrupt();
                    tracing::warn!(path = %path.display(), "prepared-task cache entry holds another task; rebuilding");
                    None
                }
                DiskLookup::Corrupt(reason) => {
                    cache.count_corrupt();
                    tracing::warn!(path = %path.display(), %reason, "corrupt prepared-task cache entry; rebuilding");
                    None
                }
            }
        })
        .collect();

    // Load each dataset that a missing task needs, once.
    let mut loaded: HashMap<DatasetKind, Images> = HashMap::new();
    for (spec, hit) in specs.iter().zip(&found) {
        if hit.is_some() {
            continue;
        }
        if let Some(kind) = DatasetKind::for_task(spec.task_type) {
            if let Entry::Vacant(slot) = loaded.entry(kind) {
                if cancelled() {
                    return Err(TaskError::Cancelled);
                }
                tracing::info!(dataset = kind.name(), dir = %cfg.datasets_dir.display(), "loading dataset");
                slot.insert(datasets::load(kind, &cfg.datasets_dir)?);
            }
        }
    }

    specs
        .par_iter()
        .zip(found)
        .map(|(spec, hit)| {
            if let Some(t) = hit {
                return Ok(t);
            }
            if cancelled() {
                return Err(TaskError::Cancelled);
            }
            let key = key_of(spec);
            let task = match DatasetKind::for_task(spec.task_type) {
                None => scalar_linear::build(spec, cfg.scalar_linear),
                Some(kind) => {
                    let sizes = cfg.image_sizes(spec.task_type).expect("image task type");
                    let task = image::build(spec, sizes, &loaded[&kind])?;
                    if let Some(dir) = disk_dir {
                        let path = cache::disk_path(dir, spec.task_type, &key);
                        if let Err(e) = cache::disk_store(&path, &key, &task) {
                            tracing::warn!(path = %path.display(), error = %e, "could not write prepared-task cache entry");
                        }
                    }
                    task
                }
            };
            let task = Arc::new(task);
            cache.put(key, task.clone());
            cache.count_built();
            report(spec, TaskSource::Built);
            Ok(task)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preparation_stops_between_tasks_when_cancelled() {
        let specs: Vec<TaskSpec> = (0..64)
            .map(|i| TaskSpec::new(TaskType::ScalarLinear, i, 4))
            .collect();
        let cfg = DataConfig {
            cache_dir: None,
            ..DataConfig::default()
        };
        let looks = AtomicUsize::new(0);
        let after_five = || looks.fetch_add(1, Ordering::Relaxed) >= 5;
        let built = AtomicUsize::new(0);
        let count = |_: Progress| {
            built.fetch_add(1, Ordering::Relaxed);
        };
        let cache = TaskCache::new(1 << 30);
        let e = prepare_tasks_until(&cache, &specs, &cfg, &count, &after_five).unwrap_err();
        assert!(matches!(e, TaskError::Cancelled), "{e}");
        assert!(built.load(Ordering::Relaxed) <= 5, "{built:?} tasks built");
        let all = prepare_tasks(&cache, &specs, &cfg, &|_| {}).unwrap();
        assert_eq!(all.len(), 64);
    }
}
