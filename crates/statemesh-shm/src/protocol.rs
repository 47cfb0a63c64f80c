//! The reader/writer protocol on the shared atomic words, kept free of I/O so
//! that the exact same code runs in the library and under the `loom` model
//! checker (see the tests at the bottom of this file).
//!
//! The argument for why it is correct is in the crate docs ("The protocol");
//! the comments here point at the step of that argument each line carries.

use crate::version::{PIN_EMPTY, PIN_REQUEST, PackedVersion, Pin};
use std::sync::atomic::{AtomicU64, Ordering};

/// The atomic operations the protocol needs on a 64-bit shared word.
///
/// Implemented for `std`'s `AtomicU64` (the shared mapping) and, in tests,
/// for `loom`'s, so the model checker explores the production code paths.
pub(crate) trait SharedWord {
    fn load(&self) -> u64;
    fn store(&self, value: u64);
    fn store_release(&self, value: u64);
    fn swap(&self, value: u64) -> u64;
    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64>;
    /// A sequentially consistent fence. The protocol's store-then-load pairs
    /// (reader: pin then `current`; writer: `current` then pins) rely on it,
    /// not on SeqCst accesses alone, so that `loom`, which models SeqCst
    /// fences exactly but SeqCst accesses only as acquire/release, checks
    /// the same argument the hardware relies on.
    fn fence(&self);
}

impl SharedWord for AtomicU64 {
    #[inline]
    fn load(&self) -> u64 {
        self.load(Ordering::SeqCst)
    }
    #[inline]
    fn store(&self, value: u64) {
        self.store(value, Ordering::SeqCst);
    }
    #[inline]
    fn store_release(&self, value: u64) {
        self.store(value, Ordering::Release);
    }
    #[inline]
    fn swap(&self, value: u64) -> u64 {
        self.swap(value, Ordering::SeqCst)
    }
    #[inline]
    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        self.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
    }
    #[inline]
    fn fence(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// What a reader got when it tried to pin the current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The version is pinned: its buffer will not be written until
    /// [`reader_release`] (or until the writer finds this process dead).
    Pinned(PackedVersion),
    /// Nothing has been published yet; the slot is left empty.
    Nothing,
    /// A shared word held a value no correct participant writes. The slot is
    /// left empty and the raw word is returned for the error message.
    Corrupt(u64),
}

/// Pins the current version in `pin`, the calling reader's own slot.
///
/// Wait-free: at most one load and one compare-exchange on the fast path, one
/// swap, one load and one compare-exchange (plus one load) otherwise, whatever
/// the writer does meanwhile.
///
/// `idle` is the version this reader released last, if any: while it is still
/// current the reader takes it back with a single compare-exchange.
#[inline]
pub(crate) fn reader_acquire<W: SharedWord>(
    pin: &W,
    current: &W,
    idle: Option<PackedVersion>,
) -> Acquired {
    if let Some(idle) = idle {
        // Fast path. Success of the exchange proves the writer has not revoked
        // the idle pin, and the writer revokes every idle pin on a buffer
        // before it reuses that buffer, so the bytes of `idle` are intact.
        if current.load() == idle.word()
            && pin
                .compare_exchange(Pin::Idle(idle).encode(), idle.word())
                .is_ok()
        {
            return Acquired::Pinned(idle);
        }
    }
    // Announce, then look. From this swap on, every buffer choice of the writer
    // either sees the request (and resolves it) or happened before it.
    pin.swap(PIN_REQUEST);
    pin.fence();
    let seen = current.load();
    let Some(seen) = PackedVersion::from_word(seen) else {
        // Either nothing is published (the writer never resolves a request
        // with "nothing") or the current word is garbage.
        return match pin.compare_exchange(PIN_REQUEST, PIN_EMPTY) {
            Ok(_) if seen == 0 => Acquired::Nothing,
            Ok(_) => Acquired::Corrupt(seen),
            Err(resolved) => settle_resolved(pin, resolved),
        };
    };
    match pin.compare_exchange(PIN_REQUEST, seen.word()) {
        Ok(_) => Acquired::Pinned(seen),
        // The writer resolved our request with the version it had published
        // when it looked, and protects that one: use it, not `seen`.
        Err(resolved) => settle_resolved(pin, resolved),
    }
}

#[cold]
fn settle_resolved<W: SharedWord>(pin: &W, resolved: u64) -> Acquired {
    match Pin::decode(resolved) {
        Pin::Active(p) => Acquired::Pinned(p),
        _ => {
            pin.store(PIN_EMPTY);
            Acquired::Corrupt(resolved)
        }
    }
}

/// Ends a read of `pinned`. The pin stays as an idle pin so the next read of
/// the same version is a single compare-exchange; the writer may revoke it.
///
/// Release ordering: every read of the buffer happens before the writer's
/// (acquiring) load of this word, so before any later write into the buffer.
#[inline]
pub(crate) fn reader_release<W: SharedWord>(pin: &W, pinned: PackedVersion) {
    pin.store_release(Pin::Idle(pinned).encode());
}

