//! A run's history: its log of commits, replay to any version, fork, and
//! the diff of two runs.
//!
//! The run log is not stored twice: run data keeps every version of every
//! key (see `Engine::apply_one`), so the commits that touched a run are the
//! distinct versions in the history of its keys, and each commit's writes
//! are the versions it wrote. That history is durable like any data: the
//! WAL holds it, and checkpoints carry it for the keys of existing runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag, now_ms};
use in_mem_storage::Value;
use serde_json::json;

use crate::core::Engine;
use crate::core::forks;
use crate::core::runs::{self, RunInfo, RunStatus};
use crate::primitives::kv;

/// One commit in a run's log.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedCommit {
    pub version: u64,
    /// The run's internal keys it wrote, with the value (`None`: deleted).
    pub writes: Vec<(Vec<u8>, Option<Value>)>,
}

/// One entry that differs between two runs.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffEntry {
    pub tag: TypeTag,
    /// The user key (for traces and machine instances: the id).
    pub key: Vec<u8>,
    /// The comparable payload in each run; `None` where absent.
    pub a: Option<Vec<u8>>,
    pub b: Option<Vec<u8>>,
}

/// What `diff` finds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunDiff {
    pub entries: Vec<DiffEntry>,
    /// Events both logs share, from sequence 0 (same hashes).
    pub events_common: u64,
    pub events_a: u64,
    pub events_b: u64,
}

/// Writes grouped by commit version.
type Commits = BTreeMap<u64, Vec<(Vec<u8>, Option<Value>)>>;

const TRACE_RECORD: u8 = 0x01;
const MACHINE_INSTANCE: u8 = 0x01;

impl Engine {
    fn run_exists_or_not_found(&self, run: &RunId) -> Result<RunInfo> {
        self.run_get(run)?.ok_or_else(|| Error::not_found(format!("run {run} does not exist"), json!({ "run": run.to_string() })))
    }

    /// A replay view of `run` at `at` (default: now): a read-only
    /// transaction pinned at that version on this engine. TTL expiry in it
    /// is judged at the time of the newest KV write of the run (or of the
    /// ancestors it reads through) at or before `at`.
    pub fn replay_view(self: &Arc<Self>, run: &RunId, at: Option<u64>) -> Result<crate::EngineTx> {
        self.run_exists_or_not_found(run)?;
        let now = self.version();
        let at = at.unwrap_or(now);
        if at > now {
            return Err(Error::invalid_argument(format!("cannot replay to version {at}: the newest commit is {now}")));
        }
        // Pinned before the check, so that no commit drops what it checked.
        let _pin = self.tracker().acquire_at(at);
        self.check_history(run, at, "replay")?;
        let mut clock = None;
        self.kv_clock(run, at, &mut clock);
        crate::EngineTx::begin_view(self, at, clock)
    }

    /// The newest KV write time of `run` (and the ancestors a fork reads
    /// through) at or before `at`.
    fn kv_clock(&self, run: &RunId, at: u64, clock: &mut Option<u64>) {
        if let Some((parent, fork_at)) = self.fork_of(run) {
            self.kv_clock(&parent, at.min(fork_at), clock);
        }
        let start = InternalKey::prefix(run, TypeTag::Kv);
        let end = InternalKey::prefix_end(&start);
        // Each key's newest write at or before `at` (a delete has no time:
        // its newest put): the newest of those is the run's newest KV write.
        // Older versions, perhaps in history files, are not read.
        self.store().scan_newest_values(&start, end.as_deref(), at, |_, _, stored| {
            *clock = Some(clock.unwrap_or(0).max(crate::primitives::kv::updated_at(stored)));
        });
    }

    /// The commits that wrote the run's own data, oldest first, up to `at`
    /// (from its history horizon on: see [`Engine::history_horizon`]).
    pub fn run_log(&self, run: &RunId, at: Option<u64>) -> Result<Vec<LoggedCommit>> {
        self.run_exists_or_not_found(run)?;
        let at = at.unwrap_or_else(|| self.version());
        let start = run.as_bytes().to_vec();
        let end = InternalKey::prefix_end(&start);
        let mut by_version = Commits::new();
        // With `history_keep`, the commits before the run's horizon are
        // known only in part: the log starts at it.
        let horizon = self.history_horizon(run);
        self.store().scan_history(&start, end.as_deref(), at, |k, history| {
            for (v, value) in history.iter().filter(|(v, _)| *v >= horizon) {
                by_version.entry(*v).or_default().push((k.to_vec(), value.clone()));
            }
            true
        });
        Ok(by_version.into_iter().map(|(version, writes)| LoggedCommit { version, writes }).collect())
    }

    /// Forks `run` at version `at` (default: now) into a new run, copying
    /// nothing (see `forks.rs`). The new run's parent is `run`; it takes its
    /// tags and metadata, and `name` or the parent's name.
    pub fn run_fork(&self, run: &RunId, name: Option<String>, at: Option<u64>) -> Result<RunInfo> {
        self.check_open_to_write("a fork")?;
        let parent = self.run_exists_or_not_found(run)?;
        let now = self.version();
        let at = at.unwrap_or(now);
        if at > now {
            return Err(Error::invalid_argument(format!("cannot fork at version {at}: the newest commit is {now}")));
        }
        // Pinned until the fork's record is committed (from then on the
        // parent keeps what the fork reads).
        let _pin = self.tracker().acquire_at(at);
        self.check_history(run, at, "fork")?;
        runs::validate_new_run(name.as_deref(), &[])?;
        let info = RunInfo {
            id: RunId::new(),
            name: name.or(parent.name.clone()),
            status: RunStatus::Active,
            parent: Some(*run),
            tags: parent.tags.clone(),
            metadata: parent.metadata.clone(),
            created_at: now_ms(),
            ended_at: None,
            error: None,
        };
        let mut writes: Vec<(Vec<u8>, Option<Value>)> = vec![
            (forks::fork_key(&info.id), Some(in_mem_storage::value(forks::encode(run, at)))),
            (runs::info_key(&info.id), Some(in_mem_storage::value(info.encode()))),
        ];
        for k in info.index_keys() {
            writes.push((k, Some(in_mem_storage::value(b""))));
        }
        self.run_commit(writes, Some(run))?;
        Ok(info)
    }

