use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use in_mem_core::{Error, Result};
use in_mem_storage::{Snapshot, SnapshotTracker, Source, Store, Value};
use parking_lot::{Mutex, MutexGuard};
use serde_json::json;

/// A buffered write.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Put(Value),
    Delete,
}

/// A transaction's own writes in a range, in scan order.
type OwnWrites<'a> = Box<dyn Iterator<Item = (&'a Box<[u8]>, &'a Write)> + 'a>;

/// A scanned key range `[start, end)`; no end means to the end of the keyspace.
type KeyRange = (Box<[u8]>, Option<Box<[u8]>>);

pub struct Transaction {
    snapshot: Snapshot,
    reads: HashSet<Box<[u8]>>,
    ranges: Vec<KeyRange>,
    writes: BTreeMap<Box<[u8]>, Write>,
}

impl Transaction {
    pub fn begin(tracker: &std::sync::Arc<SnapshotTracker>) -> Self {
        Transaction { snapshot: tracker.acquire(), reads: HashSet::new(), ranges: Vec::new(), writes: BTreeMap::new() }
    }

    /// A transaction reading at `version`, an older point (a replay view).
    pub fn begin_at(tracker: &std::sync::Arc<SnapshotTracker>, version: u64) -> Self {
        Transaction { snapshot: tracker.acquire_at(version), reads: HashSet::new(), ranges: Vec::new(), writes: BTreeMap::new() }
    }

    pub fn snapshot_version(&self) -> u64 {
        self.snapshot.version()
    }

    /// Reads a key: the transaction's own write first (reported at version
    /// `u64::MAX`: it has none yet), else the snapshot. The key joins the
    /// read set.
    pub fn get<S: Source + ?Sized>(&mut self, store: &S, key: &[u8]) -> Option<(u64, Value)> {
        if let Some(w) = self.writes.get(key) {
            return match w {
                Write::Put(v) => Some((u64::MAX, v.clone())),
                Write::Delete => None,
            };
        }
        if !self.reads.contains(key) {
            self.reads.insert(key.into());
        }
        store.read(key, self.snapshot.version())
    }

    pub fn put(&mut self, key: &[u8], value: Value) {
        self.writes.insert(key.into(), Write::Put(value));
    }

    pub fn delete(&mut self, key: &[u8]) {
        self.writes.insert(key.into(), Write::Delete);
    }

    /// Scans `[start, end)` merging the snapshot with the transaction's own
    /// writes (at version `u64::MAX`), in key order or reverse. The range joins the read set, so a
    /// key inserted into it by another commit is a conflict (no phantoms).
    pub fn scan<S: Source + ?Sized>(&mut self, store: &S, start: &[u8], end: Option<&[u8]>, reverse: bool, mut f: impl FnMut(&[u8], u64, &Value) -> bool) {
        self.ranges.push((start.into(), end.map(Into::into)));
        // A streaming merge: the store's entries as they come, each preceded
        // by the own writes that sort before it, an own write replacing the
        // entry of its key. A scan that stops early reads no further.
        let bounds = (Bound::Included(start), end.map_or(Bound::Unbounded, Bound::Excluded));
        let own = self.writes.range::<[u8], _>(bounds);
        let own: OwnWrites<'_> = if reverse { Box::new(own.rev()) } else { Box::new(own) };
        let mut own = own.peekable();
        let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
        let mut stopped = false;
        store.scan_live(start, end, self.snapshot.version(), reverse, &mut |k, version, v| {
            while let Some((ok, w)) = own.peek() {
                if !before(ok, k) {
                    break;
                }
                if let Write::Put(value) = w
                    && !f(ok, u64::MAX, value)
                {
                    stopped = true;
                    return false;
                }
                own.next();
            }
            if let Some((ok, w)) = own.peek()
                && &ok[..] == k
            {
                let keep_going = match w {
                    Write::Put(value) => f(k, u64::MAX, value),
                    Write::Delete => true,
                };
                own.next();
                stopped = !keep_going;
                return keep_going;
            }
            if !f(k, version, v) {
                stopped = true;
                return false;
            }
            true
        });
        if !stopped {
            for (k, w) in own {
                if let Write::Put(value) = w
                    && !f(k, u64::MAX, value)
                {
                    break;
                }
            }
        }
    }

    pub fn writes(&self) -> &BTreeMap<Box<[u8]>, Write> {
        &self.writes
    }

    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty()
    }

    /// Hands the write set to the committer.
    pub fn into_writes(self) -> BTreeMap<Box<[u8]>, Write> {
        self.writes
    }
}

/// First committer wins: fails with `ConflictError` if anything this
/// transaction read or wrote changed after its snapshot. Must be called with
/// the [`CommitLock`] held, so nothing commits between validation and apply.
pub fn validate(tx: &Transaction, store: &Store, _lock: &MutexGuard<'_, u64>) -> Result<()> {
    if tx.is_read_only() {
        return Ok(());
    }
    let snap = tx.snapshot.version();
    let conflict = |key: &[u8]| {
        Error::conflict(
            "a key this transaction used was committed by another transaction first",
            json!({ "key": String::from_utf8_lossy(in_mem_core::InternalKey::user(key)), "snapshot": snap }),
        )
    };
    for key in tx.writes.keys().chain(tx.reads.iter()) {
        if store.latest_version(key) > snap {
            return Err(conflict(key));
        }
    }
    for (start, end) in &tx.ranges {
        if store.latest_version_in(start, end.as_deref()) > snap {
            return Err(conflict(start));
        }
    }
    Ok(())
}

/// Serializes commits and hands out commit versions in order. The guarded
/// value is the last version assigned.
pub struct CommitLock {
    last: Mutex<u64>,
}

