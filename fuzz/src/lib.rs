//! The properties the fuzz targets check, one function per target. Each takes
//! the fuzzer's bytes and panics when a property fails; the targets in
//! `fuzz_targets/` only call them, and `tests/replay.rs` runs them on stable
//! over the seed corpus and random inputs.
//!
//! Every target checks that nothing panics, allocates without bound or hangs.
//! The decoders also check that damage is an error, not a wrong success,
//! wherever that can be told: an accepted input must be what the encoder
//! writes, and damage a checksum is guaranteed to see (up to three flipped
//! bits) must never be accepted.

use std::fs;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use in_mem_core::{Error, RunId};
use in_mem_durability::checkpoint::{self, CheckpointWriter};
use in_mem_durability::format::{
    Decoded, MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, decode_record, encode_record, seed_record_header,
};
use in_mem_durability::manifest::{self, ColdLine, Manifest};
use in_mem_durability::{recover, segment_file_name};
use in_mem_engine::{ApplyOptions, CreateOptions, Definition, Durability, Engine, EngineTx, OpenOptions, TransitionDef};
use rmpv::Value;

/// A scratch directory on tmpfs when there is one: recovery and checkpoints
/// fsync, which costs nothing there.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new().prefix("in-mem-fuzz-").tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// Flips `count` distinct bits of `bytes[from..]`, chosen by `u`.
fn flip_bits(u: &mut Unstructured, bytes: &mut [u8], from: usize, count: usize) -> arbitrary::Result<Vec<usize>> {
    let bits = (bytes.len() - from) * 8;
    let mut flipped: Vec<usize> = Vec::new();
    while flipped.len() < count.min(bits) {
        // Once the input is used up, choose_index answers 0 every time: the
        // next bit not yet flipped is taken instead.
        let mut b = u.choose_index(bits)?;
        while flipped.contains(&(from * 8 + b)) {
            b = (b + 1) % bits;
        }
        let b = from * 8 + b;
        flipped.push(b);
        bytes[b / 8] ^= 1 << (b % 8);
    }
    Ok(flipped)
}

// ----- (a) WAL records and segment headers --------------------------------------

