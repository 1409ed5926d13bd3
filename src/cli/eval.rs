//! `bitsota eval`.

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: EvalArgs) -> anyhow::Result<()> {
    super::not_built("eval")
}
