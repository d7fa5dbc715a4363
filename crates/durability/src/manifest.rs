//! The manifest: the file that names the checkpoints recovery may start
//! from, newest first, and the history files (`history.rs`) that hold the
//! versions checkpoints moved out of memory, oldest first.
//!
//! ```text
//! in-mem manifest 1
//! checkpoint <version>
//! ...
//! history <version>
//! ...
//! cold <file> <run id, 32 hex digits> <since> <warm from> <bytes>
//! ...
//! coldfile <file> <bytes>
//! ...
//! crc32c <8 hex digits over every byte before this line>
//! ```
//!
//! A `cold` line says that a run's data is in cold file `file`
//! (`cold/<file>.cold`), written by checkpoint `since`, and not in the
//! images of the checkpoints from that one until `warm from` (0: still
//! cold): a run read
//! back into memory is in the images from `warm from` on, and its line is
//! kept while an older checkpoint named here may still be loaded.
//! `bytes`: what its entries take in the file. A `coldfile` line gives a cold
//! file's bytes of entries as written: what its runs' lines no longer hold
//! is dead (compaction rewrites the live runs of a file that is mostly dead).
//!
//! It is replaced atomically (temp file, fsync, rename, directory fsync),
//! and only after the checkpoints it names are complete on disk.

use std::fs;
use std::path::Path;

use in_mem_core::{Error, Result};

use crate::wal::sync_dir;

pub const FILE_NAME: &str = "MANIFEST";
const HEAD: &str = "in-mem manifest 1\n";

/// Checkpoint versions, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub checkpoints: Vec<u64>,
    /// History files, by the version of the checkpoint that wrote each, oldest first.
    pub history: Vec<u64>,
    /// Runs whose data a checkpoint moved to a cold file.
    pub cold: Vec<ColdLine>,
    /// Cold files by number, with the bytes of entries written to each.
    pub cold_files: Vec<(u64, u64)>,
}

/// A run in a cold file (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColdLine {
    pub file: u64,
    /// The checkpoint that moved the run out of memory.
    pub since: u64,
    pub run: [u8; 16],
    /// The first checkpoint whose image holds the run again (0: none yet).
    pub warm_from: u64,
    pub bytes: u64,
}

impl ColdLine {
    /// Whether the run's data is in the cold file, not the image, of
    /// checkpoint `version`.
    pub fn cold_at(&self, version: u64) -> bool {
        self.since <= version && (self.warm_from == 0 || version < self.warm_from)
    }
}

pub fn encode(m: &Manifest) -> String {
    let mut s = String::from(HEAD);
    for v in &m.checkpoints {
        s.push_str(&format!("checkpoint {v}\n"));
    }
    for v in &m.history {
        s.push_str(&format!("history {v}\n"));
    }
    for c in &m.cold {
        s.push_str(&format!("cold {} {} {} {} {}\n", c.file, hex::encode(c.run), c.since, c.warm_from, c.bytes));
    }
    for (file, bytes) in &m.cold_files {
        s.push_str(&format!("coldfile {file} {bytes}\n"));
    }
    let crc = crc32c::crc32c(s.as_bytes());
    s.push_str(&format!("crc32c {crc:08x}\n"));
    s
}

pub fn decode(text: &[u8], file: &str) -> Result<Manifest> {
    let corrupt = |reason: &str| Error::Corruption { file: file.to_string(), offset: 0, reason: reason.into() };
    let text = std::str::from_utf8(text).map_err(|_| corrupt("manifest is not UTF-8"))?;
    let body_end = text.rfind("crc32c ").ok_or_else(|| corrupt("manifest has no checksum line"))?;
    let (body, tail) = text.split_at(body_end);
    let crc = tail.strip_prefix("crc32c ").and_then(|t| t.strip_suffix('\n')).and_then(|h| u32::from_str_radix(h, 16).ok());
    if crc != Some(crc32c::crc32c(body.as_bytes())) {
        return Err(corrupt("manifest checksum mismatch"));
    }
    let rest = body.strip_prefix(HEAD).ok_or_else(|| corrupt("manifest has an unknown header"))?;
    let mut m = Manifest::default();
    for line in rest.lines() {
        if let Some(fields) = line.strip_prefix("coldfile ") {
            let bad = || corrupt("manifest has a malformed line");
            let (file, bytes) = fields.split_once(' ').ok_or_else(bad)?;
            m.cold_files.push((file.parse().map_err(|_| bad())?, bytes.parse().map_err(|_| bad())?));
            continue;
        }
        if !m.cold_files.is_empty() {
            return Err(corrupt("manifest has a malformed line"));
        }
        if let Some(fields) = line.strip_prefix("cold ") {
            let bad = || corrupt("manifest has a malformed line");
            let f: Vec<&str> = fields.split(' ').collect();
            let [file, run, since, warm_from, bytes] = f[..] else { return Err(bad()) };
            let run: [u8; 16] = hex::decode(run).ok().and_then(|r| r.try_into().ok()).ok_or_else(bad)?;
            let n = |s: &str| s.parse::<u64>().map_err(|_| bad());
            m.cold.push(ColdLine { file: n(file)?, run, since: n(since)?, warm_from: n(warm_from)?, bytes: n(bytes)? });
            continue;
        }
        if !m.cold.is_empty() {
            return Err(corrupt("manifest has a malformed line"));
        }
        let (list, v) = match line.split_once(' ') {
            Some(("checkpoint", v)) if m.history.is_empty() => (&mut m.checkpoints, v),
            Some(("history", v)) => (&mut m.history, v),
            _ => return Err(corrupt("manifest has a malformed line")),
        };
        list.push(v.parse::<u64>().map_err(|_| corrupt("manifest has a malformed line"))?);
    }
    Ok(m)
}

/// The manifest in `dir`, or `None` if there is none yet.
pub fn read(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(FILE_NAME);
    match fs::read(&path) {
        Ok(bytes) => decode(&bytes, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path.display(), e)),
    }
}

/// Replaces the manifest in `dir` atomically.
pub fn write(dir: &Path, m: &Manifest) -> Result<()> {
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let path = dir.join(FILE_NAME);
    let io = |e| Error::io(tmp.display(), e);
    {
        let mut f = fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut f, encode(m).as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, &path).map_err(|e| Error::io(path.display(), e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_any_change() {
        let m = Manifest {
            checkpoints: vec![9, 4],
            history: vec![2, 4],
            cold: vec![
                ColdLine { file: 1, run: [0xab; 16], since: 4, warm_from: 0, bytes: 77 },
                ColdLine { file: 2, run: [3; 16], since: 9, warm_from: 12, bytes: 5 },
            ],
            cold_files: vec![(1, 900), (2, 5)],
        };
        let text = encode(&m);
        assert_eq!(decode(text.as_bytes(), "M").unwrap(), m);
        for i in 0..text.len() {
            let mut b = text.clone().into_bytes();
            b[i] ^= 0x01;
            assert!(decode(&b, "M").is_err(), "flip at {i}");
        }
        assert!(decode(&text.as_bytes()[..text.len() - 3], "M").is_err());
    }
}
