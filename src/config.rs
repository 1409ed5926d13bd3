//! Configuration (appliance.md §2): `appliance.toml`, environment, CLI flags.
//!
//! Precedence is CLI flag > environment > file > built-in default. Environment names are
//! the reference's where they exist (`SOTA_CONSENSUS_VOTES`, `BITSOTA_SIDECAR_PORT`,
//! `ADMIN_AUTH_TOKEN`, …) and `BITSOTA_<SECTION>_<KEY>` for every key. The layers are
//! merged as TOML values and deserialised once with `deny_unknown_fields`, so an unknown
//! key or a bad value stops start-up with one line naming the key — never ignored, never
//! a panic.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration problem: one line naming the key (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The whole appliance configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store, keys, datasets, metrics and logs live.
    pub data_dir: PathBuf,
    pub relay: RelayConfig,
    pub sidecar: SidecarConfig,
    pub pool: PoolConfig,
    pub validator: ValidatorConfig,
    pub miner: MinerConfig,
    pub log: LogConfig,
    pub budget: BudgetConfig,
    pub store: StoreConfig,
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("bitsota-data"),
            relay: RelayConfig::default(),
            sidecar: SidecarConfig::default(),
            pool: PoolConfig::default(),
            validator: ValidatorConfig::default(),
            miner: MinerConfig::default(),
            log: LogConfig::default(),
            budget: BudgetConfig::default(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// `[relay]` (relay.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    pub enabled: bool,
    pub listen: String,
    /// Every signer is a validator, no invitation needed, admin token defaults to `dev`.
    pub test_mode: bool,
    pub durability: crate::store::Durability,
    pub consensus_votes: u32,
    pub alignment_mod: u64,
    pub t2_blocks: u64,
    /// Overrides `t2_blocks` when set.
    pub t2_intervals: Option<u64>,
    pub min_t2_intervals: u64,
    pub activation_delay_intervals: u64,
    pub default_sota_threshold: f64,
    /// Admin token (`X-Auth-Token`); test mode defaults it to `dev`.
    pub admin_token: Option<String>,
    pub dashboard_username: String,
    /// Dashboard password (HTTP Basic); test mode defaults it to `dev`.
    pub dashboard_password: Option<String>,
    pub test_invite_code: String,
    /// The UID0 hotkey (test mode with none: any validator).
    pub uid0_hotkey: Option<String>,
    /// Allow-listed validator hotkeys (the embedded validators are added automatically).
    pub validators: Vec<String>,
    /// Signed timestamps must be within this many seconds of now (0 disables).
    pub auth_max_skew_s: u64,
    pub max_body_bytes: usize,
    pub blacklist_votes: u32,
    pub duplicate_window_s: u64,
    /// 0 = unlimited.
    pub max_submissions_per_hour: u32,
    /// The update manifest served at `/version.json`; absent, the appliance's own
    /// ([`VersionManifest::appliance`]).
    pub version_manifest: Option<VersionManifest>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            enabled: true,
            listen: "127.0.0.1:8002".into(),
            test_mode: false,
            durability: crate::store::Durability::Sync,
            consensus_votes: 2,
            alignment_mod: 100,
            t2_blocks: 1000,
            t2_intervals: None,
            min_t2_intervals: 2,
            activation_delay_intervals: 1,
            default_sota_threshold: 0.0,
            admin_token: None,
            dashboard_username: "admin".into(),
            dashboard_password: None,
            test_invite_code: "TESTTEST1".into(),
            uid0_hotkey: None,
            validators: Vec::new(),
            auth_max_skew_s: 300,
            max_body_bytes: 256 * 1024,
            blacklist_votes: 2,
            duplicate_window_s: 300,
            max_submissions_per_hour: 0,
            version_manifest: None,
        }
    }
}

impl RelayConfig {
    /// The admin token in force (test mode defaults to `dev`).
    pub fn effective_admin_token(&self) -> Option<String> {
        self.admin_token
            .clone()
            .or_else(|| self.test_mode.then(|| "dev".to_string()))
    }
    /// The dashboard password in force (test mode defaults to `dev`).
    pub fn effective_dashboard_password(&self) -> Option<String> {
        self.dashboard_password
            .clone()
            .or_else(|| self.test_mode.then(|| "dev".to_string()))
    }
}

/// `/version.json` (the reference's update manifest).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionManifest {
    pub version: String,
    #[serde(rename = "versionCode")]
    pub version_code: i64,
    #[serde(default)]
    pub desc: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub linux: String,
    #[serde(default)]
    pub windows: String,
}

