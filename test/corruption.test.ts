// The corruption suite: every kind of damage SPEC §13 names, each with the
// outcome docs/durability.md documents for it.
//
// | damage                                   | documented outcome                                                    |
// |------------------------------------------|-----------------------------------------------------------------------|
// | torn tail (newest segment)               | truncated at the record, reported in stats().recovery.tornTail        |
// | flipped bits mid-log, or in a closed     | CorruptionError { file, offset of the damaged record, reason };       |
// |   segment, or in a segment header        |   nothing on disk changes                                             |
// | appended garbage after the last record   | it is the tail: a torn tail if a crash could explain it (an           |
// |                                          |   incomplete record, a last record whose checksum fails, zeros),      |
// |                                          |   CorruptionError at its offset otherwise                             |
// | a zeroed region                          | CorruptionError, unless it runs to the end of the newest segment      |
// |                                          |   from a record boundary (that is a torn tail)                        |
// | a missing segment                        | CorruptionError naming the gap                                        |
// | a damaged checkpoint                     | the previous one is loaded when the WAL still covers it               |
// |                                          |   (stats().recovery.checkpointFallback says why); CorruptionError     |
// |                                          |   naming the file otherwise                                           |
// | a damaged MANIFEST                       | CorruptionError naming MANIFEST                                       |
// | commits cut out of the middle of the log | CorruptionError ("nothing is ever skipped silently"): versions must   |
// |   (whole records, or a closed segment    |   be consecutive, so a missing commit is named at the record after    |
// |   cut at a record boundary)              |   the hole                                                            |
// | a checksummed record or checkpoint entry | CorruptionError naming the file and offset (a key shorter than a run  |
// |   that does not decode                   |   id included)                                                        |
//
// Where docs/durability.md is silent, the cases pin what the code does and
// say so: garbage that claims a length above the limit, the reserved bytes
// of a segment header, a deleted newest segment, a damaged only checkpoint,
// a checkpoint from another database, a missing MANIFEST.
//
// Some single cases also live in durability.test.ts and checkpoint.test.ts,
// next to the features they pin down; this file goes through each kind of
// damage systematically (every bit of a record header, every cut of a
// record, every region of a checkpoint, random garbage against a model of
// the rule). What `{ repair: true }` does with the damage is repair.test.ts.
import { createHash } from 'node:crypto'
import { cpSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CorruptionError, Database, type OpenOptions } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'
import { crc32c, RECORD_HEADER, SEGMENT_HEADER, segmentSeed, walFiles, walRecords } from './wal-helpers.js'

let dir: string

beforeEach(() => {
  dir = makeTmpDir('in-mem-corruption')
})

afterEach(() => {
  removeDir(dir)
})

const OPEN: OpenOptions = { durability: 'strict', checkpointOnClose: false }

/** Largest payload a record may claim (crates/durability/src/format.rs MAX_RECORD_PAYLOAD). */
const MAX_RECORD_PAYLOAD = 2 ** 30

/** The value of the i-th key `writeLog` writes. */
const valueOf = (i: number) => ({ i, pad: 'p'.repeat(10 + ((i * 7) % 50)) })

/**
 * Writes a run and `n` KV puts (one commit each: commit 1 is the run, commit
 * i + 2 is k<i>) into `path` and closes it without a checkpoint.
 */
function writeLog(path: string, n: number, opts: OpenOptions = {}): string {
  const db = Database.open(path, { ...OPEN, ...opts })
  try {
    const run = db.runs.begin({ name: 'corruption' })
    for (let i = 0; i < n; i++) db.kv.put(run, `k${i}`, valueOf(i))
    return run
  } finally {
    db.close()
  }
}

/** Opens `path`, hands the database to `fn`, and closes it. */
function withDb<T>(path: string, fn: (db: Database) => T, opts: OpenOptions = {}): T {
  const db = Database.open(path, { ...OPEN, ...opts })
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

/** Which of k0..k<n-1> are present: they must be exactly k0..k<m-1> with their values. Returns m. */
function keysPresent(db: Database, run: string, n: number): number {
  const keys = db.kv.list(run)
  const m = keys.length
  expect(
    keys.sort(),
    'the recovered keys are a prefix of the written ones',
  ).toEqual(Array.from({ length: m }, (_, i) => `k${i}`).sort())
  expect(m).toBeLessThanOrEqual(n)
  for (let i = 0; i < m; i++) expect(db.kv.get(run, `k${i}`)).toEqual(valueOf(i))
  return m
}

/** Every file under `path` (but LOCK, which an open rewrites) and a hash of its bytes. */
function snapshot(path: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name !== 'LOCK') out[relative(path, p)] = createHash('sha256').update(readFileSync(p)).digest('hex')
    }
  }
  walk(path)
  return out
}

/**
 * Expects open to throw CorruptionError naming `file` (and `offset`, and a
 * reason matching `reason`, when given), and nothing on disk to change.
 */
function expectCorruption(path: string, where: { file?: string; offset?: number; reason?: RegExp }, context = ''): CorruptionError {
  const before = snapshot(path)
  const err = expectError(() => Database.open(path, OPEN).close(), CorruptionError, 'CORRUPTION')
  if (where.file !== undefined) expect(canonical(String(err.details.file)), context).toBe(canonical(where.file))
  if (where.offset !== undefined) {
    expect(err.details.offset, `${context}: ${err.message}`).toBe(where.offset)
    expect(err.message, context).toContain(String(where.offset))
  }
  if (where.reason) expect(String(err.details.reason), context).toMatch(where.reason)
  expect(typeof err.details.reason, context).toBe('string')
  expect(snapshot(path), `${context}: open changed the data directory`).toEqual(before)
  return err
}

