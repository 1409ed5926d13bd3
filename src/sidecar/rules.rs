//! The sidecar's rules as pure functions over plain data (sidecar-miner.md §1): cursor
//! pages over rolling stores, submission statuses, job lease expiry and re-queue order.
//! (The ingest events themselves are a wire format: `protocol::run_events`.) The store and the HTTP handlers are thin around these.

/// The four rolling stores of a run, each with its own increasing `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Logs,
    Candidates,
    Populations,
    JobResults,
}

impl Stream {
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

/// How many items of each rolling store, and how many jobs, one run keeps (`[store]
/// max_run_*`): past a stream's cap its oldest items roll out; past the jobs cap the
/// oldest finished jobs are pruned, and a queue of that many unfinished jobs is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub logs: u64,
    pub candidates: u64,
    pub populations: u64,
    pub job_results: u64,
    pub jobs: u64,
}

impl Caps {
    /// The reference sidecar's rolling caps.
    pub const REFERENCE: Caps = Caps {
        logs: 5000,
        candidates: 2000,
        populations: 200,
        job_results: 2000,
        jobs: 2000,
    };

    /// The caps `[store]` configures.
    pub fn from_config(c: &crate::config::StoreConfig) -> Caps {
        Caps {
            logs: c.max_run_logs,
            candidates: c.max_run_candidates,
            populations: c.max_run_populations,
            job_results: c.max_run_job_results,
            jobs: c.max_run_jobs,
        }
    }

    /// How many items of `stream` a run retains; older ones roll out.
    pub fn of(&self, stream: Stream) -> u64 {
        match stream {
            Stream::Logs => self.logs,
            Stream::Candidates => self.candidates,
            Stream::Populations => self.populations,
            Stream::JobResults => self.job_results,
        }
    }
}

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
    fn expired_leases_return_in_original_order() {
        // Positions 5 and 3 expired, 4 did not; pushing 5 then 3 to the front leaves 3 first.
        let leased = [(5, 10.0), (4, 99.0), (3, 9.0)];
        assert_eq!(requeue_order(&leased, 20.0), vec![0, 2]);
        assert!(requeue_order(&leased, 1.0).is_empty());
    }
}
