/**
 * What the CLI shows of a LangGraph thread's run (see `langgraph/threads.ts`
 * for how `InMemSaver` lays it out): its checkpoints and the graph's channel
 * values, decoded from the serializer's JSON rather than shown as bytes.
 * Not part of the library's API.
 * @module
 */
import type { ScopedKv } from '../kv.js'
import { checkpointPrefix, parseCheckpointKey, valueKey, writesPrefix, type CheckpointRecord, type Serialized } from '../langgraph/threads.js'

/** The KV reads this module needs: a run scope's or a replay view's. */
export type KvReader = Pick<ScopedKv<number>, 'get' | 'getMany' | 'entries' | 'count'>

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

function isSerialized(v: unknown): v is Serialized {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false
  const keys = Object.keys(v)
  return keys.length === 2 && typeof (v as Serialized).serde === 'string' && (v as Serialized).data instanceof Uint8Array
}

/** Whether a field of a serialized LangChain object says nothing (`{}`, `[]`, `""`, `null`). */
function empty(v: unknown): boolean {
  if (v === null || v === undefined || v === '') return true
  if (Array.isArray(v)) return v.length === 0
  return typeof v === 'object' && Object.keys(v).length === 0
}

/**
 * `v` with every serialized JSON value in it parsed (other types are left as
 * they are), and LangChain's serialized objects (messages, ...) shortened to
 * `{ ClassName: { non-empty fields } }`.
 */
export function readable(v: unknown): unknown {
  if (isSerialized(v)) {
    if (v.serde !== 'json') return v
    try {
      return readable(JSON.parse(Buffer.from(v.data).toString('utf8')))
    } catch {
      return v
    }
  }
  const lc = v as { lc?: unknown; type?: unknown; id?: unknown; kwargs?: unknown }
  if (lc !== null && typeof lc === 'object' && lc.lc === 1 && lc.type === 'constructor' && Array.isArray(lc.id) && typeof lc.kwargs === 'object' && lc.kwargs !== null) {
    const fields = Object.entries(lc.kwargs).filter(([k, x]) => !empty(x) && k !== 'id')
    return { [String(lc.id[lc.id.length - 1])]: Object.fromEntries(fields.map(([k, x]) => [k, readable(x)])) }
  }
  if (Array.isArray(v)) return v.map(readable)
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = readable(x)
    return out
  }
  return v
}

/** A stored KV key of a thread's run, readable: its parts joined by ` / ` instead of U+001F. */
export function readableKey(key: string): string {
  return key.split('\u001f').join(' / ')
}

/** The thread's checkpoints, newest first (all namespaces), at most `limit` (0: all). */
export function checkpoints(kv: KvReader, limit = 0): ThreadCheckpoint[] {
  const all = kv.entries<CheckpointRecord>({ prefix: checkpointPrefix() }).map(([key, record]) => {
    const { ns, id } = parseCheckpointKey(key)
    return { ns, id, parent: record.parent, metadata: readable(record.metadata), writes: kv.count({ prefix: writesPrefix(ns, id) }) }
  })
  all.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
  return limit === 0 ? all : all.slice(0, limit)
}

/** The newest checkpoint of a namespace with the graph's channel values, decoded; `undefined` if there is none. */
export function head(kv: KvReader, ns = ''): { id: string; values: Record<string, unknown> } | undefined {
  const [newest] = kv.entries<CheckpointRecord>({ prefix: checkpointPrefix(ns), reverse: true, limit: 1 })
  if (newest === undefined) return undefined
  const checkpoint = readable(newest[1].checkpoint) as { channel_versions?: Record<string, number | string> }
  const versions = Object.entries(checkpoint.channel_versions ?? {})
  const blobs = kv.getMany(versions.map(([ch, v]) => valueKey(ns, ch, v)))
  const values: Record<string, unknown> = {}
  versions.forEach(([ch], i) => {
    if (blobs[i] !== undefined) values[ch] = readable(blobs[i])
  })
  return { id: parseCheckpointKey(newest[0]).id, values }
}
