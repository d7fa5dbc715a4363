//! JSON documents: values addressed by path inside one stored document, with
//! conflicts at the level of paths rather than documents.
//!
//! A document is stored whole under `run | Json | doc id` as one MessagePack
//! value (the bytes the TypeScript codec wrote). A transaction does not write
//! the document it read: it records path operations (set, delete, merge) and
//! the paths it read. At commit, with the commit lock held:
//!
//! 1. every path it wrote or read is checked against the paths other commits
//!    wrote to the same document after its snapshot ([`PathLog`]); an
//!    overlap (one path a prefix of the other) is a `ConflictError`;
//! 2. its operations are replayed, in order, on the newest committed
//!    document, and the result is the write that goes to the WAL and store.
//!
//! So two transactions writing disjoint paths both commit, each keeping the
//! other's change. Any other write of a document key (a run's deletion) is
//! logged as a write of the root path, which overlaps everything.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use in_mem_core::limits::{MAX_DEPTH, MAX_VALUE_BYTES};
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag};
use in_mem_storage::{Source, Value, joined};
use parking_lot::Mutex;
use rmpv::Value as Doc;
use serde_json::json;

pub mod path;

use self::path as json_path;
use self::path::{Path, Segment, overlaps};
use crate::access::{Db, EngineTx, Extensions, Resolved, ResolvedWrite, SecondaryIndex, TxState, check_fast_key};

#[derive(Clone, Debug)]
pub enum Op {
    Set(Doc),
    Delete,
    Merge(Doc),
}

/// What one transaction did to one document.
#[derive(Clone, Debug, Default)]
pub struct DocTx {
    ops: Vec<(Path, Op)>,
    reads: Vec<Path>,
    /// The document as this transaction sees it: its snapshot plus its ops.
    current: View,
    /// The stored value it started from (its snapshot's), if any.
    base: Option<Value>,
    /// While every operation was spliced into the view: the ends the view
    /// shares with `base` (see [`Spliced`]).
    ends: Option<(usize, usize)>,
    /// A first and only `set` that replaces the value at its path, not yet
    /// spliced into the view (which is still `base`): the commit may hand
    /// it to the store as a change to the newest document
    /// ([`ResolvedWrite::Spliced`]), so a transaction that never reads the
    /// document back never copies it. Spliced into the view at the first
    /// read or next write.
    pending: Option<Pending>,
    /// With `pending`: the view and `base` are let go (the transaction
    /// holds no reference to the stored bytes, so the store can change
    /// them in place at commit); [`EngineTx`] reads them again from the
    /// snapshot if the transaction uses the document once more.
    released: bool,
}

/// A `set` of `value` (encoded) over `[from, to)` of the document's bytes.
#[derive(Clone, Debug)]
struct Pending {
    from: usize,
    to: usize,
    value: Vec<u8>,
}

/// Where the value at `path` lies in `bytes`, when a `set` there replaces
/// it by splicing (see [`splice_set`]).
fn replace_span(bytes: &[u8], path: &[Segment]) -> Result<Option<(usize, usize)>> {
    if path.is_empty() {
        return Ok(None);
    }
    Ok(locate(bytes, path)?.filter(|l| l.parent.is_some()).and_then(|l| l.value))
}

/// A document as a transaction sees it: encoded, as stored, while reads
/// and `set`s can work on the bytes ([`find_encoded`], [`splice_set`]);
/// decoded once an operation needs the tree.
#[derive(Clone, Debug)]
enum View {
    Tree(Option<Doc>),
    Encoded(Value),
}

impl Default for View {
    fn default() -> Self {
        View::Tree(None)
    }
}

/// Every document a transaction touched, by internal key.
#[derive(Default)]
pub struct DocTxs(BTreeMap<Vec<u8>, DocTx>);

