//! Functional equivalence cache (engine.md §5): programs that behave identically on a
//! small probe almost always score identically, so a child whose probe behaviour was
//! seen before reuses the cached fitness instead of a full evaluation.

use super::cache::{CacheStats, KeyHasher, Lru};
use super::interp::{Compiled, Evaluator, Lanes, RunSpec};
use crate::tasks::Task;
use std::hash::Hasher;

/// The fingerprint word of a NaN error. No other error maps to it: a rounded f32 above
/// 2^24 is an even integer, and `as i64` saturates infinities to `i64::MAX`/`MIN`.
const NAN_WORD: u64 = 0x7FF8_0000_0000_0001;

/// One probe error as a fingerprint word: rounded to 3 decimals, NaN apart (`NaN as
/// i64` is 0, which would collide with an error of 0).
fn error_word(error: f32) -> u64 {
    let r = (error * 1000.0).round();
    if r.is_nan() {
        NAN_WORD
    } else {
        r as i64 as u64
    }
}

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
        // A fixed multiply-fold hash: the same fingerprint in every process, and a few
        // times cheaper than SipHash, which was a tenth of the probe's cost.
        let mut h = KeyHasher::default();
        let val_errors = ev.predictions().iter().zip(&task.val_y).map(|(p, y)| p - y);
        for e in ev.train_errors.iter().copied().chain(val_errors) {
            h.write_u64(error_word(e));
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
    fn probe_errors_become_distinct_words_at_three_decimals() {
        assert_eq!(error_word(0.0004), error_word(0.0));
        assert_ne!(error_word(0.0006), error_word(0.0));
        assert_ne!(error_word(f32::NAN), error_word(0.0));
        let extremes = [
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            -f32::MAX,
            9.2e15,
        ];
        for e in extremes {
            assert_ne!(error_word(f32::NAN), error_word(e), "{e}");
        }
        assert_ne!(error_word(f32::INFINITY), error_word(f32::NEG_INFINITY));
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
