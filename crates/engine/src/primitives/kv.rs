//! KV semantics: the stored form of a value, TTL, and the read operations
//! written once over [`View`], so that the fast path and transactions share
//! them.
//!
//! Stored form (documented in `docs/format.md`):
//!
//! ```text
//! flags u8 (bit 0: has expiry) | updatedAt ms u64 | [expiresAt ms u64] | encoded value
//! ```

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use in_mem_core::limits::MAX_VALUE_BYTES;
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag, now_ms};
use in_mem_storage::{Store, Value};
use parking_lot::Mutex;

use crate::access::{Db, EngineTx, SecondaryIndex};

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
    let mut head = [0u8; 17];
    head[0] = if ttl_ms.is_some() { HAS_EXPIRY } else { 0 };
    head[1..9].copy_from_slice(&now.to_le_bytes());
    if let Some(ttl) = ttl_ms {
        head[9..17].copy_from_slice(&now.saturating_add(ttl).to_le_bytes());
    }
    // Two memcpys into the one allocation (was a byte-by-byte loop over a
    // chained iterator, a third of a 50 KB put's time).
    in_mem_storage::joined(&[&head[..header], payload])
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

/// A transaction's snapshot as a [`View`].
struct TxView<'a>(&'a mut EngineTx);

impl View for TxView<'_> {
    fn get(&mut self, key: &[u8]) -> Option<(u64, Value)> {
        self.0.read(key)
    }
    fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        self.0.scan(start, end, reverse, f)
    }
}

impl EngineTx {
    pub fn kv_get(&mut self, key: &[u8]) -> Result<Option<(u64, u64, Value)>> {
        check_key(key)?;
        let now = self.now();
        Ok(get_live(&mut TxView(self), key, now).map(|(version, stored)| (version, updated_at(&stored), stored)))
    }

    pub fn kv_put(&mut self, key: &[u8], payload: &[u8], ttl_ms: Option<u64>) -> Result<()> {
        check_key(key)?;
        check_value(payload)?;
        self.write(key, Some(encode(payload, now_ms(), ttl_ms)))
    }

    pub fn kv_delete(&mut self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        let now = self.now();
        let existed = get_live(&mut TxView(self), key, now).is_some();
        if existed {
            self.write(key, None)?;
        }
        Ok(existed)
    }

    pub fn kv_list(&mut self, run: &RunId, opts: &KvListOptions) -> Result<Vec<KvEntry>> {
        let now = self.now();
        list(&mut TxView(self), run, opts, now)
    }

    pub fn kv_count(&mut self, run: &RunId, prefix: Option<&[u8]>) -> Result<u64> {
        let now = self.now();
        Ok(count(&mut TxView(self), run, prefix, now))
    }
}

/// The newest visible data as a [`View`], for the fast path.
struct Live<'a, D: ?Sized>(&'a D);

impl<D: Db + ?Sized> View for Live<'_, D> {
    fn get(&mut self, key: &[u8]) -> Option<(u64, Value)> {
        self.0.get_visible(key)
    }
    fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        let snap = self.0.pin();
        self.0.scan_live(start, end, snap.version(), reverse, f);
    }
}

/// KV operations outside a transaction: each is one snapshot or one commit.
pub trait KvDb: Db {
    /// Reads a KV entry by its internal key; `f` sees (version, updatedAt,
    /// encoded value) while the value is pinned.
    fn kv_get_with<R>(&self, key: &[u8], f: impl FnOnce(u64, u64, &[u8]) -> R) -> Result<Option<R>> {
        self.kv_get_stored(key, |version, updated_at, stored, at| f(version, updated_at, &stored[at..]))
    }

    /// [`KvDb::kv_get_with`], with the stored value itself and where its
    /// encoded value starts in it: `f` runs while the key is locked, and
    /// can keep the value (a reference count) to use after.
    fn kv_get_stored<R>(&self, key: &[u8], f: impl FnOnce(u64, u64, &Value, usize) -> R) -> Result<Option<R>> {
        self.check_open()?;
        check_key_shape(key)?;
        Ok(self
            .with_visible(key, |version, stored| {
                // The clock is read only for entries that can expire.
                let live = expires_at(stored).is_none_or(|e| e > self.now());
                live.then(|| f(version, updated_at(stored), stored, stored.len() - payload(stored).len()))
            })
            .flatten())
    }

    fn kv_put(&self, key: &[u8], payload: &[u8], ttl_ms: Option<u64>) -> Result<u64> {
        check_key(key)?;
        check_value(payload)?;
        let value = encode(payload, self.now(), ttl_ms);
        self.commit_writes(&[(key, Some(value))])
    }

    /// Deletes a KV entry; returns whether a live one was there. Deleting an
    /// absent key writes nothing, but is still refused (like any write) in a
    /// run that is missing or not active, as it is inside a transaction.
    fn kv_delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.check_open()?;
        self.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        let existed = get_live(&mut Live(self), key, self.now()).is_some();
        if existed {
            self.commit_writes(&[(key, None)])?;
        }
        Ok(existed)
    }

    /// Writes several entries of one run in one commit.
    fn kv_put_many(&self, run: &RunId, entries: &[(Vec<u8>, Vec<u8>)], ttl_ms: Option<u64>) -> Result<u64> {
        let now = self.now();
        let mut writes = Vec::with_capacity(entries.len());
        for (user, payload) in entries {
            check_value(payload)?;
            writes.push((key(run, user)?, Some(encode(payload, now, ttl_ms))));
        }
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        writes.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        if writes.is_empty() {
            return Ok(self.version());
        }
        self.commit_writes(&writes)
    }

    /// Calls `each` with the value of every key of `run` in turn, all read
    /// at one snapshot (`None`: absent or expired).
    fn kv_get_many<U: AsRef<[u8]>>(&self, run: &RunId, users: &[U], mut each: impl FnMut(Option<&[u8]>)) -> Result<()> {
        self.check_open()?;
        let keys = users.iter().map(|u| key(run, u.as_ref())).collect::<Result<Vec<_>>>()?;
        let snap = self.pin();
        let now = self.now();
        for k in &keys {
            match self.read(k, snap.version()) {
                Some((_, v)) if is_live(&v, now) => each(Some(payload(&v))),
                _ => each(None),
            }
        }
        Ok(())
    }

    fn kv_list(&self, run: &RunId, opts: &KvListOptions) -> Result<Vec<KvEntry>> {
        self.check_open()?;
        list(&mut Live(self), run, opts, self.now())
    }

    fn kv_count(&self, run: &RunId, prefix: Option<&[u8]>) -> Result<u64> {
        self.check_open()?;
        Ok(count(&mut Live(self), run, prefix, self.now()))
    }
}

