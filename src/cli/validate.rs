//! `bitsota validate`.

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: ValidateArgs) -> anyhow::Result<()> {
    super::not_built("validate")
}
