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
//! crc32c <8 hex digits over every byte before this line>
//! ```
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
}

pub fn encode(m: &Manifest) -> String {
    let mut s = String::from(HEAD);
    for v in &m.checkpoints {
        s.push_str(&format!("checkpoint {v}\n"));
    }
    for v in &m.history {
        s.push_str(&format!("history {v}\n"));
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
        let m = Manifest { checkpoints: vec![9, 4], history: vec![2, 4] };
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
