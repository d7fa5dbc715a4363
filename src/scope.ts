/**
 * Run scopes: the API bound to one run. A transaction's `tx` is a scope too.
 * @module
 */
import { Events, ScopedEvents } from './events.js'
import { Json, ScopedJson } from './json.js'
import { Kv, ScopedKv } from './kv.js'
import { Machines, ScopedMachines } from './machines.js'
import type { Io } from './keys.js'
import { TxOps } from './ops.js'
import type { RunId } from './runs.js'
import { ScopedState, State } from './state.js'
import { TxTarget } from './targets.js'
import type { TxLease } from './txlease.js'
import { ScopedTraces, Traces } from './traces.js'
import { ScopedVectors, Vectors } from './vectors.js'

/** The primitives' facades of one database or one transaction. @internal */
export interface Facades<W> {
  kv: Kv<W>
  events: Events
  state: State
  json: Json
  traces: Traces
  machines: Machines
  vectors: Vectors
}

/** Every primitive bound to one run: `scope.kv.put(key, value)`. */
export class RunScope {
  /** KV working memory of this run. */
  readonly kv: ScopedKv<number>
  /** The EventLog of this run. */
  readonly events: ScopedEvents
  /** The StateCells of this run. */
  readonly state: ScopedState
  /** The JSON documents of this run. */
  readonly json: ScopedJson
  /** The traces of this run. */
  readonly traces: ScopedTraces
  /** The state machine instances of this run (definitions are database-wide). */
  readonly machines: ScopedMachines
  /** The vector collections of this run. */
  readonly vectors: ScopedVectors
  /** @internal */
  constructor(
    f: Facades<number>,
    /** The run this scope is bound to. */
    readonly run: RunId,
  ) {
    this.kv = new ScopedKv(f.kv, run)
    this.events = new ScopedEvents(f.events, run)
    this.state = new ScopedState(f.state, run)
    this.json = new ScopedJson(f.json, run)
    this.traces = new ScopedTraces(f.traces, run)
    this.machines = new ScopedMachines(f.machines, run)
    this.vectors = new ScopedVectors(f.vectors, run)
  }
}

/**
 * The scope a transaction closure receives. Reads see the transaction's
 * snapshot and its own writes; writes become visible together at commit.
 */
export class TxScope {
  // Each facade is made on first use: most transactions touch one or two
  // primitives, and a transaction's scope is made for every attempt.
  #kv?: ScopedKv<void>
  #events?: ScopedEvents
  #state?: ScopedState
  #json?: ScopedJson
  #traces?: ScopedTraces
  #machines?: ScopedMachines
  #vectors?: ScopedVectors
  #ops?: TxOps
  readonly #lease: TxLease
  readonly #io: Io
  /** The run of the transaction. */
  readonly run: RunId

  /** @internal */
  constructor(lease: TxLease, io: Io, run: RunId) {
    this.#lease = lease
    this.#io = io
    this.run = run
  }

  #txOps(): TxOps {
    return (this.#ops ??= new TxOps(this.#lease, this.#io))
  }

  /** KV of this run, inside the transaction (`put` returns nothing: the version is known at commit). */
  get kv(): ScopedKv<void> {
    return (this.#kv ??= new ScopedKv(new Kv<void>(new TxTarget(this.#lease, this.#io)), this.run))
  }

  /** The EventLog of this run, inside the transaction. */
  get events(): ScopedEvents {
    return (this.#events ??= new ScopedEvents(new Events(this.#txOps()), this.run))
  }

  /** The StateCells of this run, inside the transaction. */
  get state(): ScopedState {
    if (this.#state === undefined) {
      const state: State = new State(this.#txOps(), (r, fn) => fn(new ScopedState(state, r)))
      this.#state = new ScopedState(state, this.run)
    }
    return this.#state
  }

  /** The JSON documents of this run, inside the transaction. */
  get json(): ScopedJson {
    return (this.#json ??= new ScopedJson(new Json(this.#txOps()), this.run))
  }

  /** The traces of this run, inside the transaction. */
  get traces(): ScopedTraces {
    return (this.#traces ??= new ScopedTraces(new Traces(this.#txOps()), this.run))
  }

  /** The state machines of this run, inside the transaction (definitions too: a define commits or rolls back with it). */
  get machines(): ScopedMachines {
    return (this.#machines ??= new ScopedMachines(new Machines(this.#txOps()), this.run))
  }

  /** The vector collections of this run, inside the transaction: a search sees its snapshot and its own upserts and deletes. */
  get vectors(): ScopedVectors {
    return (this.#vectors ??= new ScopedVectors(new Vectors(this.#txOps()), this.run))
  }
}
