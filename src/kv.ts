/**
 * KV working memory: ordered keys per run, with optional TTL.
 * @module
 */
import { checkOptions } from './options.js'
import { type Storable, type Value, decode, encode } from './codec.js'
import { InvalidArgumentError, translate } from './errors.js'
import { IO_VALUE_OFFSET, TAG_KV, readIntoIo, runBytes } from './keys.js'
import type { Direct, KvTarget } from './targets.js'

/** Options of {@link Kv.put}. */
export interface PutOptions {
  /** Milliseconds until the key becomes invisible; expired keys are purged in the background. */
  ttlMs?: number
}

/** A value with the commit version that wrote it and when. */
export interface Versioned<T = Value> {
  /** The stored value. */
  value: T
  /** Commit version of the write (inside a transaction, its own writes report the snapshot version + 1). */
  version: number
  /** Milliseconds since the epoch when the value was written. */
  updatedAt: number
}

/** Options of {@link Kv.list}, {@link Kv.entries} and {@link Kv.count}. */
export interface ListOptions {
  /** Only keys that start with this. */
  prefix?: string
  /** Start after this key (exclusive): the cursor of the previous page. */
  after?: string
  /** At most this many. */
  limit?: number
  /** Descending key order. */
  reverse?: boolean
}

function ttlOf(opts: PutOptions | undefined): number {
  if (opts === undefined) return 0
  checkOptions(opts, ['ttlMs'], 'put options')
  if (opts.ttlMs === undefined) return 0
  const t = opts.ttlMs
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
    throw new InvalidArgumentError(`ttlMs must be a positive number of milliseconds, not ${String(t)}`)
  }
  return t
}

function checkList(opts: ListOptions | undefined): ListOptions {
  if (opts === undefined) return {}
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('list options must be an object')
  checkOptions(opts, ['prefix', 'after', 'limit', 'reverse'], 'list options')
  const { prefix, after, limit, reverse } = opts
  if (prefix !== undefined && typeof prefix !== 'string') throw new InvalidArgumentError('prefix must be a string')
  if (after !== undefined && typeof after !== 'string') throw new InvalidArgumentError('after must be a string')
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new InvalidArgumentError('limit must be a non-negative integer')
  }
  if (reverse !== undefined && typeof reverse !== 'boolean') throw new InvalidArgumentError('reverse must be a boolean')
  return opts
}

function unpackEntries(buf: Buffer): [string, Value][] {
  const out: [string, Value][] = []
  let at = 0
  while (at < buf.length) {
    const klen = buf.readUInt32LE(at)
    at += 4
    const key = buf.toString('utf8', at, at + klen)
    at += klen
    const vlen = buf.readUInt32LE(at)
    at += 4
    out.push([key, decode(buf, at, at + vlen)])
    at += vlen
  }
  return out
}

/**
 * KV operations, each naming its run. `db.kv` writes through the fast path
 * (each call is its own commit); a transaction's `tx.kv` reads its snapshot
 * and buffers writes until commit.
 * @typeParam W - what `put` returns: the commit version on the database, nothing inside a transaction
 */
export class Kv<W = number> {
  /** @internal */
  constructor(private readonly target: KvTarget<W>) {}

  /**
   * Writes `value` under `key`.
   * @returns the commit version (outside a transaction)
   * @throws RunClosedError if the run is not active; NotFoundError if it does not exist
   * @throws InvalidArgumentError / LimitError for a bad key or value (nothing is written)
   */
  put<T = Value>(run: string, key: string, value: T & Storable<T>, opts?: PutOptions): W {
    const io = this.target.io
    // The value first: encoding it may call the caller's getters, and one
    // that reads through this handle overwrites the I/O buffer's key area.
    const ttl = ttlOf(opts)
    const len = io.encodeValue(value)
    const n = io.key(run, TAG_KV, key)
    try {
      return this.target.put(n, len, ttl)
    } catch (e) {
      throw translate(e)
    }
  }

