//! Snapshot bookkeeping.
//!
//! Invariant: `visible` only grows, and every version `<= visible` is fully
//! applied. A commit becomes visible atomically by raising `visible` past its
//! version after all its writes are in the store. Readers that hold a
//! snapshot register it, so that old versions they may still read are kept
//! when a chain is pruned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

#[derive(Default)]
pub struct SnapshotTracker {
    visible: AtomicU64,
    active: Mutex<BTreeMap<u64, usize>>,
    /// The oldest registered snapshot, `u64::MAX` when there is none: a copy
    /// of `active`'s first key, kept so that committers read it without the
    /// lock. Updated with `active` locked.
    oldest: AtomicU64,
}

impl SnapshotTracker {
    pub fn new(visible: u64) -> Arc<Self> {
        Arc::new(SnapshotTracker { visible: AtomicU64::new(visible), active: Mutex::default(), oldest: AtomicU64::new(u64::MAX) })
    }

    /// The newest version every reader may see.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Makes every version up to `v` visible. Called by the committer, in
    /// version order, after the commit's writes are applied.
    pub fn publish(&self, v: u64) {
        self.visible.fetch_max(v, Ordering::AcqRel);
    }

    /// Registers a reader at the current visible version.
    pub fn acquire(self: &Arc<Self>) -> Snapshot {
        let mut active = self.active.lock();
        let version = self.visible();
        *active.entry(version).or_insert(0) += 1;
        self.oldest.store(*active.keys().next().unwrap(), Ordering::Release);
        Snapshot { version, tracker: self.clone() }
    }

    /// Registers a reader at `version`, an older point than the visible one
    /// (a replay view). Run data keeps every version, so it reads exactly;
    /// SYSTEM tables keep older versions only while a reader needed them
    /// when they were overwritten.
    pub fn acquire_at(self: &Arc<Self>, version: u64) -> Snapshot {
        let mut active = self.active.lock();
        let version = version.min(self.visible());
        *active.entry(version).or_insert(0) += 1;
        self.oldest.store(*active.keys().next().unwrap(), Ordering::Release);
        Snapshot { version, tracker: self.clone() }
    }

    /// The oldest version some registered reader may still need. Versions
    /// older than the newest one at or below this can be pruned.
    pub fn oldest_needed(&self) -> u64 {
        // Read `oldest` first: a snapshot registered after this load is at a
        // version >= the visible version read next, so it needs nothing older.
        let oldest = self.oldest.load(Ordering::Acquire);
        oldest.min(self.visible())
    }

    pub fn active_count(&self) -> usize {
        self.active.lock().values().sum()
    }

    fn release(&self, version: u64) {
        let mut active = self.active.lock();
        if let Some(n) = active.get_mut(&version) {
            *n -= 1;
            if *n == 0 {
                active.remove(&version);
            }
        }
        self.oldest.store(active.keys().next().copied().unwrap_or(u64::MAX), Ordering::Release);
    }
}

/// A registered read point; dropping it releases the registration.
pub struct Snapshot {
    version: u64,
    tracker: Arc<SnapshotTracker>,
}

impl Snapshot {
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.tracker.release(self.version);
    }
}