impl std::ops::Deref for DocTxs {
    type Target = BTreeMap<Vec<u8>, DocTx>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for DocTxs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl TxState for DocTxs {
    fn writes_anything(&self) -> bool {
        self.values().any(|d| d.writes_anything())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Paths written to each document by recent commits, kept while some
/// snapshot older than them is open.
#[derive(Default)]
pub struct PathLog {
    writes: Mutex<HashMap<Box<[u8]>, Vec<Written>>>,
}

/// A path written to a document by the commit at that version.
type Written = (u64, Path);

/// A bigint inside a document. The TypeScript codec writes a bigint, and
/// only a bigint, in MessagePack's 64-bit integer formats (a number is a
/// smaller integer or a float), so a document keeps such an integer apart
/// from `Integer` — as this private extension type holding the value as
/// 8 big-endian bytes — and [`encode`] writes it back in the 64-bit format.
/// A small bigint (`5n`) thus reads back as a bigint, not the number 5.
/// Never stored or returned as an extension value.
pub const BIGINT_EXT: i8 = 0x62;

/// The value of a bigint held as [`BIGINT_EXT`].
pub fn bigint(v: &Doc) -> Option<i64> {
    match v {
        Doc::Ext(BIGINT_EXT, b) if b.len() == 8 => Some(i64::from_be_bytes(b[..].try_into().unwrap())),
        _ => None,
    }
}

pub fn decode(bytes: &[u8]) -> Result<Doc> {
    let mut r = bytes;
    let v = read_doc(&mut r, 0).map_err(|e| Error::invalid_argument(format!("not a MessagePack value: {e}")))?;
    if !r.is_empty() {
        return Err(Error::invalid_argument("trailing bytes after the MessagePack value"));
    }
    Ok(v)
}

/// Reads one value, holding an int64 (a bigint) as [`BIGINT_EXT`].
fn read_doc(r: &mut &[u8], depth: usize) -> std::result::Result<Doc, String> {
    use rmp::Marker;
    // Stored documents nest at most MAX_DEPTH; damaged bytes must not
    // recurse without end.
    if depth > 4 * MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    let Some(&first) = r.first() else { return Err("unexpected end of input".into()) };
    let take = |r: &mut &[u8], n: usize| -> std::result::Result<u64, String> {
        if r.len() < n {
            return Err("unexpected end of input".into());
        }
        let v = r[..n].iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
        *r = &r[n..];
        Ok(v)
    };
    match Marker::from_u8(first) {
        Marker::I64 => {
            *r = &r[1..];
            Ok(Doc::Ext(BIGINT_EXT, take(r, 8)?.to_be_bytes().to_vec()))
        }
        m @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => {
            *r = &r[1..];
            let len = match m {
                Marker::FixArray(n) => n as u64,
                Marker::Array16 => take(r, 2)?,
                _ => take(r, 4)?,
            } as usize;
            // Every element takes at least a byte: a length past the input is damage.
            let mut items = Vec::with_capacity(len.min(r.len()));
            for _ in 0..len {
                items.push(read_doc(r, depth + 1)?);
            }
            Ok(Doc::Array(items))
        }
        m @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => {
            *r = &r[1..];
            let len = match m {
                Marker::FixMap(n) => n as u64,
                Marker::Map16 => take(r, 2)?,
                _ => take(r, 4)?,
            } as usize;
            let mut entries = Vec::with_capacity(len.min(r.len() / 2));
            for _ in 0..len {
                let k = read_doc(r, depth + 1)?;
                let v = read_doc(r, depth + 1)?;
                entries.push((k, v));
            }
            Ok(Doc::Map(entries))
        }
        _ => rmpv::decode::read_value(r).map_err(|e| e.to_string()),
    }
}

pub fn encode(v: &Doc) -> Vec<u8> {
    let mut out = Vec::new();
    write_doc(&mut out, v);
    out
}

fn write_doc(out: &mut Vec<u8>, v: &Doc) {
    match v {
        Doc::Array(items) => {
            rmp::encode::write_array_len(out, items.len() as u32).expect("writing to a Vec cannot fail");
            for item in items {
                write_doc(out, item);
            }
        }
        Doc::Map(entries) => {
            rmp::encode::write_map_len(out, entries.len() as u32).expect("writing to a Vec cannot fail");
            for (k, v) in entries {
                write_doc(out, k);
                write_doc(out, v);
            }
        }
        other => match bigint(other) {
            Some(n) => {
                out.push(0xd3);
                out.extend_from_slice(&n.to_be_bytes());
            }
            None => rmpv::encode::write_value(out, other).expect("writing to a Vec cannot fail"),
        },
    }
}

fn depth(v: &Doc) -> usize {
    match v {
        Doc::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Doc::Map(m) => 1 + m.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fn kind(v: &Doc) -> &'static str {
    match v {
        Doc::Nil => "null",
        Doc::Boolean(_) => "a boolean",
        Doc::Integer(_) | Doc::F32(_) | Doc::F64(_) => "a number",
        Doc::String(_) => "a string",
        Doc::Binary(_) => "bytes",
        Doc::Array(_) => "an array",
        Doc::Map(_) => "an object",
        Doc::Ext(BIGINT_EXT, _) => "a number",
        Doc::Ext(..) => "an extension value",
    }
}

fn map_get<'a>(m: &'a [(Doc, Doc)], key: &str) -> Option<&'a Doc> {
    m.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
}

fn map_index(m: &[(Doc, Doc)], key: &str) -> Option<usize> {
    m.iter().position(|(k, _)| k.as_str() == Some(key))
}

/// The bytes of the value at `path` inside the encoded document `bytes`,
/// found without decoding it: map keys are compared as they are stored and
/// every value not on the path is skipped by its length. `json.get` returns
/// them as they are (the TypeScript codec decodes them), so a read costs
/// the path's walk, not a decode and an encode of the whole document.
/// Bytes that end early or hold a marker MessagePack does not define are an
/// `InvalidArgument` error, as [`decode`] reports them.
pub fn find_encoded<'a>(bytes: &'a [u8], path: &[Segment]) -> Result<Option<&'a [u8]>> {
    Ok(locate(bytes, path)?.and_then(|l| l.value).map(|(from, to)| &bytes[from..to]))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Map,
    Array,
    Other,
}

/// The container at the start of `b`: its kind, its number of entries and
/// the length of its header. `None` when `b` is empty or the header cut.
fn container(b: &[u8]) -> Option<(Container, usize, usize)> {
    let be = |n: usize| -> Option<usize> { b.get(1..1 + n).map(|s| s.iter().fold(0usize, |acc, x| (acc << 8) | *x as usize)) };
    Some(match *b.first()? {
        m @ 0x80..=0x8f => (Container::Map, (m & 0x0f) as usize, 1),
        m @ 0x90..=0x9f => (Container::Array, (m & 0x0f) as usize, 1),
        0xdc => (Container::Array, be(2)?, 3),
        0xdd => (Container::Array, be(4)?, 5),
        0xde => (Container::Map, be(2)?, 3),
        0xdf => (Container::Map, be(4)?, 5),
        _ => (Container::Other, 0, 0),
    })
}

/// The bytes of the string encoded in `b` (exactly one string value), else `None`.
fn str_bytes(b: &[u8]) -> Option<&[u8]> {
    let header = match *b.first()? {
        0xa0..=0xbf => 1,
        0xd9 => 2,
        0xda => 3,
        0xdb => 5,
        _ => return None,
    };
    b.get(header..)
}

/// The length of the one MessagePack value at the start of `b`, nested
/// values included, walked without recursion.
fn encoded_len(b: &[u8]) -> std::result::Result<usize, String> {
    let mut at = 0usize;
    // Values still to skip: the first, then each container's entries.
    let mut pending = 1usize;
    let end = "unexpected end of input";
    while pending > 0 {
        pending -= 1;
        let m = *b.get(at).ok_or(end)?;
        let be = |n: usize| -> std::result::Result<usize, String> {
            b.get(at + 1..at + 1 + n).map(|s| s.iter().fold(0usize, |acc, x| (acc << 8) | *x as usize)).ok_or_else(|| end.to_string())
        };
        let (header, body, children) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0, 0),
            0x80..=0x8f => (1, 0, 2 * (m & 0x0f) as usize),
            0x90..=0x9f => (1, 0, (m & 0x0f) as usize),
            0xa0..=0xbf => (1, (m & 0x1f) as usize, 0),
            0xc4 | 0xd9 => (2, be(1)?, 0),
            0xc5 | 0xda => (3, be(2)?, 0),
            0xc6 | 0xdb => (5, be(4)?, 0),
            0xc7 => (3, be(1)?, 0),
            0xc8 => (4, be(2)?, 0),
            0xc9 => (6, be(4)?, 0),
            0xca => (5, 0, 0),
            0xcb => (9, 0, 0),
            0xcc | 0xd0 => (2, 0, 0),
            0xcd | 0xd1 => (3, 0, 0),
            0xce | 0xd2 => (5, 0, 0),
            0xcf | 0xd3 => (9, 0, 0),
            0xd4 => (3, 0, 0),
            0xd5 => (4, 0, 0),
            0xd6 => (6, 0, 0),
            0xd7 => (10, 0, 0),
            0xd8 => (18, 0, 0),
            0xdc => (3, 0, be(2)?),
            0xdd => (5, 0, be(4)?),
            0xde => (3, 0, 2 * be(2)?),
            0xdf => (5, 0, 2 * be(4)?),
            _ => return Err(format!("the marker 0x{m:02x} is not MessagePack")),
        };
        at = at.checked_add(header + body).ok_or(end)?;
        if at > b.len() {
            return Err(end.into());
        }
        // Every value takes at least a byte: more pending than bytes left is damage.
        pending = pending.checked_add(children).filter(|p| *p <= b.len() - at).ok_or(end)?;
    }
    Ok(at)
}

