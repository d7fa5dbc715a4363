//! The versioned store: one version chain per key, reachable two ways — a
//! skip list in key order for scans, and a hash index for point reads and
//! writes (one or two cache misses instead of one per skip-list level).
//!
//! Layout: a key's bytes and its chain live in one allocation (an
//! [`Entry`]: a thin pointer to a reference count, the key's length, the
//! chain and the key's bytes), and each index holds that one pointer — no
//! separate key allocation, no key-and-chain pair per index slot (the
//! bytes of a resident key: docs/format.md, "Versions in memory").
//!
//! Invariants:
//! - Both indexes hold the same keys and the same [`Entry`] per key. A key
//!   goes into both before the version that needs it is published: by a
//!   committer about to take the commit lock ([`Store::prepare`], with no
//!   version yet, which every reader takes as absent), or under it by the
//!   apply; a key is added and taken out under `indexing` (shared to add,
//!   exclusive to take out), so no thread but the one at work sees it in
//!   one index and not the other. A key a failed commit prepared goes again
//!   ([`Store::discard_prepared`]); a read that finds a key with no version
//!   while runs are cold loads its run as for a miss. The apply writes to
//!   the entry `prepare` gave unless the key was taken out meanwhile (its
//!   chain is then marked dead, and the apply adds the key again).
//! - Each chain is ordered by version, oldest first; versions are unique.
//! - `apply` is called by one committer at a time, with versions rising.
//! - Pruning keeps, for every reader at a snapshot `>= oldest_needed`, the
//!   version it would see: everything older than the newest version
//!   `<= oldest_needed` is dropped — but for the newest `keep` versions
//!   ([`Store::apply_keeping`]; [`Store::apply`] keeps one), and the caller
//!   is told from which version on the key's history is still whole.
//! - [`Store::memory`] counts what the chains hold, kept up to date by every
//!   change to a chain.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crossbeam_skiplist::SkipSet;
use dashmap::DashSet;
use smallvec::SmallVec;

use crate::SnapshotTracker;
use crate::packed::{Builder, Packed};

/// A stored value: immutable bytes shared between the store and readers, in
/// one allocation with a single reference count (`triomphe`: no weak count,
/// so a 100-byte value's allocation is 8 + 102 bytes, not 16 + 102 — one
/// size class smaller, 16 bytes a resident key; docs/format.md, "Versions
/// in memory").
pub type Value = triomphe::Arc<[u8]>;

/// `bytes` as a stored value (one allocation, one copy).
pub fn value(bytes: impl AsRef<[u8]>) -> Value {
    Value::from(bytes.as_ref())
}

/// One version of a key: 24 bytes, as when every version was whole — a
/// back delta is told by the top bit of `version`, and its `prefix`,
/// `suffix` and middle bytes are the bytes of `value`.
pub(crate) struct Version {
    pub(crate) version: u64,
    /// `None` is a tombstone.
    pub(crate) value: Option<Value>,
}

/// The top bit of [`Version::version`]: the version is held as a back delta.
const BACK: u64 = 1 << 63;
/// The next bit, on a chain's oldest version only: the key has older
/// versions in history files ([`DiskHistory`]).
const ON_DISK: u64 = 1 << 62;

// Every key pays for its versions: a back delta must not make them larger.
const _: () = assert!(std::mem::size_of::<Version>() == 24);

/// How a version's bytes are held.
enum Held<'a> {
    /// Whole; `None` is a tombstone. A chain's newest version is always whole.
    Whole(&'a Option<Value>),
    /// The next newer version's bytes with `[prefix, len - suffix)` replaced
    /// by `middle`: an older version of a large value that differs from the
    /// one after it in a short stretch (a document edited at one path) costs
    /// what differs, not a copy (see [`Store::with_back_deltas_from`]).
    Back { prefix: usize, suffix: usize, middle: &'a [u8] },
}

impl Version {
    fn whole(version: u64, value: Option<Value>) -> Version {
        Version { version, value }
    }
    fn back(version: u64, prefix: usize, suffix: usize, middle: &[u8]) -> Version {
        let value = joined(&[&(prefix as u32).to_le_bytes(), &(suffix as u32).to_le_bytes(), middle]);
        Version { version: version | BACK, value: Some(value) }
    }
    fn version(&self) -> u64 {
        self.version & !(BACK | ON_DISK)
    }
    fn on_disk(&self) -> bool {
        self.version & ON_DISK != 0
    }
    fn is_back(&self) -> bool {
        self.version & BACK != 0
    }
    fn held(&self) -> Held<'_> {
        if !self.is_back() {
            return Held::Whole(&self.value);
        }
        let b = self.value.as_deref().expect("a back delta has bytes");
        let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize;
        Held::Back { prefix: word(0), suffix: word(4), middle: &b[8..] }
    }
    /// The bytes this holds in memory.
    fn held_len(&self) -> i64 {
        len_of(&self.value)
    }
}

/// When a packing pass is due ([`Store::pack`], called by the maintenance
/// thread every round), in keys gathered in the indexes since the last pass
/// (beyond those it left there): while keys come in slowly (fewer than a
/// sixteenth of this many since the last call), once a sixteenth of this
/// many have gathered, or an eighth of the arena's live keys if more; while
/// they come in fast, once sixteen times this many have, or as many as the
/// arena holds if more (a pass takes a core and holds new keys up in
/// slices: writers in full flow are left alone until memory is worth it).
/// The bounds that grow with the arena keep the copies of a key into new
/// arenas few. And once the arena holds this many dead keys, or a quarter
/// of its live ones if more.
pub const PACK_MIN: usize = 65_536;

/// Values from this size on keep their older versions as [`Held::Back`].
pub const BACK_DELTAS_FROM: usize = 4096;
/// At most this many back deltas in a row: reading an old version applies
/// at most this many.
const BACK_RUN: usize = 32;

/// The value of version `i` of a chain (`None`: a tombstone), applying the
/// back deltas between it and the nearest whole version after it.
fn value_at(versions: &[Version], i: usize) -> Option<Value> {
    let whole = (i..versions.len()).find(|&j| !versions[j].is_back()).expect("a chain's newest version is whole");
    let Held::Whole(v) = versions[whole].held() else { unreachable!() };
    if whole == i {
        return v.clone();
    }
    let mut cur: Value = v.clone().expect("a back delta's newer version is a value");
    for k in (i..whole).rev() {
        let Held::Back { prefix, suffix, middle } = versions[k].held() else { unreachable!() };
        cur = splice(&cur, prefix, suffix, middle);
    }
    Some(cur)
}

/// Fills `buf` with the versions of `entry` in memory at or below
/// `snapshot`, oldest first, values whole; returns whether the key has
/// older versions on disk.
fn resident_history(entry: &Entry, snapshot: u64, buf: &mut Vec<(u64, Option<Value>)>) -> bool {
    buf.clear();
    let versions = entry.chain().lock();
    let n = versions.iter().rposition(|v| v.version() <= snapshot).map_or(0, |i| i + 1);
    // Newest first, so each back delta applies to the value just made.
    let mut next: Option<Value> = None;
    for i in (0..versions.len()).rev() {
        let value = match versions[i].held() {
            Held::Whole(v) => v.clone(),
            Held::Back { prefix, suffix, middle } => {
                let newer = next.as_deref().expect("a back delta's newer version is a value");
                Some(splice(newer, prefix, suffix, middle))
            }
        };
        if i < n {
            buf.push((versions[i].version(), value.clone()));
        }
        next = value;
    }
    let on_disk = versions.first().is_some_and(|v| v.on_disk());
    drop(versions);
    buf.reverse();
    on_disk
}

/// `base` with `[prefix, len - suffix)` replaced by `middle`: what a delta
/// (a back delta here, a WAL delta in the engine) stands for.
pub fn splice(base: &[u8], prefix: usize, suffix: usize, middle: &[u8]) -> Value {
    joined(&[&base[..prefix], middle, &base[base.len() - suffix..]])
}

/// `pieces` one after another, in one allocation of the stored value's
/// type (a `Vec` turned into an `Arc<[u8]>` would be copied once more: a
/// second 100 KB `memcpy` for each change to a 100 KB document).
pub fn joined(pieces: &[&[u8]]) -> Value {
    let len = pieces.iter().map(|p| p.len()).sum();
    let mut out = triomphe::Arc::<[std::mem::MaybeUninit<u8>]>::new_uninit_slice(len);
    let dst = triomphe::Arc::get_mut(&mut out).expect("a new Arc has no other owner");
    let mut at = 0;
    for p in pieces {
        // SAFETY: `dst` has room for every piece (its length is their sum),
        // and a piece cannot overlap the new allocation.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), dst.as_mut_ptr().add(at).cast::<u8>(), p.len()) };
        at += p.len();
    }
    debug_assert_eq!(at, len);
    // SAFETY: every byte was written above.
    unsafe { out.assume_init() }
}

/// How many leading and trailing bytes `a` and `b` share, the two not
/// overlapping in either: compared 4 KiB at a time, then 64 bytes, then byte
/// by byte (one `memcmp` per 4 KiB: a 100 KB document edited at one path is
/// compared in ~25 calls, not ~1,600).
pub fn shared_ends(a: &[u8], b: &[u8]) -> (usize, usize) {
    let most = a.len().min(b.len());
    let (x, y) = (&a[..most], &b[..most]);
    let mut p = 0;
    for step in [4096, 64] {
        while p + step <= most && x[p..p + step] == y[p..p + step] {
            p += step;
        }
    }
    p += x[p..].iter().zip(&y[p..]).take_while(|(u, v)| u == v).count();
    let rest = most - p;
    let (x, y) = (&a[a.len() - rest..], &b[b.len() - rest..]);
    let mut s = 0;
    for step in [4096, 64] {
        while s + step <= rest && x[rest - s - step..rest - s] == y[rest - s - step..rest - s] {
            s += step;
        }
    }
    s += x[..rest - s].iter().rev().zip(y[..rest - s].iter().rev()).take_while(|(u, v)| u == v).count();
    (p, s)
}

/// Whether `a` and `b` share `prefix` leading and `suffix` trailing bytes,
/// the two not overlapping in either: ends a delta may be built on (not
/// necessarily the longest, [`shared_ends`]).
pub fn ends_hold(a: &[u8], b: &[u8], prefix: usize, suffix: usize) -> bool {
    prefix + suffix <= a.len().min(b.len()) && a[..prefix] == b[..prefix] && a[a.len() - suffix..] == b[b.len() - suffix..]
}

/// A key's versions behind a lock, and when a reader last read it — in 40
/// bytes, as the versions and a `Mutex` alone took: the read time sits in
/// the lock's padding (a `Mutex` of the versions and a separate atomic cost
/// every resident key 16 bytes more, measured with `bench/memory.mjs`).
struct Chain {
    raw: parking_lot::RawMutex,
    /// Set when the key is taken out of the indexes: a committer holding
    /// the entry from before ([`Store::prepare`]) adds the key again.
    dead: std::sync::atomic::AtomicBool,
    /// When a reader last read the key, in tenths of a second after the
    /// store's clock epoch ([`Store::set_clock`]; 0: never): what says
    /// whether an ended run is still read (cold runs).
    read_at: std::sync::atomic::AtomicU32,
    versions: std::cell::UnsafeCell<SmallVec<[Version; 1]>>,
}

// SAFETY: `versions` is only reached through `Chain::lock`, which holds
// `raw` for as long as the guard lives.
unsafe impl Sync for Chain {}
unsafe impl Send for Chain {}

impl Default for Chain {
    fn default() -> Chain {
        use parking_lot::lock_api::RawMutex as _;
        Chain { raw: parking_lot::RawMutex::INIT, dead: Default::default(), read_at: Default::default(), versions: Default::default() }
    }
}

/// The versions of a [`Chain`], locked.
struct ChainGuard<'a>(&'a Chain);

impl std::ops::Deref for ChainGuard<'_> {
    type Target = SmallVec<[Version; 1]>;
    fn deref(&self) -> &Self::Target {
        // SAFETY: the guard holds the chain's lock.
        unsafe { &*self.0.versions.get() }
    }
}

impl std::ops::DerefMut for ChainGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        // SAFETY: the guard holds the chain's lock, so no other reference exists.
        unsafe { &mut *self.0.versions.get() }
    }
}

impl Drop for ChainGuard<'_> {
    fn drop(&mut self) {
        use parking_lot::lock_api::RawMutex as _;
        // SAFETY: this guard locked it.
        unsafe { self.0.raw.unlock() }
    }
}

const _: () = assert!(std::mem::size_of::<Chain>() == 40);

impl Chain {
    fn lock(&self) -> ChainGuard<'_> {
        use parking_lot::lock_api::RawMutex as _;
        self.raw.lock();
        ChainGuard(self)
    }

    /// The newest version at or below `snapshot` held in memory, or
    /// `Err(true)` when there is none here but older versions are on disk.
    fn read(&self, snapshot: u64) -> Result<(u64, Option<Value>), bool> {
        let versions = self.lock();
        match versions.iter().rposition(|v| v.version() <= snapshot) {
            Some(i) => Ok((versions[i].version(), value_at(&versions, i))),
            None => Err(versions.first().is_some_and(|v| v.on_disk())),
        }
    }
}

