//! The load generator `statemesh bench` and `bench/vs-etcd.sh` share: the
//! workload of etcd's published benchmark (8-byte keys, 256-byte values,
//! writes to the leader, then linearizable and serializable reads spread
//! over the members), run against anything that implements [`Target`].
//!
//! This file is compiled into two programs (the `statemesh` binary and the
//! comparison harness in `bench/`), so it depends on nothing but `std` and
//! `tokio`.

use std::future::Future;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// One connection to a system under test.
pub(crate) trait Target: Send + Sync + 'static {
    /// Stores `value` at `key`, acknowledged once durable on a quorum.
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
    /// Reads `key`, linearizably or from the answering member's state.
    fn get(
        &self,
        key: Vec<u8>,
        linearizable: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Writes.
    Put,
    /// Linearizable reads.
    GetLinearizable,
    /// Serializable (local) reads.
    GetSerializable,
}

impl Op {
    /// How the table names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::GetLinearizable => "get (linearizable)",
            Op::GetSerializable => "get (serializable)",
        }
    }
}

/// The shape of the load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload {
    /// Concurrent clients (each waits for its answer before its next request).
    pub(crate) clients: usize,
    /// How long each round runs.
    pub(crate) duration: Duration,
    /// How many rounds (the table shows their median and range).
    pub(crate) rounds: usize,
    /// Bytes per key.
    pub(crate) key_size: usize,
    /// Bytes per value.
    pub(crate) value_size: usize,
    /// Distinct keys.
    pub(crate) key_space: u64,
}

/// What one round measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    /// Operations completed per second.
    pub(crate) ops_per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Failed operations.
    pub(crate) errors: u64,
}

/// What the rounds measured together.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    /// Each round.
    pub(crate) rounds: Vec<Round>,
}

impl Measured {
    fn sorted(&self, f: impl Fn(&Round) -> f64) -> Vec<f64> {
        let mut v: Vec<f64> = self.rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Median, lowest and highest throughput of the rounds.
    pub(crate) fn ops_per_sec(&self) -> (f64, f64, f64) {
        let v = self.sorted(|r| r.ops_per_sec);
        (median(&v), v[0], v[v.len() - 1])
    }

    /// Median p50 and p99 latency of the rounds, in milliseconds.
    pub(crate) fn latency_ms(&self) -> (f64, f64) {
        let p50 = self.sorted(|r| r.p50.as_secs_f64() * 1e3);
        let p99 = self.sorted(|r| r.p99.as_secs_f64() * 1e3);
        (median(&p50), median(&p99))
    }

    /// Failed operations over all rounds.
    pub(crate) fn errors(&self) -> u64 {
        self.rounds.iter().map(|r| r.errors).sum()
    }
}

/// The median of sorted values: the middle one, or the mean of the middle
/// two when there is an even number.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// A key of `size` bytes for number `n` (decimal digits, zero-padded).
pub(crate) fn key(n: u64, size: usize) -> Vec<u8> {
    let digits = format!("{n:0size$}");
    digits.as_bytes()[digits.len() - size..].to_vec()
}

/// While a round runs on a terminal: how far it is, once a second, on one
/// line that is rewritten (a log file gets only each round's result).
async fn progress(label: String, done: std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::Write;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = done.load(std::sync::atomic::Ordering::Relaxed);
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r\x1b[K{label}: {n} ops in {:.0} s",
            start.elapsed().as_secs_f64()
        );
        let _ = e.flush();
    }
}