/// Raw bytes as a record and as a segment header: an accepted record is
/// exactly what `encode_record` writes for its version and payload, and every
/// other outcome is the one its length field calls for.
pub fn wal_record(data: &[u8]) {
    let len_field = data.get(0..4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    match decode_record(data) {
        Decoded::Record { version, payload, len } => {
            assert_eq!(len, RECORD_HEADER_LEN + payload.len());
            assert!(len <= data.len());
            let mut again = Vec::new();
            encode_record(&mut again, version, payload);
            assert_eq!(&again[..], &data[..len], "an accepted record is not what the encoder writes");
        }
        Decoded::Incomplete => {
            assert!(data.len() < RECORD_HEADER_LEN || RECORD_HEADER_LEN + len_field.unwrap() > data.len(), "Incomplete for a record that is all there");
        }
        Decoded::BadChecksum { len } => {
            assert_eq!(len, RECORD_HEADER_LEN + len_field.unwrap());
            assert!(len <= data.len());
            let mut again = Vec::new();
            encode_record(&mut again, u64::from_le_bytes(data[8..16].try_into().unwrap()), &data[RECORD_HEADER_LEN..len]);
            assert_ne!(&again[..], &data[..len], "a record as the encoder writes it was refused");
        }
        Decoded::BadLength => assert!(len_field.unwrap() > MAX_RECORD_PAYLOAD),
    }
    if let Ok(h) = SegmentHeader::decode(data) {
        // Bytes 44..48 (a reserved zero field) are not checked by decode.
        assert_eq!(&h.encode()[..44], &data[..44], "an accepted segment header is not what the encoder writes");
    }
}

/// A record as written, then damaged: up to three flipped bits anywhere but
/// the length field are always refused (CRC32C has Hamming distance 4 or more
/// at every length a record can have); a flipped bit in the length field is
/// refused too (short of a 2^-32 coincidence); a cut record is Incomplete;
/// bytes after a record do not change it.
pub fn wal_record_damage(data: &[u8]) {
    let _ = wal_record_damage_inner(&mut Unstructured::new(data));
}

fn wal_record_damage_inner(u: &mut Unstructured) -> arbitrary::Result<()> {
    let version = u64::arbitrary(u)?;
    let n = u.int_in_range(0..=600)?;
    let payload = u.bytes(n.min(u.len()))?.to_vec();
    let mut rec = Vec::new();
    encode_record(&mut rec, version, &payload);
    assert_eq!(decode_record(&rec), Decoded::Record { version, payload: &payload, len: rec.len() });
    let mut longer = rec.clone();
    longer.extend_from_slice(&[0xA5; 20]);
    assert_eq!(decode_record(&longer), Decoded::Record { version, payload: &payload, len: rec.len() });
    let cut = u.choose_index(rec.len())?;
    assert_eq!(decode_record(&rec[..cut]), Decoded::Incomplete);
    let mut damaged = rec.clone();
    let count = u.int_in_range(1..=3)?;
    let flipped = flip_bits(u, &mut damaged, 4, count)?;
    assert!(!matches!(decode_record(&damaged), Decoded::Record { .. }), "bits {flipped:?} flipped in a record of {} bytes were not seen", rec.len());
    let mut damaged = rec.clone();
    let bit = u.choose_index(32)?;
    damaged[bit / 8] ^= 1 << (bit % 8);
    assert!(!matches!(decode_record(&damaged), Decoded::Record { .. }), "bit {bit} of the length field flipped was not seen");
    Ok(())
}

// ----- (b) recovery over a directory ---------------------------------------------

#[derive(Arbitrary, Debug)]
enum Damage {
    None,
    Flip {
        newest: bool,
        at: u16,
        bit: u8,
    },
    Overwrite {
        newest: bool,
        at: u16,
        bytes: Vec<u8>,
    },
    Truncate {
        newest: bool,
        at: u16,
    },
    Append {
        newest: bool,
        bytes: Vec<u8>,
    },
    Zero {
        newest: bool,
        at: u16,
        len: u16,
    },
    /// Bytes cut out of the middle.
    Splice {
        newest: bool,
        at: u16,
        len: u16,
    },
    /// The newest segment is a valid header and then these bytes.
    Tail(Vec<u8>),
    /// The newest segment is these bytes.
    Raw(Vec<u8>),
    /// The newest segment is a recycled file: after its records lie the
    /// stale records (these payloads) of the segment it was, `back` numbers
    /// before it or after the older one, with versions from `first`.
    Stale {
        payloads: Vec<Vec<u8>>,
        back: u8,
        first: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct RecoveryCase {
    older: Vec<Vec<u8>>,
    newest: Vec<Vec<u8>>,
    /// The newest segment's file was recycled (its header says so).
    recycled: bool,
    after: u8,
    damage: Damage,
}

struct Written {
    /// Log order: (segment index 0 or 1, offset, length, version, payload).
    records: Vec<(usize, usize, usize, u64, Vec<u8>)>,
    files: [Vec<u8>; 2],
}

/// Appends a record of a segment whose seed is `seed`, as the WAL writes it.
fn seeded_record(out: &mut Vec<u8>, version: u64, payload: &[u8], seed: u32) {
    let at = out.len();
    encode_record(out, version, payload);
    seed_record_header(&mut out[at..at + RECORD_HEADER_LEN], seed);
}

fn write_segments(older: &[Vec<u8>], newest: &[Vec<u8>], recycled: bool) -> Written {
    let id = [7u8; 16];
    let mut records = Vec::new();
    let mut files = [Vec::new(), Vec::new()];
    let mut version = 0;
    for (s, payloads) in [older, newest].into_iter().enumerate() {
        let header = SegmentHeader::new(s as u64 + 1, id, recycled && s == 1);
        files[s].extend_from_slice(&header.encode());
        for p in payloads {
            version += 1;
            let at = files[s].len();
            seeded_record(&mut files[s], version, p, header.seed());
            records.push((s, at, files[s].len() - at, version, p.clone()));
        }
    }
    Written { records, files }
}

fn damage(files: &mut [Vec<u8>; 2], d: &Damage) {
    let seg = |newest: &bool| usize::from(*newest);
    match d {
        Damage::None => {}
        Damage::Flip { newest, at, bit } => {
            let f = &mut files[seg(newest)];
            let i = *at as usize % f.len();
            f[i] ^= 1 << (bit % 8);
        }
        Damage::Overwrite { newest, at, bytes } => {
            let f = &mut files[seg(newest)];
            let i = *at as usize % f.len();
            let n = bytes.len().min(f.len() - i);
            f[i..i + n].copy_from_slice(&bytes[..n]);
        }
        Damage::Truncate { newest, at } => {
            let f = &mut files[seg(newest)];
            let n = *at as usize % (f.len() + 1);
            f.truncate(n);
        }
        Damage::Append { newest, bytes } => files[seg(newest)].extend_from_slice(bytes),
        Damage::Zero { newest, at, len } => {
            let f = &mut files[seg(newest)];
            let i = *at as usize % f.len();
            let n = (*len as usize).min(f.len() - i);
            f[i..i + n].fill(0);
        }
        Damage::Splice { newest, at, len } => {
            let f = &mut files[seg(newest)];
            let i = *at as usize % f.len();
            let n = (*len as usize).min(f.len() - i);
            f.drain(i..i + n);
        }
        Damage::Tail(bytes) => {
            files[1].truncate(SEGMENT_HEADER_LEN);
            files[1].extend_from_slice(bytes);
        }
        Damage::Raw(bytes) => files[1] = bytes.clone(),
        Damage::Stale { payloads, back, first } => {
            // Segment 2's file once was segment 2 + 1 + back (a later number
            // cannot come back, but its seed is as foreign) or, for back 0,
            // segment 1's own number: any number but 2.
            let was = if *back == 0 { 1 } else { 2 + u64::from(*back) };
            let seed = SegmentHeader::new(was, [7; 16], false).seed();
            for (i, p) in payloads.iter().enumerate() {
                seeded_record(&mut files[1], u64::from(*first) + i as u64, p, seed);
            }
        }
    }
}

/// Where `damaged` first differs from `original` (`None`: identical). Bytes
/// 44..48 of a segment header are not checked by the format, so a change
/// there alone is no damage.
fn first_difference(original: &[u8], damaged: &[u8]) -> Option<usize> {
    let n = original.len().min(damaged.len());
    let mut at = (0..n).find(|&i| original[i] != damaged[i] && !(44..48).contains(&i));
    if at.is_none() && original.len() != damaged.len() {
        at = Some(n);
    }
    at
}

type Applied = Vec<(u64, Vec<u8>)>;

fn run_recover(wal: &Path, after: u64) -> (in_mem_core::Result<in_mem_durability::RecoveryReport>, Applied) {
    let mut applied = Vec::new();
    let r = recover(wal, after, |v, p| {
        applied.push((v, p.to_vec()));
        Ok(())
    });
    (r, applied)
}

/// How [`recovery`] reads `data` (for choosing seeds).
pub fn recovery_case(data: &[u8]) -> Option<String> {
    RecoveryCase::arbitrary(&mut Unstructured::new(data)).ok().map(|c| format!("{c:?}"))
}

/// Two segments of valid records (the older closed, the newest being
/// written), one damage, and `recover` after a checkpoint at `after`:
/// - without damage every record after `after` is applied, nothing reported;
/// - every record wholly before the first damaged byte is applied (nothing
///   before the damage is lost), and applied versions rise by exactly one
///   (no commit in the middle of the log is skipped);
/// - a torn tail is in the newest segment, the file is cut there, and a
///   second recovery applies the same and finds nothing to cut;
/// - an error is a `CorruptionError` naming a segment, and nothing on disk
///   changed; success without a torn tail changed nothing on disk either.
pub fn recovery(data: &[u8]) {
    let Ok(mut case) = RecoveryCase::arbitrary(&mut Unstructured::new(data)) else { return };
    case.older.truncate(6);
    case.newest.truncate(6);
    for p in case.older.iter_mut().chain(case.newest.iter_mut()) {
        p.truncate(48);
    }
    if let Damage::Stale { payloads, .. } = &mut case.damage {
        payloads.truncate(6);
        for p in payloads.iter_mut() {
            p.truncate(48);
        }
    }
    // Stale records are what a recycled file holds; in any other the same
    // bytes are damage (or a torn tail).
    let stale = matches!(case.damage, Damage::Stale { .. }) && case.recycled;
    let written = write_segments(&case.older, &case.newest, case.recycled);
    let total = written.records.len() as u64;
    let after = u64::from(case.after) % (total + 1);
    if std::env::var_os("IN_MEM_FUZZ_DEBUG").is_some() {
        eprintln!("{} older + {} newest records, after {after}, {:?}", case.older.len(), case.newest.len(), case.damage);
    }
    let mut files = written.files.clone();
    damage(&mut files, &case.damage);

    let dir = scratch();
    let wal = dir.path().join("wal");
    fs::create_dir(&wal).unwrap();
    let paths = [wal.join(segment_file_name(1)), wal.join(segment_file_name(2))];
    for (p, f) in paths.iter().zip(&files) {
        fs::write(p, f).unwrap();
    }
    let (result, applied) = run_recover(&wal, after);

    let diffs = [first_difference(&written.files[0], &files[0]), first_difference(&written.files[1], &files[1])];
    // The records lying wholly before the first damaged byte, in log order.
    let intact: Vec<&(usize, usize, usize, u64, Vec<u8>)> = written
        .records
        .iter()
        .take_while(|(s, at, len, _, _)| {
            let before_older = diffs[0].is_none_or(|d| *s == 0 && at + len <= d);
            let before_newest = *s == 0 || diffs[1].is_none_or(|d| at + len <= d);
            before_older && before_newest
        })
        .collect();
    let expected_intact: Applied = intact.iter().filter(|r| r.3 > after).map(|r| (r.3, r.4.clone())).collect();

    match &result {
        Err(Error::Corruption { file, .. }) => {
            assert!(diffs.iter().any(Option::is_some), "an undamaged log was refused: {result:?}");
            assert!(paths.iter().any(|p| p.display().to_string() == *file) || *file == wal.display().to_string(), "the error names {file}");
            for (p, f) in paths.iter().zip(&files) {
                assert_eq!(&fs::read(p).unwrap(), f, "a refused open changed {}", p.display());
            }
        }
        Err(e) => panic!("recovery failed with something else than CorruptionError: {e:?}"),
        Ok(report) => {
            if stale {
                // A recycled segment's stale records are no damage: every
                // record is applied, nothing is reported, and only the stale
                // bytes are cut.
                let all: Applied = written.records.iter().filter(|r| r.3 > after).map(|r| (r.3, r.4.clone())).collect();
                assert_eq!(applied, all, "a recycled segment's stale records changed what was applied");
                assert!(report.torn_tail.is_none(), "a recycled segment's stale records were reported as a torn tail");
                assert_eq!(fs::read(&paths[1]).unwrap(), written.files[1], "the stale records were not cut (or more was)");
            }
            if diffs.iter().all(Option::is_none) {
                assert!(report.torn_tail.is_none(), "a torn tail in an undamaged log");
                let all: Applied = written.records.iter().filter(|r| r.3 > after).map(|r| (r.3, r.4.clone())).collect();
                assert_eq!(applied, all);
            }
            assert!(
                applied.len() >= expected_intact.len() && applied[..expected_intact.len()] == expected_intact[..],
                "records before the damage were lost or changed"
            );
            for w in applied.windows(2) {
                assert!(w[1].0 > w[0].0, "versions do not rise");
                assert_eq!(w[1].0, w[0].0 + 1, "commits {}..{} were skipped silently (damage {:?})", w[0].0 + 1, w[1].0 - 1, case.damage);
            }
            if let Some(first) = applied.first() {
                assert!(first.0 > after);
                assert_eq!(first.0, after + 1, "the commits after the checkpoint up to {} were skipped silently", first.0);
            }
            match &report.torn_tail {
                None => {
                    // A clean recovery changes nothing, but for cutting the
                    // zeros after the newest segment's last record (where its
                    // file had grown ahead of its records).
                    for (i, (p, f)) in paths.iter().zip(&files).enumerate() {
                        let now = fs::read(p).unwrap();
                        if i + 1 == paths.len() && now.len() < f.len() {
                            assert_eq!(&now[..], &f[..now.len()], "a clean recovery changed {}", p.display());
                            // A recycled file's stale bytes may be anything.
                            assert!(case.recycled || f[now.len()..].iter().all(|&b| b == 0), "a clean recovery cut more than zeros from {}", p.display());
                        } else {
                            assert_eq!(&now, f, "a clean recovery changed {}", p.display());
                        }
                    }
                }
                Some(t) => {
                    assert_eq!(t.file, paths[1].display().to_string(), "a torn tail outside the newest segment");
                    assert_eq!(&fs::read(&paths[0]).unwrap(), &files[0]);
                    assert_eq!(t.offset + t.dropped_bytes, files[1].len() as u64);
                    match fs::read(&paths[1]) {
                        Ok(now) => assert_eq!(now, files[1][..t.offset as usize], "the newest segment was not cut at the torn tail"),
                        Err(_) => assert_eq!(t.offset, 0, "the newest segment was removed, not cut"),
                    }
                    let (again, applied_again) = run_recover(&wal, after);
                    let again = again.expect("recovery after cutting a torn tail failed");
                    assert!(again.torn_tail.is_none(), "a second recovery found another torn tail");
                    assert_eq!(applied_again, applied, "a second recovery applied other records");
                }
            }
        }
    }
}

// ----- (c) checkpoints -------------------------------------------------------------

/// Raw bytes as a checkpoint: no panic; a success reports as many entries as
/// it handed out, none newer than the checkpoint, and the database id check
/// holds. Then the same bytes behind valid checksums, so that what the
/// checksums guard is reached too: as the raw entries of a chunk the
/// encoder compresses, or as the compressed block itself with a raw length
/// from the input.
pub fn checkpoint(data: &[u8]) {
    check_checkpoint(data);
    if let [mode, v0, v1, r0, r1, r2, c0, rest @ ..] = data {
        let version = u64::from(u16::from_le_bytes([*v0, *v1]));
        let count = u64::from(*c0);
        let (block, rlen) =
            if mode & 1 == 0 { (lz4_flex::block::compress(rest), rest.len()) } else { (rest.to_vec(), u32::from_le_bytes([*r0, *r1, *r2, 0]) as usize) };
        check_checkpoint(&checkpoint_around(version, &block, rlen, count));
    }
}

fn check_checkpoint(data: &[u8]) {
    let mut count = 0u64;
    let mut newest = 0u64;
    let r = checkpoint::decode(data, "fuzz.ckpt", None, |_, v, _, _| {
        count += 1;
        newest = newest.max(v);
        Ok(())
    });
    match r {
        Ok((version, entries)) => {
            assert_eq!(entries, count);
            assert!(newest <= version, "an entry newer than the checkpoint was accepted");
            let id: [u8; 16] = data[24..40].try_into().unwrap();
            assert!(checkpoint::decode(data, "fuzz.ckpt", Some(id), |_, _, _, _| Ok(())).is_ok());
            let mut other = id;
            other[0] ^= 1;
            assert!(checkpoint::decode(data, "fuzz.ckpt", Some(other), |_, _, _, _| Ok(())).is_err());
        }
        Err(Error::Corruption { file, .. }) => assert_eq!(file, "fuzz.ckpt"),
        Err(e) => panic!("a checkpoint failed with something else than CorruptionError: {e:?}"),
    }
}

/// A checkpoint file (docs/format.md) of one chunk holding `block`, with
/// every checksum right.
fn checkpoint_around(version: u64, block: &[u8], rlen: usize, count: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(checkpoint::MAGIC);
    out.extend_from_slice(&checkpoint::FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&[5; 16]);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    if !block.is_empty() || rlen != 0 {
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        out.extend_from_slice(&(rlen as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(block).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&count.to_le_bytes()).to_le_bytes());
    out
}

type Entry = (Vec<u8>, u64, Option<Vec<u8>>);

/// A checkpoint as written by `CheckpointWriter`, read back whole, then
/// damaged: up to three flipped bits, a cut or a byte appended are always a
/// `CorruptionError`.
pub fn checkpoint_damage(data: &[u8]) {
    let _ = checkpoint_damage_inner(&mut Unstructured::new(data));
}

fn checkpoint_damage_inner(u: &mut Unstructured) -> arbitrary::Result<()> {
    // Format 2 keeps bit 62 of an entry's version for its mark: versions stay below.
    let version = u.int_in_range(0..=(1u64 << 62) - 1)?;
    let n = u.int_in_range(0..=40)?;
    let mut entries: Vec<Entry> = Vec::new();
    for _ in 0..n {
        let klen = u.int_in_range(0..=24)?;
        let key = u.bytes(klen.min(u.len()))?.to_vec();
        let v = u.int_in_range(0..=version)?;
        let value = if bool::arbitrary(u)? {
            let vlen = u.int_in_range(0..=300)?;
            Some(u.bytes(vlen.min(u.len()))?.to_vec())
        } else {
            None
        };
        entries.push((key, v, value));
    }
    let id: [u8; 16] = Arbitrary::arbitrary(u)?;
    let dir = scratch();
    let mut w = CheckpointWriter::create(dir.path(), version, id).unwrap();
    for (i, (k, v, val)) in entries.iter().enumerate() {
        // Every other entry carries the mark of older versions on disk.
        w.add(k, *v, i % 2 == 1, val.as_deref()).unwrap();
    }
    let info = w.finish().unwrap();
    let bytes = fs::read(&info.path).unwrap();
    let mut seen: Vec<Entry> = Vec::new();
    let mut marks = Vec::new();
    let read = checkpoint::decode(&bytes, "c", Some(id), |k, v, on_disk, val| {
        seen.push((k.to_vec(), v, val.map(<[u8]>::to_vec)));
        marks.push(on_disk);
        Ok(())
    });
    assert_eq!(read.unwrap(), (version, entries.len() as u64));
    assert_eq!(seen, entries, "a checkpoint does not read back what was written");
    assert!(marks.iter().enumerate().all(|(i, m)| *m == (i % 2 == 1)), "a checkpoint does not read back the marks written");

    let mut damaged = bytes.clone();
    let count = u.int_in_range(1..=3)?;
    let flipped = flip_bits(u, &mut damaged, 0, count)?;
    let r = checkpoint::decode(&damaged, "c", None, |_, _, _, _| Ok(()));
    assert!(matches!(r, Err(Error::Corruption { .. })), "bits {flipped:?} flipped in a checkpoint of {} bytes were accepted", bytes.len());
    let cut = u.choose_index(bytes.len())?;
    assert!(
        matches!(checkpoint::decode(&bytes[..cut], "c", None, |_, _, _, _| Ok(())), Err(Error::Corruption { .. })),
        "a checkpoint cut at {cut} was accepted"
    );
    let mut longer = bytes.clone();
    longer.push(u8::arbitrary(u)?);
    assert!(checkpoint::decode(&longer, "c", None, |_, _, _, _| Ok(())).is_err(), "a byte appended to a checkpoint was accepted");
    Ok(())
}

// ----- (d) the manifest ------------------------------------------------------------

/// Raw bytes as a manifest: no panic, and what decodes encodes to a text
/// that decodes to the same. Then a manifest as written with up to three
/// flipped bits: refused, or (a hex digit's case flipped) read the same.
pub fn manifest(data: &[u8]) {
    match manifest::decode(data, "MANIFEST") {
        Ok(m) => assert_eq!(manifest::decode(manifest::encode(&m).as_bytes(), "MANIFEST").unwrap(), m),
        Err(Error::Corruption { file, .. }) => assert_eq!(file, "MANIFEST"),
        Err(e) => panic!("a manifest failed with something else than CorruptionError: {e:?}"),
    }
    let _ = manifest_damage(&mut Unstructured::new(data));
}

fn manifest_damage(u: &mut Unstructured) -> arbitrary::Result<()> {
    let n = u.int_in_range(0..=4)?;
    let h = u.int_in_range(0..=3)?;
    let c = u.int_in_range(0..=3)?;
    let m = Manifest {
        checkpoints: (0..n).map(|_| u64::arbitrary(u)).collect::<arbitrary::Result<_>>()?,
        history: (0..h).map(|_| u64::arbitrary(u)).collect::<arbitrary::Result<_>>()?,
        cold: (0..c)
            .map(|_| {
                Ok(ColdLine {
                    file: u64::arbitrary(u)?,
                    run: <[u8; 16]>::arbitrary(u)?,
                    since: u64::arbitrary(u)?,
                    warm_from: u64::arbitrary(u)?,
                    bytes: u64::arbitrary(u)?,
                })
            })
            .collect::<arbitrary::Result<_>>()?,
        cold_files: (0..c).map(|_| Ok((u64::arbitrary(u)?, u64::arbitrary(u)?))).collect::<arbitrary::Result<_>>()?,
    };
    let mut text = manifest::encode(&m).into_bytes();
    assert_eq!(manifest::decode(&text, "M").unwrap(), m);
    let count = u.int_in_range(1..=3)?;
    let flipped = flip_bits(u, &mut text, 0, count)?;
    if let Ok(read) = manifest::decode(&text, "M") {
        assert_eq!(read, m, "bits {flipped:?} flipped in the manifest changed what it names");
    }
    Ok(())
}

// ----- (e) the guard language, through machine definitions ------------------------

/// A memory engine shared by every input, and a run in it. Inputs work in
/// transactions that are dropped, never committed, so it does not grow.
fn engine() -> &'static (Arc<Engine>, RunId) {
    static ENGINE: OnceLock<(Arc<Engine>, RunId)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let engine = Engine::open(None, OpenOptions { durability: Durability::Memory, ..OpenOptions::default() }).unwrap().into_shared();
        let run = engine.run_begin(Some("fuzz".into()), None, vec![], None).unwrap().id;
        (engine, run)
    })
}

/// Splits the input at its first NUL: the text before it (as UTF-8, lossily),
/// and the bytes after it for values.
fn text_and_rest(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => (String::from_utf8_lossy(data).into_owned(), &[]),
    }
}

