// db.vectors (SPEC §14), exact search: every answer checked against a
// brute-force computation in JS.
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AlreadyExistsError, Database, InvalidArgumentError, LimitError, NotFoundError } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'

let dir: string
let db: Database
let run: string
beforeEach(() => {
  dir = makeTmpDir('vectors')
  db = Database.open(join(dir, 'db'))
  run = db.runs.begin()
})
afterEach(() => {
  db.close()
  removeDir(dir)
})

/** A seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const f32 = (v: readonly number[]): number[] => Array.from(Float32Array.from(v))

function score(metric: string, a: number[], b: number[]): number {
  const [x, y] = [f32(a), f32(b)]
  if (metric === 'dot') return x.reduce((s, v, i) => s + v * y[i], 0)
  if (metric === 'euclidean') return -Math.sqrt(x.reduce((s, v, i) => s + (v - y[i]) ** 2, 0))
  const dot = x.reduce((s, v, i) => s + v * y[i], 0)
  const n = Math.sqrt(x.reduce((s, v) => s + v * v, 0)) * Math.sqrt(y.reduce((s, v) => s + v * v, 0))
  return n === 0 ? 0 : dot / n
}

describe('collections', () => {
  it('create is idempotent for the same configuration and AlreadyExistsError for another; collections lists them; drop removes one with its vectors', () => {
    expect(db.vectors.create(run, 'notes', { dimension: 3 })).toEqual({ created: true })
    expect(db.vectors.create(run, 'notes', { dimension: 3, metric: 'cosine' })).toEqual({ created: false })
    expectError(() => db.vectors.create(run, 'notes', { dimension: 4 }), AlreadyExistsError, 'ALREADY_EXISTS')
    expectError(() => db.vectors.create(run, 'notes', { dimension: 3, metric: 'dot' }), AlreadyExistsError, 'ALREADY_EXISTS')
    db.vectors.create(run, 'a', { dimension: 2, metric: 'euclidean' })
    expect(db.vectors.collections(run)).toEqual([
      { name: 'a', dimension: 2, metric: 'euclidean' },
      { name: 'notes', dimension: 3, metric: 'cosine' },
    ])
    db.vectors.upsert(run, 'notes', 'x', [1, 2, 3])
    expect(db.vectors.drop(run, 'notes')).toBe(true)
    expect(db.vectors.drop(run, 'notes')).toBe(false)
    expect(db.vectors.collections(run).map((c) => c.name)).toEqual(['a'])
    expectError(() => db.vectors.get(run, 'notes', 'x'), NotFoundError, 'NOT_FOUND')
  })

  it('bad input is a typed error naming what is wrong, and writes nothing', () => {
    db.vectors.create(run, 'c', { dimension: 3 })
    const v = db.stats().version
    const bad: [() => unknown, new (...a: never[]) => Error, string, RegExp][] = [
      [() => db.vectors.create(run, 'd', { dimension: 0 }), InvalidArgumentError, 'INVALID_ARGUMENT', /dimension/],
      [() => db.vectors.create(run, 'd', { dimension: 8193 }), InvalidArgumentError, 'INVALID_ARGUMENT', /dimension/],
      [() => db.vectors.create(run, 'd', { dimension: 3, metric: 'manhattan' as never }), InvalidArgumentError, 'INVALID_ARGUMENT', /metric/],
      [() => db.vectors.create(run, 'd', { dimension: 3, metrc: 'dot' } as never), InvalidArgumentError, 'INVALID_ARGUMENT', /did you mean 'metric'/],
      [() => db.vectors.upsert(run, 'c', 'x', [1, NaN, 3]), InvalidArgumentError, 'INVALID_ARGUMENT', /component 1/],
      [() => db.vectors.upsert(run, 'c', 'x', [1, Infinity, 3]), InvalidArgumentError, 'INVALID_ARGUMENT', /component 1/],
      [() => db.vectors.upsert(run, 'c', 'x', [1, 2]), InvalidArgumentError, 'INVALID_ARGUMENT', /2 dimensions; the collection has 3/],
      [() => db.vectors.upsert(run, 'c', '', [1, 2, 3]), InvalidArgumentError, 'INVALID_ARGUMENT', /vector id/],
      [() => db.vectors.upsert(run, 'missing', 'x', [1, 2, 3]), NotFoundError, 'NOT_FOUND', /does not exist/],
      [() => db.vectors.upsert(run, 'c', 'x', [1, 2, 3], { when: new Date() } as never), InvalidArgumentError, 'INVALID_ARGUMENT', /Date/],
      [() => db.vectors.upsert(run, 'c', 'k'.repeat(2000), [1, 2, 3]), LimitError, 'LIMIT_EXCEEDED', /limit/],
      [() => db.vectors.search(run, 'c', [1, 2, 3], { filter: { n: { $near: 1 } } }), InvalidArgumentError, 'INVALID_ARGUMENT', /\$near/],
      [() => db.vectors.search(run, 'c', [1, 2, 3], { k: 0 }), InvalidArgumentError, 'INVALID_ARGUMENT', /k must be/],
      [() => db.vectors.upsertMany(run, 'c', [{ id: 'ok', vector: [1, 2, 3] }, { id: 'bad', vector: [1, 2] }]), InvalidArgumentError, 'INVALID_ARGUMENT', /dimensions/],
    ]
    for (const [call, cls, code, message] of bad) {
      const err = expectError(call, cls as never, code)
      expect((err as Error).message).toMatch(message)
    }
    expect(db.stats().version).toBe(v)
    expect(db.vectors.count(run, 'c')).toBe(0)
  })
})

describe('search', () => {
  for (const metric of ['cosine', 'dot', 'euclidean'] as const) {
    it(`${metric}: the k best of 300 random vectors, in order, with the score a brute-force computation gives`, () => {
      const r = rng(metric.length)
      const dim = 16
      db.vectors.create(run, 'c', { dimension: dim, metric })
      const data = Array.from({ length: 300 }, (_, i) => ({ id: `v${i}`, vector: Array.from({ length: dim }, () => r() * 2 - 1), metadata: { i, even: i % 2 === 0 } }))
      db.vectors.upsertMany(run, 'c', data)
      expect(db.vectors.count(run, 'c')).toBe(300)
      for (let q = 0; q < 5; q++) {
        const query = Array.from({ length: dim }, () => r() * 2 - 1)
        const expected = data
          .map((d) => ({ id: d.id, score: score(metric, query, d.vector) }))
          .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
          .slice(0, 7)
        const got = db.vectors.search(run, 'c', query, { k: 7 })
        expect(got.map((h) => h.id)).toEqual(expected.map((e) => e.id))
        got.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i].score, 5))
        // A filter is applied before the k are chosen: k results when k match.
        const evens = db.vectors.search<{ i: number; even: boolean }>(run, 'c', Float32Array.from(query), { k: 7, filter: { even: true, i: { $gte: 100 } } })
        const want = data
          .filter((d) => d.metadata.even && d.metadata.i >= 100)
          .map((d) => ({ id: d.id, score: score(metric, query, d.vector) }))
          .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
          .slice(0, 7)
        expect(evens.map((h) => h.id)).toEqual(want.map((e) => e.id))
        expect(evens.every((h) => h.metadata?.even === true && h.metadata.i >= 100)).toBe(true)
      }
    })
  }

  it('filters: equality, comparisons, $in/$nin, $exists, $and/$or/$not, dotted paths, array fields', () => {
    db.vectors.create(run, 'c', { dimension: 2, metric: 'dot' })
    db.vectors.upsert(run, 'c', 'a', [1, 0], { kind: 'note', n: 1, tags: ['x', 'y'], user: { name: 'ada' } })
    db.vectors.upsert(run, 'c', 'b', [1, 0], { kind: 'task', n: 5, tags: ['y'] })
    db.vectors.upsert(run, 'c', 'c', [1, 0], { kind: 'note', n: 9 })
    db.vectors.upsert(run, 'c', 'd', [1, 0])
    const ids = (filter: object) =>
      db.vectors
        .search(run, 'c', [1, 0], { k: 10, filter: filter as never })
        .map((h) => h.id)
        .sort()
    expect(ids({ kind: 'note' })).toEqual(['a', 'c'])
    expect(ids({ n: { $gt: 1, $lte: 9 } })).toEqual(['b', 'c'])
    expect(ids({ tags: 'x' })).toEqual(['a'])
    expect(ids({ tags: { $in: ['y'] } })).toEqual(['a', 'b'])
    expect(ids({ kind: { $nin: ['task'] } })).toEqual(['a', 'c', 'd'])
    expect(ids({ tags: { $exists: false } })).toEqual(['c', 'd'])
    expect(ids({ 'user.name': 'ada' })).toEqual(['a'])
    expect(ids({ $or: [{ kind: 'task' }, { n: 9 }] })).toEqual(['b', 'c'])
    expect(ids({ $not: { kind: 'note' } })).toEqual(['b', 'd'])
    expect(ids({ $and: [{ kind: 'note' }, { n: { $ne: 1 } }] })).toEqual(['c'])
  })
})

describe('snapshots, transactions, forks, replay and durability', () => {
  it('a search in a transaction sees its snapshot plus its own upserts and deletes, not a later commit', () => {
    db.vectors.create(run, 'c', { dimension: 2, metric: 'euclidean' })
    db.vectors.upsert(run, 'c', 'far', [10, 10])
    db.vectors.upsert(run, 'c', 'mid', [3, 3])
    db.transaction(run, (tx) => {
      tx.vectors.upsert('c', 'near', [0.1, 0.1])
      tx.vectors.delete('c', 'mid')
      expect(tx.vectors.search('c', [0, 0], { k: 3 }).map((h) => h.id)).toEqual(['near', 'far'])
      expect(tx.vectors.count('c')).toBe(2)
    })
    expect(db.vectors.search(run, 'c', [0, 0], { k: 3 }).map((h) => h.id)).toEqual(['near', 'far'])
    // A transaction that throws leaves nothing.
    expect(() =>
      db.transaction(run, (tx) => {
        tx.vectors.upsert('c', 'ghost', [0, 0])
        throw new Error('abort')
      }),
    ).toThrow('abort')
    expect(db.vectors.get(run, 'c', 'ghost')).toBeUndefined()
  })

  it('a fork searches its parent as of the fork point plus its own writes; a replay view searches the run as it was', () => {
    db.vectors.create(run, 'c', { dimension: 2, metric: 'euclidean' })
    db.vectors.upsert(run, 'c', 'a', [1, 1], { v: 1 })
    const at = db.stats().version
    const fork = db.runs.fork(run)
    db.vectors.upsert(run, 'c', 'b', [0, 0]) // after the fork point
    db.vectors.upsert(fork, 'c', 'f', [0.5, 0.5])
    expect(db.vectors.search(fork, 'c', [0, 0], { k: 5 }).map((h) => h.id)).toEqual(['f', 'a'])
    expect(db.vectors.search(run, 'c', [0, 0], { k: 5 }).map((h) => h.id)).toEqual(['b', 'a'])
    const view = db.replay(run, { at })
    expect(view.vectors.search('c', [0, 0], { k: 5 }).map((h) => h.id)).toEqual(['a'])
    expect(view.vectors.get('c', 'a')?.metadata).toEqual({ v: 1 })
    view.close()
    // The run log names the writes.
    expect(db.runs.log(fork).flatMap((c) => c.writes.map((w) => `${w.primitive}:${w.key}`))).toContain('vectors:c/f')
  })

  it('diff compares vectors by collection/id and collections by name', () => {
    db.vectors.create(run, 'c', { dimension: 2 })
    db.vectors.upsert(run, 'c', 'same', [1, 0])
    db.vectors.upsert(run, 'c', 'moved', [1, 0])
    const fork = db.runs.fork(run)
    db.vectors.upsert(fork, 'c', 'moved', [0, 1], { why: 'edited' })
    db.vectors.upsert(fork, 'c', 'new', [1, 1])
    db.vectors.create(fork, 'extra', { dimension: 3, metric: 'dot' })
    const d = db.diff(run, fork)
    expect(d.vectors.added.map((e) => e.key).sort()).toEqual(['c/new', 'extra'])
    expect(d.vectors.changed.map((e) => e.key)).toEqual(['c/moved'])
    expect(d.vectors.changed[0].b).toMatchObject({ id: 'moved', metadata: { why: 'edited' } })
    expect(d.vectors.added.find((e) => e.key === 'extra')?.value).toEqual({ name: 'extra', dimension: 3, metric: 'dot' })
    expect(d.same).toBe(false)
    expectError(() => db.vectors.create(run, 'a/b', { dimension: 2 }), InvalidArgumentError, 'INVALID_ARGUMENT')
  })

  it('watch delivers vector upserts, named collection/id', async () => {
    db.vectors.create(run, 'c', { dimension: 2 })
    const it = db.watch({ run, primitives: ['vectors'] })
    const next = it.next()
    db.kv.put(run, 'not-a-vector', 1)
    db.vectors.upsert(run, 'c', 'x', [1, 0])
    const { value } = await next
    expect(value).toMatchObject({ primitive: 'vectors', key: 'c/x' })
    await it.return()
  })

  it('vectors survive a reopen, from the WAL and from a checkpoint, bit for bit', async () => {
    db.vectors.create(run, 'c', { dimension: 3, metric: 'cosine' })
    const v = Float32Array.from([0.1, -2.5, 3.75])
    db.vectors.upsert(run, 'c', 'x', v, { note: 'hi', big: 5n })
    db.close()
    for (const checkpoint of [false, true]) {
      db = Database.open(join(dir, 'db'))
      const got = db.vectors.get(run, 'c', 'x')
      expect(got?.vector).toEqual(v)
      expect(got?.metadata).toEqual({ note: 'hi', big: 5n })
      expect(db.vectors.search(run, 'c', v, { k: 1 })[0]).toMatchObject({ id: 'x', metadata: { note: 'hi', big: 5n } })
      if (checkpoint) await db.checkpoint()
      db.close()
    }
    db = Database.open(join(dir, 'db'))
  })
})

describe('the HNSW graph', () => {
  const N = 2000
  const D = 24
  /** `N` random vectors in collection `g`, metadata `{ i, even }`; returns them. */
  function fill(metric: 'cosine' | 'dot' | 'euclidean', seed: number): number[][] {
    const r = rng(seed)
    db.vectors.create(run, 'g', { dimension: D, metric })
    const vs = Array.from({ length: N }, () => Array.from({ length: D }, () => r() - 0.5))
    db.vectors.upsertMany(run, 'g', vs.map((vector, i) => ({ id: `v${i}`, vector, metadata: { i, even: i % 2 === 0 } })))
    return vs
  }
  const ids = (hits: { id: string }[]): string[] => hits.map((h) => h.id)
  const recall = (a: string[], truth: string[]): number => a.filter((id) => truth.includes(id)).length / truth.length

  it('stats().memory counts the graph while it exists (indexBytes)', () => {
    const before = db.stats().memory.indexBytes
    fill('euclidean', 7)
    const held = db.stats().memory.indexBytes - before
    // At least the vectors themselves (the graph keeps a copy of each), and
    // not more than a few times that with links and metadata.
    expect(held).toBeGreaterThan(N * D * 4)
    expect(held).toBeLessThan(N * D * 4 * 10)
    db.vectors.drop(run, 'g')
    expect(db.stats().memory.indexBytes).toBe(before)
  })

  it('finds what the exact scan finds, with the same scores, in every metric', () => {
    for (const metric of ['cosine', 'dot', 'euclidean'] as const) {
      db.vectors.drop(run, 'g')
      fill(metric, 42)
      const r = rng(7)
      let total = 0
      for (let t = 0; t < 10; t++) {
        const q = Array.from({ length: D }, () => r() - 0.5)
        const approx = db.vectors.search(run, 'g', q, { k: 10, ef: 128 })
        const exact = db.vectors.search(run, 'g', q, { k: 10, exact: true })
        expect(approx).toHaveLength(10)
        for (const h of approx) {
          const e = exact.find((x) => x.id === h.id)
          if (e) expect(h.score).toBe(e.score)
        }
        total += recall(ids(approx), ids(exact))
      }
      expect(total / 10, metric).toBeGreaterThanOrEqual(0.9)
    }
  })

  it('a filter holds for every result, and a filter few pass still returns all of them', () => {
    fill('cosine', 3)
    const q = Array.from({ length: D }, (_, i) => Math.sin(i))
    const even = db.vectors.search<{ i: number; even: boolean }>(run, 'g', q, { k: 20, filter: { even: true } })
    expect(even).toHaveLength(20)
    expect(even.every((h) => h.metadata!.even)).toBe(true)
    const few = db.vectors.search(run, 'g', q, { k: 10, filter: { i: { $in: [1, 999, 1998] } } })
    expect(ids(few).sort()).toEqual(['v1', 'v1998', 'v999'])
  })

  it('answers as of a transaction’s snapshot and its own writes, and of a replay view', () => {
    const vs = fill('euclidean', 5)
    const q = vs[17]
    const version = db.stats().version
    db.transaction(run, (tx) => {
      expect(tx.vectors.search('g', q, { k: 1 })[0].id).toBe('v17')
      tx.vectors.delete('g', 'v17')
      tx.vectors.upsert('g', 'mine', q.map((x) => x + 1e-4))
      expect(tx.vectors.search('g', q, { k: 1 })[0].id).toBe('mine')
    })
    expect(db.vectors.search(run, 'g', q, { k: 1 })[0].id).toBe('mine')
    const view = db.replay(run, { at: version })
    expect(view.vectors.search('g', q, { k: 1 })[0].id).toBe('v17')
    view.close()
  })

  it('is rebuilt at open from the log, loaded from beside a checkpoint, and rebuilt when that file is bad', async () => {
    const vs = fill('cosine', 9)
    const path = join(dir, 'db')
    const nearest = (q: number[]) => db.vectors.search(run, 'g', q, { k: 10 })
    expect(nearest(vs[3])[0].id).toBe('v3')
    // Closing writes a checkpoint, and the graph beside it.
    db.close()
    const manual = { checkpointOnClose: false }
    db = Database.open(path, manual)
    expect(db.stats().recovery.indexes).toEqual({ loaded: 1, rebuilt: [] })
    expect(nearest(vs[3])[0].id).toBe('v3')
    // After the checkpoint, in the WAL only: one vector moved onto another's place, one deleted.
    db.vectors.upsert(run, 'g', 'v5', vs[7])
    db.vectors.delete(run, 'g', 'v7')
    db.close()
    const saved = readdirSync(join(path, 'checkpoints')).filter((f) => f.endsWith('.indexes'))
    expect(saved).toHaveLength(1)
    const files = readdirSync(join(path, 'checkpoints', saved[0]))
    expect(files.filter((f) => f.endsWith('.nodes'))).toHaveLength(1)
    expect(files.filter((f) => f.endsWith('.graph'))).toHaveLength(1)

    db = Database.open(path, manual)
    expect(db.stats().recovery.indexes).toEqual({ loaded: 1, rebuilt: [] })
    const check = (count = N - 1) => {
      expect(nearest(vs[3])[0].id).toBe('v3')
      const at7 = nearest(vs[7])
      expect(at7[0].id).toBe('v5')
      expect(ids(at7)).not.toContain('v7')
      expect(recall(ids(at7), ids(db.vectors.search(run, 'g', vs[7], { k: 10, exact: true })))).toBeGreaterThanOrEqual(0.9)
      expect(db.vectors.count(run, 'g')).toBe(count)
    }
    check()
    db.close()

    // A damaged node table: the graph is rebuilt from the records, and said.
    const nodes = join(path, 'checkpoints', saved[0], files.find((f) => f.endsWith('.nodes'))!)
    const bytes = readFileSync(nodes)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(nodes, bytes)
    db = Database.open(path, manual)
    const { indexes } = db.stats().recovery
    expect(indexes.loaded).toBe(0)
    expect(indexes.rebuilt).toHaveLength(1)
    expect(indexes.rebuilt[0]).toMatch(/vector collection "g": the node table's checksum does not match; rebuilt from its records/)
    check()
    // The next checkpoint saves again, and the old one's files go with it.
    await db.checkpoint()
    db.vectors.upsert(run, 'g', 'late', vs[11])
    await db.checkpoint()
    const after = readdirSync(join(path, 'checkpoints')).filter((f) => f.endsWith('.indexes'))
    expect(after).toHaveLength(2)
    expect(after).not.toContain(saved[0])
    db.close()
    db = Database.open(path, manual)
    expect(db.stats().recovery.indexes).toEqual({ loaded: 1, rebuilt: [] })
    check(N)
    expect(nearest(vs[11]).slice(0, 2).map((h) => h.id).sort()).toEqual(['late', 'v11'])
  })

  it('a graph rebuilt from a checkpoint whose older versions are in history files still answers a replay from before the checkpoint (by scanning the records)', async () => {
    const vs = fill('cosine', 5)
    const path = join(dir, 'db')
    const before = db.kv.put(run, 'marker', 1) // the version to replay
    // Every vector moved: their old versions leave memory at the checkpoint.
    db.vectors.upsertMany(run, 'g', vs.map((v, i) => ({ id: `v${i}`, vector: v.map((x) => -x), metadata: { i, even: i % 2 === 0 } })))
    await db.checkpoint()
    expect(db.stats().memory.historyOnDisk.versions).toBeGreaterThanOrEqual(N)
    db.close()
    // No saved graph: it is rebuilt from the image's entries (the newest vectors only).
    for (const f of readdirSync(join(path, 'checkpoints')).filter((f) => f.endsWith('.indexes'))) rmSync(join(path, 'checkpoints', f), { recursive: true })
    db = Database.open(path, { checkpointOnClose: false })
    expect(db.stats().recovery.indexes.loaded).toBe(0)
    const view = db.replay(run, { at: before })
    for (const i of [3, 77, 1234]) {
      const hits = view.vectors.search('g', vs[i], { k: 3 })
      expect(hits[0].id, `v${i} as it was`).toBe(`v${i}`)
      expect(hits[0].score).toBeCloseTo(1, 5)
    }
    view.close()
    // Now: the moved vectors.
    expect(db.vectors.search(run, 'g', vs[3].map((x) => -x), { k: 1 })[0].id).toBe('v3')
  })

  it('a truncated, empty or missing .graph file is rebuilt from the records, said in stats().recovery.indexes, and searches stay right', () => {
    const vs = fill('euclidean', 13)
    const path = join(dir, 'db')
    db.close() // a checkpoint, and the graph beside it
    const saved = readdirSync(join(path, 'checkpoints')).find((f) => f.endsWith('.indexes'))!
    const graph = join(path, 'checkpoints', saved, readdirSync(join(path, 'checkpoints', saved)).find((f) => f.endsWith('.graph'))!)
    const whole = readFileSync(graph)
    const damages: [string, () => void][] = [
      ['cut to half its length', () => writeFileSync(graph, whole.subarray(0, whole.length >> 1))],
      ['cut by its last byte', () => writeFileSync(graph, whole.subarray(0, whole.length - 1))],
      ['empty', () => writeFileSync(graph, Buffer.alloc(0))],
      ['missing', () => rmSync(graph)],
    ]
    for (const [what, damage] of damages) {
      damage()
      db = Database.open(path, { checkpointOnClose: false })
      const { indexes } = db.stats().recovery
      expect(indexes.loaded, what).toBe(0)
      expect(indexes.rebuilt, what).toHaveLength(1)
      expect(indexes.rebuilt[0], what).toMatch(/^vector collection "g": usearch could not load .*\.graph: .+; rebuilt from its records$/)
      expect(db.vectors.count(run, 'g'), what).toBe(N)
      let total = 0
      for (const i of [0, 17, 503, 1999]) {
        const approx = db.vectors.search(run, 'g', vs[i], { k: 10 })
        const exact = db.vectors.search(run, 'g', vs[i], { k: 10, exact: true })
        expect(exact[0].id, what).toBe(`v${i}`)
        expect(approx[0], what).toEqual(exact[0])
        total += recall(ids(approx), ids(exact))
      }
      expect(total / 4, what).toBeGreaterThanOrEqual(0.9)
      db.close()
      writeFileSync(graph, whole)
    }
    // The whole file again: loaded.
    db = Database.open(path, { checkpointOnClose: false })
    expect(db.stats().recovery.indexes).toEqual({ loaded: 1, rebuilt: [] })
  })

  it('ef and exact are checked', () => {
    fill('dot', 1)
    const q = new Array(D).fill(0.1)
    for (const ef of [0, 1.5, 10_001, Number.NaN, '8']) {
      const e = expectError(() => db.vectors.search(run, 'g', q, { ef: ef as number }), InvalidArgumentError, 'INVALID_ARGUMENT')
      expect(e.message).toContain('ef must be an integer 1–10,000')
    }
    const e = expectError(() => db.vectors.search(run, 'g', q, { exact: 'yes' as unknown as boolean }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(e.message).toContain('exact must be true or false')
    expect(db.vectors.search(run, 'g', q, { k: 5, ef: 1 })).toHaveLength(5)
  })
})
