//! Which resident object to evict next: S3-FIFO, weighted by bytes.
//!
//! S3-FIFO (Yang et al., SOSP 2023) keeps a small FIFO queue for objects
//! seen once, a main FIFO queue for objects seen again, and a ghost queue of
//! the ids recently evicted from the small one. Most objects in a skewed
//! workload are used once: they pass through the small queue and leave
//! without disturbing the main one, which LRU cannot do. A hit only bumps a
//! two-bit counter on the object, so hits never take the policy's lock.
//!
//! The queues hold items, not the objects' memory; the pool decides whether
//! a victim can really go (it may be pinned by a guard) and hands it back
//! with [`S3Fifo::requeue`] when it cannot.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};

/// The most a hit counter counts to.
const MAX_FREQ: u8 = 3;

/// Hits an object needs while in the small queue to move to the main one.
const PROMOTE_AT: u8 = 1;

/// An object the policy can queue.
pub(crate) trait Tracked {
    /// A number that names the object for its whole life.
    fn id(&self) -> u64;
    /// The object's hit counter.
    fn freq(&self) -> &AtomicU8;
}

/// Counts a hit on an object. A lost update between two racing hits costs
/// one count, which the policy tolerates, so this is a load and a store.
pub(crate) fn record_hit(freq: &AtomicU8) {
    let f = freq.load(Ordering::Relaxed);
    if f < MAX_FREQ {
        freq.store(f + 1, Ordering::Relaxed);
    }
}

/// The three queues. Weights are bytes; the small queue's share of the
/// budget is a tenth, as in the paper.
pub(crate) struct S3Fifo<E> {
    small: VecDeque<(E, usize)>,
    main: VecDeque<(E, usize)>,
    small_bytes: usize,
    small_target: usize,
    ghost: Ghost,
}

impl<E: Tracked> S3Fifo<E> {
    /// Queues for a cache of `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            small: VecDeque::new(),
            main: VecDeque::new(),
            small_bytes: 0,
            small_target: budget / 10,
            ghost: Ghost::default(),
        }
    }

    /// Queues an object that has just become resident: in the main queue if
    /// it was evicted from the small one recently (it has been wanted
    /// twice), else in the small one.
    pub(crate) fn admit(&mut self, item: E, weight: usize) {
        item.freq().store(0, Ordering::Relaxed);
        if self.ghost.remove(item.id()) {
            self.main.push_back((item, weight));
        } else {
            self.small_bytes += weight;
            self.small.push_back((item, weight));
        }
    }

    /// Hands back a victim that could not be evicted (pinned, or being
    /// loaded or changed): it is in use, so it goes to the main queue.
    pub(crate) fn requeue(&mut self, item: E, weight: usize) {
        self.main.push_back((item, weight));
    }

    /// Keeps only the queued objects for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        let mut removed = 0;
        self.small.retain(|(e, w)| {
            let k = keep(e);
            if !k {
                removed += w;
            }
            k
        });
        self.small_bytes -= removed;
        self.main.retain(|(e, _)| keep(e));
    }

    /// Number of queued objects.
    pub(crate) fn len(&self) -> usize {
        self.small.len() + self.main.len()
    }

    /// The next object to evict, with the weight it was queued with.
    /// Objects hit while queued are moved on instead (from small to main,
    /// or to the back of main with one hit fewer).
    pub(crate) fn next_victim(&mut self) -> Option<(E, usize)> {
        loop {
            let from_small = !self.small.is_empty()
                && (self.small_bytes >= self.small_target || self.main.is_empty());
            if from_small {
                let (item, weight) = self.small.pop_front()?;
                self.small_bytes -= weight;
                if item.freq().load(Ordering::Relaxed) >= PROMOTE_AT {
                    self.main.push_back((item, weight));
                    continue;
                }
                self.ghost
                    .insert(item.id(), self.small.len() + self.main.len());
                return Some((item, weight));
            }
            let (item, weight) = self.main.pop_front()?;
            let f = item.freq().load(Ordering::Relaxed);
            if f > 0 {
                item.freq().store(f - 1, Ordering::Relaxed);
                self.main.push_back((item, weight));
                continue;
            }
            return Some((item, weight));
        }
    }
}

/// Ids recently evicted from the small queue, as many as there are queued
/// objects, oldest forgotten first.
#[derive(Default)]
struct Ghost {
    order: VecDeque<(u64, u64)>,
    // id -> the sequence number of its latest insertion, so an old entry in
    // `order` never forgets a newer one.
    ids: HashMap<u64, u64>,
    seq: u64,
}

impl Ghost {
    fn insert(&mut self, id: u64, capacity: usize) {
        self.seq += 1;
        self.ids.insert(id, self.seq);
        self.order.push_back((id, self.seq));
        while self.ids.len() > capacity.max(1) || self.order.len() > 2 * capacity.max(16) {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.ids.get(&old) == Some(&seq) {
                self.ids.remove(&old);
            }
        }
    }

    fn remove(&mut self, id: u64) -> bool {
        self.ids.remove(&id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Item(u64, AtomicU8);

    impl Tracked for Arc<Item> {
        fn id(&self) -> u64 {
            self.0
        }
        fn freq(&self) -> &AtomicU8 {
            &self.1
        }
    }

    fn item(id: u64) -> Arc<Item> {
        Arc::new(Item(id, AtomicU8::new(0)))
    }

    #[test]
    fn one_time_objects_leave_before_reused_ones() {
        let mut p = S3Fifo::new(100);
        let hot = item(1);
        p.admit(hot.clone(), 10);
        record_hit(hot.freq());
        for id in 2..10 {
            p.admit(item(id), 10);
        }
        // The hot object was hit in the small queue: it moves to main and
        // the one-time objects are evicted first, in arrival order.
        for id in 2..10 {
            assert_eq!(p.next_victim().unwrap().0.id(), id);
        }
        assert_eq!(p.next_victim().unwrap().0.id(), 1);
        assert!(p.next_victim().is_none());
    }

    #[test]
    fn an_object_evicted_from_small_and_wanted_again_goes_to_main() {
        let mut p = S3Fifo::new(100);
        let a = item(1);
        p.admit(a.clone(), 10);
        assert_eq!(p.next_victim().unwrap().0.id(), 1);
        p.admit(a.clone(), 10);
        p.admit(item(2), 50);
        // 2 is in small at or above target: it goes before 1, which is in
        // main.
        assert_eq!(p.next_victim().unwrap().0.id(), 2);
        assert_eq!(p.next_victim().unwrap().0.id(), 1);
    }

    #[test]
    fn main_gives_hit_objects_another_round() {
        // No room for a small queue: objects pass straight through it.
        let mut p = S3Fifo::new(0);
        let (a, b) = (item(1), item(2));
        // Through the small queue and the ghost into main.
        for x in [&a, &b] {
            p.admit(x.clone(), 10);
            assert_eq!(p.next_victim().unwrap().0.id(), x.id());
            p.admit(x.clone(), 10);
        }
        record_hit(a.freq());
        assert_eq!(p.next_victim().unwrap().0.id(), 2);
        // Unevictable victims come back, to main.
        p.requeue(b.clone(), 10);
        assert_eq!(p.len(), 2);
        assert_eq!(p.next_victim().unwrap().0.id(), 1);
        assert_eq!(p.next_victim().unwrap().0.id(), 2);
    }

    #[test]
    fn the_ghost_forgets_the_oldest_ids() {
        let mut g = Ghost::default();
        for id in 0..100 {
            g.insert(id, 10);
        }
        assert!(!g.remove(0));
        assert!(g.remove(99));
        assert!(g.ids.len() <= 10);
    }
}
