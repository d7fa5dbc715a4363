/**
 * Run scopes: the API bound to one run. A transaction's `tx` is a scope too.
 * @module
 */
import { Kv, ScopedKv } from './kv.js'
import type { Io } from './keys.js'
import type { NativeTransaction } from './native.js'
import type { RunId } from './runs.js'
import { TxTarget } from './targets.js'

/** Every primitive bound to one run: `scope.kv.put(key, value)`. */
export class RunScope {
  /** KV working memory of this run. */
  readonly kv: ScopedKv<number>
  /** @internal */
  constructor(
    kv: Kv<number>,
    /** The run this scope is bound to. */
    readonly run: RunId,
  ) {
    this.kv = new ScopedKv(kv, run)
  }
}

/**
 * The scope a transaction closure receives. Reads see the transaction's
 * snapshot and its own writes; writes become visible together at commit.
 */
export class TxScope {
  /** KV of this run, inside the transaction (`put` returns nothing: the version is known at commit). */
  readonly kv: ScopedKv<void>
  /** @internal */
  constructor(
    native: NativeTransaction,
    io: Io,
    /** The run of the transaction. */
    readonly run: RunId,
  ) {
    this.kv = new ScopedKv(new Kv<void>(new TxTarget(native, io)), run)
  }
}
