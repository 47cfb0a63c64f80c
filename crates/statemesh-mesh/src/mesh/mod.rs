//! A process's place in the mesh: its listener, its gossip, its links to
//! other peers, and the streams it produces and consumes.

mod consumer;
mod discovery;
#[cfg(feature = "durable")]
mod durable;
mod error;
mod following;
mod links;
mod producer;
mod server;
mod serving;
mod shared;
mod signal;
mod through;
mod when;

pub use consumer::{Consumer, ConsumerBuilder};
pub use error::{ConsumeError, MeshError};
pub use producer::{ProduceError, Producer, ProducerBuilder};
pub use through::catalog_through;
pub use when::When;

use crate::catalog::Catalog;
use crate::gossip::{Gossip, Timing};
use crate::pass::{Credentials, Grant};
use crate::peer::{PeerId, PeerInfo, Role, Tags};
use links::{Dialer, Links};
use shared::{Running, Shared};
use statemesh_client::network::accept::Incoming;
use statemesh_client::network::repeats::Repeats;
use statemesh_client::network::{Limits, Security, Tls};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, watch};

/// The longest [`Mesh::leave`] waits for its goodbye to go out: a peer
/// that is paused or gone must not hold up a process that is exiting.
const LEAVE_WAIT: Duration = Duration::from_secs(1);

/// How to join: the settings of [`Mesh::builder`].
#[derive(Debug)]
pub struct MeshBuilder {
    cluster: String,
    security: Security,
    credentials: Credentials,
    /// `None`: connections are handed in ([`MeshBuilder::without_listener`]).
    listen: Option<String>,
    advertise: Option<String>,
    tags: Tags,
    seeds: Vec<String>,
    timing: Timing,
    limits: Limits,
    role: Role,
}

impl MeshBuilder {
    /// Where to accept mesh connections (default `127.0.0.1:0`: a free
    /// port on loopback).
    #[must_use]
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = Some(address.into());
        self
    }

    /// Binds no listener: the program accepts connections itself and
    /// hands those of mesh peers to [`Mesh::serve`]. A node does this, so
    /// its mesh shares its port. [`MeshBuilder::advertise`] must then say
    /// where the connections arrive.
    #[must_use]
    pub fn without_listener(mut self) -> Self {
        self.listen = None;
        self
    }

    /// The address other peers dial (default: the one bound, which is
    /// right unless the listener binds a wildcard address or sits behind
    /// a translation).
    #[must_use]
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.advertise = Some(address.into());
        self
    }

    /// Adds a tag others can select this peer by (`role=validator`).
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags = self.tags.with(tag);
        self
    }

    /// Adds a peer to join through: any peer of the mesh will do.
    #[must_use]
    pub fn seed(mut self, address: impl Into<String>) -> Self {
        self.seeds.push(address.into());
        self
    }

    /// Failure detection's timing (default: [`Timing::default`]).
    #[must_use]
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Caps and timeouts of its connections.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Marks this peer as node `id` of the cluster (nodes call this).
    #[must_use]
    pub fn node(mut self, id: u64) -> Self {
        self.role = Role::Node(id);
        self
    }

    /// Binds the listener (unless there is none), starts gossip and joins
    /// through the seeds.
    ///
    /// A seed that cannot be reached is not an error: the peer keeps
    /// announcing itself to its seeds until one answers, and others that
    /// know it will find it.
    ///
    /// # Errors
    ///
    /// [`MeshError`]: the pass is not good for this cluster or has
    /// expired, the address does not bind, or a TLS mesh peer has no
    /// certificate to accept connections with.
    pub async fn start(self) -> Result<Mesh, MeshError> {
        let grant = self.credentials.verifier.verify(&self.credentials.pass)?;
        let security = peer_security(&self.security, &grant)?;
        let (listener, address) = match (&self.listen, self.advertise) {
            (Some(listen), advertise) => {
                let bind = |source| MeshError::Bind {
                    address: listen.clone(),
                    source,
                };
                let listener = tokio::net::TcpListener::bind(listen).await.map_err(bind)?;
                let address = match advertise {
                    Some(a) => a,
                    None => listener.local_addr().map_err(bind)?.to_string(),
                };
                (Some(listener), address)
            }
            (None, Some(advertise)) => (None, advertise),
            (None, None) => {
                return Err(MeshError::Config(
                    "a mesh without a listener must advertise where its connections arrive".into(),
                ));
            }
        };
        let me = PeerInfo {
            id: grant.peer,
            address: address.clone(),
            tags: self.tags,
            streams: Vec::new(),
            role: self.role,
            revision: 0,
        };
        // Later starts of the same peer must look newer to the mesh.
        let bump = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| MeshError::Config(format!("no randomness: {e}")))?;
        let gossip = Gossip::new(me, bump, self.timing, u64::from_le_bytes(seed));
        let (catalog, _) = watch::channel(Arc::new(Catalog::new()));
        let seeds = Mutex::new(self.seeds.into_iter().filter(|s| *s != address).collect());
        let shared = Arc::new(Shared {
            dialer: Dialer {
                cluster: self.cluster,
                security,
                limits: self.limits,
                credentials: self.credentials,
            },
            grant,
            address,
            gossip: Mutex::new(gossip),
            wake: Notify::new(),
            catalog,
            gossip_links: Links::default(),
            stream_links: Links::default(),
            seeds,
            seed_errors: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
            repeats: Repeats::default(),
        });
        let mut tasks = vec![tokio::spawn(discovery::drive(Arc::clone(&shared)))];
        if let Some(listener) = listener {
            tasks.push(tokio::spawn(server::accept_loop(
                Arc::clone(&shared),
                listener,
            )));
        }
        Ok(Mesh {
            shared,
            running: Arc::new(Running(tasks)),
        })
    }
}

