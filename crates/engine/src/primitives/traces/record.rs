//! The stored form of a trace and its keys: ids, types, the record's
//! encoding, and the checks of what a trace may hold.

use std::fmt;

use in_mem_core::limits::{MAX_TAG_CHARS, MAX_TAGS, MAX_VALUE_BYTES};
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The user-key byte of a trace's record.
pub(crate) const RECORD: u8 = 0x01;
/// The user-key byte of the parent index.
pub(crate) const BY_PARENT: u8 = 0x02;
/// Largest millisecond a UUIDv7 can carry (48 bits).
pub(crate) const MAX_MS: u64 = (1 << 48) - 1;

/// What kind of step a trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TraceType {
    ToolCall = 0,
    Decision = 1,
    Thought = 2,
    Query = 3,
    Error = 4,
    Custom = 5,
}

impl TraceType {
    pub(crate) const ALL: [TraceType; 6] =
        [TraceType::ToolCall, TraceType::Decision, TraceType::Thought, TraceType::Query, TraceType::Error, TraceType::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            TraceType::ToolCall => "tool_call",
            TraceType::Decision => "decision",
            TraceType::Thought => "thought",
            TraceType::Query => "query",
            TraceType::Error => "error",
            TraceType::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            Error::invalid_argument(format!("unknown trace type {s:?}; a trace type is one of tool_call, decision, thought, query, error, custom"))
        })
    }
}

/// A trace's id: a UUIDv7 (see the invariants above).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceId(pub(crate) [u8; 16]);

impl TraceId {
    pub(crate) fn new() -> Self {
        TraceId(*uuid::Uuid::now_v7().as_bytes())
    }

    /// Parses the canonical hyphenated form.
    pub fn parse(s: &str) -> Result<Self> {
        let parsed = uuid::Uuid::try_parse(s).map_err(|_| Error::invalid_argument(format!("trace id {s:?} is not a UUID")))?;
        if parsed.is_nil() {
            return Err(Error::invalid_argument("trace id 00000000-0000-0000-0000-000000000000 is not a trace"));
        }
        Ok(TraceId(*parsed.as_bytes()))
    }

    pub(crate) fn from_key_tail(key: &[u8]) -> TraceId {
        TraceId(key[key.len() - 16..].try_into().expect("a trace key ends with a 16-byte id"))
    }

    /// The millisecond the trace was recorded: the id's first 48 bits.
    pub fn timestamp_ms(&self) -> u64 {
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&self.0[..6]);
        u64::from_be_bytes(ms)
    }

    /// The smallest id of millisecond `ms`, or (with `last`) the largest.
    pub(crate) fn bound(ms: u64, last: bool) -> TraceId {
        let mut id = if last { [0xFF; 16] } else { [0; 16] };
        id[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        TraceId(id)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// One trace as a read returns it. `data` and `metadata` are encoded values
/// (the JS codec's bytes), opaque here.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub id: TraceId,
    pub kind: TraceType,
    pub parent: Option<TraceId>,
    pub data: Vec<u8>,
    pub tags: Vec<String>,
    pub metadata: Option<Vec<u8>>,
    /// Milliseconds since the epoch when it was recorded (from its id).
    pub timestamp: u64,
}

/// What `trace_record` stores.
#[derive(Clone, Debug)]
pub struct NewTrace<'a> {
    pub kind: TraceType,
    pub parent: Option<TraceId>,
    pub data: &'a [u8],
    pub tags: Vec<String>,
    pub metadata: Option<&'a [u8]>,
}

/// The filters of `trace_query`; all given ones must hold.
#[derive(Clone, Debug, Default)]
pub struct TraceQuery {
    pub kind: Option<TraceType>,
    pub tag: Option<String>,
    /// Recorded at or after this millisecond.
    pub since: Option<u64>,
    /// Recorded at or before this millisecond.
    pub until: Option<u64>,
    pub limit: Option<usize>,
}

/// Bytes written as a MessagePack `bin` (serde alone would write an array
/// of numbers), and read back without a copy.
#[derive(Clone, Copy)]
pub(crate) struct Bin<'a>(pub(crate) &'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bin<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Bin)
    }
}

