//! Local pool evaluators: `[pool] local_evaluators` identities that the appliance runs
//! against its own pool, the way the embedded validators serve its relay. A pool needs
//! `evals_required` evaluators other than an evolution's author before anything is
//! verified; on one machine the only miner may not evaluate its own work, so without
//! these the pool never completes a cycle (evolve → evaluation by others → consensus →
//! reputation → an epoch with payouts).
//!
//! Each identity (`<data_dir>/keys/pool-evaluator-N`) is an ordinary pool miner: it takes
//! evaluation tasks through the same [`PoolState`] operations the HTTP API calls, scores
//! them on the pool's suite with [`Jobs::evaluate`] (the validator rule, deterministic,
//! so the local evaluators agree with every honest outside evaluator) and submits. They
//! leave pending work `local_evaluator_grace_s` to outside evaluators first.
//!
//! When the pool holds nothing but seeds at start-up, `[pool] genesis_algorithms`
//! programs are put up for evaluation, so evaluators (local or a reference driver) have
//! work from the first second and evolution gets verified parents.

use super::api::Pool;
use super::state::{AlgorithmStatus, EvaluationIn, OpError, RefusalKind, TaskKind};
use super::PoolError;
use crate::clock::now_f64;
use crate::context::{AppContext, Background};
use crate::jobs::{self, AlgorithmRef, Jobs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the evaluators look for work.
const TICK: Duration = Duration::from_millis(500);

/// Whether `oldest_created_at` (of the longest-waiting pending algorithm) has waited
/// long enough for the local evaluators to take work.
pub fn ripe(oldest_created_at: Option<f64>, now: f64, grace_s: f64) -> bool {
    oldest_created_at.is_some_and(|t| now - t >= grace_s)
}

/// The local evaluators of one pool.
pub struct LocalEvaluators {
    pool: Arc<Pool>,
    /// Runs their evaluations with the daemon's `[budget]`.
    jobs: Jobs,
    hotkeys: Vec<String>,
    /// Set at shutdown: an evaluation in progress stops between examples.
    stop: AtomicBool,
}

impl LocalEvaluators {
    /// Load or create the identities and register them with the pool.
    pub fn new(ctx: &AppContext, pool: Arc<Pool>) -> Result<Self, PoolError> {
        let now = now_f64();
        let mut hotkeys = Vec::new();
        for i in 1..=ctx.config.pool.local_evaluators {
            let kp = crate::keys::identity::load_or_create(
                &ctx.data_dir,
                &format!("pool-evaluator-{i}"),
            )?;
            pool.state.register(&kp.ss58(), now)?;
            hotkeys.push(kp.ss58());
        }
        Ok(LocalEvaluators {
            pool,
            jobs: Jobs::new(Some(&ctx.data_dir), ctx.config.budget.clone()),
            hotkeys,
            stop: AtomicBool::new(false),
        })
    }

    /// One round: when work is ripe, each identity takes one evaluation task, scores
    /// it and submits. Returns the number of evaluations submitted.
    pub fn round(&self) -> Result<usize, OpError> {
        let grace = self.pool.state.config().local_evaluator_grace_s;
        let oldest = self.pool.state.oldest_pending()?.map(|a| a.created_at);
        if !ripe(oldest, now_f64(), grace) {
            return Ok(0);
        }
        let suite = self.pool.eval_suite();
        let mut submitted = 0;
        for hotkey in &self.hotkeys {
            let (batch, algorithms) =
                match self
                    .pool
                    .state
                    .request_task(hotkey, TaskKind::Evaluate, now_f64())
                {
                    Ok(t) => t,
                    Err(OpError::Refused(r)) if r.kind == RefusalKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
            // Only evaluation is ever asked for; an evolve task cannot be held here.
            if batch.kind != TaskKind::Evaluate {
                continue;
            }
            let refs: Vec<AlgorithmRef> = algorithms
                .iter()
                .map(|a| AlgorithmRef {
                    id: a.id,
                    algorithm_dsl: a.dsl.clone(),
                    task_type: Some(a.task_type.clone()),
                    input_dim: Some(a.input_dim),
                })
                .collect();
            // A program that cannot be scored is handed back (empty submission) so
            // others can try; it is never given a made-up score.
            let evaluations: Vec<EvaluationIn> = match self.jobs.evaluate(&suite, &refs, &self.stop)
            {
                Ok(e) => e
                    .into_iter()
                    .map(|e| EvaluationIn {
                        algorithm_id: e.algorithm_id,
                        score: e.score,
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "[pool] local evaluator could not score a batch");
                    Vec::new()
                }
            };
            let out = self.pool.state.submit_evaluation(
                hotkey,
                batch.batch_id,
                &evaluations,
                now_f64(),
            )?;
            submitted += out.accepted_evaluations;
            tracing::debug!(
                evaluator = %hotkey,
                batch_id = batch.batch_id,
                accepted = out.accepted_evaluations,
                consensus = out.consensus_reached.len(),
                "[pool] local evaluation submitted"
            );
        }
        Ok(submitted)
    }
}

/// Put the genesis programs up for evaluation when the pool holds nothing but seeds.
fn add_genesis(pool: &Pool) -> Result<(), PoolError> {
    let cfg = pool.state.config();
    let untouched = pool
        .state
        .all_algorithms()?
        .iter()
        .all(|a| a.status == AlgorithmStatus::Seed);
    if !untouched || cfg.genesis_algorithms == 0 {
        return Ok(());
    }
    let task_type = cfg
        .task_type
        .parse()
        .map_err(|e: crate::tasks::UnknownTaskType| PoolError::Config(e.to_string()))?;
    let now = now_f64();
    for dsl in jobs::genesis_dsl(task_type, cfg.input_dim, cfg.genesis_algorithms) {
        if let Some(id) = pool.state.add_genesis(&dsl, now)? {
            tracing::info!("[pool] Genesis algorithm {id} put up for evaluation");
        }
    }
    Ok(())
}

/// Add the genesis work and start the local evaluators (none when
/// `local_evaluators = 0`); they stop with `ctx.shutdown`.
pub fn start(ctx: &AppContext, pool: Arc<Pool>) -> Result<Background, PoolError> {
    add_genesis(&pool)?;
    let mut background = Background::default();
    if ctx.config.pool.local_evaluators == 0 {
        return Ok(background);
    }
    let evaluators = Arc::new(LocalEvaluators::new(ctx, pool)?);
    tracing::info!(
        "[pool] {} local evaluators: {}",
        evaluators.hotkeys.len(),
        evaluators.hotkeys.join(", ")
    );
    let token = ctx.shutdown.clone();
    let stopping = evaluators.clone();
    let cancelled = token.clone();
    // An evaluation in progress watches this flag, not the token.
    background.spawn("local evaluators: stop flag", async move {
        cancelled.cancelled().await;
        stopping.stop.store(true, Ordering::Relaxed);
    });
    background.spawn("local evaluators", async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let e = evaluators.clone();
            match tokio::task::spawn_blocking(move || e.round()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "[pool] local evaluators"),
                Err(e) => tracing::warn!(error = %e, "[pool] local evaluator task failed"),
            }
        }
    });
    Ok(background)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_ripe_after_the_grace() {
        assert!(!ripe(None, 100.0, 0.0));
        assert!(!ripe(Some(99.0), 100.0, 5.0));
        assert!(ripe(Some(95.0), 100.0, 5.0));
        assert!(ripe(Some(100.0), 100.0, 0.0));
    }
}