  /** The value of `key`, or `undefined` if absent or expired. `T` names the type you stored (unchecked, like a cast: the codec returns what was written). */
  get<T = Value>(run: string, key: string): T | undefined {
    // The hottest read: inline, with no closure (see readIntoIo for the rest).
    const io = this.target.io
    const n = io.key(run, TAG_KV, key)
    let len: number | Direct
    try {
      len = this.target.get(n, false)
      if (typeof len !== 'number') return len as T
      if (len < 0) return undefined
      if (IO_VALUE_OFFSET + len > io.buf.length) {
        io.grow(len, 0)
        len = this.target.get(n, false)
        if (typeof len !== 'number') return len as T
        if (len < 0) return undefined
      }
    } catch (e) {
      throw translate(e)
    }
    return decode(io.value, 0, len) as T
  }

  /** The value with its commit version and write time, or `undefined`. `T` names the type you stored (unchecked, like a cast: the codec returns what was written). */
  getVersioned<T = Value>(run: string, key: string): Versioned<T> | undefined {
    const io = this.target.io
    const n = io.key(run, TAG_KV, key)
    let len: number | Direct
    try {
      len = readIntoIo(io, 16, () => this.target.get(n, true))
    } catch (e) {
      throw translate(e)
    }
    return len === -1 ? undefined : versionedAt<T>(io.value, len)
  }

  /**
   * Deletes `key`.
   * @returns whether a live value was there (deleting an absent key writes nothing)
   */
  delete(run: string, key: string): boolean {
    const n = this.target.io.key(run, TAG_KV, key)
    try {
      return this.target.delete(n)
    } catch (e) {
      throw translate(e)
    }
  }

  /** Whether `key` has a live value. */
  exists(run: string, key: string): boolean {
    const n = this.target.io.key(run, TAG_KV, key)
    try {
      return this.target.exists(n)
    } catch (e) {
      throw translate(e)
    }
  }

  /** The values of several keys, in order (`undefined` where absent). */
  getMany<T = Value>(run: string, keys: readonly string[]): (T | undefined)[] {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('keys must be an array of strings')
    const getMany = this.target.getMany
    // Inside a transaction every read is of its snapshot already.
    if (getMany === undefined) return keys.map((k) => this.get<T>(run, k))
    runBytes(run)
    for (const k of keys) if (typeof k !== 'string') throw new InvalidArgumentError('keys must be an array of strings')
    // Checked as a key each (a NUL is refused, so NUL can join them).
    const io = this.target.io
    for (const k of keys) io.key(run, TAG_KV, k)
    if (keys.length === 0) return []
    const joined = keys.join('\0')
    let end: number
    try {
      end = IO_VALUE_OFFSET + readIntoIo(io, 0, () => getMany.call(this.target, run, joined))
    } catch (e) {
      throw translate(e)
    }
    const buf = io.buf
    const out: (T | undefined)[] = []
    let at = IO_VALUE_OFFSET
    while (at < end) {
      const len = buf.readUInt32LE(at)
      at += 4
      if (len === 0xffffffff) out.push(undefined)
      else {
        out.push(decode(buf, at, at + len) as T)
        at += len
      }
    }
    return out
  }

  /**
   * Writes several entries in one commit: all of them or none.
   * @returns the commit version (outside a transaction)
   */
  putMany(run: string, entries: Iterable<readonly [string, Value]> | Record<string, Value>, opts?: PutOptions): W
  /** Entries whose values are all of one type of yours (an interface is fine). */
  putMany<T>(run: string, entries: Iterable<readonly [string, T & Storable<T>]> | Record<string, T & Storable<T>>, opts?: PutOptions): W
  putMany(run: string, entries: Iterable<readonly [string, unknown]> | Record<string, unknown>, opts?: PutOptions): W {
    // Only an object: a string would otherwise spread into one key per character.
    if (entries === null || typeof entries !== 'object') {
      throw new InvalidArgumentError('putMany takes an iterable of [key, value] pairs or a record of values')
    }
    const list: (readonly [string, Value])[] =
      Symbol.iterator in entries ? [...(entries as Iterable<readonly [string, Value]>)] : Object.entries(entries as Record<string, Value>)
    for (const entry of list) {
      if (!Array.isArray(entry) || entry.length !== 2) throw new InvalidArgumentError('each entry must be a [key, value] pair')
    }
    const ttl = ttlOf(opts)
    const putMany = this.target.putMany
    if (putMany !== undefined) {
      runBytes(run)
      const keys: string[] = []
      const values: Buffer[] = []
      for (const [k, v] of list) {
        this.target.io.key(run, TAG_KV, k)
        keys.push(k)
        values.push(Buffer.from(encode(v)))
      }
      try {
        return putMany.call(this.target, run, keys, values, ttl)
      } catch (e) {
        throw translate(e)
      }
    }
    for (const [k, v] of list) this.put(run, k, v, opts)
    return undefined as W
  }

