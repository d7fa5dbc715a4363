/**
 * `Database.connect`: a database served by another process, with the same
 * facades as the embedded one and every method returning a Promise. The
 * facade types are derived from the embedded classes by a mapped type
 * ({@link Remote}), so the two method lists cannot drift apart; the owner
 * runs each call through the very facade method an embedded caller would.
 * @module
 */
import net from 'node:net'
import { resolve as resolvePath } from 'node:path'
import tls from 'node:tls'
import type { CheckpointOptions, CheckpointReport, Database, Stats, TransactionOptions } from '../database.js'
import { ClosedError, ConflictError, ConnectionError, InMemError, InvalidArgumentError, LaggedError } from '../errors.js'
import { type Value, checkValue } from '../codec.js'
import type { ReplayOptions, RunDiff, RunView } from '../history.js'
import type { BeginOptions, RunId } from '../runs.js'
import type { RunScope, TxScope } from '../scope.js'
import type { TransitionResult } from '../state.js'
import type { Change, WatchOptions } from '../watch.js'
import { DEFAULT_MAX_FRAME_BYTES, ERR, FrameReader, ITEM, OK, PROTOCOL_VERSION, type Where, frame, fromWire, pack, unpack } from './protocol.js'
import { Session } from './dispatch.js'

/**
 * The remote form of a facade: each of its methods, taking the same
 * arguments and returning a Promise of what it returns in process. (A
 * mapped type cannot keep a method's type parameters: a remote `get`
 * resolves to `unknown`, narrowed by the caller, and a remote `put` takes
 * any {@link Value}.)
 */
export type Remote<T> = {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never
}

/** The facades of the embedded {@link Database}. */
export type FacadeName = 'kv' | 'runs' | 'events' | 'state' | 'json' | 'traces' | 'vectors' | 'machines'
/** The facades of a run scope, a transaction and a replay view. */
export type ScopeFacade = 'kv' | 'events' | 'state' | 'json' | 'traces' | 'machines' | 'vectors'

/** A run scope of a remote database: `scope.kv.put(key, value)`. */
export type RemoteScope = {
  /** The run the scope is bound to. */
  readonly run: RunId
} & { readonly [K in ScopeFacade]: Remote<RunScope[K]> }
/** The scope a remote transaction's closure receives. */
export type RemoteTx = {
  /** The run of the transaction. */
  readonly run: RunId
} & { readonly [K in ScopeFacade]: Remote<TxScope[K]> }
/** A replay view of a remote database (`await remote.replay(run, { at })`). */
export type RemoteView = {
  /** The run shown. */
  readonly run: RunId
  /** The commit version it is shown at. */
  readonly at: number
  /** Releases the view's snapshot on the owner. */
  close(): Promise<void>
} & { readonly [K in ScopeFacade]: Remote<RunView[K]> }

/** A database served by another process: `await Database.connect(url)`. */
export type RemoteDatabase = { readonly [K in FacadeName]: Remote<Database[K]> } & {
  /** The owner's URL. */
  readonly url: string
  /** Whether the connection is open (not closed, not lost). */
  readonly isOpen: boolean
  /** The API bound to one run. */
  scope(run: RunId): RemoteScope
  /**
   * A transaction on the owner: reads are served at its snapshot, writes
   * are sent as they are made (a write need not be awaited: the commit
   * waits for all of them, and fails with the first one that failed), and
   * the commit is validated first-committer-wins as in process. On a
   * `ConflictError` the closure runs again, up to `retries` times (default
   * 10). In strict mode it resolves once the commit is durable.
   */
  transaction<T>(run: RunId, fn: (tx: RemoteTx) => T | Promise<T>, opts?: TransactionOptions): Promise<T>
  /** The same as `transaction` (remotely, every transaction is async). */
  transactionAsync<T>(run: RunId, fn: (tx: RemoteTx) => T | Promise<T>, opts?: TransactionOptions): Promise<T>
  /** Begins a run, runs `fn` with its scope, completes it (or fails it and rethrows). */
  withRun<T>(opts: BeginOptions & { metadata?: Value }, fn: (scope: RemoteScope) => T | Promise<T>): Promise<T>
  /** A read-only view of the run as of `at`, held on the owner until `close()`. */
  replay(run: RunId, opts?: ReplayOptions): Promise<RemoteView>
  /** See `Database.diff`. */
  diff(a: RunId, b: RunId): Promise<RunDiff>
  /** Committed changes as they happen; the same `LaggedError` rule as `db.watch`. */
  watch(opts?: WatchOptions): AsyncGenerator<Change, void, undefined>
  /** See `Database.flush`. */
  flush(): Promise<void>
  /** See `Database.checkpoint` (run by the owner; `onProgress` is called once, at the end). */
  checkpoint(opts?: CheckpointOptions): Promise<CheckpointReport | null>
  /** The owner's `db.stats()`, with `server` filled in. */
  stats(): Promise<Stats>
  /** Closes the connection once the requests already made are answered (a write made before `close()` resolves or fails as it would have; at most `requestTimeoutMs`); later requests fail with `ClosedError`, watches end with it, and the owner rolls back this connection's open transactions. */
  close(): Promise<void>
}

