/**
 * The run index: begin, end, pause, list and follow the lineage of runs.
 * @module
 */
import { checkOptions } from './options.js'
import { type Storable, type Value, decode, encode } from './codec.js'
import { InvalidArgumentError, translate } from './errors.js'
import { type Io, checkWellFormed, runBytes } from './keys.js'
import { readAnswer } from './ops.js'
import { type At, type LoggedCommit, resolveAt } from './history.js'
import type { NativeDatabase, NativeRunInfo } from './native.js'

/** A run id: a UUIDv7 string, time-ordered. */
export type RunId = string

/** Where a run is in its life. */
export type RunStatus = 'active' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'archived'

/** What the run index knows of one run. */
export interface RunInfo {
  /** The run's id (a UUIDv7 string). */
  id: RunId
  /** The name given to {@link Runs.begin}, if any. */
  name?: string
  /** Where the run is in its lifecycle. */
  status: RunStatus
  /** The run it was begun as a child of, if any. */
  parent?: RunId
  /** The tags given to {@link Runs.begin} (possibly empty). */
  tags: string[]
  /** The metadata given to {@link Runs.begin}, if any. */
  metadata?: Value
  /** Milliseconds since the epoch. */
  createdAt: number
  /** When it completed, failed or was cancelled. */
  endedAt?: number
  /** The message given to {@link Runs.fail}. */
  error?: string
  /** For a fork ({@link Runs.fork}): the commit version of its parent it started from. */
  forkedAt?: number
}

/** Options of {@link Runs.begin}; `M` is the metadata's type (an interface is fine). */
export interface BeginOptions<M = Value> {
  /** Up to 256 characters. */
  name?: string
  /** A run that exists: the new run is its child. */
  parent?: RunId
  /** Up to 64 tags, each up to 256 characters; `list({ tag })` finds runs by them. */
  tags?: string[]
  /** Any storable value. */
  metadata?: M
}

/** Options of {@link Runs.list}. */
export interface RunListOptions {
  /** Only runs with this status. */
  status?: RunStatus
  /** Only runs carrying this tag. */
  tag?: string
  /** Only the children of this run. */
  parent?: RunId
  /** At most this many. */
  limit?: number
  /** Runs created after this one (the cursor of the previous page). */
  after?: RunId
}

const STATUSES = new Set(['active', 'paused', 'completed', 'failed', 'cancelled', 'archived'])

/** @internal */
export function toRunInfo(n: NativeRunInfo): RunInfo {
  const info: RunInfo = { id: n.id, status: n.status as RunStatus, tags: n.tags, createdAt: n.createdAt }
  if (n.name != null) info.name = n.name
  if (n.parent != null) info.parent = n.parent
  if (n.metadata != null) info.metadata = decode(n.metadata)
  if (n.endedAt != null) info.endedAt = n.endedAt
  if (n.error != null) info.error = n.error
  if (n.forkedAt != null) info.forkedAt = n.forkedAt
  return info
}

/** Options of {@link Runs.fork}. */
export interface ForkOptions {
  /** The fork's name. Default: the parent's. */
  name?: string
  /** The point to fork at: a commit version (see {@link Runs.log}), `{ version }` or `{ eventSequence }`. Default: now. */
  at?: At
}

/** What {@link Runs.update} changes; `M` is the metadata's type. */
export interface RunChanges<M = Value> {
  /** The run's new tags (replacing the old ones). */
  tags?: string[]
  /** The run's new metadata. */
  metadata?: M
}

/** A run's optional name: a well-formed string. */
function checkName(name: unknown): asserts name is string | undefined {
  if (name === undefined) return
  if (typeof name !== 'string') throw new InvalidArgumentError('name must be a string')
  checkWellFormed('name', name)
}

/** A run's optional tags: an array of well-formed strings. */
function checkTags(tags: unknown): asserts tags is string[] | undefined {
  if (tags === undefined) return
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw new InvalidArgumentError('tags must be an array of strings')
  for (const t of tags) checkWellFormed('a tag', t)
}

