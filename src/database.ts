/**
 * `Database`: opening, transactions, run helpers and operations.
 * @module
 */
import { AlreadyExistsError, ClosedError, ConflictError, InvalidArgumentError, answered, translate } from './errors.js'
import { Kv } from './kv.js'
import { runBytes } from './keys.js'
import { NativeDatabase, type NativeTransaction, TX } from './native.js'
import { type BeginOptions, type RunId, Runs } from './runs.js'
import { Events } from './events.js'
import { type At, type RawDiff, type ReplayOptions, type RunDiff, type RunView, assembleDiff, resolveAt } from './history.js'
import { Json } from './json.js'
import { type Change, type WatchOptions, checkWatchOptions, watchChanges } from './watch.js'
import { Machines } from './machines.js'
import { DbOps } from './ops.js'
import { RunScope, TxScope } from './scope.js'
import { State } from './state.js'
import { Traces } from './traces.js'
import { Vectors } from './vectors.js'
import { DbTarget } from './targets.js'
import { DurableWaiter } from './durable.js'
import type { Storable, Value } from './codec.js'
import { checkOptions } from './options.js'
import { nativeHandles } from './internal.js'
import { TxLease } from './txlease.js'
import { asyncTxContext } from './txcontext.js'
import { resolve as resolvePath } from 'node:path'
import { type Server, serve } from './server/owner.js'
import type { ServeOptions } from './server/listener.js'
import type { ServerStats } from './server/stats.js'
import { type ConnectOptions, type RemoteDatabase, connect } from './server/client.js'

/** How much a commit survives a crash (see docs/durability.md). */
export type Durability = 'memory' | 'buffered' | 'strict'

/** Options of {@link Database.open}. */
export interface OpenOptions {
  /**
   * `memory` (the default without a path): no files. `buffered` (the default
   * with a path): a write returns once its WAL record is handed to the OS
   * (not fsynced), so the death of the process — an uncaught exception,
   * `process.exit()`, SIGKILL — loses nothing acknowledged; an OS crash or
   * power loss loses at most `flushIntervalMs` or `maxPendingWrites` of
   * writes. `strict`: a write returns once fsynced; nothing acknowledged is
   * lost.
   */
  durability?: Durability
  /** Buffered mode: how often the WAL is fsynced. Default 100. */
  flushIntervalMs?: number
  /** Buffered mode: commits written since the last fsync that start the next one early. Default 1000. */
  maxPendingWrites?: number
  /** WAL segment size in bytes. Default 64 MiB. */
  segmentBytes?: number
  /** How often (ms) the maintenance thread runs: it retires expired TTL entries from the expiry index (an expired key is already invisible to live reads, and stays in its run's history for replay), drops deleted runs' data and takes automatic checkpoints. Default 1000. */
  purgeIntervalMs?: number
  /**
   * A checkpoint is taken in the background once the WAL written since the
   * newest checkpoint is larger than this many bytes and than that
   * checkpoint (so a large store is not rewritten for every few MiB of
   * log), or, with `history: 'all'` (the default), once the older versions
   * waiting in memory to be moved to history files pass a quarter of it and
   * the checkpoint's size; 0: never automatically. Default 64 MiB.
   */
  checkpointBytes?: number
  /** Whether closing the last handle takes a checkpoint when anything was committed since the newest one. Default true. */
  checkpointOnClose?: boolean
  /** Commits the watch feed keeps for a slow `db.watch` reader before it gets `LaggedError`. Default 10,000. */
  watchBuffer?: number
  /**
   * Open a damaged directory instead of failing with `CorruptionError`: the
   * damaged bytes (and everything after them in the WAL) are copied to
   * `damaged/<time>/` and cut away, and `stats().recovery.repairs` says what
   * was dropped. See docs/durability.md. Default false.
   */
  repair?: boolean
  /**
   * Recover and read without changing any file but `LOCK` (the CLI's reading
   * commands open this way): a torn tail is reported in `stats().recovery`
   * and left on disk, no WAL is opened, and every write or checkpoint is an
   * `InvalidArgumentError`. The directory must exist. Default false.
   */
  readOnly?: boolean
  /**
   * How much history to keep. `'all'` (the default) keeps every version of
   * every key, so replay, fork and diff reach any point of a run; in a
   * database with a directory, each checkpoint moves the versions older
   * than each key's newest to history files (`history/*.hist`), read back
   * transparently, so memory holds only what was written since the last
   * checkpoint (docs/format.md, "History files"). `{ keep: N }`
   * keeps the newest `N` versions of each key (and whatever an open
   * transaction or replay view is reading, and what a fork reads of its
   * parent), so an overwrite-heavy run stays bounded by its live data, in
   * memory and in checkpoints: a run's history is then whole only from its
   * *horizon* on (`db.runs.horizon(run)`); replay, fork and diff at an older
   * version fail with `NotFoundError`, and the run log starts at the
   * horizon. A key holds at most `N + 1` versions: the one its newest write
   * replaced stays until the key is written again (readers could still see
   * it when it was replaced); a fork keeps the version of each parent key it
   * reads while it exists. Events are never overwritten, so every event
   * stays, and the log's head keeps a small version per event, so the log
   * replays to any event. A directory remembers that its history was cut
   * (the file `HISTORY`): every later open, with or without the option,
   * refuses points before the horizon, which after a restart is
   * conservative (a checkpoint does not record what was cut, so a key
   * holding `N` versions counts as cut before its oldest).
   */
  history?: 'all' | HistoryKeep
  /**
   * Cold runs: a run that ended (completed, failed, cancelled or archived)
   * at least this many ms ago, and was not read (or loaded back) in as long
   * (reads are timed to the maintenance round, `purgeIntervalMs`), leaves
   * memory at the next checkpoint — the maintenance round makes one when
   * runs are due, in an idle database too (writing only their cold file
   * and the manifest when nothing was committed since the newest
   * checkpoint): its data goes to a
   * cold file (`cold/*.cold`, docs/format.md "Cold files") and the first read
   * that touches it (any primitive, the run log, replay, fork, diff, a
   * fork's read of its parent) loads it back whole, transparently;
   * `stats().memory.cold` counts them. `Infinity`: runs stay in memory. Only
   * a database with a directory has cold runs (with `history: { keep }`
   * too: the cold file then holds every version memory kept); a memory
   * database ignores the option. Default 600,000 (ten
   * minutes).
   */
  coldAfterMs?: number
}

