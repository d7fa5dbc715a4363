//! Taking checkpoints and starting recovery from them.
//!
//! A checkpoint is written from a registered snapshot, so writers never
//! stop: the image is every live key as of the snapshot's version `V`.
//! When the database keeps every version (`history: 'all'`), a key's
//! versions older than its newest at `V` go to a history file instead
//! (SPEC §17; `spilled.rs`), and leave memory once it is named.
//! Order (each step durable before the next):
//! 1. the WAL is fsynced up to `V`, so the log also holds everything the
//!    image holds (a damaged image can then fall back to an older one);
//! 2. the history file, then the image, are each written to a temp file,
//!    fsynced, renamed, and the directory fsynced
//!    (`in_mem_durability::history`, `in_mem_durability::checkpoint`);
//! 3. the manifest is replaced to name the image, the previous checkpoint
//!    and every history file; then the versions the new history file holds
//!    are dropped from memory (reads find them in it);
//! 4. checkpoint files older than those two are deleted, and WAL segments
//!    wholly at or below the *previous* checkpoint: the log keeps covering
//!    the previous one, which is what makes falling back possible; history
//!    files a merge replaced (compaction, `spilled.rs`) go once unnamed.
//!
//! Recovery rule (also in `docs/durability.md`): load the newest checkpoint
//! the manifest names; if it is damaged or missing, the previous one; then
//! replay the WAL after the loaded one, which must continue it without a gap.
//! If no named checkpoint loads, or the WAL does not continue the one that
//! did, open fails with a `CorruptionError` naming the file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use in_mem_core::{Error, InternalKey, Result};
use in_mem_durability::checkpoint::{self, CheckpointWriter};
use in_mem_durability::history::{HistoryWriter, Kind};
use in_mem_durability::manifest::{self, ColdLine, Manifest};
use parking_lot::Mutex;

use in_mem_durability::Wal;
use in_mem_storage::{Snapshot, Store, Value};

use super::cold::{ColdRuns, ColdWriter, ColdWritten};
use super::spilled::{HistoryFiles, Merge};

/// How the process's allocator gives freed memory back to the OS, when it
/// is not the system allocator (the binding sets it: see
/// [`set_memory_release`]).
static MEMORY_RELEASE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets what [`release_freed_memory`] calls instead of glibc's
/// `malloc_trim`: the global allocator's own collection. The first call
/// wins.
pub fn set_memory_release(release: fn()) {
    let _ = MEMORY_RELEASE.set(release);
}

/// Gives the OS back the heap pages a spill freed: allocators keep freed
/// memory for reuse, and versions freed among live ones leave pages that
/// are mostly free but never returned (an overwrite-heavy run's RSS kept
/// growing with every checkpoint although its history had left memory).
/// The allocator's own release when one was set, else glibc's
/// `malloc_trim`; elsewhere a no-op.
pub(crate) fn release_freed_memory() {
    if let Some(release) = MEMORY_RELEASE.get() {
        return release();
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Adds to `h` the keys `merge` holds before `k` (all of them: `None`),
/// leaving out the keys of runs `keep_run` refuses (deleted ones).
fn merged_keys(merge: &mut Merge, h: &mut HistoryWriter, k: Option<&[u8]>, keep_run: &impl Fn(&[u8]) -> bool) -> Result<()> {
    while let Some(next) = merge.peek()
        && k.is_none_or(|k| next < k)
    {
        let (key, versions) = merge.take().expect("peeked");
        if keep_run(&key[..16]) {
            let versions: Vec<(u64, Option<&[u8]>)> = versions.iter().map(|(v, value)| (*v, value.as_deref())).collect();
            h.add_key(&key, &versions)?;
        }
    }
    Ok(())
}

/// How many checkpoints are kept: the newest and one to fall back to.
const KEPT: usize = 2;

/// What one checkpoint did.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointReport {
    pub version: u64,
    pub entries: u64,
    pub bytes: u64,
    pub duration_ms: f64,
    pub removed_segments: u64,
    /// The newest checkpoint was already at this version: nothing written.
    pub unchanged: bool,
    /// Runs this checkpoint moved to a cold file: the caller takes their
    /// keys out of memory.
    pub evicted: Vec<ColdLine>,
}

/// Progress of the checkpoint being written, for `db.checkpoint()`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CheckpointProgress {
    pub running: bool,
    pub entries_written: u64,
    pub entries_total: u64,
}