/**
 * Database methods that have no remote form: opening, serving and the
 * synchronous-closure transaction are the owner's; every other public
 * method of `Database` is in {@link RemoteDatabase} (checked below).
 */
type OwnerOnly = 'serve' | 'close' | 'isOpen'
type DbMethods = { [K in keyof Database]: Database[K] extends (...args: never[]) => unknown ? K : never }[keyof Database]
/** Compiles only while every public method of `Database` has a remote form. */
const sameMethods: [Exclude<DbMethods, keyof RemoteDatabase | OwnerOnly>] extends [never] ? true : false = true
void sameMethods

/** Options of `Database.connect`. */
export interface ConnectOptions {
  /** The owner's token (required by a TCP listener, and by a socket served with one). */
  token?: string
  /** For `tls://`: the CA certificate(s) to trust (PEM) instead of the system's. */
  ca?: string | Buffer | (string | Buffer)[]
  /** For `tls://`: the name the server's certificate must carry, when it is not the host of the URL. */
  servername?: string
  /** How long connecting and the handshake may take, in ms. Default 10,000. */
  timeoutMs?: number
  /** How long one request may wait for its answer before it fails with `ConnectionError`, in ms; 0: no limit. Default 120,000. */
  requestTimeoutMs?: number
  /** Largest frame accepted from the owner. Default 64 MiB. */
  maxFrameBytes?: number
  /** Changes a watch keeps for a slow reader before it gets `LaggedError`. Default 10,000. */
  watchBuffer?: number
}

interface Pending {
  resolve(v: unknown): void
  reject(e: unknown): void
  item?(v: unknown): void
  op: string
  /** When it was sent (ms since the epoch), or 0 for no deadline (a stream). */
  sent: number
}

/** The least room a buffer of outgoing frames is made with. */
const OUT_CHUNK = 16 * 1024

/** How often an otherwise silent connection pings the owner, so its idle limit does not close it. */
const PING_MS = 60_000

/** Where a remote database's requests go. */
interface Wire {
  readonly url: string
  readonly open: boolean
  /** The id the next request will get (a stream is addressed by its request's id). */
  readonly nextId: number
  /** Sends one request; resolves with its answer. `item` receives a stream's items. */
  request(op: string, args: unknown[], where: Where, item?: (v: unknown) => void): Promise<unknown>
  close(): Promise<void>
}

/** One connection to the owner, with its requests in flight. */
class NetWire implements Wire {
  readonly #socket: net.Socket
  readonly #reader: FrameReader
  readonly #pending = new Map<number, Pending>()
  #next = 1
  #lost: InMemError | undefined
  /** A write of what is queued is due at the end of this tick. */
  #flushLater = false
  /** Requests queued since the last write. */
  #queued = 0
  #ping: NodeJS.Timeout
  #sweep: NodeJS.Timeout | undefined