/** `history: { keep }` of {@link OpenOptions.history}. */
export interface HistoryKeep {
  /** Versions kept per key (at least 1). */
  keep: number
}

const OPEN_OPTIONS = [
  'durability',
  'flushIntervalMs',
  'maxPendingWrites',
  'segmentBytes',
  'purgeIntervalMs',
  'checkpointBytes',
  'checkpointOnClose',
  'watchBuffer',
  'repair',
  'readOnly',
  'history',
  'coldAfterMs',
] as const satisfies readonly (keyof OpenOptions)[]

/** `coldAfterMs` as the native side takes it (-1: never). */
function coldAfter(ms: number | undefined): number | undefined {
  if (ms === undefined) return undefined
  if (ms === Infinity) return -1
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0) {
    throw new InvalidArgumentError(`coldAfterMs must be a non-negative integer or Infinity (never), not ${String(ms)}`)
  }
  return ms
}

/** The versions per key `history` keeps, or `undefined` for all. */
function historyKeep(history: OpenOptions['history']): number | undefined {
  if (history === undefined || history === 'all') return undefined
  if (typeof history !== 'object' || history === null || Array.isArray(history)) {
    throw new InvalidArgumentError(`history must be 'all' or { keep: N }, not ${JSON.stringify(history)}`)
  }
  checkOptions(history, ['keep'], 'history')
  const { keep } = history
  if (typeof keep !== 'number' || !Number.isInteger(keep) || keep < 1) {
    throw new InvalidArgumentError(`history.keep must be an integer of at least 1 (the versions kept per key), not ${String(keep)}`)
  }
  return keep
}

/** Progress of a checkpoint, as {@link CheckpointOptions.onProgress} sees it. */
export interface CheckpointProgress {
  /** Whether a checkpoint is being written. */
  running: boolean
  /** Entries written so far. */
  entriesWritten: number
  /** Keys in memory when it started (tombstones included, so an upper bound). */
  entriesTotal: number
}

/** Options of {@link Database.checkpoint}. */
export interface CheckpointOptions {
  /** Called every `progressIntervalMs` while the checkpoint runs, and once at the end. */
  onProgress?: (progress: CheckpointProgress) => void
  /** How often `onProgress` is called. Default 100. */
  progressIntervalMs?: number
}

