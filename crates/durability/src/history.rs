//! History files: the versions of keys that are no longer their newest,
//! moved out of memory by a checkpoint (SPEC §17), sorted and compressed,
//! read back one block at a time.
//!
//! File `history/<checkpoint version:020>.hist` (documented in
//! `docs/format.md`, "History files"):
//!
//! ```text
//! header:  magic "INMEMHIS" (8) | format version u32 | flags u32 | checkpoint version u64 |
//!          database id (16) | crc32c of the previous 40 bytes u32 | zero u32
//! block*:  compressed length u32 | raw length u32 | crc32c of the compressed bytes u32 | lz4 block
//! index:   per block: offset u64 | first key length u32 | first key | first version u64;
//!          then (format 2) a bloom filter of the file's keys: probes k u32 | bits m u64 |
//!          ceil(m / 64) words u64
//! footer:  index offset u64 | block count u64 | entry count u64 | oldest version u64 |
//!          crc32c of the index u32 | crc32c of the previous 36 bytes u32
//! ```
//!
//! A block's raw bytes are whole entries, encoded as in a checkpoint (`key
//! length u32 | key | commit version u64 | value length u32 (0xFFFFFFFF: a
//! delete) | value`), sorted by key and then version, oldest first; blocks
//! are cut at about 16 KiB of entries, a key's versions straddling blocks
//! when there are many. The index (each block's first key and version)
//! leads the lookup of a key's newest version at or below a snapshot to
//! the one block that holds it, and the footer's oldest version lets a
//! lookup older than everything in the file skip it.
//!
//! Invariants: a history file is seen under its final name only once it is
//! complete and fsynced (written as `.tmp`, fsynced, renamed, the directory
//! fsynced), and the manifest names it only after that; it is never
//! changed afterwards. [`HistoryFile::open`] checks every byte (every
//! block's checksum included); [`HistoryFile::open_kind`] without
//! `check_blocks` only the header, index and footer, each block being
//! checked whenever [`HistoryFile::try_block`] reads it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use in_mem_core::{Error, Result};

pub use crate::sealed::entries_of;
use crate::sealed::{Aside, BLOCK_HEADER_LEN, HEADER_LEN, push_entry};

pub const DIR: &str = "history";
pub const MAGIC: &[u8; 8] = b"INMEMHIS";
/// Cold files (SPEC §17): the same format, under `cold/` with their own
/// magic, each holding the newest versions of the runs one checkpoint
/// moved out of memory.
pub const COLD_DIR: &str = "cold";
pub const COLD_MAGIC: &[u8; 8] = b"INMEMCLD";

/// What a sorted file holds: older versions (`history/*.hist`) or cold
/// runs (`cold/*.cold`). Same layout, different directory and magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    History,
    Cold,
}

impl Kind {
    pub fn dir(self) -> &'static str {
        match self {
            Kind::History => DIR,
            Kind::Cold => COLD_DIR,
        }
    }
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::History => MAGIC,
            Kind::Cold => COLD_MAGIC,
        }
    }
    fn ext(self) -> &'static str {
        match self {
            Kind::History => "hist",
            Kind::Cold => "cold",
        }
    }
    /// The file of checkpoint `version` in `data_dir`.
    pub fn path(self, data_dir: &Path, version: u64) -> PathBuf {
        data_dir.join(self.dir()).join(format!("{version:020}.{}", self.ext()))
    }
}
/// 2: the index ends with a bloom filter of the file's keys (files of
/// format 1, without one, are still read).
pub const FORMAT_VERSION: u32 = 2;
/// Bits of bloom filter per key, and probes: about 0.8 % false positives.
const BLOOM_BITS_PER_KEY: u64 = 10;
const BLOOM_PROBES: u32 = 7;
const FOOTER_LEN: usize = 40;
/// Blocks are cut at about this many raw bytes: a lookup decompresses one
/// block.
const BLOCK_RAW_BYTES: usize = 16 << 10;
/// One key's versions may be many whole values of up to 16 MiB: a block
/// past this is damage.
const MAX_BLOCK_RAW: usize = 1 << 31;

pub fn file_name(version: u64) -> String {
    format!("{version:020}.hist")
}

/// The history file of checkpoint `version` in `data_dir`.
pub fn path(data_dir: &Path, version: u64) -> PathBuf {
    Kind::History.path(data_dir, version)
}

/// Writes one history file; nothing is visible under the final name until
/// [`HistoryWriter::finish`] returns.
pub struct HistoryWriter {
    out: Aside,
    kind: Kind,
    version: u64,
    /// The number in the file's name (a history file's is its version).
    number: u64,
    raw: Vec<u8>,
    /// The first key and version of the block being filled.
    first: Option<(Vec<u8>, u64)>,
    oldest: u64,
    /// The blocks written (the index is written from them at the end).
    blocks: Vec<Block>,
    entries: u64,
    at: u64,
    last_key: Vec<u8>,
    /// Each key's hash, for the bloom filter (history files only).
    hashes: Vec<u64>,
}