/// Where a durable database keeps the versions its checkpoints moved out of
/// memory (the engine's history files). The store asks it only for a key
/// whose oldest version in memory is marked [`ON_DISK`], and only for what
/// is older than every version of the key still in memory.
pub trait DiskHistory: Send + Sync {
    /// The newest version of `key` at or below `snapshot` on disk (`None`
    /// as the value: a delete).
    fn read(&self, key: &[u8], snapshot: u64) -> Option<(u64, Option<Value>)>;
    /// Every version of `key` at or below `snapshot` on disk, oldest first.
    fn versions(&self, key: &[u8], snapshot: u64, f: &mut dyn FnMut(u64, Option<Value>));
}

/// Runs whose data a checkpoint moved out of memory (the engine's cold
/// runs, SPEC §17). The store asks for a run to be loaded back when a read
/// misses a key of it, or a scan starts in its keys; the run is read-only
/// (it has ended), so what a reader found before it left memory is what it
/// finds after it comes back.
pub trait ColdData: Send + Sync {
    /// Loads run `run` (its 16 id bytes) back into `store` if it is cold;
    /// returns whether it was (the caller reads again).
    fn warm(&self, store: &Store, run: &[u8]) -> bool;
}

/// A key and its chain, in one allocation: what both indexes hold (a thin
/// pointer each), ordered, hashed and compared as the key's bytes (so both
/// indexes are searched with a `&[u8]`).
///
/// The allocation is an [`EntryHead`] (a 4-byte reference count, the key's
/// 4-byte length, the chain) with the key's bytes after it: 48 bytes and
/// the key. Not `triomphe::ThinArc<Chain, u8>`, which it was: that keeps an
/// 8-byte count and an 8-byte length, 16 bytes more, which put a KV key of
/// up to 15 bytes (a 32-byte internal key) in mimalloc's 96-byte size class
/// instead of its 80-byte one — 16 bytes of every such resident key
/// (docs/format.md, "Versions in memory").
pub struct Entry(std::ptr::NonNull<EntryHead>);

/// The head of an [`Entry`]'s allocation; the key's bytes follow it.
#[repr(C)]
struct EntryHead {
    count: std::sync::atomic::AtomicU32,
    len: u32,
    chain: Chain,
}

const _: () = assert!(std::mem::size_of::<EntryHead>() == 48);

// SAFETY: an entry is shared, immutable but for its chain, whose versions
// are reached only under its lock (`Chain` is `Send + Sync`), and its count,
// which is atomic.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

impl Entry {
    /// The layout of an entry whose key is `len` bytes.
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(std::mem::size_of::<EntryHead>() + len, std::mem::align_of::<EntryHead>())
            .expect("a key's length is bounded by MAX_KEY_BYTES")
    }

    fn new(key: &[u8]) -> Entry {
        let len = u32::try_from(key.len()).expect("a key's length is bounded by MAX_KEY_BYTES");
        let layout = Entry::layout(key.len());
        // SAFETY: the layout's size is at least that of `EntryHead`, not zero.
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<EntryHead>();
        let Some(head) = std::ptr::NonNull::new(raw) else { std::alloc::handle_alloc_error(layout) };
        // SAFETY: the allocation is `EntryHead` followed by room for `len`
        // bytes; both are written before the entry is used.
        unsafe {
            head.as_ptr().write(EntryHead { count: std::sync::atomic::AtomicU32::new(1), len, chain: Chain::default() });
            std::ptr::copy_nonoverlapping(key.as_ptr(), head.as_ptr().add(1).cast::<u8>(), key.len());
        }
        Entry(head)
    }

    fn head(&self) -> &EntryHead {
        // SAFETY: the allocation lives as long as any entry pointing at it.
        unsafe { self.0.as_ref() }
    }

    fn chain(&self) -> &Chain {
        &self.head().chain
    }

    /// An entry, in neither index, holding the one version of the packed
    /// arena's key `i` (what a range yields for it).
    fn standing_for(p: &Packed, i: usize) -> Entry {
        let e = Entry::new(p.key(i));
        e.chain().lock().push(p.version(i));
        e.chain().read_at.store(p.read_at(i), Ordering::Relaxed);
        e
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        // As `Arc::clone`: relaxed, a new reference is made from an
        // existing one; a count near overflow (only a leak could get there)
        // aborts rather than wrapping to a use after free.
        if self.head().count.fetch_add(1, Ordering::Relaxed) > u32::MAX / 2 {
            std::process::abort();
        }
        Entry(self.0)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.head().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // As `Arc`'s drop: every other owner's use happens before the free.
        std::sync::atomic::fence(Ordering::Acquire);
        let layout = Entry::layout(self.head().len as usize);
        // SAFETY: this was the last reference: nothing else reaches the
        // allocation, which `Entry::new` made with this layout.
        unsafe {
            std::ptr::drop_in_place(&raw mut (*self.0.as_ptr()).chain);
            std::alloc::dealloc(self.0.as_ptr().cast::<u8>(), layout);
        }
    }
}

impl std::ops::Deref for Entry {
    type Target = [u8];
    /// The key's bytes.
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes of key follow the head, written by `Entry::new`
        // and never changed.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(1).cast::<u8>(), self.head().len as usize) }
    }
}

impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for Entry {
    /// As the key's bytes hash: the hash index is searched with a `&[u8]`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

/// The keys of `[start, end)`, in key order or reverse ([`Store::range`]):
/// the ordered index's entries merged with the packed arena's live keys
/// (each as a stand-alone [`Entry`] holding its one version; a key in both,
/// for the moment it moves, is the index's).
///
/// The skip list is stepped with `Entry::next`/`prev`, not crossbeam-
/// skiplist's own `range`: in 0.1.3 its iterator replaces the entry it
/// holds without releasing it, leaking a reference to every node it passes
/// (crossbeam-rs/crossbeam#1178, tikv/tikv#19285), so a key removed after a
/// scan passed it (a deleted run, a cold run) never freed its memory.
///
/// Each step looks at the arena before the skip list, and finds the skip
/// list's next entry then, not when it yielded the one before: a key moving
/// out of the arena goes into the indexes before it is marked dead there,
/// so a step that finds it dead finds it in the skip list. (A key moving
/// into the arena does so only while no range that reads the arena is
/// under way: such a range holds `Store::residency`, which a packing pass
/// takes exclusively.)
struct KeyRange<'a> {
    set: &'a SkipSet<Entry>,
    /// The skip-list entry yielded last.
    node: Option<crossbeam_skiplist::set::Entry<'a, Entry>>,
    /// The key yielded last, from either side.
    last: Option<Entry>,
    packed: Option<Arc<Packed>>,
    /// The arena's next key to look at: forward, its index; in reverse, one
    /// past it.
    at: usize,
    /// Stamps the arena's keys it yields as read at this time (0: not).
    stamp: u32,
    start: std::borrow::Cow<'a, [u8]>,
    end: Option<std::borrow::Cow<'a, [u8]>>,
    reverse: bool,
    hold: Option<Hold<'a>>,
}

impl<'a> KeyRange<'a> {
    fn new(set: &'a SkipSet<Entry>, start: std::borrow::Cow<'a, [u8]>, end: Option<std::borrow::Cow<'a, [u8]>>, reverse: bool) -> KeyRange<'a> {
        KeyRange { set, node: None, last: None, packed: None, at: 0, stamp: 0, start, end, reverse, hold: None }
    }

    /// The same range with the packed arena's keys too (`stamp`: see the field).
    fn with_packed(mut self, packed: Option<Arc<Packed>>, stamp: u32, hold: Hold<'a>) -> KeyRange<'a> {
        if let Some(p) = &packed {
            self.at = if self.reverse { self.end.as_deref().map_or(p.len(), |e| p.lower_bound(e)) } else { p.lower_bound(&self.start) };
        }
        self.packed = packed;
        self.stamp = stamp;
        self.hold = Some(hold);
        self
    }

    /// The same range, from its other end (before it is read).
    fn rev(self) -> KeyRange<'a> {
        let fresh = KeyRange::new(self.set, self.start, self.end, !self.reverse);
        match self.hold {
            Some(hold) => fresh.with_packed(self.packed, self.stamp, hold),
            None => fresh,
        }
    }

    fn inside(&self, key: &[u8]) -> bool {
        if self.reverse { key >= &*self.start } else { self.end.as_deref().is_none_or(|end| key < end) }
    }

    /// The arena's next live key in the range.
    fn next_packed(&mut self) -> Option<usize> {
        let p = self.packed.as_ref()?;
        loop {
            let i = if self.reverse { self.at.checked_sub(1)? } else { self.at };
            if i >= p.len() || !self.inside(p.key(i)) {
                return None;
            }
            if p.is_live(i) {
                return Some(i);
            }
            self.at = if self.reverse { i } else { i + 1 };
        }
    }

    /// The skip list's next entry in the range, past the key yielded last.
    fn next_node(&self) -> Option<crossbeam_skiplist::set::Entry<'a, Entry>> {
        let step = |e: &crossbeam_skiplist::set::Entry<'a, Entry>| if self.reverse { e.prev() } else { e.next() };
        let mut n = match &self.node {
            Some(e) => step(e),
            None => match &self.last {
                Some(k) => {
                    if self.reverse {
                        self.set.upper_bound(Bound::Excluded(&k[..]))
                    } else {
                        self.set.lower_bound(Bound::Excluded(&k[..]))
                    }
                }
                None if self.reverse => self.set.upper_bound(self.end.as_deref().map_or(Bound::Unbounded, Bound::Excluded)),
                None => self.set.lower_bound(Bound::Included(&*self.start)),
            },
        };
        // Past the key the arena gave last (a key added behind it since is
        // not this range's to see).
        if let Some(k) = &self.last {
            while let Some(e) = &n {
                let behind = if self.reverse { **e.value() >= **k } else { **e.value() <= **k };
                if !behind {
                    break;
                }
                n = step(e);
            }
        }
        n.filter(|e| self.inside(e.value()))
    }
}

impl<'a> Iterator for KeyRange<'a> {
    type Item = Entry;
    fn next(&mut self) -> Option<Entry> {
        let a = self.next_packed();
        let n = self.next_node();
        let from_index = match (a, &n) {
            (None, None) => return None,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(i), Some(e)) => {
                let p = self.packed.as_ref().expect("a packed key came from the arena");
                match p.key(i).cmp(&e.value()[..]) {
                    std::cmp::Ordering::Equal => {
                        // Moving: the index's entry is the key's.
                        self.at = if self.reverse { i } else { i + 1 };
                        true
                    }
                    std::cmp::Ordering::Less => self.reverse,
                    std::cmp::Ordering::Greater => !self.reverse,
                }
            }
        };
        let entry = if from_index {
            let n = n.expect("chosen");
            let entry = n.value().clone();
            self.node = Some(n);
            entry
        } else {
            let i = a.expect("chosen");
            let p = self.packed.as_ref().expect("a packed key came from the arena");
            self.at = if self.reverse { i } else { i + 1 };
            if self.stamp != 0 {
                p.touch(i, self.stamp);
            }
            Entry::standing_for(p, i)
        };
        self.last = Some(entry.clone());
        Some(entry)
    }
}

/// An iterator over entries that holds the run it reads in memory while it
/// lives (see `Store::resident`).
struct Resident<'a, I> {
    entries: I,
    _whole: Hold<'a>,
}

/// A shared hold on `Store::residency`, taken recursively: a reader may
/// hold one already (a scan inside a scan, a load inside a scan), and the
/// commit path takes one while it holds other locks, so a hold never waits
/// behind an eviction that is only waiting for its turn (an eviction may
/// wait long under constant scans; it then holds nothing else).
struct Hold<'a>(#[allow(dead_code)] parking_lot::RwLockReadGuard<'a, ()>);

impl<'a> Hold<'a> {
    fn new(lock: &'a parking_lot::RwLock<()>) -> Hold<'a> {
        Hold(lock.read_recursive())
    }
}

impl<I: Iterator> Iterator for Resident<'_, I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.entries.next()
    }
}

/// What transactions read from: the store itself, or a view over it that
/// adds meaning (the engine's forks read through to their parent run).
pub trait Source {
    /// The value of `key` at `snapshot`, with the version that wrote it.
    fn read(&self, key: &[u8], snapshot: u64) -> Option<(u64, Value)>;
    /// The live entries of `[start, end)` at `snapshot`, in key order (or
    /// reverse), until `f` returns false.
    fn scan_live(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool);
    /// Whether the newest value [`Source::read`] gives for `key` is one the
    /// store holds under `key` itself (not one read through elsewhere, as a
    /// fork reads its parent's data).
    fn holds_own(&self, _key: &[u8]) -> bool {
        true
    }
}

impl Source for Store {
    fn read(&self, key: &[u8], snapshot: u64) -> Option<(u64, Value)> {
        self.get(key, snapshot)
    }
    fn scan_live(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        self.scan(start, end, snapshot, reverse, f)
    }
}

/// Where a point read found a key.
enum Look<'a> {
    Index(dashmap::setref::one::Ref<'a, Entry>),
    /// In the packed arena: its one version (a value, held whole).
    Packed(Version),
}

