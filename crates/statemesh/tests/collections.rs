//! Every collection operation against a `std` model: random operations go
//! to random replicas of a 3-node cluster (followers forward to the
//! leader), each outcome is compared with the model's, and at the end every
//! replica, the learner included, holds the model's state.

mod common;

use common::memory::open_nodes;
use proptest::prelude::*;
use statemesh::collections::{Entry, OutOfRange, PriorityQueueState};
use statemesh::{MemoryNetwork, Node};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::{Bound, RangeBounds};

struct Cluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn new(count: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let net = MemoryNetwork::new();
        let ids: Vec<u64> = (1..=count).collect();
        let nodes = open_nodes(&net, dir.path(), &ids);
        Self { nodes, _dir: dir }
    }

    async fn shutdown(self) {
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}

const VOTERS: &[u64] = &[1, 2, 3];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[derive(Debug, Clone)]
enum MapOp {
    Insert(u8, u32),
    Remove(u8),
    RemoveMany(Vec<u8>),
    Extend(Vec<(u8, u32)>),
    CompareExchange(u8, Option<u32>, Option<u32>),
    Clear,
}

fn map_op() -> impl Strategy<Value = MapOp> {
    let k = 0u8..6;
    let v = 0u32..4;
    prop_oneof![
        4 => (k.clone(), v.clone()).prop_map(|(k, v)| MapOp::Insert(k, v)),
        2 => k.clone().prop_map(MapOp::Remove),
        1 => prop::collection::vec(k.clone(), 0..4).prop_map(MapOp::RemoveMany),
        1 => prop::collection::vec((k.clone(), v.clone()), 0..4).prop_map(MapOp::Extend),
        2 => (k, prop::option::of(v.clone()), prop::option::of(v))
            .prop_map(|(k, e, n)| MapOp::CompareExchange(k, e, n)),
        1 => Just(MapOp::Clear),
    ]
}

#[derive(Debug, Clone)]
enum VecOp {
    PushBack(u32),
    PushFront(u32),
    PopBack,
    PopFront,
    Insert(u64, u32),
    Remove(u64),
    Swap(u64, u64),
    Truncate(u64),
    Extend(Vec<u32>),
    Clear,
}

fn vec_op() -> impl Strategy<Value = VecOp> {
    // Indices up to 8 against lengths around 5: many are out of range.
    let i = 0u64..8;
    prop_oneof![
        3 => any::<u32>().prop_map(VecOp::PushBack),
        2 => any::<u32>().prop_map(VecOp::PushFront),
        1 => Just(VecOp::PopBack),
        1 => Just(VecOp::PopFront),
        2 => (i.clone(), any::<u32>()).prop_map(|(i, v)| VecOp::Insert(i, v)),
        2 => i.clone().prop_map(VecOp::Remove),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| VecOp::Swap(a, b)),
        1 => i.prop_map(VecOp::Truncate),
        1 => prop::collection::vec(any::<u32>(), 0..3).prop_map(VecOp::Extend),
        1 => Just(VecOp::Clear),
    ]
}

#[derive(Debug, Clone)]
enum SetOp {
    Insert(u8),
    Remove(u8),
    RemoveMany(Vec<u8>),
    Extend(Vec<u8>),
    Clear,
}

fn set_op() -> impl Strategy<Value = SetOp> {
    let e = 0u8..8;
    prop_oneof![
        4 => e.clone().prop_map(SetOp::Insert),
        2 => e.clone().prop_map(SetOp::Remove),
        1 => prop::collection::vec(e.clone(), 0..4).prop_map(SetOp::RemoveMany),
        1 => prop::collection::vec(e, 0..4).prop_map(SetOp::Extend),
        1 => Just(SetOp::Clear),
    ]
}

#[derive(Debug, Clone)]
enum CellOp {
    Write(u8),
    Clear,
    CompareExchange(Option<u8>, Option<u8>),
}

fn cell_op() -> impl Strategy<Value = CellOp> {
    let v = 0u8..3;
    prop_oneof![
        2 => v.clone().prop_map(CellOp::Write),
        1 => Just(CellOp::Clear),
        3 => (prop::option::of(v.clone()), prop::option::of(v))
            .prop_map(|(e, n)| CellOp::CompareExchange(e, n)),
    ]
}

