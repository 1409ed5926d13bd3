//! The dashboard end to end: `bitsota dash` in a real pseudo-terminal (tmux) against the
//! real daemon. It shows the services, starts mining on `s`, survives the daemon going
//! away and coming back, and quits on `q` with the terminal restored.

use crate::common;

use common::{bin, free_port, http, poll_until, Daemon, Opts};
use std::process::Command;
use std::time::Duration;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is required under CI (.ci/run installs it)"
        );
        println!("SKIPPED: tmux is not installed");
    }
    ok
}

struct Session {
    name: String,
    socket: String,
}

impl Session {
    fn start(cmd: &str, socket: &str) -> Session {
        let name = "dash".to_string();
        tmux(&["-L", socket, "kill-server"]);
        let status = Command::new("tmux")
            .args([
                "-L",
                socket,
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "36",
                cmd,
            ])
            .status()
            .expect("tmux new-session");
        assert!(status.success());
        Session {
            name,
            socket: socket.to_string(),
        }
    }
    fn screen(&self) -> String {
        tmux(&["-L", &self.socket, "capture-pane", "-p", "-t", &self.name])
    }
    fn keys(&self, k: &str) {
        tmux(&["-L", &self.socket, "send-keys", "-t", &self.name, k]);
    }
    fn wait_for(&self, needle: &str, tries: usize) -> String {
        poll_until(tries, Duration::from_millis(250), || {
            let s = self.screen();
            s.contains(needle).then_some(s)
        })
        .unwrap_or_else(|| {
            panic!(
                "screen never showed {needle:?}; last screen:\n{}",
                self.screen()
            )
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        tmux(&["-L", &self.socket, "kill-server"]);
    }
}

#[test]
fn dashboard_drives_the_daemon_and_restores_the_terminal() {
    if !tmux_available() {
        return;
    }
    let (relay, sidecar, pool) = (free_port(), free_port(), free_port());
    let opts = Opts::default()
        .env("BITSOTA_RELAY_LISTEN", &format!("127.0.0.1:{relay}"))
        .env("BITSOTA_SIDECAR_LISTEN", &format!("127.0.0.1:{sidecar}"))
        .env("BITSOTA_POOL_LISTEN", &format!("127.0.0.1:{pool}"));
    let mut daemon = Daemon::start(opts);
    let cmd = format!(
        "BITSOTA_DATA_DIR='{}' '{}' dash --config '{}'; echo DASH-EXITED rc=$?; sleep 60",
        daemon.data_dir.display(),
        bin(),
        common::repo_root().join("appliance.toml").display()
    );
    let socket = format!("bitsota-test-{}", std::process::id());
    let session = Session::start(&cmd, &socket);

    // Header and tabs, every service reachable.
    let screen = session.wait_for("sidecar ● up", 40);
    for tab in [
        "Mining",
        "Candidates",
        "Validators",
        "SOTA",
        "Pool",
        "Relay",
    ] {
        assert!(screen.contains(tab), "tab {tab} missing:\n{screen}");
    }
    assert!(
        screen.contains("relay ● up") && screen.contains("pool ● up"),
        "{screen}"
    );

    // `s` starts mining on the daemon.
    session.keys("s");
    let status = poll_until(80, Duration::from_millis(250), || {
        let s: serde_json::Value = http()
            .get(format!("{}/appliance/status", daemon.sidecar))
            .send()
            .ok()?
            .json()
            .ok()?;
        (s["miner"]["running"] == true).then_some(s)
    });
    assert!(status.is_some(), "mining did not start after `s`");
    session.wait_for("running", 40);

    // The relay tab shows live request counters.
    session.keys("6");
    session.wait_for("Category", 40);

    // The daemon goes away: the header says so, and the dashboard keeps running.
    daemon.signal_and_wait(libc::SIGTERM);
    session.wait_for("unreachable", 60);
    // It comes back on the same ports: the dashboard recovers.
    daemon.restart_stopped();
    session.wait_for("sidecar ● up", 60);

    // `q` quits with exit 0 and leaves the alternate screen.
    session.keys("q");
    session.wait_for("DASH-EXITED rc=0", 40);
    let alternate = tmux(&[
        "-L",
        &socket,
        "display",
        "-p",
        "-t",
        "dash",
        "#{alternate_on}",
    ]);
    assert_eq!(
        alternate.trim(),
        "0",
        "terminal left in the alternate screen"
    );
}