/// Clears a slot for good (the reader is going away).
pub(crate) fn reader_clear<W: SharedWord>(pin: &W) {
    pin.store(PIN_EMPTY);
}

/// Orders the writer's previous publish before its scan of the pins: call
/// once before a round of [`writer_resolve`] calls.
pub(crate) fn writer_fence<W: SharedWord>(current: &W) {
    current.fence();
}

/// The writer's look at one reader slot before it picks a buffer to write.
///
/// Returns the buffer index the slot protects, if any. Pending requests are
/// resolved with `current` (the version published before this write), idle
/// pins on anything but `current` are revoked, and words that no correct
/// reader writes are cleared.
pub(crate) fn writer_resolve<W: SharedWord>(
    pin: &W,
    current: Option<PackedVersion>,
) -> Option<u32> {
    let mut word = pin.load();
    loop {
        let next = match Pin::decode(word) {
            Pin::Empty => return None,
            // The reader that wrote this request will read `current`, or a
            // later version if it loads one before we publish: never the
            // buffer we are about to choose, which is not current's buffer.
            Pin::Request => match current {
                None => return None,
                Some(c) => match pin.compare_exchange(PIN_REQUEST, c.word()) {
                    Ok(_) => return Some(c.buffer()),
                    Err(now) => now,
                },
            },
            Pin::Active(p) => return Some(p.buffer()),
            // An idle pin on the current version costs nothing: the current
            // buffer is never chosen. Any other idle pin is revoked, so the
            // reader's fast-path exchange fails and it re-runs the protocol.
            Pin::Idle(p) if Some(p) == current => return None,
            Pin::Idle(_) | Pin::Corrupt(_) => match pin.compare_exchange(word, PIN_EMPTY) {
                Ok(_) => return None,
                Err(now) => now,
            },
        };
        word = next;
    }
}

/// Picks the buffer to write the next version into: the lowest index below
/// `created` that no slot protects and that does not hold `current`.
pub(crate) fn choose_buffer(
    busy: &BufferSet,
    current: Option<PackedVersion>,
    created: u32,
) -> Option<u32> {
    let current = current.map(PackedVersion::buffer);
    (0..created).find(|&b| Some(b) != current && !busy.contains(b))
}

/// A set of buffer indices (`0..256`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BufferSet([u64; 4]);

impl BufferSet {
    pub(crate) fn insert(&mut self, buffer: u32) {
        let b = (buffer & 255) as usize;
        self.0[b / 64] |= 1 << (b % 64);
    }

