//! Functional equivalence cache (engine.md §5): programs that behave identically on a
//! small probe almost always score identically, so a child whose probe behaviour was
//! seen before reuses the cached fitness instead of a full evaluation.

use super::interp::{Compiled, Evaluator};
use crate::tasks::Task;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// Lookups and hits of one cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FecStats {
    pub lookups: u64,
    pub hits: u64,
}

impl FecStats {
    pub fn hit_rate(&self) -> f64 {
        if self.lookups == 0 {
            0.0
        } else {
            self.hits as f64 / self.lookups as f64
        }
    }
    /// Sum of two workers' statistics.
    pub fn merged(self, other: FecStats) -> FecStats {
        FecStats {
            lookups: self.lookups + other.lookups,
            hits: self.hits + other.hits,
        }
    }
}

/// An LRU map from probe fingerprints to fitness.
pub struct Fec {
    capacity: usize,
    train: usize,
    val: usize,
    map: HashMap<u64, (f32, u64)>,
    /// (key, stamp) in use order; entries whose stamp is stale are skipped on eviction.
    order: VecDeque<(u64, u64)>,
    stamp: u64,
    pub stats: FecStats,
}

impl Fec {
    /// A cache of `capacity` entries probing `train`/`val` examples of the first task.
    pub fn new(capacity: usize, train: usize, val: usize) -> Self {
        Fec {
            capacity: capacity.max(1),
            train,
            val,
            map: HashMap::new(),
            order: VecDeque::new(),
            stamp: 0,
            stats: FecStats::default(),
        }
    }

    /// The probe fingerprint of a compiled program: its prediction errors on the probe
    /// examples, rounded to 3 decimals, hashed.
    pub fn fingerprint(&self, ev: &mut Evaluator, c: &Compiled, task: &Task, seed: u64) -> u64 {
        ev.run(c, task, seed, self.train, self.val, None, true);
        // SipHash with fixed keys: the same fingerprint in every process.
        let mut h = std::hash::DefaultHasher::new();
        let val_errors = ev.predictions().iter().zip(&task.val_y).map(|(p, y)| p - y);
        for e in ev.train_errors.iter().copied().chain(val_errors) {
            let r = (e * 1000.0).round();
            (r.is_nan(), r as i64).hash(&mut h);
        }
        h.finish()
    }

    /// The cached fitness of `key`, counting the lookup.
    pub fn lookup(&mut self, key: u64) -> Option<f32> {
        self.stats.lookups += 1;
        let stamp = self.next_stamp();
        let entry = self.map.get_mut(&key)?;
        self.stats.hits += 1;
        entry.1 = stamp;
        self.order.push_back((key, stamp));
        Some(entry.0)
    }

    pub fn insert(&mut self, key: u64, fitness: f32) {
        let stamp = self.next_stamp();
        self.map.insert(key, (fitness, stamp));
        self.order.push_back((key, stamp));
        while self.map.len() > self.capacity {
            let Some((k, s)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&k).is_some_and(|e| e.1 == s) {
                self.map.remove(&k);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{compile, parse_program};
    use crate::tasks::scalar_linear::{build, LinearSizes};
    use crate::tasks::{TaskSpec, TaskType};

    #[test]
    fn lru_evicts_least_recently_used() {
        let mut f = Fec::new(2, 4, 4);
        f.insert(1, 0.1);
        f.insert(2, 0.2);
        assert_eq!(f.lookup(1), Some(0.1));
        f.insert(3, 0.3);
        assert_eq!(f.lookup(2), None, "2 was least recently used");
        assert_eq!(f.lookup(1), Some(0.1));
        assert_eq!(f.lookup(3), Some(0.3));
        assert_eq!(f.len(), 2);
        assert_eq!(
            f.stats,
            FecStats {
                lookups: 4,
                hits: 3
            }
        );
        for k in 0..1000 {
            f.insert(k, 0.0);
        }
        assert!(f.order.len() <= 4 * 2 + 64 + 1);
    }

    #[test]
    fn equivalent_programs_share_a_fingerprint() {
        let task = build(
            &TaskSpec::new(TaskType::ScalarLinear, 2, 4),
            LinearSizes { train: 40, val: 40 },
        );
        let fec = Fec::new(10, 10, 10);
        let mut ev = Evaluator::new();
        let mut fp = |text: &str| {
            let c = compile(&parse_program(text).unwrap(), 4);
            fec.fingerprint(&mut ev, &c, &task, 7)
        };
        let a = fp("# predict\ns0 = dot(v0, v1)\n");
        let b = fp("# setup\ns3 = 5\n# predict\ns2 = dot(v1, v0)\ns0 = s2\n");
        let c = fp("# predict\ns0 = norm(v0)\n");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