/// Where one value sits in a document's bytes.
struct Located {
    /// The container holding it: its offset, kind, entries and header length.
    parent: Option<(usize, Container, usize, usize)>,
    /// The value's own range, when it exists.
    value: Option<(usize, usize)>,
    /// When it does not: where the parent's entries end (an entry appended goes there).
    parent_end: usize,
    /// Where the value's entry in its parent starts: its key's offset in a
    /// map, its own in an array (what a delete takes out runs from here).
    entry_start: usize,
}

/// Finds the value at `path` in `bytes` by offsets, stepping over what is
/// not on the path by its length, and its parent: `None` when a step before
/// the last is missing or not a container. The one walk behind
/// [`find_encoded`] and [`splice_set`].
fn locate(bytes: &[u8], path: &[Segment]) -> Result<Option<Located>> {
    let damaged = |what: String| Error::invalid_argument(format!("not a MessagePack value: {what}"));
    let len_at = |at: usize| encoded_len(&bytes[at..]).map_err(damaged);
    let (mut start, mut end) = (0usize, None);
    let mut parent = None;
    let mut entry_start = 0;
    for (step, seg) in path.iter().enumerate() {
        let (kind, len, header) = container(&bytes[start..]).ok_or_else(|| damaged("unexpected end of input".into()))?;
        let mut pos = start + header;
        let mut found = None;
        match (seg, kind) {
            (Segment::Key(k), Container::Map) => {
                for _ in 0..len {
                    let key_at = pos;
                    let key_len = len_at(pos)?;
                    let is_key = str_bytes(&bytes[pos..pos + key_len]) == Some(k.as_bytes());
                    pos += key_len;
                    let value_len = len_at(pos)?;
                    if is_key {
                        found = Some((pos, pos + value_len));
                        entry_start = key_at;
                        break;
                    }
                    pos += value_len;
                }
            }
            (Segment::Index(i), Container::Array) => {
                for j in 0..len {
                    let n = len_at(pos)?;
                    if j == *i {
                        found = Some((pos, pos + n));
                        entry_start = pos;
                        break;
                    }
                    pos += n;
                }
            }
            _ => return Ok(None),
        }
        parent = Some((start, kind, len, header));
        match found {
            Some((from, to)) => (start, end) = (from, Some(to)),
            // Missing at the last step: the parent was walked to its end.
            None if step + 1 == path.len() => return Ok(Some(Located { parent, value: None, parent_end: pos, entry_start: pos })),
            None => return Ok(None),
        }
    }
    let end = match end {
        Some(end) => end,
        None => len_at(0)?,
    };
    Ok(Some(Located { parent, value: Some((start, end)), parent_end: end, entry_start }))
}

fn container_header(out: &mut Vec<u8>, kind: Container, len: usize) {
    let len = len as u32;
    match kind {
        Container::Map => rmp::encode::write_map_len(out, len),
        _ => rmp::encode::write_array_len(out, len),
    }
    .expect("writing to a Vec cannot fail");
}

/// The document `bytes` with `value` (encoded) set at `path`, made by
/// splicing bytes when the path's parent exists: replacing the value there,
/// or appending it to the parent (a new key of an object, or the element
/// one past the end of an array). `None` when it needs the tree: a missing
/// step before the last, a step through something that is not a container
/// (the tree's error names it), an index past the end, the root.
/// Equal, decoded, to [`apply`] of `Op::Set` on the decoded document.
pub fn splice_set(bytes: &[u8], path: &[Segment], value: &[u8]) -> Result<Option<Spliced>> {
    let Some(last) = path.last() else { return Ok(None) };
    let Some(l) = locate(bytes, path)? else { return Ok(None) };
    let Some((start, kind, len, header)) = l.parent else { return Ok(None) };
    Ok(Some(match l.value {
        Some((from, to)) => Spliced { value: joined(&[&bytes[..from], value, &bytes[to..]]), ends: (from, bytes.len() - to) },
        None => {
            match (last, kind) {
                (Segment::Key(_), Container::Map) => {}
                (Segment::Index(i), Container::Array) if *i == len => {}
                _ => return Ok(None),
            }
            let mut head = Vec::new();
            container_header(&mut head, kind, len + 1);
            let mut name = Vec::new();
            if let Segment::Key(k) = last {
                rmp::encode::write_str(&mut name, k).expect("writing to a Vec cannot fail");
            }
            Spliced {
                value: joined(&[&bytes[..start], &head, &bytes[start + header..l.parent_end], &name, value, &bytes[l.parent_end..]]),
                ends: (start, bytes.len() - l.parent_end),
            }
        }
    }))
}

/// The document `bytes` with the value at `path` deleted, made by splicing
/// bytes: its entry (a map's key and value, an array's element, the later
/// elements moving down one) taken out and its parent's header written for
/// one entry fewer. `None` when there is nothing there to delete or it
/// needs the tree (the root, a missing step before the last, a step through
/// something that is not a container). Equal, decoded, to [`apply`] of
/// `Op::Delete` on the decoded document when that deletes something.
pub fn splice_delete(bytes: &[u8], path: &[Segment]) -> Result<Option<Spliced>> {
    if path.is_empty() {
        return Ok(None);
    }
    let Some(l) = locate(bytes, path)? else { return Ok(None) };
    let (Some((start, kind, len, header)), Some((_, to))) = (l.parent, l.value) else { return Ok(None) };
    let mut head = Vec::new();
    container_header(&mut head, kind, len - 1);
    Ok(Some(Spliced { value: joined(&[&bytes[..start], &head, &bytes[start + header..l.entry_start], &bytes[to..]]), ends: (start, bytes.len() - to) }))
}

/// A document with one `set` spliced into its bytes.
pub struct Spliced {
    pub value: Value,
    /// Leading and trailing bytes it shares with the document it was
    /// spliced from (what changed lies between).
    pub ends: (usize, usize),
}

