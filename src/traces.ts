/**
 * The TraceStore: hierarchical reasoning traces of a run, with `data` typed
 * per trace type.
 * @module
 */
import { checkOptions } from './options.js'
import { type Value, encode } from './codec.js'
import { InvalidArgumentError } from './errors.js'
import type { OpTarget } from './ops.js'
import type { RunId } from './runs.js'
import { checkWellFormed } from './keys.js'

/** A trace id: a UUIDv7 string, so ids sort in the order traces were recorded. */
export type TraceId = string

/** What kind of step a trace records; each has its own {@link TraceData} shape. */
export type TraceType = 'tool_call' | 'decision' | 'thought' | 'query' | 'error' | 'custom'

/** `data` of a `tool_call` trace: one call of a tool by the agent. */
export interface ToolCallData {
  /** The tool's name. */
  tool: string
  /** The arguments it was called with. */
  arguments: Value
  /** What it returned, when known. */
  result?: Value
  /** How long the call took, in milliseconds. */
  durationMs?: number
}

/** `data` of a `decision` trace: a choice among options. */
export interface DecisionData {
  /** What was being decided. */
  question: string
  /** The options that were considered. */
  options: Value[]
  /** The option taken. */
  chosen: Value
  /** Why it was taken. */
  reasoning?: string
}

/** `data` of a `thought` trace: a step of the agent's reasoning. */
export interface ThoughtData {
  /** The thought, as text. */
  content: string
  /** How sure the agent was, typically from 0 to 1. */
  confidence?: number
}

/** `data` of a `query` trace: a lookup such as a retrieval or a search. */
export interface QueryData {
  /** What was asked. */
  query: string
  /** Where it was asked: an index, a database, a search engine. */
  source?: string
  /** What came back. */
  results?: Value[]
}

/** `data` of an `error` trace: something that went wrong. */
export interface ErrorData {
  /** What went wrong. */
  message: string
  /** A machine-readable code, if there is one. */
  code?: string
  /** The stack trace, if there is one. */
  stack?: string
  /** Whether the agent carried on after it. */
  recoverable?: boolean
}

/** The `data` shape of each trace type; a `custom` trace holds any storable value. */
export interface TraceDataMap {
  /** See {@link ToolCallData}. */
  tool_call: ToolCallData
  /** See {@link DecisionData}. */
  decision: DecisionData
  /** See {@link ThoughtData}. */
  thought: ThoughtData
  /** See {@link QueryData}. */
  query: QueryData
  /** See {@link ErrorData}. */
  error: ErrorData
  /** Any storable value. */
  custom: Value
}

/** The `data` of a trace of type `T`. */
export type TraceData<T extends TraceType = TraceType> = TraceDataMap[T]

/** What every trace has, whatever its type. */
export interface TraceBase {
  /** The trace's id (a UUIDv7 string). */
  id: TraceId
  /** The trace it hangs under, if any (in the same run). */
  parent?: TraceId
  /** The tags given to {@link Traces.record} (possibly empty), duplicates dropped. */
  tags: string[]
  /** The metadata given to {@link Traces.record}, if any. */
  metadata?: Value
  /** Milliseconds since the epoch when it was recorded (the time in its id). */
  timestamp: number
}

/**
 * One trace. A discriminated union on `type`: checking `trace.type` narrows
 * `trace.data` to that type's shape.
 */
export type Trace<T extends TraceType = TraceType> = {
  [K in T]: TraceBase & {
    /** What kind of step it records. */
    type: K
    /** The step's data, shaped by `type`. */
    data: TraceDataMap[K]
  }
}[T]

/** The argument of {@link Traces.record}: `data` must fit `type`. */
export type NewTrace<T extends TraceType = TraceType> = {
  [K in T]: {
    /** What kind of step it records. */
    type: K
    /** The step's data, shaped by `type`. */
    data: TraceDataMap[K]
    /** A trace of the same run that this one hangs under. */
    parent?: TraceId
    /** Up to 64 tags, each 1–256 characters; {@link Traces.query} finds traces by them. */
    tags?: string[]
    /** Any storable value. */
    metadata?: Value
  }
}[T]

/** Options of {@link Traces.query}; every filter given must hold. */
export interface TraceQuery<T extends TraceType = TraceType> {
  /** Only traces of this type. */
  type?: T
  /** Only traces carrying this tag. */
  tag?: string
  /** Only traces recorded at or after this time (milliseconds since the epoch). */
  since?: number
  /** Only traces recorded at or before this time (milliseconds since the epoch). */
  until?: number
  /** At most this many (the earliest). */
  limit?: number
}

