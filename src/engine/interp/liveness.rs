//! Dead-code elimination's analysis: which instructions of each phase write a register
//! that some instruction of the evaluation loop reads later (or `s0`, the prediction).

use super::compile::{Layout, Resolved};

/// A set of register ids (see [`Layout::id`]): a fixed bit array, so the liveness
/// fixed point below runs without allocating. Large enough for the DSL's register
/// limits; a program past it (only possible when built in code) is compiled without
/// dead-code elimination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RegSet([u64; 6]);

impl RegSet {
    const CAPACITY: usize = 6 * 64;
    const EMPTY: RegSet = RegSet([0; 6]);

    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn union(mut self, other: RegSet) -> RegSet {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }
}

/// Backward pass over one phase: the registers live at the phase's start, given those
/// live at its end (strong liveness: a dead instruction's reads do not count). With
/// `flags`, also which instructions write a register that is read later.
fn backward(code: &[Resolved], mut live: RegSet, mut flags: Option<&mut Vec<bool>>) -> RegSet {
    if let Some(f) = flags.as_deref_mut() {
        f.clear();
        f.resize(code.len(), false);
    }
    for (j, r) in code.iter().enumerate().rev() {
        if live.contains(r.write) {
            if let Some(f) = flags.as_deref_mut() {
                f[j] = true;
            }
            if r.full {
                live.remove(r.write);
            }
            for x in r.reads.iter().flatten() {
                live.insert(*x);
            }
        }
    }
    live
}

/// Flow-sensitive liveness over the evaluation loop (engine.md §2): setup → predict,
/// predict → (s1 := label) learn, predict → predict (validation), learn → (s1 := 0)
/// predict; `s0` is read after every predict. The `v0` load is a partial write, so it
/// kills nothing. Fills, per phase, which instructions are live, and returns the
/// registers live at predict's start (all setup's flags depend on: see
/// [`liveness_of_setup`]); `None` (and nothing filled) when the register file is too
/// large to analyse.
pub(super) fn liveness(
    resolved: &[Vec<Resolved>; 3],
    lay: &Layout,
    flags: &mut [Vec<bool>; 3],
) -> Option<RegSet> {
    if lay.n_ids() > RegSet::CAPACITY {
        return None;
    }
    let s0 = (lay.counts[0] > 0).then_some(0);
    let s1 = (lay.counts[0] > 1).then_some(1);
    // Live at the end of learn and of predict, given what is live at predict's start.
    let out_learn = |in_p: RegSet| {
        let mut out = in_p;
        if let Some(s1) = s1 {
            out.remove(s1);
        }
        out
    };
    let out_predict = |in_p: RegSet, in_l: RegSet| {
        let mut out = in_p.union(in_l);
        if let Some(s1) = s1 {
            out.remove(s1);
            if in_p.contains(s1) {
                out.insert(s1);
            }
        }
        if let Some(s0) = s0 {
            out.insert(s0);
        }
        out
    };
    let (mut in_p, mut in_l) = (RegSet::EMPTY, RegSet::EMPTY);
    loop {
        let new_in_l = backward(&resolved[2], out_learn(in_p), None);
        let new_in_p = backward(&resolved[1], out_predict(in_p, new_in_l), None);
        let merged = new_in_p.union(in_p);
        if merged == in_p && new_in_l == in_l {
            break;
        }
        in_p = merged;
        in_l = new_in_l;
    }
    backward(&resolved[2], out_learn(in_p), Some(&mut flags[2]));
    backward(&resolved[1], out_predict(in_p, in_l), Some(&mut flags[1]));
    liveness_of_setup(&resolved[0], in_p, &mut flags[0]);
    Some(in_p)
}

/// Setup's flags alone, given the registers live at predict's start: what a change to
/// setup alone needs, since nothing of predict's or learn's liveness depends on setup.
pub(super) fn liveness_of_setup(setup: &[Resolved], in_predict: RegSet, flags: &mut Vec<bool>) {
    backward(setup, in_predict, Some(flags));
}
