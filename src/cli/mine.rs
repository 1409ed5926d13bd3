//! `bitsota mine`.

#[derive(clap::Args, Debug)]
pub struct MineArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: MineArgs) -> anyhow::Result<()> {
    super::not_built("mine")
}
