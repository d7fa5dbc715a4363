//! The WAL writer. In buffered mode each commit record is written under the
//! engine's commit lock straight into a shared memory map of the current
//! segment, so it is in the OS page cache (and survives the death of the
//! process) before the commit is acknowledged, at the cost of a `memcpy`.
//! In strict mode the record is gathered in memory (`Segment::pending`) and
//! the next sync leader writes it with one `pwrite` before its fsync: no
//! strict commit is acknowledged before that fsync, and the committing
//! thread never touches pages that writeback holds. A record of
//! [`PWRITE_FROM`] bytes or more is written with `pwrite` instead: the
//! kernel copies it into the page cache without faulting the map's pages
//! in one by one (and the flusher's writeback then has no mapped pages of
//! it to write-protect across cores). So is a record that starts in the
//! page the last fsync wrote back: writeback write-protects a mapped page,
//! and the next write through the map would fault (in strict mode with one
//! writer, every record would: 1.13× an in-place `fdatasync` through the
//! map, 1.00× with `pwrite`). Both reach the same page cache.
//!
//! Invariants:
//! - Records are written in commit-version order: `append` is only called
//!   with the commit lock held.
//! - `written` is the newest version whose record is in the page cache
//!   (buffered) or gathered for the next sync (strict);
//!   `durable` is raised only after `fdatasync` returned for every byte up
//!   to the record of that version.
//! - Group commit: `sync_to(v)` is called by every strict committer after it
//!   released the commit lock. One of them (the leader, holding `sync_lock`)
//!   fsyncs once for every record written so far; the others find their
//!   version already durable when they get the lock. In buffered mode a
//!   background flusher does the same every `flush_interval`, or sooner once
//!   `max_pending_writes` records wait for it.
//! - A segment's file grows ahead of the records in chunks of
//!   [`GROW_BYTES`] (written as zeros, so a full disk is an `IoError` at the
//!   grow and never a `SIGBUS` in the copy, and an `fdatasync` overwrites
//!   blocks in place); the bytes past the last record are zero. A segment is cut to
//!   its records and fsynced before the next one is created, and on close,
//!   so only the newest segment can end in zeros or a torn record.
//! - A record never spans two segments; a segment holds more than
//!   `segment_bytes` only when its one record is larger.
//! - In strict mode a syncer thread serves callers that cannot block
//!   (`request_sync`): while a requested version is above the last one it
//!   reported, it fsyncs everything written (through `sync_to`, so it shares
//!   the leader lock with blocking callers) and reports the durable version
//!   to every subscriber, then starts again at once if more was requested
//!   meanwhile. A subscriber is told a version only after its fsync returned.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use in_mem_core::{Error, Result};
use memmap2::{MmapOptions, MmapRaw};
use parking_lot::{Condvar, Mutex};

use crate::format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, begin_record, finish_record, seed_record_header};
use crate::segment_file_name;

/// How far a segment's file grows at a time, ahead of its records.
pub const GROW_BYTES: u64 = 1 << 20;

/// Records this large or larger are written with `pwrite`, not through the
/// map: a 100 KB buffered `kv.put` spent most of its time faulting in the
/// map's pages (one per 4 KB) and in the TLB shootdowns of their writeback;
/// below a few pages, the `memcpy` into the map is cheaper than two calls.
pub const PWRITE_FROM: usize = 8 * 1024;

/// The page size the map's write-protect faults are judged by (4 KiB on the
/// targets; a larger page only makes the judgement coarser).
const PAGE_BYTES: u64 = 4096;
/// Pages of the map below the synced length are given back in steps of at
/// least this many bytes (one `madvise` per MiB of log), where they are not
/// unmapped before each fsync.
const RELEASE_BYTES: u64 = 1 << 20;
/// Whether a sync unmaps the whole pages of records before its fsync (Linux:
/// an unmapped dirty page of a shared file map stays dirty in the page
/// cache), or gives them back after it (elsewhere).
const UNMAP_BEFORE_SYNC: bool = cfg!(target_os = "linux");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A commit returns once its record is in the OS page cache; a
    /// background flusher fsyncs.
    Buffered,
    /// A commit returns once its record is fsynced.
    Strict,
}

