// The API as users write it (issue 19): each case is a defect found by
// writing an agent against the README. Type-level cases are in test/types.ts.
import { spawnSync } from 'node:child_process'
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConflictError, Database, InvalidArgumentError, type NotPromise } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'
import { walFiles } from './wal-helpers.js'

let dir: string
const opened: Database[] = []
function open(...args: Parameters<typeof Database.open>): Database {
  const db = Database.open(...args)
  opened.push(db)
  return db
}
beforeEach(() => {
  dir = makeTmpDir('api')
})
afterEach(() => {
  for (const db of opened.splice(0)) db.close()
  removeDir(dir)
})

describe('transactions as users write them', () => {
  it('an async closure given to transaction is refused, and nothing rejects unhandled later', async () => {
    // Run in a child: an unhandled rejection there ends the process with code 1.
    const script = `
      const { Database } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))})
      const db = Database.open()
      const run = db.runs.begin()
      let caught = ''
      try { db.transaction(run, async (tx) => { await null; tx.kv.put('x', 1) }) } catch (e) { caught = e.code }
      setTimeout(() => { console.log(JSON.stringify({ caught, x: db.kv.get(run, 'x') ?? null })); }, 20)
    `
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ caught: 'INVALID_ARGUMENT', x: null })
  })

  it('a transaction inside another transaction is InvalidArgumentError; the outer one commits once', () => {
    const db = open()
    const run = db.runs.begin()
    db.kv.put(run, 'n', 0)
    let inner: unknown
    db.transaction(run, (tx) => {
      tx.kv.put('outer', true)
      try {
        db.transaction(run, (t2) => t2.kv.put('n', 1))
      } catch (e) {
        inner = e
      }
    })
    expect(inner).toBeInstanceOf(InvalidArgumentError)
    expect((inner as Error).message).toContain('inside another transaction')
    expect(db.kv.get(run, 'n')).toBe(0)
    expect(db.kv.get(run, 'outer')).toBe(true)
    // db.state.transition is a transaction too
    expectError(() => db.transaction(run, () => db.state.transition(run, 'c', () => 1) as NotPromise<unknown>), InvalidArgumentError, 'INVALID_ARGUMENT')
    // and a transaction is usable again afterwards
    db.transaction(run, (tx) => tx.kv.put('after', 1))
    expect(db.kv.get(run, 'after')).toBe(1)
  })

  it('a transaction inside a transactionAsync closure is InvalidArgumentError, even after an await', async () => {
    const db = open()
    const run = db.runs.begin()
    await expect(
      db.transactionAsync(run, async (tx) => {
        await null
        tx.kv.put('a', 1)
        db.transaction(run, (t2) => t2.kv.put('b', 1))
      }),
    ).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(db.kv.get(run, 'a')).toBeUndefined()
    expect(db.kv.get(run, 'b')).toBeUndefined()
    // Concurrent, not nested, async transactions are still fine.
    await Promise.all([db.transactionAsync(run, async (tx) => tx.kv.put('c', 1)), db.transactionAsync(run, async (tx) => tx.kv.put('d', 1))])
    expect(db.kv.getMany(run, ['c', 'd'])).toEqual([1, 1])
  })

  it('200 transactionAsync writers on one hot key complete in far fewer attempts than lockstep retries (n(n+1)/2)', async () => {
    const db = open()
    const run = db.runs.begin()
    db.kv.put(run, 'counter', 0)
    const n = 200
    let attempts = 0
    await Promise.all(
      Array.from({ length: n }, () =>
        db.transactionAsync(
          run,
          async (tx) => {
            attempts++
            const v = tx.kv.get('counter') as number
            await null
            tx.kv.put('counter', v + 1)
          },
          { retries: 1000 },
        ),
      ),
    )
    expect(db.kv.get(run, 'counter')).toBe(n)
    // Lockstep retries took n(n+1)/2 = 20,100 attempts.
    expect(attempts).toBeLessThan((n * (n + 1)) / 2 / 4)
  })

  it('with the default retries, a burst of 20 async writers on one key all commit', async () => {
    const db = open()
    const run = db.runs.begin()
    db.kv.put(run, 'counter', 0)
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        db.transactionAsync(run, async (tx) => {
          const v = tx.kv.get('counter') as number
          await null
          tx.kv.put('counter', v + 1)
        }),
      ),
    )
    const failed = results.filter((r) => r.status === 'rejected')
    for (const f of failed) expect((f as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError)
    expect(db.kv.get(run, 'counter')).toBe(20 - failed.length)
    expect(failed.length).toBe(0)
  })
})

describe('options', () => {
  it('a misspelled open option is InvalidArgumentError naming it and the nearest valid one; nothing is created', () => {
    const path = join(dir, 'db')
    const err = expectError(() => Database.open(path, { durabilty: 'strict' } as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain("'durabilty'")
    expect(err.message).toContain("did you mean 'durability'")
    expect(err.details).toMatchObject({ option: 'durabilty', nearest: 'durability' })
    expect(() => statSync(path)).toThrow()
  })

  it('a misspelled transaction option is InvalidArgumentError', () => {
    const db = open()
    const run = db.runs.begin()
    const err = expectError(() => db.transaction(run, () => 1, { retry: 3 } as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain("did you mean 'retries'")
  })
})

describe('values', () => {
  it('a lone surrogate in a string value, or in an object key, is refused (UTF-8 cannot carry it) and nothing is written', () => {
    const db = open()
    const run = db.runs.begin()
    for (const bad of ['\ud800', 'a\udc00b', { ['\ud83d']: 1 }, ['ok', '\udfff']]) {
      const err = expectError(() => db.kv.put(run, 'k', bad), InvalidArgumentError, 'INVALID_ARGUMENT')
      expect(err.message).toContain('lone surrogate')
    }
    expect(db.kv.get(run, 'k')).toBeUndefined()
    // A surrogate pair is a valid code point, and round-trips.
    db.kv.put(run, 'k', 'emoji 😀')
    expect(db.kv.get(run, 'k')).toBe('emoji 😀')
  })
})

describe('the CLI reads without writing', () => {
  it('in-mem stats on a directory whose last WAL segment has trailing garbage reports it and leaves the bytes', () => {
    const path = join(dir, 'db')
    const db = Database.open(path, { checkpointOnClose: false })
    const run = db.runs.begin()
    db.kv.put(run, 'a', 1)
    db.close()
    const [file] = walFiles(path)
    appendFileSync(file, Buffer.from('0123456789abcdef'))
    const before = readFileSync(file)
    const cli = join(__dirname, '..', 'bin', 'in-mem.js')
    const r = spawnSync(process.execPath, [cli, 'stats', '--json', '-d', path], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    const stats = JSON.parse(r.stdout) as { recovery: { tornTail: { droppedBytes: number } | null } }
    expect(stats.recovery.tornTail).toMatchObject({ droppedBytes: 16 })
    expect(Buffer.compare(readFileSync(file), before)).toBe(0)
    // A read-only open refuses writes with a clear error, and so does a checkpoint.
    const ro = open(path, { readOnly: true })
    expect(ro.kv.get(run, 'a')).toBe(1)
    expectError(() => ro.kv.put(run, 'b', 2), InvalidArgumentError, 'INVALID_ARGUMENT')
    ro.close()
    expect(Buffer.compare(readFileSync(file), before)).toBe(0)
    // The next read-write open cuts the tail.
    const rw = open(path)
    expect(rw.stats().recovery.tornTail).toMatchObject({ droppedBytes: 16 })
    expect(rw.kv.get(run, 'a')).toBe(1)
    writeFileSync(join(dir, 'done'), '')
  })
})
