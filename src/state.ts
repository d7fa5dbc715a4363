/**
 * StateCells: named, versioned values per run with compare-and-swap.
 * @module
 */
import { describe } from './options.js'
import { type Storable, type Value, encode } from './codec.js'
import { ConflictError, InvalidArgumentError, translate } from './errors.js'
import { TAG_STATE, checkWellFormed, readIntoIo } from './keys.js'
import { versionedAt } from './kv.js'
import type { OpTarget } from './ops.js'
import type { DbTarget, Direct } from './targets.js'

/** A cell's value with its version and write time. */
export interface Cell<T = Value> {
  /** The stored value. */
  value: T
  /** Starts at 1 and rises by 1 on every write. */
  version: number
  /** Milliseconds since the epoch of the last write. */
  updatedAt: number
}

/** One entry of {@link State.list}. */
export interface NamedCell<T = Value> extends Cell<T> {
  /** The cell's name. */
  name: string
}

/** What {@link State.cas} returns. */
export interface CasResult {
  /** Whether the value was written. */
  ok: boolean
  /** The cell's version after the call: the new one, or the current one on a mismatch (0: absent). */
  version: number
}

/** What {@link State.transition} returns. */
export interface TransitionResult<T = Value> {
  /** The value written. */
  value: T
  /** Its version. */
  version: number
}

/** How often {@link State.transition} re-runs on a conflict. */
const TRANSITION_RETRIES = 1000

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new InvalidArgumentError('a state cell name must be a string')
  checkWellFormed('a state cell name', name)
}

/**
 * StateCells of each run. Every write raises the cell's version by 1;
 * {@link State.cas} writes only at an expected version and answers at once.
 */
export class State {
  /** @internal */
  constructor(
    private readonly target: OpTarget,
    private readonly transact: <T>(run: string, fn: (state: ScopedState) => T) => T,
    /** The database's fast path for `get` (absent inside a transaction). */
    private readonly fast?: DbTarget,
  ) {}

  /** Creates a cell at version 1; `AlreadyExistsError` if it exists. */
  init<T = Value>(run: string, name: string, value: T & Storable<T>): number {
    checkName(name)
    const bytes = encode(value)
    return this.target.write(run, (tx) => tx.stateInit(run, name, bytes))
  }

  /** The cell, or `undefined`. `T` names the type you stored (unchecked, like a cast). */
  get<T = Value>(run: string, name: string): Cell<T> | undefined {
    checkName(name)
    const fast = this.fast
    if (fast !== undefined) {
      // Through the I/O buffer: no native object per call.
      const io = fast.io
      const n = io.key(run, TAG_STATE, name)
      let len: number | Direct
      try {
        len = readIntoIo(io, 16, () => fast.stateGet(n))
      } catch (e) {
        throw translate(e)
      }
      return len === -1 ? undefined : versionedAt<T>(io.value, len)
    }
    return this.target.answer<Cell<T>>(run, (tx, buf) => tx.stateGetInto(buf, run, name))
  }

  /** Writes unconditionally (creating the cell at version 1); returns the new version. */
  set<T = Value>(run: string, name: string, value: T & Storable<T>): number {
    checkName(name)
    const fast = this.fast
    if (fast !== undefined) {
      // Through the I/O buffer, as kv.put (no JS string or buffer for the
      // native side to convert), the value first: its getters may read
      // through this handle.
      const len = fast.io.encodeValue(value)
      const n = fast.io.key(run, TAG_STATE, name)
      try {
        return fast.stateSet(n, len)
      } catch (e) {
        throw translate(e)
      }
    }
    const bytes = encode(value)
    return this.target.write(run, (tx) => tx.stateSet(run, name, bytes))
  }

  /**
   * Writes `value` only if the cell is at `expectedVersion` (0: only if it
   * does not exist). On a mismatch it returns `{ ok: false, version: current }`
   * at once, with no retry.
   */
  cas<T = Value>(run: string, name: string, expectedVersion: number, value: T & Storable<T>): CasResult {
    checkName(name)
    if (typeof expectedVersion !== 'number' || !Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
      throw new InvalidArgumentError(`expectedVersion must be a non-negative integer, not ${describe(expectedVersion)}`)
    }
    const bytes = encode(value)
    return this.target.write(run, (tx) => tx.stateCas(run, name, expectedVersion, bytes))
  }

  /**
   * Read-modify-write: calls `fn` with the current value (`undefined` when
   * the cell does not exist) and writes what it returns, re-running `fn` on
   * a newer value if another writer got in first. `fn` must be synchronous
   * and may run more than once.
   */
  transition<T = Value>(run: string, name: string, fn: (current: T | undefined) => T & Storable<T>): TransitionResult<T> {
    checkName(name)
    if (typeof fn !== 'function') throw new InvalidArgumentError('transition needs a function')
    for (let attempt = 0; ; attempt++) {
      try {
        return this.transact(run, (state) => {
          const next = fn(state.get(name)?.value as T | undefined)
          return { value: next, version: state.set(name, next) }
        })
      } catch (e) {
        if (e instanceof ConflictError && attempt < TRANSITION_RETRIES) continue
        throw e
      }
    }
  }

  /** Removes the cell; whether it existed. */
  delete(run: string, name: string): boolean {
    checkName(name)
    return this.target.write(run, (tx) => tx.stateDelete(run, name))
  }

  /** Every cell of the run, by name. */
  list(run: string): NamedCell[] {
    return this.target.answer<NamedCell[]>(run, (tx, buf) => tx.stateListInto(buf, run))!
  }
}

/** {@link State} bound to one run. */
export class ScopedState {
  /** @internal */
  constructor(
    private readonly state: State,
    private readonly run: string,
  ) {}
  /** See {@link State.init}. */
  init<T = Value>(name: string, value: T & Storable<T>): number {
    return this.state.init(this.run, name, value)
  }
  /** See {@link State.get}. */
  get<T = Value>(name: string): Cell<T> | undefined {
    return this.state.get(this.run, name)
  }
  /** See {@link State.set}. */
  set<T = Value>(name: string, value: T & Storable<T>): number {
    return this.state.set(this.run, name, value)
  }
  /** See {@link State.cas}. */
  cas<T = Value>(name: string, expectedVersion: number, value: T & Storable<T>): CasResult {
    return this.state.cas(this.run, name, expectedVersion, value)
  }
  /** See {@link State.transition}. */
  transition<T = Value>(name: string, fn: (current: T | undefined) => T & Storable<T>): TransitionResult<T> {
    return this.state.transition(this.run, name, fn)
  }
  /** See {@link State.delete}. */
  delete(name: string): boolean {
    return this.state.delete(this.run, name)
  }
  /** See {@link State.list}. */
  list(): NamedCell[] {
    return this.state.list(this.run)
  }
}
