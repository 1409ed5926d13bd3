//! `bitsota profile summarize FILE…`: for each profile its stage table (calls, time and
//! share), its counters and its hottest functions by self and total samples; for
//! several, the paths side by side with each value's ratio to the first file's.
//!
//! Reading is separate from rendering: [`hotspots`] and [`comparison`] are pure over a
//! decoded profile and records, so the tables are unit-tested without files.

use super::record::{stages_path, Record, FORMAT};
use anyhow::Context;
use pprof::protos::{Message, Profile};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Functions listed per table unless `--top` says otherwise.
pub const DEFAULT_TOP: usize = 10;

#[derive(clap::Args, Debug)]
pub struct SummarizeArgs {
    /// Profiles written by `bitsota profile` (each with its FILE.stages.json beside it).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Functions listed by self and by total samples.
    #[arg(long, default_value_t = DEFAULT_TOP)]
    pub top: usize,
}

pub fn run(args: &SummarizeArgs) -> anyhow::Result<()> {
    let summaries = args
        .files
        .iter()
        .map(|f| load(f, args.top))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&to_json(&summaries))?;
        t.push('\n');
        t
    } else {
        render(&summaries)
    };
    // Not `print!`: it panics on a closed pipe.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

/// A function (or thread) and the samples it accounts for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hot {
    pub name: String,
    pub samples: u64,
}

/// Where a profile's samples fall.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Hotspots {
    pub samples: u64,
    /// Functions a sample was taken in (the leaf).
    pub by_self: Vec<Hot>,
    /// Functions on the stack of a sample (each counted once per sample).
    pub by_total: Vec<Hot>,
    pub threads: Vec<Hot>,
}

/// One profile read back: its record and its samples' hotspots.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub file: String,
    pub record: Record,
    pub hotspots: Hotspots,
}

/// Read FILE (pprof, gzipped or not) and FILE.stages.json.
pub fn load(path: &Path, top: usize) -> anyhow::Result<Summary> {
    let profile = read_profile(path)?;
    let stages = stages_path(path);
    let text = std::fs::read_to_string(&stages)
        .with_context(|| format!("cannot read {}", stages.display()))?;
    let record: Record = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a profile record", stages.display()))?;
    if record.format != FORMAT {
        anyhow::bail!(
            "{}: format {:?}, this bitsota reads {FORMAT:?}",
            stages.display(),
            record.format
        );
    }
    Ok(Summary {
        file: path.display().to_string(),
        record,
        hotspots: hotspots(&profile, top),
    })
}

/// Decode a pprof file, gzipped (as written) or plain.
pub fn read_profile(path: &Path) -> anyhow::Result<Profile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("{}: not a gzipped pprof profile", path.display()))?;
        out
    } else {
        bytes
    };
    Profile::parse_from_bytes(&raw)
        .with_context(|| format!("{}: not a pprof profile", path.display()))
}

