//! Whether the daemon is healthy, and why not: one pure rule ([`assess`]) over what the
//! store's guard knows (free space against the watermark, a failed store) and which
//! background work has stopped while the daemon runs. Every listener's `/health`, the
//! relay's `/admin/status`, `/metrics` and the dashboard's header show its answer.

use crate::store::{GuardState, Store};
use parking_lot::Mutex;
use serde::Serialize;

/// The verdict: `healthy`, or `degraded` with the reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub status: &'static str,
    pub reasons: Vec<String>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }

    /// `/health` answers 200 when healthy, 503 when degraded (a load balancer or
    /// supervisor probing it then sees the problem without parsing the body).
    pub fn http_status(&self) -> u16 {
        if self.healthy() {
            200
        } else {
            503
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// The rule: every problem is a reason; no reason is healthy.
pub fn assess(store: &GuardState, stopped: &[&str]) -> Report {
    let mut reasons = Vec::new();
    if let Some(why) = &store.failed {
        reasons.push(format!("store failed: {why}"));
    }
    if store.low_space {
        reasons.push(format!(
            "low disk: the data directory {} has {} free, below the {} watermark; writes are refused",
            store.data_dir,
            mb(store.free_bytes.unwrap_or(0)),
            mb(store.min_free_bytes)
        ));
    }
    for work in stopped {
        reasons.push(format!("background work stopped: {work}"));
    }
    Report {
        status: if reasons.is_empty() {
            "healthy"
        } else {
            "degraded"
        },
        reasons,
    }
}

/// What the daemon's health is computed from, shared by every service.
pub struct Monitor {
    store: Store,
    /// Background work that ended while the daemon was running (set by the daemon).
    stopped: Mutex<Vec<&'static str>>,
}

impl Monitor {
    pub fn new(store: Store) -> Monitor {
        Monitor {
            store,
            stopped: Mutex::new(Vec::new()),
        }
    }

    pub fn set_stopped(&self, names: Vec<&'static str>) {
        *self.stopped.lock() = names;
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The daemon's health now.
    pub fn report(&self) -> Report {
        assess(&self.store.guard_state(), &self.stopped.lock())
    }
}

/// A listener's `/health` answer: `body` (its own shape, with the verdict's `status`
/// and `reasons`) as JSON, 200 or 503.
pub fn response(report: &Report, body: serde_json::Value) -> poem::Response {
    let status = poem::http::StatusCode::from_u16(report.http_status())
        .unwrap_or(poem::http::StatusCode::OK);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    poem::Response::builder()
        .status(status)
        .content_type("application/json")
        .body(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> GuardState {
        GuardState {
            data_dir: "/data".into(),
            free_bytes: Some(5 << 20),
            min_free_bytes: 1 << 20,
            low_space: false,
            failed: None,
        }
    }

    #[test]
    fn healthy_only_without_reasons() {
        let r = assess(&guard(), &[]);
        assert_eq!((r.status, r.http_status()), ("healthy", 200));
        assert!(r.reasons.is_empty());
    }

    #[test]
    fn each_problem_is_a_reason_and_a_503() {
        let low = GuardState {
            free_bytes: Some(1 << 19),
            low_space: true,
            ..guard()
        };
        let r = assess(&low, &[]);
        assert_eq!((r.status, r.http_status()), ("degraded", 503));
        assert!(
            r.reasons[0].contains("/data has 0.5 MB free, below the 1.0 MB"),
            "{r:?}"
        );

        let failed = GuardState {
            failed: Some("flush failed".into()),
            ..guard()
        };
        let r = assess(&failed, &["relay pruning"]);
        assert_eq!(r.reasons.len(), 2, "{r:?}");
        assert!(r.reasons[0].starts_with("store failed: flush failed"));
        assert_eq!(r.reasons[1], "background work stopped: relay pruning");
    }
}
