import { existsSync, readFileSync, realpathSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ClosedError, CorruptionError, Database, type Durability, InvalidArgumentError } from '../dist/index.js'
import { expectError, holdSyncerForTest, makeTmpDir, removeDir, sleep } from './helpers.js'
import { RECORD_HEADER, walFiles, walRecords } from './wal-helpers.js'

let dir: string
const open: Database[] = []

/**
 * Opens and remembers a handle so that a failing test still closes it. These
 * tests pin down the WAL and its recovery, so closing takes no checkpoint
 * (which would move the closed data out of the log's replay);
 * test/checkpoint.test.ts covers checkpoints.
 */
function openDb(path: string, durability?: Durability): Database {
  const db = Database.open(path, durability ? { durability, checkpointOnClose: false } : { checkpointOnClose: false })
  open.push(db)
  return db
}

beforeEach(() => {
  dir = makeTmpDir('in-mem-durability')
})

afterEach(() => {
  for (const db of open.splice(0)) db.close()
  removeDir(dir)
})

/** Writes a representative mix of data and returns what must be found again. */
function writeMix(db: Database) {
  const parent = db.runs.begin({ name: 'parent', tags: ['t1'], metadata: { m: [1, 2n] } })
  const run = db.runs.begin({ name: 'child', parent, tags: ['t2', 't1'] })
  const versions: Record<string, number> = {}
  versions.a = db.kv.put(run, 'a', 1)
  versions.b = db.kv.put(run, 'b', { nested: ['x', null, 3.5], big: -(2n ** 63n) })
  versions.bytes = db.kv.put(run, 'bytes', new Uint8Array([9, 8, 7]))
  versions.long = db.kv.put(run, 'long-ttl', 'kept', { ttlMs: 600_000 })
  db.kv.put(run, 'deleted', 'soon')
  db.kv.delete(run, 'deleted')
  db.kv.putMany(run, [
    ['m1', 'one'],
    ['m2', 'two'],
  ])
  db.transaction(run, (tx) => {
    tx.kv.put('t1', 't')
    tx.kv.put('t2', [true])
    tx.kv.delete('a')
  })
  db.kv.put(run, 'a', 'again')
  db.runs.complete(parent)
  const ended = db.runs.begin({ name: 'failed' })
  db.runs.fail(ended, 'it broke')
  return { parent, run, ended, versions, version: db.stats().version, entries: db.kv.entries(run) }
}

function checkMix(db: Database, w: ReturnType<typeof writeMix>) {
  expect(db.stats().version).toBe(w.version)
  expect(db.kv.entries(w.run)).toStrictEqual(w.entries)
  expect(db.kv.get(w.run, 'a')).toBe('again')
  expect(db.kv.exists(w.run, 'deleted')).toBe(false)
  expect(db.kv.getVersioned(w.run, 'b')!.version).toBe(w.versions.b)
  expect(Array.from(db.kv.get(w.run, 'bytes') as Uint8Array)).toEqual([9, 8, 7])
  const parent = db.runs.get(w.parent)!
  expect(parent.status).toBe('completed')
  expect(parent.metadata).toStrictEqual({ m: [1, 2n] })
  const child = db.runs.get(w.run)!
  expect(child.parent).toBe(w.parent)
  expect(child.status).toBe('active')
  expect(child.tags).toEqual(['t1', 't2'])
  expect(db.runs.get(w.ended)!.error).toBe('it broke')
  expect(db.runs.children(w.parent).map((i) => i.id)).toEqual([w.run])
  expect(db.runs.list({ tag: 't1' }).map((i) => i.id)).toEqual([w.parent, w.run])
  expect(db.runs.list({ status: 'failed' }).map((i) => i.id)).toEqual([w.ended])
}

