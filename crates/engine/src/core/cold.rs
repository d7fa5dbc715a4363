//! Cold runs (SPEC §17): a run that has ended and was not loaded for
//! `coldAfterMs` leaves memory at a checkpoint, into a cold file
//! (`in_mem_durability::history`, kind `Cold`: the newest version of each
//! of its keys at the checkpoint, its older versions being in the history
//! files), and comes back whole on the first read that touches it.
//!
//! Invariants:
//! - A cold run has ended, so nothing writes to its data; what a reader
//!   found before it left memory is what it finds after it comes back.
//! - A run is cold in memory exactly while its keys are out of the store:
//!   it is marked cold with every scan held off, just before its keys go
//!   (`Store::evict`), and unmarked only once all of them are back.
//! - Loading reads and checks every block of the run first and only then
//!   changes anything, so a damaged file leaves the run cold and the store
//!   as it was; the read that asked fails with the `CorruptionError`.
//! - The manifest names a run's cold file in a line that also says from
//!   which checkpoint on the images hold the run again; the line stays
//!   while an older checkpoint it names may still be loaded, and a cold file
//!   is deleted once no line names it (`checkpointing.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use in_mem_core::{Error, Result, RunId, now_ms};
use in_mem_durability::checkpoint::{ON_DISK, marked};
use in_mem_durability::history::{self, HistoryFile, Kind};
use in_mem_durability::manifest::ColdLine;
use in_mem_storage::{ColdData, SnapshotTracker, Store, Value};
use parking_lot::{Mutex, ReentrantMutex, RwLock};

use crate::access::SecondaryIndex;

/// A run loaded from a cold file: its keys' versions and whether each has
/// older ones on disk.
type Loaded = Vec<(Vec<u8>, u64, Option<Value>, bool)>;

/// What the cold files hold, for `stats()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColdStats {
    /// Runs out of memory now.
    pub runs: u64,
    /// Their bytes in cold files (keys and values, before compression).
    pub bytes: u64,
    /// Cold files named by the manifest, and their size on disk.
    pub files: u64,
    pub file_bytes: u64,
    /// Runs loaded back since the database opened.
    pub loads: u64,
}

pub struct ColdRuns {
    data_dir: PathBuf,
    files: RwLock<BTreeMap<u64, Arc<HistoryFile>>>,
    /// Every line the manifest names (see the module comment).
    lines: Mutex<Vec<ColdLine>>,
    /// Each cold file's bytes of entries as written (the manifest's
    /// `coldfile` lines): against what its cold runs still hold, how much of
    /// it is dead.
    totals: Mutex<HashMap<u64, u64>>,
    /// Runs out of memory now, with the line that names their file.
    cold: RwLock<HashMap<[u8; 16], ColdLine>>,
    /// One load at a time (reentrant: loading a run may read another's key).
    loading: ReentrantMutex<()>,
    /// When each run was last loaded back (ms): it stays warm for
    /// `coldAfterMs` after.
    warmed_at: Mutex<HashMap<[u8; 16], u64>>,
    /// When each run that has ended ended (ms).
    ended_at: Mutex<HashMap<[u8; 16], u64>>,
    loads: AtomicU64,
    indexes: Vec<Arc<dyn SecondaryIndex>>,
    tracker: Arc<SnapshotTracker>,
    /// With history cut (`history: { keep }`, now or once): the keep, the
    /// engine's run horizons, and the runs cold since the open, whose
    /// horizons an open could not find (their keys were not in memory) and
    /// a load finds as the open does for resident runs.
    horizons: Mutex<Option<(usize, Arc<Horizons>)>>,
    cold_at_open: Mutex<HashSet<[u8; 16]>>,
}

/// Per run, the version its history is whole from (see the engine's
/// `history_horizon`).
pub(crate) type Horizons = Mutex<HashMap<RunId, u64, foldhash::fast::RandomState>>;

