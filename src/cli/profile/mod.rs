//! `bitsota profile`: where the time of one generation goes, along the three paths a
//! search runs on, so they can be compared side by side.
//!
//! - `miner` ([`miner`]): the engine's run loop alone, one island.
//! - `dashboard` ([`dashboard`]): what `bitsota up` does — the daemon's supervisor mines,
//!   its events go into the sidecar store, and the dashboard polls and draws.
//! - `sidecar` ([`sidecar`]): a miner that posts its events to a sidecar over HTTP in
//!   batches, as remote miners do.
//!
//! Each path runs `--warmup-generations` generations unobserved, then samples the
//! process (tikv's `pprof`, `--frequency` per second of CPU time) and counts stages (`engine::stages` plus the
//! path's own: polls, frames, posts) for `--generations` more; a generation is
//! `--pop-size` children per worker. It writes FILE (pprof protobuf, gzipped: `go tool
//! pprof`, speedscope), FILE.stages.json (the counters, the settings and the wall time,
//! see [`record`]) and with `--flamegraph` FILE.flame.svg, then prints the summary that
//! `profile summarize` ([`summarize`]) prints for the file.
//!
//! All three resolve the search from the flags the way the daemon's miner resolves its
//! own (`[miner]` defaults, then the flags as a reference `problem_config.json`), so the
//! same flags search alike on every path. The defaults are the built-in ones, not
//! `./appliance.toml`: a profile measures the same thing wherever it is run.

mod dashboard;
mod miner;
mod record;
mod sidecar;
mod summarize;

use super::UsageError;
use crate::config::Config;
use crate::miner::recipe::Search;
use crate::miner::settings::MinerSettings;
use crate::server::Daemon;
use anyhow::Context;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ProfileArgs {
    #[command(subcommand)]
    pub path: ProfilePath,
}

#[derive(clap::Subcommand, Debug)]
pub enum ProfilePath {
    /// The engine's run loop alone: one island, W warm-up generations, then N profiled
    /// (a generation is --pop-size children).
    Miner(miner::MinerArgs),
    /// Mining under the daemon's supervisor (an in-process daemon on ephemeral ports),
    /// events into the sidecar store, the dashboard's polling on its 250 ms tick and,
    /// with the log handler, its frames drawn.
    Dashboard(dashboard::DashboardArgs),
    /// A miner posting its events to a sidecar over HTTP in batches, as remote miners
    /// do (an in-process daemon's when --sidecar-url is not given).
    Sidecar(sidecar::SidecarArgs),
    /// Print stage tables and hotspots of profiles, and the paths side by side.
    Summarize(summarize::SummarizeArgs),
}

/// The flags every path shares: the search, the window, the output.
#[derive(clap::Args, Debug, Clone)]
pub struct SearchFlags {
    /// Task type of the miner suite.
    #[arg(long, default_value = "scalar_linear",
          value_parser = ["scalar_linear", "mnist_binary", "cifar10_binary"])]
    pub task_type: String,
    /// Search engine.
    #[arg(long, default_value = "baseline", value_parser = ["baseline", "archive"])]
    pub engine: String,
    /// Search seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Population size; one generation is this many children per worker (default: the
    /// task type's recipe, 1000 for scalar_linear).
    #[arg(long)]
    pub pop_size: Option<usize>,
    /// Tasks of the miner suite (default: `[miner] miner_task_count`, 10).
    #[arg(long)]
    pub miner_task_count: Option<usize>,
    /// Tournament size (default: the task type's recipe).
    #[arg(long)]
    pub tournament_size: Option<usize>,
    /// Probability that a child is mutated rather than copied (default: `[miner]
    /// mutation_prob`, 0.9).
    #[arg(long)]
    pub mutation_prob: Option<f64>,
    /// FEC capacity (0 = off; default: the task type's recipe).
    #[arg(long)]
    pub fec_cache_size: Option<usize>,
    /// Generations run before sampling starts (caches and population warm).
    #[arg(long, default_value_t = 1)]
    pub warmup_generations: u64,
    /// Generations profiled.
    #[arg(long, default_value_t = 1)]
    pub generations: u64,
    /// The pprof file to write; FILE.stages.json (and FILE.flame.svg) go beside it.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write a flame graph, FILE.flame.svg.
    #[arg(long)]
    pub flamegraph: bool,
    /// Samples per second of CPU time (a prime, so sampling does not beat with
    /// periodic work; the kernel's timer tick may cap the rate, often at 250).
    #[arg(long, default_value_t = 997)]
    pub frequency: i32,
    /// Data directory whose datasets/ image tasks are read from.
    #[arg(long, env = "BITSOTA_DATA_DIR", default_value = "bitsota-data")]
    pub data_dir: PathBuf,
}

