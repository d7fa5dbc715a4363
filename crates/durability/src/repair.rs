//! `{ repair: true }`: what recovery does instead of failing when the data
//! directory is damaged. Nothing is ever deleted without a copy: damaged
//! bytes are saved under `damaged/<time>/` first, and the report says what
//! was dropped.
//!
//! - Damage in the WAL at (segment, offset): the bytes from `offset` to the
//!   end of that segment, and every later segment, are copied aside; the
//!   segment is cut at `offset` (removed if the cut is inside its header) and
//!   the later segments are removed. The database then holds every commit
//!   before the damage and none after it.
//! - A damaged manifest: it is copied aside and rebuilt from the checkpoint
//!   files present (complete ones only ever have their final name).
//! - A checkpoint that cannot be loaded, with no other to fall back to: it is
//!   moved aside and dropped from the manifest; recovery then needs the WAL
//!   from its beginning, and a WAL that no longer has it is cut as above.
//! - A damaged history file: it is moved aside and dropped from the
//!   manifest. The versions it held (those a checkpoint moved out of
//!   memory) are lost: a replay, fork or diff that needed one of them reads
//!   the key's next older version that is still kept, or none.
//! - A damaged cold file (found at an open with `repair: true`, which checks
//!   every block of every cold file): it is moved aside and its runs'
//!   lines dropped from the manifest. Those runs keep their records and
//!   their history, but their data as of the checkpoint that made them cold
//!   is lost (unless that checkpoint's image still holds it: runs that left
//!   memory with nothing committed after it, which the next open then
//!   loads from the image); the report names them.

use std::fs;
use std::path::{Path, PathBuf};

use in_mem_core::{Error, Result};

use crate::manifest::{self, Manifest};
use crate::recovery::list_segments;
use crate::wal::sync_dir;

/// One repair made at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The damaged file, as the `CorruptionError` named it.
    pub file: String,
    pub offset: u64,
    pub reason: String,
    /// Bytes removed from the data directory (all of them copied aside).
    pub dropped_bytes: u64,
    /// Whole files removed (copied aside).
    pub dropped_files: Vec<String>,
    /// Where the removed bytes were saved.
    pub saved_to: String,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path.display(), e)
}

fn aside_dir(data_dir: &Path) -> Result<PathBuf> {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let mut n = 0;
    loop {
        let dir = data_dir.join("damaged").join(format!("{ms}-{n}"));
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            return Ok(dir);
        }
        n += 1;
    }
}

/// Repairs the damage a `CorruptionError` from recovery names, or returns
/// that error when it is not something repair can handle.
pub fn repair(data_dir: &Path, wal_dir: &Path, err: Error) -> Result<Repair> {
    let Error::Corruption { file, offset, reason } = &err else { return Err(err) };
    let path = PathBuf::from(file);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if path.parent() == Some(wal_dir) && name.ends_with(".wal") {
        cut_wal(data_dir, wal_dir, &path, *offset, reason)
    } else if path == data_dir.join(manifest::FILE_NAME) {
        rebuild_manifest(data_dir, file, reason)
    } else if path.extension().is_some_and(|e| e == "ckpt") {
        drop_checkpoint(data_dir, &path, reason)
    } else if path.extension().is_some_and(|e| e == "hist") {
        drop_history(data_dir, &path, reason)
    } else if path.extension().is_some_and(|e| e == "cold") {
        drop_cold(data_dir, &path, reason)
    } else {
        Err(err)
    }
}

fn cut_wal(data_dir: &Path, wal_dir: &Path, segment: &Path, offset: u64, reason: &str) -> Result<Repair> {
    let aside = aside_dir(data_dir)?;
    let bytes = fs::read(segment).map_err(io(segment))?;
    let cut = (offset as usize).min(bytes.len());
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let saved = aside.join(format!("{name}.from-{cut}"));
    fs::write(&saved, &bytes[cut..]).map_err(io(&saved))?;
    let mut dropped_bytes = (bytes.len() - cut) as u64;
    let mut dropped_files = Vec::new();
    let number: u64 = name.trim_end_matches(".wal").parse().unwrap_or(0);
    for (n, later) in list_segments(wal_dir)? {
        if n <= number {
            continue;
        }
        let target = aside.join(later.file_name().unwrap());
        fs::copy(&later, &target).map_err(io(&later))?;
        dropped_bytes += fs::metadata(&later).map_err(io(&later))?.len();
        fs::remove_file(&later).map_err(io(&later))?;
        dropped_files.push(later.display().to_string());
    }
    if cut < crate::format::SEGMENT_HEADER_LEN {
        fs::remove_file(segment).map_err(io(segment))?;
        dropped_files.push(segment.display().to_string());
    } else {
        let f = fs::OpenOptions::new().write(true).open(segment).map_err(io(segment))?;
        f.set_len(cut as u64).map_err(io(segment))?;
        f.sync_all().map_err(io(segment))?;
    }
    sync_dir(wal_dir)?;
    Ok(Repair { file: segment.display().to_string(), offset, reason: reason.into(), dropped_bytes, dropped_files, saved_to: aside.display().to_string() })
}

