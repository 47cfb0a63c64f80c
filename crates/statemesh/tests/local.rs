//! Collections published to shared memory and read by other processes.

mod common;

use common::Env;
use statemesh::local::{self, Local, LocalError, LocalOptions};
use statemesh::{
    Cell, HistoryLimits, Kinds, Map, MemoryNetwork, Mirror, Node, NodeOptions, Once, PriorityQueue,
    Set,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// What the test servers host: maps of strings and of numbers.
fn kinds() -> Kinds {
    let mut kinds = Kinds::new();
    kinds.register(statemesh::collections::MapState::<String, String>::default);
    kinds.register(statemesh::collections::MapState::<String, u64>::default);
    kinds
}

fn options(dir: &tempfile::TempDir) -> LocalOptions {
    LocalOptions::new().dir(dir.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_collection_reads_back_locally() {
    let data = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir().unwrap();
    let o = options(&shm);
    let node = Node::open(1, data.path(), MemoryNetwork::new(), NodeOptions::default()).unwrap();

    let map = Map::<String, u64>::open(&node, "map", &[1]).await.unwrap();
    let _p = map.publish_local_with("map", &o).unwrap();
    for i in 0..50u64 {
        map.insert(format!("key{i}"), i * i).await.unwrap();
    }
    let (_, v) = map.remove("key7".into()).await.unwrap();
    let mut local = local::open_with::<Map<String, u64>>("map", &o).unwrap();
    assert!(local.wait_for(v, WAIT).unwrap() >= v);
    let read = local.read().unwrap();
    assert_eq!(read.version(), v);
    assert_eq!(read.len(), 49);
    assert_eq!(read.get(&"key9".into()).unwrap(), Some(81));
    assert_eq!(read.get(&"key7".into()).unwrap(), None);
    assert!(read.contains_key(&"key0".into()).unwrap());
    let all: BTreeMap<String, u64> = read.iter().map(Result::unwrap).collect();
    assert_eq!(all, map.iter().collect::<BTreeMap<_, _>>());
    drop(read);

    let set = Set::<String>::open(&node, "set", &[1]).await.unwrap();
    let _p = set.publish_local_with("set", &o).unwrap();
    set.insert("a".into()).await.unwrap();
    let (_, v) = set.insert("b".into()).await.unwrap();
    let mut local = local::open_with::<Set<String>>("set", &o).unwrap();
    local.wait_for(v, WAIT).unwrap();
    let read = local.read().unwrap();
    assert!(read.contains(&"b".into()).unwrap());
    assert!(!read.contains(&"c".into()).unwrap());
    assert_eq!(read.iter().count(), 2);
    drop(read);

    let vec = statemesh::collections::Vec::<String>::open(&node, "vec", &[1])
        .await
        .unwrap();
    let _p = vec.publish_local_with("vec", &o).unwrap();
    let items: Vec<String> = (0..300).map(|i| format!("item {i}")).collect();
    let (_, v) = vec.extend(items.clone()).await.unwrap();
    let mut local = local::open_with::<statemesh::collections::Vec<String>>("vec", &o).unwrap();
    local.wait_for(v, WAIT).unwrap();
    let read = local.read().unwrap();
    assert_eq!(read.get(299).unwrap().as_deref(), Some("item 299"));
    assert_eq!(read.get(300).unwrap(), None);
    // Big-endian indices keep the items in order.
    assert_eq!(read.iter().map(Result::unwrap).collect::<Vec<_>>(), items);
    drop(read);

    let cell = Cell::<String>::open(&node, "cell", &[1]).await.unwrap();
    let _p = cell.publish_local_with("cell", &o).unwrap();
    let mut local = local::open_with::<Cell<String>>("cell", &o).unwrap();
    local.wait_for(1, WAIT).unwrap();
    assert_eq!(local.read().unwrap().get().unwrap(), None);
    let (_, v) = cell.write("hello".into()).await.unwrap();
    local.wait_for(v, WAIT).unwrap();
    assert_eq!(
        local.read().unwrap().get().unwrap().as_deref(),
        Some("hello")
    );

    let once = Once::<u32>::open(&node, "once", &[1]).await.unwrap();
    let _p = once.publish_local_with("once", &o).unwrap();
    let (_, v) = once.set(7).await.unwrap();
    let mut local = local::open_with::<Once<u32>>("once", &o).unwrap();
    local.wait_for(v, WAIT).unwrap();
    assert_eq!(local.read().unwrap().get().unwrap(), Some(7));

    let queue = PriorityQueue::<u32, String, String>::open(&node, "queue", &[1])
        .await
        .unwrap();
    let _p = queue.publish_local_with("queue", &o).unwrap();
    queue.insert(5, "x".into(), "five".into()).await.unwrap();
    let (_, v) = queue.insert(9, "y".into(), "nine".into()).await.unwrap();
    let mut local = local::open_with::<PriorityQueue<u32, String, String>>("queue", &o).unwrap();
    local.wait_for(v, WAIT).unwrap();
    let read = local.read().unwrap();
    assert_eq!(read.get(&"y".into()).unwrap(), Some((9, "nine".into())));
    assert_eq!(read.iter().count(), 2);
    drop(read);

    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_type_or_a_missing_region_is_a_typed_error() {
    let data = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir().unwrap();
    let o = options(&shm);
    let node = Node::open(1, data.path(), MemoryNetwork::new(), NodeOptions::default()).unwrap();
    let map = Map::<String, u64>::open(&node, "m", &[1]).await.unwrap();
    let publication = map.publish_local_with("m", &o).unwrap();
    let (_, v) = map.insert("a".into(), 1).await.unwrap();
    local::open_with::<Map<String, u64>>("m", &o)
        .unwrap()
        .wait_for(v, WAIT)
        .unwrap();

    let mut wrong = local::open_with::<Map<String, String>>("m", &o).unwrap();
    let err = wrong.read().unwrap_err();
    assert!(
        matches!(&err, LocalError::Signature { published, expected, .. }
            if published.contains("u64") && expected.contains("String>")),
        "{err}"
    );
    let err = local::open_with::<Map<String, u64>>("absent", &o).unwrap_err();
    assert!(matches!(err, LocalError::Open { .. }), "{err}");

    // One publisher per region.
    let err = map.publish_local_with("m", &o).unwrap_err();
    assert!(matches!(err, LocalError::Open { .. }), "{err}");
    // The publisher notes what it published just after readers can see it.
    let deadline = Instant::now() + WAIT;
    while publication.published() < v && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(publication.published(), v);
    assert!(publication.last_error().is_none());

    // After the publisher stops, readers are told, with the age of what
    // the region holds; one that allows stale reads reads it.
    let mut reader = local::open_with::<Map<String, u64>>("m", &o).unwrap();
    let stale = o.clone().allow_stale(true);
    let mut stale = local::open_with::<Map<String, u64>>("m", &stale).unwrap();
    assert!(reader.publisher_attached());
    assert_eq!(reader.read().unwrap().get(&"a".into()).unwrap(), Some(1));
    drop(publication);
    assert!(!reader.publisher_attached());
    let deadline = Instant::now() + WAIT;
    let err = loop {
        // A reader trusts a publisher it saw alive for 100 ms.
        match reader.read() {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "still read"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        matches!(err, LocalError::PublisherGone { version, .. } if version == v),
        "{err}"
    );
    assert_eq!(stale.read().unwrap().get(&"a".into()).unwrap(), Some(1));
    node.shutdown().await;
}

/// Laid out like the published snapshot, so a test can publish snapshots
/// no correct publisher makes.
#[derive(rkyv::Archive, rkyv::Serialize)]
struct Forged {
    version: u64,
    signature: String,
    bytes: Vec<u8>,
    spans: Vec<ForgedSpan>,
    published_ms: u64,
    dropped: bool,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
struct ForgedSpan {
    key: u32,
    value: u32,
    end: u32,
}

#[test]
fn damaged_regions_are_errors_not_panics() {
    let shm = tempfile::tempdir().unwrap();
    let o = options(&shm);
    let signature = {
        use statemesh::StateMachine;
        statemesh::collections::MapState::<String, u64>::default().signature()
    };
    let w = || statemesh_shm::WriterOptions::new().dir(shm.path());

    // Not an archive at all.
    let mut raw = statemesh_shm::Writer::<[u8]>::with_options("garbage", w()).unwrap();
    raw.write_raw(&[0xff; 64]).unwrap();
    let mut local = Local::<statemesh::collections::MapState<String, u64>>::open_with(
        "garbage",
        &o,
        &Default::default(),
    )
    .unwrap();
    let err = local.read().unwrap_err();
    assert!(matches!(err, LocalError::Read { .. }), "{err}");

    // An archive whose spans point outside its bytes, or are out of order.
    for (name, spans) in [
        (
            "outside",
            vec![ForgedSpan {
                key: 0,
                value: 2,
                end: 900,
            }],
        ),
        (
            "backwards",
            vec![ForgedSpan {
                key: 3,
                value: 1,
                end: 4,
            }],
        ),
        (
            "unsorted",
            vec![
                ForgedSpan {
                    key: 2,
                    value: 4,
                    end: 4,
                },
                ForgedSpan {
                    key: 0,
                    value: 2,
                    end: 2,
                },
            ],
        ),
    ] {
        let mut forged = statemesh_shm::Writer::<Forged>::with_options(name, w()).unwrap();
        forged
            .write(&Forged {
                version: 3,
                signature: signature.clone(),
                bytes: vec![1, b'a', 1, b'b'],
                spans,
                published_ms: 0,
                dropped: false,
            })
            .unwrap();
        let mut local = local::open_with::<Map<String, u64>>(name, &o).unwrap();
        let err = local.read().unwrap_err();
        assert!(matches!(err, LocalError::Corrupt { .. }), "{name}: {err}");
    }

    // Well formed, but a value that is not a u64.
    let mut forged = statemesh_shm::Writer::<Forged>::with_options("value", w()).unwrap();
    forged
        .write(&Forged {
            version: 3,
            signature,
            bytes: vec![1, b'a', 0xff, 0xff],
            spans: vec![ForgedSpan {
                key: 0,
                value: 2,
                end: 4,
            }],
            published_ms: 0,
            dropped: false,
        })
        .unwrap();
    let mut local = local::open_with::<Map<String, u64>>("value", &o).unwrap();
    let read = local.read().unwrap();
    let err = read.get(&"a".into()).unwrap_err();
    assert!(matches!(err, LocalError::Decode(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_publishes_its_copy() {
    let shm = tempfile::tempdir().unwrap();
    let o = options(&shm);
    let env = Env::new(kinds());
    let server = env.start("a", &[], HistoryLimits::default()).await;
    let client = env.client(&[server.address().to_owned()]).await;
    let map = client.map::<String, String>("m").await.unwrap();
    map.insert("before".into(), "1".into()).await.unwrap();
    let mirror = Mirror::<statemesh::collections::MapState<String, String>>::open(&client, "m")
        .await
        .unwrap();
    let _p = mirror.publish_local_with("mirrored", &o).unwrap();
    let (_, v) = map.insert("after".into(), "2".into()).await.unwrap();
    let mut local = local::open_with::<Mirror<statemesh::collections::MapState<String, String>>>(
        "mirrored", &o,
    )
    .unwrap();
    assert!(local.wait_for(v, WAIT).unwrap() >= v);
    let read = local.read().unwrap();
    assert_eq!(read.get(&"before".into()).unwrap().as_deref(), Some("1"));
    assert_eq!(read.get(&"after".into()).unwrap().as_deref(), Some("2"));
    drop(read);
    drop(mirror);
    server.shutdown().await;
}

/// How many writes the cluster makes while the reader process reads.
const WRITES: u64 = 400;
/// The fewest distinct versions the reader process must see of them.
const MIN_VERSIONS_SEEN: u64 = 20;

/// The reader process (`src/bin/helper.rs`): reads a region until it shows
/// the last write, checking every version it sees is whole and newer than
/// the one before.
const HELPER: &str = env!("CARGO_BIN_EXE_statemesh-helper");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_process_sees_whole_versions_in_order_while_the_cluster_writes() {
    let shm = tempfile::tempdir().unwrap();
    let env = Env::new(kinds());
    let mut o = env.options("a", &[], HistoryLimits::default());
    o.publish = vec!["ledger".into()];
    o.local = options(&shm);
    let a = statemesh::Server::start(o, kinds()).await.unwrap();
    let seed = vec![a.address().to_owned()];
    let b = env.start("b", &seed, HistoryLimits::default()).await;
    let c = env.start("c", &seed, HistoryLimits::default()).await;
    let client = env
        .client(&[b.address().to_owned(), c.address().to_owned()])
        .await;
    let ledger = client.map::<String, u64>("ledger").await.unwrap();

    let mut child = std::process::Command::new(HELPER)
        .arg("local-reader")
        .arg(shm.path())
        .args(["ledger", &WRITES.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (stdout, ready) = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 && line.trim_end() != "ready" {
            line.clear();
        }
        (stdout, line)
    })
    .await
    .unwrap();
    if ready.trim_end() != "ready" {
        let out = child.wait_with_output().unwrap();
        panic!(
            "the reader never started: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let started = Instant::now();
    for i in 1..=WRITES {
        ledger
            .extend(vec![("n".into(), i), (format!("k{i}"), i)])
            .await
            .unwrap();
    }
    let written = started.elapsed();
    let (out, stdout) = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut { stdout }, &mut rest).unwrap();
        (child.wait_with_output().unwrap(), rest)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "reader failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saw = stdout
        .lines()
        .find(|l| l.starts_with("reader saw"))
        .unwrap_or_else(|| panic!("no summary from the reader: {stdout}"));
    println!("{WRITES} writes in {written:?}; {saw}");
    // Versions may coalesce while the publisher lays one out, but a reader
    // polling through 400 writes of a few hundred microseconds each sees
    // many of them, not only the first and the last.
    let versions: u64 = saw
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary: {saw}"));
    assert!(
        versions >= MIN_VERSIONS_SEEN,
        "the reader saw only {versions} versions of {WRITES} writes"
    );
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_of_a_region_stops_the_node_at_start() {
    let shm = tempfile::tempdir().unwrap();
    let env = Env::new(kinds());
    let start = || {
        let mut o = env.options("a", &[], HistoryLimits::default());
        o.publish = vec!["ledger".into()];
        o.local = options(&shm);
        statemesh::Server::start(o, kinds())
    };
    // The region is taken at start, before the collection exists.
    let a = start().await.unwrap();
    let regions = local::find("ledger", &options(&shm)).unwrap();
    assert_eq!(regions.len(), 1, "{regions:?}");
    a.shutdown().await;

    // Something else publishes under the node's region name meanwhile.
    let data = tempfile::tempdir().unwrap();
    let node = Node::open(1, data.path(), MemoryNetwork::new(), NodeOptions::default()).unwrap();
    let other = Map::<String, u64>::open(&node, "other", &[1])
        .await
        .unwrap();
    let squatter = other
        .publish_local_with(&regions[0].name, &options(&shm))
        .unwrap();
    let err = start().await.unwrap_err();
    assert!(
        matches!(&err, statemesh::ServerError::Publish { collection, .. } if collection == "ledger"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("another writer"), "{message}");

    // Once it stops, the node starts again.
    drop(squatter);
    let a = start().await.unwrap();
    a.shutdown().await;
    node.shutdown().await;
}