impl ColdRuns {
    /// No cold runs yet ([`ColdRuns::load`] reads the manifest's).
    pub fn new(data_dir: Option<&Path>, indexes: Vec<Arc<dyn SecondaryIndex>>, tracker: Arc<SnapshotTracker>) -> ColdRuns {
        ColdRuns {
            data_dir: data_dir.map(Path::to_path_buf).unwrap_or_default(),
            files: RwLock::default(),
            lines: Mutex::default(),
            totals: Mutex::default(),
            cold: RwLock::default(),
            loading: ReentrantMutex::new(()),
            warmed_at: Mutex::default(),
            ended_at: Mutex::default(),
            loads: AtomicU64::new(0),
            indexes,
            tracker,
            horizons: Mutex::default(),
            cold_at_open: Mutex::default(),
        }
    }

    /// With history cut at `keep` versions: a run cold since the open gets,
    /// when it is loaded, the horizon an open gives a resident run (its
    /// oldest version of any key that holds `keep` or more).
    pub(crate) fn find_horizons(&self, keep: usize, horizons: Arc<Horizons>) {
        *self.horizons.lock() = Some((keep, horizons));
    }

    /// Takes the cold runs of checkpoint `loaded` (0: none was loaded) from
    /// the manifest's `lines`, opening their files (header, index and
    /// footer checked; blocks are checked when a run is loaded, or here with
    /// `check_all`), and has the indexes forget what they loaded of those
    /// runs.
    pub fn load(&self, store: &Store, lines: Vec<ColdLine>, totals: &[(u64, u64)], loaded: u64, database_id: Option<[u8; 16]>, check_all: bool) -> Result<()> {
        *self.totals.lock() = totals.iter().copied().collect();
        let mut files = BTreeMap::new();
        for line in &lines {
            if let std::collections::btree_map::Entry::Vacant(e) = files.entry(line.file) {
                let f = HistoryFile::open_kind(&Kind::Cold.path(&self.data_dir, line.file), database_id, Kind::Cold, check_all)?;
                e.insert(Arc::new(f));
            }
        }
        let cold: HashMap<[u8; 16], ColdLine> = lines.iter().filter(|l| l.cold_at(loaded)).map(|l| (l.run, *l)).collect();
        for run in cold.keys() {
            let id = RunId::from_slice(run).expect("16 bytes");
            for index in &self.indexes {
                index.evict_run(&id);
            }
        }
        store.set_cold_runs(cold.len());
        *self.cold_at_open.lock() = cold.keys().copied().collect();
        *self.files.write() = files;
        *self.lines.lock() = lines;
        *self.cold.write() = cold;
        Ok(())
    }

    /// Follows a run's record: when it ended (ms), while it has.
    pub fn run_ended(&self, run: &RunId, ended_at: Option<u64>) {
        let mut ended = self.ended_at.lock();
        match ended_at {
            Some(t) => {
                ended.insert(*run.as_bytes(), t);
            }
            None => {
                ended.remove(run.as_bytes());
            }
        }
    }

    /// The runs a checkpoint at `now` should move out of memory: ended
    /// `after` ms ago or more, and neither loaded back nor read (`last_read`
    /// of a run: when a key of it was last read, ms) in the last `after` ms.
    pub fn due(&self, now: u64, after: u64, last_read: impl Fn(&[u8; 16]) -> u64) -> HashSet<[u8; 16]> {
        let quiet = |t: u64| now >= t.saturating_add(after);
        let candidates: Vec<[u8; 16]> = {
            let cold = self.cold.read();
            let warmed = self.warmed_at.lock();
            self.ended_at
                .lock()
                .iter()
                .filter(|(run, t)| quiet(**t) && !cold.contains_key(*run) && warmed.get(*run).is_none_or(|w| quiet(*w)))
                .map(|(run, _)| *run)
                .collect()
        };
        candidates.into_iter().filter(|run| quiet(last_read(run))).collect()
    }

