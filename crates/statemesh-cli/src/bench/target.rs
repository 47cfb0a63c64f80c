//! The statemesh side of the benchmark: one client connection to the
//! bench map. Shared, like `workload.rs`, with the comparison harness in
//! `bench/`.

use super::workload::Target;
use statemesh::{Client, Consistency, RemoteMap};

/// One connection to a statemesh cluster's bench map.
pub(crate) struct StatemeshTarget {
    linearizable: RemoteMap<Vec<u8>, Vec<u8>>,
    local: RemoteMap<Vec<u8>, Vec<u8>>,
}

impl StatemeshTarget {
    pub(crate) async fn open(client: &Client, map: &str) -> Result<Self, statemesh::ClientError> {
        let linearizable = client.map::<Vec<u8>, Vec<u8>>(map).await?;
        let local = linearizable.clone().with_consistency(Consistency::Local);
        Ok(Self {
            linearizable,
            local,
        })
    }
}

impl Target for StatemeshTarget {
    async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.linearizable
            .insert(key, value)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn get(&self, key: Vec<u8>, linearizable: bool) -> Result<(), String> {
        let m = if linearizable {
            &self.linearizable
        } else {
            &self.local
        };
        m.get(&key).await.map(|_| ()).map_err(|e| e.to_string())
    }
}
