//! Image tasks built from the real MNIST / CIFAR-10 files in `../shared/datasets`
//! (override with `BITSOTA_TEST_DATASETS`). Absent data skips with a message, except under
//! `CI=true`, where it fails.
//!
//! The full 128-task validator suite runs in release as an ignored test:
//! `cargo test --release --test it datasets_real:: -- --ignored --nocapture`

use bitsota::tasks::cache::TaskCache;
use bitsota::tasks::datasets::{self, DatasetKind};
use bitsota::tasks::prepare::{prepare_tasks, DataConfig, Progress, TaskSource};
use bitsota::tasks::suite::SuiteSpec;
use bitsota::tasks::{Task, TaskSpec, TaskType};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::time::Instant;

fn shared_datasets() -> Option<PathBuf> {
    let dir = std::env::var_os("BITSOTA_TEST_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
    if dir.join("mnist").is_dir() && dir.join("cifar10").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("real datasets not found at {} (CI=true)", dir.display());
    }
    eprintln!("SKIPPED: real datasets not found at {}", dir.display());
    None
}

fn config(datasets_dir: PathBuf, cache_dir: Option<PathBuf>) -> DataConfig {
    DataConfig {
        datasets_dir,
        cache_dir,
        ..DataConfig::default()
    }
}

fn no_progress(_: Progress) {}

/// Sizes, label balance, standardisation.
fn check_task(t: &Task) {
    let dim = t.input_dim;
    assert_eq!((t.train_len(), t.val_len()), (1000, 1000), "{:?}", t.spec);
    assert_eq!(t.train_x.len(), 1000 * dim);
    assert_eq!(t.val_x.len(), 1000 * dim);
    let labels: Vec<f32> = t.train_y.iter().chain(&t.val_y).copied().collect();
    assert!(labels.iter().all(|&y| y == 0.0 || y == 1.0));
    let ones = labels.iter().filter(|&&y| y == 1.0).count();
    assert!(
        (800..=1200).contains(&ones),
        "{ones} ones of 2000 for {:?}",
        t.spec
    );
    let rows: Vec<&[f32]> = t.train_x.chunks(dim).chain(t.val_x.chunks(dim)).collect();
    for j in 0..dim {
        let col: Vec<f64> = rows.iter().map(|r| r[j] as f64).collect();
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        let std = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64).sqrt();
        assert!(mean.abs() < 1e-3, "feature {j} mean {mean}");
        assert!((std - 1.0).abs() < 1e-3, "feature {j} std {std}");
    }
}

#[test]
fn image_tasks_build_deterministic_and_distinct() {
    let Some(dir) = shared_datasets() else { return };
    let cfg = config(dir, None);
    let specs = [
        TaskSpec::new(TaskType::MnistBinary, 0, 16),
        TaskSpec::new(TaskType::MnistBinary, 1, 16),
        TaskSpec::new(TaskType::Cifar10Binary, 0, 16), // pair (0,1)
        TaskSpec::new(TaskType::Cifar10Binary, 4499, 16), // pair (8,9)
        TaskSpec::new(TaskType::Cifar10Binary, 1, 16), // pair (0,1), other seeds
    ];
    let a = prepare_tasks(&TaskCache::new(1 << 30), &specs, &cfg, &no_progress).unwrap();
    let b = prepare_tasks(&TaskCache::new(1 << 30), &specs, &cfg, &no_progress).unwrap();
    for (x, y) in a.iter().zip(&b) {
        check_task(x);
        assert_eq!(x.spec, y.spec);
        // Bit-identical rebuild.
        let bits = |t: &Task| {
            t.train_x
                .iter()
                .chain(&t.val_x)
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(x), bits(y));
        assert_eq!(x.train_y, y.train_y);
    }
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            assert_ne!(a[i].train_x, a[j].train_x, "tasks {i} and {j} are equal");
        }
    }
}

/// `../shared` is read-only for the project. `cargo test` runs the library's unit tests
/// before this binary, so a unit test whose prepared-task cache writes through a link into
/// the shared folder shows here (`.ci/run` also compares the whole folder before and after).
#[test]
fn the_shared_datasets_hold_no_prepared_cache() {
    let Some(dir) = shared_datasets() else { return };
    let prepared = dir.join("prepared");
    assert!(
        !prepared.exists(),
        "{} exists: a test wrote its prepared-task cache into the shared datasets",
        prepared.display()
    );
}