  constructor(
    socket: net.Socket,
    readonly url: string,
    private readonly requestTimeoutMs: number,
    maxFrameBytes: number,
  ) {
    this.#socket = socket
    this.#reader = new FrameReader(maxFrameBytes)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.#data(chunk))
    socket.on('error', (e) => this.#fail(new ConnectionError(`the connection to the owner at ${url} failed: ${e.message}`, { url })))
    socket.on('close', () => this.#fail(new ConnectionError(`the connection to the owner at ${url} was lost; a request in flight may or may not have been applied`, { url })))
    this.#ping = setInterval(() => {
      if (this.#pending.size === 0) this.request('ping', [], 0).catch(() => {})
    }, PING_MS)
    this.#ping.unref()
    // One timer checks every deadline, rather than one timer per request.
    if (requestTimeoutMs > 0) {
      this.#sweep = setInterval(() => this.#overdue(), Math.min(1000, Math.max(10, requestTimeoutMs / 4)))
      this.#sweep.unref()
    }
  }

  get open(): boolean {
    return this.#lost === undefined
  }

  /** Sends one request; resolves with its answer. `item` receives a stream's items. */
  request(op: string, args: unknown[], where: Where, item?: (v: unknown) => void): Promise<unknown> {
    if (this.#lost !== undefined) return Promise.reject(this.#lost)
    if (this.#closing) return Promise.reject(new ClosedError('this remote database is closed'))
    const id = this.#next++
    let body: Buffer
    try {
      body = pack([id, op, args, where])
    } catch (e) {
      return Promise.reject(new InvalidArgumentError(`the arguments cannot be sent: ${(e as Error).message}`))
    }
    this.#append(body)
    return new Promise((resolve, reject) => {
      const p: Pending = { resolve, reject, item, op, sent: this.requestTimeoutMs > 0 && item === undefined ? Date.now() : 0 }
      this.#pending.set(id, p)
      this.#queue()
    })
  }

  /** The id the next request will get (a stream is addressed by its request's id). */
  get nextId(): number {
    return this.#next
  }

  /** Fails the requests past their deadline. */
  #overdue(): void {
    const limit = Date.now() - this.requestTimeoutMs
    for (const [id, p] of this.#pending) {
      if (p.sent === 0 || p.sent > limit) continue
      this.#pending.delete(id)
      p.reject(new ConnectionError(`the owner at ${this.url} did not answer ${p.op} within ${this.requestTimeoutMs} ms`, { url: this.url, op: p.op }))
    }
  }

  /** Frames not yet written: `#out` up to `#outLength`. The rest of `#out` is room for more. */
  #out: Buffer | null = null
  #outLength = 0

  /** Adds a request's frame to those waiting to be written. */
  #append(body: Buffer): void {
    const need = 4 + body.length
    let out = this.#out
    if (out === null || this.#outLength + need > out.length) {
      const next = Buffer.allocUnsafe(Math.max(OUT_CHUNK, 2 * (this.#outLength + need)))
      if (out !== null) out.copy(next, 0, 0, this.#outLength)
      out = this.#out = next
    }
    out.writeUInt32LE(body.length, this.#outLength)
    body.copy(out, this.#outLength + 4)
    this.#outLength += need
  }

  /**
   * Writes the queued frames when half the requests in flight (at least 2)
   * are queued, else at the end of the tick. One write a tick made the two
   * processes take turns, each idle while the other worked; a write a
   * request costs a wake-up of the owner's listener each (16 requests in
   * flight on one connection, kv.get: one write a tick 186K/s, every 4th
   * request 290K/s, half the flight 360K/s).
   */
  #queue(): void {
    if (++this.#queued >= Math.max(2, this.#pending.size >> 1)) {
      this.#flush()
      return
    }
    if (!this.#flushLater) {
      this.#flushLater = true
      process.nextTick(() => {
        this.#flushLater = false
        this.#flush()
      })
    }
  }

  #flush(): void {
    this.#queued = 0
    const out = this.#out
    if (out === null || this.#outLength === 0) return
    // The socket owns what it writes; what is left of the buffer takes the next frames.
    this.#socket.write(out.subarray(0, this.#outLength))
    this.#out = out.length - this.#outLength >= 1024 ? out.subarray(this.#outLength) : null
    this.#outLength = 0
  }

  #data(chunk: Buffer): void {
    let bodies: Buffer[]
    try {
      bodies = this.#reader.push(chunk)
    } catch (e) {
      this.#fail(e as InMemError)
      this.#socket.destroy()
      return
    }
    for (const body of bodies) {
      let msg: unknown
      try {
        msg = unpack(body)
      } catch {
        this.#fail(new ConnectionError(`the owner at ${this.url} sent a malformed frame`, { url: this.url }))
        this.#socket.destroy()
        return
      }
      if (!Array.isArray(msg) || typeof msg[0] !== 'number') continue
      const [id, status, payload] = msg as [number, number, unknown]
      if (id === 0) {
        // An error about the connection itself: the owner is closing it.
        const why = status === ERR ? fromWire(payload) : undefined
        this.#fail(new ConnectionError(`the owner at ${this.url} closed the connection${why ? `: ${why.message}` : ''}`, { url: this.url, reason: why?.code ?? null }))
        continue
      }
      const p = this.#pending.get(id)
      if (p === undefined) continue
      if (status === ITEM) {
        p.item?.(payload)
        continue
      }
      this.#pending.delete(id)
      if (status === OK) p.resolve(payload)
      else p.reject(fromWire(payload))
    }
    if (this.#settled !== undefined && !this.#awaiting()) this.#settled()
  }

  /** While closing: called once no request (other than a stream) waits for its answer. */
  #settled: (() => void) | undefined

  /** Whether a request other than a stream waits for its answer. */
  #awaiting(): boolean {
    for (const p of this.#pending.values()) if (p.item === undefined) return true
    return false
  }

  #closing = false

  #fail(e: InMemError): void {
    if (this.#lost !== undefined) return
    this.#lost = e
    this.#settled?.()
    clearInterval(this.#ping)
    clearInterval(this.#sweep)
    for (const p of this.#pending.values()) p.reject(e)
    this.#pending.clear()
  }

  /**
   * Sends nothing more, and waits for the answers of the requests already
   * made (at most `requestTimeoutMs`), so a write made before `close()` is
   * settled either way; streams (watches) end with `ClosedError`.
   */
  async close(): Promise<void> {
    if (this.#lost === undefined && !this.#closing) {
      this.#closing = true
      this.#flush()
      if (this.#awaiting()) {
        await new Promise<void>((resolve) => {
          this.#settled = resolve
          if (this.requestTimeoutMs > 0) setTimeout(resolve, this.requestTimeoutMs).unref()
        })
      }
    }
    this.#fail(new ClosedError('this remote database is closed'))
    return new Promise((resolve) => {
      if (this.#socket.destroyed) {
        resolve()
        return
      }
      this.#socket.once('close', () => resolve())
      this.#socket.end()
      setTimeout(() => this.#socket.destroy(), 1000).unref()
    })
  }
}

/**
 * Requests answered in this process by the same dispatch the owner runs:
 * the remote API over an embedded database (the CLI reads a directory it
 * opened itself and one served by its owner through one code path).
 */
class LocalWire implements Wire {
  readonly #session: Session
  #next = 1
  #closed = false
  constructor(private readonly db: Database) {
    this.#session = new Session(db, { txLeaseMs: 60_000 })
  }
  get url(): string {
    return `local:${this.db.stats().path ?? 'memory'}`
  }
  get open(): boolean {
    return !this.#closed && this.db.isOpen
  }
  get nextId(): number {
    return this.#next
  }
  request(op: string, args: unknown[], where: Where, item?: (v: unknown) => void): Promise<unknown> {
    const id = this.#next++
    if (this.#closed) return Promise.reject(new ClosedError('this remote database is closed'))
    if (op === 'watch' && where === 0) {
      return new Promise((resolve, reject) => {
        this.#session.watch(id, (args[0] ?? {}) as object, {
          item: (change) => item?.(change),
          end: (e) => (e === undefined ? resolve(null) : reject(e)),
        })
      })
    }
    try {
      return Promise.resolve(this.#session.call(op, args, where))
    } catch (e) {
      return Promise.reject(e)
    }
  }
  close(): Promise<void> {
    this.#closed = true
    this.#session.close()
    return Promise.resolve()
  }
}

/**
 * The remote API over a database opened in this process: every method
 * returns a Promise, as from `Database.connect`. Closing it leaves `db` open.
 * @internal
 */
export function localRemote(db: Database): RemoteDatabase {
  return remoteDatabase(new LocalWire(db), 10_000)
}

/** Where a URL points. */
type Address = { kind: 'unix'; path: string } | { kind: 'tcp' | 'tls'; host: string; port: number }

function parseUrl(url: string): Address {
  if (typeof url !== 'string') throw new InvalidArgumentError("connect needs a URL: 'unix:/path/to/in-mem.sock', 'tcp://host:port' or 'tls://host:port'")
  if (url.startsWith('unix:')) {
    const path = url.slice(5).replace(/^\/\/(?=\/)/, '')
    if (path === '') throw new InvalidArgumentError(`no socket path in '${url}'`)
    return { kind: 'unix', path: resolvePath(path) }
  }
  const m = /^(tcp|tls):\/\/(?:\[([^\]]+)\]|([^:/]+)):(\d{1,5})\/?$/.exec(url)
  if (m === null || Number(m[4]) > 65535) {
    throw new InvalidArgumentError(`'${url}' is not an in-mem URL: 'unix:/path/to/in-mem.sock', 'tcp://host:port' or 'tls://host:port'`)
  }
  return { kind: m[1] as 'tcp' | 'tls', host: m[2] ?? m[3], port: Number(m[4]) }
}

const CONNECT_OPTIONS = ['token', 'ca', 'servername', 'timeoutMs', 'requestTimeoutMs', 'maxFrameBytes', 'watchBuffer']

/** Connects and shakes hands. @internal */
export async function connect(url: string, opts: ConnectOptions = {}): Promise<RemoteDatabase> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('connect options must be an object')
  for (const k of Object.keys(opts)) if (!CONNECT_OPTIONS.includes(k)) throw new InvalidArgumentError(`unknown connect option '${k}'`)
  const addr = parseUrl(url)
  const timeoutMs = opts.timeoutMs ?? 10_000
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s =
      addr.kind === 'unix'
        ? net.connect(addr.path)
        : addr.kind === 'tcp'
          ? net.connect(addr.port, addr.host)
          : tls.connect({ host: addr.host, port: addr.port, ca: opts.ca, servername: opts.servername ?? (net.isIP(addr.host) ? undefined : addr.host) })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new ConnectionError(`could not connect to ${url} within ${timeoutMs} ms`, { url }))
    }, timeoutMs)
    s.once(addr.kind === 'tls' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer)
      s.removeAllListeners('error')
      resolve(s)
    })
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'nothing serves there (is the owner running, and serving?)' : e.message
      reject(new ConnectionError(`could not connect to ${url}: ${why}`, { url, cause: e.code ?? e.message }))
    })
  })
  // The handshake: the first frame each way.
  const reader = new FrameReader(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new ConnectionError(`the owner at ${url} did not answer the handshake within ${timeoutMs} ms`, { url })), timeoutMs)
    const fail = (e: InMemError): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.destroy()
      reject(e)
    }
    const onData = (chunk: Buffer): void => {
      let bodies: Buffer[]
      try {
        bodies = reader.push(chunk)
      } catch {
        fail(new ConnectionError(`the owner at ${url} answered the handshake with an oversized frame`, { url }))
        return
      }
      if (bodies.length === 0) return
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      const answer = unpack(bodies[0]) as { inMem?: number } | [number, number, unknown]
      if (Array.isArray(answer)) {
        fail(answer[1] === ERR ? fromWire(answer[2]) : new ConnectionError(`the owner at ${url} refused the connection`, { url }))
        return
      }
      if (answer?.inMem !== PROTOCOL_VERSION) {
        fail(new ConnectionError(`the server at ${url} does not speak in-mem protocol ${PROTOCOL_VERSION}`, { url }))
        return
      }
      resolve()
    }
    const onClose = (): void => fail(new ConnectionError(`the owner at ${url} closed the connection during the handshake`, { url }))
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.write(frame({ inMem: PROTOCOL_VERSION, token: opts.token }))
  })
  return remoteDatabase(new NetWire(socket, url, opts.requestTimeoutMs ?? 120_000, opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES), opts.watchBuffer ?? 10_000)
}

