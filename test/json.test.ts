import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ClosedError,
  ConflictError,
  Database,
  InMemError,
  InvalidArgumentError,
  LimitError,
  MAX_DEPTH,
  MAX_KEY_BYTES,
  NotFoundError,
  RunClosedError,
  type Value,
} from '../dist/index.js'
import { expectError, expectRejection, makeTmpDir, removeDir, UNKNOWN_RUN } from './helpers.js'
import { runWorker } from './worker-helpers.js'

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'json' })
})

afterEach(() => {
  db.close()
})

/** Everything a rejected write must leave unchanged. */
function snapshot(d: Database = db, r: string = run) {
  const s = d.stats()
  return { version: s.version, keys: s.keys, doc: d.json.get(r, 'doc'), other: d.json.get(r, 'other') }
}

function expectRejectedWrite<T extends InMemError>(fn: () => unknown, cls: abstract new (...a: never[]) => T, code: string): T {
  const before = snapshot()
  const err = expectError(fn, cls, code)
  expect(snapshot()).toStrictEqual(before)
  return err
}

/** Arrays nested `levels` deep around 0: depth `levels`. */
function nest(levels: number): Value {
  let v: Value = 0
  for (let i = 0; i < levels; i++) v = [v]
  return v
}

describe('set and get', () => {
  it('$ sets and gets the whole document; get defaults to $', () => {
    db.json.set(run, 'doc', '$', { title: 'plan', steps: [1, 2] })
    expect(db.json.get(run, 'doc')).toStrictEqual({ title: 'plan', steps: [1, 2] })
    expect(db.json.get(run, 'doc', '$')).toStrictEqual({ title: 'plan', steps: [1, 2] })
    db.json.set(run, 'doc', '$', 'now a string')
    expect(db.json.get(run, 'doc')).toBe('now a string')
  })

  it('get of a missing document or path is undefined; a stored null is null', () => {
    expect(db.json.get(run, 'missing')).toBeUndefined()
    expect(db.json.get(run, 'missing', '$.a')).toBeUndefined()
    db.json.set(run, 'doc', '$', { a: { b: 1 }, n: null, list: [0] })
    expect(db.json.get(run, 'doc', '$.x')).toBeUndefined()
    expect(db.json.get(run, 'doc', '$.a.c')).toBeUndefined()
    expect(db.json.get(run, 'doc', '$.a.b.c')).toBeUndefined()
    expect(db.json.get(run, 'doc', '$.list[1]')).toBeUndefined()
    expect(db.json.get(run, 'doc', '$.a[0]')).toBeUndefined()
    expect(db.json.get(run, 'doc', '$.n')).toBeNull()
  })

  it('$.a.b creates missing intermediate objects and keeps siblings in key order', () => {
    db.json.set(run, 'doc', '$.a.b', 1)
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: { b: 1 } })
    db.json.set(run, 'doc', '$.a.c.d.e', 'deep')
    db.json.set(run, 'doc', '$.z', true)
    db.json.set(run, 'doc', '$.a.b', 2)
    const doc = db.json.get(run, 'doc') as Record<string, Record<string, unknown>>
    expect(doc).toStrictEqual({ a: { b: 2, c: { d: { e: 'deep' } } }, z: true })
    expect(Object.keys(doc)).toEqual(['a', 'z'])
    expect(Object.keys(doc.a)).toEqual(['b', 'c'])
    expect(db.json.get(run, 'doc', '$.a.c')).toStrictEqual({ d: { e: 'deep' } })
  })

  it('$.a[0] addresses array elements; the index one past the end appends', () => {
    db.json.set(run, 'doc', '$', { a: ['x', 'y'] })
    db.json.set(run, 'doc', '$.a[0]', 'X')
    db.json.set(run, 'doc', '$.a[2]', { z: 1 })
    db.json.set(run, 'doc', '$.a[2].w', 2)
    expect(db.json.get(run, 'doc', '$.a')).toStrictEqual(['X', 'y', { z: 1, w: 2 }])
    expect(db.json.get(run, 'doc', '$.a[1]')).toBe('y')
    expect(db.json.get(run, 'doc', '$.a[2].z')).toBe(1)
  })

  it('$["odd key"] and quoted keys with escapes address any key', () => {
    db.json.set(run, 'doc', '$["odd key"]', 1)
    db.json.set(run, 'doc', "$['single quoted']", 2)
    db.json.set(run, 'doc', '$["with \\"quotes\\" and \\\\"]', 3)
    db.json.set(run, 'doc', '$["\\u0041"]', 4)
    db.json.set(run, 'doc', '$["a.b"]["[0]"]', 5)
    db.json.set(run, 'doc', '$.café', 6)
    db.json.set(run, 'doc', '$[""]', 7)
    expect(db.json.get(run, 'doc')).toStrictEqual({
      'odd key': 1,
      'single quoted': 2,
      'with "quotes" and \\': 3,
      A: 4,
      'a.b': { '[0]': 5 },
      café: 6,
      '': 7,
    })
    expect(db.json.get(run, 'doc', '$.A')).toBe(4)
    expect(db.json.get(run, 'doc', '$["odd key"]')).toBe(1)
  })

  it('values of every kind round-trip at a path', () => {
    const v = { big: -(2n ** 63n), f: 1.25, bytes: new Uint8Array([7, 8]), nested: [null, true, { s: 'x' }] }
    db.json.set(run, 'doc', '$.v', v)
    const got = db.json.get(run, 'doc', '$.v') as typeof v
    expect(got.big).toBe(-(2n ** 63n))
    expect(got.f).toBe(1.25)
    expect([...got.bytes]).toEqual([7, 8])
    expect(got.nested).toStrictEqual([null, true, { s: 'x' }])
  })

  it('each set is one commit; documents are per run', () => {
    const v = db.stats().version
    db.json.set(run, 'doc', '$.a', 1)
    db.json.set(run, 'doc', '$.b', 2)
    expect(db.stats().version).toBe(v + 2)
    const other = db.runs.begin()
    expect(db.json.get(other, 'doc')).toBeUndefined()
  })
})

