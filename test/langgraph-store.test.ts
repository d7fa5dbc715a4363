// InMemStore against LangGraph's reference InMemoryStore: randomized batches
// of puts, deletes, gets, filtered searches and namespace listings give the
// same answers; semantic search ranks as the reference does.
import { InMemoryStore, type Item, type Operation } from '@langchain/langgraph-checkpoint'
import { describe, expect, it } from 'vitest'
import { Database, InvalidArgumentError } from '../dist/index.js'
import { InMemStore } from '../dist/langgraph/index.js'
import { expectRejection, makeTmpDir, removeDir } from './helpers.js'

/** mulberry32: a small seeded PRNG, so a failure reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const LABELS = ['a', 'b', 'docs', 'users', 'x1']
const KEYS = ['k1', 'k2', 'k3', 'note:1', 'k 5']
const WORDS = ['red', 'green', 'blue']

function gen(seed: number) {
  const r = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]
  const int = (n: number) => Math.floor(r() * n)
  const namespace = () => Array.from({ length: 1 + int(3) }, () => pick(LABELS))
  const value = () => ({ n: int(10), s: pick(WORDS), t: r() < 0.5, nested: { deep: int(3) } })
  const filter = (): Record<string, unknown> =>
    pick([
      () => ({ n: int(10) }),
      () => ({ s: pick(WORDS) }),
      () => ({ n: { $gt: int(10) } }),
      () => ({ n: { $gte: int(10), $lt: int(10) } }),
      () => ({ n: { $lte: int(10) }, s: { $ne: pick(WORDS) } }),
      () => ({ s: { $in: [pick(WORDS), pick(WORDS)] } }),
      () => ({ s: { $nin: [pick(WORDS)] }, t: { $eq: r() < 0.5 } }),
      () => ({ t: r() < 0.5 }),
      () => ({}),
    ])()
  const prefix = () => namespace().slice(0, int(3))
  const op = (): Operation =>
    pick([
      () => ({ namespace: namespace(), key: pick(KEYS), value: value() }),
      () => ({ namespace: namespace(), key: pick(KEYS), value: value() }),
      () => ({ namespace: namespace(), key: pick(KEYS), value: null }),
      () => ({ namespace: namespace(), key: pick(KEYS) }),
      () => ({ namespacePrefix: prefix(), filter: filter(), limit: 1000, offset: 0 }),
      () => ({ namespacePrefix: prefix(), filter: filter(), limit: 1 + int(4), offset: int(4) }),
      () => ({
        matchConditions: r() < 0.5 ? undefined : [{ matchType: pick(['prefix', 'suffix'] as const), path: [pick([...LABELS, '*'])] }],
        maxDepth: r() < 0.5 ? undefined : 1 + int(3),
        limit: 1 + int(20),
        offset: int(3),
      }),
    ])() as Operation
  return { batch: () => Array.from({ length: 1 + int(8) }, op), int }
}

const plain = (i: Item | null) => (i === null ? null : { namespace: i.namespace, key: i.key, value: i.value })
const id = (i: Item) => `${i.namespace.join(':')}/${i.key}`

/** The reference keeps a namespace once touched, even with no item left (or put only by a delete); in-mem lists namespaces that hold items. */
function pruneEmpty(ref: InMemoryStore): void {
  const data = (ref as unknown as { data: Map<string, Map<string, unknown>> }).data
  for (const [ns, items] of data) if (items.size === 0) data.delete(ns)
}