#[derive(Debug, Clone)]
enum QueueOp {
    Insert(u8, u8, u32),
    UpdatePriority(u8, u8),
    UpdateValue(u8, u32),
    CompareExchangeValue(u8, u32, u32),
    Remove(u8),
    RemoveRange(Bound<u8>, Bound<u8>),
    Clear,
}

fn bound() -> impl Strategy<Value = Bound<u8>> {
    prop_oneof![
        (0u8..6).prop_map(Bound::Included),
        (0u8..6).prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    let p = 0u8..5;
    let k = 0u8..8;
    let v = 0u32..3;
    prop_oneof![
        5 => (p.clone(), k.clone(), v.clone()).prop_map(|(p, k, v)| QueueOp::Insert(p, k, v)),
        2 => (k.clone(), p).prop_map(|(k, p)| QueueOp::UpdatePriority(k, p)),
        1 => (k.clone(), v.clone()).prop_map(|(k, v)| QueueOp::UpdateValue(k, v)),
        2 => (k.clone(), v.clone(), v).prop_map(|(k, e, n)| QueueOp::CompareExchangeValue(k, e, n)),
        1 => k.prop_map(QueueOp::Remove),
        2 => (bound(), bound()).prop_map(|(lo, hi)| QueueOp::RemoveRange(lo, hi)),
        1 => Just(QueueOp::Clear),
    ]
}

type Model = BTreeMap<u8, (u8, u32)>;

/// The model's entries in ascending `(priority, key)` order.
fn ascending(model: &Model) -> Vec<Entry<u8, u8, u32>> {
    let mut all: Vec<_> = model
        .iter()
        .map(|(&key, &(priority, value))| Entry {
            priority,
            key,
            value,
        })
        .collect();
    all.sort_by_key(|e| (e.priority, e.key));
    all
}

fn take(model: &mut Model, pick: impl Fn(&Entry<u8, u8, u32>) -> bool) -> Vec<Entry<u8, u8, u32>> {
    let hit: Vec<_> = ascending(model).into_iter().filter(|e| pick(e)).collect();
    for e in &hit {
        model.remove(&e.key);
    }
    hit
}

fn oob(index: u64, len: usize) -> OutOfRange {
    OutOfRange {
        index,
        len: len as u64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn map_matches_a_btreemap(ops in prop::collection::vec((0usize..3, map_op()), 1..40)) {
        runtime().block_on(async {
            let c = Cluster::new(4);
            let mut maps = Vec::new();
            for n in &c.nodes[..3] {
                maps.push(statemesh::Map::<u8, u32>::open(n, "m", VOTERS).await.unwrap());
            }
            let reader = statemesh::MapReader::<u8, u32>::open(&c.nodes[3], "m", VOTERS).await.unwrap();
            let mut model = BTreeMap::new();
            let mut last = 0;
            for (at, op) in ops {
                let m = &maps[at];
                let v = match op {
                    MapOp::Insert(k, v) => { let (r, ver) = m.insert(k, v).await.unwrap(); assert_eq!(r, model.insert(k, v)); ver }
                    MapOp::Remove(k) => { let (r, ver) = m.remove(k).await.unwrap(); assert_eq!(r, model.remove(&k)); ver }
                    MapOp::RemoveMany(ks) => {
                        let (r, ver) = m.remove_many(ks.clone()).await.unwrap();
                        let want: Vec<_> = ks.iter().filter_map(|k| model.remove(k).map(|v| (*k, v))).collect();
                        assert_eq!(r, want);
                        ver
                    }
                    MapOp::Extend(es) => {
                        let (r, ver) = m.extend(es.clone()).await.unwrap();
                        let want = es.into_iter().filter(|(k, v)| model.insert(*k, *v).is_none()).count();
                        assert_eq!(r, want);
                        ver
                    }
                    MapOp::CompareExchange(k, e, n) => {
                        let (r, ver) = m.compare_exchange(k, e, n).await.unwrap();
                        let cur = model.get(&k).copied();
                        let want = if cur == e {
                            match n { Some(v) => { model.insert(k, v); } None => { model.remove(&k); } }
                            Ok(cur)
                        } else { Err(cur) };
                        assert_eq!(r, want);
                        ver
                    }
                    MapOp::Clear => {
                        let (r, ver) = m.clear().await.unwrap();
                        assert_eq!(r, std::mem::take(&mut model).into_iter().collect::<Vec<_>>());
                        ver
                    }
                };
                assert!(v > last);
                last = v;
            }
            let want: Vec<_> = model.into_iter().collect();
            for m in &maps {
                m.when().reaches(last).await;
                assert_eq!(m.iter().collect::<Vec<_>>(), want);
                assert_eq!(m.len(), want.len());
            }
            reader.when().reaches(last).await;
            assert_eq!(reader.iter().collect::<Vec<_>>(), want);
            c.shutdown().await;
        });
    }

    #[test]
    fn vec_matches_a_vecdeque(ops in prop::collection::vec((0usize..3, vec_op()), 1..40)) {
        runtime().block_on(async {
            let c = Cluster::new(3);
            let mut vecs = Vec::new();
            for n in &c.nodes {
                vecs.push(statemesh::collections::Vec::<u32>::open(n, "v", VOTERS).await.unwrap());
            }
            let mut model: VecDeque<u32> = VecDeque::new();
            let mut last = 0;
            for (at, op) in ops {
                let q = &vecs[at];
                let len = model.len();
                let v = match op {
                    VecOp::PushBack(x) => { let (r, v) = q.push_back(x).await.unwrap(); model.push_back(x); assert_eq!(r, model.len() as u64); v }
                    VecOp::PushFront(x) => { let (r, v) = q.push_front(x).await.unwrap(); model.push_front(x); assert_eq!(r, model.len() as u64); v }
                    VecOp::PopBack => { let (r, v) = q.pop_back().await.unwrap(); assert_eq!(r, model.pop_back()); v }
                    VecOp::PopFront => { let (r, v) = q.pop_front().await.unwrap(); assert_eq!(r, model.pop_front()); v }
                    VecOp::Insert(i, x) => {
                        let (r, v) = q.insert(i, x).await.unwrap();
                        let want = if (i as usize) <= len { model.insert(i as usize, x); Ok(()) } else { Err(oob(i, len)) };
                        assert_eq!(r, want);
                        v
                    }
                    VecOp::Remove(i) => {
                        let (r, v) = q.remove(i).await.unwrap();
                        let want = model.remove(i as usize).ok_or(oob(i, len));
                        assert_eq!(r, want);
                        v
                    }
                    VecOp::Swap(a, b) => {
                        let (r, v) = q.swap(a, b).await.unwrap();
                        let want = if (a as usize) >= len { Err(oob(a, len)) } else if (b as usize) >= len { Err(oob(b, len)) } else { model.swap(a as usize, b as usize); Ok(()) };
                        assert_eq!(r, want);
                        v
                    }
                    VecOp::Truncate(n) => {
                        let (r, v) = q.truncate(n).await.unwrap();
                        let keep = (n as usize).min(len);
                        model.truncate(keep);
                        assert_eq!(r, (len - keep) as u64);
                        v
                    }
                    VecOp::Extend(xs) => { let (r, v) = q.extend(xs.clone()).await.unwrap(); model.extend(xs); assert_eq!(r, model.len() as u64); v }
                    VecOp::Clear => { let (r, v) = q.clear().await.unwrap(); assert_eq!(r, len as u64); model.clear(); v }
                };
                assert!(v > last);
                last = v;
            }
            let want: Vec<u32> = model.iter().copied().collect();
            for q in &vecs {
                q.when().reaches(last).await;
                assert_eq!(q.iter().collect::<Vec<_>>(), want);
                assert_eq!(q.front(), want.first().copied());
                assert_eq!(q.back(), want.last().copied());
                if let Some(x) = want.get(want.len() / 2) {
                    assert!(q.contains(x));
                    assert_eq!(q.index_of(x), want.iter().position(|y| y == x).map(|i| i as u64));
                    assert_eq!(q.get((want.len() / 2) as u64), Some(*x));
                }
            }
            c.shutdown().await;
        });
    }

    #[test]
    fn set_matches_a_btreeset(ops in prop::collection::vec((0usize..3, set_op()), 1..40)) {
        runtime().block_on(async {
            let c = Cluster::new(3);
            let mut sets = Vec::new();
            for n in &c.nodes {
                sets.push(statemesh::Set::<u8>::open(n, "s", VOTERS).await.unwrap());
            }
            let mut model = BTreeSet::new();
            let mut last = 0;
            for (at, op) in ops {
                let s = &sets[at];
                let v = match op {
                    SetOp::Insert(x) => { let (r, v) = s.insert(x).await.unwrap(); assert_eq!(r, model.insert(x)); v }
                    SetOp::Remove(x) => { let (r, v) = s.remove(x).await.unwrap(); assert_eq!(r, model.remove(&x)); v }
                    SetOp::RemoveMany(xs) => { let (r, v) = s.remove_many(xs.clone()).await.unwrap(); assert_eq!(r, xs.iter().filter(|x| model.remove(*x)).count()); v }
                    SetOp::Extend(xs) => { let (r, v) = s.extend(xs.clone()).await.unwrap(); assert_eq!(r, xs.into_iter().filter(|x| model.insert(*x)).count()); v }
                    SetOp::Clear => { let (r, v) = s.clear().await.unwrap(); assert_eq!(r, model.len()); model.clear(); v }
                };
                assert!(v > last);
                last = v;
            }
            let want: Vec<u8> = model.iter().copied().collect();
            let all: BTreeSet<u8> = (0..8).collect();
            for s in &sets {
                s.when().reaches(last).await;
                assert_eq!(s.iter().collect::<Vec<_>>(), want);
                assert!(s.is_subset(&all));
                assert_eq!(s.is_subset(&BTreeSet::new()), want.is_empty());
            }
            c.shutdown().await;
        });
    }

    #[test]
    fn cell_matches_an_option(ops in prop::collection::vec((0usize..3, cell_op()), 1..30)) {
        runtime().block_on(async {
            let c = Cluster::new(3);
            let mut cells = Vec::new();
            for n in &c.nodes {
                cells.push(statemesh::Cell::<u8>::open(n, "c", VOTERS).await.unwrap());
            }
            let mut model: Option<u8> = None;
            let mut last = 0;
            for (at, op) in ops {
                let cell = &cells[at];
                let v = match op {
                    CellOp::Write(x) => { let (r, v) = cell.write(x).await.unwrap(); assert_eq!(r, model.replace(x)); v }
                    CellOp::Clear => { let (r, v) = cell.clear().await.unwrap(); assert_eq!(r, model.take()); v }
                    CellOp::CompareExchange(e, n) => {
                        let (r, v) = cell.compare_exchange(e, n).await.unwrap();
                        let want = if model == e { Ok(std::mem::replace(&mut model, n)) } else { Err(model) };
                        assert_eq!(r, want);
                        v
                    }
                };
                assert!(v > last);
                last = v;
            }
            for cell in &cells {
                cell.when().reaches(last).await;
                assert_eq!(cell.read(), model);
            }
            assert_eq!(cells[1].read_linearizable().await.unwrap(), model);
            c.shutdown().await;
        });
    }

    #[test]
    fn priority_queue_matches_a_sorted_model(
        capacity in prop_oneof![1 => Just(None), 3 => (1u64..6).prop_map(Some)],
        ops in prop::collection::vec((0usize..3, queue_op()), 1..40),
    ) {
        runtime().block_on(async {
            let c = Cluster::new(3);
            let initial = || capacity.map_or_else(PriorityQueueState::unbounded, PriorityQueueState::bounded);
            let mut queues = Vec::new();
            for n in &c.nodes {
                queues.push(statemesh::PriorityQueue::<u8, u8, u32>::open_with(n, "q", VOTERS, initial()).await.unwrap());
            }
            let mut model = Model::new();
            let mut last = 0;
            for (at, op) in ops {
                let q = &queues[at];
                let v = match op {
                    QueueOp::Insert(p, k, x) => {
                        let ((previous, evicted), v) = q.insert(p, k, x).await.unwrap();
                        assert_eq!(previous, model.insert(k, (p, x)));
                        let over = model.len().saturating_sub(capacity.map_or(usize::MAX, |c| c as usize));
                        let want: Vec<_> = ascending(&model).into_iter().take(over).collect();
                        for e in &want {
                            model.remove(&e.key);
                        }
                        assert_eq!(evicted, want);
                        v
                    }
                    QueueOp::UpdatePriority(k, p) => {
                        let (r, v) = q.update_priority(k, p).await.unwrap();
                        assert_eq!(r, model.get_mut(&k).map(|e| std::mem::replace(&mut e.0, p)));
                        v
                    }
                    QueueOp::UpdateValue(k, x) => {
                        let (r, v) = q.update_value(k, x).await.unwrap();
                        assert_eq!(r, model.get_mut(&k).map(|e| std::mem::replace(&mut e.1, x)));
                        v
                    }
                    QueueOp::CompareExchangeValue(k, e, n) => {
                        let (r, v) = q.compare_exchange_value(k, e, n).await.unwrap();
                        let want = match model.get_mut(&k) {
                            Some(entry) if entry.1 == e => Ok(std::mem::replace(&mut entry.1, n)),
                            Some(entry) => Err(Some(entry.1)),
                            None => Err(None),
                        };
                        assert_eq!(r, want);
                        v
                    }
                    QueueOp::Remove(k) => {
                        let (r, v) = q.remove(k).await.unwrap();
                        assert_eq!(r, model.remove(&k).map(|(priority, value)| Entry { priority, key: k, value }));
                        v
                    }
                    QueueOp::RemoveRange(lo, hi) => {
                        let (r, v) = q.remove_range((lo, hi)).await.unwrap();
                        assert_eq!(r, take(&mut model, |e| (lo, hi).contains(&e.priority)));
                        v
                    }
                    QueueOp::Clear => {
                        let (r, v) = q.clear().await.unwrap();
                        assert_eq!(r, take(&mut model, |_| true));
                        v
                    }
                };
                assert!(v > last);
                last = v;
            }
            let want = ascending(&model);
            let mut down = want.clone();
            down.reverse();
            for q in &queues {
                q.when().reaches(last).await;
                assert_eq!(q.iter_ascending().collect::<Vec<_>>(), want);
                assert_eq!(q.iter_descending().collect::<Vec<_>>(), down);
                assert_eq!(q.min(), want.first().cloned());
                assert_eq!(q.max(), want.last().cloned());
                assert_eq!(q.len(), want.len());
                assert_eq!(q.capacity(), capacity);
                for e in &want {
                    assert_eq!(q.get(&e.key), Some(e.value));
                    assert_eq!(q.get_priority(&e.key), Some(e.priority));
                }
            }
            c.shutdown().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_keeps_the_first_value() {
    let c = Cluster::new(3);
    let mut onces = Vec::new();
    for n in &c.nodes {
        onces.push(
            statemesh::Once::<String>::open(n, "o", VOTERS)
                .await
                .unwrap(),
        );
    }
    let waiter = {
        let o = onces[2].clone();
        tokio::spawn(async move { o.wait_value().await })
    };
    let (first, _) = onces[1].set("first".into()).await.unwrap();
    assert_eq!(first, Ok(()));
    let (second, _) = onces[0].set("second".into()).await.unwrap();
    assert_eq!(second, Err("first".to_string()));
    assert_eq!(waiter.await.unwrap(), "first");
    assert_eq!(
        onces[0].get_linearizable().await.unwrap().as_deref(),
        Some("first")
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_batched_and_each_gets_its_own_outcome() {
    let c = Cluster::new(3);
    let mut vecs = Vec::new();
    for n in &c.nodes {
        vecs.push(
            statemesh::collections::Vec::<u32>::open(n, "v", VOTERS)
                .await
                .unwrap(),
        );
    }
    let writes: Vec<_> = (0..300u32)
        .map(|i| {
            let v = vecs[i as usize % 3].clone();
            tokio::spawn(async move { (i, v.push_back(i).await.unwrap()) })
        })
        .collect();
    let mut lengths = BTreeSet::new();
    let mut versions = BTreeSet::new();
    let mut last = 0;
    let mut by_length = BTreeMap::new();
    for w in writes {
        let (i, (len, version)) = w.await.unwrap();
        lengths.insert(len);
        versions.insert(version);
        by_length.insert(len, i);
        last = last.max(version);
    }
    // Every push saw its own length: applied one at a time, in one order.
    assert_eq!(lengths, (1..=300).collect());
    // Commands that travelled in one entry share its index.
    assert!(versions.len() < 300, "no two writes shared an entry");
    for v in &vecs {
        v.when().reaches(last).await;
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            by_length.values().copied().collect::<Vec<_>>()
        );
    }
    c.shutdown().await;
}
