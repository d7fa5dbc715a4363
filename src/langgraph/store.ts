/**
 * `InMemStore`: LangGraph.js long-term memory (a `BaseStore`) on in-mem.
 *
 * Invariants:
 * - the store is one in-mem run (tagged `langgraph:store`); its KV holds
 *   `i␟<namespace>␟<key>` → {@link StoredItem} for each item, and
 *   `n␟<namespace>` → the number of items in that namespace (present only
 *   while it is above zero), so listing namespaces reads no items;
 *   namespaces are their labels joined with `:` (a label holds no `:`);
 * - a batch answers its reads (get, search, listNamespaces) from the store
 *   as it was before the batch, then applies its puts and deletes (the last
 *   one per item wins) in one transaction, as LangGraph's `InMemoryStore`;
 * - with an index config, each indexed text of an item is one vector of the
 *   run's `store` collection (cosine), with metadata naming the item and
 *   every prefix of its namespace; the item record lists its vectors, which
 *   are replaced with it and deleted with it.
 * @module
 */
import {
  BaseStore,
  InvalidNamespaceError,
  validateNamespace,
  type GetOperation,
  type IndexConfig,
  type Item,
  type ListNamespacesOperation,
  type Operation,
  type OperationResults,
  type PutOperation,
  type SearchItem,
  type SearchOperation,
} from '@langchain/langgraph-checkpoint'
import type { Database } from '../database.js'
import { InvalidArgumentError } from '../errors.js'
import type { RunId } from '../runs.js'
import type { TxScope } from '../scope.js'
import { textsAt, tokenizePath } from './paths.js'
import { SEP } from './threads.js'

/** The tag of a store's run. */
export const STORE_TAG = 'langgraph:store'
/** The vector collection of a store's run. */
const COLLECTION = 'store'
/** The most vectors one semantic search reads (the engine's `k` limit). */
const MAX_K = 10_000

/** Options of {@link InMemStore}. */
export interface InMemStoreOptions {
  /** Semantic search: the embeddings, their dimension and the fields to embed (default `["$"]`, the whole value). */
  index?: IndexConfig
  /** The store's name: one database can hold several stores, each its own run. Default `"default"`. */
  name?: string
}

/** An item as the store keeps it. */
export interface StoredItem {
  /** The item's value. */
  value: Record<string, unknown>
  /** Milliseconds since the epoch when the item was first put. */
  createdAt: number
  /** Milliseconds since the epoch when it was last put. */
  updatedAt: number
  /** The ids of its vectors in the `store` collection, when indexed. */
  vectors?: string[]
}

const FILTER_OPS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin'])

/** One value of a search `filter` against an item's field, as `InMemoryStore` compares them. */
function matches(actual: unknown, wanted: unknown): boolean {
  if (typeof wanted === 'object' && wanted !== null && !Array.isArray(wanted) && Object.keys(wanted).every((k) => FILTER_OPS.has(k))) {
    return Object.entries(wanted).every(([op, v]) => {
      switch (op) {
        case '$eq':
          return actual === v
        case '$ne':
          return actual !== v
        case '$gt':
          return Number(actual) > Number(v)
        case '$gte':
          return Number(actual) >= Number(v)
        case '$lt':
          return Number(actual) < Number(v)
        case '$lte':
          return Number(actual) <= Number(v)
        case '$in':
          return Array.isArray(v) ? v.includes(actual) : false
        default:
          return Array.isArray(v) ? !v.includes(actual) : true
      }
    })
  }
  return actual === wanted
}

function checkNamespace(ns: unknown, allowEmpty: boolean): string[] {
  if (!Array.isArray(ns)) throw new InvalidArgumentError('a namespace must be an array of strings')
  try {
    validateNamespace(ns, { allowEmpty, allowReservedRoot: true })
  } catch (e) {
    if (e instanceof InvalidNamespaceError) throw new InvalidArgumentError(e.message, { namespace: ns })
    throw e
  }
  for (const label of ns as string[]) {
    if (label.includes(':') || label.includes(SEP)) throw new InvalidArgumentError(`namespace label ${JSON.stringify(label)} must not contain ':' or U+001F`, { namespace: ns })
  }
  return ns as string[]
}

