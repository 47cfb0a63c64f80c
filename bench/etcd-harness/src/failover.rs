//! `etcd-harness failover`: how long writes stop when the leader of a
//! 3-node cluster is killed, paused, or cut off from its peers, for
//! statemesh and etcd under the same load, and one table of the gaps.
//!
//! `etcd-harness failover TRIALS ROOT STATEMESH_BIN NS=IP,NS=IP,NS=IP [FAULTS]`
//!
//! bench/failover.sh makes the three network namespaces (joined by a
//! bridge this process reaches them through) and cleans up; this process
//! starts the nodes inside them (`ip netns exec`), keeps their data and
//! logs under ROOT, and injects and heals each fault. FAULTS is a
//! comma-separated list of `SYSTEM:FAULT`, SYSTEM `statemesh` or `etcd`,
//! FAULT `kill` (SIGKILL, then restart from the data directory), `stop`
//! (SIGSTOP, then SIGCONT) or `isolate` (iptables in the leader's
//! namespace drops every packet to and from its peers, then flushed);
//! default all six.
//!
//! One file of about 850 lines on purpose: it is one benchmark scenario
//! (start, fault, heal, measure, report) that reads top to bottom, built by
//! the benchmark script alone and by no crate a user depends on.

use crate::EtcdTarget;
use crate::target::StatemeshTarget;
use crate::workload::Target;
use etcd_client::{Client as Etcd, ConnectOptions};
use statemesh::{Client, ClientOptions, ClusterStatus, GroupStatus, Security};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Concurrent writers, each with a client of its own that knows all three
/// members.
const WRITERS: usize = 4;
/// Writes before the fault, so every writer has a working connection.
const STEADY: Duration = Duration::from_secs(1);
/// A trial with no acknowledgement this long after the fault is recorded
/// as such and healed.
const GIVE_UP: Duration = Duration::from_secs(20);
/// How long a cluster may take to be healthy again before the run stops.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);
/// The per-request timeout of the etcd writers: etcd-client has none by
/// default, so a write sent to a paused member would wait forever. The
/// same as statemesh's `attempt_timeout`.
const ETCD_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const SECRET: &str = "failover-secret";
const MAP: &str = "failover";
const VALUE_SIZE: usize = 256;
/// Keys each writer cycles through (bounds etcd's database and the map).
const KEYS: u64 = 10_000;
const STATEMESH_PORT: u16 = 7501;
const ETCD_CLIENT_PORT: u16 = 2379;
const ETCD_PEER_PORT: u16 = 2380;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum System {
    Statemesh,
    Etcd,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Statemesh => "statemesh",
            System::Etcd => "etcd 3.4",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Kill,
    Stop,
    Isolate,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "SIGKILL",
            Fault::Stop => "SIGSTOP",
            Fault::Isolate => "isolated from peers",
        }
    }
}

fn parse_faults(text: &str) -> Vec<(System, Fault)> {
    let mut out: Vec<(System, Fault)> = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (s, f) = item
                .split_once(':')
                .unwrap_or_else(|| panic!("{item}: not SYSTEM:FAULT"));
            let system = match s {
                "statemesh" => System::Statemesh,
                "etcd" => System::Etcd,
                _ => panic!("{s}: not statemesh or etcd"),
            };
            let fault = match f {
                "kill" => Fault::Kill,
                "stop" => Fault::Stop,
                "isolate" => Fault::Isolate,
                _ => panic!("{f}: not kill, stop or isolate"),
            };
            (system, fault)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One node process in its namespace, killed when dropped.
struct Node {
    name: String,
    namespace: String,
    ip: String,
    program: String,
    /// Arguments of its first start, and of a restart from its data
    /// directory.
    first: Vec<String>,
    again: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self, args: &[String]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        // `ip netns exec` execs the program without forking, so the
        // child's pid is the node's.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace, &self.program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("node log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        self.child = Some(child);
    }

    fn start(&mut self) {
        let args = self.first.clone();
        self.spawn(&args);
    }

    fn restart(&mut self) {
        let args = self.again.clone();
        self.spawn(&args);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().expect("the node runs").id();
        let pid = libc::pid_t::try_from(pid).expect("pid");
        // SAFETY: kill(2) with a pid this process spawned and has not
        // reaped, so it names that process.
        let r = unsafe { libc::kill(pid, signal) };
        assert_eq!(r, 0, "kill({pid}, {signal}) for {}", self.name);
    }

    /// SIGKILL (a stopped process dies too), and reap.
    fn reap(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.reap();
    }
}

