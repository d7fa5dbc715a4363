// Vector search as of a snapshot (SPEC §14, issue 12), as a randomized
// property: random upserts, deletes, drops and transactions (some rolled
// back) on a run, forks of it at random versions (and forks of those) with
// writes of their own, and at random points a search on the live run, in a
// transaction, on a fork and on `db.replay(run, { at })`, each compared with
// the same search on a *copy*: a fresh run in a separate memory database
// filled with exactly the vectors visible there and then.
//
// What must be equal and what may only be close:
//   - `exact: true` is exact everywhere: same ids, same order, same scores,
//     same metadata as the copy's exact search.
//   - A fork always scans (its data is its parent's plus its own), so its
//     search without `exact` equals the copy's exact search too.
//   - The live run, a transaction and a replay view walk the HNSW graph when
//     the collection has 1,000 vectors or more (a replay view scans only when
//     its version is older than what the graph still holds): approximate.
//     Each hit must still be a vector visible there that passes the filter,
//     with exactly the score the copy gives it, in score order; there must be
//     min(k, matches) hits; and recall@k against the copy's exact search is
//     averaged and must be ≥ 0.9.
//
// The seed is random; it is printed, a failure names it, and
// VECTORS_SEED=<seed> repeats the run.
import { afterAll, describe, expect, it } from 'vitest'
import { Database, NotFoundError, type SearchHit, type VectorFilter } from '../dist/index.js'
import { Rng } from './helpers.js'

const DIM = 8
/** Ids are drawn from this many, so upserts both insert and replace. */
const IDS = 1_600
/** The collection is (re)filled with this many: past the 1,000 under which search scans. */
const FILL = 1_250
type Metric = 'cosine' | 'dot' | 'euclidean'
const METRICS: readonly Metric[] = ['cosine', 'dot', 'euclidean']

interface Meta {
  g: number
  n: number
  tag?: string
  nested?: { x: number }
}
interface Stored {
  vector: number[]
  metadata: Meta | undefined
}
/** A collection as one run sees it at one version; `undefined` when it does not exist. */
interface State {
  metric: Metric
  vectors: Map<string, Stored>
}

const seed = process.env.VECTORS_SEED !== undefined ? Number(process.env.VECTORS_SEED) >>> 0 : (Math.random() * 0x1_0000_0000) >>> 0
const note = `vectors property: seed ${seed} (VECTORS_SEED=${seed} repeats it)`
console.log(note)

const copies = Database.open()
afterAll(() => copies.close())

/** Components as they are stored (f32). */
const f32 = (v: number[]): number[] => Array.from(Float32Array.from(v))

function randomVector(r: Rng): number[] {
  return f32(Array.from({ length: DIM }, () => r.next() * 2 - 1))
}

function randomMeta(r: Rng): Meta | undefined {
  if (r.chance(0.05)) return undefined
  const m: Meta = { g: r.int(10), n: r.next() }
  if (r.chance(0.8)) m.tag = r.pick(['a', 'b', 'c'])
  if (r.chance(0.7)) m.nested = { x: r.int(5) }
  return m
}

function randomFilter(r: Rng, depth = 0): VectorFilter | undefined {
  const leaf = (): VectorFilter => {
    switch (r.int(9)) {
      case 0:
        return { g: r.int(10) }
      case 1:
        return { g: { $in: [r.int(10), r.int(10), r.int(10), r.int(10)] } }
      case 2:
        return { n: { $gte: r.next() } }
      case 3:
        return { n: { $lt: r.next() } }
      case 4:
        return { tag: { $ne: r.pick(['a', 'b', 'c']) } }
      case 5:
        return { tag: { $exists: r.chance(0.5) } }
      case 6:
        return { 'nested.x': { $lte: r.int(5) } }
      case 7:
        return { tag: { $nin: [r.pick(['a', 'b', 'c'])] } }
      default:
        return { g: { $gt: r.int(10) }, tag: r.pick(['a', 'b', 'c']) }
    }
  }
  if (depth === 0 && r.chance(0.35)) return undefined
  if (depth > 0 || r.chance(0.6)) return leaf()
  const op = r.pick(['$and', '$or', '$not'] as const)
  if (op === '$not') return { $not: randomFilter(r, depth + 1)! }
  return { [op]: [randomFilter(r, depth + 1)!, randomFilter(r, depth + 1)!] }
}

/** A fresh run in the copies database holding exactly `state`; undefined when there is no collection. */
function copyOf(state: State | undefined): string | undefined {
  if (state === undefined) return undefined
  const run = copies.runs.begin()
  copies.vectors.create(run, 'c', { dimension: DIM, metric: state.metric })
  const entries = [...state.vectors].map(([id, s]) => ({ id, vector: s.vector, metadata: s.metadata }))
  for (let b = 0; b < entries.length; b += 1000) copies.vectors.upsertMany(run, 'c', entries.slice(b, b + 1000))
  return run
}

