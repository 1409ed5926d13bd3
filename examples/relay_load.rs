//! Load generator for a relay on loopback: `GET /sota_threshold` or signed
//! `POST /submit_solution`, over N keep-alive connections, bounded by a request count and
//! a duration. Prints requests/s and latency percentiles.
//!
//! ```text
//! cargo run --release --example relay_load -- --url http://127.0.0.1:8002 \
//!     --mode submit --connections 32 --requests 30000 --seconds 20
//! ```
//!
//! Signed requests are prepared before the clock starts: sr25519 signatures are
//! randomised, so signing `auth:<now>` many times gives distinct signatures (the relay
//! refuses replays), and every body carries a distinct salt (the relay refuses duplicate
//! algorithms within its window). The target relay must accept any miner (test mode).

use bitsota::keys::{relay_miner_headers, Keypair, SignedHeaders};
use clap::{Parser, ValueEnum};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Mode {
    /// Unsigned `GET /sota_threshold`.
    Sota,
    /// Signed `POST /submit_solution`, distinct bodies.
    Submit,
}

#[derive(Parser, Debug)]
#[command(about = "Load generator for a bitsota relay on loopback")]
struct Args {
    /// Relay base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8002")]
    url: String,
    #[arg(long, value_enum, default_value = "sota")]
    mode: Mode,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Total requests (upper bound; at most 200000).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Stop after this many seconds even if requests remain (at most 300).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Distinct miner keys for `submit`.
    #[arg(long, default_value_t = 500)]
    miners: usize,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    json: bool,
}

/// One prepared request.
struct Prepared {
    headers: Option<SignedHeaders>,
    body: Option<Vec<u8>>,
}

fn loopback(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.starts_with(p)
                && url[p.len()..]
                    .chars()
                    .next()
                    .map_or(true, |c| c == ':' || c == '/')
        })
}

fn prepare(args: &Args) -> Vec<Prepared> {
    match args.mode {
        Mode::Sota => (0..args.requests)
            .map(|_| Prepared {
                headers: None,
                body: None,
            })
            .collect(),
        Mode::Submit => {
            let keys: Vec<Keypair> = (0..args.miners.max(1))
                .map(|_| Keypair::generate())
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let run = uuid::Uuid::new_v4().simple().to_string();
            (0..args.requests)
                .map(|i| {
                    let kp = &keys[i % keys.len()];
                    let body = serde_json::json!({
                        "task_id": format!("load-{i}"),
                        "score": 0.9,
                        "algorithm_result": {
                            "task_type": "scalar_linear",
                            "input_dim": 16,
                            "metadata": {"run": run, "n": i},
                        },
                    });
                    Prepared {
                        headers: Some(relay_miner_headers(kp, now)),
                        body: Some(serde_json::to_vec(&body).unwrap_or_default()),
                    }
                })
                .collect()
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = Args::parse();
    if !loopback(&args.url) {
        return Err(format!("refusing non-loopback URL {}", args.url).into());
    }
    args.requests = args.requests.clamp(1, 200_000);
    args.seconds = args.seconds.clamp(1, 300);
    args.connections = args.connections.clamp(1, 1024);
    let base = args.url.trim_end_matches('/').to_string();

    let prep_start = Instant::now();
    let prepared = Arc::new(prepare(&args));
    let prep_s = prep_start.elapsed().as_secs_f64();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (client, prepared, next) = (client.clone(), prepared.clone(), next.clone());
        let (url, mode) = (
            match args.mode {
                Mode::Sota => format!("{base}/sota_threshold"),
                Mode::Submit => format!("{base}/submit_solution"),
            },
            args.mode,
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::new();
            let (mut errors, mut non_2xx) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= prepared.len() || Instant::now() >= deadline {
                    break;
                }
                let p = &prepared[i];
                let mut rb = match mode {
                    Mode::Sota => client.get(&url),
                    Mode::Submit => client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .body(p.body.clone().unwrap_or_default()),
                };
                if let Some(h) = &p.headers {
                    for (k, v) in h.pairs() {
                        rb = rb.header(k, v);
                    }
                }
                let t = Instant::now();
                match rb.send().await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let _ = resp.bytes().await;
                        latencies_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        if !ok {
                            non_2xx += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies_us, errors, non_2xx)
        }));
    }
    let mut all = Vec::new();
    let (mut errors, mut non_2xx) = (0, 0);
    for t in tasks {
        let (l, e, n) = t.await?;
        all.extend(l);
        errors += e;
        non_2xx += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let rps = all.len() as f64 / elapsed;
    let (p50, p99, max) = (
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "mode": format!("{:?}", args.mode).to_lowercase(),
                "connections": args.connections, "completed": all.len(), "errors": errors,
                "non_2xx": non_2xx, "seconds": elapsed, "requests_per_s": rps,
                "p50_ms": p50, "p99_ms": p99, "max_ms": max, "prepare_s": prep_s,
            })
        );
    } else {
        println!(
            "{:?} x{} conns: {} requests in {:.2} s = {:.0} req/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} non-2xx, {} transport errors (prepared in {:.1} s)",
            args.mode, args.connections, all.len(), elapsed, rps, p50, p99, max, non_2xx, errors, prep_s
        );
    }
    Ok(())
}
