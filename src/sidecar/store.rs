//! Persistent run state (sidecar-miner.md §1): runs, the four rolling stores, and the
//! job queue, in sled trees so that a restart loses nothing a user cares about.
//!
//! Keys are `<run_id> 0x00 <u64 big-endian>` so one run's items are one ordered prefix.
//! Every write goes through one mutex: counters, caps and queue moves stay consistent
//! without multi-tree transactions, and writes are short (no I/O but sled's own).

use super::rules::{self, Caps, JobStatus, Stream, QUEUE_MIDDLE};
use crate::clock::now_f64;
use crate::protocol::run_events::{self, Event};
use crate::store::{Store, StoreError, TypedTree};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// What a sidecar operation can fail with; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 400.
    #[error("{0}")]
    BadInput(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 429.
    #[error("{0}")]
    Full(String),
    /// 503: a part of the appliance this request needs is not available.
    #[error("{0}")]
    Unavailable(String),
}

/// One worker's last report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerStat {
    pub worker_id: String,
    pub iteration: u64,
    pub rate: Option<f64>,
    pub updated_at_s: f64,
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// `running` or `stopped` (`idle` is only ever reported for unknown runs).
    pub status: String,
    pub global_sota: Option<f64>,
    pub local_sota: Option<f64>,
    pub successful_submissions: u64,
    pub best_candidate_score: Option<f64>,
    pub workers: Vec<WorkerStat>,
    pub created_at_s: f64,
    pub updated_at_s: f64,
    /// Per stream: first retained seq and next seq.
    pub base_seq: [u64; 4],
    pub next_seq: [u64; 4],
    /// Queue positions for the next job at the front / back.
    pub queue_front: u64,
    pub queue_back: u64,
    /// Finished jobs so far (orders pruning).
    pub finished_counter: u64,
    /// Jobs stored for this run (pruning only scans when it reaches the cap).
    pub job_count: u64,
}

impl RunRecord {
    fn new(run_id: String, now: f64) -> Self {
        RunRecord {
            run_id,
            status: "running".into(),
            global_sota: None,
            local_sota: None,
            successful_submissions: 0,
            best_candidate_score: None,
            workers: Vec::new(),
            created_at_s: now,
            updated_at_s: now,
            base_seq: [0; 4],
            next_seq: [0; 4],
            queue_front: QUEUE_MIDDLE - 1,
            queue_back: QUEUE_MIDDLE,
            finished_counter: 0,
            job_count: 0,
        }
    }
}

/// A job as stored (`payload`/`result` are JSON text: the store cannot hold JSON values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct JobRecord {
    job_id: String,
    kind: String,
    payload: String,
    status: JobStatus,
    worker_id: Option<String>,
    lease_expires_at_s: Option<f64>,
    attempts: u32,
    /// Position in the queue while queued.
    position: u64,
    /// Order of finishing (pruning removes the smallest first).
    finished_order: Option<u64>,
    result: Option<String>,
    error: Option<String>,
    created_at_s: f64,
    updated_at_s: f64,
}

impl JobRecord {
    fn view(&self, run_id: &str) -> Value {
        let parse = |s: &Option<String>| {
            s.as_deref()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
                .unwrap_or(Value::Null)
        };
        json!({
            "run_id": run_id,
            "job_id": self.job_id,
            "kind": self.kind,
            "payload": serde_json::from_str::<Value>(&self.payload).unwrap_or(Value::Null),
            "status": self.status.as_str(),
            "worker_id": self.worker_id,
            "lease_expires_at_s": self.lease_expires_at_s,
            "attempt": self.attempts,
            "result": parse(&self.result),
            "error": self.error,
            "created_at_s": self.created_at_s,
            "updated_at_s": self.updated_at_s,
        })
    }
}

fn key(run_id: &str, n: u64) -> Vec<u8> {
    let mut k = prefix(run_id);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn prefix(run_id: &str) -> Vec<u8> {
    let mut k = run_id.as_bytes().to_vec();
    k.push(0);
    k
}

fn job_key(run_id: &str, job_id: &str) -> Vec<u8> {
    let mut k = prefix(run_id);
    k.extend_from_slice(job_id.as_bytes());
    k
}

/// Counts of a run's jobs by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub queued: u64,
    pub leased: u64,
    pub completed: u64,
}

