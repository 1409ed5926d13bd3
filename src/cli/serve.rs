//! `bitsota serve`.

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, default_value = "appliance.toml")]
    pub config: std::path::PathBuf,
    /// Data directory (overrides the config).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Relay test mode.
    #[arg(long)]
    pub test: bool,
}

pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    super::not_built("serve")
}
