/**
 * A transaction's hold on a native transaction object. The database reuses
 * finished native transactions (making a new one costs more than a small
 * transaction's work), so a facade of a finished transaction must not reach
 * the object again: every call goes through a lease, and a lease ends with
 * its transaction.
 * @internal
 * @module
 */
import { InvalidArgumentError } from './errors.js'
import type { NativeTransaction } from './native.js'

/** @internal */
export class TxLease {
  #tx: NativeTransaction | null

  constructor(tx: NativeTransaction) {
    this.#tx = tx
  }

  /** The native transaction; an `InvalidArgumentError` once the transaction has ended. */
  get tx(): NativeTransaction {
    const tx = this.#tx
    if (tx === null) throw new InvalidArgumentError('the transaction has already finished: use the tx scope only inside its closure')
    return tx
  }

  /** Whether {@link TxLease.end} was called. */
  get ended(): boolean {
    return this.#tx === null
  }

  /** Ends the lease; returns the native transaction to hand on. */
  end(): NativeTransaction {
    const tx = this.tx
    this.#tx = null
    return tx
  }
}
