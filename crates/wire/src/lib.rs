//! Server mode's wire protocol on the Rust side (docs/protocol.md).
//!
//! The serving thread hands each connection's received bytes to
//! [`Frames`], which cuts them into frames, and offers each frame to
//! [`serve`]: a request for one of the [`Hot`] operations with arguments
//! of the common shape is answered here, straight against the engine, and
//! its answer frame appended to the output. Anything else (every other
//! operation, a handshake, a malformed frame, an argument the JavaScript
//! side must check or convert, an operation the engine refused) is left to
//! the JavaScript dispatcher, which calls the embedded facade and so
//! answers, validates and fails exactly as in process. The answers are the
//! same values either way (`test/server-table.test.ts` runs every facade
//! method through both).

pub mod counters;
pub mod frames;
pub mod listener;
pub mod msgpack;

pub use counters::Counters;
pub use frames::{Frames, TooLarge};
pub use listener::{Config, HIGH_WATER, Listener, Sink};

/// The protocol version both sides name in the handshake.
pub const PROTOCOL_VERSION: u64 = 1;

use in_mem_engine::{Engine, KvDb};
use msgpack::{Reader, write_number};

/// The operations answered in Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hot {
    KvGet,
    KvPut,
    KvDelete,
    KvExists,
}

impl Hot {
    /// Every hot operation, in the order of [`Hot::index`].
    pub const ALL: [Hot; 4] = [Hot::KvGet, Hot::KvPut, Hot::KvDelete, Hot::KvExists];

    /// The operation's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Hot::KvGet => "kv.get",
            Hot::KvPut => "kv.put",
            Hot::KvDelete => "kv.delete",
            Hot::KvExists => "kv.exists",
        }
    }

    /// Its position in [`Hot::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn of(op: &str) -> Option<Hot> {
        Hot::ALL.into_iter().find(|h| h.name() == op)
    }

    /// Whether it writes.
    pub fn writes(self) -> bool {
        matches!(self, Hot::KvPut | Hot::KvDelete)
    }

    /// How many arguments it takes on the database (`where = 0`).
    fn arity(self) -> usize {
        if self == Hot::KvPut { 3 } else { 2 }
    }
}

/// Answer status `OK` (docs/protocol.md "Requests and answers").
const OK: u8 = 0;
/// The KV type tag of an internal key (`crates/core/src/key.rs`).
const TAG_KV: u8 = 0x10;
/// Longest user key, in UTF-8 bytes.
const MAX_KEY_BYTES: usize = 1024;
/// msgpackr's `undefined`: what the JavaScript side answers for an absent key.
const UNDEFINED: [u8; 3] = [0xd4, 0x00, 0x00];

/// A hot request, parsed.
struct Request<'a> {
    id: u64,
    op: Hot,
    key: Vec<u8>,
    value: Option<&'a [u8]>,
}

/// Answers the request in `body` if it is a hot one, appending its answer
/// frame to `out`, and returns its id and operation; `None` leaves it to
/// the JavaScript side (nothing was written then, to `out` or the engine).
/// With `writes` false only reads are answered.
pub fn serve(engine: &Engine, body: &[u8], out: &mut Vec<u8>, writes: bool) -> Option<(u64, Hot)> {
    let req = parse(body)?;
    if !writes && req.op.writes() {
        return None;
    }
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(0x93);
    write_number(out, req.id);
    out.push(OK);
    // A read that has to load a cold run or a history block from a damaged
    // file unwinds with the error (in_mem_engine's cold.rs): caught here,
    // the request goes to the JavaScript side like a refusal, which runs it
    // again and throws that error to the client, and the listener lives on.
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match req.op {
        Hot::KvGet => engine
            .kv_get_with(&req.key, |_, _, payload| out.extend_from_slice(payload))
            .map(|found| {
                if found.is_none() {
                    out.extend_from_slice(&UNDEFINED);
                }
            })
            .map_err(drop),
        Hot::KvExists => engine.kv_get_with(&req.key, |_, _, _| ()).map(|found| out.push(if found.is_some() { 0xc3 } else { 0xc2 })).map_err(drop),
        Hot::KvDelete => engine.kv_delete(&req.key).map(|existed| out.push(if existed { 0xc3 } else { 0xc2 })).map_err(drop),
        Hot::KvPut => engine.kv_put(&req.key, req.value.unwrap_or_default(), None).map(|version| write_number(out, version)).map_err(drop),
    }))
    .unwrap_or(Err(()));
    if answered.is_err() {
        // The engine refused (a closed run, a closed database, …): the
        // JavaScript side runs it again and reports the error as in process.
        out.truncate(start);
        return None;
    }
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    Some((req.id, req.op))
}

