//! The fitness caches of a search: a bounded LRU map with lookup statistics, shared by
//! the functional equivalence cache ([`super::fec`]) and the exact-duplicate cache
//! (children whose compiled code was already scored, see [`super::evolve`]).

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// The identity "hash" of an integer key that is itself a hash.
#[derive(Default)]
pub struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for integer keys; fold bytes in so any key still works.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 ^= i;
    }
    fn write_u128(&mut self, i: u128) {
        self.0 ^= i as u64 ^ (i >> 64) as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Lookups and hits of one cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub lookups: u64,
    pub hits: u64,
}

impl CacheStats {
    pub fn hit_rate(&self) -> f64 {
        if self.lookups == 0 {
            0.0
        } else {
            self.hits as f64 / self.lookups as f64
        }
    }
    /// Sum of two workers' statistics.
    pub fn merged(self, other: CacheStats) -> CacheStats {
        CacheStats {
            lookups: self.lookups + other.lookups,
            hits: self.hits + other.hits,
        }
    }
}

/// A map of at most `capacity` entries that forgets the least recently used one.
///
/// Use order is a queue of `(key, stamp)`; an entry's current stamp lives beside its
/// value, so stale queue items (the key was used again since) are skipped on eviction
/// instead of being searched for and removed on every use.
///
/// Keys are hashes already (probe fingerprints, code keys), so the map uses them as
/// they are instead of hashing them again.
pub struct Lru<K, V> {
    capacity: usize,
    map: HashMap<K, (V, u64), BuildHasherDefault<KeyIsHash>>,
    order: VecDeque<(K, u64)>,
    stamp: u64,
    pub stats: CacheStats,
}

impl<K: Hash + Eq + Copy, V: Copy> Lru<K, V> {
    pub fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            map: HashMap::default(),
            order: VecDeque::new(),
            stamp: 0,
            stats: CacheStats::default(),
        }
    }

    /// The value of `key`, counting the lookup and marking the entry as used.
    pub fn lookup(&mut self, key: K) -> Option<V> {
        self.stats.lookups += 1;
        let stamp = self.next_stamp();
        let entry = self.map.get_mut(&key)?;
        self.stats.hits += 1;
        entry.1 = stamp;
        self.order.push_back((key, stamp));
        Some(entry.0)
    }

    pub fn insert(&mut self, key: K, value: V) {
        let stamp = self.next_stamp();
        self.map.insert(key, (value, stamp));
        self.order.push_back((key, stamp));
        while self.map.len() > self.capacity {
            let Some((k, s)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&k).is_some_and(|e| e.1 == s) {
                self.map.remove(&k);
            }
        }
        // Keep the queue bounded when the same keys are used over and over.
        if self.order.len() > 4 * self.capacity + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.1 == *s));
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }
}

/// A fast 128-bit hasher for cache keys: two lanes of folded multiplies (the mixing of
/// foldhash and wyhash). Keys hashed here are our own compiled code, not adversarial
/// input, and at 128 bits an accidental collision is out of reach; SipHash cost a
/// tenth of the demo search's time.
pub struct KeyHasher {
    a: u64,
    b: u64,
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher {
            a: 0x243F_6A88_85A3_08D3,
            b: 0x1319_8A2E_0370_7344,
        }
    }
}

/// The high and low halves of a 64×64-bit product, xored.
fn fold(x: u64, y: u64) -> u64 {
    let p = x as u128 * y as u128;
    p as u64 ^ (p >> 64) as u64
}

impl KeyHasher {
    fn word(&mut self, w: u64) {
        self.a = fold(self.a ^ w, 0x9E37_79B9_7F4A_7C15);
        self.b = fold(self.b ^ w.rotate_left(29), 0xC2B2_AE3D_27D4_EB4F);
    }

    pub fn finish128(&self) -> u128 {
        let a = fold(
            self.a ^ 0xA076_1D64_78BD_642F,
            self.b ^ 0xE703_7ED1_A0B4_28DB,
        );
        let b = fold(
            self.b ^ 0x8EBC_6AF0_9C88_C6E3,
            self.a ^ 0x5899_65CC_7537_4CC3,
        );
        (a as u128) << 64 | b as u128
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w));
        }
        self.word(bytes.len() as u64);
    }
    fn write_u8(&mut self, i: u8) {
        self.word(i as u64)
    }
    fn write_u16(&mut self, i: u16) {
        self.word(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.word(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.word(i)
    }
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64)
    }
    fn finish(&self) -> u64 {
        self.finish128() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let mut c = Lru::new(2);
        c.insert(1, 0.1);
        c.insert(2, 0.2);
        assert_eq!(c.lookup(1), Some(0.1));
        c.insert(3, 0.3);
        assert_eq!(c.lookup(2), None, "2 was least recently used");
        assert_eq!(c.lookup(1), Some(0.1));
        assert_eq!(c.lookup(3), Some(0.3));
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.stats,
            CacheStats {
                lookups: 4,
                hits: 3
            }
        );
        for k in 0..1000 {
            c.insert(k, 0.0);
        }
        assert!(c.order.len() <= 4 * 2 + 64 + 1);
    }

    #[test]
    fn key_hasher_separates_nearby_inputs() {
        let key = |v: &[u32]| {
            let mut h = KeyHasher::default();
            v.hash(&mut h);
            h.finish128()
        };
        let mut seen = std::collections::HashSet::new();
        // Every one- and two-word variation of a small "program" gets its own key.
        let base = [3u32, 0, 1, 2, 0x3F80_0000, 0];
        for i in 0..base.len() {
            for x in 0..64u32 {
                for j in 0..base.len() {
                    let mut v = base;
                    v[i] ^= x;
                    v[j] = v[j].wrapping_add(1);
                    seen.insert((v, key(&v)));
                }
            }
        }
        let keys: std::collections::HashSet<u128> = seen.iter().map(|(_, k)| *k).collect();
        let inputs: std::collections::HashSet<[u32; 6]> = seen.iter().map(|(v, _)| *v).collect();
        assert_eq!(keys.len(), inputs.len());
        assert_ne!(key(&[1, 2]), key(&[2, 1]));
        assert_ne!(key(&[0]), key(&[0, 0]));
    }
}
