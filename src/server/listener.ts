/**
 * The listener of server mode: accepts connections on a Unix socket and/or
 * TCP (optionally TLS), checks each client's token, cuts its bytes into
 * frames and answers its requests through a {@link Session}. It runs on the
 * thread that serves (a worker thread of the owner for a database with a
 * directory).
 * @internal
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { chmodSync, existsSync, lstatSync, mkdtempSync, renameSync, rmdirSync, unlinkSync } from 'node:fs'
import net from 'node:net'
import { dirname, join, resolve as resolvePath } from 'node:path'
import tls from 'node:tls'
import type { Database } from '../database.js'
import { AlreadyExistsError, InMemError, InvalidArgumentError, LimitError, translate } from '../errors.js'
import { nativeHandles } from '../internal.js'
import { type NativeDatabase, NativeServer, NativeWire } from '../native.js'
import { Session, opIndex, type WatchSink } from './dispatch.js'
import { DEFAULT_MAX_FRAME_BYTES, ERR, ITEM, OK, PROTOCOL_VERSION, type Where, frame, toWire, unpack } from './protocol.js'
import type { Counters, ServerStats } from './stats.js'

/** Limits of a server; every one has a safe default. */
export interface ServeLimits {
  /** Connections open at once; one more is refused with a `LimitError`. Default 1024. */
  maxConnections?: number
  /** Requests of one connection waiting for an answer (commits waiting for their fsync, checkpoints); past it the server stops reading that connection until some are answered. Default 1024. */
  maxInFlight?: number
  /** Largest frame, in bytes; a larger one closes the connection. Default 64 MiB. */
  maxFrameBytes?: number
  /** A connection with nothing in flight and no transaction, view or watch open is closed after this many ms without a frame. Default 300,000. */
  idleMs?: number
  /** A frame begun must be finished within this many ms, else the connection is closed (a slow or stuck client). Default 30,000. */
  frameTimeoutMs?: number
  /** The first frame (the handshake with the token) must arrive within this many ms. Default 10,000. */
  handshakeMs?: number
  /** A remote transaction open longer than this is rolled back (its snapshot is not pinned forever). Default 60,000. */
  txLeaseMs?: number
}

/** TLS for the TCP listener: the server's certificate chain and key, PEM. */
export interface ServeTls {
  /** The certificate (chain), PEM. */
  cert: string | Buffer
  /** Its private key, PEM. */
  key: string | Buffer
}

/** Options of `db.serve`. */
export interface ServeOptions {
  /**
   * The Unix socket's path. Default: `in-mem.sock` in the data directory
   * (a memory-only database has none: give a path, or `listen`). `false`: no
   * socket. It is created with mode 0600: only this user can connect.
   */
  socket?: string | false
  /** `host:port` to listen on TCP too (`127.0.0.1:0` picks a free port). Requires `token`. */
  listen?: string
  /** The secret every client must present, on every listener (the socket too, when given). Required with `listen`; optional on the socket alone (whose file mode already limits it to this user). */
  token?: string
  /** Serve TLS on the TCP listener. */
  tls?: ServeTls
  /** Connection, frame and time limits. */
  limits?: ServeLimits
}

/**
 * Strict-mode acknowledgement of the serving thread's commits, which do not
 * wait for their own fsync (`deferDurabilityOnThisThread`): the answers to
 * the requests read together are sent once one fsync covers them all.
 * @internal
 */
export interface GroupCommit {
  /** The newest commit version. */
  version(): number
  /** Resolves once `version` is durable. */
  wait(version: number): Promise<void>
}

/** {@link ServeLimits} with every default filled in. @internal */
export type Limits = Required<ServeLimits>

const DEFAULT_LIMITS: Limits = {
  maxConnections: 1024,
  maxInFlight: 1024,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  idleMs: 300_000,
  frameTimeoutMs: 30_000,
  handshakeMs: 10_000,
  txLeaseMs: 60_000,
}

