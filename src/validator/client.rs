//! A blocking HTTP client of a relay, as a validator uses it (relay.md §2): every
//! validator request is signed anew with the validator's hotkey over `<unix seconds>`.

use crate::keys::{relay_validator_headers, Keypair};
use serde::Serialize;
use std::time::Duration;

/// Per-request timeout: a relay that hangs is treated like one that fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A relay request that did not give the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay unreachable: {0}")]
    Http(String),
    #[error("relay answered {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("relay sent an unexpected body: {0}")]
    Body(String),
}

/// The relay's answer to a vote (SOTA or blacklist), as the dashboard shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct VoteAnswer {
    /// `vote_recorded`, `vote_updated`, `already_voted`, `finalized`,
    /// `blacklist vote recorded`, or `rejected` when the relay refused or failed.
    pub status: String,
    pub detail: String,
    /// The SOTA after the vote (SOTA votes only).
    pub current_sota: Option<f64>,
}

impl VoteAnswer {
    fn rejected(e: RelayError) -> Self {
        let detail = match e {
            RelayError::Status { detail, .. } => detail,
            other => other.to_string(),
        };
        VoteAnswer {
            status: "rejected".into(),
            detail,
            current_sota: None,
        }
    }
    /// The relay took the vote (any 2xx).
    pub fn accepted(&self) -> bool {
        self.status != "rejected"
    }
}

/// `POST /sota/vote` body.
#[derive(Clone, Debug, Serialize)]
pub struct SotaVote<'a> {
    pub miner_hotkey: &'a str,
    pub score: f64,
    pub seen_block: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub result_id: &'a str,
}

pub struct RelayClient {
    base: String,
    keypair: Keypair,
    /// Built on first use: a blocking client must not be created (or dropped) inside an
    /// async context, and the daemon builds validators there before handing each one to
    /// its blocking thread.
    http: std::sync::OnceLock<reqwest::blocking::Client>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RelayClient {
    pub fn new(base_url: &str, keypair: Keypair) -> Self {
        RelayClient {
            base: base_url.trim_end_matches('/').to_string(),
            keypair,
            http: std::sync::OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&reqwest::blocking::Client, RelayError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| RelayError::Http(e.to_string()))?;
        Ok(self.http.get_or_init(|| client))
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn signed(&self, req: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        let headers = relay_validator_headers(&self.keypair, unix_now());
        headers
            .pairs()
            .into_iter()
            .fold(req, |r, (name, value)| r.header(name, value))
    }

    fn send(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<serde_json::Value, RelayError> {
        let resp = req.send().map_err(|e| RelayError::Http(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| RelayError::Http(e.to_string()))?;
        if !status.is_success() {
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("detail").map(|d| match d {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
                .unwrap_or(text);
            return Err(RelayError::Status {
                status: status.as_u16(),
                detail,
            });
        }
        serde_json::from_str(&text).map_err(|e| RelayError::Body(e.to_string()))
    }

    /// `GET /results?limit=N` (signed): the raw results, newest first.
    pub fn results(&self, limit: u32) -> Result<Vec<serde_json::Value>, RelayError> {
        let req = self
            .http()?
            .get(format!("{}/results", self.base))
            .query(&[("limit", limit)]);
        match self.send(self.signed(req))? {
            serde_json::Value::Array(items) => Ok(items),
            other => Err(RelayError::Body(format!(
                "/results: expected a list, got {}",
                short(&other.to_string())
            ))),
        }
    }

    /// `GET /sota_threshold` (unsigned).
    pub fn sota_threshold(&self) -> Result<f64, RelayError> {
        let body = self.send(self.http()?.get(format!("{}/sota_threshold", self.base)))?;
        body.get("sota_threshold")
            .and_then(|v| v.as_f64())
            .ok_or_else(|| RelayError::Body("/sota_threshold: no numeric sota_threshold".into()))
    }

    /// The miner of the newest SOTA event (`GET /sota/events?limit=1`, signed).
    pub fn latest_winner(&self) -> Result<Option<String>, RelayError> {
        let req = self
            .http()?
            .get(format!("{}/sota/events", self.base))
            .query(&[("limit", 1)]);
        let body = self.send(self.signed(req))?;
        // The relay answers a list; accept a `{"events": [...]}` wrapper as well.
        let list = body.get("events").unwrap_or(&body);
        Ok(list
            .as_array()
            .and_then(|l| l.first())
            .and_then(|e| e.get("miner_hotkey"))
            .and_then(|h| h.as_str())
            .map(str::to_string))
    }

    /// `POST /sota/vote` (signed).
    pub fn vote(&self, vote: &SotaVote<'_>) -> VoteAnswer {
        let sent = self.http().and_then(|http| {
            let req = http.post(format!("{}/sota/vote", self.base)).json(vote);
            self.send(self.signed(req))
        });
        match sent {
            Ok(body) => {
                let status = body
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or("unknown")
                    .to_string();
                let votes = body.get("votes_for_candidate").and_then(|v| v.as_u64());
                let needed = body.get("votes_needed").and_then(|v| v.as_u64());
                let detail = match (votes, needed) {
                    (Some(v), Some(n)) => format!("{v}/{n} votes"),
                    _ => String::new(),
                };
                VoteAnswer {
                    status,
                    detail,
                    current_sota: body.get("current_sota").and_then(|v| v.as_f64()),
                }
            }
            Err(e) => VoteAnswer::rejected(e),
        }
    }

    /// `POST /blacklist/{miner}` (signed).
    pub fn blacklist(&self, miner_hotkey: &str) -> VoteAnswer {
        let sent = self.http().and_then(|http| {
            let req = http.post(format!("{}/blacklist/{miner_hotkey}", self.base));
            self.send(self.signed(req))
        });
        match sent {
            Ok(body) => VoteAnswer {
                status: body
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or("blacklist vote recorded")
                    .to_string(),
                detail: String::new(),
                current_sota: None,
            },
            Err(e) => VoteAnswer::rejected(e),
        }
    }
}

/// At most 200 characters of `s`, for error messages.
fn short(s: &str) -> String {
    s.chars().take(200).collect()
}