    /// Runs a checkpoint meant to move out but did not (nothing of them in
    /// memory, or deleted meanwhile): not asked about again for a while.
    pub fn passed_over(&self, runs: impl Iterator<Item = [u8; 16]>, now: u64) {
        let mut warmed = self.warmed_at.lock();
        for run in runs {
            warmed.insert(run, now);
        }
    }

    /// Runs cold now.
    pub fn cold_runs(&self) -> HashSet<[u8; 16]> {
        self.cold.read().keys().copied().collect()
    }

    pub fn is_cold(&self, run: &[u8]) -> bool {
        run.len() == 16 && self.cold.read().contains_key(run)
    }

    /// A number for the next cold file.
    pub fn next_file(&self) -> u64 {
        self.files.read().keys().next_back().map_or(1, |n| n + 1)
    }

    /// The lines the manifest of checkpoint `version` names, given the runs
    /// cold when it started (`cold`, their keys left out of its image), the
    /// runs it moved to cold file `file` with their bytes (`evicted`), the
    /// other checkpoint it keeps (`previous`), and which runs still exist.
    #[allow(clippy::too_many_arguments)]
    pub fn next_lines(
        &self,
        version: u64,
        previous: Option<u64>,
        cold: &HashSet<[u8; 16]>,
        evicted: &[([u8; 16], u64)],
        relocated: &[ColdLine],
        file: u64,
        exists: impl Fn(&[u8; 16]) -> bool,
    ) -> Vec<ColdLine> {
        let mut out = Vec::new();
        for line in self.lines.lock().iter() {
            let mut line = *line;
            if !exists(&line.run) {
                continue;
            }
            // Compaction copied it into the new file.
            if relocated.contains(&line) {
                line.file = file;
            }
            // Resident when this checkpoint started: its image holds it.
            if !cold.contains(&line.run) && line.cold_at(version) {
                line.warm_from = version;
            }
            // Both kept images hold it: nothing needs the line.
            if line.warm_from != 0 && previous.is_none_or(|p| line.warm_from <= p) {
                continue;
            }
            out.push(line);
        }
        out.extend(evicted.iter().map(|(run, bytes)| ColdLine { file, run: *run, since: version, warm_from: 0, bytes: *bytes }));
        out
    }

    /// The `coldfile` lines of the next manifest: each file `lines` name,
    /// with its bytes as written (`written`: the one just written).
    pub fn totals_for(&self, lines: &[ColdLine], written: Option<(u64, u64)>) -> Vec<(u64, u64)> {
        let mut totals = self.totals.lock().clone();
        totals.extend(written);
        let used: std::collections::BTreeSet<u64> = lines.iter().map(|l| l.file).collect();
        used.into_iter().filter_map(|f| totals.get(&f).map(|t| (f, *t))).collect()
    }

    /// After the manifest named `lines` and `totals` (and `file`, just
    /// written, if any): remembers them and deletes the cold files no line
    /// names.
    pub fn named(&self, lines: Vec<ColdLine>, totals: Vec<(u64, u64)>, file: Option<HistoryFile>) {
        // Not while a run loads (it may be reading a file that goes here).
        let _one = self.loading.lock();
        *self.totals.lock() = totals.into_iter().collect();
        // The new file first, then the runs compaction copied into it read
        // from it, then the files no line names go (one lock at a time).
        if let Some(f) = file {
            let n = lines.iter().find(|l| Kind::Cold.path(&self.data_dir, l.file) == f.path()).map(|l| l.file);
            if let Some(n) = n {
                self.files.write().insert(n, Arc::new(f));
            }
        }
        for (run, line) in self.cold.write().iter_mut() {
            if let Some(moved) = lines.iter().find(|l| l.run == *run && l.since == line.since && l.warm_from == 0 && l.file != line.file) {
                *line = *moved;
            }
        }
        let mut files = self.files.write();
        let used: HashSet<u64> = lines.iter().map(|l| l.file).collect();
        files.retain(|n, f| {
            let keep = used.contains(n);
            if !keep {
                let _ = std::fs::remove_file(f.path());
            }
            keep
        });
        *self.lines.lock() = lines;
    }

