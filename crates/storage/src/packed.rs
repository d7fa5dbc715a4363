//! The packed layer: keys that hold one version and are not being written,
//! moved out of both indexes into one immutable, sorted arena (SPEC §17,
//! "leaner resident data"; issue 17).
//!
//! A resident key in the indexes costs its [`crate::Entry`] (48 bytes and
//! the key, one allocation), a skip-list node (~32 bytes) and a hash slot
//! (~19 bytes) besides its value. Most keys of a large database are written
//! once and then only read; in the arena such a key costs its bytes, an end
//! offset, its version, the pointer to its value (the same allocation the
//! chain held: nothing is copied), a read stamp, a live flag and a slot of
//! the arena's own hash table — about 40 bytes and the key instead of ~130.
//!
//! The arena never changes but for two atomics per key: the read stamp (as
//! a chain's `read_at`) and the live flag. A key leaves the arena by being
//! marked dead (written again: it goes back into the indexes first; deleted
//! with its run, or expired); the next [`crate::Store::pack`] pass builds a
//! new arena without it. The store's invariant is that a key is *live* in
//! the arena or in the indexes, or — for a moment, while it moves, and then
//! with the same version in both — in both (where the indexes win).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::store::Value;

/// The arena's keys and what each holds, one column each, in key order.
struct Columns {
    /// The keys' bytes, one after another.
    keys: Vec<u8>,
    /// Where key `i` ends in `keys` (it starts where key `i - 1` ends).
    ends: Vec<u32>,
    /// Each key's version, with the store's flag bits (`ON_DISK`).
    versions: Vec<u64>,
    values: Vec<Value>,
    /// As `Chain::read_at`.
    read_at: Vec<AtomicU32>,
    live: Vec<AtomicBool>,
}

impl Columns {
    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }
}

/// One immutable arena of packed keys, in key order.
pub(crate) struct Packed {
    c: Columns,
    /// Open addressing, linear probing: `i + 1` of the key whose hash
    /// starts there (0: empty); ~1.4 slots a key.
    slots: Vec<u32>,
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
        let c = Columns {
            keys: Vec::with_capacity(key_bytes),
            ends: Vec::with_capacity(n),
            versions: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            read_at: Vec::with_capacity(n),
            live: Vec::with_capacity(n),
        };
        Builder { c, dead: 0 }
    }

    /// Adds the next key (greater than every key added before); returns its
    /// index.
    pub(crate) fn push(&mut self, key: &[u8], version: u64, value: Value, read_at: u32, live: bool) -> usize {
        let c = &mut self.c;
        debug_assert!(c.ends.is_empty() || c.key(c.ends.len() - 1) < key, "keys are added in ascending order");
        c.keys.extend_from_slice(key);
        c.ends.push(u32::try_from(c.keys.len()).expect("a packed arena holds less than 4 GiB of keys"));
        c.versions.push(version);
        c.values.push(value);
        c.read_at.push(AtomicU32::new(read_at));
        c.live.push(AtomicBool::new(live));
        if !live {
            self.dead += 1;
        }
        c.ends.len() - 1
    }

    pub(crate) fn finish(mut self) -> Packed {
        self.c.keys.shrink_to_fit();
        let n = self.c.ends.len();
        let cap = (n + n * 2 / 5).max(8);
        let hasher = foldhash::fast::FixedState::with_seed(0x9e37_79b9_7f4a_7c15);
        let mut slots = vec![0u32; cap];
        for i in 0..n {
            let mut at = slot_of(hasher.hash_one(self.c.key(i)), cap);
            while slots[at] != 0 {
                at = if at + 1 == cap { 0 } else { at + 1 };
            }
            slots[at] = u32::try_from(i + 1).expect("a packed arena holds less than 4G keys");
        }
        Packed { c: self.c, slots, hasher, dead: AtomicUsize::new(self.dead) }
    }
}

/// The slot a hash starts at, of `cap` (multiply and shift: any `cap`).
fn slot_of(hash: u64, cap: usize) -> usize {
    ((hash as u128 * cap as u128) >> 64) as usize
}

impl Packed {
    pub(crate) fn len(&self) -> usize {
        self.c.ends.len()
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
        self.c.versions[i]
    }

    pub(crate) fn value(&self, i: usize) -> &Value {
        &self.c.values[i]
    }

    pub(crate) fn read_at(&self, i: usize) -> &AtomicU32 {
        &self.c.read_at[i]
    }

    pub(crate) fn is_live(&self, i: usize) -> bool {
        self.c.live[i].load(Ordering::Acquire)
    }

    /// Marks key `i` dead; whether it was live.
    pub(crate) fn kill(&self, i: usize) -> bool {
        let was = self.c.live[i].swap(false, Ordering::AcqRel);
        if was {
            self.dead.fetch_add(1, Ordering::Relaxed);
        }
        was
    }

    /// Marks key `i` (built dead, waiting for its move out of the indexes)
    /// live.
    pub(crate) fn revive(&self, i: usize) {
        if !self.c.live[i].swap(true, Ordering::AcqRel) {
            self.dead.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The index of `key`, live or dead.
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        let cap = self.slots.len();
        let mut at = slot_of(self.hasher.hash_one(key), cap);
        loop {
            let s = self.slots[at];
            if s == 0 {
                return None;
            }
            let i = s as usize - 1;
            if self.key(i) == key {
                return Some(i);
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
        let c = &self.c;
        c.keys.capacity()
            + c.ends.capacity() * 4
            + c.versions.capacity() * 8
            + c.values.capacity() * std::mem::size_of::<Value>()
            + c.read_at.capacity() * 4
            + c.live.capacity()
            + self.slots.capacity() * 4
    }
}