/// What the frames of one read come to: the answers to those answered
/// here (with their request ids), and the bodies of the rest, one after
/// another, with where each ends.
#[derive(Default)]
pub struct Routed {
    pub answers: Vec<u8>,
    pub ids: Vec<u64>,
    pub bodies: Vec<u8>,
    pub ends: Vec<u32>,
}

/// Why [`Routed::take`] stopped.
pub enum Stop {
    /// No whole frame is left.
    Read,
    /// The answers passed the room given: the frames after them wait.
    Full,
    /// A frame is over the limit: the connection must be closed.
    TooLarge(TooLarge),
}

impl Routed {
    /// Cuts frames from `frames` and routes each ([`Routed::route`]) until
    /// none is whole, the answers pass `room` bytes, or one is too large.
    pub fn take(&mut self, frames: &mut Frames, engine: Option<&Engine>, writes: bool, held: bool, room: usize, counters: &mut Counters) -> Stop {
        loop {
            if self.answers.len() > room {
                return Stop::Full;
            }
            match frames.next_frame() {
                Ok(Some(body)) => self.route(engine, &frames.bytes()[body], writes, held, counters),
                Ok(None) => return Stop::Read,
                Err(e) => return Stop::TooLarge(e),
            }
        }
    }

    /// Routes one request frame by the order rule: it is answered here if
    /// it is hot, the engine is open (`engine`), and nothing before it is
    /// still with the dispatcher — in this read (`ends`) or an earlier one
    /// not yet taken in (`held`); else it is handed on.
    pub fn route(&mut self, engine: Option<&Engine>, body: &[u8], writes: bool, held: bool, counters: &mut Counters) {
        if self.ends.is_empty()
            && !held
            && let Some(engine) = engine
        {
            let started = std::time::Instant::now();
            if let Some((id, op)) = serve(engine, body, &mut self.answers, writes) {
                self.ids.push(id);
                counters.answered(op, started);
                return;
            }
        }
        self.bodies.extend_from_slice(body);
        self.ends.push(self.bodies.len() as u32);
    }
}

/// `[id, op, args, 0]` with a hot `op` and arguments of the shape the hot
/// path takes: a run id, a key, and for `kv.put` a storable value (no
/// options).
fn parse(body: &[u8]) -> Option<Request<'_>> {
    let mut r = Reader::new(body);
    if r.array()? != 4 {
        return None;
    }
    let id = r.uint()?;
    if id == 0 || id > (1 << 53) {
        return None;
    }
    let op = Hot::of(r.str()?)?;
    if r.array()? != op.arity() {
        return None;
    }
    let mut key = Vec::with_capacity(64);
    run_bytes(r.str()?, &mut key)?;
    key.push(TAG_KV);
    let user = r.str()?;
    if user.is_empty() || user.len() > MAX_KEY_BYTES || user.contains('\0') {
        return None;
    }
    key.extend_from_slice(user.as_bytes());
    let value = if op == Hot::KvPut { Some(r.storable()?) } else { None };
    // The request runs on the database (`where = 0`), and nothing follows.
    if r.uint()? != 0 || !r.at_end() {
        return None;
    }
    Some(Request { id, op, key, value })
}

/// The 16 bytes of a run id written as a UUID (either case), appended to
/// `out`; `None` for anything else, and for the reserved nil id.
fn run_bytes(run: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = run.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut nibbles = 0usize;
    let mut byte = 0u8;
    let mut any = 0u8;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = (c as char).to_digit(16)? as u8;
        byte = (byte << 4) | v;
        nibbles += 1;
        if nibbles.is_multiple_of(2) {
            out.push(byte);
            any |= byte;
            byte = 0;
        }
    }
    (any != 0).then_some(())
}

#[cfg(test)]
mod tests;
