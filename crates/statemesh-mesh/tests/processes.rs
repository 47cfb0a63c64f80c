//! Mesh peers as real processes (the `statemesh-mesh-peer` helper): found
//! from one seed, dropped when killed, streams that resume across a cut
//! connection and a restarted producer, and a producer whose memory stays
//! bounded under a consumer that never reads.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

const PEER: &str = env!("CARGO_BIN_EXE_statemesh-mesh-peer");

/// One helper process and the lines it printed.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    id: String,
    address: String,
}

impl Peer {
    fn start(name: &str, args: &[&str]) -> Self {
        Self::start_with(name, "secret", args)
    }

    /// A peer whose pass is signed under `secret` (another secret: another
    /// cluster).
    fn start_with(name: &str, secret: &str, args: &[&str]) -> Self {
        let mut child = Command::new(PEER)
            .arg(name)
            .arg(secret)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the helper starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = Self {
            child,
            stdin,
            lines,
            id: String::new(),
            address: String::new(),
        };
        let ready = peer.expect("ready ");
        let mut words = ready.split_whitespace().skip(1);
        peer.id = words.next().unwrap().to_owned();
        peer.address = words.next().unwrap().to_owned();
        peer
    }

    fn say(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("the helper reads");
    }

    /// The next line starting with `prefix` (others are skipped), within
    /// 20 s.
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line {prefix:?} from the helper: {e}"),
            }
        }
    }

    /// The next item or loss of `stream`.
    fn next_of(&mut self, stream: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("nothing more of {stream}: {e}"));
            let mut words = line.split_whitespace();
            let kind = words.next().unwrap_or_default();
            if matches!(kind, "item" | "lagged" | "refused") && words.next() == Some(stream) {
                return line;
            }
        }
    }

    fn catalog(&mut self) -> Vec<String> {
        self.say("catalog");
        let line = self.expect("catalog");
        line.split_whitespace()
            .nth(1)
            .map(|ids| ids.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `test` every 100 ms for up to `within`.
fn until(what: &str, within: Duration, mut test: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !test() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn five_processes_agree_on_the_catalog_from_one_seed() {
    let mut peers = vec![Peer::start("seed", &["--tag", "role=seed"])];
    let seed = peers[0].address.clone();
    for n in 1..5 {
        peers.push(Peer::start(
            &format!("p{n}"),
            &["--seed", &seed, "--tag", "role=validator"],
        ));
    }
    let mut all: Vec<String> = peers.iter().map(|p| p.id.clone()).collect();
    all.sort();
    until(
        "every process lists the other four",
        Duration::from_secs(15),
        || {
            peers.iter_mut().all(|p| {
                let mut seen = p.catalog();
                seen.push(p.id.clone());
                seen.sort();
                seen == all
            })
        },
    );
}

#[test]
fn a_killed_process_leaves_every_catalog_in_the_documented_time() {
    let mut seed = Peer::start("seed", &[]);
    let address = seed.address.clone();
    let mut a = Peer::start("a", &["--seed", &address]);
    let victim = Peer::start("victim", &["--seed", &address]);
    until("all three listed", Duration::from_secs(15), || {
        seed.catalog().len() == 2 && a.catalog().len() == 2
    });
    let gone = victim.id.clone();
    drop(victim); // SIGKILL
    let bound = statemesh_mesh::gossip::Timing::default().detection_bound();
    // The failure detector's bound, and as much again for the scheduling
    // of a loaded test machine.
    until("the killed process is dropped", bound * 2, || {
        !seed.catalog().contains(&gone) && !a.catalog().contains(&gone)
    });
}

#[test]
fn leaving_is_not_held_up_by_a_paused_peer() {
    let seed = Peer::start("seed", &[]);
    let address = seed.address.clone();
    let mut a = Peer::start("a", &["--seed", &address]);
    let mut b = Peer::start("b", &["--seed", &address]);
    until("all three listed", Duration::from_secs(15), || {
        a.catalog().len() == 2 && b.catalog().len() == 2
    });
    // Paused, the seed still looks alive to the others for a while, and a
    // connection to it opens but is never answered.
    seed.signal("STOP");
    a.say("leave");
    let took: u64 = a
        .expect("left ")
        .split_whitespace()
        .nth(1)
        .and_then(|ms| ms.parse().ok())
        .expect("left MILLIS");
    seed.signal("CONT");
    // The wait is a second at most; the dial to the paused seed alone
    // would have taken its full timeout (5 s).
    assert!(took < 4_000, "leaving took {took} ms");
    let gone = a.id.clone();
    until(
        "the others drop the peer that left",
        Duration::from_secs(10),
        || !b.catalog().contains(&gone),
    );
}

/// A TCP relay in front of a peer, which counts the bytes the peer sends
/// through it, and can cut every connection through it and refuse new
/// ones for a while.
struct Relay {
    address: String,
    open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    blocked: Arc<Mutex<bool>>,
    /// Bytes from the peer to those who dialed it.
    from_peer: Arc<AtomicU64>,
    _task: tokio::task::JoinHandle<()>,
}

/// Copies `from` to `to`, counting.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, count: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(count) = &count {
            count.fetch_add(n as u64, Ordering::Relaxed);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Relay {
    async fn start(listener: TcpListener, target: String) -> Self {
        let address = listener.local_addr().unwrap().to_string();
        let open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let blocked: Arc<Mutex<bool>> = Arc::default();
        let from_peer: Arc<AtomicU64> = Arc::default();
        let task = {
            let (open, blocked, from_peer) = (
                Arc::clone(&open),
                Arc::clone(&blocked),
                Arc::clone(&from_peer),
            );
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if *blocked.lock().unwrap() {
                        continue; // dropped: refused
                    }
                    let target = target.clone();
                    let from_peer = Arc::clone(&from_peer);
                    open.lock().unwrap().push(tokio::spawn(async move {
                        if let Ok(outbound) = TcpStream::connect(&target).await {
                            let (in_r, in_w) = inbound.into_split();
                            let (out_r, out_w) = outbound.into_split();
                            tokio::join!(
                                pipe(in_r, out_w, None),
                                pipe(out_r, in_w, Some(from_peer))
                            );
                        }
                    }));
                }
            })
        };
        Self {
            address,
            open,
            blocked,
            from_peer,
            _task: task,
        }
    }

    /// Closes every connection through it and refuses new ones until
    /// [`Relay::unblock`].
    fn cut(&self) {
        *self.blocked.lock().unwrap() = true;
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn unblock(&self) {
        *self.blocked.lock().unwrap() = false;
    }

    fn bytes_from_peer(&self) -> u64 {
        self.from_peer.load(Ordering::Relaxed)
    }
}

/// A producer reached only through a relay.
async fn behind_relay(name: &str) -> (Peer, Relay) {
    let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_address = relay_listener.local_addr().unwrap().to_string();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let peer = Peer::start(name, &["--listen", &listen, "--advertise", &relay_address]);
    let relay = Relay::start(relay_listener, listen).await;
    (peer, relay)
}

/// Reads items of `stream` until `last`, returning the items and losses.
fn read_until(peer: &mut Peer, stream: &str, last: u64) -> (Vec<u64>, Vec<String>) {
    let (mut items, mut losses) = (Vec::new(), Vec::new());
    loop {
        let line = peer.next_of(stream);
        let value = line
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned();
        if line.starts_with("item") {
            let n: u64 = value.parse().unwrap();
            items.push(n);
            if n == last {
                return (items, losses);
            }
        } else {
            losses.push(line);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_without_a_gap_within_the_buffer_and_with_lagged_beyond() {
    // The producer's address, as the mesh knows it, is the relay's.
    let (mut producer, relay) = behind_relay("producer").await;
    let mut consumer = Peer::start("consumer", &["--seed", &relay.address]);
    // Online with no consumer: it goes on producing while the consumer is
    // cut off.
    producer.say("produce numbers 100 drop 0");
    producer.expect("producing");
    consumer.say("consume numbers");
    producer.say("wait numbers 1");
    producer.expect("consumers numbers 1");
    producer.say("send numbers 0 50 0");
    producer.expect("sent numbers 49");
    let (items, losses) = tokio::task::block_in_place(|| read_until(&mut consumer, "numbers", 49));
    assert_eq!(items, (0..50).collect::<Vec<_>>());
    assert!(losses.is_empty());

    // Cut: 30 items sent meanwhile fit the buffer of 100.
    relay.cut();
    producer.say("send numbers 50 30 0");
    producer.expect("sent numbers 79");
    relay.unblock();
    let (items, losses) = tokio::task::block_in_place(|| read_until(&mut consumer, "numbers", 79));
    assert_eq!(items, (50..80).collect::<Vec<_>>(), "no gap: {losses:?}");
    assert!(losses.is_empty());

    // Cut again: 250 items sent meanwhile overflow it by 150.
    relay.cut();
    producer.say("send numbers 80 250 0");
    producer.expect("sent numbers 329");
    relay.unblock();
    let (items, losses) = tokio::task::block_in_place(|| read_until(&mut consumer, "numbers", 329));
    assert_eq!(losses, ["lagged numbers 150"]);
    assert_eq!(items, (230..330).collect::<Vec<_>>());
}

#[test]
fn a_restarted_producer_is_followed_with_its_loss_said() {
    let mut consumer = Peer::start("consumer", &[]);
    let seed = consumer.address.clone();
    let mut producer = Peer::start("producer", &["--seed", &seed]);
    consumer.say("consume numbers");
    producer.say("produce numbers 100 drop 1");
    producer.say("send numbers 0 10 0");
    producer.expect("sent numbers 9");
    assert_eq!(read_until(&mut consumer, "numbers", 9).0.len(), 10);
    drop(producer); // SIGKILL: its buffer is gone with it
    let mut producer = Peer::start("producer", &["--seed", &seed]);
    producer.say("produce numbers 100 drop 1");
    producer.say("send numbers 100 5 0");
    producer.expect("sent numbers 104");
    let (items, losses) = read_until(&mut consumer, "numbers", 104);
    assert_eq!(losses, ["lagged numbers unknown"]);
    assert_eq!(items, (100..105).collect::<Vec<_>>());
}

#[test]
fn a_consumer_that_never_reads_costs_the_producer_at_most_its_buffer() {
    let mut producer = Peer::start("producer", &[]);
    let seed = producer.address.clone();
    let mut consumer = Peer::start("consumer", &["--seed", &seed]);
    // A buffer of 1,000 items of 16 KiB: 16 MiB.
    producer.say("produce big 1000 drop 1");
    producer.expect("producing");
    consumer.say("consume big");
    producer.say("send big 0 1 16384");
    producer.expect("sent big 0");
    consumer.next_of("big");
    producer.say("memory");
    let before: u64 = producer
        .expect("memory")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // The consumer stops reading (stopped outright), and 10,000 items
    // (160 MiB) go by.
    consumer.signal("STOP");
    producer.say("send big 1 10000 16384");
    producer.expect("sent big 10000");
    producer.say("memory");
    let after: u64 = producer
        .expect("memory")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    consumer.signal("CONT");
    let grown_mib = after.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "the producer grew by {grown_mib} MiB for a buffer of 16 MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_keeps_unwanted_items_off_the_wire() {
    let (mut producer, relay) = behind_relay("producer").await;
    let mut consumer = Peer::start("consumer", &["--seed", &relay.address]);
    producer.say("produce big 2000 drop 1");
    producer.expect("producing");
    // Items are keyed `even` and `odd`; this consumer wants half.
    consumer.say("consume big even");
    let before = relay.bytes_from_peer();
    producer.say("send big 0 1000 4096");
    producer.expect("sent big 999");
    let (items, _) = tokio::task::block_in_place(|| read_until(&mut consumer, "big", 998));
    assert_eq!(items, (0..1000).step_by(2).collect::<Vec<u64>>());
    let sent = relay.bytes_from_peer() - before;
    let all = 1000 * 4096;
    assert!(
        sent < all * 6 / 10,
        "{sent} bytes crossed for 500 of 1,000 items of 4 KiB ({all} bytes in all)"
    );
}

#[test]
fn a_durable_producer_killed_and_restarted_is_resumed_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let durable = dir.path().to_str().unwrap().to_owned();
    let mut consumer = Peer::start("consumer", &[]);
    let seed = consumer.address.clone();
    let args = ["--seed", seed.as_str(), "--durable", durable.as_str()];
    let mut producer = Peer::start("producer", &args);
    // Online with no consumer: it goes on while the consumer is stopped.
    producer.say("produce numbers 100 drop 0");
    producer.expect("producing");
    consumer.say("consume numbers");
    producer.say("wait numbers 1");
    producer.expect("consumers numbers 1");
    producer.say("send numbers 0 10 0");
    producer.expect("sent numbers 9");
    assert_eq!(
        read_until(&mut consumer, "numbers", 9).0,
        (0..10).collect::<Vec<_>>()
    );
    // The consumer stops; 20 more are sent (and written), then the
    // producer is killed before it could send them.
    consumer.signal("STOP");
    producer.say("send numbers 10 20 0");
    producer.expect("sent numbers 29");
    drop(producer); // SIGKILL
    let mut producer = Peer::start("producer", &args);
    producer.say("produce numbers 100 drop 0");
    producer.expect("producing");
    consumer.signal("CONT");
    producer.say("send numbers 30 10 0");
    producer.expect("sent numbers 39");
    let (items, losses) = read_until(&mut consumer, "numbers", 39);
    assert!(losses.is_empty(), "{losses:?}");
    assert_eq!(items, (10..40).collect::<Vec<_>>());
}

#[test]
fn refusals_across_processes_another_type_a_pass_without_the_stream_another_cluster() {
    let mut producer = Peer::start("producer", &[]);
    let seed = producer.address.clone();
    producer.say("produce numbers 100 drop 1");
    producer.expect("producing");

    // A consumer of another type is told, naming both types.
    let mut text = Peer::start("text", &["--seed", &seed]);
    text.say("consume-as-text numbers");
    let refused = text.next_of("numbers");
    assert!(refused.starts_with("refused numbers"), "{refused}");
    assert!(refused.contains("alloc::string::String"), "{refused}");
    assert!(refused.contains("Item"), "{refused}");

    // A pass that allows only `public/*` may not consume `numbers`.
    let mut limited = Peer::start(
        "limited",
        &["--seed", &seed, "--consume", "public/*", "--produce", ""],
    );
    limited.say("consume numbers");
    let error = limited.expect("error");
    assert!(
        error.contains("does not allow consuming stream \"numbers\""),
        "{error}"
    );
    limited.say("produce mine 10 drop 0");
    let error = limited.expect("error");
    assert!(error.contains("does not allow producing"), "{error}");

    // A peer of another cluster (another secret) is never listed, and
    // lists no one.
    let mut stranger = Peer::start_with("stranger", "another secret", &["--seed", &seed]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!producer.catalog().contains(&stranger.id));
    assert!(stranger.catalog().is_empty());
}

#[test]
fn a_producer_that_requires_two_validators_stays_offline_until_both_exist() {
    let mut producer = Peer::start("producer", &[]);
    let seed = producer.address.clone();
    producer.say("produce-for-validators blocks 2");
    producer.expect("producing");
    let mut observer = Peer::start("observer", &["--seed", &seed, "--tag", "role=observer"]);
    observer.say("consume blocks");
    let mut v1 = Peer::start("v1", &["--seed", &seed, "--tag", "role=validator"]);
    v1.say("consume blocks");
    producer.say("wait blocks 2");
    producer.expect("consumers blocks 2");
    producer.say("online blocks");
    assert_eq!(producer.expect("online"), "online blocks false");
    let mut v2 = Peer::start("v2", &["--seed", &seed, "--tag", "role=validator"]);
    v2.say("consume blocks");
    producer.say("send blocks 1 1 0");
    producer.expect("sent blocks 1");
    assert_eq!(v2.next_of("blocks"), "item blocks 1");
    producer.say("online blocks");
    assert_eq!(producer.expect("online"), "online blocks true");
}