/// Self and total samples per function and samples per thread, the `top` of each.
pub fn hotspots(p: &Profile, top: usize) -> Hotspots {
    let text = |i: i64| p.string_table.get(i as usize).map_or("?", String::as_str);
    let functions: HashMap<u64, &str> = p.function.iter().map(|f| (f.id, text(f.name))).collect();
    // A location's functions, innermost first (pprof lists inlined frames that way).
    let locations: HashMap<u64, Vec<&str>> = p
        .location
        .iter()
        .map(|l| {
            let names = l
                .line
                .iter()
                .map(|ln| functions.get(&ln.function_id).copied().unwrap_or("?"))
                .collect();
            (l.id, names)
        })
        .collect();
    // The value that counts samples (pprof-rs writes `samples/count` first).
    let column = p
        .sample_type
        .iter()
        .position(|t| text(t.ty) == "samples")
        .unwrap_or(0);
    let thread_key = p.string_table.iter().position(|s| s == "thread");
    let (mut by_self, mut by_total, mut threads) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut total = 0;
    for s in &p.sample {
        let n = s.value.get(column).copied().unwrap_or(0).max(0) as u64;
        total += n;
        let stack: Vec<&str> = s
            .location_id
            .iter()
            .flat_map(|id| locations.get(id).into_iter().flatten().copied())
            .collect();
        if let Some(leaf) = stack.first() {
            *by_self.entry(*leaf).or_insert(0) += n;
        }
        for f in stack.iter().collect::<HashSet<_>>() {
            *by_total.entry(*f).or_insert(0) += n;
        }
        let thread = s
            .label
            .iter()
            .find(|l| Some(l.key as usize) == thread_key)
            .map_or("?", |l| text(l.str));
        *threads.entry(thread).or_insert(0) += n;
    }
    let ranked = |m: BTreeMap<&str, u64>| {
        let mut v: Vec<Hot> = m
            .into_iter()
            .map(|(name, samples)| Hot {
                name: name.to_string(),
                samples,
            })
            .collect();
        // Most samples first; names break ties (the map gave them sorted).
        v.sort_by_key(|h| std::cmp::Reverse(h.samples));
        v.truncate(top);
        v
    };
    Hotspots {
        samples: total,
        by_self: ranked(by_self),
        by_total: ranked(by_total),
        threads: ranked(threads),
    }
}

/// One row of the side-by-side table: a metric's value per file (`None` where a file
/// does not have it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub metric: String,
    pub values: Vec<Option<f64>>,
}

impl Row {
    /// Each value over the first file's (`None` where either is missing or the first
    /// is zero).
    pub fn ratios(&self) -> Vec<Option<f64>> {
        let first = self.values.first().copied().flatten();
        self.values
            .iter()
            .map(|v| match (first, v) {
                (Some(f), Some(v)) if f != 0.0 => Some(v / f),
                _ => None,
            })
            .collect()
    }
}

/// The records side by side: wall time, samples, each stage's time, each counter; rows
/// in the order the files first name them.
pub fn comparison(records: &[&Record]) -> Vec<Row> {
    let mut names: Vec<String> = vec!["wall_ms".into(), "samples".into()];
    let mut add = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    for r in records {
        for s in &r.stages {
            add(format!("{}_ms", s.name));
        }
    }
    for r in records {
        for k in r.counters.keys() {
            add(k.clone());
        }
    }
    names
        .into_iter()
        .map(|metric| {
            let values = records.iter().map(|r| metric_of(r, &metric)).collect();
            Row { metric, values }
        })
        .collect()
}

fn metric_of(r: &Record, metric: &str) -> Option<f64> {
    match metric {
        "wall_ms" => Some(r.wall_seconds * 1e3),
        "samples" => Some(r.samples as f64),
        _ => {
            if let Some(stage) = metric.strip_suffix("_ms") {
                if let Some(s) = r.stages.iter().find(|s| s.name == stage) {
                    return Some(s.seconds * 1e3);
                }
            }
            r.counters.get(metric).map(|&v| v as f64)
        }
    }
}

/// The width of a name column.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0).max(7)
}

fn setting(r: &Record, key: &str) -> String {
    match r.settings.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".into(),
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1}%", 100.0 * part / whole)
    } else {
        "–".into()
    }
}

/// The tables of every file, then (for several) the side-by-side table.
pub fn render(summaries: &[Summary]) -> String {
    let mut out = String::new();
    for s in summaries {
        render_one(&mut out, s);
    }
    if summaries.len() > 1 {
        render_comparison(&mut out, summaries);
    }
    out
}

