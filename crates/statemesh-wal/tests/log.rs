//! The log's API end to end on a real directory: appends, reads, rollover,
//! truncate, purge, metadata, reopen.

use statemesh_wal::{AppendError, OpenError, SyncPolicy, UpdateError, Wal, WalOptions};
use std::sync::Arc;

fn entry(i: u64) -> Vec<u8> {
    let len = (i * 37 % 300) as usize;
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

fn small() -> WalOptions {
    WalOptions::new().segment_size(4096)
}

#[test]
fn append_read_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        assert_eq!(wal.last_index(), None);
        for i in 1..=200 {
            let a = wal.append(entry(i)).unwrap();
            assert_eq!(a.index(), i);
            a.wait().unwrap();
        }
        assert_eq!(wal.get(7).unwrap(), Some(entry(7)));
        assert_eq!(wal.get(0).unwrap(), None);
        assert_eq!(wal.get(201).unwrap(), None);
        let r = wal.range(10..20).unwrap();
        assert_eq!(r.len(), 10);
        assert!(r.iter().all(|(i, b)| *b == entry(*i)));
    }
    // Many 4 KiB segments were used; all of it comes back.
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".wal")
        })
        .count();
    assert!(segments > 5, "{segments} segments");
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (1, Some(200)));
    for i in 1..=200 {
        assert_eq!(wal.get(i).unwrap(), Some(entry(i)), "entry {i}");
    }
    assert_eq!(wal.append(b"x".to_vec()).unwrap().index(), 201);
}

#[test]
fn concurrent_appenders_get_distinct_contiguous_indices() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), WalOptions::new().segment_size(64 << 10)).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                (0..200u64)
                    .map(|k| {
                        let payload = format!("{t}:{k}").into_bytes();
                        let a = wal.append(payload.clone()).unwrap();
                        a.wait().unwrap();
                        (a.index(), payload)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all.len(), 1600);
    for (n, (index, payload)) in all.iter().enumerate() {
        assert_eq!(*index, n as u64 + 1);
        assert_eq!(wal.get(*index).unwrap().as_ref(), Some(payload));
    }
}

#[test]
fn truncated_entries_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        for i in 1..=100 {
            let _ = wal.append(entry(i)).unwrap();
        }
        wal.sync().unwrap();
        wal.truncate(40).unwrap();
        assert_eq!(wal.last_index(), Some(39));
        assert_eq!(wal.get(40).unwrap(), None);
        // New entries continue at 40, shorter than the old ones.
        for i in 40..=45 {
            assert_eq!(wal.append(vec![i as u8]).unwrap().index(), i);
        }
        wal.sync().unwrap();
        wal.truncate(43).unwrap();
    }
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.last_index(), Some(42));
    assert_eq!(wal.get(41).unwrap(), Some(vec![41]));
    assert_eq!(wal.get(39).unwrap(), Some(entry(39)));
    assert!(matches!(
        wal.truncate(0),
        Err(UpdateError::OutOfRange { .. })
    ));
    assert!(matches!(
        wal.truncate(50),
        Err(UpdateError::OutOfRange { .. })
    ));
    // Truncating everything leaves an empty log that continues where asked.
    wal.truncate(1).unwrap();
    assert_eq!(wal.last_index(), None);
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.last_index(), None);
    assert_eq!(wal.append(b"again".to_vec()).unwrap().index(), 1);
}

#[test]
fn purge_removes_whole_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        for i in 1..=300 {
            let _ = wal.append(entry(i)).unwrap();
        }
        wal.sync().unwrap();
        wal.purge(150, b"id-150".to_vec()).unwrap();
        assert_eq!(wal.first_index(), 151);
        assert_eq!(wal.get(150).unwrap(), None);
        assert_eq!(wal.get(151).unwrap(), Some(entry(151)));
        assert_eq!(wal.meta().purged, Some((150, b"id-150".to_vec())));
    }
    let first_segment = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".wal").map(|d| d.parse::<u64>().unwrap())
        })
        .min()
        .unwrap();
    assert!(first_segment > 1 && first_segment <= 151, "{first_segment}");
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (151, Some(300)));
    // Purging past the end (a snapshot was installed) empties the log.
    wal.purge(1000, b"snap".to_vec()).unwrap();
    assert_eq!(wal.last_index(), None);
    assert_eq!(wal.append(b"after".to_vec()).unwrap().index(), 1001);
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (1001, Some(1001)));
}

