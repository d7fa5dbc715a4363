/**
 * Where the facades of the non-KV primitives send their calls: every
 * operation is a method of a native transaction handle: on the database, the
 * single-operation handle; inside `db.transaction`, that transaction.
 * @internal
 * @module
 */
import { decode } from './codec.js'
import { answered, translate } from './errors.js'
import type { NativeDatabase, NativeTransaction } from './native.js'
import { IO_VALUE_OFFSET, type Io, runBytes } from './keys.js'
import type { TxLease } from './txlease.js'

/**
 * `run` is checked to be a run id before anything is called; the
 * database-wide operations (machine definitions) go through `unscoped`.
 * @internal
 */
export interface OpTarget {
  /** The I/O buffer the reads that answer through it use (`readAnswer`). */
  readonly io: Io
  /** Runs a read. */
  read<T>(run: string, fn: (tx: NativeTransaction) => T): T
  /** Runs a write; on the database it is committed before this returns. */
  write<T>(run: string, fn: (tx: NativeTransaction) => T): T
  /** Runs a database-wide read or write (no run), as `write` does. */
  unscoped<T>(fn: (tx: NativeTransaction) => T): T
  /** Runs a read whose answer the native side writes into the I/O buffer (see {@link readAnswer}). */
  answer<T>(run: string, read: (tx: NativeTransaction, buf: Buffer) => number): T | undefined
}

/**
 * The one way a facade's call reaches a native transaction handle: the run
 * is checked, the call made, an engine error translated. Subclasses say
 * which handle.
 * @internal
 */
abstract class NativeOps implements OpTarget {
  constructor(readonly io: Io) {}

  /** The handle the next call goes to. */
  protected abstract handle(): NativeTransaction

  read<T>(run: string, fn: (tx: NativeTransaction) => T): T {
    runBytes(run)
    return this.unscoped(fn)
  }

  /** Runs a write; its answer is checked (`answered` in errors.ts). */
  write<T>(run: string, fn: (tx: NativeTransaction) => T): T {
    return answered(this.read(run, fn))
  }

  answer<T>(run: string, read: (tx: NativeTransaction, buf: Buffer) => number): T | undefined {
    return this.read(run, (tx) => readAnswer<T>(this.io, (buf) => read(tx, buf)))
  }

  unscoped<T>(fn: (tx: NativeTransaction) => T): T {
    const tx = this.handle()
    try {
      return fn(tx)
    } catch (e) {
      throw translate(e)
    }
  }
}

/**
 * The database's single operations: each call on the native
 * single-operation handle is its own transaction, committed (and re-run on a
 * conflict) inside that one native call.
 * @internal
 */
export class DbOps extends NativeOps {
  readonly #single: NativeTransaction
  constructor(native: NativeDatabase, io: Io) {
    super(io)
    this.#single = native.singleOperations()
  }

  protected handle(): NativeTransaction {
    return this.#single
  }
}

/** A transaction's operations: calls go to its leased native transaction. @internal */
export class TxOps extends NativeOps {
  constructor(
    private readonly lease: TxLease,
    io: Io,
  ) {
    super(io)
  }

  protected handle(): NativeTransaction {
    return this.lease.tx
  }
}

/**
 * A read whose answer the native side writes into the I/O buffer as one
 * MessagePack map (`crates/node/src/answer.rs`): no native object per call.
 * `read` returns the answer's length (-1: none); when it did not fit, the
 * buffer grows and it runs again.
 * @internal
 */
export function readAnswer<T>(io: Io, read: (buf: Buffer) => number): T | undefined {
  let len = read(io.buf)
  if (len >= 0 && IO_VALUE_OFFSET + len > io.buf.length) {
    io.grow(len, 0)
    len = read(io.buf)
  }
  return len < 0 ? undefined : (decode(io.value, 0, len) as T)
}