/// The sidecar's store.
pub struct SidecarStore {
    /// The daemon's database, committing by `[sidecar] durability`.
    store: Store,
    runs: TypedTree<RunRecord>,
    meta: TypedTree<String>,
    /// Per stream: `<run> 0 <seq>` → the item's JSON document.
    items: [TypedTree<String>; 4],
    jobs: TypedTree<JobRecord>,
    /// `<run> 0 <position>` → job id, in queue order.
    queue: TypedTree<String>,
    /// What one run keeps (`[store] max_run_*`).
    caps: Caps,
    write: Mutex<()>,
}

const CURRENT_RUN: &str = "current_run";

impl SidecarStore {
    /// Open the sidecar's trees, each run keeping at most `caps`; writes commit by
    /// `store`'s durability.
    pub fn open(store: Store, caps: Caps) -> Result<Self, SidecarError> {
        let items = [
            store.tree(Stream::Logs.tree())?,
            store.tree(Stream::Candidates.tree())?,
            store.tree(Stream::Populations.tree())?,
            store.tree(Stream::JobResults.tree())?,
        ];
        Ok(SidecarStore {
            runs: store.tree("sidecar.runs")?,
            meta: store.tree("sidecar.meta")?,
            jobs: store.tree("sidecar.jobs")?,
            queue: store.tree("sidecar.queue")?,
            items,
            store,
            caps,
            write: Mutex::new(()),
        })
    }

    fn commit(&self) -> Result<(), SidecarError> {
        Ok(self.store.commit()?)
    }

    /// The run most recently created or touched.
    pub fn current_run(&self) -> Result<Option<String>, SidecarError> {
        Ok(self.meta.get(CURRENT_RUN)?)
    }

    /// `run_id` if given, else the current run.
    pub fn resolve(&self, run_id: Option<&str>) -> Result<Option<String>, SidecarError> {
        match run_id {
            Some(r) => Ok(Some(
                run_events::check_run_id(r).map_err(SidecarError::BadInput)?,
            )),
            None => self.current_run(),
        }
    }

    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, SidecarError> {
        Ok(self.runs.get(run_id)?)
    }

    /// Save a run and make it current. Caller holds the write lock.
    fn touch(&self, mut run: RunRecord, now: f64) -> Result<RunRecord, SidecarError> {
        run.updated_at_s = now;
        self.runs.insert(&run.run_id, &run)?;
        self.meta.insert(CURRENT_RUN, &run.run_id)?;
        Ok(run)
    }

    /// The run to write to: the named or current one, created (running) when missing.
    fn run_for_write(&self, run_id: Option<&str>, now: f64) -> Result<RunRecord, SidecarError> {
        let id = match self.resolve(run_id)? {
            Some(id) => id,
            None => new_run_id(),
        };
        Ok(self
            .runs
            .get(&id)?
            .unwrap_or_else(|| RunRecord::new(id, now)))
    }

    /// `POST /runs/start`: a fresh run (`replace`, wiping any old data under that id) or
    /// the existing one resumed.
    pub fn start_run(
        &self,
        run_id: Option<&str>,
        replace: bool,
    ) -> Result<RunRecord, SidecarError> {
        let _w = self.write.lock();
        let now = now_f64();
        let id = match run_id {
            Some(r) => run_events::check_run_id(r).map_err(SidecarError::BadInput)?,
            None => new_run_id(),
        };
        let run = match self.runs.get(&id)? {
            Some(mut old) if !replace => {
                old.status = "running".into();
                old
            }
            Some(_) => {
                self.wipe(&id)?;
                RunRecord::new(id, now)
            }
            None => RunRecord::new(id, now),
        };
        let run = self.touch(run, now)?;
        self.commit()?;
        Ok(run)
    }

