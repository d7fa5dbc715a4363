//! The seam between the engine core and the primitives.
//!
//! A primitive (kv, events, state, machines, traces, json, vectors) is
//! written against what this module offers and nothing else:
//! - [`EngineTx`], a transaction as a primitive sees it: reads through a
//!   snapshot (joining the read set, or not), buffered writes, scans, the
//!   run table's answers, and per-transaction state of its own
//!   ([`TxState`]). The core implements it ([`TxCore`]); a replay view is the
//!   same interface, refusing writes.
//! - [`Db`], what a single operation outside a transaction needs: a read at
//!   the newest visible version and a one-commit write. The fast paths of
//!   `kv.get`, `state.get` and `json.get` are written over it.
//! - [`SecondaryIndex`], how a primitive keeps in-memory state derived from
//!   committed writes (the trace index, the JSON path log, the TTL index):
//!   registered when the database opens, told of every applied write, asked
//!   to check and complete a commit under the commit lock, and given a turn
//!   in each maintenance round.
//!
//! The core never names a primitive; a primitive never names the engine.

use std::any::{Any, TypeId};
use std::path::Path;
use std::sync::Arc;

use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag, now_ms};
use in_mem_storage::{Snapshot, Source, Store, Value};

/// What recovery loaded of the saved secondary indexes.
#[derive(Clone, Debug, Default)]
pub struct IndexLoad {
    /// Saved indexes loaded (one per vector collection).
    pub loaded: usize,
    /// Saved indexes that could not be loaded and were rebuilt, with why.
    pub rebuilt: Vec<String>,
}

/// Writes produced at commit by a [`SecondaryIndex`].
pub type Resolved = Vec<ResolvedWrite>;

/// One write a [`SecondaryIndex`] resolves at commit, against the newest
/// data (the commit lock is held from then until it is stored).
#[derive(Debug)]
pub enum ResolvedWrite {
    /// The key's new value (`None`: delete), and when known its ends: how
    /// many leading and trailing bytes it shares with the key's newest
    /// value (what changed lies between; the log's delta and the store's
    /// back delta then compare nothing).
    Whole { key: Vec<u8>, value: Option<Value>, ends: Option<(usize, usize)> },
    /// The key's newest value, which exists, with `[prefix, len - suffix)`
    /// replaced by `middle`: the log holds it as a delta, and the store
    /// changes the bytes in place when it can (`Store::apply_spliced`).
    Spliced { key: Vec<u8>, prefix: usize, suffix: usize, middle: Vec<u8> },
}

impl ResolvedWrite {
    pub fn key(&self) -> &[u8] {
        match self {
            ResolvedWrite::Whole { key, .. } | ResolvedWrite::Spliced { key, .. } => key,
        }
    }
}

/// A primitive's in-memory state derived from committed writes.
///
/// Every method is called with the commit lock held (or during recovery),
/// so calls arrive in version order.
pub trait SecondaryIndex: Any + Send + Sync {
    /// For [`EngineTx::index`]: the index as `Any`, to downcast.
    fn as_any(&self) -> &dyn Any;

    /// One write being applied at `version`, before the store applies it
    /// (the store still holds what it replaces). `oldest_needed` is the
    /// oldest version an open snapshot can read.
    fn on_write(&self, _store: &Store, _key: &[u8], _value: Option<&[u8]>, _version: u64, _oldest_needed: u64) {}