const itemKey = (ns: string, key: string) => `i${SEP}${ns}${SEP}${key}`
const countKey = (ns: string) => `n${SEP}${ns}`

/**
 * A LangGraph.js store on in-mem: namespaced JSON items with filters and,
 * given an index config, semantic search through `db.vectors`.
 * `graph.compile({ store: new InMemStore(db) })`. Values must be storable
 * by in-mem (JSON-like: no `undefined`, functions or class instances such
 * as `Date`); others are refused with an `InvalidArgumentError` and the
 * batch writes nothing.
 */
export class InMemStore extends BaseStore {
  readonly #db: Database
  readonly #index: IndexConfig | undefined
  readonly #fields: [string, string[]][]
  readonly #strict: boolean
  readonly #name: string
  #run: RunId | undefined

  /** A store in `db`; an existing store of that name is found by its run's tag. */
  constructor(db: Database, options: InMemStoreOptions = {}) {
    super()
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('InMemStore options must be an object')
    const { index, name = 'default' } = options
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('the store name must be a non-empty string')
    if (index !== undefined) {
      if (typeof index !== 'object' || index === null || !Number.isInteger(index.dims) || index.dims < 1) {
        throw new InvalidArgumentError('index needs dims (a positive integer) and embeddings')
      }
      if (index.embeddings === undefined || typeof index.embeddings.embedDocuments !== 'function' || typeof index.embeddings.embedQuery !== 'function') {
        throw new InvalidArgumentError('index.embeddings must have embedDocuments and embedQuery')
      }
    }
    this.#db = db
    this.#index = index
    this.#name = name
    this.#fields = (index?.fields ?? ['$']).map((p) => [p, p === '$' ? [p] : tokenizePath(p)])
    this.#strict = db.stats().durability === 'strict'
  }

  /** The index config given, if any. */
  get indexConfig(): IndexConfig | undefined {
    return this.#index
  }

  /** The run holding this store (begun on first use). */
  get run(): RunId {
    if (this.#run !== undefined && this.#db.runs.get(this.#run) !== undefined) return this.#run
    const found = this.#db.runs.list({ tag: STORE_TAG }).find((r) => (r.metadata as { name?: unknown } | undefined)?.name === this.#name)
    this.#run = found?.id ?? this.#db.runs.begin({ name: `langgraph store ${this.#name}`.slice(0, 256), tags: [STORE_TAG], metadata: { langgraph: 'store', name: this.#name } })
    if (this.#index !== undefined) {
      this.#db.vectors.create(this.#run, COLLECTION, { dimension: this.#index.dims, metric: 'cosine' })
    }
    return this.#run
  }

  /** Runs a batch of operations: reads see the store as before the batch; its writes commit together. */
  async batch<Op extends Operation[]>(operations: Op): Promise<OperationResults<Op>> {
    if (!Array.isArray(operations)) throw new InvalidArgumentError('batch takes an array of operations')
    const run = this.run
    const results: unknown[] = new Array(operations.length).fill(null)
    const puts = new Map<string, PutOperation>()
    const searches: [number, SearchOperation][] = []
    operations.forEach((op, i) => {
      if (op === null || typeof op !== 'object') throw new InvalidArgumentError(`operation ${i} must be an object`)
      if ('namespacePrefix' in op) {
        checkNamespace(op.namespacePrefix, true)
        searches.push([i, op])
      } else if ('matchConditions' in op || ('maxDepth' in op && !('namespace' in op))) {
        results[i] = this.#listNamespaces(run, op as ListNamespacesOperation)
      } else if ('namespace' in op && 'key' in op) {
        const ns = checkNamespace(op.namespace, false)
        if (typeof op.key !== 'string') throw new InvalidArgumentError(`operation ${i}: key must be a string`)
        if ('value' in op) {
          const value = (op as PutOperation).value
          if (value !== null && (typeof value !== 'object' || Array.isArray(value))) throw new InvalidArgumentError(`operation ${i}: value must be an object or null`)
          puts.set(itemKey(ns.join(':'), op.key), op as PutOperation)
        } else results[i] = this.#get(run, op as GetOperation)
      } else if ('limit' in op || 'offset' in op) {
        results[i] = this.#listNamespaces(run, op as ListNamespacesOperation)
      } else throw new InvalidArgumentError(`operation ${i} is not a get, put, search or listNamespaces operation`)
    })
    for (const [i, op] of searches) results[i] = await this.#search(run, op)
    if (puts.size > 0) await this.#applyPuts(run, [...puts.values()])
    return results as OperationResults<Op>
  }

  #get(run: RunId, op: GetOperation): Item | null {
    const stored = this.#db.kv.get<StoredItem>(run, itemKey(op.namespace.join(':'), op.key))
    return stored === undefined ? null : toItem(op.namespace, op.key, stored)
  }