impl Spliced {
    /// The ends `then`, spliced from this one, shares with what this was
    /// spliced from: the shorter of each.
    fn then(self, then: Spliced) -> Spliced {
        Spliced { value: then.value, ends: (self.ends.0.min(then.ends.0), self.ends.1.min(then.ends.1)) }
    }
}

/// Whether setting `v` at `path` by splicing keeps the document within the
/// limits for sure (else the tree's [`finish`] decides, and says why not).
fn splice_fits(path: &[Segment], v: &Doc, out_len: usize) -> bool {
    path.len() + depth(v) < MAX_DEPTH && out_len <= MAX_VALUE_BYTES
}

/// The value at `path`, if there is one.
pub fn get<'a>(doc: &'a Doc, path: &[Segment]) -> Option<&'a Doc> {
    let mut cur = doc;
    for seg in path {
        cur = match (seg, cur) {
            (Segment::Key(k), Doc::Map(m)) => map_get(m, k)?,
            (Segment::Index(i), Doc::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// What a missing step on the way to a write becomes: an array when the
/// next step is an index, an object when it is a key, null at the end.
fn fresh(rest: &[Segment]) -> Doc {
    match rest.first() {
        None => Doc::Nil,
        Some(Segment::Index(_)) => Doc::Array(Vec::new()),
        Some(Segment::Key(_)) => Doc::Map(Vec::new()),
    }
}

/// The slot at `path`, creating missing objects and arrays on the way when
/// `create` (an array only from its index 0: a later index past its end is
/// an error).
fn slot<'a>(doc: &'a mut Doc, path: &[Segment], full: &[Segment], create: bool) -> Result<Option<&'a mut Doc>> {
    let Some((seg, rest)) = path.split_first() else {
        return Ok(Some(doc));
    };
    let here = &full[..full.len() - path.len()];
    let next = match (seg, doc) {
        (Segment::Key(k), Doc::Map(m)) => match map_index(m, k) {
            Some(i) => &mut m[i].1,
            None if create => {
                m.push((Doc::String(k.as_str().into()), fresh(rest)));
                &mut m.last_mut().unwrap().1
            }
            None => return Ok(None),
        },
        (Segment::Index(i), Doc::Array(a)) => {
            if *i == a.len() && create {
                a.push(fresh(rest));
            }
            let len = a.len();
            if *i >= len {
                if create {
                    return Err(Error::invalid_argument(format!(
                        "cannot write {}: index {i} is past the end of the array at {} (length {len})",
                        json_path::display(full),
                        json_path::display(here),
                    )));
                }
                return Ok(None);
            }
            &mut a[*i]
        }
        (seg, other) if create => {
            let wanted = if matches!(seg, Segment::Key(_)) { "an object" } else { "an array" };
            return Err(Error::invalid_argument(format!(
                "cannot write {}: {} is {}, not {wanted}",
                json_path::display(full),
                json_path::display(here),
                kind(other)
            )));
        }
        _ => return Ok(None),
    };
    slot(next, rest, full, create)
}

/// RFC 7386 JSON Merge Patch.
pub fn merge_patch(target: &mut Doc, patch: Doc) {
    let Doc::Map(entries) = patch else {
        *target = patch;
        return;
    };
    if !matches!(target, Doc::Map(_)) {
        *target = Doc::Map(Vec::new());
    }
    let Doc::Map(t) = target else { unreachable!() };
    for (k, v) in entries {
        let Some(key) = k.as_str() else { continue };
        let at = map_index(t, key);
        match (v, at) {
            (Doc::Nil, Some(i)) => {
                t.remove(i);
            }
            (Doc::Nil, None) => {}
            (v, Some(i)) => merge_patch(&mut t[i].1, v),
            (v, None) => {
                let mut fresh = Doc::Nil;
                merge_patch(&mut fresh, v);
                t.push((k, fresh));
            }
        }
    }
}

/// The paths an operation can change: removing an array element shifts every
/// later index, so it changes the whole array.
fn footprint<'a>(path: &'a [Segment], op: &Op) -> &'a [Segment] {
    match (op, path.last()) {
        (Op::Delete, Some(Segment::Index(_))) => &path[..path.len() - 1],
        _ => path,
    }
}

/// Applies one operation; `Ok(false)` when a delete found nothing.
pub fn apply(doc: &mut Option<Doc>, path: &[Segment], op: &Op) -> Result<bool> {
    match op {
        Op::Delete if path.is_empty() => Ok(doc.take().is_some()),
        Op::Delete => {
            let Some(root) = doc.as_mut() else { return Ok(false) };
            let (last, parent) = path.split_last().unwrap();
            let Some(container) = slot(root, parent, path, false)? else { return Ok(false) };
            Ok(match (last, container) {
                (Segment::Key(k), Doc::Map(m)) => match map_index(m, k) {
                    Some(i) => {
                        m.remove(i);
                        true
                    }
                    None => false,
                },
                (Segment::Index(i), Doc::Array(a)) if *i < a.len() => {
                    a.remove(*i);
                    true
                }
                _ => false,
            })
        }
        Op::Set(v) | Op::Merge(v) => {
            if path.is_empty() {
                match op {
                    Op::Set(_) => *doc = Some(v.clone()),
                    _ => merge_patch(doc.get_or_insert(Doc::Nil), v.clone()),
                }
                return Ok(true);
            }
            if doc.is_none() {
                *doc = Some(Doc::Map(Vec::new()));
            }
            let target = slot(doc.as_mut().unwrap(), path, path, true)?.expect("created");
            match op {
                Op::Set(_) => *target = v.clone(),
                _ => merge_patch(target, v.clone()),
            }
            Ok(true)
        }
    }
}

/// Checks a document against the limits and encodes it.
pub fn finish(doc: &Doc) -> Result<Vec<u8>> {
    if depth(doc) > MAX_DEPTH {
        return Err(Error::limit(format!("the document nests deeper than {MAX_DEPTH} levels")));
    }
    let bytes = encode(doc);
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(Error::limit(format!("the document is {} bytes encoded; the limit is {MAX_VALUE_BYTES} bytes (16 MiB)", bytes.len())));
    }
    Ok(bytes)
}

impl DocTx {
    /// A transaction's view of a document stored as `base` (or absent).
    pub fn new(base: Option<Value>) -> DocTx {
        DocTx {
            ops: Vec::new(),
            reads: Vec::new(),
            current: base.clone().map_or(View::Tree(None), View::Encoded),
            base,
            ends: None,
            pending: None,
            released: false,
        }
    }