    /// A write read back by recovery, before it reaches the store: an error
    /// names what makes the value unreadable by this primitive.
    fn check_recovered(&self, _key: &[u8], _value: Option<&[u8]>) -> std::result::Result<(), &'static str> {
        Ok(())
    }

    /// Before a transaction's commit is logged: checks the transaction's own
    /// state ([`TxState`]) against what committed since its `snapshot`, and
    /// returns writes it resolves into, read against `newest` (the newest
    /// committed data). An error aborts the commit.
    fn prepare(&self, _state: &Extensions, _snapshot: u64, _newest: &dyn Source) -> Result<Resolved> {
        Ok(Vec::new())
    }

    /// After a commit at `version` is applied: `state` is the transaction's
    /// (`None` for a single write), `keys` every key it wrote.
    fn committed(&self, _version: u64, _state: Option<&Extensions>, _keys: &mut dyn Iterator<Item = &[u8]>, _oldest_needed: u64) {}

    /// A checkpoint is being written, its snapshot held: save into `dir`
    /// (creating it: it does not exist until an index has something to
    /// save) what lets a later open skip rebuilding the index from the
    /// records.
    fn save(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }

    /// Before recovery applies checkpoint `version`: load what [`save`]
    /// wrote into `dir` (if anything), and from then on ignore the
    /// checkpoint's writes for what was loaded. What could not be loaded is
    /// rebuilt from the records, and said in the answer.
    ///
    /// [`save`]: SecondaryIndex::save
    fn load(&self, _dir: &Path, _version: u64) -> IndexLoad {
        IndexLoad::default()
    }

    /// Recovery applied checkpoint `version`'s entries (before the WAL
    /// after it): of run data, an image holds each key's newest version
    /// at `version`, its older ones being in history files, so what was
    /// rebuilt from the entries alone knows nothing older.
    fn recovered(&self, _version: u64) {}

    /// Run `run` is leaving memory (it went cold, SPEC §17): forget what
    /// was derived from its keys. Its keys are out of the store when it
    /// next hears of them, through [`SecondaryIndex::on_write`] as the run
    /// is loaded back.
    fn evict_run(&self, _run: &RunId) {}

    /// Run `run` was loaded back from the cold file of checkpoint
    /// `version`, which held each key's newest version there (older ones
    /// are in history files): what was rebuilt from it knows nothing older.
    fn warmed(&self, _run: &RunId, _version: u64) {}

    /// A maintenance round at `now` (ms): returns how many entries it
    /// retired.
    fn maintain(&self, _now: u64) -> usize {
        0
    }

    /// The bytes it holds in memory, about (for `stats().memory`).
    fn memory_bytes(&self) -> u64 {
        0
    }
}

