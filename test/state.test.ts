import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  AlreadyExistsError,
  ClosedError,
  ConflictError,
  Database,
  InMemError,
  InvalidArgumentError,
  LimitError,
  MAX_KEY_BYTES,
  NotFoundError,
  RunClosedError,
  type Value,
} from '../dist/index.js'
import { expectError, makeTmpDir, removeDir, UNKNOWN_RUN } from './helpers.js'
import { runWorker } from './worker-helpers.js'

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'state' })
})

afterEach(() => {
  db.close()
})

/** Everything a rejected write must leave unchanged. */
function snapshot(d: Database = db, r: string = run) {
  const s = d.stats()
  return { version: s.version, keys: s.keys, cells: d.state.list(r) }
}

function expectRejectedWrite<T extends InMemError>(fn: () => unknown, cls: abstract new (...a: never[]) => T, code: string): T {
  const before = snapshot()
  const err = expectError(fn, cls, code)
  expect(snapshot()).toStrictEqual(before)
  return err
}

describe('init and get', () => {
  it('init creates a cell at version 1; get returns value, version and write time', () => {
    const before = Date.now()
    expect(db.state.init(run, 'plan', { steps: ['a', 'b'], done: 0 })).toBe(1)
    const cell = db.state.get(run, 'plan')!
    expect(cell.value).toStrictEqual({ steps: ['a', 'b'], done: 0 })
    expect(cell.version).toBe(1)
    expect(Number.isInteger(cell.updatedAt)).toBe(true)
    expect(cell.updatedAt).toBeGreaterThanOrEqual(before - 1000)
    expect(cell.updatedAt).toBeLessThanOrEqual(Date.now() + 1000)
  })

  it('get of a cell that does not exist is undefined', () => {
    expect(db.state.get(run, 'nope')).toBeUndefined()
    expect(db.state.get(UNKNOWN_RUN, 'nope')).toBeUndefined()
  })

  it('init of an existing cell is AlreadyExistsError naming the cell and its version, and changes nothing', () => {
    db.state.init(run, 'c', 'first')
    db.state.set(run, 'c', 'second')
    const err = expectRejectedWrite(() => db.state.init(run, 'c', 'again'), AlreadyExistsError, 'ALREADY_EXISTS')
    expect(err.details).toMatchObject({ run, name: 'c', version: 2 })
    expect(err.message).toContain('"c"')
    expect(db.state.get(run, 'c')!.value).toBe('second')
  })

  it('values of every kind round-trip', () => {
    const values: Value[] = [null, true, 0, -1.5, 2 ** 40, 2n ** 62n, 'text ☕', [], {}, { nested: { list: [1, 'two', null] } }]
    values.forEach((v, i) => db.state.init(run, `v${i}`, v))
    values.forEach((v, i) => expect(db.state.get(run, `v${i}`)!.value).toStrictEqual(v))
    db.state.init(run, 'bytes', new Uint8Array([1, 2, 3]))
    const bytes = db.state.get(run, 'bytes')!.value
    expect(bytes).toBeInstanceOf(Uint8Array)
    expect([...(bytes as Uint8Array)]).toEqual([1, 2, 3])
  })

  it('cells are per run', () => {
    const other = db.runs.begin()
    db.state.init(run, 'shared-name', 'mine')
    expect(db.state.get(other, 'shared-name')).toBeUndefined()
    expect(db.state.init(other, 'shared-name', 'theirs')).toBe(1)
    expect(db.state.get(run, 'shared-name')!.value).toBe('mine')
  })
})

