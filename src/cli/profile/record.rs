//! What a profiled window leaves behind: the sampler that runs during it, and the three
//! files written after it — FILE (the samples, pprof protobuf, gzipped as `go tool
//! pprof` writes it), FILE.stages.json (a [`Record`]) and, on request, FILE.flame.svg.

use crate::engine::stages::{mutation_name, Stage, Stages};
use crate::engine::Mutation;
use anyhow::Context;
use pprof::protos::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Names FILE.stages.json's layout, so `summarize` refuses a file it cannot read right.
pub const FORMAT: &str = "bitsota-profile-stages/1";

/// One stage of a window: how often it ran and how long it took in all (summed over
/// threads, so stages of parallel workers can add up to more than the wall time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub calls: u64,
    pub seconds: f64,
}

/// FILE.stages.json: the counters of the profiled window, exact where the samples are
/// a statistical picture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: String,
    /// `miner`, `dashboard` or `sidecar`.
    pub path: String,
    /// The resolved search and window settings, and the path's own.
    pub settings: Map<String, Value>,
    pub wall_seconds: f64,
    /// Samples taken, at `frequency` per second of CPU time.
    pub samples: u64,
    pub frequency: i32,
    pub stages: Vec<StageRecord>,
    /// Every count of the window by name (`children`, `mutations.alter_param`, …).
    pub counters: BTreeMap<String, u64>,
}

/// Counters every path reports, zero where it has none, so paths compare row by row.
pub const TRANSPORT: [&str; 4] = [
    "events_written",
    "http_requests",
    "http_bytes_sent",
    "http_bytes_received",
];

impl Record {
    /// A record of the engine's counters in a window, before the path adds its own.
    pub fn new(
        path: &str,
        settings: Map<String, Value>,
        stages: &Stages,
        mutations: &[Mutation],
    ) -> Record {
        let mut counters = BTreeMap::new();
        let mut count = |k: &str, v: u64| {
            counters.insert(k.to_string(), v);
        };
        count("children", stages.children);
        for &m in mutations {
            count(
                &format!("mutations.{}", mutation_name(m)),
                stages.mutation_count(m),
            );
        }
        count("compiles", stages.compiles);
        count("exact_lookups", stages.exact_lookups);
        count("exact_hits", stages.exact_hits);
        count("fec_lookups", stages.fec_lookups);
        count("fec_hits", stages.fec_hits);
        count("evaluations", stages.evaluations);
        count("task_evaluations", stages.task_evaluations);
        count("train_examples", stages.train_examples);
        count("instructions", stages.instructions);
        for k in TRANSPORT {
            count(k, 0);
        }
        Record {
            format: FORMAT.into(),
            path: path.into(),
            settings,
            wall_seconds: 0.0,
            samples: 0,
            frequency: 0,
            stages: Stage::ALL
                .iter()
                .map(|&s| StageRecord {
                    name: s.name().into(),
                    calls: stages.calls(s),
                    seconds: stages.time(s).as_secs_f64(),
                })
                .collect(),
            counters,
        }
    }

    /// Add a stage of the path's own (polls, frames, posts).
    pub fn stage(&mut self, name: &str, calls: u64, time: Duration) {
        self.stages.push(StageRecord {
            name: name.into(),
            calls,
            seconds: time.as_secs_f64(),
        });
    }

    pub fn count(&mut self, name: &str, value: u64) {
        self.counters.insert(name.into(), value);
    }
}

/// The sampling profiler over the window. It samples the whole process (every thread:
/// the dashboard path's daemon threads too) on CPU time.
pub struct Sampler {
    guard: pprof::ProfilerGuard<'static>,
    started: Instant,
    frequency: i32,
}

/// The window's samples and wall time.
pub struct Sampled {
    pub report: pprof::Report,
    pub wall: Duration,
    pub frequency: i32,
}

impl Sampler {
    pub fn start(frequency: i32) -> anyhow::Result<Sampler> {
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(frequency)
            // Unwinding inside these from a signal handler can deadlock.
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .context("starting the sampling profiler")?;
        Ok(Sampler {
            guard,
            started: Instant::now(),
            frequency,
        })
    }

