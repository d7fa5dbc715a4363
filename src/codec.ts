/**
 * The value codec: validates a JavaScript value against SPEC §3 and encodes
 * it as plain MessagePack — the bytes msgpackr's `pack` gives (without
 * records) —, decoded by msgpackr's `unpack`, so that a round trip is
 * exact: integers stay numbers, bigints stay bigints, bytes stay bytes,
 * object key order is kept. A string (or object key) with a lone surrogate
 * is refused: UTF-8 cannot carry it, and it would come back as U+FFFD.
 *
 * The encoder is in-mem's own: one walk checks and writes each part
 * (msgpackr's `pack` after a separate checking walk cost a third more; an
 * object's value check was most of a large object put's gap to lmdb-js,
 * which checks nothing). Its bytes are msgpackr's, compared in the tests
 * over random values.
 * @module
 */
import { Unpackr } from 'msgpackr'
import { InvalidArgumentError, LimitError } from './errors.js'

/** A value in-mem can store. */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Value[]
  | { [key: string]: Value }

/**
 * `T` where every part is storable, for checking a caller's own types:
 * `interface Plan { steps: string[]; current: number }` is storable as it
 * is (an interface has no index signature, so it is not a {@link Value}).
 * A function, `Date`, `Map`, `Set`, `RegExp`, `Promise`, `symbol` or
 * `undefined` anywhere in it becomes `never`, so passing such a value is a
 * type error (`value: T & Storable<T>`). A class instance with methods is
 * refused the same way; one with fields only is refused at run time.
 * `Storable<unknown>` is {@link Value} or any object (what a remote
 * facade's methods take, whose type parameters a mapped type cannot keep:
 * your interfaces are accepted there too, and checked when sent, as every
 * value is).
 */
export type Storable<T> = unknown extends T
  ? Value | object
  : [T] extends [Value]
  ? T
  : T extends null | boolean | number | bigint | string | Uint8Array
  ? T
  : T extends ((...args: never[]) => unknown) | Date | RegExp | Map<unknown, unknown> | Set<unknown> | PromiseLike<unknown> | symbol | undefined
    ? never
    : T extends object
      ? { [K in keyof T]: Storable<T[K]> }
      : never

/** Largest encoded value, in bytes (16 MiB). */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024
/** Deepest nesting of arrays and objects. */
export const MAX_DEPTH = 128
const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true })

function reject(path: string, what: string): never {
  throw new InvalidArgumentError(`${what} at ${path} cannot be stored`, { path })
}

/** Whether `s` has no lone surrogate (UTF-16 that UTF-8 cannot carry). */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed()

function check(v: unknown, depth: number, path: string, stack: object[]): void {
  switch (typeof v) {
    case 'string':
      if (!wellFormed(v)) {
        throw new InvalidArgumentError(`the string at ${path} has a lone surrogate (not valid Unicode); it cannot be stored as UTF-8`, { path })
      }
      return
    case 'number':
    case 'boolean':
      return
    case 'bigint':
      if (v < I64_MIN || v > I64_MAX) {
        throw new InvalidArgumentError(`bigint at ${path} is outside the 64-bit signed range`, { path })
      }
      return
    case 'undefined':
      return reject(path, 'undefined')
    case 'function':
      return reject(path, 'a function')
    case 'symbol':
      return reject(path, 'a symbol')
  }
  if (v === null) return
  if (v instanceof Uint8Array) return
  const obj = v as object
  if (depth >= MAX_DEPTH) {
    if (stack.includes(obj)) throw new InvalidArgumentError(`a cycle at ${path} cannot be stored`, { path })
    throw new LimitError(`value nests deeper than ${MAX_DEPTH} levels at ${path}`, { path, limit: MAX_DEPTH })
  }
  if (stack.includes(obj)) throw new InvalidArgumentError(`a cycle at ${path} cannot be stored`, { path })
  stack.push(obj)
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) check(obj[i], depth + 1, `${path}[${i}]`, stack)
  } else {
    const proto = Object.getPrototypeOf(obj)
    if (proto !== Object.prototype && proto !== null) {
      reject(path, `an instance of ${(obj as { constructor?: { name?: string } }).constructor?.name ?? 'a class'}`)
    }
    if (Object.getOwnPropertySymbols(obj).length > 0) reject(path, 'a symbol-keyed property')
    for (const key of Object.keys(obj)) {
      if (key === '__proto__') reject(path, 'the key "__proto__"')
      if (!wellFormed(key)) throw new InvalidArgumentError(`an object key at ${path} has a lone surrogate (not valid Unicode)`, { path })
      check((obj as Record<string, unknown>)[key], depth + 1, `${path}.${key}`, stack)
    }
  }
  stack.pop()
}

