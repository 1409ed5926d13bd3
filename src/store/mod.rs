//! The sled store: one database for every service, one tree per record type.
//!
//! Values are encoded as one format byte followed by bincode 2 (serde, standard config);
//! the format byte lets a later schema read or migrate older records. bincode does not
//! support self-describing serde types (`serde_json::Value`, untagged enums,
//! `skip_serializing_if`): store JSON documents as `String`.
//!
//! Durability: with [`Durability::Sync`] every [`Store::commit`] flushes to disk before
//! the caller answers a client, so an acknowledged write survives `kill -9`. Concurrent
//! commits share one flush (sled coalesces them), which keeps the cost per request low.

mod guard;
mod migrate;

pub use guard::{free_bytes, GuardState};
pub use migrate::{Migration, MigrationStep, MIGRATIONS};

use guard::Guard;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use std::marker::PhantomData;
use std::path::Path;

/// Leading byte of every stored value.
pub const VALUE_FORMAT: u8 = 1;

/// Tree holding the store's own metadata (schema version).
pub const META_TREE: &str = "__meta";

/// Everything that can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {path} is in use by another bitsota process (sled lock held)")]
    Locked { path: String },
    #[error("store at {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store encoding: {0}")]
    Encode(String),
    #[error("store decoding in tree '{tree}': {reason}")]
    Decode { tree: String, reason: String },
    #[error("the store has schema version {found}, newer than this program knows ({known}); upgrade bitsota or use another data directory")]
    TooNew { found: u32, known: u32 },
    #[error("migration {version} ({name}) failed: {reason}")]
    Migration {
        version: u32,
        name: String,
        reason: String,
    },
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// Below the free-space watermark: nothing was written.
    #[error("insufficient storage: the data directory {data_dir} has {} MB free, below the {} MB watermark ([store] min_free_mb)", mb(*.free_bytes), mb(*.min_bytes))]
    LowSpace {
        data_dir: String,
        free_bytes: u64,
        min_bytes: u64,
    },
    /// sled failed a write earlier; nothing more is written before a restart.
    #[error("the store failed ({0}); writes are refused until the daemon restarts")]
    Failed(String),
}

/// Bytes as megabytes with one decimal, for messages.
fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

impl StoreError {
    /// A fault of sled's own (I/O, corruption, a bug): sled makes these sticky, so the
    /// store can write nothing more before the process restarts.
    pub fn is_fault(&self) -> bool {
        match self {
            StoreError::Sled(e) | StoreError::Open { source: e, .. } => matches!(
                e,
                sled::Error::Io(_) | sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)
            ),
            StoreError::Failed(_) => true,
            _ => false,
        }
    }
}

/// When acknowledged writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Flush before acknowledging (default for relay and pool).
    Sync,
    /// Let sled flush in the background (every ~500 ms).
    Async,
}

/// Encode a value: format byte + bincode 2.
pub fn encode<V: Serialize>(value: &V) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VALUE_FORMAT];
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decode a value written by [`encode`].
pub fn decode<V: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<V, StoreError> {
    let err = |reason: String| StoreError::Decode {
        tree: tree.to_string(),
        reason,
    };
    match bytes.first() {
        Some(&VALUE_FORMAT) => {
            let (v, _) =
                bincode::serde::decode_from_slice(&bytes[1..], bincode::config::standard())
                    .map_err(|e| err(e.to_string()))?;
            Ok(v)
        }
        Some(other) => Err(err(format!("unknown value format {other}"))),
        None => Err(err("empty value".into())),
    }
}

/// The appliance's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    durability: Durability,
    guard: Arc<Guard>,
}