#[test]
fn committed_hints_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
        for i in 1..=3u8 {
            wal.append(vec![i]).unwrap().wait().unwrap();
        }
        wal.save_committed(1, b"c1".to_vec()).unwrap();
        wal.note_committed(2, b"c2".to_vec()).unwrap();
        wal.note_committed(3, b"c3".to_vec()).unwrap();
        assert_eq!(wal.meta().committed, Some((3, b"c3".to_vec())));
        // A later durable update of the slots carries the hint along.
        wal.save_vote(b"v".to_vec()).unwrap();
    }
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    assert_eq!(wal.meta().committed, Some((3, b"c3".to_vec())));
    // An id too long for a hint still gets stored, through the slots.
    wal.note_committed(3, vec![7; 1000]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    assert_eq!(wal.meta().committed, Some((3, vec![7; 1000])));
}

#[test]
fn metadata_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
        wal.save_vote(b"term 3 node 1".to_vec()).unwrap();
        wal.append(b"a".to_vec()).unwrap().wait().unwrap();
        wal.save_committed(1, b"c1".to_vec()).unwrap();
        wal.save_vote(b"term 4 node 2".to_vec()).unwrap();
    }
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    let meta = wal.meta();
    assert_eq!(meta.vote.as_deref(), Some(&b"term 4 node 2"[..]));
    assert_eq!(meta.committed, Some((1, b"c1".to_vec())));
    assert!(matches!(
        wal.save_vote(vec![0; 5000]),
        Err(UpdateError::MetaTooLarge { .. })
    ));
}

#[test]
fn entries_larger_than_a_segment_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![0xAB; 20_000];
    {
        let wal = Wal::open(dir.path(), small()).unwrap();
        let _ = wal.append(b"small".to_vec()).unwrap();
        let _ = wal.append(big.clone()).unwrap();
        wal.append(b"after".to_vec()).unwrap().wait().unwrap();
        assert_eq!(wal.get(2).unwrap().as_ref(), Some(&big));
    }
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.get(2).unwrap().as_ref(), Some(&big));
    assert_eq!(wal.get(3).unwrap().as_deref(), Some(&b"after"[..]));
}

#[test]
fn append_at_enforces_contiguity_and_anchors_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    // Raft starts at 0.
    wal.append_at(0, vec![b"init".to_vec()])
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(wal.first_index(), 0);
    let err = wal.append_at(5, vec![b"x".to_vec()]).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::NotContiguous {
                given: 5,
                expected: 1
            }
        ),
        "{err}"
    );
    wal.append_at(1, vec![b"a".to_vec(), b"b".to_vec()])
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(wal.last_index(), Some(2));
}

/// An index past `u64::MAX - 1` is a typed error, and the log is unchanged
/// by it: these overflowed `next` (a panic in the caller, holding the
/// queue's lock).
#[test]
fn the_largest_index_is_u64_max_minus_1() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    let err = wal.append_at(u64::MAX, vec![b"x".to_vec()]).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::IndexOverflow {
                first: u64::MAX,
                count: 1
            }
        ),
        "{err}"
    );
    let err = wal
        .append_at(u64::MAX - 1, vec![b"a".to_vec(), b"b".to_vec()])
        .unwrap_err();
    assert!(matches!(err, AppendError::IndexOverflow { .. }), "{err}");
    let err = wal.purge(u64::MAX, b"p".to_vec()).unwrap_err();
    assert!(
        matches!(err, UpdateError::IndexOverflow { index: u64::MAX }),
        "{err}"
    );
    // Still empty and unanchored: the largest index itself is fine.
    let a = wal.append_at(u64::MAX - 1, vec![b"last".to_vec()]).unwrap();
    a.wait().unwrap();
    assert_eq!(wal.last_index(), Some(u64::MAX - 1));
    let err = wal.append(b"one more".to_vec()).unwrap_err();
    assert!(matches!(err, AppendError::IndexOverflow { .. }), "{err}");
    // An empty append at the end is no entry, so it fits.
    wal.append_batch(Vec::new()).unwrap().wait().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    assert_eq!(
        wal.get(u64::MAX - 1).unwrap().as_deref(),
        Some(&b"last"[..])
    );
    // A new log told to start at the end cannot take an entry either.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalOptions::new().first_index(u64::MAX)).unwrap();
    let err = wal.append(b"x".to_vec()).unwrap_err();
    assert!(matches!(err, AppendError::IndexOverflow { .. }), "{err}");
}

#[test]
fn a_second_open_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let _wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    let err = Wal::open(dir.path(), WalOptions::new()).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");
}

/// While another thread spawns commands, a closed log's lock can be held for
/// a moment by a child between fork and exec; reopening must wait that out.
#[test]
fn reopening_while_the_process_spawns_children_is_not_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::process::Command::new("true").status().unwrap();
            }
        })
    };
    let reopened = (1..=40u64).try_for_each(|i| {
        let wal = Wal::open(dir.path(), small()).map_err(|e| format!("reopen {i}: {e}"))?;
        wal.append(entry(i)).unwrap().wait().unwrap();
        Ok::<_, String>(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spawner.join().unwrap();
    reopened.unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.last_index(), Some(40));
}

#[test]
fn every_policy_reads_back_after_reopen() {
    for policy in [
        SyncPolicy::Always,
        SyncPolicy::Interval(std::time::Duration::from_millis(5)),
        SyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = Wal::open(dir.path(), small().sync(policy)).unwrap();
            for i in 1..=50 {
                wal.append(entry(i)).unwrap().wait().unwrap();
            }
        }
        let wal = Wal::open(dir.path(), small()).unwrap();
        assert_eq!(wal.last_index(), Some(50), "{policy:?}");
    }
}