describe('reopen keeps every commit', () => {
  for (const durability of ['buffered', 'strict'] as const) {
    it(`${durability}: close then reopen finds all data, runs and versions`, () => {
      const db = openDb(dir, durability)
      expect(db.stats().durability).toBe(durability)
      const w = writeMix(db)
      db.close()
      const again = openDb(dir, durability)
      checkMix(again, w)
      const rec = again.stats().recovery
      expect(rec.lastVersion).toBe(w.version)
      expect(rec.records).toBe(w.version)
      expect(rec.tornTail).toBeNull()
      // Versions continue after the recovered ones, and later reopens see the new writes.
      expect(again.kv.put(w.run, 'after', 1)).toBe(w.version + 1)
      again.close()
      const third = openDb(dir, durability)
      expect(third.kv.get(w.run, 'after')).toBe(1)
      expect(third.stats().recovery.records).toBe(w.version + 1)
    })
  }

  it('a path without options is buffered', () => {
    const db = openDb(dir)
    const s = db.stats()
    expect(s.durability).toBe('buffered')
    expect(realpathSync(s.path!)).toBe(realpathSync(dir))
    expect(s.wal).not.toBeNull()
  })

  it('a database reopened with another durability keeps its data', () => {
    const db = openDb(dir, 'strict')
    const w = writeMix(db)
    db.close()
    checkMix(openDb(dir, 'buffered'), w)
  })

  it('an expired TTL key stays invisible after reopen; a live one survives', async () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    db.kv.put(run, 'short', 1, { ttlMs: 30 })
    db.kv.put(run, 'long', 2, { ttlMs: 600_000 })
    db.close()
    await sleep(60)
    const again = openDb(dir, 'strict')
    expect(again.kv.get(run, 'short')).toBeUndefined()
    expect(again.kv.list(run)).toEqual(['long'])
    expect(again.kv.count(run)).toBe(1)
  })

  it('a fresh directory is created if missing', () => {
    const nested = join(dir, 'a', 'b', 'data')
    const db = openDb(nested, 'strict')
    db.runs.begin()
    expect(existsSync(join(nested, 'wal'))).toBe(true)
    expect(walFiles(nested).length).toBe(1)
  })
})

