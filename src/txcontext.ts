/**
 * Which handle's `transactionAsync` closure is running, in that closure's
 * async context: what lets a transaction started inside the closure (even
 * after an await) be refused instead of committing on its own.
 *
 * Before Node 24, an `AsyncLocalStorage` that has run installs promise hooks
 * for the whole process: every promise anywhere in the program then costs
 * more (an `await` ~33 ns → ~100 ns on Node 20), for as long as the storage
 * stays enabled. So the storage is disabled again once no closure has run
 * for `idleMs` (1 s; {@link asyncTxContext}`.setIdleMs`) (the next `transactionAsync` enables
 * it afresh): a program that runs transactions now and then does not pay for
 * every promise it makes in between, and one that runs them back to back
 * does not toggle the hooks per transaction (~0.9 µs each time).
 * @internal
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'

const storage = new AsyncLocalStorage<object>()
let running = 0
let enabled = false
let idle: ReturnType<typeof setTimeout> | undefined
let idleMs = 1000

/** @internal */
export const asyncTxContext = {
  /**
   * Sets how long after the last closure ended the storage is disabled
   * (default 1000 ms), and starts that wait afresh if none is running.
   */
  setIdleMs(ms: number): void {
    idleMs = ms
    if (idle !== undefined) {
      clearTimeout(idle)
      idle = undefined
      if (running === 0) waitIdle()
    }
  },

  /** The handle whose closure is running in the current async context, if any. */
  current(): object | undefined {
    return enabled ? storage.getStore() : undefined
  },

  /**
   * Calls `fn` as `handle`'s closure, in its async context. The caller calls
   * {@link asyncTxContext}`.ended()` once what it returned has settled (or
   * it threw), in a `finally`.
   */
  start<T>(handle: object, fn: () => T | Promise<T>): T | Promise<T> {
    running++
    enabled = true
    return storage.run(handle, fn)
  },

  /** A closure `start` called has settled. */
  ended(): void {
    if (--running === 0 && idle === undefined) waitIdle()
  },

  /** Closures running now, whether the storage (and its promise hooks) is enabled, and how long it waits when idle: for tests. */
  state(): { running: number; enabled: boolean; idleMs: number } {
    return { running, enabled, idleMs }
  },
}

function waitIdle(): void {
  idle = setTimeout(disableIfIdle, idleMs)
  idle.unref()
}

function disableIfIdle(): void {
  idle = undefined
  if (running === 0 && enabled) {
    storage.disable()
    enabled = false
  }
}
