/**
 * Where the facades of the non-KV primitives send their calls: every
 * operation is a function of a native transaction. On the database each call
 * runs in a transaction of its own (re-run when another commit got in first);
 * inside `db.transaction` it runs in that transaction.
 * @internal
 * @module
 */
import { ClosedError, ConflictError, translate } from './errors.js'
import type { NativeDatabase, NativeTransaction } from './native.js'
import { runBytes } from './keys.js'

/** How often a single operation is re-run after a conflict before the `ConflictError` reaches the caller. */
const SINGLE_OP_RETRIES = 1000

/** @internal */
export interface OpTarget {
  /** Runs a read. */
  read<T>(run: string, fn: (tx: NativeTransaction) => T): T
  /** Runs a write; on the database it is committed before this returns. */
  write<T>(run: string, fn: (tx: NativeTransaction) => T): T
}

/** @internal */
export class DbOps implements OpTarget {
  constructor(private readonly native: NativeDatabase) {}

  read<T>(run: string, fn: (tx: NativeTransaction) => T): T {
    runBytes(run)
    let tx: NativeTransaction
    try {
      tx = this.native.beginTransaction()
    } catch (e) {
      throw translate(e)
    }
    try {
      return fn(tx)
    } catch (e) {
      throw translate(e)
    } finally {
      tx.abort()
    }
  }

  write<T>(run: string, fn: (tx: NativeTransaction) => T): T {
    runBytes(run)
    for (let attempt = 0; ; attempt++) {
      let tx: NativeTransaction | undefined
      try {
        tx = this.native.beginTransaction()
        const result = fn(tx)
        if (!this.native.isOpen) throw new ClosedError()
        tx.commit(true)
        return result
      } catch (e) {
        tx?.abort()
        const err = translate(e)
        if (err instanceof ConflictError && attempt < SINGLE_OP_RETRIES) continue
        throw err
      }
    }
  }
}

/** @internal */
export class TxOps implements OpTarget {
  constructor(private readonly tx: NativeTransaction) {}

  read<T>(run: string, fn: (tx: NativeTransaction) => T): T {
    runBytes(run)
    try {
      return fn(this.tx)
    } catch (e) {
      throw translate(e)
    }
  }

  write<T>(run: string, fn: (tx: NativeTransaction) => T): T {
    return this.read(run, fn)
  }
}
