//! The in-mem database engine: it opens a data directory (or none, in
//! memory), recovers it, and gives the semantics of runs and primitives on
//! top of the MVCC store, the OCC transactions and the WAL.
//!
//! The crate shows its architecture in its folders:
//! - `core/`: open and recovery, the one commit path
//!   (`Engine::commit_writes`: check run status, assign the version, log,
//!   apply, publish), the run table with forks, checkpoints, the change
//!   feed. It never names a primitive.
//! - `access.rs`: the seam — the transaction a primitive sees
//!   ([`EngineTx`]), the database a single operation sees ([`Db`]), and the
//!   [`SecondaryIndex`] trait through which a primitive keeps derived state
//!   (the TTL index, the trace index, the JSON path log).
//! - `primitives/`: kv, events, state, machines (with its guard language),
//!   traces, json (with its paths), vectors — each over `access` only.
//! - `history/` (run log, replay, diff) and `watch.rs`, built over the core
//!   and the primitives.
//!
//! This file composes them: [`Engine::open`] registers the primitives'
//! indexes. The engine never talks to JavaScript: values arrive as encoded
//! bytes and leave as bytes.

mod access;
mod core;
mod history;
mod primitives;
mod watch;

use std::path::Path;

pub use access::{Db, EngineTx, IndexLoad, SecondaryIndex};
pub use core::checkpointing::{CheckpointProgress, CheckpointReport, set_memory_release};
pub use core::options::{Durability, OpenOptions};
pub use core::runs::{RunAction, RunInfo, RunListOptions, RunStatus};
pub use core::{Engine, FreedSubscriber, Handle, MaintenanceStats, RecoveryStats, Stats, defer_durability};
pub use history::{DiffEntry, LoggedCommit, RunDiff};
pub use in_mem_durability::Subscriber as DurableSubscriber;
/// A stored value: immutable bytes behind one reference count.
pub use in_mem_storage::Value;
pub use primitives::events::{Appended, Event, RangeOptions as EventRangeOptions, Verification};
pub use primitives::json::JsonDb;
pub use primitives::kv::{KvDb, KvEntry, KvListOptions, payload as kv_payload};
pub use primitives::machines::{Applied, ApplyOptions, CreateOptions, Definition, Instance, InstanceListOptions, TransitionDef};
pub use primitives::state::{Cell, StateDb};
pub use primitives::traces::{NewTrace, Trace, TraceId, TraceQuery, TraceType};
pub use primitives::vectors::{Collection as VectorCollection, DEFAULT_EF, Hit as VectorHit, MAX_DIMENSION, MAX_EF, MAX_K, Metric, StoredVector, VectorQuery};
pub use watch::{Change, Described, WatchFilter, tag_of as watch_tag};

pub use in_mem_core::{Error, Result, RunId};

impl Engine {
    /// Opens a database: in memory when `path` is `None`, else the data
    /// directory at `path`, shared with any other opener in this process.
    /// The primitives' secondary indexes are registered here.
    pub fn open(path: Option<&Path>, options: OpenOptions) -> Result<Handle> {
        Engine::open_with(path, options, primitives::indexes)
    }
}

/// Fixtures for the modules' unit tests: a database opened the way users
/// open it, so that a primitive's tests need not name the engine.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;
    use std::sync::Arc;

    use crate::{Durability, Engine, OpenOptions};

    /// An open database, as the tests hold it.
    pub type TestDb = Arc<Engine>;

    pub fn memory() -> TestDb {
        Engine::open(None, OpenOptions { durability: Durability::Memory, ..Default::default() }).unwrap().into_shared()
    }

    pub fn open(path: &Path, durability: Durability) -> TestDb {
        Engine::open(Some(path), OpenOptions { durability, ..Default::default() }).unwrap().into_shared()
    }
}
