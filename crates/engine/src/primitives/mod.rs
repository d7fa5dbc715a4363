//! The primitives. Each is a module over the narrow interface of
//! [`crate::access`] (a transaction, a database for single operations, a
//! secondary index) and the core types of `in-mem-core`; none names the
//! engine.
//!
//! The operations of a primitive inside a transaction are an
//! `impl EngineTx` block in its module; outside a transaction, a trait over
//! [`crate::access::Db`] (`KvDb`, `StateDb`, `JsonDb`) for the fast paths.

use std::sync::Arc;

use crate::access::SecondaryIndex;

pub mod events;
pub mod json;
pub mod kv;
pub mod machines;
pub mod state;
pub mod traces;
pub mod vectors;

/// The secondary indexes the primitives keep, registered by every open.
pub fn indexes() -> Vec<Arc<dyn SecondaryIndex>> {
    vec![
        Arc::new(kv::TtlIndex::default()),
        Arc::new(traces::TraceIndex::default()),
        Arc::new(json::PathLog::default()),
        Arc::new(vectors::VectorIndex::default()),
    ]
}
