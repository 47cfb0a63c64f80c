//! Plaintext servers on loopback in one process, for the tests that need
//! a cluster over TCP.
#![allow(dead_code)]

pub(crate) mod memory;

use statemesh::network::{Authenticator, Secret};
use statemesh::{
    Client, ClientOptions, HistoryLimits, Kinds, MemberRole, Security, Server, ServerOptions,
    TcpOptions,
};
use std::time::Duration;

pub(crate) const CLUSTER: &str = "in-process-test";
pub(crate) const SECRET: &str = "in-process-secret";

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    kinds: Kinds,
}

impl Env {
    /// Servers that host `kinds`.
    pub(crate) fn new(kinds: Kinds) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            kinds,
        }
    }

    pub(crate) fn options(
        &self,
        name: &str,
        join: &[String],
        history: HistoryLimits,
    ) -> ServerOptions {
        let network = TcpOptions::new(
            CLUSTER,
            Security::Plaintext,
            Authenticator::new(Secret::new(SECRET), None),
        );
        let mut o = ServerOptions::new(self.dir.path().join(name), "127.0.0.1:0", network);
        o.join = join.to_vec();
        o.role = MemberRole::Voter;
        o.history = history;
        o
    }

    pub(crate) async fn start(
        &self,
        name: &str,
        join: &[String],
        history: HistoryLimits,
    ) -> Server {
        Server::start(self.options(name, join, history), self.kinds.clone())
            .await
            .unwrap()
    }

    pub(crate) async fn client(&self, addresses: &[String]) -> Client {
        let mut o = ClientOptions::new(CLUSTER, Security::Plaintext);
        o.timeout = Duration::from_secs(10);
        Client::connect(addresses, SECRET, o).await.unwrap()
    }

    /// Three servers, the second and third joining through the first; and
    /// their addresses.
    pub(crate) async fn three(&self) -> ([Server; 3], Vec<String>) {
        let a = self.start("a", &[], HistoryLimits::default()).await;
        let seed = vec![a.address().to_owned()];
        let b = self.start("b", &seed, HistoryLimits::default()).await;
        let c = self.start("c", &seed, HistoryLimits::default()).await;
        let all = [&a, &b, &c]
            .iter()
            .map(|s| s.address().to_owned())
            .collect();
        ([a, b, c], all)
    }
}