#[test]
fn caches_hit_and_corrupt_entries_rebuild() {
    let Some(dir) = shared_datasets() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(dir, Some(tmp.path().to_path_buf()));
    let specs = [
        TaskSpec::new(TaskType::Cifar10Binary, 700, 8),
        TaskSpec::new(TaskType::Cifar10Binary, 2301, 8),
    ];
    let sources = Mutex::new(Vec::new());
    let record = |p: Progress| sources.lock().push((p.task.task_id, p.source));
    let run = |cache: &TaskCache| {
        sources.lock().clear();
        let tasks = prepare_tasks(cache, &specs, &cfg, &record).unwrap();
        let mut s = sources.lock().clone();
        s.sort_by_key(|(id, _)| *id);
        (tasks, s.into_iter().map(|(_, s)| s).collect::<Vec<_>>())
    };

    let cache = TaskCache::new(1 << 30);
    let (first, src) = run(&cache);
    assert_eq!(src, vec![TaskSource::Built; 2]);
    let (again, src) = run(&cache);
    assert_eq!(src, vec![TaskSource::Memory; 2]);
    assert!(std::sync::Arc::ptr_eq(&first[0], &again[0]));

    // A fresh process-like cache reads the disk entries, which equal the built tasks.
    let (from_disk, src) = run(&TaskCache::new(1 << 30));
    assert_eq!(src, vec![TaskSource::Disk; 2]);
    assert_eq!(*from_disk[0], *first[0]);
    assert_eq!(*from_disk[1], *first[1]);

    // Corrupt one entry: it is detected, rebuilt and rewritten.
    let entries: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("cifar10_binary"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 2);
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 0xff;
    std::fs::write(&entries[0], &bytes).unwrap();
    let fresh = TaskCache::new(1 << 30);
    let (rebuilt, src) = run(&fresh);
    assert_eq!(src.iter().filter(|s| **s == TaskSource::Built).count(), 1);
    assert_eq!(src.iter().filter(|s| **s == TaskSource::Disk).count(), 1);
    assert_eq!(fresh.stats().corrupt_rebuilt, 1);
    assert_eq!(*rebuilt[0], *first[0]);
    assert_eq!(*rebuilt[1], *first[1]);
    let (_, src) = run(&TaskCache::new(1 << 30));
    assert_eq!(src, vec![TaskSource::Disk; 2]);
}

#[test]
fn real_files_match_published_checksums() {
    let Some(dir) = shared_datasets() else { return };
    for kind in DatasetKind::ALL {
        let src = datasets::fingerprint(kind, &dir).unwrap();
        let mut verified = 0;
        for f in &src.files {
            let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
            if let Some((algo, expected)) = datasets::published_checksum(kind, &name) {
                assert_eq!(f.digest.get(algo), expected, "{name}");
                verified += 1;
            }
        }
        // MNIST: all four; CIFAR: data_batch_1 and _2 (the test prefix has no checksum).
        assert_eq!(verified, if kind == DatasetKind::Mnist { 4 } else { 2 });
    }
}

/// The 128-task cifar10_binary validator suite, cold and from the disk cache (release).
/// With `BITSOTA_TIMING_CACHE=DIR` it prepares once into/from that cache folder, so that
/// a second run measures a fresh process reading the disk cache.
#[test]
#[ignore]
fn validator_suite_timing() {
    let Some(dir) = shared_datasets() else { return };
    let suite = SuiteSpec::new(TaskType::Cifar10Binary, 16, 128, 1337);
    if let Some(cache) = std::env::var_os("BITSOTA_TIMING_CACHE") {
        let cfg = config(dir, Some(PathBuf::from(cache)));
        let cache = TaskCache::new(1 << 30);
        let t0 = Instant::now();
        let tasks = prepare_tasks(&cache, &suite.tasks, &cfg, &no_progress).unwrap();
        let s = t0.elapsed().as_secs_f64();
        tasks.iter().for_each(|t| check_task(t));
        let st = cache.stats();
        println!(
            "128-task cifar10_binary suite, fresh process: {s:.3} s ({} built, {} from disk)",
            st.built, st.disk_hits
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(dir, Some(tmp.path().to_path_buf()));
    let t0 = Instant::now();
    let cold = prepare_tasks(&TaskCache::new(1 << 30), &suite.tasks, &cfg, &no_progress).unwrap();
    let cold_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let warm = prepare_tasks(&TaskCache::new(1 << 30), &suite.tasks, &cfg, &no_progress).unwrap();
    let disk_s = t1.elapsed().as_secs_f64();
    let mem = TaskCache::new(1 << 30);
    prepare_tasks(&mem, &suite.tasks, &cfg, &no_progress).unwrap();
    let t2 = Instant::now();
    prepare_tasks(&mem, &suite.tasks, &cfg, &no_progress).unwrap();
    let mem_s = t2.elapsed().as_secs_f64();
    for (a, b) in cold.iter().zip(&warm) {
        check_task(a);
        assert_eq!(**a, **b);
    }
    println!("128-task cifar10_binary suite: cold {cold_s:.2} s, disk cache {disk_s:.3} s, memory {mem_s:.4} s");
}
