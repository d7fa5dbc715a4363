//! The engine: open and recovery, the one commit path, the fast paths of
//! single operations, runs, stats and the maintenance thread.
//!
//! Before the commit lock, the keys a commit writes that the store does not
//! hold yet go into its indexes with no version (`Store::prepare`: readers
//! take them as absent; a commit that fails takes them back under the lock).
//!
//! Commit order (enforced in `commit`, with the commit lock held):
//! 1. validate the transaction (first committer wins);
//! 2. check that every run written to is active;
//! 3. assign the next version;
//! 4. append the commit's one WAL record;
//! 5. apply every write to the store at that version;
//! 6. publish the version, making the whole commit visible at once.
//!
//! Then, outside the lock, a strict commit waits for its record's fsync
//! (group commit); its caller is answered only after that.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use in_mem_concurrency::{CommitLock, Transaction, Write, validate};
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag, now_ms};
use in_mem_durability::repair::{Repair, repair};
use in_mem_durability::{DirLock, Mode, Wal, WalOptions, recover, recover_read_only};
use in_mem_storage::{Entry, Snapshot, SnapshotTracker, Source, Store, Value};
use parking_lot::{Condvar, Mutex, RwLock};
use serde_json::json;

use super::checkpointing::{self, CheckpointProgress, CheckpointReport, Checkpoints, LoadTarget};
use super::cold::{ColdRuns, ColdStats, Horizons};
use super::feed::Feed;
use super::forks::{self, ForkTable};
use super::options::{Durability, OpenOptions};
use super::runs::{self, RunAction, RunInfo, RunListOptions, RunStatus, validate_new_run};
use super::spilled::HistoryFiles;
use super::{commit_record, registry};
use crate::access::{Db, Extensions, IndexLoad, ResolvedWrite, SecondaryIndex};

/// One engine per data directory per process (see `registry.rs`).
static OPEN: std::sync::LazyLock<registry::Registry<Engine>> = std::sync::LazyLock::new(Default::default);

/// Makes the secondary indexes a new engine keeps (see [`SecondaryIndex`]).
pub type IndexFactory = fn() -> Vec<Arc<dyn SecondaryIndex>>;

#[derive(Clone, Debug, Default)]
pub struct RecoveryStats {
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    pub last_version: u64,
    /// Wall-clock time (ms) of the newest recovered commit, 0 if none.
    pub last_commit_at: u64,
    pub duration_ms: f64,
    pub torn_tail: Option<in_mem_durability::TornTail>,
    /// Runs that were active when the process that wrote them stopped.
    pub orphaned_runs: Vec<RunId>,
    /// The commit version of the checkpoint recovery started from (0: none).
    pub checkpoint_version: u64,
    /// Why the newest checkpoint could not be used, when recovery fell back
    /// to the previous one.
    pub checkpoint_fallback: Option<String>,
    /// What `{ repair: true }` removed (and saved aside) to open.
    pub repairs: Vec<Repair>,
    /// The secondary indexes saved beside the checkpoint: how many loaded,
    /// which were rebuilt and why.
    pub indexes: IndexLoad,
}

/// The state recovery rebuilt, before the WAL is opened for writing.
struct Replayed {
    engine: Engine,
    report: in_mem_durability::RecoveryReport,
    last_commit_at: u64,
    checkpoint_version: u64,
    checkpoint_id: Option<[u8; 16]>,
    checkpoint_fallback: Option<String>,
    /// The loaded image holds run data's older versions (written before
    /// history files, or with `history: { keep }`).
    history_in_image: bool,
}

#[derive(Clone, Debug)]
pub struct Stats {
    pub version: u64,
    pub durability: Durability,
    pub path: Option<PathBuf>,
    pub keys: usize,
    pub runs: usize,
    pub active_snapshots: usize,
    pub wal: Option<in_mem_durability::WalStats>,
    pub recovery: RecoveryStats,
    pub maintenance: MaintenanceStats,
    /// What the store holds in memory.
    pub memory: in_mem_storage::Memory,
    /// Runs whose history no longer reaches their start (`history_keep`).
    pub runs_with_horizon: usize,
    /// The history files: versions checkpoints moved out of memory.
    pub history_on_disk: super::spilled::OnDisk,
    /// The secondary indexes' bytes in memory, about (the vector graphs).
    pub index_bytes: u64,
    /// Runs out of memory, in cold files.
    pub cold: ColdStats,
}

/// The background maintenance thread (TTL purge, dropping deleted runs,
/// automatic checkpoints): a panic in one round is caught and counted here,
/// and the next round runs as usual.
#[derive(Clone, Debug, Default)]
pub struct MaintenanceStats {
    pub rounds: u64,
    /// Expired TTL entries retired from the expiry index.
    pub expired: u64,
    pub panics: u64,
    pub last_error: Option<String>,
    /// When the last panic happened (ms since the epoch).
    pub last_error_at: Option<u64>,
}

/// Run statuses by id, hashed with foldhash: checked on every write.
type RunTable = HashMap<RunId, RunStatus, foldhash::fast::RandomState>;

struct Maintenance {
    stop: Mutex<bool>,
    wake: Condvar,
    /// A commit found a checkpoint due (history waiting in memory): the
    /// next round starts without waiting for the interval.
    nudged: AtomicBool,
    stats: Mutex<MaintenanceStats>,
    /// Test hook: the next round panics.
    #[cfg(feature = "test-hooks")]
    panic_next: AtomicBool,
}

/// The file in a data directory that says its history was cut: `keep N`,
/// the smallest `history: { keep }` it was ever opened with.
pub const HISTORY_FILE: &str = "HISTORY";