#[derive(Clone, Debug)]
pub struct WalOptions {
    pub mode: Mode,
    pub segment_bytes: u64,
    pub flush_interval: Duration,
    pub max_pending_writes: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { mode: Mode::Buffered, segment_bytes: 64 * 1024 * 1024, flush_interval: Duration::from_millis(100), max_pending_writes: 1000 }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WalStats {
    pub segments: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub durable_version: u64,
    /// Records written to the OS but not yet fsynced.
    pub pending_records: usize,
}

/// The segment being written: its file, a shared map of it, how many bytes
/// of records it holds and how far the file reaches.
struct Segment {
    file: Arc<File>,
    map: Arc<MmapRaw>,
    number: u64,
    len: u64,
    capacity: u64,
    /// XOR-ed into each record's CRC (`SegmentHeader::seed`).
    seed: u32,
    /// `len` when the last fsync began: the pages up to here (and the one
    /// it ends in) were written back, which write-protects their mapping.
    synced_len: u64,
    /// Where a record is encoded before it is copied into the map.
    scratch: Vec<u8>,
    /// The map's pages below this were given back after their fsync
    /// (records only ever go after them).
    released: u64,
    /// Strict mode: records are not written to the file by the committer
    /// but gathered here, and the sync leader writes them with one `pwrite`
    /// before its fsync (`Shared::sync_to`). They start at `pending_at`; the
    /// file holds every record before it. Empty in buffered mode.
    pending: Vec<u8>,
    pending_at: u64,
    /// Whether records are gathered in `pending` (strict mode).
    deferred: bool,
}

impl Segment {
    fn path(dir: &Path, number: u64) -> PathBuf {
        dir.join(segment_file_name(number))
    }

    /// Maps `file` (whose records end at `len`) for records up to
    /// `map_len` bytes.
    fn map(dir: &Path, file: File, header: &SegmentHeader, len: u64, map_len: u64) -> Result<Segment> {
        let number = header.segment;
        let path = Self::path(dir, number);
        let capacity = file.metadata().map_err(|e| Error::io(path.display(), e))?.len();
        let map = MmapOptions::new().len(map_len as usize).map_raw(&file).map_err(|e| Error::io(path.display(), e))?;
        Ok(Segment {
            file: Arc::new(file),
            map: Arc::new(map),
            number,
            len,
            capacity,
            seed: header.seed(),
            synced_len: len,
            scratch: Vec::new(),
            released: 0,
            pending: Vec::new(),
            pending_at: len,
            deferred: false,
        })
    }

    /// Makes the file reach `end` bytes (at most the map's length).
    fn grow(&mut self, dir: &Path, end: u64) -> Result<()> {
        if end <= self.capacity {
            return Ok(());
        }
        let target = end.div_ceil(GROW_BYTES).saturating_mul(GROW_BYTES).min(self.map.len() as u64).max(end);
        let path = Self::path(dir, self.number);
        reserve(&self.file, self.capacity, target).map_err(|e| Error::io(path.display(), e))?;
        self.capacity = target;
        Ok(())
    }

