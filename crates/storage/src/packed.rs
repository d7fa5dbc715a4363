//! The packed layer: keys that hold one version and are not being written,
//! moved out of both indexes into one immutable, sorted arena (SPEC §17,
//! "leaner resident data"; issue 17).
//!
//! A resident key in the indexes costs its [`crate::Entry`] (48 bytes and
//! the key, one allocation), a skip-list node (~32 bytes) and a hash slot
//! (~19 bytes) besides its value. Most keys of a large database are written
//! once and then only read; in the arena such a key costs its bytes and
//! their length, a 32-byte row (its version, the pointer to its value — the
//! same allocation the chain held: nothing is copied —, where its bytes
//! are, a read stamp and a dead bit) and ~1.4 8-byte slots of the arena's
//! own hash table: about 45 bytes and the key instead of ~130.
//!
//! The arena never changes but for one atomic per key: the read stamp (as a
//! chain's `read_at`) with the dead bit. A key leaves the arena by being
//! marked dead (written again: it goes back into the indexes first; deleted
//! with its run, or expired); the next [`crate::Store::pack`] pass builds a
//! new arena without it. The store's invariant is that a key is *live* in
//! the arena or in the indexes, or — for a moment, while it moves — in both,
//! where the indexes win (they hold the arena's version, or a newer one a
//! write added meanwhile).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::store::{Value, Version};

/// What the arena holds of one key besides its bytes, in 32 bytes: half a
/// cache line. A point read touches the key's hash slot, its row, its
/// bytes and its value, one cache line each.
#[repr(C)]
struct Row {
    /// The key's version, with the store's flag bits (`ON_DISK`).
    version: u64,
    value: Value,
    /// Where the key is in `keys`: its length (2 bytes), then its bytes.
    start: u32,
    /// As `Chain::read_at` (31 bits), and [`DEAD`].
    read_at: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<Row>() == 32);

/// The top bit of [`Row::read_at`]: the key is not live here.
const DEAD: u32 = 1 << 31;

/// The arena's keys, one after another, each after its length (2 bytes,
/// little-endian: a key is at most `MAX_KEY_BYTES`), and their rows, in
/// key order.
struct Columns {
    keys: Vec<u8>,
    rows: Vec<Row>,
}

impl Columns {
    fn key(&self, i: usize) -> &[u8] {
        let start = self.rows[i].start as usize;
        let len = u16::from_le_bytes([self.keys[start], self.keys[start + 1]]) as usize;
        &self.keys[start + 2..start + 2 + len]
    }
}

/// One immutable arena of packed keys, in key order.
pub(crate) struct Packed {
    c: Columns,
    /// Open addressing, linear probing: 32 bits of a key's hash (its low
    /// ones: the high ones chose the slot) and `i + 1` of the key (0:
    /// empty), ~1.4 slots a key; a probe compares the key's bytes only when
    /// those bits match.
    slots: Vec<u64>,
    hasher: foldhash::fast::FixedState,
    /// Keys marked dead since the arena was built (or built dead).
    dead: AtomicUsize,
}

/// Builds a [`Packed`] from keys given in ascending order.
pub(crate) struct Builder {
    c: Columns,
    dead: usize,
}

impl Builder {
    pub(crate) fn with_capacity(n: usize, key_bytes: usize) -> Builder {
        Builder { c: Columns { keys: Vec::with_capacity(key_bytes), rows: Vec::with_capacity(n) }, dead: 0 }
    }

    /// Adds the next key (greater than every key added before); returns its
    /// index.
    pub(crate) fn push(&mut self, key: &[u8], version: u64, value: Value, read_at: u32, live: bool) -> usize {
        let c = &mut self.c;
        debug_assert!(c.rows.is_empty() || c.key(c.rows.len() - 1) < key, "keys are added in ascending order");
        let start = u32::try_from(c.keys.len()).expect("a packed arena holds less than 4 GiB of keys");
        c.keys.extend_from_slice(&u16::try_from(key.len()).expect("a key is at most MAX_KEY_BYTES").to_le_bytes());
        c.keys.extend_from_slice(key);
        let read_at = (read_at & !DEAD) | if live { 0 } else { DEAD };
        c.rows.push(Row { version, value, start, read_at: AtomicU32::new(read_at) });
        if !live {
            self.dead += 1;
        }
        c.rows.len() - 1
    }