pub struct Store {
    /// Older versions of values from this size on are held as back deltas
    /// where that saves half (0: never).
    back_deltas_from: usize,
    ordered: SkipSet<Entry>,
    points: DashSet<Entry, foldhash::fast::RandomState>,
    /// Versions moved out of memory (see [`Store::spill`]).
    disk: parking_lot::RwLock<Option<Arc<dyn DiskHistory>>>,
    /// Runs moved out of memory, and how many there are (0: reads skip
    /// asking).
    cold: parking_lot::RwLock<Option<Arc<dyn ColdData>>>,
    cold_runs: std::sync::atomic::AtomicUsize,
    /// Counts the changes to which runs are cold ([`Store::set_cold_runs`]):
    /// a reader that missed a key while none was cold, and none changed
    /// since, knows it absent without taking a hold.
    cold_epoch: std::sync::atomic::AtomicU64,
    /// The time reads stamp on the keys they read ([`Store::set_clock`]),
    /// and the ms it counts from.
    clock: std::sync::atomic::AtomicU32,
    clock_epoch: std::sync::atomic::AtomicU64,
    /// Held (shared) by every scan from its start to its end, and
    /// (exclusive) while a run's keys leave memory ([`Store::evict`]): a
    /// scan sees a run whole or, once it is cold, loads it back first.
    residency: parking_lot::RwLock<()>,
    /// Held (shared) while a key is added to both indexes, (exclusive)
    /// while one is taken out of both: a key is in both or in neither for
    /// everyone but the thread adding or removing it, though keys are added
    /// outside the commit lock ([`Store::prepare`]) and taken out under it
    /// or by an eviction.
    indexing: parking_lot::RwLock<()>,
    /// Keys that hold one version and are not being written, out of both
    /// indexes (see the `packed` module): null until a [`Store::pack`]
    /// pass made one. Replaced whole by the next pass, under `residency`
    /// and `indexing` held exclusively; freed once no reader is pinned.
    packed: crossbeam_epoch::Atomic<Arc<Packed>>,
    /// Whether a pass ever made an arena (until then reads do not pin an
    /// epoch to look there).
    packed_any: AtomicBool,
    /// One [`Store::pack`] pass at a time; the keys the indexes held after
    /// the last one (those it could not move), and how many more make the
    /// next one due.
    packing: parking_lot::Mutex<()>,
    pack_floor: std::sync::atomic::AtomicUsize,
    pack_min: std::sync::atomic::AtomicUsize,
    /// The indexes' key count at the last [`Store::pack`] call.
    pack_seen: std::sync::atomic::AtomicUsize,
    /// Keys, and the bytes of their keys and newest versions.
    live_keys: AtomicI64,
    live_bytes: AtomicI64,
    /// Versions older than a key's newest (tombstones included), and their bytes.
    history_versions: AtomicI64,
    history_bytes: AtomicI64,
}

/// What the store holds in memory (see [`Store::memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Keys in the store, each with its newest version.
    pub keys: u64,
    /// The bytes of those keys and their newest values.
    pub live_bytes: u64,
    /// Older versions kept (for snapshots, replay, fork and diff).
    pub history_versions: u64,
    /// Their value bytes.
    pub history_bytes: u64,
    /// Of `keys`, those in the packed arena: one version each, out of both
    /// indexes ([`Store::pack`]).
    pub packed_keys: u64,
}

fn len_of(value: &Option<Value>) -> i64 {
    value.as_ref().map_or(0, |v| v.len() as i64)
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader is pinned on this store's arena.
        unsafe {
            let arena = self.packed.swap(crossbeam_epoch::Shared::null(), Ordering::AcqRel, crossbeam_epoch::unprotected());
            if !arena.is_null() {
                drop(arena.into_owned());
            }
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::with_back_deltas_from(BACK_DELTAS_FROM)
    }
}

impl Store {
    pub fn new() -> Self {
        Store::default()
    }

    /// A store that holds an older version of a value of `n` bytes or more
    /// as a back delta over the version after it, when they share at least
    /// half of its bytes (0: always whole).
    pub fn with_back_deltas_from(n: usize) -> Self {
        Store {
            back_deltas_from: n,
            ordered: SkipSet::new(),
            points: DashSet::default(),
            disk: parking_lot::RwLock::new(None),
            cold: parking_lot::RwLock::new(None),
            cold_runs: std::sync::atomic::AtomicUsize::new(0),
            cold_epoch: std::sync::atomic::AtomicU64::new(0),
            clock: std::sync::atomic::AtomicU32::new(0),
            clock_epoch: std::sync::atomic::AtomicU64::new(0),
            residency: parking_lot::RwLock::new(()),
            indexing: parking_lot::RwLock::new(()),
            packed: crossbeam_epoch::Atomic::null(),
            packed_any: AtomicBool::new(false),
            packing: parking_lot::Mutex::new(()),
            pack_floor: std::sync::atomic::AtomicUsize::new(0),
            pack_min: std::sync::atomic::AtomicUsize::new(PACK_MIN),
            pack_seen: std::sync::atomic::AtomicUsize::new(0),
            live_keys: AtomicI64::new(0),
            live_bytes: AtomicI64::new(0),
            history_versions: AtomicI64::new(0),
            history_bytes: AtomicI64::new(0),
        }
    }

    /// The value of `key` at `snapshot`, with the version that wrote it.
    /// `snapshot` must be registered with the tracker, or be one no commit
    /// can prune past (see [`Store::get_visible`]).
    pub fn get(&self, key: &[u8], snapshot: u64) -> Option<(u64, Value)> {
        match self.read_any(key, snapshot)? {
            (v, Some(value)) => Some((v, value)),
            (_, None) => None,
        }
    }

    /// The value of `key` at the newest version `tracker` makes visible, for
    /// a reader that holds no registered snapshot (the fast path). The
    /// version is read with the chain locked: read before, a commit could
    /// prune the version it selects in between (pruning keeps only what
    /// registered readers and the visible version need), and a key that
    /// exists would read as absent.
    pub fn get_visible(&self, key: &[u8], tracker: &SnapshotTracker) -> Option<(u64, Value)> {
        let entry = match self.entry(key)? {
            Look::Index(e) => e,
            Look::Packed(v) => return (v.version() <= tracker.visible()).then(|| (v.version(), v.value.expect("a packed key holds a value"))),
        };
        self.touch(&entry);
        let versions = entry.chain().lock();
        let snapshot = tracker.visible();
        let i = versions.iter().rposition(|v| v.version() <= snapshot)?;
        value_at(&versions, i).map(|value| (versions[i].version(), value))
    }

    /// Calls `f` with the value of `key` at the newest visible version while
    /// it is pinned, without cloning it; the version is chosen as in
    /// [`Store::get_visible`].
    pub fn with_visible<R>(&self, key: &[u8], tracker: &SnapshotTracker, f: impl FnOnce(u64, &Value) -> R) -> Option<R> {
        let entry = match self.entry(key)? {
            Look::Index(e) => e,
            Look::Packed(v) => return (v.version() <= tracker.visible()).then(|| f(v.version(), v.value.as_ref().expect("a packed key holds a value"))),
        };
        self.touch(&entry);
        let versions = entry.chain().lock();
        let snapshot = tracker.visible();
        let i = versions.iter().rposition(|v| v.version() <= snapshot)?;
        match versions[i].held() {
            Held::Whole(v) => v.as_ref().map(|value| f(versions[i].version(), value)),
            Held::Back { .. } => value_at(&versions, i).map(|value| f(versions[i].version(), &value)),
        }
    }

    /// For a write of `key` about to be committed: adds the key to both
    /// indexes now if it is new (with no version yet, which every reader
    /// takes as absent), so that the committer's apply under the commit
    /// lock finds it and inserts nothing — the hash and skip-list inserts
    /// (most of a new key's apply: ~0.8 of 1.2 µs under the lock, measured)
    /// run beside other committers instead of one at a time. The entry goes
    /// to the apply ([`Store::apply_known`]'s `entry`), which then looks
    /// nothing up. A commit that then fails takes back what it added
    /// ([`Store::discard_prepared`]).
    pub fn prepare(&self, key: &[u8]) -> Entry {
        self.entry_or_insert(key, None).0
    }

    /// After a commit that [`Store::prepare`]d `key` failed (under the
    /// commit lock, so no write to it is being applied): takes the key out
    /// again if it still has no version. (Another committer that prepared
    /// it too finds it gone at its apply and adds it again.)
    pub fn discard_prepared(&self, key: &[u8]) {
        let empty = self.points.get(key).is_some_and(|e| e.chain().lock().is_empty());
        if empty {
            self.remove_where(key, |versions| versions.is_empty());
        }
    }

    /// The entry of `key`, added to both indexes if it is not there: with
    /// `first`, holding that version (a key of a run loaded back), else
    /// with none; `first` comes back unless the new entry took it. Whoever adds it to the hash index first adds it to the
    /// skip list too; a thread that finds it there takes that entry (so
    /// both indexes always hold the same one), the skip-list insert perhaps
    /// still under way (a scan meanwhile misses a key with no version).
    fn entry_or_insert(&self, key: &[u8], first: Option<Version>) -> (Entry, Option<Version>) {
        if let Some(e) = self.points.get(key) {
            return (e.clone(), first);
        }
        let _adding = self.indexing.read();
        if let Some(e) = self.points.get(key) {
            return (e.clone(), first);
        }
        // A key live in the packed arena comes back with its version (the
        // arena is not replaced while `indexing` is held), and `first`
        // goes back to the caller, as when the key is here already.
        let packed = self.with_packed(|p| p.find(key).filter(|&i| p.is_live(i)).map(|i| (Arc::clone(p), i))).flatten();
        let bytes = key.len() as i64 + first.as_ref().map_or(0, Version::held_len);
        let (e, first) = match &packed {
            Some((p, i)) => (Entry::standing_for(p, *i), first),
            None => {
                let e = Entry::new(key);
                if let Some(v) = first {
                    e.chain().lock().push(v);
                }
                (e, None)
            }
        };
        if !self.points.insert(e.clone()) {
            // Another thread added it between the look-up and the insert:
            // its entry, and the version back (if it was the caller's).
            let held = e.chain().lock().pop();
            let e = self.points.get(key).map(|e| e.clone()).expect("no key leaves the indexes while one is being added");
            return (e, if packed.is_some() { first } else { held });
        }
        self.ordered.insert(e.clone());
        match packed {
            // Counted when it was written; now in the indexes, and only there.
            Some((p, i)) => {
                p.kill(i);
            }
            None => {
                self.live_keys.fetch_add(1, Ordering::Relaxed);
                self.live_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
        }
        (e, first)
    }

    /// The newest version written to `key`, tombstones included; 0 if never.
    pub fn latest_version(&self, key: &[u8]) -> u64 {
        match self.find(key, false) {
            Some(Look::Index(e)) => e.chain().lock().last().map_or(0, |v| v.version()),
            Some(Look::Packed(v)) => v.version(),
            None => 0,
        }
    }

    /// The newest version written to any key in `[start, end)`.
    pub fn latest_version_in(&self, start: &[u8], end: Option<&[u8]>) -> u64 {
        let mut max = 0;
        for entry in self.range(start, end) {
            if let Some(v) = entry.chain().lock().last() {
                max = max.max(v.version());
            }
        }
        max
    }

    /// Writes one key at `version`. `oldest_needed` lets the chain drop
    /// versions no reader can see any more; 0 keeps its whole history.
    pub fn apply(&self, key: &[u8], version: u64, value: Option<Value>, oldest_needed: u64) {
        self.apply_keeping(key, version, value, oldest_needed, 1, &[]);
    }

    /// [`Store::apply`], keeping the newest `keep` (at least 1) versions of
    /// the key as well as what readers from `oldest_needed` on see, and what
    /// a reader at each of `pins` sees (a fork reads its parent at its fork
    /// point). When it drops versions, returns the version the key's
    /// history is whole from (the oldest after the last one dropped): a read
    /// of the key at an older snapshot, but at a pin, would not see what was
    /// there.
    pub fn apply_keeping(&self, key: &[u8], version: u64, value: Option<Value>, oldest_needed: u64, keep: usize, pins: &[u64]) -> Option<u64> {
        self.apply_known(key, version, value, oldest_needed, keep, pins, None, None)
    }

    /// [`Store::apply_keeping`], told `ends`: leading and trailing bytes the
    /// key's newest value and `value` share ([`ends_hold`]), when the caller
    /// knows them already (the engine's WAL delta compared the same two, or
    /// a JSON splice knows what it replaced), so a large value is not
    /// compared again. `entry`: the key's entry from [`Store::prepare`].
    #[allow(clippy::too_many_arguments)]
    pub fn apply_known(
        &self,
        key: &[u8],
        version: u64,
        value: Option<Value>,
        oldest_needed: u64,
        keep: usize,
        pins: &[u64],
        ends: Option<(usize, usize)>,
        entry: Option<&Entry>,
    ) -> Option<u64> {
        self.write_chain(key, entry, oldest_needed, keep, pins, |versions| {
            debug_assert!(versions.last().is_none_or(|v| v.version() < version));
            self.push_whole(versions, version, value, ends);
        })
    }

    /// Pushes `value` as the chain's newest version, whole, the one before
    /// it turned into history ([`Store::retire_newest`]).
    fn push_whole(&self, versions: &mut SmallVec<[Version; 1]>, version: u64, value: Option<Value>, ends: Option<(usize, usize)>) {
        self.retire_newest(versions, &value, ends);
        self.live_bytes.fetch_add(len_of(&value), Ordering::Relaxed);
        versions.push(Version::whole(version, value));
    }

    /// Whether the chain's newest version, `len` bytes of which `shared`
    /// leading and trailing ones are the same in the value written over it,
    /// is kept as a back delta over that value: from `back_deltas_from`
    /// bytes on, when that saves half of it, and the run of deltas before
    /// it is short.
    fn keeps_back(&self, versions: &[Version], len: usize, shared: usize) -> bool {
        let run = versions.iter().rev().skip(1).take_while(|v| v.is_back()).count();
        self.back_deltas_from > 0 && len >= self.back_deltas_from && shared * 2 >= len && run < BACK_RUN
    }

    /// [`Store::apply_known`] of the key's newest value with `[prefix,
    /// len - suffix)` replaced by `middle` (a one-path change to a JSON
    /// document): the caller holds the commit lock, so that newest value is
    /// the one it measured, and it is a value.
    ///
    /// When the replaced stretch keeps its length, the newest version will
    /// be held as a back delta, and nobody else holds its bytes (no reader
    /// cloned them, no packed arena row or watcher keeps them), the bytes
    /// are changed in place under the key's lock: the new version takes
    /// the old one's allocation, and the old one keeps what it had there
    /// as its back delta. A 100 KB document edited at one path then costs
    /// what changed, not a copy. Otherwise the new value is spliced into a
    /// new allocation, as [`Store::apply_known`] would store it.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_spliced(
        &self,
        key: &[u8],
        version: u64,
        (prefix, suffix): (usize, usize),
        middle: &[u8],
        oldest_needed: u64,
        keep: usize,
        pins: &[u64],
    ) -> Option<u64> {
        self.write_chain(key, None, oldest_needed, keep, pins, |versions| {
            let last = versions.last().expect("a spliced write's key has a newest version");
            debug_assert!(last.version() < version);
            assert!(!last.is_back(), "a chain's newest version is whole");
            let old = last.value.as_ref().expect("a spliced write's key holds a value");
            let len = old.len();
            assert!(prefix + suffix <= len, "a splice within the value");
            // Unique under the chain's lock stays unique: a reader clones the
            // bytes only under it.
            let in_place = middle.len() == len - prefix - suffix && self.keeps_back(versions, len, prefix + suffix) && old.is_unique();
            if !in_place {
                let value = Some(splice(old, prefix, suffix, middle));
                self.push_whole(versions, version, value, Some((prefix, suffix)));
                return;
            }
            let last = versions.last_mut().expect("checked");
            let old = last.value.as_ref().expect("checked");
            let mut back = Version::back(last.version(), prefix, suffix, &old[prefix..len - suffix]);
            back.version |= last.version & ON_DISK;
            let mut bytes = last.value.take().expect("checked");
            triomphe::Arc::get_mut(&mut bytes).expect("checked: nobody else holds these bytes")[prefix..len - suffix].copy_from_slice(middle);
            self.history_versions.fetch_add(1, Ordering::Relaxed);
            self.history_bytes.fetch_add(back.held_len(), Ordering::Relaxed);
            *last = back;
            // The live bytes are the same many.
            versions.push(Version::whole(version, Some(bytes)));
        })
    }

