//! Power loss, simulated through the storage seam: an in-memory storage keeps
//! a *live* image (what the page cache holds) and a *durable* image (what a
//! sync made permanent) of every file and of the directory. A crash image
//! keeps the durable state plus a random subset of the unsynced writes, cut
//! at sector granularity, which is what a disk may really hold after power
//! loss. Every append acknowledged before the crash must be in it, intact,
//! with no hole; a mixed workload (appends, truncations, purges, votes) must
//! recover to what its acknowledged operations made, give or take the one in
//! flight. A second backend fails `fdatasync` after a countdown: the log
//! must refuse further writes, never claim durability it does not have.

use statemesh_wal::{AppendError, Storage, StorageFile, Wal, WalOptions};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const SECTOR: usize = 512;

#[derive(Clone, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Writes and length changes since the last sync, in order.
    pending: Vec<Pending>,
}

#[derive(Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Default)]
struct Fs {
    inodes: Vec<Inode>,
    live_names: HashMap<String, usize>,
    durable_names: HashMap<String, usize>,
    /// Syncs that succeed before every later one fails.
    syncs_left: Option<u64>,
}

#[derive(Clone, Default)]
struct MemStorage(Arc<Mutex<Fs>>);

struct MemFile {
    fs: Arc<Mutex<Fs>>,
    ino: usize,
}

fn set_len(v: &mut Vec<u8>, len: u64) {
    v.resize(len as usize, 0);
}

fn write(v: &mut Vec<u8>, off: u64, bytes: &[u8]) {
    let end = off as usize + bytes.len();
    if v.len() < end {
        v.resize(end, 0);
    }
    v[off as usize..end].copy_from_slice(bytes);
}

impl Storage for MemStorage {
    type File = MemFile;

    fn open(&self, name: &str, create: bool) -> io::Result<MemFile> {
        let mut fs = self.0.lock().unwrap();
        let ino = match fs.live_names.get(name) {
            Some(&ino) => ino,
            None if create => {
                fs.inodes.push(Inode::default());
                let ino = fs.inodes.len() - 1;
                fs.live_names.insert(name.to_owned(), ino);
                ino
            }
            None => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(MemFile {
            fs: Arc::clone(&self.0),
            ino,
        })
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.0
            .lock()
            .unwrap()
            .live_names
            .remove(name)
            .map(drop)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut fs = self.0.lock().unwrap();
        let ino = fs.live_names.remove(from).ok_or(io::ErrorKind::NotFound)?;
        fs.live_names.insert(to.to_owned(), ino);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.0.lock().unwrap().live_names.keys().cloned().collect())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut fs = self.0.lock().unwrap();
        fs.durable_names = fs.live_names.clone();
        Ok(())
    }

    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from("mem").join(name)
    }
}

impl StorageFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let fs = self.fs.lock().unwrap();
        let live = &fs.inodes[self.ino].live;
        let end = offset as usize + buf.len();
        if end > live.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.copy_from_slice(&live[offset as usize..end]);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut fs = self.fs.lock().unwrap();
        let inode = &mut fs.inodes[self.ino];
        write(&mut inode.live, offset, buf);
        inode.pending.push(Pending::Write(offset, buf.to_vec()));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut fs = self.fs.lock().unwrap();
        if let Some(left) = fs.syncs_left.as_mut() {
            if *left == 0 {
                // As Linux does after a failed fsync: the dirty data is not
                // durable, and the error is reported.
                return Err(io::Error::other("injected fdatasync failure"));
            }
            *left -= 1;
        }
        let inode = &mut fs.inodes[self.ino];
        inode.durable = inode.live.clone();
        inode.pending.clear();
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.fs.lock().unwrap().inodes[self.ino].live.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut fs = self.fs.lock().unwrap();
        let inode = &mut fs.inodes[self.ino];
        set_len(&mut inode.live, len);
        inode.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let mut fs = self.fs.lock().unwrap();
        let inode = &mut fs.inodes[self.ino];
        if (inode.live.len() as u64) < len {
            set_len(&mut inode.live, len);
            inode.pending.push(Pending::SetLen(len));
        }
        Ok(())
    }
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl MemStorage {
    /// What the disk may hold after power is cut now: the durable images
    /// under the durable names, plus, for each unsynced operation, possibly
    /// some of its sectors (in any combination).
    fn crash_image(&self, rng: &mut Rng) -> MemStorage {
        let fs = self.0.lock().unwrap();
        let mut out = Fs::default();
        for (name, &ino) in &fs.durable_names {
            let inode = &fs.inodes[ino];
            let mut image = inode.durable.clone();
            for op in &inode.pending {
                match op {
                    Pending::SetLen(len) => {
                        if rng.next().is_multiple_of(2) {
                            set_len(&mut image, *len);
                        }
                    }
                    Pending::Write(off, bytes) => {
                        for (k, chunk) in bytes.chunks(SECTOR).enumerate() {
                            if rng.next().is_multiple_of(3) {
                                write(&mut image, off + (k * SECTOR) as u64, chunk);
                            }
                        }
                    }
                }
            }
            out.inodes.push(Inode {
                live: image.clone(),
                durable: image,
                pending: Vec::new(),
            });
            out.live_names.insert(name.clone(), out.inodes.len() - 1);
        }
        out.durable_names = out.live_names.clone();
        MemStorage(Arc::new(Mutex::new(out)))
    }
}

