//! Soak: the shipped loop's footprint over time. Starts `bitsota serve --config
//! appliance.toml` (the release binary, on a fresh data directory, ports chosen by the
//! system, nothing else overridden), samples it every `--every-s` seconds and writes
//! after each sample:
//!
//! - `<out>.csv`: minutes, the store's size on disk as the daemon reports it
//!   (`/admin/status`), `du` of the store, of the whole data directory, of its log and
//!   metrics files, the daemon's resident memory (`/proc/<pid>/status`), the miner's
//!   children (`/appliance/status`) and children/s over the last interval, and the
//!   records held in all trees;
//! - `<out>.trees.csv`: records and bytes per store tree at each sample;
//! - `<out>.svg`: the data directory's sizes, the resident memory and children/s
//!   against minutes (`--redraw` draws it again from `<out>.csv`).
//!
//! ```text
//! cargo build --release
//! nice -n 5 cargo run --release --example soak -- --minutes 60 --out docs/soak/shipped-60min
//! cargo run --release --example soak -- --out docs/soak/shipped-60min --redraw
//! ```

use clap::Parser;
use plotters::prelude::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Run the shipped appliance and record its footprint once a minute")]
struct Args {
    /// The daemon binary (build it with `cargo build --release`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/bitsota"))]
    bin: PathBuf,
    /// Its configuration.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/appliance.toml"))]
    config: PathBuf,
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60)]
    every_s: u64,
    /// Output path without extension: writes <out>.csv, <out>.trees.csv and <out>.svg.
    #[arg(long)]
    out: PathBuf,
    /// The relay's admin token (the shipped test mode's is "dev").
    #[arg(long, default_value = "dev")]
    admin_token: String,
    /// Only draw <out>.svg again from <out>.csv (no daemon).
    #[arg(long)]
    redraw: bool,
}

/// One sample of the daemon's footprint.
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    minutes: f64,
    /// `Store::size_on_disk`, as `/admin/status` reports it.
    store_bytes: u64,
    store_du_bytes: u64,
    data_du_bytes: u64,
    logs_du_bytes: u64,
    metrics_du_bytes: u64,
    rss_bytes: u64,
    /// The miner's children so far, and per second since the previous sample.
    children: u64,
    children_per_s: f64,
    records: u64,
}

const HEADER: &str = "minutes,store_bytes,store_du_bytes,data_du_bytes,logs_du_bytes,metrics_du_bytes,rss_bytes,children,children_per_s,records";

impl Sample {
    fn csv_line(&self) -> String {
        format!(
            "{:.2},{},{},{},{},{},{},{},{:.1},{}",
            self.minutes,
            self.store_bytes,
            self.store_du_bytes,
            self.data_du_bytes,
            self.logs_du_bytes,
            self.metrics_du_bytes,
            self.rss_bytes,
            self.children,
            self.children_per_s,
            self.records
        )
    }
}

impl Sample {
    /// A row of the main CSV read back (`None` for the header or a malformed row).
    fn parse(line: &str) -> Option<Sample> {
        let cells: Vec<&str> = line.trim().split(',').collect();
        let [minutes, store, store_du, data_du, logs_du, metrics_du, rss, children, rate, records] =
            cells[..]
        else {
            return None;
        };
        Some(Sample {
            minutes: minutes.parse().ok()?,
            store_bytes: store.parse().ok()?,
            store_du_bytes: store_du.parse().ok()?,
            data_du_bytes: data_du.parse().ok()?,
            logs_du_bytes: logs_du.parse().ok()?,
            metrics_du_bytes: metrics_du.parse().ok()?,
            rss_bytes: rss.parse().ok()?,
            children: children.parse().ok()?,
            children_per_s: rate.parse().ok()?,
            records: records.parse().ok()?,
        })
    }
}

/// The main CSV.
fn csv(samples: &[Sample]) -> String {
    let mut out = format!("{HEADER}\n");
    for s in samples {
        out.push_str(&s.csv_line());
        out.push('\n');
    }
    out
}

/// One tree's records and bytes at a sample.
#[derive(Clone, Debug, PartialEq)]
struct TreeRow {
    minutes: f64,
    tree: String,
    records: u64,
    bytes: u64,
}

/// The per-tree CSV.
fn trees_csv(rows: &[TreeRow]) -> String {
    let mut out = String::from("minutes,tree,records,bytes\n");
    for r in rows {
        let _ = writeln!(out, "{:.2},{},{},{}", r.minutes, r.tree, r.records, r.bytes);
    }
    out
}

