//! Shared vocabulary of in-mem: run ids, the layout of internal keys, type
//! tags, the error type every crate returns, and the limits of SPEC §10.
//!
//! This crate owns no state and performs no I/O. Every other crate depends on
//! it; it depends on none of them.

pub mod error;
pub mod key;
pub mod limits;
pub mod run_id;

pub use error::{Error, Result};
pub use key::{InternalKey, KEY_PREFIX_LEN, TypeTag};
pub use run_id::RunId;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The message of a caught panic's payload (a `&str` or `String` when it
/// came from `panic!`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
