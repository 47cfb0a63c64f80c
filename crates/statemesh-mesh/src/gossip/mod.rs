//! Discovery by gossip: foca's SWIM (failure detection and membership)
//! plus every peer's catalog entry, with no I/O of its own.
//!
//! The engine is driven from outside: the transport hands it what a peer
//! sent ([`Gossip::receive`]), the clock says when timers are due
//! ([`Gossip::tick`]), and it returns what to send whom
//! ([`Gossip::take_outgoing`]) and what changed in the catalog
//! ([`Gossip::take_events`]). So the same engine runs over the mesh's
//! authenticated connections and, in tests, over a simulated network
//! with a simulated clock.
//!
//! Entries travel two ways: a peer that changes its entry broadcasts it
//! (foca piggybacks it on its own messages, a higher revision replacing a
//! lower one in flight), and a peer that sees a member come up without
//! knowing its entry asks that member for it, so one that joins late
//! still learns entries broadcast long before.

use crate::catalog::{Catalog, Change, Liveness};
use crate::peer::{PeerId, PeerInfo};
use foca::{
    AccumulatingRuntime, BroadcastHandler, Config, Foca, Identity, Invalidates, PostcardCodec,
    State, Timer,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A peer as foca knows it: where it listens (foca's address, unique in
/// the mesh), its id, and a counter that makes a restarted process's
/// identity newer than the one it had.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Where it accepts mesh connections.
    pub address: String,
    /// Its id; zero for a seed known only by its address.
    pub id: PeerId,
    bump: u64,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.id, self.address, self.bump)
    }
}

impl Member {
    /// This process, started at `bump` (a clock reading, so the next
    /// start is newer).
    #[must_use]
    pub fn new(id: PeerId, address: impl Into<String>, bump: u64) -> Self {
        Self {
            address: address.into(),
            id,
            bump,
        }
    }

    /// A seed: only its address is known, and its real identity replaces
    /// this one when it answers.
    #[must_use]
    pub fn seed(address: impl Into<String>) -> Self {
        Self::new(PeerId::from(0), address, 0)
    }
}

impl Identity for Member {
    type Addr = String;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> String {
        self.address.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// What peers of the mesh's gossip send each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A foca packet.
    Swim(#[serde(with = "serde_bytes")] Vec<u8>),
    /// "Send me your entry."
    Ask,
    /// The sender's entry.
    Entry(PeerInfo),
}

/// A change to the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer's entry is known for the first time since it came up.
    Joined(PeerId),
    /// A peer's entry changed.
    Updated(PeerId),
    /// A peer was declared down, or left.
    Left(PeerId),
}

/// Broadcast keys: a newer revision of a peer's entry replaces an older
/// one still being disseminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Revision {
    id: PeerId,
    revision: u64,
}

impl Invalidates for Revision {
    fn invalidates(&self, other: &Self) -> bool {
        self.id == other.id && self.revision >= other.revision
    }
}

/// An entry that did not decode.
#[derive(Debug, thiserror::Error)]
#[error("a peer entry did not decode: {0}")]
struct BadEntry(String);

/// Entries received by broadcast, for foca to decide on; shared with the
/// engine, which foca gives no access to its handler.
#[derive(Debug, Clone)]
struct SharedEntries(Arc<Mutex<Entries>>);

impl SharedEntries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Nothing panics while holding it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug)]
struct Entries {
    me: PeerId,
    /// The newest entry seen of each peer, up or not yet known to be up.
    latest: HashMap<PeerId, PeerInfo>,
    /// Whether `latest` took a newer entry since the catalog was last
    /// brought up to date.
    changed: bool,
}

impl Entries {
    /// Keeps `info` if newer than what is held; whether it was.
    fn offer(&mut self, info: PeerInfo) -> bool {
        if info.id == self.me {
            return false;
        }
        let newer = self
            .latest
            .get(&info.id)
            .is_none_or(|held| info.revision > held.revision);
        if newer {
            self.latest.insert(info.id, info);
            self.changed = true;
        }
        newer
    }
}

