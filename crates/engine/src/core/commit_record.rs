//! The payload of a WAL commit record (documented in `docs/format.md`):
//!
//! ```text
//! kind u8 (1 = commit) | timestamp ms u64 | op count u32 |
//! op*: op u8 (1 = put, 2 = delete, 3 = delta) | key length u32 | key |
//!      put:   value length u32 | value
//!      delta: base version u64 | prefix u32 | suffix u32 | middle length u32 | middle
//! ```
//!
//! Integers are little-endian. One record holds every write of one commit, so
//! a commit is atomic in the log by construction.
//!
//! A delta stands for the value `base[..prefix] | middle | base[len - suffix..]`,
//! where `base` is the key's newest value, written at `base version` (checked
//! on replay: anything else is damage). A large value that differs from the
//! one it replaces in a short stretch (a document edited at one path, a state
//! cell or KV value rewritten with mostly the same bytes) is logged as what
//! changed, not whole: see [`delta_of`].

use in_mem_core::{Error, Result};
use in_mem_storage::{Value, ends_hold, shared_ends, splice};

pub const KIND_COMMIT: u8 = 1;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_DELTA: u8 = 3;

/// Values from this size on are logged as a delta when that saves at least
/// half of them.
pub const DELTA_FROM: usize = 4096;

/// A write as the log holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logged<'a> {
    Put(&'a [u8]),
    Delete,
    /// See the module's documentation.
    Delta {
        base: u64,
        prefix: u32,
        suffix: u32,
        middle: &'a [u8],
    },
}

/// `new` as a delta over `old` (written at `base`), when its common prefix
/// and suffix with `old` are at least half of it; else `None`. `ends`: that
/// prefix and suffix when the caller knows them (they are measured
/// otherwise).
pub fn delta_of<'a>(old: &[u8], new: &'a [u8], base: u64, ends: Option<(usize, usize)>) -> Option<Logged<'a>> {
    if new.len() < DELTA_FROM {
        return None;
    }
    let (prefix, suffix) = ends.unwrap_or_else(|| shared_ends(old, new));
    debug_assert!(ends_hold(old, new, prefix, suffix), "the ends given are not shared by the two values");
    if (prefix + suffix) * 2 < new.len() {
        return None;
    }
    Some(Logged::Delta { base, prefix: prefix as u32, suffix: suffix as u32, middle: &new[prefix..new.len() - suffix] })
}

pub fn encode<'a>(out: &mut Vec<u8>, timestamp: u64, writes: impl ExactSizeIterator<Item = (&'a [u8], Logged<'a>)>) {
    out.push(KIND_COMMIT);
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&(writes.len() as u32).to_le_bytes());
    for (key, logged) in writes {
        out.push(match logged {
            Logged::Put(_) => OP_PUT,
            Logged::Delete => OP_DELETE,
            Logged::Delta { .. } => OP_DELTA,
        });
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        match logged {
            Logged::Put(v) => {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            Logged::Delete => {}
            Logged::Delta { base, prefix, suffix, middle } => {
                out.extend_from_slice(&base.to_le_bytes());
                out.extend_from_slice(&prefix.to_le_bytes());
                out.extend_from_slice(&suffix.to_le_bytes());
                out.extend_from_slice(&(middle.len() as u32).to_le_bytes());
                out.extend_from_slice(middle);
            }
        }
    }
}

pub struct Decoded {
    pub timestamp: u64,
    pub writes: Vec<(Box<[u8]>, Option<Value>)>,
}