describe('setting through something that is not a container', () => {
  const cases: [string, Value, string, RegExp][] = [
    ['a number', { a: 5 }, '$.a.b', /\$\.a\.b.*\$\.a is a number, not an object/],
    ['a string', { a: 'text' }, '$.a.b.c', /\$\.a\.b\.c.*\$\.a is a string, not an object/],
    ['null', { a: null }, '$.a.b', /\$\.a is null, not an object/],
    ['an array, by key', { a: [1] }, '$.a.b', /\$\.a is an array, not an object/],
    ['an object, by index', { a: { b: 1 } }, '$.a[0]', /\$\.a is an object, not an array/],
    ['an index past the end', { a: [1] }, '$.a[2]', /\$\.a\[2\].*past the end.*\$\.a.*length 1/],
    // A missing array is created from index 0 (issue 19); a later index is past its end.
    ['a missing array, by an index past 0', {}, '$.a[2]', /\$\.a\[2\].*past the end.*\$\.a.*length 0/],
  ]
  for (const [what, doc, path, message] of cases) {
    it(`${what} (${path}) is InvalidArgumentError naming the path; nothing is written`, () => {
      db.json.set(run, 'doc', '$', doc)
      const err = expectRejectedWrite(() => db.json.set(run, 'doc', path, 1), InvalidArgumentError, 'INVALID_ARGUMENT')
      expect(err.message).toMatch(message)
      expectRejectedWrite(() => db.json.merge(run, 'doc', path, { x: 1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.transaction(run, (tx) => tx.json.set('doc', path, 1)), InvalidArgumentError, 'INVALID_ARGUMENT')
    })
  }

  it('inside a transaction the error surfaces at the call, and the transaction can go on', () => {
    db.json.set(run, 'doc', '$', { a: 5 })
    db.transaction(run, (tx) => {
      expectError(() => tx.json.set('doc', '$.a.b', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
      tx.json.set('doc', '$.c', 2)
    })
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: 5, c: 2 })
  })
})

describe('delete', () => {
  it('removes the value at a path and reports whether there was one', () => {
    db.json.set(run, 'doc', '$', { a: { b: 1, c: 2 }, list: ['x', 'y', 'z'] })
    expect(db.json.delete(run, 'doc', '$.a.b')).toBe(true)
    expect(db.json.delete(run, 'doc', '$.a.b')).toBe(false)
    expect(db.json.delete(run, 'doc', '$.nope.deeper')).toBe(false)
    expect(db.json.delete(run, 'doc', '$.a.c.through_a_number')).toBe(false)
    expect(db.json.delete(run, 'doc', '$.list[1]')).toBe(true)
    expect(db.json.delete(run, 'doc', '$.list[5]')).toBe(false)
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: { c: 2 }, list: ['x', 'z'] })
  })

  it('$ removes the whole document', () => {
    db.json.set(run, 'doc', '$.a', 1)
    expect(db.json.delete(run, 'doc', '$')).toBe(true)
    expect(db.json.get(run, 'doc')).toBeUndefined()
    expect(db.json.delete(run, 'doc', '$')).toBe(false)
    expect(db.json.delete(run, 'never', '$.a')).toBe(false)
  })
})

describe('merge is RFC 7386', () => {
  // The examples of RFC 7386, appendix A.
  const rfc: [Value, Value, Value][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ]
  for (const [target, patch, result] of rfc) {
    it(`${JSON.stringify(target)} merged with ${JSON.stringify(patch)} is ${JSON.stringify(result)}`, () => {
      db.json.set(run, 'doc', '$', target)
      db.json.merge(run, 'doc', '$', patch)
      expect(db.json.get(run, 'doc')).toStrictEqual(result)
      // The same at a path inside a document.
      db.json.set(run, 'other', '$', { keep: 1, at: target })
      db.json.merge(run, 'other', '$.at', patch)
      expect(db.json.get(run, 'other')).toStrictEqual({ keep: 1, at: result })
    })
  }

  it('existing keys keep their place, new keys are appended', () => {
    db.json.set(run, 'doc', '$', { a: 1, b: 2, c: 3 })
    db.json.merge(run, 'doc', '$', { b: 20, d: 4, a: null })
    const doc = db.json.get(run, 'doc') as Record<string, number>
    expect(Object.keys(doc)).toEqual(['b', 'c', 'd'])
    expect(doc).toStrictEqual({ b: 20, c: 3, d: 4 })
  })

  it('merging into a missing document or path creates it', () => {
    db.json.merge(run, 'doc', '$', { a: { b: 1, gone: null } })
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: { b: 1 } })
    db.json.merge(run, 'doc', '$.x.y', { z: 1 })
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: { b: 1 }, x: { y: { z: 1 } } })
  })
})

