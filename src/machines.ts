/**
 * State machines: versioned definitions with guarded transitions, and
 * instances per run whose every transition is also appended to the run's
 * EventLog.
 * @module
 */
import { checkOptions } from './options.js'
import { type Storable, type Value, decode, encode } from './codec.js'
import { InvalidArgumentError } from './errors.js'
import type { OpTarget } from './ops.js'
import { checkWellFormed } from './keys.js'

/** An object value: the context of an instance, or the payload of an event. */
export type MachineContext = { [key: string]: Value }

/** One transition of a {@link MachineDefinition}. */
export interface MachineTransitionSpec {
  /** The state (or any of the states) the transition leaves from. */
  from: string | readonly string[]
  /** The event that triggers it. */
  event: string
  /** The state it enters. */
  to: string
  /**
   * A guard expression over `ctx` (the context before the transition) and
   * `payload` (the event's payload), for example
   * `ctx.total < 100 && payload.approver != null`. Several transitions for one
   * state and event are tried in definition order; the first whose guard
   * passes (or that has none) is taken. See the README for the language.
   */
  guard?: string
}

/** What {@link Machines.define} takes. */
export interface MachineDefinition {
  /** The machine's name: 1–256 characters, no NUL. */
  name: string
  /** A positive integer; each (name, version) is immutable once defined. */
  version: number
  /** Every state, unique. */
  states: readonly string[]
  /** The state a new instance starts in. */
  initial: string
  /** The transitions, in the order guarded alternatives are tried. */
  transitions: readonly MachineTransitionSpec[]
}

/** A transition as stored: `from` is always a list. */
export interface StoredMachineTransition {
  /** The states the transition leaves from. */
  from: string[]
  /** The event that triggers it. */
  event: string
  /** The state it enters. */
  to: string
  /** The guard as it was defined, if any. */
  guard?: string
}

/** A definition as {@link Machines.getDefinition} returns it. */
export interface StoredMachineDefinition {
  /** The machine's name. */
  name: string
  /** Its version. */
  version: number
  /** Every state. */
  states: string[]
  /** The state a new instance starts in. */
  initial: string
  /** The transitions, in definition order. */
  transitions: StoredMachineTransition[]
}

/** What {@link Machines.define} returns. */
export interface MachineDefineResult {
  /** False when the same body was already defined under this name and version (nothing was written). */
  created: boolean
}

/** A machine instance. */
export interface MachineInstance<C = MachineContext> {
  /** The instance id, unique within its run. */
  id: string
  /** The machine it runs. */
  machine: string
  /** The definition version it runs, fixed when it was created. */
  version: number
  /** Its current state. */
  state: string
  /** Its context: the initial context with every applied payload merged in. */
  context: C
  /** 1 when created; rises by 1 with every applied transition. */
  revision: number
  /** Milliseconds since the epoch when it was created. */
  createdAt: number
  /** Milliseconds since the epoch of its last transition (or creation). */
  updatedAt: number
}

/** Options of {@link Machines.create}; `C` is the context's type (an interface is fine). */
export interface MachineCreateOptions<C = MachineContext> {
  /** The machine to run. */
  machine: string
  /** The definition version; the newest one when omitted. */
  version?: number
  /** The initial context, an object. Default `{}`. */
  context?: C
  /**
   * Repeating a create with the same key returns the first result (the
   * instance as it was created) instead of `AlreadyExistsError`. Keys are
   * durable and scoped to the instance.
   */
  idempotencyKey?: string
}

/** Options of {@link Machines.apply}; `P` is the payload's type (an interface is fine). */
export interface MachineApplyOptions<P = MachineContext> {
  /**
   * The event's payload, an object. Guards see it as `payload`; after the
   * transition it is merged into the context as an RFC 7386 merge patch
   * (a `null` member removes that key).
   */
  payload?: P
  /** Apply only if the instance is in this state; else `ConflictError`. */
  expectedState?: string
  /** Apply only if the instance is at this revision; else `ConflictError`. */
  expectedRevision?: number
  /**
   * Repeating an apply with the same key returns the first result with
   * `applied: false` and changes nothing. Keys are durable (they survive a
   * reopen) and scoped to the instance; reusing one for another event is an
   * `InvalidArgumentError`.
   */
  idempotencyKey?: string
}

/** What {@link Machines.apply} returns. */
export interface MachineApplyResult<C = MachineContext> {
  /** The state before the transition. */
  from: string
  /** The state after it. */
  to: string
  /** The context after the payload was merged in. */
  context: C
  /** The instance's revision after the transition. */
  revision: number
  /** False when an idempotency key repeated an earlier apply: this is its result, and nothing changed. */
  applied: boolean
}

/** Options of {@link Machines.list}. */
export interface MachineListOptions {
  /** Only instances of this machine. */
  machine?: string
  /** Only instances in this state. */
  state?: string
}

interface RawInstance {
  id: string
  machine: string
  version: number
  state: string
  context: Buffer
  revision: number
  createdAt: number
  updatedAt: number
}

