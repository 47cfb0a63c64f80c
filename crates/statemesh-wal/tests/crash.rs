//! A child process (`statemesh-wal-appender`, `src/bin/appender.rs`) appends under
//! `SyncPolicy::Always` from many threads and reports every acknowledged
//! index; it is killed with SIGKILL at a random moment, many times over,
//! and after every reopen each acknowledged entry must be present and
//! byte-identical, with no hole before the end.

use statemesh_wal::{Wal, WalOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const ROUNDS: u64 = 25;

fn opts() -> WalOptions {
    // As the child opens it.
    WalOptions::new().segment_size(64 << 10)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let appender = env!("CARGO_BIN_EXE_statemesh-wal-appender");
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    for round in 0..ROUNDS {
        let mut child = Command::new(appender)
            .arg(dir.path())
            .args(["16", &round.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("@ack ") {
                    let mut parts = line[at + 5..].split_whitespace();
                    if let (Some(i), Some(h)) = (parts.next(), parts.next())
                        && let (Ok(i), Ok(h)) = (i.parse::<u64>(), u64::from_str_radix(h, 16))
                    {
                        lines.push((i, h));
                    }
                }
            }
            lines
        });
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let wait_ms = 30 + (seed >> 33) % 250;
        std::thread::sleep(Duration::from_millis(wait_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let reported = reader.join().unwrap();
        let new = reported.len();
        for (i, h) in reported {
            // An index can be reported again only if it was truncated, which
            // this test never does.
            assert!(
                acked.insert(i, h).is_none_or(|old| old == h),
                "index {i} acknowledged twice"
            );
        }
        let wal = Wal::open(dir.path(), opts())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let last = wal.last_index().unwrap_or(0);
        for (&i, &h) in &acked {
            assert!(
                i <= last,
                "round {round}: acknowledged {i} but the log ends at {last}"
            );
            let got = wal
                .get(i)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged {i} missing"));
            assert_eq!(fnv(&got), h, "round {round}: entry {i} differs");
        }
        // No hole: every index from the first to the last reads back.
        for i in wal.first_index()..=last {
            assert!(wal.get(i).unwrap().is_some(), "round {round}: hole at {i}");
        }
        eprintln!("round {round}: killed after {wait_ms} ms, {new} new acks, log ends at {last}");
    }
    assert!(
        acked.len() > 100,
        "too few acknowledged appends: {}",
        acked.len()
    );
}
