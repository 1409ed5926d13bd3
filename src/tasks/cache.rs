//! Caches of prepared tasks: a bounded in-memory LRU and an on-disk store.
//!
//! Preparing an image task costs ~100M multiply-adds, and a validator re-scores every
//! submission on the same 128 tasks, so prepared tasks are kept (engine.md §3). Both caches
//! are keyed by [`CacheKey`]: task type, id, input_dim, sizes, dataset checksum and the
//! RNG and file-format versions, so changed data or recipes can never be served stale.
//!
//! Disk entries (`<cache_dir>/<task_type>/<sha256(key)>.task`) are `MAGIC`, the payload
//! length (u64 LE), the bincode payload `(key, Task)` and the SHA-256 of the payload.
//! They are written to a temporary file and renamed into place, so readers never see a
//! half-written entry; a torn or tampered entry fails its checksum and is rebuilt.

use super::Task;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// Bump when the preparation recipe or the entry layout changes.
pub const CACHE_FORMAT: u32 = 1;
const MAGIC: &[u8; 12] = b"BITSOTA-TASK";

/// Identity of one prepared task (a canonical string).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(pub String);

impl CacheKey {
    /// `sizes` describes the example counts; `dataset` is the dataset checksum (or
    /// `synthetic`).
    pub fn new(spec: &super::TaskSpec, sizes: &str, dataset: &str) -> Self {
        CacheKey(format!(
            "format={CACHE_FORMAT};rng={};type={};id={};dim={};sizes={sizes};data={dataset}",
            crate::rng::RNG_VERSION,
            spec.task_type,
            spec.task_id,
            spec.input_dim
        ))
    }

    fn file_name(&self) -> String {
        format!(
            "{}.task",
            &hex::encode(Sha256::digest(self.0.as_bytes()))[..32]
        )
    }
}

/// Approximate heap size of a task.
fn task_bytes(t: &Task) -> usize {
    4 * (t.train_x.len() + t.train_y.len() + t.val_x.len() + t.val_y.len())
        + std::mem::size_of::<Task>()
}

struct Entry {
    task: Arc<Task>,
    last_used: u64,
    bytes: usize,
}

struct Lru {
    budget: usize,
    used: usize,
    tick: u64,
    map: HashMap<CacheKey, Entry>,
}

/// Counters of a [`TaskCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub built: u64,
    pub corrupt_rebuilt: u64,
}

/// An in-memory LRU of prepared tasks bounded by bytes.
pub struct TaskCache {
    lru: Mutex<Lru>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    built: AtomicU64,
    corrupt: AtomicU64,
}

/// Default memory budget: 1 GiB (a 128-task, 16-feature suite takes ~16 MiB).
pub const DEFAULT_MEMORY_BUDGET: usize = 1 << 30;

static GLOBAL: LazyLock<TaskCache> = LazyLock::new(|| TaskCache::new(DEFAULT_MEMORY_BUDGET));

impl TaskCache {
    pub fn new(budget_bytes: usize) -> Self {
        TaskCache {
            lru: Mutex::new(Lru {
                budget: budget_bytes,
                used: 0,
                tick: 0,
                map: HashMap::new(),
            }),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            built: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        }
    }

