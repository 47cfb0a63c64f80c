//! A child process appends under `SyncPolicy::Always` from many threads and
//! reports every acknowledged index; it is killed with SIGKILL at a random
//! moment, many times over, and after every reopen each acknowledged entry
//! must be present and byte-identical, with no hole before the end.

use statemesh_wal::{Wal, WalOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROLE: &str = "STATEMESH_WAL_CRASH_ROLE";
const APPENDERS: u64 = 16;
const ROUNDS: u64 = 25;

fn opts() -> WalOptions {
    // Small segments: kills also land during rollovers.
    WalOptions::new().segment_size(64 << 10)
}

/// The payload for `(thread, seq)`: its length and bytes vary, and a hash of
/// it is what the child reports.
fn payload(thread: u64, seq: u64) -> Vec<u8> {
    let len = 1 + ((thread * 7919 + seq * 104_729) % 2000) as usize;
    let mut x = thread << 32 | seq;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn child_appender() {
    if std::env::var(ROLE).as_deref() != Ok("appender") {
        return;
    }
    let dir = std::env::var("STATEMESH_WAL_CRASH_DIR").unwrap();
    let round: u64 = std::env::var("STATEMESH_WAL_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let wal = Arc::new(Wal::open(&dir, opts()).unwrap());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..APPENDERS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                for seq in 0.. {
                    let p = payload(round * 1000 + t, seq);
                    let hash = fnv(&p);
                    let a = wal.append(p).unwrap();
                    a.wait().unwrap();
                    // Report only after the append is acknowledged.
                    let mut o = out.lock().unwrap();
                    writeln!(o, "@ack {} {hash:016x}", a.index()).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_appender",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, "appender")
            .env("STATEMESH_WAL_CRASH_DIR", dir.path())
            .env("STATEMESH_WAL_CRASH_ROUND", round.to_string())
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
