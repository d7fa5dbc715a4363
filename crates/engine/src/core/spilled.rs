//! The history files of a durable database, as the store reads them
//! ([`DiskHistory`]): versions each checkpoint moved out of memory
//! (`in_mem_durability::history` has the file format, `checkpointing.rs`
//! when they are written).
//!
//! Invariants: the files are listed oldest first, and for any one key
//! every version in a newer file is newer than every version in an older
//! one (a checkpoint moves only what is in memory, and what it moves leaves
//! memory). A lookup therefore walks the files from the newest and stops at
//! the first that has a version at or below its snapshot. (After a
//! checkpoint falls back to the one before it, the newest file may repeat
//! versions the WAL brings back into memory; the store asks for what is
//! older than memory, and repeats are given once.)

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use in_mem_core::Result;
use in_mem_durability::history::{self, HistoryFile};
use in_mem_storage::{DiskHistory, Value};
use parking_lot::{Mutex, RwLock};

/// More files than this, and a checkpoint merges some ([`HistoryFiles::to_merge`]).
pub const MAX_FILES: usize = 8;

/// Decompressed blocks kept for the lookups that follow (a replay reads
/// the keys of a run in order, so neighbouring lookups share blocks).
const CACHED_BLOCKS: usize = 64;

#[derive(Default)]
pub struct HistoryFiles {
    files: RwLock<Vec<Arc<HistoryFile>>>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    blocks: HashMap<(u64, usize), Arc<Block>>,
    order: VecDeque<(u64, usize)>,
}

/// A block decoded: its keys in order, each with its versions oldest first,
/// the values shared with the readers they are given to.
type Block = Vec<(Box<[u8]>, Vec<(u64, Option<Value>)>)>;

/// What the history files hold, for `stats()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnDisk {
    pub files: u64,
    pub versions: u64,
    pub bytes: u64,
}

impl HistoryFiles {
    /// Opens the history files `versions` (oldest first) of the data
    /// directory: their headers, indexes and footers are checked, and their
    /// blocks when read (all of them now with `check_all`); a damaged one is
    /// a `CorruptionError` naming it.
    pub fn open(data_dir: &Path, versions: &[u64], database_id: Option<[u8; 16]>, check_all: bool) -> Result<HistoryFiles> {
        let open = |v: &u64| HistoryFile::open_kind(&history::path(data_dir, *v), database_id, history::Kind::History, check_all).map(Arc::new);
        let files = versions.iter().map(open).collect::<Result<Vec<_>>>()?;
        Ok(HistoryFiles { files: RwLock::new(files), cache: Mutex::default() })
    }

    /// The files the next checkpoint merges into its own history file
    /// (compaction; oldest first): none while there are fewer than
    /// [`MAX_FILES`]; else the newest [`MAX_FILES`]` / 2`, and each older
    /// one that is no larger than those together — so a merged file is
    /// about the size of what it replaced, and a version is rewritten about
    /// once per doubling of the history (size-tiered).
    pub fn to_merge(&self) -> Vec<Arc<HistoryFile>> {
        let files = self.files.read();
        if files.len() < MAX_FILES {
            return Vec::new();
        }
        let mut from = files.len();
        let mut total = 0;
        while from > 0 && (files.len() - from < MAX_FILES / 2 || total >= files[from - 1].bytes()) {
            from -= 1;
            total += files[from].bytes();
        }
        files[from..].to_vec()
    }

    /// Replaces the newest `merged` files by `file`, the one a checkpoint
    /// just wrote (which holds their versions and newer ones; `None`: it
    /// had nothing to write, so they held nothing still needed); returns
    /// the replaced files' paths.
    pub fn replace(&self, merged: usize, file: Option<HistoryFile>) -> Vec<std::path::PathBuf> {
        let mut files = self.files.write();
        let at = files.len() - merged;
        let gone = files.split_off(at);
        debug_assert!(file.as_ref().is_none_or(|f| files.last().is_none_or(|l| l.version() < f.version())));
        files.extend(file.map(Arc::new));
        gone.iter().map(|f| f.path().to_path_buf()).collect()
    }

    /// The checkpoint versions of the files, oldest first.
    pub fn versions(&self) -> Vec<u64> {
        self.files.read().iter().map(|f| f.version()).collect()
    }

    pub fn on_disk(&self) -> OnDisk {
        let files = self.files.read();
        OnDisk { files: files.len() as u64, versions: files.iter().map(|f| f.entries()).sum(), bytes: files.iter().map(|f| f.bytes()).sum() }
    }