/// A MessagePack value for contexts and payloads: scalars of every kind
/// (floats and NaN included), arrays and maps, a few levels deep.
fn value(u: &mut Unstructured, depth: usize) -> arbitrary::Result<Value> {
    let pick = u.int_in_range(0..=if depth == 0 { 6 } else { 8 })?;
    Ok(match pick {
        0 => Value::Nil,
        1 => Value::Boolean(bool::arbitrary(u)?),
        2 => Value::from(i64::arbitrary(u)?),
        3 => Value::from(u64::arbitrary(u)?),
        4 => Value::F64(f64::arbitrary(u)?),
        5 => Value::from(["a", "b", "x", "", "ctx", "0", "é"][u.choose_index(7)?]),
        6 => Value::from(String::arbitrary(u)?),
        7 => Value::Array((0..u.int_in_range(0..=3)?).map(|_| value(u, depth - 1)).collect::<arbitrary::Result<_>>()?),
        _ => map_value(u, depth - 1)?,
    })
}

/// A map with distinct string keys.
fn map_value(u: &mut Unstructured, depth: usize) -> arbitrary::Result<Value> {
    let mut entries: Vec<(Value, Value)> = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let key = Value::from(["a", "b", "x", "n", "s"][u.choose_index(5)?]);
        let v = value(u, depth)?;
        if !entries.iter().any(|(k, _)| *k == key) {
            entries.push((key, v));
        }
    }
    Ok(Value::Map(entries))
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

