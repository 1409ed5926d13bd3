//! The miner's side of the relay protocol (relay.md §2–3): SOTA threshold, invitation
//! linking, signed submissions. Blocking HTTP: it runs on the miner's own thread.

use crate::keys::{relay_miner_headers, Keypair};
use serde_json::{json, Value};
use std::time::Duration;

/// What the relay said to a submission.
#[derive(Clone, Debug, PartialEq)]
pub enum SubmitOutcome {
    Accepted {
        result_id: String,
    },
    /// Refused: HTTP status and the relay's `detail`.
    Rejected {
        status: u16,
        reason: String,
    },
}

/// A relay, as seen by one miner identity.
pub struct RelayClient {
    base: String,
    http: reqwest::blocking::Client,
    keypair: Keypair,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `detail` of an error body, else the body text.
fn detail(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("detail").map(|d| match d {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .unwrap_or_else(|| text.chars().take(300).collect())
}

impl RelayClient {
    pub fn new(base: &str, keypair: Keypair) -> Result<Self, String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(RelayClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            keypair,
        })
    }

    fn signed(&self, rb: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        let headers = relay_miner_headers(&self.keypair, unix_now());
        headers
            .pairs()
            .into_iter()
            .fold(rb, |rb, (k, v)| rb.header(k, v))
    }

    /// `GET /sota_threshold`.
    pub fn sota_threshold(&self) -> Result<f64, String> {
        let r = self
            .http
            .get(format!("{}/sota_threshold", self.base))
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", detail(&text)));
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("sota_threshold").and_then(Value::as_f64))
            .ok_or_else(|| format!("unexpected /sota_threshold answer: {text}"))
    }

    /// Make sure an invitation code is linked (relay.md: needed outside test mode):
    /// already linked → nothing; else link `code`. Returns a line for the run's log.
    pub fn ensure_invitation(&self, code: Option<&str>) -> Result<String, String> {
        let r = self
            .signed(
                self.http
                    .get(format!("{}/invitation_code/linked", self.base)),
            )
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "invitation check: HTTP {status}: {}",
                detail(&text)
            ));
        }
        let linked = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("data").and_then(Value::as_str).map(str::to_string));
        if let Some(code) = linked {
            return Ok(format!("invitation code {code} is linked"));
        }
        let Some(code) = code else {
            return Err(
                "no invitation code is linked and [miner] invite_code is not set; \
                 the relay will refuse submissions"
                    .into(),
            );
        };
        let r = self
            .signed(
                self.http
                    .post(format!("{}/invitation_code/link", self.base)),
            )
            .json(&json!({ "code": code }))
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().map_err(|e| e.to_string())?;
        let linked = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("data").and_then(Value::as_i64));
        match (status.is_success(), linked) {
            (true, Some(1)) => Ok(format!("linked invitation code {code}")),
            (true, _) => Err(format!(
                "the relay did not accept invitation code {code} (unknown or used)"
            )),
            (false, _) => Err(format!("invitation link: HTTP {status}: {}", detail(&text))),
        }
    }

    /// `POST /submit_solution` with the miner's signed headers.
    pub fn submit(&self, body: &Value) -> Result<SubmitOutcome, String> {
        let r = self
            .signed(self.http.post(format!("{}/submit_solution", self.base)))
            .json(body)
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().map_err(|e| e.to_string())?;
        if status.is_success() {
            let result_id = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("result_id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            Ok(SubmitOutcome::Accepted { result_id })
        } else {
            Ok(SubmitOutcome::Rejected {
                status: status.as_u16(),
                reason: detail(&text),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::detail;

    #[test]
    fn relay_error_details() {
        assert_eq!(
            detail(r#"{"detail":"score is required"}"#),
            "score is required"
        );
        assert_eq!(detail("plain"), "plain");
    }
}