    /// The process-wide cache that [`super::prepare::prepare_suite`] uses.
    pub fn global() -> &'static TaskCache {
        &GLOBAL
    }

    /// Change the memory budget (evicting as needed).
    pub fn set_budget(&self, budget_bytes: usize) {
        let mut lru = self.lru.lock();
        lru.budget = budget_bytes;
        evict(&mut lru);
    }

    pub fn get(&self, key: &CacheKey) -> Option<Arc<Task>> {
        let mut lru = self.lru.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let e = lru.map.get_mut(key)?;
        e.last_used = tick;
        self.memory_hits.fetch_add(1, Ordering::Relaxed);
        Some(e.task.clone())
    }

    pub fn put(&self, key: CacheKey, task: Arc<Task>) {
        let bytes = task_bytes(&task);
        let mut lru = self.lru.lock();
        lru.tick += 1;
        let last_used = lru.tick;
        if let Some(old) = lru.map.insert(
            key,
            Entry {
                task,
                last_used,
                bytes,
            },
        ) {
            lru.used -= old.bytes;
        }
        lru.used += bytes;
        evict(&mut lru);
    }

    pub fn clear(&self) {
        let mut lru = self.lru.lock();
        lru.map.clear();
        lru.used = 0;
    }

    pub fn stats(&self) -> CacheStats {
        let lru = self.lru.lock();
        CacheStats {
            entries: lru.map.len(),
            bytes: lru.used,
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            built: self.built.load(Ordering::Relaxed),
            corrupt_rebuilt: self.corrupt.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_disk_hit(&self) {
        self.disk_hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_built(&self) {
        self.built.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_corrupt(&self) {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
    }
}

/// Drop least-recently-used entries until within budget (the newest entry always stays).
fn evict(lru: &mut Lru) {
    while lru.used > lru.budget && lru.map.len() > 1 {
        let oldest = lru
            .map
            .iter()
            .min_by_key(|(_, e)| e.last_used)
            .map(|(k, _)| k.clone());
        match oldest.and_then(|k| lru.map.remove(&k)) {
            Some(e) => lru.used -= e.bytes,
            None => break,
        }
    }
}

/// What a disk lookup found.
#[derive(Debug)]
pub enum DiskLookup {
    Hit(Task),
    Missing,
    /// The entry exists but is unreadable, torn or for another key (reason given).
    Corrupt(String),
}

/// Path of the disk entry for `key` of `task_type` under `dir`.
pub fn disk_path(dir: &Path, task_type: super::TaskType, key: &CacheKey) -> PathBuf {
    dir.join(task_type.as_str()).join(key.file_name())
}

/// Read and verify a disk entry.
pub fn disk_load(path: &Path, key: &CacheKey) -> DiskLookup {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return DiskLookup::Missing,
        Err(e) => return DiskLookup::Corrupt(e.to_string()),
    };
    match decode_entry(&bytes, key) {
        Ok(t) => DiskLookup::Hit(t),
        Err(reason) => DiskLookup::Corrupt(reason),
    }
}

fn decode_entry(bytes: &[u8], key: &CacheKey) -> Result<Task, String> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("bad magic")?;
    if rest.len() < 8 + 32 {
        return Err("truncated".into());
    }
    let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
    let rest = &rest[8..];
    if rest.len() != len.saturating_add(32) {
        return Err(format!("length {} does not match header {len}", rest.len()));
    }
    let (payload, sum) = rest.split_at(len);
    if Sha256::digest(payload).as_slice() != sum {
        return Err("checksum mismatch".into());
    }
    let ((stored_key, task), _): ((String, Task), usize) =
        bincode::serde::decode_from_slice(payload, bincode::config::standard())
            .map_err(|e| format!("decode: {e}"))?;
    if stored_key != key.0 {
        return Err("entry belongs to another key".into());
    }
    Ok(task)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write a disk entry atomically (temporary file + rename).
pub fn disk_store(path: &Path, key: &CacheKey, task: &Task) -> std::io::Result<()> {
    let payload = bincode::serde::encode_to_vec((&key.0, task), bincode::config::standard())
        .map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        super::datasets::file_name(path),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&(payload.len() as u64).to_le_bytes())?;
        f.write_all(&payload)?;
        f.write_all(&Sha256::digest(&payload))?;
        f.flush()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::scalar_linear::{build, LinearSizes};
    use crate::tasks::{TaskSpec, TaskType};

    fn task(id: u32) -> Task {
        build(
            &TaskSpec::new(TaskType::ScalarLinear, id, 4),
            LinearSizes { train: 10, val: 10 },
        )
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        let one = task_bytes(&task(0));
        let c = TaskCache::new(one * 2);
        let k = |i: u32| CacheKey(format!("k{i}"));
        c.put(k(0), Arc::new(task(0)));
        c.put(k(1), Arc::new(task(1)));
        assert!(c.get(&k(0)).is_some()); // 0 is now newer than 1
        c.put(k(2), Arc::new(task(2)));
        assert!(c.get(&k(1)).is_none());
        assert!(c.get(&k(0)).is_some() && c.get(&k(2)).is_some());
        assert_eq!(c.stats().entries, 2);
    }

    #[test]
    fn disk_round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(3);
        let key = CacheKey::new(&t.spec, "x", "synthetic");
        let path = disk_path(dir.path(), TaskType::ScalarLinear, &key);
        assert!(matches!(disk_load(&path, &key), DiskLookup::Missing));
        disk_store(&path, &key, &t).unwrap();
        match disk_load(&path, &key) {
            DiskLookup::Hit(back) => assert_eq!(back, t),
            other => panic!("{other:?}"),
        }
        let other = CacheKey::new(&t.spec, "y", "synthetic");
        assert!(matches!(disk_load(&path, &other), DiskLookup::Corrupt(_)));
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(disk_load(&path, &key), DiskLookup::Corrupt(_)));
        std::fs::write(&path, &bytes[..20]).unwrap();
        assert!(matches!(disk_load(&path, &key), DiskLookup::Corrupt(_)));
    }
}
