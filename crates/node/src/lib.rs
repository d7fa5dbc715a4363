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

/// `mi_option_purge_delay` of mimalloc 2's `mi_option_e` (the Rust
/// bindings name no constant for it): how long freed pages wait before they
/// go back to the OS, 10 ms by default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Called at every open; the first call sets the allocator up for a
/// database: freed pages go back to the OS at once (with the default delay,
/// a checkpoint that moved 10,000 ended runs of 10 KB values out of memory
/// left the process at 780-870 MiB instead of ~520 MiB, and a cold run's
/// first read took 4.7 ms at p90 instead of 0.4: `bench/cold.mjs`), and
/// the engine collects free pages after a checkpoint freed memory (history
/// moved to disk, runs gone cold), in place of glibc's `malloc_trim`.
pub(crate) fn set_up_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: setting an option of the allocator this addon links; the
        // default checked first makes sure the index is purge_delay's.
        unsafe {
            if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == 10 {
                libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
            }
        }
        in_mem_engine::set_memory_release(release_freed_memory);
    });
}

fn release_freed_memory() {
    // SAFETY: mi_collect only returns memory the allocator holds free.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Where a read writes its answer in the shared I/O buffer.
pub const IO_VALUE_OFFSET: usize = 4096;