impl SearchFlags {
    /// The flags as a reference `problem_config.json` (its `args` section), with the
    /// path's own keys in `extra`; unset flags stay out, so the recipe decides them.
    fn problem_config(&self, extra: Map<String, Value>) -> Value {
        let mut args = Map::new();
        args.insert("task_type".into(), json!(self.task_type));
        args.insert("engine".into(), json!(self.engine));
        args.insert("seed".into(), json!(self.seed));
        let optional = [
            ("pop_size", self.pop_size.map(|v| json!(v))),
            ("miner_task_count", self.miner_task_count.map(|v| json!(v))),
            ("tournament_size", self.tournament_size.map(|v| json!(v))),
            ("mutation_prob", self.mutation_prob.map(|v| json!(v))),
            ("fec_cache_size", self.fec_cache_size.map(|v| json!(v))),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                args.insert(k.into(), v);
            }
        }
        args.extend(extra);
        json!({ "args": args })
    }

    /// The miner's settings for these flags, resolved as the daemon resolves its own,
    /// with the search they make; a setting it refuses is the user's to fix.
    fn settings(&self, problem: &Value) -> Result<(MinerSettings, Search), UsageError> {
        if self.generations == 0 {
            return Err(UsageError("--generations must be at least 1".into()));
        }
        if !(1..=10_000).contains(&self.frequency) {
            return Err(UsageError("--frequency must be within 1..=10000".into()));
        }
        let mut s = MinerSettings::from_config(&Config::default());
        let search = s
            .apply_problem_config(&problem.to_string())
            .and_then(|()| s.validate())
            .and_then(|()| s.search())
            .map_err(|e| UsageError(format!("search settings: {e}")))?;
        Ok((s, search))
    }

    /// The settings as recorded in FILE.stages.json.
    fn record(&self, s: &MinerSettings, search: &Search) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("task_type".into(), json!(s.task_type));
        m.insert("engine".into(), json!(s.engine));
        m.insert("seed".into(), json!(s.seed));
        m.insert("profile".into(), json!(search.profile));
        m.insert("pop_size".into(), json!(search.pop_size));
        m.insert("tournament_size".into(), json!(search.tournament_size));
        m.insert("mutation_prob".into(), json!(s.mutation_prob));
        m.insert("fec_cache_size".into(), json!(search.fec_cache_size));
        m.insert("miner_task_count".into(), json!(s.miner_task_count));
        m.insert("input_dim".into(), json!(s.input_dim));
        m.insert("workers".into(), json!(s.workers));
        m.insert("warmup_generations".into(), json!(self.warmup_generations));
        m.insert("generations".into(), json!(self.generations));
        m
    }
}

/// A daemon in this process on ephemeral ports, over a scratch data directory that is
/// removed when it stops: relay (test mode) and sidecar only, no validators and no
/// pool, whose work would land in the samples without belonging to the path.
struct LocalDaemon {
    runtime: tokio::runtime::Runtime,
    daemon: Daemon,
    scratch: PathBuf,
}

impl LocalDaemon {
    /// Start it; `configure` adjusts the configuration first (paths inside the scratch
    /// directory are laid out before it runs).
    fn start(name: &str, configure: impl FnOnce(&Path, &mut Config)) -> anyhow::Result<Self> {
        let scratch =
            std::env::temp_dir().join(format!("bitsota-profile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let mut config = Config {
            data_dir: scratch.join("data"),
            ..Config::default()
        };
        config.relay.listen = "127.0.0.1:0".into();
        config.sidecar.listen = "127.0.0.1:0".into();
        config.relay.test_mode = true;
        config.validator.enabled = false;
        config.pool.enabled = false;
        config.miner.autostart = false;
        configure(&scratch, &mut config);
        let runtime = tokio::runtime::Runtime::new()?;
        match runtime.block_on(Daemon::start(config)) {
            Ok(daemon) => Ok(LocalDaemon {
                runtime,
                daemon,
                scratch,
            }),
            Err(e) => {
                crate::server::stop_runtime(runtime);
                let _ = std::fs::remove_dir_all(&scratch);
                Err(e).context("starting the in-process daemon")
            }
        }
    }

    fn sidecar_url(&self) -> anyhow::Result<String> {
        self.daemon
            .endpoints()
            .sidecar
            .clone()
            .context("the in-process daemon has no sidecar")
    }

    /// Shut it down as `bitsota serve` does (mining stops, the store is flushed) and
    /// remove its data.
    fn stop(self) -> anyhow::Result<()> {
        let stopped = self.runtime.block_on(self.daemon.shutdown());
        crate::server::stop_runtime(self.runtime);
        let _ = std::fs::remove_dir_all(&self.scratch);
        stopped?;
        Ok(())
    }
}

pub fn run(args: ProfileArgs) -> anyhow::Result<()> {
    match args.path {
        ProfilePath::Miner(a) => miner::run(&a),
        ProfilePath::Dashboard(a) => dashboard::run(&a),
        ProfilePath::Sidecar(a) => sidecar::run(&a),
        ProfilePath::Summarize(a) => summarize::run(&a),
    }
}
