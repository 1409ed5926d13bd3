//! The command line: the binary's edge, where library errors become one line on stderr
//! and an exit code (0 success, 1 runtime failure, 2 usage or configuration error).

mod bench;
mod bench_kernels;
mod bench_miner;
mod bench_quality;
mod dash;
mod data;
mod eval;
mod log;
mod mine;
mod profile;
mod quality_curve;
mod serve;
mod validate;
mod wallet;
mod worker;

use clap::{Parser, Subcommand};
pub(crate) use log::init_logging;
use std::io::Write;

/// An error that is the user's to fix (bad flag, bad config): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Parser, Debug)]
#[command(
    name = "bitsota",
    version,
    about = "The BitSota research-network loop as one appliance: relay, sidecar, pool, validators and miner in one daemon"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: listeners, validators, miner supervisor.
    Serve(serve::ServeArgs),
    /// Run the daemon and the dashboard in one process.
    Up(dash::UpArgs),
    /// Attach the dashboard to a running daemon.
    Dash(dash::DashArgs),
    /// Control mining on a running daemon.
    Mine(mine::MineArgs),
    /// Score a program on the validator suite.
    Eval(eval::EvalArgs),
    /// Measure engine throughput.
    Bench(bench::BenchArgs),
    /// Profile one generation along the miner, dashboard and sidecar paths; summarize.
    Profile(profile::ProfileArgs),
    /// Dataset cache: status, fetch, import.
    Data(data::DataArgs),
    /// Keys: create, list, show, sign, verify, import.
    Wallet(wallet::WalletArgs),
    /// Run one validator against any relay.
    Validate(validate::ValidateArgs),
    /// A compute-only worker for a (remote) sidecar's job queue.
    Worker(worker::WorkerArgs),
}

/// Parse arguments, run the command, map errors to exit codes.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Up(a) => dash::run_up(a),
        Command::Dash(a) => dash::run_dash(a),
        Command::Mine(a) => mine::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Data(a) => data::run(a),
        Command::Wallet(a) => wallet::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Worker(a) => worker::run(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let usage = e
                .chain()
                .any(|c| c.is::<UsageError>() || c.is::<crate::config::ConfigError>());
            // Not `eprintln!`: it panics when stderr is a closed pipe.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            if usage {
                2
            } else {
                1
            }
        }
    }
}
