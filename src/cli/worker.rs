//! `bitsota worker`.

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Arguments (not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: WorkerArgs) -> anyhow::Result<()> {
    super::not_built("worker")
}