/// What a peer dials and serves with: under TLS, the certificate its own
/// pass names, any certificate taken from others (their passes are
/// checked against theirs instead of the CA).
fn peer_security(security: &Security, grant: &Grant) -> Result<Security, MeshError> {
    let Security::Tls(tls) = security else {
        return Ok(Security::Plaintext);
    };
    let identity = tls.identity().ok_or_else(|| {
        MeshError::Config(
            "a TLS mesh peer presents the certificate its pass names, and these TLS settings \
             have none: join with Mesh::through (it makes one), or give \
             Tls::peer(statemesh_mesh::identity::ephemeral()?) and a pass naming it"
                .into(),
        )
    })?;
    grant.check_certificate(Some(identity.certificate()))?;
    Ok(Security::Tls(Arc::new(Tls::peer(Arc::clone(identity))?)))
}

/// This process in the mesh. Cheap to clone; the mesh's tasks stop when
/// the last clone (and every producer and consumer made from it) is
/// dropped, or at [`Mesh::leave`].
#[derive(Clone)]
pub struct Mesh {
    shared: Arc<Shared>,
    running: Arc<Running>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("id", &self.id())
            .field("address", &self.shared.address)
            .finish_non_exhaustive()
    }
}

impl Mesh {
    /// Settings to join the mesh of cluster `cluster` (its name), with
    /// connections protected as `security` says and this process admitted
    /// by `credentials`.
    #[must_use]
    pub fn builder(
        cluster: impl Into<String>,
        security: Security,
        credentials: Credentials,
    ) -> MeshBuilder {
        MeshBuilder {
            cluster: cluster.into(),
            security,
            credentials,
            listen: Some("127.0.0.1:0".into()),
            advertise: None,
            tags: Tags::new(),
            seeds: Vec::new(),
            timing: Timing::default(),
            limits: Limits::default(),
            role: Role::Process,
        }
    }