    /// Copies the encoded record `bytes` after the records: its payload
    /// first and its header last, so that a process that dies during the
    /// copy leaves a zero header, which recovery knows for a torn tail. The
    /// caller grew the file first.
    /// `syncing`: an fsync is under way (then the map is cheaper, see below).
    fn put(&mut self, bytes: &[u8], syncing: bool) -> std::io::Result<()> {
        let at = self.len as usize;
        assert!(bytes.len() >= RECORD_HEADER_LEN && at + bytes.len() <= self.capacity as usize && self.capacity as usize <= self.map.len());
        let mut header = [0u8; RECORD_HEADER_LEN];
        header.copy_from_slice(&bytes[..RECORD_HEADER_LEN]);
        seed_record_header(&mut header, self.seed);
        if self.deferred {
            // Strict mode: the sync leader writes it (no commit is
            // acknowledged before its fsync, which follows that write).
            self.pending.extend_from_slice(&header);
            self.pending.extend_from_slice(&bytes[RECORD_HEADER_LEN..]);
            self.len += bytes.len() as u64;
            return Ok(());
        }
        // A record that starts in the page the last fsync wrote back would
        // take a write-protect fault in the map (each strict commit's record
        // would, after its predecessor's fsync): `pwrite` costs less there,
        // unless an fsync is under way — under group commit the map's copy
        // keeps the committing thread fastest (64 writers: 131K commits/s
        // through the map, 111K with a pwrite per round).
        let written_back = !syncing && (at as u64) < self.synced_len.next_multiple_of(PAGE_BYTES);
        if bytes.len() >= PWRITE_FROM || written_back {
            write_all_at(&self.file, &bytes[RECORD_HEADER_LEN..], (at + RECORD_HEADER_LEN) as u64)?;
            write_all_at(&self.file, &header, at as u64)?;
            self.len += bytes.len() as u64;
            return Ok(());
        }
        // SAFETY: the range is inside the map and inside the file (checked
        // above); only the holder of the segment lock writes to the map, and
        // nothing in this process reads it.
        unsafe {
            let dst = self.map.as_mut_ptr().add(at);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(RECORD_HEADER_LEN), dst.add(RECORD_HEADER_LEN), bytes.len() - RECORD_HEADER_LEN);
            std::sync::atomic::compiler_fence(Ordering::Release);
            std::ptr::copy_nonoverlapping(header.as_ptr(), dst, RECORD_HEADER_LEN);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Writes the gathered records (strict mode) to the file.
    fn write_pending(&mut self, dir: &Path) -> Result<()> {
        if !self.pending.is_empty() {
            write_all_at(&self.file, &self.pending, self.pending_at).map_err(|e| Error::io(Self::path(dir, self.number).display(), e))?;
            self.pending.clear();
        }
        self.pending_at = self.len;
        Ok(())
    }

    /// Writes the mapped and gathered records back, cuts the file to them
    /// and fsyncs it: the segment is closed. (The caller holds the WAL's
    /// `writing` lock: no sync leader's write of earlier records is still
    /// under way.)
    fn seal(&mut self, dir: &Path) -> Result<()> {
        self.write_pending(dir)?;
        let path = Self::path(dir, self.number);
        self.map.flush_range(0, self.len as usize).map_err(|e| Error::io(path.display(), e))?;
        self.file.set_len(self.len).map_err(|e| Error::io(path.display(), e))?;
        self.file.sync_all().map_err(|e| Error::io(path.display(), e))
    }
}

/// Extends `file` from `from` to `to` bytes by writing zeros (so a full disk
/// fails here, not in a write to the map). Written zeros, not blocks
/// reserved with `fallocate`: a reserved block is "unwritten" to the file
/// system, and the first `fdatasync` after a record lands in it journals
/// its conversion too; written blocks are overwritten in place and their
/// `fdatasync` flushes data alone (docs/durability.md).
fn reserve(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(ZEROS.len());
        write_all_at(file, &ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut bytes: &[u8], mut at: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        at += n as u64;
    }
    Ok(())
}

struct Shared {
    dir: PathBuf,
    database_id: [u8; 16],
    options: WalOptions,
    segment: Mutex<Segment>,
    /// Held by the sync leader; holds the leader's buffer, swapped with the
    /// segment's gathered records (`Segment::pending`) in strict mode.
    sync_lock: Mutex<Vec<u8>>,
    written: AtomicU64,
    durable: AtomicU64,
    /// Records written since the last fsync began.
    unsynced: AtomicUsize,
    bytes_written: AtomicU64,
    fsyncs: AtomicU64,
    segments: AtomicU64,
    /// Every segment on disk and the newest commit version it holds, oldest
    /// first; the last is the one being written, whose version is brought up
    /// to date (from `written`) only when it closes: nothing reads it before.
    segment_versions: Mutex<Vec<(u64, u64)>>,
    stop: AtomicBool,
    closed: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
    failed: Mutex<Option<String>>,
    /// The newest version a `request_sync` caller waits for.
    want: AtomicU64,
    /// The syncer's sleep: it waits here until `want` passes what it last
    /// reported.
    syncer_lock: Mutex<()>,
    syncer_wake: Condvar,
    /// Told the durable version (or the failure) after each syncer round.
    subscribers: Mutex<Vec<(u64, Subscriber)>>,
    next_subscriber: AtomicU64,
    /// While set, the syncer starts no round (`hold_syncer`, for tests).
    held: AtomicBool,
    /// Set while an `fdatasync` of the current segment runs.
    syncing: AtomicBool,
    /// Held by a sync leader from taking the gathered records (strict
    /// mode) until its write and fsync are done and any failure recorded,
    /// and by whoever seals a segment: a seal never cuts or fsyncs a file
    /// before those records are in it, and never raises `durable` past a
    /// failed write or fsync. Taken after the segment lock, never before it.
    writing: Mutex<()>,
    /// Unit tests: a sync leader about to write gathered records says so
    /// here, then waits until it is cleared; the write then fails if
    /// `fail_write` is set.
    #[cfg(test)]
    paused: AtomicBool,
    #[cfg(test)]
    fail_write: AtomicBool,
}

/// Called by the syncer thread after each of its rounds: `Ok(durable
/// version)`, or `Err(reason)` when the fsync failed (the WAL then accepts
/// no more writes).
pub type Subscriber = Arc<dyn Fn(std::result::Result<u64, &str>) + Send + Sync>;

pub struct Wal {
    shared: Arc<Shared>,
    /// The buffered mode's flusher, or the strict mode's syncer.
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Opens the log for appending after recovery: `next_segment` is one past
    /// the newest existing segment (or the newest, if `append_to` is given and
    /// has room), and `last_version` the newest recovered commit.
    pub fn open(
        dir: &Path,
        database_id: [u8; 16],
        options: WalOptions,
        append_to: Option<(u64, u64)>,
        next_segment: u64,
        last_version: u64,
        segment_versions: Vec<(u64, u64)>,
    ) -> Result<Wal> {
        let (mut segment, new) = match append_to {
            Some((number, len)) if len >= SEGMENT_HEADER_LEN as u64 && len < options.segment_bytes => {
                let path = Segment::path(dir, number);
                let file = OpenOptions::new().read(true).write(true).open(&path).map_err(|e| Error::io(path.display(), e))?;
                let header = read_header(&file).ok_or_else(|| Error::Corruption {
                    file: path.display().to_string(),
                    offset: 0,
                    reason: "the segment's header does not read back".into(),
                })?;
                // Whatever lies past the records (zeros a crash left, or a
                // recycled file's stale bytes) goes.
                file.set_len(len).map_err(|e| Error::io(path.display(), e))?;
                (Segment::map(dir, file, &header, len, options.segment_bytes)?, false)
            }
            _ => (next_segment_file(dir, next_segment, database_id, options.segment_bytes)?, true),
        };
        segment.deferred = options.mode == Mode::Strict;
        let mut segment_versions = segment_versions;
        if new {
            segment_versions.push((segment.number, last_version));
        }
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            database_id,
            options: options.clone(),
            segment: Mutex::new(segment),
            sync_lock: Mutex::new(Vec::new()),
            written: AtomicU64::new(last_version),
            durable: AtomicU64::new(last_version),
            unsynced: AtomicUsize::new(0),
            bytes_written: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            segments: AtomicU64::new(segment_versions.len() as u64),
            segment_versions: Mutex::new(segment_versions),
            stop: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            failed: Mutex::new(None),
            want: AtomicU64::new(last_version),
            syncer_lock: Mutex::new(()),
            syncer_wake: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            next_subscriber: AtomicU64::new(1),
            held: AtomicBool::new(false),
            syncing: AtomicBool::new(false),
            writing: Mutex::new(()),
            #[cfg(test)]
            paused: AtomicBool::new(false),
            #[cfg(test)]
            fail_write: AtomicBool::new(false),
        });
        let s = shared.clone();
        let flusher = match options.mode {
            Mode::Buffered => std::thread::Builder::new().name("in-mem-wal-flusher".into()).spawn(move || flusher_loop(s)),
            Mode::Strict => std::thread::Builder::new().name("in-mem-wal-syncer".into()).spawn(move || syncer_loop(s)),
        }
        .map_err(|e| Error::io("starting the WAL's background thread", e))?;
        let flusher = Some(flusher);
        Ok(Wal { shared, flusher: Mutex::new(flusher) })
    }

