//! Property test: interleaved transactions against a serial model. Every
//! transaction that commits must have read exactly what the committed history
//! held at its snapshot, and the final store must equal the model built by
//! replaying the committed transactions in commit order.

use std::collections::BTreeMap;

use in_mem_concurrency::{CommitLock, Transaction, Write, validate};
use in_mem_storage::{SnapshotTracker, Store};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Begin,
    Read(usize, u8),
    Write(usize, u8, u8),
    Commit(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Begin),
        (0usize..4, 0u8..4).prop_map(|(t, k)| Step::Read(t, k)),
        (0usize..4, 0u8..4, any::<u8>()).prop_map(|(t, k, v)| Step::Write(t, k, v)),
        (0usize..4).prop_map(Step::Commit),
    ]
}

/// An open transaction and the model's view of what it read: (key, value seen).
type OpenTx = (Transaction, Vec<(u8, Option<u8>)>);

proptest! {
    #[test]
    fn committed_transactions_are_serializable_in_commit_order(steps in prop::collection::vec(step(), 1..120)) {
        let store = Store::new();
        let tracker = SnapshotTracker::new(0);
        let lock = CommitLock::new(0);
        // history[v] = model state after commit v
        let mut history: Vec<BTreeMap<u8, u8>> = vec![BTreeMap::new()];
        let mut open: Vec<Option<OpenTx>> = (0..4).map(|_| None).collect();
        let mut next = 0usize;
        for s in steps {
            match s {
                Step::Begin => {
                    let slot = next % 4;
                    next += 1;
                    if open[slot].is_none() {
                        open[slot] = Some((Transaction::begin(&tracker), vec![]));
                    }
                }
                Step::Read(t, k) => if let Some((tx, reads)) = open[t].as_mut() {
                    let got = tx.get(&store, &[k]).map(|(_, v)| v[0]);
                    reads.push((k, got));
                }
                Step::Write(t, k, v) => if let Some((tx, _)) = open[t].as_mut() {
                    tx.put(&[k], in_mem_storage::value([v]));
                }
                Step::Commit(t) => if let Some((tx, reads)) = open[t].take() {
                    let snap = tx.snapshot_version() as usize;
                    let mut last = lock.lock();
                    if validate(&tx, &store, &last).is_ok() && !tx.is_read_only() {
                        *last += 1;
                        let v = *last;
                        let mut state = history.last().unwrap().clone();
                        // Reads of keys it did not write itself saw the snapshot,
                        // which must equal the state just before this commit.
                        let writes = tx.into_writes();
                        for (k, seen) in &reads {
                            if !writes.contains_key(&[*k][..]) {
                                prop_assert_eq!(history[snap].get(k).copied(), *seen);
                                prop_assert_eq!(state.get(k).copied(), *seen);
                            }
                        }
                        for (k, w) in writes {
                            let value = match w { Write::Put(b) => { state.insert(k[0], b[0]); Some(b) } Write::Delete => { state.remove(&k[0]); None } };
                            store.apply(&k, v, value, tracker.oldest_needed());
                        }
                        tracker.publish(v);
                        history.push(state);
                    }
                }
            }
        }
        let last = tracker.visible();
        let final_state = history.last().unwrap();
        for k in 0u8..4 {
            prop_assert_eq!(store.get(&[k], last).map(|(_, v)| v[0]), final_state.get(&k).copied());
        }
    }
}
