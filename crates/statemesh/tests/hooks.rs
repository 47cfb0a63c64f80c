//! Events and hooks on a 3-node cluster in one process: events from
//! several clients applied in one order on every replica, each sender
//! getting its own result; a hook's error and panic returned to the sender
//! with nothing changed; an init hook that fails; a mirror sending events.

mod common;

use common::Env;
use serde::{Deserialize, Serialize};
use statemesh::collections::{MapCommand, MapState};
use statemesh::hooks::{Edit, HookError, Hooked, Hooks};
use statemesh::{HistoryLimits, Kinds, Mirror, MirrorOptions};
use std::collections::BTreeMap;
use std::time::Duration;

/// Accounts that never go below zero; a transfer of 13 panics.
#[derive(Clone)]
struct Bank;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Transfer {
    from: String,
    to: String,
    amount: u64,
}

type Accounts = MapState<String, u64>;

impl Hooks for Bank {
    type State = Accounts;
    type Event = Transfer;
    type Output = u64;

    fn name(&self) -> String {
        "bank/1".into()
    }

    fn init(&self, state: &mut Edit<'_, Accounts>) -> Result<(), HookError> {
        state.apply(MapCommand::Insert("reserve".into(), 1_000));
        Ok(())
    }

    fn on_event(&self, state: &mut Edit<'_, Accounts>, t: Transfer) -> Result<u64, HookError> {
        let balance = |s: &Edit<'_, Accounts>, who: &str| s.get().as_map().get(who).copied();
        let from = balance(state, &t.from).unwrap_or(0);
        let to = balance(state, &t.to).unwrap_or(0);
        // Changed before the checks below: a refusal must undo it.
        state.apply(MapCommand::Insert(t.to.clone(), to + t.amount));
        assert!(t.amount != 13, "unlucky amount");
        let left = from
            .checked_sub(t.amount)
            .ok_or_else(|| HookError::new(format!("{} has only {from}", t.from)))?;
        state.apply(MapCommand::Insert(t.from, left));
        Ok(left)
    }
}

/// Hooks whose initial state cannot be made.
#[derive(Clone)]
struct Broken;

impl Hooks for Broken {
    type State = Accounts;
    type Event = ();
    type Output = ();

    fn name(&self) -> String {
        "broken/1".into()
    }

    fn init(&self, _: &mut Edit<'_, Accounts>) -> Result<(), HookError> {
        Err(HookError::new("no opening balance"))
    }

    fn on_event(&self, _: &mut Edit<'_, Accounts>, (): ()) -> Result<(), HookError> {
        Ok(())
    }
}

fn kinds() -> Kinds {
    let mut kinds = Kinds::new();
    kinds.register_hooks(Bank).unwrap();
    kinds
}

fn transfer(from: &str, to: &str, amount: u64) -> Transfer {
    Transfer {
        from: from.into(),
        to: to.into(),
        amount,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_apply_in_one_order_everywhere_and_answer_their_senders() {
    let env = Env::new(kinds());
    let ([a, b, c], all) = env.three().await;
    let initial = Hooked::new(Bank).unwrap();
    assert_eq!(initial.state().as_map().get("reserve"), Some(&1_000));

    // Three senders on different nodes move money out of the reserve;
    // each is told the reserve's balance its own transfer left.
    let mut senders = tokio::task::JoinSet::new();
    for (s, address) in all.iter().enumerate() {
        let client = env.client(std::slice::from_ref(address)).await;
        let bank = client.open_with("bank", &initial).await.unwrap();
        senders.spawn(async move {
            let mut results = Vec::new();
            for i in 0..12u64 {
                let (left, version) = bank
                    .send_event(transfer("reserve", &format!("s{s}"), i + 1))
                    .await
                    .unwrap();
                results.push((version, i + 1, left.unwrap()));
            }
            results
        });
    }
    let mut all_results = Vec::new();
    while let Some(r) = senders.join_next().await {
        all_results.extend(r.unwrap());
    }
    // One order: sorted by version, each balance is the one before minus
    // that transfer.
    all_results.sort_unstable();
    let mut reserve = 1_000u64;
    for (_, amount, left) in &all_results {
        reserve -= amount;
        assert_eq!(*left, reserve);
    }
    assert_eq!(reserve, 1_000 - 3 * (1..=12).sum::<u64>());

    // Every node's replica holds the same accounts: read through mirrors,
    // one per node.
    let mut copies = Vec::new();
    let last = all_results.last().unwrap().0;
    for address in &all {
        let client = env.client(std::slice::from_ref(address)).await;
        let m = Mirror::open_with(&client, "bank", initial.clone(), MirrorOptions::default())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(20), m.when().reaches(last))
            .await
            .unwrap();
        copies.push(m.read_with(|h| h.state().as_map().clone()));
    }
    assert!(copies.windows(2).all(|w| w[0] == w[1]));
    let accounts: BTreeMap<_, _> = copies[0].clone().into_iter().collect();
    assert_eq!(accounts.get("reserve"), Some(&reserve));
    for s in 0..3 {
        assert_eq!(accounts.get(&format!("s{s}")), Some(&(1..=12).sum::<u64>()));
    }
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_panics_reach_the_sender_and_change_nothing() {
    let env = Env::new(kinds());
    let node = env.start("a", &[], HistoryLimits::default()).await;
    let client = env.client(&[node.address().to_owned()]).await;
    let initial = Hooked::new(Bank).unwrap();
    let bank = client.open_with("bank", &initial).await.unwrap();
    let mirror = Mirror::open_with(&client, "bank", initial.clone(), MirrorOptions::default())
        .await
        .unwrap();

    let (refused, v1) = bank.send_event(transfer("alice", "bob", 5)).await.unwrap();
    assert_eq!(refused, Err(HookError::new("alice has only 0")));
    let (panicked, v2) = bank
        .send_event(transfer("reserve", "bob", 13))
        .await
        .unwrap();
    let message = panicked.unwrap_err().message;
    assert!(message.contains("unlucky amount"), "{message}");
    assert!(v2 > v1);

    // Neither left bob's credit behind; the node still applies events.
    let (ok, v3) = mirror
        .send_event(transfer("reserve", "bob", 7))
        .await
        .unwrap();
    assert_eq!(ok, Ok(993));
    mirror.when().reaches(v3).await;
    let accounts = mirror.read_with(|h| h.state().as_map().clone());
    assert_eq!(accounts.get("bob"), Some(&7));
    assert_eq!(accounts.get("alice"), None);
    assert_eq!(accounts.len(), 2);
    node.shutdown().await;
}

#[test]
fn an_init_hook_that_fails_creates_nothing() {
    let err = Hooked::new(Broken).err().unwrap();
    assert_eq!(err, HookError::new("no opening balance"));
    let mut kinds = Kinds::new();
    assert_eq!(
        kinds.register_hooks(Broken),
        Err(HookError::new("no opening balance"))
    );
}
