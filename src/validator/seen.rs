//! The persisted, bounded seen-set of one validator: results it has already judged are
//! skipped on the next poll and after a restart, so it never re-votes them.
//!
//! Two trees per validator hotkey: `validator.seen.<hotkey>` (seen key → insertion
//! sequence) and `validator.seen_order.<hotkey>` (sequence → seen key). The second gives
//! the insertion order, so the oldest entries are evicted once the set is full.

use crate::store::{u64_key, Store, StoreError, TypedTree};

/// Entries kept per validator; far more than one relay page (≤ 1000 results).
pub const SEEN_CAPACITY: usize = 100_000;

pub struct SeenSet {
    store: Store,
    keys: TypedTree<u64>,
    order: TypedTree<Vec<u8>>,
    capacity: usize,
}

impl SeenSet {
    /// The seen-set of the validator `hotkey` in `store`.
    pub fn open(store: &Store, hotkey: &str, capacity: usize) -> Result<Self, StoreError> {
        Ok(SeenSet {
            store: store.clone(),
            keys: store.tree(&format!("validator.seen.{hotkey}"))?,
            order: store.tree(&format!("validator.seen_order.{hotkey}"))?,
            capacity: capacity.max(1),
        })
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.keys.contains_key(key)
    }

    /// Remember `key` (no-op when present), evicting the oldest entries beyond capacity.
    pub fn insert(&self, key: &[u8]) -> Result<(), StoreError> {
        if self.keys.contains_key(key)? {
            return Ok(());
        }
        let seq = self.store.next_id()?;
        self.keys.insert(key, &seq)?;
        self.order.insert(u64_key(seq), &key.to_vec())?;
        while self.keys.len() > self.capacity {
            let Some((_, oldest)) = self.order.raw().pop_min()? else {
                break;
            };
            let oldest: Vec<u8> = crate::store::decode(self.order.name(), &oldest)?;
            self.keys.remove(&oldest)?;
        }
        Ok(())
    }

    /// Forget `key` (a result whose vote waits for a retry, so that a restart judges it
    /// afresh); no-op when absent.
    pub fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        if let Some(seq) = self.keys.remove(key)? {
            self.order.remove(u64_key(seq))?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Make the inserts so far durable (per the store's durability) before voting.
    pub fn commit(&self) -> Result<(), StoreError> {
        self.store.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    #[test]
    fn persists_and_evicts_oldest() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), Durability::Sync).unwrap();
            let seen = SeenSet::open(&store, "5V", 3).unwrap();
            for k in [b"a", b"b", b"c", b"a"] {
                seen.insert(k).unwrap();
            }
            assert_eq!(seen.len(), 3);
            seen.insert(b"d").unwrap();
            assert_eq!(seen.len(), 3);
            assert!(!seen.contains(b"a").unwrap(), "oldest evicted");
            // A removed key leaves no order entry behind to evict a later one early.
            seen.remove(b"b").unwrap();
            seen.insert(b"b").unwrap();
            seen.insert(b"e").unwrap();
            assert!(!seen.contains(b"c").unwrap() && seen.contains(b"b").unwrap());
            assert_eq!((seen.len(), seen.order.len()), (3, 3));
            seen.commit().unwrap();
            store.flush().unwrap();
        }
        // sled releases its file lock from a background thread once the last handle
        // is gone; on a loaded machine that can trail the drop by a moment.
        let mut tries = 0;
        let store = loop {
            match Store::open(dir.path(), Durability::Sync) {
                Err(crate::store::StoreError::Locked { .. }) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => break other.unwrap(),
            }
        };
        let seen = SeenSet::open(&store, "5V", 3).unwrap();
        for k in [b"d", b"b", b"e"] {
            assert!(seen.contains(k).unwrap());
        }
        // Another validator's set is separate.
        assert!(SeenSet::open(&store, "5W", 3).unwrap().is_empty());
    }
}