type Search = (query: number[], opts: { k: number; filter?: VectorFilter; exact?: boolean }) => SearchHit[]

/** Recall of the approximate searches, by where they ran. */
const recalls = new Map<string, { sum: number; n: number }>()

/**
 * Checks `search` (somewhere in the database under test) against the same
 * searches on a copy of `state`: `exact` always equal, and without it
 * equal when `scans`, else a valid approximation whose recall is counted
 * under `where`.
 */
function compare(r: Rng, where: string, state: State | undefined, search: Search, scans: boolean): void {
  const copy = copyOf(state)
  try {
    for (let t = 0; t < 3; t++) {
      const ids = state === undefined ? [] : [...state.vectors.keys()]
      const query = ids.length > 0 && r.chance(0.3) ? state!.vectors.get(r.pick(ids))!.vector : randomVector(r)
      const k = r.pick([1, 5, 10, 25])
      const filter = randomFilter(r)
      const context = `${note}; ${where}, k ${k}, filter ${JSON.stringify(filter)}`
      if (copy === undefined) {
        expect(() => search(query, { k, filter }), context).toThrow(NotFoundError)
        continue
      }
      const want = copies.vectors.search(copy, 'c', query, { k, filter, exact: true })
      expect(search(query, { k, filter, exact: true }), `${context}, exact`).toEqual(want)
      const got = search(query, { k, filter })
      if (scans) {
        expect(got, context).toEqual(want)
        continue
      }
      // Every vector that passes the filter, with its exact score.
      const all = new Map(copies.vectors.search(copy, 'c', query, { k: 10_000, filter, exact: true }).map((h) => [h.id, h]))
      expect(got.length, `${context}: hits`).toBe(Math.min(k, all.size))
      for (const [i, h] of got.entries()) {
        expect(h, `${context}: hit ${i}`).toEqual(all.get(h.id))
        if (i > 0) expect(got[i - 1].score >= h.score, `${context}: hits out of order`).toBe(true)
      }
      expect(new Set(got.map((h) => h.id)).size, `${context}: a hit twice`).toBe(got.length)
      if (want.length > 0) {
        const truth = new Set(want.map((h) => h.id))
        const rec = recalls.get(where) ?? { sum: 0, n: 0 }
        rec.sum += got.filter((h) => truth.has(h.id)).length / want.length
        rec.n++
        recalls.set(where, rec)
      }
    }
  } finally {
    if (copy !== undefined) copies.runs.delete(copy)
  }
}

/** Random writes applied both to `db` (through `write`) and to `state`. */
interface Writer {
  upsert(id: string, vector: number[], metadata: Meta | undefined): void
  upsertMany(entries: { id: string; vector: number[]; metadata: Meta | undefined }[]): void
  delete(id: string): boolean
}

function randomWrites(r: Rng, w: Writer, state: State, n: number): void {
  for (let i = 0; i < n; i++) {
    const id = `v${r.int(IDS)}`
    const roll = r.next()
    // The state first: a writer records it once the write returns.
    if (roll < 0.45) {
      const s = { vector: randomVector(r), metadata: randomMeta(r) }
      state.vectors.set(id, s)
      w.upsert(id, s.vector, s.metadata)
    } else if (roll < 0.9) {
      const existed = state.vectors.delete(id)
      expect(w.delete(id), `${note}: delete ${id}`).toBe(existed)
    } else {
      const entries = Array.from({ length: r.range(2, 30) }, () => ({ id: `v${r.int(IDS)}`, vector: randomVector(r), metadata: randomMeta(r) }))
      for (const e of entries) state.vectors.set(e.id, { vector: e.vector, metadata: e.metadata })
      w.upsertMany(entries)
    }
  }
}

function cloneState(s: State | undefined): State | undefined {
  return s === undefined ? undefined : { metric: s.metric, vectors: new Map(s.vectors) }
}

