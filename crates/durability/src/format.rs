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

pub const MAGIC: &[u8; 8] = b"INMEMWAL";
pub const FORMAT_VERSION: u32 = 1;
pub const SEGMENT_HEADER_LEN: usize = 48;
pub const RECORD_HEADER_LEN: usize = 16;
/// A payload can hold a commit of many maximal values, but not more than this.
pub const MAX_RECORD_PAYLOAD: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub segment: u64,
    pub database_id: [u8; 16],
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&0u32.to_le_bytes());
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
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if version != FORMAT_VERSION {
            return Err("unsupported WAL format version");
        }
        Ok(SegmentHeader { segment: u64::from_le_bytes(bytes[16..24].try_into().unwrap()), database_id: bytes[24..40].try_into().unwrap() })
    }
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

pub fn decode_record(bytes: &[u8]) -> Decoded<'_> {
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
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
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
        let h = SegmentHeader { segment: 7, database_id: [3; 16] };
        let mut bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes).unwrap(), h);
        bytes[17] ^= 1;
        assert!(SegmentHeader::decode(&bytes).is_err());
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
