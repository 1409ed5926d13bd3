//! The sidecar's rules as pure functions over plain data (sidecar-miner.md §1): cursor
//! pages over rolling stores, ingest-event parsing and the log lines they produce, job
//! lease expiry and re-queue order. The store and the HTTP handlers are thin around these.

use serde_json::{Map, Value};

/// The four rolling stores of a run, each with its own increasing `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Logs,
    Candidates,
    Populations,
    JobResults,
}

impl Stream {
    /// How many items a run retains; older ones roll out.
    pub fn cap(self) -> u64 {
        match self {
            Stream::Logs => 5000,
            Stream::Candidates => 2000,
            Stream::Populations => 200,
            Stream::JobResults => 2000,
        }
    }

    /// Largest page a client may ask for.
    pub fn max_limit(self) -> u64 {
        match self {
            Stream::Populations => 50,
            _ => 500,
        }
    }

    /// Page size when the client names none.
    pub fn default_limit(self) -> u64 {
        match self {
            Stream::Populations => 50,
            _ => 200,
        }
    }

    /// Position in the per-run counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The store tree holding this stream's items.
    pub fn tree(self) -> &'static str {
        match self {
            Stream::Logs => "sidecar.logs",
            Stream::Candidates => "sidecar.candidates",
            Stream::Populations => "sidecar.populations",
            Stream::JobResults => "sidecar.job_results",
        }
    }
}

/// At most this many jobs per run; the oldest finished ones are pruned first.
pub const MAX_JOBS: usize = 2000;

/// Which retained items a cursor page returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Seq of the first item returned.
    pub start: u64,
    /// Number of items returned.
    pub count: u64,
    /// The cursor the client sends next.
    pub next_cursor: u64,
}

/// The cursor rule: over retained items `base..base+len`, start at
/// `clamp(cursor − base, 0, len)` and return up to `limit`; the next cursor is the last
/// returned seq + 1, or `base + idx` when nothing is returned. A cursor below `base`
/// (items rolled out) silently starts at the oldest retained item.
pub fn page(base: u64, len: u64, cursor: u64, limit: u64) -> Page {
    let idx = cursor.saturating_sub(base).min(len);
    let count = limit.min(len - idx);
    Page {
        start: base + idx,
        count,
        next_cursor: base + idx + count,
    }
}

/// How many of the oldest items must roll out after `len` items are retained.
pub fn overflow(len: u64, cap: u64) -> u64 {
    len.saturating_sub(cap)
}

/// One ingest event, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Progress {
        worker_id: String,
        iteration: u64,
        rate: Option<f64>,
        engine_best: Option<f64>,
        pop_best: Option<f64>,
    },
    Candidate {
        worker_id: String,
        iteration: u64,
        /// `validator_score`, the verified score.
        verified: Option<f64>,
        /// `eval_score`, the miner's own fitness.
        eval: Option<f64>,
        /// The event as sent (stored as the candidate item).
        body: Map<String, Value>,
    },
    Population {
        body: Map<String, Value>,
    },
    /// `done` without a worker stops the run; with one it only logs.
    Done {
        worker_id: Option<String>,
    },
    Error {
        worker_id: Option<String>,
        message: String,
    },
    /// `log` and every unknown type: its `message`, or its JSON.
    Log {
        worker_id: Option<String>,
        message: String,
    },
}

/// A worker id as text: ids are strings or integers on the wire.
fn worker_id(obj: &Map<String, Value>, required: bool, at: &str) -> Result<Option<String>, String> {
    match obj.get("worker_id") {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        None | Some(Value::Null) => Err(format!("{at}.worker_id is required")),
        Some(_) => Err(format!(
            "{at}.worker_id must be a non-empty string or an integer"
        )),
    }
}

fn iteration(obj: &Map<String, Value>, at: &str) -> Result<u64, String> {
    match obj.get("iteration") {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("{at}.iteration must be a non-negative integer")),
        None => Err(format!("{at}.iteration is required")),
    }
}

/// An optional finite number (`null` and absent are `None`).
fn number(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<f64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => Ok(Some(f)),
            _ => Err(format!("{at}.{key} must be a finite number")),
        },
        Some(_) => Err(format!("{at}.{key} must be a number or null")),
    }
}

