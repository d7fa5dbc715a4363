/**
 * `InMemSaver`: a LangGraph.js checkpointer on in-mem.
 *
 * Invariants:
 * - a thread is one in-mem run (see `threads.ts` for its keys); every `put`
 *   and every `putWrites` is one in-mem transaction, so a crash leaves a
 *   checkpoint whole or absent, never half-written;
 * - a channel value is stored once per version, by the `put` whose
 *   `newVersions` names it; a checkpoint read back gets, for each channel of
 *   its `channel_versions`, the value stored for that version (none: the
 *   channel had no value, as LangGraph's empty channels);
 * - channel versions are unique per branch (see `getNextVersion`), so a
 *   stored value is never replaced by another branch's;
 * - pending writes follow the reference savers: a regular write (index ≥ 0)
 *   already stored for a task is kept, a special one (ERROR, INTERRUPT,
 *   SCHEDULED, RESUME: negative indexes) replaces the stored one; they come
 *   back in `writesSortKey` order.
 * @module
 */
import {
  BaseCheckpointSaver,
  TASKS,
  WRITES_IDX_MAP,
  compareWritesSortKeys,
  copyCheckpoint,
  maxChannelVersion,
  writesSortKey,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type PendingWrite,
  type SerializerProtocol,
} from '@langchain/langgraph-checkpoint'
import type { RunnableConfig } from '@langchain/core/runnables'
import type { Value } from '../codec.js'
import type { Database } from '../database.js'
import { InvalidArgumentError, NotFoundError } from '../errors.js'
import type { RunId } from '../runs.js'
import type { TxScope } from '../scope.js'
import {
  THREAD_TAG,
  beginThread,
  checkPart,
  checkpointKey,
  checkpointPrefix,
  findThread,
  isPlain,
  parseCheckpointKey,
  parseWriteKey,
  threadOf,
  threadTag,
  valueKey,
  writeKey,
  writesPrefix,
  type CheckpointRecord,
  type NativeValue,
  type Stored,
  type WriteRecord,
} from './threads.js'

/** Options of {@link InMemSaver}. */
export interface InMemSaverOptions {
  /** The serializer of checkpoints, metadata and values; LangGraph's `JsonPlusSerializer` by default. */
  serde?: SerializerProtocol
}

/** Options of {@link InMemSaver.forkThread}. */
export interface ForkThreadOptions {
  /** The new thread's id. */
  threadId: string
}

/** One checkpoint found by a listing, before it is decoded. */
interface Found {
  run: RunId
  threadId: string
  ns: string
  id: string
  record: CheckpointRecord
}

const PAGE = 64

/**
 * A LangGraph.js checkpointer that keeps each thread as an in-mem run:
 * `graph.compile({ checkpointer: new InMemSaver(db) })`. Durable in the
 * database's mode (`strict`: a `put` resolves once fsynced), inspectable
 * with the `in-mem` CLI (`runs list --tag langgraph`, `runs show`, `replay`,
 * `diff`).
 */
export class InMemSaver extends BaseCheckpointSaver {
  readonly #db: Database
  readonly #strict: boolean
  /** Whether plain data is stored as in-mem values: with the default serializer (a custom one, say encrypting, sees every value). */
  readonly #native: boolean
  /** Thread id → its run, as found or begun by this saver. */
  readonly #threads = new Map<string, RunId>()
  /** Calls of `put` and `putWrites` under way (awaiting something, or running). */
  #active = 0

  /** A saver on `db`; threads already in `db` are found by their run's tag. */
  constructor(db: Database, options: InMemSaverOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('InMemSaver options must be an object')
    super(options.serde)
    this.#db = db
    this.#strict = db.stats().durability === 'strict'
    this.#native = options.serde === undefined
  }