impl<D: Db + ?Sized> KvDb for D {}

/// An expiring KV entry: (expiresAt, key, version that set it).
type TtlEntry = (u64, Box<[u8]>, u64);

/// Expiring KV entries. An expired
/// key is already invisible to live reads (they compare its expiry with the
/// clock); its versions stay in the run's history, like every other write
/// of run data, so a replay of a point before the expiry still shows it.
/// Maintenance retires entries from this index as they expire, and counts
/// them (`stats().maintenance.expired`).
///
/// A run that goes cold takes its entries with it, and a run loaded back
/// brings them again (from its keys' newest versions): those that had
/// expired and been retired before it left are dropped at once, uncounted,
/// so that no expiry is counted twice.
#[derive(Default)]
pub(crate) struct TtlIndex {
    entries: Mutex<BTreeSet<TtlEntry>>,
    /// The `now` of the newest round: every entry expiring at or before it
    /// has been retired and counted.
    retired_until: AtomicU64,
    /// Cold runs: the `retired_until` of when they left memory.
    counted: Mutex<HashMap<[u8; 16], u64>>,
}

impl SecondaryIndex for TtlIndex {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn on_write(&self, _store: &Store, key: &[u8], value: Option<&[u8]>, version: u64, _oldest_needed: u64) {
        if InternalKey::tag(key) == Some(TypeTag::Kv)
            && let Some(expires) = value.and_then(expires_at)
        {
            self.entries.lock().insert((expires, key.into(), version));
        }
    }

    fn check_recovered(&self, key: &[u8], value: Option<&[u8]>) -> std::result::Result<(), &'static str> {
        match value {
            Some(v) if InternalKey::tag(key) == Some(TypeTag::Kv) && !is_stored_shape(v) => Err("KV value shorter than its stored header"),
            _ => Ok(()),
        }
    }

    fn evict_run(&self, run: &RunId) {
        let mut entries = self.entries.lock();
        entries.retain(|(_, key, _)| key[..16] != *run.as_bytes());
        // (Called again for one departure, it keeps the first mark: what
        // expired since was not retired, having left with the run.)
        self.counted.lock().entry(*run.as_bytes()).or_insert(self.retired_until.load(Ordering::Acquire));
    }

    fn warmed(&self, run: &RunId, _version: u64) {
        let Some(until) = self.counted.lock().remove(run.as_bytes()) else { return };
        let mut entries = self.entries.lock();
        let counted: Vec<TtlEntry> = entries.iter().take_while(|(e, _, _)| *e <= until).filter(|(_, key, _)| key[..16] == *run.as_bytes()).cloned().collect();
        for entry in &counted {
            entries.remove(entry);
        }
    }

    fn maintain(&self, now: u64) -> usize {
        let mut entries = self.entries.lock();
        let mut retired = 0;
        while let Some(first) = entries.first() {
            if first.0 > now {
                break;
            }
            entries.pop_first();
            retired += 1;
        }
        self.retired_until.fetch_max(now, Ordering::AcqRel);
        retired
    }
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

    /// A run that left memory and came back brings its expiring keys back;
    /// those already retired (counted) before it left are not counted again.
    #[test]
    fn an_expiry_is_counted_once_across_a_cold_run() {
        let store = Store::new();
        let ttl = TtlIndex::default();
        let (run, other) = (RunId::new(), RunId::new());
        let key = |run: &RunId, k: &str| InternalKey::build(run, TypeTag::Kv, k.as_bytes());
        let write = |k: &[u8], expires: u64| ttl.on_write(&store, k, Some(&encode(b"v", expires - 10, Some(10))), 1, 0);
        write(&key(&run, "early"), 100);
        write(&key(&run, "late"), 300);
        write(&key(&other, "early"), 100);
        assert_eq!(ttl.maintain(150), 2, "both early keys");
        ttl.evict_run(&run);
        ttl.evict_run(&run); // a second call for the same departure changes nothing
        assert_eq!(ttl.maintain(200), 0);
        // loaded back: its keys' newest versions, as the cold file held them
        write(&key(&run, "early"), 100);
        write(&key(&run, "late"), 300);
        ttl.warmed(&run, 1);
        assert_eq!(ttl.maintain(250), 0, "early was counted before the run left");
        assert_eq!(ttl.maintain(400), 1, "late expired after: counted once, now");
        // cold from a manifest at open (no round yet): every expired entry counts once in this process
        let fresh = TtlIndex::default();
        fresh.evict_run(&run);
        fresh.on_write(&store, &key(&run, "early"), Some(&encode(b"v", 90, Some(10))), 1, 0);
        fresh.warmed(&run, 1);
        assert_eq!(fresh.maintain(150), 1);
    }
}
