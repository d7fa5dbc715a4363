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
import type { Database, NotPromise } from '../database.js'
import { InvalidArgumentError, LimitError, NotFoundError, RunClosedError } from '../errors.js'
import { MAX_KEY_BYTES } from '../keys.js'
import type { RunId } from '../runs.js'
import type { TxScope } from '../scope.js'

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

/** Reads and writes of one transaction on the graph's KV. */
class GraphTx {
  /** @param kv - the KV of the transaction, bound to the graph's run */
  constructor(readonly kv: TxScope['kv']) {}

  /** The entity `name` (whose key was checked against the limit when the arguments were). */
  entity(name: string): StoredEntity | undefined {
    return this.kv.get<StoredEntity>(ENTITY + name)
  }

  putEntity(name: string, e: StoredEntity): void {
    this.kv.put(ENTITY + name, { entityType: e.entityType, observations: e.observations, order: e.order })
  }

  order(): number {
    const next = this.kv.get<number>(NEXT) ?? 0
    this.kv.put(NEXT, next + 1)
    return next
  }

  relations(): [string, StoredRelation][] {
    return this.kv.entries<StoredRelation>({ prefix: RELATION })
  }

  graph(): Graph {
    const entities = this.kv
      .entries<StoredEntity>({ prefix: ENTITY })
      .map(([key, e]) => ({ name: key.slice(ENTITY.length), e }))
      .sort((x, y) => x.e.order - y.e.order)
      .map(({ name, e }) => ({ name, entityType: e.entityType, observations: e.observations }))
    const relations = this.relations()
      .map(([, r]) => r)
      .sort((x, y) => x.order - y.order)
      .map((r) => ({ from: r.from, to: r.to, relationType: r.relationType }))
    return { entities, relations }
  }
}