impl BroadcastHandler<Member> for SharedEntries {
    type Key = Revision;
    type Error = BadEntry;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&Member>,
    ) -> Result<Option<Revision>, BadEntry> {
        let info: PeerInfo =
            statemesh_core::decode::from_bytes(data).map_err(|e| BadEntry(e.to_string()))?;
        let key = Revision {
            id: info.id,
            revision: info.revision,
        };
        let mut entries = self.lock();
        if info.id == entries.me {
            // Our own entry, added to be sent: disseminate it. Our entry
            // coming back from others is old news.
            return Ok(sender.is_none().then_some(key));
        }
        Ok(entries.offer(info).then_some(key))
    }
}

/// Timing of failure detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often each peer probes another.
    pub probe_period: Duration,
    /// How long a probe may take before others are asked to try.
    pub probe_rtt: Duration,
    /// How long a suspect peer has to refute before it is declared down.
    pub suspect_to_down: Duration,
}

impl Default for Timing {
    /// A LAN's: a killed peer leaves every catalog within 4.5 s
    /// ([`Timing::detection_bound`]); each peer sends one probe every
    /// half second.
    fn default() -> Self {
        Self {
            probe_period: Duration::from_millis(500),
            probe_rtt: Duration::from_millis(200),
            suspect_to_down: Duration::from_millis(2000),
        }
    }
}

impl Timing {
    /// The longest a killed peer stays in the others' catalogs: until
    /// some peer probes it (peers probe each other in a shuffled round,
    /// so a few periods at most), the direct and indirect probes fail
    /// (within the period), and the suspicion runs out. Five periods
    /// cover the first two: the simulated five-peer mesh of the tests
    /// took at most 4.15 s of the 4.5 s over 200 random runs.
    #[must_use]
    pub fn detection_bound(&self) -> Duration {
        self.probe_period * 5 + self.suspect_to_down
    }

    fn config(&self) -> Config {
        // Sized for a mesh of about a hundred peers: each broadcast is
        // sent on 8 times by every peer that learns it.
        let mut config = Config::new_lan(NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN));
        config.probe_period = self.probe_period;
        config.probe_rtt = self.probe_rtt;
        config.suspect_to_down_after = self.suspect_to_down;
        // Our messages go over connections, not datagrams: room for
        // several entries at once.
        config.max_packet_size =
            std::num::NonZeroUsize::new(64 * 1024).unwrap_or(config.max_packet_size);
        config
    }
}

/// How long to wait for an entry asked for before asking again.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// How often the catalog is brought up to date when nothing says it
/// changed: the longest a suspicion takes to show in it.
const RECONCILE_EVERY: Duration = Duration::from_millis(100);

/// How often a peer broadcasts its unchanged entry again.
const REFRESH: Duration = Duration::from_secs(30);

type Swim = Foca<Member, PostcardCodec, SmallRng, SharedEntries>;

/// One peer's gossip.
pub struct Gossip {
    foca: Swim,
    entries: SharedEntries,
    runtime: AccumulatingRuntime<Member>,
    timers: BTreeMap<(Instant, u64), Timer<Member>>,
    timer_seq: u64,
    me: PeerInfo,
    catalog: Catalog,
    /// When each peer whose entry is missing was last asked for it.
    asked: HashMap<PeerId, Instant>,
    /// When this peer's entry is next broadcast again, so a peer that
    /// missed an update still converges.
    refresh_at: Option<Instant>,
    outgoing: Vec<(Member, Message)>,
    events: Vec<Event>,
    /// When the catalog was last brought up to date with foca.
    reconciled_at: Option<Instant>,
}

impl std::fmt::Debug for Gossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossip")
            .field("me", &self.me.id)
            .field("peers", &self.catalog.len())
            .finish_non_exhaustive()
    }
}

