//! The shipped `appliance.toml` alone (miner autostarting on scalar_linear, two embedded
//! validators, consensus 1) finalizes a SOTA event from an empty data directory. Bounded
//! by the validators' own poll count, not by wall time.

use crate::common;
use crate::validator_support;

use common::{poll_until, Daemon, Opts};
use serde_json::Value;
use std::time::Duration;
use validator_support::get;

/// Validator polls (2 s apart in the shipped config) allowed before the loop must have
/// produced an event: two minutes of polling, twice the one-minute target.
const MAX_POLLS: u64 = 60;

#[test]
fn shipped_config_mines_votes_and_finalizes() {
    // The harness turns background work off; the shipped file turns it on.
    let d = Daemon::start(
        Opts::default()
            .env("BITSOTA_MINER_AUTOSTART", "true")
            .env("BITSOTA_VALIDATOR_ENABLED", "true"),
    );
    let mut view = Value::Null;
    let mut sota = 0.0;
    for _ in 0..10_000 {
        sota = get(&format!("{}/sota_threshold", d.relay))["sota_threshold"]
            .as_f64()
            .unwrap();
        view = get(&format!("{}/appliance/validators", d.sidecar));
        let polls = view["validators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["counters"]["polls"].as_u64().unwrap())
            .min()
            .unwrap();
        if sota > 0.0 || polls >= MAX_POLLS {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        sota > 0.0,
        "no SOTA event within {MAX_POLLS} polls: {view}\n{}",
        d.stderr()
    );
    let events = get(&format!("{}/sota-events", d.relay));
    assert!(events["total"].as_u64().unwrap() >= 1, "{events}");
    // Our validators are the only voters: one of them finalized the event.
    let finalized = poll_until(50, Duration::from_millis(100), || {
        let view = get(&format!("{}/appliance/validators", d.sidecar));
        let list = view["validators"].as_array()?.clone();
        let n: u64 = list
            .iter()
            .map(|v| v["counters"]["finalized"].as_u64().unwrap_or(0))
            .sum();
        (list.len() == 2 && n >= 1).then_some(n)
    });
    assert!(finalized.is_some(), "{view}");
}
