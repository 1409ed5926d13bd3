//! Signed HTTP calls to a running relay, for the `relay_*` integration tests.
#![allow(dead_code)] // each test crate uses a different part

use bitsota::keys::{relay_miner_headers, relay_validator_headers, Keypair, SignedHeaders};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How a request is signed.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Nobody,
    Miner(&'a Keypair),
    Validator(&'a Keypair),
    Headers(&'a SignedHeaders),
}

/// A relay under test.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: Client,
}

/// Status and JSON body (Null when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub request_id: String,
}

impl Answer {
    /// The refusal's reason: `detail`, or the first `msg` of a 422's list.
    pub fn detail(&self) -> &str {
        let d = &self.body["detail"];
        d.as_str().or_else(|| d[0]["msg"].as_str()).unwrap_or("")
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn sign(rb: RequestBuilder, who: As) -> RequestBuilder {
        let h = match who {
            As::Nobody => return rb,
            As::Miner(kp) => relay_miner_headers(kp, now()),
            As::Validator(kp) => relay_validator_headers(kp, now()),
            As::Headers(h) => h.clone(),
        };
        let mut rb = rb;
        for (k, v) in h.pairs() {
            rb = rb.header(k, v);
        }
        rb
    }

    pub fn get(&self, path: &str, who: As) -> Answer {
        self.send(Self::sign(self.client.get(self.url(path)), who))
    }

    pub fn post(&self, path: &str, who: As, body: &Value) -> Answer {
        self.try_post(path, who, body).expect("request")
    }

    /// `post`, with transport errors returned (the daemon may be gone).
    pub fn try_post(&self, path: &str, who: As, body: &Value) -> reqwest::Result<Answer> {
        Self::sign(self.client.post(self.url(path)).json(body), who)
            .send()
            .map(answer)
    }

    pub fn post_raw(&self, path: &str, who: As, body: Vec<u8>) -> Answer {
        self.send(Self::sign(
            self.client
                .post(self.url(path))
                .header("Content-Type", "application/json")
                .body(body),
            who,
        ))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Send and decode; every relay answer must carry a request id.
    pub fn send(&self, rb: RequestBuilder) -> Answer {
        let resp = rb.send().expect("request");
        answer(resp)
    }

    pub fn submit(&self, kp: &Keypair, task: &str, score: f64, salt: u64) -> Answer {
        self.try_submit(kp, task, score, salt).expect("request")
    }

    /// A submission whose `algorithm_result` is made unique by `salt`.
    pub fn try_submit(
        &self,
        kp: &Keypair,
        task: &str,
        score: f64,
        salt: u64,
    ) -> reqwest::Result<Answer> {
        self.try_post(
            "/submit_solution",
            As::Miner(kp),
            &serde_json::json!({
                "task_id": task,
                "score": score,
                "algorithm_result": {"task_type": "scalar_linear", "input_dim": 16, "metadata": {"salt": salt}},
            }),
        )
    }

    pub fn vote(&self, kp: &Keypair, miner: &str, score: f64, seen_block: u64) -> Answer {
        self.try_vote(kp, miner, score, seen_block)
            .expect("request")
    }

    pub fn try_vote(
        &self,
        kp: &Keypair,
        miner: &str,
        score: f64,
        seen_block: u64,
    ) -> reqwest::Result<Answer> {
        self.try_post(
            "/sota/vote",
            As::Validator(kp),
            &serde_json::json!({"miner_hotkey": miner, "score": score, "seen_block": seen_block}),
        )
    }

    pub fn sota(&self) -> f64 {
        self.get("/sota_threshold", As::Nobody).body["sota_threshold"]
            .as_f64()
            .unwrap()
    }
}

pub fn answer(resp: Response) -> Answer {
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(!request_id.is_empty(), "response without X-Request-ID");
    let text = resp.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status == 422 {
        assert!(
            body["detail"][0]["msg"].is_string(),
            "422 without FastAPI's detail list: {text}"
        );
    } else if status >= 400 {
        assert!(
            body["detail"].is_string(),
            "error {status} without a JSON detail: {text}"
        );
    }
    Answer {
        status,
        body,
        request_id,
    }
}
