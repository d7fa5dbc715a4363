//! Server mode's connections on the Rust side: the serving thread hands a
//! connection's received bytes to its [`NativeWire`], which cuts them into
//! frames (`in_mem_wire::Frames`), answers the hot requests against the
//! engine (`in_mem_wire::serve`), and returns the answers as one buffer
//! with every other frame's body, in order, for the JavaScript dispatcher.
//! Once a frame is left to JavaScript, every later frame of that batch is
//! too, so a connection's requests are still handled in the order they came
//! (a watch opened before a write the same client sends after it).

use std::sync::Arc;

use in_mem_wire::{Counters, Frames, Hot, Routed, Stop};
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
    /// Whole frames are left unread because the answers reached the
    /// high-water mark: push again (with no bytes) once they are sent.
    pub more: bool,
}

/// One connection's frames and hot path.
#[napi]
pub struct NativeWire {
    slot: Arc<Slot>,
    frames: Frames,
    counters: Counters,
    /// The counter table `counters` writes: held so that it outlives them.
    _table: Float64Array,
    ready: bool,
}

#[napi]
impl NativeWire {
    /// A connection of `db` that refuses frames over `maxFrameBytes`.
    /// `counters` is the server's counter table and `ops` the table's index
    /// of each operation `hotOps()` names.
    #[napi(constructor)]
    pub fn new(db: &NativeDatabase, max_frame_bytes: u32, counters: Float64Array, ops: Vec<i32>) -> Result<NativeWire> {
        // SAFETY: the table is held in the returned object, and only this
        // (the serving) thread writes it; the owner's thread reads it for
        // `stats()`, as it reads the JavaScript side's writes, without a lock.
        let table = unsafe { Counters::new(counters.as_ptr() as *mut f64, counters.len(), &ops) };
        Ok(NativeWire { slot: db.slot(), frames: Frames::new(max_frame_bytes), counters: table, _table: counters, ready: false })
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

    /// Adds received bytes; answers what it can and returns the rest. With
    /// `held`, frames handed on before still wait on the JavaScript side, so
    /// every frame is handed on (the order rule).
    #[napi(catch_unwind)]
    pub fn push(&mut self, chunk: &[u8], held: bool) -> NativeWireBatch {
        self.frames.extend(chunk);
        let engine = if self.ready { self.slot.engine().ok() } else { None };
        let mut routed = Routed::default();
        let stop = routed.take(&mut self.frames, engine.as_deref(), true, held, in_mem_wire::HIGH_WATER, &mut self.counters);
        let more = matches!(stop, Stop::Full);
        let too_large = match stop {
            Stop::TooLarge(e) => Some(e.length as f64),
            _ => None,
        };
        let Routed { answers, ids, bodies, ends } = routed;
        NativeWireBatch {
            answers: if answers.is_empty() { None } else { Some(Buffer::from(answers)) },
            ids: ids.into_iter().map(|id| id as f64).collect(),
            rest: if ends.is_empty() { None } else { Some(Buffer::from(bodies)) },
            rest_ends: ends,
            too_large,
            pending: if more { 0.0 } else { self.frames.pending() as f64 },
            more,
        }
    }
}