  /** Keys of the run in key order (or reverse), paged by `after` and `limit`. */
  list(run: string, opts?: ListOptions): string[] {
    runBytes(run)
    const o = checkList(opts)
    try {
      return this.target.keys(run, o.prefix, o.after, o.limit, o.reverse)
    } catch (e) {
      throw translate(e)
    }
  }

  /** `[key, value]` pairs of the run in key order (or reverse), paged like {@link Kv.list}. */
  entries<T = Value>(run: string, opts?: ListOptions): [string, T][] {
    runBytes(run)
    const o = checkList(opts)
    try {
      return unpackEntries(this.target.entries(run, o.prefix, o.after, o.limit, o.reverse)) as [string, T][]
    } catch (e) {
      throw translate(e)
    }
  }

  /** Number of live keys in the run (with `prefix`, of those that start with it). */
  count(run: string, opts?: Pick<ListOptions, 'prefix'>): number {
    runBytes(run)
    const o = checkList(opts)
    try {
      return this.target.count(run, o.prefix)
    } catch (e) {
      throw translate(e)
    }
  }
}

/** {@link Kv} bound to one run: the same methods without the `run` argument. */
export class ScopedKv<W = number> {
  /** @internal */
  constructor(
    private readonly kv: Kv<W>,
    /** The run every call of this facade reads and writes. */
    readonly run: string,
  ) {}
  /** See {@link Kv.put}. */
  put<T = Value>(key: string, value: T & Storable<T>, opts?: PutOptions): W { return this.kv.put<T>(this.run, key, value, opts) }
  /** See {@link Kv.get}. */
  get<T = Value>(key: string): T | undefined { return this.kv.get<T>(this.run, key) }
  /** See {@link Kv.getVersioned}. */
  getVersioned<T = Value>(key: string): Versioned<T> | undefined { return this.kv.getVersioned<T>(this.run, key) }
  /** See {@link Kv.delete}. */
  delete(key: string): boolean { return this.kv.delete(this.run, key) }
  /** See {@link Kv.exists}. */
  exists(key: string): boolean { return this.kv.exists(this.run, key) }
  /** See {@link Kv.getMany}. */
  getMany<T = Value>(keys: readonly string[]): (T | undefined)[] { return this.kv.getMany<T>(this.run, keys) }
  /** See {@link Kv.putMany}. */
  putMany(entries: Iterable<readonly [string, Value]> | Record<string, Value>, opts?: PutOptions): W
  /** See {@link Kv.putMany}. */
  putMany<T>(entries: Iterable<readonly [string, T & Storable<T>]> | Record<string, T & Storable<T>>, opts?: PutOptions): W
  putMany(entries: Iterable<readonly [string, unknown]> | Record<string, unknown>, opts?: PutOptions): W {
    return this.kv.putMany(this.run, entries as Record<string, Value>, opts)
  }
  /** See {@link Kv.list}. */
  list(opts?: ListOptions): string[] { return this.kv.list(this.run, opts) }
  /** See {@link Kv.entries}. */
  entries<T = Value>(opts?: ListOptions): [string, T][] { return this.kv.entries<T>(this.run, opts) }
  /** See {@link Kv.count}. */
  count(opts?: Pick<ListOptions, 'prefix'>): number { return this.kv.count(this.run, opts) }
}

/** The versioned answer of a hot read at `IO_VALUE_OFFSET` (`value`: the I/O buffer from there on): version, write time, then the value (`len` bytes of it, or the {@link Direct} value the read answered). @internal */
export function versionedAt<T>(value: Buffer, len: number | Direct): Versioned<T> {
  return {
    value: (typeof len === 'number' ? decode(value, 16, 16 + len) : len) as T,
    version: value.readDoubleLE(0),
    updatedAt: value.readDoubleLE(8),
  }
}
