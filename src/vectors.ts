/**
 * Vectors: collections of fixed-dimension vectors with metadata, per run,
 * and nearest-neighbour search with metadata filters (SPEC §14).
 *
 * Vectors are stored in the MVCC store like every other record, so they are
 * in transactions, the WAL, checkpoints, replay views and forks; a search
 * answers as of its snapshot (in a transaction: plus its own upserts and
 * deletes). Search walks an HNSW graph per collection, in the native
 * addon, with the filter applied during the walk (approximate: `ef` trades
 * speed for recall), or scores every vector: with `exact: true`, for a
 * collection under 1,000 vectors, a filter that admits few, a fork, and a
 * replay view older than the graph still holds.
 * @module
 */
import { type Storable, type Value, decode, encode } from './codec.js'
import { InvalidArgumentError } from './errors.js'
import type { OpTarget } from './ops.js'
import { checkOptions } from './options.js'
import { checkWellFormed } from './keys.js'

/** How a collection scores a match; higher is better for all three. */
export type Metric = 'cosine' | 'dot' | 'euclidean'

/** Options of {@link Vectors.create}. */
export interface CollectionOptions {
  /** Components per vector, 1–8192. */
  dimension: number
  /** `cosine` (similarity), `dot` (product) or `euclidean` (negated L2 distance). Default `cosine`. */
  metric?: Metric
}

/** What {@link Vectors.create} did. */
export interface CreatedCollection {
  /** False when the collection existed already with this configuration. */
  created: boolean
}

/** A collection as {@link Vectors.collections} lists it. */
export interface CollectionInfo {
  /** The collection's name. */
  name: string
  /** Components per vector. */
  dimension: number
  /** How matches are scored. */
  metric: Metric
}

/** A stored vector. */
export interface VectorRecord<M = Value> {
  /** The vector's id in its collection. */
  id: string
  /** Its components. */
  vector: Float32Array
  /** The metadata given to `upsert`, or `undefined`. */
  metadata: M | undefined
}

/** One entry of {@link Vectors.upsertMany}. */
export interface VectorEntry<M = Value> {
  /** The vector's id in its collection (1–1024 bytes of UTF-8, no NUL). */
  id: string
  /** Its components: finite numbers, as many as the collection's dimension. */
  vector: Float32Array | readonly number[]
  /** Any storable value; search filters read it. */
  metadata?: M
}

/**
 * A MongoDB-style predicate over metadata: `{ field: value }` (equality;
 * an array field matches a value it contains), `$eq $ne $gt $gte $lt $lte
 * $in $nin $exists`, `$and $or $not`, and dotted paths into nested objects.
 */
export type VectorFilter = { [key: string]: Value }

/** Options of {@link Vectors.search}. */
export interface SearchOptions {
  /** How many results, 1–10,000. Default 10. */
  k?: number
  /** Only vectors whose metadata passes this predicate. */
  filter?: VectorFilter
  /**
   * The HNSW walk's expansion, 1–10,000 (at least `k` is used): higher finds
   * the true nearest more often and costs more. Default 64.
   */
  ef?: number
  /**
   * Score every vector instead of walking the index: exact, and linear in
   * the collection's size. A search is exact anyway for a collection under
   * 1,000 vectors, a filter that admits few vectors, a fork, and a replay of
   * an older version.
   */
  exact?: boolean
}

/** A search result: higher `score` is nearer. */
export interface SearchHit<M = Value> {
  /** The vector's id. */
  id: string
  /** Cosine similarity, dot product or negated L2 distance: higher is nearer. */
  score: number
  /** Its metadata, or `undefined`. */
  metadata: M | undefined
}

interface RawVector {
  id: string
  vector: Buffer
  metadata: Buffer | null
}

