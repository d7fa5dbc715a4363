//! The on-disk format of WAL segments (documented in `docs/format.md`).
//!
//! A segment is a 48-byte header followed by records:
//!
//! ```text
//! header:  magic "INMEMWAL" (8) | format version u32 | flags u32 |
//!          segment number u64 | database id (16) | crc32c of the previous 44 bytes u32 | zero u32
//! record:  payload length u32 | crc32c u32 | commit version u64 | payload
//! ```
//!
//! All integers are little-endian. A record's CRC32C covers its length, its
//! commit version and its payload, in that order, so a record is accepted
//! only if every byte of it is what was written.
//!
//! Format 2 (written since segments are recycled) stores the CRC XOR-ed with
//! the segment's seed ([`SegmentHeader::seed`], from its number), so a stale
//! record left in a recycled file by the segment it used to be never checks
//! out in the segment it is now. Header flag bit 0 says the file was
//! recycled: bytes other than zeros may follow its records. Format 1
//! segments (seed 0, never recycled) are still read.

pub const MAGIC: &[u8; 8] = b"INMEMWAL";
/// The format new segments are written in; format 1 is still read.
pub const FORMAT_VERSION: u32 = 2;
/// Header flag: the file was recycled, so stale bytes may follow the records.
pub const FLAG_RECYCLED: u32 = 1;
pub const SEGMENT_HEADER_LEN: usize = 48;
pub const RECORD_HEADER_LEN: usize = 16;
/// A payload can hold a commit of many maximal values, but not more than this.
pub const MAX_RECORD_PAYLOAD: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub segment: u64,
    pub database_id: [u8; 16],
    /// 1 or 2; [`SegmentHeader::new`] makes [`FORMAT_VERSION`].
    pub format: u32,
    pub recycled: bool,
}

impl SegmentHeader {
    /// The header of a new (`recycled: false`) or recycled segment.
    pub fn new(segment: u64, database_id: [u8; 16], recycled: bool) -> SegmentHeader {
        SegmentHeader { segment, database_id, format: FORMAT_VERSION, recycled }
    }

    /// What the records' CRCs are XOR-ed with: 0 in format 1, else a
    /// non-zero CRC32C of the segment number (two numbers that differ only in
    /// their low 32 bits have different CRCs).
    pub fn seed(&self) -> u32 {
        segment_seed(self.format, self.segment)
    }

    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&self.format.to_le_bytes());
        h[12..16].copy_from_slice(&(if self.recycled { FLAG_RECYCLED } else { 0 }).to_le_bytes());
        h[16..24].copy_from_slice(&self.segment.to_le_bytes());
        h[24..40].copy_from_slice(&self.database_id);
        let crc = crc32c::crc32c(&h[0..40]);
        h[40..44].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, &'static str> {
        if bytes.len() < SEGMENT_HEADER_LEN {
            return Err("segment header is incomplete");
        }
        if &bytes[0..8] != MAGIC {
            return Err("segment header has the wrong magic");
        }
        let crc = u32::from_le_bytes(bytes[40..44].try_into().unwrap());
        if crc != crc32c::crc32c(&bytes[0..40]) {
            return Err("segment header checksum mismatch");
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if format != 1 && format != 2 {
            return Err("unsupported WAL format version");
        }
        let flags = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
        if flags & !FLAG_RECYCLED != 0 || (format == 1 && flags != 0) {
            return Err("unknown segment header flags");
        }
        Ok(SegmentHeader {
            segment: u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
            database_id: bytes[24..40].try_into().unwrap(),
            format,
            recycled: flags & FLAG_RECYCLED != 0,
        })
    }
}

/// See [`SegmentHeader::seed`].
pub fn segment_seed(format: u32, segment: u64) -> u32 {
    match format {
        1 => 0,
        _ => crc32c::crc32c(&segment.to_le_bytes()).max(1),
    }
}

/// XORs the CRC field of the record header `header` with `seed` (writing a
/// record of a format 2 segment).
pub fn seed_record_header(header: &mut [u8], seed: u32) {
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap()) ^ seed;
    header[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends one record to `out`.
pub fn encode_record(out: &mut Vec<u8>, version: u64, payload: &[u8]) {
    let start = begin_record(out);
    out.extend_from_slice(payload);
    finish_record(out, start, version);
}

/// Starts a record in `out` whose payload the caller appends next; returns
/// the record's start for [`finish_record`].
pub fn begin_record(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    start
}

/// Fills in the header of the record begun at `start`, once its payload is
/// complete.
pub fn finish_record(out: &mut [u8], start: usize, version: u64) {
    let len = (out.len() - start - RECORD_HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 8..start + 16].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out[start..start + 4]), &out[start + 8..start + 16]);
    let crc = crc32c::crc32c_append(crc, &out[start + RECORD_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What decoding the bytes at one offset found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Record {
        version: u64,
        payload: &'a [u8],
        len: usize,
    },
    /// The bytes end before the record does.
    Incomplete,
    /// The record is complete but its checksum does not match.
    BadChecksum {
        len: usize,
    },
    /// The length field is impossible.
    BadLength,
}

/// Decodes the record at the start of `bytes` of a format 1 segment (or
/// one encoded by [`encode_record`]).
pub fn decode_record(bytes: &[u8]) -> Decoded<'_> {
    decode_record_seeded(bytes, 0)
}

