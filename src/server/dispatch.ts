/**
 * What a request does in the owner: it calls the same facade method an
 * embedded caller would (`db.kv.put(...)`, `db.scope(run).kv.put(...)`, a
 * transaction's `tx.kv.put(...)`, a replay view's `view.kv.get(...)`), so a
 * remote database answers exactly as the embedded one does.
 * @internal
 * @module
 */
import type { Database } from '../database.js'
import { ClosedError, InvalidArgumentError, LimitError, NotFoundError } from '../errors.js'
import type { RunView } from '../history.js'
import type { RunScope, TxScope } from '../scope.js'
import type { Change, WatchOptions } from '../watch.js'
import { Events } from '../events.js'
import { Json } from '../json.js'
import { Kv } from '../kv.js'
import { Machines } from '../machines.js'
import { Runs } from '../runs.js'
import { State } from '../state.js'
import { Traces } from '../traces.js'
import { Vectors } from '../vectors.js'
import type { Where } from './protocol.js'
import type { ServerStats } from './stats.js'

/** The facades a request may name, with the class whose methods it may call. */
const FACADES = { kv: Kv, runs: Runs, events: Events, state: State, json: Json, traces: Traces, vectors: Vectors, machines: Machines } as const

/** Database operations that are not a facade's method. */
export const DB_OPS = ['ping', 'stats', 'flush', 'checkpoint', 'diff', 'tx.begin', 'tx.commit', 'tx.abort', 'replay', 'view.close', 'watch', 'unwatch'] as const

function methodsOf(cls: { prototype: object }): string[] {
  return Object.getOwnPropertyNames(cls.prototype).filter((m) => m !== 'constructor' && typeof Object.getOwnPropertyDescriptor(cls.prototype, m)?.value === 'function')
}

/** Every operation name, in a fixed order (the server's latency table is indexed by it). */
export const OP_NAMES: readonly string[] = [
  ...DB_OPS,
  ...Object.entries(FACADES).flatMap(([name, cls]) => methodsOf(cls).map((m) => `${name}.${m}`)),
]
const OP_INDEX = new Map(OP_NAMES.map((n, i) => [n, i]))
/** Index of an operation in {@link OP_NAMES}, or -1. */
export function opIndex(op: string): number {
  return OP_INDEX.get(op) ?? -1
}

/** A remote transaction held open in the owner for one connection. */
interface OpenTx {
  scope: TxScope
  /** Ends the transaction's closure: `true` commits it, `false` rolls it back. */
  finish: (commit: boolean) => void
  /** Settles when the commit is done (durable for the mode) or the rollback happened. */
  done: Promise<unknown>
  timer: NodeJS.Timeout
  expired: boolean
  /** The first request in it that failed: its commit fails with this (the client need not wait for each answer before committing). */
  failed?: unknown
}

/** Thrown inside a remote transaction's closure to roll it back. */
const ROLLBACK = Symbol('rollback')

/** Options of one connection's session. */
export interface SessionOptions {
  /** How long a remote transaction may stay open. */
  txLeaseMs: number
  /** The serving listener's counters, which `stats` reports as `server` (the handle that serves is not the one that opened the database). */
  server?: () => ServerStats
}

/** A watch stream's sink: where its changes go. */
export interface WatchSink {
  item(change: Change): Promise<void> | void
  end(error?: unknown): void
}

/**
 * One connection's state in the owner: its open transactions, replay views
 * and watches, all ended when the connection goes.
 */
export class Session {
  readonly #db: Database
  readonly #options: SessionOptions
  readonly #txs = new Map<number, OpenTx>()
  readonly #views = new Map<number, RunView>()
  readonly #watches = new Map<number, AbortController>()
  readonly #scopes = new Map<string, RunScope>()
  /** The database's facade methods called so far, bound: the next call skips resolving them. */
  readonly #bound = new Map<string, (...args: unknown[]) => unknown>()
  #next = 1
  #closed = false

  constructor(db: Database, options: SessionOptions) {
    this.#db = db
    this.#options = options
  }