/// Validate one event (`at` names it in messages, e.g. `events[3]`).
pub fn parse_event(value: &Value, at: &str) -> Result<Event, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{at} must be an object"))?;
    let kind = match obj.get("type") {
        None | Some(Value::Null) => "log",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(format!("{at}.type must be a string")),
    };
    let message = || match obj.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => Value::Object(obj.clone()).to_string(),
    };
    Ok(match kind {
        "progress" => Event::Progress {
            worker_id: worker_id(obj, true, at)?.unwrap_or_default(),
            iteration: iteration(obj, at)?,
            rate: number(obj, "rate", at)?,
            engine_best: number(obj, "engine_best", at)?,
            pop_best: number(obj, "pop_best", at)?,
        },
        "candidate" => {
            let worker_id = worker_id(obj, true, at)?.unwrap_or_default();
            let iteration = iteration(obj, at)?;
            let verified = number(obj, "validator_score", at)?;
            let eval = number(obj, "eval_score", at)?;
            if let Some(v) = obj.get("algorithm_dsl") {
                if !v.is_string() {
                    return Err(format!("{at}.algorithm_dsl must be a string"));
                }
            }
            Event::Candidate {
                worker_id,
                iteration,
                verified,
                eval,
                body: obj.clone(),
            }
        }
        "population" => Event::Population { body: obj.clone() },
        "done" => Event::Done {
            worker_id: worker_id(obj, false, at)?,
        },
        "error" => Event::Error {
            worker_id: worker_id(obj, false, at)?,
            message: message(),
        },
        _ => Event::Log {
            worker_id: worker_id(obj, false, at).ok().flatten(),
            message: message(),
        },
    })
}

/// Validate an ingest body: `{"run_id": str, "events": [...]}`. Events that are not
/// JSON objects are skipped, as the reference does; nothing is applied unless every
/// object event is valid, so a bad batch never half-lands.
pub fn parse_ingest(body: &Value) -> Result<(String, Vec<Event>), String> {
    let obj = body
        .as_object()
        .ok_or("body must be a JSON object with run_id and events")?;
    let run_id = match obj.get("run_id") {
        Some(Value::String(s)) => check_run_id(s)?,
        Some(Value::Number(n)) => check_run_id(&n.to_string())?,
        None | Some(Value::Null) => return Err("run_id is required".into()),
        Some(_) => return Err("run_id must be a string".into()),
    };
    let events = match obj.get("events") {
        Some(Value::Array(a)) => a,
        None => return Err("events is required".into()),
        Some(_) => return Err("events must be a list".into()),
    };
    let events = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_object())
        .map(|(i, e)| parse_event(e, &format!("events[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((run_id, events))
}

/// Run ids are keys in the store: 1..=128 printable characters, not all blank (the
/// reference refuses a blank id).
pub fn check_run_id(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
        return Err("run_id must be 1 to 128 printable characters, not all blank".into());
    }
    Ok(s.to_string())
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.6}"))
}

/// `[w{wid}] Iter {it:04}: engine_best=… pop_best=… rate=…`.
pub fn progress_line(
    worker_id: &str,
    iteration: u64,
    engine_best: Option<f64>,
    pop_best: Option<f64>,
    rate: Option<f64>,
) -> String {
    let rate = rate.map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}"));
    format!(
        "[w{worker_id}] Iter {iteration:04}: engine_best={} pop_best={} rate={rate}",
        opt(engine_best),
        opt(pop_best)
    )
}

/// `[candidate] w{wid} iter {it}: verified_score={:.6}`.
pub fn candidate_line(worker_id: &str, iteration: u64, verified: Option<f64>) -> String {
    format!(
        "[candidate] w{worker_id} iter {iteration}: verified_score={}",
        opt(verified)
    )
}

/// Statuses of `/submission_result` that count as a successful submission.
pub fn is_success(status: &str) -> bool {
    matches!(status, "submitted" | "accepted" | "success")
}

/// A job's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Leased,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Leased => "leased",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }
}

/// Queue positions: new jobs go to the back (increasing keys from the middle of the
/// `u64` range), expired leases to the front (decreasing keys), so key order is queue
/// order without renumbering anything.
pub const QUEUE_MIDDLE: u64 = 1 << 63;

