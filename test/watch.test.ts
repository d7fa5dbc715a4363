import { afterEach, describe, expect, it } from 'vitest'
import { type Change, Database, InvalidArgumentError, LaggedError } from '../dist/index.js'
import { expectError, expectRejection, makeTmpDir, removeDir } from './helpers.js'

const handles: Database[] = []
const dirs: string[] = []

function memory(opts = {}): Database {
  const db = Database.open({ durability: 'memory', ...opts })
  handles.push(db)
  return db
}

afterEach(() => {
  for (const db of handles.splice(0)) if (db.isOpen) db.close()
  for (const d of dirs.splice(0)) removeDir(d)
})

/** Takes `n` changes from an iterator. */
async function take(it: AsyncIterator<Change>, n: number): Promise<Change[]> {
  const out: Change[] = []
  while (out.length < n) {
    const r = await it.next()
    if (r.done) break
    out.push(r.value)
  }
  return out
}

describe('db.watch', () => {
  it('yields the changes committed after it starts, in order, with values', async () => {
    const db = memory()
    const run = db.runs.begin()
    db.kv.put(run, 'before', 0)
    const it = db.watch()
    const v1 = db.kv.put(run, 'a', 1)
    db.events.append(run, 'tick', { n: 1 })
    db.state.set(run, 'cell', 'x')
    db.json.set(run, 'doc', '$.k', true)
    db.kv.delete(run, 'a')
    const got = await take(it, 5)
    expect(got.map((c) => [c.primitive, c.key, c.deleted, c.value])).toEqual([
      ['kv', 'a', false, 1],
      ['events', '0', false, { n: 1 }],
      ['state', 'cell', false, 'x'],
      ['json', 'doc', false, { k: true }],
      ['kv', 'a', true, undefined],
    ])
    expect(got[0].version).toBe(v1)
    expect(got.every((c) => c.run === run)).toBe(true)
    const versions = got.map((c) => c.version)
    expect([...versions].sort((x, y) => x - y)).toEqual(versions)
    await it.return!()
  })

  it('a large document set at one path, again and again: each change holds the document as that commit left it', async () => {
    // A one-path set of a document of 4 KB or more changes the stored bytes
    // in place when nobody else holds them; the changes a watcher has not
    // taken yet hold them, so each keeps its own.
    const db = memory()
    const run = db.runs.begin()
    const pad = 'w'.repeat(20_000)
    db.json.set(run, 'doc', '$', { step: 0, pad })
    const it = db.watch({ run })
    for (let step = 1; step <= 6; step++) db.json.set(run, 'doc', '$.step', step)
    const got = await take(it, 6)
    expect(got.map((c) => (c.value as { step: number }).step)).toEqual([1, 2, 3, 4, 5, 6])
    expect(got.every((c) => (c.value as { pad: string }).pad === pad)).toBe(true)
    await it.return!()
    db.json.set(run, 'doc', '$.step', 7)
    expect(db.json.get(run, 'doc')).toStrictEqual({ step: 7, pad })
  })

  it('a transaction arrives as its writes with one version; traces and machines by id', async () => {
    const db = memory()
    const run = db.runs.begin()
    const it = db.watch({ run })
    let traceId = ''
    db.transaction(run, (tx) => {
      tx.kv.put('k', 1)
      traceId = tx.traces.record({ type: 'thought', data: { content: 'x' } })
    })
    const got = await take(it, 2)
    expect(new Set(got.map((c) => c.version)).size).toBe(1)
    expect(got.map((c) => c.primitive).sort()).toEqual(['kv', 'traces'])
    expect(got.find((c) => c.primitive === 'traces')!.key).toBe(traceId)
    await it.return!()
  })

  it('filters by run and by primitive', async () => {
    const db = memory()
    const a = db.runs.begin()
    const b = db.runs.begin()
    const it = db.watch({ run: b, primitives: ['state'] })
    db.kv.put(b, 'k', 1)
    db.state.set(a, 'c', 1)
    db.state.set(b, 'c', 2)
    const [c] = await take(it, 1)
    expect([c.run, c.primitive, c.value]).toEqual([b, 'state', 2])
    await it.return!()
  })

  it('breaking out of for-await closes it, and new watchers still work', async () => {
    const db = memory()
    const run = db.runs.begin()
    const seen: string[] = []
    const p = (async () => {
      for await (const c of db.watch({ run })) {
        seen.push(c.key)
        if (seen.length === 2) break
      }
    })()
    db.kv.put(run, 'x', 1)
    db.kv.put(run, 'y', 1)
    await p
    expect(seen).toEqual(['x', 'y'])
    const it = db.watch({ run })
    db.kv.put(run, 'z', 1)
    expect((await take(it, 1))[0].key).toBe('z')
    await it.return!()
  })

  it('an aborted signal ends the iteration, also while it waits', async () => {
    const db = memory()
    const run = db.runs.begin()
    const ctl = new AbortController()
    const it = db.watch({ run, signal: ctl.signal })
    const pending = it.next()
    ctl.abort()
    expect((await pending).done).toBe(true)
    const already = new AbortController()
    already.abort()
    expect((await db.watch({ signal: already.signal }).next()).done).toBe(true)
  })

  it('closing the database ends a waiting iteration', async () => {
    const db = memory()
    db.runs.begin()
    const it = db.watch()
    const pending = it.next()
    db.close()
    expect((await pending).done).toBe(true)
  })

  it('a reader that falls behind the buffer gets LaggedError with the last version it was given', async () => {
    const db = memory({ watchBuffer: 5 })
    const run = db.runs.begin()
    const it = db.watch({ run })
    const first = db.kv.put(run, 'k', 0)
    expect((await take(it, 1))[0].version).toBe(first)
    for (let i = 1; i <= 20; i++) db.kv.put(run, 'k', i)
    const err = await expectRejection(it.next(), LaggedError, 'LAGGED')
    expect(err.details.lastVersion).toBe(first)
  })

  it('in strict mode a change arrives only once it is durable', async () => {
    const dir = makeTmpDir('in-mem-watch')
    dirs.push(dir)
    const db = Database.open(dir, { durability: 'strict', checkpointOnClose: false })
    handles.push(db)
    const run = db.runs.begin()
    const it = db.watch({ run })
    const writes = Array.from({ length: 20 }, (_, i) => db.transactionAsync(run, (tx) => tx.kv.put(`k${i}`, i)))
    const got = await take(it, 20)
    for (const c of got) expect(c.version).toBeLessThanOrEqual(db.stats().wal!.durableVersion)
    await Promise.all(writes)
    expect(got.map((c) => c.key).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort())
    await it.return!()
  })

  it('rejects bad options', () => {
    const db = memory()
    expectError(() => db.watch({ primitives: ['nope' as 'kv'] }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.watch({ run: 'not-a-run' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.watch({ signal: {} as AbortSignal }), InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})