/// Decodes the record at the start of `bytes` of a segment whose seed is
/// `seed` ([`SegmentHeader::seed`]).
pub fn decode_record_seeded(bytes: &[u8], seed: u32) -> Decoded<'_> {
    if bytes.len() < RECORD_HEADER_LEN {
        return Decoded::Incomplete;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    if len > MAX_RECORD_PAYLOAD {
        return Decoded::BadLength;
    }
    let total = RECORD_HEADER_LEN + len;
    if bytes.len() < total {
        return Decoded::Incomplete;
    }
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) ^ seed;
    let payload = &bytes[RECORD_HEADER_LEN..total];
    let computed = crc32c::crc32c_append(crc32c::crc32c(&bytes[0..4]), &bytes[8..16]);
    let computed = crc32c::crc32c_append(computed, payload);
    if crc != computed {
        return Decoded::BadChecksum { len: total };
    }
    Decoded::Record { version: u64::from_le_bytes(bytes[8..16].try_into().unwrap()), payload, len: total }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        for recycled in [false, true] {
            let h = SegmentHeader::new(7, [3; 16], recycled);
            let mut bytes = h.encode();
            assert_eq!(SegmentHeader::decode(&bytes).unwrap(), h);
            bytes[17] ^= 1;
            assert!(SegmentHeader::decode(&bytes).is_err());
        }
        // Format 1 (no flags, seed 0) is still read.
        let old = SegmentHeader { segment: 7, database_id: [3; 16], format: 1, recycled: false };
        assert_eq!(SegmentHeader::decode(&old.encode()).unwrap(), old);
        assert_eq!(old.seed(), 0);
    }

    /// A record of one segment never checks out in another: the stale
    /// records a recycled file holds are not records of its new segment.
    #[test]
    fn a_record_checks_out_only_under_its_own_segment_seed() {
        let mut rec = vec![];
        encode_record(&mut rec, 9, b"payload");
        let seeded = |n: u64| {
            let mut r = rec.clone();
            seed_record_header(&mut r[..RECORD_HEADER_LEN], SegmentHeader::new(n, [0; 16], true).seed());
            r
        };
        for n in [1u64, 2, 3, 1000, u64::from(u32::MAX), 1 << 40] {
            let r = seeded(n);
            let own = SegmentHeader::new(n, [0; 16], false).seed();
            assert!(matches!(decode_record_seeded(&r, own), Decoded::Record { version: 9, .. }));
            assert!(matches!(decode_record(&r), Decoded::BadChecksum { .. }), "a seeded record read as format 1");
            for m in [n + 1, n.wrapping_sub(1), n + 7] {
                let other = SegmentHeader::new(m, [0; 16], false).seed();
                assert!(matches!(decode_record_seeded(&r, other), Decoded::BadChecksum { .. }), "segment {n}'s record checked out in segment {m}");
            }
        }
    }

    proptest! {
        #[test]
        fn records_round_trip(version in any::<u64>(), payload in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut out = vec![];
            encode_record(&mut out, version, &payload);
            prop_assert_eq!(decode_record(&out), Decoded::Record { version, payload: &payload, len: out.len() });
        }

        #[test]
        fn any_flipped_bit_is_detected(payload in prop::collection::vec(any::<u8>(), 1..100), bit in any::<prop::sample::Index>()) {
            let mut out = vec![];
            encode_record(&mut out, 42, &payload);
            let i = bit.index(out.len() * 8);
            out[i / 8] ^= 1 << (i % 8);
            let accepted = matches!(decode_record(&out), Decoded::Record { .. });
            prop_assert!(!accepted, "a flipped bit was accepted");
        }

        #[test]
        fn every_truncation_is_incomplete(payload in prop::collection::vec(any::<u8>(), 0..100), cut in any::<prop::sample::Index>()) {
            let mut out = vec![];
            encode_record(&mut out, 1, &payload);
            let at = cut.index(out.len());
            prop_assert_eq!(decode_record(&out[..at]), Decoded::Incomplete);
        }
    }
}