/** What {@link Database.checkpoint} did. */
export interface CheckpointReport {
  /** The commit version the image holds. */
  version: number
  /** Keys written. */
  entries: number
  /** Size of the checkpoint file. */
  bytes: number
  /** How long it took. */
  durationMs: number
  /** WAL segments deleted because a checkpoint covers them. */
  removedSegments: number
  /** The newest checkpoint was already at this version, so nothing was written. */
  unchanged: boolean
}

/** Options of {@link Database.transaction}. */
export interface TransactionOptions {
  /**
   * How many times to re-run the closure after a `ConflictError`. Default 3
   * for `transaction`, 10 for `transactionAsync` (an async closure holds its
   * snapshot across its awaits, so it meets more conflicts).
   * `transactionAsync` waits a random, growing delay before each re-run
   * (jittered exponential backoff, 1 ms doubling up to 100 ms), so writers
   * that collide on one key spread out instead of colliding again in
   * lockstep.
   */
  retries?: number
}

/** A closure's result that is not a promise: `transaction` is for synchronous closures. */
export type NotPromise<T> = T extends PromiseLike<unknown> ? never : T

const TRANSACTION_OPTIONS = ['retries'] as const satisfies readonly (keyof TransactionOptions)[]

/** The delay before re-run `attempt` (0-based) of a conflicting `transactionAsync`. */
function backoffMs(attempt: number): number {
  return Math.random() * Math.min(100, 2 ** attempt)
}

/** What {@link Database.stats} reports. */
export interface Stats {
  /** The newest visible commit version. */
  version: number
  /** The durability mode the database was opened with. */
  durability: Durability
  /** The data directory, or `null` for a memory-only database. */
  path: string | null
  /** Keys held in memory, across all runs and primitives. */
  keys: number
  /** Runs known to the database, whatever their status. */
  runs: number
  /** Snapshots currently held open (by transactions and scans in progress). */
  activeSnapshots: number
  /** The write-ahead log's counters since open; `null` for a memory-only database. */
  wal: {
    /** WAL segment files, including the one being written. */
    segments: number
    /** Bytes appended to the log by this process. */
    bytesWritten: number
    /** fsync calls made by this process. */
    fsyncs: number
    /** The newest commit version known to be on disk. */
    durableVersion: number
    /** Commits written to the OS but not yet fsynced (buffered mode). */
    pendingRecords: number
  } | null
  /**
   * The background maintenance thread (TTL purge, dropping deleted runs,
   * automatic checkpoints). A panic in one of its rounds is caught, counted
   * here, and the next round runs as usual.
   */
  maintenance: {
    /** Rounds run since open. */
    rounds: number
    /** Expired TTL entries retired from the expiry index (the keys stay in their run's history: a replay before the expiry shows them). */
    expired: number
    /** Rounds that ended in a panic (caught). */
    panics: number
    /** The last panic's message, or `null`. */
    lastError: string | null
    /** When it happened (ms since the epoch), or `null`. */
    lastErrorAt: number | null
  }
  /**
   * What the store holds in memory: every key with its newest version, and
   * the older versions kept for transactions, replay, fork and diff.
   */
  memory: {
    /** Keys in memory (across runs and primitives; a deleted key stays until no reader needs it). */
    keys: number
    /** Bytes of those keys and their newest values. */
    liveBytes: number
    /** Older versions kept in memory. */
    historyVersions: number
    /** Their value bytes. */
    historyBytes: number
    /**
     * Of {@link keys}, those held packed: keys whose one version is not being
     * written, moved by the maintenance thread out of the store's indexes
     * into a sorted arena (about 45 bytes a key besides its bytes and value,
     * instead of ~130). Reads, scans and writes find them as before.
     */
    packedKeys: number
    /**
     * Older versions a durable database's checkpoints moved out of memory
     * (with `history: 'all'`, the default), into history files that
     * replay, fork, diff and the run log read transparently: the files,
     * the versions they hold and their bytes on disk (compressed).
     */
    historyOnDisk: {
      /** History files (at most 8: checkpoints merge them). */
      files: number
      /** Older versions they hold. */
      versions: number
      /** Their size on disk, compressed. */
      bytes: number
    }
    /** Runs whose history starts after their first commit (`history: { keep }`). */
    runsWithHorizon: number
    /** About the bytes the secondary indexes hold: each vector graph's vectors and links, and its node table (an estimate from their sizes). */
    indexBytes: number
    /** Runs out of memory in cold files ({@link OpenOptions.coldAfterMs}). */
    cold: {
      /** Runs cold now. */
      runs: number
      /** Their keys' and values' bytes in the cold files (before compression). */
      bytes: number
      /** Cold files the manifest names. */
      files: number
      /** Their size on disk (compressed). */
      fileBytes: number
      /** Runs loaded back from cold files since the database opened. */
      loads: number
    }
  }
  /** While this handle serves other processes (`db.serve()`): its connections, requests, bytes and latency by operation; else `null`. */
  server: ServerStats | null
  /** What the open replayed from the log. */
  recovery: {
    /** WAL segments read. */
    segments: number
    /** Commit records replayed. */
    records: number
    /** Bytes of valid records read. */
    bytes: number
    /** The commit version of the newest replayed record (0 if none). */
    lastVersion: number
    /** Milliseconds since the epoch of the newest replayed commit (0 if none). */
    lastCommitAt: number
    /** How long recovery took, in milliseconds. */
    durationMs: number
    /** The incomplete last record that recovery cut off, if any. */
    tornTail: {
      /** The segment file that was truncated. */
      file: string
      /** The byte offset it was truncated at. */
      offset: number
      /** How many bytes were cut off. */
      droppedBytes: number
    } | null
    /** Runs that were active when the previous process stopped. */
    orphanedRuns: RunId[]
    /** The commit version of the checkpoint recovery started from (0: none). */
    checkpointVersion: number
    /** Why the newest checkpoint could not be used, when recovery fell back to the previous one. */
    checkpointFallback: string | null
    /**
     * The indexes saved beside the checkpoint (one HNSW graph per vector
     * collection): how many were loaded, and each one that could not be
     * (why), rebuilt from its records instead.
     */
    indexes: {
      /** Saved graphs loaded. */
      loaded: number
      /** Saved graphs that were bad or unreadable, and were rebuilt: one line each, naming the collection and why. */
      rebuilt: string[]
    }
    /** What `repair: true` cut away to open, one entry per damaged place; empty when nothing was. */
    repairs: {
      /** The damaged file. */
      file: string
      /** Where in it the damage starts. */
      offset: number
      /** What was wrong. */
      reason: string
      /** Bytes removed from the data directory (all saved aside). */
      droppedBytes: number
      /** Whole files removed (all saved aside). */
      droppedFiles: string[]
      /** The directory the removed bytes were copied to. */
      savedTo: string
    }[]
  }
}

