//! The one client of a relay (relay.md §2), shared by the miner, the validators and the
//! pool's relay link. Blocking: every caller runs it on its own thread.
//!
//! Each request is signed anew as its endpoint requires: miner endpoints (submission,
//! invitation) with `auth:<unix s>`, validator endpoints (results, votes, events) with
//! `<unix s>`, public ones not at all. One identity may use both roles: the miner and the
//! pool read `/results/{miner}` to start from the relay's SOTA program.

use super::client::{detail, short, ClientError};
use super::wire::{
    InviteLink, LimitQuery, LinkAnswer, LinkedCode, PageQuery, PublicEvent, RelayResult,
    ResultsQuery, SotaEvent, SotaEventsPage, SotaThreshold, SotaVote, StatusAnswer, SubmitAccepted,
    SubmitSolution, VoteAnswer,
};
use crate::keys::{relay_miner_headers, relay_validator_headers, Keypair, SignedHeaders};
use reqwest::blocking::{Client, RequestBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

/// Time to open a connection: a relay that does not answer the handshake is down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole request: a relay that hangs is treated like one that fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The relay's SOTA program, as the miner and the pool start from it.
#[derive(Clone, Debug, PartialEq)]
pub struct SotaProgram {
    pub dsl: String,
    /// The score the relay stored with the result.
    pub score: f64,
    /// The hotkey that submitted it.
    pub miner: String,
}

/// Who signs a request.
#[derive(Clone, Copy)]
enum Role {
    Public,
    Miner,
    Validator,
}

/// A relay, as seen by one identity.
pub struct RelayClient {
    base: String,
    keypair: Keypair,
    timeout: Duration,
    /// Built on first use: a blocking client must not be created (or dropped) inside an
    /// async context, and the daemon builds its validators and the pool's link there
    /// before handing them to their threads.
    http: OnceLock<Client>,
}

impl RelayClient {
    /// A client with the default timeouts ([`CONNECT_TIMEOUT`], [`REQUEST_TIMEOUT`]).
    pub fn new(base_url: &str, keypair: Keypair) -> Self {
        RelayClient {
            base: base_url.trim_end_matches('/').to_string(),
            keypair,
            timeout: REQUEST_TIMEOUT,
            http: OnceLock::new(),
        }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        RelayClient { timeout, ..self }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn http(&self) -> Result<&Client, ClientError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(self.timeout))
            .timeout(self.timeout)
            .build()
            .map_err(|e| ClientError::Client(e.to_string()))?;
        Ok(self.http.get_or_init(|| client))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn headers(&self, role: Role) -> Option<SignedHeaders> {
        let now = crate::clock::now_s();
        match role {
            Role::Public => None,
            Role::Miner => Some(relay_miner_headers(&self.keypair, now)),
            Role::Validator => Some(relay_validator_headers(&self.keypair, now)),
        }
    }

    /// Sign `rb` as `role`, send it and read the answer as `T`.
    fn call<T: DeserializeOwned>(
        &self,
        url: String,
        rb: RequestBuilder,
        role: Role,
    ) -> Result<T, ClientError> {
        let rb = match self.headers(role) {
            Some(h) => h.pairs().into_iter().fold(rb, |rb, (k, v)| rb.header(k, v)),
            None => rb,
        };
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let resp = rb.send().map_err(transport)?;
        let status = resp.status();
        let text = resp.text().map_err(transport)?;
        if !status.is_success() {
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                detail: detail(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Body {
            reason: format!("{e} in {}", short(&text)),
            url,
        })
    }

    fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl serde::Serialize,
        role: Role,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let rb = self.http()?.get(&url).query(query);
        self.call(url, rb, role)
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&impl serde::Serialize>,
        role: Role,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut rb = self.http()?.post(&url);
        if let Some(body) = body {
            rb = rb.json(body);
        }
        self.call(url, rb, role)
    }

    // ----- public -----

    /// `GET /sota_threshold`.
    pub fn sota_threshold(&self) -> Result<f64, ClientError> {
        self.get::<SotaThreshold>("/sota_threshold", &(), Role::Public)
            .map(|t| t.sota_threshold)
    }

    /// `GET /sota-events`: one page of SOTA events, newest first.
    pub fn sota_events_page(
        &self,
        page: u32,
        page_size: u32,
    ) -> Result<SotaEventsPage, ClientError> {
        let query = PageQuery {
            page: Some(page.into()),
            page_size: Some(page_size.into()),
        };
        self.get("/sota-events", &query, Role::Public)
    }

    /// The newest SOTA event, if any.
    pub fn latest_sota_event(&self) -> Result<Option<PublicEvent>, ClientError> {
        Ok(self.sota_events_page(1, 1)?.results.into_iter().next())
    }

    // ----- miner -----

    /// `POST /submit_solution`. A refusal is [`ClientError::Status`] with the relay's
    /// reason.
    pub fn submit(&self, body: &SubmitSolution) -> Result<SubmitAccepted, ClientError> {
        self.post("/submit_solution", Some(body), Role::Miner)
    }

    /// `GET /invitation_code/linked`: this identity's code, if one is linked.
    pub fn linked_code(&self) -> Result<Option<String>, ClientError> {
        self.get::<LinkedCode>("/invitation_code/linked", &(), Role::Miner)
            .map(|l| l.data)
    }

    /// `POST /invitation_code/link`: whether the relay linked the code (false: unknown
    /// or used).
    pub fn link_code(&self, link: &InviteLink) -> Result<bool, ClientError> {
        self.post::<LinkAnswer>("/invitation_code/link", Some(link), Role::Miner)
            .map(|a| a.data == 1)
    }

    // ----- validator -----

    /// `GET /results?limit=N`: the results, newest first, as raw JSON. A validator
    /// screens each one on its own (`validator::rules::extract`), so that one malformed
    /// result is skipped and counted rather than hiding the others.
    pub fn results(&self, limit: u32) -> Result<Vec<Value>, ClientError> {
        let query = ResultsQuery {
            limit: Some(limit.into()),
            task_id: None,
        };
        self.get("/results", &query, Role::Validator)
    }

    /// `GET /results/{miner_hotkey}`: that miner's result, if any.
    pub fn result_of(&self, miner_hotkey: &str) -> Result<Option<RelayResult>, ClientError> {
        let list: Vec<RelayResult> =
            self.get(&format!("/results/{miner_hotkey}"), &(), Role::Validator)?;
        Ok(list.into_iter().next())
    }

    /// `GET /sota/events?limit=N`: events, newest window first.
    pub fn sota_events(&self, limit: u32) -> Result<Vec<SotaEvent>, ClientError> {
        let query = LimitQuery {
            limit: Some(limit.into()),
        };
        self.get("/sota/events", &query, Role::Validator)
    }

    /// `POST /sota/vote`.
    pub fn vote(&self, vote: &SotaVote) -> Result<VoteAnswer, ClientError> {
        self.post("/sota/vote", Some(vote), Role::Validator)
    }

    /// `POST /blacklist/{miner_hotkey}`.
    pub fn blacklist(&self, miner_hotkey: &str) -> Result<StatusAnswer, ClientError> {
        self.post(
            &format!("/blacklist/{miner_hotkey}"),
            None::<&()>,
            Role::Validator,
        )
    }

    // ----- both -----

    /// The relay's current SOTA program: the result of the newest SOTA event's miner
    /// (`GET /results/{miner}`, a validator endpoint: a test-mode relay lets every signer
    /// read it, elsewhere this identity must be an allowed validator). `None` when the
    /// relay has no SOTA yet, the miner no result, or its program is for another task
    /// type or input size.
    pub fn sota_program(
        &self,
        task_type: &str,
        input_dim: usize,
    ) -> Result<Option<SotaProgram>, ClientError> {
        let Some(event) = self.latest_sota_event()? else {
            return Ok(None);
        };
        Ok(self
            .result_of(&event.miner_hotkey)?
            .and_then(|result| SotaProgram::of(&result, task_type, input_dim)))
    }
}

impl SotaProgram {
    /// The program of `result` when it is for `task_type` and (if it says) `input_dim`.
    pub fn of(result: &RelayResult, task_type: &str, input_dim: usize) -> Option<SotaProgram> {
        let algorithm = result.algorithm()?;
        let fits = algorithm.get("task_type").and_then(Value::as_str) == Some(task_type)
            && algorithm
                .get("input_dim")
                .and_then(Value::as_u64)
                .map_or(true, |d| d == input_dim as u64);
        let dsl = algorithm.get("algorithm_dsl").and_then(Value::as_str)?;
        fits.then(|| SotaProgram {
            dsl: dsl.to_string(),
            score: result.score,
            miner: result.miner_hotkey.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(algorithm: &str) -> RelayResult {
        RelayResult {
            id: "i".into(),
            miner_hotkey: "m".into(),
            task_id: "t".into(),
            algorithm_result: algorithm.into(),
            score: 0.5,
            timestamp: String::new(),
            validator_verified: None,
            signature: String::new(),
            timestamp_message: String::new(),
            coldkey_address: None,
        }
    }

    fn program_fitting(r: &RelayResult, task_type: &str, input_dim: usize) -> Option<String> {
        SotaProgram::of(r, task_type, input_dim).map(|p| p.dsl)
    }

    #[test]
    fn a_program_fits_its_task_and_input_size() {
        let r = result(r#"{"task_type":"scalar_linear","input_dim":4,"algorithm_dsl":"P"}"#);
        assert_eq!(
            program_fitting(&r, "scalar_linear", 4).as_deref(),
            Some("P")
        );
        assert_eq!(program_fitting(&r, "scalar_linear", 8), None);
        assert_eq!(program_fitting(&r, "cifar10_binary", 4), None);
        // No input size: any fits.
        let r = result(r#"{"task_type":"scalar_linear","algorithm_dsl":"P"}"#);
        assert_eq!(
            program_fitting(&r, "scalar_linear", 8).as_deref(),
            Some("P")
        );
        assert_eq!(
            program_fitting(&result("not json"), "scalar_linear", 8),
            None
        );
        assert_eq!(
            program_fitting(
                &result(r#"{"task_type":"scalar_linear"}"#),
                "scalar_linear",
                8
            ),
            None
        );
    }
}