describe('memory mode', () => {
  it('without a path nothing is kept after close', () => {
    const db = Database.open()
    const s = db.stats()
    expect(s.durability).toBe('memory')
    expect(s.path).toBeNull()
    expect(s.wal).toBeNull()
    const run = db.runs.begin()
    db.kv.put(run, 'k', 1)
    db.close()
    const again = Database.open({ durability: 'memory' })
    try {
      expect(again.stats().version).toBe(0)
      expect(again.runs.list()).toEqual([])
      expect(again.runs.get(run)).toBeUndefined()
      expect(again.kv.get(run, 'k')).toBeUndefined()
    } finally {
      again.close()
    }
  })

  it('two memory databases are independent', () => {
    const a = Database.open()
    const b = Database.open()
    try {
      const run = a.runs.begin()
      expect(b.runs.get(run)).toBeUndefined()
      expect(b.stats().runs).toBe(0)
    } finally {
      a.close()
      b.close()
    }
  })

  it("a path with durability 'memory' is InvalidArgumentError and creates nothing", () => {
    const target = join(dir, 'never')
    expectError(() => Database.open(target, { durability: 'memory' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(existsSync(target)).toBe(false)
  })
})

describe('one engine per path in a process', () => {
  it('a second open of the same path shares the engine', () => {
    const a = openDb(dir, 'buffered')
    const b = openDb(dir, 'buffered')
    const run = a.runs.begin()
    a.kv.put(run, 'from-a', 1)
    expect(b.kv.get(run, 'from-a')).toBe(1)
    b.kv.put(run, 'from-b', 2)
    expect(a.kv.get(run, 'from-b')).toBe(2)
    expect(a.stats().version).toBe(b.stats().version)
    b.transaction(run, (tx) => tx.kv.put('tx', 3))
    expect(a.kv.get(run, 'tx')).toBe(3)
  })

  it('a second open of an open path with another durability is InvalidArgumentError, not a silently weaker mode', () => {
    const a = openDb(dir, 'buffered')
    const err = expectError(() => Database.open(dir, { durability: 'strict' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toMatch(/already open in this process with durability 'buffered'/)
    const run = a.runs.begin()
    a.kv.put(run, 'still', 'usable')
    expect(a.kv.get(run, 'still')).toBe('usable')
  })

  it('the same directory named differently (trailing slash, relative path) is the same engine', () => {
    const a = openDb(dir, 'buffered')
    const b = openDb(`${dir}/`, 'buffered')
    const c = openDb(relative(process.cwd(), dir), 'buffered')
    const d = openDb(join(dir, 'wal', '..'), 'buffered')
    const run = a.runs.begin()
    a.kv.put(run, 'k', 'v')
    for (const h of [b, c, d]) expect(h.kv.get(run, 'k')).toBe('v')
  })

  it('closing one handle leaves the other usable; the data survives the last close', () => {
    const a = openDb(dir, 'strict')
    const b = openDb(dir, 'strict')
    const run = a.runs.begin()
    a.kv.put(run, 'k', 1)
    a.close()
    expect(a.isOpen).toBe(false)
    expectError(() => a.kv.get(run, 'k'), ClosedError, 'CLOSED')
    expect(b.isOpen).toBe(true)
    expect(b.kv.get(run, 'k')).toBe(1)
    b.kv.put(run, 'k2', 2)
    b.close()
    const c = openDb(dir, 'strict')
    expect(c.kv.getMany(run, ['k', 'k2'])).toEqual([1, 2])
  })

  it('after every handle closed, a new open recovers from disk', () => {
    const a = openDb(dir, 'buffered')
    const run = a.runs.begin()
    a.kv.put(run, 'k', 1)
    a.close()
    const b = openDb(dir, 'buffered')
    expect(b.kv.get(run, 'k')).toBe(1)
    expect(b.stats().recovery.records).toBe(2)
  })
})

describe('recovery reports', () => {
  it('orphanedRuns lists the runs left active, and list({status: active}) finds them', () => {
    const db = openDb(dir, 'strict')
    const active1 = db.runs.begin({ name: 'left running 1' })
    const done = db.runs.begin()
    db.runs.complete(done)
    const paused = db.runs.begin()
    db.runs.pause(paused)
    const active2 = db.runs.begin({ name: 'left running 2' })
    db.close()
    const again = openDb(dir, 'strict')
    const orphaned = again.stats().recovery.orphanedRuns
    expect([...orphaned].sort()).toEqual([active1, active2].sort())
    expect(again.runs.list({ status: 'active' }).map((i) => i.id)).toEqual([active1, active2])
    // An orphaned run is still active: it can be ended (or written to).
    again.kv.put(active1, 'resumed', true)
    again.runs.fail(active1, 'orphaned by a crash')
    again.close()
    const third = openDb(dir, 'strict')
    expect(third.stats().recovery.orphanedRuns).toEqual([active2])
  })

  it('a clean database reports no orphans and no torn tail', () => {
    const db = openDb(dir, 'strict')
    db.runs.complete(db.runs.begin())
    db.close()
    const rec = openDb(dir, 'strict').stats().recovery
    expect(rec.orphanedRuns).toEqual([])
    expect(rec.tornTail).toBeNull()
    expect(rec.records).toBe(2)
    expect(rec.segments).toBe(1)
    expect(rec.lastCommitAt).toBeGreaterThan(Date.now() - 60_000)
  })

  it('a torn tail is truncated and reported; earlier records are intact', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    for (let i = 0; i < 10; i++) db.kv.put(run, `k${i}`, { i, pad: 'p'.repeat(i * 10) })
    db.close()
    const [file] = walFiles(dir).slice(-1)
    const bytes = readFileSync(file)
    const records = walRecords(bytes)
    expect(records.length).toBe(11)
    const last = records[records.length - 1]
    expect(last.offset + last.len).toBe(bytes.length)
    truncateSync(file, bytes.length - 3)

    const again = openDb(dir, 'strict')
    const rec = again.stats().recovery
    expect(rec.tornTail).not.toBeNull()
    expect(realpathSync(rec.tornTail!.file)).toBe(realpathSync(file))
    expect(rec.tornTail!.offset).toBe(last.offset)
    expect(rec.tornTail!.droppedBytes).toBe(last.len - 3)
    expect(rec.records).toBe(10)
    expect(rec.lastVersion).toBe(last.version - 1)
    expect(statSync(file).size).toBe(last.offset)
    expect(again.kv.list(run)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8'])
    for (let i = 0; i < 9; i++) expect(again.kv.get(run, `k${i}`)).toEqual({ i, pad: 'p'.repeat(i * 10) })

    // The log continues cleanly after the cut.
    expect(again.kv.put(run, 'k9', 'rewritten')).toBe(last.version)
    again.close()
    const third = openDb(dir, 'strict')
    expect(third.stats().recovery.tornTail).toBeNull()
    expect(third.kv.get(run, 'k9')).toBe('rewritten')
    expect(third.kv.count(run)).toBe(10)
  })

  it('a last record cut down to part of its header is a torn tail too', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    db.kv.put(run, 'a', 1)
    db.kv.put(run, 'b', 2)
    db.close()
    const [file] = walFiles(dir)
    const records = walRecords(readFileSync(file))
    const last = records[records.length - 1]
    truncateSync(file, last.offset + 5)
    const again = openDb(dir, 'strict')
    expect(again.stats().recovery.tornTail).toMatchObject({ offset: last.offset, droppedBytes: 5 })
    expect(again.kv.list(run)).toEqual(['a'])
  })

  it('a flipped byte in a middle record makes open throw CorruptionError and changes nothing on disk', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    for (let i = 0; i < 10; i++) db.kv.put(run, `k${i}`, `value-${i}`)
    db.close()
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const records = walRecords(original)
    const victim = records[4]
    const damaged = Buffer.from(original)
    const at = victim.offset + RECORD_HEADER + Math.floor((victim.len - RECORD_HEADER) / 2)
    damaged[at] ^= 0x40
    writeFileSync(file, damaged)

    const err = expectError(() => Database.open(dir, { durability: 'strict' }), CorruptionError, 'CORRUPTION')
    expect(realpathSync(err.details.file as string)).toBe(realpathSync(file))
    expect(err.details.offset).toBe(victim.offset)
    expect(typeof err.details.reason).toBe('string')
    expect(err.message).toContain(String(victim.offset))
    expect(Buffer.compare(readFileSync(file), damaged)).toBe(0)
    expect(walFiles(dir)).toEqual([file])

    // Opening again fails the same way (the failed open held no lock and cut nothing).
    expectError(() => Database.open(dir, { durability: 'buffered' }), CorruptionError, 'CORRUPTION')
    expect(Buffer.compare(readFileSync(file), damaged)).toBe(0)

    // Once the byte is restored, everything is there.
    writeFileSync(file, original)
    const again = openDb(dir, 'strict')
    expect(again.kv.count(run)).toBe(10)
    expect(again.stats().recovery.tornTail).toBeNull()
  })

  it('a flipped byte in the version field of a middle record is CorruptionError', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    for (let i = 0; i < 5; i++) db.kv.put(run, `k${i}`, i)
    db.close()
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const victim = walRecords(original)[2]
    const damaged = Buffer.from(original)
    damaged[victim.offset + 8] ^= 0x01
    writeFileSync(file, damaged)
    const err = expectError(() => Database.open(dir, { durability: 'strict' }), CorruptionError, 'CORRUPTION')
    expect(err.details.offset).toBe(victim.offset)
    expect(Buffer.compare(readFileSync(file), damaged)).toBe(0)
  })

  it('a damaged length field in a middle record is CorruptionError, not a torn tail that silently drops later records', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    for (let i = 0; i < 10; i++) db.kv.put(run, `k${i}`, `value-${i}`)
    db.close()
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const victim = walRecords(original)[4]
    const damaged = Buffer.from(original)
    damaged[victim.offset + 2] ^= 0x01 // the length grows by 64 KiB: past the end of the file
    writeFileSync(file, damaged)

    let opened: Database | undefined
    let err: unknown
    try {
      opened = Database.open(dir, { durability: 'strict' })
    } catch (e) {
      err = e
    }
    if (opened) {
      const lost = 10 - opened.kv.count(run)
      const tail = opened.stats().recovery.tornTail
      opened.close()
      expect.fail(`open succeeded, reported a torn tail at ${tail?.offset} and dropped ${lost} acknowledged records`)
    }
    expect(err).toBeInstanceOf(CorruptionError)
    expect((err as CorruptionError).details.offset).toBe(victim.offset)
    expect(Buffer.compare(readFileSync(file), damaged)).toBe(0)
  })

  it('zero bytes after the last record (where the file grew ahead of its records) are cut, not reported', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    db.kv.put(run, 'a', 1)
    db.close()
    const [file] = walFiles(dir)
    const size = statSync(file).size
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.alloc(100)]))
    const again = openDb(dir, 'strict')
    expect(again.stats().recovery.tornTail).toBeNull()
    again.close()
    expect(statSync(file).size).toBe(size)
    const third = openDb(dir, 'strict')
    expect(third.kv.get(run, 'a')).toBe(1)
    third.close()
  })

  it('a zeroed region before the tail is CorruptionError', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    for (let i = 0; i < 6; i++) db.kv.put(run, `k${i}`, 'x'.repeat(40))
    db.close()
    const [file] = walFiles(dir)
    const original = readFileSync(file)
    const victim = walRecords(original)[2]
    const damaged = Buffer.from(original)
    damaged.fill(0, victim.offset, victim.offset + victim.len)
    writeFileSync(file, damaged)
    const err = expectError(() => Database.open(dir, { durability: 'strict' }), CorruptionError, 'CORRUPTION')
    expect(err.details.offset).toBe(victim.offset)
    expect(Buffer.compare(readFileSync(file), damaged)).toBe(0)
  })

  it('a log over several segments reopens intact; a missing middle segment is CorruptionError', () => {
    const db = Database.open(dir, { durability: 'strict', segmentBytes: 4096 })
    open.push(db)
    const run = db.runs.begin()
    for (let i = 0; i < 60; i++) db.kv.put(run, `k${String(i).padStart(2, '0')}`, 'y'.repeat(200))
    db.close()
    const files = walFiles(dir)
    expect(files.length).toBeGreaterThanOrEqual(3)
    const again = openDb(dir, 'strict')
    expect(again.kv.count(run)).toBe(60)
    expect(again.stats().recovery.segments).toBe(files.length)
    again.close()

    const middle = files[1]
    const saved = readFileSync(middle)
    removeDir(middle)
    const err = expectError(() => Database.open(dir, { durability: 'strict' }), CorruptionError, 'CORRUPTION')
    expect(err.details.reason).toMatch(/missing/)
    expect(walFiles(dir)).toEqual(files.filter((f) => f !== middle))
    writeFileSync(middle, saved)
    expect(openDb(dir, 'strict').kv.count(run)).toBe(60)
  })

  it('a damaged segment header makes open throw CorruptionError', () => {
    const db = openDb(dir, 'strict')
    db.runs.begin()
    db.close()
    const [file] = walFiles(dir)
    const damaged = readFileSync(file)
    damaged[3] ^= 0xff // inside the magic
    writeFileSync(file, damaged)
    const err = expectError(() => Database.open(dir, { durability: 'strict' }), CorruptionError, 'CORRUPTION')
    expect(err.details.offset).toBe(0)
    expect(Buffer.compare(readFileSync(file), damaged)).toBe(0)
  })
})

