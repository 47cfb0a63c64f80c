//! A consumer process: `streams-harness consume SYSTEM PRODUCERS COUNT
//! TARGET NAME` sets up COUNT consumers of SYSTEM (TARGET: the server's
//! URL, or the statemesh seed's address), says `ready`, then answers the
//! harness line by line:
//!
//! - `reset PHASE LATENCY`: start phase PHASE (recording latencies if
//!   LATENCY is 1); `ok`.
//! - `measure 1` / `measure 0`: open or close the measured window; `ok`.
//! - `count`: items received in the phase, over all its consumers.
//! - `report`: a [`Report`] line.
//!
//! Consumers live in processes of their own (at most 25 to a process) so
//! that a hundred statemesh peers, each with a gossip connection to
//! nearly every other, stay within the open-file limit; all three
//! systems' consumers are placed the same way.

use crate::report::System;
use crate::setup::Consumers;
use crate::tally::{self, MEASURING, Report};
use std::io::Write;
use std::sync::atomic::Ordering;
use tokio::io::AsyncBufReadExt;

pub async fn main(args: &[String]) {
    let usage = "consume SYSTEM PRODUCERS COUNT TARGET NAME";
    let system = args.first().and_then(|s| System::parse(s)).expect(usage);
    let producers: usize = args.get(1).and_then(|s| s.parse().ok()).expect(usage);
    let count: usize = args.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let target = args.get(3).expect(usage);
    let name = args.get(4).expect(usage);
    let set_up = match system {
        System::Statemesh => crate::mesh::consumers(target, producers, count, name).await,
        System::Nats => crate::nats::consumers(target, producers, count).await,
        System::Redis => crate::redis::consumers(target, producers, count).await,
    };
    let consumers: Consumers = match set_up {
        Ok(c) => c,
        Err(e) => {
            say(&format!("error: {e}"));
            return;
        }
    };
    say("ready");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["reset", phase, latency] => {
                let phase = phase.parse().unwrap_or(0);
                MEASURING.store(false, Ordering::SeqCst);
                for t in &consumers.tallies {
                    tally::lock(t).reset(phase, *latency == "1");
                }
                "ok".to_owned()
            }
            ["measure", on] => {
                MEASURING.store(*on == "1", Ordering::SeqCst);
                "ok".to_owned()
            }
            ["count"] => consumers
                .tallies
                .iter()
                .map(|t| tally::lock(t).total())
                .sum::<u64>()
                .to_string(),
            ["report"] => Report::of(&consumers.tallies).encode(),
            _ => format!("error: {line:?}"),
        };
        say(&answer);
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
