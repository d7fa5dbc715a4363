//! The EventLog: an append-only, tamper-evident log per run.
//!
//! Layout (documented in `docs/format.md`):
//!
//! ```text
//! head   run | Event                  → length u64 LE | last hash [32]
//! event  run | Event | sequence u64 BE → timestamp u64 LE | prevHash [32] | hash [32] |
//!                                        type length u16 LE | type | payload
//! ```
//!
//! Invariants: sequences are dense from 0; an append reads the head through
//! the transaction and writes it back, so two appends to one run always
//! conflict and the chain cannot fork. The hash of an event is
//! SHA-256(sequence u64 BE | type length u32 BE | type | timestamp u64 BE |
//! payload length u32 BE | payload | prevHash); the first prevHash is 32 zero
//! bytes.

use in_mem_core::limits::MAX_EVENT_TYPE_CHARS;
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag, now_ms};
use in_mem_storage::Value;
use sha2::{Digest, Sha256};

use crate::access::EngineTx;
use crate::primitives::kv::check_value;

pub type Hash = [u8; 32];

/// What `append` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    pub sequence: u64,
    pub hash: Hash,
    pub prev_hash: Hash,
    pub timestamp: u64,
}

/// One stored event.
#[derive(Clone, Debug)]
pub struct Event {
    pub sequence: u64,
    pub event_type: String,
    pub timestamp: u64,
    pub prev_hash: Hash,
    pub hash: Hash,
    stored: Value,
    payload_at: usize,
}

impl Event {
    pub fn payload(&self) -> &[u8] {
        &self.stored[self.payload_at..]
    }

    pub(crate) fn decode(sequence: u64, stored: &Value) -> Result<Event> {
        let bad = || Error::internal(format!("event {sequence}: malformed stored record"));
        if stored.len() < 74 {
            return Err(bad());
        }
        let tlen = u16::from_le_bytes(stored[72..74].try_into().unwrap()) as usize;
        let event_type = std::str::from_utf8(stored.get(74..74 + tlen).ok_or_else(bad)?).map_err(|_| bad())?.to_string();
        Ok(Event {
            sequence,
            event_type,
            timestamp: u64::from_le_bytes(stored[..8].try_into().unwrap()),
            prev_hash: stored[8..40].try_into().unwrap(),
            hash: stored[40..72].try_into().unwrap(),
            stored: stored.clone(),
            payload_at: 74 + tlen,
        })
    }

    /// Whether the stored hash is the hash of the stored fields.
    fn hash_matches(&self) -> bool {
        hash_of(self.sequence, &self.event_type, self.timestamp, self.payload(), &self.prev_hash) == self.hash
    }
}

/// What `verify` finds.
#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    pub valid: bool,
    pub length: u64,
    /// The first sequence whose record, hash or link is wrong.
    pub first_invalid: Option<u64>,
    pub reason: Option<String>,
}

pub fn hash_of(sequence: u64, event_type: &str, timestamp: u64, payload: &[u8], prev_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(sequence.to_be_bytes());
    h.update((event_type.len() as u32).to_be_bytes());
    h.update(event_type.as_bytes());
    h.update(timestamp.to_be_bytes());
    h.update((payload.len() as u32).to_be_bytes());
    h.update(payload);
    h.update(prev_hash);
    h.finalize().into()
}

fn head_key(run: &RunId) -> Vec<u8> {
    InternalKey::prefix(run, TypeTag::Event)
}

fn event_key(run: &RunId, sequence: u64) -> Vec<u8> {
    InternalKey::build(run, TypeTag::Event, &sequence.to_be_bytes())
}

fn check_type(event_type: &str) -> Result<()> {
    let n = event_type.chars().count();
    if n == 0 {
        return Err(Error::invalid_argument("an event type must not be empty"));
    }
    if n > MAX_EVENT_TYPE_CHARS {
        return Err(Error::limit(format!("event type is {n} characters; the limit is {MAX_EVENT_TYPE_CHARS}")));
    }
    Ok(())
}

/// Options of `events_range`: `from` inclusive, `to` exclusive.
#[derive(Clone, Debug, Default)]
pub struct RangeOptions {
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub event_type: Option<String>,
    pub limit: Option<usize>,
}

impl EngineTx {
    fn events_head(&mut self, run: &RunId) -> (u64, Hash) {
        match self.read(&head_key(run)) {
            Some((_, v)) if v.len() == 40 => (u64::from_le_bytes(v[..8].try_into().unwrap()), v[8..40].try_into().unwrap()),
            _ => (0, [0; 32]),
        }
    }

