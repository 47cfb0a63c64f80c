//! [`PoolStats`]: what a pool has done, counted where it happens.

use crate::budget::Budget;
use crate::error::CacheError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what a pool has done, and the state of its memory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolStats {
    /// Objects alive (with at least one handle).
    pub objects: usize,
    /// Bytes of the objects in memory, by the pool's weigher.
    pub resident_bytes: usize,
    /// The budget: the background thread evicts past it.
    pub budget_bytes: usize,
    /// The budget and the slack: no insert or load takes the pool past it
    /// (see [`PoolOptions::slack`](crate::PoolOptions::slack)).
    pub limit_bytes: usize,
    /// Objects read back from the store.
    pub loads: u64,
    /// Objects written to the spill area to evict them.
    pub spills: u64,
    /// Objects dropped from memory.
    pub evictions: u64,
    /// Spill writes that failed (the object stayed in memory).
    pub spill_failures: u64,
    /// The last spill failure, if any.
    pub last_spill_error: Option<CacheError>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) loads: AtomicU64,
    pub(crate) spills: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) spill_failures: AtomicU64,
    pub(crate) last_spill_error: Mutex<Option<CacheError>>,
}

impl Counters {
    /// The counters, with the memory figures of `budget` and the number of
    /// live objects.
    pub(crate) fn report(&self, objects: usize, budget: &Budget) -> PoolStats {
        PoolStats {
            objects,
            resident_bytes: budget.resident(),
            budget_bytes: budget.budget(),
            limit_bytes: budget.limit(),
            loads: self.loads.load(Ordering::Relaxed),
            spills: self.spills.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            spill_failures: self.spill_failures.load(Ordering::Relaxed),
            last_spill_error: self
                .last_spill_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}