/** Longest Unix socket path (sun_path holds 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107

/** Checks serve options and fills in the defaults. @internal */
export function checkServeOptions(opts: ServeOptions, dir: string | null): { socket: string | null; listen: { host: string; port: number } | null; token: string | null; tls: ServeTls | null; limits: Limits } {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('serve options must be an object')
  for (const k of Object.keys(opts)) {
    if (!['socket', 'listen', 'token', 'tls', 'limits'].includes(k)) throw new InvalidArgumentError(`unknown serve option '${k}'`)
  }
  const { listen, token, tls: tlsOpts, limits = {} } = opts
  let socket: string | null
  if (opts.socket === false) socket = null
  // Absolute, so that the URL works from any working directory.
  else if (typeof opts.socket === 'string') socket = resolvePath(opts.socket)
  else if (opts.socket !== undefined) throw new InvalidArgumentError('socket must be a path or false')
  else if (dir !== null) socket = join(dir, 'in-mem.sock')
  else if (listen !== undefined) socket = null
  else throw new InvalidArgumentError('a memory-only database has no directory for the default socket: pass { socket: path } or { listen }')
  if (socket !== null && Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new InvalidArgumentError(`the socket path is ${Buffer.byteLength(socket)} bytes, over the ${MAX_SOCKET_PATH} a Unix socket allows: pass a shorter { socket: path }`, { socket })
  }
  if (token !== undefined && (typeof token !== 'string' || token.length === 0)) throw new InvalidArgumentError('token must be a non-empty string')
  let where: { host: string; port: number } | null = null
  if (listen !== undefined) {
    if (typeof listen !== 'string') throw new InvalidArgumentError("listen must be 'host:port'")
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen)
    if (m === null || Number(m[3]) > 65535) throw new InvalidArgumentError(`listen must be 'host:port', not '${listen}'`)
    where = { host: m[1] ?? m[2], port: Number(m[3]) }
    if (token === undefined) throw new InvalidArgumentError('a TCP listener needs a token: pass { token } (for example 32 random bytes, hex)')
  }
  if (socket === null && where === null) throw new InvalidArgumentError('nothing to serve on: both socket and listen are off')
  if (tlsOpts !== undefined) {
    if (where === null) throw new InvalidArgumentError('tls needs a TCP listener (listen)')
    if (typeof tlsOpts !== 'object' || tlsOpts === null || tlsOpts.cert === undefined || tlsOpts.key === undefined) {
      throw new InvalidArgumentError('tls needs { cert, key } (PEM)')
    }
  }
  if (typeof limits !== 'object' || limits === null) throw new InvalidArgumentError('limits must be an object')
  const full: Limits = { ...DEFAULT_LIMITS }
  for (const [k, v] of Object.entries(limits)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, k)) throw new InvalidArgumentError(`unknown limit '${k}'`)
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`limit ${k} must be a positive integer`)
    full[k as keyof Limits] = v
  }
  return { socket, listen: where, token: token ?? null, tls: tlsOpts ?? null, limits: full }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/** A socket's buffered output past which the server stops reading that connection. */
const HIGH_WATER = 8 * 1024 * 1024

/** Says there is no answer to send now (a watch answers with its items and its end). */
const NO_REPLY = Symbol('no reply')

/** The latency table's index of each operation the native side answers. */
const HOT_OPS = NativeWire.hotOps().map(opIndex)

/** An answer waiting for group commit: one request's, or the native side's answers to several. */
interface Held {
  ids: number | number[]
  out: Buffer
}

/**
 * What a connection does with the frames the native side left to
 * JavaScript: it runs each through its {@link Session} (the embedded
 * facades), answers, holds answers for group commit in strict mode, streams
 * watches, and stops reading while too much waits. How bytes come and go
 * is the transport's: {@link SocketConnection} (a Node socket: TLS) or
 * {@link NativeConnection} (a connection of the native listener).
 */
abstract class Connection {
  protected readonly session: Session
  protected inFlight = 0
  protected closed = false
  /** While frames are handled under group commit: their answers, sent once durable. */
  #held: Held[] | null = null

  constructor(
    db: Database,
    protected readonly group: GroupCommit | null,
    protected readonly limits: Limits,
    protected readonly counters: Counters,
    stats: () => ServerStats,
  ) {
    this.session = new Session(db, { txLeaseMs: limits.txLeaseMs, server: stats })
  }

  /** Writes answer bytes to the client. */
  protected abstract write(out: Buffer): void
  /** Whether the client has more than the high-water mark of answers unsent. */
  protected abstract get backlogged(): boolean
  /** Resolves once the unsent answers drained (or the connection closed). */
  protected abstract drained(): Promise<void>
  /** Stops or resumes reading the client. */
  protected abstract setReading(on: boolean): void
  /** Closes the transport (after what was written is sent). */
  protected abstract shutdown(): void
  /** Groups the writes made until `uncork()` into one. */
  protected abstract cork(): void
  protected abstract uncork(): void

