//! `bitsota profile`: the three paths write real pprof files whose stage counters match
//! the work asked for, `summarize` puts them side by side, and bad flags or an
//! unwritable output fail with one clear line and the right exit code.

use crate::common;

use pprof::protos::{Message, Profile};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

fn profile(args: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(common::bin())
        .arg("profile")
        .args(args)
        .env("BITSOTA_DATA_DIR", data.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// FILE as `go tool pprof` reads it: gzipped protobuf.
fn decode(path: &Path) -> Profile {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut raw)
        .expect("the profile is gzipped");
    Profile::parse_from_bytes(&raw).expect("the profile is pprof protobuf")
}

fn record(path: &Path) -> Value {
    let file = format!("{}.stages.json", path.display());
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn counter(record: &Value, name: &str) -> u64 {
    record["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}: {record}"))
}

/// The search of the original guide's profiling runs, at a smaller population.
fn search(pop: &str, warmup: &str, generations: &str) -> Vec<String> {
    [
        "--task-type",
        "scalar_linear",
        "--engine",
        "baseline",
        "--seed",
        "123",
        "--pop-size",
        pop,
        "--miner-task-count",
        "10",
        "--tournament-size",
        "10",
        "--mutation-prob",
        "0.9",
        "--fec-cache-size",
        "0",
        "--warmup-generations",
        warmup,
        "--generations",
        generations,
    ]
    .map(String::from)
    .to_vec()
}

fn run(path: &str, args: &[String], extra: &[&str]) -> Output {
    let mut all: Vec<&str> = vec![path];
    all.extend(args.iter().map(String::as_str));
    all.extend(extra);
    let out = profile(&all);
    common::assert_success(&out);
    out
}

/// The acceptance run: one generation of 100 children after one of warm-up. The file
/// decodes as pprof (sample types, string table, functions behind every sample) and
/// the counters see exactly the 100 children.
#[test]
fn the_miner_path_writes_pprof_and_counts_one_generation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("miner.pb");
    let out = run(
        "miner",
        &search("100", "1", "1"),
        &["--out", file.to_str().unwrap(), "--flamegraph"],
    );

    let p = decode(&file);
    let text = |i: i64| p.string_table[i as usize].as_str();
    assert_eq!(p.string_table[0], "", "pprof's string table starts empty");
    let types: Vec<(&str, &str)> = p
        .sample_type
        .iter()
        .map(|t| (text(t.ty), text(t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    let functions: std::collections::HashSet<u64> = p.function.iter().map(|f| f.id).collect();
    for f in &p.function {
        assert!((f.name as usize) < p.string_table.len());
    }
    for s in &p.sample {
        assert_eq!(s.value.len(), 2);
        assert!(s.value[0] > 0);
        for id in &s.location_id {
            let loc = p.location.iter().find(|l| l.id == *id).expect("a location");
            assert!(loc.line.iter().all(|l| functions.contains(&l.function_id)));
        }
    }
    let r = record(&file);
    assert_eq!(r["path"], "miner");
    assert_eq!(counter(&r, "children"), 100);
    assert_eq!(counter(&r, "compiles"), 100);
    assert_eq!(counter(&r, "exact_lookups"), 100);
    assert_eq!(
        counter(&r, "evaluations") + counter(&r, "exact_hits"),
        100,
        "every child is evaluated or a duplicate"
    );
    assert_eq!(
        counter(&r, "task_evaluations"),
        10 * counter(&r, "evaluations")
    );
    let mutations: u64 = ["alter_param", "alter_instruction", "randomize_component"]
        .iter()
        .map(|m| counter(&r, &format!("mutations.{m}")))
        .sum();
    assert!(
        (70..=100).contains(&mutations),
        "p = 0.9 of 100: {mutations}"
    );
    assert_eq!(
        r["samples"].as_u64().unwrap(),
        p.sample.iter().map(|s| s.value[0] as u64).sum::<u64>()
    );
    let svg = std::fs::read_to_string(format!("{}.flame.svg", file.display())).unwrap();
    assert!(svg.contains("<svg"), "{svg}");

    let summary = String::from_utf8(out.stdout).unwrap();
    let children = summary
        .lines()
        .find(|l| l.starts_with("children "))
        .unwrap_or_else(|| panic!("no children row:\n{summary}"));
    assert_eq!(
        children.split_whitespace().collect::<Vec<_>>(),
        ["children", "100"]
    );
    assert!(
        summary.contains("top functions by self samples"),
        "{summary}"
    );
}

/// The three paths on one search (two generations of 20 profiled), summarized side by
/// side: children are generations × pop size × workers everywhere; the sidecar path's
/// events and requests follow from its checkpoint and batch size, and the sidecar
/// (a real daemon) holds what was posted.
#[test]
fn summarize_puts_the_three_paths_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let search = search("20", "1", "2");
    run("miner", &search, &["--out", &path("a.pb")]);
    run(
        "dashboard",
        &search,
        &[
            "--out",
            &path("b.pb"),
            "--checkpoint-generations",
            "10",
            "--sink-lines",
            "12",
            "--offline-sota-threshold",
            "0.5",
        ],
    );
    let daemon = common::Daemon::start(common::Opts::default().arg("--test"));
    run(
        "sidecar",
        &search,
        &[
            "--out",
            &path("c.pb"),
            "--sidecar-url",
            &daemon.sidecar,
            "--run-id",
            "profiled",
            "--workers",
            "2",
            "--checkpoint-generations",
            "10",
            "--batch-size",
            "3",
            "--validate-every",
            "50",
        ],
    );

    let (a, b, c) = (
        record(Path::new(&path("a.pb"))),
        record(Path::new(&path("b.pb"))),
        record(Path::new(&path("c.pb"))),
    );
    assert_eq!(counter(&a, "children"), 40);
    assert_eq!(counter(&b, "children"), 40);
    assert_eq!(counter(&c, "children"), 2 * 40);
    // The dashboard polled, drew and saw the run's events written.
    assert!(counter(&b, "http_requests") > 0, "{b}");
    assert!(counter(&b, "frames") > 0, "{b}");
    assert!(counter(&b, "events_written") > 0, "{b}");
    // Sidecar: a progress event per worker every 10 children, one event per
    // verification, the closing `done`; posted 3 to a request.
    assert_eq!(counter(&c, "progress_events"), 2 * 40 / 10);
    let events = counter(&c, "events_written");
    assert_eq!(
        events,
        counter(&c, "progress_events") + counter(&c, "verifications") + 1
    );
    assert_eq!(counter(&c, "http_requests"), events.div_ceil(3));
    assert!(counter(&c, "http_bytes_sent") > 0);
    let state: Value = common::http()
        .get(format!("{}/state?run_id=profiled", daemon.sidecar))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(
        state["tasks_completed"],
        2 * 60,
        "both workers' last iteration: {state}"
    );

    let files = [path("a.pb"), path("b.pb"), path("c.pb")];
    let mut args = vec!["summarize"];
    args.extend(files.iter().map(String::as_str));
    let out = profile(&args);
    common::assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("== side by side"), "{text}");
    let row = text
        .lines()
        .rev()
        .find(|l| l.starts_with("children "))
        .unwrap();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["children", "40", "40", "(1.00×)", "80", "(2.00×)"],
        "{text}"
    );
    args.push("--json");
    let out = profile(&args);
    common::assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["comparison"].as_array().unwrap();
    let children = rows.iter().find(|r| r["metric"] == "children").unwrap();
    assert_eq!(children["values"], serde_json::json!([40.0, 40.0, 80.0]));
    assert_eq!(children["ratios"], serde_json::json!([1.0, 1.0, 2.0]));
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_flags_and_unwritable_output_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("x.pb");
    let out = out_file.to_str().unwrap();
    let usage = |args: &[&str], says: &str| {
        let o = profile(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        stderr(&o)
    };
    // Ours: one line each.
    for (args, says) in [
        (
            vec!["miner", "--generations", "0", "--out", out],
            "--generations must be at least 1",
        ),
        (
            vec![
                "miner",
                "--pop-size",
                "5",
                "--tournament-size",
                "10",
                "--out",
                out,
            ],
            "tournament_size (10) must not exceed pop_size (5)",
        ),
        (
            vec![
                "sidecar",
                "--pop-size",
                "20",
                "--iterations",
                "20",
                "--out",
                out,
            ],
            "--iterations (20) must exceed the warm-up's 20 children",
        ),
        (
            vec!["dashboard", "--sink-lines", "0", "--out", out],
            "--sink-lines",
        ),
        (
            vec!["sidecar", "--sidecar-url", "not a url", "--out", out],
            "--sidecar-url",
        ),
    ] {
        let err = usage(&args, says);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    // clap's: missing --out, unknown engine, --iterations with --generations.
    usage(&["miner"], "--out");
    usage(&["miner", "--engine", "nope", "--out", out], "nope");
    usage(
        &[
            "sidecar",
            "--iterations",
            "50",
            "--generations",
            "2",
            "--out",
            out,
        ],
        "--iterations",
    );
    usage(&["summarize"], "FILE");
    assert!(!out_file.exists(), "nothing ran, nothing written");

    // Runtime failures: exit 1, one line, nothing left behind.
    let missing = dir.path().join("no-such-dir").join("x.pb");
    let o = profile(&[
        "miner",
        "--pop-size",
        "10",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("cannot write {}", missing.display())),
        "{}",
        stderr(&o)
    );
    let o = profile(&["summarize", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    // A directory as --out.
    let o = profile(&[
        "miner",
        "--pop-size",
        "10",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!Path::new(&format!("{}.stages.json", dir.path().display())).exists());
}