    /// Delete the runs past the newest `keep` (`crate::retention::runs_to_prune`; never
    /// the current run) with everything they hold. Returns how many went.
    pub fn prune_runs(&self, keep: usize) -> Result<usize, SidecarError> {
        let _w = self.write.lock();
        let runs: Vec<(String, f64)> = self
            .runs
            .iter()
            .map(|r| r.map(|(_, run)| (run.run_id, run.updated_at_s)))
            .collect::<Result<_, _>>()?;
        let current = self.current_run()?;
        let doomed = crate::retention::runs_to_prune(&runs, current.as_deref(), keep);
        for id in &doomed {
            self.wipe(id)?;
            self.runs.remove(id)?;
        }
        if !doomed.is_empty() {
            self.commit()?;
        }
        Ok(doomed.len())
    }

    fn wipe(&self, run_id: &str) -> Result<(), SidecarError> {
        let p = prefix(run_id);
        for tree in self
            .items
            .iter()
            .map(|t| t.raw())
            .chain([self.jobs.raw(), self.queue.raw()])
        {
            let keys: Vec<_> = tree
                .scan_prefix(&p)
                .keys()
                .collect::<Result<_, _>>()
                .map_err(StoreError::from)?;
            self.store.check_write()?;
            for k in keys {
                tree.remove(k).map_err(StoreError::from)?;
            }
        }
        Ok(())
    }

    /// `POST /runs/stop`. Unknown named run → 404; no run at all → nothing to do.
    pub fn stop_run(&self, run_id: Option<&str>) -> Result<Option<String>, SidecarError> {
        let _w = self.write.lock();
        let Some(id) = self.resolve(run_id)? else {
            return Ok(None);
        };
        let mut run = self
            .runs
            .get(&id)?
            .ok_or_else(|| SidecarError::NotFound(format!("unknown run {id}")))?;
        run.status = "stopped".into();
        self.touch(run, now_f64())?;
        self.commit()?;
        Ok(Some(id))
    }

    /// `POST /set_global_sota`.
    pub fn set_global_sota(&self, run_id: Option<&str>, value: f64) -> Result<(), SidecarError> {
        let _w = self.write.lock();
        let now = now_f64();
        let mut run = self.run_for_write(run_id, now)?;
        run.global_sota = Some(value);
        self.touch(run, now)?;
        self.commit()
    }

    /// `POST /submission_result`: a success raises `local_sota`; every answer is logged.
    /// The run must exist (the reference refuses a result for an unknown run).
    pub fn submission_result(
        &self,
        run_id: Option<&str>,
        score: f64,
        status: &str,
    ) -> Result<(), SidecarError> {
        let _w = self.write.lock();
        let now = now_f64();
        let run = match self.resolve(run_id)? {
            Some(id) => self.runs.get(&id)?,
            None => None,
        };
        let mut run = run.ok_or_else(|| {
            SidecarError::BadInput(format!("unknown run {}", run_id.unwrap_or("(none)")))
        })?;
        if rules::is_success(status) {
            run.successful_submissions += 1;
            run.local_sota = Some(run.local_sota.map_or(score, |l| l.max(score)));
        }
        let line = format!("[submission] status={status} score={score:.6}");
        self.push_log(&mut run, now, "info", None, line)?;
        self.touch(run, now)?;
        self.commit()
    }

    /// `POST /ingest_batch` (and the in-process miner): apply validated events in order.
    pub fn ingest(&self, run_id: &str, events: &[Event]) -> Result<usize, SidecarError> {
        let _w = self.write.lock();
        let now = now_f64();
        let mut run = self.run_for_write(Some(run_id), now)?;
        for event in events {
            self.apply(&mut run, event, now)?;
        }
        self.touch(run, now)?;
        self.commit()?;
        Ok(events.len())
    }

