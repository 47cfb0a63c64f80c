//! Model-based property test: random sequences of insert, clone, load,
//! write (exclusive and copy-on-write), persist, register and drop, run on a
//! pool small enough to evict all the time, against a plain map.

mod common;

use common::{files_under, object};
use proptest::prelude::*;
use statemesh_cache::{CacheError, FsStore, Handle, Key, Location, Pool, Raw};
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    Insert { seed: u64, len: usize },
    Clone(usize),
    Load(usize),
    LoadMut { at: usize, byte: u8 },
    MakeMut { at: usize, byte: u8 },
    Persist { at: usize, location: usize },
    Register { location: usize, pick: usize },
    Drop(usize),
    WaitIdle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u64>(), 0usize..3000).prop_map(|(seed, len)| Op::Insert { seed, len }),
        1 => any::<usize>().prop_map(Op::Clone),
        4 => any::<usize>().prop_map(Op::Load),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Op::LoadMut { at, byte }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Op::MakeMut { at, byte }),
        2 => (any::<usize>(), 0usize..2).prop_map(|(at, location)| Op::Persist { at, location }),
        1 => (0usize..2, any::<usize>()).prop_map(|(location, pick)| Op::Register { location, pick }),
        2 => any::<usize>().prop_map(Op::Drop),
        1 => Just(Op::WaitIdle),
    ]
}

/// The model: each handle names an object; objects hold their bytes;
/// persisted blobs never change.
#[derive(Default)]
struct Model {
    handles: Vec<usize>,
    objects: HashMap<usize, Vec<u8>>,
    next: usize,
    persisted: Vec<HashMap<Key, Vec<u8>>>,
}

impl Model {
    fn sharers(&self, object: usize) -> usize {
        self.handles.iter().filter(|&&o| o == object).count()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let locations = [Location::new("one").unwrap(), Location::new("two").unwrap()];
    let pool: Pool<Vec<u8>> =
        Pool::new(FsStore::open(dir.path()).unwrap(), Raw, 4000, Vec::len).unwrap();
    let mut handles: Vec<Handle<Vec<u8>>> = Vec::new();
    let mut model = Model {
        persisted: vec![HashMap::new(), HashMap::new()],
        ..Model::default()
    };
    for op in ops {
        let n = handles.len();
        match op {
            Op::Insert { seed, len } => {
                let bytes = object(seed, len);
                handles.push(pool.insert(bytes.clone()).unwrap());
                model.objects.insert(model.next, bytes);
                model.handles.push(model.next);
                model.next += 1;
            }
            Op::Clone(at) if n > 0 => {
                handles.push(handles[at % n].clone());
                model.handles.push(model.handles[at % n]);
            }
            Op::Load(at) if n > 0 => {
                let got = handles[at % n].blocking_load().unwrap();
                prop_assert_eq!(&*got, &model.objects[&model.handles[at % n]]);
            }
            Op::LoadMut { at, byte } if n > 0 => {
                let i = at % n;
                let object = model.handles[i];
                let before = handles[i].key();
                let result = handles[i].blocking_load_mut().map(|mut g| g.push(byte));
                if model.sharers(object) > 1 {
                    let shared = matches!(result, Err(CacheError::Shared { .. }));
                    prop_assert!(shared, "exclusive access to a shared object");
                    prop_assert_eq!(handles[i].key(), before);
                } else {
                    result.unwrap();
                    model.objects.get_mut(&object).unwrap().push(byte);
                    prop_assert_ne!(handles[i].key(), before);
                }
            }
            Op::MakeMut { at, byte } if n > 0 => {
                let i = at % n;
                let object = model.handles[i];
                let before = handles[i].key();
                handles[i].blocking_make_mut().unwrap().push(byte);
                prop_assert_ne!(handles[i].key(), before);
                let mut bytes = model.objects[&object].clone();
                bytes.push(byte);
                if model.sharers(object) > 1 {
                    model.objects.insert(model.next, bytes);
                    model.handles[i] = model.next;
                    model.next += 1;
                } else {
                    model.objects.insert(object, bytes);
                }
            }
            Op::Persist { at, location } if n > 0 => {
                let i = at % n;
                handles[i].blocking_persist(&locations[location]).unwrap();
                let bytes = model.objects[&model.handles[i]].clone();
                let old = model.persisted[location].insert(handles[i].key(), bytes.clone());
                // A key's bytes never change.
                prop_assert!(old.is_none_or(|o| o == bytes));
            }
            Op::Register { location, pick } if !model.persisted[location].is_empty() => {
                let mut keys: Vec<_> = model.persisted[location].keys().copied().collect();
                keys.sort();
                let key = keys[pick % keys.len()];
                let h = pool.blocking_register(&locations[location], key).unwrap();
                prop_assert_eq!(h.key(), key);
                // The pool's live object of that key, if any, is shared.
                let live = handles.iter().position(|x| x.key() == key);
                let object = match live {
                    Some(j) => model.handles[j],
                    None => {
                        model
                            .objects
                            .insert(model.next, model.persisted[location][&key].clone());
                        model.next += 1;
                        model.next - 1
                    }
                };
                handles.push(h);
                model.handles.push(object);
            }
            Op::Drop(at) if n > 0 => {
                handles.swap_remove(at % n);
                let object = model.handles.swap_remove(at % n);
                if model.sharers(object) == 0 {
                    model.objects.remove(&object);
                }
            }
            Op::WaitIdle => {
                pool.wait_finished();
                prop_assert!(pool.stats().resident_bytes <= 4000 || max_len(&model) > 4000);
            }
            _ => {}
        }
        prop_assert_eq!(pool.stats().objects, model.objects.len());
    }
    for (h, object) in handles.iter().zip(&model.handles) {
        prop_assert_eq!(&*h.blocking_load().unwrap(), &model.objects[object]);
    }
    for (location, blobs) in locations.iter().zip(&model.persisted) {
        let listed = pool.list(location).unwrap();
        prop_assert_eq!(listed.keys.len(), blobs.len());
        for (key, bytes) in blobs {
            let h = pool.blocking_register(location, *key).unwrap();
            prop_assert_eq!(&*h.blocking_load().unwrap(), bytes);
        }
    }
    drop(handles);
    pool.wait_finished();
    prop_assert_eq!(pool.stats().objects, 0);
    prop_assert_eq!(pool.stats().resident_bytes, 0);
    prop_assert!(files_under(&dir.path().join("spill")).is_empty());
    Ok(())
}

fn max_len(model: &Model) -> usize {
    model.objects.values().map(Vec::len).max().unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_pool_behaves_like_a_map(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