  /**
   * Handles frames read together: `answers` are the native side's answers
   * to the hot ones among them (for request ids `ids`), `bodies` the
   * others'. Their answers leave in one write; in strict mode once one
   * fsync covers every commit they made (the native side's commits
   * included: this thread's commits do not wait for their own).
   */
  protected batch(ids: number[], answers: Buffer | null, bodies: Buffer | null, ends: ArrayLike<number>, grouped: boolean, done?: () => void): void {
    const held = this.holding
    if (bodies !== null && ends.length > 0) this.#queue.push({ bodies, ends, next: 0, start: 0, done })
    else done?.()
    if (held) {
      // Earlier frames wait for the client to take its answers. (The native
      // side answers nothing while frames wait here, so `answers` is null.)
      if (answers !== null) this.#out(ids, answers)
      return
    }
    this.#pump(grouped, ids, answers)
  }

  /**
   * Frames taken in and not yet handled, in order: they wait while the
   * client has more than the high-water mark of answers unsent (a read of
   * pipelined requests for large values could otherwise queue gigabytes).
   * `done` is called once an entry's last frame is handled.
   */
  readonly #queue: { bodies: Buffer; ends: ArrayLike<number>; next: number; start: number; done?: () => void }[] = []
  #waiting = false

  /** Whether frames wait here: the native side must hand on, not answer, what comes after them. */
  protected get holding(): boolean {
    return this.#waiting || this.#queue.length > 0
  }

  /**
   * Handles queued frames until the queue is empty or the client has more
   * than the high-water mark of answers unsent; then waits for it to take
   * some. One group commit (strict mode) covers each run.
   */
  #pump(grouped: boolean, ids: number[] = [], answers: Buffer | null = null): void {
    const group = grouped ? this.group : null
    const before = group?.version() ?? 0
    if (group !== null) this.#held = []
    this.cork()
    if (answers !== null) this.#out(ids, answers)
    let stopped = false
    while (this.#queue.length > 0 && !this.closed) {
      const q = this.#queue[0]
      if (q.next === q.ends.length) {
        this.#queue.shift()
        q.done?.()
        continue
      }
      if (this.backlogged) {
        stopped = true
        break
      }
      const end = q.ends[q.next++]
      this.frame(q.bodies.subarray(q.start, end))
      q.start = end
    }
    this.uncork()
    if (group !== null) this.#release(group, before)
    if (stopped && !this.closed) {
      this.#waiting = true
      void this.drained().then(() => {
        this.#waiting = false
        if (!this.closed) this.#pump(grouped)
      })
    }
  }

  /** One frame body: a request (the handshake is the transport's). */
  protected frame(body: Buffer): void {
    let msg: unknown
    try {
      msg = unpack(body)
    } catch {
      this.drop()
      return
    }
    this.request(msg)
  }

  protected request(msg: unknown): void {
    if (!Array.isArray(msg) || msg.length !== 4 || typeof msg[0] !== 'number' || typeof msg[1] !== 'string' || !Array.isArray(msg[2]) || !isWhere(msg[3])) {
      this.drop()
      return
    }
    const [id, op, args, where] = msg as [number, string, unknown[], Where]
    const started = performance.now()
    const index = opIndex(op)
    let result: unknown
    try {
      result = this.#call(id, op, args, where)
    } catch (e) {
      this.#answer(id, index, started, ERR, toWire(e))
      return
    }
    if (result === NO_REPLY) return
    if (result instanceof Promise) {
      this.inFlight++
      this.flowControl()
      result.then(
        (v: unknown) => this.#answer(id, index, started, OK, v),
        (e: unknown) => this.#answer(id, index, started, ERR, toWire(e)),
      ).finally(() => {
        this.inFlight--
        this.flowControl()
      })
      return
    }
    this.#answer(id, index, started, OK, result)
  }

  #call(id: number, op: string, args: unknown[], where: Where): unknown {
    if (op === 'watch' && where === 0) {
      this.session.watch(id, (args[0] ?? {}) as object, this.#sink(id))
      return NO_REPLY
    }
    return this.session.call(op, args, where)
  }

  #sink(id: number): WatchSink {
    return {
      item: (change) => {
        this.send([id, ITEM, change])
        if (!this.backlogged || this.closed) return
        return this.drained()
      },
      end: (error) => {
        if (error === undefined) this.send([id, OK, null])
        else this.send([id, ERR, toWire(error)])
      },
    }
  }

  /** Sends the held answers: at once if nothing was committed, else once it is durable. */
  #release(group: GroupCommit, before: number): void {
    const held = this.#held ?? []
    this.#held = null
    if (held.length === 0) return
    const after = group.version()
    if (after === before) {
      this.#flush(held.map((h) => h.out))
      return
    }
    this.inFlight++
    group.wait(after).then(
      () => this.#flush(held.map((h) => h.out)),
      (e: unknown) => {
        // Not durable: no answer may say it was. Each held request fails.
        this.#flush(held.flatMap((h) => (typeof h.ids === 'number' ? [h.ids] : h.ids).map((id) => frame([id, ERR, toWire(e)]))))
      },
    ).finally(() => {
      this.inFlight--
      this.flowControl()
    })
  }

  #flush(frames: Buffer[]): void {
    if (this.closed) return
    this.cork()
    for (const f of frames) this.write(f)
    this.uncork()
  }

  #answer(id: number, op: number, started: number, status: number, payload: unknown): void {
    if (this.closed) return
    this.counters.answered(op, performance.now() - started, status === ERR)
    let out: Buffer
    try {
      out = frame([id, status, payload])
    } catch (e) {
      out = frame([id, ERR, toWire(e)])
    }
    this.#out(id, out)
  }

  /** Sends an answer (or the native side's answers), or holds it for group commit. */
  #out(ids: number | number[], out: Buffer): void {
    if (this.closed) return
    if (this.#held !== null) this.#held.push({ ids, out })
    else this.write(out)
  }

  protected send(message: unknown): void {
    if (!this.closed) this.write(frame(message))
  }

  #paused = false
  /** Stops reading a connection with too much in flight or too much unsent output, and starts again when it drains. */
  protected flowControl(): void {
    if (this.closed) return
    const full = this.inFlight >= this.limits.maxInFlight || this.backlogged
    if (full !== this.#paused) {
      this.#paused = full
      this.setReading(!full)
    }
  }

  /** Whether nothing waits for an answer and the session holds nothing open (an idle connection may be closed). */
  protected get quiet(): boolean {
    return this.inFlight === 0 && !this.session.holding
  }

  /** Closes the connection for breaking the protocol. */
  protected drop(): void {
    if (this.closed) return
    this.counters.dropped()
    this.end()
  }

  /** Ends the session (its transactions roll back) and closes the transport. */
  end(): void {
    if (this.closed) return
    this.closed = true
    this.session.close()
    this.shutdown()
  }
}