/** The part of `graph` around `entities`: them, and the relations with an end among them. */
function around(graph: Graph, entities: Entity[]): Graph {
  const names = new Set(entities.map((e) => e.name))
  return { entities, relations: graph.relations.filter((r) => names.has(r.from) || names.has(r.to)) }
}

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

  /**
   * Runs `fn` in one transaction on the graph's run. Before the graph has a
   * run, `onEmpty` (when given) answers instead: a call that would change
   * nothing in an empty graph begins no run.
   */
  #write<T>(fn: (g: GraphTx) => T, onEmpty?: () => T): T {
    let run = this.run
    if (run === undefined) {
      if (onEmpty !== undefined) return onEmpty()
      run = this.#run = this.db.runs.begin({ name: 'knowledge graph', tags: [GRAPH_TAG] })
    }
    try {
      return this.db.transaction(run, (tx) => fn(new GraphTx(tx.kv)) as NotPromise<T>)
    } catch (e) {
      if (!(e instanceof RunClosedError)) throw e
      throw new RunClosedError(`the knowledge graph is kept in run ${run}, which takes no writes: ${e.message}`, { ...e.details, run })
    }
  }

  #read<T>(fn: (g: GraphTx) => T, empty: T): T {
    const run = this.run
    if (run === undefined) return empty
    return this.db.transaction(run, (tx) => fn(new GraphTx(tx.kv)) as NotPromise<T>)
  }

  /** Creates the entities whose names are new; returns those it created. */
  createEntities(entities: Entity[]): Entity[] {
    const given = list<unknown>(entities, 'entities').map((v, i) => {
      const where = `entities[${i}]`
      if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${where} must be { name, entityType, observations }`, { argument: where })
      const e = v as Record<string, unknown>
      const name = text(e.name, `${where}.name`)
      entityKey(name, `${where}.name`)
      return { name, entityType: text(e.entityType, `${where}.entityType`), observations: stringList(e.observations, `${where}.observations`) }
    })
    return this.#write(
      (g) => {
        const created: Entity[] = []
        for (const e of given) {
          if (g.entity(e.name) !== undefined) continue
          g.putEntity(e.name, { entityType: e.entityType, observations: e.observations, order: g.order() })
          created.push(e)
        }
        return created
      },
      given.length === 0 ? () => [] : undefined,
    )
  }

  /** Creates the relations that are new (the entities they join need not exist); returns those it created. */
  createRelations(relations: Relation[]): Relation[] {
    const given = list<unknown>(relations, 'relations').map((v, i) => {
      const r = checkRelation(v, `relations[${i}]`)
      return { r, key: relationKey(r, `relations[${i}]`) }
    })
    return this.#write(
      (g) => {
        const created: Relation[] = []
        for (const { r, key } of given) {
          if (g.kv.exists(key)) continue
          g.kv.put(key, { ...r, order: g.order() })
          created.push(r)
        }
        return created
      },
      given.length === 0 ? () => [] : undefined,
    )
  }

  /**
   * Adds observations to existing entities, skipping those they have;
   * returns what was new. An entity that does not exist fails the whole call.
   */
  addObservations(additions: ObservationAddition[]): ObservationsAdded[] {
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
    return this.#write(
      (g) =>
        given.map((o, i) => {
          const e = g.entity(o.entityName) ?? missing(o, i)
          const added = [...new Set(o.contents)].filter((c) => !e.observations.includes(c))
          g.putEntity(o.entityName, { ...e, observations: [...e.observations, ...added] })
          return { entityName: o.entityName, addedObservations: added }
        }),
      () => (given.length === 0 ? [] : missing(given[0], 0)),
    )
  }

  /** Deletes entities and every relation from or to them; names that do not exist are skipped. */
  deleteEntities(names: string[]): void {
    const given = stringList(names, 'entityNames')
    const keys = given.map((name, i) => entityKey(name, `entityNames[${i}]`))
    this.#write(
      (g) => {
        const gone = new Set(given)
        for (const key of keys) g.kv.delete(key)
        for (const [key, r] of g.relations()) if (gone.has(r.from) || gone.has(r.to)) g.kv.delete(key)
      },
      () => {},
    )
  }

  /** Removes observations from entities; entities that do not exist are skipped. */
  deleteObservations(deletions: ObservationDeletion[]): void {
    const given = list<unknown>(deletions, 'deletions').map((v, i) => {
      const where = `deletions[${i}]`
      if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${where} must be { entityName, observations }`, { argument: where })
      const d = v as Record<string, unknown>
      const entityName = text(d.entityName, `${where}.entityName`)
      entityKey(entityName, `${where}.entityName`)
      return { entityName, observations: stringList(d.observations, `${where}.observations`) }
    })
    this.#write(
      (g) => {
        for (const d of given) {
          const e = g.entity(d.entityName)
          if (e !== undefined) g.putEntity(d.entityName, { ...e, observations: e.observations.filter((o) => !d.observations.includes(o)) })
        }
      },
      () => {},
    )
  }

  /** Deletes relations; those that do not exist are skipped. */
  deleteRelations(relations: Relation[]): void {
    const keys = list<unknown>(relations, 'relations').map((v, i) => relationKey(checkRelation(v, `relations[${i}]`), `relations[${i}]`))
    this.#write(
      (g) => {
        for (const key of keys) g.kv.delete(key)
      },
      () => {},
    )
  }

  /** The whole graph. */
  read(): Graph {
    return this.#read((g) => g.graph(), { entities: [], relations: [] })
  }

  /**
   * Entities whose name, type or an observation contains `query` (ignoring
   * case), with the relations that have an end among them.
   */
  search(query: string): Graph {
    const q = text(query, 'query').toLowerCase()
    const graph = this.read()
    const has = (s: string): boolean => s.toLowerCase().includes(q)
    return around(graph, graph.entities.filter((e) => has(e.name) || has(e.entityType) || e.observations.some(has)))
  }

  /** The named entities, with the relations that have an end among them. */
  open(names: string[]): Graph {
    const wanted = new Set(stringList(names, 'names'))
    const graph = this.read()
    return around(graph, graph.entities.filter((e) => wanted.has(e.name)))
  }
}
