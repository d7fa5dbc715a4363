/**
 * Where the KV facade sends its calls: the database's fast path (plain
 * functions on a handle, with a registered I/O buffer) or a transaction.
 * Both take the key already written into the I/O buffer.
 * @internal
 * @module
 */
import { answered } from './errors.js'
import { Io } from './keys.js'
import { type HotFunctions, type NativeDatabase, TX } from './native.js'
import type { TxLease } from './txlease.js'

/**
 * A read's value handed over whole by the native side (`hot.rs`,
 * `direct_value`): a string or byte array of 256 bytes or more, made from the
 * stored bytes instead of copied into the I/O buffer and decoded there.
 * @internal
 */
export type Direct = string | Buffer

/** @internal */
export interface KvTarget<W> {
  readonly io: Io
  /**
   * Reads the key of length `n`: the value's length, its answer written at
   * IO_VALUE_OFFSET; -1 if absent; or the value itself when it is one
   * string or byte array of 256 bytes or more (a {@link Direct}: when
   * `versioned`, version and write time at IO_VALUE_OFFSET still).
   */
  get(n: number, versioned: boolean): number | Direct
  /** Writes the value `encodeValue` put in the I/O buffer (`len` bytes) at the key there (`n` bytes). */
  put(n: number, len: number, ttlMs: number): W
  delete(n: number): boolean
  exists(n: number): boolean
  /** Several values read at one snapshot, packed into the I/O buffer at IO_VALUE_OFFSET (see the binding; `keys` joined by NUL): the answer's length. Absent inside a transaction, which reads one snapshot anyway. */
  getMany?(run: string, keys: string): number
  /** One commit of many entries; absent inside a transaction. */
  putMany?(run: string, keys: string[], values: Buffer[], ttlMs: number): W
  keys(run: string, prefix?: string, after?: string, limit?: number, reverse?: boolean): string[]
  entries(run: string, prefix?: string, after?: string, limit?: number, reverse?: boolean): Buffer
  count(run: string, prefix?: string): number
}

/** @internal */
export class DbTarget implements KvTarget<number> {
  readonly io: Io
  /** The handle's hot calls (the database's `isOpen` and `requestDurable` too). */
  readonly hot: HotFunctions
  constructor(private readonly native: NativeDatabase) {
    this.hot = native.hotFunctions()
    this.io = new Io((buf) => native.registerIo(buf))
  }
  get(n: number, versioned: boolean): number | Direct {
    return this.hot.get(n, versioned ? 1 : 0)
  }
  put(n: number, len: number, ttlMs: number): number {
    return answered(this.hot.put(n, len, ttlMs))
  }
  delete(n: number): boolean {
    return answered(this.hot.delete(n))
  }
  exists(n: number): boolean {
    return this.hot.exists(n)
  }
  putMany(run: string, keys: string[], values: Buffer[], ttlMs: number): number {
    return this.native.kvPutMany(run, keys, values, ttlMs)
  }
  getMany(run: string, keys: string): number {
    return this.native.kvGetManyInto(this.io.buf, run, keys)
  }
  /** The state cell whose key (run | State | name) is in the I/O buffer: payload length, or -1; version and updatedAt first. */
  stateGet(n: number): number | Direct {
    return this.hot.stateGet(n)
  }
  /** `state.set` of the cell whose key (`n` bytes) and value (`len` bytes, `encodeValue`) are in the I/O buffer: the new version. */
  stateSet(n: number, len: number): number {
    return answered(this.hot.stateSet(n, len))
  }
  /** The value at the path (its UTF-8 bytes after the key) of the JSON document whose key is in the I/O buffer: its length, or -1. */
  jsonGet(n: number, pathLen: number): number {
    return this.hot.jsonGet(n, pathLen)
  }
  keys(run: string, prefix?: string, after?: string, limit?: number, reverse?: boolean): string[] {
    return this.native.kvKeys(run, prefix, after, limit, reverse)
  }
  entries(run: string, prefix?: string, after?: string, limit?: number, reverse?: boolean): Buffer {
    return this.native.kvEntries(run, prefix, after, limit, reverse)
  }
  count(run: string, prefix?: string): number {
    return this.native.kvCount(run, prefix)
  }
}

/** @internal */
export class TxTarget implements KvTarget<void> {
  constructor(
    private readonly lease: TxLease,
    readonly io: Io,
  ) {}
  get(n: number, versioned: boolean): number | Direct {
    return TX.kvGet.call(this.lease.tx, n, versioned ? 1 : 0)
  }
  put(n: number, len: number, ttlMs: number): void {
    TX.kvPut.call(this.lease.tx, n, len, ttlMs)
  }
  delete(n: number): boolean {
    return this.lease.tx.kvDelete(this.io.buf, n)
  }
  exists(n: number): boolean {
    return this.lease.tx.kvExists(this.io.buf, n)
  }
  keys(run: string, prefix?: string, after?: string, limit?: number, reverse?: boolean): string[] {
    return this.lease.tx.kvKeys(run, prefix, after, limit, reverse)
  }
  entries(run: string, prefix?: string, after?: string, limit?: number, reverse?: boolean): Buffer {
    return this.lease.tx.kvEntries(run, prefix, after, limit, reverse)
  }
  count(run: string, prefix?: string): number {
    return this.lease.tx.kvCount(run, prefix)
  }
}
