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

/// mimalloc 2 with the dynamic TLS model a dlopen'd library needs: worker
/// threads that load the addon one after another are safe with it (the
/// lifecycle tests' 20 workers in a row; mimalloc 3, and mimalloc without
/// `local_dynamic_tls`, crashed there with SIGSEGV in its thread set-up).
/// It has no per-allocation header and finer size classes than glibc's
/// malloc: a resident 100-byte key costs ~282 bytes, not ~306
/// (docs/format.md "Versions in memory").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Called at every open; the first call has the engine collect mimalloc's
/// free pages after a checkpoint freed memory (history moved to disk, runs
/// gone cold), in place of glibc's `malloc_trim`. mimalloc's purge delay
/// stays its default (10 ms): with 0, every 100 KB value put faulted its
/// pages in afresh (`bench/values.mjs`: 100 KB puts at 0.2-0.3 x lmdb
/// instead of ~1 x).
pub(crate) fn set_up_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| in_mem_engine::set_memory_release(release_freed_memory));
}

/// Gives mimalloc's free pages back to the OS now: after an open (on the
/// thread that ran recovery, whose scratch it frees), after a close, and
/// after checkpoints that freed memory.
pub(crate) fn release_freed_memory() {
    // SAFETY: mi_collect only returns memory the allocator holds free.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Where a read writes its answer in the shared I/O buffer.
pub const IO_VALUE_OFFSET: usize = 4096;