/** How many finished native transactions a handle keeps for reuse (as many as usually run at once). */
const KEPT_TRANSACTIONS = 128

function retriesOf(opts: TransactionOptions | undefined, byDefault: number): number {
  checkOptions(opts, TRANSACTION_OPTIONS, 'transaction options')
  const r = opts?.retries ?? byDefault
  if (!Number.isInteger(r) || r < 0) throw new InvalidArgumentError('retries must be a non-negative integer')
  return r
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
}

/**
 * An in-mem database. Open it once per process and share it; opening the
 * same path again (from this thread or a `worker_threads` worker) shares one
 * engine.
 *
 * ```ts
 * const db = Database.open('./agent-data', { durability: 'strict' })
 * const run = db.runs.begin({ name: 'triage' })
 * db.kv.put(run, 'plan', { steps: 3 })
 * db.transaction(run, (tx) => { tx.kv.put('a', 1); tx.kv.put('b', 2) })
 * db.close()
 * ```
 */
export class Database {
  /** KV working memory; every method names its run. */
  readonly kv: Kv<number>
  /** The run index. */
  readonly runs: Runs
  /** The EventLog of each run: append-only and hash-chained. */
  readonly events: Events
  /** StateCells: versioned values with compare-and-swap. */
  readonly state: State
  /** JSON documents with path-level conflicts. */
  readonly json: Json
  /** The TraceStore: each run's reasoning traces, as a forest. */
  readonly traces: Traces
  /** Vector collections of each run, with filtered nearest-neighbour search (SPEC §14). */
  readonly vectors: Vectors
  /** State machines: database-wide definitions, instances per run. */
  readonly machines: Machines
  readonly #native: NativeDatabase
  readonly #target: DbTarget
  readonly #watchers = new Set<number>()
  /** Finished native transactions, kept to begin the next ones on. */
  readonly #finished: NativeTransaction[] = []
  /** How many synchronous transaction closures of this handle are running (0 or 1: a nested one is refused). */
  #depth = 0
  /** Acknowledges strict `transactionAsync` commits; absent in the modes where a commit is durable once applied. */
  readonly #durable: DurableWaiter | undefined
  /** The directory (absolute) and the options this handle was opened with: a serving worker opens the same. */
  readonly #dir: string | null
  readonly #options: OpenOptions
  /** The server `serve()` started, until it is closed. */
  #server: Server | undefined

