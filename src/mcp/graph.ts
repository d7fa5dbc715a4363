/**
 * The knowledge graph of the reference MCP memory server
 * (`@modelcontextprotocol/server-memory`: entities with observations, and
 * relations between them), kept in a run's KV instead of a JSONL file
 * rewritten on every change. Each change is one transaction, so it is all
 * there or not at all, durable as the database's mode says, and two writers
 * never lose each other's work.
 *
 * Layout, in the KV of the graph's run (the first run tagged
 * {@link GRAPH_TAG}, begun on the first write):
 * - `entity/<name>` → `{ entityType, observations, order }`
 * - `relation/<JSON of [from, relationType, to]>` → `{ from, to, relationType, order }`
 * - `next` → the next `order`: entities and relations are listed in the
 *   order they were created, as the reference server lists them.
 * @module
 */
import type { Value } from '../codec.js'
import type { Database, NotPromise } from '../database.js'
import { InvalidArgumentError, LimitError, NotFoundError, RunClosedError } from '../errors.js'
import { MAX_KEY_BYTES } from '../keys.js'
import type { RunId } from '../runs.js'
import type { TxScope } from '../scope.js'
import type { RemoteDatabase, RemoteTx } from '../server/client.js'

/** The tag of the run that holds the knowledge graph. */
export const GRAPH_TAG = 'mcp:knowledge-graph'

/** An entity: a named node with a type and observations (facts about it, as strings). */
export interface Entity {
  /** The entity's name, unique in the graph. */
  name: string
  /** What kind of thing it is (`person`, `project`...). */
  entityType: string
  /** Facts about it, in the order they were added. */
  observations: string[]
}

/** A directed, typed edge between two entities, in active voice (`Ada works_at Acme`). */
export interface Relation {
  /** The entity it starts at. */
  from: string
  /** The entity it ends at. */
  to: string
  /** What the relation is. */
  relationType: string
}

/** Entities and relations. */
export interface Graph {
  /** Entities, in the order they were created. */
  entities: Entity[]
  /** Relations, in the order they were created. */
  relations: Relation[]
}

/** Observations to add to one entity. */
export interface ObservationAddition {
  /** The entity to add them to; it must exist. */
  entityName: string
  /** The observations; those the entity has already are skipped. */
  contents: string[]
}

/** What {@link KnowledgeGraph.addObservations} added to one entity. */
export interface ObservationsAdded {
  /** The entity. */
  entityName: string
  /** The observations that were new. */
  addedObservations: string[]
}

/** Observations to delete from one entity. */
export interface ObservationDeletion {
  /** The entity (one that does not exist is skipped). */
  entityName: string
  /** The observations to remove. */
  observations: string[]
}

interface StoredEntity {
  entityType: string
  observations: string[]
  order: number
}

interface StoredRelation extends Relation {
  order: number
}

const ENTITY = 'entity/'
const RELATION = 'relation/'
const NEXT = 'next'

function text(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${where} must be a string`, { argument: where })
  return v
}

function list<T>(v: unknown, where: string): T[] {
  if (!Array.isArray(v)) throw new InvalidArgumentError(`${where} must be an array`, { argument: where })
  return v as T[]
}

function fitKey(key: string, where: string): string {
  const n = Buffer.byteLength(key)
  if (n > MAX_KEY_BYTES) {
    throw new LimitError(`${where} is too long: it makes a key of ${n} bytes, over the limit of ${MAX_KEY_BYTES}`, { argument: where, bytes: n, limit: MAX_KEY_BYTES })
  }
  return key
}

const entityKey = (name: string, where: string): string => fitKey(ENTITY + name, where)
const relationKey = (r: Relation, where: string): string => fitKey(RELATION + JSON.stringify([r.from, r.relationType, r.to]), where)

function checkRelation(v: unknown, where: string): Relation {
  if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${where} must be { from, to, relationType }`, { argument: where })
  const r = v as Record<string, unknown>
  return { from: text(r.from, `${where}.from`), to: text(r.to, `${where}.to`), relationType: text(r.relationType, `${where}.relationType`) }
}

function stringList(v: unknown, where: string): string[] {
  return list<unknown>(v, where).map((s, i) => text(s, `${where}[${i}]`))
}