    /// Marks `run` cold in `line`'s file: its keys are leaving memory now,
    /// every scan held off (`Store::evict`). Takes only the cold map's lock:
    /// a reader can hold index locks while it waits for the eviction.
    pub fn mark(&self, store: &Store, run: &RunId, line: ColdLine) {
        let mut cold = self.cold.write();
        cold.insert(line.run, line);
        store.set_cold_runs(cold.len());
        drop(cold);
        self.warmed_at.lock().remove(run.as_bytes());
    }

    /// After its keys left: the indexes forget what they derived from `run`,
    /// unless a reader loaded it back meanwhile (serialized with loads).
    pub fn forget_derived(&self, run: &RunId) {
        let _one = self.loading.lock();
        if self.is_cold(run.as_bytes()) {
            for index in &self.indexes {
                index.evict_run(run);
            }
        }
    }

    pub fn stats(&self) -> ColdStats {
        // (One lock at a time: `named` takes them in the other order.)
        let (runs, bytes) = {
            let cold = self.cold.read();
            (cold.len() as u64, cold.values().map(|l| l.bytes).sum())
        };
        let files = self.files.read();
        ColdStats { runs, bytes, files: files.len() as u64, file_bytes: files.values().map(|f| f.bytes()).sum(), loads: self.loads.load(Ordering::Relaxed) }
    }

    /// Forgets a deleted run (its line goes at the next checkpoint).
    pub fn forget(&self, store: &Store, run: &[u8; 16]) {
        let mut cold = self.cold.write();
        cold.remove(run);
        store.set_cold_runs(cold.len());
        self.warmed_at.lock().remove(run);
        self.ended_at.lock().remove(run);
    }

    /// Reads and checks every block that holds `line.run`'s keys.
    fn read_run(&self, line: &ColdLine) -> Result<Loaded> {
        let file = self.files.read().get(&line.file).cloned();
        let Some(file) = file else {
            return Err(Error::Corruption {
                file: Kind::Cold.path(&self.data_dir, line.file).display().to_string(),
                offset: 0,
                reason: "a cold file the manifest names is not open".into(),
            });
        };
        let run = &line.run[..];
        let mut end = line.run.to_vec();
        increment(&mut end);
        let mut out: Loaded = Vec::new();
        let mut bytes = 0u64;
        for n in file.blocks_between(run, &end) {
            let raw = file.try_block(n)?;
            history::entries_of(&raw, |k, v, value| {
                if k.len() >= 16 && &k[..16] == run {
                    bytes += (k.len() + value.map_or(0, <[u8]>::len)) as u64;
                    out.push((k.to_vec(), v & !ON_DISK, value.map(Value::from), v & ON_DISK != 0));
                }
                Ok(())
            })
            .map_err(|why| Error::Corruption { file: file.path().display().to_string(), offset: 0, reason: format!("block {n}: {why}") })?;
        }
        if bytes != line.bytes {
            return Err(Error::Corruption {
                file: file.path().display().to_string(),
                offset: 0,
                reason: format!(
                    "run {} has {bytes} bytes of data in the file, the manifest says {}",
                    RunId::from_slice(run).map(|r| r.to_string()).unwrap_or_default(),
                    line.bytes
                ),
            });
        }
        Ok(out)
    }
}

/// At most this many bytes of cold runs are copied out of mostly dead cold
/// files per checkpoint (compaction is bounded in I/O).
const RELOCATE_BYTES: u64 = 256 << 20;