impl Store {
    /// Open (or create) the store at `path` and run pending migrations, with no
    /// free-space watermark (tools and tests; the daemon uses [`Store::open_watched`]).
    /// A second process on the same path gets [`StoreError::Locked`] at once.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        Store::open_watched(path, durability, path, 0)
    }

    /// [`Store::open`], refusing writes while the filesystem holding `watched` (the data
    /// directory) has less than `min_free_bytes` free.
    pub fn open_watched(
        path: &Path,
        durability: Durability,
        watched: &Path,
        min_free_bytes: u64,
    ) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024)
            .open()
            .map_err(|e| classify_open_error(path, e))?;
        let store = Store {
            db,
            durability,
            guard: Arc::new(Guard::new(watched, min_free_bytes)),
        };
        migrate::run(&store.db, MIGRATIONS)?;
        Ok(store)
    }

    /// A typed view of the tree `name`.
    pub fn tree<V>(&self, name: &str) -> Result<TypedTree<V>, StoreError> {
        Ok(TypedTree {
            name: name.to_string(),
            tree: self.db.open_tree(name)?,
            guard: self.guard.clone(),
            _value: PhantomData,
        })
    }

    /// Ask before writing: refuses below the free-space watermark and after a failure.
    /// Typed trees ask by themselves; code that writes raw trees or runs transactions
    /// asks first.
    pub fn check_write(&self) -> Result<(), StoreError> {
        self.guard.check()
    }

    /// Pass a store operation's result through (a write's, or a read's), marking the store
    /// failed on a fault of sled's.
    pub fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.guard.observe(result)
    }

    /// The watermark and failure state.
    pub fn guard_state(&self) -> GuardState {
        self.guard.state()
    }

    /// Cancelled once the store has failed: the daemon then shuts down.
    pub fn failed_signal(&self) -> tokio_util::sync::CancellationToken {
        self.guard.failed_signal()
    }

    /// Bytes of the store's files on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// The store's usage now.
    pub fn usage(&self, at: f64) -> Usage {
        Usage {
            at,
            size_on_disk_bytes: self.size_on_disk(),
            trees: self.tree_sizes(),
        }
    }

    /// Every tree's name, record count and bytes of keys and values (what the records
    /// take, before sled's own overhead): for `/admin/status`, `/metrics` and
    /// `bitsota data status`.
    pub fn tree_sizes(&self) -> Vec<TreeSize> {
        let mut out: Vec<TreeSize> = self
            .db
            .tree_names()
            .into_iter()
            .filter(|n| n.as_ref() != b"__sled__default")
            .filter_map(|name| {
                let tree = self.db.open_tree(&name).ok()?;
                let mut size = TreeSize {
                    name: String::from_utf8_lossy(&name).into_owned(),
                    records: 0,
                    bytes: 0,
                };
                for (k, v) in tree.iter().flatten() {
                    size.records += 1;
                    size.bytes += (k.len() + v.len()) as u64;
                }
                Some(size)
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The raw sled database (for multi-tree transactions).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The same database with another durability: each service commits by its own
    /// setting (`[relay] durability`, `[pool] durability`, `[sidecar] durability`).
    pub fn with_durability(&self, durability: Durability) -> Store {
        Store {
            db: self.db.clone(),
            durability,
            guard: self.guard.clone(),
        }
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Make acknowledged writes durable according to the configured durability.
    pub fn commit(&self) -> Result<(), StoreError> {
        if self.durability == Durability::Sync {
            self.flush()?;
        }
        Ok(())
    }

    /// Flush unconditionally (shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.observe(self.db.flush().map(|_| ()).map_err(StoreError::from))
    }

    /// Find out whether sled has met a fault on any path, marking the store failed if
    /// so. sled's faults are sticky and a flush reports them (the failed write stays
    /// unstable), whoever met them first: a read, a raw tree, sled's periodic flusher.
    /// Without a fault it costs what sled's own 500 ms flush costs.
    pub fn probe(&self) -> Result<(), StoreError> {
        if self.guard.failed().is_some() {
            return Ok(());
        }
        self.flush()
    }

    /// The schema version recorded in the store.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrate::recorded_version(&self.db)
    }

    /// A fresh id, unique within this store and increasing (sled's monotonic counter).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }
}

fn classify_open_error(path: &Path, e: sled::Error) -> StoreError {
    let text = e.to_string();
    let locked = match &e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || text.contains("lock")
                || io.raw_os_error() == Some(11)
        }
        _ => false,
    };
    if locked {
        StoreError::Locked {
            path: path.display().to_string(),
        }
    } else {
        StoreError::Open {
            path: path.display().to_string(),
            source: e,
        }
    }
}

