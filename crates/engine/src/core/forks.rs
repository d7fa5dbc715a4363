//! Forks: a run that starts as a copy of another run at a commit version,
//! made without copying anything.
//!
//! A fork is recorded as `SYSTEM | ForkOf | fork id → parent id | at u64 LE`
//! (derived into the [`ForkTable`] by the core's `apply`). Reading key `fork | s` at
//! snapshot `S`: the fork's own newest version at or below `S` decides, a
//! delete included; if the fork never wrote it, the read goes on to
//! `parent | s` at `min(S, at)`, and so on up a chain of forks. Run data keeps
//! its whole history, so the parent's state at `at` stays readable however
//! the parent changes afterwards, and writes to either run never reach the
//! other. Conflicts are the fork's own keys': what it reads from its parent
//! at `at` can never change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use in_mem_core::{InternalKey, RunId, TypeTag};
use in_mem_storage::{Store, Value};
use parking_lot::RwLock;

pub fn fork_key(fork: &RunId) -> Vec<u8> {
    InternalKey::build(&RunId::SYSTEM, TypeTag::ForkOf, fork.as_bytes())
}

pub fn encode(parent: &RunId, at: u64) -> Vec<u8> {
    let mut v = parent.as_bytes().to_vec();
    v.extend_from_slice(&at.to_le_bytes());
    v
}

pub fn decode(bytes: &[u8]) -> Option<(RunId, u64)> {
    (bytes.len() == 24).then(|| (RunId::from_slice(&bytes[..16]).expect("16 bytes"), u64::from_le_bytes(bytes[16..24].try_into().unwrap())))
}

/// An entry of a merged scan: suffix (tag | user key), version, value or
/// delete.
pub type Item = (Vec<u8>, u64, Option<Value>);

/// Two ordered streams, the first (the fork's own entries) winning where
/// both have a suffix.
struct Overlay<'a> {
    own: std::iter::Peekable<Box<dyn Iterator<Item = Item> + 'a>>,
    inherited: std::iter::Peekable<Box<dyn Iterator<Item = Item> + 'a>>,
    reverse: bool,
}

impl Iterator for Overlay<'_> {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        let order = match (self.own.peek(), self.inherited.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(a), Some(b)) => {
                let o = a.0.cmp(&b.0);
                if self.reverse { o.reverse() } else { o }
            }
        };
        match order {
            std::cmp::Ordering::Less => self.own.next(),
            std::cmp::Ordering::Greater => self.inherited.next(),
            std::cmp::Ordering::Equal => {
                self.inherited.next();
                self.own.next()
            }
        }
    }
}

/// The fork table: each fork's parent and fork version, kept equal to the
/// ForkOf table by the core's `apply`; `any` lets reads skip the lookup
/// while there are no forks.
#[derive(Default)]
pub struct ForkTable {
    forks: RwLock<HashMap<RunId, (RunId, u64)>>,
    any: AtomicBool,
}

impl ForkTable {
    /// Follows a write of `fork`'s ForkOf record (`None`: deleted).
    pub fn set(&self, fork: RunId, record: Option<&[u8]>) {
        match record.and_then(decode) {
            Some(of) => {
                self.forks.write().insert(fork, of);
                self.any.store(true, Ordering::Release);
            }
            None => {
                self.forks.write().remove(&fork);
            }
        }
    }

    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The run `run` was forked from and at which version, if it is a fork.
    pub fn of(&self, run: &RunId) -> Option<(RunId, u64)> {
        if !self.any() {
            return None;
        }
        self.forks.read().get(run).copied()
    }

    /// The forks made from `run`, with the version each reads `run` at.
    pub fn forks_of(&self, run: &[u8]) -> smallvec::SmallVec<[(RunId, u64); 4]> {
        if !self.any() {
            return smallvec::SmallVec::new();
        }
        self.forks.read().iter().filter(|(_, (parent, _))| parent.as_bytes()[..] == run[..]).map(|(fork, (_, at))| (*fork, *at)).collect()
    }

    /// Whether some fork was made from `run`.
    pub fn is_parent(&self, run: &[u8]) -> bool {
        self.any() && self.forks.read().values().any(|(parent, _)| parent.as_bytes()[..] == run[..])
    }

    /// `run`'s entries in `[run | lo, run | hi)` at `snapshot`, deletes
    /// included, with its ancestors' filled in where it wrote nothing, as a
    /// stream in key order (or reverse): a page costs what it reads.
    pub fn merged<'a>(
        &'a self,
        store: &'a Store,
        run: &RunId,
        lo: &[u8],
        hi: Option<&[u8]>,
        snapshot: u64,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Item> + 'a> {
        let mut start = run.as_bytes().to_vec();
        start.extend_from_slice(lo);
        let end = match hi {
            Some(h) => {
                let mut e = run.as_bytes().to_vec();
                e.extend_from_slice(h);
                Some(e)
            }
            None => InternalKey::prefix_end(run.as_bytes()),
        };
        let own: Box<dyn Iterator<Item = Item> + 'a> =
            Box::new(store.range_any(start, end, snapshot, reverse).map(|(k, v, value)| (k[16..].to_vec(), v, value)));
        match self.of(run) {
            None => own,
            Some((parent, at)) => {
                Box::new(Overlay { own: own.peekable(), inherited: self.merged(store, &parent, lo, hi, snapshot.min(at), reverse).peekable(), reverse })
            }
        }
    }

    /// Reads `key` at `snapshot`: the run's own newest version decides, else
    /// its parent's at the fork point, up the chain.
    pub fn read(&self, store: &Store, key: &[u8], snapshot: u64) -> Option<(u64, Value)> {
        if !self.any() || key[..16] == [0u8; 16] {
            return store.get(key, snapshot);
        }
        let mut key = key.to_vec();
        let mut snapshot = snapshot;
        loop {
            match store.read_any(&key, snapshot) {
                Some((v, Some(value))) => return Some((v, value)),
                Some((_, None)) => return None,
                None => {
                    let run = RunId::from_slice(&key[..16]).ok()?;
                    let (parent, at) = self.of(&run)?;
                    key[..16].copy_from_slice(parent.as_bytes());
                    snapshot = snapshot.min(at);
                }
            }
        }
    }

    /// Scans `[start, end)` at `snapshot`, through forks.
    pub fn scan(&self, store: &Store, start: &[u8], end: Option<&[u8]>, snapshot: u64, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        let run = RunId::from_slice(&start[..16.min(start.len())]).ok();
        let forked = match run {
            Some(r) if start.len() >= 16 && self.of(&r).is_some() => r,
            _ => return store.scan(start, end, snapshot, reverse, f),
        };
        // A range inside one forked run: its own entries over its ancestors'.
        let hi = end.filter(|e| e.len() >= 16 && e[..16] == start[..16]).map(|e| &e[16..]);
        let mut key = forked.as_bytes().to_vec();
        for (suffix, v, value) in self.merged(store, &forked, &start[16..], hi, snapshot, reverse) {
            let Some(value) = value else { continue };
            key.truncate(16);
            key.extend_from_slice(&suffix);
            if !f(&key, v, &value) {
                break;
            }
        }
    }
}