impl ColdRuns {
    /// Compaction: the lines of the runs cold now (`cold`) in files less
    /// than half of whose bytes their cold runs still hold, sorted by run,
    /// up to [`RELOCATE_BYTES`]: a checkpoint copies them into its own cold
    /// file, and the old file goes once no line names it.
    pub fn to_relocate(&self, cold: &HashSet<[u8; 16]>) -> Vec<ColdLine> {
        let lines = self.lines.lock();
        let totals = self.totals.lock();
        let live: Vec<&ColdLine> = lines.iter().filter(|l| l.warm_from == 0 && cold.contains(&l.run)).collect();
        let mut held: HashMap<u64, u64> = HashMap::new();
        for l in &live {
            *held.entry(l.file).or_default() += l.bytes;
        }
        let sparse: HashSet<u64> = held.iter().filter(|(f, h)| totals.get(f).is_some_and(|t| **h * 2 < *t)).map(|(f, _)| *f).collect();
        let mut out: Vec<ColdLine> = live.into_iter().filter(|l| sparse.contains(&l.file)).copied().collect();
        out.sort_by_key(|l| l.run);
        let mut budget = RELOCATE_BYTES;
        out.retain(|l| {
            let keep = l.bytes <= budget;
            budget = budget.saturating_sub(l.bytes);
            keep
        });
        out
    }
}

/// The cold file a checkpoint writes: the keys of the runs it moves out of
/// memory, given in key order by the checkpoint's scan, and the runs
/// compaction copies out of older files, merged in by run.
pub struct ColdWriter<'a> {
    cold: &'a ColdRuns,
    data_dir: &'a Path,
    version: u64,
    number: u64,
    database_id: [u8; 16],
    out: Option<history::HistoryWriter>,
    /// Runs to copy, sorted by run; those copied.
    relocate: std::collections::VecDeque<ColdLine>,
    pub relocated: Vec<ColdLine>,
    /// Runs moved out of memory with their bytes.
    pub evicted: Vec<([u8; 16], u64)>,
    bytes: u64,
}

impl<'a> ColdWriter<'a> {
    pub fn new(cold: &'a ColdRuns, data_dir: &'a Path, version: u64, number: u64, database_id: [u8; 16], relocate: Vec<ColdLine>) -> ColdWriter<'a> {
        ColdWriter { cold, data_dir, version, number, database_id, out: None, relocate: relocate.into(), relocated: Vec::new(), evicted: Vec::new(), bytes: 0 }
    }

    fn out(&mut self) -> Result<&mut history::HistoryWriter> {
        if self.out.is_none() {
            self.out = Some(history::HistoryWriter::create_kind(self.data_dir, self.version, self.number, self.database_id, Kind::Cold)?);
        }
        Ok(self.out.as_mut().expect("made above"))
    }

    /// Adds the newest version of key `k` of a run leaving memory
    /// (`marked`: it has older versions in history files).
    pub fn add(&mut self, k: &[u8], version: u64, on_disk: bool, value: Option<&[u8]>) -> Result<()> {
        self.add_versions(k, &[(marked(version, on_disk), value)])
    }

    /// Adds every version of key `k` memory keeps, oldest first (`history:
    /// { keep }`: the image would have held them all; `on_disk`: the key has
    /// older versions in history files from before the keep).
    pub fn add_kept(&mut self, k: &[u8], on_disk: bool, history: &[(u64, Option<Value>)]) -> Result<()> {
        let all: Vec<(u64, Option<&[u8]>)> = history.iter().enumerate().map(|(i, (v, value))| (marked(*v, on_disk && i == 0), value.as_deref())).collect();
        self.add_versions(k, &all)
    }

    /// Adds versions of key `k` of a run leaving memory, oldest first (the
    /// oldest perhaps marked [`ON_DISK`]): its newest with history files,
    /// every version memory keeps with `history: { keep }`.
    pub fn add_versions(&mut self, k: &[u8], versions: &[(u64, Option<&[u8]>)]) -> Result<()> {
        let run: [u8; 16] = k[..16].try_into().expect("16 bytes");
        self.copy_before(Some(&run))?;
        match self.evicted.last_mut() {
            Some((r, _)) if *r == run => {}
            _ => self.evicted.push((run, 0)),
        }
        // As `read_run` counts them: the key's bytes with each version's.
        let n: u64 = versions.iter().map(|(_, value)| (k.len() + value.map_or(0, <[u8]>::len)) as u64).sum();
        self.evicted.last_mut().expect("pushed").1 += n;
        self.bytes += n;
        self.out()?.add_key(k, versions)
    }

    /// Copies the queued runs before `run` (all: `None`). A run whose blocks
    /// do not check out stays where it is (its read reports the damage).
    fn copy_before(&mut self, run: Option<&[u8; 16]>) -> Result<()> {
        while let Some(line) = self.relocate.front().copied()
            && run.is_none_or(|r| line.run < *r)
        {
            self.relocate.pop_front();
            let Ok(entries) = self.cold.read_run(&line) else { continue };
            // A key's versions (several with `history: { keep }`) in one call.
            for versions in entries.chunk_by(|a, b| a.0 == b.0) {
                let all: Vec<(u64, Option<&[u8]>)> = versions.iter().map(|(_, v, value, on_disk)| (marked(*v, *on_disk), value.as_deref())).collect();
                self.out()?.add_key(&versions[0].0, &all)?;
            }
            self.bytes += line.bytes;
            self.relocated.push(line);
        }
        Ok(())
    }

    /// Completes the file (none if it would be empty).
    pub fn finish(mut self) -> Result<ColdWritten> {
        self.copy_before(None)?;
        let file = match self.out.take() {
            Some(w) => w.finish()?,
            None => None,
        };
        let total = file.as_ref().map(|_| (self.number, self.bytes));
        Ok(ColdWritten { file, total, evicted: self.evicted, relocated: self.relocated })
    }
}