    pub fn mode(&self) -> Mode {
        self.shared.options.mode
    }

    /// Writes the record of commit `version` to the OS. Must be called with
    /// the commit lock held, in version order.
    pub fn append(&self, version: u64, payload: &[u8]) -> Result<()> {
        self.append_with(version, |buf| buf.extend_from_slice(payload))
    }

    /// Like [`Wal::append`], with the payload written by `fill`.
    pub fn append_with(&self, version: u64, fill: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.check_failed()?;
        let s = &*self.shared;
        let mut seg = s.segment.lock();
        // Checked under the segment lock, which close() holds while it
        // seals: a record never goes into a sealed segment.
        if s.closed.load(Ordering::Acquire) {
            return Err(Error::Io { message: "the WAL is closed".into() });
        }
        let mut scratch = std::mem::take(&mut seg.scratch);
        scratch.clear();
        let start = begin_record(&mut scratch);
        fill(&mut scratch);
        finish_record(&mut scratch, start, version);
        let written = s.write_record(&mut seg, &scratch, version);
        if scratch.capacity() <= GROW_BYTES as usize {
            seg.scratch = scratch;
        }
        drop(seg);
        written?;
        let waiting = s.unsynced.fetch_add(1, Ordering::AcqRel) + 1;
        if waiting == s.options.max_pending_writes && s.options.mode == Mode::Buffered {
            s.wake.notify_one();
        }
        Ok(())
    }

    /// Returns once every record up to `version` is fsynced (group commit).
    pub fn sync_to(&self, version: u64) -> Result<()> {
        self.shared.sync_to(version)
    }

    /// Fsyncs everything written so far.
    pub fn flush(&self) -> Result<()> {
        self.shared.sync_to(self.shared.written.load(Ordering::Acquire))
    }