impl HistoryWriter {
    pub fn create(data_dir: &Path, version: u64, database_id: [u8; 16]) -> Result<HistoryWriter> {
        HistoryWriter::create_kind(data_dir, version, version, database_id, Kind::History)
    }

    /// A writer of a file of `kind` (history or cold) by checkpoint
    /// `version`, named by `number` (`kind.path(data_dir, number)`).
    pub fn create_kind(data_dir: &Path, version: u64, number: u64, database_id: [u8; 16], kind: Kind) -> Result<HistoryWriter> {
        Ok(HistoryWriter {
            out: Aside::create(&data_dir.join(kind.dir()), kind.magic(), FORMAT_VERSION, number, version, database_id)?,
            kind,
            version,
            number,
            raw: Vec::with_capacity(BLOCK_RAW_BYTES + 4096),
            first: None,
            oldest: u64::MAX,
            blocks: Vec::new(),
            entries: 0,
            at: HEADER_LEN as u64,
            last_key: Vec::new(),
            hashes: Vec::new(),
        })
    }

    /// Adds every version of one key, oldest first; keys come in order.
    pub fn add_key(&mut self, key: &[u8], versions: &[(u64, Option<&[u8]>)]) -> Result<()> {
        if versions.is_empty() {
            return Ok(());
        }
        debug_assert!(self.entries == 0 || key > self.last_key.as_slice(), "keys come in order");
        debug_assert!(versions.windows(2).all(|w| w[0].0 < w[1].0), "versions come oldest first");
        for (version, value) in versions {
            if self.raw.len() >= BLOCK_RAW_BYTES {
                self.flush_block()?;
            }
            if self.first.is_none() {
                self.first = Some((key.to_vec(), *version));
            }
            push_entry(&mut self.raw, key, *version, *value);
            self.oldest = self.oldest.min(*version);
            self.entries += 1;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        // (A cold file is read by run ranges, never probed by key.)
        if self.kind == Kind::History {
            self.hashes.push(key_hash(key));
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        let Some((first, first_version)) = self.first.take() else { return Ok(()) };
        let offset = self.at as usize;
        let written = self.out.block(&self.raw)?;
        self.blocks.push(Block { first_key: first.into(), first_version, offset, clen: written as usize - BLOCK_HEADER_LEN, rlen: self.raw.len() });
        self.at += written;
        self.raw.clear();
        Ok(())
    }

    /// Completes the file, fsyncs it, renames it into place, fsyncs the
    /// directory, and hands it back opened (what it holds is known: it is
    /// not read back). With no entries, nothing is left behind: `None`.
    pub fn finish(mut self) -> Result<Option<HistoryFile>> {
        if self.entries == 0 {
            let tmp = self.out.tmp.clone();
            drop(self.out);
            let _ = fs::remove_file(tmp);
            return Ok(None);
        }
        self.flush_block()?;
        let mut index = Vec::new();
        for b in &self.blocks {
            index.extend_from_slice(&(b.offset as u64).to_le_bytes());
            index.extend_from_slice(&(b.first_key.len() as u32).to_le_bytes());
            index.extend_from_slice(&b.first_key);
            index.extend_from_slice(&b.first_version.to_le_bytes());
        }
        let bloom = Bloom::of(&self.hashes);
        bloom.encode(&mut index);
        let mut footer = [0u8; FOOTER_LEN];
        footer[0..8].copy_from_slice(&self.at.to_le_bytes());
        footer[8..16].copy_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        footer[16..24].copy_from_slice(&self.entries.to_le_bytes());
        footer[24..32].copy_from_slice(&self.oldest.to_le_bytes());
        footer[32..36].copy_from_slice(&crc32c::crc32c(&index).to_le_bytes());
        let crc = crc32c::crc32c(&footer[0..36]);
        footer[36..40].copy_from_slice(&crc.to_le_bytes());
        self.out.write(&index)?;
        self.out.write(&footer)?;
        let len = self.at + (index.len() + FOOTER_LEN) as u64;
        let path = self.out.seal(&format!("{:020}.{}", self.number, self.kind.ext()))?;
        let file = File::open(&path).map_err(|e| Error::io(path.display(), e))?;
        Ok(Some(HistoryFile { path, version: self.version, file, len, blocks: self.blocks, entries: self.entries, oldest: self.oldest, bloom }))
    }
}

/// A key and its versions, oldest first (`None`: a delete).
pub type KeyVersions = (Vec<u8>, Vec<(u64, Option<Vec<u8>>)>);

struct Block {
    first_key: Box<[u8]>,
    first_version: u64,
    offset: usize,
    clen: usize,
    rlen: usize,
}

/// An opened, checked history file. Blocks are read with `pread` when
/// asked for (not mapped: its pages stay in the OS page cache, out of the
/// process's RSS).
pub struct HistoryFile {
    path: PathBuf,
    version: u64,
    file: File,
    len: u64,
    blocks: Vec<Block>,
    entries: u64,
    oldest: u64,
    /// Its keys (format 2; a format 1 file's filter admits every key).
    bloom: Bloom,
}

/// A key's 64-bit hash for the bloom filter: XXH3 (a specified algorithm,
/// so a file's filter reads the same in every build).
fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// Probe `i` of a key with hash `h` in a filter of `m` bits.
fn probe(h: u64, i: u32, m: u64) -> u64 {
    let (h1, h2) = (h & 0xFFFF_FFFF, (h >> 32) | 1);
    h1.wrapping_add((i as u64).wrapping_mul(h2)) % m
}

/// A bloom filter: `m` bits, `k` probes at `h1 + i·h2 mod m` from the two
/// halves of a key's hash (double hashing). No bits: admits every key.
struct Bloom {
    k: u32,
    m: u64,
    words: Vec<u64>,
}

impl Bloom {
    fn of(hashes: &[u64]) -> Bloom {
        if hashes.is_empty() {
            return Bloom { k: 0, m: 0, words: Vec::new() };
        }
        let m = (hashes.len() as u64 * BLOOM_BITS_PER_KEY).max(64);
        let mut words = vec![0u64; m.div_ceil(64) as usize];
        for h in hashes {
            for i in 0..BLOOM_PROBES {
                let bit = probe(*h, i, m);
                words[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        Bloom { k: BLOOM_PROBES, m, words }
    }

    /// Whether the file may hold `key` (false: it surely does not).
    fn admits(&self, key: &[u8]) -> bool {
        let h = key_hash(key);
        self.m == 0
            || (0..self.k).all(|i| {
                let bit = probe(h, i, self.m);
                self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
            })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.k.to_le_bytes());
        out.extend_from_slice(&self.m.to_le_bytes());
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// The filter at the start of `bytes`, which it must fill exactly.
    fn decode(bytes: &[u8]) -> Option<Bloom> {
        let k = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
        let m = u64::from_le_bytes(bytes.get(4..12)?.try_into().ok()?);
        let words = bytes.get(12..)?;
        if words.len() as u64 != m.div_ceil(64) * 8 || (m == 0) != (k == 0) || k > 64 {
            return None;
        }
        Some(Bloom { k, m, words: words.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))).collect() })
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_exact_at(file, buf, offset);
    #[cfg(windows)]
    {
        let mut at = 0;
        while at < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(file, &mut buf[at..], offset + at as u64)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            at += n;
        }
        Ok(())
    }
}

impl HistoryFile {
    /// Opens the file at `path` and checks every byte of it: header, every
    /// block (checksum, decompression, entries in order and no newer than
    /// the file's checkpoint), index and footer. Damage is a
    /// `CorruptionError` naming the file, the block and its offset.
    pub fn open(path: &Path, database_id: Option<[u8; 16]>) -> Result<HistoryFile> {
        HistoryFile::open_kind(path, database_id, Kind::History, true)
    }

    /// Opens a file of `kind`; with `check_blocks` false, only its header,
    /// index and footer are read and checked (a cold file of gigabytes
    /// opens at once), and each block is checked when [`HistoryFile::try_block`]
    /// reads it.
    pub fn open_kind(path: &Path, database_id: Option<[u8; 16]>, kind: Kind, check_blocks: bool) -> Result<HistoryFile> {
        let name = path.display().to_string();
        let corrupt = |offset: usize, reason: String| Error::Corruption { file: name.clone(), offset: offset as u64, reason };
        let file = File::open(path).map_err(|e| Error::io(path.display(), e))?;
        let len = file.metadata().map_err(|e| Error::io(path.display(), e))?.len() as usize;
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(corrupt(0, "history file is shorter than its header and footer".into()));
        }
        let io = |e| Error::io(path.display(), e);
        let mut b = [0u8; HEADER_LEN];
        read_at(&file, &mut b, 0).map_err(io)?;
        if &b[0..8] != kind.magic() {
            return Err(corrupt(0, "history file has the wrong magic".into()));
        }
        if u32::from_le_bytes(b[40..44].try_into().unwrap()) != crc32c::crc32c(&b[0..40]) || b[44..48] != [0; 4] {
            return Err(corrupt(40, "history file header checksum mismatch".into()));
        }
        let format = u32::from_le_bytes(b[8..12].try_into().unwrap());
        if !(1..=FORMAT_VERSION).contains(&format) {
            return Err(corrupt(8, "unsupported history file format version".into()));
        }
        let version = u64::from_le_bytes(b[16..24].try_into().unwrap());
        if let Some(id) = database_id
            && b[24..40] != id
        {
            return Err(corrupt(24, "history file belongs to another database".into()));
        }
        let f = len - FOOTER_LEN;
        let mut footer = [0u8; FOOTER_LEN];
        read_at(&file, &mut footer, f as u64).map_err(io)?;
        if u32::from_le_bytes(footer[36..40].try_into().unwrap()) != crc32c::crc32c(&footer[0..36]) {
            return Err(corrupt(f, "history file footer checksum mismatch".into()));
        }
        let index_at = u64::from_le_bytes(footer[0..8].try_into().unwrap()) as usize;
        let count = u64::from_le_bytes(footer[8..16].try_into().unwrap()) as usize;
        let entries = u64::from_le_bytes(footer[16..24].try_into().unwrap());
        let oldest = u64::from_le_bytes(footer[24..32].try_into().unwrap());
        if index_at < HEADER_LEN || index_at > f {
            return Err(corrupt(f, "history file index offset is impossible".into()));
        }
        let mut index = vec![0u8; f - index_at];
        read_at(&file, &mut index, index_at as u64).map_err(io)?;
        let index = &index[..];
        if u32::from_le_bytes(footer[32..36].try_into().unwrap()) != crc32c::crc32c(index) {
            return Err(corrupt(index_at, "history file index checksum mismatch".into()));
        }
        let mut blocks = Vec::with_capacity(count.min(index.len() / 20));
        let mut counted = 0u64;
        let mut least = u64::MAX;
        // The last entry read, across blocks: entries are in order throughout.
        let mut previous: Option<(Vec<u8>, u64)> = None;
        let mut r = 0;
        for n in 0..count {
            let bad = || corrupt(index_at + r, format!("index entry of block {n} is cut short"));
            let offset = index.get(r..r + 8).map(|x| u64::from_le_bytes(x.try_into().unwrap()) as usize).ok_or_else(bad)?;
            let klen = index.get(r + 8..r + 12).map(|x| u32::from_le_bytes(x.try_into().unwrap()) as usize).ok_or_else(bad)?;
            let first_key = index.get(r + 12..r + 12 + klen).ok_or_else(bad)?;
            let first_version = index.get(r + 12 + klen..r + 20 + klen).map(|x| u64::from_le_bytes(x.try_into().unwrap())).ok_or_else(bad)?;
            r += 20 + klen;
            if !check_blocks {
                let after = blocks.last().map_or(HEADER_LEN, |p: &Block| p.offset + BLOCK_HEADER_LEN + 1);
                if offset < after || (n == 0 && offset != HEADER_LEN) || offset + BLOCK_HEADER_LEN + 1 > index_at {
                    return Err(corrupt(offset, format!("block {n} is not where the index says")));
                }
                // Its length is up to the next block's offset (or the
                // index); the rest is checked when the block is read.
                if let Some(p) = blocks.last_mut() {
                    p.clen = offset - p.offset - BLOCK_HEADER_LEN;
                }
                if let Some((pk, pv)) = &previous
                    && (first_key, first_version) <= (pk.as_slice(), *pv)
                {
                    return Err(corrupt(index_at + r, format!("index entry of block {n} is out of order")));
                }
                previous = Some((first_key.to_vec(), first_version));
                blocks.push(Block { first_key: first_key.into(), first_version, offset, clen: index_at - offset - BLOCK_HEADER_LEN, rlen: 0 });
                continue;
            }
            let expected = blocks.last().map_or(HEADER_LEN, |p: &Block| p.offset + BLOCK_HEADER_LEN + p.clen);
            if offset != expected {
                return Err(corrupt(offset, format!("block {n} is not where the index says")));
            }
            if offset + BLOCK_HEADER_LEN > index_at {
                return Err(corrupt(offset, format!("block {n} is cut short")));
            }
            let mut head = [0u8; BLOCK_HEADER_LEN];
            read_at(&file, &mut head, offset as u64).map_err(io)?;
            let clen = u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
            let rlen = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
            if rlen > MAX_BLOCK_RAW || clen > lz4_flex::block::get_maximum_output_size(rlen) || offset + BLOCK_HEADER_LEN + clen > index_at {
                return Err(corrupt(offset, format!("block {n}'s length is impossible")));
            }
            let block = Block { first_key: first_key.into(), first_version, offset, clen, rlen };
            let raw = read_block(&file, &block).map_err(io)?.map_err(|why| corrupt(offset, format!("block {n}: {why}")))?;
            let mut first = true;
            entries_of(&raw, |key, v, _| {
                if first && (key, v) != (first_key, first_version) {
                    return Err(format!("block {n} does not start with the entry the index names"));
                }
                if previous.as_ref().is_some_and(|(pk, pv)| (key, v) <= (pk.as_slice(), *pv)) {
                    return Err(format!("block {n}'s entries are out of order"));
                }
                if v > version {
                    return Err(format!("block {n} holds a version newer than the file's checkpoint"));
                }
                first = false;
                match &mut previous {
                    Some((pk, pv)) if pk.as_slice() == key => *pv = v,
                    _ => previous = Some((key.to_vec(), v)),
                }
                least = least.min(v);
                counted += 1;
                Ok(())
            })
            .map_err(|why| corrupt(offset, why))?;
            if first {
                return Err(corrupt(offset, format!("block {n} is empty")));
            }
            blocks.push(block);
        }
        let bloom = match format {
            1 if r == index.len() => Bloom { k: 0, m: 0, words: Vec::new() },
            1 => return Err(corrupt(index_at + r, "bytes after the last index entry".into())),
            _ => Bloom::decode(&index[r..]).ok_or_else(|| corrupt(index_at + r, "the bloom filter after the index is malformed".into()))?,
        };
        let end = blocks.last().map_or(HEADER_LEN, |p| p.offset + BLOCK_HEADER_LEN + p.clen);
        if end != index_at {
            return Err(corrupt(end, "bytes between the last block and the index".into()));
        }
        if check_blocks && (counted != entries || (entries > 0 && least != oldest)) {
            return Err(corrupt(f, "entry count or oldest version does not match the footer".into()));
        }
        Ok(HistoryFile { path: path.to_path_buf(), version, file, len: len as u64, blocks, entries, oldest, bloom })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint that wrote it: every version it holds is at or below.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// Whether the file may hold versions of `key`: false when its bloom
    /// filter says it surely does not (about 1 in 120 keys it does not hold
    /// pass anyway).
    pub fn may_hold(&self, key: &[u8]) -> bool {
        self.bloom.admits(key)
    }

    /// The oldest version it holds (of any key).
    pub fn oldest(&self) -> u64 {
        self.oldest
    }

    /// The block that holds `key`'s newest version at or below `snapshot`,
    /// if the file has one: the last block whose first entry is at or
    /// below (`key`, `snapshot`) (the caller checks the block).
    pub fn block_for(&self, key: &[u8], snapshot: u64) -> Option<usize> {
        if snapshot < self.oldest {
            return None;
        }
        let n = self.blocks.partition_point(|b| (&*b.first_key, b.first_version) <= (key, snapshot));
        n.checked_sub(1)
    }

    /// The blocks that may hold versions of `key`, in order.
    pub fn blocks_of(&self, key: &[u8]) -> std::ops::Range<usize> {
        let from = self.blocks.partition_point(|b| &*b.first_key < key).saturating_sub(1);
        let to = self.blocks.partition_point(|b| &*b.first_key <= key);
        from..to.max(from)
    }

    /// The blocks that may hold keys in `[start, end)`, in order.
    pub fn blocks_between(&self, start: &[u8], end: &[u8]) -> std::ops::Range<usize> {
        let from = self.blocks.partition_point(|b| &*b.first_key < start).saturating_sub(1);
        let to = self.blocks.partition_point(|b| &*b.first_key < end);
        from..to.max(from)
    }

    /// Every key the file holds with its versions (oldest first), in key
    /// order, one block decompressed at a time: what compaction merges.
    pub fn keys(&self) -> Keys<'_> {
        Keys { file: self, next_block: 0, ready: std::collections::VecDeque::new(), pending: None }
    }

    /// The raw bytes of block `n`, checked again. The file checked out when
    /// it was opened and is never written again; that it no longer reads
    /// back (a disk error, or a change behind the database's back) is a
    /// panic naming it, as a damaged mapped file would be a fault.
    /// The raw bytes of block `n`, checked (checksum, length, entries in
    /// order, none newer than the file's checkpoint): damage is a
    /// `CorruptionError` naming the file, the block and its offset.
    pub fn try_block(&self, n: usize) -> Result<Vec<u8>> {
        let b = &self.blocks[n];
        let corrupt = |why: String| Error::Corruption { file: self.path.display().to_string(), offset: b.offset as u64, reason: format!("block {n}: {why}") };
        let raw = read_block(&self.file, b).map_err(|e| Error::io(self.path.display(), e))?.map_err(corrupt)?;
        let mut previous: Option<(&[u8], u64)> = None;
        entries_of(&raw, |key, v, _| {
            if previous.is_none() && (key, v) != (&*b.first_key, b.first_version) {
                return Err("does not start with the entry the index names".into());
            }
            if previous.is_some_and(|p| (key, v) <= p) {
                return Err("entries are out of order".into());
            }
            if v & !(1 << 62) > self.version {
                return Err("holds a version newer than the file's checkpoint".into());
            }
            previous = Some((key, v));
            Ok(())
        })
        .map_err(corrupt)?;
        Ok(raw)
    }

    /// Reads and checks every block ([`HistoryFile::try_block`]).
    pub fn check(&self) -> Result<()> {
        (0..self.blocks.len()).try_for_each(|n| self.try_block(n).map(|_| ()))
    }

    pub fn block(&self, n: usize) -> Vec<u8> {
        match read_block(&self.file, &self.blocks[n]) {
            Ok(Ok(raw)) => raw,
            Ok(Err(why)) => panic!("history file {} changed after it was opened: block {n}: {why}", self.path.display()),
            Err(e) => panic!("history file {} cannot be read: block {n}: {e}", self.path.display()),
        }
    }
}

/// The keys of a history file in order ([`HistoryFile::keys`]): a key whose
/// versions straddle blocks is given once, whole.
pub struct Keys<'a> {
    file: &'a HistoryFile,
    next_block: usize,
    ready: std::collections::VecDeque<KeyVersions>,
    /// The last key read, which may go on in the next block.
    pending: Option<KeyVersions>,
}

