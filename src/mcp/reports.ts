/**
 * The CLI's reports (`cli/reports.ts`: `runs_show`, `replay`,
 * `events_tail`), read through the remote API: the same structures, built by
 * the same steps, with every call awaited, so the MCP tools serve a
 * directory opened here and one served by its owner alike. (When the CLI's
 * own reports read the remote API, these give way to them.) Not part of the
 * library's API.
 * @module
 */
import type { Event } from '../events.js'
import type { MachineInstance } from '../machines.js'
import type { RunId, RunInfo } from '../runs.js'
import type { TraceNode } from '../traces.js'
import { type CheckpointRecord, type Stored, checkpointPrefix, parseCheckpointKey, threadOf, valueKey, writesPrefix } from '../langgraph/threads.js'
import type { RemoteDatabase, RemoteScope, RemoteView } from '../server/client.js'
import { type ThreadCheckpoint, decodeStored, readableEntry, readableKey } from '../cli/langgraph.js'
import type { Counts, ReplayPoint, ReplayReport, RunReport, TailReport } from '../cli/reports.js'

/** The KV reads of a run scope or a replay view. */
type KvReader = RemoteScope['kv'] | RemoteView['kv']

/** As `cli/langgraph.ts`'s `checkpoints`. */
async function checkpoints(kv: KvReader, limit = 0): Promise<ThreadCheckpoint[]> {
  const all: ThreadCheckpoint[] = []
  for (const [key, value] of await kv.entries({ prefix: checkpointPrefix() })) {
    const record = value as CheckpointRecord
    const { ns, id } = parseCheckpointKey(key)
    all.push({ ns, id, parent: record.parent, metadata: decodeStored(record.metadata), writes: await kv.count({ prefix: writesPrefix(ns, id) }) })
  }
  all.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
  return limit === 0 ? all : all.slice(0, limit)
}

/** As `cli/langgraph.ts`'s `head`. */
async function head(kv: KvReader, ns = ''): Promise<{ id: string; values: Record<string, unknown> } | undefined> {
  const [newest] = await kv.entries({ prefix: checkpointPrefix(ns), reverse: true, limit: 1 })
  if (newest === undefined) return undefined
  const checkpoint = decodeStored((newest[1] as CheckpointRecord).checkpoint) as { channel_versions?: Record<string, number | string> }
  const versions = Object.entries(checkpoint.channel_versions ?? {})
  const blobs = (await kv.getMany(versions.map(([ch, v]) => valueKey(ns, ch, v)))) as (Stored | undefined)[]
  const values: Record<string, unknown> = {}
  versions.forEach(([ch], i) => {
    if (blobs[i] !== undefined) values[ch] = decodeStored(blobs[i])
  })
  return { id: parseCheckpointKey(newest[0]).id, values }
}

/** As `cli/reports.ts`'s `counts`. */
async function counts(view: RemoteScope | RemoteView): Promise<Counts> {
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

/** As `cli/reports.ts`'s `runReport`. */
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
    ...(thread === undefined ? {} : { langgraph: { thread, checkpoints: await checkpoints(scope.kv, checkpointLimit), head: (await head(scope.kv)) ?? null } }),
  }
}

/** As `cli/reports.ts`'s `replayReport` (the view it reads is closed before it returns). */
export async function replayReport(db: RemoteDatabase, run: RunId, point: ReplayPoint): Promise<ReplayReport> {
  const newest = (await db.stats()).version
  const info = await db.runs.get(run)
  const thread = info === undefined ? undefined : threadOf(info)
  const view = await db.replay(run, point.event !== undefined ? { at: { eventSequence: point.event } } : point.at === undefined ? {} : { at: point.at })
  try {
    const length = await view.events.length()
    const json: { id: string; value: unknown }[] = []
    for (const id of await view.json.list()) {
      const value = await view.json.get(id)
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

/** As `cli/reports.ts`'s `tailReport`. */
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