fn definition(name: &str, guard: &str) -> Definition {
    Definition {
        name: name.into(),
        version: 1,
        states: vec!["a".into(), "b".into()],
        initial: "a".into(),
        transitions: vec![TransitionDef { from: vec!["a".into()], event: "go".into(), to: "b".into(), guard: Some(guard.into()) }],
    }
}

/// The guard text of a definition's canonical body.
fn canonical_guard(def: &Definition) -> String {
    Definition::decode(&def.canonical()).unwrap().transitions[0].guard.clone().unwrap()
}

/// What applying "go" to a fresh instance of `machine` with this context and
/// payload did: the state reached, or the error code.
fn apply(tx: &mut EngineTx, run: &RunId, machine: &str, ctx: &[u8], payload: &[u8]) -> String {
    let id = format!("i-{machine}");
    let create = CreateOptions { machine: machine.into(), version: Some(1), context: Some(ctx.to_vec()), idempotency_key: None };
    tx.machines_create(run, &id, &create).unwrap();
    let opts = ApplyOptions { payload: Some(payload.to_vec()), expected_state: None, expected_revision: None, idempotency_key: None };
    match tx.machines_apply(run, &id, "go", &opts) {
        Ok(a) => format!("to {}", a.to),
        Err(e) => e.code().to_string(),
    }
}