/**
 * Arguments as they travel: a run's failure as its message (what
 * `runs.fail` keeps of it), and an iterable that is not an array (the Map or
 * generator `putMany` takes) as the array it yields.
 */
function wireArgs(op: string, args: unknown[], where: Where): unknown[] {
  if (op === 'runs.fail' && args[1] instanceof Error) args = [args[0], args[1].message]
  // A stored value is checked by the value codec's rules, before anything
  // turns it into something else.
  const at = VALUE_ARG[op]
  if (at !== undefined) {
    const i = where === 0 ? at : at - 1
    if (args[i] !== undefined || !OPTIONAL_VALUE.has(op)) checkValue(args[i])
  }
  return args.map((a) => {
    const sent = typeof a === 'object' && a !== null && !Array.isArray(a) && !ArrayBuffer.isView(a) && Symbol.iterator in a ? Array.from(a as Iterable<unknown>) : a
    if (!fits(sent, [])) sendable(sent, '$', [])
    return sent
  })
}

/** Where a stored value is among a method's arguments on the database (one less on a run scope or in a transaction, which take no run). */
const VALUE_ARG: Record<string, number> = {
  'kv.put': 2,
  'state.init': 2,
  'state.set': 2,
  'state.cas': 3,
  'json.set': 3,
  'json.merge': 3,
  'events.append': 2,
  'vectors.upsert': 4,
}
/** Those whose value may be left out. */
const OPTIONAL_VALUE = new Set(['events.append', 'vectors.upsert'])