    fn apply(&self, run: &mut RunRecord, event: &Event, now: f64) -> Result<(), SidecarError> {
        match event {
            Event::Progress {
                worker_id,
                iteration,
                rate,
                engine_best,
                pop_best,
            } => {
                let stat = WorkerStat {
                    worker_id: worker_id.clone(),
                    iteration: *iteration,
                    rate: *rate,
                    updated_at_s: now,
                };
                match run.workers.iter_mut().find(|w| &w.worker_id == worker_id) {
                    Some(w) => *w = stat,
                    None => run.workers.push(stat),
                }
                let line = run_events::progress_line(
                    worker_id,
                    *iteration,
                    *engine_best,
                    *pop_best,
                    *rate,
                );
                self.push_log(run, now, "info", Some(worker_id), line)?;
            }
            Event::Candidate {
                worker_id,
                iteration,
                verified,
                eval,
                body,
            } => {
                if let Some(score) = verified.or(*eval) {
                    run.best_candidate_score =
                        Some(run.best_candidate_score.map_or(score, |b| b.max(score)));
                }
                self.push(run, Stream::Candidates, now, body.clone())?;
                let line = run_events::candidate_line(worker_id, *iteration, *verified);
                self.push_log(run, now, "info", Some(worker_id), line)?;
            }
            Event::Population { worker_id, body } => {
                self.push(run, Stream::Populations, now, body.clone())?;
                let line = run_events::population_line(worker_id.as_deref(), body);
                self.push_log(run, now, "info", worker_id.as_deref(), line)?;
            }
            Event::Done { worker_id: None } => {
                run.status = "stopped".into();
                self.push_log(run, now, "info", None, "[done] run finished".into())?;
            }
            Event::Done { worker_id: Some(w) } => {
                let line = format!("[w{w}] done");
                self.push_log(run, now, "info", Some(w), line)?;
            }
            Event::Error { worker_id, message } => {
                let line = format!("[error] {message}");
                self.push_log(run, now, "error", worker_id.as_deref(), line)?;
            }
            Event::Log { worker_id, message } => {
                self.push_log(run, now, "info", worker_id.as_deref(), message.clone())?;
            }
        }
        Ok(())
    }

    fn push_log(
        &self,
        run: &mut RunRecord,
        now: f64,
        level: &str,
        worker_id: Option<&str>,
        message: String,
    ) -> Result<(), SidecarError> {
        let mut body = Map::new();
        // The reference's log items are `{"type": "log", "ts", "message"}`; `level` and
        // `worker_id` are ours.
        body.insert("type".into(), json!("log"));
        body.insert("level".into(), json!(level));
        body.insert("message".into(), json!(message));
        if let Some(w) = worker_id {
            body.insert("worker_id".into(), json!(w));
        }
        self.push(run, Stream::Logs, now, body)
    }

    /// Append an item (adding `seq` and `ts`), rolling out the oldest past the cap.
    fn push(
        &self,
        run: &mut RunRecord,
        stream: Stream,
        now: f64,
        mut body: Map<String, Value>,
    ) -> Result<(), SidecarError> {
        let i = stream.index();
        let seq = run.next_seq[i];
        body.insert("seq".into(), json!(seq));
        body.insert("ts".into(), json!(now));
        let tree = &self.items[i];
        tree.insert(key(&run.run_id, seq), &Value::Object(body).to_string())?;
        run.next_seq[i] = seq + 1;
        let drop = rules::overflow(run.next_seq[i] - run.base_seq[i], self.caps.of(stream));
        for s in run.base_seq[i]..run.base_seq[i] + drop {
            tree.raw()
                .remove(key(&run.run_id, s))
                .map_err(StoreError::from)?;
        }
        run.base_seq[i] += drop;
        Ok(())
    }

    /// A cursor page of a run's stream: `(next cursor, items)`.
    pub fn page(
        &self,
        run_id: Option<&str>,
        stream: Stream,
        cursor: u64,
        limit: u64,
    ) -> Result<(u64, Vec<Value>), SidecarError> {
        let run = match self.resolve(run_id)? {
            Some(id) => self.runs.get(&id)?,
            None => None,
        };
        // An unknown run echoes the cursor it was sent (the reference's answer).
        let Some(run) = run else {
            return Ok((cursor, Vec::new()));
        };
        let i = stream.index();
        let (base, len) = (run.base_seq[i], run.next_seq[i] - run.base_seq[i]);
        let p = rules::page(base, len, cursor, limit);
        let mut items = Vec::with_capacity(p.count as usize);
        let from = key(&run.run_id, p.start);
        let to = key(&run.run_id, p.start + p.count);
        for r in self.items[i].range(from..to) {
            let (_, json) = r?;
            items.push(serde_json::from_str(&json).unwrap_or(Value::Null));
        }
        Ok((p.next_cursor, items))
    }

