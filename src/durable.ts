// Group commit on the JS side of a strict database.
//
// Every `transactionAsync` commit must wait for its WAL record's fsync, and
// the event loop must never block on it. The WAL's syncer thread does the
// waiting: `requestDurable(v)` tells it (without blocking) that this handle
// waits for commit `v`; it fsyncs everything written so far, and starts the
// next fsync as soon as one ends while more is asked for. After each fsync
// that covers something this handle asked for, it calls the handle's
// `durableListen` callback once with the durable version (a thread-safe
// function call, not a thread-pool task per round), and every waiter at or
// below that version is acknowledged. Commits made meanwhile are covered by
// the next fsync.
//
// Invariant: a waiter is resolved only after the syncer reported a durable
// version at or above its own (or `requestDurable` found it durable, or the
// handle closed, which fsyncs everything first), so no acknowledgement comes
// before its fsync.

import { IoError, translate } from './errors.js'
import type { HotFunctions, NativeDatabase } from './native.js'

interface Waiter {
  version: number
  resolve: () => void
  reject: (e: unknown) => void
}

const waiters = new WeakMap<NativeDatabase, DurableWaiter>()

/** Acknowledges strict commits once the WAL's syncer reports them fsynced. */
export class DurableWaiter {
  readonly #native: NativeDatabase
  /** The handle's hot calls: `requestDurable` is one. */
  readonly #hot: HotFunctions
  /** Pending waiters in commit order (this thread's commits rise). */
  #queue: Waiter[] = []
  /** Whether the syncer's callback keeps the event loop alive. */
  #referenced = false

  /** The one waiter of a native handle (its callback is per handle); `hot`: the handle's hot calls, if made already. */
  static of(native: NativeDatabase, hot?: HotFunctions): DurableWaiter {
    let w = waiters.get(native)
    if (w === undefined) {
      w = new DurableWaiter(native, hot ?? native.hotFunctions())
      waiters.set(native, w)
    }
    return w
  }

  private constructor(native: NativeDatabase, hot: HotFunctions) {
    this.#native = native
    this.#hot = hot
    native.durableListen((version, error) => this.#reported(version, error))
  }

  /** Resolves once commit `version` is fsynced; rejects with the engine's error if the WAL failed. */
  wait(version: number): Promise<void> {
    let durable: boolean
    try {
      durable = this.#hot.requestDurable(version)
    } catch (e) {
      return Promise.reject(translate(e))
    }
    if (durable) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#queue.push({ version, resolve, reject })
      if (!this.#referenced) this.#ref(true)
    })
  }

  /**
   * The handle closed: its close fsynced everything it wrote, so every
   * waiter is acknowledged (or, when that close failed, given its error).
   */
  closed(error?: unknown): void {
    const pending = this.#queue
    this.#queue = []
    for (const w of pending) {
      if (error === undefined) w.resolve()
      else w.reject(error)
    }
  }

  #reported(version: number, error: string | null | undefined): void {
    if (typeof error === 'string') {
      this.closed(new IoError(error))
    } else {
      const q = this.#queue
      let i = 0
      while (i < q.length && q[i].version <= version) q[i++].resolve()
      this.#queue = i === q.length ? [] : q.slice(i)
    }
    if (this.#queue.length === 0 && this.#referenced) this.#ref(false)
  }

  #ref(on: boolean): void {
    this.#referenced = on
    try {
      this.#native.durableRef(on)
    } catch {
      // A closed handle has no callback left to keep alive.
    }
  }
}
