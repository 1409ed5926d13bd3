//! The store's write guard: a free-space watermark on the data directory's filesystem
//! and a sticky "failed" state.
//!
//! Every write path asks [`Guard::check`] before touching sled. Below the watermark it
//! refuses ([`StoreError::LowSpace`]) without writing anything, so sled never meets a
//! full disk in ordinary operation, and writes resume by themselves when space returns
//! (sled's own I/O errors are sticky: once it has failed a write it fails every later
//! one until the process restarts). If sled fails anyway (a race with another writer
//! of the filesystem, EIO), the guard is marked failed: every later write is refused,
//! and the daemon, watching [`Guard::failed_signal`], shuts down and exits non-zero so
//! that a supervisor restarts it on a store that recovers from its own log.

use super::StoreError;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// statvfs is a cheap syscall, but every write asks: answers are reused this long. At
/// the relay's rate (a few hundred flushed writes a second) that lets through at most a
/// few hundred KB past the watermark, far inside any sensible `min_free_mb`.
const CACHE: Duration = Duration::from_millis(250);

/// Whether writes may proceed: the pure rule over a free-space reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Space {
    Enough,
    Low { free_bytes: u64, min_bytes: u64 },
}

/// The watermark rule: strictly below `min_bytes` free is low (0 = never low).
pub fn space(free_bytes: u64, min_bytes: u64) -> Space {
    if free_bytes < min_bytes {
        Space::Low {
            free_bytes,
            min_bytes,
        }
    } else {
        Space::Enough
    }
}

/// What the guard knows right now, for health, status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardState {
    pub data_dir: String,
    /// Free bytes for an unprivileged writer (`None` if statvfs failed).
    pub free_bytes: Option<u64>,
    pub min_free_bytes: u64,
    pub low_space: bool,
    /// Why the store failed, once it has.
    pub failed: Option<String>,
}

/// Shared by every clone of a [`super::Store`].
pub struct Guard {
    /// The directory whose filesystem is watched (the data directory).
    dir: PathBuf,
    min_free_bytes: u64,
    cache: Mutex<Option<(Instant, Option<u64>)>>,
    failed: OnceLock<String>,
    signal: CancellationToken,
}

impl Guard {
    pub fn new(dir: &Path, min_free_bytes: u64) -> Guard {
        Guard {
            dir: dir.to_path_buf(),
            min_free_bytes,
            cache: Mutex::new(None),
            failed: OnceLock::new(),
            signal: CancellationToken::new(),
        }
    }

    /// Free bytes on the watched filesystem, at most [`CACHE`] old.
    pub fn free_bytes(&self) -> Option<u64> {
        let mut cache = self.cache.lock();
        match *cache {
            Some((at, free)) if at.elapsed() < CACHE => free,
            _ => {
                let free = free_bytes(&self.dir);
                *cache = Some((Instant::now(), free));
                free
            }
        }
    }

    /// May a write proceed? Refuses a failed store, then a filesystem below the
    /// watermark. An unreadable filesystem does not block writes (sled reports real
    /// failures itself).
    pub fn check(&self) -> Result<(), StoreError> {
        if let Some(reason) = self.failed.get() {
            return Err(StoreError::Failed(reason.clone()));
        }
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        match self.free_bytes().map(|f| space(f, self.min_free_bytes)) {
            Some(Space::Low {
                free_bytes,
                min_bytes,
            }) => Err(StoreError::LowSpace {
                data_dir: self.dir.display().to_string(),
                free_bytes,
                min_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// Pass `result` through, marking the store failed if it carries a fault of sled's
    /// own (I/O, corruption): those are sticky inside sled, so nothing will succeed again
    /// before a restart.
    pub fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            if e.is_fault() {
                self.fail(e.to_string());
            }
        }
        result
    }

    /// Mark the store failed (the first reason sticks) and wake the daemon.
    pub fn fail(&self, reason: String) {
        if self.failed.set(reason.clone()).is_ok() {
            tracing::error!(reason = %reason, "store failed; refusing writes and stopping the daemon");
        }
        self.signal.cancel();
    }

    /// Cancelled when the store fails.
    pub fn failed_signal(&self) -> CancellationToken {
        self.signal.clone()
    }

    pub fn failed(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    pub fn state(&self) -> GuardState {
        let free = self.free_bytes();
        GuardState {
            data_dir: self.dir.display().to_string(),
            free_bytes: free,
            min_free_bytes: self.min_free_bytes,
            low_space: free.is_some_and(|f| space(f, self.min_free_bytes) != Space::Enough),
            failed: self.failed().map(str::to_string),
        }
    }
}

/// Free bytes available to an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    fs2::available_space(dir).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_rule() {
        assert_eq!(space(10, 0), Space::Enough);
        assert_eq!(space(10, 10), Space::Enough);
        assert_eq!(
            space(9, 10),
            Space::Low {
                free_bytes: 9,
                min_bytes: 10
            }
        );
    }

    #[test]
    fn low_space_refuses_and_failure_sticks() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let guard = Guard::new(dir.path(), 0);
        assert!(guard.check().is_ok());
        // More than the filesystem has free: refused, naming the directory.
        let guard = Guard::new(dir.path(), free.saturating_mul(4).max(1 << 40));
        let e = guard.check().unwrap_err();
        assert!(matches!(e, StoreError::LowSpace { .. }), "{e}");
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
        assert!(guard.state().low_space);

        let guard = Guard::new(dir.path(), 0);
        let signal = guard.failed_signal();
        let io = sled::Error::Io(std::io::Error::other("disk on fire"));
        assert!(guard.observe::<()>(Err(StoreError::Sled(io))).is_err());
        assert!(signal.is_cancelled());
        assert!(matches!(guard.check(), Err(StoreError::Failed(_))));
        // A decoding error is a bad record, not a failed store.
        let guard = Guard::new(dir.path(), 0);
        let bad = StoreError::Decode {
            tree: "t".into(),
            reason: "x".into(),
        };
        assert!(guard.observe::<()>(Err(bad)).is_err());
        assert!(guard.check().is_ok());
    }
}