interface RawDefinition {
  name: string
  version: number
  states: string[]
  initial: string
  transitions: { from: string[]; event: string; to: string; guard?: string | null }[]
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function str(what: string, v: unknown): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${what} must be a string`)
  checkWellFormed(what, v)
  return v
}

function optStr(what: string, v: unknown): string | undefined {
  return v === undefined ? undefined : str(what, v)
}

function positiveInt(what: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${what} must be a positive integer`)
  return v
}

function options<T>(what: string, v: T | undefined): Partial<T> {
  if (v === undefined) return {}
  if (!isObject(v)) throw new InvalidArgumentError(`${what} must be an object`)
  return v
}

function object(what: string, v: unknown): Uint8Array | undefined {
  if (v === undefined) return undefined
  if (!isObject(v)) throw new InvalidArgumentError(`${what} must be an object`)
  return encode(v)
}

/** Drops properties whose value is `undefined`, which the codec refuses. */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}

/** Checks the shape of a definition and encodes it; the engine validates its meaning. */
function encodeDefinition(def: MachineDefinition): Uint8Array {
  if (!isObject(def)) throw new InvalidArgumentError('a machine definition must be an object')
  str('a machine name', def.name)
  if (positiveInt('version', def.version) === undefined) throw new InvalidArgumentError('version must be a positive integer')
  if (!Array.isArray(def.states)) throw new InvalidArgumentError('states must be an array of state names')
  def.states.forEach((s, i) => str(`states[${i}]`, s))
  str('initial', def.initial)
  if (!Array.isArray(def.transitions)) throw new InvalidArgumentError('transitions must be an array')
  const transitions = def.transitions.map((t: unknown, i: number) => {
    if (!isObject(t)) throw new InvalidArgumentError(`transitions[${i}] must be an object`)
    if (Array.isArray(t.from)) (t.from as unknown[]).forEach((s, j) => str(`transitions[${i}].from[${j}]`, s))
    else str(`transitions[${i}].from`, t.from)
    str(`transitions[${i}].event`, t.event)
    str(`transitions[${i}].to`, t.to)
    optStr(`transitions[${i}].guard`, t.guard)
    return defined(t)
  })
  return encode({ ...def, transitions })
}

function toInstance<C>(i: RawInstance): MachineInstance<C> {
  return {
    id: i.id,
    machine: i.machine,
    version: i.version,
    state: i.state,
    context: decode(i.context) as C,
    revision: i.revision,
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
  }
}

function toDefinition(d: RawDefinition): StoredMachineDefinition {
  return {
    name: d.name,
    version: d.version,
    states: d.states,
    initial: d.initial,
    transitions: d.transitions.map((t) => (t.guard == null ? { from: t.from, event: t.event, to: t.to } : { from: t.from, event: t.event, to: t.to, guard: t.guard })),
  }
}

/**
 * Declarative state machines (after rstmdb). Definitions are database-wide
 * and immutable per (name, version); instances belong to a run.
 *
 * ```ts
 * db.machines.define({
 *   name: 'order', version: 1,
 *   states: ['draft', 'review', 'approved'], initial: 'draft',
 *   transitions: [
 *     { from: 'draft', event: 'submit', to: 'review' },
 *     { from: 'review', event: 'approve', to: 'approved', guard: 'ctx.total < 100' },
 *   ],
 * })
 * db.machines.create(run, 'order-1', { machine: 'order', context: { total: 40 } })
 * db.machines.apply(run, 'order-1', 'submit', { payload: { by: 'ada' } })
 * ```
 */
export class Machines {
  /** @internal */
  constructor(private readonly target: OpTarget) {}

  /**
   * Defines a machine version. The definition is validated: `initial` and
   * every `from` and `to` must be states, guards must parse. Defining the
   * same body again is a no-op (`created: false`); `from: 'a'` and
   * `from: ['a']` are the same body, and so are guards that differ only in
   * spacing, quotes or redundant parentheses.
   * @throws MachineVersionExistsError if this name and version already have a different body
   * @throws InvalidArgumentError if the definition is invalid (a guard's error names its position)
   */
  define(definition: MachineDefinition): MachineDefineResult {
    const bytes = encodeDefinition(definition)
    return { created: this.target.unscoped((tx) => tx.machinesDefine(bytes)) }
  }

  /** One version of a definition, or the newest when `version` is omitted; `undefined` if there is none. */
  getDefinition(name: string, version?: number): StoredMachineDefinition | undefined {
    str('a machine name', name)
    const v = positiveInt('version', version)
    const d = this.target.unscoped((tx) => tx.machinesDefinition(name, v))
    return d == null ? undefined : toDefinition(d)
  }

  /** Every definition, ordered by name then version; only `name`'s versions when given. */
  listDefinitions(name?: string): StoredMachineDefinition[] {
    const n = optStr('a machine name', name)
    return this.target.unscoped((tx) => tx.machinesDefinitions(n)).map(toDefinition)
  }