/**
 * Validates a value as {@link encode} does, without encoding it: the check a
 * remote client makes before a value leaves, so that it is refused there as
 * in process (MessagePack would turn a Map into an array, a class instance
 * into a plain object, a lone surrogate into U+FFFD).
 * @throws InvalidArgumentError / LimitError as {@link encode}
 */
export function checkValue(value: unknown): void {
  encode(value)
}

/**
 * Validates and encodes a value. The returned bytes are only valid until the
 * next call (they live in the encoder's reusable buffer).
 * @throws InvalidArgumentError for values SPEC §3 rejects
 * @throws LimitError for nesting deeper than 128 or more than 16 MiB encoded
 */
export function encode(value: unknown): Uint8Array {
  if (writing) {
    // From a getter of a value being encoded: a buffer of its own.
    const own = Buffer.allocUnsafe(1024)
    return writeTo(value, own, viewOf(own), 0, subarray)
  }
  if (scratch.length > SCRATCH_KEPT) {
    scratch = Buffer.allocUnsafe(SCRATCH_BYTES)
    scratchView = viewOf(scratch)
  }
  return writeTo(value, scratch, scratchView, 0, keepScratch)
}

/**
 * Writes `value`, a string or byte array, encoded into `target` at `at`
 * (the I/O buffer's value area: its bytes are copied once), making room
 * with `grow(need)`, which returns a buffer of at least `need` bytes
 * holding `target`'s first `at` bytes (room is made before anything is
 * written); `view` is a DataView of `target`. Returns the encoded length.
 * A byte array's length is read once, before anything is written; should
 * a subclass's getter encode a value meanwhile, that one goes to a buffer
 * of its own, as from any getter during {@link encode}.
 * @throws InvalidArgumentError / LimitError as {@link encode}
 */
export function encodeStringOrBytesInto(value: string | Uint8Array, target: Buffer, view: DataView, at: number, grow: (need: number) => Buffer): number {
  return writeTo(value, target, view, at, endOf, grow) - at
}

/** Default size of the encoder's buffer; one grown past {@link SCRATCH_KEPT} is dropped at the next call. */
const SCRATCH_BYTES = 64 * 1024
const SCRATCH_KEPT = 1024 * 1024
/** The most room made for a string's worst case (three bytes a character) rather than counting its bytes first. */
export const ONE_PASS_ROOM = 4 * 1024 * 1024

/** The encoder's own buffer (grown as values need, kept between calls) and a view of it. */
let scratch: Buffer = Buffer.allocUnsafe(SCRATCH_BYTES)
let scratchView: DataView = viewOf(scratch)

// The writer's state, set by {@link writeTo} for one value: the buffer
// written, a view of it, how it grows, the position, where the value
// started, and whether a value is being written (a getter of it may encode
// another).
let out: Buffer = scratch
let outView: DataView = scratchView
let growOut: (need: number) => Buffer = grown
let pos = 0
let base = 0
let writing = false

function viewOf(b: Buffer): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength)
}

/** A buffer of at least `need` bytes holding `out`'s first `pos`. */
function grown(need: number): Buffer {
  let size = out.length * 2
  while (size < need) size *= 2
  const next = Buffer.allocUnsafe(size)
  out.copy(next, 0, 0, pos)
  return next
}

// What {@link writeTo} makes of the buffer written and the value's end.
const subarray = (written: Buffer, end: number): Uint8Array => written.subarray(0, end)
const endOf = (_: Buffer, end: number): number => end
/** The encoder's buffer is the one written (grown, perhaps) from now on. */
function keepScratch(written: Buffer, end: number): Uint8Array {
  if (written !== scratch) {
    scratch = written
    scratchView = viewOf(written)
  }
  return written.subarray(0, end)
}

/**
 * Writes `value` into `target` (viewed by `view`) from `at`, growing it
 * with `grow`, and returns `done(the buffer written, where the value
 * ends)`; the writer's state is saved and restored around it, as an
 * encode may be under way (this one is from a getter of its value).
 */
function writeTo<R>(value: unknown, target: Buffer, view: DataView, at: number, done: (written: Buffer, end: number) => R, grow = grown): R {
  const savedOut = out
  const savedView = outView
  const savedGrow = growOut
  const savedPos = pos
  const savedBase = base
  const savedWriting = writing
  out = target
  outView = view
  growOut = grow
  base = pos = at
  writing = true
  try {
    try {
      write(value, 0)
    } catch (e) {
      if (e !== REFUSED) throw e
      check(value, 0, '$', [])
      throw new InvalidArgumentError('value cannot be stored', { path: '$' })
    }
    if (pos - at > MAX_VALUE_BYTES) tooLarge(pos - at, false)
    return done(out, pos)
  } finally {
    out = savedOut
    outView = savedView
    growOut = savedGrow
    pos = savedPos
    base = savedBase
    writing = savedWriting
  }
}