/** A trace with the traces under it, as {@link Traces.tree} returns it. */
export interface TraceNode {
  /** The trace. */
  trace: Trace
  /** Its children, in the order they were recorded, each with its own subtree. */
  children: TraceNode[]
}

const TYPES = new Set<string>(['tool_call', 'decision', 'thought', 'query', 'error', 'custom'])

function fail(message: string): never {
  throw new InvalidArgumentError(message)
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function optional(data: Record<string, unknown>, type: string, field: string, kind: 'string' | 'number' | 'boolean'): void {
  const v = data[field]
  if (v !== undefined && typeof v !== kind) fail(`${type} data: ${field} must be a ${kind}`)
}

/** Checks that `data` has the shape {@link TraceDataMap} gives `type`. */
function checkData(type: string, data: unknown): void {
  if (type === 'custom') {
    if (data === undefined) fail('custom data must be a storable value, not undefined')
    return
  }
  if (!isObject(data)) fail(`${type} data must be an object`)
  const need = (field: string, ok: boolean, what: string): void => {
    if (!ok) fail(`${type} data needs ${field}: ${what}`)
  }
  switch (type) {
    case 'tool_call':
      need('tool', typeof data.tool === 'string', 'a string')
      need('arguments', data.arguments !== undefined, 'a value')
      optional(data, type, 'durationMs', 'number')
      break
    case 'decision':
      need('question', typeof data.question === 'string', 'a string')
      need('options', Array.isArray(data.options), 'an array')
      need('chosen', data.chosen !== undefined, 'a value')
      optional(data, type, 'reasoning', 'string')
      break
    case 'thought':
      need('content', typeof data.content === 'string', 'a string')
      optional(data, type, 'confidence', 'number')
      break
    case 'query':
      need('query', typeof data.query === 'string', 'a string')
      optional(data, type, 'source', 'string')
      if (data.results !== undefined && !Array.isArray(data.results)) fail('query data: results must be an array')
      break
    case 'error':
      need('message', typeof data.message === 'string', 'a string')
      optional(data, type, 'code', 'string')
      optional(data, type, 'stack', 'string')
      optional(data, type, 'recoverable', 'boolean')
      break
  }
}

function checkId(name: string, id: unknown): asserts id is string {
  if (typeof id !== 'string') fail(`${name} must be a trace id string`)
  checkWellFormed(name, id)
}

function wholeNumber(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${name} must be a non-negative integer, not ${String(v)}`)
  return v
}

/** Nests a depth-first listing (each trace before its children) by parent. */
function nest(listing: Trace[]): TraceNode[] {
  const top: TraceNode[] = []
  const nodes = new Map<string, TraceNode>()
  for (const trace of listing) {
    const node: TraceNode = { trace, children: [] }
    nodes.set(trace.id, node)
    const parent = trace.parent === undefined ? undefined : nodes.get(trace.parent)
    if (parent === undefined) top.push(node)
    else parent.children.push(node)
  }
  return top
}

/**
 * The TraceStore of each run: what an agent did and why, as a forest of
 * traces. A trace's `parent` must exist in the same run. Queries by type,
 * tag and time go through indexes; results are in the order traces were
 * recorded.
 *
 * ```ts
 * const step = db.traces.record(run, { type: 'decision', data: { question: 'which tool?', options: ['search', 'ask'], chosen: 'search' } })
 * db.traces.record(run, { type: 'tool_call', parent: step, data: { tool: 'search', arguments: { q: 'in-mem' } }, tags: ['web'] })
 * db.traces.query(run, { type: 'tool_call', tag: 'web' })
 * ```
 */
export class Traces {
  /** @internal */
  constructor(private readonly target: OpTarget) {}

  /**
   * Records a trace; `data` must have the shape of its `type` (see {@link TraceDataMap}).
   * @returns its id
   * @throws InvalidArgumentError for an unknown type or data of the wrong shape
   * @throws NotFoundError if `parent` is not a trace of this run
   * @throws LimitError for more than 64 tags or a tag over 256 characters
   */
  record<T extends TraceType>(run: RunId, opts: NewTrace<T>): TraceId {
    if (!isObject(opts)) fail('record options must be an object')
    checkOptions(opts, ['type', 'data', 'parent', 'tags', 'metadata'], 'record options')
    const { type, data, parent, tags, metadata } = opts as NewTrace
    if (typeof type !== 'string' || !TYPES.has(type)) {
      fail(`unknown trace type ${JSON.stringify(type)}; a trace type is one of tool_call, decision, thought, query, error, custom`)
    }
    checkData(type, data)
    if (parent !== undefined) checkId('parent', parent)
    if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) fail('tags must be an array of strings')
    for (const t of tags ?? []) checkWellFormed('a tag', t)
    const dataBytes = Buffer.from(encode(data))
    const metaBytes = metadata === undefined ? undefined : Buffer.from(encode(metadata))
    return this.target.write(run, (tx) => tx.tracesRecord(run, type, parent, dataBytes, tags, metaBytes))
  }

  /** The trace, or `undefined` if the run has none with this id. */
  get(run: RunId, id: TraceId): Trace | undefined {
    checkId('id', id)
    return this.target.answer<Trace>(run, (tx, buf) => tx.tracesGetInto(buf, run, id))
  }

  /**
   * The traces whose parent is `id`, in the order they were recorded.
   * @throws NotFoundError if the run has no trace `id`
   */
  children(run: RunId, id: TraceId): Trace[] {
    checkId('id', id)
    return this.target.answer<Trace[]>(run, (tx, buf) => tx.tracesChildrenInto(buf, run, id))!
  }

  /** The traces without a parent, in the order they were recorded. */
  roots(run: RunId): Trace[] {
    return this.target.answer<Trace[]>(run, (tx, buf) => tx.tracesRootsInto(buf, run))!
  }

  /**
   * The trace `id` with everything under it, nested.
   * @throws NotFoundError if the run has no trace `id`
   */
  tree(run: RunId, id: TraceId): TraceNode
  /** Every tree of the run: one node per root, in the order they were recorded. */
  tree(run: RunId): TraceNode[]
  /** Either of the above (the form a remote facade's mapped type keeps: the last overload). */
  tree(run: RunId, id?: TraceId): TraceNode | TraceNode[]
  tree(run: RunId, id?: TraceId): TraceNode | TraceNode[] {
    if (id !== undefined) checkId('id', id)
    const nodes = nest(this.target.answer<Trace[]>(run, (tx, buf) => tx.tracesTreeInto(buf, run, id))!)
    return id === undefined ? nodes : nodes[0]
  }

  /**
   * The traces matching every filter given, in the order they were
   * recorded. Type, tag and time filters use indexes: the cost follows the
   * matches, not the size of the run.
   */
  query<T extends TraceType = TraceType>(run: RunId, opts: TraceQuery<T> = {}): Trace<T>[] {
    if (!isObject(opts)) fail('query options must be an object')
    checkOptions(opts, ['type', 'tag', 'since', 'until', 'limit'], 'query options')
    const { type, tag } = opts
    if (type !== undefined && (typeof type !== 'string' || !TYPES.has(type))) {
      fail(`unknown trace type ${JSON.stringify(type)}; a trace type is one of tool_call, decision, thought, query, error, custom`)
    }
    if (tag !== undefined && typeof tag !== 'string') fail('tag must be a string')
    if (tag !== undefined) checkWellFormed('tag', tag)
    const since = wholeNumber('since', opts.since)
    const until = wholeNumber('until', opts.until)
    const limit = wholeNumber('limit', opts.limit)
    return this.target.answer<Trace[]>(run, (tx, buf) => tx.tracesQueryInto(buf, run, { type, tag, since, until, limit }))! as Trace<T>[]
  }
}

/** {@link Traces} bound to one run. */
export class ScopedTraces {
  /** @internal */
  constructor(
    private readonly traces: Traces,
    private readonly run: RunId,
  ) {}
  /** See {@link Traces.record}. */
  record<T extends TraceType>(opts: NewTrace<T>): TraceId {
    return this.traces.record(this.run, opts)
  }
  /** See {@link Traces.get}. */
  get(id: TraceId): Trace | undefined {
    return this.traces.get(this.run, id)
  }
  /** See {@link Traces.children}. */
  children(id: TraceId): Trace[] {
    return this.traces.children(this.run, id)
  }
  /** See {@link Traces.roots}. */
  roots(): Trace[] {
    return this.traces.roots(this.run)
  }
  /** See {@link Traces.tree}. */
  tree(id: TraceId): TraceNode
  /** See {@link Traces.tree}. */
  tree(): TraceNode[]
  /** Either of the above. */
  tree(id?: TraceId): TraceNode | TraceNode[]
  tree(id?: TraceId): TraceNode | TraceNode[] {
    return id === undefined ? this.traces.tree(this.run) : this.traces.tree(this.run, id)
  }
  /** See {@link Traces.query}. */
  query<T extends TraceType = TraceType>(opts?: TraceQuery<T>): Trace<T>[] {
    return this.traces.query(this.run, opts)
  }
}
