import { fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ClosedError,
  Database,
  type Durability,
  type Event,
  InMemError,
  InvalidArgumentError,
  LimitError,
  MAX_DEPTH,
  NotFoundError,
  RunClosedError,
  type Value,
} from '../dist/index.js'
import { encode } from '../src/codec.js'
import { expectError, makeTmpDir, removeDir, UNKNOWN_RUN } from './helpers.js'
import { crc32c, fixRecordCrc, recordCrc, RECORD_HEADER, walFiles, walRecords } from './wal-helpers.js'
import { fixture, runWorker } from './worker-helpers.js'

const ZERO_HASH = '0'.repeat(64)

/**
 * The hash docs/format.md documents, computed here independently:
 * SHA-256(sequence u64 BE | type length u32 BE | type UTF-8 |
 * timestamp u64 BE | payload length u32 BE | payload | prevHash (32 raw bytes)),
 * where payload is the MessagePack encoding of the value.
 */
function documentedHash(sequence: number, type: string, timestamp: number, payload: Value, prevHash: string): string {
  const u64 = (n: number) => {
    const b = Buffer.alloc(8)
    b.writeBigUInt64BE(BigInt(n))
    return b
  }
  const u32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return b
  }
  const typeBytes = Buffer.from(type, 'utf8')
  // `encode` returns a view of a reused buffer: copy it before the next call.
  const payloadBytes = Buffer.from(encode(payload))
  const prev = Buffer.from(prevHash, 'hex')
  expect(prev.length).toBe(32)
  return createHash('sha256')
    .update(u64(sequence))
    .update(u32(typeBytes.length))
    .update(typeBytes)
    .update(u64(timestamp))
    .update(u32(payloadBytes.length))
    .update(payloadBytes)
    .update(prev)
    .digest('hex')
}

/** Everything a rejected write must leave unchanged. */
function snapshot(d: Database, r: string) {
  const s = d.stats()
  return { version: s.version, keys: s.keys, length: d.events.length(r), events: d.events.range(r), head: d.events.head(r) }
}

function expectRejectedWrite<T extends InMemError>(d: Database, r: string, fn: () => unknown, cls: abstract new (...a: never[]) => T, code: string): T {
  const before = snapshot(d, r)
  const err = expectError(fn, cls, code)
  expect(snapshot(d, r)).toStrictEqual(before)
  return err
}

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'events' })
})

afterEach(() => {
  db.close()
})

