//! Opening a log: read everything, decide what it holds, and only then
//! change anything on disk.
//!
//! [`decide`] reads the metadata and every segment and returns a [`Plan`] or
//! an error; it writes nothing, so a refused open leaves every file as it
//! was. [`apply`] carries the plan out: it removes leftovers, cuts a torn
//! end (or, with repair, damage), and makes the kept data durable.
//!
//! The cases, one at a time (`FORMAT.md` has the full table):
//!
//! * **Torn end.** Each write batch ends with a marker that records how far
//!   the segment was durable before the batch was written. Damage in the
//!   last segment after every such claim can be a crash's unfinished write:
//!   the log is cut there. Damage before a claim is damage to durable data:
//!   `Corrupt`, whatever the batch size and however far from the end.
//! * **Damage in a sealed segment.** A segment is synced before the next one
//!   is started, so everything in it was durable: damage followed by any
//!   valid item, or a segment that does not end where the next one starts,
//!   is `Corrupt`. Bytes after its last item are not data and are ignored.
//! * **Missing files.** The metadata records where the log starts and its
//!   newest segment; a missing `META` beside segments, a missing first or
//!   newest segment, and a hole between segments are errors naming the file.
//! * **Interrupted purge or creation.** Segments entirely below the purged
//!   id are removed (the metadata was updated first); `*.tmp` files are
//!   unfinished creations and are removed.
//! * **Committed entries missing.** If the metadata's committed index is
//!   past the end of the log as it would be kept, the open fails with `Lost`
//!   before anything is cut.

pub(crate) mod read;

use self::read::{Scanned, evidence, io_error, load_meta, read_segment};
use crate::error::OpenError;
use crate::meta::{Layout, Loaded, META_FILE, Meta, MetaFile};
use crate::options::WalOptions;
use crate::record::MARKER_LEN;
use crate::scan::{After, Stop};
use crate::segment::{self, Segment, cut, fill_zeros};
use crate::storage::{Storage, StorageFile};
use std::io;
use std::path::PathBuf;

/// What opening a log found and did about it ([`crate::Wal::recovery`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// The end of the last segment that a crash left unfinished, cut off.
    /// Under [`crate::SyncPolicy::Always`] nothing in it had been
    /// acknowledged.
    pub torn: Option<Cut>,
    /// What [`WalOptions::repair`] dropped.
    pub repaired: Option<Cut>,
    /// Files removed: unfinished creations (`*.tmp`) and segments that a
    /// purge had finished with.
    pub removed: Vec<PathBuf>,
}

impl Recovery {
    /// Whether the open dropped no entry (it may still have removed
    /// leftover files or cut a torn end that held no complete entry).
    #[must_use]
    pub fn dropped_nothing(&self) -> bool {
        [&self.torn, &self.repaired]
            .into_iter()
            .flatten()
            .all(|c| c.to.is_none())
    }
}

/// A place where recovery cut the log, and what it dropped there.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cut {
    /// The segment cut.
    pub path: PathBuf,
    /// The offset of the first byte no longer part of the log.
    pub offset: u64,
    /// The first index no longer in the log (the next append gets it).
    pub from: u64,
    /// The highest index that the records, markers and later segments
    /// found on disk past the cut show the log held: entries `from..=to`
    /// were dropped. `None` when nothing past the cut shows an entry (a torn
    /// end whose records never arrived whole, or only zeros).
    pub to: Option<u64>,
}

/// A cut to make in the last kept segment, at the end of its chain of
/// valid items.
struct CutPlan {
    /// Bytes up to here may be non-zero and must be zeroed.
    dead_end: u64,
    /// The file is shorter than its capacity and is first extended.
    extend: bool,
}

