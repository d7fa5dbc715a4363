//! Forks: a run that starts as a copy of another run at a commit version,
//! made without copying anything.
//!
//! A fork is recorded as `SYSTEM | ForkOf | fork id → parent id | at u64 LE`
//! (derived into `Engine::forks` by `apply`). Reading key `fork | s` at
//! snapshot `S`: the fork's own newest version at or below `S` decides, a
//! delete included; if the fork never wrote it, the read goes on to
//! `parent | s` at `min(S, at)`, and so on up a chain of forks. Run data keeps
//! its whole history, so the parent's state at `at` stays readable however
//! the parent changes afterwards, and writes to either run never reach the
//! other. Conflicts are the fork's own keys': what it reads from its parent
//! at `at` can never change.

use in_mem_core::{InternalKey, RunId, TypeTag};
use in_mem_storage::{Source, Value};

use crate::database::Engine;

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
type Item = (Vec<u8>, u64, Option<Value>);

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

impl Engine {
    /// The run `run` was forked from and at which version, if it is a fork.
    pub fn fork_of(&self, run: &RunId) -> Option<(RunId, u64)> {
        if !self.has_forks() {
            return None;
        }
        self.forks.read().get(run).copied()
    }

    /// Every entry of `run` at `snapshot` as (suffix, version, value or
    /// delete), its ancestors' filled in, streamed in suffix order.
    pub(crate) fn merged_entries(&self, run: &RunId, snapshot: u64) -> impl Iterator<Item = Item> + '_ {
        self.merged(run, &[], None, snapshot, false)
    }

    /// `run`'s entries in `[run | lo, run | hi)` at `snapshot`, deletes
    /// included, with its ancestors' filled in where it wrote nothing, as a
    /// stream in key order (or reverse): a page costs what it reads.
    fn merged<'a>(&'a self, run: &RunId, lo: &[u8], hi: Option<&[u8]>, snapshot: u64, reverse: bool) -> Box<dyn Iterator<Item = Item> + 'a> {
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
            Box::new(self.store().range_any(start, end, snapshot, reverse).map(|(k, v, value)| (k[16..].to_vec(), v, value)));
        match self.fork_of(run) {
            None => own,
            Some((parent, at)) => {
                Box::new(Overlay { own: own.peekable(), inherited: self.merged(&parent, lo, hi, snapshot.min(at), reverse).peekable(), reverse })
            }
        }
    }
}

impl Engine {
    /// Trace ids of `run` and of the runs it was forked from (up to each
    /// fork point) that the type/tag index offers; `None` when the query has
    /// neither filter. Callers confirm each by reading it through the fork.
    pub(crate) fn trace_candidates(
        &self,
        run: &RunId,
        kind: Option<crate::traces::TraceType>,
        tag: Option<&str>,
        lo: crate::traces::TraceId,
        hi: crate::traces::TraceId,
    ) -> Option<Vec<crate::traces::TraceId>> {
        let mut ids = self.traces.candidates(run, kind, tag, lo, hi)?;
        let mut next = self.fork_of(run);
        while let Some((parent, _)) = next {
            ids.extend(self.traces.candidates(&parent, kind, tag, lo, hi).unwrap_or_default());
            next = self.fork_of(&parent);
        }
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }
}

impl Source for Engine {
    fn read(&self, key: &[u8], snapshot: u64) -> Option<(u64, Value)> {
        if !self.has_forks() || key[..16] == [0u8; 16] {
            return self.store().get(key, snapshot);
        }
        let mut key = key.to_vec();
        let mut snapshot = snapshot;
        loop {
            match self.store().read_any(&key, snapshot) {
                Some((v, Some(value))) => return Some((v, value)),
                Some((_, None)) => return None,
                None => {
                    let run = RunId::from_slice(&key[..16]).ok()?;
                    let (parent, at) = self.fork_of(&run)?;
                    key[..16].copy_from_slice(parent.as_bytes());
                    snapshot = snapshot.min(at);
                }
            }
        }
    }

    fn scan_live(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        let run = RunId::from_slice(&start[..16.min(start.len())]).ok();
        let forked = match run {
            Some(r) if start.len() >= 16 && self.fork_of(&r).is_some() => r,
            _ => return self.store().scan(start, end, snapshot, reverse, f),
        };
        // A range inside one forked run: its own entries over its ancestors'.
        let hi = end.filter(|e| e.len() >= 16 && e[..16] == start[..16]).map(|e| &e[16..]);
        let mut key = forked.as_bytes().to_vec();
        for (suffix, v, value) in self.merged(&forked, &start[16..], hi, snapshot, reverse) {
            let Some(value) = value else { continue };
            key.truncate(16);
            key.extend_from_slice(&suffix);
            if !f(&key, v, &value) {
                break;
            }
        }
    }
}
