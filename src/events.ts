/**
 * The EventLog: an append-only, hash-chained log per run.
 * @module
 */
import { checkOptions, describe } from './options.js'
import { type Storable, type Value, encode } from './codec.js'
import { InvalidArgumentError } from './errors.js'
import type { OpTarget } from './ops.js'
import { checkWellFormed } from './keys.js'

/** What {@link Events.append} returns. */
export interface Appended {
  /** Position in the run's log, dense from 0. */
  sequence: number
  /** SHA-256 of this event (hex), see docs/format.md. */
  hash: string
  /** The previous event's hash (hex); 64 zeros for the first event. */
  prevHash: string
  /** Milliseconds since the epoch when the event was appended. */
  timestamp: number
}

/** One event of a run's log. */
export interface Event<P = Value> extends Appended {
  /** The event type given to `append`. */
  type: string
  /** The payload given to `append`. */
  payload: P
}

/** Options of {@link Events.range}. */
export interface RangeOptions {
  /** First sequence (inclusive). Default 0. */
  from?: number
  /** End sequence (exclusive). Default: the end of the log. */
  to?: number
  /** Only events of this type. */
  type?: string
  /** At most this many events. */
  limit?: number
}

/** What {@link Events.verify} finds. */
export interface Verification {
  /** Whether every event links to its predecessor and hashes to its stored hash. */
  valid: boolean
  /** Events in the log. */
  length: number
  /** The first sequence that does not fit the chain, when `valid` is false. */
  firstInvalid?: number
  /** Why that event does not fit, when `valid` is false. */
  reason?: string
}

function seq(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidArgumentError(`${name} must be a non-negative integer, not ${describe(v)}`)
  }
  return v
}

function checkType(type: unknown): asserts type is string {
  if (typeof type !== 'string') throw new InvalidArgumentError('an event type must be a string')
  checkWellFormed('an event type', type)
}

/**
 * The EventLog of each run: append-only, with sequences dense from 0 and a
 * SHA-256 hash chain that {@link Events.verify} recomputes. Concurrent
 * appenders to one run never fork the chain: two appends to one run conflict
 * and the later one is re-run on the new head.
 */
export class Events {
  /** @internal */
  constructor(private readonly target: OpTarget) {}

  /** Appends an event with a `null` payload; returns its sequence, hash, previous hash and timestamp. */
  append(run: string, type: string): Appended
  /** Appends an event; returns its sequence, hash, previous hash and timestamp. */
  append<T = Value>(run: string, type: string, payload: T & Storable<T>): Appended
  /** Either of the above (the form a remote facade's mapped type keeps: the last overload). */
  append<T = Value>(run: string, type: string, payload?: T & Storable<T>): Appended
  append(run: string, type: string, payload?: unknown): Appended {
    checkType(type)
    const bytes = encode(payload === undefined ? null : payload)
    return this.target.write(run, (tx) => tx.eventsAppend(run, type, bytes))
  }

  /** The event at `sequence`, or `undefined`. */
  get(run: string, sequence: number): Event | undefined {
    const s = seq('sequence', sequence) as number
    return this.target.answer<Event>(run, (tx, buf) => tx.eventsGetInto(buf, run, s))
  }

  /** Events in sequence order from `from` (inclusive) to `to` (exclusive), optionally of one type. */
  range(run: string, opts: RangeOptions = {}): Event[] {
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('range options must be an object')
    checkOptions(opts, ['from', 'to', 'type', 'limit'], 'range options')
    const from = seq('from', opts.from)
    const to = seq('to', opts.to)
    const limit = seq('limit', opts.limit)
    if (opts.type !== undefined) checkType(opts.type)
    return this.target.answer<Event[]>(run, (tx, buf) => tx.eventsRangeInto(buf, run, from, to, opts.type, limit))!
  }

  /** How many events the run's log holds. */
  length(run: string): number {
    return this.target.read(run, (tx) => tx.eventsLength(run))
  }

  /** The newest event, or `undefined` for an empty log. */
  head(run: string): Event | undefined {
    return this.target.answer<Event>(run, (tx, buf) => tx.eventsHeadInto(buf, run))
  }

  /** Recomputes the hash chain and names the first event that does not fit it. */
  verify(run: string): Verification {
    const v = this.target.read(run, (tx) => tx.eventsVerify(run))
    const out: Verification = { valid: v.valid, length: v.length }
    if (v.firstInvalid != null) out.firstInvalid = v.firstInvalid
    if (v.reason != null) out.reason = v.reason
    return out
  }
}

/** {@link Events} bound to one run. */
export class ScopedEvents {
  /** @internal */
  constructor(
    private readonly events: Events,
    private readonly run: string,
  ) {}
  /** See {@link Events.append}. */
  append(type: string): Appended
  /** See {@link Events.append}. */
  append<T = Value>(type: string, payload: T & Storable<T>): Appended
  /** Either of the above. */
  append<T = Value>(type: string, payload?: T & Storable<T>): Appended
  append(type: string, payload?: unknown): Appended {
    return this.events.append(this.run, type, payload as Value)
  }
  /** See {@link Events.get}. */
  get(sequence: number): Event | undefined {
    return this.events.get(this.run, sequence)
  }
  /** See {@link Events.range}. */
  range(opts?: RangeOptions): Event[] {
    return this.events.range(this.run, opts)
  }
  /** See {@link Events.length}. */
  length(): number {
    return this.events.length(this.run)
  }
  /** See {@link Events.head}. */
  head(): Event | undefined {
    return this.events.head(this.run)
  }
  /** See {@link Events.verify}. */
  verify(): Verification {
    return this.events.verify(this.run)
  }
}