impl VersionManifest {
    /// The manifest of this build: its version, `versionCode` `major·10000 + minor·100 +
    /// patch`, and no download links (the appliance is built from source, not downloaded).
    pub fn appliance() -> VersionManifest {
        let version = env!("CARGO_PKG_VERSION");
        VersionManifest {
            version: version.to_string(),
            version_code: version_code(version),
            desc: format!("bitsota {version}, the BitSota appliance"),
            mac: String::new(),
            linux: String::new(),
            windows: String::new(),
        }
    }
}

/// `major·10000 + minor·100 + patch` of a `major.minor.patch[-pre]` version (0 for a part
/// that does not parse), so that a later release has a larger code.
fn version_code(version: &str) -> i64 {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    core.split('.')
        .take(3)
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .chain(std::iter::repeat(0))
        .take(3)
        .fold(0, |code, part| code * 100 + part)
}

/// `[sidecar]` (sidecar-miner.md §1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SidecarConfig {
    pub enabled: bool,
    pub listen: String,
    pub durability: crate::store::Durability,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        SidecarConfig {
            enabled: true,
            listen: "127.0.0.1:8123".into(),
            durability: crate::store::Durability::Async,
        }
    }
}

/// `[pool]` (pool.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    pub enabled: bool,
    pub listen: String,
    pub durability: crate::store::Durability,
    /// Task type the pool's algorithms are evolved and evaluated for.
    pub task_type: String,
    pub input_dim: usize,
    /// Tasks of the pool's evaluation suite (seeded by `validator.task_seed`).
    pub eval_task_count: usize,
    pub evals_required: u32,
    /// Relative accuracy tolerance of an evaluation against the consensus median.
    pub tolerance: f64,
    pub min_evolution_score: f64,
    pub window_s: u64,
    pub task_timeout_s: u64,
    pub epoch_s: u64,
    pub epoch_budget_rao: u64,
    /// Largest share of an epoch's budget one miner can receive.
    pub payout_cap: f64,
    pub min_payout_rao: u64,
    pub eval_batch_size: usize,
    pub seed_batch_size: usize,
    pub evolve_budget: u32,
    /// Submit the pool's best to the relay when it beats the relay's SOTA.
    pub forward_to_relay: bool,
    /// Relay the pool forwards to (empty = the embedded relay).
    pub relay_url: String,
    /// Seed the pool from the relay's current SOTA algorithm.
    pub seed_from_relay: bool,
    /// Token for `/api/v1/monitor/summary` (none = open).
    pub monitor_token: Option<String>,
    /// Evaluator identities the appliance runs against its own pool (`pool-evaluator-N`
    /// keys), so one machine completes the pool cycle: evolve, evaluate by others,
    /// consensus, reputation, epochs. 0 = none.
    pub local_evaluators: usize,
    /// Local evaluators leave pending work this long to outside evaluators first.
    pub local_evaluator_grace_s: f64,
    /// Programs put up for evaluation when the pool holds nothing pending or verified.
    pub genesis_algorithms: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            enabled: true,
            listen: "127.0.0.1:8434".into(),
            durability: crate::store::Durability::Sync,
            task_type: "scalar_linear".into(),
            input_dim: 16,
            eval_task_count: 16,
            evals_required: 3,
            tolerance: 0.1,
            min_evolution_score: 0.7,
            window_s: 600,
            task_timeout_s: 3 * 3600,
            epoch_s: 3600,
            epoch_budget_rao: 1_000_000_000,
            payout_cap: 0.05,
            min_payout_rao: 1_000,
            eval_batch_size: 8,
            seed_batch_size: 8,
            evolve_budget: 32,
            forward_to_relay: true,
            relay_url: String::new(),
            seed_from_relay: true,
            monitor_token: None,
            local_evaluators: 0,
            local_evaluator_grace_s: 5.0,
            genesis_algorithms: 0,
        }
    }
}

/// `[validator]` (validator.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValidatorConfig {
    pub enabled: bool,
    /// Number of embedded validator identities.
    pub count: u32,
    /// Relay to poll (empty = the embedded relay).
    pub relay_url: String,
    pub poll_interval_s: f64,
    pub limit: u32,
    pub blacklist_cutoff: f64,
    pub seen_block_mode: SeenBlockMode,
    pub seen_block: u64,
    pub stats_interval_s: u64,
    /// JSONL metrics: `auto` = `<data_dir>/metrics/validator-<name>.jsonl`, empty = off,
    /// anything else = a directory to write `validator-<name>.jsonl` into.
    pub metrics_log: String,
    pub task_count: usize,
    pub task_seed: u64,
    /// A reference-format `validator_hyperparams.json` (overrides task_count/task_seed).
    pub hyperparams_file: Option<PathBuf>,
    /// Hotkey that receives the burn share of the would-be weights.
    pub burn_hotkey: String,
}