fn payload(t: u64, k: u64) -> Vec<u8> {
    let len = 1 + ((t * 131 + k * 71) % 1500) as usize;
    (0..len)
        .map(|i| (t as usize * 7 + k as usize * 13 + i) as u8)
        .collect()
}

fn opts() -> WalOptions {
    WalOptions::new()
        .segment_size(16 << 10)
        .max_batch_bytes(8 << 10)
}

#[test]
fn acknowledged_appends_survive_power_loss() {
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let storage = MemStorage::default();
        let wal = Arc::new(Wal::open_with(storage.clone(), opts()).unwrap());
        let acked = Arc::new(Mutex::new(Vec::new()));
        let appenders: Vec<_> = (0..4u64)
            .map(|t| {
                let wal = Arc::clone(&wal);
                let acked = Arc::clone(&acked);
                std::thread::spawn(move || {
                    for k in 0..200 {
                        let p = payload(t, k);
                        let Ok(a) = wal.append(p.clone()) else { return };
                        if a.wait().is_err() {
                            return;
                        }
                        acked.lock().unwrap().push((a.index(), p));
                    }
                })
            })
            .collect();
        // Cut the power at a random moment while appends are in flight.
        std::thread::sleep(std::time::Duration::from_micros(rng.next() % 20_000));
        let before: Vec<_> = acked.lock().unwrap().clone();
        let image = storage.crash_image(&mut rng);
        for a in appenders {
            a.join().unwrap();
        }
        drop(wal);

        let wal = Wal::open_with(image, opts())
            .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
        let last = wal.last_index().unwrap_or(0);
        for (index, p) in &before {
            assert!(
                *index <= last,
                "seed {seed}: acknowledged {index} lost (log ends at {last})"
            );
            assert_eq!(
                wal.get(*index).unwrap().as_ref(),
                Some(p),
                "seed {seed}: entry {index}"
            );
        }
        for i in wal.first_index()..=last {
            assert!(wal.get(i).unwrap().is_some(), "seed {seed}: hole at {i}");
        }
        // The recovered log takes appends and survives a clean reopen.
        wal.append(b"after".to_vec()).unwrap().wait().unwrap();
    }
}

/// One operation of the mixed workload.
#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Vec<u8>>),
    Truncate(u64),
    Purge(u64),
    Vote(Vec<u8>),
}

/// What every acknowledged operation has made of the log.
#[derive(Clone, Debug, Default)]
struct Model {
    entries: std::collections::BTreeMap<u64, Vec<u8>>,
    first: u64,
    vote: Option<Vec<u8>>,
}

impl Model {
    /// Applies `op`, which ran when the log's next index was `next`.
    fn apply(&mut self, op: &Op, next: u64) {
        match op {
            Op::Append(ps) => {
                for (i, p) in (next..).zip(ps) {
                    self.entries.insert(i, p.clone());
                }
            }
            Op::Truncate(from) => {
                self.entries.split_off(from);
            }
            Op::Purge(upto) => {
                self.entries = self.entries.split_off(&(upto + 1));
                self.first = self.first.max(upto + 1);
            }
            Op::Vote(v) => self.vote = Some(v.clone()),
        }
    }
}