    /// Whether the document exists in this view.
    pub fn exists(&self) -> bool {
        if self.released {
            // A pending set replaced a value in it.
            return true;
        }
        match &self.current {
            View::Tree(d) => d.is_some(),
            View::Encoded(_) => true,
        }
    }

    /// The value at `path` in this view, encoded.
    pub fn get_encoded(&mut self, path: &[Segment]) -> Result<Option<Vec<u8>>> {
        self.splice_pending();
        Ok(match &self.current {
            View::Tree(d) => d.as_ref().and_then(|v| get(v, path)).map(encode),
            View::Encoded(bytes) => find_encoded(bytes, path)?.map(<[u8]>::to_vec),
        })
    }

    /// The view and base read again from the snapshot (`base`) after
    /// they were let go.
    fn reload(&mut self, base: Option<Value>) {
        debug_assert!(self.released && base.is_some());
        self.current = base.clone().map_or(View::Tree(None), View::Encoded);
        self.base = base;
        self.released = false;
    }

    /// Splices the pending `set` into the view.
    fn splice_pending(&mut self) {
        assert!(!self.released, "a document let go is read again before use");
        if let (Some(p), View::Encoded(bytes)) = (self.pending.take(), &self.current) {
            self.current = View::Encoded(joined(&[&bytes[..p.from], &p.value, &bytes[p.to..]]));
        }
    }

    /// The view decoded (once).
    fn tree(&mut self) -> Result<&mut Option<Doc>> {
        self.splice_pending();
        if let View::Encoded(bytes) = &self.current {
            self.current = View::Tree(Some(decode(bytes)?));
        }
        match &mut self.current {
            View::Tree(d) => Ok(d),
            View::Encoded(_) => unreachable!(),
        }
    }

    pub fn read(&mut self, path: Path) {
        if !self.reads.contains(&path) {
            self.reads.push(path);
        }
    }

    /// Applies `op` to this transaction's view now (so errors surface at the
    /// call) and records it for commit. A `set` below the root of a document
    /// held encoded splices its bytes when it can (see [`splice_set`]).
    pub fn write(&mut self, path: Path, op: Op) -> Result<bool> {
        if let (true, View::Encoded(bytes), Op::Set(v)) = (self.ops.is_empty(), &self.current, &op)
            && let Some((from, to)) = replace_span(bytes, &path)?
        {
            let value = encode(v);
            if splice_fits(&path, v, bytes.len() - (to - from) + value.len()) {
                self.ends = Some((from, bytes.len() - to));
                self.pending = Some(Pending { from, to, value });
                self.ops.push((path, op));
                self.current = View::Tree(None);
                self.base = None;
                self.released = true;
                return Ok(true);
            }
        }
        self.splice_pending();
        let spliced = match (&self.current, &op) {
            (View::Encoded(bytes), Op::Set(v)) => splice_set(bytes, &path, &encode(v))?.filter(|next| splice_fits(&path, v, next.value.len())),
            (View::Encoded(bytes), Op::Delete) => splice_delete(bytes, &path)?,
            _ => None,
        };
        if let Some(next) = spliced {
            let (p, s) = next.ends;
            self.ends = Some(match (self.ops.is_empty(), self.ends) {
                (true, _) => (p, s),
                (false, Some((p0, s0))) => (p0.min(p), s0.min(s)),
                (false, None) => (0, 0),
            });
            self.current = View::Encoded(next.value);
            self.ops.push((path, op));
            return Ok(true);
        }
        let mut next = self.tree()?.clone();
        let changed = apply(&mut next, &path, &op)?;
        if let Some(doc) = &next {
            finish(doc)?;
        }
        self.current = View::Tree(next);
        self.ops.push((path, op));
        Ok(changed)
    }

    pub fn writes_anything(&self) -> bool {
        !self.ops.is_empty()
    }
}