    /// The commit version that appended event `sequence` to `run`'s log (a
    /// fork's inherited events keep their parent's), for `at: { eventSequence }`.
    pub fn event_version(&self, run: &RunId, sequence: u64) -> Result<u64> {
        self.run_exists_or_not_found(run)?;
        let key = InternalKey::build(run, TypeTag::Event, &sequence.to_be_bytes());
        let snapshot = self.snapshot();
        in_mem_storage::Source::read(self, &key, snapshot.version())
            .map(|(v, _)| v)
            .ok_or_else(|| Error::not_found(format!("run {run} has no event {sequence}"), json!({ "run": run.to_string(), "sequence": sequence })))
    }

    /// Compares the current state of two runs by user key, per primitive.
    pub fn diff(&self, a: &RunId, b: &RunId) -> Result<RunDiff> {
        let snapshot = self.snapshot();
        self.diff_at(a, b, snapshot.version())
    }

    /// [`Engine::diff`] as of version `at`, which the caller keeps pinned
    /// (a transaction begun at `at`), so that it can read more of the same
    /// snapshot — trace and machine values, event tails — through that
    /// transaction.
    pub fn diff_at(&self, a: &RunId, b: &RunId, at: u64) -> Result<RunDiff> {
        self.run_exists_or_not_found(a)?;
        self.run_exists_or_not_found(b)?;
        if at > self.version() {
            return Err(Error::invalid_argument(format!("cannot diff at version {at}: the newest commit is {}", self.version())));
        }
        self.check_history(a, at, "diff")?;
        self.check_history(b, at, "diff")?;
        let now = now_ms();
        // One pass over both runs' entries, each streamed in suffix order
        // (forks read through to their parents): a merge join, so a diff
        // costs one read of each run and holds only what it reports.
        let (mut ia, mut ib) = (self.merged_entries(a, at).peekable(), self.merged_entries(b, at).peekable());
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        let mut entries = Vec::new();
        loop {
            let (x, y) = match (ia.peek(), ib.peek()) {
                (None, None) => break,
                (Some(_), None) => (ia.next(), None),
                (None, Some(_)) => (None, ib.next()),
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    std::cmp::Ordering::Less => (ia.next(), None),
                    std::cmp::Ordering::Greater => (None, ib.next()),
                    std::cmp::Ordering::Equal => (ia.next(), ib.next()),
                },
            };
            let suffix: &[u8] = match (&x, &y) {
                (Some(e), _) | (None, Some(e)) => &e.0,
                (None, None) => unreachable!("one side has an entry"),
            };
            let xa = x.as_ref().and_then(|e| e.2.as_deref());
            let yb = y.as_ref().and_then(|e| e.2.as_deref());
            event_hash(suffix, xa, &mut ea);
            event_hash(suffix, yb, &mut eb);
            let (cx, cy) = (xa.and_then(|v| comparable(suffix, v, now)), yb.and_then(|v| comparable(suffix, v, now)));
            if cx == cy {
                continue;
            }
            let tag = TypeTag::from_u8(suffix[0]).expect("comparable keys have a known tag");
            let key = match tag {
                TypeTag::Trace | TypeTag::Machine => suffix[2..].to_vec(),
                _ => suffix[1..].to_vec(),
            };
            entries.push(DiffEntry { tag, key, a: cx.map(<[u8]>::to_vec), b: cy.map(<[u8]>::to_vec) });
        }
        let events_common = ea.iter().zip(eb.iter()).take_while(|(x, y)| x == y).count() as u64;
        Ok(RunDiff { entries, events_common, events_a: ea.len() as u64, events_b: eb.len() as u64 })
    }
}

/// What two runs' values of one key are compared by: the stored value
/// without write times, or `None` for bookkeeping entries (event log entries
/// and head, trace parent index, idempotency records) that are not compared
/// key by key.
fn comparable<'v>(suffix: &[u8], stored: &'v [u8], now: u64) -> Option<&'v [u8]> {
    match TypeTag::from_u8(*suffix.first()?)? {
        TypeTag::Kv => kv::is_live(stored, now).then(|| kv::payload(stored)),
        TypeTag::State => stored.get(16..),
        TypeTag::Json => Some(stored),
        TypeTag::Trace if suffix.get(1) == Some(&TRACE_RECORD) => Some(stored),
        TypeTag::Machine if suffix.get(1) == Some(&MACHINE_INSTANCE) => Some(stored),
        TypeTag::Vector => Some(stored),
        _ => None,
    }
}

/// Adds an event log entry's (sequence, hash) to `out`; other entries are
/// ignored. Entries stream in key order, so `out` is in sequence order.
fn event_hash(suffix: &[u8], stored: Option<&[u8]>, out: &mut Vec<(u64, [u8; 32])>) {
    if suffix.len() == 9
        && suffix[0] == TypeTag::Event as u8
        && let Some(v) = stored
        && v.len() >= 72
    {
        out.push((u64::from_be_bytes(suffix[1..9].try_into().unwrap()), v[40..72].try_into().unwrap()));
    }
}
