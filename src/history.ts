/**
 * Debugging runs: the run log, replay to any version, and the diff of two
 * runs. Forks are `db.runs.fork`.
 * @module
 */
import { describe } from './options.js'
import { type Value, decode } from './codec.js'
import { InvalidArgumentError } from './errors.js'
import type { Event, ScopedEvents } from './events.js'
import type { ScopedJson } from './json.js'
import type { ScopedKv } from './kv.js'
import type { MachineInstance, ScopedMachines } from './machines.js'
import type { RunId } from './runs.js'
import type { ScopedState } from './state.js'
import type { ScopedTraces, Trace } from './traces.js'
import type { CollectionInfo, ScopedVectors, VectorRecord } from './vectors.js'

/** A primitive's name, as the run log and diff report it. */
export type Primitive = 'kv' | 'events' | 'state' | 'json' | 'traces' | 'machines' | 'vectors'

/** One write of a logged commit. */
export interface LoggedWrite {
  /** The primitive written. */
  primitive: Primitive
  /** The KV key, cell name or document id; for events the sequence; for traces and machine instances the id. */
  key: string
  /** Whether it was a delete. */
  deleted: boolean
}

/** One commit in a run's log. */
export interface LoggedCommit {
  /** The commit version: pass it to `db.replay(run, { at })`. */
  version: number
  /** What it wrote in the run. */
  writes: LoggedWrite[]
}

/**
 * A run as it was at one version: every read of a run scope, and no writes.
 * Rebuilt from empty by re-applying the run's own commits in order.
 */
export interface RunView {
  /** The run shown. */
  readonly run: RunId
  /** The commit version it is shown at. */
  readonly at: number
  /** KV reads. */
  readonly kv: Pick<ScopedKv<number>, 'get' | 'getVersioned' | 'exists' | 'getMany' | 'list' | 'entries' | 'count'>
  /** EventLog reads. */
  readonly events: Pick<ScopedEvents, 'get' | 'range' | 'length' | 'head' | 'verify'>
  /** StateCell reads. */
  readonly state: Pick<ScopedState, 'get' | 'list'>
  /** JSON document reads. */
  readonly json: Pick<ScopedJson, 'get' | 'list'>
  /** Trace reads. */
  readonly traces: Pick<ScopedTraces, 'get' | 'children' | 'roots' | 'tree' | 'query'>
  /** State machine reads (definitions are database-wide and all visible). */
  readonly machines: Pick<ScopedMachines, 'get' | 'list' | 'getDefinition' | 'listDefinitions'>
  /** Vector reads and searches, as of the view's version. */
  readonly vectors: Pick<ScopedVectors, 'get' | 'count' | 'collections' | 'search'>
  /** Frees the replayed copy now rather than when it is garbage-collected. */
  close(): void
}

/**
 * A point in a run's history: a commit version (a number, or `{ version }`,
 * as `db.runs.log` lists them), or `{ eventSequence }`: the commit that
 * appended that event to the run's log.
 */
export type At =
  | number
  | {
      /** A commit version. */
      version: number
    }
  | {
      /** An event's sequence in the run's log: the commit that appended it. */
      eventSequence: number
    }

/** Options of `db.replay`. */
export interface ReplayOptions {
  /** The point to show the run at. Default: now. */
  at?: At
}

/** Entries of one primitive that differ between run `a` and run `b`. */
export interface Changes<T> {
  /** In `b` only. */
  added: Entry<T>[]
  /** In `a` only. */
  removed: Entry<T>[]
  /** In both, with different values. */
  changed: Changed<T>[]
}

/** An entry present in one run only. */
export interface Entry<T> {
  /** The user key (for traces and machine instances, the id). */
  key: string
  /** Its value in that run. */
  value: T
}

/** An entry whose value differs between the runs. */
export interface Changed<T> {
  /** The user key (for traces and machine instances, the id). */
  key: string
  /** Its value in run `a`. */
  a: T
  /** Its value in run `b`. */
  b: T
}