    pub fn durable_version(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// For a caller that must not block (strict mode): returns `true` if
    /// `version` is durable already; otherwise the syncer fsyncs it soon and
    /// then tells every subscriber ([`Wal::subscribe`]) the durable version.
    /// In buffered mode it only returns whether `version` is durable.
    pub fn request_sync(&self, version: u64) -> bool {
        let s = &*self.shared;
        // Nothing past the newest record can be made durable: a want beyond
        // it would keep the syncer fsyncing for nothing.
        let version = version.min(s.written.load(Ordering::Acquire));
        // Raised before the check: if the check fails, the syncer's last
        // report was below `version`, so it sees this want and reports again.
        s.want.fetch_max(version, Ordering::AcqRel);
        if s.durable.load(Ordering::Acquire) >= version {
            return true;
        }
        if s.options.mode == Mode::Strict {
            let _g = s.syncer_lock.lock();
            s.syncer_wake.notify_one();
        }
        false
    }

    /// Adds a subscriber to the syncer's reports; returns its id for
    /// [`Wal::unsubscribe`]. Only a strict WAL has a syncer.
    pub fn subscribe(&self, subscriber: Subscriber) -> u64 {
        let id = self.shared.next_subscriber.fetch_add(1, Ordering::Relaxed);
        self.shared.subscribers.lock().push((id, subscriber));
        id
    }

    /// While `on`, the syncer starts no new round: requests pile up and the
    /// next round covers them all. For tests of group commit.
    pub fn hold_syncer(&self, on: bool) {
        self.shared.held.store(on, Ordering::Release);
        let _g = self.shared.syncer_lock.lock();
        self.shared.syncer_wake.notify_all();
    }

    pub fn unsubscribe(&self, id: u64) {
        // Dropped outside the lock: a subscriber's drop may do work of its own.
        let gone: Vec<_> = {
            let mut subs = self.shared.subscribers.lock();
            let (gone, kept) = std::mem::take(&mut *subs).into_iter().partition(|(i, _)| *i == id);
            *subs = kept;
            gone
        };
        drop(gone);
    }

    /// Bytes of records written since the WAL opened (one atomic load: the
    /// commit path asks it).
    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes_written.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> WalStats {
        WalStats {
            segments: self.shared.segments.load(Ordering::Relaxed),
            bytes_written: self.shared.bytes_written.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            durable_version: self.durable_version(),
            pending_records: self.shared.unsynced.load(Ordering::Relaxed),
        }
    }

    /// Deletes every segment, other than the one being written, whose
    /// commits are all at or below `version` (a checkpoint covers them).
    /// Returns how many went.
    pub fn remove_segments_upto(&self, version: u64) -> Result<u64> {
        let current = self.shared.segment.lock().number;
        let doomed: Vec<u64> = {
            let sv = self.shared.segment_versions.lock();
            sv.iter().take_while(|(n, last)| *n != current && *last <= version).map(|(n, _)| *n).collect()
        };
        let spare = self.shared.dir.join(SPARE_FILE);
        for n in &doomed {
            let path = Segment::path(&self.shared.dir, *n);
            // One obsolete segment is kept as the spare the next rotation
            // reuses (format 2 only: format 1 records have no seed, so their
            // stale copies could pass for records).
            let keep = !spare.exists() && File::open(&path).ok().as_ref().and_then(read_header).is_some_and(|h| h.format >= 2);
            let gone = if keep { std::fs::rename(&path, &spare) } else { std::fs::remove_file(&path) };
            match gone {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path.display(), e)),
            }
            self.shared.segment_versions.lock().retain(|(m, _)| m != n);
            self.shared.segments.fetch_sub(1, Ordering::Relaxed);
        }
        if !doomed.is_empty() {
            sync_dir(&self.shared.dir)?;
        }
        Ok(doomed.len() as u64)
    }

    /// Bytes of records and headers in the segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        let (current, current_len) = {
            let seg = self.shared.segment.lock();
            (seg.number, seg.len)
        };
        let names: Vec<u64> = self.shared.segment_versions.lock().iter().map(|(n, _)| *n).filter(|n| *n != current).collect();
        let closed: u64 = names.iter().filter_map(|n| std::fs::metadata(Segment::path(&self.shared.dir, *n)).ok()).map(|m| m.len()).sum();
        closed + current_len
    }

    /// Stops the flusher, makes everything written durable and cuts the
    /// current segment to its records. Later appends are refused.
    pub fn close(&self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        {
            let _g = self.shared.wake_lock.lock();
            self.shared.wake.notify_all();
        }
        {
            let _g = self.shared.syncer_lock.lock();
            self.shared.syncer_wake.notify_all();
        }
        if let Some(handle) = self.flusher.lock().take() {
            let _ = handle.join();
        }
        let synced = self.flush();
        let mut seg = self.shared.segment.lock();
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return synced;
        }
        let _writing = self.shared.writing.lock();
        synced.and(seg.seal(&self.shared.dir))
    }

    fn check_failed(&self) -> Result<()> {
        self.shared.check_failed()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Shared {
    /// Copies one encoded record into the current segment, rotating first
    /// when it would not fit. Called with the segment lock held.
    fn write_record(&self, seg: &mut Segment, record: &[u8], version: u64) -> Result<()> {
        let len = record.len() as u64;
        if seg.len + len > seg.map.len() as u64 {
            // Every record before this one is fsynced as the segment closes.
            // `writing`: no sync leader is between taking records and
            // recording how its write and fsync went, so a failure of
            // either is known here (a second fsync of the same file would
            // not report it again) and `durable` is not raised past it.
            let written = self.written.load(Ordering::Acquire);
            {
                let _writing = self.writing.lock();
                self.check_failed()?;
                seg.seal(&self.dir).map_err(|e| self.fail_with("closing a full WAL segment", e))?;
                self.durable.fetch_max(written, Ordering::AcqRel);
            }
            let map_len = self.options.segment_bytes.max(SEGMENT_HEADER_LEN as u64 + len);
            let mut next = next_segment_file(&self.dir, seg.number + 1, self.database_id, map_len)?;
            next.deferred = seg.deferred;
            *seg = next;
            self.segments.fetch_add(1, Ordering::Relaxed);
            let mut sv = self.segment_versions.lock();
            if let Some(last) = sv.last_mut() {
                last.1 = written;
            }
            sv.push((seg.number, written));
        }
        seg.grow(&self.dir, seg.len + len).map_err(|e| self.fail_with("growing the WAL", e))?;
        seg.put(record, self.syncing.load(Ordering::Acquire)).map_err(|e| self.fail("writing a WAL record", e))?;
        self.bytes_written.fetch_add(len, Ordering::Relaxed);
        self.written.store(version, Ordering::Release);
        Ok(())
    }

    fn sync_to(&self, version: u64) -> Result<()> {
        if self.durable.load(Ordering::Acquire) >= version {
            return Ok(());
        }
        // The leader's lock, and its buffer for the gathered records.
        let mut gathered = self.sync_lock.lock();
        if self.durable.load(Ordering::Acquire) >= version {
            return Ok(());
        }
        self.check_failed()?;
        // Older segments were fsynced when they closed, so the current file
        // holds every record not yet durable.
        let (file, map, len, unmap, covered, gathered_at, writing) = {
            let mut seg = self.segment.lock();
            seg.synced_len = seg.len;
            // Strict mode: the records gathered since the last round are
            // written here, outside the segment lock, so committers go on
            // gathering meanwhile.
            std::mem::swap(&mut *gathered, &mut seg.pending);
            let gathered_at = seg.pending_at;
            seg.pending_at = seg.len;
            // Held until this round's write and fsync are done and any
            // failure recorded: a rotation or close that seals the segment
            // meanwhile waits, and then sees the failure.
            let writing = self.writing.lock();
            let whole = seg.len / PAGE_BYTES * PAGE_BYTES;
            let unmap = (seg.released, whole);
            if UNMAP_BEFORE_SYNC && whole > seg.released {
                seg.released = whole;
            }
            (seg.file.clone(), seg.map.clone(), seg.len, unmap, self.written.load(Ordering::Acquire), gathered_at, writing)
        };
        if !gathered.is_empty() {
            #[cfg(test)]
            let wrote = self.test_write(|| write_all_at(&file, &gathered, gathered_at));
            #[cfg(not(test))]
            let wrote = write_all_at(&file, &gathered, gathered_at);
            gathered.clear();
            if gathered.capacity() > GROW_BYTES as usize {
                *gathered = Vec::new();
            }
            wrote.map_err(|e| self.fail("writing the WAL", e))?;
        }
        // (`gathered` is the leader's lock: held until the fsync is done.)
        self.unsynced.store(0, Ordering::Release);
        // On Linux the whole pages of records are unmapped before the
        // fdatasync (their bytes stay in the page cache, still dirty):
        // writeback write-protects every mapped page it writes, one TLB
        // shootdown across the process's cores per page, where one
        // `madvise` unmaps them all in one. Elsewhere msync writes them back
        // first and they are given back after (`release_synced`).
        #[cfg(target_os = "linux")]
        if unmap.1 > unmap.0 {
            // SAFETY: the range is inside the map and below `len`: every
            // record still to be written goes after it, and nothing in this
            // process reads the map. The dirty pages keep their bytes in the
            // page cache, where the fdatasync below finds them.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, unmap.0 as usize, (unmap.1 - unmap.0) as usize) };
        }
        #[cfg(not(target_os = "linux"))]
        map.flush_range(0, len as usize).map_err(|e| self.fail("msync of the WAL", e))?;
        self.syncing.store(true, Ordering::Release);
        let synced = file.sync_data();
        self.syncing.store(false, Ordering::Release);
        synced.map_err(|e| self.fail("fdatasync of the WAL", e))?;
        drop(writing);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(covered, Ordering::AcqRel);
        // (The segment lock is taken again only when a MiB is due.)
        if !UNMAP_BEFORE_SYNC && len / PAGE_BYTES * PAGE_BYTES >= unmap.0 + RELEASE_BYTES {
            self.release_synced(&map, len);
        }
        Ok(())
    }

    /// Gives back the map's pages wholly below `len` (on disk now, and never
    /// written again: records go after them), so the mapped segment does not
    /// grow the process's RSS by every byte of log it takes. Their bytes stay
    /// in the page cache; only the mapping goes.
    fn release_synced(&self, map: &Arc<MmapRaw>, len: u64) {
        let mut seg = self.segment.lock();
        let upto = len / PAGE_BYTES * PAGE_BYTES;
        if !Arc::ptr_eq(&seg.map, map) || upto < seg.released + RELEASE_BYTES {
            return;
        }
        #[cfg(unix)]
        // SAFETY: the range is inside the map, below every record still to be
        // written (`len` is where the synced records end and records only go
        // after it), and nothing in this process reads the map: the next touch
        // of those pages would read them back from the file.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, seg.released as usize, (upto - seg.released) as usize) };
        seg.released = upto;
    }

    /// Unit tests: the pause and the injected failure of a leader's write.
    #[cfg(test)]
    fn test_write(&self, write: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
        while self.paused.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        if self.fail_write.swap(false, Ordering::AcqRel) { Err(std::io::Error::other("an injected write failure")) } else { write() }
    }

    /// An error if the WAL failed earlier (an I/O error is remembered and
    /// refuses everything after it).
    fn check_failed(&self) -> Result<()> {
        match &*self.failed.lock() {
            Some(reason) => Err(Error::Io { message: format!("the WAL failed earlier and accepts no writes: {reason}") }),
            None => Ok(()),
        }
    }

    fn fail(&self, what: &str, e: std::io::Error) -> Error {
        self.fail_with(what, Error::Io { message: e.to_string() })
    }

    fn fail_with(&self, what: &str, e: Error) -> Error {
        let reason = format!("{what}: {e}");
        *self.failed.lock() = Some(reason.clone());
        Error::Io { message: reason }
    }
}

fn flusher_loop(shared: Arc<Shared>) {
    loop {
        {
            let mut g = shared.wake_lock.lock();
            if !shared.stop.load(Ordering::Acquire) && shared.unsynced.load(Ordering::Acquire) < shared.options.max_pending_writes {
                shared.wake.wait_for(&mut g, shared.options.flush_interval);
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let last = shared.written.load(Ordering::Acquire);
        if last > shared.durable.load(Ordering::Acquire) {
            // An I/O failure is remembered in `failed` and refuses later writes.
            let _ = shared.sync_to(last);
        }
    }
}

/// The strict mode's syncer (see the module's invariants).
fn syncer_loop(shared: Arc<Shared>) {
    let mut reported = shared.durable.load(Ordering::Acquire);
    loop {
        // Records nobody waits for (a commit whose caller does not wait for
        // its durability, such as the engine's own) are gathered, not in
        // the file: after a quiet `flush_interval` they are made durable
        // too, so they do not wait for the next strict commit.
        let mut unasked = false;
        {
            let mut g = shared.syncer_lock.lock();
            while !shared.stop.load(Ordering::Acquire) && (shared.want.load(Ordering::Acquire) <= reported || shared.held.load(Ordering::Acquire)) {
                let quiet = shared.syncer_wake.wait_for(&mut g, shared.options.flush_interval).timed_out();
                if quiet
                    && !shared.held.load(Ordering::Acquire)
                    && shared.written.load(Ordering::Acquire) > shared.durable.load(Ordering::Acquire)
                    && shared.failed.lock().is_none()
                {
                    unasked = true;
                    break;
                }
            }
        }
        let stopping = shared.stop.load(Ordering::Acquire);
        let written = shared.written.load(Ordering::Acquire);
        let target = if unasked { written } else { shared.want.load(Ordering::Acquire) };
        // Stopping: close() fsyncs what is left; report what it reached.
        let result = if stopping || shared.durable.load(Ordering::Acquire) >= target { Ok(()) } else { shared.sync_to(written) };
        let subscribers: Vec<Subscriber> = shared.subscribers.lock().iter().map(|(_, s)| s.clone()).collect();
        match result {
            Ok(()) => {
                reported = shared.durable.load(Ordering::Acquire);
                for s in &subscribers {
                    s(Ok(reported));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for s in &subscribers {
                    s(Err(&reason));
                }
                // Nothing more can become durable: waiters are told, and the
                // syncer sleeps until a new want (answered the same way).
                reported = shared.want.load(Ordering::Acquire);
            }
        }
        if stopping {
            return;
        }
    }
}

/// The file in `wal/` that holds an obsolete segment kept for reuse.
pub const SPARE_FILE: &str = "spare.recycle";

/// Reads and checks the header at the start of `file`.
fn read_header(file: &File) -> Option<SegmentHeader> {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(file, &mut h, 0).ok()?;
    #[cfg(windows)]
    {
        let mut at = 0;
        while at < h.len() {
            let n = std::os::windows::fs::FileExt::seek_read(file, &mut h[at..], at as u64).ok()?;
            if n == 0 {
                return None;
            }
            at += n;
        }
    }
    SegmentHeader::decode(&h).ok()
}

/// Segment `number`, mapped for records up to `map_len` bytes: the spare
/// file recycled if there is one ([`recycle_segment`]), else a new file.
fn next_segment_file(dir: &Path, number: u64, database_id: [u8; 16], map_len: u64) -> Result<Segment> {
    match recycle_segment(dir, number, database_id, map_len)? {
        Some(segment) => Ok(segment),
        None => create_segment(dir, number, database_id, map_len),
    }
}

/// Makes the spare file segment `number`: its new header (flagged recycled)
/// is written and fsynced first, then it is renamed into place and the
/// directory fsynced, so a crash leaves either the spare or a valid
/// segment. Its old records stay as they are: their CRCs carry the old
/// segment's seed, so none checks out as a record of this one, and records
/// are written over them in place — blocks that are already allocated and
/// written, whose `fdatasync` commits no metadata. `None` if there is no
/// spare.
fn recycle_segment(dir: &Path, number: u64, database_id: [u8; 16], map_len: u64) -> Result<Option<Segment>> {
    let spare = dir.join(SPARE_FILE);
    let file = match OpenOptions::new().read(true).write(true).open(&spare) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(spare.display(), e)),
    };
    let header = SegmentHeader::new(number, database_id, true);
    let map_len = map_len.max(SEGMENT_HEADER_LEN as u64);
    let prepare = || -> std::io::Result<()> {
        if file.metadata()?.len() > map_len {
            file.set_len(map_len)?;
        }
        write_all_at(&file, &header.encode(), 0)?;
        file.sync_all()
    };
    prepare().map_err(|e| Error::io(spare.display(), e))?;
    let path = Segment::path(dir, number);
    std::fs::rename(&spare, &path).map_err(|e| Error::io(path.display(), e))?;
    sync_dir(dir)?;
    Segment::map(dir, file, &header, SEGMENT_HEADER_LEN as u64, map_len).map(Some)
}

/// Creates segment `number` with its header, fsynced, mapped for records up
/// to `map_len` bytes.
fn create_segment(dir: &Path, number: u64, database_id: [u8; 16], map_len: u64) -> Result<Segment> {
    let path = Segment::path(dir, number);
    let mut file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(|e| Error::io(path.display(), e))?;
    let header = SegmentHeader::new(number, database_id, false);
    file.write_all(&header.encode()).map_err(|e| Error::io(path.display(), e))?;
    file.sync_all().map_err(|e| Error::io(path.display(), e))?;
    sync_dir(dir)?;
    Segment::map(dir, file, &header, SEGMENT_HEADER_LEN as u64, map_len.max(SEGMENT_HEADER_LEN as u64))
}

/// fsyncs a directory so that a created or renamed entry in it survives.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sync leader whose write of the gathered records fails while a
    /// committer waits to rotate the segment: the rotation is refused and
    /// `durable` is not raised over records that never reached the file (a
    /// review found the rotation sealing after the leader let go of
    /// `writing` but before it recorded the failure, then raising
    /// `durable` to every record written).
    #[test]
    fn a_failed_leader_write_is_seen_by_a_rotation_waiting_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions { mode: Mode::Strict, segment_bytes: 4096, flush_interval: Duration::from_secs(600), max_pending_writes: 1000 };
        let wal = Arc::new(Wal::open(dir.path(), [5; 16], options, None, 1, 0, Vec::new()).unwrap());
        for v in 1..=5 {
            wal.append(v, &[v as u8; 100]).unwrap();
        }
        let shared = wal.shared.clone();
        shared.paused.store(true, Ordering::Release);
        shared.fail_write.store(true, Ordering::Release);
        let leader = {
            let wal = wal.clone();
            std::thread::spawn(move || wal.sync_to(5))
        };
        // The leader holds `writing` once the gathered records are gone
        // from the segment.
        while !shared.segment.lock().pending.is_empty() {
            std::thread::yield_now();
        }
        let committer = {
            let wal = wal.clone();
            // Does not fit the 4 KiB segment: a rotation, which waits for `writing`.
            std::thread::spawn(move || wal.append(6, &[6; 5000]))
        };
        std::thread::sleep(Duration::from_millis(100));
        shared.paused.store(false, Ordering::Release);
        assert!(leader.join().unwrap().is_err(), "the injected write failure is the leader's error");
        assert!(committer.join().unwrap().is_err(), "the rotation must not seal over a failed write");
        assert_eq!(wal.durable_version(), 0, "nothing reached the file, so nothing is durable");
        assert!(wal.sync_to(3).is_err());
    }
}
