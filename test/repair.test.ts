import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CorruptionError, Database, type OpenOptions } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'

let dir: string
const handles: Database[] = []

function openDb(opts: OpenOptions = {}): Database {
  const db = Database.open(dir, { durability: 'strict', checkpointOnClose: false, segmentBytes: 4096, ...opts })
  handles.push(db)
  return db
}

const walFiles = () =>
  readdirSync(join(dir, 'wal'))
    .filter((f) => f.endsWith('.wal'))
    .sort()
    .map((f) => join(dir, 'wal', f))

/** Writes `n` two-key commits (`a<i>` and `b<i>` together) and closes. */
function writeCommits(n: number, opts: OpenOptions = {}): string {
  const db = openDb(opts)
  const run = db.runs.begin()
  for (let i = 0; i < n; i++) {
    db.transaction(run, (tx) => {
      tx.kv.put(`a${i}`, { i, pad: 'p'.repeat(100) })
      tx.kv.put(`b${i}`, i)
    })
  }
  db.close()
  return run
}

/** The highest i such that commits 0..i-1 are all present, checking none half applied. */
function commitsPresent(db: Database, run: string, n: number): number {
  let k = 0
  for (let i = 0; i < n; i++) {
    const a = db.kv.get(run, `a${i}`)
    const b = db.kv.get(run, `b${i}`)
    expect(a === undefined).toBe(b === undefined)
    if (a === undefined) break
    k = i + 1
  }
  for (let i = k; i < n; i++) expect(db.kv.get(run, `a${i}`)).toBeUndefined()
  return k
}

beforeEach(() => {
  dir = makeTmpDir('in-mem-repair')
})

afterEach(() => {
  for (const db of handles.splice(0)) if (db.isOpen) db.close()
  removeDir(dir)
})

describe('open with repair: true', () => {
  it('cuts the WAL at mid-log damage, saves what it cut, and keeps every commit before it', () => {
    const run = writeCommits(60)
    const segments = walFiles()
    expect(segments.length).toBeGreaterThan(3)
    const victim = segments[1]
    const bytes = readFileSync(victim)
    const at = 48 + 40
    bytes[at] ^= 0x55
    writeFileSync(victim, bytes)
    const totalBefore = segments.reduce((n, f) => n + statSync(f).size, 0)

    expectError(() => openDb(), CorruptionError, 'CORRUPTION')
    const db = openDb({ repair: true })
    const [r] = db.stats().recovery.repairs
    expect(r.file).toBe(victim)
    expect(r.offset).toBeLessThanOrEqual(at)
    expect(r.reason).toMatch(/checksum/)
    expect(r.droppedFiles).toEqual(segments.slice(2))
    const totalAfter = walFiles().reduce((n, f) => n + statSync(f).size, 0)
    expect(r.droppedBytes).toBe(totalBefore - totalAfter)
    // Everything cut is saved aside, byte for byte.
    const saved = readdirSync(r.savedTo)
    expect(saved.length).toBe(1 + r.droppedFiles.length)
    const savedBytes = saved.reduce((n, f) => n + statSync(join(r.savedTo, f)).size, 0)
    expect(savedBytes).toBe(r.droppedBytes)

    const k = commitsPresent(db, run, 60)
    expect(k).toBeGreaterThan(0)
    expect(k).toBeLessThan(60)
    // The repaired database takes new writes and reopens cleanly.
    db.kv.put(run, 'after', 1)
    db.close()
    const again = openDb()
    expect(again.kv.get(run, 'after')).toBe(1)
    expect(again.stats().recovery.repairs).toEqual([])
  })

  it('a missing middle segment: the log is cut where the gap starts', () => {
    const run = writeCommits(60)
    const segments = walFiles()
    rmSync(segments[2])
    expectError(() => openDb(), CorruptionError, 'CORRUPTION')
    const db = openDb({ repair: true })
    const [r] = db.stats().recovery.repairs
    expect(r.reason).toMatch(/missing/)
    // The segments after the gap went (saved aside); the log goes on from
    // the last one before it.
    expect(r.file).toBe(segments[3])
    expect(r.droppedFiles).toEqual(segments.slice(3))
    expect(walFiles().slice(0, 2)).toEqual(segments.slice(0, 2))
    const k = commitsPresent(db, run, 60)
    expect(k).toBeGreaterThan(0)
  })

  it('a damaged manifest is rebuilt from the checkpoint files', async () => {
    const db = openDb()
    const run = db.runs.begin()
    db.kv.put(run, 'x', 1)
    await db.checkpoint()
    db.kv.put(run, 'y', 2)
    await db.checkpoint()
    db.close()
    writeFileSync(join(dir, 'MANIFEST'), 'garbage')
    expectError(() => openDb(), CorruptionError, 'CORRUPTION')
    const again = openDb({ repair: true })
    expect(again.stats().recovery.repairs[0].file).toContain('MANIFEST')
    expect(again.stats().recovery.checkpointVersion).toBeGreaterThan(0)
    expect(again.kv.get(run, 'y')).toBe(2)
    expect(readFileSync(join(again.stats().recovery.repairs[0].savedTo, 'MANIFEST'), 'utf8')).toBe('garbage')
  })

  it('an intact directory opens with no repairs and nothing saved aside', () => {
    const run = writeCommits(5)
    const db = openDb({ repair: true })
    expect(db.stats().recovery.repairs).toEqual([])
    expect(existsSync(join(dir, 'damaged'))).toBe(false)
    expect(commitsPresent(db, run, 5)).toBe(5)
  })
})