fn read_history_cut(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join(HISTORY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().strip_prefix("keep ").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n >= 1).map(Some).ok_or_else(|| Error::Corruption {
            file: path.display().to_string(),
            offset: 0,
            reason: format!("expected 'keep N', found {text:?}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path.display(), e)),
    }
}

/// Records `keep` in [`HISTORY_FILE`] (written aside, fsynced, renamed).
fn write_history_cut(dir: &Path, keep: usize) -> Result<()> {
    let path = dir.join(HISTORY_FILE);
    let tmp = dir.join(format!("{HISTORY_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, format!("keep {keep}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| Error::io(path.display(), e))?;
    in_mem_durability::sync_dir(dir)
}

/// Writes of a commit whose new keys [`Engine::commit_with_state`] adds to
/// the indexes before the commit lock (the rest are added under it).
const PREPARED: usize = 16;

/// A write resolved as a change to its key's newest value
/// ([`ResolvedWrite::Spliced`]): `[prefix, len - suffix)` becomes `middle`.
struct Splice<'a> {
    key: &'a [u8],
    prefix: usize,
    suffix: usize,
    middle: &'a [u8],
}

thread_local! {
    /// Whether commits made on this thread return before their fsync
    /// ([`defer_durability`]).
    static DEFERRED: Cell<bool> = const { Cell::new(false) };
}

/// Makes commits made on the calling thread return once applied, without
/// waiting for their fsync in strict mode, for a caller that acknowledges
/// nothing before it has itself waited ([`Engine::wait_durable`]) for the
/// newest version: the server's thread, which waits once for all the commits
/// of the requests it read together (group commit). Other threads are not
/// affected.
pub fn defer_durability(on: bool) {
    DEFERRED.with(|d| d.set(on));
}

/// What [`Engine::subscribe_freed`] calls.
pub type FreedSubscriber = Arc<dyn Fn() + Send + Sync>;

pub struct Engine {
    path: Option<PathBuf>,
    options: OpenOptions,
    store: Store,
    tracker: Arc<SnapshotTracker>,
    commit: CommitLock,
    wal: Option<Wal>,
    /// Status of every run, kept equal to the run table by `apply`.
    runs: RwLock<RunTable>,
    /// The primitives' derived state, registered at open.
    indexes: Vec<Arc<dyn SecondaryIndex>>,
    /// What recovery loaded of the indexes saved beside the checkpoint.
    index_load: Mutex<IndexLoad>,
    /// Checkpoint state of a durable database.
    checkpoints: Option<Checkpoints>,
    /// The history files the store reads versions moved out of memory from
    /// (a durable database's; set by recovery).
    history_files: Mutex<Arc<HistoryFiles>>,
    /// Runs moved out of memory whole (the store loads them back).
    cold: Arc<ColdRuns>,
    /// Forks by id: (parent, version), kept equal to the ForkOf table by
    /// `apply`; `any_forks` lets reads skip the lookup while there are none.
    forks: ForkTable,
    /// Committed changes for watchers.
    feed: Arc<Feed>,
    /// Runs deleted at a version, whose keys go once no snapshot needs them.
    deleted_runs: Mutex<Vec<(RunId, u64)>>,
    /// With `history_keep`: per run, the version its history is whole from
    /// (older versions of some of its keys were dropped).
    /// (Shared with the cold runs, which find those of runs cold since the
    /// open when they load them.)
    horizons: Arc<Horizons>,
    /// Unit tests: how long a commit waits between recording its changes
    /// for watchers and publishing its version.
    #[cfg(test)]
    pub(crate) pause_before_publish_ms: std::sync::atomic::AtomicU64,
    /// The smallest `history: { keep }` this directory was ever opened with.
    history_cut: Mutex<Option<usize>>,
    recovery: RecoveryStats,
    maintenance: Arc<Maintenance>,
    /// Told after the maintenance thread freed memory other threads
    /// allocated ([`Engine::subscribe_freed`]).
    freed: parking_lot::Mutex<Vec<(u64, FreedSubscriber)>>,
    freed_ids: AtomicU64,
    maintenance_thread: Mutex<Option<JoinHandle<()>>>,
    /// One checkpoint at a time, its evictions included: a checkpoint that
    /// started while another's runs were still leaving memory would scan
    /// part of a run (as warm) and write that part to its own cold file.
    checkpointing: Mutex<()>,
    shut: AtomicBool,
    _lock: Mutex<Option<DirLock>>,
    /// The open handles ([`Handle`]); the last one to close shuts the
    /// engine down, in the thread that closes it.
    handles: Mutex<HandleCount>,
    /// Raised once this engine has shut down and released `_lock`.
    closed: Arc<registry::Closed>,
}

impl Engine {
    /// Opens a database: in memory when `path` is `None`, else the data
    /// directory at `path`, shared with any other opener in this process;
    /// a new engine keeps the secondary indexes `indexes` makes.
    pub fn open_with(path: Option<&Path>, options: OpenOptions, indexes: IndexFactory) -> Result<Handle> {
        match path {
            None => {
                if options.read_only {
                    return Err(Error::invalid_argument("readOnly needs a data directory; a memory-only database has nothing to read"));
                }
                if options.durability != Durability::Memory {
                    return Err(Error::invalid_argument(format!(
                        "durability '{}' needs a path; without one the database is memory-only",
                        options.durability.as_str()
                    )));
                }
                Ok(Self::start(Self::new(None, options, None, None, RecoveryStats::default(), indexes))?.try_handle().expect("a new engine takes handles"))
            }
            Some(path) => {
                if options.durability == Durability::Memory {
                    return Err(Error::invalid_argument("durability 'memory' keeps no files; open without a path for a memory-only database"));
                }
                if path.exists() && !path.is_dir() {
                    return Err(Error::invalid_argument(format!(
                        "{} is a file, not a data directory; give the path of a directory (it is created if missing)",
                        path.display()
                    )));
                }
                if options.read_only && !path.is_dir() {
                    return Err(Error::not_found(format!("no data directory at {}", path.display()), json!({ "path": path.display().to_string() })));
                }
                std::fs::create_dir_all(path).map_err(|e| Error::io(path.display(), e))?;
                let canonical = path.canonicalize().map_err(|e| Error::io(path.display(), e))?;
                let wanted = options.durability;
                let read_only = options.read_only;
                if read_only && options.repair {
                    return Err(Error::invalid_argument("repair writes to the directory; it cannot be combined with readOnly"));
                }
                let options_copy = options.clone();
                let engine = OPEN.open_shared(canonical.clone(), || Self::open_dir(&canonical, options, indexes), |e| e.try_handle(), |e| e.closed_signal())?;
                if engine.options.read_only != read_only {
                    return Err(Error::invalid_argument(format!(
                        "{} is already open in this process {}; open it the same way",
                        canonical.display(),
                        if engine.options.read_only { "read-only" } else { "for writing" }
                    )));
                }
                if engine.durability() != wanted {
                    return Err(Error::invalid_argument(format!(
                        "{} is already open in this process with durability '{}'; open it with the same durability (asked for '{}')",
                        canonical.display(),
                        engine.durability().as_str(),
                        wanted.as_str()
                    )));
                }
                // One engine, one set of options: a later open in this
                // process must ask for what the first one did.
                if let Some((name, first, now)) = engine.options.first_difference(&options_copy) {
                    return Err(Error::invalid_argument(format!(
                        "{} is already open in this process with {name} {first}; every open of a path in one process shares its engine, so give the same options (asked for {name} {now})",
                        canonical.display()
                    )));
                }
                Ok(engine)
            }
        }
    }

    pub(crate) fn new(
        path: Option<PathBuf>,
        options: OpenOptions,
        wal: Option<Wal>,
        lock: Option<DirLock>,
        recovery: RecoveryStats,
        indexes: IndexFactory,
    ) -> Engine {
        let watch_buffer = options.watch_buffer;
        let indexes = indexes();
        let tracker = SnapshotTracker::new(0);
        let store = Store::new();
        store.set_clock(now_ms());
        let cold = Arc::new(ColdRuns::new(path.as_deref(), indexes.clone(), tracker.clone()));
        store.set_cold(cold.clone());
        Engine {
            path,
            options,
            store,
            tracker,
            commit: CommitLock::new(0),
            wal,
            runs: RwLock::default(),
            indexes,
            index_load: Mutex::default(),
            checkpoints: None,
            history_files: Mutex::default(),
            cold,
            deleted_runs: Mutex::default(),
            horizons: Arc::default(),
            #[cfg(test)]
            pause_before_publish_ms: std::sync::atomic::AtomicU64::new(0),
            history_cut: Mutex::default(),
            feed: Arc::new(Feed::new(watch_buffer)),
            forks: ForkTable::default(),
            recovery,
            freed: parking_lot::Mutex::new(Vec::new()),
            freed_ids: AtomicU64::new(0),
            maintenance: Arc::new(Maintenance {
                stop: Mutex::new(false),
                wake: Condvar::new(),
                nudged: AtomicBool::new(false),
                stats: Mutex::default(),
                #[cfg(feature = "test-hooks")]
                panic_next: AtomicBool::new(false),
            }),
            maintenance_thread: Mutex::new(None),
            checkpointing: Mutex::new(()),
            shut: AtomicBool::new(false),
            _lock: Mutex::new(lock),
            handles: Mutex::default(),
            closed: Arc::default(),
        }
    }

    fn open_dir(dir: &Path, options: OpenOptions, indexes: IndexFactory) -> Result<Arc<Engine>> {
        let lock = DirLock::acquire(dir)?;
        let wal_dir = dir.join("wal");
        if !options.read_only {
            std::fs::create_dir_all(&wal_dir).map_err(|e| Error::io(wal_dir.display(), e))?;
        }
        let started = Instant::now();
        let mut repairs = Vec::new();
        let mut replayed = loop {
            match Self::recover_dir(dir, &wal_dir, &options, indexes) {
                Ok(r) => break r,
                // Each repair removes the damage it names, so the next replay
                // gets further; the bound only guards against a repair that
                // could not.
                Err(e @ Error::Corruption { .. }) if options.repair && repairs.len() < 64 => repairs.push(repair(dir, &wal_dir, e)?),
                Err(e) => return Err(e),
            }
        };
        let engine = &mut replayed.engine;
        *engine._lock.get_mut() = Some(lock);
        // History once cut stays cut: the smallest keep ever used bounds
        // the horizons of every later open, with or without the option.
        let cut = read_history_cut(dir)?;
        if let Some(keep) = [cut, options.history_keep].into_iter().flatten().min() {
            engine.recover_horizons(keep);
            engine.cold.find_horizons(keep, engine.horizons.clone());
        }
        if let Some(keep) = options.history_keep
            && !options.read_only
            && cut.is_none_or(|c| keep < c)
        {
            write_history_cut(dir, keep)?;
        }
        *engine.history_cut.lock() = [cut, options.history_keep].into_iter().flatten().min();
        let report = replayed.report;
        let mut orphaned_runs = engine.runs.read().iter().filter(|(_, s)| **s == RunStatus::Active).map(|(r, _)| *r).collect::<Vec<_>>();
        orphaned_runs.sort();
        engine.recovery = RecoveryStats {
            segments: report.segments,
            records: report.records,
            bytes: report.bytes,
            last_version: report.last_version,
            last_commit_at: replayed.last_commit_at,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            torn_tail: report.torn_tail.clone(),
            orphaned_runs,
            checkpoint_version: replayed.checkpoint_version,
            checkpoint_fallback: replayed.checkpoint_fallback,
            repairs,
            indexes: std::mem::take(&mut *engine.index_load.lock()),
        };
        let database_id = report.database_id.or(replayed.checkpoint_id).unwrap_or(*RunId::new().as_bytes());
        let wal_options = WalOptions {
            mode: if options.durability == Durability::Strict { Mode::Strict } else { Mode::Buffered },
            segment_bytes: options.segment_bytes,
            flush_interval: options.flush_interval,
            max_pending_writes: options.max_pending_writes.max(1),
        };
        if options.read_only {
            return Self::start(replayed.engine);
        }
        let wal = Wal::open(&wal_dir, database_id, wal_options, report.tail_segment, report.next_segment, report.last_version, report.segment_versions)?;
        if wal.mode() == Mode::Strict {
            // Strict watchers are given only durable commits: the syncer's
            // fsyncs wake them as blocking callers' fsyncs do.
            let feed = engine.feed.clone();
            wal.subscribe(Arc::new(move |_| feed.notify()));
        }
        engine.wal = Some(wal);
        // A checkpoint that could not be loaded is no longer named: the
        // next checkpoint keeps the loaded one as its fallback.
        let kept = checkpointing::named(dir)?.into_iter().skip_while(|v| *v != replayed.checkpoint_version).collect();
        // What the loaded image moved to history files already: a checkpoint
        // at its version has nothing to do unless it held older versions.
        let spilled_at = if replayed.history_in_image { 0 } else { replayed.checkpoint_version };
        engine.checkpoints = Some(Checkpoints::new(dir, database_id, kept, spilled_at));
        Self::start(replayed.engine)
    }

    /// Loads the newest usable checkpoint and replays the WAL after it into
    /// a fresh engine. Changes nothing on disk except cutting a torn tail.
    fn recover_dir(dir: &Path, wal_dir: &Path, options: &OpenOptions, indexes: IndexFactory) -> Result<Replayed> {
        let make = || Self::new(Some(dir.to_path_buf()), options.clone(), None, None, RecoveryStats::default(), indexes);
        let loaded = checkpointing::load(make, dir, options.repair)?;
        let engine = loaded.engine;
        let mut last_commit_at = 0;
        let apply = |version: u64, payload: &[u8]| {
            let newest = |k: &[u8]| match engine.store.read_any(k, u64::MAX) {
                Some((v, Some(value))) => Some((v, value)),
                _ => None,
            };
            let record = commit_record::decode(payload, newest, |k, v| engine.check_recovered(k, v)).map_err(|e| match e {
                Error::Internal { message } => {
                    Error::Corruption { file: wal_dir.display().to_string(), offset: 0, reason: format!("commit {version}: {message}") }
                }
                other => other,
            })?;
            engine.apply(version, &record.writes, engine.tracker.visible());
            last_commit_at = record.timestamp;
            engine.tracker.publish(version);
            Ok(())
        };
        let report = if options.read_only { recover_read_only(wal_dir, loaded.version, apply)? } else { recover(wal_dir, loaded.version, apply)? };
        if let (Some(a), Some(b)) = (loaded.database_id, report.database_id)
            && a != b
        {
            return Err(Error::Corruption {
                file: wal_dir.display().to_string(),
                offset: 24,
                reason: "the WAL belongs to another database than the checkpoint".into(),
            });
        }
        *engine.commit.lock() = report.last_version;
        Ok(Replayed {
            engine,
            report,
            last_commit_at,
            checkpoint_version: loaded.version,
            checkpoint_id: loaded.database_id,
            checkpoint_fallback: loaded.fallback_reason,
            history_in_image: loaded.history_in_image,
        })
    }

    pub(crate) fn start(engine: Engine) -> Result<Arc<Engine>> {
        let engine = Arc::new(engine);
        let weak = Arc::downgrade(&engine);
        let m = engine.maintenance.clone();
        let interval = engine.options.purge_interval;
        let handle = std::thread::Builder::new()
            .name("in-mem-maintenance".into())
            .spawn(move || maintenance_loop(weak, m, interval))
            .map_err(|e| Error::io("starting the maintenance thread", e))?;
        *engine.maintenance_thread.lock() = Some(handle);
        Ok(engine)
    }

    /// A new handle, unless the last one has closed (the engine is shutting
    /// down or shut).
    pub(crate) fn try_handle(self: &Arc<Self>) -> Option<Handle> {
        let mut h = self.handles.lock();
        if h.closing || self.shut.load(Ordering::Acquire) {
            return None;
        }
        h.open += 1;
        Some(Handle { engine: Some(self.clone()) })
    }

    fn release_handle(&self) -> Result<()> {
        let last = {
            let mut h = self.handles.lock();
            h.open = h.open.saturating_sub(1);
            h.closing |= h.open == 0;
            h.open == 0
        };
        if last { self.shutdown() } else { Ok(()) }
    }

    pub(crate) fn closed_signal(&self) -> Arc<registry::Closed> {
        self.closed.clone()
    }

    pub fn durability(&self) -> Durability {
        self.options.durability
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn version(&self) -> u64 {
        self.tracker.visible()
    }

    // ----- the commit path -------------------------------------------------

    /// Applies a commit's writes to the store and the derived in-memory
    /// state. Called with the commit lock held, or during recovery.
    pub(crate) fn apply<K: AsRef<[u8]>>(&self, version: u64, writes: &[(K, Option<Value>)], oldest_needed: u64) {
        self.apply_with_ends(version, writes, oldest_needed, &[], &[]);
    }

    /// [`Engine::apply`], given for some writes (by index) the shared ends
    /// of the key's newest value and the new one, as the WAL's deltas
    /// measured them (see `Store::apply_known`).
    /// `prepared`: the entries `Store::prepare` gave for the first writes.
    fn apply_with_ends<K: AsRef<[u8]>>(
        &self,
        version: u64,
        writes: &[(K, Option<Value>)],
        oldest_needed: u64,
        ends: &[(usize, usize, usize)],
        prepared: &[Entry],
    ) {
        for (i, (key, value)) in writes.iter().enumerate() {
            let known = ends.iter().find(|(j, _, _)| *j == i).map(|&(_, p, s)| (p, s));
            self.apply_one(key.as_ref(), version, value.clone(), oldest_needed, known, prepared.get(i));
        }
    }

    /// Writes a checkpoint now (see `checkpointing.rs`). `None` for a
    /// memory-only database.
    pub fn checkpoint(&self) -> Result<Option<CheckpointReport>> {
        self.check_open_to_write("a checkpoint")?;
        self.checkpoint_now()
    }

    pub fn checkpoint_progress(&self) -> CheckpointProgress {
        self.checkpoints.as_ref().map(|c| c.progress()).unwrap_or_default()
    }

    pub(crate) fn checkpoint_now(&self) -> Result<Option<CheckpointReport>> {
        let (Some(wal), Some(cps)) = (&self.wal, &self.checkpoints) else {
            return Ok(None);
        };
        let _alone = self.checkpointing.lock();
        let files = self.history_files.lock().clone();
        let now = now_ms();
        let snapshot = self.snapshot();
        let evict = self.cold_due(now);
        let report = cps.write(
            wal,
            &self.store,
            snapshot,
            |run| self.run_data_needed(run),
            |dir| self.indexes.iter().try_for_each(|i| i.save(dir)),
            &files,
            self.spills(),
            &self.cold,
            &evict,
        )?;
        if let Some(r) = &report {
            for line in &r.evicted {
                self.evict_run(line);
            }
            if !r.evicted.is_empty() {
                checkpointing::release_freed_memory();
            }
            self.cold.passed_over(evict.into_iter().filter(|run| !r.evicted.iter().any(|l| l.run == *run)), now);
        }
        Ok(report)
    }

    /// The runs the next checkpoint moves out of memory (SPEC §17).
    fn cold_due(&self, now: u64) -> std::collections::HashSet<[u8; 16]> {
        self.store.set_clock(now);
        match self.options.cold_after_ms {
            Some(after) if self.wal.is_some() => self.cold.due(now, after, |run| {
                let end = InternalKey::prefix_end(run);
                self.store.last_read(run, end.as_deref())
            }),
            _ => Default::default(),
        }
    }

    /// Takes the keys of a run a checkpoint just wrote to a cold file out
    /// of memory, unless it no longer exists or has not ended (its line then
    /// names a file the next checkpoint no longer needs).
    ///
    /// Not under the commit lock: waiting for the scans under way to end
    /// ([`Store::evict`]) while holding it would stop every writer, and a
    /// scan under the commit lock (a commit's checks) could wait for the
    /// eviction. Nothing writes to an ended run's data; a deletion racing
    /// this removes what this removes (and replays onto the run loaded back).
    fn evict_run(&self, line: &in_mem_durability::manifest::ColdLine) {
        let Ok(run) = RunId::from_slice(&line.run) else { return };
        if !self.runs.read().get(&run).is_some_and(|s| !matches!(s, RunStatus::Active | RunStatus::Paused)) {
            return;
        }
        let start = run.as_bytes().to_vec();
        let end = InternalKey::prefix_end(&start);
        self.store.evict(&start, end.as_deref(), || self.cold.mark(&self.store, &run, *line));
        self.cold.forget_derived(&run);
    }

    /// Whether checkpoints move older versions to history files: a
    /// database that keeps every version does; one that keeps the newest N
    /// holds them (bounded) in memory.
    fn spills(&self) -> bool {
        self.options.history_keep.is_none()
    }

    /// Writes one key and keeps the derived in-memory state (run table, fork
    /// table, the secondary indexes) in step. Run data keeps every version: its history
    /// is what replay and forks read. Only the SYSTEM tables are pruned.
    fn apply_one(&self, key: &[u8], version: u64, value: Option<Value>, oldest_needed: u64, ends: Option<(usize, usize)>, entry: Option<&Entry>) {
        let system = key[..16] == [0u8; 16];
        // A write to a cold run's key (recovery replaying a deleted run's
        // tombstones) lands on the run loaded back.
        if !system {
            self.store.ensure_resident(key);
        }
        for index in &self.indexes {
            index.on_write(&self.store, key, value.as_deref(), version, oldest_needed);
        }
        match InternalKey::tag(key) {
            Some(TypeTag::RunInfo) if system => {
                if let Ok(run) = RunId::from_slice(InternalKey::user(key)) {
                    let mut runs = self.runs.write();
                    match value.as_deref().and_then(RunInfo::status_of) {
                        Some(status) => {
                            let ended = !matches!(status, RunStatus::Active | RunStatus::Paused);
                            self.cold.run_ended(&run, value.as_deref().filter(|_| ended).map(|v| RunInfo::ended_at_of(v).unwrap_or(0)));
                            runs.insert(run, status);
                        }
                        None => {
                            self.cold.forget(&self.store, run.as_bytes());
                            runs.remove(&run);
                            self.deleted_runs.lock().push((run, version));
                            self.horizons.lock().remove(&run);
                        }
                    }
                }
            }
            Some(TypeTag::ForkOf) if system => {
                if let Ok(run) = RunId::from_slice(InternalKey::user(key)) {
                    self.forks.set(run, value.as_deref());
                }
            }
            _ => {}
        }
        self.store_write(key, system, oldest_needed, |oldest, keep, pins| self.store.apply_known(key, version, value, oldest, keep, pins, ends, entry));
    }

    /// [`Engine::apply_one`] of a spliced write (a JSON document's key,
    /// never a SYSTEM one): the store changes the newest value's bytes in
    /// place when it can (see `Store::apply_spliced`).
    fn apply_spliced(&self, s: &Splice<'_>, version: u64, oldest_needed: u64) {
        self.store.ensure_resident(s.key);
        self.store_write(s.key, false, oldest_needed, |oldest, keep, pins| {
            self.store.apply_spliced(s.key, version, (s.prefix, s.suffix), s.middle, oldest, keep, pins)
        });
        if !self.indexes.is_empty() {
            let value = self.store.read_any(s.key, u64::MAX).and_then(|(_, v)| v);
            for index in &self.indexes {
                index.on_write(&self.store, s.key, value.as_deref(), version, oldest_needed);
            }
        }
    }

    /// Stores one write through `write(oldest_needed, keep, pins)`, with the
    /// history this database keeps: run data keeps every version (its
    /// history is what replay and forks read) unless `history: { keep }`
    /// says otherwise; the SYSTEM tables are pruned.
    fn store_write(&self, key: &[u8], system: bool, oldest_needed: u64, write: impl FnOnce(u64, usize, &[u64]) -> Option<u64>) {
        match self.options.history_keep {
            _ if system => {
                write(oldest_needed, 1, &[]);
            }
            None => {
                write(0, 1, &[]);
            }
            Some(keep) => {
                // The event log's head (its length and the tip of its hash
                // chain) keeps its history: replaying the log to any version
                // reads it, and every event stays anyway.
                let keep = if InternalKey::tag(key) == Some(TypeTag::Event) && InternalKey::user(key).is_empty() { usize::MAX } else { keep };
                // A fork reads its parent's data as it was at the fork, while
                // it exists or a fork of it reads through it.
                let pins: smallvec::SmallVec<[u64; 4]> =
                    self.forks.forks_of(&key[..16]).into_iter().filter(|(fork, _)| self.run_data_needed(fork.as_bytes())).map(|(_, at)| at).collect();
                if let Some(from) = write(oldest_needed, keep, &pins)
                    && let Ok(run) = RunId::from_slice(&key[..16])
                {
                    let mut horizons = self.horizons.lock();
                    let h = horizons.entry(run).or_insert(0);
                    *h = (*h).max(from);
                }
            }
        }
    }

    /// Fails unless `run`'s history (and, for a fork, its parent's up to
    /// the fork) is whole at version `at`: with `history_keep`, versions
    /// before a run's horizon are gone. `what` names the operation.
    pub(crate) fn check_history(&self, run: &RunId, at: u64, what: &str) -> Result<()> {
        let horizon = self.history_horizon(run);
        if at < horizon {
            let why = match (self.options.history_keep, *self.history_cut.lock()) {
                (Some(keep), _) => format!("history: {{ keep: {keep} }} keeps the newest {keep} versions of each key"),
                (None, Some(keep)) => format!("this directory's history was cut to {keep} versions of each key by an earlier history: {{ keep: {keep} }}"),
                (None, None) => "its older versions were cut".to_string(),
            };
            return Err(Error::not_found(
                format!("cannot {what} run {run} at version {at}: its history is kept from version {horizon} on ({why})"),
                json!({ "run": run.to_string(), "version": at, "horizon": horizon }),
            ));
        }
        match self.fork_of(run) {
            // At or after the fork point the fork reads its parent there,
            // which the parent keeps for it (its pins); before, the parent
            // as it was then.
            Some((_, fork_at)) if at >= fork_at => Ok(()),
            Some((parent, _)) => self.check_history(&parent, at, what),
            None => Ok(()),
        }
    }

    /// After recovery of a directory whose history was ever cut (`keep`,
    /// the smallest `history: { keep }` it was opened with; see
    /// [`HISTORY_FILE`]): a chain loaded from a checkpoint holding `keep`
    /// versions or more may have been cut before it was written (the
    /// checkpoint does not say), so its oldest version bounds its run's
    /// horizon — conservative: a point before a key's first write may be
    /// refused though the key was only absent there.
    fn recover_horizons(&self, keep: usize) {
        let mut horizons = self.horizons.lock();
        self.store.chains_of_at_least(keep, |key, oldest| {
            if key[..16] != [0u8; 16]
                && let Ok(run) = RunId::from_slice(&key[..16])
                && self.runs.read().contains_key(&run)
            {
                let h = horizons.entry(run).or_insert(0);
                *h = (*h).max(oldest);
            }
        });
    }

    /// The version `run`'s history is whole from (0: all of it).
    pub fn history_horizon(&self, run: &RunId) -> u64 {
        // A run cold since the open has its horizon found when it is loaded.
        if self.history_cut.lock().is_some() {
            self.store.ensure_resident(run.as_bytes());
        }
        self.horizons.lock().get(run).copied().unwrap_or(0)
    }

    /// The run `run` was forked from and at which version, if it is a fork.
    pub fn fork_of(&self, run: &RunId) -> Option<(RunId, u64)> {
        self.forks.of(run)
    }

    /// Every entry of `run` at `snapshot` as (suffix, version, value or
    /// delete), its ancestors' filled in, streamed in suffix order.
    pub(crate) fn merged_entries(&self, run: &RunId, snapshot: u64) -> impl Iterator<Item = forks::Item> + '_ {
        self.forks.merged(&self.store, run, &[], None, snapshot, false)
    }

    pub(crate) fn has_forks(&self) -> bool {
        self.forks.any()
    }

    /// Whether the run with these 16 id bytes exists.
    pub(crate) fn run_exists(&self, run: &[u8]) -> bool {
        RunId::from_slice(run).is_ok_and(|id| self.runs.read().contains_key(&id))
    }

    /// Whether a run's data must stay: the run exists, or a fork reads
    /// through to it.
    pub(crate) fn run_data_needed(&self, run: &[u8]) -> bool {
        self.run_exists(run) || self.forks.is_parent(run)
    }

    /// Drops the data of deleted runs, history and all, once no snapshot
    /// can still read it and no fork reads through to it.
    pub(crate) fn drop_deleted_runs(&self) {
        let _last = self.commit.lock();
        let oldest = self.tracker.oldest_needed();
        let mut doomed = self.deleted_runs.lock();
        doomed.retain(|(run, version)| {
            if *version > oldest || self.runs.read().contains_key(run) {
                return *version > oldest;
            }
            if self.run_data_needed(run.as_bytes()) {
                return true;
            }
            let start = run.as_bytes().to_vec();
            let end = InternalKey::prefix_end(&start);
            self.store.remove_range(&start, end.as_deref());
            false
        });
    }

    /// Refuses writes into runs that do not exist or are not active. Writes
    /// to the SYSTEM keyspace (the run table) are the engine's own.
    /// A commit that deletes a run's record (`run_delete`) may also remove
    /// the run's data, whatever its status.
    fn check_writable<K: AsRef<[u8]>>(&self, writes: &[(K, Option<Value>)]) -> Result<()> {
        let runs = self.runs.read();
        let deleted: Vec<&[u8]> = writes
            .iter()
            .filter(|(k, v)| v.is_none() && k.as_ref()[..16] == [0u8; 16] && InternalKey::tag(k.as_ref()) == Some(TypeTag::RunInfo))
            .map(|(k, _)| InternalKey::user(k.as_ref()))
            .collect();
        let mut last: Option<&[u8]> = None;
        for (key, _) in writes {
            let run = &key.as_ref()[..16];
            if run == [0u8; 16] || last == Some(run) || deleted.contains(&run) {
                continue;
            }
            last = Some(run);
            let id = RunId::from_slice(run)?;
            check_status(&runs, &id)?;
        }
        Ok(())
    }

    /// Checks that `run` accepts writes now (also used early, inside
    /// transactions, so a closed run fails at the first write).
    pub fn check_run_writable(&self, run: &RunId) -> Result<()> {
        if self.options.read_only {
            return Err(self.read_only_error());
        }
        check_status(&self.runs.read(), run)
    }

    fn read_only_error(&self) -> Error {
        Error::invalid_argument("the database was opened read-only (readOnly: true); open it without readOnly to write")
    }

    /// The one commit path. Returns the commit version. With `wait`, a strict
    /// commit returns only after its record is fsynced; without, the caller
    /// must call [`Engine::wait_durable`] before acknowledging it.
    pub(crate) fn commit<K: AsRef<[u8]>>(&self, writes: &[(K, Option<Value>)], tx: Option<&Transaction>, wait: bool) -> Result<u64> {
        self.commit_with_state(writes, tx, None, wait)
    }

    /// [`Engine::commit`] for a transaction with primitive state (JSON path
    /// operations): each secondary index checks it and resolves it into
    /// writes against the newest data, under the commit lock.
    fn commit_with_state<K: AsRef<[u8]>>(
        &self,
        writes: &[(K, Option<Value>)],
        tx: Option<&Transaction>,
        state: Option<&Extensions>,
        wait: bool,
    ) -> Result<u64> {
        self.check_open()?;
        // New keys go into the indexes before the commit lock, beside other
        // committers (see `Store::prepare`); a commit that fails takes them
        // back under the lock. A read-only database adds none.
        let n = if self.options.read_only { 0 } else { writes.len().min(PREPARED) };
        let prepared: smallvec::SmallVec<[Entry; 4]> = writes[..n].iter().map(|(key, _)| self.store.prepare(key.as_ref())).collect();
        let version = {
            let mut last = self.commit.lock();
            let committed = self.commit_locked(&mut last, writes, tx, state, &prepared);
            if committed.is_err() {
                for (key, _) in &writes[..n] {
                    self.store.discard_prepared(key.as_ref());
                }
            }
            committed?
        };
        if wait && !DEFERRED.with(Cell::get) {
            self.wait_durable(version)?;
        }
        Ok(version)
    }

    /// [`Engine::commit_with_state`]'s steps under the commit lock (`last`).
    fn commit_locked<K: AsRef<[u8]>>(
        &self,
        last: &mut parking_lot::MutexGuard<'_, u64>,
        writes: &[(K, Option<Value>)],
        tx: Option<&Transaction>,
        state: Option<&Extensions>,
        prepared: &[Entry],
    ) -> Result<u64> {
        if let Some(tx) = tx {
            validate(tx, &self.store, last)?;
        }
        let Some(state) = state else {
            return self.log_and_apply(&mut *last, writes, None, &[], prepared, &[]);
        };
        let snapshot = tx.map_or(0, |t| t.snapshot_version());
        let mut resolved = Vec::new();
        for index in &self.indexes {
            resolved.extend(index.prepare(state, snapshot, self)?);
        }
        // A splice is over the key's newest value before the commit: a key
        // the commit also writes otherwise is stored whole. (Only the JSON
        // path log resolves splices, one per document, and resolves no
        // other write of a document.)
        for r in resolved.iter_mut() {
            if let ResolvedWrite::Spliced { key, prefix, suffix, middle } = r
                && writes.iter().any(|(k, _)| k.as_ref() == &key[..])
            {
                let newest = self.store.read_any(key, u64::MAX).and_then(|(_, v)| v).expect("a spliced write's key holds a value");
                let value = Some(in_mem_storage::splice(&newest, *prefix, *suffix, middle));
                *r = ResolvedWrite::Whole { key: std::mem::take(key), value, ends: Some((*prefix, *suffix)) };
            }
        }
        let mut joined: Vec<(&[u8], Option<Value>)> = writes.iter().map(|(k, v)| (k.as_ref(), v.clone())).collect();
        let mut known: Vec<(usize, usize, usize)> = Vec::new();
        let mut spliced: Vec<Splice<'_>> = Vec::new();
        for r in &resolved {
            match r {
                ResolvedWrite::Whole { key, value, ends } => {
                    if let Some((p, s)) = ends {
                        known.push((joined.len(), *p, *s));
                    }
                    joined.push((&key[..], value.clone()));
                }
                ResolvedWrite::Spliced { key, prefix, suffix, middle } => spliced.push(Splice { key, prefix: *prefix, suffix: *suffix, middle }),
            }
        }
        // (The resolved writes come after `writes`: `prepared` still lines up.)
        self.log_and_apply(&mut *last, &joined, Some(state), &known, prepared, &spliced)
    }

    /// Steps 2–6 of the commit order, with the commit lock (`last`) held.
    /// `known`: (write index, prefix, suffix) of writes whose shared ends
    /// with the key's newest value a secondary index already knows.
    /// `spliced`: writes of keys not in `writes` given as a change to their
    /// newest value.
    fn log_and_apply<K: AsRef<[u8]>>(
        &self,
        last: &mut u64,
        writes: &[(K, Option<Value>)],
        state: Option<&Extensions>,
        known: &[(usize, usize, usize)],
        prepared: &[Entry],
        spliced: &[Splice<'_>],
    ) -> Result<u64> {
        if self.options.read_only {
            return Err(self.read_only_error());
        }
        self.check_writable(writes)?;
        if !spliced.is_empty() {
            self.check_writable(&spliced.iter().map(|s| (s.key, None)).collect::<Vec<(&[u8], Option<Value>)>>())?;
        }
        let version = *last + 1;
        // The shared ends of each write that are known, or that the log
        // measured for a delta: the store's back delta of the old value is
        // over the same two values (a known write's delta repeats its ends).
        let mut ends: Vec<(usize, usize, usize)> = known.to_vec();
        if let Some(wal) = &self.wal {
            let ts = now_ms();
            let logged = self.logged(writes, known).enumerate().map(|(i, (key, logged))| {
                if let commit_record::Logged::Delta { prefix, suffix, .. } = &logged {
                    ends.push((i, *prefix as usize, *suffix as usize));
                }
                (key, logged)
            });
            if spliced.is_empty() {
                wal.append_with(version, |buf| commit_record::encode(buf, ts, logged))?;
            } else {
                let mut all: Vec<(&[u8], commit_record::Logged<'_>)> = logged.collect();
                for s in spliced {
                    let (base, _) = self.store.read_any(s.key, u64::MAX).expect("a spliced write's key holds a value");
                    all.push((s.key, commit_record::Logged::Delta { base, prefix: s.prefix as u32, suffix: s.suffix as u32, middle: s.middle }));
                }
                wal.append_with(version, |buf| commit_record::encode(buf, ts, all.into_iter()))?;
            }
        }
        let oldest = self.tracker.oldest_needed();
        self.apply_with_ends(version, writes, oldest, &ends, prepared);
        for s in spliced {
            self.apply_spliced(s, version, oldest);
        }
        for index in &self.indexes {
            index.committed(version, state, &mut writes.iter().map(|(k, _)| k.as_ref()).chain(spliced.iter().map(|s| s.key)), oldest);
        }
        if spliced.is_empty() {
            self.feed.record(version, writes);
        } else if self.feed.watched() {
            let mut all: Vec<(&[u8], Option<Value>)> = writes.iter().map(|(k, v)| (k.as_ref(), v.clone())).collect();
            all.extend(spliced.iter().map(|s| (s.key, self.store.read_any(s.key, u64::MAX).and_then(|(_, v)| v))));
            self.feed.record(version, &all);
        }
        *last = version;
        #[cfg(test)]
        std::thread::sleep(std::time::Duration::from_millis(self.pause_before_publish_ms.load(Ordering::Relaxed)));
        self.tracker.publish(version);
        self.feed.notify();
        // History waiting in memory for a checkpoint to move it to disk, or
        // a log long enough for one: wake the maintenance thread now rather
        // than at its next round.
        if let (Some(cps), Some(wal)) = (&self.checkpoints, &self.wal)
            && ((self.spills() && cps.history_due(self.options.checkpoint_bytes, self.store.history_bytes()))
                || cps.log_due(wal, self.options.checkpoint_bytes))
            && !self.maintenance.nudged.swap(true, Ordering::AcqRel)
        {
            self.maintenance.wake.notify_one();
        }
        Ok(version)
    }

    /// How the log holds `writes`: a large value that mostly repeats the
    /// key's newest one as a delta over it (see `commit_record`), the rest
    /// as they are. Run data only, and a key written once in the commit (a
    /// delta's base is the newest value before the commit). Lazy: a commit
    /// of small values allocates nothing here.
    fn logged<'a, K: AsRef<[u8]>>(
        &'a self,
        writes: &'a [(K, Option<Value>)],
        known: &'a [(usize, usize, usize)],
    ) -> impl ExactSizeIterator<Item = (&'a [u8], commit_record::Logged<'a>)> {
        use commit_record::Logged;
        // Keys written more than once in this commit, found at the first large value.
        let twice: std::cell::OnceCell<std::collections::HashSet<&[u8]>> = std::cell::OnceCell::new();
        let once = move |key: &[u8]| {
            let twice = twice.get_or_init(|| {
                let mut seen = std::collections::HashSet::with_capacity(writes.len());
                writes.iter().map(|(k, _)| k.as_ref()).filter(|k| !seen.insert(*k)).collect()
            });
            !twice.contains(key)
        };
        writes.iter().enumerate().map(move |(i, (k, v))| {
            let key = k.as_ref();
            let ends = known.iter().find(|(j, _, _)| *j == i).map(|&(_, p, s)| (p, s));
            let logged = match v {
                None => Logged::Delete,
                Some(new) if new.len() >= commit_record::DELTA_FROM && key[..16] != [0u8; 16] && once(key) => match self.store.read_any(key, u64::MAX) {
                    Some((base, Some(old))) => commit_record::delta_of(&old, new, base, ends).unwrap_or(Logged::Put(new)),
                    _ => Logged::Put(new),
                },
                Some(new) => Logged::Put(new),
            };
            (key, logged)
        })
    }

    /// Commits a transaction's write set through [`Engine::commit`].
    pub(crate) fn commit_tx(&self, tx: &Transaction, state: Option<&Extensions>, wait: bool) -> Result<u64> {
        let writes: Vec<(&[u8], Option<Value>)> = tx
            .writes()
            .iter()
            .map(|(k, w)| {
                let value = match w {
                    Write::Put(v) => Some(v.clone()),
                    Write::Delete => None,
                };
                (&k[..], value)
            })
            .collect();
        self.commit_with_state(&writes, Some(tx), state, wait)
    }

    /// Returns once `version` is durable for this database's mode: at once in
    /// memory and buffered mode, after its fsync in strict mode.
    pub fn wait_durable(&self, version: u64) -> Result<()> {
        match &self.wal {
            Some(wal) if wal.mode() == Mode::Strict => {
                wal.sync_to(version)?;
                self.feed.notify();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// For a caller that must not block: `true` if `version` is durable for
    /// the mode already; in strict mode, otherwise, the WAL's syncer fsyncs
    /// it soon and then tells the subscribers ([`Engine::subscribe_durable`]).
    pub fn request_durable(&self, version: u64) -> bool {
        match &self.wal {
            Some(wal) if wal.mode() == Mode::Strict => wal.request_sync(version),
            _ => true,
        }
    }

    /// Subscribes to the strict WAL syncer's reports (see
    /// [`in_mem_durability::Subscriber`]); `None` in other modes, where
    /// [`Engine::request_durable`] always answers `true`.
    pub fn subscribe_durable(&self, subscriber: in_mem_durability::Subscriber) -> Option<u64> {
        match &self.wal {
            Some(wal) if wal.mode() == Mode::Strict => Some(wal.subscribe(subscriber)),
            _ => None,
        }
    }

    pub fn unsubscribe_durable(&self, id: u64) {
        if let Some(wal) = &self.wal {
            wal.unsubscribe(id);
        }
    }

    /// The newest version watchers may be given: the visible one, or in
    /// strict mode the newest durable one.
    pub(crate) fn deliverable_version(&self) -> u64 {
        let visible = self.tracker.visible();
        match &self.wal {
            Some(wal) if wal.mode() == Mode::Strict => visible.min(wal.durable_version()),
            _ => visible,
        }
    }

    pub(crate) fn feed(&self) -> &Feed {
        &self.feed
    }

    pub(crate) fn commit_lock(&self) -> parking_lot::MutexGuard<'_, u64> {
        self.commit.lock()
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.shut.load(Ordering::Acquire)
    }

    pub fn begin(&self) -> Result<Transaction> {
        self.check_open()?;
        Ok(Transaction::begin(&self.tracker))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn wal(&self) -> Option<&Wal> {
        self.wal.as_ref()
    }

    /// A registered snapshot at the newest visible version.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.tracker.acquire()
    }

    /// A maintenance round of every secondary index (TTL expiry): returns
    /// how many entries they retired.
    pub fn maintain_indexes(&self) -> usize {
        let now = now_ms();
        self.indexes.iter().map(|i| i.maintain(now)).sum()
    }

    /// The registered secondary index of type `I`.
    #[cfg(test)]
    pub(crate) fn index<I: SecondaryIndex>(&self) -> Option<&I> {
        self.indexes.iter().find_map(|i| i.as_any().downcast_ref::<I>())
    }

    /// The secondary indexes registered at open.
    pub(crate) fn indexes(&self) -> &[Arc<dyn SecondaryIndex>] {
        &self.indexes
    }

    // ----- runs ------------------------------------------------------------

    pub fn run_get(&self, run: &RunId) -> Result<Option<RunInfo>> {
        self.check_open()?;
        match self.store.get_visible(&runs::info_key(run), &self.tracker) {
            Some((_, bytes)) => Ok(Some(RunInfo::decode(*run, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The run as of `at`, a registered snapshot.
    fn run_read(&self, run: &RunId, at: u64) -> Result<Option<RunInfo>> {
        match self.store.get(&runs::info_key(run), at) {
            Some((_, bytes)) => Ok(Some(RunInfo::decode(*run, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn run_begin(&self, name: Option<String>, parent: Option<RunId>, tags: Vec<String>, metadata: Option<Vec<u8>>) -> Result<RunInfo> {
        self.check_open()?;
        validate_new_run(name.as_deref(), &tags)?;
        if let Some(m) = &metadata {
            check_metadata(m)?;
        }
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        let info = RunInfo { id: RunId::new(), name, status: RunStatus::Active, parent, tags, metadata, created_at: now_ms(), ended_at: None, error: None };
        let mut writes: Vec<(Vec<u8>, Option<Value>)> = vec![(runs::info_key(&info.id), Some(in_mem_storage::value(info.encode())))];
        for k in info.index_keys() {
            writes.push((k, Some(in_mem_storage::value(b""))));
        }
        self.run_commit(writes, parent.as_ref())?;
        Ok(info)
    }

    /// Commits run-table writes, checking (under the commit lock, through a
    /// transaction that read it) that the parent, if any, exists.
    pub(crate) fn run_commit(&self, writes: Vec<(Vec<u8>, Option<Value>)>, parent: Option<&RunId>) -> Result<u64> {
        let mut tx = self.begin()?;
        if let Some(p) = parent
            && tx.get(&self.store, &runs::info_key(p)).is_none()
        {
            return Err(Error::not_found(format!("parent run {p} does not exist"), json!({ "run": p.to_string() })));
        }
        for (k, v) in &writes {
            match v {
                Some(v) => tx.put(k, v.clone()),
                None => tx.delete(k),
            }
        }
        self.commit_tx(&tx, None, true)
    }

    /// Moves a run to a new status by `action`, with `error` for `fail`.
    pub fn run_update(&self, run: &RunId, action: RunAction, error: Option<String>) -> Result<RunInfo> {
        loop {
            let mut tx = self.begin()?;
            let key = runs::info_key(run);
            let Some((_, bytes)) = tx.get(&self.store, &key) else {
                return Err(Error::not_found(format!("run {run} does not exist"), json!({ "run": run.to_string() })));
            };
            let old = RunInfo::decode(*run, &bytes)?;
            let status = action.apply(run, old.status)?;
            let mut new = old.clone();
            new.status = status;
            if matches!(status, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled) {
                new.ended_at = Some(now_ms());
            }
            if action == RunAction::Fail {
                new.error = error.clone();
            }
            tx.delete(&runs::status_key(old.status, run));
            tx.put(&runs::status_key(new.status, run), in_mem_storage::value(b""));
            tx.put(&key, in_mem_storage::value(new.encode()));
            match self.commit_tx(&tx, None, true) {
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
                Ok(_) => return Ok(new),
            }
        }
    }

    /// Replaces a run's tags and/or metadata (in any status), keeping the tag
    /// index in step.
    pub fn run_edit(&self, run: &RunId, tags: Option<Vec<String>>, metadata: Option<Option<Vec<u8>>>) -> Result<RunInfo> {
        self.run_change(run, tags.map(TagChange::Set), metadata)
    }

    /// Adds (`add`) or removes tags, reading and writing the run in one
    /// transaction, so two concurrent taggers never lose one another's tag.
    pub fn run_tag(&self, run: &RunId, tags: Vec<String>, add: bool) -> Result<RunInfo> {
        self.run_change(run, Some(if add { TagChange::Add(tags) } else { TagChange::Remove(tags) }), None)
    }

    fn run_change(&self, run: &RunId, tags: Option<TagChange>, metadata: Option<Option<Vec<u8>>>) -> Result<RunInfo> {
        if let Some(TagChange::Set(t) | TagChange::Add(t) | TagChange::Remove(t)) = &tags {
            validate_new_run(None, t)?;
        }
        if let Some(Some(m)) = &metadata {
            check_metadata(m)?;
        }
        loop {
            let mut tx = self.begin()?;
            let key = runs::info_key(run);
            let Some((_, bytes)) = tx.get(&self.store, &key) else {
                return Err(Error::not_found(format!("run {run} does not exist"), json!({ "run": run.to_string() })));
            };
            let old = RunInfo::decode(*run, &bytes)?;
            let mut new = old.clone();
            if let Some(change) = &tags {
                let mut t = match change {
                    TagChange::Set(t) => t.clone(),
                    TagChange::Add(t) => old.tags.iter().chain(t).cloned().collect(),
                    TagChange::Remove(t) => old.tags.iter().filter(|x| !t.contains(x)).cloned().collect(),
                };
                t.sort();
                t.dedup();
                validate_new_run(None, &t)?;
                new.tags = t;
            }
            if let Some(m) = &metadata {
                new.metadata = m.clone();
            }
            for t in old.tags.iter().filter(|t| !new.tags.contains(t)) {
                tx.delete(&runs::tag_key(t, run));
            }
            for t in new.tags.iter().filter(|t| !old.tags.contains(t)) {
                tx.put(&runs::tag_key(t, run), in_mem_storage::value(b""));
            }
            tx.put(&key, in_mem_storage::value(new.encode()));
            match self.commit_tx(&tx, None, true) {
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
                Ok(_) => return Ok(new),
            }
        }
    }

    /// Deletes a run, whatever its status, with every record of every
    /// primitive in it and its index entries, in one commit. Its child runs
    /// stay; their lineage ends at the deleted run. Returns `false` if there
    /// was no such run.
    pub fn run_delete(&self, run: &RunId) -> Result<bool> {
        loop {
            let mut tx = self.begin()?;
            let key = runs::info_key(run);
            let Some((_, bytes)) = tx.get(&self.store, &key) else {
                return Ok(false);
            };
            let info = RunInfo::decode(*run, &bytes)?;
            let mut doomed: Vec<Vec<u8>> = Vec::new();
            let start = run.as_bytes().to_vec();
            let end = InternalKey::prefix_end(&start);
            tx.scan(&self.store, &start, end.as_deref(), false, |k, _, _| {
                doomed.push(k.to_vec());
                true
            });
            doomed.push(key);
            doomed.extend(info.index_keys());
            for k in &doomed {
                tx.delete(k);
            }
            match self.commit_tx(&tx, None, true) {
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
                Ok(_) => return Ok(true),
            }
        }
    }

    /// Lists runs through the most selective index for `opts`, in creation
    /// order, starting after the `after` cursor.
    pub fn run_list(&self, opts: &RunListOptions) -> Result<Vec<RunInfo>> {
        self.check_open()?;
        let snap = self.tracker.acquire();
        let prefix = runs::index_range(opts);
        let end = InternalKey::prefix_end(&prefix);
        let mut start = prefix.clone();
        if let Some(after) = &opts.after {
            start.extend_from_slice(after.as_bytes());
            start.push(0); // strictly after
        }
        let limit = opts.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut err = None;
        if limit == 0 {
            return Ok(out);
        }
        self.store.scan(&start, end.as_deref(), snap.version(), false, |k, _, _| {
            let id = match RunId::from_slice(&k[k.len() - 16..]) {
                Ok(id) => id,
                Err(e) => {
                    err = Some(e);
                    return false;
                }
            };
            match self.run_read(&id, snap.version()) {
                Ok(Some(info)) => {
                    let keep = opts.status.is_none_or(|s| s == info.status)
                        && opts.parent.is_none_or(|p| info.parent == Some(p))
                        && opts.tag.as_ref().is_none_or(|t| info.tags.contains(t));
                    if keep {
                        out.push(info);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    err = Some(e);
                    return false;
                }
            }
            out.len() < limit
        });
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    pub fn run_children(&self, run: &RunId) -> Result<Vec<RunInfo>> {
        self.run_list(&RunListOptions { parent: Some(*run), ..Default::default() })
    }

    /// The run and its ancestors, nearest first.
    pub fn run_lineage(&self, run: &RunId) -> Result<Vec<RunInfo>> {
        self.check_open()?;
        // Every ancestor as of one snapshot.
        let snap = self.tracker.acquire();
        let mut out = Vec::new();
        let mut next = Some(*run);
        while let Some(id) = next {
            let Some(info) = self.run_read(&id, snap.version())? else {
                if out.is_empty() {
                    return Err(Error::not_found(format!("run {id} does not exist"), json!({ "run": id.to_string() })));
                }
                break;
            };
            next = info.parent;
            out.push(info);
        }
        Ok(out)
    }

    // ----- operations ------------------------------------------------------

    /// Writes and fsyncs everything committed so far.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        match &self.wal {
            Some(wal) => wal.flush(),
            None => Ok(()),
        }
    }

    pub fn stats(&self) -> Stats {
        // Each lock on its own (a guard in the struct expression below would
        // be held until its end, across the other locks it takes).
        let maintenance = self.maintenance.stats.lock().clone();
        let history_on_disk = self.history_files.lock().on_disk();
        let runs_with_horizon = self.horizons.lock().len();
        Stats {
            version: self.version(),
            durability: self.options.durability,
            path: self.path.clone(),
            keys: self.store.key_count(),
            runs: self.runs.read().len(),
            active_snapshots: self.tracker.active_count(),
            wal: self.wal.as_ref().map(|w| w.stats()),
            recovery: self.recovery.clone(),
            maintenance,
            memory: self.store.memory(),
            runs_with_horizon,
            history_on_disk,
            index_bytes: self.indexes.iter().map(|i| i.memory_bytes()).sum(),
            cold: self.cold.stats(),
        }
    }

    /// Test hook: makes the maintenance thread's next round panic, and wakes it.
    /// The strict WAL's syncer starts no fsync while `on` (see
    /// `Wal::hold_syncer`).
    #[cfg(feature = "test-hooks")]
    pub fn hold_syncer_for_test(&self, on: bool) {
        if let Some(wal) = &self.wal {
            wal.hold_syncer(on);
        }
    }

    /// Moves the keys that hold one version out of the store's indexes
    /// into its packed arena, when enough have gathered since the last
    /// pass (or `force`); returns how many moved (see `Store::pack`).
    pub fn pack(&self, force: bool) -> usize {
        let moved = self.store.pack(force);
        if moved > 0 {
            checkpointing::release_freed_memory();
            // The entries and nodes freed here were mostly allocated by the
            // threads that wrote the keys: their allocator pages go back to
            // the OS only when those threads collect them.
            for (_, told) in self.freed.lock().iter() {
                told();
            }
        }
        moved
    }

    /// Calls `subscriber` (from the maintenance thread) after each pass that
    /// freed memory other threads allocated, so that a thread writing to
    /// this database can have its allocator return the freed pages (mimalloc
    /// returns a page freed by another thread only when its own thread
    /// collects). Returns the id [`Engine::unsubscribe_freed`] takes.
    pub fn subscribe_freed(&self, subscriber: FreedSubscriber) -> u64 {
        let id = self.freed_ids.fetch_add(1, Ordering::Relaxed);
        self.freed.lock().push((id, subscriber));
        id
    }

    pub fn unsubscribe_freed(&self, id: u64) {
        self.freed.lock().retain(|(i, _)| *i != id);
    }

    #[cfg(feature = "test-hooks")]
    pub fn panic_in_maintenance_for_test(&self) {
        self.maintenance.panic_next.store(true, Ordering::Release);
        self.maintenance.wake.notify_all();
    }

    /// Open, and (for `what`, an operation that writes) not read-only.
    pub(crate) fn check_open_to_write(&self, what: &str) -> Result<()> {
        self.check_open()?;
        if self.options.read_only {
            return Err(Error::invalid_argument(format!("the database was opened read-only (readOnly: true): {what} writes; open it without readOnly")));
        }
        Ok(())
    }

    pub(crate) fn tracker(&self) -> &Arc<SnapshotTracker> {
        &self.tracker
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.shut.load(Ordering::Acquire) { Err(Error::Closed) } else { Ok(()) }
    }

    /// Stops background work and makes every commit durable. Called when the
    /// last handle goes away; later calls are no-ops.
    pub fn shutdown(&self) -> Result<()> {
        if self.shut.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        *self.maintenance.stop.lock() = true;
        self.maintenance.wake.notify_all();
        self.feed.notify();
        if let Some(handle) = self.maintenance_thread.lock().take()
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
        let checkpointed = match &self.checkpoints {
            Some(c) if self.options.checkpoint_on_close && self.version() > c.newest() => self.checkpoint_now().map(|_| ()),
            _ => Ok(()),
        };
        // Wait for in-flight commits, then close the log.
        let closed = {
            let _last = self.commit.lock();
            match &self.wal {
                Some(wal) => wal.close(),
                None => Ok(()),
            }
        };
        // The WAL's last fsync is done; let go of the directory, then tell
        // an open waiting in the registry that it may take it.
        drop(self._lock.lock().take());
        self.closed.mark();
        checkpointed.and(closed)
    }
}

/// How [`Engine::run_change`] changes a run's tags.
enum TagChange {
    Set(Vec<String>),
    Add(Vec<String>),
    Remove(Vec<String>),
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[derive(Default)]
struct HandleCount {
    open: usize,
    /// The last handle closed: the engine is shutting down and takes no
    /// new handle (an open waits for it to finish and opens anew).
    closing: bool,
}

/// A user's hold on an engine: each `Database` (each open of a path in this
/// process) is one. Closing the last one shuts the engine down then and
/// there — the checkpoint on close, the WAL's last fsync, releasing `LOCK` —
/// in the closing thread, however many internal references (a background
/// round, a replay view, a transaction) are still about.
pub struct Handle {
    engine: Option<Arc<Engine>>,
}

impl Handle {
    /// Closes this handle; the last one shuts the engine down and returns
    /// what that shutdown did.
    pub fn close(mut self) -> Result<()> {
        match self.engine.take() {
            Some(engine) => engine.release_handle(),
            None => Ok(()),
        }
    }

    /// The engine as a plain `Arc`, for a caller that manages its lifetime
    /// itself: this handle is never closed, and the engine shuts down when
    /// the last `Arc` goes.
    pub fn into_shared(mut self) -> Arc<Engine> {
        self.engine.take().expect("a handle is only emptied by close, which consumes it")
    }
}

impl std::ops::Deref for Handle {
    type Target = Arc<Engine>;
    fn deref(&self) -> &Arc<Engine> {
        self.engine.as_ref().expect("a handle is only emptied by close, which consumes it")
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        let engine = (**self).clone();
        engine.handles.lock().open += 1;
        Handle { engine: Some(engine) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            let _ = engine.release_handle();
        }
    }
}

/// Checks an internal key a fast-path read was given (run | `tag` | name):
/// a run's key of that primitive, with a valid name.
fn check_status(runs: &RunTable, run: &RunId) -> Result<()> {
    match runs.get(run) {
        Some(RunStatus::Active) => Ok(()),
        Some(status) => Err(Error::RunClosed { run: run.to_string(), status: status.as_str().into() }),
        None => Err(Error::not_found(format!("run {run} does not exist"), json!({ "run": run.to_string() }))),
    }
}

fn maintenance_loop(engine: Weak<Engine>, m: Arc<Maintenance>, interval: std::time::Duration) {
    loop {
        {
            let mut stop = m.stop.lock();
            if *stop {
                return;
            }
            if !m.nudged.swap(false, Ordering::AcqRel) {
                m.wake.wait_for(&mut stop, interval);
            }
            if *stop {
                return;
            }
        }
        let Some(engine) = engine.upgrade() else { return };
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(feature = "test-hooks")]
            if m.panic_next.swap(false, Ordering::AcqRel) {
                panic!("deliberate panic in the maintenance thread (test hook)");
            }
            // Reads stamp the keys they read with this clock (cold runs).
            engine.store.set_clock(now_ms());
            // Keys written once leave the indexes for the packed arena — a
            // read-only database's too (those recovery loaded): it writes
            // nothing to disk.
            engine.pack(false);
            if engine.options.read_only {
                return;
            }
            let expired = engine.maintain_indexes() as u64;
            m.stats.lock().expired += expired;
            engine.drop_deleted_runs();
            if let (Some(wal), Some(cps)) = (engine.wal(), &engine.checkpoints)
                && (cps.due(wal, engine.options.checkpoint_bytes, if engine.spills() { engine.store.history_bytes() } else { 0 })
                    || cps.log_due(wal, engine.options.checkpoint_bytes)
                    || !engine.cold_due(now_ms()).is_empty())
            {
                // A failure is the WAL's or the disk's: it surfaces on the next
                // write or the next explicit checkpoint.
                let _ = engine.checkpoint_now();
            }
        }));
        let mut stats = m.stats.lock();
        stats.rounds += 1;
        if let Err(payload) = round {
            stats.panics += 1;
            stats.last_error = Some(in_mem_core::panic_message(&*payload));
            stats.last_error_at = Some(now_ms());
        }
    }
}

/// Run metadata is a value like any other: at most `MAX_VALUE_BYTES`.
fn check_metadata(m: &[u8]) -> Result<()> {
    use in_mem_core::limits::MAX_VALUE_BYTES;
    if m.len() > MAX_VALUE_BYTES {
        return Err(Error::limit(format!("value is {} bytes encoded; the limit is {MAX_VALUE_BYTES} bytes (16 MiB)", m.len())));
    }
    Ok(())
}

impl Db for Engine {
    fn check_open(&self) -> Result<()> {
        Engine::check_open(self)
    }

    fn check_run_writable(&self, run: &RunId) -> Result<()> {
        Engine::check_run_writable(self, run)
    }

    fn version(&self) -> u64 {
        Engine::version(self)
    }

    fn pin(&self) -> Snapshot {
        self.tracker.acquire()
    }

    fn get_visible(&self, key: &[u8]) -> Option<(u64, Value)> {
        if self.has_forks() {
            let snap = self.tracker.acquire();
            return self.read(key, snap.version());
        }
        self.store.get_visible(key, &self.tracker)
    }

    fn with_visible<R>(&self, key: &[u8], f: impl FnOnce(u64, &Value) -> R) -> Option<R> {
        if self.has_forks() {
            let snap = self.tracker.acquire();
            return self.read(key, snap.version()).map(|(version, stored)| f(version, &stored));
        }
        self.store.with_visible(key, &self.tracker, f)
    }

    fn commit_writes<K: AsRef<[u8]>>(&self, writes: &[(K, Option<Value>)]) -> Result<u64> {
        self.commit(writes, None, true)
    }
}

impl Source for Engine {
    fn read(&self, key: &[u8], snapshot: u64) -> Option<(u64, Value)> {
        self.forks.read(&self.store, key, snapshot)
    }

    fn scan_live(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        self.forks.scan(&self.store, start, end, snapshot, reverse, f)
    }

    /// A fork's key with no version of its own reads its parent's (with no
    /// fork in the database, every read is the key's own).
    fn holds_own(&self, key: &[u8]) -> bool {
        !self.forks.any() || self.store.read_any(key, u64::MAX).is_some_and(|(_, v)| v.is_some())
    }
}

impl LoadTarget for Engine {
    /// Checks a write read back by recovery (a WAL record, a checkpoint
    /// entry) before it reaches the store: the key's shape, then each
    /// index's judgement of the value.
    fn check_recovered(&self, key: &[u8], value: Option<&[u8]>) -> std::result::Result<(), &'static str> {
        commit_record::check_shape(key)?;
        self.indexes.iter().try_for_each(|i| i.check_recovered(key, value))
    }

    fn apply_loaded(&self, version: u64, key: &[u8], value: Option<Value>, on_disk: bool) {
        self.apply_one(key, version, value, version, None, None);
        if on_disk {
            self.store.mark_on_disk(key);
        }
    }

    fn attach_history(&self, files: Arc<HistoryFiles>) {
        self.store.set_disk(files.clone());
        *self.history_files.lock() = files;
    }

    fn load_indexes(&self, dir: &Path, version: u64) {
        let mut total = self.index_load.lock();
        for index in &self.indexes {
            let l = index.load(dir, version);
            total.loaded += l.loaded;
            total.rebuilt.extend(l.rebuilt);
        }
    }

    fn attach_cold(&self, lines: Vec<in_mem_durability::manifest::ColdLine>, totals: &[(u64, u64)], version: u64, database_id: Option<[u8; 16]>) -> Result<()> {
        self.cold.load(&self.store, lines, totals, version, database_id, self.options.repair)
    }

    fn publish_recovered(&self, version: u64) {
        for index in &self.indexes {
            index.recovered(version);
        }
        self.tracker.publish(version);
        *self.commit.lock() = version;
    }
}