/// Appends, truncations (which cut behind an End marker), purges (which
/// change the metadata, then remove segments) and votes (both metadata
/// slots), one at a time, with the power cut at a random moment: recovery
/// must open every crash image, and what it holds must be what the
/// acknowledged operations made, plus or minus the one in flight.
#[test]
fn every_operation_survives_power_loss() {
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let storage = MemStorage::default();
        let state = Arc::new(Mutex::new((
            Model {
                first: 1,
                ..Model::default()
            },
            None::<Op>,
        )));
        let wal = Wal::open_with(storage.clone(), opts()).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            let mut rng = Rng(seed ^ 0xDEAD_BEEF);
            std::thread::spawn(move || {
                for k in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let next = wal.next_index();
                    let op = match rng.next() % 20 {
                        0..=13 => {
                            Op::Append((0..1 + rng.next() % 3).map(|j| payload(k, j)).collect())
                        }
                        14 | 15 if next > wal.first_index() => {
                            Op::Truncate(next - 1 - rng.next() % (next - wal.first_index()).min(8))
                        }
                        16 if next > wal.first_index() + 4 => {
                            Op::Purge(wal.first_index() + rng.next() % 4)
                        }
                        _ => Op::Vote(format!("vote {k}").into_bytes()),
                    };
                    state.lock().unwrap().1 = Some(op.clone());
                    let done = match &op {
                        Op::Append(ps) => wal
                            .append_batch(ps.clone())
                            .map_err(|e| e.to_string())
                            .and_then(|a| a.wait().map_err(|e| e.to_string())),
                        Op::Truncate(from) => wal.truncate(*from).map_err(|e| e.to_string()),
                        Op::Purge(upto) => {
                            wal.purge(*upto, b"p".to_vec()).map_err(|e| e.to_string())
                        }
                        Op::Vote(v) => wal.save_vote(v.clone()).map_err(|e| e.to_string()),
                    };
                    done.unwrap();
                    let mut s = state.lock().unwrap();
                    s.0.apply(&op, next);
                    s.1 = None;
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_micros(1000 + rng.next() % 20_000));
        let (image, (model, in_flight)) = {
            let s = state.lock().unwrap();
            (storage.crash_image(&mut rng), s.clone())
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        worker.join().unwrap();

        let wal = Wal::open_with(image, opts())
            .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e} ({in_flight:?})"));
        let what = format!("seed {seed}, in flight {in_flight:?}");
        let vote = wal.meta().vote;
        match &in_flight {
            Some(Op::Vote(v)) => assert!(vote == model.vote || vote.as_ref() == Some(v), "{what}"),
            _ => assert_eq!(vote, model.vote, "{what}"),
        }
        let first = wal.first_index();
        match &in_flight {
            Some(Op::Purge(upto)) => assert!(first == model.first || first == upto + 1, "{what}"),
            _ => assert_eq!(first, model.first, "{what}"),
        }
        let held: Vec<_> = wal.iter(..).map(|r| r.unwrap()).collect();
        let acked: Vec<_> = model
            .entries
            .range(first..)
            .map(|(i, p)| (*i, p.clone()))
            .collect();
        match &in_flight {
            // Any prefix of the old log at least `from` long: the removal
            // of later segments and the cut had not all happened.
            Some(Op::Truncate(from)) => {
                let kept = (*from - first) as usize;
                assert!(held.len() >= kept.min(acked.len()), "{what}");
                assert_eq!(held[..], acked[..held.len().min(acked.len())], "{what}");
                assert!(held.len() <= acked.len(), "{what}");
            }
            // The acknowledged entries, then possibly some new ones.
            Some(Op::Append(ps)) => {
                assert_eq!(held[..acked.len()], acked[..], "{what}");
                let extra: Vec<_> = held[acked.len()..].iter().map(|(_, p)| p.clone()).collect();
                assert!(
                    extra.len() <= ps.len() && extra[..] == ps[..extra.len()],
                    "{what}"
                );
            }
            _ => assert_eq!(held, acked, "{what}"),
        }
        // The recovered log takes appends and reopens.
        wal.append(b"after".to_vec()).unwrap().wait().unwrap();
    }
}

#[test]
fn a_failed_sync_stops_the_log_and_nothing_false_is_acknowledged() {
    let storage = MemStorage::default();
    let wal = Wal::open_with(storage.clone(), opts()).unwrap();
    for k in 0..20 {
        wal.append(payload(0, k)).unwrap().wait().unwrap();
    }
    // From now on every fdatasync fails.
    storage.0.lock().unwrap().syncs_left = Some(0);
    let err = wal.append(payload(0, 20)).unwrap().wait().unwrap_err();
    assert!(matches!(err, AppendError::Failed(_)), "{err}");
    // Later appends are refused at once, and so are other writes.
    assert!(matches!(
        wal.append(b"x".to_vec()),
        Err(AppendError::Failed(_))
    ));
    assert!(wal.save_vote(b"v".to_vec()).is_err());
    drop(wal);
    // After a reopen (the "disk" works again) the acknowledged entries are there.
    storage.0.lock().unwrap().syncs_left = None;
    let image = storage.crash_image(&mut Rng(7));
    let wal = Wal::open_with(image, opts()).unwrap();
    let last = wal.last_index().unwrap();
    assert!(last >= 20);
    for k in 0..20 {
        assert_eq!(wal.get(k + 1).unwrap(), Some(payload(0, k)));
    }
}