  /** Runs one request; the result may be a promise (commits, flushes, checkpoints). */
  call(op: string, args: unknown[], where: Where): unknown {
    if (this.#closed) throw new ClosedError('the connection is closing')
    if (where === 0) {
      const bound = this.#bound.get(op)
      if (bound === undefined) return this.#dbCall(op, args)
      checkArgs(args)
      return bound(...args)
    }
    const dot = op.indexOf('.')
    const facade = op.slice(0, dot)
    const method = op.slice(dot + 1)
    let target: object
    if (where[0] === 1) {
      if (typeof where[1] !== 'string') throw new InvalidArgumentError('a run scope needs a run id')
      target = this.#scope(where[1])
    } else if (where[0] === 2) {
      const tx = this.#tx(where[1])
      try {
        return invoke((tx.scope as unknown as Record<string, unknown>)[facade], facade, method, args)
      } catch (e) {
        tx.failed ??= e
        throw e
      }
    } else if (where[0] === 3) {
      const view = this.#views.get(where[1])
      if (view === undefined) throw new ClosedError('this replay view is closed (view.close() was called); the database itself is open')
      target = view
    } else {
      throw new InvalidArgumentError('malformed request target')
    }
    return invoke((target as Record<string, unknown>)[facade], facade, method, args)
  }

  #scope(run: string): RunScope {
    let scope = this.#scopes.get(run)
    if (scope === undefined) {
      scope = this.#db.scope(run)
      if (this.#scopes.size >= 256) this.#scopes.clear()
      this.#scopes.set(run, scope)
    }
    return scope
  }

  #tx(id: unknown): OpenTx {
    const tx = typeof id === 'number' ? this.#txs.get(id) : undefined
    if (tx === undefined) throw new ClosedError('this remote transaction has ended')
    if (tx.expired) throw new ClosedError(`this remote transaction was rolled back: it stayed open longer than its lease of ${this.#options.txLeaseMs} ms`)
    return tx
  }

  #dbCall(op: string, args: unknown[]): unknown {
    const db = this.#db
    switch (op) {
      case 'ping':
        return null
      case 'stats': {
        const stats = db.stats()
        if (this.#options.server !== undefined) stats.server = this.#options.server()
        return stats
      }
      case 'flush':
        return db.flush()
      case 'checkpoint':
        return db.checkpoint((args[0] ?? {}) as object)
      case 'diff':
        return db.diff(args[0] as string, args[1] as string)
      case 'tx.begin':
        return this.#begin(args[0] as string, args[1])
      case 'tx.commit':
      case 'tx.abort': {
        const id = args[0] as number
        const tx = this.#txs.get(id)
        if (tx === undefined) throw new ClosedError('this remote transaction has ended')
        this.#txs.delete(id)
        clearTimeout(tx.timer)
        if (tx.expired) {
          throw new ClosedError(`this remote transaction was rolled back: it stayed open longer than its lease of ${this.#options.txLeaseMs} ms`)
        }
        if (op === 'tx.commit' && tx.failed !== undefined) {
          tx.finish(false)
          throw tx.failed
        }
        tx.finish(op === 'tx.commit')
        return tx.done
      }
      case 'replay': {
        const view = db.replay(args[0] as string, (args[1] ?? {}) as object)
        const id = this.#next++
        this.#views.set(id, view)
        return { id, at: view.at }
      }
      case 'view.close': {
        const view = this.#views.get(args[0] as number)
        this.#views.delete(args[0] as number)
        view?.close()
        return null
      }
      case 'unwatch':
        this.#watches.get(args[0] as number)?.abort()
        return null
    }
    const dot = op.indexOf('.')
    if (dot < 0) throw new InvalidArgumentError(`unknown operation '${op}'`)
    const facade = op.slice(0, dot)
    const target = Object.hasOwn(FACADES, facade) ? (db as unknown as Record<string, unknown>)[facade] : undefined
    const result = invoke(target, facade, op.slice(dot + 1), args)
    // Resolved (invoke threw otherwise): keep it bound for the next call.
    this.#bound.set(op, ((target as Record<string, unknown>)[op.slice(dot + 1)] as (...a: unknown[]) => unknown).bind(target))
    return result
  }