describe('set', () => {
  it('raises the version by 1 on every write and returns it; an absent cell starts at 1', () => {
    expect(db.state.set(run, 'n', 'a')).toBe(1)
    expect(db.state.set(run, 'n', 'b')).toBe(2)
    expect(db.state.set(run, 'n', 'b')).toBe(3) // the same value is still a write
    expect(db.state.get(run, 'n')).toMatchObject({ value: 'b', version: 3 })
    db.state.init(run, 'm', 0)
    expect(db.state.set(run, 'm', 1)).toBe(2)
  })

  it('each write is one commit', () => {
    const v = db.stats().version
    db.state.set(run, 'n', 1)
    db.state.set(run, 'n', 2)
    expect(db.stats().version).toBe(v + 2)
  })

  it('db.state.set (through the I/O buffer) answers as a transaction set does: versions past a delete, large values, and every refusal writes nothing', () => {
    // Versions continue past a delete, as in a transaction.
    db.state.set(run, 'd', 1)
    db.state.set(run, 'd', 2)
    db.state.delete(run, 'd')
    expect(db.state.set(run, 'd', 3)).toBe(3)
    expect(db.transaction(run, (tx) => tx.state.set('d', 4))).toBe(4)
    expect(db.state.get(run, 'd')).toMatchObject({ value: 4, version: 4 })
    // A value larger than the I/O buffer's first size.
    const big = 'v'.repeat(300_000)
    expect(db.state.set(run, 'big', big)).toBe(1)
    expect(db.state.get(run, 'big')?.value).toBe(big)
    // Refusals: nothing written, the same errors as inside a transaction.
    const done = db.runs.begin()
    db.runs.complete(done)
    expectRejectedWrite(() => db.state.set(run, '', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.state.set(run, 'a\u0000b', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.state.set(run, 'x'.repeat(MAX_KEY_BYTES + 1), 1), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.state.set(UNKNOWN_RUN, 'a', 1), NotFoundError, 'NOT_FOUND')
    expectError(() => db.state.set(done, 'a', 1), RunClosedError, 'RUN_CLOSED')
    expect(db.state.get(done, 'a')).toBeUndefined()
    expectRejectedWrite(() => db.state.set(run, 'u', undefined as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    db.close()
    expectError(() => db.state.set(run, 'a', 1), ClosedError, 'CLOSED')
    db = Database.open() // for afterEach
  })
})

describe('cas', () => {
  it('writes at the expected version: ok, with the new version', () => {
    db.state.init(run, 'c', 'v1')
    expect(db.state.cas(run, 'c', 1, 'v2')).toEqual({ ok: true, version: 2 })
    expect(db.state.cas(run, 'c', 2, 'v3')).toEqual({ ok: true, version: 3 })
    expect(db.state.get(run, 'c')).toMatchObject({ value: 'v3', version: 3 })
  })

  it('a mismatch answers at once with the current version and writes nothing', () => {
    db.state.init(run, 'c', 'v1')
    db.state.set(run, 'c', 'v2')
    const before = snapshot()
    expect(db.state.cas(run, 'c', 1, 'stale')).toEqual({ ok: false, version: 2 })
    expect(db.state.cas(run, 'c', 3, 'future')).toEqual({ ok: false, version: 2 })
    expect(snapshot()).toStrictEqual(before)
    // The answer is enough to try again: no retry loop was needed or hidden.
    expect(db.state.cas(run, 'c', 2, 'v3')).toEqual({ ok: true, version: 3 })
  })

  it('expectedVersion 0 means create-if-absent', () => {
    expect(db.state.cas(run, 'fresh', 0, 'created')).toEqual({ ok: true, version: 1 })
    expect(db.state.get(run, 'fresh')).toMatchObject({ value: 'created', version: 1 })
    const before = snapshot()
    expect(db.state.cas(run, 'fresh', 0, 'again')).toEqual({ ok: false, version: 1 })
    expect(snapshot()).toStrictEqual(before)
  })

  it('a non-zero expectedVersion on an absent cell answers version 0 and creates nothing', () => {
    const before = snapshot()
    expect(db.state.cas(run, 'absent', 1, 'x')).toEqual({ ok: false, version: 0 })
    expect(db.state.get(run, 'absent')).toBeUndefined()
    expect(snapshot()).toStrictEqual(before)
  })

  it('inside a transaction a mismatch answers at once and the closure runs once', () => {
    db.state.init(run, 'c', 1)
    let calls = 0
    const r = db.transaction(run, (tx) => {
      calls++
      return tx.state.cas('c', 5, 'nope')
    })
    expect(r).toEqual({ ok: false, version: 1 })
    expect(calls).toBe(1)
  })

  it('a cas whose version moved after the transaction read it is a ConflictError at commit, not a silent overwrite', () => {
    db.state.init(run, 'c', 'v1')
    expectError(
      () =>
        db.transaction(
          run,
          (tx) => {
            const r = tx.state.cas('c', 1, 'from tx')
            expect(r).toEqual({ ok: true, version: 2 })
            db.state.set(run, 'c', 'outside')
          },
          { retries: 0 },
        ),
      ConflictError,
      'CONFLICT',
    )
    expect(db.state.get(run, 'c')).toMatchObject({ value: 'outside', version: 2 })
  })
})

describe('transition', () => {
  it('calls fn with the current value and writes what it returns', () => {
    db.state.init(run, 'count', 41)
    const seen: unknown[] = []
    const r = db.state.transition<number>(run, 'count', (n) => {
      seen.push(n)
      return (n ?? 0) + 1
    })
    expect(r).toEqual({ value: 42, version: 2 })
    expect(seen).toEqual([41])
    expect(db.state.get(run, 'count')).toMatchObject({ value: 42, version: 2 })
  })

  it('an absent cell is passed as undefined and created at version 1', () => {
    const r = db.state.transition<string[]>(run, 'list', (cur) => {
      expect(cur).toBeUndefined()
      return ['first']
    })
    expect(r).toEqual({ value: ['first'], version: 1 })
  })

  it('re-runs fn on the newer value when another writer got in first', () => {
    db.state.init(run, 'count', 0)
    const seen: number[] = []
    const r = db.state.transition<number>(run, 'count', (n) => {
      seen.push(n!)
      if (seen.length === 1) db.state.set(run, 'count', 100)
      return n! + 1
    })
    expect(seen).toEqual([0, 100])
    expect(r).toEqual({ value: 101, version: 3 })
    expect(db.state.get(run, 'count')).toMatchObject({ value: 101, version: 3 })
  })

  it('an error thrown by fn passes through unchanged and nothing is written', () => {
    db.state.init(run, 'c', 1)
    const mine = new Error('mine')
    const before = snapshot()
    let thrown: unknown
    try {
      db.state.transition(run, 'c', () => {
        throw mine
      })
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBe(mine)
    expect(snapshot()).toStrictEqual(before)
  })

  it('fn returning something unstorable is InvalidArgumentError; fn that is not a function too', () => {
    db.state.init(run, 'c', 1)
    expectRejectedWrite(() => db.state.transition(run, 'c', () => undefined as unknown as Value), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.state.transition(run, 'c', () => new Date() as unknown as Value), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.state.transition(run, 'c', 'inc' as unknown as () => Value), InvalidArgumentError, 'INVALID_ARGUMENT')
  })

  it('inside a transaction it reads and writes the transaction, and commits with it', () => {
    db.state.init(run, 'c', 1)
    const v = db.stats().version
    db.transaction(run, (tx) => {
      expect(tx.state.transition<number>('c', (n) => n! + 1)).toEqual({ value: 2, version: 2 })
      expect(tx.state.transition<number>('c', (n) => n! * 10)).toEqual({ value: 20, version: 3 })
      expect(db.state.get(run, 'c')!.value).toBe(1)
    })
    expect(db.state.get(run, 'c')).toMatchObject({ value: 20, version: 3 })
    expect(db.stats().version).toBe(v + 1)
  })
})

describe('delete and list', () => {
  it('delete returns whether the cell existed; a re-created cell continues from its last version (no ABA)', () => {
    db.state.init(run, 'c', 'x')
    db.state.set(run, 'c', 'y')
    expect(db.state.delete(run, 'c')).toBe(true)
    expect(db.state.get(run, 'c')).toBeUndefined()
    expect(db.state.delete(run, 'c')).toBe(false)
    expect(db.state.delete(run, 'never')).toBe(false)
    expect(db.state.init(run, 'c', 'z')).toBe(3)
  })

  it('a delete of an absent cell commits nothing', () => {
    const before = snapshot()
    expect(db.state.delete(run, 'absent')).toBe(false)
    expect(snapshot()).toStrictEqual(before)
  })

  it('list returns every cell of the run in name order, with value, version and write time', () => {
    expect(db.state.list(run)).toEqual([])
    const other = db.runs.begin()
    db.state.init(other, 'elsewhere', 0)
    for (const name of ['b', 'a', 'é', 'z', 'A']) db.state.init(run, name, name)
    db.state.set(run, 'z', 'zz')
    db.state.delete(run, 'b')
    const list = db.state.list(run)
    expect(list.map((c) => c.name)).toEqual(['A', 'a', 'z', 'é'])
    expect(list.find((c) => c.name === 'z')).toMatchObject({ value: 'zz', version: 2 })
    for (const c of list) {
      expect(c).toStrictEqual({ name: c.name, ...db.state.get(run, c.name)! })
    }
  })

  it('list through a scope and inside a transaction sees the same, plus the transaction’s own writes', () => {
    db.state.init(run, 'a', 1)
    expect(db.scope(run).state.list().map((c) => c.name)).toEqual(['a'])
    db.transaction(run, (tx) => {
      tx.state.init('b', 2)
      tx.state.delete('a')
      expect(tx.state.list().map((c) => [c.name, c.value, c.version])).toEqual([['b', 2, 1]])
    })
    expect(db.state.list(run).map((c) => c.name)).toEqual(['b'])
  })
})

describe('run scopes and transactions', () => {
  it('every method works on a scope', () => {
    const s = db.scope(run).state
    expect(s.init('c', 0)).toBe(1)
    expect(s.set('c', 1)).toBe(2)
    expect(s.cas('c', 2, 2)).toEqual({ ok: true, version: 3 })
    expect(s.transition<number>('c', (n) => n! + 1)).toEqual({ value: 3, version: 4 })
    expect(s.get('c')).toMatchObject({ value: 3, version: 4 })
    expect(s.list().map((c) => c.name)).toEqual(['c'])
    expect(s.delete('c')).toBe(true)
    expect(s.get('c')).toBeUndefined()
  })

  it('a transaction sees its own writes with their versions; they become visible at commit', () => {
    db.transaction(run, (tx) => {
      expect(tx.state.init('c', 'a')).toBe(1)
      expect(tx.state.set('c', 'b')).toBe(2)
      expect(tx.state.cas('c', 2, 'c')).toEqual({ ok: true, version: 3 })
      expect(tx.state.get('c')).toMatchObject({ value: 'c', version: 3 })
      expect(db.state.get(run, 'c')).toBeUndefined()
    })
    expect(db.state.get(run, 'c')).toMatchObject({ value: 'c', version: 3 })
  })

  it('a transaction that throws leaves every cell as it was', () => {
    db.state.init(run, 'keep', 1)
    const before = snapshot()
    expect(() =>
      db.transaction(run, (tx) => {
        tx.state.set('keep', 2)
        tx.state.init('new', 1)
        tx.state.delete('keep')
        throw new Error('rollback')
      }),
    ).toThrow('rollback')
    expect(snapshot()).toStrictEqual(before)
  })
})

describe('bad input is rejected and nothing is written', () => {
  /** Every StateCell method, taking a cell name. */
  const byName: [string, (name: string) => unknown][] = [
    ['init', (n) => db.state.init(run, n, 1)],
    ['get', (n) => db.state.get(run, n)],
    ['set', (n) => db.state.set(run, n, 1)],
    ['cas', (n) => db.state.cas(run, n, 0, 1)],
    ['transition', (n) => db.state.transition(run, n, () => 1)],
    ['delete', (n) => db.state.delete(run, n)],
    ['tx.set', (n) => db.transaction(run, (tx) => tx.state.set(n, 1))],
  ]
  const badNames: [string, unknown, typeof InvalidArgumentError | typeof LimitError, string][] = [
    ['an empty name', '', InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a name with NUL', 'a\u0000b', InvalidArgumentError, 'INVALID_ARGUMENT'],
    [`a name over ${MAX_KEY_BYTES} bytes`, 'n'.repeat(MAX_KEY_BYTES + 1), LimitError, 'LIMIT_EXCEEDED'],
    [`a name of ${MAX_KEY_BYTES / 2 + 1} two-byte characters`, 'é'.repeat(MAX_KEY_BYTES / 2 + 1), LimitError, 'LIMIT_EXCEEDED'],
    ['a number', 5, InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['undefined', undefined, InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['null', null, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ]
  for (const [what, name, cls, code] of badNames) {
    it(`${what}: ${cls.name} on every method`, () => {
      for (const [, call] of byName) expectRejectedWrite(() => call(name as string), cls, code)
    })
  }

  it(`a name of exactly ${MAX_KEY_BYTES} bytes is accepted`, () => {
    const name = 'é'.repeat(MAX_KEY_BYTES / 2)
    expect(db.state.init(run, name, 1)).toBe(1)
    expect(db.state.list(run).map((c) => c.name)).toEqual([name])
  })

  it('an expectedVersion that is not a non-negative integer is InvalidArgumentError', () => {
    db.state.init(run, 'c', 1)
    for (const bad of [-1, 1.5, NaN, Infinity, -0.5, 2 ** 53, '1', null, undefined, 1n]) {
      expectRejectedWrite(() => db.state.cas(run, 'c', bad as number, 2), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.transaction(run, (tx) => tx.state.cas('c', bad as number, 2)), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
    expect(db.state.get(run, 'c')).toMatchObject({ value: 1, version: 1 })
  })

  it('unstorable values are rejected by init, set and cas', () => {
    db.state.init(run, 'c', 1)
    const deep = (n: number): Value => (n === 0 ? 0 : [deep(n - 1)])
    const bad: [unknown, typeof InvalidArgumentError | typeof LimitError, string][] = [
      [undefined, InvalidArgumentError, 'INVALID_ARGUMENT'],
      [() => 1, InvalidArgumentError, 'INVALID_ARGUMENT'],
      [new Map(), InvalidArgumentError, 'INVALID_ARGUMENT'],
      [2n ** 64n, InvalidArgumentError, 'INVALID_ARGUMENT'],
      [deep(129), LimitError, 'LIMIT_EXCEEDED'],
    ]
    for (const [v, cls, code] of bad) {
      expectRejectedWrite(() => db.state.init(run, 'new', v as Value), cls, code)
      expectRejectedWrite(() => db.state.set(run, 'c', v as Value), cls, code)
      expectRejectedWrite(() => db.state.cas(run, 'c', 1, v as Value), cls, code)
    }
  })

  it('a malformed run id is InvalidArgumentError on every method', () => {
    for (const bad of ['', 'not-a-uuid', UNKNOWN_RUN + '0', 7, null]) {
      const r = bad as string
      const calls: (() => unknown)[] = [
        () => db.state.init(r, 'c', 1),
        () => db.state.get(r, 'c'),
        () => db.state.set(r, 'c', 1),
        () => db.state.cas(r, 'c', 0, 1),
        () => db.state.transition(r, 'c', () => 1),
        () => db.state.delete(r, 'c'),
        () => db.state.list(r),
      ]
      for (const call of calls) expectRejectedWrite(call, InvalidArgumentError, 'INVALID_ARGUMENT')
    }
  })

  it('a write to a run that does not exist is NotFoundError', () => {
    const calls: (() => unknown)[] = [
      () => db.state.init(UNKNOWN_RUN, 'c', 1),
      () => db.state.set(UNKNOWN_RUN, 'c', 1),
      () => db.state.cas(UNKNOWN_RUN, 'c', 0, 1),
      () => db.state.transition(UNKNOWN_RUN, 'c', () => 1),
    ]
    for (const call of calls) {
      const err = expectRejectedWrite(call, NotFoundError, 'NOT_FOUND')
      expect(err.details.run).toBe(UNKNOWN_RUN)
    }
    expect(db.state.list(UNKNOWN_RUN)).toEqual([])
  })
})

describe('runs that are not active', () => {
  const closers: [string, (r: string) => void][] = [
    ['completed', (r) => db.runs.complete(r)],
    ['failed', (r) => db.runs.fail(r, 'why')],
    ['cancelled', (r) => db.runs.cancel(r)],
    ['paused', (r) => db.runs.pause(r)],
  ]
  for (const [status, close] of closers) {
    it(`a ${status} run refuses init, set, a matching cas, transition and delete with RunClosedError; its cells stay readable`, () => {
      db.state.init(run, 'c', 'kept')
      close(run)
      const calls: (() => unknown)[] = [
        () => db.state.init(run, 'new', 1),
        () => db.state.set(run, 'c', 'changed'),
        () => db.state.cas(run, 'c', 1, 'changed'),
        () => db.state.cas(run, 'new', 0, 'created'),
        () => db.state.transition(run, 'c', () => 'changed'),
        () => db.state.delete(run, 'c'),
        () => db.scope(run).state.set('c', 'changed'),
        () => db.transaction(run, (tx) => tx.state.set('c', 'changed')),
      ]
      for (const call of calls) {
        const err = expectRejectedWrite(call, RunClosedError, 'RUN_CLOSED')
        expect(err.details).toMatchObject({ run, status })
      }
      expect(db.state.get(run, 'c')).toMatchObject({ value: 'kept', version: 1 })
      expect(db.state.list(run).map((c) => c.name)).toEqual(['c'])
    })
  }
})

describe('state writes that would change nothing still refuse a closed or unknown run, as kv.delete does', () => {
  it('state.delete of an absent cell in a completed run is RunClosedError (kv.delete of an absent key is)', () => {
    db.runs.complete(run)
    expectRejectedWrite(() => db.kv.delete(run, 'absent'), RunClosedError, 'RUN_CLOSED')
    expectRejectedWrite(() => db.state.delete(run, 'absent'), RunClosedError, 'RUN_CLOSED')
    expectRejectedWrite(() => db.state.delete(UNKNOWN_RUN, 'absent'), NotFoundError, 'NOT_FOUND')
  })

  it('state.cas at a wrong version in a completed run is RunClosedError, not { ok: false }', () => {
    db.state.init(run, 'c', 1)
    db.runs.complete(run)
    expectRejectedWrite(() => db.state.cas(run, 'c', 7, 2), RunClosedError, 'RUN_CLOSED')
    expectRejectedWrite(() => db.state.cas(UNKNOWN_RUN, 'c', 7, 2), NotFoundError, 'NOT_FOUND')
  })
})

describe('a closed database', () => {
  it('every StateCell method is ClosedError', () => {
    db.state.init(run, 'c', 1)
    db.close()
    const calls: (() => unknown)[] = [
      () => db.state.init(run, 'd', 1),
      () => db.state.get(run, 'c'),
      () => db.state.set(run, 'c', 2),
      () => db.state.cas(run, 'c', 1, 2),
      () => db.state.transition(run, 'c', () => 2),
      () => db.state.delete(run, 'c'),
      () => db.state.list(run),
    ]
    for (const call of calls) expectError(call, ClosedError, 'CLOSED')
  })
})

describe('worker_threads sharing one cell', () => {
  let dir: string
  let d: Database
  let r: string

  beforeEach(() => {
    dir = makeTmpDir('in-mem-state')
    d = Database.open(dir, { durability: 'buffered' })
    r = d.runs.begin({ name: 'shared cells' })
  })

  afterEach(() => {
    d.close()
    removeDir(dir)
  })

  type Report = { id: number; calls: number; misses: number; staleAnswers: number; results: unknown[] }
  const start = (mode: string, workers: number, extra: Record<string, unknown>) => {
    const shared = new SharedArrayBuffer(4)
    return Promise.all(
      Array.from({ length: workers }, (_, id) => runWorker<Report>('state-worker.cjs', { path: dir, run: r, mode, id, workers, shared, ...extra }).result),
    )
  }

  it('4 workers each doing K transitions lose no update: value 4K, version 4K + 1, every version handed out once', async () => {
    const workers = 4
    const count = 100
    d.state.init(r, 'counter', 0)
    const reports = await start('transition', workers, { cell: 'counter', count })
    expect(d.state.get(r, 'counter')).toMatchObject({ value: workers * count, version: workers * count + 1 })
    const versions = reports.flatMap((x) => x.results as number[]).sort((a, b) => a - b)
    expect(versions).toEqual(Array.from({ length: workers * count }, (_, i) => i + 2))
    for (const rep of reports) {
      expect(rep.calls).toBeGreaterThanOrEqual(count)
      const mine = rep.results as number[]
      for (let i = 1; i < mine.length; i++) expect(mine[i]).toBeGreaterThan(mine[i - 1])
    }
  })

  it('4 workers incrementing with get/cas loops lose no update; every mismatch reports a newer version', async () => {
    const workers = 4
    const count = 100
    d.state.init(r, 'counter', 0)
    const reports = await start('cas', workers, { cell: 'counter', count })
    expect(d.state.get(r, 'counter')).toMatchObject({ value: workers * count, version: workers * count + 1 })
    const versions = reports.flatMap((x) => x.results as number[]).sort((a, b) => a - b)
    expect(versions).toEqual(Array.from({ length: workers * count }, (_, i) => i + 2))
    for (const rep of reports) expect(rep.staleAnswers).toBe(0)
  })

  it('of 4 workers doing one cas at the same expected version at once, exactly one wins', async () => {
    const workers = 4
    d.state.init(r, 'race', 'start')
    const reports = await start('cas-once', workers, { cell: 'race', expected: 1 })
    const results = reports.map((x) => x.results[0] as { ok: boolean; version: number })
    const winners = reports.filter((_, i) => results[i].ok)
    expect(winners).toHaveLength(1)
    for (const res of results) expect(res.version).toBe(2)
    expect(d.state.get(r, 'race')).toMatchObject({ value: { winner: winners[0].id }, version: 2 })
  })
})