impl PathLog {
    /// Fails if a path `docs` read or wrote was written by a commit after
    /// `snapshot`. Called with the commit lock held.
    pub fn check(&self, docs: &DocTxs, snapshot: u64) -> Result<()> {
        let log = self.writes.lock();
        for (key, doc) in docs.iter() {
            let Some(entries) = log.get(&key[..]) else { continue };
            for (version, written) in entries.iter().filter(|(v, _)| *v > snapshot) {
                let mine = doc.ops.iter().map(|(p, op)| footprint(p, op)).chain(doc.reads.iter().map(|p| &p[..]));
                for p in mine {
                    if overlaps(p, written) {
                        return Err(Error::conflict(
                            "a JSON path this transaction used was written by another transaction first",
                            json!({
                                "doc": String::from_utf8_lossy(InternalKey::user(key)),
                                "path": json_path::display(p),
                                "writtenPath": json_path::display(written),
                                "version": version,
                                "snapshot": snapshot,
                            }),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Records the paths a commit at `version` wrote: each document's own
    /// paths, and the root for any other write of a document key. Drops what
    /// no open snapshot can conflict with any more.
    pub fn record<'a>(&self, version: u64, docs: Option<&DocTxs>, other_keys: impl Iterator<Item = &'a [u8]>, oldest_needed: u64) {
        let mut touched: Vec<(Box<[u8]>, Vec<Path>)> = Vec::new();
        if let Some(docs) = docs {
            for (key, doc) in docs.iter().filter(|(_, d)| d.writes_anything()) {
                touched.push((key[..].into(), doc.ops.iter().map(|(p, op)| footprint(p, op).to_vec()).collect()));
            }
        }
        for key in other_keys {
            if InternalKey::tag(key) == Some(TypeTag::Json) && !docs.is_some_and(|d| d.contains_key(key)) {
                touched.push((key.into(), vec![Vec::new()]));
            }
        }
        if touched.is_empty() {
            return;
        }
        let mut log = self.writes.lock();
        for (key, paths) in touched {
            let entries = log.entry(key).or_default();
            entries.retain(|(v, _)| *v > oldest_needed);
            entries.extend(paths.into_iter().map(|p| (version, p)));
        }
        // Documents not written again keep stale entries until a sweep.
        if log.len() > 1024 && version.is_multiple_of(256) {
            log.retain(|_, e| {
                e.retain(|(v, _)| *v > oldest_needed);
                !e.is_empty()
            });
        }
    }
}

/// Documents from this size on take a one-path `set` as a splice of the
/// stored bytes ([`ResolvedWrite::Spliced`]); the log holds it as a delta,
/// as it would the whole document from this size on.
const SPLICED_FROM: usize = crate::core::commit_record::DELTA_FROM;

/// Replays each document's operations on its newest committed value: the
/// writes the commit stores. Called with the commit lock held.
pub fn resolve(store: &dyn Source, docs: &DocTxs) -> Result<Resolved> {
    let mut out = Vec::new();
    for (key, doc) in docs.iter().filter(|(_, d)| d.writes_anything()) {
        let latest = store.read(key, u64::MAX).map(|(_, v)| v);
        // One `set` that replaces a value of a large document: the store
        // splices it into the newest document, in place when it can (a
        // fork's first write of a document it reads from its parent stores
        // the whole document under its own key).
        if let ([(path, Op::Set(v))], Some(now)) = (&doc.ops[..], &latest)
            && now.len() >= SPLICED_FROM
            && store.holds_own(key)
            && let Some((from, to)) = replace_span(now, path)?
        {
            let middle = match &doc.pending {
                Some(p) => p.value.clone(),
                None => encode(v),
            };
            if splice_fits(path, v, now.len() - (to - from) + middle.len()) {
                out.push(ResolvedWrite::Spliced { key: key.clone(), prefix: from, suffix: now.len() - to, middle });
                continue;
            }
        }
        // Nothing committed to the document since the snapshot (the store
        // still holds the very value it started from) and every operation
        // was spliced into the view: the view is the result, no copy.
        if let (Some(now), Some(base), View::Encoded(view), None) = (&latest, &doc.base, &doc.current, &doc.pending)
            && Value::ptr_eq(now, base)
            && !doc.ops.is_empty()
        {
            out.push(ResolvedWrite::Whole { key: key.clone(), value: Some(view.clone()), ends: doc.ends });
            continue;
        }
        if let Some(spliced) = latest.as_ref().and_then(|b| splice_all(b, &doc.ops).transpose()) {
            let spliced = spliced?;
            out.push(ResolvedWrite::Whole { key: key.clone(), value: Some(spliced.value), ends: Some(spliced.ends) });
            continue;
        }
        let mut value = match &latest {
            Some(bytes) => Some(decode(bytes)?),
            None => None,
        };
        for (path, op) in &doc.ops {
            // The transaction applied this to its snapshot without error, and
            // no overlapping path changed since (checked first): failing now
            // means a concurrent change it could not see, so it is retryable.
            apply(&mut value, path, op).map_err(|e| {
                Error::conflict(
                    format!("a concurrent change to the document makes this write impossible: {e}"),
                    json!({ "doc": String::from_utf8_lossy(InternalKey::user(key)), "path": json_path::display(path) }),
                )
            })?;
        }
        let stored = match value {
            Some(v) => Some(in_mem_storage::value(finish(&v)?)),
            None => None,
        };
        if stored.is_some() || latest.is_some() {
            out.push(ResolvedWrite::Whole { key: key.clone(), value: stored, ends: None });
        }
    }
    Ok(out)
}

/// The newest document `bytes` with `ops` applied by splicing, when every
/// one is a `set` that can be (else `None`: the tree replays them).
fn splice_all(bytes: &[u8], ops: &[(Path, Op)]) -> Result<Option<Spliced>> {
    let mut cur: Option<Spliced> = None;
    for (path, op) in ops {
        let from = cur.as_ref().map_or(bytes, |c| &c.value[..]);
        let next = match op {
            Op::Set(v) => splice_set(from, path, &encode(v))?.filter(|next| splice_fits(path, v, next.value.len())),
            Op::Delete => splice_delete(from, path)?,
            Op::Merge(_) => None,
        };
        match next {
            Some(next) => {
                cur = Some(match cur {
                    Some(c) => c.then(next),
                    None => next,
                })
            }
            _ => return Ok(None),
        }
    }
    Ok(cur)
}

fn doc_key(run: &RunId, doc: &str) -> Result<Vec<u8>> {
    InternalKey::validate_user_key(doc.as_bytes())?;
    Ok(InternalKey::build(run, TypeTag::Json, doc.as_bytes()))
}

impl EngineTx {
    /// This transaction's view of a document, loaded from its snapshot on
    /// first use.
    fn doc(&mut self, key: &[u8]) -> Result<&mut DocTx> {
        match self.state::<DocTxs>().and_then(|d| d.get(key)).map(|d| d.released) {
            None => {
                let base = self.read_untracked(key);
                self.state_mut::<DocTxs>().insert(key.to_vec(), DocTx::new(base));
            }
            Some(true) => {
                let base = self.read_untracked(key);
                self.state_mut::<DocTxs>().get_mut(key).unwrap().reload(base);
            }
            Some(false) => {}
        }
        Ok(self.state_mut::<DocTxs>().get_mut(key).unwrap())
    }

    /// The ids of the run's documents in id order: those starting with
    /// `prefix`, after `after`, at most `limit`; the transaction's own
    /// creations and deletions included. The range joins the read set.
    pub fn json_list(&mut self, run: &RunId, prefix: Option<&str>, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        let start = InternalKey::prefix(run, TypeTag::Json);
        let mut ids = std::collections::BTreeSet::new();
        self.scan_prefix(&start, false, &mut |k, _, _| {
            ids.insert(String::from_utf8_lossy(&k[start.len()..]).into_owned());
            true
        });
        for (key, d) in self.state::<DocTxs>().into_iter().flat_map(|d| d.iter()).filter(|(k, _)| k.starts_with(&start)) {
            let id = String::from_utf8_lossy(&key[start.len()..]).into_owned();
            if d.exists() {
                ids.insert(id);
            } else {
                ids.remove(&id);
            }
        }
        Ok(ids
            .into_iter()
            .filter(|id| prefix.is_none_or(|p| id.starts_with(p)))
            .filter(|id| after.is_none_or(|a| id.as_str() > a))
            .take(limit.unwrap_or(usize::MAX))
            .collect())
    }

    /// The encoded value at `path` of `doc`, if present. The path joins the
    /// transaction's read set.
    pub fn json_get(&mut self, run: &RunId, doc: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let key = doc_key(run, doc)?;
        let path = json_path::parse(path)?;
        let d = self.doc(&key)?;
        let found = d.get_encoded(&path)?;
        d.read(path);
        Ok(found)
    }

    fn json_write(&mut self, run: &RunId, doc: &str, path: &str, op: Op) -> Result<bool> {
        let key = doc_key(run, doc)?;
        let path = json_path::parse(path)?;
        self.check_run_writable(run)?;
        self.doc(&key)?.write(path, op)
    }

    /// Sets the value at `path`, creating missing intermediate objects.
    pub fn json_set(&mut self, run: &RunId, doc: &str, path: &str, value: &[u8]) -> Result<()> {
        let v = decode(value)?;
        self.json_write(run, doc, path, Op::Set(v)).map(|_| ())
    }

    /// Removes the value at `path` (`$`: the whole document); whether there
    /// was one.
    pub fn json_delete(&mut self, run: &RunId, doc: &str, path: &str) -> Result<bool> {
        self.json_write(run, doc, path, Op::Delete)
    }

    /// Merges `patch` into the value at `path` (RFC 7386).
    pub fn json_merge(&mut self, run: &RunId, doc: &str, path: &str, patch: &[u8]) -> Result<()> {
        let v = decode(patch)?;
        self.json_write(run, doc, path, Op::Merge(v)).map(|_| ())
    }
}

impl SecondaryIndex for PathLog {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn evict_run(&self, run: &RunId) {
        self.writes.lock().retain(|doc, _| doc[..16] != *run.as_bytes());
    }

    fn prepare(&self, state: &Extensions, snapshot: u64, newest: &dyn Source) -> Result<Resolved> {
        match state.get::<DocTxs>() {
            Some(docs) => {
                self.check(docs, snapshot)?;
                resolve(newest, docs)
            }
            None => Ok(Vec::new()),
        }
    }

    fn committed(&self, version: u64, state: Option<&Extensions>, keys: &mut dyn Iterator<Item = &[u8]>, oldest_needed: u64) {
        self.record(version, state.and_then(|s| s.get::<DocTxs>()), keys, oldest_needed);
    }
}

/// JSON operations outside a transaction.
pub trait JsonDb: Db {
    /// Reads the value at `path` of the JSON document at internal key `key`
    /// (run | Json | doc id) at the current snapshot and calls `f` with it
    /// encoded: the fast path of `json.get`.
    fn json_get_with<R>(&self, key: &[u8], path: &str, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.check_open()?;
        check_fast_key(key, TypeTag::Json, "JSON document")?;
        let path = json_path::parse(path)?;
        let Some((_, stored)) = self.get_visible(key) else { return Ok(None) };
        Ok(find_encoded(&stored, &path)?.map(f))
    }
}

impl<D: Db + ?Sized> JsonDb for D {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_64_bit_integer_keeps_its_format_and_a_small_one_its_own() {
        // [5 (number), 5n (bigint), -5n, {"n": 2^60 + 1 as bigint}, 2^64 - 1 as uint64]
        let bytes = hex::decode("9505d30000000000000005d3fffffffffffffffb81a16ed31000000000000001cfffffffffffffffff").unwrap();
        let doc = decode(&bytes).unwrap();
        assert_eq!(encode(&doc), bytes);
        let Doc::Array(items) = &doc else { panic!() };
        assert_eq!(items[0], Doc::from(5));
        assert_eq!(bigint(&items[1]), Some(5));
        assert_eq!(bigint(&items[2]), Some(-5));
        assert_eq!(kind(&items[1]), "a number");
        // Damage: a length past the input, nesting without end.
        assert!(decode(&hex::decode("dc0010").unwrap()).is_err());
        assert!(decode(&vec![0x91; 100_000]).is_err());
    }
    use crate::primitives::json::path::parse;

    #[test]
    fn a_spliced_delete_equals_the_tree_delete() {
        let doc = r#"{"a": {"b": [1, {"x": 2}, "s"], "c": {}}, "n": 1, "l": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], "m": {"k0": 0, "k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9, "k10": 10, "k11": 11, "k12": 12, "k13": 13, "k14": 14, "k15": 15}}"#;
        let j: serde_json::Value = serde_json::from_str(doc).unwrap();
        let bytes = rmp_serde::to_vec(&j).unwrap();
        // The map `m` and the array `l` hold 16 entries: one fewer changes their header's size.
        let paths = [
            "$.n",
            "$.a",
            "$.a.b[0]",
            "$.a.b[1]",
            "$.a.b[2]",
            "$.a.b[1].x",
            "$.a.c",
            "$.l[0]",
            "$.l[15]",
            "$.l[7]",
            "$.m.k0",
            "$.m.k15",
            "$.m.k9",
            "$.missing",
            "$.a.b[3]",
            "$.n.x",
            "$.a.missing.x",
            "$",
        ];
        let mut spliced = 0;
        for p in paths {
            let path = parse(p).unwrap();
            let mut tree = Some(decode(&bytes).unwrap());
            let deleted = apply(&mut tree, &path, &Op::Delete);
            match splice_delete(&bytes, &path).unwrap() {
                Some(out) => {
                    spliced += 1;
                    assert!(deleted.unwrap(), "{p}: spliced, but the tree deletes nothing");
                    assert!(in_mem_storage::ends_hold(&bytes, &out.value, out.ends.0, out.ends.1), "{p}: the ends do not hold");
                    assert_eq!(Some(decode(&out.value).unwrap()), tree, "{p}");
                    // The bytes are the tree's own encoding (the smallest header for the new count).
                    assert_eq!(&out.value[..], &encode(tree.as_ref().unwrap())[..], "{p}");
                }
                // Nothing there (the tree deletes nothing, or says why not), or the root.
                None => assert!(matches!(p, "$.missing" | "$.a.b[3]" | "$.n.x" | "$.a.missing.x" | "$"), "{p} was not spliced"),
            }
        }
        assert_eq!(spliced, 13);
        // Emptied one entry at a time, a map and an array pass through every header size.
        for (start, prefix) in [(r#"{}"#, "$.k"), (r#"[]"#, "$[")] {
            let mut tree = Some(v(start));
            for i in 0..20 {
                let path = if prefix == "$.k" { format!("$.k{i}") } else { format!("$[{i}]") };
                apply(&mut tree, &parse(&path).unwrap(), &Op::Set(Doc::from(i))).unwrap();
            }
            let mut cur = encode(tree.as_ref().unwrap());
            for i in 0..20 {
                let path = parse(&if prefix == "$.k" { format!("$.k{i}") } else { "$[0]".to_string() }).unwrap();
                let next = splice_delete(&cur, &path).unwrap().unwrap();
                assert!(apply(&mut tree, &path, &Op::Delete).unwrap());
                assert_eq!(&next.value[..], &encode(tree.as_ref().unwrap())[..], "{start} at {i}");
                cur = next.value.to_vec();
            }
            assert_eq!(decode(&cur).unwrap(), v(start));
        }
    }

    #[test]
    fn a_spliced_set_equals_the_tree_set() {
        let doc = r#"{"a": {"b": [1, {"x": 2}, "s"], "c": {}}, "n": 1, "l": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]}"#;
        let j: serde_json::Value = serde_json::from_str(doc).unwrap();
        let bytes = rmp_serde::to_vec(&j).unwrap();
        let values = [v("1"), v(r#"{"deep": [1, 2, {"q": null}]}"#), v(r#""a longer string than before""#), v("[]")];
        let paths = ["$.n", "$.new", "$.a.b[1].x", "$.a.b[3]", "$.a.b[0]", "$.a.c.k", "$.l[15]", "$.l[3]", "$.a.b[5]", "$.n.x", "$.missing.x", "$.a.b.x", "$"];
        let mut spliced = 0;
        for p in paths {
            for value in &values {
                let path = parse(p).unwrap();
                let mut tree = Some(decode(&bytes).unwrap());
                let want = apply(&mut tree, &path, &Op::Set(value.clone())).map(|_| tree);
                match splice_set(&bytes, &path, &encode(value)).unwrap() {
                    Some(out) => {
                        spliced += 1;
                        assert!(in_mem_storage::ends_hold(&bytes, &out.value, out.ends.0, out.ends.1), "{p}: the ends do not hold");
                        assert_eq!(Some(decode(&out.value).unwrap()), want.unwrap(), "{p}");
                    }
                    // The tree does it (or says why not).
                    None => assert!(matches!(p, "$" | "$.a.b[5]" | "$.n.x" | "$.missing.x" | "$.a.b.x"), "{p} was not spliced"),
                }
            }
        }
        assert_eq!(spliced, 8 * values.len());
        // A map growing past 15 entries and an array past 15 elements change their header's size.
        let mut small = encode(&Doc::Map(Vec::new()));
        let mut tree = Some(Doc::Map(Vec::new()));
        for i in 0..20 {
            let path = parse(&format!("$.k{i}")).unwrap();
            let next = splice_set(&small, &path, &encode(&Doc::from(i))).unwrap().unwrap();
            assert!(in_mem_storage::ends_hold(&small, &next.value, next.ends.0, next.ends.1));
            small = next.value.to_vec();
            apply(&mut tree, &path, &Op::Set(Doc::from(i))).unwrap();
            assert_eq!(Some(decode(&small).unwrap()), tree);
        }
    }

    #[test]
    fn the_encoded_value_at_a_path_is_the_decoded_one_encoded() {
        let doc = r#"{"a": {"b": [1, -2, 3.5, "x", null, true, {"c": [[]]}], "s": "é"}, "n": 300, "big": 70000, "e": {}, "z": [0, 1]}"#;
        let j: serde_json::Value = serde_json::from_str(doc).unwrap();
        let bytes = rmp_serde::to_vec(&j).unwrap();
        let decoded = decode(&bytes).unwrap();
        for p in [
            "$",
            "$.a",
            "$.a.b",
            "$.a.b[0]",
            "$.a.b[2]",
            "$.a.b[3]",
            "$.a.b[6].c",
            "$.a.b[6].c[0]",
            "$.a.s",
            "$.n",
            "$.big",
            "$.e",
            "$.z[1]",
            "$.nope",
            "$.a.b[7]",
            "$.a.b.x",
            "$.n[0]",
            "$.z[2]",
        ] {
            let path = parse(p).unwrap();
            let fast = find_encoded(&bytes, &path).unwrap().map(|b| decode(b).unwrap());
            assert_eq!(fast.as_ref(), get(&decoded, &path), "{p}");
        }
        // Damage is an error, never a panic or a read past the end.
        for cut in 0..bytes.len() {
            let _ = find_encoded(&bytes[..cut], &parse("$.z[1]").unwrap());
            assert!(find_encoded(&bytes[..cut], &[]).is_err(), "{cut}");
        }
        assert!(find_encoded(&[0xc1], &[]).is_err());
        assert!(find_encoded(&[0xdd, 0xff, 0xff, 0xff, 0xff], &[]).is_err());
    }

    fn v(s: &str) -> Doc {
        let j: serde_json::Value = serde_json::from_str(s).unwrap();
        let bytes = rmp_serde::to_vec(&j).unwrap();
        decode(&bytes).unwrap()
    }

    fn run(doc: Option<&str>, path: &str, op: Op) -> Result<Option<Doc>> {
        let mut d = doc.map(v);
        apply(&mut d, &parse(path).unwrap(), &op)?;
        Ok(d)
    }

    #[test]
    fn set_creates_missing_objects() {
        assert_eq!(run(None, "$.a.b", Op::Set(v("1"))).unwrap(), Some(v(r#"{"a":{"b":1}}"#)));
        assert_eq!(run(Some(r#"{"a":[1,2]}"#), "$.a[2]", Op::Set(v("3"))).unwrap(), Some(v(r#"{"a":[1,2,3]}"#)));
    }

    #[test]
    fn set_through_a_scalar_names_the_path() {
        let e = run(Some(r#"{"a":5}"#), "$.a.b", Op::Set(v("1"))).unwrap_err().to_string();
        assert!(e.contains("$.a is a number, not an object"), "{e}");
        let e = run(Some(r#"{"a":[]}"#), "$.a[3]", Op::Set(v("1"))).unwrap_err().to_string();
        assert!(e.contains("past the end"), "{e}");
    }

    #[test]
    fn merge_follows_rfc_7386() {
        let out = run(Some(r#"{"a":"b","c":{"d":"e","f":"g"}}"#), "$", Op::Merge(v(r#"{"a":"z","c":{"f":null}}"#))).unwrap();
        assert_eq!(out, Some(v(r#"{"a":"z","c":{"d":"e"}}"#)));
        assert_eq!(run(Some(r#"{"a":[1]}"#), "$.a", Op::Merge(v(r#"{"x":1}"#))).unwrap(), Some(v(r#"{"a":{"x":1}}"#)));
    }

    #[test]
    fn delete_reports_whether_something_went() {
        let mut d = Some(v(r#"{"a":{"b":1},"c":[1,2]}"#));
        assert!(apply(&mut d, &parse("$.a.b").unwrap(), &Op::Delete).unwrap());
        assert!(!apply(&mut d, &parse("$.a.b").unwrap(), &Op::Delete).unwrap());
        assert!(apply(&mut d, &parse("$.c[0]").unwrap(), &Op::Delete).unwrap());
        assert_eq!(d, Some(v(r#"{"a":{},"c":[2]}"#)));
        assert!(apply(&mut d, &[], &Op::Delete).unwrap());
        assert_eq!(d, None);
    }
}
