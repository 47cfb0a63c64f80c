//! statemesh: one `Mesh` per producer and per consumer (so each consumer
//! is its own peer with its own TCP connection to each producer; the
//! consumers of one `Mesh` would share its link), plaintext, passes from
//! one cluster secret.

use crate::setup::{Consumers, Publisher, SUBJECT};
use crate::tally;
use serde_bytes::ByteBuf;
use statemesh_mesh::gossip::Timing;
use statemesh_mesh::pass::{Credentials, PassIssuer};
use statemesh_mesh::peer::PeerId;
use statemesh_mesh::stream::Missed;
use statemesh_mesh::{ConsumeError, Mesh, Producer, Security};
use std::time::{Duration, Instant};

const CLUSTER: &str = "streams-bench";

fn credentials(name: &str) -> Credentials {
    let cluster = "0123456789abcdef0123456789abcdef"
        .parse()
        .expect("a cluster id");
    let issuer = PassIssuer::new(b"streams bench secret", cluster);
    Credentials {
        pass: issuer.issue(
            PeerId::from_name(name),
            Duration::from_secs(24 * 3600),
            vec!["*".into()],
            vec!["*".into()],
        ),
        verifier: issuer.verifier(),
    }
}

async fn join(name: &str, seed: Option<&str>) -> Result<Mesh, String> {
    let mut builder =
        Mesh::builder(CLUSTER, Security::Plaintext, credentials(name)).timing(Timing::default());
    if let Some(seed) = seed {
        builder = builder.seed(seed);
    }
    builder.start().await.map_err(|e| e.to_string())
}

/// The producers' side: their meshes (the first one is the consumers'
/// seed) and producers.
pub struct Producers {
    pub meshes: Vec<Mesh>,
    pub producers: Vec<Producer<ByteBuf>>,
}

pub async fn producers(count: usize, run: u64) -> Result<Producers, String> {
    let mut meshes: Vec<Mesh> = Vec::new();
    let mut producers = Vec::new();
    for p in 0..count {
        let seed = meshes.first().map(|m| m.address().to_owned());
        let mesh = join(&format!("producer-{run}-{p}"), seed.as_deref()).await?;
        // The defaults: a send waits (up to a second) for a consumer that
        // has not been sent the oldest buffered item, so a consumer that
        // keeps reading loses nothing.
        let producer = mesh
            .streams()
            .produce::<ByteBuf>(SUBJECT)
            .start()
            .map_err(|e| e.to_string())?;
        meshes.push(mesh);
        producers.push(producer);
    }
    Ok(Producers { meshes, producers })
}

impl Producers {
    pub fn seed(&self) -> String {
        self.meshes[0].address().to_owned()
    }

    /// Waits until every producer sends to `consumers` consumers.
    pub async fn subscribed(&self, consumers: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for producer in &self.producers {
            while producer.consumers() < consumers {
                if Instant::now() > deadline {
                    return Err(format!(
                        "statemesh: {} of {consumers} consumers subscribed after 60 s",
                        producer.consumers()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    pub fn into_publishers(self) -> (Vec<Publisher>, Vec<Mesh>) {
        (
            self.producers.into_iter().map(Publisher::Mesh).collect(),
            self.meshes,
        )
    }
}

/// `count` consumers, each on a mesh of its own joined through `seed`.
pub async fn consumers(
    seed: &str,
    producers: usize,
    count: usize,
    name: &str,
) -> Result<Consumers, String> {
    let mut out = Consumers::default();
    for c in 0..count {
        let mesh = join(&format!("consumer-{name}-{c}"), Some(seed)).await?;
        let mut consumer = mesh
            .streams()
            .consume::<ByteBuf>(SUBJECT)
            .start()
            .map_err(|e| e.to_string())?;
        out.keep.push(Box::new(mesh));
        let t = tally::shared(producers);
        out.tallies.push(t.clone());
        out.tasks.push(tokio::spawn(async move {
            while let Some(next) = consumer.next().await {
                match next {
                    Ok(item) => tally::lock(&t).record(&item),
                    Err(ConsumeError::Lagged { missed, .. }) => {
                        let mut t = tally::lock(&t);
                        t.interruptions += 1;
                        if let Missed::Exactly(n) = missed {
                            t.reported_lost += n;
                        }
                    }
                    Err(e) => eprintln!("statemesh consumer: {e}"),
                }
            }
        }));
    }
    Ok(out)
}