/**
 * Runs: every data operation belongs to one. Status moves `active` →
 * `completed | failed | cancelled`, `active ↔ paused`, and any ended status
 * → `archived`; any other move is an `InvalidTransitionError`. Only an
 * active run accepts writes.
 */
export class Runs {
  /** @internal */
  constructor(
    private readonly db: NativeDatabase,
    /** Where `get` reads its answer (the database's I/O buffer). */
    private readonly io: Io,
  ) {}

  /**
   * Starts a run.
   * @returns its id
   * @throws NotFoundError if `parent` does not exist; LimitError for a name or tags over their limits
   */
  begin<M = Value>(opts: BeginOptions<M> & { metadata?: Storable<M> } = {}): RunId {
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('begin options must be an object')
    checkOptions(opts, ['name', 'parent', 'tags', 'metadata'], 'begin options')
    const { name, parent, tags, metadata } = opts
    checkName(name)
    if (parent !== undefined) runBytes(parent)
    checkTags(tags)
    const meta = metadata === undefined ? undefined : Buffer.from(encode(metadata))
    try {
      return this.db.runBegin(name, parent, tags, meta).id
    } catch (e) {
      throw translate(e)
    }
  }

  #move(run: RunId, action: string, error?: string): RunInfo {
    runBytes(run)
    try {
      return toRunInfo(this.db.runUpdate(run, action, error))
    } catch (e) {
      throw translate(e)
    }
  }

  /** Ends an active run successfully. */
  complete(run: RunId): RunInfo { return this.#move(run, 'complete') }
  /** Ends an active run as failed, keeping the error's message (an Error's `message`, a string as is, anything else as JSON). */
  fail(run: RunId, error?: unknown): RunInfo {
    const message = error === undefined ? undefined : failureMessage(error)
    return this.#move(run, 'fail', message)
  }
  /** Ends an active run as cancelled. */
  cancel(run: RunId): RunInfo { return this.#move(run, 'cancel') }
  /** Pauses an active run: it accepts no writes until {@link Runs.resume}. */
  pause(run: RunId): RunInfo { return this.#move(run, 'pause') }
  /** Makes a paused run active again. */
  resume(run: RunId): RunInfo { return this.#move(run, 'resume') }
  /** Archives a completed, failed or cancelled run. */
  archive(run: RunId): RunInfo { return this.#move(run, 'archive') }

  /**
   * Replaces a run's tags and/or metadata, in any status; the tag index
   * follows. Fields left out are kept.
   * @throws NotFoundError if the run does not exist; LimitError for tags over their limits
   */
  update<M = Value>(run: RunId, changes: RunChanges<M> & { metadata?: Storable<M> }): RunInfo {
    runBytes(run)
    if (typeof changes !== 'object' || changes === null) throw new InvalidArgumentError('update takes an object of changes')
    checkOptions(changes, ['tags', 'metadata'], 'runs.update changes')
    const { tags, metadata } = changes
    checkTags(tags)
    const meta = 'metadata' in changes ? Buffer.from(encode(metadata as Value)) : undefined
    try {
      return toRunInfo(this.db.runEdit(run, tags, meta))
    } catch (e) {
      throw translate(e)
    }
  }

  /** Adds tags to a run (see {@link Runs.update}). */
  tag(run: RunId, ...tags: string[]): RunInfo {
    return this.#tag(run, tags, true)
  }

  /** Removes tags from a run (see {@link Runs.update}). */
  untag(run: RunId, ...tags: string[]): RunInfo {
    return this.#tag(run, tags, false)
  }

  /** One engine transaction reads the tags and writes the change: concurrent taggers lose nothing. */
  #tag(run: RunId, tags: string[], add: boolean): RunInfo {
    runBytes(run)
    if (tags.some((t) => typeof t !== 'string')) throw new InvalidArgumentError('tags must be strings')
    for (const t of tags) checkWellFormed('a tag', t)
    try {
      return toRunInfo(this.db.runTag(run, tags, add))
    } catch (e) {
      throw translate(e)
    }
  }

  /**
   * Deletes a run in any status with all its data (every primitive) and its
   * index entries, in one commit. Its child runs stay; their lineage ends
   * here. Returns `false` if there was no such run.
   */
  delete(run: RunId): boolean {
    runBytes(run)
    try {
      return this.db.runDelete(run)
    } catch (e) {
      throw translate(e)
    }
  }

  /**
   * Forks `run` at `at` (default: now) into a new active run,
   * without copying anything: the fork reads its parent's data as of `at`
   * until it writes its own, and writes to either never reach the other.
   * The fork's parent is `run` (see {@link Runs.lineage}); it takes the
   * parent's tags and metadata, and `name` or the parent's name.
   * @returns the fork's id
   */
  fork(run: RunId, opts: ForkOptions = {}): RunId {
    runBytes(run)
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('fork options must be an object')
    checkOptions(opts, ['name', 'at'], 'fork options')
    const { name } = opts
    checkName(name)
    try {
      const at = resolveAt(opts.at, (sequence) => this.db.eventVersion(run, sequence))
      return this.db.runFork(run, name, at).id
    } catch (e) {
      throw translate(e)
    }
  }

  /**
   * The run's log: every commit that wrote its own data, oldest first, with
   * what each wrote (from the run's {@link Runs.horizon} on). Versions are
   * what `db.replay(run, { at })` takes.
   */
  log(run: RunId): LoggedCommit[] {
    runBytes(run)
    try {
      return this.db.runLog(run) as LoggedCommit[]
    } catch (e) {
      throw translate(e)
    }
  }

  /**
   * The version from which the run's history is whole: 0, unless
   * `history: { keep: N }` (now, or an earlier open of this directory)
   * dropped older versions of its keys. Replay, fork and diff at an older
   * version fail with `NotFoundError`, and {@link Runs.log} starts here.
   * @throws NotFoundError if the run does not exist
   */
  horizon(run: RunId): number {
    runBytes(run)
    try {
      return this.db.runHorizon(run)
    } catch (e) {
      throw translate(e)
    }
  }

  /** The run, or `undefined` if there is none with that id. */
  get(run: RunId): RunInfo | undefined {
    runBytes(run)
    try {
      const io = this.io
      return readAnswer<RunInfo>(io, (buf) => this.db.runGetInto(buf, run))
    } catch (e) {
      throw translate(e)
    }
  }

  /** Runs in creation order, through the index of the first filter given (status, then parent, then tag). */
  list(opts: RunListOptions = {}): RunInfo[] {
    checkOptions(opts, ['status', 'tag', 'parent', 'limit', 'after'], 'runs.list options')
    const { status, tag, parent, limit, after } = opts
    if (status !== undefined && !STATUSES.has(status)) throw new InvalidArgumentError(`unknown run status ${JSON.stringify(status)}`)
    if (tag !== undefined && typeof tag !== 'string') throw new InvalidArgumentError('tag must be a string')
    if (parent !== undefined) runBytes(parent)
    if (after !== undefined) runBytes(after)
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw new InvalidArgumentError('limit must be a non-negative integer')
    try {
      return this.db.runList(status, tag, parent, limit, after).map(toRunInfo)
    } catch (e) {
      throw translate(e)
    }
  }

  /** Runs whose parent is `run`. */
  children(run: RunId): RunInfo[] {
    runBytes(run)
    try {
      return this.db.runChildren(run).map(toRunInfo)
    } catch (e) {
      throw translate(e)
    }
  }

  /** The run and its ancestors, nearest first. */
  lineage(run: RunId): RunInfo[] {
    runBytes(run)
    try {
      return this.db.runLineage(run).map(toRunInfo)
    } catch (e) {
      throw translate(e)
    }
  }
}

/** What {@link Runs.fail} keeps of `error`. */
function failureMessage(error: unknown): string {
  if (error instanceof Error) return error.message
  if (typeof error === 'string') return error
  try {
    const json = JSON.stringify(error, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))
    if (json !== undefined) return json
  } catch {
    // a cycle: fall back to the string form
  }
  return String(error)
}
