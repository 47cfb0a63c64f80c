//! The load generator `statemesh bench` and `bench/vs-etcd.sh` share: the
//! workload of etcd's published benchmark (8-byte keys, 256-byte values,
//! writes to the leader, then linearizable and serializable reads spread
//! over the members), run against anything that implements [`Target`].
//!
//! This file is compiled into two programs (the `statemesh` binary and the
//! comparison harness in `bench/`), so it depends on nothing but `std` and
//! `tokio`.

use std::future::Future;
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
        (v[v.len() / 2], v[0], v[v.len() - 1])
    }

    /// Median p50 and p99 latency of the rounds, in milliseconds.
    pub(crate) fn latency_ms(&self) -> (f64, f64) {
        let p50 = self.sorted(|r| r.p50.as_secs_f64() * 1e3);
        let p99 = self.sorted(|r| r.p99.as_secs_f64() * 1e3);
        (p50[p50.len() / 2], p99[p99.len() / 2])
    }

    /// Failed operations over all rounds.
    pub(crate) fn errors(&self) -> u64 {
        self.rounds.iter().map(|r| r.errors).sum()
    }
}

/// A key of `size` bytes for number `n` (decimal digits, zero-padded).
pub(crate) fn key(n: u64, size: usize) -> Vec<u8> {
    let digits = format!("{n:0size$}");
    digits.as_bytes()[digits.len() - size..].to_vec()
}

/// Runs `op` with `w.clients` clients spread over `targets` (client `i`
/// uses target `i % targets.len()`), for `w.rounds` rounds.
pub(crate) async fn run<T: Target>(targets: &[std::sync::Arc<T>], op: Op, w: Workload) -> Measured {
    let mut rounds = Vec::new();
    for round in 0..w.rounds {
        let start = Instant::now();
        let deadline = start + w.duration;
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..w.clients {
            let target = std::sync::Arc::clone(&targets[c % targets.len()]);
            let value = vec![b'v'; w.value_size];
            let seed = (round * w.clients + c) as u64;
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
                        Ok(()) => latencies
                            .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)),
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
    fn keys_have_the_size_asked() {
        assert_eq!(key(42, 8), b"00000042");
        assert_eq!(key(123_456_789, 8), b"23456789");
    }
}