/**
 * A read of a graph transaction. A transaction's body is written once, as a
 * generator that yields its reads and receives their answers, and driven
 * either synchronously (the embedded database, {@link KnowledgeGraph}) or by
 * awaiting each answer (the remote API the MCP tools use): one logic, two
 * ways to run it. Writes are not yielded: they are made as they come (a
 * remote transaction's commit waits for every write it sent).
 */
type Read = { get: string } | { exists: string } | { entries: string }

/** A transaction's body: yields its reads, returns its result. */
type Body<T> = Generator<Read, T, unknown>

/** The writes a graph transaction makes: the transaction's KV, embedded or remote. */
interface Writes {
  put(key: string, value: Value): unknown
  delete(key: string): unknown
}

/** Reads and writes of one transaction on the graph's KV. */
class GraphTx {
  /** @param kv - the KV of the transaction, bound to the graph's run */
  constructor(private readonly kv: Writes) {}

  /** The entity `name` (whose key was checked against the limit when the arguments were). */
  *entity(name: string): Body<StoredEntity | undefined> {
    return (yield { get: ENTITY + name }) as StoredEntity | undefined
  }

  putEntity(name: string, e: StoredEntity): void {
    this.kv.put(ENTITY + name, { entityType: e.entityType, observations: e.observations, order: e.order })
  }

  *exists(key: string): Body<boolean> {
    return (yield { exists: key }) as boolean
  }

  putRelation(key: string, r: Relation, order: number): void {
    this.kv.put(key, { ...r, order })
  }

  delete(key: string): void {
    this.kv.delete(key)
  }

  *order(): Body<number> {
    const next = ((yield { get: NEXT }) as number | undefined) ?? 0
    this.kv.put(NEXT, next + 1)
    return next
  }

  *relations(): Body<[string, StoredRelation][]> {
    return (yield { entries: RELATION }) as [string, StoredRelation][]
  }

  *graph(): Body<Graph> {
    const entities = ((yield { entries: ENTITY }) as [string, StoredEntity][])
      .map(([key, e]) => ({ name: key.slice(ENTITY.length), e }))
      .sort((x, y) => x.e.order - y.e.order)
      .map(({ name, e }) => ({ name, entityType: e.entityType, observations: e.observations }))
    const relations = (yield* this.relations())
      .map(([, r]) => r)
      .sort((x, y) => x.order - y.order)
      .map((r) => ({ from: r.from, to: r.to, relationType: r.relationType }))
    return { entities, relations }
  }
}

/**
 * One change of the graph, its arguments checked: the transaction's body,
 * and (when given) what answers instead before the graph has a run (a call
 * that would change nothing in an empty graph begins no run).
 */
interface Change<T> {
  body: (g: GraphTx) => Body<T>
  onEmpty?: () => T
}

/** The KV reads a driver answers: a transaction's, embedded or remote. */
interface Reads<R> {
  get(key: string): R
  exists(key: string): R
  entries(opts: { prefix: string }): R
}

function read<R>(kv: Reads<R>, r: Read): R {
  if ('get' in r) return kv.get(r.get)
  if ('exists' in r) return kv.exists(r.exists)
  return kv.entries({ prefix: r.entries })
}

/** Runs `body` in the embedded transaction whose KV is `kv`. */
function runNow<T>(kv: TxScope['kv'], body: (g: GraphTx) => Body<T>): T {
  const it = body(new GraphTx(kv))
  for (let step = it.next(); ; step = it.next(read(kv as Reads<unknown>, step.value))) if (step.done) return step.value
}

/** Runs `body` in the remote transaction whose KV is `kv`, awaiting each read. */
async function runAwaiting<T>(kv: RemoteTx['kv'], body: (g: GraphTx) => Body<T>): Promise<T> {
  const it = body(new GraphTx(kv))
  for (let step = it.next(); ; step = it.next(await read(kv as Reads<Promise<unknown>>, step.value))) if (step.done) return step.value
}

/** The part of `graph` around `entities`: them, and the relations with an end among them. */
function around(graph: Graph, entities: Entity[]): Graph {
  const names = new Set(entities.map((e) => e.name))
  return { entities, relations: graph.relations.filter((r) => names.has(r.from) || names.has(r.to)) }
}