describe('append', () => {
  it('returns dense sequences from 0, each with a timestamp', () => {
    const before = Date.now()
    const appended = [db.events.append(run, 'start'), db.events.append(run, 'step', { n: 1 }), db.events.append(run, 'end', 'done')]
    expect(appended.map((a) => a.sequence)).toEqual([0, 1, 2])
    for (const a of appended) {
      expect(Number.isInteger(a.timestamp)).toBe(true)
      expect(a.timestamp).toBeGreaterThanOrEqual(before - 1000)
      expect(a.timestamp).toBeLessThanOrEqual(Date.now() + 1000)
      expect(a.hash).toMatch(/^[0-9a-f]{64}$/)
      expect(a.prevHash).toMatch(/^[0-9a-f]{64}$/)
    }
    expect(appended[1].timestamp).toBeGreaterThanOrEqual(appended[0].timestamp)
    expect(db.events.length(run)).toBe(3)
  })

  it('chains hashes: the first prevHash is 64 zeros, each prevHash is the previous hash', () => {
    const appended = Array.from({ length: 5 }, (_, i) => db.events.append(run, 'tick', i))
    expect(appended[0].prevHash).toBe(ZERO_HASH)
    for (let i = 1; i < appended.length; i++) expect(appended[i].prevHash).toBe(appended[i - 1].hash)
    expect(new Set(appended.map((a) => a.hash)).size).toBe(appended.length)
  })

  it('each run has its own log, sequences and chain', () => {
    const other = db.runs.begin({ name: 'other' })
    db.events.append(run, 'a')
    db.events.append(run, 'a')
    const first = db.events.append(other, 'b')
    expect(first.sequence).toBe(0)
    expect(first.prevHash).toBe(ZERO_HASH)
    expect(db.events.length(run)).toBe(2)
    expect(db.events.length(other)).toBe(1)
    expect(db.events.range(other).map((e) => e.type)).toEqual(['b'])
  })

  const payloads: [string, Value][] = [
    ['no payload (null)', null],
    ['a small integer', 7],
    ['a negative integer', -40_000],
    ['an integer beyond 32 bits', 2 ** 40],
    ['a float', 1.5],
    ['a bigint', -(2n ** 63n)],
    ['a string', 'héllo ☕'],
    ['bytes', new Uint8Array([0, 1, 254, 255])],
    ['an empty object', {}],
    ['a nested object, key order kept', { z: 1, a: [true, null, { m: 'x' }], k: { deep: [1.25] } }],
  ]
  for (const [name, payload] of payloads) {
    it(`the hash is the documented SHA-256 encoding: ${name}`, () => {
      db.events.append(run, 'warm-up', 'so that prevHash is not zero')
      const type = 'payload-test'
      const a = payload === null ? db.events.append(run, type) : db.events.append(run, type, payload)
      expect(a.hash).toBe(documentedHash(a.sequence, type, a.timestamp, payload, a.prevHash))
      const e = db.events.get(run, a.sequence)!
      if (payload instanceof Uint8Array) {
        // Bytes come back as bytes (a Buffer, which is a Uint8Array).
        expect(e.payload).toBeInstanceOf(Uint8Array)
        expect([...(e.payload as Uint8Array)]).toEqual([...payload])
      } else {
        expect(e.payload).toStrictEqual(payload)
      }
      expect(e.hash).toBe(a.hash)
    })
  }

  it('the type length in the hash is its UTF-8 byte length, not its character count', () => {
    const type = 'café ☕ 😀'
    const a = db.events.append(run, type, { x: 1 })
    expect(a.hash).toBe(documentedHash(0, type, a.timestamp, { x: 1 }, ZERO_HASH))
    expect(db.events.get(run, 0)!.type).toBe(type)
  })

  it('the first event hashes over a prevHash of 32 zero bytes', () => {
    const a = db.events.append(run, 'first', [1, 2, 3])
    expect(a.prevHash).toBe(ZERO_HASH)
    expect(a.hash).toBe(documentedHash(0, 'first', a.timestamp, [1, 2, 3], ZERO_HASH))
  })

  it('works through a run scope, with the same chain', () => {
    const scope = db.scope(run)
    const a = scope.events.append('via-scope', 1)
    const b = db.events.append(run, 'via-db', 2)
    expect([a.sequence, b.sequence]).toEqual([0, 1])
    expect(b.prevHash).toBe(a.hash)
    expect(scope.events.length()).toBe(2)
    expect(scope.events.get(0)!.payload).toBe(1)
    expect(scope.events.head()!.sequence).toBe(1)
    expect(scope.events.range({ from: 1 }).map((e) => e.type)).toEqual(['via-db'])
    expect(scope.events.verify()).toEqual({ valid: true, length: 2 })
  })
})

