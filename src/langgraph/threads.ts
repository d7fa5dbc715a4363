/**
 * How a LangGraph thread lives in in-mem: one run per thread, and the keys
 * of that run's KV. Shared by {@link InMemSaver} and the CLI, which decodes
 * what the saver wrote.
 *
 * Keys of a thread's run (parts joined by U+001F, which ids may not hold):
 * - `c␟<ns>␟<checkpoint id>` → {@link CheckpointRecord}: the checkpoint
 *   without its channel values, its metadata and its parent's id;
 * - `v␟<ns>␟<channel>␟<version>` → {@link Stored}: one channel value,
 *   written once, by the checkpoint that gave the channel that version;
 * - `w␟<ns>␟<checkpoint id>␟<task id>␟<idx>` → {@link WriteRecord}: a
 *   pending write.
 *
 * Checkpoint ids are time-ordered (uuid6), so key order within a namespace
 * is checkpoint order.
 * @module
 */
import type { Value } from '../codec.js'
import type { Database } from '../database.js'
import { InvalidArgumentError } from '../errors.js'
import type { RunId, RunInfo } from '../runs.js'

/** The tag every thread run carries. */
export const THREAD_TAG = 'langgraph'
/** The part separator of a thread run's keys. */
export const SEP = '\u001f'

/** The tag that finds the run of one thread. */
export function threadTag(threadId: string): string {
  return `langgraph:thread:${threadId}`
}

/** Plain data, stored as in-mem's own value: readable as is by every in-mem tool. */
export interface NativeValue {
  /** The value. */
  native: Value
}

/** A value as the saver's serializer wrote it. */
export interface SerializedValue {
  /** The serializer's type tag (`json`, `bytes`, ...). */
  serde: string
  /** The serialized bytes (JSON text for the `json` type). */
  data: Uint8Array
}

/**
 * A value as the saver stored it: in-mem's own value when it is plain data,
 * else the serializer's output (see {@link isPlain}).
 */
export type Stored = NativeValue | SerializedValue

/** What the saver stores for one checkpoint. */
export interface CheckpointRecord {
  /** The parent checkpoint's id, or `null` for the first. */
  parent: string | null
  /** The checkpoint without `channel_values`. */
  checkpoint: Stored
  /** The checkpoint's metadata. */
  metadata: Stored
}

/** What the saver stores for one pending write. */
export interface WriteRecord {
  /** The channel written. */
  channel: string
  /** The task path given to `putWrites` (`''` when none). */
  taskPath: string
  /** The written value. */
  value: Stored
}

/** Rejects an id part that cannot go into a key (not a string, or holding the separator or NUL). */
export function checkPart(what: string, v: unknown, allowEmpty = false): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(`${what} must be a string, not ${v === null ? 'null' : typeof v}`, { [what]: v })
  if (!allowEmpty && v === '') throw new InvalidArgumentError(`${what} must not be empty`)
  if (v.includes(SEP) || v.includes('\0')) throw new InvalidArgumentError(`${what} must not contain U+001F or NUL`, { [what]: v })
  return v
}

/** The key of a checkpoint. */
export function checkpointKey(ns: string, id: string): string {
  return `c${SEP}${ns}${SEP}${id}`
}

/** The key prefix of every checkpoint of a namespace, or of the thread when `ns` is undefined. */
export function checkpointPrefix(ns?: string): string {
  return ns === undefined ? `c${SEP}` : `c${SEP}${ns}${SEP}`
}

/** The key of one version of a channel's value. */
export function valueKey(ns: string, channel: string, version: number | string): string {
  return `v${SEP}${ns}${SEP}${channel}${SEP}${typeof version === 'number' ? 'n' : 's'}${version}`
}

/** The key of a pending write. */
export function writeKey(ns: string, checkpointId: string, taskId: string, idx: number): string {
  return `w${SEP}${ns}${SEP}${checkpointId}${SEP}${taskId}${SEP}${idx}`
}

/** The key prefix of a checkpoint's pending writes. */
export function writesPrefix(ns: string, checkpointId: string): string {
  return `w${SEP}${ns}${SEP}${checkpointId}${SEP}`
}

/** A checkpoint key split into its namespace and id. */
export function parseCheckpointKey(key: string): { ns: string; id: string } {
  const parts = key.split(SEP)
  return { ns: parts[1], id: parts[2] }
}

/** A pending-write key split into its checkpoint id, task id and index. */
export function parseWriteKey(key: string): { checkpointId: string; taskId: string; idx: number } {
  const parts = key.split(SEP)
  return { checkpointId: parts[2], taskId: parts[3], idx: Number(parts[4]) }
}

/** Whether a run holds a LangGraph thread, and which. */
export function threadOf(info: RunInfo | undefined): string | undefined {
  const m = info?.metadata as { langgraph?: unknown; thread_id?: unknown } | undefined
  return info?.tags.includes(THREAD_TAG) && m !== undefined && m !== null && m.langgraph === 'thread' && typeof m.thread_id === 'string' ? m.thread_id : undefined
}

/** The run of a thread, or `undefined` when the thread has none. */
export function findThread(db: Database, threadId: string): RunId | undefined {
  const runs = db.runs.list({ tag: threadTag(threadId) }).filter((r) => threadOf(r) === threadId)
  return runs.length === 0 ? undefined : runs[runs.length - 1].id
}

/** Begins the run of a thread: named and tagged so that `in-mem runs list --tag langgraph` finds it. */
export function beginThread(db: Database, threadId: string): RunId {
  return db.runs.begin({ name: `thread ${threadId}`.slice(0, 256), tags: [THREAD_TAG, threadTag(threadId)], metadata: { langgraph: 'thread', thread_id: threadId } })
}

/**
 * Whether `v` round-trips exactly through in-mem's codec as the plain data
 * the JSON serializer would see: null, booleans, finite numbers (not -0),
 * well-formed strings, arrays without holes and plain objects of those, at
 * most 64 deep. Anything else (class instances such as LangChain messages,
 * bytes, undefined, Map, Date) goes through the serializer.
 */
export function isPlain(v: unknown, depth = 0): boolean {
  switch (typeof v) {
    case 'boolean':
      return true
    case 'string':
      return v.isWellFormed()
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0)
    case 'object': {
      if (v === null) return true
      if (depth >= 64) return false
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!(i in v) || !isPlain(v[i], depth + 1)) return false
        return true
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) return false
      if (Object.prototype.hasOwnProperty.call(v, '__proto__')) return false
      for (const k in v) if (!isPlain((v as Record<string, unknown>)[k], depth + 1)) return false
      return true
    }
    default:
      return false
  }
}
