/**
 * Where the facades of the non-KV primitives send their calls: every
 * operation is a method of a native transaction handle: on the database, the
 * single-operation handle; inside `db.transaction`, that transaction.
 * @internal
 * @module
 */
import { translate } from './errors.js'
import type { NativeDatabase, NativeTransaction } from './native.js'
import { runBytes } from './keys.js'
import type { TxLease } from './txlease.js'

/**
 * `run` is checked to be a run id before anything is called; it is
 * `undefined` for the database-wide operations (machine definitions).
 * @internal
 */
export interface OpTarget {
  /** Runs a read. */
  read<T>(run: string | undefined, fn: (tx: NativeTransaction) => T): T
  /** Runs a write; on the database it is committed before this returns. */
  write<T>(run: string | undefined, fn: (tx: NativeTransaction) => T): T
}

/**
 * The database's single operations: each call on the native
 * single-operation handle is its own transaction, committed (and re-run on a
 * conflict) inside that one native call.
 * @internal
 */
export class DbOps implements OpTarget {
  readonly #single: NativeTransaction
  constructor(native: NativeDatabase) {
    this.#single = native.singleOperations()
  }

  read<T>(run: string | undefined, fn: (tx: NativeTransaction) => T): T {
    if (run !== undefined) runBytes(run)
    try {
      return fn(this.#single)
    } catch (e) {
      throw translate(e)
    }
  }

  write<T>(run: string | undefined, fn: (tx: NativeTransaction) => T): T {
    return this.read(run, fn)
  }
}

/** @internal */
export class TxOps implements OpTarget {
  constructor(private readonly lease: TxLease) {}

  read<T>(run: string | undefined, fn: (tx: NativeTransaction) => T): T {
    if (run !== undefined) runBytes(run)
    const tx = this.lease.tx
    try {
      return fn(tx)
    } catch (e) {
      throw translate(e)
    }
  }

  write<T>(run: string | undefined, fn: (tx: NativeTransaction) => T): T {
    return this.read(run, fn)
  }
}
