//! Request counters by category over sliding windows (relay.md §5), for `/admin/status`.
//!
//! Ring buffers of time buckets: seconds for the last minute, minutes for the last hour
//! and the last day. Recording is one short lock; time is passed in, so the windows test
//! without sleeping.

use parking_lot::Mutex;
use serde::Serialize;

/// Request categories of `/admin/status` (the reference's path classification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Miner,
    Validator,
    Admin,
    Public,
    Other,
}

impl Category {
    const ALL: [Category; 5] = [
        Category::Miner,
        Category::Validator,
        Category::Admin,
        Category::Public,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Miner => "miner",
            Category::Validator => "validator",
            Category::Admin => "admin",
            Category::Public => "public",
            Category::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The category of a request path.
    pub fn of_path(path: &str) -> Category {
        let starts = |p: &str| path.starts_with(p);
        if starts("/admin") {
            Category::Admin
        } else if starts("/submit_solution")
            || starts("/coldkey_address/update")
            || starts("/invitation_code/link")
        {
            Category::Miner
        } else if starts("/results")
            || starts("/sota/vote")
            || starts("/sota/events")
            || starts("/blacklist/")
            || starts("/test/")
        {
            Category::Validator
        } else if matches!(
            path,
            "/health" | "/version.json" | "/sota_threshold" | "/sota-events" | "/docs"
        ) || starts("/openapi")
            || starts("/docs/")
        {
            Category::Public
        } else {
            Category::Other
        }
    }
}

/// Slots per bucket: the five categories, then the 5xx count.
const SLOTS: usize = 6;
const ERR5XX: usize = 5;

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Which period (`time / width`) this slot currently holds.
    period: u64,
    counts: [u64; SLOTS],
}

/// `len` buckets of `width` seconds.
struct Ring {
    width: u64,
    buckets: Vec<Bucket>,
}

impl Ring {
    fn new(width: u64, len: usize) -> Ring {
        Ring {
            width,
            buckets: vec![
                Bucket {
                    period: u64::MAX,
                    ..Bucket::default()
                };
                len
            ],
        }
    }

    fn add(&mut self, now: u64, slots: &[usize]) {
        let period = now / self.width;
        let n = self.buckets.len();
        let b = &mut self.buckets[(period % n as u64) as usize];
        if b.period != period {
            *b = Bucket {
                period,
                counts: [0; SLOTS],
            };
        }
        for &s in slots {
            b.counts[s] += 1;
        }
    }

    /// Sums over the buckets of the last `periods` periods up to `now`.
    fn sum(&self, now: u64, periods: u64) -> [u64; SLOTS] {
        let current = now / self.width;
        let oldest = current.saturating_sub(periods.saturating_sub(1));
        let mut out = [0; SLOTS];
        for b in &self.buckets {
            if b.period != u64::MAX && b.period >= oldest && b.period <= current {
                for (o, c) in out.iter_mut().zip(b.counts) {
                    *o += c;
                }
            }
        }
        out
    }
}

struct Inner {
    seconds: Ring,
    minutes: Ring,
    totals: [u64; SLOTS],
    total: u64,
    last_request_ts: Option<f64>,
}

/// The relay's request metrics.
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                seconds: Ring::new(1, 60),
                minutes: Ring::new(60, 24 * 60),
                totals: [0; SLOTS],
                total: 0,
                last_request_ts: None,
            }),
        }
    }
}

/// Counts of one window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    pub total: u64,
    pub miner: u64,
    pub validator: u64,
    pub admin: u64,
    pub public: u64,
    pub other: u64,
    pub errors_5xx: u64,
}

impl WindowCounts {
    fn from_slots(s: [u64; SLOTS]) -> WindowCounts {
        WindowCounts {
            total: s[..ERR5XX].iter().sum(),
            miner: s[Category::Miner.index()],
            validator: s[Category::Validator.index()],
            admin: s[Category::Admin.index()],
            public: s[Category::Public.index()],
            other: s[Category::Other.index()],
            errors_5xx: s[ERR5XX],
        }
    }
}

/// The `metrics` object of `/admin/status`.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub uptime_seconds: f64,
    pub last_request_ts: Option<f64>,
    /// All-time counts: `total` and one per category seen.
    pub totals: std::collections::BTreeMap<&'static str, u64>,
    pub last_1m: WindowCounts,
    pub last_1h: WindowCounts,
    pub last_24h: WindowCounts,
    pub errors_5xx_total: u64,
}

