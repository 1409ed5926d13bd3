//! Test harness: runs the real `bitsota` binary on ephemeral ports with a temporary data
//! directory and talks HTTP to it. No component is mocked.
#![allow(dead_code)] // each integration-test crate uses a different part of the harness

pub mod ledger;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails the test, showing the command's stderr, unless it exited with status 0.
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Path of the built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bitsota")
}

/// The repository root (for `appliance.toml`, fixtures).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` (override with BITSOTA_SHARED_DIR).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("BITSOTA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared"))
}

/// A daemon process started by a test.
pub struct Daemon {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub relay: String,
    pub sidecar: String,
    pub pool: String,
    pub stderr_path: PathBuf,
    env: Vec<(String, String)>,
    /// Variables of [`base_env`] dropped so the shipped file's value applies.
    unset: Vec<String>,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

/// Options for [`Daemon::start`].
#[derive(Default, Clone)]
pub struct Opts {
    /// Extra environment variables (they override the defaults below).
    pub env: Vec<(String, String)>,
    /// Extra arguments after `serve`.
    pub args: Vec<String>,
    /// Use this data directory instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
    /// Defaults of [`base_env`] to drop, so the shipped file's value applies.
    pub unset: Vec<String>,
}

impl Opts {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    /// Run the shipped configuration's pool background work (local evaluators, genesis
    /// algorithms), which test daemons leave off by default.
    pub fn shipped_pool(mut self) -> Self {
        self.unset.extend(POOL_BACKGROUND.map(String::from));
        self
    }
}

/// The pool's background work that [`base_env`] turns off.
const POOL_BACKGROUND: [&str; 2] = [
    "BITSOTA_POOL_LOCAL_EVALUATORS",
    "BITSOTA_POOL_GENESIS_ALGORITHMS",
];

/// The environment every test daemon gets: ephemeral ports, the shipped config, quiet
/// background work unless a test turns it on.
fn base_env(data_dir: &Path) -> Vec<(String, String)> {
    [
        ("BITSOTA_DATA_DIR", data_dir.display().to_string()),
        ("BITSOTA_RELAY_LISTEN", "127.0.0.1:0".into()),
        ("BITSOTA_SIDECAR_LISTEN", "127.0.0.1:0".into()),
        ("BITSOTA_POOL_LISTEN", "127.0.0.1:0".into()),
        ("BITSOTA_MINER_AUTOSTART", "false".into()),
        ("BITSOTA_VALIDATOR_ENABLED", "false".into()),
        ("BITSOTA_LOG_FILE", "false".into()),
        // The shipped pool evaluates genesis work and forwards verified algorithms to
        // the relay; a test that counts pool or relay records turns that on itself.
        (POOL_BACKGROUND[0], "0".into()),
        (POOL_BACKGROUND[1], "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `bitsota serve --config appliance.toml` with the [`base_env`] on `data_dir`; stdin
/// closed, stdout and stderr still to be chosen.
pub fn serve_command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(repo_root().join("appliance.toml"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (k, v) in base_env(data_dir) {
        cmd.env(k, v);
    }
    cmd
}

impl Daemon {
    /// Start `bitsota serve --config appliance.toml` and wait until it printed its URLs.
    pub fn start(opts: Opts) -> Daemon {
        let (tmp, data_dir) = match opts.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let mut d = Daemon {
            child: None,
            stderr_path: data_dir.with_extension("stderr.log"),
            data_dir,
            relay: String::new(),
            sidecar: String::new(),
            pool: String::new(),
            env: opts.env,
            unset: opts.unset,
            args: opts.args,
            _tmp: tmp,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let stderr = std::fs::File::create(&self.stderr_path).expect("stderr file");
        let mut cmd = serve_command(&self.data_dir);
        cmd.args(&self.args).stdout(Stdio::piped()).stderr(stderr);
        for k in &self.unset {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn bitsota serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut relay, mut sidecar, mut pool) = (None, None, None);
        while relay.is_none() || sidecar.is_none() || pool.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let url = line.split_whitespace().last().unwrap_or("").to_string();
                    if line.starts_with("relay listening on") {
                        relay = Some(url);
                    } else if line.starts_with("sidecar listening on") {
                        sidecar = Some(url);
                    } else if line.starts_with("pool listening on") {
                        pool = Some(url);
                    } else if line.starts_with("data directory") {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "daemon did not start; stderr:\n{}",
                        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
                    );
                }
            }
        }
        self.relay = relay.unwrap_or_default();
        self.sidecar = sidecar.unwrap_or_default();
        self.pool = pool.unwrap_or_default();
        self.child = Some(child);
    }

    /// Send a signal and wait for the exit status (bounded).
    pub fn signal_and_wait(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        wait_bounded(&mut child, Duration::from_secs(30))
    }

    /// `kill -9`, then start again on the same data directory (new ports).
    pub fn crash_and_restart(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
        self.spawn();
    }

    /// Start again after [`Daemon::signal_and_wait`] stopped it (same data directory).
    pub fn restart_stopped(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// SIGTERM, wait, then start again on the same data directory.
    pub fn restart(&mut self) {
        let status = self.signal_and_wait(libc::SIGTERM);
        assert!(status.success(), "clean shutdown expected, got {status}");
        self.spawn();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills a spawned child when the test ends, passing or failing.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `bitsota worker` on a sidecar's job queue (output discarded).
pub fn spawn_worker(sidecar: &str, run_id: &str, workers: usize) -> Child {
    Command::new(bin())
        .args(["worker", "--sidecar-url", sidecar, "--run-id", run_id])
        .args(["--workers", &workers.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bitsota worker")
}

/// Wait for a child with a deadline; kill it and panic when the deadline passes.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A blocking HTTP client with a sane timeout.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Whether the listener at `base` answers `GET /health` with a success.
pub fn healthy(base: &str) -> bool {
    http()
        .get(format!("{base}/health"))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

/// Poll `f` until it returns `Some`, at most `tries` times `every` apart.
pub fn poll_until<T>(tries: usize, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..tries {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(every);
    }
    None
}