/// Where the daemon leaves its latest [`Usage`] for `bitsota data status`, which cannot
/// open a store the daemon holds.
pub const USAGE_FILE: &str = "store-usage.json";

/// The store's size on disk and per tree, at a time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Unix seconds.
    pub at: f64,
    pub size_on_disk_bytes: u64,
    pub trees: Vec<TreeSize>,
}

/// One tree's share of the store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeSize {
    pub name: String,
    pub records: u64,
    pub bytes: u64,
}

/// A sled tree whose values are `V` (encoded with [`encode`]). Its writes ask the
/// store's guard first.
#[derive(Clone)]
pub struct TypedTree<V> {
    name: String,
    tree: sled::Tree,
    guard: Arc<Guard>,
    _value: PhantomData<fn() -> V>,
}

impl<V: Serialize + DeserializeOwned> TypedTree<V> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw tree (for transactions and atomic updates).
    pub fn raw(&self) -> &sled::Tree {
        &self.tree
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<V>, StoreError> {
        self.guard
            .observe(self.tree.get(key).map_err(StoreError::from))?
            .map(|b| decode(&self.name, &b))
            .transpose()
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: &V) -> Result<(), StoreError> {
        self.guard.check()?;
        let bytes = encode(value)?;
        self.write(|t| t.insert(key.as_ref(), bytes).map(|_| ()))
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<V>, StoreError> {
        self.guard.check()?;
        self.write(|t| t.remove(key))?
            .map(|b| decode(&self.name, &b))
            .transpose()
    }

    /// A raw write, a fault of which marks the store failed.
    fn write<T>(&self, op: impl FnOnce(&sled::Tree) -> sled::Result<T>) -> Result<T, StoreError> {
        self.guard.observe(op(&self.tree).map_err(StoreError::from))
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        self.guard
            .observe(self.tree.contains_key(key).map_err(StoreError::from))
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// All records in key order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, V), StoreError>> + '_ {
        self.tree.iter().map(move |r| {
            let (k, v) = r?;
            Ok((k, decode(&self.name, &v)?))
        })
    }

    /// Records whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, V), StoreError>> + '_ {
        self.tree.scan_prefix(prefix).map(move |r| {
            let (k, v) = r?;
            Ok((k, decode(&self.name, &v)?))
        })
    }

    /// Records with keys in `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, V), StoreError>> + '_ {
        self.tree.range(range).map(move |r| {
            let (k, v) = r?;
            Ok((k, decode(&self.name, &v)?))
        })
    }

    pub fn clear(&self) -> Result<(), StoreError> {
        self.guard.check()?;
        self.write(|t| t.clear())
    }

    /// This tree's view inside a transaction, `tree` being its transactional handle.
    pub fn in_tx<'a>(&'a self, tree: &'a TransactionalTree) -> TxTree<'a, V> {
        TxTree {
            name: &self.name,
            tree,
            _value: PhantomData,
        }
    }
}

/// A typed tree inside a sled transaction: reads see the transaction's own writes, and
/// everything written commits together or not at all. Failures abort with any error
/// type that can hold a [`StoreError`].
pub struct TxTree<'a, V> {
    name: &'a str,
    tree: &'a TransactionalTree,
    _value: PhantomData<fn() -> V>,
}

fn tx_abort<E: From<StoreError>>(e: StoreError) -> ConflictableTransactionError<E> {
    ConflictableTransactionError::Abort(e.into())
}

