//! What each store tree may keep (`[store]` in the configuration), as pure rules over
//! plain data. The services' background pruners read their trees, ask these rules what
//! to remove, and remove it; nothing here touches the store.
//!
//! | tree(s) | kept |
//! |---|---|
//! | `sidecar.*` (runs, logs, candidates, populations, jobs, job results, queue) | the newest `keep_runs` runs (and always the current one); within a run, the newest `max_run_logs` logs, `max_run_candidates` candidates, `max_run_populations` populations, `max_run_job_results` job results and `max_run_jobs` jobs (`sidecar::rules::Caps`, applied at each write) |
//! | `relay.results` | the newest `max_relay_results` (one per miner), always the result behind the current SOTA |
//! | `pool.tasks`, `pool.leases`, `pool.lease_index` | finished ones for `pool_history_days` |
//! | `validator.seen.*`, `validator.seen_order.*` | the newest 100,000 judged results per validator (`validator::seen`) |
//! | `relay.events`, `relay.sota`, `relay.blacklist`, `relay.invites`, `pool.miners`, `pool.algorithms`, `pool.earned`, `pool.epochs`, `pool.carry` | everything: history and payouts are derived from them, and they grow with real progress, not with time |

/// The runs to delete: all but the `keep` most recently updated, never `current`.
/// `runs` are `(run id, last update)` in any order.
pub fn runs_to_prune(runs: &[(String, f64)], current: Option<&str>, keep: usize) -> Vec<String> {
    let mut order: Vec<&(String, f64)> = runs.iter().collect();
    // Newest first; equal times by id, so the choice is deterministic.
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    order
        .into_iter()
        .skip(keep)
        .filter(|(id, _)| Some(id.as_str()) != current)
        .map(|(id, _)| id.clone())
        .collect()
}

/// The relay results to delete: past the newest `max` (0 = no limit), oldest first,
/// never the result of `keep` (the miner behind the current SOTA). `oldest_first` lists
/// the miners holding results, oldest submission first.
pub fn results_to_prune<'a>(
    oldest_first: &[&'a str],
    keep: Option<&str>,
    max: usize,
) -> Vec<&'a str> {
    if max == 0 || oldest_first.len() <= max {
        return Vec::new();
    }
    let excess = oldest_first.len() - max;
    oldest_first
        .iter()
        .copied()
        .filter(|m| Some(*m) != keep)
        .take(excess)
        .collect()
}

/// Finished pool work issued before this unix time may be deleted (`None`: keep all).
pub fn pool_history_cutoff(now: f64, days: f64) -> Option<f64> {
    (days > 0.0).then_some(now - days * 86_400.0)
}

/// Whether a pool task or lease may be deleted: finished and issued before `cutoff`.
pub fn prune_finished(finished: bool, issued_at: f64, cutoff: Option<f64>) -> bool {
    finished && cutoff.is_some_and(|c| issued_at < c)
}

/// Whether a log file of `len` bytes must be rotated under a cap of `max_bytes`
/// (0 = never).
pub fn rotate_file(len: u64, max_bytes: u64) -> bool {
    max_bytes > 0 && len > max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_the_newest_and_the_current() {
        let runs = vec![
            ("a".to_string(), 1.0),
            ("b".to_string(), 3.0),
            ("c".to_string(), 2.0),
            ("d".to_string(), 4.0),
        ];
        assert_eq!(runs_to_prune(&runs, None, 2), vec!["c", "a"]);
        // The current run is never pruned, even when it is old.
        assert_eq!(runs_to_prune(&runs, Some("a"), 2), vec!["c"]);
        assert!(runs_to_prune(&runs, None, 4).is_empty());
        assert_eq!(runs_to_prune(&runs, Some("d"), 0), vec!["b", "c", "a"]);
    }

    #[test]
    fn results_past_the_cap_go_oldest_first_but_never_the_sota() {
        let miners = ["m1", "m2", "m3", "m4", "m5"];
        assert_eq!(results_to_prune(&miners, None, 3), vec!["m1", "m2"]);
        assert_eq!(results_to_prune(&miners, Some("m1"), 3), vec!["m2", "m3"]);
        assert!(results_to_prune(&miners, None, 5).is_empty());
        assert!(results_to_prune(&miners, None, 0).is_empty());
    }

    #[test]
    fn pool_history_goes_when_finished_and_old() {
        let cutoff = pool_history_cutoff(10.0 * 86_400.0, 7.0);
        assert_eq!(cutoff, Some(3.0 * 86_400.0));
        assert!(prune_finished(true, 86_400.0, cutoff));
        assert!(!prune_finished(false, 86_400.0, cutoff));
        assert!(!prune_finished(true, 4.0 * 86_400.0, cutoff));
        assert!(!prune_finished(true, 0.0, pool_history_cutoff(1e9, 0.0)));
    }

    #[test]
    fn files_rotate_past_their_cap() {
        assert!(rotate_file(11, 10));
        assert!(!rotate_file(10, 10));
        assert!(!rotate_file(1 << 40, 0));
    }
}