describe('InMemStore against InMemoryStore', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`gives the same answers to 150 random batches (seed ${seed})`, async () => {
      const db = Database.open()
      const ours = new InMemStore(db)
      const ref = new InMemoryStore()
      const { batch } = gen(seed)
      let compared = 0
      for (let b = 0; b < 150; b++) {
        const ops = batch()
        pruneEmpty(ref)
        // For paged searches: the whole answer of each store before the batch (its reads see that state).
        const whole = ops.map((op) => ('namespacePrefix' in op ? { ...op, limit: 100_000, offset: 0 } : { namespacePrefix: [], limit: 0 })) as Operation[]
        const refWhole = (await ref.batch(structuredClone(whole))) as Item[][]
        const ourWhole = (await ours.batch(structuredClone(whole))) as Item[][]
        // The reference's get returns its live item, which a later put of the same batch changes in place: take its answers first.
        const gets = ops.map((op) => ('key' in op && !('value' in op) ? op : { namespace: ['a'], key: 'k1' })) as Operation[]
        const refGets = structuredClone(await ref.batch(structuredClone(gets))) as (Item | null)[]
        const want = await ref.batch(structuredClone(ops))
        const got = await ours.batch(structuredClone(ops))
        expect(got.length).toBe(want.length)
        ops.forEach((op, i) => {
          const what = `batch ${b} op ${i}: ${JSON.stringify(op)}`
          if ('namespacePrefix' in op) {
            const g = got[i] as Item[]
            const w = want[i] as Item[]
            if ((op.offset ?? 0) === 0 && (op.limit ?? 10) >= 1000) {
              // Search order is the reference's insertion order, which it does not promise: compare as sets.
              expect(g.map(plain).sort((x, y) => id(x as Item).localeCompare(id(y as Item))), what).toEqual(w.map(plain).sort((x, y) => id(x as Item).localeCompare(id(y as Item))))
            } else {
              // A page: as long as the reference's, taken in order from in-mem's whole answer, which has the reference's items.
              expect(g.length, what).toBe(w.length)
              const offset = op.offset ?? 0
              expect(g.map(plain), what).toEqual(ourWhole[i].slice(offset, offset + (op.limit ?? 10)).map(plain))
              expect(new Set(ourWhole[i].map(id)), what).toEqual(new Set(refWhole[i].map(id)))
            }
          } else if ('matchConditions' in op || 'maxDepth' in op) {
            expect(got[i], what).toEqual(want[i])
          } else if (!('value' in op)) {
            expect(plain(got[i] as Item | null), what).toEqual(plain(refGets[i]))
          } else {
            expect(got[i], what).toBeNull()
          }
          compared++
        })
        // The whole contents agree after each batch.
        pruneEmpty(ref)
        const everything = { namespacePrefix: [], limit: 100_000, offset: 0 }
        const [g] = await ours.batch([everything])
        const [w] = await ref.batch([everything])
        expect((g as Item[]).map(plain).sort((x, y) => id(x as Item).localeCompare(id(y as Item)))).toEqual(
          (w as Item[]).map(plain).sort((x, y) => id(x as Item).localeCompare(id(y as Item))),
        )
        expect(await ours.listNamespaces({ limit: 1000 })).toEqual(await ref.listNamespaces({ limit: 1000 }))
      }
      expect(compared).toBeGreaterThan(500)
      db.close()
    })
  }
})

/** Deterministic embeddings: letter counts of the text, so similar texts are near. */
class LetterEmbeddings {
  calls = 0
  async embedDocuments(texts: string[]): Promise<number[][]> {
    this.calls += texts.length
    return texts.map((t) => this.#embed(t))
  }
  async embedQuery(text: string): Promise<number[]> {
    return this.#embed(text)
  }
  #embed(text: string): number[] {
    const v = new Array<number>(26).fill(0)
    for (const c of text.toLowerCase()) {
      const i = c.charCodeAt(0) - 97
      if (i >= 0 && i < 26) v[i] += 1
    }
    v[0] += 0.01
    return v
  }
}

const DOCS: [string[], string, Record<string, unknown>, false | string[] | undefined][] = [
  [['docs'], 'py', { text: 'python tutorial for beginners', kind: 'guide' }, undefined],
  [['docs'], 'ts', { text: 'typescript handbook', kind: 'guide' }, undefined],
  [['docs', 'deep'], 'rust', { text: 'rust ownership and borrowing', kind: 'book' }, undefined],
  [['docs', 'deep'], 'multi', { text: 'zzz', tags: ['python snakes', 'typed tyrannosaurus'] }, ['tags[*]']],
  [['docs'], 'plain', { text: 'python but never indexed' }, false],
  [['other'], 'py2', { text: 'python tutorial' }, undefined],
]