/// Something went wrong inside the gossip engine.
#[derive(Debug, thiserror::Error)]
#[error("gossip: {0}")]
pub struct GossipError(String);

impl Gossip {
    /// The gossip of the peer `me`, started at `bump` (see
    /// [`Member::new`]), with `seed` for its randomness.
    #[must_use]
    pub fn new(mut me: PeerInfo, bump: u64, timing: Timing, seed: u64) -> Self {
        // Revisions continue from the start counter, so the entry of a
        // restarted process replaces the one it had before.
        me.revision = me.revision.max(bump);
        let member = Member::new(me.id, me.address.clone(), bump);
        let entries = SharedEntries(Arc::new(Mutex::new(Entries {
            me: me.id,
            latest: HashMap::new(),
            changed: false,
        })));
        let foca = Foca::with_custom_broadcast(
            member,
            timing.config(),
            SmallRng::seed_from_u64(seed),
            PostcardCodec,
            entries.clone(),
        );
        Self {
            foca,
            entries,
            runtime: AccumulatingRuntime::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            me,
            catalog: Catalog::new(),
            asked: HashMap::new(),
            refresh_at: None,
            outgoing: Vec::new(),
            events: Vec::new(),
            reconciled_at: None,
        }
    }

    /// This peer as foca knows it (what its messages come from).
    #[must_use]
    pub fn member(&self) -> &Member {
        self.foca.identity()
    }

    /// This peer's entry.
    #[must_use]
    pub fn me(&self) -> &PeerInfo {
        &self.me
    }

    /// The peers known to be up, with their entries.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Asks the peer at `address` to let this one in.
    ///
    /// # Errors
    ///
    /// Foca refused (it never does for an announce to a fresh address).
    pub fn join(&mut self, address: &str, now: Instant) -> Result<(), GossipError> {
        let result = self.foca.announce(Member::seed(address), &mut self.runtime);
        self.settle(now);
        result.map_err(|e| GossipError(e.to_string()))
    }

    /// Replaces this peer's entry (new tags, a stream produced or
    /// dropped) and tells the mesh.
    ///
    /// # Errors
    ///
    /// The entry could not be queued for broadcast.
    pub fn update(&mut self, mut info: PeerInfo, now: Instant) -> Result<(), GossipError> {
        info.id = self.me.id;
        info.revision = self.me.revision + 1;
        self.me = info;
        self.broadcast_me(now)
    }

    fn broadcast_me(&mut self, now: Instant) -> Result<(), GossipError> {
        let bytes = postcard::to_allocvec(&self.me).map_err(|e| GossipError(e.to_string()))?;
        let result = self.foca.add_broadcast(&bytes);
        self.settle(now);
        result.map(|_| ()).map_err(|e| GossipError(e.to_string()))
    }

    /// Takes what `from` sent. A message that does not decode is dropped
    /// with the error (the connection it came on is the caller's to
    /// judge).
    ///
    /// # Errors
    ///
    /// The message, or a foca packet inside it, did not decode.
    pub fn receive(
        &mut self,
        from: &Member,
        message: Message,
        now: Instant,
    ) -> Result<(), GossipError> {
        let result = match message {
            Message::Swim(bytes) => self
                .foca
                .handle_data(&bytes, &mut self.runtime)
                .map_err(|e| GossipError(e.to_string())),
            Message::Ask => {
                self.outgoing
                    .push((from.clone(), Message::Entry(self.me.clone())));
                Ok(())
            }
            Message::Entry(info) => {
                self.entries.lock().offer(info);
                Ok(())
            }
        };
        self.settle(now);
        result
    }