  /**
   * Opens a transaction on `run` whose closure waits for the client's commit
   * or rollback; the client names it `id` (so its first read can follow the
   * begin without waiting for an answer).
   */
  #begin(run: string, id: unknown): unknown {
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new InvalidArgumentError('tx.begin needs a transaction id')
    if (this.#txs.has(id)) throw new InvalidArgumentError(`transaction id ${id} is in use on this connection`)
    let scope: TxScope | undefined
    let finish!: (commit: boolean) => void
    const decided = new Promise<boolean>((resolve) => {
      finish = resolve
    })
    // `transactionAsync` calls the closure before its first await, so the
    // scope is known when it returns, unless it threw first (a bad run id).
    const done = this.#db.transactionAsync(
      run,
      async (tx) => {
        scope = tx
        if (!(await decided)) throw ROLLBACK
        return null
      },
      { retries: 0 },
    )
    if (scope === undefined) return done
    const tx: OpenTx = {
      scope,
      finish,
      done: done.catch((e: unknown) => {
        if (e !== ROLLBACK) throw e
        return null
      }),
      timer: setTimeout(() => {
        tx.expired = true
        finish(false)
      }, this.#options.txLeaseMs),
      expired: false,
    }
    tx.timer.unref()
    // An expired or abandoned transaction's rollback is nobody's error.
    tx.done.catch(() => {})
    this.#txs.set(id, tx)
    return null
  }

  /**
   * Streams the changes `db.watch(opts)` yields to `sink` until the watch
   * ends, fails, or `unwatch` names `id`. Bad options end it at once.
   */
  watch(id: number, opts: object, sink: WatchSink): void {
    if (this.#watches.has(id)) {
      sink.end(new InvalidArgumentError('this watch id is in use'))
      return
    }
    if (typeof opts !== 'object' || opts === null || 'signal' in opts) {
      sink.end(new InvalidArgumentError('watch options must be an object (a remote watch is ended by breaking out of the loop, not by a signal)'))
      return
    }
    const abort = new AbortController()
    let changes: AsyncGenerator<Change, void, undefined>
    try {
      changes = this.#db.watch({ ...(opts as WatchOptions), signal: abort.signal })
    } catch (e) {
      sink.end(e)
      return
    }
    this.#watches.set(id, abort)
    void (async () => {
      try {
        for await (const change of changes) await sink.item(change)
        sink.end()
      } catch (e) {
        sink.end(e)
      } finally {
        this.#watches.delete(id)
      }
    })()
  }

  /** Ends everything the connection held: transactions roll back, views close, watches stop. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const tx of this.#txs.values()) {
      clearTimeout(tx.timer)
      tx.finish(false)
    }
    this.#txs.clear()
    for (const view of this.#views.values()) view.close()
    this.#views.clear()
    for (const w of this.#watches.values()) w.abort()
    this.#watches.clear()
  }

  /** Open transactions, views and watches: a session holding any is not idle. */
  get holding(): boolean {
    return this.#txs.size + this.#views.size + this.#watches.size > 0
  }
}

/** Calls `facade.method(...args)` when `method` is a public method of the facade's class. */
function invoke(target: unknown, facade: string, method: string, args: unknown[]): unknown {
  if (typeof target !== 'object' || target === null) throw new InvalidArgumentError(`unknown facade '${facade}'`)
  const fn = (target as Record<string, unknown>)[method]
  if (typeof fn !== 'function' || method === 'constructor' || !isPublicMethod(target, method)) {
    throw new NotFoundError(`'${facade}' has no method '${method}'`, { facade, method })
  }
  checkArgs(args)
  return (fn as (...a: unknown[]) => unknown).apply(target, args)
}

function checkArgs(args: unknown[]): void {
  if (!Array.isArray(args)) throw new InvalidArgumentError('request arguments must be an array')
  if (args.length > 16) throw new LimitError('too many arguments')
}

/** Whether `method` is defined by the class of `target` or a class it extends (not `Object`'s). */
function isPublicMethod(target: object, method: string): boolean {
  for (let p = Object.getPrototypeOf(target) as object | null; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    if (Object.hasOwn(p, method)) return true
  }
  return false
}
