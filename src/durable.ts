// Group commit on the JS side of a strict database.
//
// Every `transactionAsync` commit must wait for its WAL record's fsync. The
// engine already shares one fsync between all commits queued when it runs;
// this shares the wait too: one native `waitDurable` call (one trip through
// the libuv thread pool) is in flight per handle at a time, for the newest
// version queued, and when it resolves every commit at or below that
// version is acknowledged. Commits arriving meanwhile form the next round.
// (Two rounds in flight, so that the next one already waits on the engine's
// sync lock, measured no faster on this machine: the fsync is the wait.)
//
// Invariant: a waiter is resolved only after `waitDurable(v)` resolved for a
// `v` at or above its version, so no acknowledgement comes before its fsync.

import { translate } from './errors.js'
import type { NativeDatabase } from './native.js'

interface Waiter {
  version: number
  resolve: () => void
  reject: (e: unknown) => void
}

/** Acknowledges strict commits in rounds, one native wait per round. */
export class DurableWaiter {
  readonly #native: NativeDatabase
  #queue: Waiter[] = []
  #running = false

  constructor(native: NativeDatabase) {
    this.#native = native
  }

  /** Resolves once commit `version` is fsynced; rejects with the engine's error if the WAL failed. */
  wait(version: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ version, resolve, reject })
      if (!this.#running) void this.#pump()
    })
  }

  async #pump(): Promise<void> {
    this.#running = true
    try {
      while (this.#queue.length > 0) {
        const round = this.#queue
        this.#queue = []
        let newest = 0
        for (const w of round) if (w.version > newest) newest = w.version
        try {
          await this.#native.waitDurable(newest)
        } catch (e) {
          const err = translate(e)
          for (const w of round) w.reject(err)
          continue
        }
        for (const w of round) w.resolve()
      }
    } finally {
      this.#running = false
    }
  }
}