  /** The items under a namespace prefix that pass the filter, in key order, with whether each has vectors. */
  #candidates(run: RunId, op: SearchOperation): { item: Item; indexed: boolean }[] {
    const prefix = op.namespacePrefix.join(':')
    const scans = prefix === '' ? [`i${SEP}`] : [`i${SEP}${prefix}${SEP}`, `i${SEP}${prefix}:`]
    const filter = Object.entries(op.filter ?? {})
    const out: { item: Item; indexed: boolean }[] = []
    for (const scan of scans) {
      for (const [k, stored] of this.#db.kv.entries<StoredItem>(run, { prefix: scan })) {
        // The namespace holds no separator; the key may.
        const rest = k.slice(2)
        const cut = rest.indexOf(SEP)
        const ns = rest.slice(0, cut)
        const key = rest.slice(cut + 1)
        if (filter.every(([f, v]) => matches(stored.value[f], v))) out.push({ item: toItem(ns.split(':'), key, stored), indexed: (stored.vectors?.length ?? 0) > 0 })
      }
    }
    return out
  }

  async #search(run: RunId, op: SearchOperation): Promise<SearchItem[]> {
    const offset = op.offset ?? 0
    const limit = op.limit ?? 10
    const candidates = this.#candidates(run, op)
    if (op.query === undefined || op.query === '' || this.#index === undefined) {
      return candidates.slice(offset, offset + limit).map(({ item }) => ({ ...item, score: undefined }))
    }
    const query = await this.#index.embeddings.embedQuery(op.query)
    const prefix = op.namespacePrefix.join(':')
    const count = this.#db.vectors.count(run, COLLECTION)
    const byKey = new Map(candidates.map(({ item }) => [`${item.namespace.join(':')}${SEP}${item.key}`, item]))
    const seen = new Set<string>()
    const kept: SearchItem[] = []
    if (count > 0) {
      const hits = this.#db.vectors.search<{ item: string }>(run, COLLECTION, query, {
        k: Math.min(MAX_K, count),
        ...(prefix === '' ? {} : { filter: { prefixes: prefix } }),
      })
      for (const hit of hits) {
        const key = hit.metadata?.item
        const item = key === undefined ? undefined : byKey.get(key)
        if (item === undefined || seen.has(key!)) continue
        seen.add(key!)
        if (seen.size > offset + limit) break
        if (seen.size > offset) kept.push({ ...item, score: hit.score })
      }
    }
    if (kept.length < limit) {
      // Items without vectors come after the scored ones, unscored (as InMemoryStore).
      const scoreless = candidates.filter((c) => !c.indexed)
      for (const { item } of scoreless.slice(0, limit - kept.length)) kept.push({ ...item, score: undefined })
    }
    return kept
  }

  #listNamespaces(run: RunId, op: ListNamespacesOperation): string[][] {
    let namespaces = this.#db.kv.list(run, { prefix: `n${SEP}` }).map((k) => k.slice(2).split(':'))
    const conditions = op.matchConditions ?? []
    for (const c of conditions) {
      if (c.matchType !== 'prefix' && c.matchType !== 'suffix') throw new InvalidArgumentError(`unknown namespace match type ${JSON.stringify(c.matchType)}`)
    }
    namespaces = namespaces.filter((ns) =>
      conditions.every(({ matchType, path }) => {
        if (path.length > ns.length) return false
        const at = matchType === 'prefix' ? 0 : ns.length - path.length
        return path.every((p, i) => p === '*' || ns[at + i] === p)
      }),
    )
    if (op.maxDepth !== undefined) {
      namespaces = [...new Set(namespaces.map((ns) => ns.slice(0, op.maxDepth).join(':')))].map((ns) => ns.split(':'))
    }
    namespaces.sort((a, b) => a.join(':').localeCompare(b.join(':')))
    const offset = op.offset ?? 0
    return namespaces.slice(offset, offset + (op.limit ?? namespaces.length))
  }

  /** Embeds what the puts index, then writes every put and delete in one transaction. */
  async #applyPuts(run: RunId, puts: PutOperation[]): Promise<void> {
    const texts = new Map<string, string[]>()
    const wanted: { put: PutOperation; texts: [string, string][] }[] = puts.map((put) => ({ put, texts: [] }))
    if (this.#index !== undefined) {
      for (const w of wanted) {
        const { value, index } = w.put
        if (value === null || index === false) continue
        const paths: [string, string[]][] = index === undefined || index === null ? this.#fields : index.map((p) => [p, tokenizePath(p)])
        for (const [path, tokens] of paths) {
          const found = textsAt(value, tokens)
          found.forEach((text, i) => w.texts.push([found.length > 1 ? `${path}.${i}` : path, text]))
        }
        for (const [, text] of w.texts) if (!texts.has(text)) texts.set(text, [])
      }
    }
    const unique = [...texts.keys()]
    const embedded = unique.length === 0 ? [] : await this.#index!.embeddings.embedDocuments(unique)
    if (embedded.length !== unique.length) throw new InvalidArgumentError(`the embeddings returned ${embedded.length} vectors for ${unique.length} texts`)
    const vectorOf = new Map(unique.map((t, i) => [t, embedded[i]]))
    const now = Date.now()
    const write = (tx: TxScope) => {
      for (const { put, texts: itemTexts } of wanted) {
        const ns = put.namespace.join(':')
        const key = itemKey(ns, put.key)
        const old = tx.kv.get<StoredItem>(key)
        for (const id of old?.vectors ?? []) tx.vectors.delete(COLLECTION, id)
        if (put.value === null) {
          if (old !== undefined) {
            tx.kv.delete(key)
            const n = (tx.kv.get<number>(countKey(ns)) ?? 1) - 1
            if (n > 0) tx.kv.put(countKey(ns), n)
            else tx.kv.delete(countKey(ns))
          }
          continue
        }
        const record: StoredItem = { value: put.value, createdAt: old?.createdAt ?? now, updatedAt: now }
        if (itemTexts.length > 0) {
          const prefixes = put.namespace.map((_, i) => put.namespace.slice(0, i + 1).join(':'))
          const item = `${ns}${SEP}${put.key}`
          record.vectors = itemTexts.map(([path]) => `${item}${SEP}${path}`)
          itemTexts.forEach(([path, text]) => tx.vectors.upsert(COLLECTION, `${item}${SEP}${path}`, vectorOf.get(text)!, { item, prefixes }))
        }
        tx.kv.put(key, record as never)
        if (old === undefined) tx.kv.put(countKey(ns), (tx.kv.get<number>(countKey(ns)) ?? 0) + 1)
      }
    }
    if (this.#strict) await this.#db.transactionAsync(run, write)
    else this.#db.transaction(run, write)
  }
}

function toItem(namespace: string[], key: string, stored: StoredItem): Item {
  return { value: stored.value, key, namespace, createdAt: new Date(stored.createdAt), updatedAt: new Date(stored.updatedAt) }
}
