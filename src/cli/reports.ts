/**
 * The structures the CLI prints with `--json` and the MCP server returns:
 * a run shown (`runs show`), a run replayed at a version (`replay`). One
 * function each, so the two front ends cannot drift apart; each reads a
 * `RemoteDatabase` (one opened here through `localRemote`, or the owner's
 * over its socket). Not part of the library's API.
 * @module
 */
import type { Event } from '../events.js'
import type { LoggedCommit } from '../history.js'
import type { MachineInstance } from '../machines.js'
import type { NamedCell } from '../state.js'
import type { RunId, RunInfo } from '../runs.js'
import type { TraceNode } from '../traces.js'
import { threadOf } from '../langgraph/threads.js'
import { checkpoints, head, readableEntry, readableKey, type ThreadCheckpoint } from './langgraph.js'
import type { RemoteDatabase, RemoteScope, RemoteView } from '../server/client.js'

/** How much each primitive of a run holds. */
export interface Counts {
  /** KV keys. */
  kv: number
  /** Events in the log. */
  events: number
  /** State cells. */
  state: number
  /** JSON documents. */
  json: number
  /** Traces. */
  traces: number
  /** Traces without a parent. */
  traceRoots: number
  /** State machine instances. */
  machines: number
  /** Vectors, in all collections. */
  vectors: number
}

/** Counts what `view` (a run scope or a replay view) holds. */
export async function counts(view: RemoteScope | RemoteView): Promise<Counts> {
  let vectors = 0
  for (const c of await view.vectors.collections()) vectors += await view.vectors.count(c.name)
  return {
    kv: await view.kv.count(),
    events: await view.events.length(),
    state: (await view.state.list()).length,
    json: (await view.json.list()).length,
    traces: (await view.traces.query()).length,
    traceRoots: (await view.traces.roots()).length,
    machines: (await view.machines.list()).length,
    vectors,
  }
}

/** `runs show --json`: a run, its lineage (nearest first), children, counts, event head and log. */
export interface RunReport {
  /** The run. */
  run: RunInfo
  /** The run and its ancestors, nearest first. */
  lineage: RunInfo[]
  /** Runs whose parent it is. */
  children: RunInfo[]
  /** How much each primitive holds. */
  counts: Counts
  /** The newest event, or `null`. */
  head: Event | null
  /** The run's own commits, oldest first (the last `logLimit` when one is given). */
  log: LoggedCommit[]
  /** For a LangGraph thread's run (in-mem/langgraph): its checkpoints, newest first, and the newest one's channel values, decoded. */
  langgraph?: { thread: string; checkpoints: ThreadCheckpoint[]; head: { id: string; values: Record<string, unknown> } | null }
}

/**
 * The {@link RunReport} of `info`; `logLimit` keeps the newest commits of
 * the log only, `checkpointLimit` the newest checkpoints of a LangGraph
 * thread (0: all).
 */
export async function runReport(db: RemoteDatabase, info: RunInfo, logLimit?: number, checkpointLimit = 20): Promise<RunReport> {
  const scope = db.scope(info.id)
  const log = await db.runs.log(info.id)
  const thread = threadOf(info)
  return {
    run: info,
    lineage: await db.runs.lineage(info.id),
    children: await db.runs.children(info.id),
    counts: await counts(scope),
    head: (await scope.events.head()) ?? null,
    log: logLimit === undefined || logLimit === 0 ? log : log.slice(-logLimit),
    ...(thread === undefined
      ? {}
      : { langgraph: { thread, checkpoints: await checkpoints(scope.kv, checkpointLimit), head: (await head(scope.kv)) ?? null } }),
  }
}

/** `replay --json`: a run's contents as of one commit version. */
export interface ReplayReport {
  /** The run. */
  run: RunId
  /** The commit version it is shown at. */
  at: number
  /** The newest commit version of the database. */
  newest: number
  /** KV entries in key order. */
  kv: { key: string; value: unknown }[]
  /** State cells. */
  state: NamedCell[]
  /** JSON documents. */
  json: { id: string; value: unknown }[]
  /** The event log: its length, newest event and last `tail` events. */
  events: { length: number; head: Event | null; tail: Event[] }
  /** The trace forest. */
  traces: TraceNode[]
  /** State machine instances. */
  machines: MachineInstance[]
  /** For a LangGraph thread's run: the newest checkpoint's channel values at this version, decoded (its KV entries are shown decoded too). */
  langgraph?: { thread: string; head: { id: string; values: Record<string, unknown> } | null }
}

/** Where {@link replayReport} shows a run: a commit version or the commit of an event; and how many last events to list. */
export interface ReplayPoint {
  /** A commit version (default: the newest). */
  at?: number
  /** The commit that appended this event sequence, instead of `at`. */
  event?: number
  /** How many of the last events to list. */
  tail: number
}

/** The {@link ReplayReport} of `run` at `point` (the view it reads is closed before it returns). */
export async function replayReport(db: RemoteDatabase, run: RunId, point: ReplayPoint): Promise<ReplayReport> {
  const newest = (await db.stats()).version
  const info = await db.runs.get(run)
  const thread = info === undefined ? undefined : threadOf(info)
  const view = await db.replay(run, point.event !== undefined ? { at: { eventSequence: point.event } } : point.at === undefined ? {} : { at: point.at })
  try {
    const length = await view.events.length()
    const json: { id: string; value: unknown }[] = []
    for (const id of await view.json.list()) {
      const value = (await view.json.get(id)) as unknown
      if (value !== undefined) json.push({ id, value })
    }
    return {
      run,
      at: view.at,
      newest,
      kv: (await view.kv.entries()).map(([key, value]) => (thread === undefined ? { key, value } : { key: readableKey(key), value: readableEntry(key, value) })),
      state: await view.state.list(),
      json,
      events: {
        length,
        head: (await view.events.head()) ?? null,
        tail: point.tail === 0 || length === 0 ? [] : await view.events.range({ from: Math.max(0, length - point.tail) }),
      },
      traces: (await view.traces.tree()) as TraceNode[],
      machines: (await view.machines.list()) as MachineInstance[],
      ...(thread === undefined ? {} : { langgraph: { thread, head: (await head(view.kv)) ?? null } }),
    }
  } finally {
    await view.close()
  }
}

/** `events tail --json`: a run's log length and its last `n` events (of `type`, if given; `n` 0: all). */
export interface TailReport {
  /** The run. */
  run: RunId
  /** Events in its log, of every type. */
  length: number
  /** The last events, oldest first. */
  events: Event[]
}

/** The {@link TailReport} of `run`. */
export async function tailReport(db: RemoteDatabase, run: RunId, n: number, type?: string): Promise<TailReport> {
  const length = await db.events.length(run)
  let events: Event[]
  if (type !== undefined) {
    const all = await db.events.range(run, { type })
    events = n === 0 ? all : all.slice(-n)
  } else {
    events = await db.events.range(run, { from: n === 0 ? 0 : Math.max(0, length - n) })
  }
  return { run, length, events }
}