    /// Runs the timers due by `now`; returns when the next one is due.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        let refresh_at = *self.refresh_at.get_or_insert(now + REFRESH);
        if now >= refresh_at {
            self.refresh_at = Some(now + REFRESH);
            // Our own entry always encodes; a full broadcast queue just
            // waits for the next refresh.
            let _ = self.broadcast_me(now);
        }
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            // A timer foca set always applies to its own state; an error
            // here is about a member that is already gone.
            let _ = self.foca.handle_timer(timer, &mut self.runtime);
            self.settle(now);
        }
        let next = self.timers.keys().next().map(|(at, _)| *at);
        Some(next.map_or(refresh_at, |t| t.min(refresh_at)))
    }

    /// Leaves the mesh: tells peers this one is going, so they drop it at
    /// once instead of after the detection time.
    pub fn leave(&mut self, now: Instant) {
        let _ = self.foca.leave_cluster(&mut self.runtime);
        self.settle(now);
    }

    /// What to send whom, in order.
    pub fn take_outgoing(&mut self) -> Vec<(Member, Message)> {
        std::mem::take(&mut self.outgoing)
    }

    /// What changed in the catalog, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Drains what foca asked for, and brings the catalog up to date.
    fn settle(&mut self, now: Instant) {
        while let Some((to, data)) = self.runtime.to_send() {
            self.outgoing.push((to, Message::Swim(data.to_vec())));
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timer_seq += 1;
            self.timers.insert((now + after, self.timer_seq), timer);
        }
        // Membership is read from foca itself (in `reconcile`); a
        // notification only says it changed.
        let mut notified = false;
        while self.runtime.to_notify().is_some() {
            notified = true;
        }
        let changed = std::mem::take(&mut self.entries.lock().changed);
        // Otherwise only a suspicion (foca does not notify one) or a peer
        // still to be asked for its entry could change the catalog: those
        // are seen within `RECONCILE_EVERY`, not at every message.
        let due = self
            .reconciled_at
            .is_none_or(|at| now.duration_since(at) >= RECONCILE_EVERY);
        if notified || changed || due {
            self.reconciled_at = Some(now);
            self.reconcile(now);
        }
    }

    /// Makes the catalog hold exactly the entries of members that are up,
    /// and asks those whose entry is unknown. Runs after every message,
    /// so it copies nothing that did not change (it once rebuilt and
    /// cloned every entry each time: an eighth of a 100-peer mesh's CPU).
    fn reconcile(&mut self, now: Instant) {
        let up: Vec<(&Member, Liveness)> = self
            .foca
            .iter_members()
            .map(|m| {
                let liveness = match m.state() {
                    State::Suspect => Liveness::Suspect,
                    _ => Liveness::Alive,
                };
                (m.id(), liveness)
            })
            .collect();
        let ids: HashSet<PeerId> = up.iter().map(|(m, _)| m.id).collect();
        let mut entries = self.entries.lock();
        let gone: Vec<PeerId> = self
            .catalog
            .iter()
            .map(|e| e.info.id)
            .filter(|id| !ids.contains(id))
            .collect();
        self.asked.retain(|id, _| ids.contains(id));
        for id in gone {
            self.catalog.remove(id);
            entries.latest.remove(&id);
            self.events.push(Event::Left(id));
        }
        for (member, liveness) in up {
            let id = member.id;
            // An entry older than the member's start counter is from an
            // earlier run of the same peer: ask the new run for its own.
            match entries
                .latest
                .get(&id)
                .filter(|info| info.revision >= member.bump)
            {
                Some(info) => {
                    let held = self.catalog.get(id).map(|e| e.info.revision);
                    if held.is_none_or(|revision| revision < info.revision) {
                        let event = match self.catalog.update(info.clone()) {
                            Change::Joined => Some(Event::Joined(id)),
                            Change::Updated => Some(Event::Updated(id)),
                            Change::Unchanged => None,
                        };
                        self.events.extend(event);
                    }
                    self.catalog.set_liveness(id, liveness);
                }
                None => {
                    let due = self
                        .asked
                        .get(&id)
                        .is_none_or(|at| now.duration_since(*at) >= ASK_AGAIN);
                    if due {
                        self.asked.insert(id, now);
                        self.outgoing.push((member.clone(), Message::Ask));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
