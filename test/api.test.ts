// The API as users write it (issue 19): each case is a defect found by
// writing an agent against the README. Type-level cases are in test/types.ts.
import { ONE_PASS_ROOM, decode, encode } from '../src/codec.js'
import { IO_VALUE_OFFSET, Io } from '../src/keys.js'
import { Packr, Unpackr } from 'msgpackr'
import { spawnSync } from 'node:child_process'
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ClosedError, ConflictError, Database, InvalidArgumentError, NotFoundError, type NotPromise, type OpenOptions } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'
import { walFiles } from './wal-helpers.js'
import { createRequire } from 'node:module'
import type * as TxContext from '../dist/txcontext.js'

let dir: string
// Through Node's own require, as dist/database.js loads it: the module
// instance the handles use.
const { asyncTxContext } = createRequire(__filename)('../dist/txcontext.js') as typeof TxContext

const opened: Database[] = []
function open(path?: string, options?: OpenOptions): Database {
  const db = Database.open(path, options)
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

  it('a transactionAsync closure that returns a value (not a promise) commits before the call returns; nesting and throws behave as for an async closure', async () => {
    const db = open()
    const run = db.runs.begin()
    // No await between the closure and the commit: the write is visible as
    // soon as transactionAsync returns its promise.
    const pending = db.transactionAsync(run, (tx) => tx.kv.put('a', 1))
    expect(db.kv.get(run, 'a')).toBe(1)
    await pending
    // Returned values pass through; a thenable is still awaited.
    expect(await db.transactionAsync(run, () => 'value')).toBe('value')
    expect(await db.transactionAsync(run, (tx) => Promise.resolve(tx.kv.get('a')))).toBe(1)
    // A nested transaction in a synchronous closure is refused; nothing commits.
    await expect(
      db.transactionAsync(run, (tx) => {
        tx.kv.put('b', 1)
        db.transaction(run, (t2) => t2.kv.put('c', 1))
      }),
    ).rejects.toBeInstanceOf(InvalidArgumentError)
    // A synchronous throw rejects the promise and commits nothing.
    const boom = new Error('boom')
    await expect(
      db.transactionAsync(run, (tx) => {
        tx.kv.put('d', 1)
        throw boom
      }),
    ).rejects.toBe(boom)
    expect(db.kv.getMany(run, ['b', 'c', 'd'])).toEqual([undefined, undefined, undefined])
    expect(asyncTxContext.state().running).toBe(0)
  })

  it('the async context that refuses nested transactions is disabled once no closure has run for idleMs, and enabled again by the next', async () => {
    // Before Node 24 an enabled AsyncLocalStorage makes every promise in the
    // process dearer; the context is given back when transactions stop.
    const saved = asyncTxContext.state().idleMs
    asyncTxContext.setIdleMs(0)
    try {
      const db = open()
      const run = db.runs.begin()
      await db.transactionAsync(run, async (tx) => tx.kv.put('a', 1))
      expect(asyncTxContext.state()).toMatchObject({ running: 0, enabled: true })
      await new Promise((resolve) => setTimeout(resolve, 0)) // the idle timer, set first, fires first
      expect(asyncTxContext.state()).toMatchObject({ running: 0, enabled: false })
      // A closure that waits longer than idleMs is still inside its
      // transaction: a transaction started there is refused, sync or async.
      for (const nested of [() => db.transaction(run, (t2) => t2.kv.put('b', 1)), () => db.transactionAsync(run, async (t2) => t2.kv.put('b', 1))]) {
        await expect(
          db.transactionAsync(run, async (tx) => {
            expect(asyncTxContext.state()).toMatchObject({ running: 1, enabled: true })
            await new Promise((resolve) => setTimeout(resolve, 5))
            tx.kv.put('c', 1)
            await nested()
          }),
        ).rejects.toBeInstanceOf(InvalidArgumentError)
      }
      expect(db.kv.getMany(run, ['a', 'b', 'c'])).toEqual([1, undefined, undefined])
      await new Promise((resolve) => setTimeout(resolve, 0))
      expect(asyncTxContext.state()).toMatchObject({ running: 0, enabled: false })
    } finally {
      asyncTxContext.setIdleMs(saved)
    }
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

  it('with the default retries, a burst of 20 async writers on one key all commit, though each waits a turn of the event loop between read and write', async () => {
    const db = open()
    const run = db.runs.begin()
    db.kv.put(run, 'counter', 0)
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        db.transactionAsync(run, async (tx) => {
          const v = tx.kv.get('counter') as number
          await new Promise((r) => setImmediate(r))
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

  it('misspelled options of the other calls are InvalidArgumentError naming the nearest valid one; nothing is written', () => {
    const db = open()
    const run = db.runs.begin()
    const cases: [() => unknown, string][] = [
      [() => db.kv.put(run, 'k', 1, { ttl: 1000 } as never), 'ttlMs'],
      [() => db.kv.list(run, { prefx: 'a' } as never), 'prefix'],
      [() => db.runs.begin({ nam: 'x' } as never), 'name'],
      [() => db.runs.list({ stauts: 'active' } as never), 'status'],
      [() => db.events.range(run, { form: 0 } as never), 'from'],
      [() => db.traces.query(run, { tags: 'x' } as never), 'tag'],
      [() => db.replay(run, { att: 1 } as never), 'at'],
      [() => db.watch({ runs: run } as never), 'run'],
    ]
    for (const [call, nearest] of cases) {
      const err = expectError(call, InvalidArgumentError, 'INVALID_ARGUMENT')
      expect(err.message).toContain(`did you mean '${nearest}'`)
    }
    expect(db.kv.get(run, 'k')).toBeUndefined()
    expect(db.runs.list()).toHaveLength(1)
  })

  it('a second open of a path in this process with other options is InvalidArgumentError naming the option (issue 11)', () => {
    const path = join(dir, 'db')
    const first = open(path, { flushIntervalMs: 50, checkpointOnClose: false })
    // The same options share the engine.
    const same = open(path, { flushIntervalMs: 50, checkpointOnClose: false })
    const run = first.runs.begin()
    expect(same.runs.get(run)?.id).toBe(run)
    for (const [opts, name] of [
      [{ flushIntervalMs: 60, checkpointOnClose: false }, 'flushIntervalMs'],
      [{ flushIntervalMs: 50 }, 'checkpointOnClose'],
      [{ flushIntervalMs: 50, checkpointOnClose: false, watchBuffer: 5 }, 'watchBuffer'],
    ] as const) {
      const err = expectError(() => Database.open(path, opts), InvalidArgumentError, 'INVALID_ARGUMENT')
      expect(err.message).toContain(`already open in this process with ${name}`)
    }
  })

  it('runs.update refuses a misspelled change and commits nothing', () => {
    const db = open()
    const run = db.runs.begin({ tags: ['a'] })
    const v = db.stats().version
    const err = expectError(() => db.runs.update(run, { tag: ['x'] } as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain("did you mean 'tags'")
    expect(db.stats().version).toBe(v)
  })

  it('a readOnly database refuses a fork naming the fork, and still watches', async () => {
    const path = join(dir, 'ro')
    const w = Database.open(path)
    const run = w.runs.begin()
    w.close()
    const ro = open(path, { readOnly: true })
    const err = expectError(() => ro.runs.fork(run), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain('a fork writes')
    const it = ro.watch()
    await it.return()
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

describe('values: lone surrogates wherever a string can be', () => {
  // Every length and place a string can have (short strings the encoder
  // writes itself, long ones Node writes, object keys, deep inside a large
  // value): a lone surrogate is refused wherever it is.
  it('a lone surrogate at the start, middle or end of strings and keys of 1 to 100,000 characters is refused; nothing is written', () => {
    const db = open()
    const run = db.runs.begin()
    const lengths = [1, 2, 3, 5, 8, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 1000, 4096, 10_000, 100_000]
    let cases = 0
    for (const n of lengths) {
      for (const lone of ['\ud800', '\udbff', '\udc00', '\udfff']) {
        for (const at of [0, Math.floor(n / 2), n - 1]) {
          const s = 'a'.repeat(at) + lone + 'b'.repeat(Math.max(0, n - at - 1))
          const big = Array.from({ length: 50 }, (_, i) => ({ role: 'user', content: `message ${i} ${'x'.repeat(200)}` }))
          for (const bad of [s, { [s]: 1 }, [...big, { nested: { deep: [s] } }], { messages: big, [s]: 'v' }]) {
            const err = expectError(() => db.kv.put(run, 'k', bad), InvalidArgumentError, 'INVALID_ARGUMENT')
            expect(err.message).toContain('lone surrogate')
            cases++
          }
        }
      }
    }
    expect(cases).toBe(lengths.length * 4 * 3 * 4)
    expect(db.kv.get(run, 'k')).toBeUndefined()
  })

  it('a lone surrogate in a name or id (cell, document, path, event type, machine, instance, trace tag, vector collection or id, run name or tag) is InvalidArgumentError and writes nothing, in and out of transactions', () => {
    // The native side would be handed U+FFFD in its place: another name.
    const db = open()
    const run = db.runs.begin()
    db.state.set(run, 'ok', 1)
    db.machines.define({ name: 'm', version: 1, initial: 'a', states: ['a', 'b'], transitions: [{ from: 'a', event: 'go', to: 'b' }] })
    db.vectors.create(run, 'c', { dimension: 2 })
    const bad = 'x\ud800y'
    const calls: [string, () => unknown][] = [
      ['db.state.set', () => db.state.set(run, bad, 1)],
      ['db.state.init', () => db.state.init(run, bad, 1)],
      ['db.state.cas', () => db.state.cas(run, bad, 0, 1)],
      ['tx.state.set', () => db.transaction(run, (tx) => tx.state.set(bad, 1))],
      ['db.json.set doc', () => db.json.set(run, bad, '$', { a: 1 })],
      ['db.json.set path', () => db.json.set(run, 'd', `$.${bad}`, 1)],
      ['tx.json.set doc', () => db.transaction(run, (tx) => tx.json.set(bad, '$', 1))],
      ['db.events.append', () => db.events.append(run, bad, {})],
      ['db.machines.create id', () => db.machines.create(run, bad, { machine: 'm' })],
      ['db.machines.create machine', () => db.machines.create(run, 'i', { machine: bad })],
      ['db.traces.record tags', () => db.traces.record(run, { type: 'thought', data: { content: 't' }, tags: [bad] })],
      ['db.vectors.create', () => db.vectors.create(run, bad, { dimension: 2 })],
      ['db.vectors.upsert id', () => db.vectors.upsert(run, 'c', bad, [1, 0])],
      ['db.runs.begin name', () => db.runs.begin({ name: bad })],
      ['db.runs.begin tags', () => db.runs.begin({ tags: [bad] })],
      ['db.runs.fork name', () => db.runs.fork(run, { name: bad })],
      ['db.runs.update tags', () => db.runs.update(run, { tags: [bad] })],
      ['db.runs.tag', () => db.runs.tag(run, bad)],
    ]
    const before = db.stats().version
    for (const [what, call] of calls) {
      let err: unknown
      try {
        call()
      } catch (e) {
        err = e
      }
      expect(err, what).toBeInstanceOf(InvalidArgumentError)
      expect((err as Error).message, what).toContain('lone surrogate')
    }
    expect(db.stats().version).toBe(before)
    expect(db.state.list(run).map((c) => c.name)).toEqual(['ok'])
    expect(db.runs.list().length).toBe(1)
  })

  it('strings whose UTF-8 holds 0xED or 0xEF (Hangul, U+FFFD, U+F000–U+FFFF, a surrogate pair) round-trip exactly', () => {
    const db = open()
    const run = db.runs.begin()
    const texts = ['한국어 텍스트 힣', '\ufffd replacement', '\uf000\uffff private use', 'emoji 😀 pair', '\ud55c'.repeat(5000)]
    for (const [i, t] of texts.entries()) {
      db.kv.put(run, `t${i}`, { [t]: t, list: [t] })
      expect(db.kv.get(run, `t${i}`)).toEqual({ [t]: t, list: [t] })
    }
  })
})

describe('run ids', () => {
  it('a missing or non-string run is InvalidArgumentError naming it, first call on a fresh handle included, and nothing is written', () => {
    const db = open()
    const run = db.runs.begin()
    const calls: Record<string, (d: Database, r: string) => unknown> = {
      'kv.put': (d, r) => d.kv.put(r, 'k', 1),
      'kv.get': (d, r) => d.kv.get(r, 'k'),
      'state.set': (d, r) => d.state.set(r, 'c', 1),
      'state.get': (d, r) => d.state.get(r, 'c'),
      'events.append': (d, r) => d.events.append(r, 'e', {}),
      'json.set': (d, r) => d.json.set(r, 'd', '$', {}),
      'traces.record': (d, r) => d.traces.record(r, { type: 'thought', data: { content: 'x' } }),
      'vectors.create': (d, r) => d.vectors.create(r, 'c', { dimension: 2, metric: 'cosine' }),
      'vectors.search': (d, r) => d.vectors.search(r, 'c', [1, 0]),
    }
    for (const bad of [undefined, null, 42, {}, 'not-a-uuid']) {
      for (const [name, call] of Object.entries(calls)) {
        // A fresh handle too: its I/O buffer holds no run yet.
        const fresh = open()
        for (const target of [db, fresh]) {
          const err = expectError(() => call(target, bad as string), InvalidArgumentError, 'INVALID_ARGUMENT')
          expect(err.message, `${name}(${String(bad)})`).toMatch(/run id .* is not a UUID/)
        }
        fresh.close()
      }
    }
    expect(db.kv.get(run, 'k')).toBeUndefined()
    expect(db.state.get(run, 'c')).toBeUndefined()
    expect(db.events.length(run)).toBe(0)
    expect(db.vectors.collections(run)).toEqual([])
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

describe('idempotency keys name one request', () => {
  const MACHINE = { name: 'job', version: 1, initial: 'todo', states: ['todo', 'doing', 'done'], transitions: [{ from: 'todo', event: 'go', to: 'doing' }] }

  it('apply with a reused key and a different payload or expectedState is InvalidArgumentError; the same request returns the first result', () => {
    const db = open()
    const run = db.runs.begin()
    db.machines.define(MACHINE)
    db.machines.create(run, 'j', { machine: 'job' })
    const first = db.machines.apply(run, 'j', 'go', { idempotencyKey: 'k1', payload: { x: 1 } })
    expect(first.applied).toBe(true)
    const again = db.machines.apply(run, 'j', 'go', { idempotencyKey: 'k1', payload: { x: 1 } })
    expect(again).toMatchObject({ applied: false, to: 'doing', revision: first.revision })
    for (const other of [{ payload: { x: 2 } }, { payload: { x: 1 }, expectedState: 'todo' }, { payload: { x: 1 }, expectedRevision: 1 }]) {
      const err = expectError(() => db.machines.apply(run, 'j', 'go', { idempotencyKey: 'k1', ...other }), InvalidArgumentError, 'INVALID_ARGUMENT')
      expect(err.message).toContain('k1')
    }
    expect(db.machines.get(run, 'j')?.context).toEqual({ x: 1 })
  })

  it('create with a reused key and a different context is InvalidArgumentError', () => {
    const db = open()
    const run = db.runs.begin()
    db.machines.define(MACHINE)
    db.machines.create(run, 'j', { machine: 'job', context: { a: 1 }, idempotencyKey: 'c' })
    expect(db.machines.create(run, 'j', { machine: 'job', context: { a: 1 }, idempotencyKey: 'c' }).context).toEqual({ a: 1 })
    expectError(() => db.machines.create(run, 'j', { machine: 'job', context: { a: 2 }, idempotencyKey: 'c' }), InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})

describe('state cells keep rising versions across delete and re-create', () => {
  it('a cas holding a version from before the delete fails (no ABA)', () => {
    const db = open()
    const run = db.runs.begin()
    expect(db.state.init(run, 'c', 'a')).toBe(1)
    expect(db.state.delete(run, 'c')).toBe(true)
    // Absent: cas expects 0.
    expect(db.state.cas(run, 'c', 1, 'stale')).toEqual({ ok: false, version: 0 })
    expect(db.state.init(run, 'c', 'b')).toBe(2)
    expect(db.state.cas(run, 'c', 1, 'stale')).toEqual({ ok: false, version: 2 })
    expect(db.state.get(run, 'c')).toMatchObject({ value: 'b', version: 2 })
    db.state.delete(run, 'c')
    expect(db.state.cas(run, 'c', 0, 'c')).toEqual({ ok: true, version: 3 })
    db.state.delete(run, 'c')
    expect(db.state.set(run, 'c', 'd')).toBe(4)
    // Inside one transaction: delete then set continues too.
    db.transaction(run, (tx) => {
      tx.state.delete('c')
      expect(tx.state.set('c', 'e')).toBe(5)
    })
    expect(db.state.get(run, 'c')).toMatchObject({ value: 'e', version: 5 })
  })
})

describe('errors that point the right way', () => {
  it('Database.open on a file says it is a file', () => {
    const file = join(dir, 'a-file')
    writeFileSync(file, 'x')
    const err = expectError(() => Database.open(file), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain('is a file, not a data directory')
  })

  it('a write to a replay view says the view is read-only, not that the run is archived', () => {
    const db = open()
    const run = db.runs.begin()
    db.kv.put(run, 'a', 1)
    const view = db.replay(run)
    const err = expectError(() => (view.kv as unknown as { put(k: string, v: number): number }).put('x', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain('replay view is read-only')
    view.close()
  })

  it('events.get with a string sequence names its type', () => {
    const db = open()
    const run = db.runs.begin()
    const err = expectError(() => db.events.get(run, '1' as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain('not the string "1"')
  })

  it('events.verify of a run that does not exist is NotFoundError', () => {
    const db = open()
    const err = expectError(() => db.events.verify('01a2493b-f5c6-74d6-8451-4ce8bdfd958c'), NotFoundError, 'NOT_FOUND')
    expect(err.message).toContain('does not exist')
  })

  it('runs.fail with a plain object keeps it as JSON, not "[object Object]"', () => {
    const db = open()
    const run = db.runs.begin()
    expect(db.runs.fail(run, { code: 1, why: 'timeout' }).error).toBe('{"code":1,"why":"timeout"}')
  })

  it('CLI runs list --limit 0 is a usage error (exit 2), not "no runs match"', () => {
    const path = join(dir, 'db')
    const db = Database.open(path)
    db.runs.begin()
    db.close()
    const cli = join(__dirname, '..', 'bin', 'in-mem.js')
    const r = spawnSync(process.execPath, [cli, 'runs', 'list', '--limit', '0', '-d', path], { encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stderr).toContain('--limit must be an integer ≥ 1')
  })
})

describe('bigints stay bigints in JSON documents and machine contexts', () => {
  it('json.set / merge / get keep small and large bigints, and numbers stay numbers', () => {
    const db = open()
    const run = db.runs.begin()
    db.json.set(run, 'j', '$', { a: 5n, b: 5, c: 2n ** 60n + 1n, d: [-3n, 7], e: { f: 0n } })
    expect(db.json.get(run, 'j')).toEqual({ a: 5n, b: 5, c: 2n ** 60n + 1n, d: [-3n, 7], e: { f: 0n } })
    db.json.set(run, 'j', '$.b', 6n)
    db.json.merge(run, 'j', '$.e', { g: 1n })
    expect(db.json.get(run, 'j', '$.b')).toBe(6n)
    expect(db.json.get(run, 'j', '$.e')).toEqual({ f: 0n, g: 1n })
    expect(typeof db.json.get(run, 'j', '$.d[1]')).toBe('number')
  })

  it('machine contexts and merged payloads keep bigints; guards compare them as numbers', () => {
    const db = open()
    const run = db.runs.begin()
    db.machines.define({
      name: 'budget',
      version: 1,
      initial: 'open',
      states: ['open', 'big', 'small'],
      transitions: [
        { from: 'open', event: 'check', to: 'big', guard: 'ctx.total > 100' },
        { from: 'open', event: 'check', to: 'small' },
      ],
    })
    const created = db.machines.create(run, 'b', { machine: 'budget', context: { total: 500n } })
    expect(created.context).toEqual({ total: 500n })
    const applied = db.machines.apply(run, 'b', 'check', { payload: { by: 7n } })
    expect(applied.to).toBe('big')
    expect(applied.context).toEqual({ total: 500n, by: 7n })
    expect(db.machines.get(run, 'b')?.context).toEqual({ total: 500n, by: 7n })
  })
})

describe('more errors that point the right way', () => {
  it('a read after view.close() says the replay view is closed, not the database', () => {
    const db = open()
    const run = db.runs.begin()
    db.kv.put(run, 'a', 1)
    const view = db.replay(run)
    expect(view.kv.get('a')).toBe(1)
    view.close()
    const err = expectError(() => view.kv.get('a'), ClosedError, 'CLOSED')
    expect(err.message).toContain('replay view is closed')
    expect(db.kv.get(run, 'a')).toBe(1)
  })

  it('json.set of $.a[0] on a missing document creates the array, not an error about an object', () => {
    const db = open()
    const run = db.runs.begin()
    db.json.set(run, 'j', '$.a[0]', 1)
    expect(db.json.get(run, 'j')).toEqual({ a: [1] })
    db.json.set(run, 'k', '$.list[0].name', 'x')
    expect(db.json.get(run, 'k')).toEqual({ list: [{ name: 'x' }] })
    const err = expectError(() => db.json.set(run, 'm', '$.a[2]', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.message).toContain('past the end of the array')
  })
})

/** msgpackr's packer with the codec's former options: the bytes in-mem's own encoder must write. */
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, variableMapSize: true })

describe('values written into the I/O buffer', () => {
  it('Io.encodeValue and encode write exactly the bytes msgpackr packs, strings and bytes (written into the I/O buffer directly) and everything else', () => {
    const io = new Io()
    const values: unknown[] = [0, 'short', { a: [1, 'b'] }, new Uint8Array(3), Buffer.alloc(255, 7)]
    for (const n of [31, 32, 63, 64, 85, 86, 255, 256, 1000, 0xffff, 0x10000, 200_000]) {
      values.push('a'.repeat(n), 'é'.repeat(n), '漢'.repeat(n), '😀'.repeat(Math.ceil(n / 2)))
      values.push(Buffer.alloc(n, n & 0xff), new Uint8Array(n).fill(3), { n, text: 'é'.repeat(n), list: [n, 'y'] })
    }
    // Byte lengths around the 16-bit header's edge (written after the
    // larger header, then moved back), and strings whose worst case is more
    // than ONE_PASS_ROOM (counted first).
    values.push('x'.repeat(0xffff - 1) + 'é', 'x'.repeat(0xfffe) + 'é', 'x'.repeat(0xfffd) + 'é')
    values.push('a'.repeat(Math.ceil(ONE_PASS_ROOM / 3) + 1), 'é'.repeat(Math.ceil(ONE_PASS_ROOM / 3) + 1))
    for (const v of values) {
      const want = Buffer.from(packr.pack(v))
      const len = io.encodeValue(v)
      expect(len).toBe(want.length)
      expect(Buffer.compare(io.buf.subarray(IO_VALUE_OFFSET, IO_VALUE_OFFSET + len), want)).toBe(0)
      expect(Buffer.compare(Buffer.from(encode(v)), want)).toBe(0)
    }
  })

  it('encode writes the bytes msgpackr packs for 3,000 random storable values, which decode back equal', () => {
    let seed = 0x2545f491
    const rand = (): number => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) / 2 ** 32
    }
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
    const edges = [0, 1, 0x1f, 0x20, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 53 - 1]
    const numbers = [...edges, ...edges.map((x) => -x), -0x21, -0x20, -0x81, -0x80, -0x8001, -0x8000, -0x80000001, 0.5, -1.25, 1e300, -0, NaN, Infinity, -Infinity, Number.MIN_VALUE]
    const bigints = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 32n, -(2n ** 40n)]
    const chars = ['a', 'Z', ' ', '\u0000', 'é', 'ß', '߿', 'ࠀ', '漢', '\uffff', '😀', '𝄞', '\ud7ff', '\ue000']
    const str = (): string => {
      const n = pick([0, 1, 5, 20, 31, 32, 40, 63, 64, 100, 255, 256, 300])
      let s = ''
      while (s.length < n) s += pick(chars)
      return s
    }
    // Containers of up to 20 entries at the top, smaller further in.
    const size = (depth: number): number => (depth < 2 ? pick([0, 1, 15, 16, 17, 20]) : pick([0, 1, 2, 3]))
    const value = (depth: number): unknown => {
      const kind = depth > 3 ? Math.floor(rand() * 5) : Math.floor(rand() * 8)
      switch (kind) {
        case 0: return pick(numbers)
        case 1: return str()
        case 2: return pick([null, true, false, ...bigints])
        case 3: return rand() < 0.2 ? new Uint8Array(pick([0, 3, 256])) : Buffer.alloc(pick([0, 1, 255, 256, 300]), Math.floor(rand() * 256))
        case 4: return Math.floor(rand() * 1e9) - 5e8
        case 5: return Array.from({ length: size(depth) }, () => value(depth + 1))
        default: {
          const o: Record<string, unknown> = rand() < 0.2 ? Object.create(null) : {}
          for (let i = size(depth); i > 0; i--) o[str() + i] = value(depth + 1)
          return o
        }
      }
    }
    // What a value decodes as: -0 is written as 0 (as msgpackr writes it),
    // an object without a prototype comes back as a plain one, bytes as a Buffer.
    const decoded = (v: unknown): unknown => {
      if (Object.is(v, -0)) return 0
      if (v instanceof Uint8Array) return Buffer.from(v)
      if (Array.isArray(v)) return v.map(decoded)
      if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decoded(x)]))
      return v
    }
    for (let i = 0; i < 3000; i++) {
      const v = value(0)
      const got = Buffer.from(encode(v))
      expect(Buffer.compare(got, Buffer.from(packr.pack(v))), `value ${i}`).toBe(0)
      expect(decode(got), `value ${i}`).toEqual(decoded(v))
    }
  })

  it('a byte array whose length getter encodes another value is written whole (the other goes to a buffer of its own)', () => {
    class Noisy extends Uint8Array {
      override get length(): number {
        encode({ x: 'y'.repeat(300) })
        return super.length
      }
    }
    const io = new Io()
    const len = io.encodeValue(new Noisy([1, 2, 3]))
    expect(len).toBe(5)
    expect([...io.buf.subarray(IO_VALUE_OFFSET, IO_VALUE_OFFSET + len)]).toEqual([0xc4, 3, 1, 2, 3])
    expect([...encode([new Noisy([4, 5])])]).toEqual([0x91, 0xc4, 2, 4, 5])
  })

  it('a getter that writes through the same handle while its value is encoded: both values land whole', () => {
    const db = open()
    const run = db.runs.begin()
    const long = 'L'.repeat(100_000)
    const value = {
      a: 'x'.repeat(300),
      get b() {
        db.kv.put(run, 'from-getter', { inner: [1, 2, 3], s: 'é'.repeat(50) })
        db.kv.put(run, 'string-from-getter', long)
        return 2
      },
      c: [long, { d: 4 }],
    }
    db.kv.put(run, 'outer', value)
    expect(db.kv.get(run, 'outer')).toEqual({ a: 'x'.repeat(300), b: 2, c: [long, { d: 4 }] })
    expect(db.kv.get(run, 'from-getter')).toEqual({ inner: [1, 2, 3], s: 'é'.repeat(50) })
    expect(db.kv.get(run, 'string-from-getter')).toBe(long)
    // And through encode() alone: the outer bytes are msgpackr's.
    const plain = { a: 1, get b() { encode({ nested: 'y'.repeat(70_000) }); return 'b' }, c: 'z'.repeat(1000) }
    expect(Buffer.compare(Buffer.from(encode(plain)), Buffer.from(packr.pack({ a: 1, b: 'b', c: 'z'.repeat(1000) })))).toBe(0)
  })

  it('Io.encodeValue refuses what encode refuses, with the same errors, strings and bytes over the limit included', () => {
    const io = new Io()
    expect(() => io.encodeValue('a\ud800'.repeat(256))).toThrow(/lone surrogate/)
    expect(() => io.encodeValue('a\ud800')).toThrow(/lone surrogate/)
    expect(() => encode({ k: ['ok', 'x\udc00y'] })).toThrow(/the string at \$\.k\[1\] has a lone surrogate/)
    expect(() => io.encodeValue(undefined)).toThrow(/undefined at \$ cannot be stored/)
    const big = 'x'.repeat(16 * 1024 * 1024)
    expect(() => io.encodeValue(big)).toThrow(/value is 16777221 bytes encoded; the limit is 16777216 bytes/)
    expect(() => encode(big)).toThrow(/value is 16777221 bytes encoded; the limit is 16777216 bytes/)
    expect(() => io.encodeValue(Buffer.alloc(16 * 1024 * 1024))).toThrow(/value is 16777221 bytes encoded/)
    // Over the limit by a byte, refused before room is made for it: the
    // exact size of a value that is the string or bytes alone, a lower
    // bound of one that holds them.
    const over = 16 * 1024 * 1024 + 1
    expect(() => io.encodeValue(Buffer.alloc(over))).toThrow(/^value is 16777222 bytes encoded; the limit is 16777216 bytes/)
    expect(() => encode(Buffer.alloc(over))).toThrow(/^value is 16777222 bytes encoded/)
    expect(() => io.encodeValue('é'.repeat(over / 2 + 1))).toThrow(/^value is 16777223 bytes encoded/)
    expect(() => encode({ big: Buffer.alloc(over) })).toThrow(/^value is at least 16777227 bytes encoded/)
  })

  it('a value whose getter reads through the same handle is written whole, to the key it was put at', () => {
    const db = open()
    const run = db.runs.begin()
    const big = 'b'.repeat(200_000)
    db.kv.put(run, 'big', big)
    db.state.set(run, 'bigcell', big)
    const value = {
      a: 1,
      get b() {
        return (db.kv.get(run, 'big') as string).length + (db.state.get(run, 'bigcell')?.value as string).length
      },
    }
    db.kv.put(run, 'k', value)
    db.state.set(run, 'c', value)
    expect(db.kv.get(run, 'k')).toEqual({ a: 1, b: 400_000 })
    expect(db.state.get(run, 'c')?.value).toEqual({ a: 1, b: 400_000 })
    expect(db.kv.get(run, 'big')).toBe(big)
    expect(db.kv.list(run)).toEqual(['big', 'k'])
    expect(db.state.list(run).map((c) => c.name)).toEqual(['bigcell', 'c'])
  })
})

describe('decoding is the same wherever a value sits in a buffer', () => {
  it('a byte array on its own decodes as msgpackr decodes it, at every header size and offset, into a Buffer of its own', () => {
    const msgpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true })
    for (const n of [0, 1, 100, 255, 256, 4095, 65_535, 65_536, 70_000]) {
      const value = Buffer.alloc(n)
      for (let i = 0; i < n; i++) value[i] = (i * 7 + n) & 0xff
      const bytes = Buffer.from(encode(value))
      expect(bytes[0], `bin header for ${n} bytes`).toBe(n < 256 ? 0xc4 : n < 65_536 ? 0xc5 : 0xc6)
      for (const at of [0, 1, 139, 4096]) {
        const inBuffer = Buffer.alloc(at + bytes.length + 5, 0xee)
        bytes.copy(inBuffer, at)
        const got = decode(inBuffer, at, at + bytes.length) as Buffer
        const theirs = msgpackr.unpack(inBuffer.subarray(at, at + bytes.length)) as Buffer
        expect(Buffer.isBuffer(got)).toBe(true)
        expect(Buffer.compare(got, theirs), `${n} bytes at ${at}`).toBe(0)
        expect(Buffer.compare(got, value), `${n} bytes at ${at}`).toBe(0)
        // Its own copy: changing the source changes nothing in it.
        inBuffer.fill(0x55)
        expect(Buffer.compare(got, value), `${n} bytes at ${at}, source overwritten`).toBe(0)
      }
    }
    // A bin that is not the whole value is left to msgpackr: a bin in an
    // array, and a bin with bytes after it (refused, as msgpackr refuses it).
    const inArray = Buffer.from(encode([new Uint8Array([1, 2])]))
    expect(decode(inArray)).toEqual(msgpackr.unpack(inArray))
    const trailing = Buffer.concat([Buffer.from(encode(new Uint8Array([3]))), Buffer.from([0x01])])
    expect(() => msgpackr.unpack(trailing)).toThrow(/end of buffer not reached/)
    expect(() => decode(trailing)).toThrow(/end of buffer not reached/)
  })

  it('values of 1 to 400 bytes decode the same at offset 0 and further into a Buffer or a plain Uint8Array (small ones go through a scratch copy)', () => {
    const values: unknown[] = [
      0,
      'x',
      { role: 'assistant', step: 42, score: 0.875, done: false, tags: ['plan', 'tool'], text: 'The meeting moved to 3pm, room 4B.' },
      new Uint8Array([1, 2, 3]),
      [1, 'two', { three: [3n] }],
    ]
    for (let n = 1; n <= 400; n += 13) values.push({ text: 'é'.repeat(n), bytes: new Uint8Array(n).fill(n & 0xff) })
    for (const v of values) {
      const bytes = Buffer.from(encode(v))
      // What each kind of source gives at offset 0 (bytes values come back
      // as the source's class).
      const fromBuffer = decode(bytes)
      const fromPlain = decode(new Uint8Array(bytes))
      expect(new Uint8Array(encode(fromBuffer))).toEqual(new Uint8Array(bytes))
      for (const at of [1, 139, 4096]) {
        const inBuffer = Buffer.alloc(at + bytes.length + 7, 0xee)
        bytes.copy(inBuffer, at)
        const plain = new Uint8Array(inBuffer)
        expect(decode(inBuffer, at, at + bytes.length)).toEqual(fromBuffer)
        expect(decode(plain, at, at + bytes.length)).toEqual(fromPlain)
      }
    }
    // A bytes value decoded from the scratch copy is its own copy: a later decode does not change it.
    const at10 = (v: Uint8Array): Uint8Array => {
      const b = Buffer.from(encode(v))
      return decode(Buffer.concat([Buffer.alloc(10), b]), 10, 10 + b.length) as Uint8Array
    }
    const first = at10(new Uint8Array([9, 9, 9]))
    at10(new Uint8Array([1, 1, 1]))
    expect([...first]).toEqual([9, 9, 9])
  })
})
