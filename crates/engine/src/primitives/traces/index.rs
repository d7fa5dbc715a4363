//! The in-memory index of traces by type and tag, per run: the candidates
//! of `trace_query`. Derived from the trace records by the core's `apply`
//! through its [`SecondaryIndex::on_write`], so recovery rebuilds it.
//!
//! Invariant: the index names every trace a snapshot can see, and possibly
//! more (traces committed after the snapshot, or deleted since); readers
//! confirm each candidate by reading it. A deleted trace is dropped only
//! once no open snapshot can still see it.

use std::any::Any;
use std::collections::{BTreeSet, HashMap, VecDeque};

use in_mem_core::RunId;
use in_mem_storage::Store;
use parking_lot::RwLock;

use super::record::{Stored, TraceId, TraceType, record_of};
use crate::access::SecondaryIndex;

/// Trace ids by type and by tag, per run. Maintained by
/// [`SecondaryIndex::on_write`] under the commit lock.
#[derive(Default)]
pub(crate) struct TraceIndex {
    pub(super) state: RwLock<IndexState>,
}

#[derive(Default)]
pub(super) struct IndexState {
    pub(super) runs: HashMap<RunId, RunIndex, foldhash::fast::RandomState>,
    /// Deleted traces, in commit order, to drop once no snapshot sees them.
    pub(super) removals: VecDeque<Removal>,
}

#[derive(Default)]
pub(super) struct RunIndex {
    pub(super) by_type: [BTreeSet<TraceId>; 6],
    pub(super) by_tag: HashMap<Box<str>, BTreeSet<TraceId>, foldhash::fast::RandomState>,
}

pub(super) struct Removal {
    version: u64,
    key: Box<[u8]>,
    run: RunId,
    id: TraceId,
    kind: TraceType,
    tags: Vec<Box<str>>,
}

impl TraceIndex {
    /// Follows one write of a commit at `version`. Called by
    /// the core's `apply`, with the commit lock held (or during recovery),
    /// before the store applies the write: a deletion reads the record it
    /// removes. Writes of other keys return at once.
    fn follow(&self, store: &Store, key: &[u8], value: Option<&[u8]>, version: u64, oldest_needed: u64) {
        let Some((run, id)) = record_of(key) else { return };
        let mut state = self.state.write();
        state.drop_unseen(store, oldest_needed);
        match value {
            Some(bytes) => {
                if let Some((stored, kind)) = Stored::decode(bytes) {
                    let index = state.runs.entry(run).or_default();
                    index.by_type[kind as usize].insert(id);
                    for t in stored.tags {
                        index.by_tag.entry(t.into()).or_default().insert(id);
                    }
                }
            }
            None => {
                if let Some((_, old)) = store.get(key, u64::MAX)
                    && let Some((stored, kind)) = Stored::decode(&old)
                {
                    let tags = stored.tags.into_iter().map(Box::from).collect();
                    state.removals.push_back(Removal { version, key: key.into(), run, id, kind, tags });
                }
            }
        }
    }

    /// Candidate ids in `lo ..= hi`, in id (time) order, for a query by
    /// type and/or tag; `None` when neither is given (no index applies).
    pub(crate) fn candidates(&self, run: &RunId, kind: Option<TraceType>, tag: Option<&str>, lo: TraceId, hi: TraceId) -> Option<Vec<TraceId>> {
        if kind.is_none() && tag.is_none() {
            return None;
        }
        let state = self.state.read();
        let Some(index) = state.runs.get(run) else { return Some(Vec::new()) };
        let by_type = kind.map(|k| &index.by_type[k as usize]);
        let by_tag = match tag {
            Some(t) => match index.by_tag.get(t) {
                Some(set) => Some(set),
                None => return Some(Vec::new()),
            },
            None => None,
        };
        let ids = match (by_type, by_tag) {
            (Some(a), Some(b)) => {
                let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
                small.range(lo..=hi).filter(|id| large.contains(id)).copied().collect()
            }
            (Some(set), None) | (None, Some(set)) => set.range(lo..=hi).copied().collect(),
            (None, None) => unreachable!("checked above"),
        };
        Some(ids)
    }
}

impl IndexState {
    /// Drops deleted traces that no snapshot at or after `oldest_needed`
    /// can see.
    fn drop_unseen(&mut self, store: &Store, oldest_needed: u64) {
        while self.removals.front().is_some_and(|r| r.version <= oldest_needed) {
            let r = self.removals.pop_front().expect("checked non-empty");
            if store.get(&r.key, u64::MAX).is_some() {
                continue;
            }
            let Some(index) = self.runs.get_mut(&r.run) else { continue };
            index.by_type[r.kind as usize].remove(&r.id);
            for t in &r.tags {
                if let Some(set) = index.by_tag.get_mut(t) {
                    set.remove(&r.id);
                    if set.is_empty() {
                        index.by_tag.remove(t);
                    }
                }
            }
            if index.by_tag.is_empty() && index.by_type.iter().all(BTreeSet::is_empty) {
                self.runs.remove(&r.run);
            }
        }
    }
}

impl SecondaryIndex for TraceIndex {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn on_write(&self, store: &Store, key: &[u8], value: Option<&[u8]>, version: u64, oldest_needed: u64) {
        self.follow(store, key, value, version, oldest_needed);
    }

    fn evict_run(&self, run: &RunId) {
        let mut state = self.state.write();
        state.runs.remove(run);
        state.removals.retain(|r| r.run != *run);
    }
}
