//! The WAL writer: commit records are appended to an in-memory batch under
//! the engine's commit lock, and reach the disk in batches.
//!
//! Invariants:
//! - Records are written in commit-version order: `append` is only called
//!   with the commit lock held, and batches are written whole, in order.
//! - `durable` is raised only after `fdatasync` returned for every byte up to
//!   the record of that version.
//! - Group commit: `sync_to(v)` is called by every strict committer after it
//!   released the commit lock. One of them (the leader, holding `sync_lock`)
//!   writes the whole batch and fsyncs once; the others find their version
//!   already durable when they get the lock.
//! - A record never spans two segments. A segment is closed (fsynced) before
//!   the next one is created, so only the newest segment can have a torn tail.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use in_mem_core::{Error, Result};
use parking_lot::{Condvar, Mutex};

use crate::format::{SegmentHeader, begin_record, finish_record};
use crate::segment_file_name;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A commit returns once queued; a background flusher writes and fsyncs.
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
    pub pending_records: usize,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    records: usize,
    last_version: u64,
}

struct Segment {
    file: Arc<File>,
    number: u64,
    len: u64,
}

struct Shared {
    dir: PathBuf,
    database_id: [u8; 16],
    options: WalOptions,
    pending: Mutex<Pending>,
    segment: Mutex<Segment>,
    sync_lock: Mutex<()>,
    written: AtomicU64,
    durable: AtomicU64,
    bytes_written: AtomicU64,
    fsyncs: AtomicU64,
    segments: AtomicU64,
    /// Every segment on disk and the newest commit version it holds, oldest
    /// first; the last is the one being written.
    segment_versions: Mutex<Vec<(u64, u64)>>,
    stop: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
    failed: Mutex<Option<String>>,
}

