//! The napi-rs binding: converts arguments, calls the engine, maps errors.
//! No semantics live here.
//!
//! Hot KV calls use an I/O buffer owned by the JS side: the caller writes
//! the internal key (`run id | tag | user key`) at offset 0, and a put's
//! value or a read's answer sits at [`IO_VALUE_OFFSET`]. No strings or
//! objects cross the boundary on those paths (see `hot.rs`).

mod answer;
mod bytes;
mod convert;
mod database;
mod errors;
mod events;
mod history;
mod hot;
mod json;
mod machines;
mod server;
mod state;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod traces;
mod transaction;
mod vectors;
mod watch;
mod wire;

// No #[global_allocator]: the system allocator. mimalloc as the global
// allocator of this dlopen'd addon crashed the process (SIGSEGV in
// mi_thread_init) when a second worker thread loaded the addon after a first
// one had exited; see docs/durability.md "Lifecycle" for the measurement.

/// Where a read writes its answer in the shared I/O buffer.
pub const IO_VALUE_OFFSET: usize = 4096;
