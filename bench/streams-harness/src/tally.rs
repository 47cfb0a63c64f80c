//! What each consumer counts: items per producer, items inside the
//! measured window, their latencies, and losses its system reported.
//!
//! Every item starts with a 24-byte header (producer, phase, sequence
//! number, send time) and is padded with zeros to the cell's size; the
//! same bytes go through all three systems.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Set while the measured window is open (after the warm-up, before the
/// producers are stopped).
pub static MEASURING: AtomicBool = AtomicBool::new(false);

/// CLOCK_MONOTONIC in nanoseconds: the one clock of send and receive
/// times, the same in the producers' process and the consumers'.
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

pub const HEADER: usize = 24;

/// An item's header.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub producer: u32,
    pub phase: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

impl Header {
    pub fn write(&self, item: &mut [u8]) {
        item[0..4].copy_from_slice(&self.producer.to_le_bytes());
        item[4..8].copy_from_slice(&self.phase.to_le_bytes());
        item[8..16].copy_from_slice(&self.seq.to_le_bytes());
        item[16..24].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    fn read(item: &[u8]) -> Option<Self> {
        let item = item.get(..HEADER)?;
        let u32_at = |i: usize| u32::from_le_bytes(item[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(item[i..i + 8].try_into().expect("8 bytes"));
        Some(Self {
            producer: u32_at(0),
            phase: u32_at(4),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

/// One consumer's counts in the current phase.
pub struct Tally {
    phase: u32,
    latency: bool,
    /// Items received from each producer in this phase.
    pub received: Vec<u64>,
    /// Items received while the window was open.
    pub counted: u64,
    /// Latencies (ns) of items received while the window was open.
    pub latencies: Histogram<u64>,
    /// Items of an earlier phase that arrived late (not counted).
    pub stale: u64,
    /// Items the system said this consumer missed (statemesh's `Lagged`).
    pub reported_lost: u64,
    /// Times its system dropped its connection (NATS, Redis) or told it
    /// it lagged (statemesh).
    pub interruptions: u64,
    /// Items that were out of order or repeated within a producer's run.
    pub disorder: u64,
    next_seq: Vec<u64>,
}

impl Tally {
    pub fn new(producers: usize) -> Self {
        Self {
            phase: u32::MAX,
            latency: false,
            received: vec![0; producers],
            counted: 0,
            latencies: histogram(),
            stale: 0,
            reported_lost: 0,
            interruptions: 0,
            disorder: 0,
            next_seq: vec![0; producers],
        }
    }

    /// Starts phase `phase`, recording latencies if `latency`.
    pub fn reset(&mut self, phase: u32, latency: bool) {
        let producers = self.received.len();
        *self = Self {
            phase,
            latency,
            ..Self::new(producers)
        };
    }

    pub fn record(&mut self, item: &[u8]) {
        let Some(h) = Header::read(item) else {
            self.stale += 1;
            return;
        };
        let p = h.producer as usize;
        if h.phase != self.phase || p >= self.received.len() {
            self.stale += 1;
            return;
        }
        if h.seq < self.next_seq[p] {
            self.disorder += 1;
        }
        self.next_seq[p] = h.seq + 1;
        self.received[p] += 1;
        if MEASURING.load(Ordering::Relaxed) {
            self.counted += 1;
            if self.latency {
                self.latencies
                    .saturating_record(now_ns().saturating_sub(h.sent_ns).max(1));
            }
        }
    }
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.received.iter().sum()
    }
}

/// What a consumer process reports of its consumers, as one line:
/// `received,received,...;counted;stale;reported;interruptions;disorder;value:count,...`.
#[derive(Default)]
pub struct Report {
    /// Items each consumer received in the phase.
    pub received: Vec<u64>,
    pub counted: u64,
    pub stale: u64,
    pub reported_lost: u64,
    pub interruptions: u64,
    pub disorder: u64,
    pub latencies: Vec<(u64, u64)>,
}

impl Report {
    pub fn of(tallies: &[Shared]) -> Self {
        let mut r = Self::default();
        let mut all = histogram();
        for t in tallies {
            let t = lock(t);
            r.received.push(t.total());
            r.counted += t.counted;
            r.stale += t.stale;
            r.reported_lost += t.reported_lost;
            r.interruptions += t.interruptions;
            r.disorder += t.disorder;
            let _ = all.add(&t.latencies);
        }
        r.latencies = all
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        r
    }

    pub fn encode(&self) -> String {
        let list = |xs: Vec<String>| xs.join(",");
        format!(
            "{};{};{};{};{};{};{}",
            list(self.received.iter().map(u64::to_string).collect()),
            self.counted,
            self.stale,
            self.reported_lost,
            self.interruptions,
            self.disorder,
            list(
                self.latencies
                    .iter()
                    .map(|(v, c)| format!("{v}:{c}"))
                    .collect()
            ),
        )
    }

    pub fn decode(line: &str) -> Option<Self> {
        let mut parts = line.trim().split(';');
        let mut next = || parts.next();
        let numbers = |s: &str| -> Option<Vec<u64>> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().ok())
                .collect()
        };
        let received = numbers(next()?)?;
        let counted = next()?.parse().ok()?;
        let stale = next()?.parse().ok()?;
        let reported_lost = next()?.parse().ok()?;
        let interruptions = next()?.parse().ok()?;
        let disorder = next()?.parse().ok()?;
        let latencies = next()?
            .split(',')
            .filter(|x| !x.is_empty())
            .map(|x| {
                let (v, c) = x.split_once(':')?;
                Some((v.parse().ok()?, c.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            received,
            counted,
            stale,
            reported_lost,
            interruptions,
            disorder,
            latencies,
        })
    }
}

pub fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("histogram bounds")
}

/// A consumer's tally, shared between its receiving task and the
/// harness (which reads it only between phases).
pub type Shared = std::sync::Arc<Mutex<Tally>>;

pub fn lock(t: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn shared(producers: usize) -> Shared {
    std::sync::Arc::new(Mutex::new(Tally::new(producers)))
}