impl Iterator for Keys<'_> {
    type Item = KeyVersions;

    fn next(&mut self) -> Option<KeyVersions> {
        loop {
            if let Some(k) = self.ready.pop_front() {
                return Some(k);
            }
            if self.next_block == self.file.blocks.len() {
                return self.pending.take();
            }
            let raw = self.file.block(self.next_block);
            self.next_block += 1;
            let (ready, pending) = (&mut self.ready, &mut self.pending);
            let _ = entries_of(&raw, |k, v, value| {
                let value = value.map(<[u8]>::to_vec);
                match pending {
                    Some((last, versions)) if last.as_slice() == k => versions.push((v, value)),
                    _ => ready.extend(pending.replace((k.to_vec(), vec![(v, value)]))),
                }
                Ok(())
            });
        }
    }
}

/// Reads one block (its header and compressed bytes) and decompresses it:
/// `Ok(Err(why))` for damage.
fn read_block(file: &File, block: &Block) -> std::io::Result<std::result::Result<Vec<u8>, String>> {
    let mut b = vec![0u8; BLOCK_HEADER_LEN + block.clen];
    read_at(file, &mut b, block.offset as u64)?;
    let compressed = &b[BLOCK_HEADER_LEN..];
    // (A block of a file opened without reading its blocks: its raw
    // length is the header's, which the checksum below does not cover.)
    let rlen = match block.rlen {
        0 => u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize,
        n => n,
    };
    if u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize != block.clen {
        return Ok(Err("its length is not where the index says".into()));
    }
    if rlen > MAX_BLOCK_RAW || block.clen > lz4_flex::block::get_maximum_output_size(rlen) {
        return Ok(Err("its length is impossible".into()));
    }
    if u32::from_le_bytes(b[8..12].try_into().unwrap()) != crc32c::crc32c(compressed) {
        return Ok(Err("checksum mismatch".into()));
    }
    let Ok(raw) = lz4_flex::block::decompress(compressed, rlen) else { return Ok(Err("does not decompress".into())) };
    if raw.len() != rlen {
        return Ok(Err("decompresses to the wrong length".into()));
    }
    Ok(Ok(raw))
}

