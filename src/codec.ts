/**
 * The value codec: validates a JavaScript value against SPEC §3 and encodes
 * it as plain MessagePack (msgpackr), so that a round trip is exact:
 * integers stay numbers, bigints stay bigints, bytes stay bytes, object key
 * order is kept. A string (or object key) with a lone surrogate is refused:
 * UTF-8 cannot carry it, and it would come back as U+FFFD.
 * @module
 */
import { Packr, Unpackr } from 'msgpackr'
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

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, variableMapSize: true })
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
 * The allocation-free check of the hot path: true if `v` is storable. On
 * false, {@link check} walks again to say what and where. A cycle shows up
 * here as nesting past the depth limit.
 */
function storable(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
      return wellFormed(v)
    case 'number':
    case 'boolean':
      return true
    case 'bigint':
      return v >= I64_MIN && v <= I64_MAX
    case 'object':
      break
    default:
      return false
  }
  if (v === null || v instanceof Uint8Array) return true
  if (depth >= MAX_DEPTH) return false
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!storable(v[i], depth + 1)) return false
    return true
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key in v) {
    if (key === '__proto__' || !wellFormed(key) || !storable((v as Record<string, unknown>)[key], depth + 1)) return false
  }
  return Object.getOwnPropertySymbols(v).length === 0
}

/**
 * Validates a value as {@link encode} does, without encoding it: the check a
 * remote client makes before a value leaves, so that it is refused there as
 * in process (MessagePack would turn a Map into an array, a class instance
 * into a plain object, a lone surrogate into U+FFFD).
 * @throws InvalidArgumentError / LimitError as {@link encode}
 */
export function checkValue(value: unknown): void {
  if (!storable(value, 0)) check(value, 0, '$', [])
}

/**
 * Validates and encodes a value. The returned bytes are only valid until the
 * next call (they live in the encoder's reusable buffer).
 * @throws InvalidArgumentError for values SPEC §3 rejects
 * @throws LimitError for nesting deeper than 128 or more than 16 MiB encoded
 */
export function encode(value: unknown): Uint8Array {
  if (!storable(value, 0)) check(value, 0, '$', [])
  const bytes = packr.pack(value)
  if (bytes.length > MAX_VALUE_BYTES) {
    throw new LimitError(`value is ${bytes.length} bytes encoded; the limit is ${MAX_VALUE_BYTES} bytes (16 MiB)`, {
      size: bytes.length,
      limit: MAX_VALUE_BYTES,
    })
  }
  return bytes
}

/**
 * msgpackr decodes short strings in JS and caches object keys only when the
 * value ends within the first {@link SMALL} bytes of the buffer it is given;
 * a small value further in is copied to the start of `scratch` first (a
 * 100-byte object at offset 4796: ~390 ns to decode in place, ~335 ns
 * copied first, ~260 ns where it already starts at 0 — what the hot
 * reads arrange, see `Io.value`).
 */
const SMALL = 139
const scratch = Buffer.allocUnsafe(SMALL)

/** Decodes `bytes[start, end)`. */
export function decode(bytes: Uint8Array, start = 0, end = bytes.length): Value {
  const n = end - start
  // (Buffers only: bytes values come back as the source's class, and the
  // scratch is a Buffer.)
  if (start > 0 && n > 0 && n <= SMALL && Buffer.isBuffer(bytes)) {
    bytes.copy(scratch, 0, start, end)
    return unpackr.unpack(scratch, n) as Value
  }
  return unpackr.unpack(bytes, { start, end }) as Value
}
