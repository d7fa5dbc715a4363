//! Everything that makes a commit survive a crash: the write-ahead log
//! (segments, records, group commit, the background flusher), recovery, and
//! the lock that gives one process a data directory.
//!
//! This crate knows nothing of keys, runs or primitives: a WAL record carries
//! an opaque payload and the commit version it belongs to. It must never
//! acknowledge durability it has not obtained from `fdatasync`.

pub mod checkpoint;
pub mod format;
pub mod history;
mod lock;
pub mod manifest;
mod recovery;
pub mod repair;
mod sealed;
mod wal;

pub use lock::DirLock;
pub use recovery::{RecoveryReport, TornTail, recover, recover_read_only};
pub use wal::{Mode, Subscriber, Wal, WalOptions, WalStats, sync_dir};

/// File name of WAL segment `n` inside the `wal/` directory.
pub fn segment_file_name(n: u64) -> String {
    format!("{n:020}.wal")
}
