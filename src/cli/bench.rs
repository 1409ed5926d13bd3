//! `bitsota bench`.

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: BenchArgs) -> anyhow::Result<()> {
    super::not_built("bench")
}
