//! A pool client for tests: a miner signing every request with fresh headers.
#![allow(dead_code)] // each integration-test crate uses a different part

use bitsota::keys::{pool_headers, Keypair};
use serde_json::Value;

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A miner talking to the pool with fresh signed headers on every request.
pub struct Miner {
    pub kp: Keypair,
    base: String,
    c: reqwest::blocking::Client,
}

impl Miner {
    pub fn new(base: &str) -> Self {
        Miner {
            kp: Keypair::generate(),
            base: base.to_string(),
            c: super::common::http(),
        }
    }
    pub fn hotkey(&self) -> String {
        self.kp.ss58()
    }
    pub fn signed(
        &self,
        rb: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        let h = pool_headers(&self.kp, now());
        h.pairs().iter().fold(rb, |rb, (k, v)| rb.header(*k, *v))
    }
    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.try_post(path, body).expect("request")
    }
    /// `None` when the pool cannot be reached (e.g. it was killed).
    pub fn try_post(&self, path: &str, body: Value) -> Option<(u16, Value)> {
        let rb = self.c.post(format!("{}{path}", self.base)).json(&body);
        try_send(self.signed(rb))
    }
    pub fn get(&self, path: &str) -> (u16, Value) {
        send(self.signed(self.c.get(format!("{}{path}", self.base))))
    }
}

pub fn send(rb: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    try_send(rb).expect("request")
}

pub fn try_send(rb: reqwest::blocking::RequestBuilder) -> Option<(u16, Value)> {
    let r = rb.send().ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().unwrap_or(Value::Null)))
}