describe('reading', () => {
  /** Appends types a b a c a b (sequences 0..5) with payload = sequence. */
  function fill(): Event[] {
    for (const [i, t] of ['a', 'b', 'a', 'c', 'a', 'b'].entries()) db.events.append(run, t, i)
    return db.events.range(run)
  }

  it('get returns the whole event, or undefined past the end', () => {
    const a = db.events.append(run, 'thing', { k: 'v' })
    const e = db.events.get(run, 0)!
    expect(e).toStrictEqual({ sequence: 0, type: 'thing', timestamp: a.timestamp, payload: { k: 'v' }, hash: a.hash, prevHash: ZERO_HASH })
    expect(db.events.get(run, 1)).toBeUndefined()
    expect(db.events.get(run, 2 ** 53 - 1)).toBeUndefined()
  })

  it('range defaults to the whole log in sequence order', () => {
    const all = fill()
    expect(all.map((e) => e.sequence)).toEqual([0, 1, 2, 3, 4, 5])
    expect(all.map((e) => e.payload)).toEqual([0, 1, 2, 3, 4, 5])
    for (const e of all) expect(e).toStrictEqual(db.events.get(run, e.sequence))
  })

  it('range: from is inclusive, to is exclusive', () => {
    fill()
    const seqs = (o: Parameters<Database['events']['range']>[1]) => db.events.range(run, o).map((e) => e.sequence)
    expect(seqs({ from: 2 })).toEqual([2, 3, 4, 5])
    expect(seqs({ to: 2 })).toEqual([0, 1])
    expect(seqs({ from: 1, to: 4 })).toEqual([1, 2, 3])
    expect(seqs({ from: 3, to: 3 })).toEqual([])
    expect(seqs({ from: 4, to: 2 })).toEqual([])
    expect(seqs({ from: 6 })).toEqual([])
    expect(seqs({ from: 4, to: 100 })).toEqual([4, 5])
  })

  it('range: type filters, limit counts matching events, and they combine with from/to', () => {
    fill()
    const seqs = (o: Parameters<Database['events']['range']>[1]) => db.events.range(run, o).map((e) => e.sequence)
    expect(seqs({ type: 'a' })).toEqual([0, 2, 4])
    expect(seqs({ type: 'b' })).toEqual([1, 5])
    expect(seqs({ type: 'none' })).toEqual([])
    expect(seqs({ limit: 2 })).toEqual([0, 1])
    expect(seqs({ limit: 0 })).toEqual([])
    expect(seqs({ type: 'a', limit: 2 })).toEqual([0, 2])
    expect(seqs({ type: 'a', from: 1 })).toEqual([2, 4])
    expect(seqs({ type: 'a', from: 1, to: 4 })).toEqual([2])
    expect(seqs({ type: 'b', from: 2, limit: 1 })).toEqual([5])
  })

  it('length and head follow the log; an empty log has length 0, no head and verifies', () => {
    expect(db.events.length(run)).toBe(0)
    expect(db.events.head(run)).toBeUndefined()
    expect(db.events.range(run)).toEqual([])
    expect(db.events.verify(run)).toEqual({ valid: true, length: 0 })
    const a = db.events.append(run, 'one', 1)
    expect(db.events.head(run)).toStrictEqual(db.events.get(run, 0))
    const b = db.events.append(run, 'two', 2)
    expect(db.events.length(run)).toBe(2)
    expect(db.events.head(run)!.hash).toBe(b.hash)
    expect(db.events.head(run)!.prevHash).toBe(a.hash)
  })

  it('reads of a well-formed run id that does not exist find an empty log', () => {
    expect(db.events.length(UNKNOWN_RUN)).toBe(0)
    expect(db.events.head(UNKNOWN_RUN)).toBeUndefined()
    expect(db.events.get(UNKNOWN_RUN, 0)).toBeUndefined()
    expect(db.events.range(UNKNOWN_RUN)).toEqual([])
  })

  it('verify recomputes the chain: valid with the length of the log', () => {
    for (let i = 0; i < 20; i++) db.events.append(run, i % 3 === 0 ? 'x' : 'y', { i })
    expect(db.events.verify(run)).toEqual({ valid: true, length: 20 })
  })
})

