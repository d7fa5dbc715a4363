import { createRequire } from 'node:module'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConflictError, Database, RunClosedError, type RunScope, type TxScope } from '../dist/index.js'
import { expectError, expectRejection, makeTmpDir, removeDir } from './helpers.js'
import { runWorker } from './worker-helpers.js'

/** One primitive as the cross-primitive tests use it (see test/fixtures/cross-primitives.cjs). */
interface CrossPrimitive {
  name: string
  /** The i-th commit's write (i = 1, 2, ...). */
  write(tx: TxScope, i: number): void
  /** How many of those commits `view` shows; -1 if it shows an inconsistent state. */
  read(view: RunScope | TxScope): number
}

// Shared with the workers, so that a primitive added there is covered by every test here.
const primitives = createRequire(__filename)('./fixtures/cross-primitives.cjs') as CrossPrimitive[]

const counts = (view: RunScope | TxScope) => Object.fromEntries(primitives.map((p) => [p.name, p.read(view)]))
const all = (n: number) => Object.fromEntries(primitives.map((p) => [p.name, n]))
const writeAll = (tx: TxScope, i: number) => {
  for (const p of primitives) p.write(tx, i)
}

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'cross' })
})

afterEach(() => {
  db.close()
})

it('covers at least KV, events, state cells and JSON documents', () => {
  expect(primitives.map((p) => p.name)).toEqual(expect.arrayContaining(['kv', 'events', 'state', 'json']))
})