    pub(crate) fn contains(&self, buffer: u32) -> bool {
        let b = (buffer & 255) as usize;
        self.0[b / 64] & (1 << (b % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Version;

    fn pv(seq: u64, buffer: u32) -> PackedVersion {
        PackedVersion::new(Version::new(seq).unwrap(), buffer)
    }

    #[test]
    fn nothing_published() {
        let pin = AtomicU64::new(0);
        let current = AtomicU64::new(0);
        assert_eq!(reader_acquire(&pin, &current, None), Acquired::Nothing);
        assert_eq!(pin.load(Ordering::SeqCst), PIN_EMPTY);
    }

    #[test]
    fn fast_path_and_revocation() {
        let pin = AtomicU64::new(0);
        let current = AtomicU64::new(pv(1, 0).word());
        let got = reader_acquire(&pin, &current, None);
        assert_eq!(got, Acquired::Pinned(pv(1, 0)));
        assert_eq!(writer_resolve(&pin, Some(pv(1, 0))), Some(0));
        reader_release(&pin, pv(1, 0));
        // Idle on current: not protecting, not revoked.
        assert_eq!(writer_resolve(&pin, Some(pv(1, 0))), None);
        assert_eq!(Pin::decode(pin.load(Ordering::SeqCst)), Pin::Idle(pv(1, 0)));
        // Fast path takes it back.
        assert_eq!(
            reader_acquire(&pin, &current, Some(pv(1, 0))),
            Acquired::Pinned(pv(1, 0))
        );
        reader_release(&pin, pv(1, 0));
        // A newer version is published: the idle pin is revoked.
        current.store(pv(2, 1).word(), Ordering::SeqCst);
        assert_eq!(writer_resolve(&pin, Some(pv(2, 1))), None);
        assert_eq!(pin.load(Ordering::SeqCst), PIN_EMPTY);
        assert_eq!(
            reader_acquire(&pin, &current, Some(pv(1, 0))),
            Acquired::Pinned(pv(2, 1))
        );
    }

    #[test]
    fn request_is_resolved_with_current() {
        let pin = AtomicU64::new(PIN_REQUEST);
        assert_eq!(writer_resolve(&pin, None), None);
        assert_eq!(pin.load(Ordering::SeqCst), PIN_REQUEST);
        assert_eq!(writer_resolve(&pin, Some(pv(7, 3))), Some(3));
        assert_eq!(pin.load(Ordering::SeqCst), pv(7, 3).word());
    }

    #[test]
    fn corrupt_words_are_cleared_and_reported() {
        let pin = AtomicU64::new(0x8000_0000_0000_0000);
        assert_eq!(writer_resolve(&pin, None), None);
        assert_eq!(pin.load(Ordering::SeqCst), PIN_EMPTY);
        let pin = AtomicU64::new(0);
        let current = AtomicU64::new(0x8000_0000_0000_0001);
        assert_eq!(
            reader_acquire(&pin, &current, None),
            Acquired::Corrupt(0x8000_0000_0000_0001)
        );
        assert_eq!(pin.load(Ordering::SeqCst), PIN_EMPTY);
    }

    #[test]
    fn choose_skips_current_and_busy() {
        let mut busy = BufferSet::default();
        assert_eq!(choose_buffer(&busy, None, 0), None);
        assert_eq!(choose_buffer(&busy, None, 2), Some(0));
        assert_eq!(choose_buffer(&busy, Some(pv(1, 0)), 2), Some(1));
        busy.insert(1);
        assert_eq!(choose_buffer(&busy, Some(pv(1, 0)), 2), None);
        assert_eq!(choose_buffer(&busy, Some(pv(1, 0)), 3), Some(2));
        busy.insert(255);
        assert!(busy.contains(255));
        assert!(!busy.contains(254));
    }
}

/// The protocol under the `loom` model checker: every interleaving of one
/// writer and two readers (within loom's bounds) is explored, and each
/// buffer is a `loom` cell, so any read that overlaps a write of the same
/// buffer fails the test, as does a reader seeing bytes of another version.
#[cfg(test)]
mod loom_tests {
    use super::*;
    use crate::version::Version;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicU64 as LoomU64;
    use loom::thread;

    impl SharedWord for LoomU64 {
        fn load(&self) -> u64 {
            self.load(Ordering::SeqCst)
        }
        fn store(&self, value: u64) {
            self.store(value, Ordering::SeqCst);
        }
        fn store_release(&self, value: u64) {
            self.store(value, Ordering::Release);
        }
        fn swap(&self, value: u64) -> u64 {
            self.swap(value, Ordering::SeqCst)
        }
        fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
            self.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
        }
        fn fence(&self) {
            loom::sync::atomic::fence(Ordering::SeqCst);
        }
    }

    struct Region {
        current: LoomU64,
        pins: Vec<LoomU64>,
        // Each buffer holds the sequence number of the version written into it,
        // written in two halves so a torn read is visible as a mismatch even
        // if loom's race detector were not there.
        buffers: Vec<UnsafeCell<(u64, u64)>>,
    }

    // SAFETY: access to `buffers` is what the test checks; loom's cells detect
    // any unsynchronised access and fail the model instead of causing UB.
    unsafe impl Sync for Region {}

    fn writer(region: &Region, writes: u64) {
        let mut current: Option<PackedVersion> = None;
        for seq in 1..=writes {
            let mut busy = BufferSet::default();
            writer_fence(&region.current);
            for pin in &region.pins {
                if let Some(b) = writer_resolve(pin, current) {
                    busy.insert(b);
                }
            }
            // One per reader, the current one, one to write: never exhausted.
            let created = region.buffers.len() as u32;
            let b = choose_buffer(&busy, current, created).expect("a free buffer");
            region.buffers[b as usize].with_mut(|cell| {
                // SAFETY: loom checks that no reader accesses this cell now.
                unsafe { *cell = (seq, seq) };
            });
            let next = PackedVersion::new(Version::new(seq).unwrap(), b);
            region.current.store(next.word(), Ordering::SeqCst);
            current = Some(next);
        }
    }

    fn reader(region: &Region, me: usize, reads: usize) {
        let mut idle = None;
        let mut last_seen = 0;
        for _ in 0..reads {
            match reader_acquire(&region.pins[me], &region.current, idle) {
                Acquired::Pinned(p) => {
                    let (a, b) = region.buffers[p.buffer() as usize].with(|cell| {
                        // SAFETY: loom checks that no writer accesses this cell now.
                        unsafe { *cell }
                    });
                    assert_eq!(a, p.version().get(), "overwritten snapshot");
                    assert_eq!(a, b, "torn snapshot");
                    assert!(a >= last_seen, "went back in time");
                    last_seen = a;
                    reader_release(&region.pins[me], p);
                    idle = Some(p);
                }
                Acquired::Nothing => assert_eq!(last_seen, 0, "lost a published version"),
                Acquired::Corrupt(w) => panic!("corrupt word {w:#x}"),
            }
        }
    }

    fn model(readers: usize, writes: u64, reads: usize) {
        loom::model(move || {
            let region = Arc::new(Region {
                current: LoomU64::new(0),
                pins: (0..readers).map(|_| LoomU64::new(0)).collect(),
                buffers: (0..readers + 2).map(|_| UnsafeCell::new((0, 0))).collect(),
            });
            let handles: Vec<_> = (0..readers)
                .map(|me| {
                    let region = region.clone();
                    thread::spawn(move || reader(&region, me, reads))
                })
                .collect();
            writer(&region, writes);
            for h in handles {
                h.join().unwrap();
            }
        });
    }

    #[test]
    fn loom_one_reader_many_writes() {
        model(1, 3, 2);
    }

    #[test]
    fn loom_two_readers() {
        model(2, 2, 1);
    }
}