/// Runs `program args` to completion off the runtime's threads (the
/// writers' acknowledgement times must not wait for it).
async fn run(program: &str, args: Vec<String>, stdin: Option<String>) {
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&program)
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .unwrap_or_else(|e| panic!("writing to {program}: {e}"));
        }
        let status = child.wait().expect("waiting");
        assert!(status.success(), "{program} {args:?}: {status}");
    })
    .await
    .expect("command");
}

enum Writer {
    Statemesh(StatemeshTarget),
    Etcd(EtcdTarget),
}

impl Writer {
    async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        match self {
            Writer::Statemesh(t) => t.put(key, value).await,
            Writer::Etcd(t) => t.put(key, value).await,
        }
    }
}

/// A cluster of three nodes of one system, and a client per node to ask
/// each for its own view.
struct Cluster {
    system: System,
    nodes: Vec<Node>,
    statemesh_admin: Vec<Option<Client>>,
    etcd_admin: Vec<Option<Etcd>>,
}

fn statemesh_options(timeout: Duration) -> ClientOptions {
    let mut o = ClientOptions::new("statemesh", Security::Plaintext);
    o.timeout = timeout;
    o.attempt_timeout = timeout.min(o.attempt_timeout);
    o.limits.connect_timeout = timeout.min(o.limits.connect_timeout);
    o
}

fn group<'a>(s: &'a ClusterStatus, name: &str) -> Option<&'a GroupStatus> {
    s.groups.iter().find(|(n, _)| n == name).map(|(_, g)| g)
}

impl Cluster {
    fn new(system: System, root: &Path, bin: &str, net: &[(String, String)]) -> Self {
        let dir = root.join(match system {
            System::Statemesh => "statemesh",
            System::Etcd => "etcd",
        });
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data directory");
        let peers: Vec<String> = net
            .iter()
            .enumerate()
            .map(|(i, (_, ip))| format!("e{}=http://{ip}:{ETCD_PEER_PORT}", i + 1))
            .collect();
        let nodes = net
            .iter()
            .enumerate()
            .map(|(i, (namespace, ip))| {
                let name = match system {
                    System::Statemesh => format!("s{}", i + 1),
                    System::Etcd => format!("e{}", i + 1),
                };
                let data = dir.join(&name).display().to_string();
                let (program, first, again) = match system {
                    System::Statemesh => {
                        let listen = format!("{ip}:{STATEMESH_PORT}");
                        let mut args: Vec<String> = [
                            "node",
                            "--plaintext",
                            "--secret",
                            SECRET,
                            "--data-dir",
                            &data,
                            "--listen",
                            &listen,
                        ]
                        .map(str::to_owned)
                        .to_vec();
                        // Restarted, a node resumes from its data
                        // directory; only a new one joins.
                        let again = args.clone();
                        if i > 0 {
                            args.extend([
                                "--join".into(),
                                format!("{}:{STATEMESH_PORT}", net[0].1),
                            ]);
                        }
                        (bin.to_owned(), args, again)
                    }
                    System::Etcd => {
                        let client = format!("http://{ip}:{ETCD_CLIENT_PORT}");
                        let peer = format!("http://{ip}:{ETCD_PEER_PORT}");
                        let args: Vec<String> = [
                            "--name",
                            &name,
                            "--data-dir",
                            &data,
                            "--listen-client-urls",
                            &client,
                            "--advertise-client-urls",
                            &client,
                            "--listen-peer-urls",
                            &peer,
                            "--initial-advertise-peer-urls",
                            &peer,
                            "--initial-cluster",
                            &peers.join(","),
                            "--initial-cluster-state",
                            "new",
                            "--initial-cluster-token",
                            "failover",
                        ]
                        .map(str::to_owned)
                        .to_vec();
                        // etcd ignores the --initial-* flags once its data
                        // directory holds a log.
                        ("etcd".to_owned(), args.clone(), args)
                    }
                };
                Node {
                    log: dir.join(format!("{name}.log")),
                    name,
                    namespace: namespace.clone(),
                    ip: ip.clone(),
                    program,
                    first,
                    again,
                    child: None,
                }
            })
            .collect();
        Self {
            system,
            nodes,
            statemesh_admin: vec![None; net.len()],
            etcd_admin: vec![None; net.len()],
        }
    }