describe('a transaction across every primitive that throws leaves nothing behind', () => {
  it('on a fresh run: no key, no event, no cell, no document, no commit', () => {
    const version = db.stats().version
    const keys = db.stats().keys
    const err = new Error('the agent crashed mid-step')
    let thrown: unknown
    try {
      db.transaction(run, (tx) => {
        writeAll(tx, 1)
        // Inside, the transaction sees all of it.
        expect(counts(tx)).toEqual(all(1))
        tx.kv.put('memory', { step: 1 })
        tx.events.append('step', { n: 1 })
        tx.state.init('status', 'working')
        tx.json.set('notes', '$.summary', 'half written')
        expect(tx.events.length()).toBe(2)
        throw err
      })
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBe(err)

    expect(db.kv.get(run, 'memory')).toBeUndefined()
    expect(db.kv.count(run)).toBe(0)
    expect(db.events.length(run)).toBe(0)
    expect(db.events.head(run)).toBeUndefined()
    expect(db.state.get(run, 'status')).toBeUndefined()
    expect(db.state.list(run)).toEqual([])
    expect(db.json.get(run, 'notes')).toBeUndefined()
    expect(counts(db.scope(run))).toEqual(all(0))
    expect(db.stats().version).toBe(version)
    expect(db.stats().keys).toBe(keys)
    // The log was not advanced: the next append is sequence 0 after a zero prevHash.
    expect(db.events.append(run, 'after')).toMatchObject({ sequence: 0, prevHash: '0'.repeat(64) })
    expect(db.state.init(run, 'status', 'fresh')).toBe(1)
  })

  it('on a run with data: every primitive keeps its last committed state', () => {
    db.transaction(run, (tx) => writeAll(tx, 1))
    db.transaction(run, (tx) => writeAll(tx, 2))
    const head = db.events.head(run)
    const docBefore = db.json.get(run, 'cross/doc')
    expect(() =>
      db.transaction(run, (tx) => {
        writeAll(tx, 3)
        tx.state.delete('cross/counter')
        tx.json.delete('cross/doc', '$')
        tx.kv.delete('cross/counter')
        throw new Error('rollback')
      }),
    ).toThrow('rollback')
    expect(counts(db.scope(run))).toEqual(all(2))
    expect(db.events.head(run)).toStrictEqual(head)
    expect(db.json.get(run, 'cross/doc')).toStrictEqual(docBefore)
    expect(db.events.verify(run)).toEqual({ valid: true, length: 2 })
  })

  it('an async closure that throws after an await rolls back every primitive', async () => {
    const version = db.stats().version
    await expect(
      db.transactionAsync(run, async (tx) => {
        writeAll(tx, 1)
        await Promise.resolve()
        tx.events.append('more')
        throw new Error('async failure')
      }),
    ).rejects.toThrow('async failure')
    expect(counts(db.scope(run))).toEqual(all(0))
    expect(db.stats().version).toBe(version)
  })

  it('a conflict (retries 0) rolls back the writes to every primitive, not only the conflicting key', () => {
    db.kv.put(run, 'input', 1)
    const version = db.stats().version
    expectError(
      () =>
        db.transaction(
          run,
          (tx) => {
            tx.kv.get('input')
            writeAll(tx, 1)
            db.kv.put(run, 'input', 2)
          },
          { retries: 0 },
        ),
      ConflictError,
      'CONFLICT',
    )
    expect(counts(db.scope(run))).toEqual(all(0))
    expect(db.stats().version).toBe(version + 1)
  })

  it('a run closed before the commit: RunClosedError, and nothing of any primitive is written', async () => {
    const version = db.stats().version
    expectError(
      () =>
        db.transaction(run, (tx) => {
          writeAll(tx, 1)
          db.runs.pause(run)
        }),
      RunClosedError,
      'RUN_CLOSED',
    )
    expect(counts(db.scope(run))).toEqual(all(0))
    expect(db.stats().version).toBe(version + 1) // the pause
    db.runs.resume(run)
    await expectRejection(
      db.transactionAsync(run, async (tx) => {
        writeAll(tx, 1)
        await Promise.resolve()
        db.runs.complete(run)
      }),
      RunClosedError,
      'RUN_CLOSED',
    )
    expect(counts(db.scope(run))).toEqual(all(0))
  })
})

describe('a transaction across every primitive that commits', () => {
  it('is one commit: invisible until it returns, then visible everywhere at one version', () => {
    const version = db.stats().version
    db.transaction(run, (tx) => {
      writeAll(tx, 1)
      expect(counts(db.scope(run))).toEqual(all(0))
    })
    expect(db.stats().version).toBe(version + 1)
    expect(counts(db.scope(run))).toEqual(all(1))
    expect(db.kv.getVersioned(run, 'cross/counter')!.version).toBe(version + 1)
  })

  it('is kept whole across close and reopen', () => {
    const dir = makeTmpDir('in-mem-cross')
    try {
      const d = Database.open(dir, { durability: 'strict' })
      const r = d.runs.begin()
      for (let i = 1; i <= 3; i++) d.transaction(r, (tx) => writeAll(tx, i))
      d.close()
      const again = Database.open(dir, { durability: 'strict' })
      try {
        expect(counts(again.scope(r))).toEqual(all(3))
        expect(again.events.verify(r)).toEqual({ valid: true, length: 3 })
      } finally {
        again.close()
      }
    } finally {
      removeDir(dir)
    }
  })

  it('becomes visible all at once to a reader in another worker, which never sees part of a commit', async () => {
    const dir = makeTmpDir('in-mem-cross-workers')
    const d = Database.open(dir, { durability: 'buffered' })
    try {
      const r = d.runs.begin({ name: 'cross workers' })
      const shared = new SharedArrayBuffer(8)
      const count = 300
      const reader = runWorker<{ reads: number; distinct: number; torn: unknown[]; final: Record<string, number> }>('cross-reader.cjs', {
        path: dir,
        run: r,
        shared,
      })
      const writer = runWorker<{ written: number }>('cross-writer.cjs', { path: dir, run: r, count, shared })
      const [w, rd] = await Promise.all([writer.result, reader.result])
      expect(w.written).toBe(count)
      expect(rd.torn, JSON.stringify(rd.torn.slice(0, 5))).toEqual([])
      // It read before the first commit and after the last, at least.
      expect(rd.reads).toBeGreaterThan(1)
      expect(rd.distinct).toBeGreaterThan(1)
      expect(rd.final).toEqual(all(count))
      expect(counts(d.scope(r))).toEqual(all(count))
      expect(d.events.verify(r)).toEqual({ valid: true, length: count })
    } finally {
      d.close()
      removeDir(dir)
    }
  })
})