/// Decodes a commit record; `newest` gives a key's newest version and
/// value, which a delta applies to; `check` judges each write's shape (see
/// [`check_shape`]) and names what is wrong.
pub fn decode(
    payload: &[u8],
    newest: impl Fn(&[u8]) -> Option<(u64, Value)>,
    check: impl Fn(&[u8], Option<&[u8]>) -> std::result::Result<(), &'static str>,
) -> Result<Decoded> {
    let bad = |what: &str| Error::internal(format!("undecodable commit record: {what}"));
    let mut r = Reader::new(payload);
    if r.u8().ok_or_else(|| bad("empty"))? != KIND_COMMIT {
        return Err(bad("unknown record kind"));
    }
    let timestamp = r.u64().ok_or_else(|| bad("no timestamp"))?;
    let count = r.u32().ok_or_else(|| bad("no op count"))? as usize;
    let mut writes = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let op = r.u8().ok_or_else(|| bad("op cut short"))?;
        let klen = r.u32().ok_or_else(|| bad("key length cut short"))? as usize;
        let key: Box<[u8]> = r.take(klen).ok_or_else(|| bad("key cut short"))?.into();
        let value: Option<Value> = match op {
            OP_PUT => {
                let vlen = r.u32().ok_or_else(|| bad("value length cut short"))? as usize;
                Some(in_mem_storage::value(r.take(vlen).ok_or_else(|| bad("value cut short"))?))
            }
            OP_DELETE => None,
            OP_DELTA => {
                let (base, prefix, suffix) = (r.u64(), r.u32(), r.u32());
                let (Some(base), Some(prefix), Some(suffix)) = (base, prefix, suffix) else { return Err(bad("delta cut short")) };
                let mlen = r.u32().ok_or_else(|| bad("delta cut short"))? as usize;
                let middle = r.take(mlen).ok_or_else(|| bad("delta cut short"))?;
                if writes.iter().any(|(k, _): &(Box<[u8]>, Option<Value>)| **k == *key) {
                    return Err(bad("a delta of a key the record wrote already"));
                }
                let Some((version, old)) = newest(&key) else { return Err(bad("a delta of a key with no value")) };
                if version != base {
                    return Err(bad("a delta whose base is not the key's newest version"));
                }
                let (prefix, suffix) = (prefix as usize, suffix as usize);
                if prefix.checked_add(suffix).is_none_or(|n| n > old.len()) {
                    return Err(bad("a delta longer than its base"));
                }
                Some(splice(&old, prefix, suffix, middle))
            }
            _ => return Err(bad("unknown op")),
        };
        check(&key, value.as_deref()).map_err(bad)?;
        writes.push((key, value));
    }
    if r.at != payload.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(Decoded { timestamp, writes })
}

/// Checks what recovery reads from a checksummed WAL record or checkpoint
/// entry before it reaches the store: every key is `run id | tag | ...`
/// (reads slice by it). The primitives check their values' shapes through
/// `SecondaryIndex::check_recovered`. Anything else was not written by
/// in-mem; the reason names what is wrong.
pub(crate) fn check_shape(key: &[u8]) -> std::result::Result<(), &'static str> {
    if key.len() < in_mem_core::KEY_PREFIX_LEN {
        return Err("key shorter than a run id and a type tag");
    }
    Ok(())
}

