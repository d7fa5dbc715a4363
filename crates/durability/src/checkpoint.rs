//! Checkpoints: a consistent image of every live key at one commit version,
//! so that recovery replays only the WAL after it and older segments can go.
//!
//! File `checkpoints/<version:020>.ckpt` (documented in `docs/format.md`):
//!
//! ```text
//! header:  magic "INMEMCKP" (8) | format version u32 | flags u32 | commit version u64 |
//!          database id (16) | crc32c of the previous 40 bytes u32 | zero u32
//! chunk*:  compressed length u32 | raw length u32 | crc32c of the compressed bytes u32 | lz4 block
//! end:     zero u32 | zero u32 | entry count u64 | crc32c of the previous 8 bytes u32
//! ```
//!
//! A chunk's raw bytes are whole entries, `key length u32 | key | commit
//! version u64 | value length u32 (0xFFFFFFFF: a delete) | value`, so a chunk
//! decodes on its own. One key may have several entries (its retained
//! history), oldest first. Integers are little-endian. Format 2: bit 62 of
//! an entry's version ([`ON_DISK`]) says that the key has older versions in
//! history files (`history.rs`); format 1 files (never that bit) are read
//! too.
//!
//! Invariant: a checkpoint file is only ever seen under its final name once
//! it is complete and fsynced (written as `.tmp`, fsynced, renamed, then the
//! directory fsynced); the manifest names it only after that.

use std::fs;
use std::path::{Path, PathBuf};

use in_mem_core::{Error, Result};

use crate::sealed::{Aside, BLOCK_HEADER_LEN as CHUNK_HEADER_LEN, HEADER_LEN, entries_of, push_entry};

pub const MAGIC: &[u8; 8] = b"INMEMCKP";
pub const FORMAT_VERSION: u32 = 2;
/// Set in an entry's version: older versions of the key are in history files.
pub const ON_DISK: u64 = 1 << 62;

/// `version` as an entry stores it: with [`ON_DISK`] when `on_disk`.
pub fn marked(version: u64, on_disk: bool) -> u64 {
    if on_disk { version | ON_DISK } else { version }
}
const CHUNK_RAW_BYTES: usize = 1 << 20;
const END_LEN: usize = 20;
/// Chunks are written at about 1 MiB raw, but one entry may be a whole
/// 16 MiB value plus its key: a chunk larger than this is damage.
const MAX_CHUNK_RAW: usize = 64 << 20;

pub fn file_name(version: u64) -> String {
    format!("{version:020}.ckpt")
}

/// What a finished or read checkpoint holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub path: PathBuf,
    pub database_id: [u8; 16],
    pub version: u64,
    pub entries: u64,
    pub bytes: u64,
}

/// Writes one checkpoint; nothing is visible under the final name until
/// [`CheckpointWriter::finish`] returns.
pub struct CheckpointWriter {
    out: Aside,
    database_id: [u8; 16],
    version: u64,
    raw: Vec<u8>,
    entries: u64,
    bytes: u64,
}

impl CheckpointWriter {
    pub fn create(dir: &Path, version: u64, database_id: [u8; 16]) -> Result<CheckpointWriter> {
        Ok(CheckpointWriter {
            out: Aside::create(dir, MAGIC, FORMAT_VERSION, version, version, database_id)?,
            database_id,
            version,
            raw: Vec::with_capacity(CHUNK_RAW_BYTES + 4096),
            entries: 0,
            bytes: HEADER_LEN as u64,
        })
    }

