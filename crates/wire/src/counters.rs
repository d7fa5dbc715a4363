//! The server's counters as the native side writes them: a `Float64Array`
//! laid out as `src/server/stats.ts` reads it, with one writer per table.

use std::time::Instant;

use crate::Hot;

/// A counter table (the one `src/server/stats.ts` reads): a `Float64Array`
/// only its holder's thread writes.
pub struct Counters {
    ptr: *mut f64,
    len: usize,
    /// The latency table's index of each [`Hot`] operation, or -1.
    ops: [i32; Hot::ALL.len()],
}

// SAFETY: a table is written only by the thread that holds it; its owner
// keeps the memory alive until then (see `Counters::new`).
unsafe impl Send for Counters {}

pub(crate) const CONNECTIONS: usize = 0;
pub(crate) const ACCEPTED: usize = 1;
pub(crate) const REFUSED: usize = 2;
pub(crate) const DROPPED: usize = 3;
const REQUESTS: usize = 4;
pub(crate) const BYTES_IN: usize = 6;
pub(crate) const BYTES_OUT: usize = 7;
const HEAD: usize = 8;
const BUCKETS: usize = 128;

impl Counters {
    /// # Safety
    /// `ptr` must point at `len` `f64`s that stay valid, and that nothing
    /// else writes, until the listener is shut down.
    /// `ops`: the latency table's index of each operation [`Hot::ALL`]
    /// names, in that order (missing ones: not timed).
    pub unsafe fn new(ptr: *mut f64, len: usize, ops: &[i32]) -> Counters {
        let mut indexes = [-1; Hot::ALL.len()];
        for (slot, &i) in indexes.iter_mut().zip(ops) {
            *slot = i;
        }
        Counters { ptr, len, ops: indexes }
    }

    /// Counters that go nowhere (tests).
    pub fn none() -> Counters {
        Counters { ptr: std::ptr::null_mut(), len: 0, ops: [-1; Hot::ALL.len()] }
    }

    pub(crate) fn add(&mut self, at: usize, n: f64) {
        if at < self.len {
            // SAFETY: in bounds; see `Counters::new`.
            unsafe { *self.ptr.add(at) += n };
        }
    }

    /// One hot request answered, `started` when its frame was read.
    pub fn answered(&mut self, op: Hot, started: Instant) {
        self.add(REQUESTS, 1.0);
        let index = self.ops[op.index()];
        if index >= 0 {
            let us = started.elapsed().as_secs_f64() * 1e6;
            let bucket = if us <= 1.0 { 0 } else { ((4.0 * us.log2()).ceil() as usize).min(BUCKETS - 1) };
            self.add(HEAD + index as usize * BUCKETS + bucket, 1.0);
        }
    }
}
