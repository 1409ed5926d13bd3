//! `bitsota profile miner`: the engine's run loop alone — one island stepping through
//! W warm-up generations, then N profiled ones — the baseline the other paths'
//! overhead is measured against.

use super::record::{profile_to, Record, Sampler};
use super::SearchFlags;
use crate::engine::Evolver;
use crate::miner::search;
use serde_json::{json, Map};

#[derive(clap::Args, Debug)]
pub struct MinerArgs {
    #[command(flatten)]
    pub search: SearchFlags,
}

pub fn run(args: &MinerArgs) -> anyhow::Result<()> {
    let flags = &args.search;
    let problem = flags.problem_config(Map::from_iter([("workers".into(), json!(1))]));
    let (settings, search_settings) = flags.settings(&problem)?;
    let pop = search_settings.pop_size as u64;
    let (warmup, window) = (flags.warmup_generations * pop, flags.generations * pop);
    profile_to(&flags.out, flags.flamegraph, || {
        let suite = search::miner_suite(&settings, &flags.data_dir).map_err(anyhow::Error::msg)?;
        let config = search::evolution_config(&settings, None).map_err(anyhow::Error::msg)?;
        let mut island = Evolver::new(config, suite.tasks, suite.seeds)?;
        for _ in 0..warmup {
            island.step();
        }
        island.reset_stages();
        island.set_profiling(true);
        let sampler = Sampler::start(flags.frequency)?;
        for _ in 0..window {
            island.step();
        }
        let sampled = sampler.stop()?;
        let mut recorded = flags.record(&settings, &search_settings);
        recorded.insert("children_per_worker".into(), json!(window));
        let record = Record::new(
            "miner",
            recorded,
            island.stages(),
            &search_settings.mutations,
        );
        Ok((sampled, record))
    })
}
