//! The miner's side of the relay protocol (relay.md §2–3): SOTA threshold, invitation
//! linking, signed submissions. Blocking HTTP: it runs on the miner's own thread.

use crate::keys::{relay_miner_headers, relay_validator_headers, Keypair};
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

/// The relay's SOTA program.
#[derive(Clone, Debug, PartialEq)]
pub struct Sota {
    pub dsl: String,
    pub score: Option<f64>,
    /// The hotkey that submitted it.
    pub miner: String,
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

    /// `GET` a JSON answer; an error names the status and the relay's `detail`.
    fn get_json(&self, rb: reqwest::blocking::RequestBuilder) -> Result<Value, String> {
        let r = rb.send().map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", detail(&text)));
        }
        serde_json::from_str(&text).map_err(|_| format!("unexpected answer: {text}"))
    }

    /// The program behind the relay's current SOTA, as the pool seeds from it: the
    /// latest SOTA event names its miner, whose result (`GET /results/{miner}`) holds
    /// the program. That endpoint is for validators: a test-mode relay lets every
    /// signer read it, elsewhere the miner's hotkey must be an allowed validator.
    /// `None` when the relay has no SOTA yet or its program is for another task type
    /// or input size.
    pub fn sota_program(&self, task_type: &str, input_dim: usize) -> Result<Option<Sota>, String> {
        let events = self.get_json(
            self.http
                .get(format!("{}/sota-events?page=1&page_size=1", self.base)),
        )?;
        let Some(miner) = events["results"][0]["miner_hotkey"].as_str() else {
            return Ok(None);
        };
        let headers = relay_validator_headers(&self.keypair, unix_now());
        let rb = headers.pairs().into_iter().fold(
            self.http.get(format!("{}/results/{miner}", self.base)),
            |rb, (k, v)| rb.header(k, v),
        );
        let results = self.get_json(rb)?;
        let Some(result) = results.as_array().and_then(|r| r.first()) else {
            return Ok(None);
        };
        let algorithm: Value = match &result["algorithm_result"] {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            other => other.clone(),
        };
        let fits = algorithm["task_type"].as_str() == Some(task_type)
            && algorithm["input_dim"]
                .as_u64()
                .map_or(true, |d| d as usize == input_dim);
        let (Some(dsl), true) = (algorithm["algorithm_dsl"].as_str(), fits) else {
            return Ok(None);
        };
        Ok(Some(Sota {
            dsl: dsl.to_string(),
            score: result["score"]
                .as_f64()
                .or(events["results"][0]["score"].as_f64()),
            miner: miner.to_string(),
        }))
    }

    /// `GET /sota_threshold`.
    pub fn sota_threshold(&self) -> Result<f64, String> {
        let v = self.get_json(self.http.get(format!("{}/sota_threshold", self.base)))?;
        v.get("sota_threshold")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("unexpected /sota_threshold answer: {v}"))
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