describe('bad paths and arguments', () => {
  const badPaths: [string, number][] = [
    ['', 0],
    ['a.b', 0],
    ['.a', 0],
    ['$.', 2],
    ['$.a..b', 4],
    ['$.a b', 3],
    ['$a', 1],
    ['$[x]', 2],
    ['$[]', 2],
    ['$[1', 3],
    ['$[-1]', 2],
    ['$["a', 4],
    ['$["a"', 5],
    ['$["a"x]', 5],
    ['$["\\q"]', 3],
    ['$["\\u12"]', 3],
    ['$.a[0]]', 6],
  ]
  for (const [path, position] of badPaths) {
    it(`${JSON.stringify(path)} is InvalidArgumentError at position ${position} on every method`, () => {
      db.json.set(run, 'doc', '$', { a: { b: [1] } })
      const calls: (() => unknown)[] = [
        () => db.json.get(run, 'doc', path),
        () => db.json.set(run, 'doc', path, 1),
        () => db.json.delete(run, 'doc', path),
        () => db.json.merge(run, 'doc', path, { x: 1 }),
        () => db.transaction(run, (tx) => tx.json.set('doc', path, 1)),
      ]
      for (const call of calls) {
        const err = expectRejectedWrite(call, InvalidArgumentError, 'INVALID_ARGUMENT')
        expect(err.message).toContain(`position ${position}`)
        expect(err.message).toContain(JSON.stringify(path))
      }
    })
  }

  it('a path or document id that is not a string is InvalidArgumentError', () => {
    for (const bad of [undefined, null, 5, ['$']] as unknown[]) {
      expectRejectedWrite(() => db.json.set(run, 'doc', bad as string, 1), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.json.set(run, bad as string, '$', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.json.get(run, bad as string), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.json.delete(run, 'doc', bad as string), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
  })

  it(`a document id that is empty, has NUL or is over ${MAX_KEY_BYTES} bytes is rejected`, () => {
    expectRejectedWrite(() => db.json.set(run, '', '$', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.json.set(run, 'a\u0000b', '$', 1), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(() => db.json.set(run, 'd'.repeat(MAX_KEY_BYTES + 1), '$', 1), LimitError, 'LIMIT_EXCEEDED')
    db.json.set(run, 'd'.repeat(MAX_KEY_BYTES), '$', 1)
    expect(db.json.get(run, 'd'.repeat(MAX_KEY_BYTES))).toBe(1)
  })

  it('unstorable values and patches are rejected', () => {
    for (const bad of [undefined, () => 1, new Date(), 2n ** 64n]) {
      expectRejectedWrite(() => db.json.set(run, 'doc', '$.a', bad as Value), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(() => db.json.merge(run, 'doc', '$', { a: bad } as Value), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
  })

  it('a malformed run id is InvalidArgumentError on every method', () => {
    for (const bad of ['', 'not-a-uuid', 12, null]) {
      const r = bad as string
      const calls: (() => unknown)[] = [
        () => db.json.set(r, 'doc', '$', 1),
        () => db.json.get(r, 'doc'),
        () => db.json.delete(r, 'doc', '$'),
        () => db.json.merge(r, 'doc', '$', {}),
      ]
      for (const call of calls) expectRejectedWrite(call, InvalidArgumentError, 'INVALID_ARGUMENT')
    }
  })

  it('a write to a run that does not exist is NotFoundError', () => {
    for (const call of [
      () => db.json.set(UNKNOWN_RUN, 'doc', '$', 1),
      () => db.json.merge(UNKNOWN_RUN, 'doc', '$', { a: 1 }),
      () => db.json.delete(UNKNOWN_RUN, 'doc', '$'),
    ]) {
      const err = expectRejectedWrite(call, NotFoundError, 'NOT_FOUND')
      expect(err.details.run).toBe(UNKNOWN_RUN)
    }
    expect(db.json.get(UNKNOWN_RUN, 'doc')).toBeUndefined()
  })
})

describe('limits', () => {
  it(`a document nesting deeper than ${MAX_DEPTH} is LimitError, even when each value is within the limit; nothing is written`, () => {
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
    const path = '$.' + keys.join('.')
    // 50 objects on the path, then the value's own levels.
    const err = expectRejectedWrite(() => db.json.set(run, 'doc', path, nest(MAX_DEPTH - 50 + 1)), LimitError, 'LIMIT_EXCEEDED')
    expect(err.message).toContain(String(MAX_DEPTH))
    expectRejectedWrite(() => db.json.merge(run, 'doc', path, nest(MAX_DEPTH - 50 + 1)), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.transaction(run, (tx) => tx.json.set('doc', path, nest(MAX_DEPTH - 50 + 1))), LimitError, 'LIMIT_EXCEEDED')
    db.json.set(run, 'doc', path, nest(MAX_DEPTH - 50))
    expect(db.json.get(run, 'doc', path)).toStrictEqual(nest(MAX_DEPTH - 50))
    // One more level at the bottom is refused: the innermost 0 becomes an object.
    expectRejectedWrite(() => db.json.set(run, 'doc', path + '[0]'.repeat(MAX_DEPTH - 50), { x: 1 }), LimitError, 'LIMIT_EXCEEDED')
  })

  it(`a value nested deeper than ${MAX_DEPTH} is LimitError`, () => {
    expectRejectedWrite(() => db.json.set(run, 'doc', '$', nest(MAX_DEPTH + 1)), LimitError, 'LIMIT_EXCEEDED')
    db.json.set(run, 'doc', '$', nest(MAX_DEPTH))
    expect(db.json.get(run, 'doc')).toStrictEqual(nest(MAX_DEPTH))
  })

  it(`a path of more than ${MAX_DEPTH} segments is LimitError; ${MAX_DEPTH} is accepted`, () => {
    const path = (n: number) => '$' + '.a'.repeat(n)
    expectRejectedWrite(() => db.json.set(run, 'doc', path(MAX_DEPTH + 1), 1), LimitError, 'LIMIT_EXCEEDED')
    expectRejectedWrite(() => db.json.get(run, 'doc', path(MAX_DEPTH + 1)), LimitError, 'LIMIT_EXCEEDED')
    db.json.set(run, 'doc', path(MAX_DEPTH), 1)
    expect(db.json.get(run, 'doc', path(MAX_DEPTH))).toBe(1)
  })

  it('a document growing past 16 MiB is LimitError; nothing is written', () => {
    const nine = 9 * 1024 * 1024
    db.json.set(run, 'doc', '$.a', 'a'.repeat(nine))
    const err = expectRejectedWrite(() => db.json.set(run, 'doc', '$.b', 'b'.repeat(nine)), LimitError, 'LIMIT_EXCEEDED')
    expect(err.message).toMatch(/16 MiB/)
    expect(db.json.get(run, 'doc', '$.b')).toBeUndefined()
    expect((db.json.get(run, 'doc', '$.a') as string).length).toBe(nine)
  })
})

describe('runs that are not active, and a closed database', () => {
  it('a completed run refuses set, delete and merge with RunClosedError; its documents stay readable', () => {
    db.json.set(run, 'doc', '$', { a: 1 })
    db.runs.complete(run)
    const calls: (() => unknown)[] = [
      () => db.json.set(run, 'doc', '$.a', 2),
      () => db.json.merge(run, 'doc', '$', { b: 1 }),
      () => db.json.delete(run, 'doc', '$.a'),
      () => db.json.delete(run, 'doc', '$.absent'),
      () => db.json.set(run, 'new', '$', 1),
      () => db.scope(run).json.set('doc', '$.a', 2),
      () => db.transaction(run, (tx) => tx.json.set('doc', '$.a', 2)),
    ]
    for (const call of calls) {
      const err = expectRejectedWrite(call, RunClosedError, 'RUN_CLOSED')
      expect(err.details).toMatchObject({ run, status: 'completed' })
    }
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: 1 })
  })

  it('every method on a closed database is ClosedError', () => {
    db.close()
    for (const call of [
      () => db.json.set(run, 'doc', '$', 1),
      () => db.json.get(run, 'doc'),
      () => db.json.delete(run, 'doc', '$'),
      () => db.json.merge(run, 'doc', '$', {}),
    ]) {
      expectError(call, ClosedError, 'CLOSED')
    }
  })
})

describe('run scopes and transactions', () => {
  it('every method works on a scope', () => {
    const j = db.scope(run).json
    j.set('doc', '$.a', { b: 1 })
    j.merge('doc', '$.a', { c: 2 })
    expect(j.get('doc')).toStrictEqual({ a: { b: 1, c: 2 } })
    expect(j.get('doc', '$.a.c')).toBe(2)
    expect(j.delete('doc', '$.a.b')).toBe(true)
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: { c: 2 } })
  })

  it('a transaction reads its own writes; they become visible together at commit', () => {
    db.json.set(run, 'doc', '$', { n: 0 })
    const v = db.stats().version
    db.transaction(run, (tx) => {
      tx.json.set('doc', '$.n', 1)
      tx.json.merge('doc', '$', { m: 2 })
      tx.json.set('other', '$.x', 'y')
      expect(tx.json.get('doc')).toStrictEqual({ n: 1, m: 2 })
      expect(tx.json.delete('doc', '$.m')).toBe(true)
      expect(tx.json.get('doc', '$.m')).toBeUndefined()
      expect(db.json.get(run, 'doc')).toStrictEqual({ n: 0 })
      expect(db.json.get(run, 'other')).toBeUndefined()
    })
    expect(db.json.get(run, 'doc')).toStrictEqual({ n: 1 })
    expect(db.json.get(run, 'other')).toStrictEqual({ x: 'y' })
    expect(db.stats().version).toBe(v + 1)
  })

  it('a transaction that throws leaves every document as it was', () => {
    db.json.set(run, 'doc', '$', { keep: true })
    const before = snapshot()
    expect(() =>
      db.transaction(run, (tx) => {
        tx.json.set('doc', '$.keep', false)
        tx.json.delete('doc', '$')
        tx.json.set('other', '$', 1)
        throw new Error('rollback')
      }),
    ).toThrow('rollback')
    expect(snapshot()).toStrictEqual(before)
  })
})

/** A barrier for `parties` async closures in one thread. */
function asyncBarrier(parties: number): () => Promise<void> {
  let arrived = 0
  let release!: () => void
  const all = new Promise<void>((r) => (release = r))
  return () => {
    if (++arrived === parties) release()
    return all
  }
}

// A document of 4 KB or more takes a one-path set as a splice of its stored
// bytes at commit (changed in place when nobody else holds them): the same
// conflicts, the same results.
for (const size of ['small', 'large'] as const) {
describe(`path-level conflicts between transactions that both began before either committed (${size} document)`, () => {
  const pad = size === 'large' ? { pad: 'p'.repeat(12_000) } : {}
  beforeEach(() => {
    db.json.set(run, 'doc', '$', { a: { b: 0, c: 0 }, left: {}, right: {}, list: [0, 0], ...pad })
  })

  /**
   * Runs two transactionAsync closures that each write their paths, wait
   * until both have written, then commit in order: `first`, then `second`
   * (which waits for the first's commit). Both use retries: 0.
   */
  async function interleave(first: (tx: Parameters<Parameters<Database['transaction']>[1]>[0]) => void, second: typeof first) {
    const bothBegun = asyncBarrier(2)
    const a = db.transactionAsync(
      run,
      async (tx) => {
        first(tx)
        await bothBegun()
      },
      { retries: 0 },
    )
    const b = db.transactionAsync(
      run,
      async (tx) => {
        second(tx)
        await bothBegun()
        await a.catch(() => undefined)
      },
      { retries: 0 },
    )
    return Promise.allSettled([a, b])
  }

  const disjoint: [string, string][] = [
    ['$.left.x', '$.right.y'],
    ['$.a.b', '$.a.c'],
    ['$.list[0]', '$.list[1]'],
    ['$.fresh.p', '$.fresh.q'], // both create the same missing intermediate object
  ]
  for (const [p, q] of disjoint) {
    it(`disjoint paths ${p} and ${q}: both commit and the document holds both changes`, async () => {
      const [a, b] = await interleave(
        (tx) => tx.json.set('doc', p, 'A'),
        (tx) => tx.json.set('doc', q, 'B'),
      )
      expect(a.status).toBe('fulfilled')
      expect(b.status).toBe('fulfilled')
      expect(db.json.get(run, 'doc', p)).toBe('A')
      expect(db.json.get(run, 'doc', q)).toBe('B')
    })
  }

  it('disjoint merge and delete both commit too', async () => {
    const [a, b] = await interleave(
      (tx) => tx.json.merge('doc', '$.left', { m: 1 }),
      (tx) => tx.json.delete('doc', '$.right'),
    )
    expect([a.status, b.status]).toEqual(['fulfilled', 'fulfilled'])
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: { b: 0, c: 0 }, left: { m: 1 }, list: [0, 0], ...pad })
  })

  const overlapping: [string, string][] = [
    ['$.a', '$.a.b'],
    ['$.a.b', '$.a'],
    ['$.a.b', '$.a.b'],
    ['$', '$.left.x'],
    ['$.list[1]', '$.list'],
  ]
  for (const [p, q] of overlapping) {
    it(`overlapping paths ${p} then ${q}: the second gets ConflictError naming both paths and writes nothing`, async () => {
      const [a, b] = await interleave(
        (tx) => tx.json.set('doc', p, 'A'),
        (tx) => tx.json.set('doc', q, 'B'),
      )
      expect(a.status).toBe('fulfilled')
      expect(b.status).toBe('rejected')
      const err = await expectRejection(Promise.reject((b as PromiseRejectedResult).reason), ConflictError, 'CONFLICT')
      expect(err.retryable).toBe(true)
      expect(err.details).toMatchObject({ doc: 'doc', path: q, writtenPath: p })
      expect(db.json.get(run, 'doc', p)).toBe('A')
      expect(db.json.get(run, 'doc', q)).not.toBe('B')
    })
  }

  it('with retries the conflicting transaction re-runs on the committed document and commits', async () => {
    const bothBegun = asyncBarrier(2)
    let attempts = 0
    const a = db.transactionAsync(run, async (tx) => {
      tx.json.set('doc', '$.a', { replaced: true })
      await bothBegun()
    })
    const b = db.transactionAsync(
      run,
      async (tx) => {
        attempts++
        const seen = tx.json.get('doc', '$.a')
        tx.json.set('doc', '$.a.b', 'B')
        if (attempts === 1) {
          await bothBegun()
          await a
        }
        return seen
      },
      { retries: 1 },
    )
    await a
    expect(await b).toStrictEqual({ replaced: true })
    expect(attempts).toBe(2)
    expect(db.json.get(run, 'doc', '$.a')).toStrictEqual({ replaced: true, b: 'B' })
  })
})
}

describe('reads take part in conflicts, by path', () => {
  beforeEach(() => {
    db.json.set(run, 'doc', '$', { x: 1, y: 1, z: 0, nested: { deep: 1 } })
  })

  /** A transaction (retries 0) that reads `readPath`, lets another commit write `outsidePath`, then writes `$.z`. */
  function readThenOutsideWrite(readPath: string, outsidePath: string): () => unknown {
    return () =>
      db.transaction(
        run,
        (tx) => {
          const v = tx.json.get('doc', readPath)
          db.json.set(run, 'doc', outsidePath, 'outside')
          tx.json.set('doc', '$.z', v ?? null)
        },
        { retries: 0 },
      )
  }

  it('a transaction that read $.x conflicts when another commits a write to $.x first', () => {
    const err = expectError(readThenOutsideWrite('$.x', '$.x'), ConflictError, 'CONFLICT')
    expect(err.details).toMatchObject({ doc: 'doc', path: '$.x', writtenPath: '$.x' })
    expect(db.json.get(run, 'doc', '$.z')).toBe(0)
  })

  it('a read of $.y does not conflict with that write', () => {
    readThenOutsideWrite('$.y', '$.x')()
    expect(db.json.get(run, 'doc')).toStrictEqual({ x: 'outside', y: 1, z: 1, nested: { deep: 1 } })
  })

  it('a read below the written path conflicts', () => {
    expectError(readThenOutsideWrite('$.nested.deep', '$.nested'), ConflictError, 'CONFLICT')
  })

  it('a read above the written path conflicts', () => {
    expectError(readThenOutsideWrite('$.nested', '$.nested.deep'), ConflictError, 'CONFLICT')
  })

  it('a read of $ conflicts with a write anywhere in the document', () => {
    expectError(readThenOutsideWrite('$', '$.y'), ConflictError, 'CONFLICT')
  })

  it('a read of a path that did not exist conflicts with its creation (no phantoms)', () => {
    expectError(readThenOutsideWrite('$.later', '$.later'), ConflictError, 'CONFLICT')
  })

  it('a read-only transaction never conflicts', () => {
    const got = db.transaction(
      run,
      (tx) => {
        const v = tx.json.get('doc', '$.x')
        db.json.set(run, 'doc', '$.x', 2)
        return v
      },
      { retries: 0 },
    )
    expect(got).toBe(1)
  })

  it('with retries the closure re-runs and reads the new value', () => {
    let attempts = 0
    db.transaction(
      run,
      (tx) => {
        attempts++
        const v = tx.json.get('doc', '$.x')
        if (attempts === 1) db.json.set(run, 'doc', '$.x', 10)
        tx.json.set('doc', '$.z', v ?? null)
      },
      { retries: 1 },
    )
    expect(attempts).toBe(2)
    expect(db.json.get(run, 'doc', '$.z')).toBe(10)
  })
})

// SPEC §6: a transaction fails with ConflictError if anything it read was
// committed by another transaction since its snapshot, and a conflict is
// always retryable.
describe('JSON path conflicts outside the cases above', () => {
  it('a transaction that read $.x and writes only KV conflicts when another commits $.x first', () => {
    db.json.set(run, 'doc', '$', { x: 1 })
    expectError(
      () =>
        db.transaction(
          run,
          (tx) => {
            const x = tx.json.get('doc', '$.x')
            db.json.set(run, 'doc', '$.x', 2)
            tx.kv.put('derived-from-x', x ?? null)
          },
          { retries: 0 },
        ),
      ConflictError,
      'CONFLICT',
    )
    expect(db.kv.get(run, 'derived-from-x')).toBeUndefined()
  })

  it('a transaction valid at its snapshot never fails at commit with a non-retryable error because of a concurrent disjoint write', () => {
    db.json.set(run, 'doc', '$', { arr: [{ a: 1 }, { a: 2 }, { a: 3 }] })
    let thrown: unknown
    try {
      db.transaction(
        run,
        (tx) => {
          tx.json.set('doc', '$.arr[2].b', 9) // valid in this snapshot
          db.json.delete(run, 'doc', '$.arr[0]') // commits first: the array now has 2 elements
        },
        { retries: 0 },
      )
    } catch (e) {
      thrown = e
    }
    // Either outcome is acceptable; an InvalidArgumentError at commit is not.
    if (thrown !== undefined) expect(thrown).toBeInstanceOf(ConflictError)
  })
})

describe('deleting an array element changes the whole array for conflicts, because it shifts later indices', () => {
  it('a concurrent set of a later index either conflicts or lands on the element the writer saw; another element is never overwritten', () => {
    db.json.set(run, 'doc', '$', { arr: ['a', 'b', 'c'] })
    let thrown: unknown
    try {
      db.transaction(
        run,
        (tx) => {
          tx.json.set('doc', '$.arr[1]', 'B') // replaces 'b' in this snapshot
          db.json.delete(run, 'doc', '$.arr[0]') // commits first: 'b' is now at index 0
        },
        { retries: 0 },
      )
    } catch (e) {
      thrown = e
    }
    if (thrown !== undefined) {
      expect(thrown).toBeInstanceOf(ConflictError)
      expect(db.json.get(run, 'doc', '$.arr')).toStrictEqual(['b', 'c'])
    } else {
      // Both changes kept: 'a' deleted, 'b' replaced, 'c' untouched.
      expect(db.json.get(run, 'doc', '$.arr')).toStrictEqual(['B', 'c'])
    }
  })
})

describe('path-level conflicts between two worker_threads', () => {
  let dir: string
  let d: Database
  let r: string

  beforeEach(() => {
    dir = makeTmpDir('in-mem-json')
    d = Database.open(dir, { durability: 'buffered' })
    r = d.runs.begin({ name: 'json workers' })
    d.json.set(r, 'shared', '$', { a: { b: 0 }, left: {}, right: {} })
  })

  afterEach(() => {
    d.close()
    removeDir(dir)
  })

  type Outcome = { role: string; committed: boolean; name?: string; code?: string; details?: Record<string, unknown>; retryable?: boolean }
  async function pair(firstPath: string, secondPath: string, readPaths: [string?, string?] = []) {
    const shared = new SharedArrayBuffer(8)
    const common = { path: dir, run: r, doc: 'shared', shared }
    const first = runWorker<Outcome>('json-path-writer.cjs', { ...common, role: 'first', writePath: firstPath, value: 'first', readPath: readPaths[0] })
    const second = runWorker<Outcome>('json-path-writer.cjs', { ...common, role: 'second', writePath: secondPath, value: 'second', readPath: readPaths[1] })
    return Promise.all([first.result, second.result])
  }

  it('disjoint paths of one document: both commit and the document holds both changes', async () => {
    const [first, second] = await pair('$.left.x', '$.right.y')
    expect(first).toEqual({ role: 'first', committed: true })
    expect(second).toEqual({ role: 'second', committed: true })
    expect(d.json.get(r, 'shared')).toStrictEqual({ a: { b: 0 }, left: { x: 'first' }, right: { y: 'second' } })
  })

  it('overlapping paths ($.a, then $.a.b): the second gets ConflictError and the document holds only the first change', async () => {
    const [first, second] = await pair('$.a', '$.a.b')
    expect(first).toEqual({ role: 'first', committed: true })
    expect(second).toMatchObject({ role: 'second', committed: false, name: 'ConflictError', code: 'CONFLICT', retryable: true })
    expect(second.details).toMatchObject({ doc: 'shared', path: '$.a.b', writtenPath: '$.a' })
    expect(d.json.get(r, 'shared')).toStrictEqual({ a: 'first', left: {}, right: {} })
  })

  it('a read of the path the other wrote conflicts; a read of another path does not', async () => {
    const [, reader] = await pair('$.left.x', '$.right.y', [undefined, '$.left'])
    expect(reader).toMatchObject({ committed: false, code: 'CONFLICT' })
    const [, other] = await pair('$.left.x', '$.right.z', [undefined, '$.a'])
    expect(other).toEqual({ role: 'second', committed: true })
    expect(d.json.get(r, 'shared')).toStrictEqual({ a: { b: 0 }, left: { x: 'first' }, right: { z: 'second' } })
  })
})

describe('one-path sets of a large document (spliced into the stored bytes at commit, in place when nobody else holds them)', () => {
  interface Doc {
    step: number
    name: string
    list: number[]
    nested: { flag: boolean; text?: string }
    pad: string
  }

  it('random sets of every length, alone and in transactions, beside open replays and snapshots: the same document at every version, live, replayed and reopened', async () => {
    const dir = makeTmpDir()
    try {
      let seed = 7
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        return seed % n
      }
      let d = Database.open(dir, { durability: 'buffered', checkpointBytes: 0, checkpointOnClose: false })
      const r = d.runs.begin({ name: 'large doc' })
      let model: Doc = { step: 0, name: 'a', list: [1, 2, 3], nested: { flag: false, text: 'x' }, pad: 'q'.repeat(100_000) }
      d.json.set(r, 'doc', '$', model)
      const seen: [number, Doc][] = [[d.stats().version, structuredClone(model)]]
      const open: [ReturnType<Database['replay']>, Doc][] = []
      // A path's new value, or undefined: the path is deleted (the key goes
      // from the document; a later set adds it back, at the end).
      const setOne = (m: Doc): [string, Value | undefined] => {
        switch (rand(6)) {
          case 5: {
            if ('text' in m.nested) {
              delete (m.nested as { text?: string }).text
              return ['$.nested.text', undefined]
            }
            m.nested.text = 'back'
            return ['$.nested.text', 'back']
          }
          case 0: {
            // 0–127 keeps the step's length (a positive fixint); larger numbers do not.
            const v = rand(3) === 0 ? 1000 + rand(100_000) : rand(128)
            m.step = v
            return ['$.step', v]
          }
          case 1: {
            const v = 'n'.repeat(1 + rand(3))
            m.name = v
            return ['$.name', v]
          }
          case 2: {
            const i = rand(3)
            const v = rand(200)
            m.list[i] = v
            return [`$.list[${i}]`, v]
          }
          case 3: {
            const v = rand(2) === 0
            m.nested.flag = v
            return ['$.nested.flag', v]
          }
          default: {
            const v = String.fromCharCode(97 + rand(26))
            m.nested.text = v
            return ['$.nested.text', v]
          }
        }
      }
      const write = (target: { json: { set(doc: string, path: string, value: Value): void; delete(doc: string, path: string): boolean } }, path: string, value: Value | undefined) =>
        value === undefined ? target.json.delete('doc', path) : target.json.set('doc', path, value)
      for (let i = 0; i < 300; i++) {
        const kind = rand(10)
        if (kind < 6) {
          const [path, value] = setOne(model)
          write(d.scope(r), path, value)
        } else if (kind < 8) {
          // A transaction that reads its own write back (the set is spliced
          // into its view then), or sets twice.
          const next = structuredClone(model)
          const [path, value] = setOne(next)
          const readBack = rand(2) === 0
          const twice = readBack ? undefined : setOne(next)
          const got = d.transaction(r, (tx) => {
            write(tx, path, value)
            expect(tx.json.list()).toEqual(['doc'])
            if (twice) write(tx, twice[0], twice[1])
            return readBack ? tx.json.get('doc', path) : undefined
          })
          if (readBack) expect(got).toStrictEqual(value)
          model = next
        } else if (kind < 9) {
          // A replay held open across later sets reads its version still.
          open.push([d.replay(r, { at: d.stats().version }), structuredClone(model)])
        } else {
          // A snapshot taken before a set reads the document as it was.
          const before = structuredClone(model)
          const [path, value] = setOne(model)
          await d.transactionAsync(r, async (tx) => {
            const first = tx.json.get('doc')
            write(d.scope(r), path, value)
            await Promise.resolve()
            expect(tx.json.get('doc')).toStrictEqual(first)
            expect(first).toStrictEqual(before)
          })
        }
        seen.push([d.stats().version, structuredClone(model)])
        expect(d.json.get(r, 'doc', '$.step'), `set ${i}`).toBe(model.step)
      }
      expect(d.json.get(r, 'doc')).toStrictEqual(model)
      for (const [view, doc] of open) {
        expect(view.json.get('doc')).toStrictEqual(doc)
        view.close()
      }
      const check = (db: Database, what: string) => {
        for (const [version, doc] of seen.filter((_, k) => k % 5 === 0 || k === seen.length - 1)) {
          const view = db.replay(r, { at: version })
          try {
            expect(view.json.get('doc'), `${what}, version ${version}`).toStrictEqual(doc)
          } finally {
            view.close()
          }
        }
      }
      check(d, 'live')
      d.close()
      // Reopened from the log alone (no checkpoint): its deltas rebuild every version.
      d = Database.open(dir, { durability: 'buffered', checkpointOnClose: false })
      try {
        expect(d.json.get(r, 'doc')).toStrictEqual(model)
        check(d, 'reopened')
        const [path, value] = setOne(model)
        write(d.scope(r), path, value)
        expect(d.json.get(r, 'doc')).toStrictEqual(model)
      } finally {
        d.close()
      }
    } finally {
      removeDir(dir)
    }
  }, 60_000)
})

describe('a large document in a fork', () => {
  it('a fork sets a path of the document it reads from its parent: the fork holds the change, the parent and its history keep theirs', () => {
    const pad = 'f'.repeat(30_000)
    db.json.set(run, 'doc', '$', { step: 1, name: 'parent', pad })
    const at = db.stats().version
    const fork = db.runs.fork(run, { name: 'fork' })
    db.json.set(fork, 'doc', '$.step', 2)
    db.json.set(fork, 'doc', '$.step', 3)
    db.json.set(run, 'doc', '$.step', 4)
    expect(db.json.get(fork, 'doc')).toStrictEqual({ step: 3, name: 'parent', pad })
    expect(db.json.get(run, 'doc')).toStrictEqual({ step: 4, name: 'parent', pad })
    const view = db.replay(run, { at })
    try {
      expect(view.json.get('doc')).toStrictEqual({ step: 1, name: 'parent', pad })
    } finally {
      view.close()
    }
    const fromFork = db.transaction(fork, (tx) => {
      tx.json.set('doc', '$.name', 'forked')
      return tx.json.get('doc', '$.name')
    })
    expect(fromFork).toBe('forked')
    expect(db.json.get(fork, 'doc')).toStrictEqual({ step: 3, name: 'forked', pad })
    expect(db.json.get(run, 'doc', '$.name')).toBe('parent')
  })
})

describe('a large document set in place by one worker while others read it', () => {
  it('every read, in the readers and the main thread, live and replayed, is a document some commit wrote', async () => {
    const dir = makeTmpDir('in-mem-json')
    const d = Database.open(dir, { durability: 'buffered' })
    try {
      const r = d.runs.begin({ name: 'in place' })
      const pad = 'z'.repeat(50_000)
      d.json.set(r, 'big', '$', { flag: 'aaaaaaaa', n: 0, pad })
      const early = d.replay(r, { at: d.stats().version })
      const common = { path: dir, run: r, pad, rounds: 2000 }
      const workers = [
        runWorker<{ role: string; done: number; bad: number }>('json-inplace-worker.cjs', { ...common, role: 'writer' }),
        runWorker<{ role: string; done: number; bad: number }>('json-inplace-worker.cjs', { ...common, role: 'reader' }),
      ]
      let mainBad = 0
      let mainReads = 0
      let finished = false
      const all = Promise.all(workers.map((w) => w.result)).finally(() => (finished = true))
      while (!finished) {
        const doc = d.json.get(r, 'big') as { flag: string; n: number; pad: string }
        if (!(doc.flag === 'aaaaaaaa' || doc.flag === 'bbbbbbbb') || doc.n < 0 || doc.n > 127 || doc.pad !== pad) mainBad++
        mainReads++
        await new Promise((resolve) => setImmediate(resolve))
      }
      const results = await all
      expect(results).toEqual([
        { role: 'writer', done: 2000, bad: 0 },
        { role: 'reader', done: 2000, bad: 0 },
      ])
      expect(mainReads).toBeGreaterThan(0)
      expect(mainBad).toBe(0)
      expect(early.json.get('big')).toStrictEqual({ flag: 'aaaaaaaa', n: 0, pad })
      early.close()
      expect(d.json.get(r, 'big')).toStrictEqual({ flag: 'bbbbbbbb', n: 1999 & 127, pad })
      // Every version replays whole.
      const log = d.runs.log(r)
      for (const c of log.filter((_, k) => k % 97 === 0)) {
        const v = d.replay(r, { at: c.version })
        try {
          const doc = v.json.get('big') as { flag: string; pad: string }
          expect(doc.pad).toBe(pad)
          expect(['aaaaaaaa', 'bbbbbbbb']).toContain(doc.flag)
        } finally {
          v.close()
        }
      }
    } finally {
      d.close()
      removeDir(dir)
    }
  }, 60_000)
})