/// The checkpoint state of a durable engine.
pub struct Checkpoints {
    dir: PathBuf,
    data_dir: PathBuf,
    database_id: [u8; 16],
    /// Versions named by the manifest, newest first. Held while a
    /// checkpoint runs, so there is one at a time.
    kept: Mutex<Vec<u64>>,
    running: AtomicBool,
    written: AtomicU64,
    total: AtomicU64,
    /// The WAL's size on disk right after the newest checkpoint this
    /// process wrote (0 before one), and that checkpoint's size: the
    /// background trigger measures the WAL written since, against the larger
    /// of `checkpointBytes` and the image.
    wal_after: AtomicU64,
    image_bytes: AtomicU64,
    /// `Wal::bytes_written` when the newest checkpoint this process wrote
    /// ended: what the commit path measures the log since against.
    written_after: AtomicU64,
    /// The version up to which run data's older versions are in history
    /// files (0: the loaded image held them: a database written before
    /// history files, or with `history: { keep }`).
    spilled_at: AtomicU64,
}

impl Checkpoints {
    /// The checkpoint state of a database just recovered. A `.tmp` image
    /// left by a process that died while writing one is deleted.
    pub fn new(data_dir: &Path, database_id: [u8; 16], kept: Vec<u64>, spilled_at: u64) -> Checkpoints {
        if let Ok(entries) = std::fs::read_dir(data_dir.join("checkpoints")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let _ = std::fs::remove_file(data_dir.join(format!("{}.tmp", manifest::FILE_NAME)));
        // A history or cold file the manifest does not name was written by
        // a checkpoint that died before naming it.
        if let Ok(m) = manifest::read(data_dir) {
            let m = m.unwrap_or_default();
            in_mem_durability::history::remove_unnamed(data_dir, &m.history);
            let cold: Vec<u64> = m.cold.iter().map(|l| l.file).collect();
            in_mem_durability::history::remove_unnamed_kind(data_dir, &cold, Kind::Cold);
        }
        Checkpoints {
            dir: data_dir.join("checkpoints"),
            data_dir: data_dir.to_path_buf(),
            database_id,
            kept: Mutex::new(kept),
            running: AtomicBool::new(false),
            written: AtomicU64::new(0),
            total: AtomicU64::new(0),
            wal_after: AtomicU64::new(0),
            image_bytes: AtomicU64::new(0),
            written_after: AtomicU64::new(0),
            spilled_at: AtomicU64::new(spilled_at),
        }
    }

    pub fn newest(&self) -> u64 {
        self.kept.lock().first().copied().unwrap_or(0)
    }

    pub fn progress(&self) -> CheckpointProgress {
        CheckpointProgress {
            running: self.running.load(Ordering::Acquire),
            entries_written: self.written.load(Ordering::Relaxed),
            entries_total: self.total.load(Ordering::Relaxed),
        }
    }
}

/// What recovery starts from.
pub(crate) struct Loaded<E> {
    pub engine: E,
    /// The loaded checkpoint's version; 0: none.
    pub version: u64,
    pub database_id: Option<[u8; 16]>,
    /// Why the newest checkpoint could not be used, if it could not.
    pub fallback_reason: Option<String>,
    /// The image held several versions of a key of run data (see
    /// `Checkpoints::spilled_at`).
    pub history_in_image: bool,
}

/// The directory beside checkpoint `version` where the secondary indexes
/// save what lets an open skip rebuilding them.
pub fn indexes_dir(data_dir: &Path, version: u64) -> PathBuf {
    data_dir.join("checkpoints").join(format!("{}.indexes", checkpoint::file_name(version)))
}

pub fn checkpoint_path(data_dir: &Path, version: u64) -> PathBuf {
    data_dir.join("checkpoints").join(checkpoint::file_name(version))
}

/// The checkpoint versions the manifest in `data_dir` names, newest first.
pub fn named(data_dir: &Path) -> Result<Vec<u64>> {
    Ok(manifest::read(data_dir)?.map(|m| m.checkpoints).unwrap_or_default())
}

/// What a checkpoint is loaded into: the engine's recovery side.
pub(crate) trait LoadTarget {
    /// Judges an entry before it reaches the store.
    fn check_recovered(&self, key: &[u8], value: Option<&[u8]>) -> std::result::Result<(), &'static str>;
    /// Applies one entry (a key's versions come oldest first); `on_disk`:
    /// the key has older versions in history files.
    fn apply_loaded(&self, version: u64, key: &[u8], value: Option<Value>, on_disk: bool);
    /// The history files recovery opened, before any entry is applied.
    fn attach_history(&self, files: Arc<HistoryFiles>);
    /// Makes everything loaded up to `version` visible.
    fn publish_recovered(&self, version: u64);
    /// The manifest's cold runs (`lines`), checkpoint `version` loaded.
    fn attach_cold(&self, lines: Vec<ColdLine>, totals: &[(u64, u64)], version: u64, database_id: Option<[u8; 16]>) -> Result<()>;
    /// Before checkpoint `version`'s entries are applied: the secondary
    /// indexes load what they saved beside it in `dir`.
    fn load_indexes(&self, dir: &Path, version: u64);
}

impl Checkpoints {
    /// Writes a checkpoint of `store` at `snapshot` (see the module
    /// comment), after syncing `wal` to it; the runs `keep_run` refuses
    /// (deleted ones) are not carried over. With `spill`, run data's older
    /// versions go to a new history file (added to `files`) and leave
    /// memory; without, the image keeps them.
    ///
    /// While the snapshot is still held, `save_indexes` saves the secondary
    /// indexes into a directory beside the checkpoint (written as `.tmp`,
    /// then renamed; an index makes it when it has something to save). An index that cannot be saved is rebuilt at the next
    /// open instead; the checkpoint stands either way.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &self,
        wal: &Wal,
        store: &Store,
        snapshot: Snapshot,
        keep_run: impl Fn(&[u8]) -> bool,
        save_indexes: impl Fn(&Path) -> Result<()>,
        files: &HistoryFiles,
        spill: bool,
        cold: &ColdRuns,
        evict: &HashSet<[u8; 16]>,
    ) -> Result<Option<CheckpointReport>> {
        let cps = self;
        let started = Instant::now();
        // Run data of a run that is kept: what keeps its history.
        let run_data = |k: &[u8]| k[..16] != [0u8; 16] && keep_run(&k[..16]);
        let mut kept = cps.kept.lock();
        let version = snapshot.version();
        // Nothing committed since the newest checkpoint: nothing to write,
        // unless its image still holds older versions to move to disk (a
        // directory from before history files; then it is written again),
        // or runs are due to leave memory (then only their cold file and
        // the manifest: see `Checkpoints::evict_only`). An image is never
        // rewritten in place with less in it (a crash between it and the
        // manifest naming their cold file would lose them).
        let unchanged =
            || Ok(Some(CheckpointReport { version, entries: 0, bytes: 0, duration_ms: 0.0, removed_segments: 0, unchanged: true, evicted: Vec::new() }));
        if kept.first() == Some(&version) && (!spill || cps.spilled_at.load(Ordering::Acquire) == version) {
            if evict.is_empty() {
                return unchanged();
            }
            return match cps.evict_only(&kept, store, version, &keep_run, files, cold, evict, spill, started)? {
                Some(report) => Ok(Some(report)),
                None => unchanged(),
            };
        }
        let none = HashSet::new();
        let evict = if kept.first() == Some(&version) { &none } else { evict };
        wal.sync_to(version)?;
        cps.written.store(0, Ordering::Relaxed);
        cps.total.store(store.key_count() as u64, Ordering::Relaxed);
        cps.running.store(true, Ordering::Release);
        let mut spilled_file = None;
        // Cold runs: those cold now have their data in their cold files
        // (not in this image); those `evict` names go to a new one (their
        // newest versions, older ones going to the history file; with
        // `history: { keep }`, every version memory keeps).
        let cold_now = cold.cold_runs();
        let cold_number = cold.next_file();
        let relocate = cold.to_relocate(&cold_now);
        let mut cold_out = ColdWritten::default();
        // Compaction: the newest history files, merged into this
        // checkpoint's own (keys of deleted runs left out).
        let merging = if spill { files.to_merge() } else { Vec::new() };
        // The merge reads every block of those files: checked first, so
        // that damage is this checkpoint's error, not a fault mid-merge.
        for f in &merging {
            f.check()?;
        }
        let written = (|| {
            let mut w = CheckpointWriter::create(&cps.dir, version, cps.database_id)?;
            let mut h = if spill { Some(HistoryWriter::create(&cps.data_dir, version, cps.database_id)?) } else { None };
            let mut merge = Merge::new(&merging);
            let mut c = ColdWriter::new(cold, &cps.data_dir, version, cold_number, cps.database_id, relocate);
            let mut failed = None;
            // Run data keeps its history (replay and forks read it): in the
            // image, or in the history file and the key's newest in the
            // image; the SYSTEM tables need only their newest value; a
            // deleted run's keys are not carried over.
            store.scan_resident(&[], None, version, |k, on_disk, history| {
                let system = k[..16] == [0u8; 16];
                if !system && !run_data(k) {
                    return true;
                }
                let run: [u8; 16] = k[..16].try_into().expect("16 bytes");
                if !system && cold_now.contains(&run) {
                    return true;
                }
                let result = (|| {
                    if system {
                        let (v, value) = &history[history.len() - 1];
                        return match value {
                            Some(value) => w.add(k, *v, false, Some(value)),
                            None => Ok(()),
                        };
                    }
                    match &mut h {
                        Some(h) => {
                            merged_keys(&mut merge, h, Some(k), &keep_run)?;
                            // This key's versions in the merged files, then
                            // the older ones in memory (newer than those).
                            let on_file = merge.take_key(k);
                            let (newest, older) = history.split_last().expect("a visited key has a version");
                            let mut all: Vec<(u64, Option<&[u8]>)> = on_file.iter().map(|(v, value)| (*v, value.as_deref())).collect();
                            for (v, value) in older {
                                if all.last().is_none_or(|(l, _)| v > l) {
                                    all.push((*v, value.as_deref()));
                                }
                            }
                            h.add_key(k, &all)?;
                            let marked = on_disk || !all.is_empty();
                            if spill && evict.contains(&run) {
                                return c.add(k, newest.0, marked, newest.1.as_deref());
                            }
                            w.add(k, newest.0, marked, newest.1.as_deref())
                        }
                        None if evict.contains(&run) => c.add_kept(k, on_disk, history),
                        None => history.iter().enumerate().try_for_each(|(i, (v, value))| w.add(k, *v, on_disk && i == 0, value.as_deref())),
                    }
                })();
                if let Err(e) = result {
                    failed = Some(e);
                    return false;
                }
                cps.written.fetch_add(1, Ordering::Relaxed);
                true
            });
            if let Some(e) = failed {
                return Err(e);
            }
            // The history file first: an image named by nothing, or a
            // history file named by nothing, is removed at the next open.
            if let Some(mut h) = h {
                merged_keys(&mut merge, &mut h, None, &keep_run)?;
                spilled_file = h.finish()?;
            }
            cold_out = c.finish()?;
            w.finish()
        })();
        if written.is_ok() {
            let dir = indexes_dir(&cps.data_dir, version);
            let tmp = dir.with_extension("indexes.tmp");
            let _ = std::fs::remove_dir_all(&tmp);
            // An index with something to save makes the directory; none: none.
            let saved = save_indexes(&tmp).and_then(|_| {
                if !tmp.exists() {
                    return Ok(());
                }
                in_mem_durability::sync_dir(&tmp)?;
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::rename(&tmp, &dir).map_err(|e| Error::io(dir.display(), e))?;
                in_mem_durability::sync_dir(&cps.dir)
            });
            if saved.is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        cps.running.store(false, Ordering::Release);
        drop(snapshot);
        let info = written?;
        // The checkpoint before this one (not this one, written again).
        let previous = kept.iter().copied().find(|v| *v != version);
        // (A checkpoint written again at the same version keeps the one before.)
        let next: Vec<u64> = std::iter::once(version).chain(kept.iter().copied().filter(|v| *v != version)).take(KEPT).collect();
        // The files merged into the new one are no longer named.
        let mut history = files.versions();
        history.truncate(history.len() - merging.len());
        history.extend(spilled_file.as_ref().map(|f| f.version()));
        let evicted_lines = cps.name(cold, version, next.clone(), history, &cold_now, cold_number, cold_out, &keep_run)?;
        let wrote = spilled_file.is_some();
        for gone in files.replace(merging.len(), spilled_file) {
            // A reader may still have it open (fine where the OS keeps an
            // open file's bytes); if it cannot go now, the next open
            // removes it (unnamed).
            let _ = std::fs::remove_file(gone);
        }
        if wrote {
            // Named: the versions it holds may leave memory.
            store.spill(version, run_data);
            release_freed_memory();
        }
        if spill {
            cps.spilled_at.store(version, Ordering::Release);
        }
        for old in kept.iter().filter(|v| !next.contains(v)) {
            let path = checkpoint_path(&cps.data_dir, *old);
            let _ = std::fs::remove_dir_all(indexes_dir(&cps.data_dir, *old));
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::io(path.display(), e));
            }
        }
        *kept = next;
        let removed_segments = match previous {
            Some(p) => wal.remove_segments_upto(p)?,
            None => 0,
        };
        cps.wal_after.store(wal.disk_bytes(), Ordering::Release);
        cps.written_after.store(wal.bytes_written(), Ordering::Release);
        cps.image_bytes.store(info.bytes, Ordering::Release);
        Ok(Some(CheckpointReport {
            version,
            entries: info.entries,
            bytes: info.bytes,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            removed_segments,
            unchanged: false,
            evicted: evicted_lines,
        }))
    }
}