  private constructor(native: NativeDatabase, dir: string | null, options: OpenOptions) {
    this.#native = native
    this.#dir = dir
    this.#options = options
    this.#target = new DbTarget(native)
    this.#durable = (JSON.parse(native.stats()) as { durability: Durability }).durability === 'strict' ? DurableWaiter.of(native, this.#target.hot) : undefined
    nativeHandles.set(this, native)
    // Memory the engine's maintenance freed (keys moved into the packed
    // arena) goes back to the OS only when the thread that allocated it
    // collects it: this one, told after each such pass.
    native.freedListen(() => native.releaseMemory())
    const ops = new DbOps(native, this.#target.io)
    this.kv = new Kv<number>(this.#target)
    this.runs = new Runs(native, this.#target.io)
    this.events = new Events(ops)
    this.state = new State(ops, (run, fn) => this.transaction(run, (tx) => fn(tx.state) as NotPromise<ReturnType<typeof fn>>, { retries: 0 }), this.#target)
    this.json = new Json(ops, this.#target)
    this.traces = new Traces(ops)
    this.vectors = new Vectors(ops)
    this.machines = new Machines(ops)
  }

  /**
   * Opens a database. With a path: durable (`buffered` by default), in that
   * directory, recovered from its WAL. Without: memory only.
   * @throws LockedError if another process holds the directory
   * @throws CorruptionError if the WAL is damaged before its tail
   */
  static open(path?: string, options?: OpenOptions): Database
  static open(options: OpenOptions): Database
  static open(pathOrOptions?: string | OpenOptions, options?: OpenOptions): Database {
    let path: string | undefined
    let opts: OpenOptions | undefined
    if (typeof pathOrOptions === 'string') {
      path = pathOrOptions
      opts = options
    } else if (pathOrOptions === undefined || (typeof pathOrOptions === 'object' && pathOrOptions !== null)) {
      opts = pathOrOptions ?? options
    } else {
      throw new InvalidArgumentError('Database.open takes a path string and/or an options object')
    }
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) throw new InvalidArgumentError('options must be an object')
    checkOptions(opts, OPEN_OPTIONS, 'Database.open options')
    const keep = historyKeep(opts?.history)
    try {
      const native = NativeDatabase.open(path, opts === undefined ? null : { ...opts, historyKeep: keep, coldAfterMs: coldAfter(opts.coldAfterMs) })
      return new Database(native, path === undefined ? null : resolvePath(path), { ...opts })
    } catch (e) {
      throw translate(e)
    }
  }

  /** Whether {@link Database.close} has not been called. */
  get isOpen(): boolean {
    return this.#native.isOpen
  }

  /** The API bound to one run: `db.scope(run).kv.put(key, value)`. */
  scope(run: RunId): RunScope {
    runBytes(run)
    return new RunScope(this, run)
  }

  /**
   * Runs `fn` in a transaction on `run` and commits it: snapshot isolation,
   * read-your-writes, first committer wins. On a `ConflictError` the closure
   * is re-run, up to `retries` times. If `fn` throws, nothing it wrote is
   * kept. Synchronous: in strict mode it returns after the commit's fsync.
   * @returns what `fn` returned
   */
  transaction<T>(run: RunId, fn: (tx: TxScope) => NotPromise<T>, opts?: TransactionOptions): T {
    runBytes(run)
    if (typeof fn !== 'function') throw new InvalidArgumentError('transaction needs a function')
    const retries = retriesOf(opts, 3)
    this.#refuseNested('transaction')
    for (let attempt = 0; ; attempt++) {
      const lease = this.#begin()
      try {
        let result: unknown
        this.#depth++
        try {
          result = fn(new TxScope(lease, this.#target.io, run))
        } finally {
          this.#depth--
        }
        if (isThenable(result)) {
          // Its later rejection (a write to the finished transaction) is a
          // consequence of this refusal, not a second error to report.
          Promise.resolve(result).catch(() => {})
          throw new InvalidArgumentError('the transaction closure returned a promise; use transactionAsync for async work')
        }
        this.#commit(lease, true)
        return result as T
      } catch (e) {
        // Errors pass through as thrown: the closure's own are the caller's
        // (the facades already translated the engine's), and #commit
        // translated its own.
        this.#abort(lease)
        if (e instanceof ConflictError && attempt < retries) continue
        throw e
      }
    }
  }

  /**
   * A transaction started inside another's closure would commit on its own,
   * outside the outer one's atomicity, and again on each outer retry.
   */
  #refuseNested(what: string): void {
    if (this.#depth > 0 || asyncTxContext.current() === this) {
      throw new InvalidArgumentError(
        `${what} was called inside another transaction's closure; it would commit on its own, outside the outer transaction — use the closure's tx (tx.kv, tx.state, ...) instead`,
      )
    }
  }

  /**
   * Like {@link Database.transaction}, for closures that await. Resolves
   * once the commit is durable for the mode; in strict mode concurrent
   * callers share one fsync (group commit) and the event loop is never
   * blocked waiting for it.
   */
  async transactionAsync<T>(run: RunId, fn: (tx: TxScope) => T | Promise<T>, opts?: TransactionOptions): Promise<T> {
    runBytes(run)
    if (typeof fn !== 'function') throw new InvalidArgumentError('transactionAsync needs a function')
    const retries = retriesOf(opts, 10)
    this.#refuseNested('transactionAsync')
    for (let attempt = 0; ; attempt++) {
      const lease = this.#begin()
      let result: T
      let version: number
      try {
        try {
          // A closure that returned a value (not a promise) commits in this
          // tick: no await, no promise made for it.
          const out = asyncTxContext.start(this, () => fn(new TxScope(lease, this.#target.io, run)))
          result = isThenable(out) ? await out : out
        } finally {
          asyncTxContext.ended()
        }
        version = this.#commit(lease, false)
      } catch (e) {
        // As in `transaction`: errors pass through as thrown.
        this.#abort(lease)
        if (e instanceof ConflictError && attempt < retries) {
          await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)))
          continue
        }
        throw e
      }
      if (version >= 0 && this.#durable) await this.#durable.wait(version)
      return result
    }
  }

  /**
   * Begins a transaction on this handle: on a finished native transaction
   * when one is kept, else on a new one.
   */
  #begin(): TxLease {
    try {
      const kept = this.#finished.pop()
      if (kept === undefined) return new TxLease(this.#native.beginTransaction())
      TX.restart.call(kept)
      return new TxLease(kept)
    } catch (e) {
      throw translate(e)
    }
  }

  /**
   * Commits the leased transaction; with `wait`, a strict commit returns
   * after its fsync. On failure the transaction is aborted and the engine's
   * error thrown, translated (a `ConflictError` is retryable). Either way
   * the lease ends.
   * @returns the commit version, or -1 for a read-only transaction
   */
  #commit(lease: TxLease, wait: boolean): number {
    const native = lease.end()
    try {
      // A handle closed inside the closure accepts no more writes, even
      // though the transaction still holds the engine.
      if (!this.#target.hot.isOpen()) throw new ClosedError()
      // An answer of nothing is never an acknowledgement (see `answered`).
      return answered(TX.commit.call(native, wait ? 1 : 0))
    } catch (e) {
      native.abort()
      throw translate(e)
    } finally {
      this.#keep(native)
    }
  }

  /** Discards the leased transaction's writes, if its lease has not ended. */
  #abort(lease: TxLease): void {
    if (!lease.ended) {
      const native = lease.end()
      native.abort()
      this.#keep(native)
    }
  }

  /** Keeps a finished native transaction for the next {@link Database.transaction}. */
  #keep(native: NativeTransaction): void {
    if (this.#finished.length < KEPT_TRANSACTIONS) this.#finished.push(native)
  }

  /**
   * Begins a run, runs `fn` with its scope, and completes the run when `fn`
   * returns, or fails it (and rethrows) when `fn` throws.
   */
  async withRun<T, M = Value>(opts: BeginOptions<M> & { metadata?: Storable<M> }, fn: (scope: RunScope) => T | Promise<T>): Promise<T> {
    const run = this.runs.begin(opts)
    let result: T
    try {
      result = await fn(this.scope(run))
    } catch (e) {
      const info = this.runs.get(run)
      if (info?.status === 'active') this.runs.fail(run, e)
      throw e
    }
    const info = this.runs.get(run)
    if (info?.status === 'active') this.runs.complete(run)
    return result
  }

  /** Writes and fsyncs every commit made so far, whatever the mode. */
  async flush(): Promise<void> {
    try {
      await this.#native.flush()
    } catch (e) {
      throw translate(e)
    }
  }

  /**
   * Writes a checkpoint: a compressed, checksummed image of every live key at
   * the current version, written in the background while writers go on.
   * Older WAL segments are deleted once a newer checkpoint covers them (see
   * docs/durability.md). Resolves to `null` for a memory-only database.
   * `onProgress` is called while it runs and once at the end.
   */
  async checkpoint(opts: CheckpointOptions = {}): Promise<CheckpointReport | null> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('checkpoint options must be an object')
    checkOptions(opts, ['onProgress', 'progressIntervalMs'], 'checkpoint options')
    const { onProgress } = opts
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError('onProgress must be a function')
    const native = this.#native
    const poll = (): void => {
      if (onProgress === undefined || !native.isOpen) return
      const p = JSON.parse(native.checkpointProgress()) as CheckpointProgress
      onProgress(p)
    }
    const timer = onProgress === undefined ? undefined : setInterval(poll, opts.progressIntervalMs ?? 100)
    try {
      const report = await native.checkpoint()
      const parsed = report === null ? null : (JSON.parse(report) as CheckpointReport)
      if (onProgress !== undefined && parsed !== null) {
        onProgress({ running: false, entriesWritten: parsed.entries, entriesTotal: parsed.entries })
      }
      return parsed
    } catch (e) {
      throw translate(e)
    } finally {
      if (timer !== undefined) clearInterval(timer)
    }
  }

  /**
   * The run as it was at `at` (a commit version, `{ version }` or
   * `{ eventSequence }`; default: now): a read-only view that reads the
   * database's own history at that version (a fork through its parent, up to
   * the fork point). It copies nothing and starts no thread; it holds a
   * snapshot until `close()`. TTL expiry in it is judged at the time of the
   * newest KV write it shows. See `db.runs.log(run)` for the versions to
   * pick from.
   * @throws NotFoundError for an unknown run; InvalidArgumentError for an `at` past the newest commit
   */
  replay(run: RunId, opts: ReplayOptions = {}): RunView {
    runBytes(run)
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('replay options must be an object')
    checkOptions(opts, ['at'], 'replay options')
    const at = this.#resolveAt(run, opts.at)
    // A read-only transaction pinned at `at` on this engine: no copy, no
    // engine, no thread; it holds only its snapshot.
    let native: NativeTransaction
    try {
      native = this.#native.replay(run, at)
    } catch (e) {
      throw translate(e)
    }
    const version = native.snapshotVersion
    const lease = new TxLease(native)
    const scope = new TxScope(lease, this.#target.io, run)
    let closed = false
    // After view.close(), a call says the view is closed, not the database.
    const view = <F extends object>(facade: F): F =>
      new Proxy(facade, {
        get(target, prop, receiver) {
          const v: unknown = Reflect.get(target, prop, receiver)
          if (typeof v !== 'function') return v
          return (...args: unknown[]) => {
            if (closed) throw new ClosedError('this replay view is closed (view.close() was called); the database itself is open')
            return (v as (...a: unknown[]) => unknown).apply(target, args)
          }
        },
      })
    return {
      run,
      at: version,
      kv: view(scope.kv),
      events: view(scope.events),
      state: view(scope.state),
      json: view(scope.json),
      traces: view(scope.traces),
      machines: view(scope.machines),
      vectors: view(scope.vectors),
      close: () => {
        if (closed) return
        closed = true
        lease.end().abort()
      },
    }
  }

  /** The commit version a point in `run`'s history names. */
  #resolveAt(run: RunId, at: At | undefined): number | undefined {
    return resolveAt(at, (sequence) => {
      try {
        return this.#native.eventVersion(run, sequence)
      } catch (e) {
        throw translate(e)
      }
    })
  }

  /**
   * Compares two runs as they are now, by user key, per primitive: added,
   * removed and changed entries with both values; for the event logs, the
   * prefix they share and each one's tail after it. Typical use: a fork and
   * its parent.
   */
  diff(a: RunId, b: RunId): RunDiff {
    runBytes(a)
    runBytes(b)
    // One snapshot for all of it: a read transaction pins it, the native
    // diff compares the runs as of its version, and the values the diff
    // returns (traces, machine instances, event tails) are read through it.
    const lease = this.#begin()
    try {
      let raw: RawDiff
      try {
        raw = this.#native.diff(a, b, lease.tx.snapshotVersion) as RawDiff
      } catch (e) {
        throw translate(e)
      }
      const sa = new TxScope(lease, this.#target.io, a)
      const sb = new TxScope(lease, this.#target.io, b)
      const scope = (run: RunId): TxScope => (run === a ? sa : sb)
      return assembleDiff(a, b, raw, {
        trace: (run, id) => scope(run).traces.get(id),
        machine: (run, id) => scope(run).machines.get(id),
        events: (run, from) => scope(run).events.range({ from }),
        vector: (run, key) => {
          const slash = key.indexOf('/')
          if (slash < 0) return scope(run).vectors.collections().find((c) => c.name === key)
          return scope(run).vectors.get(key.slice(0, slash), key.slice(slash + 1))
        },
      })
    } finally {
      this.#abort(lease)
    }
  }

  /**
   * Committed changes as they happen, as an async iterator:
   * `for await (const change of db.watch({ run, primitives, signal }))`.
   * It starts after the newest commit. In strict mode a change is delivered
   * only once it is durable. The feed keeps the last `watchBuffer` commits
   * (an open option, default 10,000) for a slow reader; one that falls
   * further behind gets `LaggedError` with `details.lastVersion`, the last
   * version it was given. Breaking out of the loop, aborting the signal or
   * closing the database ends it.
   */
  watch(opts: WatchOptions = {}): AsyncGenerator<Change, void, undefined> {
    checkWatchOptions(opts)
    return watchChanges(this.#native, opts, this.#watchers)
  }

  /** Counters of the engine, the WAL and the last recovery. */
  stats(): Stats {
    let stats: Stats
    try {
      stats = JSON.parse(this.#native.stats()) as Stats
    } catch (e) {
      throw translate(e)
    }
    stats.server = this.#server?.stats() ?? null
    return stats
  }

  /**
   * Serves this database to other processes (SPEC §15): on a Unix socket in
   * the data directory by default (mode 0600; its URL is written to
   * `SERVER` beside `LOCK`, where the CLI finds it), and on TCP when
   * `listen` is given (a token is then required; `tls` encrypts it).
   * A database with a directory is served from a worker thread sharing its
   * engine, so serving never blocks this event loop. Clients connect with
   * {@link Database.connect}. Closing the database closes the server.
   * See docs/protocol.md and the README's "Server mode".
   * @throws InvalidArgumentError for bad options (a TCP listener without a token)
   * @throws AlreadyExistsError if this handle already serves, or another server answers on the socket path
   */
  async serve(opts: ServeOptions = {}): Promise<Server> {
    if (!this.#native.isOpen) throw new ClosedError()
    if (this.#server !== undefined) throw new AlreadyExistsError('this database is already served: close that server first')
    const server = await serve(this, this.#dir, this.#options, opts)
    const close = server.close
    const handle: Server = {
      url: server.url,
      urls: server.urls,
      stats: server.stats,
      close: async () => {
        if (this.#server === handle) this.#server = undefined
        await close()
      },
    }
    this.#server = handle
    return handle
  }

  /**
   * Connects to the process that owns a database (one that called
   * `db.serve()`, or `in-mem serve`): `unix:/path/to/in-mem.sock`,
   * `tcp://host:port` or `tls://host:port`. The remote database has the same
   * facades, each method returning a Promise, and the same errors.
   * @throws ConnectionError if the owner cannot be reached or refuses the token
   */
  static connect(url: string, opts: ConnectOptions = {}): Promise<RemoteDatabase> {
    return connect(url, opts)
  }

  /**
   * Makes this handle's writes durable and closes it. The engine (and its
   * directory lock) is released when the last handle in the process closes.
   * Later calls on this handle throw `ClosedError`; closing twice is a no-op.
   */
  close(): void {
    const server = this.#server
    this.#server = undefined
    // The serving worker holds its own handle: it closes it as it stops.
    if (server !== undefined) void server.close()
    try {
      // Open watchers end: their pending wait resolves as closed.
      if (this.#native.isOpen) for (const id of this.#watchers) this.#native.watchClose(id)
      this.#watchers.clear()
      this.#native.close()
    } catch (e) {
      const err = translate(e)
      this.#durable?.closed(err)
      throw err
    }
    // The close fsynced every commit of this handle.
    this.#durable?.closed()
  }

}
