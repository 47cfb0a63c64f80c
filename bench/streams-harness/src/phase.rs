//! One measured phase: producers publish (as fast as their system takes
//! items, or at a fixed rate), consumers count, and after a warm-up a
//! window is measured; then the stragglers are waited for and losses
//! counted.

use crate::setup::{Publisher, Setup};
use crate::tally::{self, Header, Report};
use hdrhistogram::Histogram;
use serde_bytes::ByteBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one phase measured, over all consumers.
pub struct Outcome {
    /// Items delivered inside the window, over all consumers, per second.
    pub delivered_per_s: f64,
    /// Items published in the whole phase (warm-up included).
    #[allow(dead_code)] // in the outcome for completeness
    pub published: u64,
    /// Deliveries owed (published × consumers) and not made by the end
    /// of the phase.
    pub lost: u64,
    pub owed: u64,
    /// Losses the system reported as such (statemesh's `Lagged`).
    pub reported_lost: u64,
    pub interruptions: u64,
    pub disorder: u64,
    pub latencies: Histogram<u64>,
}

pub struct Plan {
    pub id: u32,
    pub size: usize,
    /// Items per second over all producers; `None`: as fast as accepted.
    pub rate: Option<f64>,
    pub warm_up: Duration,
    pub window: Duration,
}

async fn drive(
    mut publisher: Publisher,
    producer: u32,
    plan: (u32, usize, Option<f64>),
    stop: Arc<AtomicBool>,
) -> (Publisher, u64, Result<(), String>) {
    let (phase, size, rate) = plan;
    let mut item = ByteBuf::from(vec![0u8; size]);
    let mut seq = 0u64;
    let mut stamp_and_send = async |publisher: &mut Publisher, seq: u64| {
        Header {
            producer,
            phase,
            seq,
            sent_ns: tally::now_ns(),
        }
        .write(&mut item);
        publisher.send(&item).await
    };
    let result = async {
        match rate {
            None => {
                while !stop.load(Ordering::Relaxed) {
                    stamp_and_send(&mut publisher, seq).await?;
                    seq += 1;
                }
            }
            Some(rate) => {
                // Open loop: what is due by now is sent, whatever the
                // system did with what came before. Timers tick by the
                // millisecond, so items leave in bursts of rate/1000.
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let due = (start.elapsed().as_secs_f64() * rate) as u64;
                    while seq < due {
                        stamp_and_send(&mut publisher, seq).await?;
                        seq += 1;
                    }
                    publisher.flush().await?;
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
            }
        }
        publisher.flush().await
    }
    .await;
    (publisher, seq, result)
}

async fn all(setup: &mut Setup, command: &str) -> Result<Vec<String>, String> {
    let mut answers = Vec::new();
    for g in &mut setup.groups {
        let answer = g.ask(command).await?;
        if answer.starts_with("error") {
            return Err(answer);
        }
        answers.push(answer);
    }
    Ok(answers)
}

pub async fn run(setup: &mut Setup, plan: &Plan) -> Result<Outcome, String> {
    all(
        setup,
        &format!("reset {} {}", plan.id, u8::from(plan.rate.is_some())),
    )
    .await?;
    let producers = setup.publishers.len();
    let stop = Arc::new(AtomicBool::new(false));
    #[allow(clippy::cast_precision_loss)]
    let each = plan.rate.map(|r| r / producers as f64);
    let tasks: Vec<_> = std::mem::take(&mut setup.publishers)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let index = u32::try_from(i).expect("few producers");
            tokio::spawn(drive(
                p,
                index,
                (plan.id, plan.size, each),
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(plan.warm_up).await;
    all(setup, "measure 1").await?;
    let opened = Instant::now();
    tokio::time::sleep(plan.window).await;
    all(setup, "measure 0").await?;
    let window = opened.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut published = 0;
    let mut error = None;
    for task in tasks {
        let (publisher, n, result) = task.await.map_err(|e| e.to_string())?;
        setup.publishers.push(publisher);
        published += n;
        if let Err(e) = result {
            error = Some(e);
        }
    }
    if let Some(e) = error {
        return Err(format!("a producer failed: {e}"));
    }
    // Stragglers: until everything owed arrived, or nothing more arrived
    // for half a second (at most 5 s).
    let mut reports = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = (u64::MAX, Instant::now());
    loop {
        let counts = all(setup, "count").await?;
        let received: u64 = counts.iter().filter_map(|c| c.parse::<u64>().ok()).sum();
        let owed: u64 = published * consumers(setup);
        if received >= owed || Instant::now() > deadline {
            break;
        }
        if received != last.0 {
            last = (received, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for line in all(setup, "report").await? {
        reports.push(Report::decode(&line).ok_or_else(|| format!("a report: {line:?}"))?);
    }
    let mut outcome = Outcome {
        delivered_per_s: 0.0,
        published,
        lost: 0,
        owed: 0,
        reported_lost: 0,
        interruptions: 0,
        disorder: 0,
        latencies: tally::histogram(),
    };
    let mut counted = 0;
    for r in &reports {
        counted += r.counted;
        for received in &r.received {
            outcome.owed += published;
            outcome.lost += published.saturating_sub(*received);
        }
        outcome.reported_lost += r.reported_lost;
        outcome.interruptions += r.interruptions;
        outcome.disorder += r.disorder;
        for (v, c) in &r.latencies {
            outcome.latencies.saturating_record_n(*v, *c);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    {
        outcome.delivered_per_s = counted as f64 / window.as_secs_f64();
    }
    Ok(outcome)
}

fn consumers(setup: &Setup) -> u64 {
    setup.consumers as u64
}
