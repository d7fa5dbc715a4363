/**
 * JSON documents addressed by path, with path-level conflicts.
 * @module
 */
import { type Storable, type Value, decode, encode } from './codec.js'
import { InvalidArgumentError, translate } from './errors.js'
import { IO_VALUE_OFFSET, TAG_JSON, checkWellFormed, readIntoIo } from './keys.js'
import type { DbTarget } from './targets.js'
import type { OpTarget } from './ops.js'
import { checkOptions } from './options.js'

/** Options of {@link Json.list}. */
export interface JsonListOptions {
  /** Only ids that start with this. */
  prefix?: string
  /** Only ids after this one (the next page after a `limit`). */
  after?: string
  /** At most this many. */
  limit?: number
}

function checkDoc(doc: unknown, path: unknown): asserts doc is string {
  if (typeof doc !== 'string') throw new InvalidArgumentError('a document id must be a string')
  if (typeof path !== 'string') throw new InvalidArgumentError('a JSON path must be a string such as "$.a.b"')
  checkWellFormed('a document id', doc)
  checkWellFormed('a JSON path', path)
}

/**
 * JSON documents of each run. Paths are `$`, `$.a.b`, `$.a[0]` and
 * `$["odd key"]`. Two transactions writing disjoint paths of one document
 * both commit; overlapping paths (one a prefix of the other) conflict.
 */
export class Json {
  /** @internal */
  constructor(
    private readonly target: OpTarget,
    /** The database's fast path for `get` (absent inside a transaction, whose reads join its read set). */
    private readonly fast?: DbTarget,
  ) {}

  /** Sets the value at `path`, creating missing intermediate objects. */
  set<T = Value>(run: string, doc: string, path: string, value: T & Storable<T>): void {
    checkDoc(doc, path)
    const bytes = encode(value)
    this.target.write(run, (tx) => tx.jsonSet(run, doc, path, bytes))
  }

  /** The value at `path` (default `$`, the whole document), or `undefined`. `T` names its type (unchecked, like a cast). */
  get<T = Value>(run: string, doc: string, path = '$'): T | undefined {
    checkDoc(doc, path)
    const fast = this.fast
    if (fast !== undefined) {
      // Through the I/O buffer: the key, then the path, in its key area.
      const io = fast.io
      const n = io.key(run, TAG_JSON, doc)
      const pathLen = Buffer.byteLength(path)
      if (n + pathLen <= IO_VALUE_OFFSET) {
        io.buf.write(path, n, 'utf8')
        let len: number
        try {
          len = readIntoIo(io, 0, () => fast.jsonGet(n, pathLen))
        } catch (e) {
          throw translate(e)
        }
        return len < 0 ? undefined : (decode(io.value, 0, len) as T)
      }
    }
    return this.target.answer<T>(run, (tx, buf) => tx.jsonGetInto(buf, run, doc, path))
  }

  /** Removes the value at `path` (`$`: the whole document); whether there was one. */
  delete(run: string, doc: string, path: string): boolean {
    checkDoc(doc, path)
    return this.target.write(run, (tx) => tx.jsonDelete(run, doc, path))
  }

  /** Merges `patch` into the value at `path` as an RFC 7386 merge patch (`null` removes a key). */
  merge<T = Value>(run: string, doc: string, path: string, patch: T & Storable<T>): void {
    checkDoc(doc, path)
    const bytes = encode(patch)
    this.target.write(run, (tx) => tx.jsonMerge(run, doc, path, bytes))
  }

  /** The run's document ids in id order, read at one snapshot (in a transaction: its own, with its own creations and deletions). */
  list(run: string, opts: JsonListOptions = {}): string[] {
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('list options must be an object')
    checkOptions(opts, ['prefix', 'after', 'limit'], 'json.list options')
    const { prefix, after, limit } = opts
    if (prefix !== undefined && typeof prefix !== 'string') throw new InvalidArgumentError('prefix must be a string')
    if (after !== undefined && typeof after !== 'string') throw new InvalidArgumentError('after must be a string')
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new InvalidArgumentError('limit must be a non-negative integer')
    return this.target.read(run, (tx) => tx.jsonList(run, prefix, after, limit))
  }
}

/** {@link Json} bound to one run. */
export class ScopedJson {
  /** @internal */
  constructor(
    private readonly json: Json,
    private readonly run: string,
  ) {}
  /** See {@link Json.set}. */
  set<T = Value>(doc: string, path: string, value: T & Storable<T>): void {
    this.json.set(this.run, doc, path, value)
  }
  /** See {@link Json.get}. */
  get<T = Value>(doc: string, path = '$'): T | undefined {
    return this.json.get(this.run, doc, path)
  }
  /** See {@link Json.delete}. */
  delete(doc: string, path: string): boolean {
    return this.json.delete(this.run, doc, path)
  }
  /** See {@link Json.merge}. */
  merge<T = Value>(doc: string, path: string, patch: T & Storable<T>): void {
    this.json.merge(this.run, doc, path, patch)
  }
  /** See {@link Json.list}. */
  list(opts?: JsonListOptions): string[] {
    return this.json.list(this.run, opts)
  }
}
