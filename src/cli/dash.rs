//! `bitsota dash` and `bitsota up`.

#[derive(clap::Args, Debug)]
pub struct DashArgs {
    #[command(flatten)]
    pub config: super::serve::ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: super::serve::ServeArgs,
}

pub fn run_dash(_args: DashArgs) -> anyhow::Result<()> {
    super::not_built("dash")
}

pub fn run_up(_args: UpArgs) -> anyhow::Result<()> {
    super::not_built("up")
}