/// How a validator picks the `seen_block` of its votes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SeenBlockMode {
    /// Unix seconds.
    Time,
    /// The configured `seen_block`.
    Fixed,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            enabled: true,
            count: 2,
            relay_url: String::new(),
            poll_interval_s: 15.0,
            limit: 256,
            blacklist_cutoff: 0.1,
            seen_block_mode: SeenBlockMode::Time,
            seen_block: 1,
            stats_interval_s: 30,
            metrics_log: "auto".into(),
            task_count: 128,
            task_seed: 1337,
            hyperparams_file: None,
            burn_hotkey: "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM".into(),
        }
    }
}

/// `[miner]` (sidecar-miner.md §2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MinerConfig {
    /// Start mining when the daemon starts.
    pub autostart: bool,
    /// `scalar_linear`, `mnist_binary`, `cifar10_binary`, `pool` or `pool_lease`.
    pub task_type: String,
    /// `baseline` or `archive`.
    pub engine: String,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Run seed (none = from the clock).
    pub seed: Option<u64>,
    pub input_dim: usize,
    /// Relay to submit to (empty = the embedded relay).
    pub relay_endpoint: String,
    /// Pool for `pool`/`pool_lease` mining (empty = the embedded pool).
    pub pool_endpoint: String,
    /// Invitation code linked before submitting outside test mode.
    pub invite_code: Option<String>,
    pub miner_task_count: usize,
    pub miner_task_seed: u64,
    pub validator_task_count: usize,
    /// Verify candidates at most every this many steps.
    pub validate_every: u64,
    /// Emit progress every this many steps.
    pub checkpoint_generations: u64,
    pub submission_cooldown_seconds: u64,
    pub sota_refresh_s: u64,
    /// Search keys; unset = the task type's recipe (`miner::recipe`).
    pub pop_size: Option<usize>,
    pub tournament_size: Option<usize>,
    /// Built-in engine profile (search space).
    pub profile: Option<String>,
    /// Mutation names (`insert`, `remove`, `alter_instruction`, `alter_arg`,
    /// `alter_param`, `randomize_component`, `randomize_program`).
    pub mutations: Option<Vec<crate::engine::Mutation>>,
    /// Miner-suite example counts.
    pub train_examples: Option<usize>,
    pub val_examples: Option<usize>,
    /// Children per worker before the search starts over (0 = never).
    pub restart_children: Option<u64>,
    /// Children without a new best after which a worker starts over (0 = never).
    pub stagnation_children: Option<u64>,
    /// Children per worker before a staged recipe moves on to its larger space
    /// (0 = stay in the first; unset = the recipe's).
    pub stage_children: Option<u64>,
    /// Most arithmetic per training example a child may cost (0 = no bound).
    pub max_example_work: Option<u64>,
    /// Start each run from the relay's current SOTA program.
    pub start_from_sota: bool,
    pub mutation_prob: f64,
    pub migration_generations: u64,
    /// Functional-equivalence cache entries per worker (0 = off).
    pub fec_cache_size: Option<usize>,
    /// A reference-format `problem_config.json` overriding these settings.
    pub problem_config: Option<PathBuf>,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            autostart: false,
            task_type: "scalar_linear".into(),
            engine: "baseline".into(),
            workers: 2,
            seed: None,
            input_dim: 16,
            relay_endpoint: String::new(),
            pool_endpoint: String::new(),
            invite_code: None,
            miner_task_count: 10,
            miner_task_seed: 0,
            validator_task_count: 100,
            validate_every: 200,
            checkpoint_generations: 100,
            submission_cooldown_seconds: 60,
            sota_refresh_s: 30,
            pop_size: None,
            tournament_size: None,
            profile: None,
            mutations: None,
            train_examples: None,
            val_examples: None,
            restart_children: None,
            stagnation_children: None,
            stage_children: None,
            max_example_work: None,
            start_from_sota: false,
            mutation_prob: 0.9,
            migration_generations: 0,
            fec_cache_size: None,
            problem_config: None,
        }
    }
}

/// `[budget]`: what evaluating one untrusted program may cost (`engine::cost`). The
/// relay refuses submissions over it, validators and pool evaluators count them invalid
/// without running them. Keep it equal on every validator of a network: a program one
/// validator runs and another refuses cannot reach consensus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Cost units per task, by task type.
    pub scalar_linear: u64,
    pub mnist_binary: u64,
    pub cifar10_binary: u64,
    /// Raise (or lower) the task profile's maximum instructions per phase.
    pub setup_max_ops: Option<usize>,
    pub predict_max_ops: Option<usize>,
    pub learn_max_ops: Option<usize>,
    /// Wall-clock limit of one program's re-evaluation on a whole suite (validators and
    /// pool evaluators), checked between examples; over it the program is invalid.
    pub deadline_s: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        use crate::engine::cost::default_budget;
        use crate::tasks::TaskType;
        BudgetConfig {
            scalar_linear: default_budget(TaskType::ScalarLinear),
            mnist_binary: default_budget(TaskType::MnistBinary),
            cifar10_binary: default_budget(TaskType::Cifar10Binary),
            setup_max_ops: None,
            predict_max_ops: None,
            learn_max_ops: None,
            deadline_s: 120.0,
        }
    }
}

