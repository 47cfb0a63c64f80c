//! A producer's replay ring kept on disk, so that a producer that restarts
//! (after a crash or a kill) keeps its numbering and what it buffered, and
//! its consumers resume with no gap.
//!
//! ```text
//! DIR/epoch   the producer's epoch: 16 hexadecimal digits and a newline
//! DIR/log/    a statemesh-wal log: entry i is item i, as StoredItem
//! ```
//!
//! An item is sent to consumers only once the log has it (under its sync
//! policy), so no consumer ever holds an item the producer could lose in a
//! crash and then number again. The log is purged from the front as the
//! ring drops items.

use super::error::MeshError;
use crate::stream::{Ring, RingLimits};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use statemesh_wal::{SyncPolicy, Wal, WalOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// How far the ring's front may run ahead of the log's before the log is
/// purged (a purge rewrites the log's metadata: not for every item).
const PURGE_EVERY: u64 = 256;

/// One item in the log: its key and the delivery consumers are sent.
#[derive(Serialize, Deserialize)]
struct StoredItem {
    key: Option<String>,
    #[serde(with = "serde_bytes")]
    delivery: Vec<u8>,
}

/// The log behind a durable producer's ring.
pub(crate) struct DurableLog {
    wal: Wal,
    purged_upto: AtomicU64,
}

impl DurableLog {
    /// Opens (or makes) the producer's directory and rebuilds its ring:
    /// the same epoch, the items still in the log, and the numbering after
    /// them.
    pub(crate) fn open(
        dir: &Path,
        limits: RingLimits,
        sync: SyncPolicy,
    ) -> Result<(Self, Ring), MeshError> {
        let io = |what: &str, e: &dyn std::fmt::Display| {
            MeshError::Config(format!(
                "durable producer at {}: {what}: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory", &e))?;
        let epoch = epoch(dir).map_err(|e| io("epoch", &e))?;
        let wal =
            Wal::open(dir.join("log"), WalOptions::new().sync(sync)).map_err(|e| io("log", &e))?;
        let mut ring = Ring::starting_at(epoch, wal.first_index(), limits);
        for entry in wal.iter(..) {
            let (index, bytes) = entry.map_err(|e| io("log", &e))?;
            let item: StoredItem = statemesh_core::decode::from_bytes(&bytes)
                .map_err(|e| io("an item in the log", &e))?;
            let seq = ring.push(item.key, Bytes::from(item.delivery));
            if seq != index {
                return Err(io("the log", &format!("item {index} where {seq} was due")));
            }
        }
        let purged_upto = wal.first_index().saturating_sub(1);
        Ok((
            Self {
                wal,
                purged_upto: AtomicU64::new(purged_upto),
            },
            ring,
        ))
    }

    /// Appends item `seq` (already in the ring, at the same number); calls
    /// `written` once the log has it. Called with the ring locked, so that
    /// the log's order is the ring's.
    pub(crate) fn append(
        &self,
        seq: u64,
        key: Option<String>,
        delivery: &Bytes,
        written: impl FnOnce() + Send + 'static,
    ) -> Result<(), MeshError> {
        let item = StoredItem {
            key,
            delivery: delivery.to_vec(),
        };
        // Strings and bytes always encode.
        let bytes = postcard::to_allocvec(&item).unwrap_or_default();
        let append = self.wal.append_at(seq, vec![bytes]).map_err(|e| {
            MeshError::Config(format!("durable producer: the log refused item {seq}: {e}"))
        })?;
        append.on_durable(move |outcome| {
            if outcome.is_ok() {
                written();
            } else {
                tracing::error!(
                    "durable producer: the log failed to write item {seq}: it will not be sent"
                );
            }
        });
        Ok(())
    }

    /// Drops the log's items before `first` (the ring's front), now and
    /// then.
    pub(crate) fn purge_before(&self, first: u64) {
        let purged = self.purged_upto.load(Ordering::Relaxed);
        let upto = first.saturating_sub(1);
        if upto >= purged + PURGE_EVERY && upto >= self.wal.first_index() {
            self.purged_upto.store(upto, Ordering::Relaxed);
            if let Err(e) = self.wal.purge_async(upto, Vec::new()) {
                tracing::warn!(error = %e, "durable producer: the log could not be purged");
            }
        }
    }
}

/// The producer's epoch: read from `DIR/epoch`, or drawn and written there
/// (through a temporary file, synced, then renamed) on the first start.
fn epoch(dir: &Path) -> std::io::Result<u64> {
    let path = dir.join("epoch");
    match std::fs::read_to_string(&path) {
        Ok(text) => u64::from_str_radix(text.trim(), 16).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} does not hold 16 hexadecimal digits", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
            let epoch = u64::from_le_bytes(bytes);
            let temporary = dir.join("epoch.new");
            {
                use std::io::Write;
                let mut file = std::fs::File::create(&temporary)?;
                writeln!(file, "{epoch:016x}")?;
                file.sync_all()?;
            }
            std::fs::rename(&temporary, &path)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(epoch)
        }
        Err(e) => Err(e),
    }
}