impl Checkpoints {
    /// Runs leaving memory with nothing committed since the newest
    /// checkpoint (`version`): its image holds their keys, so only their
    /// cold file is written, sealed, and named by a new manifest (the same
    /// checkpoints and history files, the runs' lines cold from `version`);
    /// an open skips the image's entries of a run its manifest says is
    /// cold there. Each key's newest version goes to the cold file, marked
    /// when older ones exist (a checkpoint at `version` moved those to its
    /// history file). A crash before the manifest leaves the cold file
    /// unnamed (removed at the next open) and the runs in the image; after
    /// it, they are cold. `None`: nothing was written (none of them in
    /// memory, nothing to compact).
    #[allow(clippy::too_many_arguments)]
    fn evict_only(
        &self,
        kept: &[u64],
        store: &Store,
        version: u64,
        keep_run: &impl Fn(&[u8]) -> bool,
        files: &HistoryFiles,
        cold: &ColdRuns,
        evict: &HashSet<[u8; 16]>,
        spill: bool,
        started: Instant,
    ) -> Result<Option<CheckpointReport>> {
        let cold_now = cold.cold_runs();
        let cold_number = cold.next_file();
        // (Compaction too, as at any checkpoint: runs still cold in a sparse
        // file are copied into this one.)
        let mut c = ColdWriter::new(cold, &self.data_dir, version, cold_number, self.database_id, cold.to_relocate(&cold_now));
        let mut runs: Vec<&[u8; 16]> = evict.iter().filter(|r| !cold_now.contains(*r) && keep_run(&r[..])).collect();
        runs.sort();
        for run in runs {
            let end = InternalKey::prefix_end(run);
            let mut failed = None;
            store.scan_resident(run, end.as_deref(), version, |k, on_disk, history| {
                let (newest, older) = history.split_last().expect("a visited key has a version");
                let added = if spill { c.add(k, newest.0, on_disk || !older.is_empty(), newest.1.as_deref()) } else { c.add_kept(k, on_disk, history) };
                if let Err(e) = added {
                    failed = Some(e);
                    return false;
                }
                true
            });
            if let Some(e) = failed {
                return Err(e);
            }
        }
        let written = c.finish()?;
        if written.file.is_none() {
            return Ok(None);
        }
        let evicted_lines = self.name(cold, version, kept.to_vec(), files.versions(), &cold_now, cold_number, written, keep_run)?;
        Ok(Some(CheckpointReport {
            version,
            entries: 0,
            bytes: 0,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            removed_segments: 0,
            unchanged: false,
            evicted: evicted_lines,
        }))
    }

