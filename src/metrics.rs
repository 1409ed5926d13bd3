//! `GET /metrics`: the daemon's counters and gauges in the Prometheus text format, from
//! one `prometheus` registry shared by every service and served on every listener.
//!
//! Services update what only they see (submissions, votes, the validators' queues, the
//! miner's rate, pool leases); the store's size, free space, watermark and the health
//! verdict are read when scraped. Labels only ever take values from small fixed sets
//! (route classes of matched routes, refusal classes, tree names, validator names), so a
//! hostile client cannot grow the registry.

use crate::health::Monitor;
use crate::http::{token_eq, Api, ApiError, Op, RefusalClass};
use parking_lot::Mutex;
use poem::endpoint::make_sync;
use poem::http::header;
use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Instant;

/// Every metric of the daemon.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub submissions: IntCounterVec,
    pub votes: IntCounterVec,
    pub sota_events: IntCounter,
    pub sota: GaugeVec,
    pub validator_queue: IntGaugeVec,
    pub validator_eval_seconds: HistogramVec,
    pub miner_children_per_s: Gauge,
    pub miner_best_fitness: Gauge,
    pub pool_leases: IntCounter,
    pub pool_evaluations: IntCounterVec,
    pub pool_miners: IntGauge,
    pub pool_reputation: Gauge,
    store_bytes: IntGauge,
    tree_bytes: IntGaugeVec,
    tree_records: IntGaugeVec,
    free_bytes: IntGauge,
    min_free_bytes: IntGauge,
    low_space: IntGauge,
    store_failed: IntGauge,
    healthy: IntGauge,
    resident_bytes: IntGauge,
    /// Read at each scrape: figures a service keeps anyway (the miner's live rate, the
    /// pool's miners), so nothing has to push them.
    on_scrape: Mutex<Vec<ScrapeHook>>,
}

type ScrapeHook = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Register `metric` (built from static names, so it cannot fail) and hand it back.
fn reg<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    metric: prometheus::Result<C>,
) -> C {
    let m = metric.expect("valid metric");
    r.register(Box::new(m.clone())).expect("unique metric");
    m
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    reg(
        r,
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new_custom(Some("bitsota".into()), None).expect("valid prefix");
        let per = |name: &str, help: &str, label: &str| {
            reg(&r, IntGaugeVec::new(Opts::new(name, help), &[label]))
        };
        let validator_queue = per(
            "validator_queue_depth",
            "Results waiting for a validator's re-evaluation",
            "validator",
        );
        let tree_bytes = per(
            "store_tree_bytes",
            "Bytes of keys and values per store tree",
            "tree",
        );
        let tree_records = per("store_tree_records", "Records per store tree", "tree");
        let sota = reg(
            &r,
            GaugeVec::new(
                Opts::new("relay_sota", "The relay's current SOTA score, per task"),
                &["task"],
            ),
        );
        Metrics {
            requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "http_requests_total",
                        "HTTP requests by listener, route class and status",
                    ),
                    &["listener", "class", "status"],
                ),
            ),
            latency: histogram(
                &r,
                "http_request_duration_seconds",
                "HTTP request latency by listener and route class",
                &["listener", "class"],
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
            submissions: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "relay_submissions_total",
                        "Miner submissions by outcome and refusal reason",
                    ),
                    &["outcome", "reason"],
                ),
            ),
            votes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "relay_votes_total",
                        "Validator SOTA votes by outcome and refusal reason",
                    ),
                    &["outcome", "reason"],
                ),
            ),
            sota_events: reg(
                &r,
                IntCounter::new("relay_sota_events_total", "Finalized SOTA events"),
            ),
            sota,
            validator_queue,
            validator_eval_seconds: histogram(
                &r,
                "validator_evaluation_seconds",
                "Seconds a validator took to re-evaluate one result",
                &["validator"],
                vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                ],
            ),
            miner_children_per_s: reg(
                &r,
                Gauge::new(
                    "miner_children_per_second",
                    "The embedded miner's children evaluated per second (all workers)",
                ),
            ),
            miner_best_fitness: reg(
                &r,
                Gauge::new(
                    "miner_best_fitness",
                    "The embedded miner's best fitness this run",
                ),
            ),
            pool_leases: reg(
                &r,
                IntCounter::new("pool_leases_total", "Pool leases issued"),
            ),
            pool_evaluations: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "pool_evaluations_total",
                        "Pool evaluations submitted, by outcome",
                    ),
                    &["outcome"],
                ),
            ),
            pool_miners: reg(
                &r,
                IntGauge::new("pool_miners", "Miners registered with the pool"),
            ),
            pool_reputation: reg(
                &r,
                Gauge::new("pool_reputation", "Reputation held by all pool miners"),
            ),
            store_bytes: reg(
                &r,
                IntGauge::new("store_size_bytes", "Bytes of the store's files on disk"),
            ),
            tree_bytes,
            tree_records,
            free_bytes: reg(
                &r,
                IntGauge::new(
                    "store_free_bytes",
                    "Free bytes on the data directory's filesystem",
                ),
            ),
            min_free_bytes: reg(
                &r,
                IntGauge::new(
                    "store_min_free_bytes",
                    "The free-space watermark ([store] min_free_mb)",
                ),
            ),
            low_space: reg(
                &r,
                IntGauge::new(
                    "store_low_space",
                    "1 while free space is below the watermark and writes are refused",
                ),
            ),
            store_failed: reg(
                &r,
                IntGauge::new(
                    "store_failed",
                    "1 once the store has failed (the daemon is exiting)",
                ),
            ),
            healthy: reg(
                &r,
                IntGauge::new("healthy", "1 when /health says healthy, 0 when degraded"),
            ),
            resident_bytes: reg(
                &r,
                IntGauge::new(
                    "process_resident_memory_bytes",
                    "Resident memory of the daemon",
                ),
            ),
            on_scrape: Mutex::new(Vec::new()),
            registry: r,
        }
    }
}