/// A little-endian cursor over bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An internal key: 16 bytes of run id, a tag, the user key.
    const A: &[u8] = b"0123456789abcdef\x10a";
    const B: &[u8] = b"0123456789abcdef\x10b";

    #[test]
    fn commit_records_round_trip() {
        // A KV value as the store holds it: flags, update time, payload.
        let stored: &[u8] = &[0, 5, 0, 0, 0, 0, 0, 0, 0, b'1'];
        let writes: Vec<(&[u8], Logged)> = vec![(A, Logged::Put(stored)), (B, Logged::Delete)];
        let mut out = vec![];
        encode(&mut out, 77, writes.into_iter());
        let d = decode(&out, |_| None, |_, _| Ok(())).unwrap();
        assert_eq!(d.timestamp, 77);
        assert_eq!(d.writes.len(), 2);
        assert_eq!(&*d.writes[0].0, A);
        assert_eq!(d.writes[0].1.as_deref(), Some(stored));
        assert!(d.writes[1].1.is_none());
    }

    #[test]
    fn a_kv_value_without_its_stored_header_does_not_decode() {
        // Recovery's check: the key's shape, then the registered primitives'.
        let db = crate::testing::memory();
        let check = |k: &[u8], v: Option<&[u8]>| crate::core::checkpointing::LoadTarget::check_recovered(&*db, k, v);
        for value in [&b""[..], b"1", &[0u8; 8], &[1u8; 16]] {
            let writes: Vec<(&[u8], Logged)> = vec![(A, Logged::Put(value))];
            let mut out = vec![];
            encode(&mut out, 1, writes.into_iter());
            let Err(err) = decode(&out, |_| None, check) else { panic!("a bad KV value decoded") };
            assert!(err.to_string().contains("stored header"), "{err}");
        }
        // The same bytes under another primitive's tag are that primitive's to judge.
        let other: &[u8] = b"0123456789abcdef\x12a";
        let writes: Vec<(&[u8], Logged)> = vec![(other, Logged::Put(b"1"))];
        let mut out = vec![];
        encode(&mut out, 1, writes.into_iter());
        assert!(decode(&out, |_| None, check).is_ok());
    }

    #[test]
    fn a_delta_stands_for_the_value_over_its_base_and_fails_on_any_other_base() {
        let old: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut new = old.clone();
        new[5000..5003].copy_from_slice(b"xyz");
        let logged = delta_of(&old, &new, 7, None).expect("a 3-byte change is a delta");
        let Logged::Delta { prefix, suffix, middle, .. } = logged else { unreachable!() };
        assert_eq!((prefix, suffix, middle), (5000, 10_000 - 5003, &b"xyz"[..]));
        // Appended to, it is the old value and the tail.
        let mut longer = old.clone();
        longer.extend_from_slice(b"tail");
        assert_eq!(delta_of(&old, &longer, 7, None), Some(Logged::Delta { base: 7, prefix: 10_000, suffix: 0, middle: b"tail" }));
        let mut out = vec![];
        encode(&mut out, 1, vec![(A, logged)].into_iter());
        let base: Value = in_mem_storage::value(&old[..]);
        let d = decode(&out, |_| Some((7, base.clone())), |_, _| Ok(())).unwrap();
        assert_eq!(d.writes[0].1.as_deref(), Some(&new[..]));
        // Another base version, no base, or a base too short: damage.
        assert!(decode(&out, |_| Some((8, base.clone())), |_, _| Ok(())).is_err());
        assert!(decode(&out, |_| None, |_, _| Ok(())).is_err());
        assert!(decode(&out, |_| Some((7, in_mem_storage::value(&old[..100]))), |_, _| Ok(())).is_err());
        // A value changed throughout, or a small one, is logged whole.
        let other: Vec<u8> = old.iter().map(|b| b ^ 0xff).collect();
        assert_eq!(delta_of(&old, &other, 7, None), None);
        assert_eq!(delta_of(&old[..100], &old[..99], 7, None), None);
        // Every split of a change: prefix, suffix, lengths that shrink and grow.
        for (at, cut, add) in [(0, 0, 1), (0, 10, 0), (9990, 10, 3), (4096, 64, 64), (63, 1, 1), (64, 0, 200)] {
            let mut v = old.clone();
            v.splice(at..at + cut, std::iter::repeat_n(7u8, add));
            let Some(l) = delta_of(&old, &v, 1, None) else { continue };
            let mut out = vec![];
            encode(&mut out, 1, vec![(A, l)].into_iter());
            let b: Value = in_mem_storage::value(&old[..]);
            assert_eq!(decode(&out, |_| Some((1, b.clone())), |_, _| Ok(())).unwrap().writes[0].1.as_deref(), Some(&v[..]), "{at} {cut} {add}");
        }
    }

    #[test]
    fn a_key_shorter_than_a_run_id_and_tag_does_not_decode() {
        let writes: Vec<(&[u8], Logged)> = vec![(b"short", Logged::Put(b"1"))];
        let mut out = vec![];
        encode(&mut out, 1, writes.into_iter());
        assert!(decode(&out, |_| None, |k, _| check_shape(k)).is_err());
    }

    #[test]
    fn truncated_records_do_not_decode() {
        let writes: Vec<(&[u8], Logged)> = vec![(A, Logged::Put(b"value"))];
        let mut out = vec![];
        encode(&mut out, 1, writes.into_iter());
        for cut in 0..out.len() {
            assert!(decode(&out[..cut], |_| None, |k, _| check_shape(k)).is_err());
        }
    }
}
