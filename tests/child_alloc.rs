//! No allocation per child on the search's hot path: a counting global allocator
//! watches an island breed, compile and evaluate children after a warm-up (buffers
//! grown, population full, caches at capacity), for the demo space and for the
//! matrix space of the image recipe's second stage.
//!
//! Its own test binary, because the allocator is global. Each thread counts its own
//! allocations, so the test harness's threads (its "running for over 60 seconds" note)
//! do not count.

use bitsota::engine::{EvolutionConfig, Evolver, ProfileChoice};
use bitsota::tasks::scalar_linear::{build, LinearSizes};
use bitsota::tasks::suite::SuiteSpec;
use bitsota::tasks::TaskType;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed straight to the system allocator; the counter is a
// const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per child over `counted` children, after `warm_up` children.
fn allocations_per_child(cfg: EvolutionConfig, dim: usize, warm_up: u64, counted: u64) -> f64 {
    let suite = SuiteSpec::new(TaskType::ScalarLinear, dim, 10, 7);
    let sizes = LinearSizes {
        train: 100,
        val: 100,
    };
    let tasks = suite
        .tasks
        .iter()
        .map(|t| Arc::new(build(t, sizes)))
        .collect();
    let seeds = (0..10).map(|i| suite.eval_seed(i)).collect();
    let mut evolver = Evolver::new(cfg, tasks, seeds).expect("a valid configuration");
    for _ in 0..warm_up {
        evolver.step();
    }
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..counted {
        evolver.step();
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    let per_child = allocations as f64 / counted as f64;
    eprintln!("{allocations} allocations over {counted} children: {per_child:.4} per child");
    per_child
}

#[test]
fn demo_children_allocate_nothing() {
    let cfg = EvolutionConfig {
        exact_cache_size: 0,
        ..EvolutionConfig::automl_zero_demo(false, 3, 1)
    };
    let per_child = allocations_per_child(cfg, 4, 20_000, 20_000);
    assert_eq!(per_child, 0.0, "allocations per demo child");
}

#[test]
fn matrix_children_allocate_nothing() {
    let cfg = EvolutionConfig {
        profile: ProfileChoice::Named("az_bilinear".into()),
        pop_size: 100,
        exact_cache_size: 0,
        ..EvolutionConfig::automl_zero_demo(false, 5, 1)
    };
    let per_child = allocations_per_child(cfg, 16, 2_000, 2_000);
    assert_eq!(per_child, 0.0, "allocations per matrix child");
}
