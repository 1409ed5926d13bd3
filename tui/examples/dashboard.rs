//! Runs the dashboard against a daemon without the `bitsota` binary, for trying the TUI
//! on its own: `cargo run -p bitsota-tui --example dashboard -- [RELAY SIDECAR POOL]`.
//! The admin token is read from `ADMIN_AUTH_TOKEN`, as the relay does.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut url = |default: &str| args.next().unwrap_or_else(|| default.to_owned());
    let endpoints = bitsota_tui::Endpoints {
        relay: url("http://127.0.0.1:8002"),
        sidecar: url("http://127.0.0.1:8123"),
        pool: url("http://127.0.0.1:8434"),
        admin_token: std::env::var("ADMIN_AUTH_TOKEN").ok(),
    };
    bitsota_tui::run_dashboard(endpoints)
}
