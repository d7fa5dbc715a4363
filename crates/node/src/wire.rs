//! Server mode's connections on the Rust side: the serving thread hands a
//! connection's received bytes to its [`NativeWire`], which cuts them into
//! frames (`in_mem_wire::Frames`), answers the hot requests against the
//! engine (`in_mem_wire::serve`), and returns the answers as one buffer
//! with every other frame's body, in order, for the JavaScript dispatcher.
//! Once a frame is left to JavaScript, every later frame of that batch is
//! too, so a connection's requests are still handled in the order they came
//! (a watch opened before a write the same client sends after it).

use std::sync::Arc;
use std::time::Instant;

use in_mem_wire::{Frames, Hot};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::database::NativeDatabase;
use crate::hot::Slot;

/// What one `push` gives back.
#[napi(object)]
pub struct NativeWireBatch {
    /// The answer frames of the requests answered here (length prefixes
    /// included), or `null`.
    pub answers: Option<Buffer>,
    /// Their request ids, in the order of `answers`.
    pub ids: Vec<f64>,
    /// The bodies of the frames left to JavaScript, one after another in
    /// the order they came, or `null`.
    pub rest: Option<Buffer>,
    /// Where each of those bodies ends in `rest`.
    pub rest_ends: Vec<u32>,
    /// The length a frame announced over the limit: the connection must be
    /// closed (nothing after it can be read).
    pub too_large: Option<f64>,
    /// Bytes received that do not yet make a whole frame.
    pub pending: f64,
}

/// Where the server's counters are (`src/server/stats.ts`): a `Float64Array`
/// of requests, errors and latency buckets per operation.
struct Counters {
    table: Float64Array,
    /// The latency table's index of each [`Hot`] operation, or -1.
    ops: [i32; Hot::ALL.len()],
}

/// `Counters`' layout, as `src/server/stats.ts` has it.
const REQUESTS: usize = 4;
const HEAD: usize = 8;
const BUCKETS: usize = 128;

impl Counters {
    fn answered(&mut self, op: Hot, started: Instant) {
        let us = started.elapsed().as_secs_f64() * 1e6;
        let bucket = if us <= 1.0 { 0 } else { ((4.0 * us.log2()).ceil() as usize).min(BUCKETS - 1) };
        let index = self.ops[op.index()];
        // SAFETY: the table is the server's counters, written only from
        // this (the serving) thread; the owner's thread reads them for
        // `stats()`, as it reads the JavaScript side's writes, without a lock.
        let table = unsafe { self.table.as_mut() };
        if let Some(r) = table.get_mut(REQUESTS) {
            *r += 1.0;
        }
        if index >= 0
            && let Some(b) = table.get_mut(HEAD + index as usize * BUCKETS + bucket)
        {
            *b += 1.0;
        }
    }
}

/// One connection's frames and hot path.
#[napi]
pub struct NativeWire {
    slot: Arc<Slot>,
    frames: Frames,
    counters: Counters,
    ready: bool,
}

#[napi]
impl NativeWire {
    /// A connection of `db` that refuses frames over `maxFrameBytes`.
    /// `counters` is the server's counter table and `ops` the table's index
    /// of each operation `hotOps()` names.
    #[napi(constructor)]
    pub fn new(db: &NativeDatabase, max_frame_bytes: u32, counters: Float64Array, ops: Vec<i32>) -> Result<NativeWire> {
        let mut indexes = [-1; Hot::ALL.len()];
        for (slot, i) in indexes.iter_mut().zip(ops) {
            *slot = i;
        }
        Ok(NativeWire { slot: db.slot(), frames: Frames::new(max_frame_bytes), counters: Counters { table: counters, ops: indexes }, ready: false })
    }

    /// The operations answered here, in the order `ops` lists their indexes.
    #[napi]
    pub fn hot_ops() -> Vec<&'static str> {
        Hot::ALL.iter().map(|h| h.name()).collect()
    }

    /// The handshake is done: requests may be answered here from now on.
    #[napi]
    pub fn ready(&mut self) {
        self.ready = true;
    }

    /// Adds received bytes; answers what it can and returns the rest.
    #[napi(catch_unwind)]
    pub fn push(&mut self, chunk: &[u8]) -> NativeWireBatch {
        self.frames.extend(chunk);
        let engine = if self.ready { self.slot.engine().ok() } else { None };
        let mut answers = Vec::new();
        let mut ids = Vec::new();
        let mut rest = Vec::new();
        let mut rest_ends = Vec::new();
        let mut too_large = None;
        loop {
            let body = match self.frames.next_frame() {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(e) => {
                    too_large = Some(e.length as f64);
                    break;
                }
            };
            let body = &self.frames.bytes()[body];
            if rest_ends.is_empty()
                && let Some(engine) = &engine
            {
                let started = Instant::now();
                if let Some((id, op)) = in_mem_wire::serve(engine, body, &mut answers, true) {
                    ids.push(id as f64);
                    self.counters.answered(op, started);
                    continue;
                }
            }
            rest.extend_from_slice(body);
            rest_ends.push(rest.len() as u32);
        }
        NativeWireBatch {
            answers: if answers.is_empty() { None } else { Some(Buffer::from(answers)) },
            ids,
            rest: if rest_ends.is_empty() { None } else { Some(Buffer::from(rest)) },
            rest_ends,
            too_large,
            pending: self.frames.pending() as f64,
        }
    }
}