/** The changes of the graph, one per operation; each checks its arguments when called. */
const changes = {
  createEntities(entities: Entity[]): Change<Entity[]> {
    const given = list<unknown>(entities, 'entities').map((v, i) => {
      const where = `entities[${i}]`
      if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${where} must be { name, entityType, observations }`, { argument: where })
      const e = v as Record<string, unknown>
      const name = text(e.name, `${where}.name`)
      entityKey(name, `${where}.name`)
      return { name, entityType: text(e.entityType, `${where}.entityType`), observations: stringList(e.observations, `${where}.observations`) }
    })
    return {
      *body(g) {
        const created: Entity[] = []
        for (const e of given) {
          if ((yield* g.entity(e.name)) !== undefined) continue
          g.putEntity(e.name, { entityType: e.entityType, observations: e.observations, order: yield* g.order() })
          created.push(e)
        }
        return created
      },
      onEmpty: given.length === 0 ? () => [] : undefined,
    }
  },

  createRelations(relations: Relation[]): Change<Relation[]> {
    const given = list<unknown>(relations, 'relations').map((v, i) => {
      const r = checkRelation(v, `relations[${i}]`)
      return { r, key: relationKey(r, `relations[${i}]`) }
    })
    return {
      *body(g) {
        const created: Relation[] = []
        for (const { r, key } of given) {
          if (yield* g.exists(key)) continue
          g.putRelation(key, r, yield* g.order())
          created.push(r)
        }
        return created
      },
      onEmpty: given.length === 0 ? () => [] : undefined,
    }
  },

  addObservations(additions: ObservationAddition[]): Change<ObservationsAdded[]> {
    const given = list<unknown>(additions, 'observations').map((v, i) => {
      const where = `observations[${i}]`
      if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${where} must be { entityName, contents }`, { argument: where })
      const o = v as Record<string, unknown>
      const entityName = text(o.entityName, `${where}.entityName`)
      entityKey(entityName, `${where}.entityName`)
      return { entityName, contents: stringList(o.contents, `${where}.contents`) }
    })
    const missing = (o: ObservationAddition, i: number): never => {
      throw new NotFoundError(`Entity with name ${o.entityName} not found`, { argument: `observations[${i}].entityName`, entity: o.entityName })
    }
    return {
      *body(g) {
        const results: ObservationsAdded[] = []
        for (const [i, o] of given.entries()) {
          const e = (yield* g.entity(o.entityName)) ?? missing(o, i)
          const added = [...new Set(o.contents)].filter((c) => !e.observations.includes(c))
          g.putEntity(o.entityName, { ...e, observations: [...e.observations, ...added] })
          results.push({ entityName: o.entityName, addedObservations: added })
        }
        return results
      },
      onEmpty: () => (given.length === 0 ? [] : missing(given[0], 0)),
    }
  },

  deleteEntities(names: string[]): Change<void> {
    const given = stringList(names, 'entityNames')
    const keys = given.map((name, i) => entityKey(name, `entityNames[${i}]`))
    return {
      *body(g) {
        const gone = new Set(given)
        for (const key of keys) g.delete(key)
        for (const [key, r] of yield* g.relations()) if (gone.has(r.from) || gone.has(r.to)) g.delete(key)
      },
      onEmpty: () => {},
    }
  },

  deleteObservations(deletions: ObservationDeletion[]): Change<void> {
    const given = list<unknown>(deletions, 'deletions').map((v, i) => {
      const where = `deletions[${i}]`
      if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${where} must be { entityName, observations }`, { argument: where })
      const d = v as Record<string, unknown>
      const entityName = text(d.entityName, `${where}.entityName`)
      entityKey(entityName, `${where}.entityName`)
      return { entityName, observations: stringList(d.observations, `${where}.observations`) }
    })
    return {
      *body(g) {
        for (const d of given) {
          const e = yield* g.entity(d.entityName)
          if (e !== undefined) g.putEntity(d.entityName, { ...e, observations: e.observations.filter((o) => !d.observations.includes(o)) })
        }
      },
      onEmpty: () => {},
    }
  },

  deleteRelations(relations: Relation[]): Change<void> {
    const keys = list<unknown>(relations, 'relations').map((v, i) => relationKey(checkRelation(v, `relations[${i}]`), `relations[${i}]`))
    return {
      // A body that reads nothing is still a generator, for the drivers.
      // eslint-disable-next-line require-yield
      *body(g) {
        for (const key of keys) g.delete(key)
      },
      onEmpty: () => {},
    }
  },
}

/** The reads of the graph: the whole graph, and parts of it around entities. */
const reads = {
  body: (g: GraphTx): Body<Graph> => g.graph(),
  empty: (): Graph => ({ entities: [], relations: [] }),
  search(query: string): (graph: Graph) => Graph {
    const q = text(query, 'query').toLowerCase()
    const has = (s: string): boolean => s.toLowerCase().includes(q)
    return (graph) => around(graph, graph.entities.filter((e) => has(e.name) || has(e.entityType) || e.observations.some(has)))
  },
  open(names: string[]): (graph: Graph) => Graph {
    const wanted = new Set(stringList(names, 'names'))
    return (graph) => around(graph, graph.entities.filter((e) => wanted.has(e.name)))
  },
}

/** A `RunClosedError` of the graph's run, naming it as the graph's. */
function closedRun(e: unknown, run: RunId): unknown {
  if (!(e instanceof RunClosedError)) return e
  return new RunClosedError(`the knowledge graph is kept in run ${run}, which takes no writes: ${e.message}`, { ...e.details, run })
}

const BEGIN = { name: 'knowledge graph', tags: [GRAPH_TAG] }

/**
 * The knowledge graph of the MCP memory tools, stored in a run of `db`.
 * Every method is one transaction: a change is applied whole or not at all.
 *
 * Where it differs from the reference server: a name given twice in one
 * call is created (or an observation added) once, where the reference
 * stores it twice; and entity names and relations are keys, so they are
 * limited to about 1 KiB (a `LimitError` names the argument).
 */
export class KnowledgeGraph {
  #run: RunId | undefined

  /**
   * @param db - the database
   * @param run - the run to keep the graph in (it must exist); default: the
   *   first run tagged {@link GRAPH_TAG}, begun on the first write
   */
  constructor(
    private readonly db: Database,
    run?: RunId,
  ) {
    if (run !== undefined && db.runs.get(run) === undefined) throw new NotFoundError(`run ${run} (for the knowledge graph) does not exist`, { run })
    this.#run = run
  }

  /** The run that holds the graph, or `undefined` before the first write made one. */
  get run(): RunId | undefined {
    this.#run ??= this.db.runs.list({ tag: GRAPH_TAG, limit: 1 })[0]?.id
    return this.#run
  }

  /** Runs `change` in one transaction on the graph's run (begun here on the first write). */
  #write<T>(change: Change<T>): T {
    let run = this.run
    if (run === undefined) {
      if (change.onEmpty !== undefined) return change.onEmpty()
      run = this.#run = this.db.runs.begin(BEGIN)
    }
    try {
      return this.db.transaction(run, (tx) => runNow(tx.kv, change.body) as NotPromise<T>)
    } catch (e) {
      throw closedRun(e, run)
    }
  }

  /** Creates the entities whose names are new; returns those it created. */
  createEntities(entities: Entity[]): Entity[] {
    return this.#write(changes.createEntities(entities))
  }

  /** Creates the relations that are new (the entities they join need not exist); returns those it created. */
  createRelations(relations: Relation[]): Relation[] {
    return this.#write(changes.createRelations(relations))
  }

  /**
   * Adds observations to existing entities, skipping those they have;
   * returns what was new. An entity that does not exist fails the whole call.
   */
  addObservations(additions: ObservationAddition[]): ObservationsAdded[] {
    return this.#write(changes.addObservations(additions))
  }

  /** Deletes entities and every relation from or to them; names that do not exist are skipped. */
  deleteEntities(names: string[]): void {
    this.#write(changes.deleteEntities(names))
  }

  /** Removes observations from entities; entities that do not exist are skipped. */
  deleteObservations(deletions: ObservationDeletion[]): void {
    this.#write(changes.deleteObservations(deletions))
  }

  /** Deletes relations; those that do not exist are skipped. */
  deleteRelations(relations: Relation[]): void {
    this.#write(changes.deleteRelations(relations))
  }

  /** The whole graph. */
  read(): Graph {
    const run = this.run
    if (run === undefined) return reads.empty()
    return this.db.transaction(run, (tx) => runNow(tx.kv, reads.body))
  }

  /**
   * Entities whose name, type or an observation contains `query` (ignoring
   * case), with the relations that have an end among them.
   */
  search(query: string): Graph {
    return reads.search(query)(this.read())
  }

  /** The named entities, with the relations that have an end among them. */
  open(names: string[]): Graph {
    return reads.open(names)(this.read())
  }
}

/**
 * {@link KnowledgeGraph} over the remote API (a database served by another
 * process, or one opened here wrapped by `localRemote`): the same methods,
 * the same transactions, each returning a Promise. What the MCP tools use.
 * @internal
 */
export class RemoteKnowledgeGraph {
  #run: RunId | undefined
  /** Whether the run given to the constructor was found to exist. */
  #checked: boolean
  /**
   * The last change queued: this object's changes run one at a time, as
   * the embedded graph's do. (All of them write the `next` key: run
   * together, over a connection, they would conflict and spend their
   * retries on each other; the owner's first-committer-wins still orders
   * them against other writers.)
   */
  #queue: Promise<unknown> = Promise.resolve()

  /**
   * @param db - the database
   * @param run - the run to keep the graph in (it must exist: checked on
   *   first use); default: the first run tagged {@link GRAPH_TAG}, begun on
   *   the first write
   */
  constructor(
    private readonly db: RemoteDatabase,
    run?: RunId,
  ) {
    this.#run = run
    this.#checked = run === undefined
  }

  /** The run that holds the graph, or `undefined` before the first write made one. */
  async run(): Promise<RunId | undefined> {
    if (!this.#checked) {
      const run = this.#run as RunId
      if ((await this.db.runs.get(run)) === undefined) throw new NotFoundError(`run ${run} (for the knowledge graph) does not exist`, { run })
      this.#checked = true
    }
    this.#run ??= (await this.db.runs.list({ tag: GRAPH_TAG, limit: 1 }))[0]?.id
    return this.#run
  }

  #write<T>(change: Change<T>): Promise<T> {
    const done = this.#queue.then(() => this.#apply(change))
    this.#queue = done.catch(() => {})
    return done
  }

  async #apply<T>(change: Change<T>): Promise<T> {
    let run = await this.run()
    if (run === undefined) {
      if (change.onEmpty !== undefined) return change.onEmpty()
      run = this.#run = await this.db.runs.begin(BEGIN)
    }
    try {
      return await this.db.transaction(run, (tx) => runAwaiting(tx.kv, change.body))
    } catch (e) {
      throw closedRun(e, run)
    }
  }

  /** See {@link KnowledgeGraph.createEntities}. */
  async createEntities(entities: Entity[]): Promise<Entity[]> {
    return this.#write(changes.createEntities(entities))
  }

  /** See {@link KnowledgeGraph.createRelations}. */
  async createRelations(relations: Relation[]): Promise<Relation[]> {
    return this.#write(changes.createRelations(relations))
  }

  /** See {@link KnowledgeGraph.addObservations}. */
  async addObservations(additions: ObservationAddition[]): Promise<ObservationsAdded[]> {
    return this.#write(changes.addObservations(additions))
  }

  /** See {@link KnowledgeGraph.deleteEntities}. */
  async deleteEntities(names: string[]): Promise<void> {
    return this.#write(changes.deleteEntities(names))
  }

  /** See {@link KnowledgeGraph.deleteObservations}. */
  async deleteObservations(deletions: ObservationDeletion[]): Promise<void> {
    return this.#write(changes.deleteObservations(deletions))
  }

  /** See {@link KnowledgeGraph.deleteRelations}. */
  async deleteRelations(relations: Relation[]): Promise<void> {
    return this.#write(changes.deleteRelations(relations))
  }

  /** See {@link KnowledgeGraph.read}. */
  async read(): Promise<Graph> {
    const run = await this.run()
    if (run === undefined) return reads.empty()
    return this.db.transaction(run, (tx) => runAwaiting(tx.kv, reads.body))
  }

  /** See {@link KnowledgeGraph.search}. */
  async search(query: string): Promise<Graph> {
    const pick = reads.search(query)
    return pick(await this.read())
  }

  /** See {@link KnowledgeGraph.open}. */
  async open(names: string[]): Promise<Graph> {
    const pick = reads.open(names)
    return pick(await this.read())
  }
}