/// A guard text (before the first NUL) in a machine definition: validating
/// never panics and refuses with INVALID_ARGUMENT; a valid guard's canonical
/// text is valid, is its own canonical text, and evaluates like the original
/// on a context and payload made from the rest of the input.
pub fn guard(data: &[u8]) {
    let (text, rest) = text_and_rest(data);
    let def = definition("m", &text);
    if let Err(e) = def.validate() {
        assert!(matches!(e.code(), "INVALID_ARGUMENT" | "LIMIT_EXCEEDED"), "{e:?}");
        return;
    }
    let canonical = canonical_guard(&def);
    let def2 = definition("c", &canonical);
    def2.validate().unwrap_or_else(|e| panic!("the canonical text {canonical:?} of {text:?} does not parse: {e}"));
    assert_eq!(canonical_guard(&def2), canonical, "canonical text is not stable for {text:?}");

    let mut u = Unstructured::new(rest);
    let (Ok(ctx), Ok(payload)) = (map_value(&mut u, 2), map_value(&mut u, 2)) else { return };
    let (ctx, payload) = (encode(&ctx), encode(&payload));
    let (engine, run) = engine();
    let mut tx = EngineTx::begin(engine).unwrap();
    assert!(tx.machines_define(&def).unwrap());
    assert!(tx.machines_define(&def2).unwrap());
    let original = apply(&mut tx, run, "m", &ctx, &payload);
    let again = apply(&mut tx, run, "c", &ctx, &payload);
    assert_eq!(original, again, "guard {text:?} and its canonical text {canonical:?} evaluate differently");
    assert!(original == "to b" || original == "GUARD_FAILED", "apply answered {original}");
    drop(tx);
}

