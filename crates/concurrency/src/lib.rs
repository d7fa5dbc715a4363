//! Optimistic concurrency control with snapshot isolation.
//!
//! A [`Transaction`] reads from a registered snapshot, records what it read
//! (keys and ranges) and buffers what it writes. [`validate`] implements
//! first-committer-wins: a transaction fails if any key it read or wrote, or
//! any key inside a range it scanned, has a version newer than its snapshot.
//!
//! This crate decides *whether* a transaction may commit. It does not write
//! to the store or the log; the engine does both, in version order, while it
//! holds the [`CommitLock`].

mod transaction;

pub use transaction::{CommitLock, Transaction, Write, validate};
