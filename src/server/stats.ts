/**
 * The server's counters, in one `Float64Array` that the serving thread writes
 * and the owner's `db.stats()` reads: over a `SharedArrayBuffer` when the
 * server runs in a worker thread.
 * @internal
 * @module
 */
import { OP_NAMES } from './dispatch.js'

/** What `db.stats().server` reports while the database is served. */
export interface ServerStats {
  /** Where clients connect. */
  urls: string[]
  /** Connections open now. */
  connections: number
  /** Connections accepted since the server started. */
  accepted: number
  /** Connections refused: over `maxConnections`, a wrong or missing token, a failed TLS handshake. */
  refused: number
  /** Connections closed by the server for a malformed or oversized frame, an unfinished frame or idleness. */
  dropped: number
  /** Requests answered. */
  requests: number
  /** Requests answered with an error. */
  errors: number
  /** Bytes received. */
  bytesIn: number
  /** Bytes sent. */
  bytesOut: number
  /** Latency in the owner (from a whole request frame to its answer written), by operation: only operations seen. */
  latency: Record<string, OpLatency>
}

/** One operation's answered requests and their latency. */
export interface OpLatency {
  /** Requests answered. */
  count: number
  /** Median latency, µs (the upper bound of its bucket: buckets are a quarter power of two wide). */
  p50Us: number
  /** 99th percentile latency, µs (likewise). */
  p99Us: number
}

const CONNECTIONS = 0
const ACCEPTED = 1
const REFUSED = 2
const DROPPED = 3
const REQUESTS = 4
const ERRORS = 5
const BYTES_IN = 6
const BYTES_OUT = 7
const HEAD = 8
/** Latency buckets per operation: bucket b holds latencies below 2^(b/4) µs. */
const BUCKETS = 128

/** Entries in one counter table. */
const ENTRIES = HEAD + OP_NAMES.length * BUCKETS
/** The size of the counters, in bytes: two tables, each with one writer. */
export const COUNTER_BYTES = 2 * ENTRIES * 8

/**
 * A view of the counters: two tables of the same layout, summed when read.
 * The serving thread writes the first (its own counts, and those of the
 * native frame cutter of its TLS connections, which runs on that thread);
 * the native listener's I/O thread writes the second. One writer each, so
 * no count is lost; readers (the owner's thread) sum them.
 */
export class Counters {
  readonly #a: Float64Array
  readonly #n: Float64Array
  constructor(buffer: ArrayBufferLike = new ArrayBuffer(COUNTER_BYTES)) {
    this.#a = new Float64Array(buffer, 0, ENTRIES)
    this.#n = new Float64Array(buffer, ENTRIES * 8, ENTRIES)
  }
  get buffer(): ArrayBufferLike {
    return this.#a.buffer
  }
  /** The serving thread's table (a `NativeWire` on that thread writes it too). @internal */
  get table(): Float64Array {
    return this.#a
  }
  /** The native listener's table. @internal */
  get nativeTable(): Float64Array {
    return this.#n
  }
  opened(): void {
    this.#a[CONNECTIONS]++
    this.#a[ACCEPTED]++
  }
  closed(): void {
    this.#a[CONNECTIONS]--
  }
  refused(): void {
    this.#a[REFUSED]++
  }
  dropped(): void {
    this.#a[DROPPED]++
  }
  bytesIn(n: number): void {
    this.#a[BYTES_IN] += n
  }
  bytesOut(n: number): void {
    this.#a[BYTES_OUT] += n
  }
  /** One request answered: its operation's index, how long it took (ms), and whether it failed. */
  answered(op: number, ms: number, failed: boolean): void {
    const a = this.#a
    a[REQUESTS]++
    if (failed) a[ERRORS]++
    if (op < 0) return
    const us = ms * 1000
    const b = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(4 * Math.log2(us)))
    a[HEAD + op * BUCKETS + b]++
  }

  snapshot(urls: string[]): ServerStats {
    const a = new Float64Array(ENTRIES)
    for (let i = 0; i < ENTRIES; i++) a[i] = this.#a[i] + this.#n[i]
    const latency: ServerStats['latency'] = {}
    for (let op = 0; op < OP_NAMES.length; op++) {
      const base = HEAD + op * BUCKETS
      let count = 0
      for (let b = 0; b < BUCKETS; b++) count += a[base + b]
      if (count === 0) continue
      const at = (q: number): number => {
        let seen = 0
        for (let b = 0; b < BUCKETS; b++) {
          seen += a[base + b]
          if (seen >= q * count) return Math.round(2 ** (b / 4) * 10) / 10
        }
        return Infinity
      }
      latency[OP_NAMES[op]] = { count, p50Us: at(0.5), p99Us: at(0.99) }
    }
    return {
      urls,
      connections: a[CONNECTIONS],
      accepted: a[ACCEPTED],
      refused: a[REFUSED],
      dropped: a[DROPPED],
      requests: a[REQUESTS],
      errors: a[ERRORS],
      bytesIn: a[BYTES_IN],
      bytesOut: a[BYTES_OUT],
      latency,
    }
  }
}