    fn block(&self, file: &HistoryFile, n: usize) -> Arc<Block> {
        let id = (file.version(), n);
        if let Some(b) = self.cache.lock().blocks.get(&id) {
            return b.clone();
        }
        let raw = match file.try_block(n) {
            Ok(raw) => raw,
            // Reads have no error to return: the read's call fails with this
            // one (every native entry point catches an unwind and throws its
            // payload, an error's JSON, as that error; cold.rs does the same).
            Err(e) => std::panic::resume_unwind(Box::new(e.to_json())),
        };
        let mut decoded: Block = Vec::new();
        // (try_block checked the entries.)
        let _ = history::entries_of(&raw, |k, v, value| {
            let value = value.map(Value::from);
            match decoded.last_mut() {
                Some((last, versions)) if **last == *k => versions.push((v, value)),
                _ => decoded.push((k.into(), vec![(v, value)])),
            }
            Ok(())
        });
        let block = Arc::new(decoded);
        let mut cache = self.cache.lock();
        if cache.blocks.insert(id, block.clone()).is_none() {
            cache.order.push_back(id);
            if cache.order.len() > CACHED_BLOCKS
                && let Some(old) = cache.order.pop_front()
            {
                cache.blocks.remove(&old);
            }
        }
        block
    }

    /// Calls `f` with the versions of `key` in block `n` of `file`, oldest first.
    fn each(&self, file: &HistoryFile, n: usize, key: &[u8], f: &mut dyn FnMut(u64, &Option<Value>)) {
        let block = self.block(file, n);
        if let Ok(i) = block.binary_search_by(|(k, _)| (**k).cmp(key)) {
            for (v, value) in &block[i].1 {
                f(*v, value);
            }
        }
    }
}

impl DiskHistory for HistoryFiles {
    fn read(&self, key: &[u8], snapshot: u64) -> Option<(u64, Option<Value>)> {
        // Held while reading: a checkpoint replaces files only briefly.
        let files = self.files.read();
        for file in files.iter().rev() {
            if !file.may_hold(key) {
                continue;
            }
            // The one block that can hold it (none: nothing that old here).
            let Some(n) = file.block_for(key, snapshot) else { continue };
            let mut found = None;
            self.each(file, n, key, &mut |v, value| {
                if v <= snapshot {
                    found = Some((v, value.clone()));
                }
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn versions(&self, key: &[u8], snapshot: u64, f: &mut dyn FnMut(u64, Option<Value>)) {
        // Held while reading: a checkpoint replaces files only briefly.
        let files = self.files.read();
        // A version in two files (a checkpoint written again after a
        // fallback to the one before it) is given once.
        let mut last = None;
        for file in files.iter().filter(|f| f.oldest() <= snapshot && f.may_hold(key)) {
            for n in file.blocks_of(key) {
                self.each(file, n, key, &mut |v, value| {
                    if v <= snapshot && last.is_none_or(|l| v > l) {
                        last = Some(v);
                        f(v, value.clone());
                    }
                });
            }
        }
    }
}

/// The keys of several history files (oldest file first) in key order, each
/// with its versions from every file, oldest first: what a checkpoint
/// merging them reads.
pub struct Merge<'a> {
    heads: Vec<std::iter::Peekable<Box<dyn Iterator<Item = history::KeyVersions> + 'a>>>,
}

impl<'a> Merge<'a> {
    pub fn new(files: &'a [Arc<HistoryFile>]) -> Merge<'a> {
        Merge { heads: files.iter().map(|f| (Box::new(f.keys()) as Box<dyn Iterator<Item = history::KeyVersions> + 'a>).peekable()).collect() }
    }

    /// The smallest key not taken yet.
    pub fn peek(&mut self) -> Option<&[u8]> {
        self.heads.iter_mut().filter_map(|h| h.peek().map(|(k, _)| k.as_slice())).min()
    }

    /// The versions of `key` if it is the smallest key not taken yet
    /// (taken), else none.
    pub fn take_key(&mut self, key: &[u8]) -> Vec<(u64, Option<Vec<u8>>)> {
        if self.peek() == Some(key) { self.take().map(|(_, v)| v).unwrap_or_default() } else { Vec::new() }
    }

    /// Takes the smallest key with its versions from every file that has
    /// it (a version in two files is kept once).
    pub fn take(&mut self) -> Option<history::KeyVersions> {
        let key = self.peek()?.to_vec();
        let mut versions: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
        for h in &mut self.heads {
            if h.peek().is_some_and(|(k, _)| *k == key) {
                let (_, vs) = h.next().expect("peeked");
                for (v, value) in vs {
                    if versions.last().is_none_or(|(l, _)| v > *l) {
                        versions.push((v, value));
                    }
                }
            }
        }
        Some((key, versions))
    }
}
