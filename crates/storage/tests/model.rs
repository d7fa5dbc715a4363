//! Property test: the store against a model that keeps every version of every
//! key. Whatever the interleaving of writes and pruning, a reader at any
//! snapshot at or above the oldest protected one sees what the model says.

use std::collections::BTreeMap;
use std::sync::Arc;

use in_mem_storage::Store;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![(0u8..8, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)), (0u8..8).prop_map(Op::Delete)]
}

proptest! {
    #[test]
    fn store_matches_a_full_history_model(ops in prop::collection::vec(op(), 1..200), protect in 0u64..200) {
        let store = Store::new();
        let mut model: BTreeMap<u8, Vec<(u64, Option<u8>)>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let version = i as u64 + 1;
            let oldest = protect.min(version - 1);
            match *op {
                Op::Put(k, v) => {
                    store.apply(&[k], version, Some(Arc::from(&[v][..])), oldest);
                    model.entry(k).or_default().push((version, Some(v)));
                }
                Op::Delete(k) => {
                    store.apply(&[k], version, None, oldest);
                    model.entry(k).or_default().push((version, None));
                }
            }
        }
        let last = ops.len() as u64;
        for snapshot in protect.min(last)..=last {
            for k in 0u8..8 {
                let expected = model.get(&k).and_then(|h| h.iter().rev().find(|(v, _)| *v <= snapshot)).and_then(|(_, v)| *v);
                let got = store.get(&[k], snapshot).map(|(_, v)| v[0]);
                prop_assert_eq!(got, expected, "key {} at snapshot {}", k, snapshot);
            }
            let mut scanned = vec![];
            store.scan(&[0], None, snapshot, false, |k, _, v| { scanned.push((k[0], v[0])); true });
            let expected: Vec<(u8, u8)> = model.iter().filter_map(|(k, h)| {
                h.iter().rev().find(|(v, _)| *v <= snapshot).and_then(|(_, v)| v.map(|v| (*k, v)))
            }).collect();
            prop_assert_eq!(scanned, expected);
        }
    }
}