// ----- (f) JSON paths, through documents -------------------------------------------

/// A JSON path (before the first NUL) on a document: parsing never panics
/// and refuses with INVALID_ARGUMENT (the message naming a position) or,
/// past the depth limit, LIMIT_EXCEEDED; a value
/// set at a valid path reads back there, and is gone after a delete there.
pub fn json_path(data: &[u8]) {
    let (path, rest) = text_and_rest(data);
    let (engine, run) = engine();
    let mut tx = EngineTx::begin(engine).unwrap();
    match tx.json_get(run, "doc", &path) {
        Err(e) if e.code() == "LIMIT_EXCEEDED" => return,
        Err(e) => {
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{e:?}");
            assert!(e.to_string().contains("position"), "{e}");
            return;
        }
        Ok(found) => assert!(found.is_none(), "a path into a document that does not exist found something"),
    }
    let mut u = Unstructured::new(rest);
    let Ok(v) = value(&mut u, 2) else { return };
    if matches!(v, Value::F64(f) if f.is_nan()) {
        return;
    }
    let bytes = encode(&v);
    if tx.json_set(run, "doc", &path, &bytes).is_ok() {
        let read = tx.json_get(run, "doc", &path).unwrap().expect("a value set at a path is not there");
        let read = rmpv::decode::read_value(&mut &read[..]).unwrap();
        assert!(same(&read, &v), "set {v:?} at {path:?}, read {read:?}");
        if tx.json_delete(run, "doc", &path).unwrap() && path != "$" {
            assert_eq!(tx.json_get(run, "doc", &path).unwrap(), None, "a value deleted at {path:?} is still there");
        }
    }
    drop(tx);
}

/// Equality of decoded values, numbers by value (an encoder may store 1.0 as
/// 1) and NaN equal to itself.
fn same(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Integer(i) => i.as_f64(),
        Value::F32(f) => Some(f64::from(*f)),
        Value::F64(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Map(x), Value::Map(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(k2, v2)| same(k, k2) && same(v, v2))),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            _ => a == b,
        },
    }
}

// ----- behind the checksums: what the engine does with valid-looking records ----------

/// Options of a database opened by the targets below: strict (no flusher
/// thread), and closing writes no checkpoint.
fn open_options() -> OpenOptions {
    OpenOptions { durability: Durability::Strict, checkpoint_on_close: false, ..OpenOptions::default() }
}

/// A WAL whose one record has a valid checksum around the input as its
/// payload (the commit record decoder and the engine's apply see it as if a
/// writer had put it there): opening never panics, and either succeeds or is
/// a `CorruptionError` naming the segment and the record's offset.
pub fn wal_payload(data: &[u8]) {
    // An input starting with 0xFF describes the writes instead (keys shaped
    // like the engine's, values of any bytes), for the decoder to accept
    // more often than raw bytes would make it.
    let built;
    let data = match data.split_first() {
        Some((0xFF, rest)) => match commit_from(&mut Unstructured::new(rest)) {
            Ok(p) => {
                built = p;
                &built[..]
            }
            Err(_) => return,
        },
        _ => data,
    };
    let dir = scratch();
    let wal = dir.path().join("wal");
    fs::create_dir(&wal).unwrap();
    let header = SegmentHeader::new(1, [5; 16], false);
    let mut seg = header.encode().to_vec();
    seeded_record(&mut seg, 1, data, header.seed());
    let segment = wal.join(segment_file_name(1));
    fs::write(&segment, &seg).unwrap();
    match Engine::open(Some(dir.path()), open_options()) {
        Ok(engine) => {
            let stats = engine.stats();
            assert_eq!(stats.recovery.records, 1);
            drop(engine);
        }
        Err(Error::Corruption { file, offset, .. }) => {
            assert!(file.ends_with(&segment_file_name(1)), "the error names {file}");
            assert_eq!(offset, SEGMENT_HEADER_LEN as u64);
        }
        Err(e) => panic!("a record that does not decode is not a CorruptionError: {e:?}"),
    }
}

const TAGS: [u8; 13] = [0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x00, 0xff];

/// A key as the engine lays them out (a run id, a type tag, a user key),
/// now and then any short bytes.
fn shaped_key(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    let mut key = Vec::new();
    if u.ratio(1, 8)? {
        let n = u.int_in_range(0..=17)?;
        key.extend_from_slice(u.bytes(n.min(u.len()))?);
    } else {
        key.extend_from_slice(&if bool::arbitrary(u)? { [0u8; 16] } else { [0x11; 16] });
        key.push(TAGS[u.choose_index(TAGS.len())?]);
        let n = u.int_in_range(0..=40)?;
        key.extend_from_slice(u.bytes(n.min(u.len()))?);
    }
    Ok(key)
}

/// A commit payload (docs/format.md) of a few writes with shaped keys.
fn commit_from(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    let mut p = vec![if u.ratio(1, 16)? { u8::arbitrary(u)? } else { 1 }];
    p.extend_from_slice(&u64::arbitrary(u)?.to_le_bytes());
    let n = u.int_in_range(0..=6u32)?;
    p.extend_from_slice(&n.to_le_bytes());
    for _ in 0..n {
        let key = shaped_key(u)?;
        // put, delete, or now and then a delta (base version, prefix, suffix, middle)
        let op = if u.ratio(1, 8)? {
            3
        } else if u.ratio(1, 5)? {
            2
        } else {
            1
        };
        p.push(op);
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(&key);
        if op == 3 {
            p.extend_from_slice(&u.int_in_range(0..=3u64)?.to_le_bytes());
            p.extend_from_slice(&u.int_in_range(0..=64u32)?.to_le_bytes());
            p.extend_from_slice(&u.int_in_range(0..=64u32)?.to_le_bytes());
        }
        if op != 2 {
            let vlen = u.int_in_range(0..=120)?;
            let v = u.bytes(vlen.min(u.len()))?;
            p.extend_from_slice(&(v.len() as u32).to_le_bytes());
            p.extend_from_slice(v);
        }
    }
    Ok(p)
}

