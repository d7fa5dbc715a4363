//! The feed of committed changes that watchers read (see `watch.rs`).
//!
//! While at least one watcher is open, every commit's writes are kept in a
//! bounded ring (`OpenOptions::watch_buffer` commits). No watcher: nothing is
//! recorded, the commit path pays one atomic load.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use in_mem_storage::Value;
use parking_lot::{Condvar, Mutex};

/// One recorded commit: its version and writes.
pub(crate) type Recorded = (u64, Vec<(Box<[u8]>, Option<Value>)>);

#[derive(Default)]
pub(crate) struct Ring {
    pub(crate) commits: VecDeque<Recorded>,
    pub(crate) closed: HashSet<u64>,
}

pub struct Feed {
    pub(crate) ring: Mutex<Ring>,
    pub(crate) wake: Condvar,
    pub(crate) watchers: AtomicUsize,
    pub(crate) next_id: AtomicU64,
    capacity: usize,
}

impl Feed {
    pub fn new(capacity: usize) -> Feed {
        Feed { ring: Mutex::default(), wake: Condvar::new(), watchers: AtomicUsize::new(0), next_id: AtomicU64::new(1), capacity: capacity.max(1) }
    }

    /// Whether a watcher is listening (else [`Feed::record`] keeps nothing).
    pub fn watched(&self) -> bool {
        self.watchers.load(Ordering::Acquire) > 0
    }

    /// Records a commit's writes, if anyone watches. Called with the commit
    /// lock held, so commits arrive in version order.
    pub fn record<K: AsRef<[u8]>>(&self, version: u64, writes: &[(K, Option<Value>)]) {
        if self.watchers.load(Ordering::Acquire) == 0 {
            return;
        }
        let entry: Vec<(Box<[u8]>, Option<Value>)> =
            writes.iter().filter(|(k, _)| k.as_ref()[..16] != [0u8; 16]).map(|(k, v)| (k.as_ref().into(), v.clone())).collect();
        let mut ring = self.ring.lock();
        ring.commits.push_back((version, entry));
        while ring.commits.len() > self.capacity {
            ring.commits.pop_front();
        }
        // No wake-up here: the commit is not visible yet, and a watcher
        // woken now would find nothing deliverable and sleep through it (up
        // to its timeout, a second). The committer calls `notify` once it
        // has published the version.
    }

    /// Wakes waiting watchers: a commit became visible (or, in strict
    /// mode, durable). Taking the ring's lock first means a watcher is
    /// either still to look at the deliverable version (and sees the new
    /// one) or already waiting (and is woken): never between the two.
    pub fn notify(&self) {
        if self.watchers.load(Ordering::Acquire) > 0 {
            drop(self.ring.lock());
            self.wake.notify_all();
        }
    }
}