    pub(crate) fn finish(mut self) -> Packed {
        self.c.keys.shrink_to_fit();
        let n = self.c.rows.len();
        let cap = (n + n * 2 / 5).max(8);
        let hasher = foldhash::fast::FixedState::with_seed(0x9e37_79b9_7f4a_7c15);
        let mut slots = vec![0u64; cap];
        for i in 0..n {
            let hash = hasher.hash_one(self.c.key(i));
            let mut at = slot_of(hash, cap);
            while slots[at] != 0 {
                at = if at + 1 == cap { 0 } else { at + 1 };
            }
            slots[at] = tag(hash) | u64::from(u32::try_from(i + 1).expect("a packed arena holds less than 4G keys"));
        }
        Packed { c: self.c, slots, hasher, dead: AtomicUsize::new(self.dead) }
    }
}

/// Where a slot keeps its 32 bits of the key's hash.
const TAG: u64 = 0xffff_ffff_0000_0000;

/// A hash's bits as a slot keeps them.
fn tag(hash: u64) -> u64 {
    hash << 32
}

/// The slot a hash starts at, of `cap` (multiply and shift: any `cap`).
fn slot_of(hash: u64, cap: usize) -> usize {
    ((hash as u128 * cap as u128) >> 64) as usize
}

impl Packed {
    pub(crate) fn len(&self) -> usize {
        self.c.rows.len()
    }

    /// Keys not marked dead.
    pub(crate) fn live_count(&self) -> usize {
        self.len() - self.dead.load(Ordering::Relaxed)
    }

    pub(crate) fn dead_count(&self) -> usize {
        self.dead.load(Ordering::Relaxed)
    }

    pub(crate) fn key(&self, i: usize) -> &[u8] {
        self.c.key(i)
    }

    /// The version of key `i`, with the store's flag bits.
    pub(crate) fn version_bits(&self, i: usize) -> u64 {
        self.c.rows[i].version
    }

    /// Key `i`'s one version, as a chain holds it.
    pub(crate) fn version(&self, i: usize) -> Version {
        let row = &self.c.rows[i];
        Version { version: row.version, value: Some(row.value.clone()) }
    }

    pub(crate) fn value(&self, i: usize) -> &Value {
        &self.c.rows[i].value
    }

    /// When key `i` was last read (as `Chain::read_at`).
    pub(crate) fn read_at(&self, i: usize) -> u32 {
        self.c.rows[i].read_at.load(Ordering::Relaxed) & !DEAD
    }

    /// Stamps key `i` as read at `now` (later than its stamp; never
    /// touching the dead bit).
    pub(crate) fn touch(&self, i: usize, now: u32) {
        let at = &self.c.rows[i].read_at;
        let mut was = at.load(Ordering::Relaxed);
        while was & !DEAD < now {
            match at.compare_exchange_weak(was, (was & DEAD) | (now & !DEAD), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => was = seen,
            }
        }
    }

    pub(crate) fn is_live(&self, i: usize) -> bool {
        self.c.rows[i].read_at.load(Ordering::Acquire) & DEAD == 0
    }

    /// Marks key `i` dead; whether it was live.
    pub(crate) fn kill(&self, i: usize) -> bool {
        let was = self.c.rows[i].read_at.fetch_or(DEAD, Ordering::AcqRel) & DEAD == 0;
        if was {
            self.dead.fetch_add(1, Ordering::Relaxed);
        }
        was
    }

    /// Marks key `i` (built dead, waiting for its move out of the indexes)
    /// live.
    pub(crate) fn revive(&self, i: usize) {
        if self.c.rows[i].read_at.fetch_and(!DEAD, Ordering::AcqRel) & DEAD != 0 {
            self.dead.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The index of `key`, live or dead.
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        let cap = self.slots.len();
        let hash = self.hasher.hash_one(key);
        let mut at = slot_of(hash, cap);
        loop {
            let s = self.slots[at];
            if s == 0 {
                return None;
            }
            if s & TAG == tag(hash) {
                let i = (s & !TAG) as usize - 1;
                if self.key(i) == key {
                    return Some(i);
                }
            }
            at = if at + 1 == cap { 0 } else { at + 1 };
        }
    }

    /// The index of the first key `>= key`.
    pub(crate) fn lower_bound(&self, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The bytes the arena holds besides the values (what a key costs here).
    #[cfg(test)]
    pub(crate) fn overhead_bytes(&self) -> usize {
        self.c.keys.capacity() + self.c.rows.capacity() * std::mem::size_of::<Row>() + self.slots.capacity() * 8
    }
}