/**
 * Thrown by the writer at the first part that cannot be stored; {@link check}
 * then walks the value again to say what and where.
 */
const REFUSED = new Error('not storable')

function tooLarge(size: number, atLeast: boolean): never {
  throw new LimitError(`value is ${atLeast ? 'at least ' : ''}${size} bytes encoded; the limit is ${MAX_VALUE_BYTES} bytes (16 MiB)`, {
    size,
    limit: MAX_VALUE_BYTES,
  })
}

/** Makes room for `n` more bytes at `pos`. */
function room(n: number): void {
  if (pos + n > out.length) {
    out = growOut(pos + n)
    outView = viewOf(out)
  }
}

/** A map, array, str or bin header: `fix` (the fixed form's first byte) up to `fixMax`, else the 8-bit form's type byte `t8` (0 when there is none), then `t16`, `t32`. */
function header(n: number, fix: number, fixMax: number, t8: number, t16: number, t32: number): void {
  if (n <= fixMax) out[pos++] = fix | n
  else if (t8 !== 0 && n < 0x100) {
    out[pos++] = t8
    out[pos++] = n
  } else if (n < 0x10000) {
    out[pos++] = t16
    out[pos++] = n >> 8
    out[pos++] = n & 0xff
  } else {
    out[pos++] = t32
    outView.setUint32(pos, n)
    pos += 4
  }
}

function write(v: unknown, depth: number): void {
  switch (typeof v) {
    case 'string':
      return writeString(v)
    case 'number':
      return writeNumber(v)
    case 'boolean':
      room(1)
      out[pos++] = v ? 0xc3 : 0xc2
      return
    case 'bigint':
      if (v < I64_MIN || v > I64_MAX) throw REFUSED
      room(9)
      out[pos++] = 0xd3
      outView.setBigInt64(pos, v)
      pos += 8
      return
    case 'object':
      break
    default:
      throw REFUSED
  }
  if (v === null) {
    room(1)
    out[pos++] = 0xc0
    return
  }
  if (v instanceof Uint8Array) return writeBytes(v)
  // A cycle shows up as nesting past the limit.
  if (depth >= MAX_DEPTH) throw REFUSED
  if (Array.isArray(v)) {
    const n = v.length
    room(5)
    header(n, 0x90, 0x0f, 0, 0xdc, 0xdd)
    for (let i = 0; i < n; i++) write(v[i], depth + 1)
    return
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) throw REFUSED
  const keys = Object.keys(v)
  const n = keys.length
  room(5)
  header(n, 0x80, 0x0f, 0, 0xde, 0xdf)
  for (let i = 0; i < n; i++) {
    const key = keys[i]
    if (key === '__proto__') throw REFUSED
    writeString(key)
    write((v as Record<string, unknown>)[key], depth + 1)
  }
  if (Object.getOwnPropertySymbols(v).length > 0) throw REFUSED
}

function writeNumber(v: number): void {
  room(9)
  if (v >>> 0 === v) {
    // 0 to 2^32 - 1 (and -0, as msgpackr writes it: 0).
    if (v < 0x80) out[pos++] = v
    else if (v < 0x100) {
      out[pos++] = 0xcc
      out[pos++] = v
    } else if (v < 0x10000) {
      out[pos++] = 0xcd
      out[pos++] = v >> 8
      out[pos++] = v & 0xff
    } else {
      out[pos++] = 0xce
      outView.setUint32(pos, v)
      pos += 4
    }
  } else if (v >> 0 === v) {
    // -2^31 to -1.
    if (v >= -0x20) out[pos++] = 0x100 + v
    else if (v >= -0x80) {
      out[pos++] = 0xd0
      out[pos++] = v + 0x100
    } else if (v >= -0x8000) {
      out[pos++] = 0xd1
      outView.setInt16(pos, v)
      pos += 2
    } else {
      out[pos++] = 0xd2
      outView.setInt32(pos, v)
      pos += 4
    }
  } else {
    out[pos++] = 0xcb
    outView.setFloat64(pos, v)
    pos += 8
  }
}

/** Refuses a part of `n` bytes with a header of 5 that cannot fit the limit, before room is made for it: exactly its size when it is the whole value. */
function beyondLimit(n: number): void {
  if (n > MAX_VALUE_BYTES) tooLarge(pos - base + 5 + n, pos !== base)
}

function writeBytes(b: Uint8Array): void {
  const n = b.length
  beyondLimit(n)
  room(5 + n)
  header(n, 0, -1, 0xc4, 0xc5, 0xc6)
  out.set(b, pos)
  pos += n
}