impl Metrics {
    /// Count one answered request. `class` is the first path segment of a routed
    /// request (`unmatched` for 404/405 answers, so strangers' paths add no labels).
    pub fn request(&self, listener: &str, path: &str, status: u16, seconds: f64) {
        let class = route_class(path, status);
        self.requests
            .with_label_values(&[listener, class, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[listener, class])
            .observe(seconds);
    }

    /// Count an answer to a submission or vote by outcome and refusal class: the class
    /// the handler attached ([`RefusalClass`], e.g. a late vote), else its status's.
    pub fn outcome(counter: &IntCounterVec, resp: &Response) {
        let status = resp.status().as_u16();
        let (outcome, reason) = match status {
            200..=299 => ("accepted", "none"),
            _ => (
                "refused",
                resp.extensions()
                    .get::<RefusalClass>()
                    .map_or_else(|| refusal_class(status), |c| c.0),
            ),
        };
        counter.with_label_values(&[outcome, reason]).inc();
    }

    /// Run `hook` before every scrape, to set gauges from a service's own figures.
    pub fn on_scrape(&self, hook: impl Fn(&Metrics) + Send + Sync + 'static) {
        self.on_scrape.lock().push(Box::new(hook));
    }

    /// The text exposition, after reading the store and health gauges.
    pub fn render(&self, monitor: &Monitor) -> String {
        for hook in self.on_scrape.lock().iter() {
            hook(self);
        }
        let store = monitor.store();
        let guard = store.guard_state();
        self.store_bytes.set(store.size_on_disk() as i64);
        for t in store.tree_sizes() {
            self.tree_bytes
                .with_label_values(&[&t.name])
                .set(t.bytes as i64);
            self.tree_records
                .with_label_values(&[&t.name])
                .set(t.records as i64);
        }
        self.free_bytes.set(guard.free_bytes.unwrap_or(0) as i64);
        self.min_free_bytes.set(guard.min_free_bytes as i64);
        self.low_space.set(guard.low_space as i64);
        self.store_failed.set(guard.failed.is_some() as i64);
        self.healthy.set(monitor.report().healthy() as i64);
        self.resident_bytes.set(resident_bytes() as i64);
        let mut out = Vec::new();
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The route class of a request: the first segment of its path past an `api`/`v1`
/// prefix (`/api/v1/tasks/7/submit_lease` → `tasks`), or `unmatched`. Parameters never
/// become labels: they come later in every route's path.
pub fn route_class(path: &str, status: u16) -> &str {
    if status == 404 || status == 405 {
        return "unmatched";
    }
    path.split('/')
        .find(|seg| !matches!(*seg, "" | "api" | "v1"))
        .unwrap_or("root")
}

/// Why a request was refused, by its status: a small fixed set.
pub fn refusal_class(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid",
        401 => "unauthenticated",
        403 => "forbidden",
        409 => "conflict",
        413 => "too_large",
        429 => "rate_limited",
        507 => "insufficient_storage",
        500..=599 => "server_error",
        _ => "other",
    }
}

/// Resident set size from `/proc/self/statm` (0 where unavailable).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Who may scrape: anyone, or holders of the relay's admin token (`[metrics]
/// require_admin_token`), sent as `X-Auth-Token` or `Authorization: Bearer`.
#[derive(Clone)]
pub enum Access {
    Open,
    Token(Option<String>),
}

impl Access {
    pub fn from_config(config: &crate::config::Config) -> Access {
        if config.metrics.require_admin_token {
            Access::Token(config.relay.effective_admin_token())
        } else {
            Access::Open
        }
    }

    fn check(&self, req: &Request) -> Result<(), ApiError> {
        let Access::Token(expected) = self else {
            return Ok(());
        };
        let Some(expected) = expected else {
            return Err(ApiError::forbidden(
                "metrics need the admin token, which is not configured (set relay.admin_token, or metrics.require_admin_token = false)",
            ));
        };
        let given = req.header("X-Auth-Token").or_else(|| {
            req.header(header::AUTHORIZATION)
                .and_then(|a| a.strip_prefix("Bearer "))
        });
        match given {
            Some(t) if token_eq(t.trim(), expected) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("Invalid admin token")),
            None => Err(ApiError::unauthorized("Authentication required")),
        }
    }
}

/// `GET /metrics`, as a route table entry for each listener's table.
pub fn api(metrics: Arc<Metrics>, monitor: Arc<Monitor>, access: Access) -> Api {
    let endpoint = make_sync(move |req| match access.check(&req) {
        Ok(()) => Response::builder()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(metrics.render(&monitor)),
        Err(e) => e.into_response(),
    });
    Api::new("metrics", "").get(
        "/metrics",
        Op::new("Prometheus metrics (text format); the admin token unless [metrics] require_admin_token = false")
            .response(200, serde_json::json!({"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}))
            .errors(&[401, 403]),
        endpoint,
    )
}

/// Counts and times every request of a listener (wrapped around its hardened routes, so
/// 404/405/413 and panics' 500s are counted too).
pub struct Track<E> {
    pub inner: E,
    pub listener: &'static str,
    pub metrics: Arc<Metrics>,
}

impl<E: Endpoint> Endpoint for Track<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let start = Instant::now();
        let path = req.uri().path().to_string();
        let resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        self.metrics.request(
            self.listener,
            &path,
            resp.status().as_u16(),
            start.elapsed().as_secs_f64(),
        );
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_bounded() {
        assert_eq!(route_class("/results/5Abc", 200), "results");
        assert_eq!(route_class("/", 200), "root");
        assert_eq!(route_class("/api/v1/tasks/7/submit_lease", 200), "tasks");
        assert_eq!(route_class("/anything/at/all", 404), "unmatched");
        assert_eq!(route_class("/submit_solution", 405), "unmatched");
        assert_eq!(refusal_class(507), "insufficient_storage");
        assert_eq!(refusal_class(422), "invalid");
        assert_eq!(refusal_class(503), "server_error");
    }

    #[test]
    fn renders_the_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::Store::open(&dir.path().join("store"), crate::store::Durability::Sync)
                .unwrap();
        let t: crate::store::TypedTree<u32> = store.tree("relay.results").unwrap();
        t.insert("k", &7).unwrap();
        let m = Metrics::default();
        m.request("relay", "/health", 200, 0.001);
        Metrics::outcome(
            &m.submissions,
            &ApiError::insufficient_storage("full").into_response(),
        );
        let late = ApiError::bad_request("Score 0.5 is not above current SOTA 0.5");
        Metrics::outcome(&m.votes, &late.clone().with_class("late").into_response());
        Metrics::outcome(&m.votes, &late.into_response());
        Metrics::outcome(&m.votes, &Response::builder().body("{}"));
        let text = m.render(&Monitor::new(store));
        assert!(
            text.contains("# TYPE bitsota_http_requests_total counter"),
            "{text}"
        );
        assert!(text.contains(
            r#"bitsota_http_requests_total{class="health",listener="relay",status="200"} 1"#
        ));
        assert!(text.contains(
            r#"bitsota_relay_submissions_total{outcome="refused",reason="insufficient_storage"} 1"#
        ));
        for vote in [
            r#"bitsota_relay_votes_total{outcome="refused",reason="late"} 1"#,
            r#"bitsota_relay_votes_total{outcome="refused",reason="invalid"} 1"#,
            r#"bitsota_relay_votes_total{outcome="accepted",reason="none"} 1"#,
        ] {
            assert!(text.contains(vote), "{vote}: {text}");
        }
        assert!(text.contains(r#"bitsota_store_tree_records{tree="relay.results"} 1"#));
        assert!(text.contains("bitsota_healthy 1"));
    }
}
