/**
 * The wire protocol of server mode (docs/protocol.md): frames of a 4-byte
 * little-endian length and a MessagePack body, encoded so that every value
 * in-mem stores survives the trip exactly (as the value codec does: numbers
 * stay numbers, bigints stay bigints, bytes stay bytes).
 * @internal
 * @module
 */
import { Packr, Unpackr } from 'msgpackr'
import { InMemError, InternalError, LimitError, errorClassOf } from '../errors.js'

/** The protocol version both sides name in the handshake. */
export const PROTOCOL_VERSION = 1
/** The default largest frame (a value may be 16 MiB; a batch of them more). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024

/** Response statuses. */
export const OK = 0
export const ERR = 1
/** One item of a watch stream. */
export const ITEM = 2

/**
 * Where a request runs: on the database (`0`), on a run scope (`[1, run]`),
 * in a remote transaction (`[2, txId]`) or on a replay view (`[3, viewId]`).
 */
export type Where = 0 | [1, string] | [2, number] | [3, number]

/** A request: `[id, op, args, where]`; `op` is `facade.method` or a database operation. */
export type Request = [number, string, unknown[], Where]
/** A response: `[id, status, payload]`. */
export type Response = [number, number, unknown]

/** The first frame a client sends. */
export interface Hello {
  inMem: number
  token?: string
}

/** What an error looks like on the wire. */
export interface WireError {
  name: string
  code: string
  message: string
  details: Record<string, unknown>
}

// As the value codec's, with `moreTypes` so that typed arrays (a vector's
// Float32Array) keep their type, and a Uint8Array stays one.
const packr = new Packr({ useRecords: false, moreTypes: true, structuredClone: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true, moreTypes: true })

/** A message's body, without its length prefix: valid only until the next call (it is the encoder's buffer). */
export function pack(message: unknown): Buffer {
  return packr.pack(message)
}

/** One frame: the length prefix and the body. */
export function frame(message: unknown): Buffer {
  const body = packr.pack(message)
  const out = Buffer.allocUnsafe(4 + body.length)
  out.writeUInt32LE(body.length, 0)
  body.copy(out, 4)
  return out
}

/** Decodes one frame body; a body that is not MessagePack throws. */
export function unpack(body: Buffer): unknown {
  return unpackr.unpack(body)
}

/**
 * Cuts a byte stream into frame bodies. A length over `maxFrameBytes` is a
 * `LimitError`: the stream cannot be resynchronised, so the caller closes
 * the connection.
 */
export class FrameReader {
  #chunks: Buffer[] = []
  #buffered = 0
  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes received that do not yet make a whole frame. */
  get pending(): number {
    return this.#buffered
  }

  /** Adds received bytes and returns the whole frame bodies they complete. */
  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    const out: Buffer[] = []
    while (this.#buffered >= 4) {
      const head = this.#chunks[0].length >= 4 ? this.#chunks[0] : this.#join()
      const length = head.readUInt32LE(0)
      if (length > this.maxFrameBytes) {
        throw new LimitError(`a frame of ${length} bytes is over the limit of ${this.maxFrameBytes}`, { limit: this.maxFrameBytes, size: length })
      }
      if (this.#buffered < 4 + length) break
      const all = this.#chunks.length === 1 ? this.#chunks[0] : this.#join()
      out.push(all.subarray(4, 4 + length))
      const rest = all.subarray(4 + length)
      this.#chunks = rest.length > 0 ? [rest] : []
      this.#buffered = rest.length
    }
    return out
  }

  #join(): Buffer {
    const all = Buffer.concat(this.#chunks, this.#buffered)
    this.#chunks = [all]
    return all
  }
}

/** An error as it travels: class name, code, message and details. */
export function toWire(e: unknown): WireError {
  if (e instanceof InMemError) return { name: e.name, code: e.code, message: e.message, details: e.details }
  const err = e instanceof Error ? e : new Error(String(e))
  return { name: err.name, code: 'INTERNAL', message: `${err.name}: ${err.message}`, details: {} }
}

/** The error a wire error stands for: the same class, code and details as in the owner. */
export function fromWire(w: unknown): InMemError {
  if (typeof w !== 'object' || w === null) return new InternalError('the owner sent a malformed error')
  const { code, message, details } = w as Partial<WireError>
  const Cls = errorClassOf(typeof code === 'string' ? code : 'INTERNAL')
  return new Cls(typeof message === 'string' ? message : 'unknown error', typeof details === 'object' && details !== null ? details : {})
}