impl<V: Serialize + DeserializeOwned> TxTree<'_, V> {
    pub fn get<E: From<StoreError>>(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<V>, ConflictableTransactionError<E>> {
        match self.tree.get(key.as_ref())? {
            Some(bytes) => decode(self.name, &bytes).map(Some).map_err(tx_abort),
            None => Ok(None),
        }
    }

    pub fn insert<E: From<StoreError>>(
        &self,
        key: impl AsRef<[u8]>,
        value: &V,
    ) -> Result<(), ConflictableTransactionError<E>> {
        self.tree
            .insert(key.as_ref(), encode(value).map_err(tx_abort)?)?;
        Ok(())
    }

    pub fn remove<E>(&self, key: impl AsRef<[u8]>) -> Result<(), ConflictableTransactionError<E>> {
        self.tree.remove(key.as_ref())?;
        Ok(())
    }

    pub fn contains_key<E>(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<bool, ConflictableTransactionError<E>> {
        Ok(self.tree.get(key.as_ref())?.is_some())
    }
}

/// Big-endian key for `u64` ids, so that key order is numeric order.
pub fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Inverse of [`u64_key`] (`None` when the key is not 8 bytes).
pub fn key_u64(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        a: u32,
        b: String,
        c: Option<f64>,
    }

    #[test]
    fn typed_roundtrip_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), Durability::Sync).unwrap();
        let t: TypedTree<Rec> = store.tree("recs").unwrap();
        for i in [3u64, 1, 2] {
            let r = Rec {
                a: i as u32,
                b: format!("r{i}"),
                c: Some(i as f64 / 2.0),
            };
            t.insert(u64_key(i), &r).unwrap();
        }
        store.commit().unwrap();
        let order: Vec<u32> = t.iter().map(|r| r.unwrap().1.a).collect();
        assert_eq!(order, vec![1, 2, 3]);
        assert_eq!(t.get(u64_key(2)).unwrap().unwrap().b, "r2");
        assert!(t.get(u64_key(9)).unwrap().is_none());
    }

    #[test]
    fn bad_bytes_are_a_decode_error() {
        assert!(matches!(
            decode::<Rec>("x", &[]),
            Err(StoreError::Decode { .. })
        ));
        assert!(matches!(
            decode::<Rec>("x", &[9, 1]),
            Err(StoreError::Decode { .. })
        ));
        assert!(matches!(
            decode::<Rec>("x", &[1, 200]),
            Err(StoreError::Decode { .. })
        ));
    }

    /// A fault met where nothing reports it (here raw writes and flushes straight to
    /// sled, as sled's own flusher would) leaves the store looking healthy until the
    /// daemon's watchdog probes it. Needs a real full disk: a 2 MB tmpfs (root only).
    #[test]
    fn a_probe_finds_a_fault_nothing_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&mnt)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here; run as root to test a full disk");
            return;
        }
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(self.0)
                    .status();
            }
        }
        let _unmount = Unmount(&mnt);
        let store = Store::open(&mnt.join("db"), Durability::Sync).unwrap();
        let raw = store.db().open_tree("raw").unwrap();
        let mut fault = None;
        for i in 0u32..20_000 {
            let written = raw.insert(i.to_be_bytes(), vec![7u8; 4096]).and_then(|_| {
                if i % 16 == 0 {
                    raw.flush().map(|_| ())
                } else {
                    Ok(())
                }
            });
            if let Err(e) = written {
                fault = Some(e);
                break;
            }
        }
        assert!(fault.is_some(), "a 2 MB disk never filled");
        assert_eq!(
            store.guard_state().failed,
            None,
            "nothing reported the fault yet"
        );
        assert!(store.probe().is_err());
        let failed = store
            .guard_state()
            .failed
            .expect("the probe marks the store failed");
        assert!(
            failed.contains("No space left") || failed.contains("IO"),
            "{failed}"
        );
        assert!(store.failed_signal().is_cancelled());
    }
}
