//! What a running validator shows the dashboard: counters, the relay's SOTA, recent votes
//! with the relay's answers, and the would-be weights. Written by the loop, read by
//! `GET /appliance/validators`.

use super::rules::{weights, Counters, Weights};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;

/// Recent votes kept per validator.
pub const RECENT_VOTES: usize = 50;

/// One vote (SOTA or blacklist) and the relay's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VoteRecord {
    pub ts: String,
    /// `sota` or `blacklist`.
    pub kind: &'static str,
    pub miner_hotkey: String,
    /// The validator score of the voted result.
    pub score: f64,
    pub status: String,
    pub detail: String,
}

/// The `/appliance/validators` entry of one validator.
#[derive(Clone, Debug, Serialize)]
pub struct ValidatorView {
    pub name: String,
    pub hotkey: String,
    pub relay_url: String,
    pub sota: f64,
    pub counters: Counters,
    /// Newest first.
    pub recent_votes: Vec<VoteRecord>,
    pub weights: Weights,
}

struct Inner {
    counters: Counters,
    sota: f64,
    recent: VecDeque<VoteRecord>,
    weights: Weights,
}

pub struct ValidatorState {
    pub name: String,
    pub hotkey: String,
    pub relay_url: String,
    inner: Mutex<Inner>,
}

impl ValidatorState {
    pub fn new(name: String, hotkey: String, relay_url: String, burn_hotkey: &str) -> Self {
        ValidatorState {
            name,
            hotkey,
            relay_url,
            inner: Mutex::new(Inner {
                counters: Counters::default(),
                sota: 0.0,
                recent: VecDeque::new(),
                weights: weights(burn_hotkey, None),
            }),
        }
    }

    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.inner.lock().counters);
    }

    pub fn counters(&self) -> Counters {
        self.inner.lock().counters.clone()
    }

    pub fn set_sota(&self, sota: f64) {
        self.inner.lock().sota = sota;
    }

    pub fn sota(&self) -> f64 {
        self.inner.lock().sota
    }

    pub fn set_weights(&self, w: Weights) {
        self.inner.lock().weights = w;
    }

    pub fn push_vote(&self, vote: VoteRecord) {
        let mut inner = self.inner.lock();
        inner.recent.push_front(vote);
        inner.recent.truncate(RECENT_VOTES);
    }

    pub fn view(&self) -> ValidatorView {
        let inner = self.inner.lock();
        ValidatorView {
            name: self.name.clone(),
            hotkey: self.hotkey.clone(),
            relay_url: self.relay_url.clone(),
            sota: inner.sota,
            counters: inner.counters.clone(),
            recent_votes: inner.recent.iter().cloned().collect(),
            weights: inner.weights.clone(),
        }
    }
}
