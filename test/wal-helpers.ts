// Helpers of the suites that read or damage WAL segments on disk (the format
// is docs/format.md and crates/durability/src/format.rs). Not a test file.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

export const SEGMENT_HEADER = 48
export const RECORD_HEADER = 16

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC32C (Castagnoli, reflected polynomial 0x82F63B78) of the concatenation of `parts`. */
export function crc32c(...parts: Uint8Array[]): number {
  let c = 0xffffffff
  for (const part of parts) for (const byte of part) c = CRC32C_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** WAL segment files of a data directory, oldest first. */
export function walFiles(dir: string): string[] {
  return readdirSync(join(dir, 'wal'))
    .filter((f) => f.endsWith('.wal'))
    .sort()
    .map((f) => join(dir, 'wal', f))
}

export interface WalRecord {
  /** Offset of the record header in the segment. */
  offset: number
  /** Header plus payload, in bytes. */
  len: number
  version: number
  /** The CRC32C stored in the record header. */
  crc: number
}

/** The complete records of a segment, in order. */
export function walRecords(segment: Buffer): WalRecord[] {
  const out: WalRecord[] = []
  let at = SEGMENT_HEADER
  while (at + RECORD_HEADER <= segment.length) {
    // A zero header: where the file grew ahead of its records (docs/format.md).
    if (segment.subarray(at, at + RECORD_HEADER).every((b) => b === 0)) break
    const len = RECORD_HEADER + segment.readUInt32LE(at)
    if (at + len > segment.length) break
    out.push({ offset: at, len, version: Number(segment.readBigUInt64LE(at + 8)), crc: segment.readUInt32LE(at + 4) })
    at += len
  }
  return out
}

/**
 * What a segment's records' CRCs are XOR-ed with: 0 in format 1, else the
 * CRC32C of its segment number (bytes 16..24 of its header), or 1 for 0.
 */
export function segmentSeed(segment: Buffer): number {
  if (segment.readUInt32LE(8) === 1) return 0
  return crc32c(segment.subarray(16, 24)) || 1
}

/** The CRC32C a record should carry: over its length field, its version field and its payload, in that order, XOR-ed with its segment's seed. */
export function recordCrc(segment: Buffer, r: WalRecord): number {
  const crc = crc32c(
    segment.subarray(r.offset, r.offset + 4),
    segment.subarray(r.offset + 8, r.offset + 16),
    segment.subarray(r.offset + RECORD_HEADER, r.offset + r.len),
  )
  return (crc ^ segmentSeed(segment)) >>> 0
}

/** Rewrites the stored CRC32C of `r` (in place) so the record reads as valid again. */
export function fixRecordCrc(segment: Buffer, r: WalRecord): void {
  segment.writeUInt32LE(recordCrc(segment, r), r.offset + 4)
}