    /// Stop sampling (the guard's drop stops the timer) and symbolize the samples.
    pub fn stop(self) -> anyhow::Result<Sampled> {
        let wall = self.started.elapsed();
        let report = self
            .guard
            .report()
            .build()
            .context("collecting the samples")?;
        Ok(Sampled {
            report,
            wall,
            frequency: self.frequency,
        })
    }
}

impl Sampled {
    pub fn samples(&self) -> u64 {
        self.report.data.values().map(|&c| c.max(0) as u64).sum()
    }

    /// Fill in the record's window fields.
    pub fn stamp(&self, record: &mut Record) {
        record.wall_seconds = self.wall.as_secs_f64();
        record.samples = self.samples();
        record.frequency = self.frequency;
    }
}

/// FILE.stages.json beside FILE.
pub fn stages_path(profile: &Path) -> PathBuf {
    suffixed(profile, ".stages.json")
}

fn suffixed(profile: &Path, suffix: &str) -> PathBuf {
    let mut name = profile.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The files of one profile, opened before the work so an unwritable `--out` fails at
/// once rather than after the run.
pub struct Outputs {
    profile: PathBuf,
    stages: PathBuf,
    flame: Option<PathBuf>,
    /// Files that did not exist before: removed again if the run fails.
    created: Vec<PathBuf>,
}

impl Outputs {
    pub fn prepare(profile: &Path, flamegraph: bool) -> anyhow::Result<Outputs> {
        let mut out = Outputs {
            profile: profile.to_path_buf(),
            stages: stages_path(profile),
            flame: flamegraph.then(|| suffixed(profile, ".flame.svg")),
            created: Vec::new(),
        };
        let paths: Vec<PathBuf> = [Some(&out.profile), Some(&out.stages), out.flame.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for path in paths {
            let existed = path.exists();
            let opened = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path);
            if let Err(e) = opened {
                out.discard();
                return Err(anyhow::anyhow!("cannot write {}: {e}", path.display()));
            }
            if !existed {
                out.created.push(path);
            }
        }
        Ok(out)
    }

    /// Remove the files this run created (it failed before writing them).
    pub fn discard(self) {
        for path in &self.created {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Write the profile, the record and the flame graph.
    pub fn write(&self, sampled: &Sampled, record: &Record) -> anyhow::Result<()> {
        let profile = sampled
            .report
            .pprof()
            .context("building the pprof profile")?;
        let bytes = profile
            .write_to_bytes()
            .context("encoding the pprof profile")?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&bytes)?;
        write(&self.profile, &gz.finish()?)?;
        let json = serde_json::to_vec_pretty(record)?;
        write(&self.stages, &json)?;
        if let Some(path) = &self.flame {
            let mut svg = Vec::new();
            if sampled.report.data.is_empty() {
                // inferno refuses an empty graph; say so in a valid file instead.
                svg.extend_from_slice(EMPTY_FLAME_GRAPH.as_bytes());
            } else {
                sampled
                    .report
                    .flamegraph(&mut svg)
                    .context("drawing the flame graph")?;
            }
            write(path, &svg)?;
        }
        Ok(())
    }

    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// The files written, for the user.
    pub fn written(&self) -> Vec<&Path> {
        [Some(&self.profile), Some(&self.stages), self.flame.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect()
    }
}

const EMPTY_FLAME_GRAPH: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><text x="10" y="25">no samples in the profiled window (too short: profile more generations)</text></svg>
"#;

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Run `window` with the files prepared; on failure remove the files it created. Then
/// write them, say where, and print the file's summary.
pub fn profile_to(
    out: &Path,
    flamegraph: bool,
    window: impl FnOnce() -> anyhow::Result<(Sampled, Record)>,
) -> anyhow::Result<()> {
    let outputs = Outputs::prepare(out, flamegraph)?;
    let (sampled, mut record) = match window() {
        Ok(r) => r,
        Err(e) => {
            outputs.discard();
            return Err(e);
        }
    };
    sampled.stamp(&mut record);
    outputs.write(&sampled, &record)?;
    // Not `println!`/`eprintln!`: they panic on a closed pipe.
    for path in outputs.written() {
        let _ = writeln!(std::io::stderr(), "[profile] wrote {}", path.display());
    }
    let summary = super::summarize::load(outputs.profile(), super::summarize::DEFAULT_TOP)?;
    let _ = std::io::stdout().write_all(super::summarize::render(&[summary]).as_bytes());
    Ok(())
}
