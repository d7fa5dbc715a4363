//! The payload of a WAL commit record (documented in `docs/format.md`):
//!
//! ```text
//! kind u8 (1 = commit) | timestamp ms u64 | op count u32 |
//! op*: op u8 (1 = put, 2 = delete) | key length u32 | key | [value length u32 | value]
//! ```
//!
//! Integers are little-endian. One record holds every write of one commit, so
//! a commit is atomic in the log by construction.

use std::sync::Arc;

use in_mem_core::{Error, Result};
use in_mem_storage::Value;

pub const KIND_COMMIT: u8 = 1;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

pub fn encode<'a>(out: &mut Vec<u8>, timestamp: u64, writes: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)>) {
    out.push(KIND_COMMIT);
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&(writes.len() as u32).to_le_bytes());
    for (key, value) in writes {
        out.push(if value.is_some() { OP_PUT } else { OP_DELETE });
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
    }
}

pub struct Decoded {
    pub timestamp: u64,
    pub writes: Vec<(Box<[u8]>, Option<Value>)>,
}

/// Decodes a commit record; `check` judges each write's shape (see
/// [`check_shape`]) and names what is wrong.
pub fn decode(payload: &[u8], check: impl Fn(&[u8], Option<&[u8]>) -> std::result::Result<(), &'static str>) -> Result<Decoded> {
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
        let value = match op {
            OP_PUT => {
                let vlen = r.u32().ok_or_else(|| bad("value length cut short"))? as usize;
                Some(r.take(vlen).ok_or_else(|| bad("value cut short"))?)
            }
            OP_DELETE => None,
            _ => return Err(bad("unknown op")),
        };
        check(&key, value).map_err(bad)?;
        writes.push((key, value.map(Arc::from)));
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
        let writes: Vec<(&[u8], Option<&[u8]>)> = vec![(A, Some(stored)), (B, None)];
        let mut out = vec![];
        encode(&mut out, 77, writes.into_iter());
        let d = decode(&out, |_, _| Ok(())).unwrap();
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
            let writes: Vec<(&[u8], Option<&[u8]>)> = vec![(A, Some(value))];
            let mut out = vec![];
            encode(&mut out, 1, writes.into_iter());
            let Err(err) = decode(&out, check) else { panic!("a bad KV value decoded") };
            assert!(err.to_string().contains("stored header"), "{err}");
        }
        // The same bytes under another primitive's tag are that primitive's to judge.
        let other: &[u8] = b"0123456789abcdef\x12a";
        let writes: Vec<(&[u8], Option<&[u8]>)> = vec![(other, Some(b"1"))];
        let mut out = vec![];
        encode(&mut out, 1, writes.into_iter());
        assert!(decode(&out, check).is_ok());
    }

    #[test]
    fn a_key_shorter_than_a_run_id_and_tag_does_not_decode() {
        let writes: Vec<(&[u8], Option<&[u8]>)> = vec![(b"short", Some(b"1"))];
        let mut out = vec![];
        encode(&mut out, 1, writes.into_iter());
        assert!(decode(&out, |k, _| check_shape(k)).is_err());
    }

    #[test]
    fn truncated_records_do_not_decode() {
        let writes: Vec<(&[u8], Option<&[u8]>)> = vec![(A, Some(b"value"))];
        let mut out = vec![];
        encode(&mut out, 1, writes.into_iter());
        for cut in 0..out.len() {
            assert!(decode(&out[..cut], |k, _| check_shape(k)).is_err());
        }
    }
}