impl Metrics {
    /// Count one answered request at unix time `now` (seconds, fractional).
    pub fn record(&self, category: Category, status: u16, now: f64) {
        let secs = now.max(0.0) as u64;
        let slot = category.index();
        let slots: &[usize] = if status >= 500 {
            &[slot, ERR5XX]
        } else {
            std::slice::from_ref(&slot)
        };
        let mut m = self.inner.lock();
        m.seconds.add(secs, slots);
        m.minutes.add(secs, slots);
        for &s in slots {
            m.totals[s] += 1;
        }
        m.total += 1;
        m.last_request_ts = Some(now);
    }

    pub fn snapshot(&self, now: f64, uptime_seconds: f64) -> Snapshot {
        let secs = now.max(0.0) as u64;
        let m = self.inner.lock();
        let mut totals = std::collections::BTreeMap::new();
        totals.insert("total", m.total);
        for c in Category::ALL {
            let n = m.totals[c.index()];
            if n > 0 {
                totals.insert(c.as_str(), n);
            }
        }
        Snapshot {
            uptime_seconds,
            last_request_ts: m.last_request_ts,
            totals,
            last_1m: WindowCounts::from_slots(m.seconds.sum(secs, 60)),
            last_1h: WindowCounts::from_slots(m.minutes.sum(secs, 60)),
            last_24h: WindowCounts::from_slots(m.minutes.sum(secs, 24 * 60)),
            errors_5xx_total: m.totals[ERR5XX],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_reference() {
        let cases = [
            ("/submit_solution", Category::Miner),
            ("/coldkey_address/update", Category::Miner),
            ("/invitation_code/link", Category::Miner),
            ("/invitation_code/linked", Category::Miner),
            ("/results", Category::Validator),
            ("/results/5abc", Category::Validator),
            ("/sota/vote", Category::Validator),
            ("/sota/events", Category::Validator),
            ("/blacklist/5abc", Category::Validator),
            ("/test/submissions", Category::Validator),
            ("/admin/status", Category::Admin),
            ("/health", Category::Public),
            ("/sota_threshold", Category::Public),
            ("/sota-events", Category::Public),
            ("/version.json", Category::Public),
            ("/openapi.json", Category::Public),
            ("/docs", Category::Public),
            ("/docs/swagger-ui-bundle.js", Category::Public),
            ("/invitation_code/generate/3", Category::Other),
            ("/nope", Category::Other),
        ];
        for (p, c) in cases {
            assert_eq!(Category::of_path(p), c, "{p}");
        }
    }

    #[test]
    fn windows_slide() {
        let m = Metrics::default();
        let t0 = 1_000_000.0;
        m.record(Category::Miner, 200, t0);
        m.record(Category::Validator, 500, t0 + 1.0);
        m.record(Category::Public, 200, t0 + 59.0);
        let s = m.snapshot(t0 + 59.5, 1.0);
        assert_eq!(s.last_1m.total, 3);
        assert_eq!((s.last_1m.miner, s.last_1m.validator), (1, 1));
        assert_eq!(s.last_1m.errors_5xx, 1);
        // 61 s later the first two fall out of the minute window but stay in the hour.
        let s = m.snapshot(t0 + 61.0, 1.0);
        assert_eq!(s.last_1m.total, 1);
        assert_eq!(s.last_1h.total, 3);
        // Two hours later: only the day window.
        let s = m.snapshot(t0 + 7200.0, 1.0);
        assert_eq!(
            (s.last_1m.total, s.last_1h.total, s.last_24h.total),
            (0, 0, 3)
        );
        assert_eq!(s.last_24h.errors_5xx, 1);
        // A day and a bit later: nothing in any window, totals keep everything.
        let s = m.snapshot(t0 + 90_000.0, 1.0);
        assert_eq!(s.last_24h.total, 0);
        assert_eq!(s.totals["total"], 3);
        assert_eq!(s.errors_5xx_total, 1);
        // A reused ring slot forgets its old period.
        m.record(Category::Admin, 200, t0 + 86_520.0);
        let s = m.snapshot(t0 + 86_520.0, 1.0);
        assert_eq!((s.last_24h.total, s.last_24h.admin), (1, 1));
    }
}