/// A checkpoint with a valid checksum around fuzzed entries (keys shaped
/// like the engine's: a run id, a type tag, a user key; values of any bytes)
/// named by the manifest: opening never panics, and either succeeds or is a
/// `CorruptionError`.
pub fn checkpoint_load(data: &[u8]) {
    let _ = checkpoint_load_inner(&mut Unstructured::new(data));
}

fn checkpoint_load_inner(u: &mut Unstructured) -> arbitrary::Result<()> {
    let version = u.int_in_range(1..=1000u64)?;
    let mut entries: Vec<Entry> = Vec::new();
    for _ in 0..u.int_in_range(0..=12)? {
        let key = shaped_key(u)?;
        let v = u.int_in_range(1..=version)?;
        let value = if u.ratio(1, 6)? {
            None
        } else {
            let n = u.int_in_range(0..=120)?;
            Some(u.bytes(n.min(u.len()))?.to_vec())
        };
        entries.push((key, v, value));
    }
    let dir = scratch();
    let mut w = CheckpointWriter::create(&dir.path().join("checkpoints"), version, [5; 16]).unwrap();
    for (k, v, val) in &entries {
        w.add(k, *v, false, val.as_deref()).unwrap();
    }
    w.finish().unwrap();
    manifest::write(dir.path(), &Manifest { checkpoints: vec![version], history: vec![], cold: vec![], cold_files: vec![] }).unwrap();
    match Engine::open(Some(dir.path()), open_options()) {
        Ok(engine) => {
            assert_eq!(engine.stats().recovery.checkpoint_version, version);
            drop(engine);
        }
        Err(Error::Corruption { .. }) => {}
        Err(e) => panic!("a checkpoint whose entries do not make sense is not a CorruptionError: {e:?}"),
    }
    Ok(())
}

/// The run id a `wire` input names; replaced by the fuzz engine's run.
pub const WIRE_RUN: &[u8; 36] = b"00000000-0000-7000-8000-0000000000aa";

/// Server mode's frame decoder and hot path (`crates/wire`): the first byte
/// chooses the size of the chunks the rest arrives in (`WIRE_RUN` in it
/// stands for a live run). Frames must be cut exactly as they were framed,
/// whatever the chunks; every frame is offered as a handshake and as a
/// request; a request answered here must be answered with one well-formed
/// frame `[id, 0, payload]`, and a `kv.put` answered here must have stored
/// exactly the value bytes it carried (a `kv.get` of its key returns them).
pub fn wire(data: &[u8]) {
    use in_mem_wire::listener::check_handshake;
    use in_mem_wire::{Frames, Hot, serve};
    let Some((&first, rest)) = data.split_first() else { return };
    let (engine, run) = engine();
    let live = run.to_string();
    let mut stream = rest.to_vec();
    let mut at = 0;
    while let Some(i) = stream[at..].windows(WIRE_RUN.len()).position(|w| w == WIRE_RUN) {
        stream[at + i..at + i + WIRE_RUN.len()].copy_from_slice(live.as_bytes());
        at += i + WIRE_RUN.len();
    }
    let chunk = 1 + first as usize % 64;
    let mut frames = Frames::new(4096);
    let mut cut = Vec::new();
    let token = [7u8; 32];
    let mut too_large = false;
    'read: for piece in stream.chunks(chunk) {
        frames.extend(piece);
        loop {
            let body = match frames.next_frame() {
                Ok(Some(r)) => frames.bytes()[r].to_vec(),
                Ok(None) => break,
                Err(e) => {
                    assert!(e.length > e.limit);
                    too_large = true;
                    break 'read;
                }
            };
            cut.extend_from_slice(&(body.len() as u32).to_le_bytes());
            cut.extend_from_slice(&body);
            if let Err(Some(answer)) = check_handshake(&body, Some(&token)) {
                let len = u32::from_le_bytes(answer[..4].try_into().unwrap()) as usize;
                assert_eq!(len + 4, answer.len(), "a refusal is one frame");
                rmpv::decode::read_value(&mut &answer[4..]).expect("a refusal is MessagePack");
            }
            let mut out = Vec::new();
            let Some((id, op)) = serve(engine, &body, &mut out, true) else {
                assert!(out.is_empty(), "a request left to JavaScript wrote an answer");
                continue;
            };
            let len = u32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
            assert_eq!(len + 4, out.len(), "an answer is one frame");
            let mut answer = &out[4..];
            let v = rmpv::decode::read_value(&mut answer).expect("an answer is MessagePack");
            assert!(answer.is_empty(), "bytes after the answer");
            assert_eq!(v[0].as_u64(), Some(id));
            assert_eq!(v[1].as_u64(), Some(0));
            if op == Hot::KvPut {
                // [id, 'kv.put', [run, key, value], 0]: read the key back.
                let req = rmpv::decode::read_value(&mut &body[..]).expect("an answered request is MessagePack");
                let args = req[2].as_array().unwrap();
                let key = args[1].as_str().unwrap();
                let get = rmpv::Value::Array(vec![
                    rmpv::Value::from(id + 1),
                    rmpv::Value::from("kv.get"),
                    rmpv::Value::Array(vec![rmpv::Value::from(live.as_str()), rmpv::Value::from(key)]),
                    rmpv::Value::from(0),
                ]);
                let mut get_body = Vec::new();
                rmpv::encode::write_value(&mut get_body, &get).unwrap();
                let mut got = Vec::new();
                serve(engine, &get_body, &mut got, true).expect("a kv.get of a key just put is answered");
                let read = rmpv::decode::read_value(&mut &got[4..]).unwrap();
                // Compared encoded (NaN is not equal to itself).
                let (mut stored, mut carried) = (Vec::new(), Vec::new());
                rmpv::encode::write_value(&mut stored, &read[2]).unwrap();
                rmpv::encode::write_value(&mut carried, &args[2]).unwrap();
                assert_eq!(stored, carried, "kv.put stored something else than it carried");
            }
        }
    }
    assert!(stream.starts_with(&cut), "frames were not cut as framed");
    if !too_large {
        assert_eq!(stream.len() - cut.len(), frames.pending(), "bytes lost or invented between frames");
    }
}