/// Everything [`apply`] is to do.
pub(crate) struct Plan<F> {
    /// `None`: a new log, whose metadata is created.
    meta: Option<(F, Loaded)>,
    /// The layout to store before anything is removed, if it differs.
    layout: Layout,
    store_meta: bool,
    /// Files to remove, in this order.
    remove: Vec<String>,
    kept: Vec<Scanned<F>>,
    cut: Option<CutPlan>,
    first: u64,
    next: u64,
    report: Recovery,
}

/// What recovery hands to the log.
pub(crate) struct Recovered<F> {
    pub(crate) segments: Vec<Segment<F>>,
    pub(crate) first: u64,
    pub(crate) next: u64,
    pub(crate) meta: MetaFile<F>,
    pub(crate) report: Recovery,
    /// The last segment holds records that no marker vouches for yet.
    pub(crate) unvouched: bool,
}

/// Reads the log and decides what opening it means. Changes nothing.
pub(crate) fn decide<S: Storage>(
    storage: &S,
    options: &WalOptions,
) -> Result<Plan<S::File>, OpenError> {
    let dir_err = io_error(storage, "");
    let mut remove = Vec::new();
    let mut firsts = Vec::new();
    for name in storage.list().map_err(&dir_err)? {
        if name.ends_with(".tmp") {
            remove.push(name);
        } else if let Some(first) = segment::parse_name(&name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    remove.sort_unstable();

    let meta_path = storage.path_of(META_FILE);
    let meta = match storage.open(META_FILE, false) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !firsts.is_empty() {
                return Err(OpenError::MissingMeta { path: meta_path });
            }
            None
        }
        Err(e) => return Err(io_error(storage, META_FILE)(e)),
        Ok(file) => {
            let loaded = load_meta(&file, meta_path)?;
            Some((file, loaded))
        }
    };
    let (stored, layout) = meta
        .as_ref()
        .map_or((Meta::default(), Layout::default()), |(_, l)| {
            (l.meta.clone(), l.layout)
        });

    // The newest segment the metadata knows of must be there.
    let newest_on_disk = firsts.last().copied();
    let missing_newest = layout
        .last_segment
        .filter(|&l| newest_on_disk.is_none_or(|n| n < l));

    let purged_next = stored.purged.as_ref().map(|p| p.0.saturating_add(1));
    // Segments wholly before the purge point: an interrupted purge.
    if let Some(keep_from) = purged_next {
        while firsts.len() >= 2 && firsts[1] <= keep_from {
            remove.push(segment::file_name(firsts.remove(0)));
        }
    }

    let mut kept: Vec<Scanned<S::File>> = Vec::new();
    // Set when repair cuts the last kept segment at damage.
    let mut repair_extend = None;
    let mut report = Recovery::default();
    for (pos, &first) in firsts.iter().enumerate() {
        let following = firsts.get(pos + 1).copied();
        let path = storage.path_of(&segment::file_name(first));
        // Where the log before this segment ends.
        if let Some(prev) = kept.last() {
            let expected = prev.scan.next;
            if first != expected {
                let error = if first > expected {
                    OpenError::MissingSegment {
                        path: storage.path_of(&segment::file_name(expected)),
                        expected,
                        found: Some(first),
                    }
                } else {
                    OpenError::CorruptHeader {
                        path,
                        detail: format!(
                            "the segment starts at {first}, but the one before it holds entries up to {}",
                            expected - 1
                        ),
                    }
                };
                if !options.repair {
                    return Err(error);
                }
                let to = firsts[pos..]
                    .iter()
                    .filter_map(|&f| evidence(storage, f))
                    .max();
                report.repaired = Some(Cut {
                    path: storage.path_of(&prev.name),
                    offset: prev.scan.end,
                    from: expected,
                    to: to.filter(|&t| t >= expected),
                });
                remove.extend(firsts[pos..].iter().rev().map(|&f| segment::file_name(f)));
                break;
            }
        }
        let s = read_segment(storage, first)?;
        let short = s.len < s.capacity;
        let damaged = match s.scan.stop {
            _ if short => true,
            Stop::Clean | Stop::End => false,
            // A sealed segment was synced whole: any valid item after the
            // damage, or an end short of the next segment, means lost data.
            Stop::Garbage(after) if following.is_some() => {
                after.items_end.is_some() || following != Some(s.scan.next)
            }
            // The last segment: damage before what a marker vouches for.
            Stop::Garbage(after) => after.durable.is_some_and(|d| d > s.scan.end),
        };
        let after = match s.scan.stop {
            Stop::Garbage(a) => a,
            Stop::Clean | Stop::End => After::default(),
        };
        if damaged {
            if !options.repair {
                return Err(if short {
                    OpenError::Truncated {
                        path,
                        len: s.len,
                        expected: s.capacity,
                    }
                } else {
                    OpenError::Corrupt {
                        path,
                        offset: s.scan.end,
                        index: s.scan.next,
                    }
                });
            }
            let later = firsts[pos + 1..]
                .iter()
                .filter_map(|&f| evidence(storage, f))
                .max();
            report.repaired = Some(Cut {
                path,
                offset: s.scan.end,
                from: s.scan.next,
                to: after.last_index.max(later).filter(|&t| t >= s.scan.next),
            });
            remove.extend(
                firsts[pos + 1..]
                    .iter()
                    .rev()
                    .map(|&f| segment::file_name(f)),
            );
            repair_extend = Some(short);
            kept.push(s);
            break;
        }
        if following.is_none() && matches!(s.scan.stop, Stop::Garbage(_)) {
            report.torn = Some(Cut {
                path,
                offset: s.scan.end,
                from: s.scan.next,
                to: after.last_index,
            });
        }
        kept.push(s);
    }

    if let Some(l) = missing_newest {
        let error = OpenError::MissingSegment {
            path: storage.path_of(&segment::file_name(l)),
            expected: l,
            found: None,
        };
        if !options.repair {
            return Err(error);
        }
        if report.repaired.is_none()
            && let Some(s) = kept.last()
        {
            report.repaired = Some(Cut {
                path: storage.path_of(&s.name),
                offset: s.scan.end,
                from: s.scan.next,
                to: l.checked_sub(1).filter(|&t| t >= s.scan.next),
            });
        }
    }

    // The log must start where the metadata says: at the purge point, or
    // where its first segment was created.
    if let (Some(s), Some(want)) = (kept.first(), purged_next.or(layout.origin))
        && s.first > want
    {
        return Err(OpenError::MissingSegment {
            path: if purged_next.is_some() {
                storage.path_of("")
            } else {
                storage.path_of(&segment::file_name(want))
            },
            expected: want,
            found: Some(s.first),
        });
    }

    let (first, mut next) = match kept.first() {
        Some(s) => {
            let first = purged_next.map_or(s.first, |p| p.max(s.first));
            let last = kept.last().map_or(first, |s| s.scan.next);
            (first, last.max(first))
        }
        None => {
            let start = purged_next.unwrap_or(options.first_index);
            (start, start)
        }
    };
    // An empty last segment that lies wholly before the purge point would
    // make the next append land at the wrong place; a lone segment holding
    // only purged entries is finished with. Both go.
    let drop_last = kept.last().is_some_and(|s| {
        let empty = s.scan.next == s.first && s.first != next;
        let only_purged = kept.len() == 1 && s.scan.next < first;
        empty || only_purged
    });
    if drop_last && let Some(s) = kept.pop() {
        remove.push(s.name);
        repair_extend = None;
        if kept.is_empty() {
            next = first;
        }
    }
    // The last kept segment is where appends go: whatever follows its chain
    // is zeroed behind an End marker (a torn end, damage that repair cut, an
    // earlier cut that had not finished zeroing).
    let cut = kept.last().and_then(|s| {
        let dead_end = s.scan.nonzero_end;
        match s.scan.stop {
            _ if repair_extend.is_some() => Some(CutPlan {
                dead_end: dead_end.max(s.scan.end),
                extend: repair_extend == Some(true),
            }),
            Stop::Garbage(_) => Some(CutPlan {
                dead_end,
                extend: false,
            }),
            Stop::End if dead_end > s.scan.end + MARKER_LEN as u64 => Some(CutPlan {
                dead_end,
                extend: false,
            }),
            Stop::Clean | Stop::End => None,
        }
    });

    if let Some((committed, _)) = &stored.committed
        && *committed >= next
        && purged_next.is_none_or(|p| *committed >= p)
    {
        return Err(OpenError::Lost {
            path: storage.path_of(""),
            committed: *committed,
            last: next.checked_sub(1).filter(|&l| l >= first),
        });
    }

    let new_layout = Layout {
        origin: layout.origin.or(kept.first().map(|s| s.first)),
        last_segment: kept.last().map(|s| s.first),
    };
    let store_meta = meta.as_ref().is_some_and(|(_, l)| !l.whole) || new_layout != layout;
    report.removed = remove.iter().map(|n| storage.path_of(n)).collect();
    Ok(Plan {
        meta,
        layout: new_layout,
        store_meta,
        remove,
        kept,
        cut,
        first,
        next,
        report,
    })
}