/// The leased jobs whose lease expired at `now`, in the order they must return to the
/// front of the queue: each is pushed to the front in turn, so the job that was first in
/// line is pushed last and leads the queue again. Input: `(queue position, lease expiry)`.
pub fn requeue_order(leased: &[(u64, f64)], now: f64) -> Vec<usize> {
    let mut expired: Vec<usize> = (0..leased.len()).filter(|&i| leased[i].1 <= now).collect();
    expired.sort_by(|&a, &b| leased[b].0.cmp(&leased[a].0));
    expired
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursor_rule() {
        // Retained seqs 10..15.
        assert_eq!(
            page(10, 5, 0, 200),
            Page {
                start: 10,
                count: 5,
                next_cursor: 15
            }
        );
        assert_eq!(page(10, 5, 12, 2).start, 12);
        assert_eq!(page(10, 5, 12, 2).next_cursor, 14);
        // Beyond the end: nothing, cursor stays at the end.
        assert_eq!(
            page(10, 5, 99, 10),
            Page {
                start: 15,
                count: 0,
                next_cursor: 15
            }
        );
        // Nothing retained.
        assert_eq!(page(0, 0, 7, 10).next_cursor, 0);
        assert_eq!(overflow(5001, 5000), 1);
        assert_eq!(overflow(10, 5000), 0);
    }

    #[test]
    fn events_parse_or_explain() {
        let p = parse_event(
            &json!({"type":"progress","worker_id":1,"iteration":7,"rate":2.5}),
            "e",
        )
        .unwrap();
        assert!(
            matches!(p, Event::Progress { ref worker_id, iteration: 7, .. } if worker_id == "1")
        );
        assert_eq!(
            parse_event(&json!({"type":"progress","iteration":1}), "e").unwrap_err(),
            "e.worker_id is required"
        );
        assert_eq!(
            parse_event(
                &json!({"type":"progress","worker_id":0,"iteration":-1}),
                "e"
            )
            .unwrap_err(),
            "e.iteration must be a non-negative integer"
        );
        assert!(parse_event(&json!([1]), "e").is_err());
        assert!(matches!(
            parse_event(&json!({"message":"hi"}), "e").unwrap(),
            Event::Log { ref message, .. } if message == "hi"
        ));
        assert!(matches!(
            parse_event(&json!({"type":"weird","x":1}), "e").unwrap(),
            Event::Log { ref message, .. } if message.contains("\"x\":1")
        ));
        assert!(matches!(
            parse_event(&json!({"type":"done"}), "e").unwrap(),
            Event::Done { worker_id: None }
        ));
        assert_eq!(
            parse_ingest(&json!({"run_id":"r","events":{}})).unwrap_err(),
            "events must be a list"
        );
        assert_eq!(
            parse_ingest(&json!({"events":[]})).unwrap_err(),
            "run_id is required"
        );
        assert!(parse_ingest(&json!({"run_id":"r","events":[{"type":"candidate"}]})).is_err());
        // Non-object events are skipped, not refused; a blank run id is refused.
        let (_, events) =
            parse_ingest(&json!({"run_id":"r","events":[1, "x", null, [], {"message":"m"}]}))
                .unwrap();
        assert_eq!(events.len(), 1);
        assert!(parse_ingest(&json!({"run_id":"  ","events":[]})).is_err());
    }

    #[test]
    fn log_lines() {
        assert_eq!(
            progress_line("0", 42, Some(0.5), None, Some(1234.567)),
            "[w0] Iter 0042: engine_best=0.500000 pop_best=n/a rate=1234.57"
        );
        assert_eq!(
            candidate_line("1", 300, Some(0.93)),
            "[candidate] w1 iter 300: verified_score=0.930000"
        );
    }

    #[test]
    fn expired_leases_return_in_original_order() {
        // Positions 5 and 3 expired, 4 did not; pushing 5 then 3 to the front leaves 3 first.
        let leased = [(5, 10.0), (4, 99.0), (3, 9.0)];
        assert_eq!(requeue_order(&leased, 20.0), vec![0, 2]);
        assert!(requeue_order(&leased, 1.0).is_empty());
    }
}
