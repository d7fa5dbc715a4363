//! The MVCC ordered store: every key holds a short chain of versions, and a
//! reader at snapshot `S` sees, for each key, the newest version `<= S`.
//!
//! The store never decides *what* to write or *when* a version may be
//! written: that is the concurrency crate's job (validation and ordering) and
//! the engine's (publishing). It guarantees only that applying a commit never
//! blocks readers for longer than one key's chain update, and that a reader
//! never sees a version above its snapshot.

mod packed;
mod snapshots;
mod store;

pub use snapshots::{Snapshot, SnapshotTracker};
pub use store::{ColdData, DiskHistory, Entry, Memory, Source, Store, Value, ends_hold, joined, shared_ends, splice, value};
