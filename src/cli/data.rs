//! `bitsota data`.

#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: DataArgs) -> anyhow::Result<()> {
    super::not_built("data")
}