fn render_one(out: &mut String, s: &Summary) {
    let r = &s.record;
    let _ = writeln!(
        out,
        "== {} ({}): {} × {} generation(s) of {} children after {} warm-up, {} worker(s); \
         wall {} ms, {} samples at {} Hz",
        s.file,
        r.path,
        setting(r, "task_type"),
        setting(r, "generations"),
        setting(r, "pop_size"),
        setting(r, "warmup_generations"),
        setting(r, "workers"),
        number(r.wall_seconds * 1e3),
        r.samples,
        r.frequency,
    );
    let staged: f64 = r.stages.iter().map(|s| s.seconds).sum();
    let w = name_width(
        r.stages
            .iter()
            .map(|s| s.name.as_str())
            .chain(r.counters.keys().map(String::as_str)),
    );
    let _ = writeln!(
        out,
        "{:<w$} {:>12} {:>12} {:>8}",
        "stage", "calls", "time ms", "share"
    );
    for st in &r.stages {
        let _ = writeln!(
            out,
            "{:<w$} {:>12} {:>12} {:>8}",
            st.name,
            st.calls,
            number(st.seconds * 1e3),
            percent(st.seconds, staged)
        );
    }
    let _ = writeln!(out, "{:<w$} {:>12}", "counter", "count");
    for (k, v) in &r.counters {
        let _ = writeln!(out, "{k:<w$} {v:>12}");
    }
    let h = &s.hotspots;
    for (title, list) in [
        ("top functions by self samples", &h.by_self),
        ("top functions by total samples", &h.by_total),
        ("samples by thread", &h.threads),
    ] {
        let _ = writeln!(out, "{title}");
        if list.is_empty() {
            let _ = writeln!(out, "  (no samples: the window was too short to sample)");
        }
        for f in list {
            let share = percent(f.samples as f64, h.samples as f64);
            let _ = writeln!(out, "{:>8} {share:>7}  {}", f.samples, f.name);
        }
    }
    out.push('\n');
}

fn render_comparison(out: &mut String, summaries: &[Summary]) {
    let records: Vec<&Record> = summaries.iter().map(|s| &s.record).collect();
    let names: Vec<String> = summaries
        .iter()
        .map(|s| {
            let file = Path::new(&s.file)
                .file_name()
                .map_or(s.file.clone(), |n| n.to_string_lossy().into_owned());
            format!("{} ({})", file, s.record.path)
        })
        .collect();
    let rows = comparison(&records);
    let w = name_width(rows.iter().map(|r| r.metric.as_str()));
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let _ = writeln!(out, "== side by side (× = ratio to {})", names[0]);
    let _ = write!(out, "{:<w$}", "metric");
    for n in &names {
        let _ = write!(out, " {n:>width$}");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "{:<w$}", row.metric);
        for (i, (v, ratio)) in row.values.iter().zip(row.ratios()).enumerate() {
            let cell = match (v, ratio) {
                (None, _) => "–".to_string(),
                (Some(v), Some(x)) if i > 0 => format!("{} ({x:.2}×)", number(*v)),
                (Some(v), _) => number(*v),
            };
            let _ = write!(out, " {cell:>width$}");
        }
        out.push('\n');
    }
}

/// `--json`: every file's record and hotspots, and the side-by-side rows with ratios.
pub fn to_json(summaries: &[Summary]) -> Value {
    let files: Vec<Value> = summaries
        .iter()
        .map(|s| {
            json!({
                "file": s.file,
                "record": s.record,
                "hotspots": s.hotspots,
            })
        })
        .collect();
    let records: Vec<&Record> = summaries.iter().map(|s| &s.record).collect();
    let rows: Vec<Value> = comparison(&records)
        .iter()
        .map(|r| json!({"metric": r.metric, "values": r.values, "ratios": r.ratios()}))
        .collect();
    json!({ "files": files, "comparison": rows })
}

#[cfg(test)]
mod tests {
    use super::super::record::StageRecord;
    use super::*;
    use pprof::protos::{Function, Label, Line, Location, Sample, ValueType};