fn rebuild_manifest(data_dir: &Path, file: &str, reason: &str) -> Result<Repair> {
    let aside = aside_dir(data_dir)?;
    let path = data_dir.join(manifest::FILE_NAME);
    fs::copy(&path, aside.join(manifest::FILE_NAME)).map_err(io(&path))?;
    let mut versions: Vec<u64> = match fs::read_dir(data_dir.join("checkpoints")) {
        Ok(entries) => {
            entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".ckpt").and_then(|v| v.parse().ok())).collect()
        }
        Err(_) => Vec::new(),
    };
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions.truncate(2);
    let mut history: Vec<u64> = match fs::read_dir(data_dir.join(crate::history::DIR)) {
        Ok(entries) => {
            entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".hist").and_then(|v| v.parse().ok())).collect()
        }
        Err(_) => Vec::new(),
    };
    history.sort_unstable();
    manifest::write(data_dir, &Manifest { checkpoints: versions, history, cold: Vec::new(), cold_files: Vec::new() })?;
    Ok(Repair { file: file.into(), offset: 0, reason: reason.into(), dropped_bytes: 0, dropped_files: vec![], saved_to: aside.display().to_string() })
}

fn drop_history(data_dir: &Path, path: &Path, reason: &str) -> Result<Repair> {
    drop_named(data_dir, path, &format!("{reason} (the older versions it held are lost)"), |m| &mut m.history)
}

fn drop_cold(data_dir: &Path, path: &Path, reason: &str) -> Result<Repair> {
    let number: Option<u64> = path.file_stem().and_then(|s| s.to_string_lossy().parse().ok());
    let m = manifest::read(data_dir)?.unwrap_or_default();
    let runs: Vec<String> = m.cold.iter().filter(|l| Some(l.file) == number && l.warm_from == 0).map(|l| crate::history::run_hex(&l.run)).collect();
    let aside = aside_dir(data_dir)?;
    let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if path.exists() {
        fs::copy(path, aside.join(path.file_name().unwrap())).map_err(io(path))?;
        fs::remove_file(path).map_err(io(path))?;
    }
    let mut m = m;
    m.cold.retain(|l| Some(l.file) != number);
    manifest::write(data_dir, &m)?;
    Ok(Repair {
        file: path.display().to_string(),
        offset: 0,
        reason: format!(
            "{reason} (the data of the {} cold run(s) it held is lost, except where the image of the checkpoint they went cold at still holds it (they left memory with nothing committed after it): {})",
            runs.len(),
            runs.join(", ")
        ),
        dropped_bytes: len,
        dropped_files: vec![path.display().to_string()],
        saved_to: aside.display().to_string(),
    })
}

fn drop_checkpoint(data_dir: &Path, path: &Path, reason: &str) -> Result<Repair> {
    drop_named(data_dir, path, reason, |m| &mut m.checkpoints)
}

/// Moves the file at `path` aside and drops its version from the list of
/// the manifest `list` picks.
fn drop_named(data_dir: &Path, path: &Path, reason: &str, list: impl Fn(&mut Manifest) -> &mut Vec<u64>) -> Result<Repair> {
    let aside = aside_dir(data_dir)?;
    let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if path.exists() {
        fs::copy(path, aside.join(path.file_name().unwrap())).map_err(io(path))?;
        fs::remove_file(path).map_err(io(path))?;
    }
    let version: Option<u64> = path.file_stem().and_then(|s| s.to_string_lossy().parse().ok());
    let mut m = manifest::read(data_dir)?.unwrap_or_default();
    list(&mut m).retain(|v| Some(*v) != version);
    manifest::write(data_dir, &m)?;
    Ok(Repair {
        file: path.display().to_string(),
        offset: 0,
        reason: reason.into(),
        dropped_bytes: len,
        dropped_files: vec![path.display().to_string()],
        saved_to: aside.display().to_string(),
    })
}