  /**
   * The version after `current`: the next integer plus a random fraction,
   * so that two branches of one thread (after `updateState` at an older
   * checkpoint) never give one channel the same version with different
   * values (LangGraph's Postgres saver adds a random suffix for the same
   * reason). Versions still compare in step order.
   */
  override getNextVersion(current: number | undefined): number {
    // A string: a version written by a saver with string versions.
    const was: unknown = current
    const n = was === undefined ? 0 : Math.floor(typeof was === 'number' ? was : parseFloat(String(was)))
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`channel version ${JSON.stringify(was)} is not a version this saver can follow`)
    return n + 1 + Math.random()
  }

  /** The database this saver writes to. */
  get db(): Database {
    return this.#db
  }

  /** The run holding a thread, or `undefined` if the thread has no checkpoint. */
  threadRun(threadId: string): RunId | undefined {
    checkPart('thread_id', threadId)
    const cached = this.#threads.get(threadId)
    if (cached !== undefined && this.#db.runs.get(cached) !== undefined) return cached
    return this.#lookUp(threadId)
  }

  /** The thread's run as found in the database now (not from the cache). */
  #lookUp(threadId: string): RunId | undefined {
    this.#threads.delete(threadId)
    const run = findThread(this.#db, threadId)
    if (run !== undefined) this.#threads.set(threadId, run)
    return run
  }

  /**
   * The thread's run for a read: from the cache without asking the engine
   * (reads are the hot path), or looked up when not cached or when `miss`
   * says the cached run answered nothing (deleted, maybe by another saver).
   */
  #readRun(threadId: string, miss = false): RunId | undefined {
    const cached = this.#threads.get(threadId)
    return cached !== undefined && !miss ? cached : this.#lookUp(threadId)
  }

  /** The thread's run for a write, begun if the thread has none yet (`begun`). */
  #runFor(threadId: string): { run: RunId; begun: boolean } {
    const cached = this.#threads.get(threadId)
    if (cached !== undefined) return { run: cached, begun: false }
    const found = findThread(this.#db, threadId)
    const run = found ?? beginThread(this.#db, threadId)
    this.#threads.set(threadId, run)
    return { run, begun: found === undefined }
  }

  /**
   * Writes in one transaction on the thread's run: durable before it
   * resolves in strict mode (fsynced on this thread when no other `put` or
   * `putWrites` of this saver is under way, else sharing an fsync with
   * theirs). A run begun for
   * it is deleted again if the write fails, so a refused first write leaves
   * nothing behind.
   */
  async #write(threadId: string, fn: (tx: TxScope) => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const { run, begun } = this.#runFor(threadId)
      try {
        if (this.#strict && this.#active > 1) {
          // Other writes of this saver are under way: this commit shares an
          // fsync with theirs (group commit), off the event loop.
          await this.#db.transactionAsync(run, fn)
        } else {
          // Alone (or not strict): the fsync on this thread, as SqliteSaver's
          // commits do, costs less than a hand-off to the WAL's syncer thread.
          this.#db.transaction(run, fn)
        }
        return
      } catch (e) {
        // (Unless another write to the new thread got in meanwhile.)
        if (begun && this.#db.kv.count(run) === 0) {
          this.#threads.delete(threadId)
          this.#db.runs.delete(run)
        }
        // The run was deleted behind this saver's cache (deleteThread from another saver).
        if (e instanceof NotFoundError && attempt === 0 && !begun) {
          this.#threads.delete(threadId)
          continue
        }
        throw e
      }
    }
  }

  /** Plain data as in-mem's own value (with the default serializer only), anything else through the serializer. */
  async #serialize(v: unknown): Promise<Stored> {
    if (this.#native && isPlain(v)) return { native: v as Value }
    const [serde, data] = await this.serde.dumpsTyped(v)
    return { serde, data }
  }

  #deserialize(s: Stored): unknown {
    return 'native' in s ? s.native : this.serde.loadsTyped(s.serde, s.data)
  }

  /**
   * Stores a checkpoint: its channel values only for the channels in
   * `newVersions`; the rest are the values stored for their versions before.
   */
  override async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<RunnableConfig> {
    this.#active++
    try {
      return await this.#put(config, checkpoint, metadata, newVersions)
    } finally {
      this.#active--
    }
  }

  async #put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<RunnableConfig> {
    const conf = config?.configurable
    if (conf === undefined || conf === null) throw new InvalidArgumentError('put needs config.configurable with a thread_id')
    const threadId = checkPart('thread_id', conf.thread_id)
    const ns = checkPart('checkpoint_ns', conf.checkpoint_ns ?? '', true)
    const parent: unknown = conf.checkpoint_id
    if (parent !== undefined && parent !== '') checkPart('checkpoint_id', parent)
    if (checkpoint === null || typeof checkpoint !== 'object') throw new InvalidArgumentError('put needs a checkpoint object')
    const id = checkPart('checkpoint.id', checkpoint.id)
    const copy = copyCheckpoint(checkpoint)
    const values = copy.channel_values
    const { channel_values: _values, ...rest } = copy
    const record: CheckpointRecord = {
      parent: typeof parent === 'string' && parent !== '' ? parent : null,
      checkpoint: await this.#serialize(rest),
      metadata: await this.#serialize(metadata),
    }
    const blobs: [string, Stored][] = []
    for (const [channel, version] of Object.entries(newVersions ?? {})) {
      checkPart('channel', channel)
      if (typeof version !== 'number' && typeof version !== 'string') throw new InvalidArgumentError(`the version of channel ${JSON.stringify(channel)} must be a number or a string`)
      if (!Object.prototype.hasOwnProperty.call(values, channel) || values[channel] === undefined) continue
      blobs.push([valueKey(ns, channel, version), await this.#serialize(values[channel])])
    }
    await this.#write(threadId, (tx) => {
      tx.kv.put(checkpointKey(ns, id), record as never)
      for (const [key, blob] of blobs) tx.kv.put(key, blob as never)
    })
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: id } }
  }

  /** Stores the writes of a task for a checkpoint, with the reference savers' semantics (see the module's invariants). */
  override async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    this.#active++
    try {
      await this.#putWrites(config, writes, taskId, taskPath)
    } finally {
      this.#active--
    }
  }

  async #putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const conf = config?.configurable
    if (conf === undefined || conf === null) throw new InvalidArgumentError('putWrites needs config.configurable with a thread_id and a checkpoint_id')
    const threadId = checkPart('thread_id', conf.thread_id)
    const ns = checkPart('checkpoint_ns', conf.checkpoint_ns ?? '', true)
    const checkpointId = checkPart('checkpoint_id', conf.checkpoint_id)
    checkPart('task_id', taskId)
    if (!Array.isArray(writes)) throw new InvalidArgumentError('putWrites needs an array of [channel, value] writes')
    const rows: [string, boolean, WriteRecord][] = []
    for (let i = 0; i < writes.length; i++) {
      const [channel, value] = writes[i]
      if (typeof channel !== 'string') throw new InvalidArgumentError(`the channel of write ${i} must be a string`)
      const idx = (WRITES_IDX_MAP as Record<string, number>)[channel] ?? i
      rows.push([writeKey(ns, checkpointId, taskId, idx), idx >= 0, { channel, taskPath: taskPath ?? '', value: await this.#serialize(value) }])
    }
    await this.#write(threadId, (tx) => {
      for (const [key, keepFirst, record] of rows) {
        if (keepFirst && tx.kv.exists(key)) continue
        tx.kv.put(key, record as never)
      }
    })
  }

  /** Deletes a thread: its run, with every checkpoint and write, in one commit. */
  override async deleteThread(threadId: string): Promise<void> {
    checkPart('thread_id', threadId)
    this.#threads.delete(threadId)
    for (const r of this.#db.runs.list({ tag: threadTag(threadId) })) {
      if (threadOf(r) === threadId) this.#db.runs.delete(r.id)
    }
  }

  /**
   * Forks a thread into a new one as an in-mem fork of its run: the new
   * thread starts with every checkpoint of the old one, shares their stored
   * values (nothing is copied), and goes its own way from there, for
   * example with `graph.updateState` at one of its checkpoints. `in-mem diff`
   * of the two runs then shows where they differ.
   * @returns the new thread's run
   * @throws NotFoundError if `threadId` has no checkpoint; AlreadyExistsError if the new thread has some
   */
  forkThread(threadId: string, options: ForkThreadOptions): RunId {
    const run = this.threadRun(threadId)
    if (run === undefined) throw new NotFoundError(`thread ${JSON.stringify(threadId)} has no checkpoint to fork`, { threadId })
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('forkThread needs { threadId }')
    const to = checkPart('threadId', options.threadId)
    if (this.threadRun(to) !== undefined) {
      throw new InvalidArgumentError(`thread ${JSON.stringify(to)} exists already`, { threadId: to })
    }
    const fork = this.#db.runs.fork(run, { name: `thread ${to}`.slice(0, 256) })
    this.#db.runs.update(fork, { tags: [THREAD_TAG, threadTag(to)], metadata: { langgraph: 'thread', thread_id: to, forkedFrom: threadId } })
    this.#threads.set(to, fork)
    return fork
  }

  /** The checkpoint `config` names (its `checkpoint_id`), or the newest of its thread and namespace. */
  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const conf = config?.configurable ?? {}
    if (conf.thread_id === undefined) return undefined
    const threadId = checkPart('thread_id', conf.thread_id)
    const ns = checkPart('checkpoint_ns', conf.checkpoint_ns ?? '', true)
    const wanted: unknown = conf.checkpoint_id ?? conf.thread_ts
    const id = wanted !== undefined && wanted !== '' ? checkPart('checkpoint_id', wanted) : undefined
    const cached = this.#threads.has(threadId)
    let found = this.#find(this.#readRun(threadId), threadId, ns, id)
    if (found === undefined && cached) found = this.#find(this.#readRun(threadId, true), threadId, ns, id)
    return found === undefined ? undefined : this.#assemble(found, this.#writes(found.run, ns, found.id), undefined)
  }

  /** A checkpoint by id, or the newest of the namespace. */
  #find(run: RunId | undefined, threadId: string, ns: string, id: string | undefined): Found | undefined {
    if (run === undefined) return undefined
    if (id !== undefined) {
      const record = this.#db.kv.get<CheckpointRecord>(run, checkpointKey(ns, id))
      return record === undefined ? undefined : { run, threadId, ns, id, record }
    }
    // The newest key, then its record: cheaper than an `entries` call (whose answer is a new buffer).
    const [key] = this.#db.kv.list(run, { prefix: checkpointPrefix(ns), reverse: true, limit: 1 })
    const record = key === undefined ? undefined : this.#db.kv.get<CheckpointRecord>(run, key)
    return record === undefined ? undefined : { run, threadId, ns, id: parseCheckpointKey(key).id, record }
  }

  /**
   * Checkpoints newest first: of `config`'s thread (all threads when it has
   * no `thread_id`) and namespace (all when it has no `checkpoint_ns`);
   * older than `before`, whose metadata has every `filter` key equal to the
   * given value, at most `limit`.
   */
  override async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const conf = config?.configurable ?? {}
    const { before, filter } = options ?? {}
    let limit = options?.limit
    if (limit !== undefined && (typeof limit !== 'number' || Number.isNaN(limit))) throw new InvalidArgumentError('limit must be a number')
    const ns = conf.checkpoint_ns === undefined || conf.checkpoint_ns === null ? undefined : checkPart('checkpoint_ns', conf.checkpoint_ns, true)
    const only: string | undefined = conf.checkpoint_id ? checkPart('checkpoint_id', conf.checkpoint_id) : undefined
    const beforeId: string | undefined = before?.configurable?.checkpoint_id ? checkPart('before.checkpoint_id', before.configurable.checkpoint_id) : undefined
    const wanted = Object.entries(filter ?? {}).filter(([, v]) => v !== undefined)
    const threads: [string, RunId][] = []
    if (conf.thread_id !== undefined && conf.thread_id !== null && conf.thread_id !== '') {
      const threadId = checkPart('thread_id', conf.thread_id)
      const run = this.threadRun(threadId)
      if (run !== undefined) threads.push([threadId, run])
    } else {
      for (const r of this.#db.runs.list({ tag: THREAD_TAG })) {
        const t = threadOf(r)
        if (t !== undefined) threads.push([t, r.id])
      }
    }
    // Checkpoints are rebuilt a page at a time, so that a page reads each stored value once (see #tuples).
    let page: Found[] = []
    for await (const found of this.#newestFirst(threads, ns, beforeId)) {
      if (limit !== undefined && limit <= 0) break
      if (only !== undefined && found.id !== only) continue
      if (beforeId !== undefined && found.id >= beforeId) continue
      if (wanted.length > 0) {
        const metadata = (await this.#deserialize(found.record.metadata)) as Record<string, unknown> | undefined
        if (!wanted.every(([k, v]) => metadata !== undefined && metadata !== null && sameValue(metadata[k], v))) continue
      }
      if (limit !== undefined) limit--
      page.push(found)
      if (page.length === PAGE) {
        yield* await this.#tuples(page)
        page = []
      }
    }
    if (page.length > 0) yield* await this.#tuples(page)
  }

  /**
   * Checkpoints of the threads (in the namespace, or all), newest id first:
   * a merge of one page-wise cursor of keys per thread, each starting below
   * `before`; a record is read when its checkpoint comes up (keys, then each
   * record by key: cheaper than an `entries` page, and none is read past
   * the listing's end).
   */
  async *#newestFirst(threads: [string, RunId][], ns: string | undefined, before: string | undefined): AsyncGenerator<Found> {
    const prefix = checkpointPrefix(ns)
    const found = (run: RunId, threadId: string, key: string): Found | undefined => {
      const record = this.#db.kv.get<CheckpointRecord>(run, key)
      if (record === undefined) return undefined
      const parsed = parseCheckpointKey(key)
      return { run, threadId, ns: parsed.ns, id: parsed.id, record }
    }
    if (ns === undefined) {
      // Ids across namespaces interleave: list each thread whole, then merge.
      const all: { run: RunId; threadId: string; key: string; ns: string; id: string }[] = []
      for (const [threadId, run] of threads) {
        for (const key of this.#db.kv.list(run, { prefix })) all.push({ run, threadId, key, ...parseCheckpointKey(key) })
      }
      all.sort((a, b) => cmp(b.id, a.id) || cmp(b.ns, a.ns))
      for (const a of all) {
        const f = found(a.run, a.threadId, a.key)
        if (f !== undefined) yield f
      }
      return
    }
    const start = before === undefined ? undefined : checkpointKey(ns, before)
    const cursors = threads.map(([threadId, run]) => ({ threadId, run, keys: [] as string[], at: 0, after: start, done: false }))
    for (;;) {
      let best: (typeof cursors)[number] | undefined
      for (const c of cursors) {
        if (c.at === c.keys.length && !c.done) {
          c.keys = this.#db.kv.list(c.run, { prefix, reverse: true, limit: PAGE, ...(c.after === undefined ? {} : { after: c.after }) })
          c.at = 0
          if (c.keys.length < PAGE) c.done = true
          if (c.keys.length > 0) c.after = c.keys[c.keys.length - 1]
        }
        if (c.at === c.keys.length) continue
        // Keys of one namespace order as their ids.
        if (best === undefined || c.keys[c.at] > best.keys[best.at]) best = c
      }
      if (best === undefined) return
      const f = found(best.run, best.threadId, best.keys[best.at++])
      if (f !== undefined) yield f
    }
  }

  /**
   * Stored checkpoints as LangGraph's tuples: values rebuilt from their
   * versions, pending writes in order. A page of several shares one read of
   * each stored value (see {@link SharedValues}).
   */
  async #tuples(found: Found[]): Promise<CheckpointTuple[]> {
    const shared = found.length > 1 ? new SharedValues(this.#db) : undefined
    const out: CheckpointTuple[] = []
    for (const f of found) out.push(await this.#assemble(f, this.#writes(f.run, f.ns, f.id), shared))
    return out
  }

  /** One tuple from its stored checkpoint and its ordered writes; values read through `shared` when given. */
  async #assemble(f: Found, writes: [string, WriteRecord][], shared: SharedValues | undefined): Promise<CheckpointTuple> {
    const { run, threadId, ns, id, record } = f
    const checkpoint = ('native' in record.checkpoint ? record.checkpoint.native : await this.#deserialize(record.checkpoint)) as Checkpoint
    const versions = checkpoint.channel_versions ?? {}
    const channelValues: Record<string, unknown> = {}
    for (const channel of Object.keys(versions)) {
      const version = versions[channel]
      if (shared === undefined) {
        const stored = this.#db.kv.get<Stored>(run, valueKey(ns, channel, version))
        if (stored !== undefined) channelValues[channel] = 'native' in stored ? stored.native : await this.#deserialize(stored)
        continue
      }
      const s = shared.get(run, ns, channel, version)
      if (s.stored !== undefined) channelValues[channel] = 'native' in s.stored ? shared.handOut(s, s.stored) : await this.#deserialize(s.stored)
    }
    checkpoint.channel_values = channelValues
    const pendingWrites: CheckpointPendingWrite[] = []
    for (const [taskId, w] of writes) pendingWrites.push([taskId, w.channel, 'native' in w.value ? w.value.native : await this.#deserialize(w.value)])
    if (checkpoint.v < 4 && record.parent !== null) {
      // Checkpoints before format 4 kept pending sends in the parent's TASKS writes.
      const sends: unknown[] = []
      for (const [, w] of this.#writes(run, ns, record.parent)) if (w.channel === TASKS) sends.push(await this.#deserialize(w.value))
      checkpoint.channel_values[TASKS] = sends
      const all = Object.values(checkpoint.channel_versions)
      checkpoint.channel_versions[TASKS] = all.length > 0 ? maxChannelVersion(...all) : this.getNextVersion(undefined)
    }
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: id } },
      checkpoint,
      metadata: ('native' in record.metadata ? record.metadata.native : await this.#deserialize(record.metadata)) as CheckpointMetadata,
      pendingWrites,
    }
    if (record.parent !== null) tuple.parentConfig = { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: record.parent } }
    return tuple
  }

  /** The pending writes of a checkpoint as `[task id, record]`, in `writesSortKey` order. */
  #writes(run: RunId, ns: string, checkpointId: string): [string, WriteRecord][] {
    // Keys, then each value: cheaper than `entries` for the few writes of one checkpoint.
    const keys = this.#db.kv.list(run, { prefix: writesPrefix(ns, checkpointId) })
    const rows: { sortKey: ReturnType<typeof writesSortKey>; taskId: string; record: WriteRecord }[] = []
    for (const key of keys) {
      const record = this.#db.kv.get<WriteRecord>(run, key)
      if (record === undefined) continue
      const { taskId, idx } = parseWriteKey(key)
      rows.push({ sortKey: writesSortKey(record.taskPath, taskId, idx), taskId, record })
    }
    if (rows.length > 1) rows.sort((a, b) => compareWritesSortKeys(a.sortKey, b.sortKey))
    return rows.map((r) => [r.taskId, r.record])
  }
}