    /// Job counts of a run; `completed` counts every finished job, failed ones too (the
    /// reference's `completed_jobs`).
    pub fn job_counts(&self, run_id: &str) -> Result<JobCounts, SidecarError> {
        let mut c = JobCounts::default();
        for r in self.jobs.scan_prefix(prefix(run_id)) {
            match r?.1.status {
                JobStatus::Queued => c.queued += 1,
                JobStatus::Leased => c.leased += 1,
                JobStatus::Completed | JobStatus::Failed => c.completed += 1,
            }
        }
        Ok(c)
    }

    /// `GET /state`: the run's summary; unknown runs are `idle` with zeros and nulls.
    pub fn state(&self, run_id: Option<&str>) -> Result<Value, SidecarError> {
        let id = self.resolve(run_id)?;
        let run = match &id {
            Some(id) => self.runs.get(id)?,
            None => None,
        };
        let Some(run) = run else {
            return Ok(json!({
                "run_id": id,
                "status": "idle",
                "global_sota": null,
                "local_sota": null,
                "successful_submissions": 0,
                "tasks_completed": 0,
                "best_candidate_score": null,
                "queued_jobs": 0,
                "leased_jobs": 0,
                "completed_jobs": 0,
                "updated_at_s": now_f64(),
            }));
        };
        let jobs = self.job_counts(&run.run_id)?;
        let workers: Map<String, Value> = run
            .workers
            .iter()
            .map(|w| {
                (
                    w.worker_id.clone(),
                    json!({"iteration": w.iteration, "rate": w.rate, "updated_at_s": w.updated_at_s}),
                )
            })
            .collect();
        Ok(json!({
            "run_id": run.run_id,
            "status": run.status,
            "global_sota": run.global_sota,
            "local_sota": run.local_sota,
            "successful_submissions": run.successful_submissions,
            "tasks_completed": run.workers.iter().map(|w| w.iteration).sum::<u64>(),
            "best_candidate_score": run.best_candidate_score,
            "queued_jobs": jobs.queued,
            "leased_jobs": jobs.leased,
            "completed_jobs": jobs.completed,
            "workers": workers,
            "created_at_s": run.created_at_s,
            "updated_at_s": run.updated_at_s,
        }))
    }

