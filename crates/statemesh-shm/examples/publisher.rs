//! Publishes a snapshot every 100 ms to a shared-memory region.
//!
//! ```text
//! cargo run --example publisher -- [REGION] [COUNT]
//! ```
//!
//! Run `reader` in other terminals (or see `scripts/demo.sh`) to watch it.

use statemesh_shm::{Writer, WriterOptions};
use std::time::Duration;

/// What the publisher shares: a tick, some prices and a checksum over them,
/// so readers can see that every snapshot they read is whole.
#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
pub(crate) struct Quote {
    /// Increases by one per publish.
    pub(crate) tick: u64,
    /// Made-up prices that change every tick.
    pub(crate) prices: Vec<u64>,
    /// Sum of `prices` and `tick`: a reader recomputes it.
    pub(crate) checksum: u64,
    /// Set on the last snapshot, so readers know to stop.
    pub(crate) last: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let region = args.next().unwrap_or_else(|| "statemesh-demo".into());
    let count: u64 = match args.next() {
        Some(n) => n.to_string_lossy().parse()?,
        None => 30,
    };
    // Checksums on, so the readers (which verify) can prove each read whole.
    let mut writer = Writer::<Quote>::with_options(&region, WriterOptions::new().checksum(true))?;
    println!(
        "publisher: writing {count} snapshots to {}",
        writer.path().display()
    );
    for tick in 1..=count {
        let prices: Vec<u64> = (0..8).map(|i| 100 + (tick * 7 + i * 13) % 50).collect();
        let checksum = prices.iter().sum::<u64>() + tick;
        let quote = Quote {
            tick,
            prices,
            checksum,
            last: tick == count,
        };
        let published = writer.write(&quote)?;
        println!(
            "publisher: {} tick={tick} ({} bytes)",
            published.version, published.len
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("publisher: done");
    Ok(())
}
