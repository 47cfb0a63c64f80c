//! Mistakes in how a command reaches the cluster fail at once, with the fix
//! in the message: a certificate from another CA, TLS against a plaintext
//! node and the reverse, an address without a port or with a name that
//! does not resolve, another cluster's name. A member that is only down
//! does not stop the others from answering.

mod common;

use common::{Cluster, run, stderr};
use std::time::{Duration, Instant};

/// Runs `get` with `args` and returns its one-line error and how long it
/// took; it must fail with status 1.
fn refused(args: &[&str]) -> (String, Duration) {
    let mut all = vec!["get", "settings", "k", "--timeout", "10s"];
    all.extend(args);
    let started = Instant::now();
    let out = run(&all);
    let took = started.elapsed();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
    assert!(
        e.starts_with("error: ") && e.trim_end().lines().count() == 1,
        "{args:?}: {e}"
    );
    (e, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_mistakes_fail_at_once_and_name_the_fix() {
    let tls = Cluster::new();
    let tls_node = tls.start("tls", "127.0.0.1:0", &[]);
    let plain = Cluster::with_node_args(&["--plaintext"]);
    let plain_node = plain.start("plain", "127.0.0.1:0", &[]);
    let other = Cluster::new();
    let certs = tls.certs();
    let certs = certs.to_str().unwrap();
    let other_certs = other.certs();
    let other_certs = other_certs.to_str().unwrap();
    let (a, p) = (tls_node.address.as_str(), plain_node.address.as_str());
    let no_port = a.rsplit_once(':').unwrap().0;
    let unresolvable = "node.invalid:7400";

    let wrong_ca = format!("is not signed by {other_certs}/ca.pem: pass the cluster's --ca");
    let cases: [(&[&str], &str); 6] = [
        (&["--addr", a, "--certs", other_certs], &wrong_ca),
        (
            &["--addr", a, "--certs", certs, "--plaintext"],
            "this node speaks TLS",
        ),
        (
            &["--addr", p, "--certs", certs],
            "does not speak TLS: connect without TLS (--plaintext)",
        ),
        (&["--addr", no_port, "--certs", certs], "has no port"),
        (
            &["--addr", unresolvable, "--certs", certs],
            "cannot resolve \"node.invalid\"",
        ),
        (
            &["--addr", a, "--certs", certs, "--cluster", "another"],
            "this node belongs to cluster \"statemesh\", not \"another\"",
        ),
    ];
    for (args, says) in cases {
        let (e, took) = refused(args);
        assert!(e.contains(says), "{args:?}: {e}");
        assert!(took < Duration::from_secs(1), "{args:?} took {took:?}: {e}");
    }

    // One bad address among good ones costs nothing.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let list = format!("{no_port},{dead},{a}");
    let out = run(&[
        "put", "settings", "k", "1", "--addr", &list, "--certs", certs,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}