/** A path with its directory resolved (the file itself may be gone). */
const canonical = (p: string) => join(realpathSync(dirname(p)), basename(p))

/** A WAL record as docs/format.md lays it out, for the segment `segment` (whose seed its CRC carries). */
function encodeRecord(segment: Buffer, version: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(RECORD_HEADER)
  head.writeUInt32LE(payload.length, 0)
  head.writeBigUInt64LE(BigInt(version), 8)
  head.writeUInt32LE((crc32c(head.subarray(0, 4), head.subarray(8, 16), payload) ^ segmentSeed(segment)) >>> 0, 4)
  return Buffer.concat([head, payload])
}

/** A deterministic PRNG (mulberry32), so a failing random case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// ----- torn tail ---------------------------------------------------------------

describe('torn tail: truncated at the record and reported', () => {
  it('the last record cut at every length, header and payload: the records before it are intact and the log continues', () => {
    const run = writeLog(dir, 6)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const records = walRecords(original)
    const last = records.at(-1)!
    expect(last.offset + last.len).toBe(original.length)
    for (let keep = 1; keep < last.len; keep++) {
      const context = `last record cut to ${keep} of ${last.len} bytes`
      writeFileSync(file, original.subarray(0, last.offset + keep))
      withDb(dir, (db) => {
        const rec = db.stats().recovery
        expect(rec.tornTail, context).toEqual({ file: rec.tornTail?.file, offset: last.offset, droppedBytes: keep })
        expect(realpathSync(rec.tornTail!.file), context).toBe(realpathSync(file))
        expect(rec.records, context).toBe(records.length - 1)
        expect(rec.lastVersion, context).toBe(last.version - 1)
        expect(keysPresent(db, run, 6), context).toBe(5)
      })
      expect(statSync(file).size, context).toBe(last.offset)
    }
    // After the cut the log continues: the lost commit's version is reused by the next one.
    withDb(dir, (db) => {
      expect(db.stats().recovery.tornTail).toBeNull()
      expect(db.kv.put(run, 'k5', valueOf(5))).toBe(last.version)
    })
    withDb(dir, (db) => expect(keysPresent(db, run, 6)).toBe(6))
  })

  it('a complete last record whose checksum fails is a torn tail', () => {
    const run = writeLog(dir, 4)
    const [file] = walFiles(dir)
    const bytes = readFileSync(file)
    const last = walRecords(bytes).at(-1)!
    for (const at of [4, 8, last.len - 1]) {
      const damaged = Buffer.from(bytes)
      damaged[last.offset + at] ^= 0x10
      writeFileSync(file, damaged)
      withDb(dir, (db) => {
        expect(db.stats().recovery.tornTail, `byte ${at} of the last record`).toMatchObject({ offset: last.offset, droppedBytes: last.len })
        expect(keysPresent(db, run, 4)).toBe(3)
      })
    }
  })

  it('zero bytes after the last record, however many, are where the file grew ahead of its records: cut, not reported', () => {
    // docs/durability.md: the newest segment's file grows ahead of its
    // records in 1 MiB steps, so a process that dies leaves zeros after the
    // last record; they are not damage.
    const run = writeLog(dir, 3)
    const [file] = walFiles(dir)
    const bytes = readFileSync(file)
    for (const zeros of [1, 15, 16, 17, 100, 4096]) {
      writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(zeros)]))
      withDb(dir, (db) => {
        expect(db.stats().recovery.tornTail, `${zeros} zero bytes`).toBeNull()
        expect(keysPresent(db, run, 3)).toBe(3)
      })
      expect(statSync(file).size).toBe(bytes.length)
    }
  })

  it('a newest segment whose header never reached the disk (empty, or zeros) is removed and reported; the log continues', () => {
    const base = join(dir, 'base')
    const run = writeLog(base, 40, { segmentBytes: 4096 })
    const segments = walFiles(base).length
    expect(segments).toBeGreaterThanOrEqual(2)
    for (const size of [0, 20, SEGMENT_HEADER - 1]) {
      const path = join(dir, `size-${size}`)
      cpSync(base, path, { recursive: true })
      const next = join(path, 'wal', `${String(segments + 1).padStart(20, '0')}.wal`)
      writeFileSync(next, Buffer.alloc(size))
      withDb(
        path,
        (db) => {
          const rec = db.stats().recovery
          expect(rec.tornTail, `a header-less segment of ${size} bytes`).toMatchObject({ offset: 0, droppedBytes: size })
          expect(basename(rec.tornTail!.file)).toBe(basename(next))
          expect(rec.segments).toBe(segments)
          expect(keysPresent(db, run, 40)).toBe(40)
          db.kv.put(run, 'after', 1)
        },
        { segmentBytes: 4096 },
      )
      withDb(path, (db) => expect(db.kv.get(run, 'after')).toBe(1))
    }
  })

  it('only the newest segment may have a torn tail: a closed segment cut short is CorruptionError', () => {
    writeLog(dir, 150, { segmentBytes: 4096 })
    const files = walFiles(dir)
    expect(files.length).toBeGreaterThanOrEqual(3)
    const victim = files[1]
    const bytes = readFileSync(victim)
    const last = walRecords(bytes).at(-1)!
    truncateSync(victim, last.offset + 7)
    expectCorruption(dir, { file: victim, offset: last.offset, reason: /cut short/ })
  })
})

// ----- flipped bits --------------------------------------------------------------

describe('flipped bits: CorruptionError naming the segment and the damaged record, nothing changed', () => {
  it('every bit of a middle record header, and a bit of every payload byte', () => {
    writeLog(dir, 8)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const victim = walRecords(original)[4]
    const positions: [number, number][] = []
    for (let byte = 0; byte < RECORD_HEADER; byte++) for (let bit = 0; bit < 8; bit++) positions.push([byte, bit])
    for (let byte = RECORD_HEADER; byte < victim.len; byte++) positions.push([byte, byte % 8])
    for (const [byte, bit] of positions) {
      const damaged = Buffer.from(original)
      damaged[victim.offset + byte] ^= 1 << bit
      writeFileSync(file, damaged)
      expectCorruption(dir, { file, offset: victim.offset }, `bit ${bit} of byte ${byte} of the record at ${victim.offset}`)
    }
    writeFileSync(file, original)
    withDb(dir, (db) => expect(db.stats().recovery.records).toBe(9))
  })

  it('a length field grown past the limit (a huge length) is CorruptionError, without a huge allocation', () => {
    writeLog(dir, 5)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const victim = walRecords(original)[2]
    for (const len of [MAX_RECORD_PAYLOAD + 1, 0x7fffffff, 0xffffffff]) {
      const damaged = Buffer.from(original)
      damaged.writeUInt32LE(len, victim.offset)
      writeFileSync(file, damaged)
      const started = Date.now()
      expectCorruption(dir, { file, offset: victim.offset, reason: /length/ }, `length ${len}`)
      expect(Date.now() - started).toBeLessThan(2_000)
    }
  })

  it('a flipped bit in the last record of a closed segment is CorruptionError, not a torn tail', () => {
    writeLog(dir, 40, { segmentBytes: 4096 })
    const files = walFiles(dir)
    const victim = files[0]
    const bytes = readFileSync(victim)
    const last = walRecords(bytes).at(-1)!
    bytes[last.offset + last.len - 1] ^= 0x01
    writeFileSync(victim, bytes)
    expectCorruption(dir, { file: victim, offset: last.offset, reason: /checksum/ })
  })

  it('every checked byte of a segment header: CorruptionError at offset 0', () => {
    writeLog(dir, 3)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    for (let byte = 0; byte < 44; byte++) {
      const damaged = Buffer.from(original)
      damaged[byte] ^= 0x04
      writeFileSync(file, damaged)
      expectCorruption(dir, { file, offset: 0 }, `header byte ${byte}`)
    }
  })

  it('the reserved zero field of a segment header (bytes 44..48) is not checked: damage there is ignored', () => {
    // docs/format.md says these bytes are zero, but SegmentHeader::decode does
    // not look at them (the checkpoint header's are checked). Pinned here so
    // that a change is deliberate.
    const run = writeLog(dir, 3)
    const [file] = walFiles(dir)
    const bytes = readFileSync(file)
    bytes.fill(0xab, 44, 48)
    writeFileSync(file, bytes)
    withDb(dir, (db) => expect(keysPresent(db, run, 3)).toBe(3))
  })

  it('a valid header with another segment number, or from another database, is CorruptionError', () => {
    writeLog(dir, 40, { segmentBytes: 4096 })
    const files = walFiles(dir)
    const original = readFileSync(files[1])
    const reheader = (edit: (h: Buffer) => void) => {
      const b = Buffer.from(original)
      edit(b)
      b.writeUInt32LE(crc32c(b.subarray(0, 40)), 40)
      writeFileSync(files[1], b)
    }
    reheader((h) => h.writeBigUInt64LE(7n, 16))
    expectCorruption(dir, { file: files[1], offset: 16, reason: /segment number/ })
    reheader((h) => (h[30] ^= 0xff))
    expectCorruption(dir, { file: files[1], offset: 24, reason: /another database/ })
  })

  it('a record repeated or moved (a valid record whose version does not rise) is CorruptionError', () => {
    writeLog(dir, 6)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const records = walRecords(original)
    const r = records[3]
    const copy = original.subarray(r.offset, r.offset + r.len)
    // Repeated right after itself.
    writeFileSync(file, Buffer.concat([original.subarray(0, r.offset + r.len), copy, original.subarray(r.offset + r.len)]))
    expectCorruption(dir, { file, offset: r.offset + r.len, reason: /rise/ })
    // An old record appended after the last one.
    writeFileSync(file, Buffer.concat([original, copy]))
    expectCorruption(dir, { file, offset: original.length, reason: /rise/ })
  })

  it('a record whose checksum holds but whose payload does not decode is CorruptionError naming its segment and offset', () => {
    writeLog(dir, 3)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const last = walRecords(original).at(-1)!
    // kind 0x7f is no commit record (docs/format.md: kind 1 = commit).
    const forged = encodeRecord(original, last.version + 1, Buffer.from([0x7f, 1, 2, 3]))
    writeFileSync(file, Buffer.concat([original, forged]))
    expectCorruption(dir, { file, offset: original.length })
  })

  it('a record whose checksum holds but whose key is shorter than a run id is CorruptionError, not a panic', () => {
    writeLog(dir, 3)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const last = walRecords(original).at(-1)!
    // A commit (kind 1) with one put whose key and value are empty
    // (docs/format.md); keys always start with a 16-byte run id.
    const payload = Buffer.alloc(1 + 8 + 4 + 1 + 4 + 4)
    payload[0] = 1
    payload.writeUInt32LE(1, 9)
    payload[13] = 1
    writeFileSync(file, Buffer.concat([original, encodeRecord(original, last.version + 1, payload)]))
    expectCorruption(dir, { file, offset: original.length })
  })

  it('a record whose checksum holds but whose KV value lacks its stored header is CorruptionError, not a panic on the first read (found by fuzzing)', () => {
    const run = writeLog(dir, 3)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const last = walRecords(original).at(-1)!
    // A commit (kind 1) with one put of a KV key (run id | 0x10 | "x") whose
    // stored value is 3 bytes: a KV value starts with 9 bytes of flags and
    // update time (docs/format.md).
    const key = Buffer.concat([Buffer.from(run.replaceAll('-', ''), 'hex'), Buffer.from([0x10]), Buffer.from('x')])
    const value = Buffer.from([0, 1, 2])
    const payload = Buffer.alloc(1 + 8 + 4 + 1 + 4 + key.length + 4 + value.length)
    payload[0] = 1
    payload.writeUInt32LE(1, 9)
    payload[13] = 1
    payload.writeUInt32LE(key.length, 14)
    key.copy(payload, 18)
    payload.writeUInt32LE(value.length, 18 + key.length)
    value.copy(payload, 22 + key.length)
    writeFileSync(file, Buffer.concat([original, encodeRecord(original, last.version + 1, payload)]))
    const err = expectCorruption(dir, { file, offset: original.length })
    expect(err.message).toMatch(/stored header/)
  })
})

// ----- appended garbage ------------------------------------------------------------

/**
 * What docs/durability.md says random bytes appended to the newest segment
 * are: the tail, so a torn tail when a crash could have left them (fewer bytes
 * than a record header; a length running past the end with no valid record
 * after it; a record ending exactly at the end whose checksum fails; all
 * zeros), and CorruptionError at their offset otherwise (a length above the
 * limit; a record ending before the end whose checksum fails).
 */