/**
 * The stored values read for one page of checkpoints. Consecutive
 * checkpoints share most of their values (a step changes a few channels),
 * so each stored value is read and decoded once per page; a plain value is
 * handed out as decoded the first time and as a copy after that, so that no
 * two tuples share an object (a caller may change one).
 */
class SharedValues {
  /** By run, namespace, channel and version (no key is built for a value read already). */
  readonly #read = new Map<RunId, Map<string, Map<string, Map<number | string, Shared>>>>()

  constructor(private readonly db: Database) {}

  /** The stored value of `channel` at `version`, read once. */
  get(run: RunId, ns: string, channel: string, version: number | string): Shared {
    const versions = child(child(child(this.#read, run), ns), channel)
    let shared = versions.get(version)
    if (shared === undefined) versions.set(version, (shared = { stored: this.db.kv.get<Stored>(run, valueKey(ns, channel, version)), given: false }))
    return shared
  }

  /** A plain value for one tuple: the decoded one first, a copy every later time. */
  handOut(shared: Shared, stored: NativeValue): unknown {
    if (!shared.given) {
      shared.given = true
      return stored.native
    }
    return copyPlain(stored.native)
  }
}

/** A stored value read for a page, and whether a tuple has it already. */
interface Shared {
  stored: Stored | undefined
  given: boolean
}

/** The map under `key` in `map`, made when absent. */
function child<K, IK, IV>(map: Map<K, Map<IK, IV>>, key: K): Map<IK, IV> {
  let inner = map.get(key)
  if (inner === undefined) map.set(key, (inner = new Map()))
  return inner
}

/** A deep copy of plain data as the codec decodes it (objects, arrays, bytes and scalars). */
function copyPlain(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v
  if (Array.isArray(v)) return v.map(copyPlain)
  if (ArrayBuffer.isView(v)) return (v as Uint8Array).slice()
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) out[k] = copyPlain((v as Record<string, unknown>)[k])
  return out
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Equality of metadata values as JSON would see them (objects key by key, in any order). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

