//! The sidecar job queue from the client side: a small blocking HTTP client and the
//! worker loop (`GET /jobs/next` → [`Jobs::execute`] → `POST /jobs/{id}/result`) that the
//! coordinator's threads and `bitsota worker` share.

use crate::jobs::Jobs;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a worker holds a job before the sidecar hands it to someone else.
pub const JOB_LEASE_S: u64 = 600;
/// Pause when the queue is empty.
const IDLE: Duration = Duration::from_millis(250);
/// Pause after a failed request (the reference's transient retry interval).
pub const RETRY: Duration = Duration::from_secs(2);

pub use crate::protocol::client::{read_json, ClientError};

/// A job handed out by `GET /jobs/next`.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub kind: String,
    pub payload: Value,
}

/// A blocking client of one sidecar's job queue.
#[derive(Clone)]
pub struct SidecarClient {
    base: String,
    http: reqwest::blocking::Client,
}

impl SidecarClient {
    pub fn new(base: &str) -> Self {
        SidecarClient {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        read_json(&url, self.http.post(&url).json(body).send())
    }

    /// `POST /jobs/enqueue`; returns the job id.
    pub fn enqueue(
        &self,
        run_id: &str,
        job_id: &str,
        kind: &str,
        payload: &Value,
    ) -> Result<String, ClientError> {
        let body = json!({"run_id": run_id, "job_id": job_id, "kind": kind, "payload": payload});
        let (_, v) = self.post("/jobs/enqueue", &body)?;
        Ok(v["job_id"].as_str().unwrap_or(job_id).to_string())
    }

    /// `GET /jobs/next`: a leased job, or `None` (204).
    pub fn next_job(&self, run_id: &str, worker_id: &str) -> Result<Option<Job>, ClientError> {
        let url = format!("{}/jobs/next", self.base);
        let lease = JOB_LEASE_S.to_string();
        let req = self.http.get(&url).query(&[
            ("run_id", run_id),
            ("worker_id", worker_id),
            ("lease_seconds", lease.as_str()),
        ]);
        let (status, v) = read_json(&url, req.send())?;
        if status == 204 {
            return Ok(None);
        }
        let job = &v["job"];
        let job_id = job["job_id"].as_str().ok_or_else(|| ClientError::Status {
            url: url.clone(),
            status,
            detail: format!("job without job_id: {v}"),
        })?;
        Ok(Some(Job {
            job_id: job_id.to_string(),
            kind: job["kind"].as_str().unwrap_or_default().to_string(),
            payload: job["payload"].clone(),
        }))
    }

    /// `POST /jobs/{job_id}/result`.
    pub fn post_result(
        &self,
        run_id: &str,
        job_id: &str,
        outcome: &Result<Value, String>,
    ) -> Result<(), ClientError> {
        let body = match outcome {
            Ok(result) => json!({"run_id": run_id, "status": "ok", "result": result}),
            Err(e) => json!({"run_id": run_id, "status": "error", "result": {}, "error": e}),
        };
        self.post(&format!("/jobs/{job_id}/result"), &body)
            .map(|_| ())
    }

    /// Append a log line to the run (`POST /ingest_batch`).
    pub fn log(&self, run_id: &str, message: &str) -> Result<(), ClientError> {
        let body = json!({"run_id": run_id, "events": [{"type": "log", "message": message}]});
        self.post("/ingest_batch", &body).map(|_| ())
    }

    /// `GET /jobs/results`: result events from `cursor`; returns the next cursor.
    pub fn results(&self, run_id: &str, cursor: u64) -> Result<(u64, Vec<Value>), ClientError> {
        let url = format!("{}/jobs/results", self.base);
        let c = cursor.to_string();
        let req = self.http.get(&url).query(&[
            ("run_id", run_id),
            ("cursor", c.as_str()),
            ("limit", "500"),
        ]);
        let (_, v) = read_json(&url, req.send())?;
        let next = v["cursor"].as_u64().unwrap_or(cursor);
        let items = v["items"].as_array().cloned().unwrap_or_default();
        Ok((next, items))
    }
}

/// Sleep up to `d`, waking early when `stop` is set; returns whether to keep going.
pub fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
    !stop.load(Ordering::Relaxed)
}

/// Pull and run jobs of `run_id` until `stop`. Results are posted back with retries
/// every [`RETRY`] while the failure is transient.
pub fn run_worker(
    client: &SidecarClient,
    jobs: &Jobs,
    run_id: &str,
    worker_id: &str,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let job = match client.next_job(run_id, worker_id) {
            Ok(Some(job)) => job,
            Ok(None) => {
                pause(IDLE, stop);
                continue;
            }
            Err(e) => {
                tracing::warn!(worker = worker_id, error = %e, "[worker] cannot fetch a job");
                pause(RETRY, stop);
                continue;
            }
        };
        let started = std::time::Instant::now();
        let outcome = jobs
            .execute(&job.kind, &job.payload, stop)
            .map_err(|e| e.to_string());
        tracing::info!(
            worker = worker_id,
            job_id = %job.job_id,
            kind = %job.kind,
            ok = outcome.is_ok(),
            seconds = started.elapsed().as_secs_f64(),
            "[worker] job done"
        );
        loop {
            match client.post_result(run_id, &job.job_id, &outcome) {
                Ok(()) => break,
                Err(e) if e.is_transient() && pause(RETRY, stop) => {
                    tracing::warn!(error = %e, "[worker] posting the result failed; retrying")
                }
                Err(e) => {
                    tracing::warn!(error = %e, job_id = %job.job_id, "[worker] result dropped");
                    break;
                }
            }
        }
    }
}