#[test]
fn futures_and_callbacks_complete() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalOptions::new()).unwrap();
    let a = wal.append(b"cb".to_vec()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    a.on_durable(move |r| tx.send(r.is_ok()).unwrap());
    assert!(rx.recv().unwrap());
    a.wait_written().unwrap();
    // A callback on an already durable append runs at once.
    let (tx, rx) = std::sync::mpsc::channel();
    a.on_durable(move |r| tx.send(r.is_ok()).unwrap());
    assert!(rx.try_recv().unwrap());
}

#[test]
fn reads_racing_truncates_and_rollovers_are_safe() {
    // Readers copy out of memory maps of the segments while the writer cuts
    // and regrows them: any read past the end of a file would kill the test
    // with SIGBUS, and any torn read fails its checksum.
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), small()).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let wal = Arc::clone(&wal);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let last = wal.last_index().unwrap_or(0);
                    for i in last.saturating_sub(20)..=last {
                        if let Some(bytes) = wal.get(i).unwrap() {
                            assert_eq!(bytes, entry(i), "entry {i}");
                            reads += 1;
                        }
                    }
                }
                reads
            })
        })
        .collect();
    for round in 0..300u64 {
        let next = wal.next_index();
        let a = wal
            .append_batch((next..next + 20).map(entry).collect())
            .unwrap();
        a.wait().unwrap();
        if round % 3 == 2 {
            wal.truncate(a.index() + 5).unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
}

/// A refused append must not swallow the wake-up meant for the writer: the
/// writer is asleep (the log is idle) when the refusal happens, and the
/// next append has to reach it. Checked with a generous deadline so that a
/// lost wake-up fails the test instead of hanging it.
#[test]
fn a_refused_append_does_not_stall_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), WalOptions::new()).unwrap());
    wal.append(b"first".to_vec()).unwrap().wait().unwrap();
    for round in 0..20u64 {
        // Let the writer go back to sleep.
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(wal.append_at(1000, vec![b"x".to_vec()]).is_err());
        let (tx, rx) = std::sync::mpsc::channel();
        let w = Arc::clone(&wal);
        std::thread::spawn(move || {
            let r = w.append(round.to_le_bytes().to_vec()).unwrap().wait();
            let _ = tx.send(r);
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the append after a refused one never completed");
        r.unwrap();
    }
    assert_eq!(wal.last_index(), Some(21));
}

/// The sizes of the log's segment files, in order of their first index.
fn segment_sizes(dir: &std::path::Path) -> Vec<u64> {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .map(|e| (e.file_name(), e.metadata().unwrap().len()))
        .collect();
    segments.sort();
    segments.into_iter().map(|(_, len)| len).collect()
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn segments_start_small_and_double_up_to_full_size() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        WalOptions::new()
            .segment_size(64 << 10)
            .first_segment_size(4096)
    };
    {
        let wal = Wal::open(dir.path(), options()).unwrap();
        wal.append(b"one".to_vec()).unwrap().wait().unwrap();
        // One small segment, a spare of twice its size, and the metadata
        // (two 8 KiB slots).
        let spent = disk_bytes(dir.path());
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().len())
            })
            .collect();
        assert!(
            spent <= 4096 + 8192 + 16384,
            "{spent} bytes for one entry: {files:?}"
        );
        for i in 2..=2000 {
            wal.append(entry(i)).unwrap().wait().unwrap();
        }
    }
    let sizes = segment_sizes(dir.path());
    assert_eq!(
        sizes[..5],
        [4096, 8192, 16384, 32768, 65536],
        "sizes {sizes:?}"
    );
    assert!(sizes[5..].iter().all(|&s| s == 65536), "sizes {sizes:?}");
    let wal = Wal::open(dir.path(), options()).unwrap();
    assert_eq!(wal.get(1).unwrap(), Some(b"one".to_vec()));
    for i in 2..=2000 {
        assert_eq!(wal.get(i).unwrap(), Some(entry(i)), "entry {i}");
    }
}

#[test]
fn a_first_segment_size_outside_its_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for first in [1024, 128 << 10] {
        let options = WalOptions::new()
            .segment_size(64 << 10)
            .first_segment_size(first);
        let err = Wal::open(dir.path(), options).unwrap_err();
        assert!(matches!(err, OpenError::InvalidOption(_)), "{err}");
    }
}
