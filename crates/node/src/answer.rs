//! Answers of the non-KV reads as one MessagePack map written into the
//! caller's I/O buffer at [`IO_VALUE_OFFSET`], instead of a native object
//! with a property (and a string or Buffer) per field: the TypeScript side
//! decodes the map with the value codec's decoder in one call, and a stored
//! value inside it (an event's payload, a trace's data, a machine's
//! context, a run's metadata) is the codec's own bytes, copied as they are,
//! so it decodes with the rest.
//!
//! Numbers up to `u32::MAX` are written as integers and larger ones as
//! float64, so that none decodes as a `bigint` (the codec reads 64-bit
//! integers as `bigint`).

use std::cell::RefCell;

use in_mem_engine::{Cell, Event, Instance, Trace, VectorHit};
use rmp::encode as mp;

use crate::IO_VALUE_OFFSET;
use crate::convert::NativeRunInfo;

/// A map being written.
pub struct Answer<'a>(&'a mut Vec<u8>);

impl Answer<'_> {
    fn key(&mut self, k: &str) -> &mut Self {
        mp::write_str(self.0, k).expect("a Vec grows");
        self
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        mp::write_str(self.0, v).expect("a Vec grows");
        self
    }
    fn num(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        if v <= u32::MAX as u64 {
            mp::write_uint(self.0, v).expect("a Vec grows");
        } else {
            mp::write_f64(self.0, v as f64).expect("a Vec grows");
        }
        self
    }
    /// A stored value: already MessagePack.
    fn raw(&mut self, k: &str, encoded: &[u8]) -> &mut Self {
        self.key(k);
        self.0.extend_from_slice(encoded);
        self
    }
    fn strs(&mut self, k: &str, v: &[String]) -> &mut Self {
        self.key(k);
        mp::write_array_len(self.0, v.len() as u32).expect("a Vec grows");
        for s in v {
            mp::write_str(self.0, s).expect("a Vec grows");
        }
        self
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes a map of `fields` entries (filled by `fill`) at
/// [`IO_VALUE_OFFSET`] of `io` and returns its length; when it does not fit,
/// writes nothing and returns the length all the same (the caller grows the
/// buffer and reads again), as the KV reads do.
pub fn write(io: &mut [u8], fields: u32, fill: impl FnOnce(&mut Answer<'_>)) -> i64 {
    encoded(io, |buf| {
        mp::write_map_len(buf, fields).expect("a Vec grows");
        fill(&mut Answer(buf));
    })
}

/// Encodes an answer with `fill` in this thread's scratch buffer and
/// copies it to `io` (see [`to_io`]).
fn encoded(io: &mut [u8], fill: impl FnOnce(&mut Vec<u8>)) -> i64 {
    SCRATCH.with(|s| {
        let mut buf = s.borrow_mut();
        buf.clear();
        fill(&mut buf);
        to_io(io, &buf)
    })
}

/// An array of `items`, each written by `one`.
fn list<T>(io: &mut [u8], items: &[T], one: impl Fn(&mut Vec<u8>, &T)) -> i64 {
    encoded(io, |buf| {
        mp::write_array_len(buf, items.len() as u32).expect("a Vec grows");
        for item in items {
            one(buf, item);
        }
    })
}

/// Copies `bytes` to [`IO_VALUE_OFFSET`] of `io` when they fit, and returns
/// their length either way (the caller grows the buffer and asks again).
pub fn to_io(io: &mut [u8], bytes: &[u8]) -> i64 {
    let out = io.get_mut(IO_VALUE_OFFSET..).unwrap_or_default();
    if bytes.len() <= out.len() {
        out[..bytes.len()].copy_from_slice(bytes);
    }
    bytes.len() as i64
}

/// `{ sequence, type, timestamp, payload, hash, prevHash }`, as `Event`.
fn event_map(buf: &mut Vec<u8>, e: &Event) {
    mp::write_map_len(buf, 6).expect("a Vec grows");
    Answer(buf)
        .num("sequence", e.sequence)
        .str("type", &e.event_type)
        .num("timestamp", e.timestamp)
        .raw("payload", e.payload())
        .str("hash", &hex::encode(e.hash))
        .str("prevHash", &hex::encode(e.prev_hash));
}

pub fn event(io: &mut [u8], e: &Event) -> i64 {
    encoded(io, |buf| event_map(buf, e))
}

/// `Event[]`.
pub fn events(io: &mut [u8], es: &[Event]) -> i64 {
    list(io, es, event_map)
}

/// `{ id, type, data, tags, timestamp, parent?, metadata? }`, as `Trace`.
fn trace_map(buf: &mut Vec<u8>, t: &Trace) {
    mp::write_map_len(buf, 5 + t.parent.is_some() as u32 + t.metadata.is_some() as u32).expect("a Vec grows");
    let mut a = Answer(buf);
    a.str("id", &t.id.to_string()).str("type", t.kind.as_str()).raw("data", &t.data).strs("tags", &t.tags).num("timestamp", t.timestamp);
    if let Some(p) = &t.parent {
        a.str("parent", &p.to_string());
    }
    if let Some(m) = &t.metadata {
        a.raw("metadata", m);
    }
}

pub fn trace(io: &mut [u8], t: &Trace) -> i64 {
    encoded(io, |buf| trace_map(buf, t))
}

/// `Trace[]`.
pub fn traces(io: &mut [u8], ts: &[Trace]) -> i64 {
    list(io, ts, trace_map)
}

/// `{ id, machine, version, state, context, revision, createdAt, updatedAt }`, as `MachineInstance`.
fn instance_map(buf: &mut Vec<u8>, i: &Instance) {
    mp::write_map_len(buf, 8).expect("a Vec grows");
    Answer(buf)
        .str("id", &i.id)
        .str("machine", &i.machine)
        .num("version", i.version as u64)
        .str("state", &i.state)
        .raw("context", &i.context_bytes())
        .num("revision", i.revision)
        .num("createdAt", i.created_at)
        .num("updatedAt", i.updated_at);
}

pub fn instance(io: &mut [u8], i: &Instance) -> i64 {
    encoded(io, |buf| instance_map(buf, i))
}

/// `MachineInstance[]`.
pub fn instances(io: &mut [u8], is: &[Instance]) -> i64 {
    list(io, is, instance_map)
}

/// `{ id, status, tags, createdAt, name?, parent?, metadata?, endedAt?, error?, forkedAt? }`, as `RunInfo`.
pub fn run(io: &mut [u8], r: &NativeRunInfo) -> i64 {
    let fields = 4
        + r.name.is_some() as u32
        + r.parent.is_some() as u32
        + r.metadata.is_some() as u32
        + r.ended_at.is_some() as u32
        + r.error.is_some() as u32
        + r.forked_at.is_some() as u32;
    write(io, fields, |a| {
        a.str("id", &r.id).str("status", &r.status).strs("tags", &r.tags).num("createdAt", r.created_at as u64);
        if let Some(n) = &r.name {
            a.str("name", n);
        }
        if let Some(p) = &r.parent {
            a.str("parent", p);
        }
        if let Some(m) = &r.metadata {
            a.raw("metadata", &m.0);
        }
        if let Some(t) = r.ended_at {
            a.num("endedAt", t as u64);
        }
        if let Some(e) = &r.error {
            a.str("error", e);
        }
        if let Some(f) = r.forked_at {
            a.num("forkedAt", f as u64);
        }
    })
}

/// `[{ id, score, metadata? }, ...]`, as `SearchHit[]` (score a float64).
pub fn hits(io: &mut [u8], hits: &[VectorHit]) -> i64 {
    list(io, hits, |buf, h| {
        mp::write_map_len(buf, if h.metadata.is_some() { 3 } else { 2 }).expect("a Vec grows");
        let mut a = Answer(buf);
        a.str("id", &h.id).key("score");
        mp::write_f64(a.0, h.score).expect("a Vec grows");
        if let Some(m) = &h.metadata {
            a.raw("metadata", m);
        }
    })
}

/// `{ value, version, updatedAt }` (with `name` first when `named`), as `Cell` / `NamedCell`.
fn cell_map(buf: &mut Vec<u8>, c: &Cell, named: bool) {
    mp::write_map_len(buf, 3 + named as u32).expect("a Vec grows");
    let mut a = Answer(buf);
    if named {
        a.str("name", &c.name);
    }
    a.raw("value", c.value()).num("version", c.version).num("updatedAt", c.updated_at);
}

pub fn cell(io: &mut [u8], c: &Cell) -> i64 {
    encoded(io, |buf| cell_map(buf, c, false))
}

/// `NamedCell[]`.
pub fn cells(io: &mut [u8], cs: &[Cell]) -> i64 {
    list(io, cs, |buf, c| cell_map(buf, c, true))
}