impl BudgetConfig {
    /// The limits for programs of `task_type`.
    pub fn limits(&self, task_type: crate::tasks::TaskType) -> crate::engine::Limits {
        use crate::tasks::TaskType;
        let defaults = crate::engine::Limits::for_task(task_type);
        let [setup, predict, learn] = defaults.max_ops;
        crate::engine::Limits {
            budget: match task_type {
                TaskType::ScalarLinear => self.scalar_linear,
                TaskType::MnistBinary => self.mnist_binary,
                TaskType::Cifar10Binary => self.cifar10_binary,
            },
            max_ops: [
                self.setup_max_ops.unwrap_or(setup),
                self.predict_max_ops.unwrap_or(predict),
                self.learn_max_ops.unwrap_or(learn),
            ],
        }
    }

    /// [`Self::deadline_s`] as a duration.
    pub fn deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.deadline_s)
    }
}

/// `[store]`: the free-space watermark and what each store tree may keep
/// (the rules of `retention.rs`, applied by background pruners).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Below this much free space on the data directory's filesystem every write is
    /// refused (507) before the store is touched; writes resume when space returns.
    pub min_free_mb: u64,
    /// Seconds between pruning passes.
    pub prune_interval_s: u64,
    /// Miner runs the sidecar keeps (the newest; the current run is never pruned).
    pub keep_runs: usize,
    /// What one run keeps: its newest logs, candidates, populations and job results
    /// (older ones roll out; cursors past them start at the oldest kept), and jobs (the
    /// oldest finished ones are pruned first). The reference's caps are 5000, 2000, 200,
    /// 2000 and 2000.
    pub max_run_logs: u64,
    pub max_run_candidates: u64,
    pub max_run_populations: u64,
    pub max_run_job_results: u64,
    pub max_run_jobs: u64,
    /// Relay results kept (one per miner hotkey, the newest submissions; the result
    /// behind the current SOTA is always kept). 0 = unlimited.
    pub max_relay_results: usize,
    /// Finished pool tasks and leases are kept this many days (0 = forever). Miners,
    /// algorithms, evaluations, epoch ledgers and reputation are kept: payouts and the
    /// pool's invariants are computed from them.
    pub pool_history_days: f64,
    /// Each validator's JSONL metrics file is rotated (to `.1`, replacing an older one)
    /// past this size.
    pub metrics_log_max_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            min_free_mb: 256,
            prune_interval_s: 60,
            keep_runs: 3,
            max_run_logs: 1000,
            max_run_candidates: 50,
            max_run_populations: 50,
            max_run_job_results: 500,
            max_run_jobs: 500,
            max_relay_results: 10_000,
            pool_history_days: 7.0,
            metrics_log_max_mb: 16,
        }
    }
}

impl StoreConfig {
    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_mb.saturating_mul(1024 * 1024)
    }
}

/// `[metrics]`: who may read `GET /metrics`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Ask for the relay's admin token (`X-Auth-Token`, or `Authorization: Bearer`), the
    /// rule of `/admin/status`. false = open to anyone who can reach the listener.
    pub require_admin_token: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            require_admin_token: true,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive.
    pub level: String,
    pub format: LogFormat,
    /// Also write logs to `<data_dir>/logs/bitsota.log`.
    pub file: bool,
    /// Past this size the log file is rotated to `bitsota.log.1` (replacing an older
    /// one). 0 = never.
    pub file_max_mb: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Human,
            file: true,
            file_max_mb: 16,
        }
    }
}

/// The reference's environment names and the key each sets.
const REFERENCE_ENV: &[(&str, &str)] = &[
    ("SOTA_CONSENSUS_VOTES", "relay.consensus_votes"),
    ("SOTA_ALIGNMENT_MOD", "relay.alignment_mod"),
    ("SOTA_T2_BLOCKS", "relay.t2_blocks"),
    ("SOTA_T2_INTERVALS", "relay.t2_intervals"),
    ("SOTA_MIN_T2_INTERVALS", "relay.min_t2_intervals"),
    (
        "SOTA_ACTIVATION_DELAY_INTERVALS",
        "relay.activation_delay_intervals",
    ),
    ("DEFAULT_SOTA_THRESHOLD", "relay.default_sota_threshold"),
    ("ADMIN_AUTH_TOKEN", "relay.admin_token"),
    ("ADMIN_DASHBOARD_USERNAME", "relay.dashboard_username"),
    ("ADMIN_DASHBOARD_PASSWORD", "relay.dashboard_password"),
    ("BITSOTA_TEST_MODE", "relay.test_mode"),
    ("BITSOTA_TEST_INVITE_CODE", "relay.test_invite_code"),
    ("RELAY_UID0_HOTKEY", "relay.uid0_hotkey"),
    ("VALIDATOR_TASK_COUNT", "validator.task_count"),
    ("VALIDATOR_TASK_SEED", "validator.task_seed"),
];

