//! The engine core: open and recovery, the one commit path, the run table
//! (with forks), checkpoints, the change feed, and the transaction given to
//! primitives. It knows no primitive by name: what a primitive keeps beside
//! the store plugs in as a [`crate::access::SecondaryIndex`] registered at
//! open.

pub mod checkpointing;
pub mod cold;
pub mod commit_record;
mod engine;
pub mod feed;
pub mod forks;
pub mod options;
pub mod registry;
pub mod runs;
pub mod spilled;
mod tx;

pub use engine::{Engine, FreedSubscriber, Handle, MaintenanceStats, RecoveryStats, Stats, defer_durability};
