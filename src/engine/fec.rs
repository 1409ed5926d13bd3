//! Functional equivalence cache (engine.md §5): programs that behave identically on a
//! small probe almost always score identically, so a child whose probe behaviour was
//! seen before reuses the cached fitness instead of a full evaluation.

use super::cache::{CacheStats, KeyHasher, Lru};
use super::interp::{Compiled, Evaluator, Lanes, RunSpec};
use crate::tasks::Task;
use std::hash::Hasher;

/// The fingerprint word of a NaN error. No rounded error maps to it: it is odd and far
/// above 2^24, where every f32 (and so `f32 as i64`) is even.
const NAN_WORD: u64 = 0x7FF8_0000_0000_0001;

/// An LRU map from probe fingerprints to fitness.
pub struct Fec {
    train: usize,
    val: usize,
    cache: Lru<u64, f32>,
}

impl Fec {
    /// A cache of `capacity` entries probing `train`/`val` examples of the first task.
    pub fn new(capacity: usize, train: usize, val: usize) -> Self {
        Fec {
            train,
            val,
            cache: Lru::new(capacity),
        }
    }

    /// The probe fingerprint of a compiled program: its prediction errors on the probe
    /// examples, rounded to 3 decimals, hashed.
    pub fn fingerprint(&self, ev: &mut Evaluator, c: &Compiled, task: &Task, seed: u64) -> u64 {
        let spec = RunSpec {
            n_train: self.train,
            n_val: self.val,
            early_stop: None,
            record_train_errors: true,
            stop: None,
        };
        ev.run(c, Lanes::single(task), &[seed], spec);
        // A fixed multiply-fold hash (the same fingerprint in every process, and a few
        // times cheaper than SipHash, which was a tenth of the probe's cost). NaN gets
        // its own word: `NaN as i64` is 0, which would collide with an error of 0.
        let mut h = KeyHasher::default();
        let val_errors = ev.predictions().iter().zip(&task.val_y).map(|(p, y)| p - y);
        for e in ev.train_errors.iter().copied().chain(val_errors) {
            let r = (e * 1000.0).round();
            h.write_u64(if r.is_nan() {
                NAN_WORD
            } else {
                r as i64 as u64
            });
        }
        h.finish()
    }

    /// The cached fitness of `key`, counting the lookup.
    pub fn lookup(&mut self, key: u64) -> Option<f32> {
        self.cache.lookup(key)
    }

    pub fn insert(&mut self, key: u64, fitness: f32) {
        self.cache.insert(key, fitness)
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{compile, parse_program};
    use crate::tasks::scalar_linear::{build, LinearSizes};
    use crate::tasks::{TaskSpec, TaskType};

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