    /// Turns the chain's newest version into history before `value` is
    /// pushed: a back delta over the new value when that saves half of it
    /// (and the run of deltas before it is short). `ends`: as for
    /// [`Store::apply_known`].
    fn retire_newest(&self, versions: &mut [Version], value: &Option<Value>, ends: Option<(usize, usize)>) {
        let Some(last) = versions.last() else { return };
        let n = last.held_len();
        let back = match (&last.value, value) {
            // (Values too small for a back delta are not compared.)
            (Some(old), Some(new)) if !last.is_back() && self.back_deltas_from > 0 && old.len() >= self.back_deltas_from => {
                let (p, s) = ends.unwrap_or_else(|| shared_ends(old, new));
                debug_assert!(ends_hold(old, new, p, s), "the ends the caller gave are not shared by the two values");
                self.keeps_back(versions, old.len(), p + s).then(|| Version::back(last.version(), p, s, &old[p..old.len() - s]))
            }
            _ => None,
        };
        let last = versions.last_mut().expect("checked");
        if let Some(mut back) = back {
            back.version |= last.version & ON_DISK;
            *last = back;
        }
        self.live_bytes.fetch_sub(n, Ordering::Relaxed);
        self.history_versions.fetch_add(1, Ordering::Relaxed);
        self.history_bytes.fetch_add(last.held_len(), Ordering::Relaxed);
    }

    /// Locks the chain of `key` (adding the key to the indexes if it is not
    /// there, or was packed), lets `push` add its new version, then drops
    /// the versions no reader needs (see [`Store::apply_keeping`]).
    fn write_chain(
        &self,
        key: &[u8],
        entry: Option<&Entry>,
        oldest_needed: u64,
        keep: usize,
        pins: &[u64],
        push: impl FnOnce(&mut SmallVec<[Version; 1]>),
    ) -> Option<u64> {
        let keep = keep.max(1);
        // The entry `prepare` gave, unless the key left the indexes since
        // (another commit removed it while this one waited for the lock).
        let mut entry = match entry {
            Some(e) if !e.chain().dead.load(Ordering::Acquire) => e.clone(),
            _ => self.entry_or_insert(key, None).0,
        };
        debug_assert_eq!(&*entry, key);
        // A packing pass may take the key out of the indexes up to the
        // moment the chain is locked (it marks the chain dead under the
        // lock): then the key is added again, with its packed version.
        let mut versions = loop {
            let versions = entry.chain().lock();
            if !entry.chain().dead.load(Ordering::Acquire) {
                break versions;
            }
            drop(versions);
            entry = self.entry_or_insert(key, None).0;
        };
        push(&mut versions);
        // A reader at `oldest_needed` (0: none) or later sees the newest
        // version <= oldest_needed or a newer one: everything before that
        // one may go, the newest `keep` and the pinned ones excepted.
        let mut cut = 0;
        if oldest_needed > 0 && versions.len() > keep {
            let needed = versions.iter().rposition(|v| v.version() <= oldest_needed).unwrap_or(0);
            cut = needed.min(versions.len() - keep);
        }
        let mut whole_from = None;
        if cut > 0 {
            let pinned: SmallVec<[usize; 4]> = pins.iter().filter_map(|p| versions.iter().rposition(|v| v.version() <= *p)).filter(|i| *i < cut).collect();
            let last_dropped = (0..cut).rev().find(|i| !pinned.contains(i));
            if let Some(last) = last_dropped {
                whole_from = Some(versions[last + 1].version());
                // The mark of older versions on disk stays on the oldest.
                let on_disk = versions[0].version & ON_DISK;
                // A kept version held as a delta over one that goes is made whole first.
                for &i in &pinned {
                    if versions[i].is_back() {
                        let mut whole = Version::whole(versions[i].version(), value_at(&versions, i));
                        whole.version |= versions[i].version & ON_DISK;
                        self.history_bytes.fetch_add(whole.held_len() - versions[i].held_len(), Ordering::Relaxed);
                        versions[i] = whole;
                    }
                }
                let (mut n, mut bytes, mut i) = (0, 0, 0);
                versions.retain(|v| {
                    let gone = i < cut && !pinned.contains(&i);
                    i += 1;
                    if gone {
                        n += 1;
                        bytes += v.held_len();
                    }
                    !gone
                });
                self.history_versions.fetch_sub(n, Ordering::Relaxed);
                self.history_bytes.fetch_sub(bytes, Ordering::Relaxed);
                versions[0].version |= on_disk;
            }
        }
        let only_tombstone = versions.len() == 1 && matches!(versions[0].held(), Held::Whole(None)) && versions[0].version() <= oldest_needed;
        drop(versions);
        if only_tombstone {
            // Nobody can see anything but "absent": the key can go. Its last
            // write version is then forgotten, which is safe because every
            // live reader's snapshot is at or past it.
            self.remove(key);
        }
        whole_from
    }

    /// Calls `f` with every key whose chain holds at least `n` versions,
    /// and the oldest of them.
    pub fn chains_of_at_least(&self, n: usize, mut f: impl FnMut(&[u8], u64)) {
        for entry in self.range(&[], None) {
            let versions = entry.chain().lock();
            if versions.len() >= n
                && let Some(oldest) = versions.first()
            {
                f(&entry, oldest.version());
            }
        }
    }

    /// The bytes of older versions held in memory (as [`Store::memory`]).
    pub fn history_bytes(&self) -> u64 {
        self.history_bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// What the chains hold now.
    pub fn memory(&self) -> Memory {
        let get = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0) as u64;
        Memory {
            keys: get(&self.live_keys),
            live_bytes: get(&self.live_bytes),
            history_versions: get(&self.history_versions),
            history_bytes: get(&self.history_bytes),
            packed_keys: self.packed_keys() as u64,
        }
    }

    /// Removes `key` outright if its newest version is still `version` (used
    /// to purge expired entries). Returns whether it did.
    pub fn remove_if_latest(&self, key: &[u8], version: u64) -> bool {
        let latest = self.points.get(key).and_then(|e| e.chain().lock().last().map(|v| v.version()));
        if latest == Some(version) {
            self.remove(key);
            return true;
        }
        latest.is_none() && self.kill_packed(key, Some(&[key, &[0][..]].concat()), Some(version)) > 0
    }

