import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CorruptionError, Database, type OpenOptions } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir, sleep } from './helpers.js'

let dir: string
const handles: Database[] = []

function openDb(opts: OpenOptions = {}): Database {
  const db = Database.open(dir, { durability: 'strict', checkpointOnClose: false, ...opts })
  handles.push(db)
  return db
}

const checkpointFiles = () => (existsSync(join(dir, 'checkpoints')) ? readdirSync(join(dir, 'checkpoints')).filter((f) => f.endsWith('.ckpt')).sort() : [])
const walFiles = () => readdirSync(join(dir, 'wal')).filter((f) => f.endsWith('.wal')).sort()
const manifest = () => readFileSync(join(dir, 'MANIFEST'), 'utf8')

/** Writes `n` KV keys and one event per key into a fresh run; returns the run. */
function fill(db: Database, n: number, from = 0): string {
  const run = db.runs.begin({ name: 'fill' })
  for (let i = from; i < from + n; i++) {
    db.transaction(run, (tx) => {
      tx.kv.put(`k${i}`, { i, pad: 'x'.repeat(200) })
      tx.events.append('wrote', i)
    })
  }
  return run
}

beforeEach(() => {
  dir = makeTmpDir('in-mem-checkpoint')
})

afterEach(() => {
  for (const db of handles.splice(0)) if (db.isOpen) db.close()
  removeDir(dir)
})

describe('db.checkpoint', () => {
  it('writes an image at the current version; reopening loads it and replays only the WAL after it', async () => {
    const db = openDb()
    const run = fill(db, 50)
    const report = (await db.checkpoint())!
    expect(report.version).toBe(db.stats().version)
    expect(report.entries).toBeGreaterThanOrEqual(100)
    expect(report.bytes).toBeGreaterThan(0)
    expect(report.unchanged).toBe(false)
    expect(checkpointFiles()).toEqual([`${String(report.version).padStart(20, '0')}.ckpt`])
    expect(manifest()).toContain(`checkpoint ${report.version}\n`)
    db.kv.put(run, 'after', 'the checkpoint')
    db.close()

    const again = openDb()
    const r = again.stats().recovery
    expect(r.checkpointVersion).toBe(report.version)
    expect(r.records).toBe(1)
    expect(r.checkpointFallback).toBeNull()
    expect(again.kv.get(run, 'k0')).toEqual({ i: 0, pad: 'x'.repeat(200) })
    expect(again.kv.get(run, 'after')).toBe('the checkpoint')
    expect(again.kv.count(run)).toBe(51)
    expect(again.events.length(run)).toBe(50)
    expect(again.events.verify(run).valid).toBe(true)
    expect(again.runs.get(run)!.status).toBe('active')
    expect(again.stats().version).toBe(report.version + 1)
  })

  it('a second checkpoint at the same version writes nothing', async () => {
    const db = openDb()
    fill(db, 3)
    const first = (await db.checkpoint())!
    const second = (await db.checkpoint())!
    expect(second).toMatchObject({ version: first.version, unchanged: true, entries: 0 })
    expect(checkpointFiles()).toHaveLength(1)
  })

  it('keeps two checkpoints and deletes WAL segments wholly below the older one', async () => {
    const db = openDb({ segmentBytes: 4096 })
    const run = fill(db, 40)
    const segmentsBefore = walFiles().length
    expect(segmentsBefore).toBeGreaterThan(2)
    const first = (await db.checkpoint())!
    expect(first.removedSegments).toBe(0)
    fill(db, 40, 40)
    const second = (await db.checkpoint())!
    expect(second.removedSegments).toBeGreaterThanOrEqual(segmentsBefore - 1)
    fill(db, 5, 80)
    const third = (await db.checkpoint())!
    expect(checkpointFiles()).toEqual([second.version, third.version].map((v) => `${String(v).padStart(20, '0')}.ckpt`))
    expect(db.stats().wal!.segments).toBe(walFiles().length)
    db.close()
    const again = openDb({ segmentBytes: 4096 })
    expect(again.stats().recovery.checkpointVersion).toBe(third.version)
    expect(again.kv.get(run, 'k0')).toMatchObject({ i: 0 })
    expect(again.events.length(run)).toBe(40)
  })

  it('writers go on while a checkpoint is written, and every commit survives', async () => {
    const db = openDb({ durability: 'buffered' })
    const run = fill(db, 200)
    const progress: number[] = []
    const writes: Promise<unknown>[] = []
    const done = db.checkpoint({ onProgress: (p) => progress.push(p.entriesWritten), progressIntervalMs: 1 })
    for (let i = 0; i < 100; i++) writes.push(db.transactionAsync(run, (tx) => tx.kv.put(`during${i}`, i)))
    const report = (await done)!
    await Promise.all(writes)
    expect(progress.at(-1)).toBe(report.entries)
    db.close()
    const again = openDb({ durability: 'buffered' })
    for (let i = 0; i < 100; i++) expect(again.kv.get(run, `during${i}`)).toBe(i)
    expect(again.kv.count(run)).toBe(300)
  })

  it('resolves to null for a memory-only database', async () => {
    const db = Database.open()
    handles.push(db)
    expect(await db.checkpoint()).toBeNull()
  })

  it('close takes a checkpoint by default, so the next open replays nothing', () => {
    const db = Database.open(dir, { durability: 'strict' })
    const run = fill(db, 10)
    db.close()
    const again = openDb()
    expect(again.stats().recovery.checkpointVersion).toBeGreaterThan(0)
    expect(again.stats().recovery.records).toBe(0)
    expect(again.kv.count(run)).toBe(10)
  })

  it('runs automatically once the WAL passes checkpointBytes', async () => {
    const db = openDb({ durability: 'buffered', checkpointBytes: 8192, purgeIntervalMs: 10 })
    fill(db, 60)
    await db.flush()
    for (let i = 0; i < 500 && checkpointFiles().length === 0; i++) await sleep(10)
    expect(checkpointFiles().length).toBeGreaterThan(0)
  })

  it('rejects bad options', async () => {
    const db = openDb()
    await expect(db.checkpoint({ onProgress: 5 as unknown as () => void })).rejects.toThrow(/onProgress/)
    expect(() => Database.open(join(dir, 'other'), { checkpointBytes: -1 })).toThrow(/checkpointBytes/)
  })
})