// ----- history files ---------------------------------------------------------------

/// A history file (`in_mem_durability::history`) written from arbitrary
/// keys and versions reads back exactly, one block per key; the same file
/// with up to three flipped bits, cut, or lengthened is refused at open
/// (`CorruptionError`), never accepted with other contents and never a
/// panic; and raw bytes opened as a history file are refused or hold only
/// what the checks allow.
pub fn history_file(data: &[u8]) {
    let _ = history_file_inner(&mut Unstructured::new(data));
}

fn history_file_inner(u: &mut Unstructured) -> arbitrary::Result<()> {
    use in_mem_durability::history::{self, HistoryFile, HistoryWriter};
    let dir = scratch();
    if u.ratio(1, 4)? {
        // Raw bytes under a history file's name.
        let raw = u.bytes(u.len())?.to_vec();
        fs::create_dir_all(dir.path().join(history::DIR)).unwrap();
        let path = history::path(dir.path(), 7);
        fs::write(&path, &raw).unwrap();
        // Opened without reading its blocks: each block read is checked
        // (an error, never a panic), and the filter answers for any key.
        if let Ok(f) = HistoryFile::open_kind(&path, None, history::Kind::History, false) {
            let _ = f.check();
            let _ = f.may_hold(&raw[..raw.len().min(9)]);
        }
        if let Ok(f) = HistoryFile::open(&path, None) {
            // What opened checked out: every block reads back in order.
            let mut last: Option<Vec<u8>> = None;
            for (k, versions) in f.keys() {
                assert!(last.as_ref().is_none_or(|l| *l < k), "keys out of order in a file that opened");
                assert!(versions.windows(2).all(|w| w[0].0 < w[1].0) && versions.iter().all(|(v, _)| *v <= f.version()));
                last = Some(k);
            }
        }
        return Ok(());
    }
    let version = u.int_in_range(1..=1u64 << 40)?;
    let n = u.int_in_range(0..=60)?;
    type Versions = Vec<(u64, Option<Vec<u8>>)>;
    let mut keys: std::collections::BTreeMap<Vec<u8>, Versions> = Default::default();
    for _ in 0..n {
        let klen = u.int_in_range(1..=24)?;
        let key = u.bytes(klen.min(u.len()))?.to_vec();
        if key.is_empty() {
            break;
        }
        let mut vs = std::collections::BTreeMap::new();
        for _ in 0..u.int_in_range(1..=4)? {
            let v = u.int_in_range(0..=version)?;
            let value = if u.ratio(1, 5)? {
                None
            } else {
                let vlen = u.int_in_range(0..=2000)?;
                Some(u.bytes(vlen.min(u.len()))?.to_vec())
            };
            vs.insert(v, value);
        }
        keys.insert(key, vs.into_iter().collect());
    }
    let id: [u8; 16] = Arbitrary::arbitrary(u)?;
    let mut w = HistoryWriter::create(dir.path(), version, id).unwrap();
    for (k, vs) in &keys {
        let vs: Vec<(u64, Option<&[u8]>)> = vs.iter().map(|(v, x)| (*v, x.as_deref())).collect();
        w.add_key(k, &vs).unwrap();
    }
    let Some(written) = w.finish().unwrap() else {
        assert!(keys.is_empty(), "a history file with keys was not written");
        return Ok(());
    };
    let path = written.path().to_path_buf();
    assert_eq!(written.keys().collect::<Vec<_>>(), keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>(), "the file the writer hands back");
    drop(written);
    let f = HistoryFile::open(&path, Some(id)).unwrap();
    let read: Vec<_> = f.keys().collect();
    let expected: Vec<_> = keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(read, expected, "a history file does not read back what was written");
    for (k, vs) in &keys {
        let mut found = Vec::new();
        for n in f.blocks_of(k) {
            history::entries_of(&f.block(n), |key, v, value| {
                if key == k.as_slice() {
                    found.push((v, value.map(<[u8]>::to_vec)));
                }
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(&found, vs, "a key's versions are not all in the blocks the index names");
        assert!(f.may_hold(k), "the bloom filter rules out a key the file holds");
        // Each version is found from its own snapshot, in the one block the index names.
        for (v, _) in vs {
            let n = f.block_for(k, *v).expect("a block for a version the file holds");
            let mut hit = false;
            history::entries_of(&f.block(n), |key, x, _| {
                hit |= key == k.as_slice() && x == *v;
                Ok(())
            })
            .unwrap();
            assert!(hit, "version {v} of a key is not in the block block_for names");
        }
    }
    drop(f);

    let bytes = fs::read(&path).unwrap();
    let mut damaged = bytes.clone();
    let count = u.int_in_range(1..=3)?;
    let flipped = flip_bits(u, &mut damaged, 0, count)?;
    fs::write(&path, &damaged).unwrap();
    let r = HistoryFile::open(&path, Some(id));
    assert!(matches!(r, Err(Error::Corruption { .. })), "bits {flipped:?} flipped in a history file of {} bytes were accepted", bytes.len());
    let cut = u.choose_index(bytes.len())?;
    fs::write(&path, &bytes[..cut]).unwrap();
    assert!(matches!(HistoryFile::open(&path, Some(id)), Err(Error::Corruption { .. })), "a history file cut at {cut} was accepted");
    let mut longer = bytes.clone();
    longer.push(u8::arbitrary(u)?);
    fs::write(&path, &longer).unwrap();
    assert!(HistoryFile::open(&path, Some(id)).is_err(), "a byte appended to a history file was accepted");
    Ok(())
}
