//! In-process behaviour: growth, pinning limits, notification, many readers.

mod common;

use common::{Stamped, check, test_dir};
use statemesh_shm::{Reader, ReaderOptions, WriteError, Writer, WriterOptions};
use std::time::{Duration, Instant};

#[test]
fn buffers_grow_and_shrink_without_remapping_errors() {
    let dir = test_dir();
    let mut w =
        Writer::<[u8]>::with_options("grow", WriterOptions::new().dir(dir.path()).checksum(true))
            .unwrap();
    let mut r = Reader::<[u8]>::with_options(
        "grow",
        ReaderOptions::new().dir(dir.path()).verify_checksum(true),
    )
    .unwrap();
    // From one byte to 64 MiB and back, each read checked in full.
    let sizes = [
        1usize,
        4096,
        4097,
        1 << 20,
        (1 << 20) + 1,
        64 << 20,
        10,
        3 << 20,
        0,
        5,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        let fill = i as u8 + 1;
        let bytes = vec![fill; size];
        w.write_raw(&bytes).unwrap();
        let guard = r.read_raw().unwrap();
        assert_eq!(guard.len(), size);
        assert!(guard.iter().all(|&b| b == fill));
    }
}

#[test]
fn a_guard_held_too_long_makes_write_fail_after_the_bound_never_overwrite() {
    let dir = test_dir();
    let bound = Duration::from_millis(100);
    let mut w = Writer::<Stamped>::with_options(
        "busy",
        WriterOptions::new()
            .dir(dir.path())
            .max_buffers(3)
            .busy_timeout(bound),
    )
    .unwrap();
    let mut r1 =
        Reader::<Stamped>::with_options("busy", ReaderOptions::new().dir(dir.path())).unwrap();
    let mut r2 =
        Reader::<Stamped>::with_options("busy", ReaderOptions::new().dir(dir.path())).unwrap();
    w.write(&Stamped::new(1, 300)).unwrap();
    let g1 = r1.read().unwrap();
    w.write(&Stamped::new(2, 300)).unwrap();
    let g2 = r2.read().unwrap();
    w.write(&Stamped::new(3, 300)).unwrap();
    // Buffers: v1 (pinned), v2 (pinned), v3 (current). Nothing is free.
    let started = Instant::now();
    let err = w.write(&Stamped::new(4, 300)).unwrap_err();
    match err {
        WriteError::ReadersBusy {
            waited, buffers, ..
        } => {
            assert_eq!(buffers, 3);
            assert!(waited >= bound, "gave up after {waited:?}");
            assert!(started.elapsed() >= bound);
        }
        other => panic!("{other}"),
    }
    assert_eq!(check(&g1).unwrap(), 1);
    assert_eq!(check(&g2).unwrap(), 2);
    drop(g1);
    // One guard dropped: its buffer is reused at once.
    assert_eq!(w.write(&Stamped::new(4, 300)).unwrap().version.get(), 4);
    assert_eq!(check(&g2).unwrap(), 2);
    drop(g2);
    assert_eq!(check(&r1.read().unwrap()).unwrap(), 4);
}

#[test]
fn many_reader_threads_follow_a_fast_writer() {
    let dir = test_dir();
    let last = 3000u64;
    let mut w =
        Writer::<Stamped>::with_options("threads", WriterOptions::new().dir(dir.path())).unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mut r =
                Reader::<Stamped>::with_options("threads", ReaderOptions::new().dir(dir.path()))
                    .unwrap();
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < last {
                    if r.wait_for_change(Duration::from_secs(10))
                        .unwrap()
                        .is_none()
                    {
                        panic!("no progress");
                    }
                    let g = r.read().unwrap();
                    let seq = check(&g).unwrap();
                    assert!(seq > seen);
                    seen = seq;
                }
            })
        })
        .collect();
    for seq in 1..=last {
        w.write(&Stamped::new(seq, 512)).unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn wait_for_change_times_out_and_then_wakes() {
    let dir = test_dir();
    let mut w =
        Writer::<Stamped>::with_options("wake", WriterOptions::new().dir(dir.path())).unwrap();
    let mut r =
        Reader::<Stamped>::with_options("wake", ReaderOptions::new().dir(dir.path())).unwrap();
    w.write(&Stamped::new(1, 4)).unwrap();
    assert_eq!(r.wait_for_change(Duration::ZERO).unwrap().unwrap().get(), 1);
    drop(r.read().unwrap());
    assert_eq!(r.wait_for_change(Duration::from_millis(20)).unwrap(), None);
    let t = std::thread::spawn(move || r.wait_for_change(Duration::from_secs(30)).unwrap());
    std::thread::sleep(Duration::from_millis(30));
    w.write(&Stamped::new(2, 4)).unwrap();
    assert_eq!(t.join().unwrap().unwrap().get(), 2);
}

#[test]
fn reopening_the_writer_keeps_versions_and_geometry() {
    let dir = test_dir();
    let mut w =
        Writer::<Stamped>::with_options("again", WriterOptions::new().dir(dir.path()).slots(4))
            .unwrap();
    w.write(&Stamped::new(1, 4)).unwrap();
    w.write(&Stamped::new(2, 4)).unwrap();
    drop(w);
    // Asking for other geometry does not change an existing region.
    let mut w =
        Writer::<Stamped>::with_options("again", WriterOptions::new().dir(dir.path()).slots(64))
            .unwrap();
    assert_eq!(w.version().unwrap().get(), 2);
    let mut r =
        Reader::<Stamped>::with_options("again", ReaderOptions::new().dir(dir.path())).unwrap();
    assert_eq!(check(&r.read().unwrap()).unwrap(), 2);
    assert_eq!(w.write(&Stamped::new(3, 4)).unwrap().version.get(), 3);
    assert_eq!(check(&r.read().unwrap()).unwrap(), 3);
    let _others: Vec<_> = (0..3)
        .map(|_| {
            Reader::<Stamped>::with_options("again", ReaderOptions::new().dir(dir.path())).unwrap()
        })
        .collect();
    assert!(
        Reader::<Stamped>::with_options("again", ReaderOptions::new().dir(dir.path())).is_err()
    );
}

#[test]
fn unchecked_reads_see_the_same_value() {
    let dir = test_dir();
    let mut w = Writer::<Stamped>::with_options(
        "fast",
        WriterOptions::new().dir(dir.path()).checksum(false),
    )
    .unwrap();
    let mut r = Reader::<Stamped>::with_options(
        "fast",
        ReaderOptions::new().dir(dir.path()).verify_checksum(true),
    )
    .unwrap();
    for seq in 1..100 {
        w.write(&Stamped::new(seq, 100)).unwrap();
        // SAFETY: only a `Writer<Stamped>` publishes to this region.
        let g = unsafe { r.read_unchecked() }.unwrap();
        assert_eq!(check(&g).unwrap(), seq);
    }
}

#[cfg(feature = "async")]
#[test]
fn changed_future_resolves_on_publish() {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    let dir = test_dir();
    let mut w =
        Writer::<Stamped>::with_options("async", WriterOptions::new().dir(dir.path())).unwrap();
    let mut r =
        Reader::<Stamped>::with_options("async", ReaderOptions::new().dir(dir.path())).unwrap();
    w.write(&Stamped::new(1, 4)).unwrap();
    assert_eq!(block_on(r.changed()).get(), 1);
    drop(r.read().unwrap());
    let changed = r.changed();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        w.write(&Stamped::new(2, 4)).unwrap();
        w
    });
    assert_eq!(block_on(changed).get(), 2);
    writer.join().unwrap();
    // Dropping a pending future is fine.
    drop(r.changed());
}