/** Requests to `where` over `wire`. */
function sendTo(wire: Wire, where: Where): Send {
  return (op, args) => requestWith(wire, op, args, where)
}

/** A request with its arguments made ready to travel; what cannot travel is a rejection, as every remote failure is. */
function requestWith(wire: Wire, op: string, args: unknown[], where: Where): Promise<unknown> {
  let sent: unknown[]
  try {
    sent = wireArgs(op, args, where)
  } catch (e) {
    return Promise.reject(e)
  }
  return wire.request(op, sent, where)
}

/** {@link sendable}'s check without the paths it names: `false` where it would throw. */
function fits(v: unknown, stack: object[]): boolean {
  if (typeof v === 'function' || typeof v === 'symbol') return false
  if (typeof v === 'string') return v.isWellFormed()
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return true
  if (stack.includes(v)) return false
  if (stack.length > 256) return true
  stack.push(v)
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!fits(v[i], stack)) return false
  } else {
    const proto = Object.getPrototypeOf(v)
    if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(v).length > 0) return false
    for (const key of Object.keys(v)) if (key === '__proto__' || !key.isWellFormed() || !fits((v as Record<string, unknown>)[key], stack)) return false
  }
  stack.pop()
  return true
}

/**
 * Refuses what MessagePack would silently change on the way (a function or
 * a symbol would arrive as `undefined`, a Map as an object, a cycle would
 * not arrive), with the error and message the value codec gives in process.
 */