    pub fn events_append(&mut self, run: &RunId, event_type: &str, payload: &[u8]) -> Result<Appended> {
        check_type(event_type)?;
        check_value(payload)?;
        if event_type.len() > u16::MAX as usize {
            return Err(Error::limit("event type is too long"));
        }
        self.check_run_writable(run)?;
        let (sequence, prev_hash) = self.events_head(run);
        let timestamp = now_ms();
        let hash = hash_of(sequence, event_type, timestamp, payload, &prev_hash);
        let mut rec = Vec::with_capacity(74 + event_type.len() + payload.len());
        rec.extend_from_slice(&timestamp.to_le_bytes());
        rec.extend_from_slice(&prev_hash);
        rec.extend_from_slice(&hash);
        rec.extend_from_slice(&(event_type.len() as u16).to_le_bytes());
        rec.extend_from_slice(event_type.as_bytes());
        rec.extend_from_slice(payload);
        self.write(&event_key(run, sequence), Some(in_mem_storage::value(rec)))?;
        let mut head = Vec::with_capacity(40);
        head.extend_from_slice(&(sequence + 1).to_le_bytes());
        head.extend_from_slice(&hash);
        self.write(&head_key(run), Some(in_mem_storage::value(head)))?;
        Ok(Appended { sequence, hash, prev_hash, timestamp })
    }

    pub fn events_get(&mut self, run: &RunId, sequence: u64) -> Result<Option<Event>> {
        match self.read(&event_key(run, sequence)) {
            Some((_, v)) => Event::decode(sequence, &v).map(Some),
            None => Ok(None),
        }
    }

    pub fn events_length(&mut self, run: &RunId) -> u64 {
        self.events_head(run).0
    }

    /// The newest event, if any.
    pub fn events_last(&mut self, run: &RunId) -> Result<Option<Event>> {
        match self.events_head(run).0 {
            0 => Ok(None),
            n => self.events_get(run, n - 1),
        }
    }

    pub fn events_range(&mut self, run: &RunId, opts: &RangeOptions) -> Result<Vec<Event>> {
        let start = event_key(run, opts.from.unwrap_or(0));
        let end = match opts.to {
            Some(to) => event_key(run, to),
            None => InternalKey::prefix_end(&head_key(run)).expect("a run prefix has an end"),
        };
        let limit = opts.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut failed = None;
        if limit == 0 || start >= end {
            return Ok(out);
        }
        self.scan(&start, Some(&end), false, &mut |k, _, v| {
            let seq = u64::from_be_bytes(k[17..25].try_into().unwrap());
            match Event::decode(seq, v) {
                Ok(e) => {
                    if opts.event_type.as_deref().is_none_or(|t| t == e.event_type) {
                        out.push(e);
                    }
                }
                Err(e) => failed = Some(e),
            }
            failed.is_none() && out.len() < limit
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Recomputes the chain and names the first event that does not fit it.
    pub fn events_verify(&mut self, run: &RunId) -> Result<Verification> {
        if !self.run_exists(run) {
            return Err(Error::not_found(format!("run {run} does not exist"), serde_json::json!({ "run": run.to_string() })));
        }
        let (length, head_hash) = self.events_head(run);
        let start = event_key(run, 0);
        let end = InternalKey::prefix_end(&head_key(run)).expect("a run prefix has an end");
        let mut expected_seq = 0u64;
        let mut prev: Hash = [0; 32];
        let mut bad: Option<(u64, String)> = None;
        self.scan(&start, Some(&end), false, &mut |k, _, v| {
            let seq = u64::from_be_bytes(k[17..25].try_into().unwrap());
            let reason = if seq != expected_seq {
                Some((expected_seq, format!("event {expected_seq} is missing")))
            } else {
                match Event::decode(seq, v) {
                    Err(e) => Some((seq, e.to_string())),
                    Ok(e) if e.prev_hash != prev => Some((seq, format!("event {seq} does not link to the hash of event {}", seq.wrapping_sub(1)))),
                    Ok(e) if !e.hash_matches() => Some((seq, format!("event {seq}'s stored hash does not match its contents"))),
                    Ok(e) => {
                        prev = e.hash;
                        None
                    }
                }
            };
            expected_seq += 1;
            bad = reason;
            bad.is_none()
        });
        if bad.is_none() && (expected_seq != length || prev != head_hash) {
            bad = Some((expected_seq.min(length), format!("the log holds {expected_seq} events but its head records {length}")));
        }
        Ok(Verification { valid: bad.is_none(), length, first_invalid: bad.as_ref().map(|b| b.0), reason: bad.map(|b| b.1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field() {
        let base = hash_of(1, "t", 2, b"p", &[0; 32]);
        assert_ne!(base, hash_of(2, "t", 2, b"p", &[0; 32]));
        assert_ne!(base, hash_of(1, "u", 2, b"p", &[0; 32]));
        assert_ne!(base, hash_of(1, "t", 3, b"p", &[0; 32]));
        assert_ne!(base, hash_of(1, "t", 2, b"q", &[0; 32]));
        assert_ne!(base, hash_of(1, "t", 2, b"p", &[1; 32]));
        // Length prefixes keep field boundaries unambiguous.
        assert_ne!(hash_of(1, "ab", 2, b"", &[0; 32]), hash_of(1, "a", 2, b"b", &[0; 32]));
    }
}