    /// Marks dead the keys of `[start, end)` live in the packed arena and
    /// not in the indexes (with `version`, only those of that version), and
    /// stops counting them as live; how many.
    fn kill_packed(&self, start: &[u8], end: Option<&[u8]>, version: Option<u64>) -> usize {
        // No key moves between the arena and the indexes meanwhile, and the
        // arena is not replaced (a pass takes over the deaths it saw).
        let _removing = self.indexing.write();
        let Some(p) = self.packed_now() else { return 0 };
        let mut n = 0;
        for i in p.lower_bound(start)..p.len() {
            let key = p.key(i);
            if end.is_some_and(|end| key >= end) {
                break;
            }
            if p.is_live(i) && version.is_none_or(|v| p.version(i).version() == v) && self.points.get(key).is_none() && p.kill(i) {
                self.live_keys.fetch_sub(1, Ordering::Relaxed);
                self.live_bytes.fetch_sub((key.len() + p.value(i).len()) as i64, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    fn remove(&self, key: &[u8]) {
        self.remove_where(key, |_| true);
    }

    /// Takes `key` out of both indexes if `gone` says so of its versions.
    fn remove_where(&self, key: &[u8], gone: impl Fn(&SmallVec<[Version; 1]>) -> bool) {
        let _removing = self.indexing.write();
        let taken = |e: &Entry| {
            let versions = e.chain().lock();
            let gone = gone(&versions);
            if gone {
                e.chain().dead.store(true, Ordering::Release);
            }
            gone
        };
        if let Some(k) = self.points.remove_if(key, taken) {
            let versions = k.chain().lock();
            let newest = versions.last().map_or(0, |v| v.held_len());
            let older = versions.len().saturating_sub(1) as i64;
            let older_bytes: i64 = versions.iter().rev().skip(1).map(|v| v.held_len()).sum();
            self.live_keys.fetch_sub(1, Ordering::Relaxed);
            self.live_bytes.fetch_sub(k.len() as i64 + newest, Ordering::Relaxed);
            self.history_versions.fetch_sub(older, Ordering::Relaxed);
            self.history_bytes.fetch_sub(older_bytes, Ordering::Relaxed);
            drop(versions);
            self.ordered.remove(key);
        }
    }

    /// Visits the live entries of `[start, end)` at `snapshot` in key order
    /// (or reverse order), until `f` returns false.
    pub fn scan(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, reverse: bool, mut f: impl FnMut(&[u8], u64, &Value) -> bool) {
        let _whole = self.resident(start);
        let range = self.keys(start.into(), end.map(Into::into), false, true);
        let mut visit = |entry: Entry| -> bool {
            match self.read_entry(&entry, snapshot) {
                Some((v, Some(value))) => f(&entry, v, &value),
                _ => true,
            }
        };
        if reverse {
            for entry in range.rev() {
                if !visit(entry) {
                    break;
                }
            }
        } else {
            for entry in range {
                if !visit(entry) {
                    break;
                }
            }
        }
    }

    /// The newest version of `key` at or below `snapshot`, tombstone or not:
    /// `None` if the key had no version then.
    pub fn read_any(&self, key: &[u8], snapshot: u64) -> Option<(u64, Option<Value>)> {
        match self.entry(key)? {
            Look::Index(entry) => self.read_entry(&entry, snapshot),
            Look::Packed(v) if v.version() <= snapshot => Some((v.version(), v.value)),
            Look::Packed(v) if v.on_disk() => self.disk()?.read(key, snapshot),
            Look::Packed(_) => None,
        }
    }

    /// The entries of `[start, end)` at `snapshot` as an iterator, in key
    /// order or reverse, tombstones included (`None`).
    pub fn range_any(&self, start: Vec<u8>, end: Option<Vec<u8>>, snapshot: u64, reverse: bool) -> Box<dyn Iterator<Item = (Entry, u64, Option<Value>)> + '_> {
        let whole = self.resident(&start);
        let range = self.keys(start.into(), end.map(Into::into), reverse, true);
        let read = move |e: Entry| self.read_entry(&e, snapshot).map(|(v, value)| (e, v, value));
        let entries: Box<dyn Iterator<Item = _> + '_> = Box::new(range.filter_map(read));
        Box::new(Resident { entries, _whole: whole })
    }

    /// Like [`Store::scan`] in key order, but tombstones are visited too
    /// (`None`).
    pub fn scan_any(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, mut f: impl FnMut(&[u8], u64, Option<&Value>) -> bool) {
        let _whole = self.resident(start);
        for entry in self.keys(start.into(), end.map(Into::into), false, true) {
            if let Some((v, value)) = self.read_entry(&entry, snapshot)
                && !f(&entry, v, value.as_ref())
            {
                break;
            }
        }
    }

    /// Visits every key of `[start, end)` in key order with its versions at
    /// or below `snapshot`, oldest first, tombstones included (`None`), until
    /// `f` returns false: the versions in memory and those on disk (the run
    /// log, replay clocks).
    pub fn scan_history(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, mut f: impl FnMut(&[u8], &[(u64, Option<Value>)]) -> bool) {
        let _whole = self.resident(start);
        let mut buf: Vec<(u64, Option<Value>)> = Vec::new();
        let mut older: Vec<(u64, Option<Value>)> = Vec::new();
        for entry in self.keys(start.into(), end.map(Into::into), false, true) {
            self.touch(&entry);
            let on_disk = resident_history(&entry, snapshot, &mut buf);
            if on_disk && let Some(disk) = self.disk() {
                // Read after the memory's versions: a checkpoint may move
                // some of those to disk meanwhile, never the other way, so
                // together they miss nothing (and repeats are dropped).
                let oldest_here = buf.first().map_or(u64::MAX, |(v, _)| *v);
                older.clear();
                disk.versions(&entry, snapshot, &mut |v, value| {
                    if v < oldest_here {
                        older.push((v, value));
                    }
                });
                if !older.is_empty() {
                    older.append(&mut buf);
                    std::mem::swap(&mut older, &mut buf);
                }
            }
            if !buf.is_empty() && !f(&entry, &buf) {
                break;
            }
        }
    }

    /// Visits every key of `[start, end)` in key order with its newest
    /// version at or below `snapshot` that is a value (not a delete), from
    /// memory or, when memory has none, from disk: what a replay's clock
    /// needs, without reading the history files for keys memory answers.
    pub fn scan_newest_values(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, mut f: impl FnMut(&[u8], u64, &Value)) {
        let _whole = self.resident(start);
        for entry in self.keys(start.into(), end.map(Into::into), false, true) {
            let e = &entry;
            self.touch(e);
            let (found, on_disk) = {
                let versions = e.chain().lock();
                let n = versions.iter().rposition(|v| v.version() <= snapshot).map_or(0, |i| i + 1);
                let found = (0..n)
                    .rev()
                    .find(|&i| !matches!(versions[i].held(), Held::Whole(None)))
                    .and_then(|i| value_at(&versions, i).map(|v| (versions[i].version(), v)));
                (found, versions.first().is_some_and(|v| v.on_disk()))
            };
            match found {
                Some((v, value)) => f(e, v, &value),
                None if on_disk => {
                    if let Some(disk) = self.disk() {
                        // The newest version there, one block read; only
                        // when that is a delete, the key's whole history.
                        let newest = match disk.read(e, snapshot) {
                            Some((v, Some(value))) => Some((v, value)),
                            Some((_, None)) => {
                                let mut newest = None;
                                disk.versions(e, snapshot, &mut |v, value| {
                                    if let Some(value) = value {
                                        newest = Some((v, value));
                                    }
                                });
                                newest
                            }
                            None => None,
                        };
                        if let Some((v, value)) = newest {
                            f(e, v, &value);
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// [`Store::scan_history`] of the versions in memory only, with whether
    /// the key has older ones on disk: what a checkpoint writes.
    pub fn scan_resident(&self, start: &[u8], end: Option<&[u8]>, snapshot: u64, mut f: impl FnMut(&[u8], bool, &[(u64, Option<Value>)]) -> bool) {
        let mut buf: Vec<(u64, Option<Value>)> = Vec::new();
        for entry in self.range(start, end) {
            let on_disk = resident_history(&entry, snapshot, &mut buf);
            if !buf.is_empty() && !f(&entry, on_disk, &buf) {
                break;
            }
        }
    }

    /// The entry of `key`; a miss on a key of a cold run loads the run back
    /// and looks again.
    fn entry(&self, key: &[u8]) -> Option<Look<'_>> {
        let epoch = self.cold_epoch.load(Ordering::Acquire);
        match self.find(key, true) {
            // A key with no version may be one a write prepared (and will be
            // refused) in a run that is cold: then the run is loaded as for
            // a miss.
            Some(Look::Index(e)) if self.cold_runs.load(Ordering::Acquire) == 0 || !e.chain().lock().is_empty() => return Some(Look::Index(e)),
            Some(Look::Index(_)) | None => {}
            Some(packed) => return Some(packed),
        }
        if key.len() < 16 || key[..16] == [0u8; 16] || (self.cold_runs.load(Ordering::Acquire) == 0 && self.cold_epoch.load(Ordering::Acquire) == epoch) {
            return None;
        }
        let cold = self.cold.read().clone()?;
        loop {
            // Under a hold no run leaves memory: the key is here, or its run
            // is cold (loaded now, by this reader or another, and looked
            // for again), or it does not exist. (Without the hold, a run
            // loaded by another reader, or moved out again, in between
            // would read as absent.)
            let _held = Hold::new(&self.residency);
            let found = self.points.get(key);
            if found.as_ref().is_some_and(|e| !e.chain().lock().is_empty()) {
                return found.map(Look::Index);
            }
            drop(found);
            if !cold.warm(self, &key[..16]) {
                return self.points.get(key).map(Look::Index);
            }
        }
    }

    /// `key` in the indexes or, when not there, live in the packed arena
    /// (`touch`: stamped as read there). A key the arena holds dead moved
    /// back into the indexes since they were looked at (it goes there
    /// before it is marked dead), or is gone: the indexes are asked again,
    /// and the arena again only if it was replaced meanwhile.
    fn find(&self, key: &[u8], touch: bool) -> Option<Look<'_>> {
        let mut seen: *const Packed = std::ptr::null();
        loop {
            if let Some(e) = self.points.get(key) {
                return Some(Look::Index(e));
            }
            let now = if touch { self.clock.load(Ordering::Relaxed) } else { 0 };
            let got = self.with_packed(|p| match p.find(key) {
                Some(i) if p.is_live(i) => {
                    if now != 0 {
                        p.touch(i, now);
                    }
                    Ok(p.version(i))
                }
                Some(_) => Err(Arc::as_ptr(p)),
                None => Err(std::ptr::null()),
            })?;
            match got {
                Ok(v) => return Some(Look::Packed(v)),
                Err(arena) if !arena.is_null() && arena != seen => seen = arena,
                Err(_) => return None,
            }
        }
    }

    /// Calls `f` with the packed arena, if there is one, pinned meanwhile.
    fn with_packed<R>(&self, f: impl FnOnce(&Arc<Packed>) -> R) -> Option<R> {
        if !self.packed_any.load(Ordering::Acquire) {
            return None;
        }
        let guard = crossbeam_epoch::pin();
        let arena = self.packed.load(Ordering::Acquire, &guard);
        // SAFETY: an arena replaced is destroyed only once every thread
        // pinned when it was replaced has unpinned ([`Store::pack`]).
        unsafe { arena.as_ref() }.map(f)
    }

    /// The packed arena now (kept alive by the caller's reference).
    fn packed_now(&self) -> Option<Arc<Packed>> {
        self.with_packed(Arc::clone)
    }

    /// Loads back the run of `key` if it is cold; whether it was.
    fn warm(&self, key: &[u8]) -> bool {
        if self.cold_runs.load(Ordering::Acquire) == 0 || key.len() < 16 || key[..16] == [0u8; 16] {
            return false;
        }
        let Some(cold) = self.cold.read().clone() else { return false };
        // Not while a run is leaving memory ([`Store::evict`]).
        let _settled = Hold::new(&self.residency);
        cold.warm(self, &key[..16])
    }

    /// Sets the time (ms since the Unix epoch) reads stamp on the keys they
    /// read from now on. Stamps are tenths of a second after the first time
    /// set (32 bits: 13 years).
    pub fn set_clock(&self, ms: u64) {
        let _ = self.clock_epoch.compare_exchange(0, ms, Ordering::Relaxed, Ordering::Relaxed);
        let since = ms.saturating_sub(self.clock_epoch.load(Ordering::Relaxed)) / 100 + 1;
        self.clock.fetch_max(since.min(u32::MAX as u64) as u32, Ordering::Relaxed);
    }

    /// Stamps `entry` as read now.
    fn touch(&self, entry: &Entry) {
        let now = self.clock.load(Ordering::Relaxed);
        let at = &entry.chain().read_at;
        if at.load(Ordering::Relaxed) < now {
            at.store(now, Ordering::Relaxed);
        }
    }

    /// When a key of `[start, end)` was last read (ms since the Unix epoch,
    /// to a tenth of a second; 0: none since it was loaded). Stamps nothing.
    pub fn last_read(&self, start: &[u8], end: Option<&[u8]>) -> u64 {
        let stamp = self.range(start, end).map(|e| e.chain().read_at.load(Ordering::Relaxed)).max().unwrap_or(0);
        if stamp == 0 { 0 } else { self.clock_epoch.load(Ordering::Relaxed) + (stamp as u64 - 1) * 100 }
    }

    /// Loads back the run of `key` if it is cold (before a write to it).
    pub fn ensure_resident(&self, key: &[u8]) {
        self.warm(key);
    }

    /// For a scan starting at `start`: holds the keys in memory until the
    /// guard goes (no run leaves meanwhile), and loads back the run it
    /// starts in if that is cold. The hold comes first: taken after the
    /// check, a run could leave between the two, and the scan see none of
    /// it, or part.
    fn resident(&self, start: &[u8]) -> Hold<'_> {
        let held = Hold::new(&self.residency);
        self.warm(start);
        held
    }

    /// Where cold runs are loaded back from ([`ColdData`]).
    pub fn set_cold(&self, cold: Arc<dyn ColdData>) {
        *self.cold.write() = Some(cold);
    }

    /// How many runs are cold now: while none, reads do not ask. Called
    /// after a run's keys are all back, and before a run's keys leave.
    pub fn set_cold_runs(&self, n: usize) {
        self.cold_runs.store(n, Ordering::Release);
        self.cold_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes run `run`'s keys (`[start, end)`) out of memory, no scan being
    /// under way (see `residency`); `mark` runs first, with every scan
    /// held off (the engine marks the run cold there, so that a read
    /// missing one of its keys from then on loads it back). `mark` takes no
    /// lock a reader may hold while it waits for a hold.
    pub fn evict(&self, start: &[u8], end: Option<&[u8]>, mark: impl FnOnce()) -> usize {
        let _alone = self.residency.write();
        mark();
        self.remove_range(start, end)
    }

    /// The entries of `[start, end)` in key order (`end` `None`: to the last).
    /// The packed arena's keys among them; no key moves into the arena
    /// while the range lives.
    fn range<'a>(&'a self, start: &'a [u8], end: Option<&'a [u8]>) -> KeyRange<'a> {
        self.keys(start.into(), end.map(Into::into), false, false)
    }

    /// [`Store::range`], in reverse if `reverse`; with `read`, the arena's
    /// keys it yields are stamped as read now (as [`Store::touch`]).
    fn keys<'a>(&'a self, start: std::borrow::Cow<'a, [u8]>, end: Option<std::borrow::Cow<'a, [u8]>>, reverse: bool, read: bool) -> KeyRange<'a> {
        // The hold first: no arena replaces this one while it is held.
        let hold = Hold::new(&self.residency);
        let stamp = if read { self.clock.load(Ordering::Relaxed) } else { 0 };
        KeyRange::new(&self.ordered, start, end, reverse).with_packed(self.packed_now(), stamp, hold)
    }

    /// The keys of `[start, end)` the indexes hold, in key order.
    fn index_range<'a>(&'a self, start: &'a [u8], end: Option<&'a [u8]>) -> KeyRange<'a> {
        KeyRange::new(&self.ordered, start.into(), end.map(Into::into), false)
    }

    /// The history files the store reads from (see [`DiskHistory`]).
    pub fn set_disk(&self, disk: Arc<dyn DiskHistory>) {
        *self.disk.write() = Some(disk);
    }

    fn disk(&self) -> Option<Arc<dyn DiskHistory>> {
        self.disk.read().clone()
    }

    /// The newest version of an entry at or below `snapshot`, from memory
    /// or, when older than everything in memory, from disk.
    fn read_entry(&self, entry: &Entry, snapshot: u64) -> Option<(u64, Option<Value>)> {
        self.touch(entry);
        match entry.chain().read(snapshot) {
            Ok(found) => Some(found),
            Err(true) => self.disk()?.read(entry, snapshot),
            Err(false) => None,
        }
    }

    /// Puts back a key of a run loaded from a cold file: its one version
    /// (and whether older ones are on disk) is in its chain before either
    /// index holds it, so a reader that finds the key while the rest of the
    /// run is loading never sees it empty. (A key already here — none
    /// should be — takes the version as a write would.)
    pub fn load_key(&self, key: &[u8], version: u64, value: Option<Value>, on_disk: bool) {
        let mut v = Version::whole(version, value);
        if on_disk {
            v.version |= ON_DISK;
        }
        // Here already (a write prepared it, with no version yet), or added
        // by another thread meanwhile: the version goes on as a write's would.
        if let (_, Some(v)) = self.entry_or_insert(key, Some(v)) {
            self.apply(key, version, v.value, 0);
            if on_disk {
                self.mark_on_disk(key);
            }
        }
    }

    /// Marks `key` (just loaded by recovery) as having older versions on disk.
    pub fn mark_on_disk(&self, key: &[u8]) {
        if self.points.get(key).is_none() && matches!(self.find(key, false), Some(Look::Packed(..))) {
            // Back into the indexes, where the mark is kept.
            self.entry_or_insert(key, None);
        }
        if let Some(entry) = self.points.get(key)
            && let Some(first) = entry.chain().lock().first_mut()
        {
            first.version |= ON_DISK;
        }
    }

    /// After a checkpoint at `snapshot` wrote them to a history file that
    /// [`Store::set_disk`]'s reader now serves: drops from memory every
    /// version older than the newest at or below `snapshot`, of each key
    /// `wrote` accepts (the keys whose history the file took), and marks
    /// the key as having history on disk.
    pub fn spill(&self, snapshot: u64, wrote: impl Fn(&[u8]) -> bool) {
        // The packed arena's keys hold one version each: nothing to drop.
        for entry in self.index_range(&[], None) {
            let e = &entry;
            if !wrote(e) {
                continue;
            }
            let mut versions = e.chain().lock();
            let Some(newest) = versions.iter().rposition(|v| v.version() <= snapshot) else { continue };
            if newest == 0 {
                continue;
            }
            // A kept version held as a delta over a newer one stays valid:
            // deltas only ever point to newer versions.
            let bytes: i64 = versions[..newest].iter().map(|v| v.held_len()).sum();
            versions.drain(..newest);
            versions[0].version |= ON_DISK;
            // A hot key's chain grew by doubling: give back what it no longer holds.
            if versions.capacity() > 2 * versions.len() + 4 {
                versions.shrink_to_fit();
            }
            self.history_versions.fetch_sub(newest as i64, Ordering::Relaxed);
            self.history_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Removes every key of `[start, end)` outright, history and all.
    pub fn remove_range(&self, start: &[u8], end: Option<&[u8]>) -> usize {
        let keys: Vec<Entry> = self.index_range(start, end).collect();
        for k in &keys {
            self.remove(k);
        }
        keys.len() + self.kill_packed(start, end, None)
    }

    /// Number of keys with at least one version (live or not).
    pub fn key_count(&self) -> usize {
        self.points.len() + self.with_packed(|p| p.live_count()).unwrap_or(0)
    }

    /// Keys in the packed arena now (live ones).
    pub fn packed_keys(&self) -> usize {
        self.with_packed(|p| p.live_count()).unwrap_or(0)
    }

    /// Sets how many keys more than the last pass left in the indexes make
    /// a [`Store::pack`] pass due ([`PACK_MIN`] by default).
    pub fn set_pack_min(&self, n: usize) {
        self.pack_min.store(n.max(1), Ordering::Relaxed);
    }

    /// A packing pass, if one is due (see [`PACK_MIN`]) or `force`: every
    /// key of the indexes holding one version (a value, not a delete, held
    /// whole) moves into a new packed arena with the live keys of the
    /// current one, and leaves both indexes — the key's entry, skip-list
    /// node and hash slot freed; its value is the same allocation, not a
    /// copy. Returns how many keys moved.
    ///
    /// Readers and writers go on meanwhile. The arena is built from what
    /// the indexes hold, unlocked; then, with `residency` and `indexing`
    /// held (no range reads the arena, no key moves between it and the
    /// indexes), it replaces the current one, taking the deaths that
    /// arena saw meanwhile; then, in slices under the same two locks, each
    /// key leaves the indexes if its chain still holds the version the
    /// arena took — made live there first, so a reader that misses it in
    /// the indexes finds it in the arena (one that finds it in both reads
    /// the indexes: the same version). A key written meanwhile stays in the
    /// indexes and dead in the arena. A slice that cannot take the locks
    /// within 100 ms (a long scan) ends the pass: its keys stay where they
    /// are, dead in the arena, until the next.
    pub fn pack(&self, force: bool) -> usize {
        let Some(_one) = self.packing.try_lock() else { return 0 };
        let old = self.packed_now();
        let (old_live, old_dead) = old.as_ref().map_or((0, 0), |p| (p.live_count(), p.dead_count()));
        let min = self.pack_min.load(Ordering::Relaxed);
        let now = self.points.len();
        let gathered = now.saturating_sub(self.pack_floor.load(Ordering::Relaxed));
        // Keys coming in fast: a pass would take a core from the writers
        // (and hold new keys up while it moves keys out), so only a large
        // gathering is worth one; coming in slowly (or not at all), a small
        // one is (see [`PACK_MIN`]).
        let busy = now.saturating_sub(self.pack_seen.swap(now, Ordering::Relaxed)) >= min.div_ceil(16);
        let due = if busy { gathered >= (min * 16).max(old_live) } else { gathered >= min.div_ceil(16).max(old_live / 8) };
        if !force && !due && (old_dead == 0 || old_dead < min.max(old_live / 4)) {
            return 0;
        }
        // The keys to move, in key order.
        let mut moving: Vec<(Entry, u64)> = Vec::new();
        let (mut key_bytes, mut staying) = (0, 0);
        for e in self.index_range(&[], None) {
            let versions = e.chain().lock();
            if versions.len() == 1 && !versions[0].is_back() && versions[0].value.is_some() && !e.chain().dead.load(Ordering::Acquire) {
                let bits = versions[0].version;
                drop(versions);
                key_bytes += e.len();
                moving.push((e, bits));
            } else {
                staying += 1;
            }
        }
        // What the next pass counts from: the keys this one leaves in the
        // indexes (not those added since it looked).
        self.pack_floor.store(staying, Ordering::Relaxed);
        if moving.is_empty() && old_dead == 0 {
            return 0;
        }
        // The new arena: the moving keys dead until they leave the indexes,
        // the current arena's live keys live (a key in both is moving back
        // into the indexes: the index's).
        let old_keys = old.as_ref().map_or(0, |p| p.len());
        let mut b = Builder::with_capacity(moving.len() + old_live, key_bytes + old.as_ref().map_or(0, |p| (0..p.len()).map(|i| p.key(i).len()).sum()));
        let mut kept: Vec<(usize, usize)> = Vec::with_capacity(old_live);
        let mut slot_of_moving: Vec<usize> = Vec::with_capacity(moving.len());
        let (mut i, mut j) = (0, 0);
        while i < old_keys || j < moving.len() {
            let o = old.as_ref().filter(|_| i < old_keys);
            let take_old = match (o, moving.get(j)) {
                (Some(p), Some((e, _))) => match p.key(i).cmp(&e[..]) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        continue;
                    }
                    std::cmp::Ordering::Greater => false,
                },
                (Some(_), None) => true,
                _ => false,
            };
            if take_old {
                let p = o.expect("chosen");
                if p.is_live(i) {
                    let at = b.push(p.key(i), p.version_bits(i), p.value(i).clone(), p.read_at(i), true);
                    kept.push((i, at));
                }
                i += 1;
            } else {
                let (e, bits) = &moving[j];
                // The value: read again under the chain's lock (the chain
                // may have changed; then the key stays in the indexes).
                let value = {
                    let versions = e.chain().lock();
                    match versions.first() {
                        Some(v) if versions.len() == 1 && v.version == *bits => v.value.clone(),
                        _ => None,
                    }
                };
                match value {
                    Some(value) => slot_of_moving.push(b.push(e, *bits, value, e.chain().read_at.load(Ordering::Relaxed), false)),
                    None => slot_of_moving.push(usize::MAX),
                }
                j += 1;
            }
        }
        let new = Arc::new(b.finish());
        {
            let Some(_alone) = self.residency.try_write_for(std::time::Duration::from_millis(100)) else { return 0 };
            let _indexing = self.indexing.write();
            let guard = crossbeam_epoch::pin();
            let replaced = self.packed.swap(crossbeam_epoch::Owned::new(Arc::clone(&new)), Ordering::AcqRel, &guard);
            self.packed_any.store(true, Ordering::Release);
            if !replaced.is_null() {
                // SAFETY: unreachable from the store from here on; freed
                // once every thread pinned now has unpinned.
                unsafe { guard.defer_destroy(replaced) };
            }
            if let Some(p) = &old {
                for &(o, n) in &kept {
                    if !p.is_live(o) {
                        new.kill(n);
                    }
                }
            }
            guard.flush();
        }
        // The moving keys leave the indexes.
        let mut moved = 0;
        for from in (0..moving.len()).step_by(4096) {
            let Some(_alone) = self.residency.try_write_for(std::time::Duration::from_millis(100)) else { break };
            let _indexing = self.indexing.write();
            for j in from..moving.len().min(from + 4096) {
                let at = slot_of_moving[j];
                if at == usize::MAX {
                    continue;
                }
                let (e, bits) = &moving[j];
                let taken = |k: &Entry| {
                    let versions = k.chain().lock();
                    let same = versions.len() == 1 && versions[0].version == *bits && !k.chain().dead.load(Ordering::Acquire);
                    if same {
                        new.revive(at);
                        k.chain().dead.store(true, Ordering::Release);
                    }
                    same
                };
                if self.points.remove_if(&e[..], taken).is_some() {
                    self.ordered.remove(&e[..]);
                    moved += 1;
                }
            }
        }
        if moved > 0 {
            // The hash index keeps the room it grew to; the skip list's
            // nodes and the arena replaced are freed by crossbeam-epoch's
            // collector, a few hundred at each flush: flush until they
            // can all have gone (each flush may advance the epoch, and
            // frees what two epochs ago left).
            self.points.shrink_to_fit();
            for _ in 0..moved / 256 + 8 {
                crossbeam_epoch::pin().flush();
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Option<Value> {
        Some(super::value(s.as_bytes()))
    }

    proptest::proptest! {
        /// `shared_ends` against the byte-by-byte definition, on values that
        /// share long ends (past several 4 KiB and 64-byte steps) and differ
        /// in a short stretch, or not at all, or in length.
        #[test]
        fn shared_ends_is_the_longest_non_overlapping_prefix_and_suffix(
            head in 0usize..9000, tail in 0usize..9000, mid_a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            mid_b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), seed in proptest::prelude::any::<u8>(),
        ) {
            let filler: Vec<u8> = (0..head.max(tail)).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let a = [&filler[..head], &mid_a[..], &filler[..tail]].concat();
            let b = [&filler[..head], &mid_b[..], &filler[..tail]].concat();
            let most = a.len().min(b.len());
            let p = (0..most).take_while(|&i| a[i] == b[i]).count();
            let s = (0..most - p).take_while(|&i| a[a.len() - 1 - i] == b[b.len() - 1 - i]).count();
            proptest::prop_assert_eq!(shared_ends(&a, &b), (p, s));
        }
    }

    #[test]
    fn a_prepared_key_reads_as_absent_and_a_discarded_one_is_gone() {
        let store = Store::new();
        let key = [&[1u8; 16][..], &[0x10], b"new"].concat();
        store.prepare(&key);
        store.prepare(&key);
        assert_eq!(store.key_count(), 1);
        assert_eq!(store.get(&key, u64::MAX), None);
        assert_eq!(store.latest_version(&key), 0);
        let mut seen = 0;
        store.scan(&[1u8; 16], Some(&[2u8; 16]), u64::MAX, false, |_, _, _| {
            seen += 1;
            true
        });
        assert_eq!(seen, 0, "a scan passes over a key with no version");
        store.discard_prepared(&key);
        assert_eq!(store.key_count(), 0);
        assert_eq!(store.memory().keys, 0);
        assert_eq!(store.ordered.len(), 0);
        // Prepared, then written: the write lands on the prepared entry.
        store.prepare(&key);
        store.apply(&key, 1, val("v"), 0);
        store.discard_prepared(&key);
        assert_eq!(store.get(&key, 1), Some((1, super::value(b"v"))));
        assert_eq!(store.ordered.len(), 1);
    }

    /// Threads that prepare keys (adding them to both indexes outside any
    /// lock), threads that write them, and a thread that removes ranges of
    /// them: both indexes always end up holding the same entry for every key.
    #[test]
    fn prepares_writes_and_removals_racing_keep_both_indexes_the_same() {
        let store = Arc::new(Store::new());
        // What the commit lock is to the engine: versions rise under it.
        let commit = Arc::new(parking_lot::Mutex::new(0u64));
        let key = |run: u8, i: u32| [&[run; 16][..], &[0x10], &i.to_be_bytes()].concat();
        let threads: Vec<_> = (0..5u8)
            .map(|t| {
                let store = store.clone();
                let commit = commit.clone();
                std::thread::spawn(move || {
                    for round in 0..1500u32 {
                        for i in 0..20u32 {
                            let k = key(1 + (i % 3) as u8, (round * 7 + i * 13 + t as u32) % 97);
                            match t {
                                0 | 1 => {
                                    store.prepare(&k);
                                }
                                2 => {
                                    // As a commit: prepared before the lock, applied under it
                                    // (the entry perhaps taken out meanwhile), and there after.
                                    let entry = store.prepare(&k);
                                    let mut last = commit.lock();
                                    *last += 1;
                                    store.apply_known(&k, *last, Some(super::value(b"written")), 0, 1, &[], None, Some(&entry));
                                    assert_eq!(store.get(&k, u64::MAX).map(|(v, _)| v), Some(*last), "the write is in the indexes");
                                }
                                3 => {
                                    let mut last = commit.lock();
                                    *last += 1;
                                    store.load_key(&k, *last, Some(super::value(b"loaded")), false);
                                }
                                _ => {
                                    // As the engine drops a deleted run's keys: under the commit lock.
                                    let _last = commit.lock();
                                    let run = [1 + (i % 3) as u8; 16];
                                    let end = [2 + (i % 3) as u8; 16];
                                    store.remove_range(&run, Some(&end));
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let ordered: Vec<Vec<u8>> = store.ordered.iter().map(|e| e.value().to_vec()).collect();
        assert_eq!(ordered.len(), store.points.len());
        for e in store.ordered.iter() {
            let p = store.points.get(&e.value()[..]).expect("every key of the skip list is in the hash index");
            assert!(std::ptr::eq(p.0.as_ptr(), e.value().0.as_ptr()), "both indexes hold the same entry");
        }
        assert_eq!(store.memory().keys as usize, store.points.len());
    }

    /// A seeded xorshift: the packing tests' random steps.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Everything a reader of `s` can see at `snapshot`, as text.
    fn everything(s: &Store, keys: &[Vec<u8>], snapshot: u64) -> Vec<String> {
        let m = s.memory();
        // All but how many keys are packed: the one thing that differs.
        let mut out = vec![format!("keys {} {} {} {} {}", s.key_count(), m.keys, m.live_bytes, m.history_versions, m.history_bytes)];
        for k in keys {
            out.push(format!("{k:?} get {:?} any {:?} latest {}", s.get(k, snapshot), s.read_any(k, snapshot), s.latest_version(k)));
        }
        for (start, end) in [(&[][..], None), (&[1u8; 16][..], Some(&[2u8; 16][..])), (&[2u8; 16][..], None)] {
            for reverse in [false, true] {
                let mut seen = vec![];
                s.scan(start, end, snapshot, reverse, |k, v, value| {
                    seen.push(format!("{k:?}@{v}={value:?}"));
                    true
                });
                out.push(format!("scan {reverse}: {}", seen.join(" ")));
                let any: Vec<String> = s
                    .range_any(start.to_vec(), end.map(<[u8]>::to_vec), snapshot, reverse)
                    .map(|(k, v, value)| format!("{:?}@{v}={value:?}", &k[..]))
                    .collect();
                out.push(format!("range_any {reverse}: {}", any.join(" ")));
            }
            let mut seen = vec![];
            s.scan_history(start, end, snapshot, |k, versions| {
                seen.push(format!("{k:?}:{versions:?}"));
                true
            });
            out.push(format!("history: {}", seen.join(" ")));
            let mut seen = vec![];
            s.scan_resident(start, end, snapshot, |k, on_disk, versions| {
                seen.push(format!("{k:?}:{on_disk}:{versions:?}"));
                true
            });
            out.push(format!("resident: {}", seen.join(" ")));
            out.push(format!("latest in {}", s.latest_version_in(start, end)));
        }
        out
    }

    #[test]
    fn packed_keys_read_as_they_did_in_the_indexes() {
        // The same random writes, deletes, removals and expiries applied to
        // a store that packs at random moments and to one that never does:
        // every read at every version answers the same.
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (packing, plain) = (Store::new(), Store::new());
            let keys: Vec<Vec<u8>> = (0..30u8).map(|i| [&[1 + i % 2; 16][..], &[0x10, i]].concat()).collect();
            let mut version = 0;
            let mut packed_any = false;
            for step in 0..400 {
                match rng.below(20) {
                    0..=11 => {
                        let k = &keys[rng.below(keys.len() as u64) as usize];
                        version += 1;
                        let value = (rng.below(5) > 0).then(|| super::value(format!("v{version}")));
                        let oldest = if rng.below(3) == 0 { version } else { 0 };
                        let keep = 1 + rng.below(2) as usize;
                        for s in [&packing, &plain] {
                            if rng.0.is_multiple_of(2) {
                                let e = s.prepare(k);
                                s.apply_known(k, version, value.clone(), oldest, keep, &[], None, Some(&e));
                            } else {
                                s.apply_keeping(k, version, value.clone(), oldest, keep, &[]);
                            }
                        }
                    }
                    12..=15 => packed_any |= packing.pack(true) > 0,
                    16 => {
                        let run = [1 + rng.below(2) as u8; 16];
                        let end = [run[0] + 1; 16];
                        assert_eq!(packing.remove_range(&run, Some(&end)), plain.remove_range(&run, Some(&end)), "seed {seed} step {step}");
                    }
                    17 => {
                        let k = &keys[rng.below(keys.len() as u64) as usize];
                        let v = plain.latest_version(k);
                        assert_eq!(packing.remove_if_latest(k, v), plain.remove_if_latest(k, v), "seed {seed} step {step}");
                    }
                    _ => {
                        let at = rng.below(version + 2);
                        assert_eq!(everything(&packing, &keys, at), everything(&plain, &keys, at), "seed {seed} step {step} at {at}");
                    }
                }
            }
            assert!(packed_any, "seed {seed}: some keys were packed");
            for at in 0..=version + 1 {
                assert_eq!(everything(&packing, &keys, at), everything(&plain, &keys, at), "seed {seed} at {at}");
            }
        }
    }

    #[test]
    fn a_packed_key_costs_its_bytes_and_about_forty_more() {
        let s = Store::new();
        let n = 10_000u32;
        for i in 0..n {
            s.apply(format!("key:{i:08}").as_bytes(), i as u64 + 1, Some(super::value([7u8; 100])), 0);
        }
        assert_eq!(s.pack(true), n as usize);
        assert_eq!((s.points.len(), s.ordered.len(), s.packed_keys(), s.key_count()), (0, 0, n as usize, n as usize));
        let per_key = s.packed_now().unwrap().overhead_bytes() as f64 / n as f64;
        // 12 bytes of key and 2 of its length, a 32-byte row (version, value
        // pointer, where the key is, read stamp and flag), ~11 bytes of slots.
        assert!(per_key < 12.0 + 2.0 + 32.0 + 12.0, "{per_key} bytes a packed key besides its value");
        assert_eq!(s.get(b"key:00000042", u64::MAX).map(|(v, b)| (v, b.len())), Some((43, 100)));
        // Written again: back in the indexes, the older version kept.
        s.apply(b"key:00000042", n as u64 + 1, val("new"), 0);
        assert_eq!((s.points.len(), s.packed_keys(), s.key_count()), (1, n as usize - 1, n as usize));
        assert_eq!(s.get(b"key:00000042", 43).map(|(v, _)| v), Some(43));
        assert_eq!(s.get(b"key:00000042", u64::MAX).map(|(v, b)| (v, b.to_vec())), Some((n as u64 + 1, b"new".to_vec())));
        // Not due again until enough keys gather (or the arena is half dead).
        assert_eq!(s.pack(false), 0);
    }

    #[test]
    fn packing_while_keys_are_written_read_scanned_and_removed_loses_nothing() {
        let store = Arc::new(Store::new());
        let tracker = SnapshotTracker::new(0);
        let commit = Arc::new(parking_lot::Mutex::new(0u64));
        let key = |i: u32| [&[1u8; 16][..], &[0x10], &i.to_be_bytes()].concat();
        // Keys 0..600 always exist (rewritten, never deleted); 600..900 come and go.
        {
            let mut last = commit.lock();
            for i in 0..600 {
                *last += 1;
                store.apply(&key(i), *last, Some(super::value(last.to_le_bytes())), 0);
            }
            tracker.publish(*last);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut threads = vec![];
        for t in 0..2u64 {
            let (store, tracker, commit, stop) = (store.clone(), tracker.clone(), commit.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut rng = Rng(t + 7);
                while !stop.load(Ordering::Relaxed) {
                    let i = rng.below(900) as u32;
                    let k = key(i);
                    let e = store.prepare(&k);
                    let mut last = commit.lock();
                    *last += 1;
                    let value = (i < 600 || rng.below(2) == 0).then(|| super::value(last.to_le_bytes()));
                    store.apply_known(&k, *last, value, tracker.oldest_needed(), 1, &[], None, Some(&e));
                    tracker.publish(*last);
                }
            }));
        }
        for _ in 0..2 {
            let (store, tracker, stop) = (store.clone(), tracker.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut rng = Rng(99);
                while !stop.load(Ordering::Relaxed) {
                    let k = key(rng.below(600) as u32);
                    let (v, value) = store.get_visible(&k, &tracker).expect("a key that always exists is found");
                    assert_eq!(value[..], v.to_le_bytes(), "the value is the one its version wrote");
                    assert!(store.with_visible(&k, &tracker, |v, b| b[..] == v.to_le_bytes()).expect("found"));
                    assert!(store.latest_version(&k) > 0);
                }
            }));
        }
        {
            let (store, tracker, stop) = (store.clone(), tracker.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let snapshot = tracker.acquire();
                    let mut seen: Vec<Vec<u8>> = vec![];
                    store.scan(&[1u8; 16], Some(&[2u8; 16]), snapshot.version(), false, |k, _, _| {
                        seen.push(k.to_vec());
                        true
                    });
                    drop(snapshot);
                    assert!(seen.windows(2).all(|w| w[0] < w[1]), "a scan yields each key once, in order");
                    let stable = seen.iter().filter(|k| u32::from_be_bytes(k[17..21].try_into().unwrap()) < 600).count();
                    assert_eq!(stable, 600, "a scan sees every key that always exists");
                }
            }));
        }
        let mut moved = 0;
        for _ in 0..300 {
            moved += store.pack(true);
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        assert!(moved > 0, "keys moved into the arena");
        // Both indexes agree, and the counts add up.
        assert_eq!(store.ordered.len(), store.points.len());
        for e in store.ordered.iter() {
            assert!(store.points.get(&e.value()[..]).is_some());
        }
        let mut n = 0;
        store.scan(&[], None, u64::MAX, false, |_, _, _| {
            n += 1;
            true
        });
        assert_eq!(store.memory().keys as usize, store.key_count());
        assert!(n <= store.key_count() && n >= 600);
    }

    /// A run that left memory, loaded back by the first read that misses.
    struct OneColdRun {
        key: Vec<u8>,
        cold: std::sync::atomic::AtomicBool,
    }

    impl ColdData for OneColdRun {
        fn warm(&self, store: &Store, run: &[u8]) -> bool {
            if run != &self.key[..16] || !self.cold.swap(false, Ordering::AcqRel) {
                return false;
            }
            store.load_key(&self.key, 1, Some(super::value(b"kept")), false);
            store.set_cold_runs(0);
            true
        }
    }

    #[test]
    fn a_key_a_refused_write_prepared_in_a_cold_run_does_not_hide_the_run() {
        let store = Store::new();
        let key = [&[3u8; 16][..], &[0x10], b"k"].concat();
        store.apply(&key, 1, Some(super::value(b"kept")), 0);
        let cold = Arc::new(OneColdRun { key: key.clone(), cold: false.into() });
        store.set_cold(cold.clone());
        store.evict(&[3u8; 16], Some(&[4u8; 16]), || {
            cold.cold.store(true, Ordering::Release);
            store.set_cold_runs(1);
        });
        assert_eq!(store.key_count(), 0);
        // A write to the ended run prepares its key; until the refusal takes
        // it back, a read must still load the run rather than answer absent.
        store.prepare(&key);
        assert_eq!(store.get(&key, u64::MAX), Some((1, super::value(b"kept"))));
        store.discard_prepared(&key);
        assert_eq!(store.get(&key, u64::MAX), Some((1, super::value(b"kept"))), "the loaded version stays");
        assert_eq!(store.key_count(), 1);
    }

    #[test]
    fn an_entry_is_48_bytes_and_its_key_and_a_value_has_one_count() {
        // A KV key of 15 bytes is a 32-byte internal key: 80 bytes, one of
        // mimalloc's size classes (it was 96 as a `ThinArc`).
        assert_eq!(Entry::layout(32).size(), 80);
        let e = Entry::new(b"0123456789abcdef0123456789abcdef");
        assert_eq!(&*e, b"0123456789abcdef0123456789abcdef");
        let f = e.clone();
        assert_eq!(f.head().count.load(Ordering::Relaxed), 2);
        drop(e);
        assert_eq!(f.head().count.load(Ordering::Relaxed), 1);
        assert_eq!(&*f, b"0123456789abcdef0123456789abcdef");
        assert_eq!(std::mem::size_of_val(&*value([0u8; 100])), 100);
        assert_eq!(std::mem::size_of::<Value>(), 16, "a fat pointer; its allocation holds one count, no weak count");
    }

    #[test]
    fn a_removed_key_frees_its_versions_though_scans_passed_it() {
        // crossbeam-skiplist's own range iterator leaked a reference to each
        // node it passed: after a scan, a removed key was never freed.
        let probe: Value = super::value(&b"probe"[..]);
        let store = Store::new();
        let key = |i: u64| [&[1u8; 16][..], &i.to_be_bytes()].concat();
        for i in 0..100 {
            store.apply(&key(i), i + 1, Some(if i % 10 == 3 { probe.clone() } else { super::value(&b"v"[..]) }), 0);
        }
        assert_eq!(Value::count(&probe), 11);
        let mut seen = 0;
        store.scan(&[1u8; 16], Some(&[2u8; 16]), u64::MAX, false, |_, _, _| {
            seen += 1;
            true
        });
        store.scan(&[1u8; 16], Some(&[2u8; 16]), u64::MAX, true, |_, _, _| true);
        assert_eq!(store.range_any(key(10), Some(key(60)), u64::MAX, true).count(), 50);
        store.scan_history(&[1u8; 16], None, u64::MAX, |_, _| true);
        assert_eq!(seen, 100);
        assert_eq!(store.remove_range(&[1u8; 16], Some(&[2u8; 16])), 100);
        for _ in 0..64 {
            crossbeam_epoch::pin().flush();
        }
        assert_eq!(Value::count(&probe), 1, "every removed version was freed");
    }

    #[test]
    fn ranges_read_in_order_and_reverse_within_their_bounds() {
        let store = Store::new();
        for i in [1u8, 3, 5, 7, 9] {
            store.apply(&[i], i as u64, val("x"), 0);
        }
        let keys = |reverse: bool, start: &[u8], end: Option<&[u8]>| {
            let mut out = Vec::new();
            store.scan(start, end, u64::MAX, reverse, |k, _, _| {
                out.push(k[0]);
                true
            });
            out
        };
        assert_eq!(keys(false, &[3], Some(&[8])), [3, 5, 7]);
        assert_eq!(keys(true, &[3], Some(&[8])), [7, 5, 3]);
        assert_eq!(keys(false, &[4], None), [5, 7, 9]);
        assert_eq!(keys(true, &[4], None), [9, 7, 5]);
        assert_eq!(keys(true, &[0], Some(&[1])), Vec::<u8>::new());
        assert_eq!(keys(false, &[9], Some(&[9])), Vec::<u8>::new());
        let any: Vec<u8> = store.range_any(vec![2], Some(vec![9]), u64::MAX, true).map(|(e, _, _)| e[0]).collect();
        assert_eq!(any, [7, 5, 3]);
    }

    #[test]
    fn a_reader_sees_the_newest_version_at_or_below_its_snapshot() {
        let s = Store::new();
        s.apply(b"k", 1, val("a"), 0);
        s.apply(b"k", 3, val("b"), 0);
        assert!(s.get(b"k", 0).is_none());
        assert_eq!(&*s.get(b"k", 1).unwrap().1, b"a");
        assert_eq!(&*s.get(b"k", 2).unwrap().1, b"a");
        assert_eq!(&*s.get(b"k", 3).unwrap().1, b"b");
    }

    #[test]
    fn tombstones_hide_older_versions_and_are_collected() {
        let s = Store::new();
        s.apply(b"k", 1, val("a"), 0);
        s.apply(b"k", 2, None, 1);
        assert!(s.get(b"k", 2).is_none());
        assert_eq!(&*s.get(b"k", 1).unwrap().1, b"a");
        s.apply(b"j", 3, val("x"), 3);
        s.apply(b"k", 4, None, 4);
        assert_eq!(s.key_count(), 1);
    }

    #[test]
    fn pruning_keeps_what_the_oldest_reader_needs() {
        let s = Store::new();
        for v in 1..=5 {
            s.apply(b"k", v, val(&v.to_string()), 3);
        }
        assert_eq!(&*s.get(b"k", 3).unwrap().1, b"3");
        assert_eq!(&*s.get(b"k", 5).unwrap().1, b"5");
    }

    #[test]
    fn an_unregistered_reader_never_misses_a_key_that_commits_keep_rewriting() {
        // A writer rewrites one key, pruning with no registered reader; a
        // reader on another thread must find it every time.
        let s = Arc::new(Store::new());
        let tracker = SnapshotTracker::new(0);
        s.apply(b"k", 1, val("0"), 0);
        tracker.publish(1);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (s, tracker, stop) = (s.clone(), tracker.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert!(s.get_visible(b"k", &tracker).is_some(), "key read as absent after {reads} reads");
                    assert!(s.with_visible(b"k", &tracker, |_, b| b.len()).is_some(), "key read as absent after {reads} reads");
                    reads += 1;
                }
            })
        };
        for v in 2..200_000u64 {
            s.apply(b"k", v, val("x"), tracker.oldest_needed());
            tracker.publish(v);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
    }

    #[test]
    fn scans_are_ordered_and_bounded() {
        let s = Store::new();
        for (i, k) in ["b", "a", "d", "c"].iter().enumerate() {
            s.apply(k.as_bytes(), i as u64 + 1, val(k), 0);
        }
        let mut seen = vec![];
        s.scan(b"b", Some(b"d"), 10, false, |k, _, _| {
            seen.push(String::from_utf8(k.to_vec()).unwrap());
            true
        });
        assert_eq!(seen, ["b", "c"]);
        seen.clear();
        s.scan(b"a", None, 10, true, |k, _, _| {
            seen.push(String::from_utf8(k.to_vec()).unwrap());
            true
        });
        assert_eq!(seen, ["d", "c", "b", "a"]);
    }

    #[test]
    fn keeping_n_versions_drops_older_ones_but_never_what_a_reader_sees() {
        let s = Store::new();
        for v in 1..=5 {
            assert_eq!(s.apply_keeping(b"k", v, val(&format!("v{v}")), 0, 2, &[]), None, "no reader bound: nothing goes");
        }
        assert_eq!(s.memory().history_versions, 4);
        // Readers from 5 on: the newest two stay, and history is whole from 5.
        assert_eq!(s.apply_keeping(b"k", 6, val("v6"), 5, 2, &[]), Some(5));
        assert!(s.get(b"k", 4).is_none(), "version 4 is gone");
        assert_eq!(&*s.get(b"k", 5).unwrap().1, b"v5");
        // A reader at 6 holds it: the chain keeps 6 though keep is 2.
        s.apply_keeping(b"k", 7, val("v7"), 6, 2, &[]);
        s.apply_keeping(b"k", 8, val("v8"), 6, 2, &[]);
        assert_eq!(&*s.get(b"k", 6).unwrap().1, b"v6");
        assert_eq!(s.apply_keeping(b"k", 9, val("v9"), 9, 2, &[]), Some(8));
        assert_eq!(s.memory(), Memory { keys: 1, live_bytes: 1 + 2, history_versions: 1, history_bytes: 2, packed_keys: 0 });
    }

    #[test]
    fn memory_counts_follow_every_change_to_a_chain() {
        let s = Store::new();
        s.apply(b"ab", 1, val("xyz"), 0);
        s.apply(b"ab", 2, val("w"), 0);
        s.apply(b"c", 3, None, 0);
        assert_eq!(s.memory(), Memory { keys: 2, live_bytes: 2 + 1 + 1, history_versions: 1, history_bytes: 3, packed_keys: 0 });
        // Pruned to the one version readers need.
        s.apply(b"ab", 4, val("12345"), 4);
        assert_eq!(s.memory(), Memory { keys: 2, live_bytes: 2 + 5 + 1, history_versions: 0, history_bytes: 0, packed_keys: 0 });
        assert!(s.remove_if_latest(b"ab", 4));
        s.remove_range(b"c", None);
        assert_eq!(s.memory(), Memory::default());
    }

    #[test]
    fn a_pin_keeps_the_version_a_reader_there_sees_and_nothing_between() {
        let s = Store::new();
        for v in 1..=3 {
            s.apply_keeping(b"k", v, val(&format!("v{v}")), v - 1, 1, &[2]);
        }
        // Pinned at 2: versions 2 and 3 (the newest) stay.
        for v in 4..=50 {
            s.apply_keeping(b"k", v, val(&format!("v{v}")), v - 1, 1, &[2]);
        }
        assert_eq!(&*s.get(b"k", 2).unwrap().1, b"v2");
        assert_eq!(&*s.get(b"k", 50).unwrap().1, b"v50");
        // The pinned one, the one the last write replaced (a reader at 49 sees it), the newest.
        assert_eq!(s.memory().history_versions, 2);
        // Without the pin, the next write lets it go: history is whole from 50.
        assert_eq!(s.apply_keeping(b"k", 51, val("v51"), 50, 1, &[]), Some(50));
        assert!(s.get(b"k", 2).is_none());
    }

    #[test]
    fn a_large_value_edited_at_one_spot_keeps_its_history_as_back_deltas() {
        let s = Store::new();
        let base: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
        let version_bytes = |v: u64| {
            let mut b = base.clone();
            b[10_000..10_008].copy_from_slice(&v.to_le_bytes());
            b
        };
        for v in 1..=100 {
            s.apply(b"doc", v, Some(super::value(&version_bytes(v)[..])), 0);
        }
        let m = s.memory();
        assert_eq!(m.history_versions, 99);
        // 99 older versions of 20 KB in a few bytes each (every 33rd whole: runs of at most 32 deltas).
        assert!(m.history_bytes < 4 * 20_000, "{m:?}");
        for v in 1..=100 {
            assert_eq!(&*s.get(b"doc", v).unwrap().1, &version_bytes(v)[..], "version {v}");
        }
        let mut seen = 0;
        s.scan_history(b"doc", None, 100, |_, h| {
            for (v, value) in h {
                assert_eq!(value.as_deref(), Some(&version_bytes(*v)[..]));
                seen += 1;
            }
            true
        });
        assert_eq!(seen, 100);
        // A pinned old version is made whole before what it leans on goes.
        assert!(s.apply_keeping(b"doc", 101, Some(super::value(&version_bytes(101)[..])), 100, 1, &[40]).is_some());
        assert_eq!(&*s.get(b"doc", 40).unwrap().1, &version_bytes(40)[..]);
        assert_eq!(&*s.get(b"doc", 101).unwrap().1, &version_bytes(101)[..]);
        assert!(s.get(b"doc", 60).map(|(v, _)| v) != Some(60), "version 60 went");
    }

    #[test]
    fn a_splice_changes_the_newest_bytes_in_place_only_when_nobody_holds_them() {
        // Random one-stretch changes of a 20 KB value through `apply_spliced`
        // against the same values written whole through `apply_keeping`:
        // every version reads back the same; a reader's copy of the bytes
        // (held across writes) never changes; the bytes are changed in
        // place only when nobody else holds them and the length stays.
        for seed in 0..20u64 {
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = |n: usize| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng % n as u64) as usize
            };
            let spliced = Store::new();
            let whole = Store::new();
            let mut cur: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
            spliced.apply(b"doc", 1, Some(super::value(&cur[..])), 0);
            whole.apply(b"doc", 1, Some(super::value(&cur[..])), 0);
            let mut held: Vec<(Value, Vec<u8>)> = Vec::new();
            let (mut in_place, mut copied) = (0, 0);
            let keep = if seed % 2 == 0 { usize::MAX } else { 1 + next(5) };
            for version in 2..200u64 {
                let prefix = next(cur.len());
                let span = next(16).min(cur.len() - prefix);
                let suffix = cur.len() - prefix - span;
                let len = if next(4) == 0 { next(24) } else { span };
                let middle: Vec<u8> = (0..len).map(|_| next(256) as u8).collect();
                let before = spliced.get(b"doc", u64::MAX).unwrap().1;
                let before_ptr = before.as_ptr();
                let reader = next(5) == 0;
                if reader {
                    held.push((before.clone(), before.to_vec()));
                }
                drop(before);
                let oldest = if keep == usize::MAX { 0 } else { version.saturating_sub(next(4) as u64) };
                let pins: &[u64] = if next(6) == 0 { &[3] } else { &[] };
                let a = spliced.apply_spliced(b"doc", version, (prefix, suffix), &middle, oldest, keep, pins);
                cur = [&cur[..prefix], &middle[..], &cur[cur.len() - suffix..]].concat();
                let b = whole.apply_known(b"doc", version, Some(super::value(&cur[..])), oldest, keep, pins, Some((prefix, suffix)), None);
                assert_eq!(a, b, "seed {seed} version {version}: the same history kept");
                let after = spliced.get(b"doc", u64::MAX).unwrap().1;
                assert_eq!(&*after, &cur[..]);
                if std::ptr::eq(after.as_ptr(), before_ptr) {
                    in_place += 1;
                    assert!(!reader && len == span, "seed {seed} version {version}: changed in place under a reader or at a new length");
                } else {
                    copied += 1;
                }
                for v in 1..=version {
                    assert_eq!(
                        spliced.get(b"doc", v).map(|(at, b)| (at, b.to_vec())),
                        whole.get(b"doc", v).map(|(at, b)| (at, b.to_vec())),
                        "seed {seed} version {v}"
                    );
                }
                for (value, bytes) in &held {
                    assert_eq!(&value[..], &bytes[..], "seed {seed}: a reader's bytes changed under it");
                }
                if next(8) == 0 {
                    held.clear();
                }
            }
            assert!(in_place > 50 && copied > 10, "seed {seed}: {in_place} in place, {copied} copied");
            assert_eq!(spliced.memory(), whole.memory(), "seed {seed}: the same memory counted");
        }
    }
}