function sendable(v: unknown, path: string, stack: object[]): void {
  const refuse = (what: string): never => {
    throw new InvalidArgumentError(`${what} at ${path} cannot be stored`, { path })
  }
  if (typeof v === 'function') refuse('a function')
  if (typeof v === 'symbol') refuse('a symbol')
  if (typeof v === 'string' && !v.isWellFormed()) {
    throw new InvalidArgumentError(`the string at ${path} has a lone surrogate (not valid Unicode); it cannot be stored as UTF-8`, { path })
  }
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return
  if (stack.includes(v)) refuse('a cycle')
  if (stack.length > 256) return
  stack.push(v)
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) sendable(v[i], `${path}[${i}]`, stack)
  } else {
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) refuse(`an instance of ${(v as { constructor?: { name?: string } }).constructor?.name ?? 'a class'}`)
    if (Object.getOwnPropertySymbols(v).length > 0) refuse('a symbol-keyed property')
    for (const key of Object.keys(v)) {
      if (key === '__proto__') refuse('the key "__proto__"')
      if (!key.isWellFormed()) throw new InvalidArgumentError(`an object key at ${path} has a lone surrogate (not valid Unicode)`, { path })
      sendable((v as Record<string, unknown>)[key], `${path}.${key}`, stack)
    }
  }
  stack.pop()
}

const FACADES: FacadeName[] = ['kv', 'runs', 'events', 'state', 'json', 'traces', 'vectors', 'machines']
const SCOPE_FACADES: ScopeFacade[] = ['kv', 'events', 'state', 'json', 'traces', 'machines', 'vectors']

/** How a facade's calls leave: `op` is `facade.method`. */
type Send = (op: string, args: unknown[]) => Promise<unknown>