pub struct Wal {
    shared: Arc<Shared>,
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
        let (segment, new) = match append_to {
            Some((number, len)) if len < options.segment_bytes => {
                let path = dir.join(segment_file_name(number));
                let file = OpenOptions::new().append(true).open(&path).map_err(|e| Error::io(path.display(), e))?;
                (Segment { file: Arc::new(file), number, len }, false)
            }
            _ => (create_segment(dir, next_segment, database_id)?, true),
        };
        let mut segment_versions = segment_versions;
        if new {
            segment_versions.push((segment.number, last_version));
        }
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            database_id,
            options: options.clone(),
            pending: Mutex::default(),
            segment: Mutex::new(segment),
            sync_lock: Mutex::new(()),
            written: AtomicU64::new(last_version),
            durable: AtomicU64::new(last_version),
            bytes_written: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            segments: AtomicU64::new(segment_versions.len() as u64),
            segment_versions: Mutex::new(segment_versions),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            failed: Mutex::new(None),
        });
        let flusher = if options.mode == Mode::Buffered {
            let s = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("in-mem-wal-flusher".into())
                    .spawn(move || flusher_loop(s))
                    .map_err(|e| Error::io("starting the WAL flusher", e))?,
            )
        } else {
            None
        };
        Ok(Wal { shared, flusher: Mutex::new(flusher) })
    }

    pub fn mode(&self) -> Mode {
        self.shared.options.mode
    }

    /// Queues the record of commit `version`. Must be called with the commit
    /// lock held, in version order. In buffered mode, a full batch is written
    /// to the OS here so that a process crash loses at most
    /// `max_pending_writes` commits.
    pub fn append(&self, version: u64, payload: &[u8]) -> Result<()> {
        self.append_with(version, |buf| buf.extend_from_slice(payload))
    }

    /// Like [`Wal::append`], with the payload written by `fill` straight
    /// into the batch, so a commit is encoded once and never copied.
    pub fn append_with(&self, version: u64, fill: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.check_failed()?;
        let full = {
            let mut p = self.shared.pending.lock();
            let start = begin_record(&mut p.buf);
            fill(&mut p.buf);
            finish_record(&mut p.buf, start, version);
            p.records += 1;
            p.last_version = version;
            p.records >= self.shared.options.max_pending_writes
        };
        if full && self.shared.options.mode == Mode::Buffered {
            self.shared.write_pending()?;
            let _g = self.shared.wake_lock.lock();
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Returns once every record up to `version` is fsynced (group commit).
    pub fn sync_to(&self, version: u64) -> Result<()> {
        self.shared.sync_to(version)
    }

    /// Writes and fsyncs everything queued so far.
    pub fn flush(&self) -> Result<()> {
        let last = self.shared.pending.lock().last_version.max(self.shared.written.load(Ordering::Acquire));
        self.shared.sync_to(last)
    }

    pub fn durable_version(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> WalStats {
        WalStats {
            segments: self.shared.segments.load(Ordering::Relaxed),
            bytes_written: self.shared.bytes_written.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            durable_version: self.durable_version(),
            pending_records: self.shared.pending.lock().records,
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
        for n in &doomed {
            let path = self.shared.dir.join(segment_file_name(*n));
            match std::fs::remove_file(&path) {
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

    /// Bytes in the segments on disk, headers included (an estimate taken
    /// from their lengths as written).
    pub fn disk_bytes(&self) -> u64 {
        let names: Vec<u64> = self.shared.segment_versions.lock().iter().map(|(n, _)| *n).collect();
        names.iter().filter_map(|n| std::fs::metadata(self.shared.dir.join(segment_file_name(*n))).ok()).map(|m| m.len()).sum()
    }

    /// Stops the flusher and makes everything queued durable.
    pub fn close(&self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        {
            let _g = self.shared.wake_lock.lock();
            self.shared.wake.notify_all();
        }
        if let Some(handle) = self.flusher.lock().take() {
            let _ = handle.join();
        }
        self.flush()
    }

    fn check_failed(&self) -> Result<()> {
        match &*self.shared.failed.lock() {
            Some(reason) => Err(Error::Io { message: format!("the WAL failed earlier and accepts no writes: {reason}") }),
            None => Ok(()),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Shared {
    /// Moves the queued batch to the current segment (rotating first if it
    /// is full) and returns the file to fsync and the version it covers.
    fn write_pending(&self) -> Result<(Arc<File>, u64)> {
        let mut seg = self.segment.lock();
        let batch = {
            let mut p = self.pending.lock();
            if p.records == 0 {
                return Ok((seg.file.clone(), self.written.load(Ordering::Acquire)));
            }
            std::mem::take(&mut *p)
        };
        if seg.len >= self.options.segment_bytes {
            seg.file.sync_data().map_err(|e| self.fail("fsync of a full segment", e))?;
            let next = create_segment(&self.dir, seg.number + 1, self.database_id)?;
            *seg = next;
            self.segments.fetch_add(1, Ordering::Relaxed);
            let mut sv = self.segment_versions.lock();
            let prev = sv.last().map_or(0, |s| s.1);
            sv.push((seg.number, prev));
        }
        (&*seg.file).write_all(&batch.buf).map_err(|e| self.fail("write to the WAL", e))?;
        seg.len += batch.buf.len() as u64;
        if let Some(last) = self.segment_versions.lock().last_mut() {
            last.1 = batch.last_version;
        }
        self.bytes_written.fetch_add(batch.buf.len() as u64, Ordering::Relaxed);
        self.written.store(batch.last_version, Ordering::Release);
        Ok((seg.file.clone(), batch.last_version))
    }

    fn sync_to(&self, version: u64) -> Result<()> {
        if self.durable.load(Ordering::Acquire) >= version {
            return Ok(());
        }
        let _leader = self.sync_lock.lock();
        if self.durable.load(Ordering::Acquire) >= version {
            return Ok(());
        }
        let (file, covered) = self.write_pending()?;
        file.sync_data().map_err(|e| self.fail("fdatasync of the WAL", e))?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(covered, Ordering::AcqRel);
        Ok(())
    }

    fn fail(&self, what: &str, e: std::io::Error) -> Error {
        let reason = format!("{what}: {e}");
        *self.failed.lock() = Some(reason.clone());
        Error::Io { message: reason }
    }
}

fn flusher_loop(shared: Arc<Shared>) {
    loop {
        {
            let mut g = shared.wake_lock.lock();
            if !shared.stop.load(Ordering::Acquire) {
                shared.wake.wait_for(&mut g, shared.options.flush_interval);
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let last = shared.pending.lock().last_version.max(shared.written.load(Ordering::Acquire));
        if last > shared.durable.load(Ordering::Acquire) {
            // An I/O failure is remembered in `failed` and refuses later writes.
            let _ = shared.sync_to(last);
        }
    }
}

fn create_segment(dir: &Path, number: u64, database_id: [u8; 16]) -> Result<Segment> {
    let path = dir.join(segment_file_name(number));
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| Error::io(path.display(), e))?;
    let header = SegmentHeader { segment: number, database_id }.encode();
    file.write_all(&header).map_err(|e| Error::io(path.display(), e))?;
    file.sync_all().map_err(|e| Error::io(path.display(), e))?;
    sync_dir(dir)?;
    Ok(Segment { file: Arc::new(file), number, len: header.len() as u64 })
}

/// fsyncs a directory so that a created or renamed entry in it survives.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir.display(), e))
}