/// Carries out `plan`.
pub(crate) fn apply<S: Storage>(
    storage: &S,
    plan: Plan<S::File>,
) -> Result<Recovered<S::File>, OpenError> {
    let Plan {
        meta,
        layout,
        store_meta,
        remove,
        mut kept,
        cut: cut_plan,
        first,
        next,
        report,
    } = plan;
    let meta_err = io_error(storage, META_FILE);
    let mut removed_any = false;
    // Leftover temporary files first: `META.tmp` may be among them.
    for name in remove.iter().filter(|n| n.ends_with(".tmp")) {
        storage.remove(name).map_err(io_error(storage, name))?;
        removed_any = true;
    }
    let mut meta = match meta {
        None => MetaFile::create(storage).map_err(&meta_err)?,
        Some((file, loaded)) => MetaFile::loaded(file, loaded),
    };
    // Before any segment goes, so the metadata never names a removed one.
    if store_meta {
        let current = meta.get().clone();
        meta.store(current, layout).map_err(&meta_err)?;
    }
    for name in remove.iter().filter(|n| !n.ends_with(".tmp")) {
        storage.remove(name).map_err(io_error(storage, name))?;
        removed_any = true;
    }
    if removed_any {
        storage.sync_dir().map_err(io_error(storage, ""))?;
    }
    let mut unvouched = false;
    if let Some(s) = kept.last_mut() {
        let err = io_error(storage, &s.name);
        if let Some(c) = &cut_plan {
            if c.extend {
                s.file.allocate(s.capacity).map_err(&err)?;
                fill_zeros(&s.file, s.len, s.capacity).map_err(&err)?;
            }
            let (at, next) = (s.scan.end, s.scan.next);
            cut(&s.file, s.salt, at, next, c.dead_end, s.capacity).map_err(&err)?;
            s.scan.nonzero_end = (at + MARKER_LEN as u64).min(s.capacity).max(at);
            // The End marker vouches for everything before it.
            s.scan.durable = at;
        } else {
            // What the page cache held after a process crash is durable
            // from here on, so the next marker may vouch for it.
            s.file.sync_data().map_err(&err)?;
        }
        unvouched = s.scan.records_end.min(s.scan.end) > s.scan.durable;
    }
    let mut segments = Vec::with_capacity(kept.len());
    for s in kept {
        let err = io_error(storage, &s.name);
        segments.push(
            Segment::recovered(
                s.first,
                s.name,
                s.file,
                s.scan.offsets,
                (s.scan.end, s.scan.nonzero_end),
                s.capacity,
                s.salt,
            )
            .map_err(err)?,
        );
    }
    Ok(Recovered {
        segments,
        first,
        next,
        meta,
        report,
        unvouched,
    })
}