/** A facade whose every method is a request sent by `send`; `overrides` replace some. */
function facade(send: Send, name: string, overrides: Record<string, (...args: never[]) => unknown> = {}): object {
  const methods = new Map<string, unknown>()
  return new Proxy(
    {},
    {
      get(_, method) {
        // Not a thenable: `await remote.kv` is the facade itself.
        if (typeof method !== 'string' || method === 'then') return undefined
        let fn = methods.get(method)
        if (fn === undefined) {
          const op = `${name}.${method}`
          fn = Object.hasOwn(overrides, method) ? overrides[method] : (...args: unknown[]) => send(op, args)
          methods.set(method, fn)
        }
        return fn
      },
    },
  )
}

function remoteDatabase(wire: Wire, watchBuffer: number): RemoteDatabase {
  const backoff = (attempt: number): Promise<void> => new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)))
  let nextTx = 1

  const transaction = async <T>(run: RunId, fn: (tx: RemoteTx) => T | Promise<T>, opts?: TransactionOptions): Promise<T> => {
    if (typeof fn !== 'function') throw new InvalidArgumentError('transaction needs a function')
    if (opts !== undefined && (typeof opts !== 'object' || opts === null || Object.keys(opts).some((k) => k !== 'retries'))) {
      throw new InvalidArgumentError("transaction options are { retries }")
    }
    const retries = opts?.retries ?? 10
    if (!Number.isInteger(retries) || retries < 0) throw new InvalidArgumentError('retries must be a non-negative integer')
    for (let attempt = 0; ; attempt++) {
      const id = nextTx++
      // The owner names the transaction by the id chosen here, so the first
      // read leaves with the begin, not a round trip later.
      let beginError: unknown
      const sent: Promise<unknown>[] = []
      const send = (op: string, args: unknown[]): Promise<unknown> => {
        // A request that failed because the begin did (its answer may
        // come first) fails with the begin's error.
        const p = requestWith(wire, op, args, [2, id]).catch(async (e: unknown) => {
          await begun.catch(() => {})
          throw beginError ?? e
        })
        p.catch(() => {})
        sent.push(p)
        return p
      }
      const begun = wire.request('tx.begin', [run, id], 0).catch((e: unknown) => {
        beginError = e
        throw e
      })
      begun.catch(() => {})
      sent.push(begun)
      const tx = txScope(run, send)
      let committing = false
      try {
        const result = await fn(tx)
        // The commit follows the writes at once: the owner handles a
        // connection's requests in order, and fails the commit with the
        // first of the transaction's requests that failed. Their answers
        // come first; the first failure is the transaction's error.
        committing = true
        const commit = wire.request('tx.commit', [id], 0)
        commit.catch(() => {})
        for (const p of sent) await p
        await commit
        return result
      } catch (e) {
        if (!committing && beginError === undefined) wire.request('tx.abort', [id], 0).catch(() => {})
        if (e instanceof ConflictError && attempt < retries) {
          await backoff(attempt)
          continue
        }
        throw e
      }
    }
  }

  const txScope = (run: RunId, send: Send): RemoteTx => {
    const scope: Record<string, unknown> = { run }
    for (const name of SCOPE_FACADES) {
      const overrides: Record<string, (...args: never[]) => unknown> = {}
      if (name === 'state') {
        overrides.transition = async (cell: string, fn: (current: unknown) => unknown): Promise<TransitionResult> => {
          if (typeof fn !== 'function') throw new InvalidArgumentError('transition needs a function')
          const current = (await send('state.get', [cell])) as { value: unknown } | undefined
          const value = fn(current?.value)
          return { value: value as Value, version: (await send('state.set', [cell, value])) as number }
        }
      }
      scope[name] = facade(send, name, overrides)
    }
    return scope as RemoteTx
  }

  /** `state.transition` remotely: a transaction that reads the cell, calls `fn` here, and writes. */
  const transition = (run: RunId, cell: string, fn: (current: unknown) => unknown): Promise<TransitionResult> =>
    transaction(run, (tx) => tx.state.transition(cell, fn as never) as Promise<TransitionResult>, { retries: 1000 })

  const scope = (run: RunId): RemoteScope => {
    if (typeof run !== 'string') throw new InvalidArgumentError('a run id must be a string')
    const s: Record<string, unknown> = { run }
    for (const name of SCOPE_FACADES) {
      s[name] = facade(sendTo(wire, [1, run]), name, name === 'state' ? { transition: (cell: string, fn: (c: unknown) => unknown) => transition(run, cell, fn) } : {})
    }
    return s as RemoteScope
  }

  const db: Record<string, unknown> = {}
  for (const name of FACADES) {
    db[name] = facade(sendTo(wire, 0), name, name === 'state' ? { transition: (run: RunId, cell: string, fn: (c: unknown) => unknown) => transition(run, cell, fn) } : {})
  }
  Object.defineProperties(db, {
    url: { value: wire.url, enumerable: true },
    isOpen: { get: () => wire.open, enumerable: true },
  })
  Object.assign(db, {
    scope,
    transaction,
    transactionAsync: transaction,
    async withRun<T>(opts: BeginOptions & { metadata?: Value }, fn: (s: RemoteScope) => T | Promise<T>): Promise<T> {
      const r = db as unknown as RemoteDatabase
      const run = await r.runs.begin(opts)
      let result: T
      try {
        result = await fn(scope(run))
      } catch (e) {
        const info = await r.runs.get(run)
        if (info?.status === 'active') await r.runs.fail(run, e)
        throw e
      }
      const info = await r.runs.get(run)
      if (info?.status === 'active') await r.runs.complete(run)
      return result
    },
    async replay(run: RunId, opts: ReplayOptions = {}): Promise<RemoteView> {
      const { id, at } = (await wire.request('replay', [run, opts], 0)) as { id: number; at: number }
      const view: Record<string, unknown> = { run, at, close: () => wire.request('view.close', [id], 0).then(() => undefined) }
      for (const name of SCOPE_FACADES) view[name] = facade(sendTo(wire, [3, id]), name)
      return view as RemoteView
    },
    diff: (a: RunId, b: RunId) => wire.request('diff', [a, b], 0),
    flush: () => wire.request('flush', [], 0).then(() => undefined),
    async checkpoint(opts: CheckpointOptions = {}): Promise<CheckpointReport | null> {
      if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('checkpoint options must be an object')
      const report = (await wire.request('checkpoint', [{}], 0)) as CheckpointReport | null
      if (report !== null) opts.onProgress?.({ running: false, entriesWritten: report.entries, entriesTotal: report.entries })
      return report
    },
    stats: () => wire.request('stats', [], 0),
    watch: (opts: WatchOptions = {}) => watch(wire, opts, watchBuffer),
    close: () => wire.close(),
  })
  return db as unknown as RemoteDatabase
}