/// A run id's 16 bytes as its text form (8-4-4-4-12 hex digits).
pub fn run_hex(run: &[u8; 16]) -> String {
    let h = run.iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Removes `.tmp` files a process left in `data_dir/history` while writing,
/// and history files the manifest does not name (`named`): written by a
/// checkpoint that died before its manifest.
pub fn remove_unnamed(data_dir: &Path, named: &[u64]) {
    remove_unnamed_kind(data_dir, named, Kind::History)
}

/// [`remove_unnamed`] for files of `kind`.
pub fn remove_unnamed_kind(data_dir: &Path, named: &[u64], kind: Kind) {
    let Ok(entries) = fs::read_dir(data_dir.join(kind.dir())) else { return };
    let ext = format!(".{}", kind.ext());
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let keep = name.strip_suffix(ext.as_str()).and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| named.contains(&v));
        if !keep {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Versions = Vec<(u64, Option<Vec<u8>>)>;

    fn write(dir: &Path, version: u64, keys: &[(Vec<u8>, Versions)]) -> PathBuf {
        let mut w = HistoryWriter::create(dir, version, [7; 16]).unwrap();
        for (k, vs) in keys {
            let vs: Vec<(u64, Option<&[u8]>)> = vs.iter().map(|(v, x)| (*v, x.as_deref())).collect();
            w.add_key(k, &vs).unwrap();
        }
        let written = w.finish().unwrap().unwrap();
        // The file handed back knows what a fresh open reads.
        let opened = HistoryFile::open(written.path(), Some([7; 16])).unwrap();
        assert_eq!(
            (written.version(), written.entries(), written.oldest(), written.bytes()),
            (opened.version(), opened.entries(), opened.oldest(), opened.bytes())
        );
        assert_eq!(written.keys().collect::<Vec<_>>(), opened.keys().collect::<Vec<_>>());
        written.path().to_path_buf()
    }

    fn sample(n: usize) -> Vec<(Vec<u8>, Versions)> {
        (0..n)
            .map(|i| {
                let key = format!("key:{i:06}").into_bytes();
                let versions =
                    (0..(i % 5 + 1) as u64).map(|v| (v * 10 + i as u64, if v % 3 == 2 { None } else { Some(vec![(i % 251) as u8; 40 + i % 300]) })).collect();
                (key, versions)
            })
            .collect()
    }

    fn read_all(f: &HistoryFile, key: &[u8]) -> Versions {
        let mut out = vec![];
        for n in f.blocks_of(key) {
            let raw = f.block(n);
            entries_of(&raw, |k, v, value| {
                if k == key {
                    out.push((v, value.map(|x| x.to_vec())));
                }
                Ok(())
            })
            .unwrap();
        }
        out
    }

    /// The newest version of `key` at or below `snapshot`, through `block_for`.
    fn read_at_snapshot(f: &HistoryFile, key: &[u8], snapshot: u64) -> Option<u64> {
        let raw = f.block(f.block_for(key, snapshot)?);
        let mut found = None;
        entries_of(&raw, |k, v, _| {
            if k == key && v <= snapshot {
                found = Some(v);
            }
            Ok(())
        })
        .unwrap();
        found
    }

    #[test]
    fn every_key_reads_back_its_versions_and_each_snapshot_finds_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = sample(3000);
        // A key with a long history straddles many blocks.
        keys.insert(1500, (b"key:001499~long".to_vec(), (1..=2000u64).map(|v| (v * 3, (v % 9 != 0).then(|| vec![v as u8; 60]))).collect()));
        let info = write(dir.path(), 100_000, &keys);
        let f = HistoryFile::open(&info, Some([7; 16])).unwrap();
        assert!(f.blocks.len() > 20, "several blocks: {}", f.blocks.len());
        assert!(f.blocks_of(b"key:001499~long").len() > 5, "the long key straddles blocks");
        assert_eq!(f.entries(), keys.iter().map(|(_, v)| v.len() as u64).sum::<u64>());
        assert_eq!(f.oldest(), 0);
        for (k, vs) in &keys {
            assert_eq!(&read_all(&f, k), vs);
            // The newest version at or below each snapshot, one block read.
            for snapshot in [0, 1, 7, 33, 1000, 2999, 3000, 5999, 6000, 100_000] {
                let expected = vs.iter().rev().find(|(v, _)| *v <= snapshot).map(|(v, _)| *v);
                assert_eq!(read_at_snapshot(&f, k, snapshot), expected, "{:?} at {snapshot}", String::from_utf8_lossy(k));
            }
        }
        assert_eq!(f.keys().collect::<Vec<_>>(), keys, "keys() gives every key whole, in order");
        assert!(read_all(&f, b"a").is_empty());
        assert!(read_all(&f, b"key:000001x").is_empty());
        assert!(read_all(&f, b"zzz").is_empty());
        assert!(HistoryFile::open(&info, Some([8; 16])).is_err(), "another database's file");
    }

    #[test]
    fn the_bloom_filter_admits_every_key_and_few_others_and_a_format_1_file_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let keys = sample(3000);
        let path = write(dir.path(), 100_000, &keys);
        let f = HistoryFile::open(&path, Some([7; 16])).unwrap();
        for (k, _) in &keys {
            assert!(f.may_hold(k), "a key the file holds always passes");
        }
        let passed = (0..10_000).filter(|i| f.may_hold(format!("absent:{i:06}").as_bytes())).count();
        assert!(passed < 300, "{passed} of 10,000 absent keys passed (about 80 expected)");
        // The same file as format 1 wrote it: no filter after the index.
        let good = fs::read(&path).unwrap();
        let footer = &good[good.len() - FOOTER_LEN..];
        let index_at = u64::from_le_bytes(footer[0..8].try_into().unwrap()) as usize;
        let entries_end = index_at + f.blocks.iter().map(|b| 20 + b.first_key.len()).sum::<usize>();
        // `body` (header, blocks, index) with `footer` resealed over its index.
        let sealed = |mut body: Vec<u8>| {
            let mut foot = footer.to_vec();
            foot[32..36].copy_from_slice(&crc32c::crc32c(&body[index_at..]).to_le_bytes());
            let crc = crc32c::crc32c(&foot[0..36]);
            foot[36..40].copy_from_slice(&crc.to_le_bytes());
            body.extend_from_slice(&foot);
            body
        };
        let mut old = good[..entries_end].to_vec();
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&old[0..40]);
        old[40..44].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, sealed(old.clone())).unwrap();
        let v1 = HistoryFile::open(&path, Some([7; 16])).unwrap();
        assert!(v1.may_hold(b"absent:000001"), "without a filter every key may be there");
        for (k, vs) in &keys {
            assert_eq!(&read_all(&v1, k), vs);
        }
        // A format 1 file with bytes after its index entries is damage.
        old.extend_from_slice(&[0; 4]);
        fs::write(&path, sealed(old)).unwrap();
        assert!(HistoryFile::open(&path, None).is_err());
    }

    #[test]
    fn an_empty_history_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = HistoryWriter::create(dir.path(), 5, [7; 16]).unwrap();
        assert!(w.finish().unwrap().is_none());
        assert_eq!(fs::read_dir(dir.path().join(DIR)).unwrap().count(), 0);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_a_corruption_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 900, &sample(400));
        let good = fs::read(&info).unwrap();
        let step = (good.len() / 997).max(1);
        let mut i = 0;
        while i < good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            fs::write(&info, &bad).unwrap();
            match HistoryFile::open(&info, Some([7; 16])) {
                Err(Error::Corruption { file, .. }) => assert!(file.ends_with(".hist"), "{file}"),
                Err(e) => panic!("flip at {i}: {e}"),
                Ok(_) => panic!("flip at {i} went unnoticed"),
            }
            i += step;
        }
        // A block's damage names the block.
        let mut bad = good.clone();
        bad[HEADER_LEN + BLOCK_HEADER_LEN + 5] ^= 0x01;
        fs::write(&info, &bad).unwrap();
        let Err(Error::Corruption { reason, offset, .. }) = HistoryFile::open(&info, None) else { panic!("damage unnoticed") };
        assert!(reason.starts_with("block 0"), "{reason}");
        assert_eq!(offset, HEADER_LEN as u64);
        fs::write(&info, &good[..good.len() - 1]).unwrap();
        assert!(HistoryFile::open(&info, None).is_err(), "cut short");
    }

    #[test]
    fn a_cold_file_opens_without_reading_its_blocks_and_checks_each_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let keys = sample(600);
        let mut w = HistoryWriter::create_kind(dir.path(), 5000, 3, [7; 16], Kind::Cold).unwrap();
        for (k, vs) in &keys {
            let vs: Vec<(u64, Option<&[u8]>)> = vs.iter().map(|(v, x)| (*v, x.as_deref())).collect();
            w.add_key(k, &vs).unwrap();
        }
        let path = w.finish().unwrap().unwrap().path().to_path_buf();
        assert_eq!(path, Kind::Cold.path(dir.path(), 3));
        assert!(HistoryFile::open(&path, None).is_err(), "a cold file is not a history file");
        let f = HistoryFile::open_kind(&path, Some([7; 16]), Kind::Cold, false).unwrap();
        assert!(f.blocks.len() > 3);
        // Every key reads back through the blocks that may hold its range.
        let mut seen = Vec::new();
        for n in f.blocks_between(b"key:000100", b"key:000200") {
            entries_of(&f.try_block(n).unwrap(), |k, v, value| {
                if k >= &b"key:000100"[..] && k < &b"key:000200"[..] {
                    seen.push((k.to_vec(), v, value.map(<[u8]>::to_vec)));
                }
                Ok(())
            })
            .unwrap();
        }
        let expected: Vec<_> = keys[100..200].iter().flat_map(|(k, vs)| vs.iter().map(move |(v, x)| (k.clone(), *v, x.clone()))).collect();
        assert_eq!(seen, expected);
        // A flipped bit in a block: the open does not notice, the read does,
        // naming the file and the block.
        let good = fs::read(&path).unwrap();
        let at = f.blocks[2].offset + BLOCK_HEADER_LEN + 7;
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        fs::write(&path, &bad).unwrap();
        let lazy = HistoryFile::open_kind(&path, None, Kind::Cold, false).unwrap();
        match lazy.try_block(2) {
            Err(Error::Corruption { file, reason, offset }) => {
                assert!(file.ends_with(".cold"), "{file}");
                assert!(reason.starts_with("block 2"), "{reason}");
                assert_eq!(offset, f.blocks[2].offset as u64);
            }
            other => panic!("damage unnoticed: {:?}", other.map(|r| r.len())),
        }
        assert!(lazy.try_block(1).is_ok(), "the other blocks still read");
        assert!(HistoryFile::open_kind(&path, None, Kind::Cold, true).is_err(), "a full check finds it at open");
        // A block's header (its lengths) is not under its checksum: checked on read too.
        let mut bad = good.clone();
        bad[f.blocks[1].offset + 5] ^= 0x01;
        fs::write(&path, &bad).unwrap();
        assert!(HistoryFile::open_kind(&path, None, Kind::Cold, false).unwrap().try_block(1).is_err());
        // The index and footer are checked at open.
        for at in [good.len() - 3, good.len() - 45] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            fs::write(&path, &bad).unwrap();
            assert!(HistoryFile::open_kind(&path, None, Kind::Cold, false).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn unnamed_and_unfinished_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // (Versions up to 22: files of checkpoints 100 and 200.)
        let a = write(dir.path(), 100, &sample(3));
        let b = write(dir.path(), 200, &sample(3));
        fs::write(dir.path().join(DIR).join("00000000000000000300.tmp"), b"x").unwrap();
        remove_unnamed(dir.path(), &[100]);
        assert!(a.exists());
        assert!(!b.exists());
        assert_eq!(fs::read_dir(dir.path().join(DIR)).unwrap().count(), 1);
    }
}
