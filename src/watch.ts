/**
 * Watch: an async iterator of committed changes.
 * @module
 */
import { checkOptions } from './options.js'
import { type Value, decode } from './codec.js'
import { InvalidArgumentError, translate } from './errors.js'
import type { Primitive } from './history.js'
import { runBytes } from './keys.js'
import type { NativeDatabase } from './native.js'
import type { RunId } from './runs.js'

/** One committed write. */
export interface Change {
  /** The commit version. */
  version: number
  /** The run written. */
  run: RunId
  /** The primitive written. */
  primitive: Primitive
  /** The KV key, cell name or document id; the sequence for events; the id for traces and machine instances. */
  key: string
  /** Whether it was a delete. */
  deleted: boolean
  /** The new value, for kv, state, json and events (their payload); absent for deletes, traces and machines (read them by `key`). */
  value?: Value
}

/** Options of `db.watch`. */
export interface WatchOptions {
  /** Only changes to this run. */
  run?: RunId
  /** Only changes to these primitives. */
  primitives?: Primitive[]
  /** Aborting it ends the iteration. */
  signal?: AbortSignal
}

const PRIMITIVES = new Set(['kv', 'events', 'state', 'json', 'traces', 'machines', 'vectors'])
/** How long one native wait lasts before the loop checks the signal again. */
const WAIT_MS = 1000

/** Checks `opts` before the iteration starts. @internal */
export function checkWatchOptions(opts: WatchOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('watch options must be an object')
  checkOptions(opts, ['run', 'primitives', 'signal'], 'watch options')
  if (opts.run !== undefined) runBytes(opts.run)
  if (opts.primitives !== undefined && (!Array.isArray(opts.primitives) || opts.primitives.some((p) => !PRIMITIVES.has(p)))) {
    throw new InvalidArgumentError('primitives must be an array of kv, events, state, json, traces, machines, vectors')
  }
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal')
}

interface RawChange {
  version: number
  run: string
  primitive: string
  key: string
  deleted: boolean
  value?: Buffer | null
}

/**
 * The iteration behind `db.watch`. The watcher is opened at once, so the
 * changes committed between `db.watch()` and the first `next()` are not
 * missed.
 * @internal
 */
export function watchChanges(native: NativeDatabase, opts: WatchOptions, open: Set<number>): AsyncGenerator<Change, void, undefined> {
  if (opts.signal?.aborted) return (async function* () {})()
  let start: { id: number; after: number }
  try {
    start = native.watchOpen()
  } catch (e) {
    throw translate(e)
  }
  open.add(start.id)
  return iterate(native, opts, open, start)
}

async function* iterate(
  native: NativeDatabase,
  opts: WatchOptions,
  open: Set<number>,
  start: { id: number; after: number },
): AsyncGenerator<Change, void, undefined> {
  const { run, primitives, signal } = opts
  const { id } = start
  let last = start.after
  const stop = (): void => native.watchClose(id)
  signal?.addEventListener('abort', stop, { once: true })
  try {
    for (;;) {
      let batch: { changes: RawChange[]; upto: number } | null
      try {
        batch = await native.watchWait(id, last, run, primitives, WAIT_MS)
      } catch (e) {
        throw translate(e)
      }
      if (batch === null || signal?.aborted) return
      last = batch.upto
      for (const c of batch.changes) {
        const change: Change = { version: c.version, run: c.run, primitive: c.primitive as Primitive, key: c.key, deleted: c.deleted }
        if (c.value != null) change.value = decode(c.value)
        yield change
      }
    }
  } finally {
    signal?.removeEventListener('abort', stop)
    open.delete(id)
    if (native.isOpen) native.watchClose(id)
  }
}
