//! What checkpoint images and history files share: the 48-byte header,
//! entries, LZ4 blocks with a checksum each, and being written aside and
//! sealed into place (`.tmp`, fsync, rename, directory fsync), so that a
//! file is only ever seen under its final name complete.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use in_mem_core::{Error, Result};

use crate::wal::sync_dir;

pub(crate) const HEADER_LEN: usize = 48;
pub(crate) const BLOCK_HEADER_LEN: usize = 12;
/// An entry's value length that marks a delete.
pub(crate) const TOMBSTONE: u32 = u32::MAX;

/// A file being written as `<dir>/<version:020>.tmp`, its header written:
/// `magic | format u32 | flags u32 (0) | version u64 | database id (16) |
/// crc32c of the previous 40 bytes u32 | zero u32`.
pub(crate) struct Aside {
    pub tmp: PathBuf,
    pub out: BufWriter<File>,
}

impl Aside {
    /// `number` names the `.tmp` file; `version` goes in the header.
    pub fn create(dir: &Path, magic: &[u8; 8], format: u32, number: u64, version: u64, database_id: [u8; 16]) -> Result<Aside> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        let tmp = dir.join(format!("{number:020}.tmp"));
        let file = File::create(&tmp).map_err(|e| Error::io(tmp.display(), e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_LEN];
        header[0..8].copy_from_slice(magic);
        header[8..12].copy_from_slice(&format.to_le_bytes());
        header[16..24].copy_from_slice(&version.to_le_bytes());
        header[24..40].copy_from_slice(&database_id);
        let crc = crc32c::crc32c(&header[0..40]);
        header[40..44].copy_from_slice(&crc.to_le_bytes());
        out.write_all(&header).map_err(|e| Error::io(tmp.display(), e))?;
        Ok(Aside { tmp, out })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| Error::io(self.tmp.display(), e))
    }

    /// Writes `raw` as one block (`compressed length u32 | raw length u32 |
    /// crc32c of the compressed bytes u32 | LZ4 block`); returns its size.
    pub fn block(&mut self, raw: &[u8]) -> Result<u64> {
        let block = lz4_flex::block::compress(raw);
        let mut head = [0u8; BLOCK_HEADER_LEN];
        head[0..4].copy_from_slice(&(block.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        head[8..12].copy_from_slice(&crc32c::crc32c(&block).to_le_bytes());
        self.write(&head)?;
        self.write(&block)?;
        Ok((BLOCK_HEADER_LEN + block.len()) as u64)
    }

    /// Fsyncs the file, renames it to `name` beside it and fsyncs the directory.
    pub fn seal(self, name: &str) -> Result<PathBuf> {
        let file = self.out.into_inner().map_err(|e| Error::io(self.tmp.display(), e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(self.tmp.display(), e))?;
        drop(file);
        let dir = self.tmp.parent().expect("a file in a directory");
        let path = dir.join(name);
        fs::rename(&self.tmp, &path).map_err(|e| Error::io(path.display(), e))?;
        sync_dir(dir)?;
        Ok(path)
    }
}

/// Appends one entry: `key length u32 | key | version u64 | value length
/// u32 (TOMBSTONE: a delete) | value`.
pub(crate) fn push_entry(raw: &mut Vec<u8>, key: &[u8], version: u64, value: Option<&[u8]>) {
    raw.extend_from_slice(&(key.len() as u32).to_le_bytes());
    raw.extend_from_slice(key);
    raw.extend_from_slice(&version.to_le_bytes());
    match value {
        Some(v) => {
            raw.extend_from_slice(&(v.len() as u32).to_le_bytes());
            raw.extend_from_slice(v);
        }
        None => raw.extend_from_slice(&TOMBSTONE.to_le_bytes()),
    }
}

/// Calls `f(key, version, value)` for each entry of a block's raw bytes.
pub fn entries_of<'a>(raw: &'a [u8], mut f: impl FnMut(&'a [u8], u64, Option<&'a [u8]>) -> std::result::Result<(), String>) -> std::result::Result<(), String> {
    let mut r = 0;
    while r < raw.len() {
        let u32_at = |r: usize| raw.get(r..r + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
        let klen = u32_at(r).ok_or("an entry runs past its block")?;
        let key = raw.get(r + 4..r + 4 + klen).ok_or("an entry's key runs past its block")?;
        let mut next = r + 4 + klen;
        let version = raw.get(next..next + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).ok_or("an entry runs past its block")?;
        next += 8;
        let vlen = u32_at(next).ok_or("an entry runs past its block")?;
        next += 4;
        let value = if vlen == TOMBSTONE as usize {
            None
        } else {
            let v = raw.get(next..next + vlen).ok_or("an entry's value runs past its block")?;
            next += vlen;
            Some(v)
        };
        f(key, version, value)?;
        r = next;
    }
    Ok(())
}
