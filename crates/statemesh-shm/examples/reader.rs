//! Follows a shared-memory region and prints every snapshot it reads.
//!
//! ```text
//! cargo run --example reader -- [REGION] [LABEL]
//! ```
//!
//! Waits for the region to appear, then blocks (no polling) until each new
//! version is published. Stops after the publisher's last snapshot, or when
//! nothing is published for 5 seconds.

use statemesh_shm::{Reader, ReaderOptions};
use std::time::Duration;

#[path = "publisher.rs"]
#[allow(dead_code)]
mod publisher;
use publisher::Quote;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let region = args.next().unwrap_or_else(|| "statemesh-demo".into());
    let label = args
        .next()
        .map_or_else(|| "reader".into(), |l| l.to_string_lossy().into_owned());
    let mut reader = Reader::<Quote>::open_wait(
        &region,
        ReaderOptions::new().verify_checksum(true),
        Duration::from_secs(10),
    )?;
    loop {
        if reader.wait_for_change(Duration::from_secs(5))?.is_none() {
            println!("{label}: nothing new for 5 s, stopping");
            return Ok(());
        }
        let quote = reader.read()?;
        let sum = quote.prices.iter().map(|p| p.to_native()).sum::<u64>() + quote.tick.to_native();
        let whole = if sum == quote.checksum {
            "whole"
        } else {
            "TORN"
        };
        println!(
            "{label}: {} tick={} first price={} ({whole})",
            quote.version(),
            quote.tick,
            quote.prices[0]
        );
        if sum != quote.checksum {
            return Err("torn snapshot".into());
        }
        if quote.last {
            println!("{label}: publisher finished");
            return Ok(());
        }
    }
}
