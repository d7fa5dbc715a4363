//! KV semantics: the stored form of a value, TTL, and the read operations
//! written once over [`View`], so that the fast path and transactions share
//! them.
//!
//! Stored form (documented in `docs/format.md`):
//!
//! ```text
//! flags u8 (bit 0: has expiry) | updatedAt ms u64 | [expiresAt ms u64] | encoded value
//! ```

use std::sync::Arc;

use in_mem_core::limits::MAX_VALUE_BYTES;
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag};
use in_mem_storage::Value;

const HAS_EXPIRY: u8 = 1;

/// Where KV reads come from: the live store or a transaction's snapshot.
pub trait View {
    fn get(&mut self, key: &[u8]) -> Option<(u64, Value)>;
    fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool);
}

/// One live KV entry, as a read returns it.
#[derive(Clone, Debug)]
pub struct KvEntry {
    pub key: Vec<u8>,
    pub version: u64,
    pub updated_at: u64,
    stored: Value,
}

impl KvEntry {
    pub fn payload(&self) -> &[u8] {
        payload(&self.stored)
    }
}

#[derive(Clone, Debug, Default)]
pub struct KvListOptions {
    pub prefix: Option<Vec<u8>>,
    pub after: Option<Vec<u8>>,
    pub limit: Option<usize>,
    pub reverse: bool,
}

pub fn check_value(payload: &[u8]) -> Result<()> {
    if payload.len() > MAX_VALUE_BYTES {
        return Err(Error::limit(format!("value is {} bytes encoded; the limit is {MAX_VALUE_BYTES} bytes (16 MiB)", payload.len())));
    }
    Ok(())
}

/// Builds the stored form in one allocation.
pub fn encode(payload: &[u8], now: u64, ttl_ms: Option<u64>) -> Value {
    let header = if ttl_ms.is_some() { 17 } else { 9 };
    let mut v = Arc::<[u8]>::new_uninit_slice(header + payload.len());
    let buf = Arc::get_mut(&mut v).unwrap();
    let mut head = [0u8; 17];
    head[0] = if ttl_ms.is_some() { HAS_EXPIRY } else { 0 };
    head[1..9].copy_from_slice(&now.to_le_bytes());
    if let Some(ttl) = ttl_ms {
        head[9..17].copy_from_slice(&now.saturating_add(ttl).to_le_bytes());
    }
    // Two memcpys (was a byte-by-byte loop over a chained iterator, a third
    // of a 50 KB put's time).
    let dst = buf.as_mut_ptr() as *mut u8;
    // SAFETY: `buf` has room for exactly `header + payload.len()` bytes, the
    // sources do not overlap it, and every byte is written before
    // `assume_init`.
    unsafe {
        std::ptr::copy_nonoverlapping(head.as_ptr(), dst, header);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), dst.add(header), payload.len());
        v.assume_init()
    }
}

pub fn updated_at(stored: &[u8]) -> u64 {
    u64::from_le_bytes(stored[1..9].try_into().unwrap())
}

pub fn expires_at(stored: &[u8]) -> Option<u64> {
    (stored[0] & HAS_EXPIRY != 0).then(|| u64::from_le_bytes(stored[9..17].try_into().unwrap()))
}

pub fn is_live(stored: &[u8], now: u64) -> bool {
    expires_at(stored).is_none_or(|e| e > now)
}

/// Whether `stored` has the layout [`encode`] writes: the flags, the update
/// time and, with an expiry, its time. Reads slice by that layout, so a
/// recovered value that lacks it is refused before it reaches the store.
pub fn is_stored_shape(stored: &[u8]) -> bool {
    match stored.first() {
        Some(flags) => stored.len() >= if flags & HAS_EXPIRY != 0 { 17 } else { 9 },
        None => false,
    }
}

pub fn payload(stored: &[u8]) -> &[u8] {
    if stored[0] & HAS_EXPIRY != 0 { &stored[17..] } else { &stored[9..] }
}

pub fn key(run: &RunId, user: &[u8]) -> Result<Vec<u8>> {
    InternalKey::validate_user_key(user)?;
    Ok(InternalKey::build(run, TypeTag::Kv, user))
}

/// Checks an internal key that arrived pre-built from the binding, before
/// it is written.
pub fn check_key(key: &[u8]) -> Result<()> {
    check_key_shape(key)?;
    InternalKey::validate_user_key(&key[17..])
}

/// The cheaper check of the read path: a key that is not valid UTF-8 can
/// never have been written, so a read of it only needs the right shape.
pub fn check_key_shape(key: &[u8]) -> Result<()> {
    if key.len() < 18 || key.len() > 17 + in_mem_core::limits::MAX_KEY_BYTES || key[16] != TypeTag::Kv as u8 {
        return Err(Error::invalid_argument("malformed KV key"));
    }
    if key[..16] == [0u8; 16] {
        return Err(Error::invalid_argument("run id 00000000-0000-0000-0000-000000000000 is reserved"));
    }
    Ok(())
}

pub fn get_live(view: &mut dyn View, key: &[u8], now: u64) -> Option<(u64, Value)> {
    view.get(key).filter(|(_, v)| is_live(v, now))
}

/// The live entries of a run in key order, paged by `after` and `limit`.
pub fn list(view: &mut dyn View, run: &RunId, opts: &KvListOptions, now: u64) -> Result<Vec<KvEntry>> {
    let base = InternalKey::prefix(run, TypeTag::Kv);
    let mut start = base.clone();
    if let Some(p) = &opts.prefix {
        start.extend_from_slice(p);
    }
    let end = InternalKey::prefix_end(&start);
    let after = opts.after.as_ref().map(|a| {
        let mut k = base.clone();
        k.extend_from_slice(a);
        k
    });
    let limit = opts.limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    view.scan(&start, end.as_deref(), opts.reverse, &mut |k, version, stored| {
        if let Some(a) = &after {
            let past = if opts.reverse { k < a.as_slice() } else { k > a.as_slice() };
            if !past {
                return true;
            }
        }
        if is_live(stored, now) {
            out.push(KvEntry { key: k[17..].to_vec(), version, updated_at: updated_at(stored), stored: stored.clone() });
        }
        out.len() < limit
    });
    Ok(out)
}

pub fn count(view: &mut dyn View, run: &RunId, prefix: Option<&[u8]>, now: u64) -> u64 {
    let mut start = InternalKey::prefix(run, TypeTag::Kv);
    if let Some(p) = prefix {
        start.extend_from_slice(p);
    }
    let end = InternalKey::prefix_end(&start);
    let mut n = 0;
    view.scan(&start, end.as_deref(), false, &mut |_, _, stored| {
        if is_live(stored, now) {
            n += 1;
        }
        true
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_with_and_without_ttl() {
        let v = encode(b"hello", 1000, None);
        assert_eq!(payload(&v), b"hello");
        assert_eq!(updated_at(&v), 1000);
        assert_eq!(expires_at(&v), None);
        assert!(is_live(&v, u64::MAX));
        let t = encode(b"bye", 1000, Some(50));
        assert_eq!(payload(&t), b"bye");
        assert_eq!(expires_at(&t), Some(1050));
        assert!(is_live(&t, 1049));
        assert!(!is_live(&t, 1050));
    }
}