function checkName(what: string, v: unknown): asserts v is string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${what} must be a string`)
  checkWellFormed(what, v)
}

/** A vector as the little-endian f32 bytes the engine takes; bad components are refused here. */
function vectorBytes(v: unknown): Buffer {
  if (!(v instanceof Float32Array) && !Array.isArray(v)) {
    throw new InvalidArgumentError('a vector must be a Float32Array or an array of numbers')
  }
  const out = Buffer.alloc(4 * v.length)
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as unknown
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new InvalidArgumentError(`component ${i} of the vector is ${String(x)}, not a finite number`)
    out.writeFloatLE(x, 4 * i)
  }
  return out
}

function toFloat32(b: Buffer): Float32Array {
  const out = new Float32Array(b.length / 4)
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i)
  return out
}

function metadataBytes(m: unknown): Buffer | undefined {
  return m === undefined ? undefined : Buffer.from(encode(m))
}

/**
 * The vector collections of each run (`db.vectors`, `scope.vectors`,
 * `tx.vectors`, and the reading methods on a replay view).
 */
export class Vectors {
  /** @internal */
  constructor(private readonly target: OpTarget) {}

  /**
   * Creates a collection; `{ created: false }` when it exists with the same
   * configuration. @throws AlreadyExistsError when it exists with another
   */
  create(run: string, collection: string, opts: CollectionOptions): CreatedCollection {
    checkName('a collection name', collection)
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('create takes { dimension, metric? }')
    checkOptions(opts, ['dimension', 'metric'], 'vectors.create options')
    const { dimension, metric = 'cosine' } = opts
    if (typeof dimension !== 'number' || !Number.isInteger(dimension)) throw new InvalidArgumentError('dimension must be an integer 1–8192')
    if (typeof metric !== 'string') throw new InvalidArgumentError("metric must be 'cosine', 'dot' or 'euclidean'")
    return { created: this.target.write(run, (tx) => tx.vectorsCreate(run, collection, dimension, metric)) }
  }

  /** Inserts or replaces the vector `id` with its metadata. @throws NotFoundError when the collection does not exist */
  upsert<M = Value>(run: string, collection: string, id: string, vector: Float32Array | readonly number[], metadata?: M & Storable<M>): void {
    checkName('a collection name', collection)
    checkName('a vector id', id)
    const v = vectorBytes(vector)
    const m = metadataBytes(metadata)
    this.target.write(run, (tx) => tx.vectorsUpsert(run, collection, id, v, m))
  }

  /** Several upserts in one commit: all or none. */
  upsertMany<M = Value>(run: string, collection: string, entries: readonly (VectorEntry<M> & { metadata?: Storable<M> })[]): void {
    checkName('a collection name', collection)
    if (!Array.isArray(entries)) throw new InvalidArgumentError('upsertMany takes an array of { id, vector, metadata? }')
    const prepared = entries.map((e: unknown) => {
      if (typeof e !== 'object' || e === null) throw new InvalidArgumentError('each entry must be { id, vector, metadata? }')
      checkOptions(e, ['id', 'vector', 'metadata'], 'a vectors.upsertMany entry')
      const { id, vector, metadata } = e as VectorEntry
      checkName('a vector id', id)
      return { id, v: vectorBytes(vector), m: metadataBytes(metadata) }
    })
    this.target.write(run, (tx) =>
      tx.vectorsUpsertMany(
        run,
        collection,
        prepared.map((p) => p.id),
        prepared.map((p) => p.v),
        prepared.map((p) => p.m ?? null),
      ),
    )
  }

  /** The vector `id`, or `undefined`. `M` names its metadata's type (unchecked, like a cast). */
  get<M = Value>(run: string, collection: string, id: string): VectorRecord<M> | undefined {
    checkName('a collection name', collection)
    checkName('a vector id', id)
    const r = this.target.read(run, (tx) => tx.vectorsGet(run, collection, id)) as RawVector | null
    return r == null ? undefined : { id: r.id, vector: toFloat32(r.vector), metadata: r.metadata == null ? undefined : (decode(r.metadata) as M) }
  }

  /** Removes the vector `id`; whether it existed. */
  delete(run: string, collection: string, id: string): boolean {
    checkName('a collection name', collection)
    checkName('a vector id', id)
    return this.target.write(run, (tx) => tx.vectorsDelete(run, collection, id))
  }

  /** How many vectors the collection holds. */
  count(run: string, collection: string): number {
    checkName('a collection name', collection)
    return this.target.read(run, (tx) => tx.vectorsCount(run, collection))
  }

  /** The run's collections, in name order. */
  collections(run: string): CollectionInfo[] {
    return this.target.read(run, (tx) => tx.vectorsCollections(run)).map((c) => ({ name: c.name, dimension: c.dimension, metric: c.metric as Metric }))
  }

  /** Removes a collection and its vectors, in one commit; whether it existed. */
  drop(run: string, collection: string): boolean {
    checkName('a collection name', collection)
    return this.target.write(run, (tx) => tx.vectorsDrop(run, collection))
  }

  /**
   * The `k` vectors nearest `query` (highest score first) among those whose
   * metadata passes `filter`, as of this read's snapshot.
   */
  search<M = Value>(run: string, collection: string, query: Float32Array | readonly number[], opts: SearchOptions = {}): SearchHit<M>[] {
    checkName('a collection name', collection)
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('search options must be an object')
    checkOptions(opts, ['k', 'filter', 'ef', 'exact'], 'vectors.search options')
    const { k = 10, filter, ef, exact = false } = opts
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > 10_000) throw new InvalidArgumentError('k must be an integer 1–10,000')
    if (ef !== undefined && (typeof ef !== 'number' || !Number.isInteger(ef) || ef < 1 || ef > 10_000)) throw new InvalidArgumentError('ef must be an integer 1–10,000')
    if (typeof exact !== 'boolean') throw new InvalidArgumentError('exact must be true or false')
    if (filter !== undefined && (typeof filter !== 'object' || filter === null || Array.isArray(filter))) {
      throw new InvalidArgumentError('filter must be an object such as { field: value } or { $and: [...] }')
    }
    const q = vectorBytes(query)
    const f = filter === undefined ? undefined : Buffer.from(encode(filter))
    return this.target.answer<SearchHit<M>[]>(run, (tx, buf) => tx.vectorsSearchInto(buf, run, collection, q, f, { k, ef, exact }))!
  }
}

/** {@link Vectors} bound to one run. */
export class ScopedVectors {
  /** @internal */
  constructor(
    private readonly vectors: Vectors,
    private readonly run: string,
  ) {}
  /** See {@link Vectors.create}. */
  create(collection: string, opts: CollectionOptions): CreatedCollection {
    return this.vectors.create(this.run, collection, opts)
  }
  /** See {@link Vectors.upsert}. */
  upsert<M = Value>(collection: string, id: string, vector: Float32Array | readonly number[], metadata?: M & Storable<M>): void {
    this.vectors.upsert<M>(this.run, collection, id, vector, metadata)
  }
  /** See {@link Vectors.upsertMany}. */
  upsertMany<M = Value>(collection: string, entries: readonly (VectorEntry<M> & { metadata?: Storable<M> })[]): void {
    this.vectors.upsertMany<M>(this.run, collection, entries)
  }
  /** See {@link Vectors.get}. */
  get<M = Value>(collection: string, id: string): VectorRecord<M> | undefined {
    return this.vectors.get<M>(this.run, collection, id)
  }
  /** See {@link Vectors.delete}. */
  delete(collection: string, id: string): boolean {
    return this.vectors.delete(this.run, collection, id)
  }
  /** See {@link Vectors.count}. */
  count(collection: string): number {
    return this.vectors.count(this.run, collection)
  }
  /** See {@link Vectors.collections}. */
  collections(): CollectionInfo[] {
    return this.vectors.collections(this.run)
  }
  /** See {@link Vectors.drop}. */
  drop(collection: string): boolean {
    return this.vectors.drop(this.run, collection)
  }
  /** See {@link Vectors.search}. */
  search<M = Value>(collection: string, query: Float32Array | readonly number[], opts?: SearchOptions): SearchHit<M>[] {
    return this.vectors.search<M>(this.run, collection, query, opts)
  }
}