    /// Settings to join the mesh of the cluster `client` is connected to,
    /// as the peer named `name`: a node issues the pass (with the streams
    /// the client's token may produce and consume, for 30 days or until
    /// the token expires if sooner) and the cluster's members are the
    /// seeds. When the pass expires, the peer's connections end: join
    /// again with a fresh token. The peer's id comes from `name` and the
    /// token's subject, so the same name joins as the same peer after a
    /// restart, and resumes its streams.
    ///
    /// # Errors
    ///
    /// [`MeshError::Client`] if no node answered or the token may not
    /// join; [`MeshError::Pass`] if what came back does not decode.
    pub async fn through(
        client: &statemesh_client::Client,
        name: &str,
    ) -> Result<MeshBuilder, MeshError> {
        let options = client.options();
        let identity = crate::identity::for_security(&options.security)?;
        let certificate = identity.as_deref().map(crate::identity::hash);
        let (credentials, seeds) = through::pass(client, name, certificate).await?;
        let security = match identity {
            Some(identity) => Security::Tls(Arc::new(Tls::peer(identity)?)),
            None => Security::Plaintext,
        };
        let mut builder = Mesh::builder(options.cluster.clone(), security, credentials);
        for seed in seeds {
            builder = builder.seed(seed);
        }
        Ok(builder)
    }

    /// This peer's id (the one its pass names).
    #[must_use]
    pub fn id(&self) -> PeerId {
        self.shared.grant.peer
    }

    /// Where others dial it.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// This peer's entry, as the mesh learns it.
    #[must_use]
    pub fn me(&self) -> PeerInfo {
        self.shared.me()
    }

    /// The other peers known to be up, as of now.
    #[must_use]
    pub fn catalog(&self) -> Arc<Catalog> {
        self.shared.catalog.borrow().clone()
    }

    /// The catalog, each time it changes.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<Arc<Catalog>> {
        self.shared.catalog.subscribe()
    }

    /// Serves a connection accepted elsewhere whose hello names a mesh
    /// peer (see [`MeshBuilder::without_listener`]): checks its pass,
    /// answers, and serves it until it closes. How it ended is logged.
    pub async fn serve(&self, incoming: Incoming, remote: SocketAddr) {
        server::log_end(
            &self.shared,
            remote,
            server::serve_incoming(&self.shared, incoming).await,
        );
    }

    /// Replaces the peers this one joins through (a node does this as the
    /// cluster's members change). Seeds not in the catalog are announced
    /// to, with backoff, until they are.
    pub fn set_seeds(&self, seeds: impl IntoIterator<Item = String>) {
        let seeds = seeds
            .into_iter()
            .filter(|s| *s != self.shared.address)
            .collect();
        *shared::lock(&self.shared.seeds) = seeds;
        self.shared.wake.notify_one();
    }

    /// Streams: produce and consume typed items.
    #[must_use]
    pub fn streams(&self) -> Streams<'_> {
        Streams { mesh: self }
    }

    /// Tells the other peers this one is leaving, so they drop it at once
    /// rather than after the failure detection time, and waits for the
    /// message to go out: at most a second, however many peers are paused
    /// or unreachable (those find out by failure detection).
    pub async fn leave(&self) {
        // A leaving peer announces itself to nobody again, and a seed it
        // cannot reach now is no news to its user.
        shared::lock(&self.shared.seeds).clear();
        self.shared.gossip().leave(Instant::now());
        self.shared.wake.notify_one();
        discovery::flush_now(&self.shared, LEAVE_WAIT).await;
    }
}

/// Makes producers and consumers; from [`Mesh::streams`].
#[derive(Debug, Clone, Copy)]
pub struct Streams<'a> {
    mesh: &'a Mesh,
}

impl Streams<'_> {
    /// A producer of stream `name` whose items are `T`s.
    #[must_use]
    pub fn produce<T: serde::Serialize + Send + 'static>(
        &self,
        name: impl Into<String>,
    ) -> ProducerBuilder<T> {
        ProducerBuilder::new(
            Arc::clone(&self.mesh.shared),
            Arc::clone(&self.mesh.running),
            name.into(),
        )
    }

    /// A consumer of stream `name` whose items are `T`s.
    #[must_use]
    pub fn consume<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        name: impl Into<String>,
    ) -> ConsumerBuilder<T> {
        ConsumerBuilder::new(
            Arc::clone(&self.mesh.shared),
            Arc::clone(&self.mesh.running),
            name.into(),
        )
    }
}
