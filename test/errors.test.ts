import { createRequire } from 'node:module'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ClosedError,
  ConflictError,
  Database,
  InMemError,
  InternalError,
  InvalidArgumentError,
  InvalidTransitionError,
  LimitError,
  MAX_DEPTH,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  NotFoundError,
  RunClosedError,
  type TxScope,
  type Value,
} from '../dist/index.js'
import { expectError, expectRejection, panicForTest, UNKNOWN_RUN } from './helpers.js'

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'errors' })
  db.kv.put(run, 'k', 'original')
  db.kv.put(run, 'other', 1)
})

afterEach(() => {
  db.close()
})

/** Everything a failed call must leave unchanged. */
function state(d: Database = db, r: string = run) {
  const s = d.stats()
  return { version: s.version, keys: s.keys, runs: s.runs, entries: d.kv.entries(r), runList: d.runs.list().map((i) => i.id) }
}

/** Expects `fn` to throw `cls`/`code` and to change nothing. */
function expectRejectedWrite<T extends InMemError>(fn: () => unknown, cls: abstract new (...a: never[]) => T, code: string): T {
  const before = state()
  const err = expectError(fn, cls, code)
  expect(state()).toStrictEqual(before)
  return err
}

class Custom {
  x = 1
}

function nest(levels: number): Value {
  let v: Value = 0
  for (let i = 0; i < levels; i++) v = [v]
  return v
}

const cyclicObject = (): Value => {
  const o: Record<string, unknown> = { a: 1 }
  o.self = o
  return o as Value
}
const cyclicArray = (): Value => {
  const a: unknown[] = [1]
  a.push([a])
  return a as Value
}