const EMPTY = Buffer.alloc(0)

/** A connection on a Node socket (the TLS listener's): its frames are cut, and hot requests answered, by a {@link NativeWire}. */
class SocketConnection extends Connection {
  readonly #socket: net.Socket
  readonly #wire: NativeWire
  #hello = false
  #frameTimer: NodeJS.Timeout | undefined
  #handshakeTimer: NodeJS.Timeout | undefined

  constructor(
    socket: net.Socket,
    db: Database,
    native: NativeDatabase,
    group: GroupCommit | null,
    limits: Limits,
    private readonly token: Buffer | null,
    counters: Counters,
    stats: () => ServerStats,
    private readonly onClose: (c: SocketConnection) => void,
  ) {
    super(db, group, limits, counters, stats)
    this.#socket = socket
    this.#wire = new NativeWire(native, limits.maxFrameBytes, counters.table, HOT_OPS)
    counters.opened()
    socket.setNoDelay(true)
    socket.setTimeout(limits.idleMs)
    socket.on('timeout', () => {
      if (this.quiet) this.drop()
    })
    this.#handshakeTimer = setTimeout(() => this.drop(), limits.handshakeMs)
    socket.on('data', (chunk: Buffer) => this.#data(chunk))
    socket.on('drain', () => this.flowControl())
    socket.on('error', () => {})
    socket.on('close', () => this.end())
  }

  #data(chunk: Buffer): void {
    this.counters.bytesIn(chunk.length)
    const grouped = this.#hello
    const batch = this.#wire.push(chunk, this.holding)
    this.batch(batch.ids, batch.answers ?? null, batch.rest ?? null, batch.restEnds, grouped)
    if (batch.tooLarge != null) {
      const max = this.limits.maxFrameBytes
      this.send([0, ERR, toWire(new LimitError(`a frame of ${batch.tooLarge} bytes is over the limit of ${max}`, { limit: max, size: batch.tooLarge }))])
      this.drop()
    }
    if (this.closed) return
    if (batch.more) {
      // Frames left unread until these answers are sent.
      const more = (): void => {
        if (!this.closed) this.#data(EMPTY)
      }
      // The socket's own buffer says when the client has taken some (a TLS
      // socket passes its bytes on at once, so its length says little).
      if (this.#socket.writableNeedDrain) this.#socket.once('drain', more)
      else setImmediate(more)
    }
    if (batch.pending > 0) {
      if (this.#frameTimer === undefined) this.#frameTimer = setTimeout(() => this.drop(), this.limits.frameTimeoutMs)
    } else if (this.#frameTimer !== undefined) {
      clearTimeout(this.#frameTimer)
      this.#frameTimer = undefined
    }
  }

  protected override request(msg: unknown): void {
    if (this.#hello) super.request(msg)
    else this.#handshake(msg)
  }

  #handshake(msg: unknown): void {
    clearTimeout(this.#handshakeTimer)
    const hello = msg as { inMem?: unknown; token?: unknown } | null
    if (typeof hello !== 'object' || hello === null || hello.inMem !== PROTOCOL_VERSION) {
      this.counters.refused()
      this.send([0, ERR, toWire(new InvalidArgumentError(`this server speaks in-mem protocol ${PROTOCOL_VERSION}; the client sent a handshake it does not know`))])
      this.end()
      return
    }
    if (this.token !== null) {
      // Both sides are hashed first, so the comparison takes the same time
      // whatever the length or the prefix the client got right.
      const given = digest(typeof hello.token === 'string' ? hello.token : '')
      if (!timingSafeEqual(given, this.token)) {
        this.counters.refused()
        this.send([0, ERR, { name: 'ConnectionError', code: 'CONNECTION', message: 'the owner refused the connection: wrong or missing token', details: {} }])
        this.end()
        return
      }
    }
    this.#hello = true
    this.#wire.ready()
    this.send({ inMem: PROTOCOL_VERSION, server: 'in-mem' })
  }

  protected write(out: Buffer): void {
    this.counters.bytesOut(out.length)
    this.#socket.write(out)
    this.flowControl()
  }

  protected get backlogged(): boolean {
    return this.#socket.writableLength > HIGH_WATER
  }

  protected drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done)
        this.#socket.off('close', done)
        resolve()
      }
      this.#socket.on('drain', done)
      this.#socket.on('close', done)
    })
  }

  protected setReading(on: boolean): void {
    if (on) this.#socket.resume()
    else this.#socket.pause()
  }

  protected cork(): void {
    this.#socket.cork()
  }

  protected uncork(): void {
    this.#socket.uncork()
  }

  protected shutdown(): void {
    clearTimeout(this.#frameTimer)
    clearTimeout(this.#handshakeTimer)
    this.counters.closed()
    this.#socket.end(() => this.#socket.destroy())
    setTimeout(() => this.#socket.destroy(), 1000).unref()
    this.onClose(this)
  }

  /** Closes the connection because the server is closing. */
  close(): void {
    this.end()
    this.#socket.destroy()
  }
}

/**
 * A connection of the native listener (`NativeServer`): the native side
 * reads it, checks its handshake, answers its hot requests and sends the
 * frames it leaves here; answers go back through {@link NativeServer.send}.
 */
class NativeConnection extends Connection {
  /** Writes made between cork() and uncork(), sent as one. */
  #corked: Buffer[] | null = null
  #backlogged = false
  #drainWaiters: (() => void)[] = []

  constructor(
    private readonly id: number,
    private readonly server: NativeServer,
    db: Database,
    group: GroupCommit | null,
    limits: Limits,
    counters: Counters,
    stats: () => ServerStats,
    private readonly onClose: (c: NativeConnection) => void,
  ) {
    super(db, group, limits, counters, stats)
  }

  /** Frames the native side left to this side. */
  frames(bodies: Buffer, ends: number[]): void {
    // The native side answers nothing of this connection until these are
    // handled (its order rule), here or, when they wait, later.
    this.batch([], null, bodies, ends, true, () => this.server.handled(this.id))
  }

  /** The native side found the connection silent for the idle time. */
  idle(): void {
    if (this.quiet) this.drop()
  }

  /** Its unsent answers drained. */
  drain(): void {
    this.#backlogged = false
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const w of waiters) w()
    this.flowControl()
  }

  protected write(out: Buffer): void {
    if (this.#corked !== null) {
      this.#corked.push(out)
      return
    }
    // Written from this thread, straight to the socket when nothing is
    // queued before it (the listener counts the bytes of its own answers).
    this.counters.bytesOut(out.length)
    if (this.server.send(this.id, out)) this.#backlogged = true
    this.flowControl()
  }

  protected cork(): void {
    this.#corked ??= []
  }

  protected uncork(): void {
    const queued = this.#corked
    this.#corked = null
    if (queued === null || queued.length === 0) return
    this.write(queued.length === 1 ? queued[0] : Buffer.concat(queued))
  }

  protected get backlogged(): boolean {
    return this.#backlogged
  }

  protected drained(): Promise<void> {
    return new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
  }

  protected setReading(on: boolean): void {
    this.server.pause(this.id, !on)
  }

  protected shutdown(): void {
    this.server.closeConnection(this.id)
    this.drain()
    this.onClose(this)
  }

  /** The native side closed it (the client went, or a limit): ends the session. */
  gone(): void {
    if (this.closed) return
    this.closed = true
    this.session.close()
    this.drain()
    this.onClose(this)
  }
}

function isWhere(w: unknown): w is Where {
  return w === 0 || (Array.isArray(w) && w.length === 2 && (w[0] === 1 || w[0] === 2 || w[0] === 3))
}

/** A running listener: its servers and connections. @internal */
export class Listener {
  /** The native listener: the Unix socket and plain TCP. */
  #native: NativeServer | null = null
  readonly #nativeConnections = new Map<number, NativeConnection>()
  /** The TLS listener (Node's), and its connections. */
  readonly #servers: net.Server[] = []
  readonly #connections = new Set<SocketConnection>()
  #socketPath: string | null = null
  readonly urls: string[] = []

  private constructor(
    private readonly db: Database,
    private readonly native: NativeDatabase,
    private readonly group: GroupCommit | null,
    private readonly limits: Limits,
    private readonly token: string | null,
    private readonly counters: Counters,
  ) {}

  /** Starts listening as `opts` (checked by {@link checkServeOptions}) says. */
  static async start(db: Database, opts: ReturnType<typeof checkServeOptions>, counters: Counters, ownsSocketDir: boolean, group: GroupCommit | null = null): Promise<Listener> {
    const native = nativeHandles.get(db)
    if (native === undefined) throw new InvalidArgumentError('this database has no native handle to serve')
    const l = new Listener(db, native, group, opts.limits, opts.token, counters)
    try {
      const tcp = opts.listen !== null && opts.tls === null ? opts.listen : null
      if (opts.socket !== null || tcp !== null) await l.#listenNative(opts.socket, tcp, ownsSocketDir)
      if (opts.listen !== null && opts.tls !== null) await l.#listenTls(opts.listen.host, opts.listen.port, opts.tls)
    } catch (e) {
      await l.close()
      throw e
    }
    return l
  }

  stats(): ServerStats {
    return this.counters.snapshot(this.urls)
  }

  /** The Unix socket and plain TCP, served by the native listener. */
  async #listenNative(path: string | null, tcp: { host: string; port: number } | null, owned: boolean): Promise<void> {
    let tmp: string | null = null
    let inner: string | null = null
    if (path !== null) {
      if (existsSync(path)) {
        // A socket left by an owner that died. In the data directory, whose
        // lock this process holds, it cannot be live; elsewhere, only one
        // nobody answers on is replaced.
        if (!lstatSync(path).isSocket()) throw new AlreadyExistsError(`${path} exists and is not a socket`, { socket: path })
        if (!owned && (await answers(path))) throw new AlreadyExistsError(`a server is already listening on ${path}`, { socket: path })
        unlinkSync(path)
      }
      // Bound inside a fresh directory only this user can enter, made 0600,
      // then moved into place: no moment when another user could connect.
      try {
        tmp = mkdtempSync(join(dirname(path), '.in-mem-sock-'))
      } catch (e) {
        throw new InvalidArgumentError(`cannot make the socket ${path}: ${(e as Error).message}`, { socket: path })
      }
      inner = join(tmp, 's')
    }
    const l = this.limits
    try {
      this.#native = new NativeServer(
        this.native,
        {
          socket: inner ?? undefined,
          host: tcp?.host,
          port: tcp?.port,
          token: this.token ?? undefined,
          maxConnections: l.maxConnections,
          maxFrameBytes: l.maxFrameBytes,
          handshakeMs: l.handshakeMs,
          frameTimeoutMs: l.frameTimeoutMs,
          idleMs: l.idleMs,
          // In strict mode a write's answer waits for the fsync that covers
          // it, which this side arranges (group commit).
          hotWrites: this.group === null,
        },
        this.counters.nativeTable,
        HOT_OPS,
        (kind, conn, bodies, ends) => this.#event(kind, conn, bodies ?? null, ends ?? null),
      )
      if (path !== null && inner !== null) {
        chmodSync(inner, 0o600)
        renameSync(inner, path)
        this.#socketPath = path
        this.urls.push(`unix:${path}`)
      }
    } catch (e) {
      throw e instanceof InMemError ? e : translate(e)
    } finally {
      if (tmp !== null) {
        try {
          if (inner !== null && existsSync(inner)) unlinkSync(inner)
          rmdirSync(tmp)
        } catch {
          // already empty and gone
        }
      }
    }
    if (tcp !== null) {
      const bound = this.#native.tcpAddress ?? `${tcp.host}:${tcp.port}`
      this.urls.push(`tcp://${bound}`)
    }
  }

  /** What the native listener tells this thread: frames, a close, idleness, drained output. */
  #event(kind: number, id: number, bodies: Buffer | null, ends: number[] | null): void {
    const server = this.#native
    if (server === null) return
    let c = this.#nativeConnections.get(id)
    if (kind === 1) {
      c?.gone()
      return
    }
    if (c === undefined) {
      if (kind === 2) {
        // Idle, and it never sent anything this side handles.
        server.closeConnection(id)
        return
      }
      if (kind !== 0) return
      c = new NativeConnection(id, server, this.db, this.group, this.limits, this.counters, () => this.stats(), (gone) => this.#nativeConnections.delete(id) && gone)
      this.#nativeConnections.set(id, c)
    }
    if (kind === 0 && bodies !== null && ends !== null) c.frames(bodies, ends)
    else if (kind === 2) c.idle()
    else if (kind === 3) c.drain()
  }

  #accept = (socket: net.Socket): void => {
    if (this.#connections.size + this.#nativeConnections.size >= this.limits.maxConnections) {
      this.counters.refused()
      socket.on('error', () => {})
      socket.end(frame([0, ERR, toWire(new LimitError(`the owner serves at most ${this.limits.maxConnections} connections`, { limit: this.limits.maxConnections }))]))
      setTimeout(() => socket.destroy(), 1000).unref()
      return
    }
    const token = this.token === null ? null : digest(this.token)
    const c = new SocketConnection(socket, this.db, this.native, this.group, this.limits, token, this.counters, () => this.stats(), (gone) => this.#connections.delete(gone))
    this.#connections.add(c)
  }

  async #listenTls(host: string, port: number, tlsOpts: ServeTls): Promise<void> {
    const secure = tls.createServer({ cert: tlsOpts.cert, key: tlsOpts.key, minVersion: 'TLSv1.2' }, this.#accept)
    secure.on('tlsClientError', () => this.counters.refused())
    await listen(secure, { host, port })
    this.#servers.push(secure)
    const addr = secure.address() as net.AddressInfo
    const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    this.urls.push(`tls://${shown}:${addr.port}`)
  }

  /** Stops listening and closes every connection (their transactions roll back). */
  async close(): Promise<void> {
    const closing = this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
    for (const c of this.#connections) c.close()
    this.#connections.clear()
    // Joins the native listener's thread: every connection of it is closed.
    this.#native?.close()
    for (const c of this.#nativeConnections.values()) c.gone()
    this.#nativeConnections.clear()
    this.#native = null
    await Promise.all(closing)
    this.#servers.length = 0
    if (this.#socketPath !== null) {
      try {
        unlinkSync(this.#socketPath)
      } catch {
        // gone already
      }
      this.#socketPath = null
    }
  }
}

function listen(server: net.Server, where: string | net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const done = (): void => {
      server.off('error', reject)
      resolve()
    }
    if (typeof where === 'string') server.listen(where, done)
    else server.listen(where, done)
  })
}

/** Whether something accepts connections on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
