//! A relay whose stored result was tampered with (a forged miner signature) must not get
//! a validator's vote. The embedded relay verifies signatures on submission, so the
//! forgery is planted in its store while the daemon is stopped — what a compromised
//! remote relay could serve.

use crate::common;
use crate::validator_support;

use bitsota::keys::Keypair;
use common::{Daemon, Opts};
use validator_support::*;

#[test]
fn a_forged_signature_is_counted_and_never_voted() {
    let mut first = Daemon::start(Opts::default());
    let miner = Keypair::generate();
    let (status, body) = submit(&first.relay, &miner, algorithm(LINEAR), 0.9);
    assert_eq!(status, 200, "{body}");
    assert!(first.signal_and_wait(libc::SIGTERM).success());

    tamper_with_result(&first.data_dir, &miner, |rec| {
        rec.signature = Keypair::generate().sign_hex(&rec.timestamp_message);
    });

    let d = Daemon::start(Opts {
        data_dir: Some(first.data_dir.clone()),
        ..Opts::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let stats = last_stats(&validate(&d.relay, &tmp.path().join("v"), 1, &[]));
    let got: Vec<&str> = ["new", "sig_fail", "votes", "blacklisted", "passed"]
        .iter()
        .map(|k| stats[*k].as_str())
        .collect();
    assert_eq!(got, ["1", "1", "0/0", "0", "0"]);
    assert_eq!(sota(&d.relay), 0.0);
}