describe('flush and transactionAsync', () => {
  it('flush resolves and makes every buffered commit durable', async () => {
    const db = Database.open(dir, { durability: 'buffered', flushIntervalMs: 60_000 })
    open.push(db)
    const run = db.runs.begin()
    for (let i = 0; i < 20; i++) db.kv.put(run, `k${i}`, i)
    const version = db.stats().version
    await expect(db.flush()).resolves.toBeUndefined()
    const wal = db.stats().wal!
    expect(wal.durableVersion).toBe(version)
    expect(wal.pendingRecords).toBe(0)
    expect(wal.fsyncs).toBeGreaterThan(0)
    // The records are in the file now.
    expect(walRecords(readFileSync(walFiles(dir)[0])).length).toBe(21)
  })

  it('flush resolves in memory mode and in strict mode', async () => {
    const mem = Database.open()
    try {
      await expect(mem.flush()).resolves.toBeUndefined()
    } finally {
      mem.close()
    }
    const strict = openDb(dir, 'strict')
    strict.runs.begin()
    await expect(strict.flush()).resolves.toBeUndefined()
    expect(strict.stats().wal!.durableVersion).toBe(strict.stats().version)
  })

  it('buffered commits reach the disk within the flush interval without flush()', async () => {
    const db = Database.open(dir, { durability: 'buffered', flushIntervalMs: 10 })
    open.push(db)
    const run = db.runs.begin()
    db.kv.put(run, 'k', 1)
    const version = db.stats().version
    const deadline = Date.now() + 5_000
    while (db.stats().wal!.durableVersion < version && Date.now() < deadline) await sleep(5)
    expect(db.stats().wal!.durableVersion).toBe(version)
  })

  it('a strict write is durable when it returns', () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    const v = db.kv.put(run, 'k', 1)
    expect(db.stats().wal!.durableVersion).toBeGreaterThanOrEqual(v)
    db.transaction(run, (tx) => tx.kv.put('t', 2))
    expect(db.stats().wal!.durableVersion).toBe(db.stats().version)
  })

  it('transactionAsync resolves in strict mode and its writes survive reopen', async () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        db.transactionAsync(run, async (tx) => {
          tx.kv.put(`a${i}`, i)
          await Promise.resolve()
          tx.kv.put(`b${i}`, 100 + i)
          return i
        }),
      ),
    )
    expect(results).toEqual(Array.from({ length: 16 }, (_, i) => i))
    const s = db.stats()
    expect(s.wal!.durableVersion).toBe(s.version)
    db.close()
    const again = openDb(dir, 'strict')
    expect(again.kv.count(run)).toBe(32)
    for (let i = 0; i < 16; i++) expect(again.kv.getMany(run, [`a${i}`, `b${i}`])).toEqual([i, 100 + i])
  })

  it('concurrent strict transactionAsync commits share fsyncs, and each is acknowledged only once its record is fsynced', async () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    const early: string[] = []
    const writers = 64
    const rounds = 5
    const check = (key: string): void => {
      const version = db.kv.getVersioned(run, key)!.version
      const durable = db.stats().wal!.durableVersion
      if (durable < version) early.push(`${key}: acknowledged at durable version ${durable} < its commit ${version}`)
    }
    // Unheld: the syncer fsyncs as soon as it is asked, and again at once
    // while more is asked; every acknowledgement follows its fsync.
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let r = 0; r < rounds; r++) {
          await db.transactionAsync(run, (tx) => tx.kv.put(`w${w}/r${r}`, r))
          check(`w${w}/r${r}`)
        }
      }),
    )
    expect(early).toEqual([])
    expect(db.kv.count(run)).toBe(writers * rounds)
    // Held: commits made while the syncer is busy (here: held) are not
    // acknowledged, and all of them share the next fsync.
    for (let r = 0; r < rounds; r++) {
      holdSyncerForTest(db, true)
      const fsyncsBefore = db.stats().wal!.fsyncs
      let acknowledged = 0
      const all = Array.from({ length: writers }, (_, w) =>
        db.transactionAsync(run, (tx) => tx.kv.put(`held/w${w}/r${r}`, r)).then(() => {
          acknowledged++
          check(`held/w${w}/r${r}`)
        }),
      )
      // Every closure has run and committed (each after one microtask).
      await new Promise((resolve) => setImmediate(resolve))
      expect(db.kv.count(run, { prefix: `held/` })).toBe(writers * (r + 1))
      expect(acknowledged).toBe(0)
      holdSyncerForTest(db, false)
      await Promise.all(all)
      expect(db.stats().wal!.fsyncs - fsyncsBefore).toBe(1)
    }
    expect(early).toEqual([])
    db.close()
  })

  it('close() while strict transactionAsync commits wait for their fsync: close fsyncs them and they resolve; a reopen finds them', async () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    holdSyncerForTest(db, true)
    let acknowledged = 0
    const waiting = Array.from({ length: 8 }, (_, i) => db.transactionAsync(run, (tx) => tx.kv.put(`k${i}`, i)).then(() => acknowledged++))
    await new Promise((resolve) => setImmediate(resolve))
    expect(acknowledged).toBe(0)
    const durableBefore = db.stats().wal!.durableVersion
    db.close()
    await Promise.all(waiting)
    expect(acknowledged).toBe(8)
    const again = openDb(dir, 'strict')
    expect(again.stats().version).toBeGreaterThan(durableBefore)
    for (let i = 0; i < 8; i++) expect(again.kv.get(run, `k${i}`)).toBe(i)
    again.close()
  })

  it('a read-only transactionAsync writes no WAL record', async () => {
    const db = openDb(dir, 'strict')
    const run = db.runs.begin()
    db.kv.put(run, 'k', 1)
    const before = db.stats()
    expect(await db.transactionAsync(run, (tx) => tx.kv.get('k'))).toBe(1)
    const after = db.stats()
    expect(after.version).toBe(before.version)
    expect(after.wal!.bytesWritten).toBe(before.wal!.bytesWritten)
    db.close()
    expect(walRecords(readFileSync(walFiles(dir)[0])).length).toBe(2)
  })
})
