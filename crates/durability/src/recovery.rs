//! Recovery: reads every WAL segment in order and hands each commit record to
//! the caller.
//!
//! The rule (also in `docs/durability.md`):
//! - Only the newest segment may end in a torn tail: an incomplete record
//!   with no valid later record after it (else its length field is damaged),
//!   or a last record whose checksum fails (zeros may follow either). It is
//!   truncated (after the whole log was checked) and reported. Zero bytes
//!   after the last record of the newest segment are where its file had
//!   grown ahead of the records: cut too, but not reported.
//! - A recycled newest segment (format 2, header flag bit 0) may hold the
//!   stale records of the segment its file used to be after its own, so its
//!   rule is one: its log ends at the first record that does not check out
//!   under this segment's seed, provided no valid record of this segment (a
//!   later commit, under this seed) starts anywhere after it — else it is
//!   damage, as above. What follows that end is cut, and not reported: a
//!   torn last record cannot be told from stale bytes there.
//! - Anything else that does not decode — a bad header, a bad checksum with
//!   records after it, a damaged older segment, a missing segment number,
//!   versions that do not rise — is a `CorruptionError` naming the file and
//!   offset, and nothing on disk is changed.

use std::fs;
use std::path::{Path, PathBuf};

use in_mem_core::{Error, Result};

use crate::format::{Decoded, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, decode_record_seeded};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    pub offset: u64,
    pub dropped_bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    pub last_version: u64,
    pub torn_tail: Option<TornTail>,
    /// The newest segment and its valid length, to append to.
    pub tail_segment: Option<(u64, u64)>,
    pub next_segment: u64,
    pub database_id: Option<[u8; 16]>,
    /// Each segment read and the newest commit version it holds (that of
    /// the segment before it when it holds none).
    pub segment_versions: Vec<(u64, u64)>,
    /// Records at or below the checkpoint, read and checked but not applied.
    pub skipped: u64,
    /// Segments not read at all: the checkpoint holds all their commits.
    pub skipped_segments: u64,
}

/// The commit version of a segment's first record, if its header and that
/// record's header can be read (the record itself is checked when the
/// segment is read).
fn first_version(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut head = [0u8; SEGMENT_HEADER_LEN + RECORD_HEADER_LEN];
    let mut file = fs::File::open(path).ok()?;
    file.read_exact(&mut head).ok()?;
    let header = SegmentHeader::decode(&head).ok()?;
    // Only a record that checks out under this segment's seed counts: a
    // recycled segment rotated in just before a crash still holds the
    // stale records of the file it was, whose versions say nothing of this
    // segment (trusting one skipped the older segment's commits).
    let len = u32::from_le_bytes(head[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + 4].try_into().unwrap()) as usize;
    let size = file.metadata().ok()?.len() as usize;
    if len > size.saturating_sub(SEGMENT_HEADER_LEN + RECORD_HEADER_LEN) {
        return None;
    }
    let mut record = head[SEGMENT_HEADER_LEN..].to_vec();
    record.resize(RECORD_HEADER_LEN + len, 0);
    file.read_exact(&mut record[RECORD_HEADER_LEN..]).ok()?;
    match decode_record_seeded(&record, header.seed()) {
        Decoded::Record { version, .. } => Some(version),
        _ => None,
    }
}

