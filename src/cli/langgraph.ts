/**
 * What the CLI shows of a LangGraph thread's run (see `langgraph/threads.ts`
 * for how `InMemSaver` lays it out): its checkpoints and the graph's channel
 * values, decoded from the serializer's JSON rather than shown as bytes.
 * Not part of the library's API.
 * @module
 */
import { checkpointPrefix, parseCheckpointKey, valueKey, writesPrefix, type CheckpointRecord, type Stored, type WriteRecord } from '../langgraph/threads.js'
import type { RemoteView } from '../server/client.js'

/** The KV reads this module needs: a run scope's or a replay view's (remote: each answer is awaited). */
export type KvReader = Pick<RemoteView['kv'], 'getMany' | 'entries' | 'count'>

/** A checkpoint of a thread, decoded. */
export interface ThreadCheckpoint {
  /** Its namespace (`''`: the root graph). */
  ns: string
  /** Its id. */
  id: string
  /** Its parent's id, or `null`. */
  parent: string | null
  /** Its metadata (`source`, `step`, ...). */
  metadata: unknown
  /** How many pending writes it has. */
  writes: number
}

/** Whether a field of a serialized LangChain object says nothing (`{}`, `[]`, `""`, `null`). */
function empty(v: unknown): boolean {
  if (v === null || v === undefined || v === '') return true
  if (Array.isArray(v)) return v.length === 0
  return typeof v === 'object' && Object.keys(v).length === 0
}

/** Parsed serializer JSON with LangChain's serialized objects (messages, ...) shortened to `{ ClassName: { non-empty fields } }`. */
function shorten(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shorten)
  if (v === null || typeof v !== 'object') return v
  const lc = v as { lc?: unknown; type?: unknown; id?: unknown; kwargs?: unknown }
  if (lc.lc === 1 && lc.type === 'constructor' && Array.isArray(lc.id) && typeof lc.kwargs === 'object' && lc.kwargs !== null) {
    const fields = Object.entries(lc.kwargs).filter(([k, x]) => !empty(x) && k !== 'id')
    return { [String(lc.id[lc.id.length - 1])]: Object.fromEntries(fields.map(([k, x]) => [k, shorten(x)])) }
  }
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shorten(x)]))
}

/** A value as the saver stored it, decoded: in-mem values as they are, the serializer's JSON parsed; other types are left as stored. */
export function decodeStored(s: Stored | undefined): unknown {
  if (s === undefined || s === null || typeof s !== 'object') return s
  if ('native' in s) return s.native
  if (s.serde !== 'json' || !(s.data instanceof Uint8Array)) return s
  try {
    return shorten(JSON.parse(Buffer.from(s.data).toString('utf8')))
  } catch {
    return s
  }
}

/** A KV entry of a thread's run, decoded by the kind its key names (checkpoint, channel value or pending write). */
export function readableEntry(key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  switch (key.slice(0, 2)) {
    case 'c\u001f': {
      const r = value as CheckpointRecord
      return { parent: r.parent, checkpoint: decodeStored(r.checkpoint), metadata: decodeStored(r.metadata) }
    }
    case 'v\u001f':
      return decodeStored(value as Stored)
    case 'w\u001f': {
      const w = value as WriteRecord
      return { channel: w.channel, ...(w.taskPath ? { taskPath: w.taskPath } : {}), value: decodeStored(w.value) }
    }
    default:
      return value
  }
}

/** A stored KV key of a thread's run, readable: its parts joined by ` / ` instead of U+001F. */
export function readableKey(key: string): string {
  return key.split('\u001f').join(' / ')
}

/** The thread's checkpoints, newest first (all namespaces), at most `limit` (0: all). */
export async function checkpoints(kv: KvReader, limit = 0): Promise<ThreadCheckpoint[]> {
  const all: ThreadCheckpoint[] = []
  for (const [key, record] of (await kv.entries({ prefix: checkpointPrefix() })) as [string, CheckpointRecord][]) {
    const { ns, id } = parseCheckpointKey(key)
    all.push({ ns, id, parent: record.parent, metadata: decodeStored(record.metadata), writes: await kv.count({ prefix: writesPrefix(ns, id) }) })
  }
  all.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
  return limit === 0 ? all : all.slice(0, limit)
}

/** The newest checkpoint of a namespace with the graph's channel values, decoded; `undefined` if there is none. */
export async function head(kv: KvReader, ns = ''): Promise<{ id: string; values: Record<string, unknown> } | undefined> {
  const [newest] = (await kv.entries({ prefix: checkpointPrefix(ns), reverse: true, limit: 1 })) as [string, CheckpointRecord][]
  if (newest === undefined) return undefined
  const checkpoint = decodeStored(newest[1].checkpoint) as { channel_versions?: Record<string, number | string> }
  const versions = Object.entries(checkpoint.channel_versions ?? {})
  const blobs = (await kv.getMany(versions.map(([ch, v]) => valueKey(ns, ch, v)))) as (Stored | undefined)[]
  const values: Record<string, unknown> = {}
  versions.forEach(([ch], i) => {
    if (blobs[i] !== undefined) values[ch] = decodeStored(blobs[i])
  })
  return { id: parseCheckpointKey(newest[0]).id, values }
}