const SECTIONS: &[&str] = &[
    "relay",
    "sidecar",
    "pool",
    "validator",
    "miner",
    "log",
    "budget",
    "store",
    "metrics",
];

/// One override: a dotted key, its raw text, and where it came from (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub key: String,
    pub value: String,
    pub source: String,
}

/// Overrides from environment variables, in a deterministic order.
pub fn env_overrides(vars: &BTreeMap<String, String>) -> Result<Vec<Override>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in vars {
        let source = format!("environment variable {name}");
        if let Some((_, key)) = REFERENCE_ENV.iter().find(|(n, _)| n == name) {
            out.push(Override {
                key: key.to_string(),
                value: value.clone(),
                source,
            });
            continue;
        }
        match name.as_str() {
            "BITSOTA_DATA_DIR" => out.push(Override {
                key: "data_dir".into(),
                value: value.clone(),
                source,
            }),
            // The reference sidecar's host/port pair maps onto `sidecar.listen`.
            "BITSOTA_SIDECAR_PORT" | "BITSOTA_SIDECAR_HOST" => {}
            _ => {
                let Some(rest) = name.strip_prefix("BITSOTA_") else {
                    continue;
                };
                let lower = rest.to_ascii_lowercase();
                if let Some(section) = SECTIONS
                    .iter()
                    .find(|s| lower.starts_with(&format!("{s}_")))
                {
                    let key = &lower[section.len() + 1..];
                    out.push(Override {
                        key: format!("{section}.{key}"),
                        value: value.clone(),
                        source,
                    });
                }
            }
        }
    }
    let host = vars.get("BITSOTA_SIDECAR_HOST");
    let port = vars.get("BITSOTA_SIDECAR_PORT");
    if host.is_some() || port.is_some() {
        let host = host.map(String::as_str).unwrap_or("127.0.0.1");
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| {
                err(format!(
                    "config: sidecar.listen: BITSOTA_SIDECAR_PORT={p:?} is not a port number"
                ))
            })?,
            None => 8123,
        };
        out.push(Override {
            key: "sidecar.listen".into(),
            value: format!("{host}:{port}"),
            source: "environment variables BITSOTA_SIDECAR_HOST/PORT".into(),
        });
    }
    Ok(out)
}

/// Load the configuration: `file` (if it exists, or an error if it was named explicitly
/// and is missing), then environment, then CLI `flags`.
pub fn load(
    file: Option<&Path>,
    file_required: bool,
    vars: &BTreeMap<String, String>,
    flags: &[Override],
) -> Result<Config, ConfigError> {
    let mut table = match file {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(format!("config: cannot read {}: {e}", path.display())))?;
            text.parse::<toml::Table>().map_err(|e| {
                err(format!(
                    "config: {}: {}",
                    path.display(),
                    one_line(&e.to_string())
                ))
            })?
        }
        Some(path) if file_required => {
            return Err(err(format!(
                "config: file {} does not exist",
                path.display()
            )))
        }
        _ => toml::Table::new(),
    };
    let mut overrides = env_overrides(vars)?;
    overrides.extend_from_slice(flags);
    for o in &overrides {
        apply_override(&mut table, o, false)?;
    }
    // A key without a default (an unset `Option`) gives no type hint: when an override
    // read as a literal is rejected, read it once more as a string.
    let mut retried = Vec::new();
    let config = loop {
        match deserialize(&table, &overrides) {
            Ok(c) => break c,
            Err((path, e)) => match overrides.iter().rev().find(|o| o.key == path) {
                Some(o) if !retried.contains(&path) => {
                    apply_override(&mut table, o, true)?;
                    retried.push(path);
                }
                _ => return Err(e),
            },
        }
    };
    config.validate()?;
    Ok(config)
}

