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
                    store.apply(&[k], version, Some(in_mem_storage::value([v])), oldest);
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
            store.apply_keeping(&[*k], version, value.clone().map(in_mem_storage::value), oldest, keep, &pinned);
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

/// A [`DiskHistory`] held in memory: what the engine's history files hold,
/// for the store's side of spilling.
#[derive(Default)]
struct Disk(parking_lot::Mutex<BTreeMap<Vec<u8>, History>>);

impl in_mem_storage::DiskHistory for Disk {
    fn read(&self, key: &[u8], snapshot: u64) -> Option<(u64, Option<in_mem_storage::Value>)> {
        let m = self.0.lock();
        m.get(key)?.iter().rev().find(|(v, _)| *v <= snapshot).map(|(v, value)| (*v, value.as_deref().map(in_mem_storage::value)))
    }
    fn versions(&self, key: &[u8], snapshot: u64, f: &mut dyn FnMut(u64, Option<in_mem_storage::Value>)) {
        if let Some(h) = self.0.lock().get(key) {
            for (v, value) in h.iter().filter(|(v, _)| *v <= snapshot) {
                f(*v, value.as_deref().map(in_mem_storage::value));
            }
        }
    }
}

proptest! {
    /// History moved to disk at random points ("checkpoints": each key's
    /// versions older than its newest at the checkpoint go to the disk
    /// model, then [`Store::spill`] drops them from memory): every read at
    /// every snapshot, every scan and every key's whole history are what a
    /// store that kept everything in memory gives, and memory holds no
    /// version older than the newest at the last checkpoint.
    #[test]
    fn history_spilled_to_disk_reads_as_if_resident(
        ops in prop::collection::vec((0u8..6, any::<u8>(), any::<bool>()), 1..160),
        checkpoints in prop::collection::vec(1usize..160, 0..5),
    ) {
        let store = Store::with_back_deltas_from(1);
        let resident = Store::with_back_deltas_from(1);
        let disk = Arc::new(Disk::default());
        store.set_disk(disk.clone());
        let mut last_checkpoint = 0;
        for (i, (k, seed, delete)) in ops.iter().enumerate() {
            let version = i as u64 + 1;
            let value = (!*delete || *seed % 4 != 0).then(|| in_mem_storage::value(value_of(*seed, 16)));
            store.apply(&[*k], version, value.clone(), 0);
            resident.apply(&[*k], version, value, 0);
            if checkpoints.contains(&(i + 1)) {
                // What a checkpoint at `version` writes to its history file.
                store.scan_resident(&[0], None, version, |k, _, history| {
                    let mut d = disk.0.lock();
                    let h = d.entry(k.to_vec()).or_default();
                    for (v, value) in &history[..history.len() - 1] {
                        h.push((*v, value.as_deref().map(<[u8]>::to_vec)));
                    }
                    true
                });
                store.spill(version, |_| true);
                last_checkpoint = version;
            }
        }
        let last = ops.len() as u64;
        for snapshot in 0..=last {
            for k in 0u8..6 {
                prop_assert_eq!(store.read_any(&[k], snapshot), resident.read_any(&[k], snapshot), "key {} at snapshot {}", k, snapshot);
            }
            let (mut a, mut b) = (vec![], vec![]);
            store.scan(&[0], None, snapshot, false, |k, v, value| { a.push((k.to_vec(), v, value.to_vec())); true });
            resident.scan(&[0], None, snapshot, false, |k, v, value| { b.push((k.to_vec(), v, value.to_vec())); true });
            prop_assert_eq!(a, b, "scan at {}", snapshot);
        }
        let (mut a, mut b) = (vec![], vec![]);
        store.scan_history(&[0], None, last, |k, h| { a.push((k.to_vec(), h.to_vec())); true });
        resident.scan_history(&[0], None, last, |k, h| { b.push((k.to_vec(), h.to_vec())); true });
        prop_assert_eq!(a, b);
        // Memory holds nothing older than each key's newest at the last checkpoint.
        store.scan_resident(&[0], None, last, |k, on_disk, history| {
            let newest_then = resident_newest(&resident, k, last_checkpoint);
            assert!(history.first().map(|(v, _)| *v) >= newest_then || newest_then.is_none(), "key {k:?} keeps versions older than its newest at the checkpoint");
            assert_eq!(on_disk, disk.0.lock().get(k).is_some_and(|h| !h.is_empty()), "key {k:?}: marked on disk iff it has versions there");
            true
        });
    }
}

fn resident_newest(store: &Store, key: &[u8], at: u64) -> Option<u64> {
    store.read_any(key, at).map(|(v, _)| v)
}