const badValues: [string, () => unknown, typeof InvalidArgumentError | typeof LimitError, string][] = [
  ['undefined', () => undefined, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a function', () => () => 1, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a symbol', () => Symbol('s'), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a Date', () => new Date(0), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a Map', () => new Map([['a', 1]]), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a Set', () => new Set([1]), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a RegExp', () => /x/, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a custom class instance', () => new Custom(), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a Float32Array', () => new Float32Array([1]), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['an ArrayBuffer', () => new ArrayBuffer(4), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a boxed string', () => new String('s'), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['undefined inside an object', () => ({ a: 1, b: undefined }), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['undefined inside an array', () => [1, undefined], InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a hole in a sparse array', () => [1, , 3], InvalidArgumentError, 'INVALID_ARGUMENT'], // eslint-disable-line no-sparse-arrays
  ['a function deep inside', () => ({ a: [{ b: { c: () => 1 } }] }), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a Date deep inside', () => ({ when: [new Date()] }), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a symbol-keyed property', () => ({ [Symbol('k')]: 1 }), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a "__proto__" own key', () => JSON.parse('{"__proto__": 1}'), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['an object cycle', cyclicObject, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['an array cycle', cyclicArray, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a bigint just above i64', () => 2n ** 63n, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a bigint just below i64', () => -(2n ** 63n) - 1n, InvalidArgumentError, 'INVALID_ARGUMENT'],
  ['a huge bigint inside an object', () => ({ n: 10n ** 30n }), InvalidArgumentError, 'INVALID_ARGUMENT'],
  [`nesting of ${MAX_DEPTH + 1} levels`, () => nest(MAX_DEPTH + 1), LimitError, 'LIMIT_EXCEEDED'],
  ['nesting of 10000 levels', () => nest(10_000), LimitError, 'LIMIT_EXCEEDED'],
]

describe('bad values are rejected and nothing is written', () => {
  for (const [name, make, cls, code] of badValues) {
    it(`${name}: ${cls.name} on db.kv.put, scope, tx.kv.put, putMany and run metadata`, () => {
      expectRejectedWrite(() => db.kv.put(run, 'k', make() as Value), cls, code)
      expectRejectedWrite(() => db.kv.put(run, 'fresh', make() as Value), cls, code)
      expectRejectedWrite(() => db.scope(run).kv.put('k', make() as Value), cls, code)
      expectRejectedWrite(() => db.kv.putMany(run, [['a', 1], ['b', make() as Value], ['c', 3]]), cls, code)
      expectRejectedWrite(
        () =>
          db.transaction(run, (tx) => {
            tx.kv.put('before', 1)
            tx.kv.put('k', make() as Value)
          }),
        cls,
        code,
      )
      expectRejectedWrite(() => db.transaction(run, (tx) => tx.kv.putMany({ a: 1, b: make() as Value })), cls, code)
      // (Run metadata left undefined means "no metadata", so it is not a bad value there.)
      if (name !== 'undefined') expectRejectedWrite(() => db.runs.begin({ name: 'meta', metadata: make() as Value }), cls, code)
      expect(db.kv.get(run, 'k')).toBe('original')
    })
  }

  it(`a value over ${MAX_VALUE_BYTES} bytes encoded is a LimitError; exactly the limit is accepted`, () => {
    const over = 'x'.repeat(MAX_VALUE_BYTES) // 16 MiB of characters + the string header
    const err = expectRejectedWrite(() => db.kv.put(run, 'k', over), LimitError, 'LIMIT_EXCEEDED')
    expect(err.details.limit).toBe(MAX_VALUE_BYTES)
    expectRejectedWrite(() => db.kv.putMany(run, [['small', 1], ['big', over]]), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.transaction(run, (tx) => tx.kv.put('big', over)), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.kv.put(run, 'k', [new Uint8Array(MAX_VALUE_BYTES)]), LimitError, 'LIMIT_EXCEEDED')

    // A str32 header is 5 bytes: this string encodes to exactly 16 MiB.
    const exact = 'y'.repeat(MAX_VALUE_BYTES - 5)
    db.kv.put(run, 'exact', exact)
    expect((db.kv.get(run, 'exact') as string).length).toBe(exact.length)
  })

  it('error messages name where the bad part is', () => {
    const err = expectError(() => db.kv.put(run, 'k', { a: [1, () => 2] } as unknown as Value), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(err.details.path).toBe('$.a[1]')
    expect(err.message).toContain('$.a[1]')
  })
})

describe('bad keys are rejected and nothing is written', () => {
  const badKeys: [string, unknown, typeof InvalidArgumentError | typeof LimitError, string][] = [
    ['an empty key', '', InvalidArgumentError, 'INVALID_ARGUMENT'],
    [`a key of ${MAX_KEY_BYTES + 1} ASCII bytes`, 'k'.repeat(MAX_KEY_BYTES + 1), LimitError, 'LIMIT_EXCEEDED'],
    ['a key of 513 two-byte characters (1026 bytes)', 'é'.repeat(513), LimitError, 'LIMIT_EXCEEDED'],
    ['a key of 342 three-byte characters (1026 bytes)', '中'.repeat(342), LimitError, 'LIMIT_EXCEEDED'],
    ['a key of 257 emoji (1028 bytes, 514 UTF-16 units)', '😀'.repeat(257), LimitError, 'LIMIT_EXCEEDED'],
    ['a key of 1023 ASCII bytes and one 2-byte character', 'a'.repeat(1023) + 'é', LimitError, 'LIMIT_EXCEEDED'],
    ['a key with NUL', 'a\u0000b', InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a key that is only NUL', '\u0000', InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a lone high surrogate', '\ud800', InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a lone low surrogate inside', 'a\udc00b', InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['surrogates in the wrong order', '\ude00\ud83d', InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a number', 42, InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['null', null, InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['undefined', undefined, InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a String object', new String('k'), InvalidArgumentError, 'INVALID_ARGUMENT'],
  ]

  for (const [name, key, cls, code] of badKeys) {
    it(`${name}: ${cls.name} on every KV method`, () => {
      const k = key as string
      expectRejectedWrite(() => db.kv.put(run, k, 1), cls, code)
      expectRejectedWrite(() => db.kv.putMany(run, [['fine', 1], [k, 2]]), cls, code)
      expectRejectedWrite(() => db.kv.delete(run, k), cls, code)
      expectRejectedWrite(() => db.kv.get(run, k), cls, code)
      expectRejectedWrite(() => db.kv.getVersioned(run, k), cls, code)
      expectRejectedWrite(() => db.kv.exists(run, k), cls, code)
      expectRejectedWrite(() => db.kv.getMany(run, ['k', k]), cls, code)
      expectRejectedWrite(() => db.scope(run).kv.put(k, 1), cls, code)
      expectRejectedWrite(() => db.transaction(run, (tx) => tx.kv.put(k, 1)), cls, code)
      expectRejectedWrite(() => db.transaction(run, (tx) => tx.kv.get(k)), cls, code)
      expectRejectedWrite(
        () =>
          db.transaction(run, (tx) => {
            tx.kv.put('fine', 1)
            tx.kv.delete(k)
          }),
        cls,
        code,
      )
    })
  }

  it('the largest keys are accepted: 1024 ASCII bytes, 512 two-byte characters, 256 emoji', () => {
    for (const key of ['k'.repeat(MAX_KEY_BYTES), 'é'.repeat(512), '😀'.repeat(256)]) {
      expect(Buffer.byteLength(key)).toBe(MAX_KEY_BYTES)
      db.kv.put(run, key, key.length)
      expect(db.kv.get(run, key)).toBe(key.length)
      expect(db.kv.list(run)).toContain(key)
    }
  })
})

describe('malformed putMany entries', () => {
  const bad: [string, unknown][] = [
    ['a string (would spread into one key per character)', 'abc'],
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a pair missing its value', [['a']]],
    ['a triple', [['a', 1, 2]]],
    ['a bare string entry', ['ab']],
    ['a good pair then a bad one', [['ok', 1], 'x']],
  ]
  for (const [name, entries] of bad) {
    it(`${name}: InvalidArgumentError on db.kv, scope and tx.kv, writing nothing`, () => {
      const e = entries as [string, Value][]
      expectRejectedWrite(() => db.kv.putMany(run, e), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.scope(run).kv.putMany(e), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.transaction(run, (tx) => tx.kv.putMany(e)), InvalidArgumentError, 'INVALID_ARGUMENT')
    })
  }
})

describe('bad run ids are rejected', () => {
  const badRuns: [string, unknown][] = [
    ['an empty string', ''],
    ['garbage', 'not-a-uuid'],
    ['a UUID one character short', UNKNOWN_RUN.slice(0, -1)],
    ['a UUID one character long', UNKNOWN_RUN + '0'],
    ['a UUID without dashes', UNKNOWN_RUN.replace(/-/g, '')],
    ['a UUID in braces', `{${UNKNOWN_RUN}}`],
    ['a UUID with a non-hex digit', UNKNOWN_RUN.replace(/.$/, 'g')],
    ['the reserved nil UUID', '00000000-0000-0000-0000-000000000000'],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', {}],
  ]
  for (const [name, bad] of badRuns) {
    it(`${name}: InvalidArgumentError everywhere a run is named`, () => {
      const r = bad as string
      const calls: [string, () => unknown][] = [
        ['kv.put', () => db.kv.put(r, 'k', 1)],
        ['kv.get', () => db.kv.get(r, 'k')],
        ['kv.delete', () => db.kv.delete(r, 'k')],
        ['kv.putMany', () => db.kv.putMany(r, [['k', 1]])],
        ['kv.list', () => db.kv.list(r)],
        ['kv.entries', () => db.kv.entries(r)],
        ['kv.count', () => db.kv.count(r)],
        ['scope', () => db.scope(r)],
        ['transaction', () => db.transaction(r, () => 1)],
        ['runs.get', () => db.runs.get(r)],
        ['runs.complete', () => db.runs.complete(r)],
        ['runs.children', () => db.runs.children(r)],
        ['runs.lineage', () => db.runs.lineage(r)],
        ['runs.begin parent', () => db.runs.begin({ parent: r === undefined ? 'undefined' : r })],
        ['runs.list parent', () => db.runs.list({ parent: r === undefined ? 'undefined' : r })],
        ['runs.list after', () => db.runs.list({ after: r === undefined ? 'undefined' : r })],
      ]
      for (const [, call] of calls) expectRejectedWrite(call, InvalidArgumentError, 'INVALID_ARGUMENT')
    })
  }

  it('transactionAsync with a bad run id rejects with InvalidArgumentError', async () => {
    await expectRejection(db.transactionAsync('nope', () => 1), InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})

describe('run names, tags and options over their limits', () => {
  it('a run name over 256 characters is a LimitError and creates no run', () => {
    expectRejectedWrite(() => db.runs.begin({ name: 'n'.repeat(257) }), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.runs.begin({ name: '😀'.repeat(257) }), LimitError, 'LIMIT_EXCEEDED')
  })

  it('a run name of exactly 256 characters is accepted, counted in characters not bytes', () => {
    for (const name of ['n'.repeat(256), '😀'.repeat(256), 'é'.repeat(256)]) {
      const r = db.runs.begin({ name })
      expect(db.runs.get(r)!.name).toBe(name)
    }
  })

  it('more than 64 tags or a tag over 256 characters is a LimitError; an empty tag is invalid', () => {
    expectRejectedWrite(() => db.runs.begin({ tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.runs.begin({ tags: ['t'.repeat(257)] }), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.runs.begin({ tags: [''] }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.runs.begin({ tags: ['a\u0000b'] }), InvalidArgumentError, 'INVALID_ARGUMENT')
    const ok = db.runs.begin({ tags: Array.from({ length: 64 }, (_, i) => `t${i}`) })
    expect(db.runs.get(ok)!.tags).toHaveLength(64)
  })

  it('malformed begin and list options are InvalidArgumentError', () => {
    expectRejectedWrite(() => db.runs.begin({ name: 5 as unknown as string }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.runs.begin({ tags: 'a' as unknown as string[] }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.runs.begin({ tags: [1] as unknown as string[] }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.runs.begin(null as unknown as object), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.runs.list({ status: 'running' as 'active' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.runs.list({ limit: -1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.runs.list({ tag: 3 as unknown as string }), InvalidArgumentError, 'INVALID_ARGUMENT')
  })

  it('bad open options are InvalidArgumentError', () => {
    expectError(() => Database.open(42 as unknown as string), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => Database.open({ durability: 'fast' as 'strict' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => Database.open({ durability: 'strict' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => Database.open({ durability: 'buffered' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => Database.open({ flushIntervalMs: -1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => Database.open({ purgeIntervalMs: 0 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => Database.open('', {}), InvalidArgumentError, 'INVALID_ARGUMENT')
  })

  it('bad transaction arguments are InvalidArgumentError', () => {
    expectRejectedWrite(() => db.transaction(run, 'fn' as unknown as () => void), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.transaction(run, () => 1, { retries: -1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.transaction(run, () => 1, { retries: 1.5 }), InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})

describe('writes to runs that are not active', () => {
  const closers: [string, (d: Database, r: string) => void, string][] = [
    ['completed', (d, r) => d.runs.complete(r), 'completed'],
    ['failed', (d, r) => d.runs.fail(r, new Error('x')), 'failed'],
    ['cancelled', (d, r) => d.runs.cancel(r), 'cancelled'],
    ['paused', (d, r) => d.runs.pause(r), 'paused'],
    [
      'archived',
      (d, r) => {
        d.runs.complete(r)
        d.runs.archive(r)
      },
      'archived',
    ],
  ]
  for (const [name, close, status] of closers) {
    it(`a run that is ${name} refuses every write with RunClosedError and keeps its data readable`, () => {
      close(db, run)
      expect(db.runs.get(run)!.status).toBe(status)
      const calls: (() => unknown)[] = [
        () => db.kv.put(run, 'k', 'changed'),
        () => db.kv.put(run, 'new', 1),
        () => db.kv.put(run, 'ttl', 1, { ttlMs: 1000 }),
        () => db.kv.putMany(run, [['a', 1], ['b', 2]]),
        () => db.kv.delete(run, 'k'),
        () => db.kv.delete(run, 'absent'),
        () => db.scope(run).kv.put('k', 2),
        () => db.transaction(run, (tx) => tx.kv.put('k', 3)),
        () => db.transaction(run, (tx) => tx.kv.delete('k')),
        () => db.transaction(run, (tx) => tx.kv.delete('absent')),
      ]
      for (const call of calls) {
        const err = expectRejectedWrite(call, RunClosedError, 'RUN_CLOSED')
        expect(err.details.run).toBe(run)
        expect(err.details.status).toBe(status)
      }
      expect(db.kv.get(run, 'k')).toBe('original')
      expect(db.kv.list(run)).toEqual(['k', 'other'])
      expect(db.transaction(run, (tx) => tx.kv.get('k'))).toBe('original')
    })
  }

  it('a transaction whose run is closed before it commits writes nothing', () => {
    const entries = db.kv.entries(run)
    let version = 0
    expectError(
      () =>
        db.transaction(run, (tx) => {
          tx.kv.put('k', 'in tx')
          tx.kv.put('new', 1)
          db.runs.complete(run)
          version = db.stats().version
        }),
      RunClosedError,
      'RUN_CLOSED',
    )
    expect(db.stats().version).toBe(version)
    expect(db.kv.entries(run)).toStrictEqual(entries)
  })

  it('a resumed run accepts writes again', () => {
    db.runs.pause(run)
    expectRejectedWrite(() => db.kv.put(run, 'k', 1), RunClosedError, 'RUN_CLOSED')
    db.runs.resume(run)
    db.kv.put(run, 'k', 'after resume')
    expect(db.kv.get(run, 'k')).toBe('after resume')
  })

  it('writes to a run that does not exist are NotFoundError and write nothing', () => {
    const calls: (() => unknown)[] = [
      () => db.kv.put(UNKNOWN_RUN, 'k', 1),
      () => db.kv.putMany(UNKNOWN_RUN, [['k', 1]]),
      () => db.kv.delete(UNKNOWN_RUN, 'k'),
      () => db.scope(UNKNOWN_RUN).kv.put('k', 1),
      () => db.transaction(UNKNOWN_RUN, (tx) => tx.kv.put('k', 1)),
      () => db.transaction(UNKNOWN_RUN, (tx) => tx.kv.delete('k')),
    ]
    for (const call of calls) {
      const err = expectRejectedWrite(call, NotFoundError, 'NOT_FOUND')
      expect(err.details.run).toBe(UNKNOWN_RUN)
    }
    expect(db.kv.count(UNKNOWN_RUN)).toBe(0)
    expect(db.kv.get(UNKNOWN_RUN, 'k')).toBeUndefined()
  })
})

describe('run status transitions', () => {
  type Action = 'complete' | 'fail' | 'cancel' | 'pause' | 'resume' | 'archive'
  const act = (r: string, a: Action) => (a === 'fail' ? db.runs.fail(r, 'why') : db.runs[a](r))
  const toStatus: Record<string, (r: string) => void> = {
    active: () => {},
    paused: (r) => db.runs.pause(r),
    completed: (r) => db.runs.complete(r),
    failed: (r) => db.runs.fail(r),
    cancelled: (r) => db.runs.cancel(r),
    archived: (r) => {
      db.runs.cancel(r)
      db.runs.archive(r)
    },
  }
  const allowed: Record<string, Action[]> = {
    active: ['complete', 'fail', 'cancel', 'pause'],
    paused: ['resume'],
    completed: ['archive'],
    failed: ['archive'],
    cancelled: ['archive'],
    archived: [],
  }
  const actions: Action[] = ['complete', 'fail', 'cancel', 'pause', 'resume', 'archive']
  for (const [from, ok] of Object.entries(allowed)) {
    const refused = actions.filter((a) => !ok.includes(a))
    it(`from ${from}: ${refused.join(', ')} ${refused.length === 1 ? 'is' : 'are'} InvalidTransitionError and change nothing`, () => {
      const r = db.runs.begin()
      toStatus[from](r)
      const before = db.runs.get(r)
      expect(before!.status).toBe(from)
      for (const a of refused) {
        const err = expectRejectedWrite(() => act(r, a), InvalidTransitionError, 'INVALID_TRANSITION')
        expect(err.details).toMatchObject({ run: r, from, action: a })
      }
      expect(db.runs.get(r)).toStrictEqual(before)
    })
  }

  it('a transition on a run that does not exist is NotFoundError', () => {
    for (const a of actions) expectRejectedWrite(() => act(UNKNOWN_RUN, a), NotFoundError, 'NOT_FOUND')
    expectError(() => db.runs.lineage(UNKNOWN_RUN), NotFoundError, 'NOT_FOUND')
  })

  it('an unknown parent is NotFoundError and creates no run', () => {
    const err = expectRejectedWrite(() => db.runs.begin({ name: 'orphan', parent: UNKNOWN_RUN }), NotFoundError, 'NOT_FOUND')
    expect(err.details.run).toBe(UNKNOWN_RUN)
  })
})

describe('a closed database', () => {
  it('throws ClosedError from every call; close twice is a no-op', async () => {
    const d = Database.open()
    const r = d.runs.begin()
    d.kv.put(r, 'k', 1)
    const scope = d.scope(r)
    expect(d.isOpen).toBe(true)
    d.close()
    expect(d.isOpen).toBe(false)
    d.close()
    const calls: (() => unknown)[] = [
      () => d.kv.put(r, 'k', 2),
      () => d.kv.get(r, 'k'),
      () => d.kv.getVersioned(r, 'k'),
      () => d.kv.delete(r, 'k'),
      () => d.kv.exists(r, 'k'),
      () => d.kv.getMany(r, ['k']),
      () => d.kv.putMany(r, [['k', 1]]),
      () => d.kv.list(r),
      () => d.kv.entries(r),
      () => d.kv.count(r),
      () => scope.kv.put('k', 3),
      () => scope.kv.get('k'),
      () => d.transaction(r, (tx) => tx.kv.get('k')),
      () => d.runs.begin(),
      () => d.runs.get(r),
      () => d.runs.list(),
      () => d.runs.complete(r),
      () => d.runs.children(r),
      () => d.runs.lineage(r),
      () => d.stats(),
    ]
    for (const call of calls) expectError(call, ClosedError, 'CLOSED')
    await expectRejection(d.flush(), ClosedError, 'CLOSED')
    await expectRejection(d.transactionAsync(r, () => 1), ClosedError, 'CLOSED')
    await expectRejection(
      d.withRun({}, async () => 1),
      ClosedError,
      'CLOSED',
    )
  })

  it('a transaction whose database closes inside the closure fails with ClosedError', () => {
    const d = Database.open()
    const r = d.runs.begin()
    expectError(
      () =>
        d.transaction(r, (tx) => {
          tx.kv.put('k', 1)
          d.close()
        }),
      ClosedError,
      'CLOSED',
    )
  })
})

describe('panics', () => {
  it('a Rust panic surfaces as InternalError and the database keeps working', () => {
    const before = state()
    const err = expectError(() => panicForTest(db), InternalError, 'INTERNAL')
    expect(err.message).toMatch(/panic/i)
    expect(state()).toStrictEqual(before)
    db.kv.put(run, 'after-panic', 'fine')
    expect(db.kv.get(run, 'after-panic')).toBe('fine')
    expectError(() => panicForTest(db), InternalError, 'INTERNAL')
    expect(db.transaction(run, (tx) => tx.kv.get('after-panic'))).toBe('fine')
  })

  it('a panic whose message does not mention "panic" is still an InternalError', () => {
    // What napi-rs hands JS for a caught panic: the payload as the message,
    // status GenericFailure. Engine errors always arrive as JSON.
    // The same module instance the package uses (a require, as dist/index.js does).
    const { translate } = createRequire(__filename)('../dist/errors.js') as { translate: (e: unknown) => unknown }
    const native = Object.assign(new Error('index out of bounds: the len is 3 but the index is 5'), { code: 'GenericFailure' })
    const err = translate(native)
    expect(err).toBeInstanceOf(InternalError)
    expect((err as InternalError).code).toBe('INTERNAL')
    expect((err as InternalError).message).toContain('index out of bounds')
  })
})

describe('transactions that fail', () => {
  it('a tx scope kept past its transaction throws InvalidArgumentError and writes nothing, also while a later transaction runs', async () => {
    let stale: TxScope | undefined
    db.transaction(run, (tx) => {
      stale = tx
      tx.kv.put('inside', 1)
    })
    const ended = /already finished/
    expect(expectError(() => stale!.kv.put('late', 1), InvalidArgumentError, 'INVALID_ARGUMENT').message).toMatch(ended)
    expectError(() => stale!.kv.get('inside'), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => stale!.events.append('late', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => stale!.state.set('late', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    // Later transactions (sync and async, which may run on the same native
    // transaction object) are untouched by the stale scope.
    db.transaction(run, (tx) => {
      expectError(() => stale!.kv.put('late', 2), InvalidArgumentError, 'INVALID_ARGUMENT')
      tx.kv.put('second', 2)
    })
    let staleAsync: TxScope | undefined
    await db.transactionAsync(run, async (tx) => {
      staleAsync = tx
      await Promise.resolve()
      expectError(() => stale!.json.set('doc', '$', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
      tx.kv.put('third', 3)
    })
    expectError(() => staleAsync!.kv.delete('third'), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(db.kv.get(run, 'late')).toBeUndefined()
    expect(db.events.length(run)).toBe(0)
    expect(db.state.get(run, 'late')).toBeUndefined()
    expect(db.json.get(run, 'doc')).toBeUndefined()
    expect(db.kv.entries(run, { prefix: 's' })).toStrictEqual([['second', 2]])
    expect(db.kv.get(run, 'third')).toBe(3)
    // A transaction that threw ends its scope the same way.
    let thrown: TxScope | undefined
    expect(() =>
      db.transaction(run, (tx) => {
        thrown = tx
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expectError(() => thrown!.kv.put('late', 3), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(db.kv.get(run, 'late')).toBeUndefined()
  })

  it('a closure that throws leaves nothing behind and its error is rethrown as is', () => {
    const before = state()
    const boom = new Error('boom')
    let caught: unknown
    try {
      db.transaction(run, (tx) => {
        tx.kv.put('k', 'changed')
        tx.kv.put('new', 1)
        tx.kv.delete('other')
        throw boom
      })
    } catch (e) {
      caught = e
    }
    expect(caught).toBe(boom)
    expect(state()).toStrictEqual(before)
  })

  it('a user error thrown in a closure is rethrown unchanged even when its message mentions a panic', async () => {
    const mine = new Error("don't panic")
    let caught: unknown
    try {
      db.transaction(run, () => {
        throw mine
      })
    } catch (e) {
      caught = e
    }
    expect(caught).toBe(mine)
    const coded = Object.assign(new Error('my own failure'), { code: 'InvalidArg' })
    try {
      db.transaction(run, () => {
        throw coded
      })
    } catch (e) {
      caught = e
    }
    expect(caught).toBe(coded)
    const rejected = await db.transactionAsync(run, async () => {
      throw mine
    }).catch((e: unknown) => e)
    expect(rejected).toBe(mine)
  })

  it('a thrown non-Error value is rethrown as is', () => {
    let caught: unknown
    try {
      db.transaction(run, () => {
        throw 'a string'
      })
    } catch (e) {
      caught = e
    }
    expect(caught).toBe('a string')
  })

  it('an async closure throwing rolls back', async () => {
    const before = state()
    await expect(
      db.transactionAsync(run, async (tx) => {
        tx.kv.put('k', 'changed')
        await Promise.resolve()
        throw new Error('late')
      }),
    ).rejects.toThrow('late')
    expect(state()).toStrictEqual(before)
  })

  it('a synchronous closure that returns a promise is InvalidArgumentError and writes nothing', () => {
    expectRejectedWrite(
      () =>
        // @ts-expect-error an async closure does not type-check either (test/types.ts)
        db.transaction(run, async (tx) => {
          tx.kv.put('k', 'changed')
        }),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    )
  })

  it('a read-then-outside-write conflict with retries 0 throws ConflictError and writes nothing', () => {
    let attempts = 0
    const err = expectError(
      () =>
        db.transaction(
          run,
          (tx) => {
            attempts++
            const v = tx.kv.get('k')
            db.kv.put(run, 'k', 'outside')
            tx.kv.put('derived', `${String(v)}!`)
          },
          { retries: 0 },
        ),
      ConflictError,
      'CONFLICT',
    )
    expect(attempts).toBe(1)
    expect(err.retryable).toBe(true)
    expect(err.details.key).toBe('k')
    expect(db.kv.get(run, 'k')).toBe('outside')
    expect(db.kv.exists(run, 'derived')).toBe(false)
  })

  it('a write-write conflict is a ConflictError too', () => {
    expectError(
      () =>
        db.transaction(
          run,
          (tx) => {
            tx.kv.put('k', 'from tx')
            db.kv.put(run, 'k', 'outside')
          },
          { retries: 0 },
        ),
      ConflictError,
      'CONFLICT',
    )
    expect(db.kv.get(run, 'k')).toBe('outside')
  })

  it('a new key inserted into a listed range conflicts (no phantoms)', () => {
    expectError(
      () =>
        db.transaction(
          run,
          (tx) => {
            const n = tx.kv.count({ prefix: 'item:' })
            db.kv.put(run, 'item:1', 'outside')
            tx.kv.put('item-count', n)
          },
          { retries: 0 },
        ),
      ConflictError,
      'CONFLICT',
    )
    expect(db.kv.exists(run, 'item-count')).toBe(false)
  })

  it('with retries >= 1 the closure re-runs on a fresh snapshot and commits', () => {
    let attempts = 0
    const result = db.transaction(
      run,
      (tx) => {
        attempts++
        const v = tx.kv.get('k')
        if (attempts === 1) db.kv.put(run, 'k', 'outside')
        tx.kv.put('derived', `${String(v)}!`)
        return attempts
      },
      { retries: 1 },
    )
    expect(result).toBe(2)
    expect(db.kv.get(run, 'derived')).toBe('outside!')
  })

  it('retries are counted: retries 2 gives up after three conflicting attempts', () => {
    let attempts = 0
    expectError(
      () =>
        db.transaction(
          run,
          (tx) => {
            attempts++
            tx.kv.get('k')
            db.kv.put(run, 'k', attempts)
            tx.kv.put('x', 1)
          },
          { retries: 2 },
        ),
      ConflictError,
      'CONFLICT',
    )
    expect(attempts).toBe(3)
    expect(db.kv.exists(run, 'x')).toBe(false)
  })

  it('transactionAsync rejects with ConflictError when retries are exhausted', async () => {
    await expectRejection(
      db.transactionAsync(
        run,
        async (tx) => {
          tx.kv.get('k')
          await Promise.resolve()
          db.kv.put(run, 'k', 'outside')
          tx.kv.put('x', 1)
        },
        { retries: 0 },
      ),
      ConflictError,
      'CONFLICT',
    )
    expect(db.kv.exists(run, 'x')).toBe(false)
  })

  it('transactionAsync re-runs a conflicting closure when retries allow', async () => {
    let attempts = 0
    const out = await db.transactionAsync(
      run,
      async (tx) => {
        attempts++
        const v = tx.kv.get('k')
        await Promise.resolve()
        if (attempts === 1) db.kv.put(run, 'k', 'outside')
        tx.kv.put('derived', `${String(v)}!`)
        return attempts
      },
      { retries: 1 },
    )
    expect(out).toBe(2)
    expect(db.kv.get(run, 'derived')).toBe('outside!')
  })

  it('a transaction scope used after its transaction ended throws and writes nothing', () => {
    let saved: Parameters<Parameters<Database['transaction']>[1]>[0] | undefined
    db.transaction(run, (tx) => {
      saved = tx
      tx.kv.put('inside', 1)
    })
    expectRejectedWrite(() => saved!.kv.put('late', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => saved!.kv.get('inside'), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(db.kv.exists(run, 'late')).toBe(false)
  })

  it('a read-only transaction never conflicts', () => {
    const got = db.transaction(
      run,
      (tx) => {
        const v = tx.kv.get('k')
        db.kv.put(run, 'k', 'outside')
        return v
      },
      { retries: 0 },
    )
    expect(got).toBe('original')
  })
})

describe('every error class', () => {
  it('extends InMemError and Error with a stable code', () => {
    const errs: [InMemError, string][] = [
      [new NotFoundError('m'), 'NOT_FOUND'],
      [new ConflictError('m'), 'CONFLICT'],
      [new InvalidArgumentError('m'), 'INVALID_ARGUMENT'],
      [new LimitError('m'), 'LIMIT_EXCEEDED'],
      [new RunClosedError('m'), 'RUN_CLOSED'],
      [new InvalidTransitionError('m'), 'INVALID_TRANSITION'],
      [new ClosedError(), 'CLOSED'],
      [new InternalError('m'), 'INTERNAL'],
    ]
    for (const [e, code] of errs) {
      expect(e).toBeInstanceOf(InMemError)
      expect(e).toBeInstanceOf(Error)
      expect(e.code).toBe(code)
      expect(e.details).toEqual({})
      expect(e.name).toBe(e.constructor.name)
    }
  })
})