/// Load from the process environment.
pub fn load_from_env(
    file: &Path,
    file_required: bool,
    flags: &[Override],
) -> Result<Config, ConfigError> {
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    load(Some(file), file_required, &vars, flags)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Deserialise the merged table; on error, the failing key path and the message.
fn deserialize(
    table: &toml::Table,
    overrides: &[Override],
) -> Result<Config, (String, ConfigError)> {
    let value = toml::Value::Table(table.clone());
    serde_path_to_error::deserialize::<_, Config>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = one_line(&e.inner().to_string());
        let from = overrides
            .iter()
            .rev()
            .find(|o| o.key == path)
            .map(|o| format!(" (from {})", o.source))
            .unwrap_or_default();
        let message = if path == "." || path.is_empty() {
            err(format!("config: {inner}{from}"))
        } else {
            err(format!("config: {path}: {inner}{from}"))
        };
        (path, message)
    })
}

/// Insert one override into the TOML table. The text is read as a TOML literal when it
/// parses as one whose type matches the existing/default value, else as a string; the
/// final typed deserialisation decides whether the value is valid.
fn apply_override(
    table: &mut toml::Table,
    o: &Override,
    as_string: bool,
) -> Result<(), ConfigError> {
    let parts: Vec<&str> = o.key.split('.').collect();
    let (sections, leaf) = parts.split_at(parts.len() - 1);
    let mut cur = table;
    for s in sections {
        let entry = cur
            .entry(s.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(err(format!(
                    "config: {s} must be a section (set from {})",
                    o.source
                )))
            }
        };
    }
    let value = if as_string {
        toml::Value::String(o.value.clone())
    } else {
        typed_value(&o.key, &o.value)
    };
    cur.insert(leaf[0].to_string(), value);
    Ok(())
}

/// Guess the TOML type of an override from the default config's value at `key`.
fn typed_value(key: &str, text: &str) -> toml::Value {
    let defaults = toml::Value::try_from(Config::default()).ok();
    let existing = defaults
        .as_ref()
        .and_then(|d| key.split('.').try_fold(d, |v, part| v.get(part)));
    let literal = format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match (existing, literal) {
        // Keep the string form for string-typed keys ("123" as an admin token).
        (Some(toml::Value::String(_)), _) => toml::Value::String(text.to_string()),
        // The reference's own scripts set `BITSOTA_TEST_MODE=1`; anything else stays a
        // string, so the typed pass rejects it naming the key.
        (Some(toml::Value::Boolean(_)), _) => parse_bool(text).map_or_else(
            || toml::Value::String(text.to_string()),
            toml::Value::Boolean,
        ),
        (Some(toml::Value::Float(_)), Some(toml::Value::Integer(i))) => {
            toml::Value::Float(i as f64)
        }
        (_, Some(lit)) => lit,
        (_, None) => toml::Value::String(text.to_string()),
    }
}

/// A boolean as the reference reads it from the environment: `1/0`, `true/false`,
/// `yes/no`, `on/off`, in any case (surrounding blanks ignored).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parse a listen address, naming the key on error.
pub fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse::<SocketAddr>().map_err(|_| {
        err(format!(
            "config: {key}: {value:?} is not a socket address (expected HOST:PORT, e.g. 127.0.0.1:8002)"
        ))
    })
}