impl CommitLock {
    pub fn new(last: u64) -> Self {
        CommitLock { last: Mutex::new(last) }
    }

    pub fn lock(&self) -> MutexGuard<'_, u64> {
        self.last.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn commit(store: &Store, tracker: &Arc<SnapshotTracker>, lock: &CommitLock, tx: Transaction) -> Result<u64> {
        let mut last = lock.lock();
        validate(&tx, store, &last)?;
        *last += 1;
        let v = *last;
        for (k, w) in tx.into_writes() {
            let value = match w {
                Write::Put(v) => Some(v),
                Write::Delete => None,
            };
            store.apply(&k, v, value, tracker.oldest_needed());
        }
        tracker.publish(v);
        Ok(v)
    }

    fn setup() -> (Store, Arc<SnapshotTracker>, CommitLock) {
        (Store::new(), SnapshotTracker::new(0), CommitLock::new(0))
    }

    #[test]
    fn reads_see_own_writes_first() {
        let (store, tracker, _) = setup();
        let mut tx = Transaction::begin(&tracker);
        tx.put(b"k", in_mem_storage::value(b"v"));
        assert_eq!(&*tx.get(&store, b"k").unwrap().1, b"v");
        tx.delete(b"k");
        assert!(tx.get(&store, b"k").is_none());
    }

    #[test]
    fn first_committer_wins_on_a_read_key() {
        let (store, tracker, lock) = setup();
        let mut a = Transaction::begin(&tracker);
        let mut b = Transaction::begin(&tracker);
        a.get(&store, b"x");
        a.put(b"y", in_mem_storage::value(b"1"));
        b.put(b"x", in_mem_storage::value(b"2"));
        commit(&store, &tracker, &lock, b).unwrap();
        assert!(matches!(commit(&store, &tracker, &lock, a), Err(Error::Conflict { .. })));
    }

    #[test]
    fn a_phantom_in_a_scanned_range_conflicts() {
        let (store, tracker, lock) = setup();
        let mut a = Transaction::begin(&tracker);
        a.scan(&store, b"p", Some(b"q"), false, |_, _, _| true);
        a.put(b"z", in_mem_storage::value(b"1"));
        let mut b = Transaction::begin(&tracker);
        b.put(b"p1", in_mem_storage::value(b"2"));
        commit(&store, &tracker, &lock, b).unwrap();
        assert!(matches!(commit(&store, &tracker, &lock, a), Err(Error::Conflict { .. })));
    }

    #[test]
    fn disjoint_transactions_both_commit() {
        let (store, tracker, lock) = setup();
        let mut a = Transaction::begin(&tracker);
        let mut b = Transaction::begin(&tracker);
        a.get(&store, b"a");
        a.put(b"a", in_mem_storage::value(b"1"));
        b.get(&store, b"b");
        b.put(b"b", in_mem_storage::value(b"1"));
        commit(&store, &tracker, &lock, a).unwrap();
        commit(&store, &tracker, &lock, b).unwrap();
    }

    #[test]
    fn a_snapshot_does_not_see_later_commits() {
        let (store, tracker, lock) = setup();
        let mut w = Transaction::begin(&tracker);
        w.put(b"k", in_mem_storage::value(b"1"));
        commit(&store, &tracker, &lock, w).unwrap();
        let mut r = Transaction::begin(&tracker);
        let mut w = Transaction::begin(&tracker);
        w.put(b"k", in_mem_storage::value(b"2"));
        commit(&store, &tracker, &lock, w).unwrap();
        assert_eq!(&*r.get(&store, b"k").unwrap().1, b"1");
    }

    proptest::proptest! {
        /// The streaming merge of a scan gives what merging the whole range
        /// into a map and walking it gives: forward and reverse, stopping
        /// after any number of entries, with puts and deletes of the
        /// transaction's own over the store's.
        #[test]
        fn a_scan_merges_own_writes_as_a_whole_range_merge_would(
            stored in proptest::collection::btree_map(0u8..40, 0u8..255, 0..25),
            own in proptest::collection::btree_map(0u8..40, proptest::option::of(0u8..255), 0..15),
            lo in 0u8..40,
            len in 0u8..45,
            reverse in proptest::bool::ANY,
            limit in 0usize..50,
        ) {
            let store = Store::new();
            let tracker = SnapshotTracker::new(0);
            for (k, v) in &stored {
                store.apply(&[*k], 1, Some(in_mem_storage::value([*v])), 0);
            }
            tracker.publish(1);
            let mut tx = Transaction::begin(&tracker);
            for (k, v) in &own {
                match v {
                    Some(v) => tx.put(&[*k], in_mem_storage::value([*v])),
                    None => tx.delete(&[*k]),
                }
            }
            let (start, end) = ([lo], [lo.saturating_add(len)]);
            // The model: the whole range in a map, own writes over it.
            let mut model: BTreeMap<u8, (u64, u8)> = stored.iter().filter(|(k, _)| **k >= start[0] && **k < end[0]).map(|(k, v)| (*k, (1, *v))).collect();
            for (k, v) in own.iter().filter(|(k, _)| **k >= start[0] && **k < end[0]) {
                match v {
                    Some(v) => { model.insert(*k, (u64::MAX, *v)); }
                    None => { model.remove(k); }
                }
            }
            let mut want: Vec<(u8, u64, u8)> = model.into_iter().map(|(k, (ver, v))| (k, ver, v)).collect();
            if reverse { want.reverse(); }
            want.truncate(limit);
            let mut got = Vec::new();
            tx.scan(&store, &start, Some(&end), reverse, |k, ver, v| {
                if got.len() == limit { return false; }
                got.push((k[0], ver, v[0]));
                got.len() < limit
            });
            proptest::prop_assert_eq!(got, want);
        }
    }
}
