//! `statemesh-wal-appender`: appends from many threads under
//! `SyncPolicy::Always` and prints one line per acknowledged append,
//! `@ack INDEX HASH`, where HASH is the FNV-1a hash of the entry's bytes. It
//! never stops on its own: the crash test (`tests/crash.rs`) runs it and
//! kills it with SIGKILL; you can also watch group commit with it.
//!
//! ```text
//! cargo run -p statemesh-wal --bin statemesh-wal-appender -- DIR [THREADS] [SEED]
//! ```
//!
//! `SEED` varies the entries between runs on the same directory (default 0).

use statemesh_wal::{Wal, WalOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: statemesh-wal-appender DIR [THREADS] [SEED]");
        std::process::exit(2);
    };
    let number = |arg: Option<String>, default: u64| match arg {
        None => default,
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("statemesh-wal-appender: {a:?} is not a number");
            std::process::exit(2);
        }),
    };
    let threads = number(args.next(), 16);
    let seed = number(args.next(), 0);
    // Small segments: kills also land during rollovers.
    let options = WalOptions::new().segment_size(64 << 10);
    let wal = match Wal::open(&dir, options) {
        Ok(wal) => Arc::new(wal),
        Err(e) => {
            eprintln!("statemesh-wal-appender: {e}");
            std::process::exit(1);
        }
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                for n in 0.. {
                    let p = payload(seed * 1000 + t, n);
                    let hash = fnv(&p);
                    let a = wal.append(p).expect("append");
                    a.wait().expect("durable");
                    // Reported only once acknowledged.
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    writeln!(o, "@ack {} {hash:016x}", a.index()).expect("stdout");
                    o.flush().expect("stdout");
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

/// The entry `n` of thread `t`: its length and bytes vary.
fn payload(t: u64, n: u64) -> Vec<u8> {
    let len = 1 + ((t * 7919 + n * 104_729) % 2000) as usize;
    let mut x = t << 32 | n;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