impl Config {
    /// Checks serde cannot express: address syntax, ranges, known names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_listen("relay.listen", &self.relay.listen)?;
        parse_listen("sidecar.listen", &self.sidecar.listen)?;
        parse_listen("pool.listen", &self.pool.listen)?;
        let positive = |key: &str, v: u64| {
            if v == 0 {
                Err(err(format!("config: {key}: must be at least 1")))
            } else {
                Ok(())
            }
        };
        positive("relay.consensus_votes", self.relay.consensus_votes as u64)?;
        positive("relay.alignment_mod", self.relay.alignment_mod)?;
        positive("relay.blacklist_votes", self.relay.blacklist_votes as u64)?;
        positive("relay.max_body_bytes", self.relay.max_body_bytes as u64)?;
        positive("pool.evals_required", self.pool.evals_required as u64)?;
        positive("pool.window_s", self.pool.window_s)?;
        positive("pool.epoch_s", self.pool.epoch_s)?;
        positive("validator.limit", self.validator.limit as u64)?;
        positive("validator.task_count", self.validator.task_count as u64)?;
        positive("miner.miner_task_count", self.miner.miner_task_count as u64)?;
        positive("miner.input_dim", self.miner.input_dim as u64)?;
        positive("pool.input_dim", self.pool.input_dim as u64)?;
        positive("pool.eval_task_count", self.pool.eval_task_count as u64)?;
        positive("store.prune_interval_s", self.store.prune_interval_s)?;
        positive("store.max_run_logs", self.store.max_run_logs)?;
        positive("store.max_run_candidates", self.store.max_run_candidates)?;
        positive("store.max_run_populations", self.store.max_run_populations)?;
        positive("store.max_run_job_results", self.store.max_run_job_results)?;
        positive("store.max_run_jobs", self.store.max_run_jobs)?;
        let days = self.store.pool_history_days;
        if !(0.0..=1e6).contains(&days) {
            return Err(err(
                "config: store.pool_history_days: must be within 0..=1e6",
            ));
        }
        // Also bounds what `Duration::from_secs_f64` accepts.
        if !(self.budget.deadline_s > 0.0 && self.budget.deadline_s <= 1e9) {
            return Err(err("config: budget.deadline_s: must be > 0 (seconds)"));
        }
        if self.validator.poll_interval_s.is_nan() || self.validator.poll_interval_s <= 0.0 {
            return Err(err("config: validator.poll_interval_s: must be > 0"));
        }
        if !(0.0..=1.0).contains(&self.miner.mutation_prob) {
            return Err(err("config: miner.mutation_prob: must be within 0..=1"));
        }
        let grace = self.pool.local_evaluator_grace_s;
        if grace.is_nan() || grace < 0.0 {
            return Err(err("config: pool.local_evaluator_grace_s: must be ≥ 0"));
        }
        if !(self.pool.payout_cap > 0.0 && self.pool.payout_cap <= 1.0) {
            return Err(err("config: pool.payout_cap: must be within (0, 1]"));
        }
        let miner_tasks = [
            "scalar_linear",
            "mnist_binary",
            "cifar10_binary",
            "pool",
            "pool_lease",
        ];
        if !miner_tasks.contains(&self.miner.task_type.as_str()) {
            return Err(err(format!(
                "config: miner.task_type: unknown task type {:?} (known: {})",
                self.miner.task_type,
                miner_tasks.join(", ")
            )));
        }
        if !["baseline", "archive"].contains(&self.miner.engine.as_str()) {
            return Err(err(format!(
                "config: miner.engine: unknown engine {:?} (known: baseline, archive)",
                self.miner.engine
            )));
        }
        // The miner's search keys are checked with the recipe they complete, by
        // `miner::settings::check_config` where mining can start (config knows no miner).
        if self
            .pool
            .task_type
            .parse::<crate::tasks::TaskType>()
            .is_err()
        {
            return Err(err(format!(
                "config: pool.task_type: unknown task type {:?}",
                self.pool.task_type
            )));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(err("config: data_dir: must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_text(
        text: &str,
        env: &[(&str, &str)],
        flags: &[Override],
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, text).unwrap();
        load(Some(&path), true, &vars(env), flags)
    }

    #[test]
    fn the_appliance_manifest_numbers_its_version() {
        assert_eq!(version_code("0.1.0"), 100);
        assert_eq!(version_code("2.13.7-rc.1"), 21307);
        assert_eq!(version_code("3"), 30000);
        let m = VersionManifest::appliance();
        assert_eq!(m.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(m.version_code, version_code(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        assert_eq!(load_text("", &[], &[]).unwrap(), Config::default());
    }

    #[test]
    fn shipped_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("appliance.toml");
        let c = load(Some(&path), true, &BTreeMap::new(), &[]).unwrap();
        assert!(c.relay.test_mode);
        assert_eq!(c.relay.consensus_votes, 1);
        assert_eq!(c.relay.alignment_mod, 1);
        assert_eq!(c.validator.count, 2);
        assert!(c.miner.autostart);
        assert_eq!(c.miner.task_type, "scalar_linear");
        // The documented per-run caps are the built-in ones.
        assert_eq!(c.store, StoreConfig::default());
        assert_eq!(c.log.file_max_mb, LogConfig::default().file_max_mb);
    }

    #[test]
    fn precedence_cli_env_file_default() {
        let text = "[relay]\nconsensus_votes = 3\nalignment_mod = 7\n";
        let c = load_text(text, &[], &[]).unwrap();
        assert_eq!((c.relay.consensus_votes, c.relay.alignment_mod), (3, 7));
        let c = load_text(text, &[("SOTA_CONSENSUS_VOTES", "4")], &[]).unwrap();
        assert_eq!(c.relay.consensus_votes, 4);
        let c = load_text(text, &[("BITSOTA_RELAY_CONSENSUS_VOTES", "5")], &[]).unwrap();
        assert_eq!(c.relay.consensus_votes, 5);
        let flag = Override {
            key: "relay.consensus_votes".into(),
            value: "6".into(),
            source: "--flag".into(),
        };
        let c = load_text(text, &[("SOTA_CONSENSUS_VOTES", "4")], &[flag]).unwrap();
        assert_eq!(c.relay.consensus_votes, 6);
        assert_eq!(c.relay.alignment_mod, 7);
    }

    #[test]
    fn appliance_env_names() {
        let c = load_text(
            "",
            &[
                ("BITSOTA_DATA_DIR", "/tmp/x"),
                ("BITSOTA_RELAY_LISTEN", "127.0.0.1:0"),
                ("BITSOTA_SIDECAR_LISTEN", "127.0.0.1:1"),
                ("BITSOTA_POOL_LISTEN", "127.0.0.1:2"),
                ("BITSOTA_VALIDATOR_ENABLED", "false"),
                ("BITSOTA_MINER_AUTOSTART", "true"),
                ("ADMIN_AUTH_TOKEN", "12345"),
                ("BITSOTA_TEST_MODE", "true"),
                ("BITSOTA_VALIDATOR_POLL_INTERVAL_S", "2"),
                ("BITSOTA_TEST_DATASETS", "/ignored"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.relay.listen, "127.0.0.1:0");
        assert_eq!(c.sidecar.listen, "127.0.0.1:1");
        assert_eq!(c.pool.listen, "127.0.0.1:2");
        assert!(!c.validator.enabled);
        assert!(c.miner.autostart);
        assert_eq!(c.relay.admin_token.as_deref(), Some("12345"));
        assert!(c.relay.test_mode);
        assert_eq!(c.validator.poll_interval_s, 2.0);
        let c = load_text("", &[("BITSOTA_SIDECAR_PORT", "9999")], &[]).unwrap();
        assert_eq!(c.sidecar.listen, "127.0.0.1:9999");
    }

    #[test]
    fn env_booleans_take_the_reference_spellings() {
        for (text, want) in [
            ("1", true),
            ("0", false),
            ("TRUE", true),
            ("False", false),
            ("yes", true),
            ("No", false),
            ("ON", true),
            ("off", false),
            (" 1 ", true),
        ] {
            assert_eq!(parse_bool(text), Some(want), "{text:?}");
            for name in ["BITSOTA_TEST_MODE", "BITSOTA_RELAY_TEST_MODE"] {
                let c = load_text("", &[(name, text)], &[]).unwrap();
                assert_eq!(c.relay.test_mode, want, "{name}={text:?}");
            }
            let c = load_text("", &[("BITSOTA_MINER_AUTOSTART", text)], &[]).unwrap();
            assert_eq!(c.miner.autostart, want, "{text:?}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool("2"), None);
        let e = load_text("", &[("BITSOTA_TEST_MODE", "maybe")], &[])
            .unwrap_err()
            .0;
        assert!(
            e.contains("relay.test_mode") && e.contains("BITSOTA_TEST_MODE"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = load_text("[relay]\nbogus = 1\n", &[], &[]).unwrap_err().0;
        assert!(e.contains("bogus") && e.contains("relay"), "{e}");
        let e = load_text("[relay]\nconsensus_votes = \"x\"\n", &[], &[])
            .unwrap_err()
            .0;
        assert!(e.contains("relay.consensus_votes"), "{e}");
        let e = load_text("", &[("SOTA_CONSENSUS_VOTES", "lots")], &[])
            .unwrap_err()
            .0;
        assert!(
            e.contains("relay.consensus_votes") && e.contains("SOTA_CONSENSUS_VOTES"),
            "{e}"
        );
        let e = load_text("", &[("BITSOTA_RELAY_NOPE", "1")], &[])
            .unwrap_err()
            .0;
        assert!(e.contains("nope"), "{e}");
        let e = load_text("[relay]\nlisten = \"nowhere\"\n", &[], &[])
            .unwrap_err()
            .0;
        assert!(e.contains("relay.listen"), "{e}");
        let e = load_text("[store]\nmax_run_logs = 0\n", &[], &[])
            .unwrap_err()
            .0;
        assert_eq!(e, "config: store.max_run_logs: must be at least 1");
        let e = load_text("", &[("BITSOTA_STORE_MAX_RUN_JOBS", "-1")], &[])
            .unwrap_err()
            .0;
        assert!(
            e.contains("store.max_run_jobs") && e.contains("BITSOTA_STORE_MAX_RUN_JOBS"),
            "{e}"
        );
        let e = load_text("data_dir = [1\n", &[], &[]).unwrap_err().0;
        assert!(e.starts_with("config:"), "{e}");
        let e = load_text("[miner]\ntask_type = \"chess\"\n", &[], &[])
            .unwrap_err()
            .0;
        assert!(e.contains("miner.task_type"), "{e}");
        let e = load_text("", &[("BITSOTA_SIDECAR_PORT", "http")], &[])
            .unwrap_err()
            .0;
        assert!(e.contains("BITSOTA_SIDECAR_PORT"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn missing_named_file_is_an_error() {
        let e = load(
            Some(Path::new("/nonexistent/x.toml")),
            true,
            &BTreeMap::new(),
            &[],
        );
        assert!(e.unwrap_err().0.contains("does not exist"));
        assert!(load(
            Some(Path::new("/nonexistent/x.toml")),
            false,
            &BTreeMap::new(),
            &[]
        )
        .is_ok());
    }
}
