//! The status page at `/` of `statemesh node --http`, looked at in a real
//! browser (headless Chromium): members, each collection's leader, replicas
//! and mirrors, and what it shows once a member is killed.

mod common;

use common::{BIN, Cluster, Node, stderr, until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The browser: `$STATEMESH_CHROMIUM`, or the first of the usual names on
/// the `PATH`.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("STATEMESH_CHROMIUM") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!(
        "this test looks at the status page in Chromium, which is not installed: \
         apt-get install chromium (or set STATEMESH_CHROMIUM to a Chromium binary)"
    );
}

/// Loads `url` headless, lets its script run (on virtual time: the page's
/// two-second refresh does not hold it up), and returns what the browser
/// printed: the DOM, or nothing for a screenshot.
fn browse(url: &str, profile: &Path, what: &[&str]) -> String {
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1200,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(what)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The browser never gets to hang the test.
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(90));
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the table row of the collections table that starts with
/// `name`: its cells, tags stripped.
fn row(dom: &str, name: &str) -> Vec<String> {
    let start = dom
        .find(&format!("<code>{name}</code>"))
        .unwrap_or_else(|| panic!("no row for {name} in {dom}"));
    let row = &dom[start..start + dom[start..].find("</tr>").unwrap()];
    row.split("</td>")
        .map(|cell| {
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_owned()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_cluster_in_a_browser() {
    let cluster = Cluster::new();
    let http = free_port();
    let first = cluster.start("n1", "127.0.0.1:0", &["--http", &http]);
    let seed = first.address.clone();
    let mut nodes: Vec<Node> = vec![
        first,
        cluster.start("n2", "127.0.0.1:0", &["--join", &seed]),
        cluster.start("n3", "127.0.0.1:0", &["--join", &seed]),
    ];
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let out = cluster.command(&seed, &["create", "map", "prices"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in 0..20 {
        let out = cluster.command(&seed, &["put", "prices", &format!("k{i}"), &i.to_string()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let _mirror = Killed(
        Command::new(BIN)
            .args(["mirror", "prices", "--addr", &nodes[1].address])
            .arg("--certs")
            .arg(cluster.certs())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(cluster.path().join("mirror.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let client = cluster.client(&addresses).await;
    common::on_three_voters(&client, "prices").await;
    // What the page draws from: wait until it has the mirror and a rate.
    let json = format!("http://{http}/status.json");
    let mirror_log = cluster.path().join("mirror.log");
    until("the mirror and a commit rate in /status.json", async || {
        let log = std::fs::read_to_string(&mirror_log).unwrap_or_default();
        assert!(!log.contains("error"), "the mirror failed: {log}");
        let body = http_body(&json).await?;
        let s: serde_json::Value = serde_json::from_str(&body).ok()?;
        let prices = s["groups"]
            .as_array()?
            .iter()
            .find(|g| g["name"] == "prices")?;
        let rated = s["rates"]["series"]["prices"].as_array()?.len() > 1;
        (prices["mirrors"] == 1 && rated && s["healthy"] == true).then_some(())
    })
    .await;

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{http}/");
    let dom = browse(&url, profile.path(), &["--dump-dom"]);
    assert!(dom.contains(">healthy<"), "{dom}");
    for n in &nodes {
        assert!(
            dom.contains(&n.id.to_string()),
            "node {} missing: {dom}",
            n.id
        );
        assert!(dom.contains(&n.address), "{} missing: {dom}", n.address);
    }
    assert!(
        dom.contains(&format!("{} (this node)", nodes[0].id)),
        "{dom}"
    );
    let prices = row(&dom, "prices");
    // Collection, leader, term, version, replicas, lag, mirrors.
    assert_eq!(prices.len(), 7, "{prices:?}");
    let leader: u64 = prices[1].parse().unwrap();
    assert!(nodes.iter().any(|n| n.id == leader), "{prices:?}");
    for n in &nodes {
        assert!(prices[4].contains(&n.id.to_string()), "{prices:?}");
    }
    assert_eq!(prices[6], "1", "one mirror: {prices:?}");
    assert!(dom.contains("<polyline"), "no chart: {dom}");

    // A screenshot, kept for people to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &url,
        profile.path(),
        &[&format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "a blank screenshot: {} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());

    // With a member killed, the page says what is wrong.
    let dead = nodes[2].id;
    nodes[2].kill();
    let started = Instant::now();
    let dom = browse(&url, profile.path(), &["--dump-dom"]);
    assert!(dom.contains(">unhealthy<"), "{dom}");
    assert!(
        dom.contains(&format!("node {dead} at")) && dom.contains("did not answer"),
        "{dom}"
    );
    println!("the unhealthy page loaded in {:?}", started.elapsed());
}

/// The body of a GET, if it answered 200.
async fn http_body(url: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}
