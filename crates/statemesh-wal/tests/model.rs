//! Model-based test: random sequences of append, truncate, purge, sync,
//! close-and-reopen, compared after every step with a plain map.

use proptest::prelude::*;
use statemesh_wal::{Wal, WalOptions};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u16>),
    Truncate(u16),
    Purge(u16),
    Sync,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(0u16..1500, 1..8).prop_map(Op::Append),
        1 => any::<u16>().prop_map(Op::Truncate),
        1 => any::<u16>().prop_map(Op::Purge),
        1 => Just(Op::Sync),
        2 => Just(Op::Reopen),
    ]
}

fn bytes(index: u64, len: u16) -> Vec<u8> {
    (0..len)
        .map(|i| (index as u16).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

fn opts() -> WalOptions {
    WalOptions::new().segment_size(4096)
}

struct Model {
    entries: BTreeMap<u64, Vec<u8>>,
    first: u64,
    next: u64,
}

fn check(wal: &Wal, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(wal.first_index(), model.first);
    prop_assert_eq!(wal.next_index(), model.next);
    let got = wal
        .range(..)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let want: Vec<_> = model.entries.iter().map(|(i, b)| (*i, b.clone())).collect();
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_a_map(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), opts()).unwrap();
        let mut model = Model { entries: BTreeMap::new(), first: 1, next: 1 };
        for op in ops {
            match op {
                Op::Append(lens) => {
                    let payloads: Vec<_> = lens.iter().enumerate().map(|(k, &l)| bytes(model.next + k as u64, l)).collect();
                    let a = wal.append_batch(payloads.clone()).unwrap();
                    prop_assert_eq!(a.index(), model.next);
                    a.wait().unwrap();
                    for p in payloads {
                        model.entries.insert(model.next, p);
                        model.next += 1;
                    }
                }
                Op::Truncate(k) => {
                    let span = model.next - model.first + 1;
                    let from = model.first + u64::from(k) % span;
                    wal.truncate(from).unwrap();
                    model.entries.retain(|&i, _| i < from);
                    model.next = from;
                }
                Op::Purge(k) => {
                    // Mostly inside the log, sometimes past its end.
                    let span = model.next - model.first + 3;
                    let upto = (model.first + u64::from(k) % span).saturating_sub(1);
                    if upto + 1 >= model.first {
                        wal.purge(upto, upto.to_le_bytes().to_vec()).unwrap();
                        model.entries.retain(|&i, _| i > upto);
                        model.first = model.first.max(upto + 1);
                        model.next = model.next.max(model.first);
                    }
                }
                Op::Sync => wal.sync().unwrap(),
                Op::Reopen => {
                    drop(wal);
                    wal = Wal::open(dir.path(), opts()).unwrap();
                }
            }
            check(&wal, &model)?;
        }
        drop(wal);
        let wal = Wal::open(dir.path(), opts()).unwrap();
        check(&wal, &model)?;
    }
}
