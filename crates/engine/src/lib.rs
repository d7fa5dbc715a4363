//! The in-mem `Database`: it opens a data directory (or none, in memory),
//! recovers it, and gives the semantics of runs and primitives on top of the
//! MVCC store, the OCC transactions and the WAL.
//!
//! Every write goes through one commit path (`Engine::commit_writes`), which
//! checks run status, assigns the version, logs, applies and publishes, in
//! that order. The engine never talks to JavaScript: values arrive as encoded
//! bytes and leave as bytes.

mod checkpointing;
mod commit_record;
mod database;
mod events;
mod forks;
mod history;
mod json;
mod json_path;
mod kv;
mod machine_guard;
mod machines;
mod options;
mod registry;
mod runs;
mod state;
mod traces;
mod txn;
mod vectors;
mod watch;

pub use checkpointing::{CheckpointProgress, CheckpointReport};
pub use database::{Engine, Handle, MaintenanceStats, RecoveryStats, Stats};
pub use events::{Appended, Event, RangeOptions as EventRangeOptions, Verification};
pub use history::{DiffEntry, LoggedCommit, RunDiff};
pub use kv::{KvEntry, KvListOptions, payload as kv_payload};
pub use machines::{Applied, ApplyOptions, CreateOptions, Definition, Instance, InstanceListOptions, TransitionDef};
pub use options::{Durability, OpenOptions};
pub use runs::{RunAction, RunInfo, RunListOptions, RunStatus};
pub use state::Cell;
pub use traces::{NewTrace, Trace, TraceId, TraceQuery, TraceType};
pub use txn::EngineTx;
pub use vectors::{Collection as VectorCollection, Hit as VectorHit, MAX_DIMENSION, MAX_K, Metric, StoredVector};
pub use watch::{Change, Described, WatchFilter, tag_of as watch_tag};

pub use in_mem_core::{Error, Result, RunId};
