//! `bitsota wallet`.

#[derive(clap::Args, Debug)]
pub struct WalletArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: WalletArgs) -> anyhow::Result<()> {
    super::not_built("wallet")
}