function garbageOutcome(g: Buffer): 'torn' | 'corrupt' {
  if (g.every((b) => b === 0)) return 'torn'
  if (g.length < RECORD_HEADER) return 'torn'
  const len = g.readUInt32LE(0)
  if (len > MAX_RECORD_PAYLOAD) return 'corrupt'
  if (RECORD_HEADER + len >= g.length) return 'torn'
  return 'corrupt'
}

describe('appended garbage: it is the tail', () => {
  /** Appends `garbage` to the newest segment of a fresh 4-key log and checks the outcome `expected`. */
  function appendAndCheck(path: string, garbage: Buffer, expected: 'torn' | 'corrupt', context: string) {
    const run = writeLog(path, 4)
    const [file] = walFiles(path)
    const size = statSync(file).size
    writeFileSync(file, Buffer.concat([readFileSync(file), garbage]))
    if (expected === 'corrupt') {
      expectCorruption(path, { file, offset: size }, context)
      return
    }
    withDb(path, (db) => {
      expect(db.stats().recovery.tornTail, context).toMatchObject({ offset: size, droppedBytes: garbage.length })
      expect(keysPresent(db, run, 4), context).toBe(4)
    })
    expect(statSync(file).size, context).toBe(size)
  }

  const withLength = (len: number, total: number, fill = 0x5a) => {
    const g = Buffer.alloc(total, fill)
    g.writeUInt32LE(len, 0)
    return g
  }

  it('fewer bytes than a record header: torn tail, whatever they say (even a huge length)', () => {
    appendAndCheck(join(dir, 'a'), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), 'torn', '7 bytes claiming 4 GiB')
    appendAndCheck(join(dir, 'b'), Buffer.from('garbage'), 'torn', 'text')
  })

  it('a length running past the end of the file: torn tail (no 1 GiB allocation for a length at the limit)', () => {
    appendAndCheck(join(dir, 'a'), withLength(1000, 100), 'torn', 'length 1000, 100 bytes')
    const started = Date.now()
    appendAndCheck(join(dir, 'b'), withLength(MAX_RECORD_PAYLOAD, 64), 'torn', 'length at the limit')
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('a length ending exactly at the end of the file, checksum failing: torn tail', () => {
    appendAndCheck(join(dir, 'a'), withLength(84, 100), 'torn', 'length 84, 100 bytes')
  })

  it('a length above the limit (garbage that looks like a huge record): CorruptionError', () => {
    appendAndCheck(join(dir, 'a'), withLength(0xffffffff, 64), 'corrupt', 'length 4 GiB - 1')
    appendAndCheck(join(dir, 'b'), withLength(MAX_RECORD_PAYLOAD + 1, 64), 'corrupt', 'length just above the limit')
  })

  it('a short record that fails its checksum with more bytes after it: CorruptionError', () => {
    appendAndCheck(join(dir, 'a'), withLength(10, 100), 'corrupt', 'length 10, 100 bytes')
  })

  it('random garbage (seeded, 40 cases): always the outcome the rule predicts, never a success with other data', () => {
    const random = prng(0x1badb002)
    const seen = { torn: 0, corrupt: 0 }
    for (let n = 0; n < 40; n++) {
      const total = 1 + Math.floor(random() * 300)
      const g = Buffer.from(Array.from({ length: total }, () => Math.floor(random() * 256)))
      // Steer the length field through each branch of the rule.
      if (total >= 4) {
        const pick = n % 4
        const len = pick === 0 ? g.readUInt32LE(0) : pick === 1 ? Math.floor(random() * total) : pick === 2 ? total - RECORD_HEADER + 1 + Math.floor(random() * 500) : Math.max(0, total - RECORD_HEADER)
        g.writeUInt32LE(len >>> 0, 0)
      }
      const expected = garbageOutcome(g)
      seen[expected]++
      appendAndCheck(join(dir, `g${n}`), g, expected, `case ${n}: ${total} bytes, length field ${total >= 4 ? g.readUInt32LE(0) : '-'}`)
    }
    expect(seen.torn).toBeGreaterThan(5)
    expect(seen.corrupt).toBeGreaterThan(5)
  })
})

// ----- recycled segments -------------------------------------------------------------

describe('a recycled segment: stale records after its own are its end, damage before them is not', () => {
  /**
   * The newest segment of a fresh 6-key log, made into what a recycled file
   * looks like after a crash: its header flagged recycled (bit 0 of the
   * flags), then its records, then `stale` (records of the segment the file
   * used to be, whose CRCs carry that segment's seed).
   */
  function recycledLog(path: string): { run: string; file: string; records: Buffer; stale: Buffer } {
    const run = writeLog(path, 6)
    const [file] = walFiles(path)
    const records = readFileSync(file)
    records.writeUInt32LE(1, 12)
    records.writeUInt32LE(crc32c(records.subarray(0, 40)), 40)
    // Re-seal the records' CRCs: the seed does not depend on the flag, so they hold.
    const old = Buffer.from(records)
    old.writeBigUInt64LE(old.readBigUInt64LE(16) + 1000n, 16)
    const last = walRecords(records).at(-1)!
    const stale = Buffer.concat(
      Array.from({ length: 5 }, (_, i) => encodeRecord(old, i === 0 ? last.version + 1 : 1 + i, Buffer.from(`stale record ${i} ${'s'.repeat(40)}`))),
    )
    return { run, file, records, stale }
  }

  it('stale records after the last one (even one claiming the next version): all keys, no torn tail reported, the stale bytes cut', () => {
    const { run, file, records, stale } = recycledLog(dir)
    writeFileSync(file, Buffer.concat([records, stale]))
    withDb(dir, (db) => {
      expect(db.stats().recovery.tornTail).toBeNull()
      expect(keysPresent(db, run, 6)).toBe(6)
    })
    expect(statSync(file).size).toBe(records.length)
  })

  it('the same stale records after a segment not flagged recycled are damage or a torn tail, never silently cut', () => {
    const { file, records, stale } = recycledLog(dir)
    const fresh = Buffer.concat([records, stale])
    fresh.writeUInt32LE(0, 12)
    fresh.writeUInt32LE(crc32c(fresh.subarray(0, 40)), 40)
    writeFileSync(file, fresh)
    expectCorruption(dir, { file, offset: records.length })
  })

  it('a flipped bit in a record with valid records after it, in a recycled segment, is CorruptionError at that record', () => {
    const { file, records, stale } = recycledLog(dir)
    const damaged = Buffer.concat([records, stale])
    const r = walRecords(records)[3]
    damaged[r.offset + RECORD_HEADER + 1] ^= 0x10
    writeFileSync(file, damaged)
    expectCorruption(dir, { file, offset: r.offset })
  })
})

// ----- zeroed regions --------------------------------------------------------------

describe('zeroed regions', () => {
  it('zeros inside the log — a payload, a whole record, across a record boundary — are CorruptionError at the first damaged record', () => {
    writeLog(dir, 8)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const records = walRecords(original)
    const r = records[3]
    const cases: [string, number, number][] = [
      ['part of a payload', r.offset + RECORD_HEADER + 2, r.offset + r.len - 2],
      ['a whole record', r.offset, r.offset + r.len],
      ['the end of one record and the start of the next', r.offset + r.len - 5, r.offset + r.len + 5],
      ['two whole records', r.offset, records[5].offset],
      ['a record header only', r.offset, r.offset + RECORD_HEADER],
    ]
    for (const [what, from, to] of cases) {
      const damaged = Buffer.from(original)
      damaged.fill(0, from, to)
      writeFileSync(file, damaged)
      expectCorruption(dir, { file, offset: r.offset }, what)
    }
  })

  it('zeros from inside a record to the end of the newest segment are CorruptionError when later records had been there', () => {
    writeLog(dir, 8)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const r = walRecords(original)[3]
    const damaged = Buffer.from(original)
    damaged.fill(0, r.offset + RECORD_HEADER + 1)
    writeFileSync(file, damaged)
    expectCorruption(dir, { file, offset: r.offset, reason: /checksum/ })
  })

  it('zeros from a record boundary to the end of the newest segment end the log there, dropping every record they cover', () => {
    // docs/durability.md: zero bytes to the end of the newest segment are its
    // end, however many records they cover (an OS crash before the flusher's
    // fsync, on a file system that extended the file but never wrote it,
    // looks exactly like this; those commits were inside the buffered loss
    // window). Nothing is reported: the same zeros follow every crash.
    const run = writeLog(dir, 8)
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const records = walRecords(original)
    const r = records[5]
    const damaged = Buffer.from(original)
    damaged.fill(0, r.offset)
    writeFileSync(file, damaged)
    withDb(dir, (db) => {
      expect(db.stats().recovery.tornTail).toBeNull()
      expect(keysPresent(db, run, 8)).toBe(4)
    })
  })

  it('a zeroed closed segment tail, and a zeroed segment header, are CorruptionError', () => {
    writeLog(dir, 40, { segmentBytes: 4096 })
    const files = walFiles(dir)
    const first = readFileSync(files[0])
    const last = walRecords(first).at(-1)!
    const damaged = Buffer.from(first)
    damaged.fill(0, last.offset)
    writeFileSync(files[0], damaged)
    expectCorruption(dir, { file: files[0], offset: last.offset }, 'zeroed tail of a closed segment')
    writeFileSync(files[0], first)
    const second = readFileSync(files[1])
    writeFileSync(files[1], Buffer.concat([Buffer.alloc(SEGMENT_HEADER), second.subarray(SEGMENT_HEADER)]))
    expectCorruption(dir, { file: files[1], offset: 0, reason: /magic/ }, 'zeroed header')
  })
})

// ----- missing segments ------------------------------------------------------------

describe('missing segments', () => {
  it('any one segment but the newest deleted is CorruptionError naming the gap, and nothing changes', () => {
    const run = writeLog(dir, 250, { segmentBytes: 4096 })
    const files = walFiles(dir)
    expect(files.length).toBeGreaterThanOrEqual(4)
    for (let k = 0; k < files.length - 1; k++) {
      const saved = readFileSync(files[k])
      rmSync(files[k])
      if (k === 0) {
        // Without a checkpoint the log must start at commit 1.
        const second = walRecords(readFileSync(files[1]))[0]
        expectCorruption(dir, { file: files[1], offset: second.offset, reason: /not 1/ }, 'first segment deleted')
      } else {
        expectCorruption(dir, { file: files[k + 1], offset: 0, reason: new RegExp(`segment ${k + 1} is missing`) }, `segment ${k + 1} deleted`)
      }
      writeFileSync(files[k], saved)
    }
    withDb(dir, (db) => expect(keysPresent(db, run, 250)).toBe(250))
  })

  it('a deleted newest segment cannot be told from a log that ended earlier: its commits are gone and open succeeds', () => {
    // Nothing records how many segments there were, so this damage is not
    // detectable; pinned here so that the docs can say so.
    const run = writeLog(dir, 60, { segmentBytes: 4096 })
    const files = walFiles(dir)
    const lastOfPrevious = walRecords(readFileSync(files.at(-2)!)).at(-1)!.version
    rmSync(files.at(-1)!)
    withDb(
      dir,
      (db) => {
        expect(db.stats().version).toBe(lastOfPrevious)
        expect(keysPresent(db, run, 60)).toBe(lastOfPrevious - 1)
      },
      { segmentBytes: 4096 },
    )
  })

  it('with a checkpoint, segments below it may be gone, but not one the checkpoint does not cover', async () => {
    const db = Database.open(dir, { ...OPEN, segmentBytes: 4096 })
    const run = db.runs.begin()
    for (let i = 0; i < 150; i++) db.kv.put(run, `k${i}`, valueOf(i))
    const older = (await db.checkpoint())!.version
    for (let i = 150; i < 300; i++) db.kv.put(run, `k${i}`, valueOf(i))
    await db.checkpoint()
    for (let i = 300; i < 450; i++) db.kv.put(run, `k${i}`, valueOf(i))
    db.close()
    const files = walFiles(dir)
    expect(Number(basename(files[0], '.wal')), 'segments below the older checkpoint were deleted').toBeGreaterThan(1)
    expect(files.length).toBeGreaterThanOrEqual(3)
    // The first segment left starts at or below the older checkpoint: the log continues it.
    expect(walRecords(readFileSync(files[0]))[0].version).toBeLessThanOrEqual(older + 1)
    withDb(dir, (db) => expect(keysPresent(db, run, 450)).toBe(450))
    const middle = files[1]
    rmSync(middle)
    expectCorruption(dir, { file: files[2], offset: 0, reason: /missing/ })
  })
})

// ----- commits missing from the middle of the log -------------------------------------

describe('commits missing from the middle of the log', () => {
  // Every commit writes one record and takes the next version (the strict
  // crash tests check stats().recovery.records against the version), so a
  // version that does not follow the one before it is a commit that is not
  // there. Recovery requires consecutive versions, so cutting whole records
  // out is CorruptionError: "nothing is ever skipped silently".
  it('a closed segment cut at a record boundary is CorruptionError (it does not open without its last commits)', () => {
    const run = writeLog(dir, 150, { segmentBytes: 4096 })
    const files = walFiles(dir)
    expect(files.length).toBeGreaterThanOrEqual(3)
    const bytes = readFileSync(files[0])
    const records = walRecords(bytes)
    truncateSync(files[0], records.at(-3)!.offset)
    let opened: { version: number; records: number; keys: number } | undefined
    try {
      withDb(dir, (db) => {
        opened = { version: db.stats().version, records: db.stats().recovery.records, keys: db.kv.count(run) }
      })
    } catch (e) {
      expect(e).toBeInstanceOf(CorruptionError)
    }
    expect(opened, `open succeeded: version ${opened?.version}, ${opened?.records} records replayed, ${opened?.keys} of 150 keys`).toBeUndefined()
    expectCorruption(dir, { reason: /missing|follow|gap|rise/ })
    expect(files.map(canonical)).toContain(canonical(String(expectCorruption(dir, {}).details.file)))
  })

  it('a record cut out of the middle of a segment is CorruptionError at the record after the hole', () => {
    const run = writeLog(dir, 8)
    const [file] = walFiles(dir)
    const bytes = readFileSync(file)
    const records = walRecords(bytes)
    const r = records[3]
    writeFileSync(file, Buffer.concat([bytes.subarray(0, r.offset), bytes.subarray(r.offset + r.len)]))
    let opened: { version: number; records: number; keys: number } | undefined
    try {
      withDb(dir, (db) => {
        opened = { version: db.stats().version, records: db.stats().recovery.records, keys: db.kv.count(run) }
      })
    } catch (e) {
      expect(e).toBeInstanceOf(CorruptionError)
    }
    expect(opened, `open succeeded: version ${opened?.version}, ${opened?.records} records replayed, ${opened?.keys} of 8 keys`).toBeUndefined()
    expectCorruption(dir, { file, offset: r.offset })
  })
})

// ----- checkpoints -----------------------------------------------------------------

/** A directory with two checkpoints and commits after each; the image to find again. */
async function twoCheckpoints(path: string, opts: OpenOptions = {}) {
  const db = Database.open(path, { ...OPEN, ...opts })
  const run = db.runs.begin()
  for (let i = 0; i < 30; i++) db.kv.put(run, `k${i}`, valueOf(i))
  const older = (await db.checkpoint())!.version
  for (let i = 30; i < 60; i++) db.kv.put(run, `k${i}`, valueOf(i))
  const newer = (await db.checkpoint())!.version
  for (let i = 60; i < 65; i++) db.kv.put(run, `k${i}`, valueOf(i))
  const version = db.stats().version
  db.close()
  return { run, older, newer, version }
}

const ckpt = (path: string, v: number) => join(path, 'checkpoints', `${String(v).padStart(20, '0')}.ckpt`)

describe('damaged checkpoints', () => {
  it('a newest checkpoint damaged anywhere falls back to the previous one, with every commit', async () => {
    const base = join(dir, 'base')
    const { run, older, newer, version } = await twoCheckpoints(base)
    const image = readFileSync(ckpt(base, newer))
    const len = image.length
    const clen = image.readUInt32LE(48)
    const flip = (at: number) => (b: Buffer) => {
      b[at] ^= 0x01
      return b
    }
    const damages: [string, (b: Buffer) => Buffer][] = [
      ['magic', flip(0)],
      ['format version', flip(8)],
      ['flags', flip(12)],
      ['commit version', flip(16)],
      ['database id', flip(30)],
      ['header checksum', flip(40)],
      ['reserved zero', flip(45)],
      ['chunk compressed length', flip(48)],
      ['chunk raw length', flip(52)],
      ['chunk checksum', flip(56)],
      ['chunk data', flip(60 + (clen >> 1))],
      ['end marker zero', flip(len - 20)],
      ['end marker entry count', flip(len - 12)],
      ['end marker checksum', flip(len - 4)],
      ['cut by one byte', (b) => b.subarray(0, len - 1)],
      ['cut in the middle', (b) => b.subarray(0, len >> 1)],
      ['one byte appended', (b) => Buffer.concat([b, Buffer.from([0])])],
      ['emptied', () => Buffer.alloc(0)],
      ['zeroed', (b) => Buffer.alloc(b.length)],
      ['replaced by the older image', () => readFileSync(ckpt(base, older))],
    ]
    for (const [what, damage] of [...damages, ['deleted', null] as const]) {
      const path = join(dir, what.replaceAll(' ', '-'))
      cpSync(base, path, { recursive: true })
      if (damage) writeFileSync(ckpt(path, newer), damage(Buffer.from(image)))
      else rmSync(ckpt(path, newer))
      withDb(path, (db) => {
        const rec = db.stats().recovery
        expect(rec.checkpointVersion, what).toBe(older)
        expect(rec.checkpointFallback, what).toMatch(/./)
        expect(rec.records, what).toBe(version - older)
        expect(db.stats().version, what).toBe(version)
        expect(keysPresent(db, run, 65), what).toBe(65)
      })
    }
  })

  it('when no named checkpoint loads, open throws CorruptionError naming the last one tried, and nothing changes', async () => {
    const { older, newer } = await twoCheckpoints(dir)
    for (const v of [older, newer]) {
      const b = readFileSync(ckpt(dir, v))
      b[b.length - 4] ^= 0x01
      writeFileSync(ckpt(dir, v), b)
    }
    expectCorruption(dir, { file: ckpt(dir, older), offset: 0, reason: /no checkpoint named by the manifest/ })
  })

  it('a damaged only checkpoint is CorruptionError, even while the WAL still holds every commit', async () => {
    // The manifest names one checkpoint and nothing to fall back to; the code
    // does not fall back to replaying the WAL from its start (which it could
    // here, as no segment was deleted yet). Pinned so the docs can say so.
    const db = Database.open(dir, OPEN)
    const run = db.runs.begin()
    db.kv.put(run, 'k', 1)
    const only = (await db.checkpoint())!.version
    db.close()
    const b = readFileSync(ckpt(dir, only))
    b[50] ^= 0x01
    writeFileSync(ckpt(dir, only), b)
    expectCorruption(dir, { file: ckpt(dir, only), offset: 0, reason: /only checkpoint/ })
  })

  it('a damaged newest checkpoint whose fallback the WAL no longer continues is CorruptionError', async () => {
    const { newer } = await twoCheckpoints(dir, { segmentBytes: 4096 })
    // Delete by hand the segments after the older checkpoint that the log still needs.
    const files = walFiles(dir)
    for (const f of files.slice(0, -1)) rmSync(f)
    const b = readFileSync(ckpt(dir, newer))
    b[60] ^= 0x01
    writeFileSync(ckpt(dir, newer), b)
    expectCorruption(dir, { reason: /missing/ })
  })

  it('a checkpoint from another database under the right name is CorruptionError (the WAL belongs to another database)', async () => {
    const { newer } = await twoCheckpoints(join(dir, 'a'))
    const other = join(dir, 'b')
    const db = Database.open(other, OPEN)
    const run = db.runs.begin()
    for (let i = 0; i < newer - 1; i++) db.kv.put(run, `x${i}`, i)
    expect((await db.checkpoint())!.version).toBe(newer)
    db.close()
    writeFileSync(ckpt(join(dir, 'a'), newer), readFileSync(ckpt(other, newer)))
    expectCorruption(join(dir, 'a'), { offset: 24, reason: /another database/ })
  })

  it('a .tmp image, even a complete one at a higher version, and a .ckpt the manifest does not name, are never loaded', async () => {
    const { run, newer, version } = await twoCheckpoints(dir)
    const image = readFileSync(ckpt(dir, newer))
    // A crash after the rename but before the manifest named it leaves a
    // complete .ckpt; a crash before the rename, a .tmp.
    const higher = version + 100
    const forged = Buffer.from(image)
    forged.writeBigUInt64LE(BigInt(higher), 16)
    forged.writeUInt32LE(crc32c(forged.subarray(0, 40)), 40)
    writeFileSync(join(dir, 'checkpoints', `${String(higher).padStart(20, '0')}.tmp`), forged)
    writeFileSync(join(dir, 'checkpoints', `${String(higher + 1).padStart(20, '0')}.ckpt`), forged)
    writeFileSync(join(dir, 'MANIFEST.tmp'), 'in-mem manifest 1\ncheckpoint 999999\ncrc32c 00000000\n')
    withDb(dir, (db) => {
      expect(db.stats().recovery.checkpointVersion).toBe(newer)
      expect(db.stats().version).toBe(version)
      expect(keysPresent(db, run, 65)).toBe(65)
    })
  })
})

// ----- the manifest ----------------------------------------------------------------

describe('a damaged MANIFEST', () => {
  it('a flipped bit anywhere, a cut, an empty file or garbage: CorruptionError naming MANIFEST, nothing changed', async () => {
    await twoCheckpoints(dir)
    const path = join(dir, 'MANIFEST')
    const original = readFileSync(path)
    const damages: [string, Buffer][] = []
    for (let at = 0; at < original.length; at++) {
      const b = Buffer.from(original)
      b[at] ^= 0x01
      damages.push([`bit 0 of byte ${at}`, b])
    }
    damages.push(['cut by one byte', original.subarray(0, original.length - 1)])
    damages.push(['cut before the checksum line', original.subarray(0, original.lastIndexOf('crc32c'))])
    damages.push(['empty', Buffer.alloc(0)])
    damages.push(['garbage', Buffer.from([0xff, 0xfe, 0x00, 0x41])])
    damages.push(['a line added', Buffer.concat([Buffer.from('checkpoint 1\n'), original])])
    for (const [what, bytes] of damages) {
      writeFileSync(path, bytes)
      expectCorruption(dir, { file: path, reason: /manifest/ }, what)
    }
  })

  it('a MANIFEST naming checkpoints that are all gone is CorruptionError', async () => {
    const { older, newer } = await twoCheckpoints(dir)
    rmSync(ckpt(dir, older))
    rmSync(ckpt(dir, newer))
    expectCorruption(dir, { file: ckpt(dir, older), reason: /no checkpoint/ })
  })

  it('a missing MANIFEST: the WAL alone is replayed when it still starts at commit 1, else CorruptionError', async () => {
    const whole = join(dir, 'whole')
    const a = await twoCheckpoints(whole)
    rmSync(join(whole, 'MANIFEST'))
    withDb(whole, (db) => {
      expect(db.stats().recovery.checkpointVersion).toBe(0)
      expect(db.stats().recovery.records).toBe(a.version)
      expect(keysPresent(db, a.run, 65)).toBe(65)
    })
    const cut = join(dir, 'cut')
    const db = Database.open(cut, { ...OPEN, segmentBytes: 4096 })
    const run = db.runs.begin()
    for (let round = 0; round < 3; round++) {
      for (let i = round * 30; i < round * 30 + 30; i++) db.kv.put(run, `k${i}`, valueOf(i))
      await db.checkpoint()
    }
    db.close()
    expect(walRecords(readFileSync(walFiles(cut)[0]))[0].version).toBeGreaterThan(1)
    rmSync(join(cut, 'MANIFEST'))
    expectCorruption(cut, { reason: /not 1/ })
  })
})