/** A remote watch: the owner streams the changes; a reader that falls `buffer` behind gets `LaggedError`. */
async function* watch(wire: Wire, opts: WatchOptions, buffer: number): AsyncGenerator<Change, void, undefined> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('watch options must be an object')
  const { signal, ...rest } = opts
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal')
  if (signal?.aborted) return
  const queue: Change[] = []
  let done = false
  let failure: unknown
  let wake: (() => void) | undefined
  let lastVersion = 0
  let lagged = false
  const id = wire.nextId
  const ended = wire
    .request('watch', [rest], 0, (change) => {
      if (done) return
      if (queue.length >= buffer) {
        done = true
        lagged = true
        wire.request('unwatch', [id], 0).catch(() => {})
      } else {
        queue.push(change as Change)
      }
      wake?.()
    })
    .then(
      () => {
        done = true
        wake?.()
      },
      (e: unknown) => {
        if (failure === undefined) failure = e
        done = true
        wake?.()
      },
    )
  const onAbort = (): void => {
    done = true
    wake?.()
  }
  signal?.addEventListener('abort', onAbort)
  try {
    for (;;) {
      const change = queue.shift()
      if (change !== undefined) {
        lastVersion = change.version
        yield change
        continue
      }
      if (done) break
      await new Promise<void>((resolve) => {
        wake = resolve
      })
      wake = undefined
    }
    if (lagged) throw new LaggedError(`this watcher fell more than ${buffer} changes behind`, { lastVersion })
    if (failure !== undefined && !signal?.aborted) throw failure
  } finally {
    signal?.removeEventListener('abort', onAbort)
    if (wire.open) wire.request('unwatch', [id], 0).catch(() => {})
    void ended
  }
}