/// What a checkpoint's cold file holds ([`ColdWriter::finish`]).
#[derive(Default)]
pub struct ColdWritten {
    pub file: Option<HistoryFile>,
    /// Its number and bytes of entries, for the manifest's `coldfile` line.
    pub total: Option<(u64, u64)>,
    /// Runs moved out of memory into it, with their bytes.
    pub evicted: Vec<([u8; 16], u64)>,
    /// Lines of runs compaction copied into it from older files.
    pub relocated: Vec<ColdLine>,
}

/// The smallest key after every key starting with `prefix` (in place).
fn increment(prefix: &mut Vec<u8>) {
    while let Some(last) = prefix.last_mut() {
        if *last == 0xFF {
            prefix.pop();
        } else {
            *last += 1;
            return;
        }
    }
}

impl ColdData for ColdRuns {
    fn warm(&self, store: &Store, run: &[u8]) -> bool {
        if !self.is_cold(run) {
            return false;
        }
        let _one = self.loading.lock();
        let Some(line) = self.cold.read().get(run).copied() else { return true };
        let loaded = match self.read_run(&line) {
            Ok(l) => l,
            // Reads have no error to return: the read's call fails with
            // this one (every native entry point catches an unwind and
            // throws its payload, an error's JSON, as that error).
            Err(e) => std::panic::resume_unwind(Box::new(e.to_json())),
        };
        let oldest_needed = self.tracker.oldest_needed();
        for (key, version, value, on_disk) in &loaded {
            for index in &self.indexes {
                index.on_write(store, key, value.as_deref(), *version, oldest_needed);
            }
            store.load_key(key, *version, value.clone(), *on_disk);
        }
        let id = RunId::from_slice(run).expect("16 bytes");
        for index in &self.indexes {
            index.warmed(&id, line.since);
        }
        if self.cold_at_open.lock().remove(run)
            && let Some((keep, horizons)) = &*self.horizons.lock()
        {
            // Entries come key by key, oldest version first.
            let oldest = loaded.chunk_by(|a, b| a.0 == b.0).filter(|versions| versions.len() >= *keep).map(|versions| versions[0].1).max();
            if let Some(oldest) = oldest {
                let mut horizons = horizons.lock();
                let h = horizons.entry(id).or_insert(0);
                *h = (*h).max(oldest);
            }
        }
        self.warmed_at.lock().insert(line.run, now_ms());
        let mut cold = self.cold.write();
        cold.remove(run);
        store.set_cold_runs(cold.len());
        self.loads.fetch_add(1, Ordering::Relaxed);
        true
    }
}