/// Runs `op` with `w.clients` clients spread over `targets` (client `i`
/// uses target `i % targets.len()`), for `w.rounds` rounds.
pub(crate) async fn run<T: Target>(targets: &[std::sync::Arc<T>], op: Op, w: Workload) -> Measured {
    let mut rounds = Vec::new();
    for round in 0..w.rounds {
        let start = Instant::now();
        let deadline = start + w.duration;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let label = format!(
            "{}, {} clients, round {}/{}",
            op.name(),
            w.clients,
            round + 1,
            w.rounds
        );
        let progress = tokio::spawn(progress(label.clone(), std::sync::Arc::clone(&done)));
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..w.clients {
            let target = std::sync::Arc::clone(&targets[c % targets.len()]);
            let value = vec![b'v'; w.value_size];
            let seed = (round * w.clients + c) as u64;
            let done = std::sync::Arc::clone(&done);
            tasks.spawn(async move {
                let mut latencies: Vec<u32> = Vec::new();
                let mut errors = 0u64;
                // A cheap per-client generator (xorshift): keys spread over
                // the key space without a dependency.
                let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                while Instant::now() < deadline {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = key(x % w.key_space, w.key_size);
                    let t = Instant::now();
                    let r = match op {
                        Op::Put => target.put(k, value.clone()).await,
                        Op::GetLinearizable => target.get(k, true).await,
                        Op::GetSerializable => target.get(k, false).await,
                    };
                    match r {
                        Ok(()) => {
                            latencies
                                .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            });
        }
        let mut all: Vec<u32> = Vec::new();
        let mut errors = 0;
        while let Some(Ok((l, e))) = tasks.join_next().await {
            all.extend(l);
            errors += e;
        }
        let elapsed = start.elapsed();
        progress.abort();
        eprintln!(
            "{}{label}: {} ops in {:.1} s, {errors} errors",
            if std::io::stderr().is_terminal() {
                "\r\x1b[K"
            } else {
                ""
            },
            all.len(),
            elapsed.as_secs_f64()
        );
        all.sort_unstable();
        let pct = |p: f64| {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
                .map_or(Duration::ZERO, |&us| Duration::from_micros(u64::from(us)))
        };
        rounds.push(Round {
            ops_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
            p50: pct(0.50),
            p99: pct(0.99),
            errors,
        });
    }
    Measured { rounds }
}

/// Fills the key space once, so reads find values, with 64 writers.
pub(crate) async fn preload<T: Target>(
    target: std::sync::Arc<T>,
    w: Workload,
) -> Result<(), String> {
    const WRITERS: u64 = 64;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..WRITERS {
        let target = std::sync::Arc::clone(&target);
        tasks.spawn(async move {
            let value = vec![b'v'; w.value_size];
            let mut n = t;
            while n < w.key_space {
                target.put(key(n, w.key_size), value.clone()).await?;
                n += WRITERS;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// One line of the results table, with `extra` cells at the end.
pub(crate) fn row(system: &str, op: Op, clients: usize, m: &Measured, extra: &[String]) -> String {
    let (median, low, high) = m.ops_per_sec();
    let (p50, p99) = m.latency_ms();
    let mut line = format!(
        "| {system} | {} | {clients} | {median:.0} ({low:.0}–{high:.0}) | {p50:.2} | {p99:.2} | {} |",
        op.name(),
        m.errors()
    );
    for e in extra {
        line.push_str(&format!(" {e} |"));
    }
    line
}

/// The header of the results table, with `extra` columns at the end.
pub(crate) fn header(extra: &[&str]) -> String {
    let mut names =
        "| system | operation | clients | ops/s, median (min–max of rounds) | p50 ms | p99 ms | errors |"
            .to_owned();
    let mut rule = "|---|---|---:|---:|---:|---:|---:|".to_owned();
    for e in extra {
        names.push_str(&format!(" {e} |"));
        rule.push_str("---:|");
    }
    format!("{names}\n{rule}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), 3.0);
        assert_eq!(median(&[5.0]), 5.0);
        let m = Measured {
            rounds: [100.0, 300.0]
                .map(|ops_per_sec| Round {
                    ops_per_sec,
                    p50: Duration::from_millis(1),
                    p99: Duration::from_millis(3),
                    errors: 0,
                })
                .to_vec(),
        };
        assert_eq!(m.ops_per_sec(), (200.0, 100.0, 300.0));
    }

    #[test]
    fn keys_have_the_size_asked() {
        assert_eq!(key(42, 8), b"00000042");
        assert_eq!(key(123_456_789, 8), b"23456789");
    }
}