describe('recovery from checkpoints', () => {
  /** Two checkpoints with data after each; returns the run and both versions. */
  async function twoCheckpoints(): Promise<{ run: string; older: number; newer: number }> {
    const db = openDb()
    const run = fill(db, 20)
    const older = (await db.checkpoint())!.version
    fill(db, 20, 20)
    db.kv.put(run, 'between', 1)
    const newer = (await db.checkpoint())!.version
    db.kv.put(run, 'last', 2)
    db.close()
    return { run, older, newer }
  }

  const ckptPath = (v: number) => join(dir, 'checkpoints', `${String(v).padStart(20, '0')}.ckpt`)

  it('a damaged newest checkpoint falls back to the previous one and the WAL after it', async () => {
    const { run, older, newer } = await twoCheckpoints()
    const bytes = readFileSync(ckptPath(newer))
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(ckptPath(newer), bytes)
    const db = openDb()
    const r = db.stats().recovery
    expect(r.checkpointVersion).toBe(older)
    expect(r.checkpointFallback).toMatch(/checksum|decompress|length/)
    expect(db.kv.get(run, 'between')).toBe(1)
    expect(db.kv.get(run, 'last')).toBe(2)
    expect(db.kv.count(run)).toBe(22)
  })

  it('a missing newest checkpoint falls back too', async () => {
    const { run, older, newer } = await twoCheckpoints()
    writeFileSync(ckptPath(newer), Buffer.alloc(0))
    const db = openDb()
    expect(db.stats().recovery.checkpointVersion).toBe(older)
    expect(db.kv.count(run)).toBe(22)
  })

  it('when no named checkpoint loads, open throws CorruptionError naming the file and changes nothing', async () => {
    const { older, newer } = await twoCheckpoints()
    for (const v of [older, newer]) {
      const bytes = readFileSync(ckptPath(v))
      bytes[60] ^= 0x01
      writeFileSync(ckptPath(v), bytes)
    }
    const before = [checkpointFiles(), walFiles(), manifest()]
    const err = expectError(() => openDb(), CorruptionError, 'CORRUPTION')
    expect(String(err.details.file)).toContain(String(older).padStart(20, '0'))
    expect([checkpointFiles(), walFiles(), manifest()]).toEqual(before)
  })

  it('a WAL that does not continue the checkpoint is CorruptionError', async () => {
    const db = openDb({ segmentBytes: 4096 })
    fill(db, 40)
    await db.checkpoint()
    fill(db, 40, 40)
    await db.checkpoint()
    db.close()
    // Without the manifest no checkpoint is named: recovery starts from the
    // WAL alone, whose first segments a checkpoint made redundant are gone.
    rmSync(join(dir, 'MANIFEST'))
    const err = expectError(() => openDb({ segmentBytes: 4096 }), CorruptionError, 'CORRUPTION')
    expect(err.message).toMatch(/missing/)
  })

  it('a damaged manifest is CorruptionError', async () => {
    await twoCheckpoints()
    writeFileSync(join(dir, 'MANIFEST'), manifest().replace('checkpoint', 'checkpoinT'))
    const err = expectError(() => openDb(), CorruptionError, 'CORRUPTION')
    expect(String(err.details.file)).toContain('MANIFEST')
  })
})