/// The trees of an `/admin/status` document (`storage.trees`).
fn tree_rows(minutes: f64, status: &Value) -> Vec<TreeRow> {
    status["storage"]["trees"]
        .as_array()
        .map(|trees| {
            trees
                .iter()
                .map(|t| TreeRow {
                    minutes,
                    tree: t["name"].as_str().unwrap_or("?").to_string(),
                    records: t["records"].as_u64().unwrap_or(0),
                    bytes: t["bytes"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Resident memory in bytes from the text of `/proc/<pid>/status` (`VmRSS: N kB`).
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => Some(n * 1024),
        _ => None,
    }
}

/// Children per second between two samples (0 when the count went down: a new run).
fn rate(prev: Option<(f64, u64)>, minutes: f64, children: u64) -> f64 {
    match prev {
        Some((m, c)) if minutes > m && children >= c => {
            (children - c) as f64 / ((minutes - m) * 60.0)
        }
        _ => 0.0,
    }
}

/// Allocated bytes of the files under `path` (what `du` counts).
fn du(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

/// One curve of a panel: its label, its points (minutes, value) and its colour.
type Curve = (&'static str, Vec<(f64, f64)>, RGBColor);

/// One panel: `curves` against minutes, from 0 to a little above the largest value.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    x_max: f64,
    curves: Vec<Curve>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let y_max = curves
        .iter()
        .flat_map(|(_, points, _)| points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| err(&e))?;
    let labelled = curves.len() > 1;
    for (label, points, color) in curves {
        let drawn = chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| err(&e))?;
        if labelled {
            drawn.label(label).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    Ok(())
}

/// Bytes as (decimal) megabytes.
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Draw the data directory's sizes, the resident memory and the miner's children/s
/// against minutes, one panel each.
fn draw(path: &Path, title: &str, samples: &[Sample]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let x_max = samples.iter().map(|s| s.minutes).fold(1.0, f64::max);
    let curve = |label, f: fn(&Sample) -> f64, color| -> Curve {
        (
            label,
            samples.iter().map(|s| (s.minutes, f(s))).collect(),
            color,
        )
    };
    let root = SVGBackend::new(path, (900, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| err(&e))?;
    let (sizes, rest) = root.split_vertically(440);
    let (memory, rate) = rest.split_vertically(200);
    let size_curves = vec![
        curve("du data dir", |s| mb(s.data_du_bytes), BLACK),
        curve(
            "du store/",
            |s| mb(s.store_du_bytes),
            RGBColor(120, 120, 255),
        ),
        curve("store size on disk (sled)", |s| mb(s.store_bytes), BLUE),
        curve(
            "du logs/ + metrics/",
            |s| mb(s.logs_du_bytes + s.metrics_du_bytes),
            GREEN,
        ),
    ];
    panel(&sizes, "data directory", "MB", x_max, size_curves).map_err(|e| err(&e))?;
    let rss = vec![curve("resident memory", |s| mb(s.rss_bytes), RED)];
    panel(&memory, "resident memory", "MB", x_max, rss).map_err(|e| err(&e))?;
    // The first sample has no interval behind it.
    let mut children = curve("children/s", |s| s.children_per_s / 1000.0, BLUE);
    children.1.drain(..1.min(children.1.len()));
    panel(&rate, "miner", "k children/s", x_max, vec![children]).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// The daemon under test; killed if the soak ends early.
struct Daemon {
    child: Child,
    relay: String,
    sidecar: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &Args, data_dir: &Path, stderr: &Path) -> anyhow::Result<Daemon> {
    let child = Command::new(&args.bin)
        .arg("serve")
        .arg("--config")
        .arg(&args.config)
        .env("BITSOTA_DATA_DIR", data_dir)
        .env("BITSOTA_RELAY_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_SIDECAR_LISTEN", "127.0.0.1:0")
        .env("BITSOTA_POOL_LISTEN", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr)?)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", args.bin.display()))?;
    let endpoints = data_dir.join("endpoints.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut daemon = Daemon {
        child,
        relay: String::new(),
        sidecar: String::new(),
    };
    loop {
        if let Ok(text) = std::fs::read_to_string(&endpoints) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                daemon.relay = v["relay"].as_str().unwrap_or_default().to_string();
                daemon.sidecar = v["sidecar"].as_str().unwrap_or_default().to_string();
                return Ok(daemon);
            }
        }
        if Instant::now() > deadline || daemon.child.try_wait()?.is_some() {
            anyhow::bail!(
                "the daemon did not start: {}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get_json(http: &reqwest::blocking::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .header("X-Auth-Token", token)
        .send()?
        .error_for_status()?
        .json()?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let with_ext = |ext: &str| {
        let mut p = args.out.clone().into_os_string();
        p.push(ext);
        PathBuf::from(p)
    };
    let title = |minutes: f64| format!("bitsota serve, shipped appliance.toml: {minutes:.0} min");
    if args.redraw {
        let text = std::fs::read_to_string(with_ext(".csv"))?;
        let samples: Vec<Sample> = text.lines().filter_map(Sample::parse).collect();
        let minutes = samples.last().map_or(0.0, |s| s.minutes);
        return draw(&with_ext(".svg"), &title(minutes), &samples).map_err(anyhow::Error::msg);
    }
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("data");
    let daemon = start(&args, &data_dir, &tmp.path().join("serve.stderr"))?;
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let started = Instant::now();
    let (mut samples, mut trees): (Vec<Sample>, Vec<TreeRow>) = (Vec::new(), Vec::new());
    for k in 0..=(args.minutes * 60 / args.every_s.max(1)) {
        let at = started + Duration::from_secs(k * args.every_s);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        let status = get_json(
            &http,
            &format!("{}/admin/status", daemon.relay),
            &args.admin_token,
        )?;
        let miner = get_json(&http, &format!("{}/appliance/status", daemon.sidecar), "")?;
        let proc_status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))?;
        let rows = tree_rows(minutes, &status);
        let children = miner["miner"]["generation"].as_u64().unwrap_or(0);
        let sample = Sample {
            minutes,
            store_bytes: status["storage"]["size_on_disk_bytes"]
                .as_u64()
                .unwrap_or(0),
            store_du_bytes: du(&data_dir.join("store")),
            data_du_bytes: du(&data_dir),
            logs_du_bytes: du(&data_dir.join("logs")),
            metrics_du_bytes: du(&data_dir.join("metrics")),
            rss_bytes: vm_rss_bytes(&proc_status).unwrap_or(0),
            children,
            children_per_s: rate(
                samples.last().map(|s: &Sample| (s.minutes, s.children)),
                minutes,
                children,
            ),
            records: rows.iter().map(|r| r.records).sum(),
        };
        println!("{}", sample.csv_line());
        samples.push(sample);
        trees.extend(rows);
        std::fs::write(with_ext(".csv"), csv(&samples))?;
        std::fs::write(with_ext(".trees.csv"), trees_csv(&trees))?;
        draw(&with_ext(".svg"), &title(args.minutes as f64), &samples)
            .map_err(anyhow::Error::msg)?;
    }
    drop(daemon);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resident_memory_is_read_from_proc_status() {
        let status = "Name:\tbitsota\nVmPeak:\t  900000 kB\nVmRSS:\t   65536 kB\nThreads:\t30\n";
        assert_eq!(vm_rss_bytes(status), Some(64 << 20));
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\t12 MB\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn samples_and_trees_become_csv_rows() {
        let s = Sample {
            minutes: 5.0,
            store_bytes: 1_000_000,
            store_du_bytes: 2_000_000,
            data_du_bytes: 3_000_000,
            logs_du_bytes: 40_000,
            metrics_du_bytes: 5_000,
            rss_bytes: 60 << 20,
            children: 1234,
            children_per_s: 41.13,
            records: 77,
        };
        let text = csv(std::slice::from_ref(&s));
        let lines: Vec<&str> = text.lines().collect();
        // `--redraw` reads the rows back (the rate has one decimal in the file).
        let back = Sample::parse(lines[1]).unwrap();
        assert_eq!(
            back,
            Sample {
                children_per_s: 41.1,
                ..s.clone()
            }
        );
        assert_eq!(Sample::parse(HEADER), None);
        assert_eq!(Sample::parse("1,2,3"), None);
        assert_eq!(lines[0], HEADER);
        assert_eq!(
            lines[1],
            "5.00,1000000,2000000,3000000,40000,5000,62914560,1234,41.1,77"
        );
        assert_eq!(
            lines[0].split(',').count(),
            lines[1].split(',').count(),
            "a cell per column"
        );
        let status = json!({"storage": {"trees": [
            {"name": "relay.results", "records": 3, "bytes": 900},
            {"name": "sidecar.logs", "records": 1000, "bytes": 170000},
        ]}});
        let rows = tree_rows(5.0, &status);
        assert_eq!(
            trees_csv(&rows),
            "minutes,tree,records,bytes\n5.00,relay.results,3,900\n5.00,sidecar.logs,1000,170000\n"
        );
        assert!(tree_rows(1.0, &json!({})).is_empty());
    }

    #[test]
    fn children_per_second_over_the_interval() {
        assert_eq!(rate(None, 0.0, 500), 0.0);
        assert_eq!(rate(Some((1.0, 600)), 2.0, 6600), 100.0);
        // A new run restarts the count: no negative rate.
        assert_eq!(rate(Some((1.0, 600)), 2.0, 10), 0.0);
    }

    #[test]
    fn a_curve_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("soak.svg");
        let samples: Vec<Sample> = (0..5)
            .map(|m| Sample {
                minutes: m as f64,
                store_bytes: 100_000 * m,
                store_du_bytes: 120_000 * m,
                data_du_bytes: 200_000 * m,
                logs_du_bytes: 1000 * m,
                metrics_du_bytes: 500 * m,
                rss_bytes: 60 << 20,
                children: 6000 * m,
                children_per_s: 100.0,
                records: 10 * m,
            })
            .collect();
        draw(&path, "test", &samples).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["<svg", "data directory", "resident memory", "k children/s"] {
            assert!(svg.contains(text), "{text}");
        }
    }
}