    fn address(&self, i: usize) -> String {
        let port = match self.system {
            System::Statemesh => STATEMESH_PORT,
            System::Etcd => ETCD_CLIENT_PORT,
        };
        format!("{}:{port}", self.nodes[i].ip)
    }

    fn addresses(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.address(i)).collect()
    }

    async fn start(&mut self) {
        match self.system {
            System::Statemesh => {
                // The others join through the first, which must be up.
                self.nodes[0].start();
                let first = self.address(0);
                let deadline = Instant::now() + HEALTHY_WITHIN;
                while Client::connect(
                    std::slice::from_ref(&first),
                    SECRET,
                    statemesh_options(Duration::from_secs(1)),
                )
                .await
                .is_err()
                {
                    assert!(Instant::now() < deadline, "{} did not start", first);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                for n in &mut self.nodes[1..] {
                    n.start();
                }
                // The map's group exists from its first use on.
                let c = Client::connect(
                    &self.addresses(),
                    SECRET,
                    statemesh_options(Duration::from_secs(5)),
                )
                .await
                .expect("statemesh");
                let m = StatemeshTarget::open(&c, MAP).await.expect("the map");
                m.put(b"created".to_vec(), vec![0]).await.expect("a write");
            }
            System::Etcd => {
                for n in &mut self.nodes {
                    n.start();
                }
            }
        }
        self.wait_healthy().await;
    }

    /// The leader's index once every member answers, all agree on one
    /// leader, and all have applied the same entries; `None` until then.
    async fn healthy(&mut self) -> Option<usize> {
        match self.system {
            System::Statemesh => self.statemesh_healthy().await,
            System::Etcd => self.etcd_healthy().await,
        }
    }

    async fn statemesh_healthy(&mut self) -> Option<usize> {
        let mut views = Vec::new();
        for i in 0..self.nodes.len() {
            let c = match &self.statemesh_admin[i] {
                Some(c) => c.clone(),
                None => {
                    let c = Client::connect(
                        &[self.address(i)],
                        SECRET,
                        statemesh_options(Duration::from_secs(1)),
                    )
                    .await
                    .ok()?;
                    self.statemesh_admin[i] = Some(c.clone());
                    c
                }
            };
            match c.status().await {
                Ok(s) => views.push(s),
                Err(_) => {
                    self.statemesh_admin[i] = None;
                    return None;
                }
            }
        }
        for name in ["_cluster", MAP] {
            let first = group(&views[0], name)?;
            first.leader?;
            for v in &views {
                let g = group(v, name)?;
                if g.voters.len() != self.nodes.len()
                    || g.leader != first.leader
                    || g.term != first.term
                    || g.applied != first.applied
                {
                    return None;
                }
            }
        }
        let leader = group(&views[0], MAP)?.leader?;
        let address = &views[0].members.get(&leader)?.address;
        (0..self.nodes.len()).find(|&i| self.address(i) == *address)
    }

    async fn etcd_healthy(&mut self) -> Option<usize> {
        let mut views = Vec::new();
        for i in 0..self.nodes.len() {
            let c = match &self.etcd_admin[i] {
                Some(c) => c.clone(),
                None => {
                    let options = ConnectOptions::new()
                        .with_timeout(Duration::from_secs(1))
                        .with_connect_timeout(Duration::from_secs(1));
                    let c = Etcd::connect([self.address(i)], Some(options)).await.ok()?;
                    self.etcd_admin[i] = Some(c.clone());
                    c
                }
            };
            let mut c = c;
            match c.status().await {
                Ok(s) => views.push(s),
                Err(_) => {
                    self.etcd_admin[i] = None;
                    return None;
                }
            }
        }
        let first = &views[0];
        if first.leader() == 0
            || views.iter().any(|v| {
                v.leader() != first.leader()
                    || v.raft_term() != first.raft_term()
                    || v.raft_index() != first.raft_index()
                    || !v.errors().is_empty()
            })
        {
            return None;
        }
        views
            .iter()
            .position(|v| v.header().map(|h| h.member_id()) == Some(first.leader()))
    }

    async fn wait_healthy(&mut self) -> usize {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        loop {
            if let Some(leader) = self.healthy().await {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "the {} cluster is not healthy after {HEALTHY_WITHIN:?} (logs: {})",
                self.system.name(),
                self.nodes[0].log.parent().unwrap().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client per writer, every one knowing all three members.
    async fn writers(&self, leader: usize) -> Vec<Writer> {
        let mut out = Vec::new();
        for _ in 0..WRITERS {
            out.push(match self.system {
                System::Statemesh => {
                    // The old leader first: the client talks to it until it
                    // fails, which is the case that costs most.
                    let mut addresses = vec![self.address(leader)];
                    addresses.extend(
                        (0..self.nodes.len())
                            .filter(|&i| i != leader)
                            .map(|i| self.address(i)),
                    );
                    let options = ClientOptions::new("statemesh", Security::Plaintext);
                    let c = Client::connect(&addresses, SECRET, options)
                        .await
                        .expect("statemesh");
                    Writer::Statemesh(StatemeshTarget::open(&c, MAP).await.expect("the map"))
                }
                System::Etcd => {
                    // etcd-client balances requests over the endpoints
                    // (their order means nothing to it).
                    let options = ConnectOptions::new()
                        .with_timeout(ETCD_REQUEST_TIMEOUT)
                        .with_connect_timeout(Duration::from_secs(2));
                    let c = Etcd::connect(self.addresses(), Some(options))
                        .await
                        .expect("etcd");
                    Writer::Etcd(EtcdTarget(c))
                }
            });
        }
        out
    }

    /// The fault on node `leader`; returns when it is in effect.
    async fn inject(&mut self, leader: usize, fault: Fault) -> Instant {
        match fault {
            Fault::Kill => self.nodes[leader].signal(libc::SIGKILL),
            Fault::Stop => self.nodes[leader].signal(libc::SIGSTOP),
            Fault::Isolate => {
                // Inside the leader's namespace, so the writers (on the
                // bridge's own address) still reach it; one
                // iptables-restore is one transaction, so both
                // directions start dropping at once.
                let mut rules = String::from("*filter\n");
                for (i, n) in self.nodes.iter().enumerate() {
                    if i != leader {
                        rules.push_str(&format!("-A INPUT -s {} -j DROP\n", n.ip));
                        rules.push_str(&format!("-A OUTPUT -d {} -j DROP\n", n.ip));
                    }
                }
                rules.push_str("COMMIT\n");
                let ns = self.nodes[leader].namespace.clone();
                run(
                    "ip",
                    ["netns", "exec", &ns, "iptables-restore", "--noflush"]
                        .map(str::to_owned)
                        .to_vec(),
                    Some(rules),
                )
                .await;
            }
        }
        Instant::now()
    }

    async fn heal(&mut self, leader: usize, fault: Fault) {
        match fault {
            Fault::Kill => {
                self.nodes[leader].reap();
                self.nodes[leader].restart();
            }
            Fault::Stop => self.nodes[leader].signal(libc::SIGCONT),
            Fault::Isolate => {
                let ns = self.nodes[leader].namespace.clone();
                run(
                    "ip",
                    ["netns", "exec", &ns, "iptables", "-F"]
                        .map(str::to_owned)
                        .to_vec(),
                    None,
                )
                .await;
            }
        }
    }
}

#[derive(Default)]
struct Log {
    /// (sent, acknowledged) of every write that succeeded.
    acks: Vec<(Instant, Instant)>,
    /// (when, why) of every write that failed.
    errors: Vec<(Instant, String)>,
}

struct Outcome {
    /// Fault to the first acknowledgement of a write sent after it.
    gap: Option<Duration>,
    /// Fault to the first acknowledgement of any write, including one sent
    /// before the fault (which may have been committed before it).
    any: Option<Duration>,
    errors: Vec<String>,
}

async fn trial(cluster: &mut Cluster, fault: Fault) -> (Outcome, String) {
    let leader = cluster.wait_healthy().await;
    let leader_name = cluster.nodes[leader].name.clone();
    let writers = cluster.writers(leader).await;
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(w, writer)| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            tokio::spawn(async move {
                let value = vec![b'v'; VALUE_SIZE];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("{w}{:07}", n % KEYS).into_bytes();
                    n += 1;
                    let sent = Instant::now();
                    match writer.put(key, value.clone()).await {
                        Ok(()) => log.lock().unwrap().acks.push((sent, Instant::now())),
                        Err(e) => {
                            log.lock().unwrap().errors.push((Instant::now(), e));
                            // Some failures are immediate (a refused
                            // connection): do not spin on them.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            })
        })
        .collect();

    // Steady: every writer has had a write acknowledged lately.
    let started = Instant::now();
    tokio::time::sleep(STEADY).await;
    loop {
        let now = Instant::now();
        let recent = log
            .lock()
            .unwrap()
            .acks
            .iter()
            .filter(|(_, a)| now - *a < Duration::from_millis(250))
            .count();
        if recent >= WRITERS {
            break;
        }
        if started.elapsed() > STEADY * 10 {
            eprintln!("  warning: writes not steady before the fault ({recent} in 250 ms)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let at = cluster.inject(leader, fault).await;
    let (gap, any) = loop {
        let done = {
            let l = log.lock().unwrap();
            let gap = l
                .acks
                .iter()
                .filter(|(s, _)| *s >= at)
                .map(|(_, a)| *a - at)
                .min();
            let any = l
                .acks
                .iter()
                .filter(|(_, a)| *a > at)
                .map(|(_, a)| *a - at)
                .min();
            (gap.is_some() || at.elapsed() > GIVE_UP).then_some((gap, any))
        };
        if let Some(d) = done {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let errors = log
        .lock()
        .unwrap()
        .errors
        .iter()
        .map(|(_, e)| e.clone())
        .collect();
    cluster.heal(leader, fault).await;
    (Outcome { gap, any, errors }, leader_name)
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{}", d.as_millis()),
        None => format!(">{}", GIVE_UP.as_millis()),
    }
}

/// The median and the largest; a trial without an acknowledgement counts
/// as longer than any.
fn summary(values: &[Option<Duration>]) -> (String, String) {
    let mut v: Vec<Duration> = values.iter().map(|d| d.unwrap_or(Duration::MAX)).collect();
    v.sort();
    if v.is_empty() {
        return ("-".into(), "-".into());
    }
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else if v[n / 2] == Duration::MAX {
        Duration::MAX
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    };
    let show = |d: Duration| ms((d != Duration::MAX).then_some(d));
    (show(median), show(v[n - 1]))
}

/// An error message with its numbers as N, so the same failure at another
/// node or after another time counts once.
fn kind_of(error: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in error.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

pub(crate) async fn main(args: &[String]) {
    assert!(
        args.len() >= 4,
        "usage: etcd-harness failover TRIALS ROOT STATEMESH_BIN NS=IP,NS=IP,NS=IP [FAULTS]"
    );
    let trials: usize = args[0].parse().expect("TRIALS");
    let root = PathBuf::from(&args[1]);
    let bin = args[2].clone();
    let net: Vec<(String, String)> = args[3]
        .split(',')
        .map(|s| {
            let (ns, ip) = s.split_once('=').expect("NS=IP");
            (ns.to_owned(), ip.to_owned())
        })
        .collect();
    assert_eq!(net.len(), 3, "three namespaces");
    let faults = parse_faults(args.get(4).map_or(
        "statemesh:kill,statemesh:stop,statemesh:isolate,etcd:kill,etcd:stop,etcd:isolate",
        String::as_str,
    ));

    let mut results: BTreeMap<(System, Fault), Vec<Outcome>> = BTreeMap::new();
    for system in [System::Statemesh, System::Etcd] {
        let mine: Vec<Fault> = faults
            .iter()
            .filter(|(s, _)| *s == system)
            .map(|(_, f)| *f)
            .collect();
        if mine.is_empty() {
            continue;
        }
        eprintln!("starting 3 {} nodes", system.name());
        let mut cluster = Cluster::new(system, &root, &bin, &net);
        cluster.start().await;
        for fault in mine {
            for t in 1..=trials {
                let (o, leader) = trial(&mut cluster, fault).await;
                eprintln!(
                    "{} {} {t}/{trials}: leader {leader}, next write {} ms after (any answer {} ms), {} failed writes",
                    system.name(),
                    fault.name(),
                    ms(o.gap),
                    ms(o.any),
                    o.errors.len()
                );
                results.entry((system, fault)).or_default().push(o);
            }
        }
        cluster.wait_healthy().await;
    }

    println!(
        "3 nodes on one host, each in its own network namespace; fsync on every commit; \
         {WRITERS} writers, 256-byte values, each writer's client knowing all three members \
         (statemesh's with the leader first); {trials} trials per fault on the leader; \
         gap = from the fault to the first acknowledgement of a write sent after it, in ms"
    );
    println!();
    println!(
        "| system | fault on the leader | p50 | max | any answer p50 / max | failed writes | gaps in trial order |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    for ((system, fault), outcomes) in &results {
        let gaps: Vec<Option<Duration>> = outcomes.iter().map(|o| o.gap).collect();
        let any: Vec<Option<Duration>> = outcomes.iter().map(|o| o.any).collect();
        let (p50, max) = summary(&gaps);
        let (any50, anymax) = summary(&any);
        let errors: usize = outcomes.iter().map(|o| o.errors.len()).sum();
        let raw: Vec<String> = gaps.iter().map(|g| ms(*g)).collect();
        println!(
            "| {} | {} | {p50} | {max} | {any50} / {anymax} | {errors} | {} |",
            system.name(),
            fault.name(),
            raw.join(", ")
        );
    }
    println!();
    println!(
        "\"any answer\" also counts answers to writes sent before the fault (possibly \
         committed before it). Failed writes (each retried by its writer), by message, \
         numbers as N:"
    );
    println!();
    for ((system, fault), outcomes) in &results {
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for e in outcomes.iter().flat_map(|o| &o.errors) {
            *kinds.entry(kind_of(e)).or_default() += 1;
        }
        for (kind, count) in kinds {
            println!("- {}, {}: {count} x `{kind}`", system.name(), fault.name());
        }
    }
}
