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

/// A key's versions in the model: (version, value or a delete).
type History = Vec<(u64, Option<Vec<u8>>)>;

/// A value of `len` bytes derived from `seed`, mostly equal to the one from
/// `seed - 1` (one byte changes), so that older versions become back deltas.
fn value_of(seed: u8, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let at = seed as usize % len;
    v[at] = seed;
    if seed.is_multiple_of(5) {
        v.truncate(len - 1 - (seed as usize % 3));
    }
    v
}

proptest! {
    /// The same with values held as back deltas (every size qualifies):
    /// reads at every protected snapshot, scans and the whole history give
    /// each version's bytes exactly.
    #[test]
    fn back_deltas_read_back_every_version(
        ops in prop::collection::vec((0u8..4, any::<u8>(), any::<bool>()), 1..150),
        protect in 0u64..150,
        keep in 1usize..4,
        pins in prop::collection::vec(1u64..150, 0..3),
    ) {
        let store = Store::with_back_deltas_from(1);
        let mut model: BTreeMap<u8, History> = BTreeMap::new();
        for (i, (k, seed, delete)) in ops.iter().enumerate() {
            let version = i as u64 + 1;
            let oldest = protect.min(version - 1);
            let value = (!*delete || *seed % 4 != 0).then(|| value_of(*seed, 16));
            let pinned: Vec<u64> = pins.iter().copied().filter(|p| *p < version).collect();
            store.apply_keeping(&[*k], version, value.clone().map(|v| Arc::from(&v[..])), oldest, keep, &pinned);
            model.entry(*k).or_default().push((version, value));
        }
        let last = ops.len() as u64;
        let pinned = pins.iter().copied().filter(|p| *p <= last);
        for snapshot in (protect.min(last)..=last).chain(pinned) {
            for k in 0u8..4 {
                let expected = model.get(&k).and_then(|h| h.iter().rev().find(|(v, _)| *v <= snapshot)).and_then(|(_, v)| v.clone());
                let got = store.get(&[k], snapshot).map(|(_, v)| v.to_vec());
                prop_assert_eq!(got, expected, "key {} at snapshot {}", k, snapshot);
            }
        }
        // The history a checkpoint writes: each kept version, whole.
        store.scan_history(&[0], None, last, |k, history| {
            let h = &model[&k[0]];
            for (v, value) in history {
                let m = h.iter().find(|(mv, _)| mv == v).expect("a version the model has");
                assert_eq!(value.as_deref().map(<[u8]>::to_vec), m.1.clone(), "key {} version {}", k[0], v);
            }
            assert_eq!(history.last().map(|(v, _)| *v), h.last().map(|(v, _)| *v));
            true
        });
    }
}