/** What `db.diff(a, b)` finds: by user key, per primitive. */
export interface RunDiff {
  /** The first run compared. */
  a: RunId
  /** The second run compared. */
  b: RunId
  /** KV entries. */
  kv: Changes<Value>
  /** StateCells, by value. */
  state: Changes<Value>
  /** JSON documents, whole. */
  json: Changes<Value>
  /** Traces, by id. */
  traces: Changes<Trace>
  /** Machine instances, by id. */
  machines: Changes<MachineInstance>
  /** Vector collections (by name: their configuration) and vectors (by `collection/id`). */
  vectors: Changes<VectorRecord | CollectionInfo>
  /** The event logs: the prefix they share and where each goes after it. */
  events: {
    /** Events both logs hold, from sequence 0, with equal hashes. */
    common: number
    /** `a`'s events after the common prefix. */
    a: Event[]
    /** `b`'s events after the common prefix. */
    b: Event[]
  }
  /** Whether the runs hold the same data. */
  same: boolean
}

/** The commit version `at` names, or `undefined` for now. @internal */
export function resolveAt(at: At | undefined, eventVersion: (sequence: number) => number): number | undefined {
  const check = (name: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new InvalidArgumentError(`${name} must be a non-negative integer, not ${describe(v)}`)
    }
    return v
  }
  if (at === undefined) return undefined
  if (typeof at === 'number') return check('at', at)
  if (typeof at === 'object' && at !== null) {
    if ('version' in at) return check('at.version', at.version)
    if ('eventSequence' in at) return eventVersion(check('at.eventSequence', at.eventSequence))
  }
  throw new InvalidArgumentError('at must be a commit version, { version } or { eventSequence }')
}

/** @internal */
export interface RawDiff {
  entries: { primitive: string; key: string; a?: Buffer | null; b?: Buffer | null }[]
  eventsCommon: number
  eventsA: number
  eventsB: number
}

/** @internal */
export interface DiffReaders {
  trace(run: RunId, id: string): Trace | undefined
  machine(run: RunId, id: string): MachineInstance | undefined
  events(run: RunId, from: number): Event[]
  vector(run: RunId, key: string): VectorRecord | CollectionInfo | undefined
}

const empty = <T>(): Changes<T> => ({ added: [], removed: [], changed: [] })

/** Turns the engine's raw diff into {@link RunDiff}. @internal */
export function assembleDiff(a: RunId, b: RunId, raw: RawDiff, read: DiffReaders): RunDiff {
  const out: RunDiff = {
    a,
    b,
    kv: empty(),
    state: empty(),
    json: empty(),
    traces: empty(),
    machines: empty(),
    vectors: empty(),
    events: { common: raw.eventsCommon, a: [], b: [] },
    same: false,
  }
  for (const e of raw.entries) {
    const fetch = (run: RunId, bytes: Buffer | null | undefined): unknown => {
      if (bytes == null) return undefined
      if (e.primitive === 'traces') return read.trace(run, e.key)
      if (e.primitive === 'machines') return read.machine(run, e.key)
      if (e.primitive === 'vectors') return read.vector(run, e.key)
      return decode(bytes)
    }
    const target = out[e.primitive as 'kv' | 'state' | 'json' | 'traces' | 'machines' | 'vectors'] as Changes<unknown> | undefined
    if (target === undefined) continue
    const va = fetch(a, e.a)
    const vb = fetch(b, e.b)
    if (va === undefined) target.added.push({ key: e.key, value: vb })
    else if (vb === undefined) target.removed.push({ key: e.key, value: va })
    else target.changed.push({ key: e.key, a: va, b: vb })
  }
  if (raw.eventsA > raw.eventsCommon) out.events.a = read.events(a, raw.eventsCommon)
  if (raw.eventsB > raw.eventsCommon) out.events.b = read.events(b, raw.eventsCommon)
  out.same = raw.entries.length === 0 && out.events.a.length === 0 && out.events.b.length === 0
  return out
}