/// A trace's record: a MessagePack array `[type, parent, tags, data,
/// metadata]` (rmp-serde's compact form; `docs/format.md`). The id, and so
/// the timestamp, is in the key.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stored<'a> {
    pub(crate) kind: &'a str,
    #[serde(borrow)]
    pub(crate) parent: Option<Bin<'a>>,
    #[serde(borrow)]
    pub(crate) tags: Vec<&'a str>,
    #[serde(borrow)]
    pub(crate) data: Bin<'a>,
    #[serde(borrow)]
    pub(crate) metadata: Option<Bin<'a>>,
}

impl<'a> Stored<'a> {
    pub(crate) fn decode(bytes: &'a [u8]) -> Option<(Stored<'a>, TraceType)> {
        let stored: Stored<'a> = rmp_serde::from_slice(bytes).ok()?;
        let kind = TraceType::parse(stored.kind).ok()?;
        Some((stored, kind))
    }
}

pub(crate) fn decode(run: &RunId, id: TraceId, bytes: &[u8]) -> Result<Trace> {
    let bad = || Error::internal(format!("the record of trace {id} in run {run} does not decode"));
    let (stored, kind) = Stored::decode(bytes).ok_or_else(bad)?;
    let parent = match stored.parent {
        Some(Bin(p)) => Some(TraceId(p.try_into().map_err(|_| bad())?)),
        None => None,
    };
    Ok(Trace {
        id,
        kind,
        parent,
        data: stored.data.0.to_vec(),
        tags: stored.tags.into_iter().map(String::from).collect(),
        metadata: stored.metadata.map(|m| m.0.to_vec()),
        timestamp: id.timestamp_ms(),
    })
}

pub(crate) fn record_key(run: &RunId, id: &TraceId) -> Vec<u8> {
    let mut user = [0u8; 17];
    user[0] = RECORD;
    user[1..].copy_from_slice(&id.0);
    InternalKey::build(run, TypeTag::Trace, &user)
}

/// The run and id of a record key; `None` for any other key.
pub(crate) fn record_of(key: &[u8]) -> Option<(RunId, TraceId)> {
    let user = InternalKey::user(key);
    if InternalKey::tag(key) != Some(TypeTag::Trace) || user.len() != 17 || user[0] != RECORD {
        return None;
    }
    Some((InternalKey::run(key)?, TraceId::from_key_tail(key)))
}

/// The parent-index prefix of the children of `parent` (`None`: the roots).
pub(crate) fn children_prefix(run: &RunId, parent: Option<&TraceId>) -> Vec<u8> {
    let mut user = [0u8; 17];
    user[0] = BY_PARENT;
    if let Some(p) = parent {
        user[1..].copy_from_slice(&p.0);
    }
    InternalKey::build(run, TypeTag::Trace, &user)
}

pub(crate) fn check_payload(what: &str, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(Error::limit(format!("trace {what} is {} bytes encoded; the limit is {MAX_VALUE_BYTES} bytes (16 MiB)", bytes.len())));
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::limit(format!("a trace has {} tags; the limit is {MAX_TAGS}", tags.len())));
    }
    for t in tags {
        if t.is_empty() || t.contains('\0') {
            return Err(Error::invalid_argument("a trace tag must be non-empty and contain no NUL"));
        }
        let n = t.chars().count();
        if n > MAX_TAG_CHARS {
            return Err(Error::limit(format!("a trace tag is {n} characters; the limit is {MAX_TAG_CHARS}")));
        }
    }
    Ok(())
}

/// The inclusive id window of `since ..= until`, or `None` when it is empty.
pub(crate) fn window(since: Option<u64>, until: Option<u64>) -> Option<(TraceId, TraceId)> {
    let since = since.unwrap_or(0);
    let until = until.unwrap_or(MAX_MS).min(MAX_MS);
    (since <= until).then(|| (TraceId::bound(since, false), TraceId::bound(until, true)))
}

impl Trace {
    pub(crate) fn matches(&self, q: &TraceQuery) -> bool {
        q.kind.is_none_or(|k| k == self.kind)
            && q.tag.as_ref().is_none_or(|t| self.tags.contains(t))
            && q.since.is_none_or(|s| self.timestamp >= s)
            && q.until.is_none_or(|u| self.timestamp <= u)
    }
}
