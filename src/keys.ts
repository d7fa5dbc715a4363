/**
 * The shared I/O buffer of the hot KV calls, and run-id parsing.
 *
 * Layout (mirrors `crates/node/src/lib.rs`): the internal key
 * `run id (16 bytes) | type tag (1 byte) | user key` is written at offset 0;
 * a read answers at {@link IO_VALUE_OFFSET}. One buffer per thread: calls are
 * synchronous, so no two calls on one thread ever use it at once.
 * @internal
 * @module
 */
import { encode, encodeStringOrBytesInto } from './codec.js'
import { InvalidArgumentError, LimitError } from './errors.js'

/** Where a read writes its answer; the key area is before it. */
export const IO_VALUE_OFFSET = 4096
/** Longest user key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024
/** The type tag of KV entries (`crates/core/src/key.rs`). */
export const TAG_KV = 0x10
export const TAG_STATE = 0x12
export const TAG_JSON = 0x15

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const runCache = new Map<string, Buffer>()
/** What {@link Io}'s last run is before its first call: equal to no argument. */
const NO_RUN = Symbol('no run')

/** The 16 bytes of a run id, validated and cached. */
export function runBytes(run: string): Buffer {
  const cached = runCache.get(run)
  if (cached !== undefined) return cached
  if (typeof run !== 'string' || !UUID.test(run)) {
    throw new InvalidArgumentError(`run id ${JSON.stringify(run)} is not a UUID`, { run })
  }
  const bytes = Buffer.from(run.replace(/-/g, ''), 'hex')
  if (bytes.every((b) => b === 0)) throw new InvalidArgumentError('run id 00000000-0000-0000-0000-000000000000 is reserved')
  if (runCache.size > 4096) runCache.clear()
  runCache.set(run, bytes)
  return bytes
}

/**
 * Refuses a name or id (a state cell, document, path, event type, machine,
 * trace, vector or run name or tag) with a lone surrogate: UTF-8 cannot
 * carry it, and the native side would be handed U+FFFD in its place,
 * storing or finding something else than was asked for.
 */
export function checkWellFormed(what: string, s: string): void {
  if (!s.isWellFormed()) throw new InvalidArgumentError(`${what} has a lone surrogate (not valid Unicode); it cannot be stored as UTF-8`)
}

/** Checks a user key: a string of 1–1024 UTF-8 bytes, well-formed, no NUL. */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidArgumentError(`a key must be a string, not ${typeof key}`)
  if (key.length === 0) throw new InvalidArgumentError('a key must not be empty')
  if (key.length > MAX_KEY_BYTES) {
    throw new LimitError(`key is longer than ${MAX_KEY_BYTES} bytes`, { limit: MAX_KEY_BYTES })
  }
  if (key.indexOf('\0') !== -1) throw new InvalidArgumentError('a key must not contain NUL')
  if (!key.isWellFormed()) throw new InvalidArgumentError('a key must be well-formed UTF-16 (no lone surrogates)')
}

/**
 * An I/O buffer: one per `Database` handle, used by its calls and its
 * transactions' calls. Calls are synchronous, so no two ever use it at once.
 */
export class Io {
  buf: Buffer = Buffer.allocUnsafe(64 * 1024)
  /**
   * `buf` from {@link IO_VALUE_OFFSET} on: answers are decoded from here, so
   * that a small value starts at offset 0 of the buffer the decoder sees
   * (msgpackr takes its fast paths for short strings and cached keys only
   * when the value ends within the first 140–180 bytes of its buffer: a
   * 100-byte object decodes in ~300 ns there, ~450 ns at offset 4096).
   */
  value: Buffer = this.buf.subarray(IO_VALUE_OFFSET)
  /** A view of `buf`, for the encoder. */
  private bufView = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)

  /** @param onGrow - told of every replacement buffer, before the old one is dropped */
  constructor(private readonly onGrow: (buf: Buffer) => void = () => {}) {
    onGrow(this.buf)
  }
  /**
   * The run whose 16 bytes are at offset 0 now: consecutive calls on one run
   * skip the copy. It starts as no string at all, so the first call checks
   * its run whatever it is (`undefined` included).
   */
  private lastRun: unknown = NO_RUN

  /** Writes `run | tag | key` at offset 0 and returns its length. */
  key(run: string, tag: number, key: string): number {
    const buf = this.buf
    if (run !== this.lastRun) {
      runBytes(run).copy(buf, 0)
      this.lastRun = run
    }
    buf[16] = tag
    // Fast path: a short ASCII key without NUL is valid as it is, and
    // writing it byte by byte is cheaper than a call into the UTF-8 encoder.
    if (typeof key === 'string' && key.length > 0 && key.length <= 64) {
      const len = key.length
      let i = 0
      for (; i < len; i++) {
        const c = key.charCodeAt(i)
        if (c === 0 || c > 0x7f) break
        buf[17 + i] = c
      }
      if (i === len) return 17 + len
    }
    checkKey(key)
    const n = buf.write(key, 17)
    if (n > MAX_KEY_BYTES) {
      throw new LimitError(`key is ${n} bytes; the limit is ${MAX_KEY_BYTES} bytes`, { size: n, limit: MAX_KEY_BYTES })
    }
    return 17 + n
  }

  /**
   * Validates and encodes a put's value into the value area at
   * {@link IO_VALUE_OFFSET}, where the native side reads it, and returns its
   * length. A string or byte array is encoded there directly
   * (`encodeStringOrBytesInto`: its bytes are copied once); anything else is
   * encoded into the encoder's own buffer and copied in, so that a getter of
   * the value that reads through this handle (which answers into this
   * buffer) cannot overwrite a value half written.
   */
  encodeValue(value: unknown): number {
    if (typeof value === 'string' || value instanceof Uint8Array) {
      return encodeStringOrBytesInto(value, this.buf, this.bufView, IO_VALUE_OFFSET, this.growTo)
    }
    const bytes = encode(value)
    if (IO_VALUE_OFFSET + bytes.length > this.buf.length) this.grow(bytes.length, 0)
    this.buf.set(bytes, IO_VALUE_OFFSET)
    return bytes.length
  }

  /** The encoder's `grow` for this buffer: room for `need` bytes from its start, the key area kept. */
  private readonly growTo = (need: number): Buffer => {
    this.grow(need - IO_VALUE_OFFSET, 0)
    return this.buf
  }

  /** Makes room for a value of `len` bytes (plus `extra` header bytes) at {@link IO_VALUE_OFFSET}. */
  grow(len: number, extra: number): void {
    let size = this.buf.length
    while (size < IO_VALUE_OFFSET + extra + len) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, IO_VALUE_OFFSET)
    this.onGrow(next)
    this.buf = next
    this.value = next.subarray(IO_VALUE_OFFSET)
    this.bufView = new DataView(next.buffer, next.byteOffset, next.byteLength)
  }
}

/**
 * Runs a hot read whose answer (a `header`-byte prefix, then the value)
 * goes to `IO_VALUE_OFFSET`: when the value did not fit, grows the buffer and
 * reads again. Returns the value's length, or -1 when absent, or what the
 * read answered that is not a number (a string or `Buffer` a KV or
 * state read hands over whole).
 * @internal
 */
export function readIntoIo<D = never>(io: Io, header: number, read: () => number | D): number | D {
  let len = read()
  if (typeof len === 'number' && len >= 0 && IO_VALUE_OFFSET + header + len > io.buf.length) {
    io.grow(len, header)
    len = read()
  }
  return len
}