/// Segment numbers and paths in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = vec![];
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir.display(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir.display(), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".wal")
            && let Ok(n) = stem.parse::<u64>()
        {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a valid record of a later commit starts inside `rest` (past its
/// first byte). A torn tail is a prefix of one record, so it holds none; one
/// found there means the length field at the start of `rest` is damaged, and
/// cutting the log at it would silently drop acknowledged commits. Only
/// offsets whose version field could be a later commit are checksummed.
fn later_record_follows(rest: &[u8], last_version: u64, seed: u32) -> bool {
    let max_version = last_version.saturating_add(1 + (rest.len() / RECORD_HEADER_LEN) as u64);
    (1..=rest.len().saturating_sub(RECORD_HEADER_LEN)).any(|i| {
        let version = u64::from_le_bytes(rest[i + 8..i + 16].try_into().unwrap());
        version > last_version && version <= max_version && matches!(decode_record_seeded(&rest[i..], seed), Decoded::Record { .. })
    })
}

/// Replays the log in `dir` after the checkpoint at version `after` (0: none),
/// calling `apply(version, payload)` for every later record in order.
///
/// The log must continue the checkpoint: its first record is at most
/// `after + 1` (older segments may have been deleted once a checkpoint
/// covered them), else commits are missing and it is a `CorruptionError`.
pub fn recover(dir: &Path, after: u64, apply: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<RecoveryReport> {
    recover_inner(dir, after, true, apply)
}

/// Like [`recover`], for a read-only open: a torn tail is reported but the
/// file is left as it is, for whoever investigates (the next read-write
/// open cuts it).
pub fn recover_read_only(dir: &Path, after: u64, apply: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<RecoveryReport> {
    recover_inner(dir, after, false, apply)
}

fn recover_inner(dir: &Path, after: u64, cut: bool, mut apply: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<RecoveryReport> {
    let segments = list_segments(dir)?;
    let mut report = RecoveryReport { next_segment: 1, last_version: 0, ..Default::default() };
    let mut first_record = true;
    let mut truncate: Option<(PathBuf, u64)> = None;
    for (i, (number, path)) in segments.iter().enumerate() {
        let last_segment = i + 1 == segments.len();
        let file = path.display().to_string();
        let corrupt = |offset: u64, reason: &str| Error::Corruption { file: file.clone(), offset, reason: reason.into() };
        if i > 0 && *number != segments[i - 1].0 + 1 {
            return Err(corrupt(0, &format!("segment {} is missing", segments[i - 1].0 + 1)));
        }
        // A segment whose commits the checkpoint holds entirely (the next
        // segment starts at or before the commit after it) is not read.
        if after > 0
            && !last_segment
            && let Some(next_first) = first_version(&segments[i + 1].1)
            && next_first <= after + 1
            && next_first > report.last_version
        {
            report.segments += 1;
            report.skipped_segments += 1;
            report.last_version = next_first - 1;
            report.segment_versions.push((*number, report.last_version));
            first_record = false;
            report.tail_segment = Some((*number, 0));
            report.next_segment = number + 1;
            continue;
        }
        let bytes = fs::read(path).map_err(|e| Error::io(&file, e))?;
        if bytes.len() < SEGMENT_HEADER_LEN && last_segment && bytes.iter().all(|&b| b == 0) {
            // Created but its header never reached the disk: a torn tail.
            truncate = Some((path.clone(), 0));
            report.torn_tail = Some(TornTail { file: file.clone(), offset: 0, dropped_bytes: bytes.len() as u64 });
            break;
        }
        let header = SegmentHeader::decode(&bytes).map_err(|r| corrupt(0, r))?;
        if header.segment != *number {
            return Err(corrupt(16, "segment number in the header does not match the file name"));
        }
        match report.database_id {
            None => report.database_id = Some(header.database_id),
            Some(id) if id != header.database_id => return Err(corrupt(24, "segment belongs to another database")),
            _ => {}
        }
        let seed = header.seed();
        let mut offset = SEGMENT_HEADER_LEN;
        let mut zero_tail = false;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            let torn = |offset: usize| TornTail { file: file.clone(), offset: offset as u64, dropped_bytes: (bytes.len() - offset) as u64 };
            let decoded = decode_record_seeded(rest, seed);
            if last_segment && header.recycled && !matches!(decoded, Decoded::Record { .. }) && !later_record_follows(rest, report.last_version, seed) {
                // The end of a recycled segment's log (its one rule, above).
                zero_tail = true;
                break;
            }
            match decoded {
                Decoded::Record { version, payload, len } => {
                    if first_record {
                        first_record = false;
                        if version > after + 1 {
                            let reason = match after {
                                0 => format!("the log starts at commit {version}, not 1, and there is no checkpoint: earlier segments are missing"),
                                _ => format!("the log starts at commit {version} but the checkpoint ends at commit {after}: the commits between are missing"),
                            };
                            return Err(corrupt(offset as u64, &reason));
                        }
                    } else if version <= report.last_version {
                        return Err(corrupt(offset as u64, "commit versions do not rise"));
                    } else if version != report.last_version + 1 {
                        // Every commit has exactly one record, so versions
                        // are consecutive: a gap is a lost record.
                        return Err(corrupt(offset as u64, &format!("commits {} to {} are missing before this record", report.last_version + 1, version - 1)));
                    }
                    if version > after {
                        apply(version, payload).map_err(|e| match e {
                            // A record that passed its checksum but does not
                            // decode: damage at this record.
                            Error::Corruption { reason, .. } => corrupt(offset as u64, &reason),
                            other => other,
                        })?;
                        report.records += 1;
                    } else {
                        report.skipped += 1;
                    }
                    report.last_version = version;
                    offset += len;
                }
                // The newest segment's file grows ahead of its records, so
                // zeros after the last record are its normal end, not damage
                // (they are cut on a read-write open).
                _ if last_segment && rest.iter().all(|&b| b == 0) => {
                    zero_tail = true;
                    break;
                }
                Decoded::Incomplete if last_segment && !later_record_follows(rest, report.last_version, seed) => {
                    report.torn_tail = Some(torn(offset));
                    break;
                }
                Decoded::BadChecksum { len } if last_segment && offset + len == bytes.len() => {
                    report.torn_tail = Some(torn(offset));
                    break;
                }
                // A record is copied payload first and header last, so a
                // copy the process died in has a zero header; with no valid
                // record after it, it is a torn tail.
                _ if last_segment
                    && rest.len() >= RECORD_HEADER_LEN
                    && rest[..RECORD_HEADER_LEN].iter().all(|&b| b == 0)
                    && !later_record_follows(rest, report.last_version, seed) =>
                {
                    report.torn_tail = Some(torn(offset));
                    break;
                }
                Decoded::Incomplete if last_segment => {
                    return Err(corrupt(offset as u64, "record length runs past the end of the log, but a later record follows it"));
                }
                Decoded::Incomplete => return Err(corrupt(offset as u64, "record is cut short in a closed segment")),
                Decoded::BadChecksum { .. } => return Err(corrupt(offset as u64, "record checksum mismatch")),
                Decoded::BadLength => return Err(corrupt(offset as u64, "record length is impossible")),
            }
        }
        if report.torn_tail.is_some() || zero_tail {
            truncate = Some((path.clone(), offset as u64));
        }
        report.segments += 1;
        report.segment_versions.push((*number, report.last_version));
        report.bytes += offset as u64;
        report.tail_segment = Some((*number, offset as u64));
        report.next_segment = number + 1;
    }
    report.last_version = report.last_version.max(after);
    if let Some((path, len)) = truncate.filter(|_| cut) {
        if len == 0 {
            fs::remove_file(&path).map_err(|e| Error::io(path.display(), e))?;
        } else {
            let f = fs::OpenOptions::new().write(true).open(&path).map_err(|e| Error::io(path.display(), e))?;
            f.set_len(len).map_err(|e| Error::io(path.display(), e))?;
            f.sync_all().map_err(|e| Error::io(path.display(), e))?;
        }
    }
    Ok(report)
}