    /// Adds one entry; `on_disk`: the key has older versions in history files.
    pub fn add(&mut self, key: &[u8], version: u64, on_disk: bool, value: Option<&[u8]>) -> Result<()> {
        if version >= ON_DISK {
            return Err(Error::Internal { message: format!("commit version {version} is past what a checkpoint can hold (2^62)") });
        }
        push_entry(&mut self.raw, key, marked(version, on_disk), value);
        self.entries += 1;
        if self.raw.len() >= CHUNK_RAW_BYTES {
            self.flush_chunk()?;
        }
        Ok(())
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    fn flush_chunk(&mut self) -> Result<()> {
        if self.raw.is_empty() {
            return Ok(());
        }
        self.bytes += self.out.block(&self.raw)?;
        self.raw.clear();
        Ok(())
    }

    /// Completes the file, fsyncs it, renames it into place and fsyncs the
    /// directory.
    pub fn finish(mut self) -> Result<CheckpointInfo> {
        self.flush_chunk()?;
        let mut end = [0u8; END_LEN];
        end[8..16].copy_from_slice(&self.entries.to_le_bytes());
        let crc = crc32c::crc32c(&end[8..16]);
        end[16..20].copy_from_slice(&crc.to_le_bytes());
        self.out.write(&end)?;
        self.bytes += END_LEN as u64;
        let path = self.out.seal(&file_name(self.version))?;
        Ok(CheckpointInfo { path, database_id: self.database_id, version: self.version, entries: self.entries, bytes: self.bytes })
    }
}

/// Reads a checkpoint image held in memory, calling `f(key, version,
/// on_disk, value)` for each entry. Every byte is checked before it is used: any damage is a
/// `CorruptionError` naming `file` and the offset, and `f` may then have
/// seen some entries (the caller discards them).
pub fn decode(bytes: &[u8], file: &str, database_id: Option<[u8; 16]>, mut f: impl FnMut(&[u8], u64, bool, Option<&[u8]>) -> Result<()>) -> Result<(u64, u64)> {
    let corrupt = |offset: usize, reason: &str| Error::Corruption { file: file.to_string(), offset: offset as u64, reason: reason.into() };
    if bytes.len() < HEADER_LEN + END_LEN {
        return Err(corrupt(0, "checkpoint is shorter than its header and end marker"));
    }
    if &bytes[0..8] != MAGIC {
        return Err(corrupt(0, "checkpoint has the wrong magic"));
    }
    if u32::from_le_bytes(bytes[40..44].try_into().unwrap()) != crc32c::crc32c(&bytes[0..40]) || bytes[44..48] != [0; 4] {
        return Err(corrupt(40, "checkpoint header checksum mismatch"));
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if format != 1 && format != FORMAT_VERSION {
        return Err(corrupt(8, "unsupported checkpoint format version"));
    }
    let version = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    if let Some(id) = database_id
        && bytes[24..40] != id
    {
        return Err(corrupt(24, "checkpoint belongs to another database"));
    }
    let mut at = HEADER_LEN;
    let mut entries = 0u64;
    loop {
        let head = bytes.get(at..at + CHUNK_HEADER_LEN).ok_or_else(|| corrupt(at, "checkpoint is cut short (no end marker)"))?;
        let clen = u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
        let rlen = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
        if clen == 0 && rlen == 0 {
            let end = bytes.get(at..at + END_LEN).ok_or_else(|| corrupt(at, "end marker is cut short"))?;
            if u32::from_le_bytes(end[16..20].try_into().unwrap()) != crc32c::crc32c(&end[8..16]) {
                return Err(corrupt(at, "end marker checksum mismatch"));
            }
            let count = u64::from_le_bytes(end[8..16].try_into().unwrap());
            if count != entries {
                return Err(corrupt(at, "entry count does not match the end marker"));
            }
            if at + END_LEN != bytes.len() {
                return Err(corrupt(at + END_LEN, "bytes after the end marker"));
            }
            return Ok((version, entries));
        }
        if rlen > MAX_CHUNK_RAW || clen > lz4_flex::block::get_maximum_output_size(rlen) {
            return Err(corrupt(at, "chunk length is impossible"));
        }
        let block = bytes.get(at + CHUNK_HEADER_LEN..at + CHUNK_HEADER_LEN + clen).ok_or_else(|| corrupt(at, "chunk is cut short"))?;
        if u32::from_le_bytes(head[8..12].try_into().unwrap()) != crc32c::crc32c(block) {
            return Err(corrupt(at, "chunk checksum mismatch"));
        }
        let raw = lz4_flex::block::decompress(block, rlen).map_err(|_| corrupt(at, "chunk does not decompress"))?;
        if raw.len() != rlen {
            return Err(corrupt(at, "chunk decompresses to the wrong length"));
        }
        let mut failed = None;
        let parsed = entries_of(&raw, |key, entry_version, value| {
            let on_disk = format >= 2 && entry_version & ON_DISK != 0;
            let entry_version = if format >= 2 { entry_version & !ON_DISK } else { entry_version };
            if entry_version > version {
                return Err("entry is newer than the checkpoint".into());
            }
            if let Err(e) = f(key, entry_version, on_disk, value) {
                // The caller's own error, passed on as it is.
                failed = Some(e);
                return Err(String::new());
            }
            entries += 1;
            Ok(())
        });
        if let Some(e) = failed {
            return Err(e);
        }
        parsed.map_err(|why| corrupt(at, &why))?;
        at += CHUNK_HEADER_LEN + clen;
    }
}

/// Reads the checkpoint file at `path` (see [`decode`]).
pub fn read(path: &Path, database_id: Option<[u8; 16]>, f: impl FnMut(&[u8], u64, bool, Option<&[u8]>) -> Result<()>) -> Result<CheckpointInfo> {
    let bytes = fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    let (version, entries) = decode(&bytes, &path.display().to_string(), database_id, f)?;
    let database_id = bytes[24..40].try_into().unwrap();
    Ok(CheckpointInfo { path: path.to_path_buf(), database_id, version, entries, bytes: bytes.len() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Entry = (Vec<u8>, u64, bool, Option<Vec<u8>>);

    fn write(dir: &Path, version: u64, entries: &[Entry]) -> CheckpointInfo {
        let mut w = CheckpointWriter::create(dir, version, [7; 16]).unwrap();
        for (k, v, on_disk, val) in entries {
            w.add(k, *v, *on_disk, val.as_deref()).unwrap();
        }
        w.finish().unwrap()
    }

    fn sample(n: usize) -> Vec<Entry> {
        (0..n).map(|i| (format!("key{i:08}").into_bytes(), (i % 40) as u64, i % 3 == 0, (i % 7 != 0).then(|| vec![(i % 251) as u8; i % 300]))).collect()
    }

    #[test]
    fn round_trips_across_many_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let entries = sample(20_000);
        let info = write(dir.path(), 42, &entries);
        assert!(!dir.path().join("00000000000000000042.tmp").exists());
        let mut seen = Vec::new();
        let read = read(&info.path, Some([7; 16]), |k, v, on_disk, val| {
            seen.push((k.to_vec(), v, on_disk, val.map(|x| x.to_vec())));
            Ok(())
        })
        .unwrap();
        assert_eq!(read.version, 42);
        assert_eq!(read.entries, 20_000);
        assert_eq!(seen, entries);
    }

    #[test]
    fn any_flipped_bit_or_cut_is_a_corruption_error() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 1, &sample(300));
        let bytes = fs::read(&info.path).unwrap();
        for i in (0..HEADER_LEN).chain((HEADER_LEN..bytes.len()).step_by(7)) {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let r = decode(&b, "f", Some([7; 16]), |_, _, _, _| Ok(()));
            assert!(matches!(r, Err(Error::Corruption { .. })), "flip at {i} was accepted");
        }
        for cut in [0, 10, HEADER_LEN, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(decode(&bytes[..cut], "f", None, |_, _, _, _| Ok(())), Err(Error::Corruption { .. })), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer, "f", None, |_, _, _, _| Ok(())), Err(Error::Corruption { .. })));
        assert!(matches!(decode(&bytes, "f", Some([8; 16]), |_, _, _, _| Ok(())), Err(Error::Corruption { .. })));
    }
}
