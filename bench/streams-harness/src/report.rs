//! Cells, systems, what a round measured, and the table.

use crate::phase::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    Statemesh,
    Nats,
    Redis,
}

impl System {
    pub const ALL: [Self; 3] = [Self::Statemesh, Self::Nats, Self::Redis];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.to_string().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Self::Statemesh => "statemesh",
            Self::Nats => "NATS",
            Self::Redis => "Redis",
        })
    }
}

/// An item size and a topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    pub producers: usize,
    pub consumers: usize,
    pub size: usize,
}

impl Cell {
    pub fn new(size: usize, producers: usize, consumers: usize) -> Self {
        Self {
            producers,
            consumers,
            size,
        }
    }

    /// `size:producers:consumers`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(':').map(|p| p.parse().ok());
        Some(Self::new(parts.next()??, parts.next()??, parts.next()??))
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = if self.size >= 1024 {
            format!("{} KiB", self.size / 1024)
        } else {
            format!("{} B", self.size)
        };
        f.pad(&format!("{size}, {}→{}", self.producers, self.consumers))
    }
}

/// One round of one cell on one system.
pub struct Sample {
    pub delivered_per_s: f64,
    pub throughput_lost: (u64, u64),
    pub throughput_reported: u64,
    pub throughput_interruptions: u64,
    pub disorder: u64,
    pub rate: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub latency_lost: (u64, u64),
    pub latency_interruptions: u64,
}

impl Sample {
    pub fn new(throughput: &Outcome, latency: &Outcome, rate: f64) -> Self {
        Self {
            delivered_per_s: throughput.delivered_per_s,
            throughput_lost: (throughput.lost, throughput.owed),
            throughput_reported: throughput.reported_lost,
            throughput_interruptions: throughput.interruptions,
            disorder: throughput.disorder + latency.disorder,
            rate,
            p50_ns: latency.latencies.value_at_quantile(0.5),
            p99_ns: latency.latencies.value_at_quantile(0.99),
            latency_lost: (latency.lost, latency.owed),
            latency_interruptions: latency.interruptions,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} msgs/s delivered, lost {} of {} ({} reported, {} interruptions); \
             at {}/s: p50 {} p99 {}, lost {} of {} ({} interruptions){}",
            rate(self.delivered_per_s),
            self.throughput_lost.0,
            self.throughput_lost.1,
            self.throughput_reported,
            self.throughput_interruptions,
            rate(self.rate),
            micros(self.p50_ns),
            micros(self.p99_ns),
            self.latency_lost.0,
            self.latency_lost.1,
            self.latency_interruptions,
            if self.disorder > 0 {
                format!(", {} OUT OF ORDER", self.disorder)
            } else {
                String::new()
            }
        )
    }
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[allow(clippy::cast_precision_loss)]
fn micros(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1e3)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

/// Median, minimum and maximum.
fn spread(mut xs: Vec<f64>) -> Option<(f64, f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        f64::midpoint(xs[n / 2 - 1], xs[n / 2])
    };
    Some((median, xs[0], xs[n - 1]))
}

#[allow(clippy::cast_precision_loss)]
fn lost(samples: &[Sample], which: impl Fn(&Sample) -> ((u64, u64), u64)) -> String {
    let (mut lost, mut owed, mut interruptions) = (0, 0, 0);
    for s in samples {
        let ((l, o), i) = which(s);
        lost += l;
        owed += o;
        interruptions += i;
    }
    if lost == 0 && interruptions == 0 {
        return "0".into();
    }
    let share = if owed == 0 {
        0.0
    } else {
        100.0 * lost as f64 / owed as f64
    };
    format!("{share:.2}% ({lost}; {interruptions} int.)")
}

pub fn table(
    cells: &[Cell],
    systems: &[System],
    samples: &BTreeMap<(Cell, System), Vec<Sample>>,
    seconds: u64,
    rounds: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Streams, {rounds} rounds × {seconds} s per measurement: median (min–max). \
         Throughput: items delivered per second over all consumers (fan-out counts \
         each delivery), producers publishing as fast as their system takes items; \
         higher is better. Latency: publish to delivery at a fixed rate (items \
         published per second over all producers, the same for all three); lower \
         is better, so a ratio under 1× means statemesh is faster. Lost: deliveries \
         owed and never made, over all rounds (int.: dropped connections, slow-consumer \
         events or statemesh `Lagged`)."
    );
    let _ = writeln!(out);
    let mut header = "| cell | measure |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for s in systems {
        let _ = write!(header, " {s} |");
        rule.push_str("---:|");
    }
    let others: Vec<System> = systems
        .iter()
        .copied()
        .filter(|s| *s != System::Statemesh)
        .collect();
    let ratios = systems.contains(&System::Statemesh);
    if ratios {
        for o in &others {
            let _ = write!(header, " statemesh ÷ {o} |");
            rule.push_str("---:|");
        }
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for cell in cells {
        let of = |s: System| samples.get(&(*cell, s)).map_or(&[][..], Vec::as_slice);
        let rate_of = systems
            .iter()
            .find_map(|s| of(*s).first().map(|x| x.rate))
            .unwrap_or(0.0);
        type Pick = fn(&Sample) -> f64;
        type Show = fn(f64) -> String;
        #[allow(clippy::cast_precision_loss)]
        let measures: [(String, Pick, Show); 3] = [
            ("delivered msgs/s ↑".into(), |s| s.delivered_per_s, rate),
            (
                format!("p50 at {}/s ↓", rate(rate_of)),
                |s| s.p50_ns as f64,
                |x| micros(x as u64),
            ),
            ("p99 ↓".into(), |s| s.p99_ns as f64, |x| micros(x as u64)),
        ];
        for (i, (name, pick, show)) in measures.iter().enumerate() {
            let label = if i == 0 {
                cell.to_string()
            } else {
                String::new()
            };
            let mut row = format!("| {label} | {name} |");
            let mut medians = BTreeMap::new();
            for s in systems {
                match spread(of(*s).iter().map(pick).collect()) {
                    Some((m, lo, hi)) => {
                        medians.insert(*s, m);
                        let _ = write!(row, " {} ({}–{}) |", show(m), show(lo), show(hi));
                    }
                    None => row.push_str(" – |"),
                }
            }
            if ratios {
                for o in &others {
                    match (medians.get(&System::Statemesh), medians.get(o)) {
                        (Some(a), Some(b)) if *b > 0.0 => {
                            let _ = write!(row, " {:.2}× |", a / b);
                        }
                        _ => row.push_str(" – |"),
                    }
                }
            }
            let _ = writeln!(out, "{row}");
        }
        for (name, which) in [
            (
                "lost (throughput)",
                (|s: &Sample| (s.throughput_lost, s.throughput_interruptions))
                    as fn(&Sample) -> ((u64, u64), u64),
            ),
            ("lost (latency)", |s: &Sample| {
                (s.latency_lost, s.latency_interruptions)
            }),
        ] {
            let mut row = format!("| | {name} |");
            for s in systems {
                let _ = write!(row, " {} |", lost(of(*s), which));
            }
            if ratios {
                for _ in &others {
                    row.push_str(" |");
                }
            }
            let _ = writeln!(out, "{row}");
        }
    }
    out
}