describe('vector search on forks, replay views and in transactions equals search on a copy made at that point', () => {
  it('random upserts, deletes, drops, transactions and forks (memory)', () => {
    const r = new Rng(seed)
    const db = Database.open()
    try {
      const run = db.runs.begin()
      /** What `run` showed after each of its commits, oldest first. */
      const history: { version: number; state: State | undefined }[] = []
      let state: State | undefined
      const record = () => history.push({ version: db.stats().version, state: cloneState(state) })
      const writer = (target: string): Writer => ({
        upsert: (id, vector, metadata) => {
          db.vectors.upsert(target, 'c', id, vector, metadata)
          if (target === run) record()
        },
        upsertMany: (entries) => {
          db.vectors.upsertMany(target, 'c', entries)
          if (target === run) record()
        },
        delete: (id) => {
          const existed = db.vectors.delete(target, 'c', id)
          if (target === run) record()
          return existed
        },
      })
      const fill = (metric: Metric) => {
        db.vectors.create(run, 'c', { dimension: DIM, metric })
        state = { metric, vectors: new Map() }
        record()
        const entries = Array.from({ length: FILL }, (_, i) => ({ id: `v${i}`, vector: randomVector(r), metadata: randomMeta(r) }))
        for (const e of entries) state.vectors.set(e.id, { vector: e.vector, metadata: e.metadata })
        writer(run).upsertMany(entries)
      }
      fill(r.pick(METRICS))

      for (let step = 0; step < 24; step++) {
        const roll = r.next()
        if (roll < 0.06 && step > 3) {
          // Drop, and later create again, perhaps with another metric.
          expect(db.vectors.drop(run, 'c')).toBe(true)
          state = undefined
          record()
          fill(r.pick(METRICS))
        } else if (roll < 0.25) {
          // A transaction: its searches see its snapshot and its own writes.
          const mine = cloneState(state)!
          const abort = r.chance(0.25)
          try {
            db.transaction(run, (tx) => {
              const w: Writer = {
                upsert: (id, v, m) => tx.vectors.upsert('c', id, v, m),
                upsertMany: (entries) => tx.vectors.upsertMany('c', entries),
                delete: (id) => tx.vectors.delete('c', id),
              }
              randomWrites(r, w, mine, r.range(1, 12))
              compare(r, 'transaction', mine, (q, o) => tx.vectors.search('c', q, o), mine.vectors.size < 1000)
              if (abort) throw new Error('roll back')
            })
          } catch (e) {
            if (!abort) throw e
          }
          if (!abort) {
            state = mine
            record()
          }
        } else {
          randomWrites(r, writer(run), state!, r.range(1, 25))
        }

        if (r.chance(0.5)) compare(r, 'live run', state, (q, o) => db.vectors.search(run, 'c', q, o), state!.vectors.size < 1000)

        if (r.chance(0.4)) {
          // A replay view at a random version, perhaps between two of the run's commits.
          const i = r.int(history.length)
          const next = history[i + 1]?.version ?? db.stats().version + 1
          const at = r.range(history[i].version, next - 1)
          const then = history[i].state
          const view = db.replay(run, { at })
          try {
            compare(r, 'replay view', then, (q, o) => view.vectors.search('c', q, o), then === undefined || then.vectors.size < 1000)
          } finally {
            view.close()
          }
        }

        if (r.chance(0.3)) {
          // A fork at a random version, with writes of its own, and perhaps a fork of that.
          const i = r.int(history.length)
          let forkState = cloneState(history[i].state)
          let fork = db.runs.fork(run, { at: history[i].version })
          for (let depth = 0; depth < 2; depth++) {
            compare(r, 'fork', forkState, (q, o) => db.vectors.search(fork, 'c', q, o), true)
            if (forkState === undefined) break
            randomWrites(r, writer(fork), forkState, r.range(1, 10))
            compare(r, 'fork', forkState, (q, o) => db.vectors.search(fork, 'c', q, o), true)
            if (r.chance(0.5)) break
            fork = db.runs.fork(fork)
            forkState = cloneState(forkState)
          }
        }
      }

      // The run's own state at the end, and every recorded version once more through replay.
      compare(r, 'live run', state, (q, o) => db.vectors.search(run, 'c', q, o), false)
      for (const { version, state: then } of Array.from({ length: 4 }, () => r.pick(history))) {
        const view = db.replay(run, { at: version })
        try {
          compare(r, 'replay view', then, (q, o) => view.vectors.search('c', q, o), then === undefined || then.vectors.size < 1000)
        } finally {
          view.close()
        }
      }

      // The live searches went through the graph: with a tiny ef some answer differs from the exact scan.
      // (The random steps may have left the collection dropped, or below the
      // size under which every search scans exactly: it is filled up first.)
      if (state === undefined) db.vectors.create(run, 'c', { dimension: DIM, metric: 'cosine' })
      const live = db.vectors.count(run, 'c')
      if (live < FILL) db.vectors.upsertMany(run, 'c', Array.from({ length: FILL - live }, (_, i) => ({ id: `extra${i}`, vector: randomVector(r), metadata: randomMeta(r) })))
      let differ = 0
      // (In few dimensions the walk is often exact: up to 400 queries of the
      // 100 nearest, until one differs.)
      for (let t = 0; t < 400 && differ === 0; t++) {
        const q = randomVector(r)
        const a = db.vectors.search(run, 'c', q, { k: 100, ef: 1 }).map((h) => h.id)
        const b = db.vectors.search(run, 'c', q, { k: 100, exact: true }).map((h) => h.id)
        if (a.join() !== b.join()) differ++
      }
      expect(differ, `${note}: no search walked the graph`).toBeGreaterThan(0)
    } finally {
      db.close()
    }
    for (const [where, { sum, n }] of recalls) {
      expect(sum / n, `${note}: mean recall@k of ${n} approximate searches (${where})`).toBeGreaterThanOrEqual(0.9)
    }
    expect(recalls.get('live run')?.n ?? 0, note).toBeGreaterThan(0)
  })
})