    /// `POST /jobs/enqueue`: a new job at the back of the queue; a duplicate id → 409.
    pub fn enqueue(
        &self,
        run_id: Option<&str>,
        job_id: Option<&str>,
        kind: &str,
        payload: &Value,
    ) -> Result<Value, SidecarError> {
        let _w = self.write.lock();
        let now = now_f64();
        let mut run = self.run_for_write(run_id, now)?;
        let job_id = match job_id {
            Some(j) => run_events::check_run_id(j).map_err(|_| {
                SidecarError::BadInput("job_id must be 1 to 128 printable characters".into())
            })?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let k = job_key(&run.run_id, &job_id);
        if self.jobs.contains_key(&k)? {
            return Err(SidecarError::Conflict(format!(
                "job {job_id} already exists"
            )));
        }
        if run.job_count >= self.caps.jobs {
            run.job_count -= self.prune_jobs(&run.run_id)?;
        }
        run.job_count += 1;
        let position = run.queue_back;
        run.queue_back += 1;
        let job = JobRecord {
            job_id: job_id.clone(),
            kind: kind.to_string(),
            payload: payload.to_string(),
            status: JobStatus::Queued,
            worker_id: None,
            lease_expires_at_s: None,
            attempts: 0,
            position,
            finished_order: None,
            result: None,
            error: None,
            created_at_s: now,
            updated_at_s: now,
        };
        self.jobs.insert(&k, &job)?;
        self.queue.insert(key(&run.run_id, position), &job_id)?;
        let run = self.touch(run, now)?;
        self.commit()?;
        Ok(json!({"run_id": run.run_id, "job_id": job_id, "status": "queued"}))
    }

    /// Make room for one more job by dropping the oldest finished ones; returns how many
    /// were dropped.
    fn prune_jobs(&self, run_id: &str) -> Result<u64, SidecarError> {
        let mut finished = Vec::new();
        let mut total = 0usize;
        for r in self.jobs.scan_prefix(prefix(run_id)) {
            let (k, job) = r?;
            total += 1;
            if let Some(order) = job.finished_order {
                finished.push((order, k));
            }
        }
        let max = self.caps.jobs as usize;
        if total < max {
            return Ok(0);
        }
        let excess = total + 1 - max;
        if finished.len() < excess {
            return Err(SidecarError::Full(format!(
                "the job queue of run {run_id} is full ({max} unfinished jobs)"
            )));
        }
        finished.sort_by_key(|(order, _)| *order);
        for (_, k) in finished.into_iter().take(excess) {
            self.jobs.remove(k)?;
        }
        Ok(excess as u64)
    }

    /// `GET /jobs/next`: expired leases go back to the front first, then the front job is
    /// leased to `worker_id`. `None` when the queue is empty.
    pub fn next_job(
        &self,
        run_id: &str,
        worker_id: &str,
        lease_seconds: f64,
        now: f64,
    ) -> Result<Option<Value>, SidecarError> {
        let _w = self.write.lock();
        let Some(mut run) = self.runs.get(run_id)? else {
            return Ok(None);
        };
        let leased: Vec<(sled::IVec, JobRecord)> = self
            .jobs
            .scan_prefix(prefix(run_id))
            .filter(|r| matches!(r, Ok((_, j)) if j.status == JobStatus::Leased) || r.is_err())
            .collect::<Result<_, _>>()?;
        let expiry: Vec<(u64, f64)> = leased
            .iter()
            .map(|(_, j)| (j.position, j.lease_expires_at_s.unwrap_or(0.0)))
            .collect();
        for i in rules::requeue_order(&expiry, now) {
            let (k, job) = &leased[i];
            let mut job = job.clone();
            job.status = JobStatus::Queued;
            job.worker_id = None;
            job.lease_expires_at_s = None;
            job.position = run.queue_front;
            job.updated_at_s = now;
            run.queue_front -= 1;
            self.queue.insert(key(run_id, job.position), &job.job_id)?;
            self.jobs.insert(k, &job)?;
        }
        let front = self.queue.scan_prefix(prefix(run_id)).next().transpose()?;
        let Some((qk, job_id)) = front else {
            self.runs.insert(run_id, &run)?;
            self.commit()?;
            return Ok(None);
        };
        self.queue.remove(&qk)?;
        let k = job_key(run_id, &job_id);
        let mut job = self
            .jobs
            .get(&k)?
            .ok_or_else(|| SidecarError::NotFound(format!("queued job {job_id} is missing")))?;
        job.status = JobStatus::Leased;
        job.worker_id = Some(worker_id.to_string());
        job.lease_expires_at_s = Some(now + lease_seconds);
        job.attempts += 1;
        job.updated_at_s = now;
        self.jobs.insert(&k, &job)?;
        self.touch(run, now)?;
        self.commit()?;
        Ok(Some(job.view(run_id)))
    }

    /// `POST /jobs/{job_id}/result`: finish a job and record a job-result event.
    /// A late result for a job whose lease expired (re-queued) still counts.
    pub fn job_result(
        &self,
        run_id: Option<&str>,
        job_id: &str,
        ok: bool,
        result: &Value,
        error: Option<&str>,
    ) -> Result<(), SidecarError> {
        let _w = self.write.lock();
        let now = now_f64();
        let id = self
            .resolve(run_id)?
            .ok_or_else(|| SidecarError::NotFound("no run".into()))?;
        let mut run = self
            .runs
            .get(&id)?
            .ok_or_else(|| SidecarError::NotFound(format!("unknown run {id}")))?;
        let k = job_key(&id, job_id);
        let mut job = self
            .jobs
            .get(&k)?
            .ok_or_else(|| SidecarError::NotFound(format!("unknown job {job_id}")))?;
        if job.status == JobStatus::Queued {
            self.queue.remove(key(&id, job.position))?;
        }
        job.status = if ok {
            JobStatus::Completed
        } else {
            JobStatus::Failed
        };
        job.result = Some(result.to_string());
        job.error = error.map(str::to_string);
        job.lease_expires_at_s = None;
        job.finished_order = Some(run.finished_counter);
        job.updated_at_s = now;
        run.finished_counter += 1;
        self.jobs.insert(&k, &job)?;
        let mut body = Map::new();
        body.insert("run_id".into(), json!(id));
        body.insert("job_id".into(), json!(job_id));
        body.insert("kind".into(), json!(job.kind));
        body.insert("status".into(), json!(job.status.as_str()));
        body.insert("attempt".into(), json!(job.attempts));
        body.insert("worker_id".into(), json!(job.worker_id));
        body.insert(
            "payload".into(),
            serde_json::from_str(&job.payload).unwrap_or(Value::Null),
        );
        body.insert("result".into(), result.clone());
        body.insert("error".into(), json!(error));
        self.push(&mut run, Stream::JobResults, now, body)?;
        let (level, status) = (if ok { "info" } else { "error" }, job.status.as_str());
        let line = run_events::job_line(job_id, status);
        self.push_log(&mut run, now, level, None, line)?;
        self.touch(run, now)?;
        self.commit()
    }
}

/// A fresh run id: `run-<unix seconds>-<8 hex>`.
pub fn new_run_id() -> String {
    let tail = uuid::Uuid::new_v4().simple().to_string();
    format!("run-{}-{}", now_f64() as u64, &tail[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    /// Small caps, so that rolling out and pruning take few writes.
    const CAPS: Caps = Caps {
        logs: 100,
        candidates: 20,
        populations: 5,
        job_results: 20,
        jobs: 50,
    };

    fn open() -> (tempfile::TempDir, SidecarStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), Durability::Async).unwrap();
        (dir, SidecarStore::open(store, CAPS).unwrap())
    }

    fn log(msg: &str) -> Event {
        Event::Log {
            worker_id: None,
            message: msg.into(),
        }
    }

    #[test]
    fn pruning_keeps_the_newest_runs_and_the_current_one() {
        let (_d, s) = open();
        for r in ["a", "b", "c", "d"] {
            s.ingest(r, &[log(r)]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(s.prune_runs(2).unwrap(), 2);
        assert!(s.run("a").unwrap().is_none() && s.run("b").unwrap().is_none());
        // Keeping none still keeps the current run ("d", written last).
        assert_eq!(s.prune_runs(0).unwrap(), 1);
        assert!(s.run("c").unwrap().is_none());
        let (_, kept) = s.page(Some("d"), Stream::Logs, 0, 10).unwrap();
        assert_eq!(kept.len(), 1);
        let left = s.items[Stream::Logs.index()].iter().count();
        assert_eq!(left, 1, "the pruned runs' items went with them");
    }

    #[test]
    fn logs_roll_out_past_the_cap_and_cursors_skip_them() {
        let (_d, s) = open();
        let events: Vec<Event> = (0..103).map(|i| log(&format!("m{i}"))).collect();
        s.ingest("r", &events).unwrap();
        let (next, items) = s.page(Some("r"), Stream::Logs, 0, 2).unwrap();
        assert_eq!(items[0]["seq"], 3);
        assert_eq!(items[0]["message"], "m3");
        assert_eq!(next, 5);
        let (next, items) = s.page(Some("r"), Stream::Logs, 9999, 10).unwrap();
        assert!(items.is_empty());
        assert_eq!(next, 103);
        let logs = s.items[Stream::Logs.index()].iter().count();
        assert_eq!(logs, 100, "the rolled-out items are deleted");
        // A smaller cap (a restart with a new `[store] max_run_logs`) rolls the excess
        // out at the next write; an old cursor still starts at the oldest item kept.
        let smaller = Caps { logs: 10, ..CAPS };
        let s = SidecarStore::open(s.store.clone(), smaller).unwrap();
        s.ingest("r", &[log("m103")]).unwrap();
        let (next, items) = s.page(Some("r"), Stream::Logs, 5, 500).unwrap();
        assert_eq!(
            (items.len(), &items[0]["message"], next),
            (10, &json!("m94"), 104)
        );
        assert_eq!(s.items[Stream::Logs.index()].iter().count(), 10);
    }

    /// The shipped loop's write pattern for two simulated hours: one progress line a
    /// second, each flushed on its own (the sidecar commits asynchronously, every
    /// ~500 ms). Returns the run's logs kept and sled's file size every 10 minutes.
    fn two_hours_of_progress(caps: Caps) -> (u64, Vec<u64>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), Durability::Async).unwrap();
        let s = SidecarStore::open(store.clone(), caps).unwrap();
        let mut size_at = Vec::new();
        for i in 0..2 * 3600u64 {
            let line = Event::Progress {
                worker_id: "0".into(),
                iteration: i * 60_000,
                rate: Some(61_234.5),
                engine_best: Some(0.9999995),
                pop_best: None,
            };
            s.ingest("run-1795936942-777d343b", &[line]).unwrap();
            store.flush().unwrap();
            if i % 600 == 599 {
                size_at.push(store.size_on_disk());
            }
        }
        let logs = s.items[Stream::Logs.index()].iter().count() as u64;
        (logs, size_at)
    }

    /// At the shipped caps, sled's file grows only until it can recycle its segments
    /// (about five of 512 KiB) and then stays put; at the reference's it is still
    /// growing after two hours.
    #[test]
    fn the_store_stops_growing_once_a_run_is_at_its_caps() {
        let caps = Caps::from_config(&crate::config::StoreConfig::default());
        let (logs, size_at) = two_hours_of_progress(caps);
        assert_eq!(logs, caps.logs);
        // Minutes 60 to 120: no growth, within sled's floor.
        let late = &size_at[5..];
        assert!(late.iter().all(|&b| b == late[0]), "{size_at:?}");
        assert!(late[0] <= 3 << 20, "{size_at:?}");
        let (logs, size_at) = two_hours_of_progress(Caps::REFERENCE);
        assert_eq!(logs, Caps::REFERENCE.logs);
        assert!(size_at[11] > size_at[5], "{size_at:?}");
    }

    #[test]
    fn replace_wipes_and_resume_keeps() {
        let (_d, s) = open();
        s.start_run(Some("a"), true).unwrap();
        s.ingest("a", &[log("x")]).unwrap();
        s.start_run(Some("a"), false).unwrap();
        assert_eq!(s.page(Some("a"), Stream::Logs, 0, 10).unwrap().1.len(), 1);
        s.start_run(Some("a"), true).unwrap();
        assert!(s.page(Some("a"), Stream::Logs, 0, 10).unwrap().1.is_empty());
    }

    #[test]
    fn finished_jobs_are_pruned_first() {
        let (_d, s) = open();
        for i in 0..CAPS.jobs {
            s.enqueue(Some("r"), Some(&format!("j{i}")), "evolve", &json!({}))
                .unwrap();
        }
        assert!(matches!(
            s.enqueue(Some("r"), Some("extra"), "evolve", &json!({})),
            Err(SidecarError::Full(_))
        ));
        let job = s.next_job("r", "w", 60.0, now_f64()).unwrap().unwrap();
        assert_eq!(job["job_id"], "j0");
        s.job_result(Some("r"), "j0", true, &json!({}), None)
            .unwrap();
        s.enqueue(Some("r"), Some("extra"), "evolve", &json!({}))
            .unwrap();
        assert_eq!(s.job_counts("r").unwrap().completed, 0);
        assert_eq!(s.job_counts("r").unwrap().queued, CAPS.jobs);
    }
}