describe('InMemStore semantic search', () => {
  it('ranks items as InMemoryStore does, with their scores, unindexed items last', async () => {
    const db = Database.open()
    const index = { dims: 26, embeddings: new LetterEmbeddings() as never, fields: ['text'] }
    const ours = new InMemStore(db, { index })
    const ref = new InMemoryStore({ index })
    for (const store of [ours, ref]) for (const [ns, key, value, idx] of DOCS) await store.put(ns, key, value, idx)
    for (const [prefix, query, filter, limit, offset] of [
      [['docs'], 'python tutorial', undefined, 10, 0],
      [['docs'], 'typescript', { kind: 'guide' }, 10, 0],
      [[], 'python', undefined, 3, 1],
      [['docs', 'deep'], 'tyrannosaurus', undefined, 10, 0],
    ] as const) {
      const opts = { query, filter: filter as Record<string, unknown> | undefined, limit, offset }
      const got = await ours.search([...prefix], opts)
      const want = await ref.search([...prefix], opts)
      expect(got.map(id), query).toEqual(want.map(id))
      got.forEach((g, i) => {
        if (want[i].score === undefined) expect(g.score).toBeUndefined()
        else expect(g.score!).toBeCloseTo(want[i].score!, 5)
      })
    }
    db.close()
  })

  it('replaces an item\'s vectors when it is put again and drops them when it is deleted', async () => {
    const db = Database.open()
    const ours = new InMemStore(db, { index: { dims: 26, embeddings: new LetterEmbeddings() as never, fields: ['text'] } })
    await ours.put(['n'], 'a', { text: 'python' })
    await ours.put(['n'], 'a', { text: 'rust' })
    expect(db.vectors.count(ours.run, 'store')).toBe(1)
    const [hit] = await ours.search(['n'], { query: 'rust' })
    expect(hit.value).toEqual({ text: 'rust' })
    expect(hit.score!).toBeCloseTo(1, 3)
    await ours.delete(['n'], 'a')
    expect(db.vectors.count(ours.run, 'store')).toBe(0)
    expect(await ours.search(['n'], { query: 'rust' })).toEqual([])
    db.close()
  })
})

describe('InMemStore', () => {
  it('keeps createdAt when an item is put again and moves updatedAt', async () => {
    const db = Database.open()
    const store = new InMemStore(db)
    await store.put(['u'], 'k', { v: 1 })
    const first = (await store.get(['u'], 'k'))!
    await new Promise((r) => setTimeout(r, 5))
    await store.put(['u'], 'k', { v: 2 })
    const second = (await store.get(['u'], 'k'))!
    expect(second.value).toEqual({ v: 2 })
    expect(second.createdAt.getTime()).toBe(first.createdAt.getTime())
    expect(second.updatedAt.getTime()).toBeGreaterThan(first.updatedAt.getTime())
    db.close()
  })

  it('refuses a batch with a value in-mem cannot store, and writes none of it', async () => {
    const db = Database.open()
    const store = new InMemStore(db)
    await expectRejection(
      store.batch([
        { namespace: ['u'], key: 'ok', value: { v: 1 } },
        { namespace: ['u'], key: 'bad', value: { when: new Date() } },
      ]),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    )
    expect(await store.get(['u'], 'ok')).toBeNull()
    expect(await store.listNamespaces()).toEqual([])
    db.close()
  })

  it('refuses namespaces that are not arrays of plain labels', async () => {
    const db = Database.open()
    const store = new InMemStore(db)
    await expectRejection(store.batch([{ namespace: ['a:b'], key: 'k', value: { v: 1 } }]), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(store.batch([{ namespace: [], key: 'k', value: { v: 1 } }]), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(store.batch([{ namespace: 'a' as never, key: 'k' }]), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(await store.listNamespaces()).toEqual([])
    db.close()
  })

  it('is durable: items, namespaces and vectors are there after a reopen', async () => {
    const dir = makeTmpDir('in-mem-lg-store')
    try {
      const index = { dims: 26, embeddings: new LetterEmbeddings() as never, fields: ['text'] }
      let db = Database.open(dir, { durability: 'strict' })
      await new InMemStore(db, { index }).put(['mem', 'facts'], 'f1', { text: 'the sky is blue' })
      db.close()
      db = Database.open(dir)
      const store = new InMemStore(db, { index })
      expect((await store.get(['mem', 'facts'], 'f1'))?.value).toEqual({ text: 'the sky is blue' })
      expect(await store.listNamespaces()).toEqual([['mem', 'facts']])
      const [hit] = await store.search(['mem'], { query: 'blue sky' })
      expect(hit.key).toBe('f1')
      expect(hit.score).toBeGreaterThan(0.5)
      db.close()
    } finally {
      removeDir(dir)
    }
  })
})