  /**
   * Creates an instance in the definition's initial state, at revision 1.
   * @throws AlreadyExistsError if the id exists in the run (unless `idempotencyKey` repeats its create)
   * @throws NotFoundError if the machine (or that version) is not defined
   */
  create<C = MachineContext>(run: string, id: string, opts: MachineCreateOptions<C> & { context?: Storable<C> }): MachineInstance<C> {
    str('an instance id', id)
    if (!isObject(opts)) throw new InvalidArgumentError('create options must be an object with at least { machine }')
    checkOptions(opts, ['machine', 'version', 'context', 'idempotencyKey'], 'create options')
    const machine = str('machine', opts.machine)
    const v = positiveInt('version', opts.version)
    const context = object('the context', opts.context)
    const key = optStr('idempotencyKey', opts.idempotencyKey)
    return toInstance<C>(this.target.write(run, (tx) => tx.machinesCreate(run, id, machine, v, context, key)))
  }

  /**
   * Applies `event` to an instance: takes the first transition from its
   * state on that event whose guard passes, merges the payload into the
   * context, raises the revision by 1, and appends a `machine.transition`
   * event (`{ machine, version, instance, event, from, to, revision, payload? }`)
   * to the run's EventLog, all in one commit.
   * @throws InvalidTransitionError if the state has no transition on `event` (`details.allowed` lists the events it has)
   * @throws GuardFailedError if every guarded alternative is false (`details.guards` lists them)
   * @throws ConflictError if `expectedState` or `expectedRevision` does not match (`details` has both sides)
   * @throws NotFoundError if the instance does not exist
   */
  apply<C = MachineContext, P = MachineContext>(run: string, id: string, event: string, opts?: MachineApplyOptions<P> & { payload?: Storable<P> }): MachineApplyResult<C> {
    str('an instance id', id)
    str('an event', event)
    const o = options('apply options', opts)
    checkOptions(o, ['payload', 'expectedState', 'expectedRevision', 'idempotencyKey'], 'apply options')
    const payload = object('the payload', o.payload)
    const expectedState = optStr('expectedState', o.expectedState)
    const expectedRevision = o.expectedRevision
    if (expectedRevision !== undefined && (typeof expectedRevision !== 'number' || !Number.isSafeInteger(expectedRevision) || expectedRevision < 0)) {
      throw new InvalidArgumentError('expectedRevision must be a non-negative integer')
    }
    const key = optStr('idempotencyKey', o.idempotencyKey)
    const r = this.target.write(run, (tx) => tx.machinesApply(run, id, event, payload, expectedState, expectedRevision, key))
    return { from: r.from, to: r.to, context: decode(r.context) as C, revision: r.revision, applied: r.applied }
  }

  /** The instance, or `undefined`. */
  get<C = MachineContext>(run: string, id: string): MachineInstance<C> | undefined {
    str('an instance id', id)
    return this.target.answer<MachineInstance<C>>(run, (tx, buf) => tx.machinesGetInto(buf, run, id))
  }

  /** The run's instances in id order, optionally only one machine's or those in one state. */
  list<C = MachineContext>(run: string, opts?: MachineListOptions): MachineInstance<C>[] {
    const o = options('list options', opts)
    checkOptions(o, ['machine', 'state'], 'list options')
    const machine = optStr('machine', o.machine)
    const state = optStr('state', o.state)
    return this.target.answer<MachineInstance<C>[]>(run, (tx, buf) => tx.machinesListInto(buf, run, machine, state))!
  }
}

/** {@link Machines} bound to one run. Definitions are database-wide, so `define` and friends are the same as on `db.machines`. */
export class ScopedMachines {
  /** @internal */
  constructor(
    private readonly machines: Machines,
    private readonly run: string,
  ) {}
  /** See {@link Machines.define}. */
  define(definition: MachineDefinition): MachineDefineResult {
    return this.machines.define(definition)
  }
  /** See {@link Machines.getDefinition}. */
  getDefinition(name: string, version?: number): StoredMachineDefinition | undefined {
    return this.machines.getDefinition(name, version)
  }
  /** See {@link Machines.listDefinitions}. */
  listDefinitions(name?: string): StoredMachineDefinition[] {
    return this.machines.listDefinitions(name)
  }
  /** See {@link Machines.create}. */
  create<C = MachineContext>(id: string, opts: MachineCreateOptions<C> & { context?: Storable<C> }): MachineInstance<C> {
    return this.machines.create<C>(this.run, id, opts)
  }
  /** See {@link Machines.apply}. */
  apply<C = MachineContext, P = MachineContext>(id: string, event: string, opts?: MachineApplyOptions<P> & { payload?: Storable<P> }): MachineApplyResult<C> {
    return this.machines.apply<C, P>(this.run, id, event, opts)
  }
  /** See {@link Machines.get}. */
  get<C = MachineContext>(id: string): MachineInstance<C> | undefined {
    return this.machines.get<C>(this.run, id)
  }
  /** See {@link Machines.list}. */
  list<C = MachineContext>(opts?: MachineListOptions): MachineInstance<C>[] {
    return this.machines.list<C>(this.run, opts)
  }
}