    /// Writes the manifest of a checkpoint at `version` (`checkpoints`,
    /// `history` files, and the cold lines that follow from the runs cold
    /// when it started, `cold_now`, and what it wrote to cold file
    /// `cold_number`), then has `cold` remember them. Returns the lines of
    /// the runs it moved out of memory.
    #[allow(clippy::too_many_arguments)]
    fn name(
        &self,
        cold: &ColdRuns,
        version: u64,
        checkpoints: Vec<u64>,
        history: Vec<u64>,
        cold_now: &HashSet<[u8; 16]>,
        cold_number: u64,
        written: ColdWritten,
        keep_run: &impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<ColdLine>> {
        let ColdWritten { file, total, evicted, relocated } = written;
        let previous = checkpoints.get(1).copied();
        let lines = cold.next_lines(version, previous, cold_now, &evicted, &relocated, cold_number, |run: &[u8; 16]| keep_run(run));
        let cold_files = cold.totals_for(&lines, total);
        manifest::write(&self.data_dir, &Manifest { checkpoints, history, cold: lines.clone(), cold_files: cold_files.clone() })?;
        let evicted_lines = lines.iter().filter(|l| l.file == cold_number && l.since == version && file.is_some()).copied().collect();
        cold.named(lines, cold_files, file);
        Ok(evicted_lines)
    }

    /// Whether a background checkpoint is due: the WAL written since the
    /// newest checkpoint (the segments kept for the checkpoint before it do
    /// not count) is over `threshold` and over that checkpoint's own size.
    /// Measured from the checkpoint's end, an image that takes long to write
    /// no longer makes the next one due at once (sustained writes kept the
    /// maintenance thread checkpointing without pause), and a large store is
    /// not rewritten for every `threshold` of new log: a checkpoint writes
    /// at most about as much as the log it lets go.
    ///
    /// Also due when `history` bytes of older versions wait in memory for
    /// a checkpoint to move them to disk (a database that keeps every
    /// version; 0 otherwise) and they pass a quarter of `threshold` and the
    /// image's size: so an overwrite-heavy run holds about `threshold / 4`
    /// of history in memory, not `threshold`, while a large store is still
    /// not rewritten for less than its own size.
    pub fn due(&self, wal: &Wal, threshold: u64, history: u64) -> bool {
        let since = wal.disk_bytes().saturating_sub(self.wal_after.load(Ordering::Acquire));
        threshold > 0 && (since > threshold.max(self.image_bytes.load(Ordering::Acquire)) || self.history_due(threshold, history))
    }

    /// What the commit path checks (two atomic loads, no file sizes): the log
    /// written since the newest checkpoint passed `threshold` and that
    /// checkpoint's size. A writer that fills the log faster than one
    /// maintenance round a second would otherwise hold seconds of writes
    /// (their history, the runs due to go cold) in memory.
    pub fn log_due(&self, wal: &Wal, threshold: u64) -> bool {
        let since = wal.bytes_written().saturating_sub(self.written_after.load(Ordering::Acquire));
        threshold > 0 && since > threshold.max(self.image_bytes.load(Ordering::Acquire))
    }

    /// The history half of [`Checkpoints::due`], which commits check too
    /// (to wake the maintenance thread instead of waiting for its round).
    pub fn history_due(&self, threshold: u64, history: u64) -> bool {
        threshold > 0 && history > (threshold / 4).max(self.image_bytes.load(Ordering::Acquire))
    }
}

/// Loads the newest loadable checkpoint named by the manifest into a fresh
/// engine from `make`.
/// History and cold files are opened without reading their blocks (each is
/// checked when read), unless `check_all` (an open with `repair: true`).
pub(crate) fn load<E: LoadTarget>(make: impl Fn() -> E, data_dir: &Path, check_all: bool) -> Result<Loaded<E>> {
    let named = manifest::read(data_dir)?.unwrap_or_default();
    let versions = named.checkpoints;
    let files = Arc::new(HistoryFiles::open(data_dir, &named.history, None, check_all)?);
    let mut fallback_reason = None;
    for (i, version) in versions.iter().enumerate() {
        let engine = make();
        engine.attach_history(files.clone());
        let path = checkpoint_path(data_dir, *version);
        engine.load_indexes(&indexes_dir(data_dir, *version), *version);
        // Entries come in key order, each key's versions oldest first (the
        // writer scans the store): a checksummed file out of that order was
        // not written by it, and its versions would be misfiled.
        let mut previous: (Vec<u8>, u64) = (Vec::new(), 0);
        let mut history_in_image = false;
        // Runs cold at this checkpoint: an image written before they left
        // memory (`Checkpoints::evict_only`) still holds their keys.
        let cold_here: HashSet<[u8; 16]> = named.cold.iter().filter(|l| l.cold_at(*version)).map(|l| l.run).collect();
        let loaded = checkpoint::read(&path, None, |k, v, on_disk, value| {
            // (A key shorter than a run id is refused just below.)
            history_in_image |= k == previous.0.as_slice() && k.get(..16).is_some_and(|run| run != [0u8; 16]);
            if (k, v) <= (previous.0.as_slice(), previous.1) {
                return Err(Error::Corruption {
                    file: path.display().to_string(),
                    offset: 0,
                    reason: format!(
                        "entries are out of order (version {v} of a key after version {} of {})",
                        previous.1,
                        if k == previous.0.as_slice() { "the same key" } else { "a later key" }
                    ),
                });
            }
            previous.0.clear();
            previous.0.extend_from_slice(k);
            previous.1 = v;
            if let Err(why) = engine.check_recovered(k, value) {
                return Err(Error::Corruption { file: path.display().to_string(), offset: 0, reason: format!("an entry does not decode: {why}") });
            }
            if !k.get(..16).is_some_and(|run| cold_here.contains(run)) {
                engine.apply_loaded(v, k, value.map(in_mem_storage::value), on_disk);
            }
            Ok(())
        });
        match loaded {
            Ok(info) if info.version == *version => {
                engine.publish_recovered(*version);
                engine.attach_cold(named.cold.clone(), &named.cold_files, *version, Some(info.database_id))?;
                return Ok(Loaded { engine, version: *version, database_id: Some(info.database_id), fallback_reason, history_in_image });
            }
            outcome => {
                let reason = match outcome {
                    Ok(info) => format!("{} holds commit {} but the manifest names {version}", path.display(), info.version),
                    Err(e) => e.to_string(),
                };
                if i + 1 == versions.len() {
                    let what = if i == 0 { "the only checkpoint" } else { "no checkpoint named by the manifest" };
                    return Err(Error::Corruption { file: path.display().to_string(), offset: 0, reason: format!("{what} could be loaded: {reason}") });
                }
                fallback_reason.get_or_insert(reason);
            }
        }
    }
    let engine = make();
    engine.attach_history(files);
    engine.attach_cold(named.cold, &named.cold_files, 0, None)?;
    Ok(Loaded { engine, version: 0, database_id: None, fallback_reason: None, history_in_image: false })
}