/**
 * A string as the smallest str header for its UTF-8 length, as msgpackr
 * writes it. Short ones are encoded here, checking for lone surrogates as
 * they go; longer ones are checked (`isWellFormed`) and written in one pass
 * of the UTF-8 encoder after the largest header they could need, then
 * moved back when a smaller one fits (counting the bytes first cost more
 * than the write, `Buffer.byteLength`); past {@link ONE_PASS_ROOM} of worst
 * case they are counted first.
 */
function writeString(s: string): void {
  const n = s.length
  if (n < 0x40) {
    room(2 + n * 3)
    // fixstr up to 31 bytes, str8 beyond (at most 189 bytes here).
    let head = n < 0x20 ? 1 : 2
    let p = pos + head
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i)
      if (c < 0x80) out[p++] = c
      else if (c < 0x800) {
        out[p++] = (c >> 6) | 0xc0
        out[p++] = (c & 0x3f) | 0x80
      } else if ((c & 0xf800) === 0xd800) {
        const d = s.charCodeAt(i + 1)
        if (c > 0xdbff || (d & 0xfc00) !== 0xdc00) throw REFUSED
        c = 0x10000 + ((c & 0x3ff) << 10) + (d & 0x3ff)
        i++
        out[p++] = (c >> 18) | 0xf0
        out[p++] = ((c >> 12) & 0x3f) | 0x80
        out[p++] = ((c >> 6) & 0x3f) | 0x80
        out[p++] = (c & 0x3f) | 0x80
      } else {
        out[p++] = (c >> 12) | 0xe0
        out[p++] = ((c >> 6) & 0x3f) | 0x80
        out[p++] = (c & 0x3f) | 0x80
      }
    }
    const len = p - pos - head
    if (len < 0x20) {
      if (head === 2) out.copyWithin(pos + 1, pos + 2, p)
      out[pos] = 0xa0 | len
      head = 1
    } else {
      if (head === 1) out.copyWithin(pos + 2, pos + 1, p)
      out[pos] = 0xd9
      out[pos + 1] = len
      head = 2
    }
    pos += head + len
    return
  }
  if (!wellFormed(s)) throw REFUSED
  let most = n * 3
  if (most > ONE_PASS_ROOM) {
    most = Buffer.byteLength(s, 'utf8')
    beyondLimit(most)
  }
  room(5 + most)
  const head = most < 0x100 ? 2 : most < 0x10000 ? 3 : 5
  const len = out.write(s, pos + head, 'utf8')
  const fits = len < 0x100 ? 2 : len < 0x10000 ? 3 : 5
  if (fits < head) out.copyWithin(pos + fits, pos + head, pos + head + len)
  if (fits === 2) {
    out[pos] = 0xd9
    out[pos + 1] = len
  } else if (fits === 3) {
    out[pos] = 0xda
    out[pos + 1] = len >> 8
    out[pos + 2] = len & 0xff
  } else {
    out[pos] = 0xdb
    outView.setUint32(pos + 1, len)
  }
  pos += fits + len
}

/**
 * msgpackr decodes short strings in JS and caches object keys only when the
 * value ends within the first {@link SMALL} bytes of the buffer it is given;
 * a small value further in is copied to the start of `decodeScratch` first (a
 * 100-byte object at offset 4796: ~390 ns to decode in place, ~335 ns
 * copied first, ~260 ns where it already starts at 0 — what the hot
 * reads arrange, see `Io.value`).
 */
const SMALL = 139
const decodeScratch = Buffer.allocUnsafe(SMALL)

/** Decodes `bytes[start, end)`. */
export function decode(bytes: Uint8Array, start = 0, end = bytes.length): Value {
  const n = end - start
  // A byte array on its own (a `bin` that is the whole value) is copied
  // into a Buffer as `Buffer.from` makes one (a small one from Node's
  // pool): msgpackr's copy makes a new ArrayBuffer each time, ~900 ns for
  // 100 bytes against ~150.
  if (n >= 2 && Buffer.isBuffer(bytes)) {
    const head = bytes[start]
    const size = head === 0xc4 ? 2 : head === 0xc5 ? 3 : head === 0xc6 ? 5 : 0
    if (size > 0 && n >= size) {
      const len = size === 2 ? bytes[start + 1] : size === 3 ? bytes.readUInt16BE(start + 1) : bytes.readUInt32BE(start + 1)
      if (size + len === n) {
        const out = Buffer.allocUnsafe(len)
        bytes.copy(out, 0, start + size, end)
        return out
      }
    }
  }
  // (Buffers only: bytes values come back as the source's class, and the
  // scratch is a Buffer.)
  if (start > 0 && n > 0 && n <= SMALL && Buffer.isBuffer(bytes)) {
    bytes.copy(decodeScratch, 0, start, end)
    return unpackr.unpack(decodeScratch, n) as Value
  }
  return unpackr.unpack(bytes, { start, end }) as Value
}
