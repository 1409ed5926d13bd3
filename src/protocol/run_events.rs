//! The run events a miner reports to a sidecar (`POST /ingest_batch`, sidecar-miner.md
//! §1.2), their validation, and the log lines the sidecar makes of them.
//!
//! Shared wire format: the sidecar parses and stores these events, and the in-daemon
//! miner writes the same values through its event sink, so both follow one rule.

use serde_json::{Map, Value};

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
        worker_id: Option<String>,
        body: Map<String, Value>,
    },
    /// `done` without a worker stops the run; with one it only logs.
    Done { worker_id: Option<String> },
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
        "population" => Event::Population {
            worker_id: worker_id(obj, false, at).ok().flatten(),
            body: obj.clone(),
        },
        "done" => Event::Done {
            worker_id: worker_id(obj, false, at)?,
        },
        // The reference logs an error's traceback (its message when there is none).
        "error" => Event::Error {
            worker_id: worker_id(obj, false, at)?,
            message: match obj.get("traceback") {
                Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
                _ => message(),
            },
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

/// `[population] w{wid} iter {it} pop_size={n}`, each part present when the event has it:
/// the size is `pop_size`, or else the length of `population`.
pub fn population_line(worker_id: Option<&str>, body: &Map<String, Value>) -> String {
    let mut line = String::from("[population]");
    if let Some(w) = worker_id {
        line += &format!(" w{w}");
    }
    if let Some(it) = body.get("iteration").and_then(Value::as_u64) {
        line += &format!(" iter {it}");
    }
    let size = match (body.get("pop_size"), body.get("population")) {
        (Some(Value::Number(n)), _) => Some(n.to_string()),
        (_, Some(Value::Array(a))) => Some(a.len().to_string()),
        _ => None,
    };
    line += &format!(" pop_size={}", size.as_deref().unwrap_or("n/a"));
    line
}

/// `[job] {job_id} -> completed|failed`, when a job's result arrives.
pub fn job_line(job_id: &str, status: &str) -> String {
    format!("[job] {job_id} -> {status}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let pop = |v: Value| match parse_event(&v, "e").unwrap() {
            Event::Population { worker_id, body } => population_line(worker_id.as_deref(), &body),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            pop(
                json!({"type": "population", "worker_id": 0, "iteration": 5, "population": [1, 2, 3]})
            ),
            "[population] w0 iter 5 pop_size=3"
        );
        assert_eq!(
            pop(json!({"type": "population", "pop_size": 100, "population": []})),
            "[population] pop_size=100"
        );
        assert_eq!(
            pop(json!({"type": "population"})),
            "[population] pop_size=n/a"
        );
        assert_eq!(job_line("j1", "failed"), "[job] j1 -> failed");
    }

    #[test]
    fn an_error_logs_its_traceback() {
        let e = |v: Value| match parse_event(&v, "e").unwrap() {
            Event::Error { message, .. } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e(
                json!({"type": "error", "message": "boom", "traceback": "Traceback ...\nValueError: boom"})
            ),
            "Traceback ...\nValueError: boom"
        );
        assert_eq!(e(json!({"type": "error", "message": "boom"})), "boom");
    }
}