    /// Functions 1..=3 (`main`, `step`, `kernel`), one location each; samples:
    /// main→step→kernel ×5, main→step ×2, main ×1 (stacks listed leaf first).
    fn profile() -> Profile {
        let strings: Vec<String> = [
            "", "samples", "count", "main", "step", "kernel", "thread", "w0",
        ]
        .map(String::from)
        .to_vec();
        let mut p = Profile::new();
        p.string_table = strings;
        let mut ty = ValueType::new();
        ty.ty = 1;
        ty.unit = 2;
        p.sample_type = vec![ty];
        for (id, name) in [(1u64, 3i64), (2, 4), (3, 5)] {
            let mut f = Function::new();
            f.id = id;
            f.name = name;
            p.function.push(f);
            let mut line = Line::new();
            line.function_id = id;
            let mut l = Location::new();
            l.id = id;
            l.line = vec![line];
            p.location.push(l);
        }
        for (stack, n) in [(vec![3u64, 2, 1], 5i64), (vec![2, 1], 2), (vec![1], 1)] {
            let mut s = Sample::new();
            s.location_id = stack;
            s.value = vec![n];
            let mut label = Label::new();
            label.key = 6;
            label.str = 7;
            s.label = vec![label];
            p.sample.push(s);
        }
        p
    }

    fn hot(name: &str, samples: u64) -> Hot {
        Hot {
            name: name.into(),
            samples,
        }
    }

    #[test]
    fn self_and_total_samples_follow_the_stacks() {
        let h = hotspots(&profile(), 10);
        assert_eq!(h.samples, 8);
        assert_eq!(
            h.by_self,
            vec![hot("kernel", 5), hot("step", 2), hot("main", 1)]
        );
        assert_eq!(
            h.by_total,
            vec![hot("main", 8), hot("step", 7), hot("kernel", 5)]
        );
        assert_eq!(h.threads, vec![hot("w0", 8)]);
        assert_eq!(hotspots(&profile(), 1).by_self, vec![hot("kernel", 5)]);
    }

    #[test]
    fn a_profile_survives_encoding() {
        let bytes = profile().write_to_bytes().unwrap();
        let back = Profile::parse_from_bytes(&bytes).unwrap();
        assert_eq!(hotspots(&back, 10), hotspots(&profile(), 10));
    }

    fn record(path: &str, wall: f64, children: u64, extra: Option<(&str, u64)>) -> Record {
        let mut counters = BTreeMap::from([("children".to_string(), children)]);
        if let Some((k, v)) = extra {
            counters.insert(k.into(), v);
        }
        Record {
            format: FORMAT.into(),
            path: path.into(),
            settings: Default::default(),
            wall_seconds: wall,
            samples: 10,
            frequency: 997,
            stages: vec![StageRecord {
                name: "evaluate".into(),
                calls: children,
                seconds: wall / 2.0,
            }],
            counters,
        }
    }

    #[test]
    fn the_side_by_side_rows_take_ratios_to_the_first_file() {
        let a = record("miner", 0.010, 100, None);
        let b = record("sidecar", 0.040, 200, Some(("http_requests", 3)));
        let rows = comparison(&[&a, &b]);
        let names: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(
            names,
            [
                "wall_ms",
                "samples",
                "evaluate_ms",
                "children",
                "http_requests"
            ]
        );
        let row = |m: &str| rows.iter().find(|r| r.metric == m).unwrap().clone();
        assert_eq!(row("children").values, vec![Some(100.0), Some(200.0)]);
        assert_eq!(row("children").ratios(), vec![Some(1.0), Some(2.0)]);
        let wall = row("wall_ms").ratios();
        assert!((wall[1].unwrap() - 4.0).abs() < 1e-9, "{wall:?}");
        // Missing in the first file: no ratio.
        assert_eq!(row("http_requests").values, vec![None, Some(3.0)]);
        assert_eq!(row("http_requests").ratios(), vec![None, None]);
        let text = render(&[
            Summary {
                file: "a/miner.pb".into(),
                record: a,
                hotspots: Hotspots::default(),
            },
            Summary {
                file: "b/sidecar.pb".into(),
                record: b,
                hotspots: Hotspots::default(),
            },
        ]);
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with("children "))
            .expect("a side-by-side children row");
        assert!(line.contains("200 (2.00×)"), "{text}");
        assert!(text.contains("== side by side"), "{text}");
    }
}