/// A primitive's state inside one transaction (JSON: the documents touched
/// and their path operations).
pub trait TxState: Any + Send {
    /// Whether committing it writes anything.
    fn writes_anything(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// The [`TxState`]s of one transaction, one per type.
#[derive(Default)]
pub struct Extensions {
    states: Vec<(TypeId, Box<dyn TxState>)>,
}

impl Extensions {
    /// The state of type `S`, if the transaction made one.
    pub fn get<S: TxState>(&self) -> Option<&S> {
        self.states.iter().find(|(t, _)| *t == TypeId::of::<S>()).and_then(|(_, s)| s.as_any().downcast_ref())
    }

    /// The state of type `S`, made on first use.
    pub fn get_or_default<S: TxState + Default>(&mut self) -> &mut S {
        let at = match self.states.iter().position(|(t, _)| *t == TypeId::of::<S>()) {
            Some(i) => i,
            None => {
                self.states.push((TypeId::of::<S>(), Box::new(S::default())));
                self.states.len() - 1
            }
        };
        self.states[at].1.as_any_mut().downcast_mut().expect("keyed by its type")
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn writes_anything(&self) -> bool {
        self.states.iter().any(|(_, s)| s.writes_anything())
    }
}

/// What the core gives a transaction (implemented in `core::tx`).
pub trait TxCore: Send {
    fn snapshot_version(&self) -> u64;
    /// The time TTL expiry is judged at: a replay view's clock, else now.
    fn now(&self) -> u64;
    /// Whether `run` accepts this transaction's writes.
    fn check_run_writable(&self, run: &RunId) -> Result<()>;
    fn run_exists(&self, run: &RunId) -> bool;
    /// Loads `run` back into memory if it is cold (SPEC §17): for a read
    /// that asks a secondary index about it before reading any of its keys.
    fn resident(&self, run: &RunId);
    /// The run `run` was forked from and the version it was forked at.
    fn fork_of(&self, run: &RunId) -> Option<(RunId, u64)>;
    /// Reads a key through the transaction, joining its read set; its own
    /// writes report `u64::MAX`.
    fn read(&mut self, key: &[u8]) -> Option<(u64, Value)>;
    /// Reads a key at `version` (through forks), joining nothing.
    fn read_at(&self, key: &[u8], version: u64) -> Option<(u64, Value)>;
    /// The newest entry of `key` in this run's own store at or below
    /// `version`, a delete included (`None` value); not through forks.
    fn read_any(&self, key: &[u8], version: u64) -> Option<(u64, Option<Value>)>;
    /// Buffers a write (the caller has checked the run).
    fn buffer(&mut self, key: &[u8], value: Option<Value>);
    /// Scans `[start, end)` through the transaction (the range joins the
    /// read set); own writes report `u64::MAX`.
    fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool);
    /// Scans `[start, end)` at the snapshot, joining nothing.
    fn scan_untracked(&self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool);
    /// The transaction's own buffered writes in `[start, end)`, in key order.
    fn own_writes(&self, start: &[u8], end: &[u8], f: &mut dyn FnMut(&[u8], Option<&Value>));
    fn is_view(&self) -> bool;
    fn writes_nothing(&self) -> bool;
    /// The secondary indexes registered at open.
    fn indexes(&self) -> &[Arc<dyn SecondaryIndex>];
    /// Commits with the transaction's primitive state.
    fn commit(self: Box<Self>, state: &Extensions, wait: bool) -> Result<u64>;
}

/// A transaction over every primitive. Each primitive's operations are an
/// `impl EngineTx` block in that primitive's module, written over the
/// accessors below, so that a single operation outside a transaction is the
/// same code run in a transaction of its own.
pub struct EngineTx {
    core: Box<dyn TxCore>,
    state: Extensions,
}

impl EngineTx {
    pub(crate) fn new(core: Box<dyn TxCore>) -> EngineTx {
        EngineTx { core, state: Extensions::default() }
    }

    pub fn snapshot_version(&self) -> u64 {
        self.core.snapshot_version()
    }

    /// The time TTL expiry is judged at.
    pub(crate) fn now(&self) -> u64 {
        self.core.now()
    }

    /// Whether `run` accepts this transaction's writes: a replay view
    /// accepts none, else the run must be active.
    pub(crate) fn check_run_writable(&self, run: &RunId) -> Result<()> {
        self.core.check_run_writable(run)
    }

    /// See [`TxCore::resident`].
    pub(crate) fn resident(&self, run: &RunId) {
        self.core.resident(run)
    }

    pub(crate) fn run_exists(&self, run: &RunId) -> bool {
        self.core.run_exists(run)
    }

    /// `run` and the runs it was forked from, nearest first.
    pub(crate) fn fork_chain(&self, run: &RunId) -> Vec<RunId> {
        let mut chain = vec![*run];
        while let Some((parent, _)) = self.core.fork_of(chain.last().unwrap()) {
            chain.push(parent);
        }
        chain
    }

    /// Reads a key through the transaction (joining its read set). Its own
    /// writes report the snapshot version + 1.
    pub(crate) fn read(&mut self, key: &[u8]) -> Option<(u64, Value)> {
        let pending = self.core.snapshot_version() + 1;
        self.core.read(key).map(|(v, value)| (if v == u64::MAX { pending } else { v }, value))
    }

    /// Reads a key at the snapshot without joining the read set: for data
    /// whose conflicts are tracked another way (JSON paths).
    pub(crate) fn read_untracked(&self, key: &[u8]) -> Option<Value> {
        self.core.read_at(key, self.core.snapshot_version()).map(|(_, v)| v)
    }

    /// Reads a key at an older `version` (through forks), joining nothing.
    pub(crate) fn read_at(&self, key: &[u8], version: u64) -> Option<(u64, Value)> {
        self.core.read_at(key, version)
    }

    /// The newest entry of `key` at the snapshot in its run's own store, a
    /// delete included.
    pub(crate) fn read_any(&self, key: &[u8]) -> Option<(u64, Option<Value>)> {
        self.core.read_any(key, self.core.snapshot_version())
    }

    /// Buffers a write into a run's keyspace; the run must accept writes.
    pub(crate) fn write(&mut self, key: &[u8], value: Option<Value>) -> Result<()> {
        if key[..16] != [0u8; 16] {
            self.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        } else if self.core.is_view() {
            self.check_run_writable(&RunId::SYSTEM)?;
        }
        self.core.buffer(key, value);
        Ok(())
    }

    /// Scans `[start, end)` through the transaction (the range joins the
    /// read set). Own writes report the snapshot version + 1.
    pub(crate) fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        let pending = self.core.snapshot_version() + 1;
        self.core.scan(start, end, reverse, &mut |k, version, v| f(k, if version == u64::MAX { pending } else { version }, v))
    }

    /// Every key of `prefix` in key order, as (key, version, value).
    pub(crate) fn scan_prefix(&mut self, prefix: &[u8], reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        let end = in_mem_core::InternalKey::prefix_end(prefix);
        self.scan(prefix, end.as_deref(), reverse, f)
    }

    /// Scans `[start, end)` at the snapshot without joining the read set.
    pub(crate) fn scan_untracked(&self, start: &[u8], end: Option<&[u8]>, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        self.core.scan_untracked(start, end, false, f)
    }

    /// The transaction's own buffered writes in `[start, end)`, in key
    /// order: `Some(value)` for a put, `None` for a delete. Reading them
    /// joins nothing.
    pub(crate) fn own_writes(&self, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Option<Value>)> {
        let mut out = Vec::new();
        self.core.own_writes(start, end, &mut |k, v| out.push((k.to_vec(), v.cloned())));
        out
    }

    /// The registered secondary index of type `I`.
    pub(crate) fn index<I: SecondaryIndex>(&self) -> Option<&I> {
        self.core.indexes().iter().find_map(|i| i.as_any().downcast_ref::<I>())
    }

    /// This transaction's state of type `S` (made on first use).
    pub(crate) fn state_mut<S: TxState + Default>(&mut self) -> &mut S {
        self.state.get_or_default()
    }

    /// This transaction's state of type `S`, if any.
    pub(crate) fn state<S: TxState>(&self) -> Option<&S> {
        self.state.get()
    }

    /// Commits: `None` for a read-only transaction (which never conflicts and
    /// never touches the WAL), else the commit version. Without `wait`, the
    /// caller must `Engine::wait_durable` before acknowledging a strict commit.
    pub fn commit(self, wait: bool) -> Result<Option<u64>> {
        if self.core.writes_nothing() && !self.state.writes_anything() {
            return Ok(None);
        }
        self.core.commit(&self.state, wait).map(Some)
    }
}

/// What a single operation outside a transaction needs from the database:
/// the fast paths of reads, and one-commit writes.
pub trait Db: Source {
    /// An error once the database is closed.
    fn check_open(&self) -> Result<()>;
    /// Whether `run` accepts writes.
    fn check_run_writable(&self, run: &RunId) -> Result<()>;
    /// The newest visible version.
    fn version(&self) -> u64;
    /// Pins the newest visible version for several reads.
    fn pin(&self) -> Snapshot;
    /// Reads `key` at the newest visible version (through forks).
    fn get_visible(&self, key: &[u8]) -> Option<(u64, Value)>;
    /// Calls `f(version, value)` with `key`'s value at the newest visible
    /// version while it is pinned, without copying it.
    fn with_visible<R>(&self, key: &[u8], f: impl FnOnce(u64, &Value) -> R) -> Option<R>;
    /// Commits `writes` as one commit; returns once it is durable for the
    /// database's mode.
    fn commit_writes<K: AsRef<[u8]>>(&self, writes: &[(K, Option<Value>)]) -> Result<u64>;
    /// The clock reads and writes use (ms since the epoch).
    fn now(&self) -> u64 {
        now_ms()
    }
}

/// Checks the shape of an internal key handed to a fast path: a run's key
/// (not the SYSTEM run's) of primitive `tag`, with a valid user key.
pub(crate) fn check_fast_key(key: &[u8], tag: TypeTag, what: &str) -> Result<()> {
    if key.len() < 18 || key[16] != tag as u8 || key[..16] == [0u8; 16] {
        return Err(Error::invalid_argument(format!("malformed {what} key")));
    }
    InternalKey::validate_user_key(&key[17..])
}
