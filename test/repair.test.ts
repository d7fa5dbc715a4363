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

  it('a damaged history file: the read that needs the damaged block is CorruptionError naming it and the block; repair: true finds it at open, moves it aside, drops it from the manifest and says its versions are lost', async () => {
    const db = openDb()
    const run = db.runs.begin()
    const versions: number[] = []
    for (let i = 0; i < 300; i++) versions.push(db.kv.put(run, `k${i % 10}`, { i, pad: 'p'.repeat(200) }))
    await db.checkpoint() // k0..k9's older versions move to a history file
    expect(db.stats().memory.historyOnDisk.versions).toBe(290)
    expect(db.replay(run, { at: versions[5] }).kv.get('k5')).toEqual({ i: 5, pad: 'p'.repeat(200) })
    db.close()
    const [file] = readdirSync(join(dir, 'history'))
    const path = join(dir, 'history', file)
    const good = readFileSync(path)
    const bad = Buffer.from(good)
    bad[48 + 12 + 3] ^= 0x20 // inside the first block's compressed bytes
    writeFileSync(path, bad)
    // The open reads only the file's header, index and footer (a large
    // history opens at once); each block is checked when a read needs it.
    const opened = openDb()
    try {
      expect(opened.kv.get(run, 'k0')).toEqual({ i: 290, pad: 'p'.repeat(200) }) // newest values: memory
      // a replay to the first version reads k0's oldest versions: block 0
      const e = expectError(() => opened.replay(run, { at: versions[0] }).kv.get('k0'), CorruptionError, 'CORRUPTION')
      expect(e.message).toContain(file)
      expect(e.message).toContain('block 0')
      expectError(() => opened.runs.log(run), CorruptionError, 'CORRUPTION') // every time it is read
      expect(opened.kv.get(run, 'k9')).toEqual({ i: 299, pad: 'p'.repeat(200) }) // and the rest reads on
    } finally {
      opened.close()
    }
    expect(readFileSync(path)).toEqual(bad) // nothing changed

    const again = openDb({ repair: true })
    const [r] = again.stats().recovery.repairs
    expect(r.file).toContain(file)
    expect(r.reason).toContain('lost')
    expect(r.droppedFiles).toEqual([path])
    expect(readFileSync(join(r.savedTo, file))).toEqual(bad)
    expect(existsSync(path)).toBe(false)
    expect(readFileSync(join(dir, 'MANIFEST'), 'utf8')).not.toMatch(/^history /m)
    // The newest values are intact; the older versions the file held are gone.
    for (let i = 0; i < 10; i++) expect(again.kv.get(run, `k${i}`)).toEqual({ i: 290 + i, pad: 'p'.repeat(200) })
    expect(again.stats().memory.historyOnDisk).toEqual({ files: 0, versions: 0, bytes: 0 })
    expect(again.replay(run, { at: versions[5] }).kv.get('k5')).toBeUndefined()
  })

  it('an intact directory opens with no repairs and nothing saved aside', () => {
    const run = writeCommits(5)
    const db = openDb({ repair: true })
    expect(db.stats().recovery.repairs).toEqual([])
    expect(existsSync(join(dir, 'damaged'))).toBe(false)
    expect(commitsPresent(db, run, 5)).toBe(5)
  })
})