describe('inside transactions', () => {
  it('appends in a transaction continue the chain, see their own writes and commit together', () => {
    const first = db.events.append(run, 'before')
    const version = db.stats().version
    const [a, b, lengthInside] = db.transaction(run, (tx) => {
      const x = tx.events.append('in-tx', 1)
      const y = tx.events.append('in-tx', 2)
      return [x, y, tx.events.length()] as const
    })
    expect([a.sequence, b.sequence]).toEqual([1, 2])
    expect(a.prevHash).toBe(first.hash)
    expect(b.prevHash).toBe(a.hash)
    expect(lengthInside).toBe(3)
    expect(db.stats().version).toBe(version + 1)
    expect(db.events.verify(run)).toEqual({ valid: true, length: 3 })
  })

  it('a transaction that throws appends nothing; the next append reuses the sequence', () => {
    db.events.append(run, 'kept')
    const before = snapshot(db, run)
    expect(() =>
      db.transaction(run, (tx) => {
        tx.events.append('lost', 1)
        tx.events.append('lost', 2)
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expect(snapshot(db, run)).toStrictEqual(before)
    const next = db.events.append(run, 'after')
    expect(next.sequence).toBe(1)
    expect(next.prevHash).toBe(before.head!.hash)
  })

  it('two async transactions that both appended before either committed: the later is re-run on the new head', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let attemptsB = 0
    const txA = db.transactionAsync(run, async (tx) => {
      const a = tx.events.append('A')
      await gate
      return a
    })
    const txB = db.transactionAsync(
      run,
      async (tx) => {
        attemptsB++
        const b = tx.events.append('B')
        await gate
        return b
      },
      { retries: 3 },
    )
    release()
    const [a, b] = await Promise.all([txA, txB])
    expect(a.sequence).toBe(0)
    expect(b.sequence).toBe(1)
    expect(b.prevHash).toBe(a.hash)
    expect(attemptsB).toBe(2)
    expect(db.events.verify(run)).toEqual({ valid: true, length: 2 })
  })
})

describe('bad input is rejected and nothing is written', () => {
  it('an empty type is InvalidArgumentError', () => {
    expectRejectedWrite(db, run, () => db.events.append(run, ''), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(db, run, () => db.scope(run).events.append(''), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(db, run, () => db.transaction(run, (tx) => tx.events.append('')), InvalidArgumentError, 'INVALID_ARGUMENT')
  })

  it('a type over 256 characters is a LimitError naming the limit; 256 characters (even 4-byte ones) is accepted', () => {
    for (const type of ['t'.repeat(257), '😀'.repeat(257)]) {
      const err = expectRejectedWrite(db, run, () => db.events.append(run, type), LimitError, 'LIMIT_EXCEEDED')
      expect(err.message).toContain('256')
      expectRejectedWrite(db, run, () => db.transaction(run, (tx) => tx.events.append(type)), LimitError, 'LIMIT_EXCEEDED')
    }
    for (const type of ['t'.repeat(256), '😀'.repeat(256), 'é'.repeat(256)]) {
      const a = db.events.append(run, type)
      expect(db.events.get(run, a.sequence)!.type).toBe(type)
    }
  })

  it('a type that is not a string is InvalidArgumentError', () => {
    for (const type of [5, null, undefined, {}, ['a']]) {
      expectRejectedWrite(db, run, () => db.events.append(run, type as unknown as string), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
  })

  const unstorable: [string, () => unknown, typeof InvalidArgumentError | typeof LimitError, string][] = [
    ['a function', () => () => 1, InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a symbol', () => Symbol('s'), InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a Date', () => new Date(0), InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a Map', () => new Map(), InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['undefined inside an object', () => ({ a: undefined }), InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a cycle', () => {
      const o: Record<string, unknown> = {}
      o.self = o
      return o
    }, InvalidArgumentError, 'INVALID_ARGUMENT'],
    ['a bigint outside i64', () => 2n ** 63n, InvalidArgumentError, 'INVALID_ARGUMENT'],
    [`nesting deeper than ${MAX_DEPTH}`, () => {
      let v: Value = 0
      for (let i = 0; i <= MAX_DEPTH; i++) v = [v]
      return v
    }, LimitError, 'LIMIT_EXCEEDED'],
    ['a payload over 16 MiB encoded', () => 'x'.repeat(16 * 1024 * 1024), LimitError, 'LIMIT_EXCEEDED'],
  ]
  for (const [name, make, cls, code] of unstorable) {
    it(`an unstorable payload (${name}) is ${cls.name}`, () => {
      expectRejectedWrite(db, run, () => db.events.append(run, 'bad', make() as Value), cls, code)
      expectRejectedWrite(db, run, () => db.transaction(run, (tx) => tx.events.append('bad', make() as Value)), cls, code)
    })
  }

  it('a sequence, from, to or limit that is not a non-negative integer is InvalidArgumentError', () => {
    db.events.append(run, 'a')
    const bad = [-1, 1.5, NaN, Infinity, 2 ** 53, '1', null]
    for (const b of bad) {
      const n = b as number
      expectRejectedWrite(db, run, () => db.events.get(run, n), InvalidArgumentError, 'INVALID_ARGUMENT')
      if (b === null) continue // null is "not given" for the range options
      expectRejectedWrite(db, run, () => db.events.range(run, { from: n }), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(db, run, () => db.events.range(run, { to: n }), InvalidArgumentError, 'INVALID_ARGUMENT')
      expectRejectedWrite(db, run, () => db.events.range(run, { limit: n }), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
    expectRejectedWrite(db, run, () => db.events.range(run, { type: 3 as unknown as string }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectRejectedWrite(db, run, () => db.events.range(run, null as unknown as object), InvalidArgumentError, 'INVALID_ARGUMENT')
  })

  it('a malformed run id is InvalidArgumentError on every method', () => {
    for (const bad of ['', 'not-a-uuid', UNKNOWN_RUN.slice(0, -1), 42, null]) {
      const r = bad as string
      const calls: (() => unknown)[] = [
        () => db.events.append(r, 't', 1),
        () => db.events.get(r, 0),
        () => db.events.range(r),
        () => db.events.length(r),
        () => db.events.head(r),
        () => db.events.verify(r),
      ]
      for (const call of calls) expectRejectedWrite(db, run, call, InvalidArgumentError, 'INVALID_ARGUMENT')
    }
  })

  it('an append to a run that does not exist is NotFoundError', () => {
    const err = expectRejectedWrite(db, run, () => db.events.append(UNKNOWN_RUN, 't'), NotFoundError, 'NOT_FOUND')
    expect(err.details.run).toBe(UNKNOWN_RUN)
    expect(db.events.length(UNKNOWN_RUN)).toBe(0)
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
    it(`an append into a ${status} run is RunClosedError; the log stays readable and valid`, () => {
      const a = db.events.append(run, 'before')
      close(run)
      const err = expectRejectedWrite(db, run, () => db.events.append(run, 'after'), RunClosedError, 'RUN_CLOSED')
      expect(err.details.run).toBe(run)
      expect(err.details.status).toBe(status)
      expectRejectedWrite(db, run, () => db.scope(run).events.append('after'), RunClosedError, 'RUN_CLOSED')
      expectRejectedWrite(db, run, () => db.transaction(run, (tx) => tx.events.append('after')), RunClosedError, 'RUN_CLOSED')
      expect(db.events.head(run)!.hash).toBe(a.hash)
      expect(db.events.verify(run)).toEqual({ valid: true, length: 1 })
    })
  }

  it('a transaction whose run completes before it commits appends nothing', () => {
    const before = snapshot(db, run)
    expectError(
      () =>
        db.transaction(run, (tx) => {
          tx.events.append('in-tx')
          db.runs.complete(run)
        }),
      RunClosedError,
      'RUN_CLOSED',
    )
    // Only the run's completion was committed.
    const after = snapshot(db, run)
    expect(after.version).toBe(before.version + 1)
    expect(db.runs.get(run)!.status).toBe('completed')
    expect({ ...after, version: 0, keys: 0 }).toStrictEqual({ ...before, version: 0, keys: 0 })
  })
})

describe('a closed database', () => {
  it('every EventLog method is ClosedError', () => {
    db.events.append(run, 'a')
    db.close()
    const calls: (() => unknown)[] = [
      () => db.events.append(run, 't'),
      () => db.events.get(run, 0),
      () => db.events.range(run),
      () => db.events.length(run),
      () => db.events.head(run),
      () => db.events.verify(run),
    ]
    for (const call of calls) expectError(call, ClosedError, 'CLOSED')
  })
})

describe('durable logs', () => {
  let dir: string
  const handles: Database[] = []
  const openAt = (durability: Durability) => {
    const d = Database.open(dir, { durability })
    handles.push(d)
    return d
  }

  beforeEach(() => {
    dir = makeTmpDir('in-mem-events')
  })

  afterEach(() => {
    for (const d of handles.splice(0)) d.close()
    removeDir(dir)
  })

  for (const durability of ['buffered', 'strict'] as const) {
    it(`${durability}: the log, its hashes and timestamps survive close and reopen, and the chain continues`, () => {
      const d = openAt(durability)
      const r = d.runs.begin({ name: 'durable events' })
      for (let i = 0; i < 10; i++) d.events.append(r, i % 2 ? 'odd' : 'even', { i, big: BigInt(i) * 10n ** 15n })
      d.transaction(r, (tx) => {
        tx.events.append('tx', 'a')
        tx.events.append('tx', 'b')
      })
      const events = d.events.range(r)
      d.close()

      const again = openAt(durability)
      expect(again.events.range(r)).toStrictEqual(events)
      expect(again.events.length(r)).toBe(12)
      expect(again.events.verify(r)).toEqual({ valid: true, length: 12 })
      const next = again.events.append(r, 'after reopen')
      expect(next.sequence).toBe(12)
      expect(next.prevHash).toBe(events[11].hash)
      again.close()

      const third = openAt(durability)
      expect(third.events.length(r)).toBe(12 + 1)
      expect(third.events.verify(r)).toEqual({ valid: true, length: 13 })
    })
  }

  it('4 worker_threads appending to one run never fork the chain: dense sequences, every event kept, verify valid', async () => {
    const d = openAt('buffered')
    const r = d.runs.begin({ name: 'concurrent appenders' })
    const workers = 4
    const count = 150
    const shared = new SharedArrayBuffer(4)
    const started = Array.from({ length: workers }, (_, id) =>
      runWorker<{ id: number; sequences: number[] }>('event-appender.cjs', { path: dir, run: r, count, id, workers, shared }),
    )
    const reports = await Promise.all(started.map((w) => w.result))

    expect(d.events.length(r)).toBe(workers * count)
    const all = reports.flatMap((x) => x.sequences).sort((a, b) => a - b)
    expect(all).toEqual(Array.from({ length: workers * count }, (_, i) => i))
    const events = d.events.range(r)
    expect(events.map((e) => e.sequence)).toEqual(all)
    expect(events[0].prevHash).toBe(ZERO_HASH)
    for (let i = 1; i < events.length; i++) expect(events[i].prevHash).toBe(events[i - 1].hash)
    for (const rep of reports) {
      // Each worker's own appends are in its own order, at the sequences it was told.
      const mine = d.events.range(r, { type: `w${rep.id}` })
      expect(mine.map((e) => e.sequence)).toEqual(rep.sequences)
      expect(mine.map((e) => (e.payload as { i: number }).i)).toEqual(Array.from({ length: count }, (_, i) => i))
      expect(d.kv.get(r, `progress/${rep.id}`)).toBe(count - 1)
    }
    expect(d.events.verify(r)).toEqual({ valid: true, length: workers * count })

    d.close()
    const again = openAt('buffered')
    expect(again.events.verify(r)).toEqual({ valid: true, length: workers * count })
  })
})

/**
 * Runs fixtures/event-log-writer.cjs on `dir`: it appends `count` events, the
 * one at `victim` carrying `marker`, makes them durable and is then killed
 * with SIGKILL, so the WAL is the only copy of them (no checkpoint on close).
 */
async function writeEventsThenKill(dir: string, durability: Durability, count: number, victim: number, marker: string) {
  const child = fork(fixture('event-log-writer.cjs'), [dir, durability, String(count), String(victim), marker], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const exited = once(child, 'exit')
  const [report] = (await Promise.race([
    once(child, 'message'),
    exited.then(([code]) => {
      throw new Error(`event-log-writer exited with code ${code} before reporting`)
    }),
  ])) as [{ run: string; verify: unknown; events: { sequence: number; hash: string }[] }]
  child.kill('SIGKILL')
  const [, signal] = await exited
  expect(signal).toBe('SIGKILL')
  return report
}

describe('tamper detection', () => {
  let dir: string
  const handles: Database[] = []

  beforeEach(() => {
    dir = makeTmpDir('in-mem-tamper')
  })

  afterEach(() => {
    for (const d of handles.splice(0)) d.close()
    removeDir(dir)
  })

  it('the crc32c helper is CRC32C: the check value and the CRC of every record the engine wrote', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283)
    const d = Database.open(dir, { durability: 'strict' })
    handles.push(d)
    const r = d.runs.begin()
    d.events.append(r, 'x', { y: 1 })
    // Strict: the records are on disk now, whatever close does later.
    let records = 0
    for (const file of walFiles(dir)) {
      const bytes = readFileSync(file)
      for (const rec of walRecords(bytes)) {
        expect(recordCrc(bytes, rec)).toBe(rec.crc)
        records++
      }
    }
    expect(records).toBeGreaterThanOrEqual(2)
  })

  for (const durability of ['buffered', 'strict'] as const) {
    it(`${durability}: a payload byte changed on disk (CRC fixed up) is named by verify as the first invalid sequence`, async () => {
      const count = 6
      const victim = 3
      const marker = 'TAMPER-ME-9f2c71'
      const written = await writeEventsThenKill(dir, durability, count, victim, marker)
      // Before the damage the chain verifies. (The data is not reopened
      // here: a close could checkpoint it out of the WAL.)
      expect(written.verify).toEqual({ valid: true, length: count })
      expect(written.events.map((e) => e.sequence)).toEqual([0, 1, 2, 3, 4, 5])

      // Find the marker in the WAL: exactly once, inside one record's payload.
      const needle = Buffer.from(marker, 'utf8')
      const hits: { file: string; at: number }[] = []
      for (const file of walFiles(dir)) {
        const bytes = readFileSync(file)
        for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) hits.push({ file, at })
      }
      expect(hits).toHaveLength(1)
      const { file, at } = hits[0]
      const bytes = readFileSync(file)
      const rec = walRecords(bytes).find((x) => x.offset + RECORD_HEADER <= at && at + needle.length <= x.offset + x.len)!
      expect(rec).toBeDefined()
      expect(recordCrc(bytes, rec)).toBe(rec.crc)
      // Same length, still valid MessagePack: 'T' becomes 't'.
      bytes[at] = 't'.charCodeAt(0)
      fixRecordCrc(bytes, rec)
      writeFileSync(file, bytes)

      const again = Database.open(dir, { durability })
      handles.push(again)
      const r = written.run
      // The WAL still reads, and the changed payload is what is stored now...
      expect(again.events.get(r, victim)!.payload).toEqual({ note: 't' + marker.slice(1), i: victim })
      expect(again.events.get(r, victim)!.hash).toBe(written.events[victim].hash)
      expect(again.events.length(r)).toBe(count)
      // ...but it no longer hashes to its stored hash.
      const v = again.events.verify(r)
      expect(v.valid).toBe(false)
      expect(v.firstInvalid).toBe(victim)
      expect(v.length).toBe(count)
      expect(v.reason).toMatch(/hash/)
      expect(v).toEqual({ valid: false, length: count, firstInvalid: victim, reason: v.reason })
      // Every stored hash is the one written: only the payload changed.
      expect(again.events.range(r).map((e) => e.hash)).toEqual(written.events.map((e) => e.hash))
    })
  }
})
