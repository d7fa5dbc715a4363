/**
 * The MCP server's tools over in-mem's own primitives: runs, KV, state
 * cells, JSON documents, events, traces, vector search, replay and diff.
 * Each tool is one call of the library (so one commit for a write), and
 * replay, diff, `runs_show` and `events_tail` return the structures of the
 * CLI's `--json`. Not part of the library's API.
 * @module
 */
import { z } from 'zod'
import { InvalidArgumentError, NotFoundError } from '../errors.js'
import type { RunId, RunInfo } from '../runs.js'
import type { NewTrace, TraceNode } from '../traces.js'
import type { Value } from '../codec.js'
import type { RemoteDatabase } from '../server/client.js'
import { replayReport, runReport, tailReport } from '../cli/reports.js'
import { type Tool, event, jsonValue, runId, runInfo, storedValue, tool, trace, traceNode, wholeNumber } from './tool.js'

/** The run, or a `NotFoundError` that names it. */
async function known(db: RemoteDatabase, run: RunId): Promise<RunInfo> {
  const info = await db.runs.get(run)
  if (info === undefined) throw new NotFoundError(`run ${run} does not exist (runs_list lists the runs)`, { run })
  return info
}

const STATUS = z.enum(['active', 'paused', 'completed', 'failed', 'cancelled', 'archived'])
const TRACE_TYPE = z.enum(['tool_call', 'decision', 'thought', 'query', 'error', 'custom'])
const key = z.string().min(1).describe('the key (1–1024 bytes of UTF-8, no NUL)')
const docId = z.string().min(1).describe('the document id')
const jsonPath = z.string().describe('a JSONPath into the document: $, $.a.b, $.a[0], $["odd key"] (default $, the whole document)').optional()
const cellName = z.string().min(1).describe('the state cell name')
const found = z.boolean().describe('whether it exists')
const runOut = { run: runInfo }
const counts = z.object({ kv: z.number(), events: z.number(), state: z.number(), json: z.number(), traces: z.number(), traceRoots: z.number(), machines: z.number(), vectors: z.number() })
const changes = z.object({
  added: z.array(z.object({ key: z.string(), value: z.unknown() })),
  removed: z.array(z.object({ key: z.string(), value: z.unknown() })),
  changed: z.array(z.object({ key: z.string(), a: z.unknown(), b: z.unknown() })),
})

/** The tools over in-mem's primitives, reading and writing. */
export function dataTools(db: RemoteDatabase): Tool[] {
  return [
    // ------------------------------------------------------------ runs
    tool({
      name: 'runs_begin',
      title: 'Begin a run',
      description: 'Start a new run (one execution of an agent) and get its id; every other tool names the run it works in.',
      writes: true,
      idempotent: false,
      input: {
        name: z.string().max(256).optional().describe('a name for people, up to 256 characters'),
        parent: runId('the parent run').optional(),
        tags: z.array(z.string()).max(64).optional().describe('tags to find the run by (runs_list tag)'),
        metadata: z.unknown().optional().describe('any JSON value'),
      },
      output: runOut,
      run: async (a) => {
        const run = await db.runs.begin({ name: a.name, parent: a.parent, tags: a.tags, metadata: a.metadata as Value | undefined })
        return { run: await known(db, run) }
      },
    }),
    tool({
      name: 'runs_list',
      title: 'List runs',
      description: 'List runs in creation order, optionally only those with a status, a tag or a parent; page with limit and after.',
      writes: false,
      input: {
        status: STATUS.optional().describe('only runs with this status'),
        tag: z.string().optional().describe('only runs carrying this tag'),
        parent: runId('a parent run').optional().describe('only the children of this run'),
        limit: wholeNumber('at most this many runs (default 100)', 1).optional(),
        after: runId('the last run of the previous page').optional().describe('runs created after this one (the next page)'),
      },
      output: { runs: z.array(runInfo) },
      run: async (a) => ({ runs: await db.runs.list({ status: a.status, tag: a.tag, parent: a.parent, after: a.after, limit: a.limit ?? 100 }) }),
    }),
    tool({
      name: 'runs_show',
      title: 'Show a run',
      description: "Show a run: its info, lineage (the run and its ancestors), children, how much each primitive holds, its newest event and its last commits (versions for replay).",
      writes: false,
      input: { run: runId(), log: wholeNumber('how many of the newest commits of the run log to list (default 20; 0: all)').optional() },
      output: {
        run: runInfo,
        lineage: z.array(runInfo),
        children: z.array(runInfo),
        counts,
        head: event.nullable(),
        log: z.array(z.object({ version: z.number(), writes: z.array(z.object({ primitive: z.string(), key: z.string(), deleted: z.boolean() })) })),
      },
      run: async (a) => runReport(db, await known(db, a.run), a.log ?? 20),
    }),
    tool({
      name: 'runs_complete',
      title: 'Complete a run',
      description: 'Mark an active run as completed; it accepts no more writes.',
      writes: true,
      input: { run: runId() },
      output: runOut,
      run: async (a) => ({ run: await db.runs.complete((await known(db, a.run)).id) }),
    }),
    tool({
      name: 'runs_fail',
      title: 'Fail a run',
      description: 'Mark an active run as failed, keeping an error message; it accepts no more writes.',
      writes: true,
      input: { run: runId(), error: z.string().optional().describe('what went wrong') },
      output: runOut,
      run: async (a) => ({ run: await db.runs.fail((await known(db, a.run)).id, a.error) }),
    }),

    // ------------------------------------------------------------ KV
    tool({
      name: 'kv_get',
      title: 'Get a KV value',
      description: "Read a key of a run's KV working memory: its value, the commit version that wrote it and when.",
      writes: false,
      input: { run: runId(), key },
      output: { found, value: storedValue('the value').optional(), version: z.number().optional(), updatedAt: z.number().optional() },
      run: async (a) => {
        const v = await db.kv.getVersioned((await known(db, a.run)).id, a.key)
        return v === undefined ? { found: false } : { found: true, ...v }
      },
    }),
    tool({
      name: 'kv_put',
      title: 'Put a KV value',
      description: "Write a JSON value under a key of a run's KV working memory, optionally expiring after ttlMs milliseconds.",
      writes: true,
      idempotent: true,
      input: { run: runId(), key, value: jsonValue('the value: any JSON value'), ttlMs: z.number().positive().optional().describe('milliseconds until the key expires') },
      output: { version: z.number().describe('the commit version of the write') },
      run: async (a) => ({ version: await db.kv.put((await known(db, a.run)).id, a.key, a.value as Value, a.ttlMs === undefined ? undefined : { ttlMs: a.ttlMs }) }),
    }),
    tool({
      name: 'kv_list',
      title: 'List KV keys',
      description: "List the keys of a run's KV working memory in key order (with their values if asked), optionally under a prefix; page with limit and after.",
      writes: false,
      input: {
        run: runId(),
        prefix: z.string().optional().describe('only keys that start with this'),
        after: z.string().optional().describe('start after this key (the last key of the previous page)'),
        limit: wholeNumber('at most this many keys (default 100)', 1).optional(),
        values: z.boolean().optional().describe('also return each value (default false)'),
      },
      output: { keys: z.array(z.string()), entries: z.array(z.object({ key: z.string(), value: z.unknown() })).optional().describe('with values: true') },
      run: async (a) => {
        const run = (await known(db, a.run)).id
        const opts = { prefix: a.prefix, after: a.after, limit: a.limit ?? 100 }
        if (a.values !== true) return { keys: await db.kv.list(run, opts) }
        const entries = await db.kv.entries(run, opts)
        return { keys: entries.map(([k]) => k), entries: entries.map(([k, value]) => ({ key: k, value })) }
      },
    }),
    tool({
      name: 'kv_delete',
      title: 'Delete a KV key',
      description: "Delete a key from a run's KV working memory; says whether it existed.",
      writes: true,
      destructive: true,
      idempotent: true,
      input: { run: runId(), key },
      output: { deleted: z.boolean().describe('whether the key existed') },
      run: async (a) => ({ deleted: await db.kv.delete((await known(db, a.run)).id, a.key) }),
    }),

    // ------------------------------------------------------------ state
    tool({
      name: 'state_get',
      title: 'Get a state cell',
      description: "Read a run's state cell: its value and version (the version to pass to state_cas).",
      writes: false,
      input: { run: runId(), name: cellName },
      output: { found, value: storedValue('the value').optional(), version: z.number().optional(), updatedAt: z.number().optional() },
      run: async (a) => {
        const c = await db.state.get((await known(db, a.run)).id, a.name)
        return c === undefined ? { found: false } : { found: true, ...c }
      },
    }),
    tool({
      name: 'state_set',
      title: 'Set a state cell',
      description: "Write a run's state cell unconditionally (creating it if absent); returns its new version.",
      writes: true,
      idempotent: false,
      input: { run: runId(), name: cellName, value: jsonValue('the new value: any JSON value') },
      output: { version: z.number().describe("the cell's new version (1 for a new cell, +1 per write)") },
      run: async (a) => ({ version: await db.state.set((await known(db, a.run)).id, a.name, a.value as Value) }),
    }),
    tool({
      name: 'state_cas',
      title: 'Compare-and-swap a state cell',
      description: "Write a run's state cell only if its version is still expectedVersion (0: only if it does not exist); ok false returns the current version.",
      writes: true,
      idempotent: false,
      input: { run: runId(), name: cellName, expectedVersion: wholeNumber('the version read with state_get (0: create only if absent)'), value: jsonValue('the new value: any JSON value') },
      output: { ok: z.boolean().describe('whether it was written'), version: z.number().describe("the cell's version now") },
      run: async (a) => db.state.cas((await known(db, a.run)).id, a.name, a.expectedVersion, a.value as Value),
    }),

    // ------------------------------------------------------------ JSON
    tool({
      name: 'json_get',
      title: 'Get from a JSON document',
      description: "Read a run's JSON document, whole or at a path.",
      writes: false,
      input: { run: runId(), doc: docId, path: jsonPath },
      output: { found, value: storedValue('the value at the path').optional() },
      run: async (a) => {
        const value = await db.json.get((await known(db, a.run)).id, a.doc, a.path ?? '$')
        return value === undefined ? { found: false } : { found: true, value }
      },
    }),
    tool({
      name: 'json_set',
      title: 'Set in a JSON document',
      description: "Set a value at a path of a run's JSON document (creating the document and missing objects on the way); $ replaces it whole.",
      writes: true,
      idempotent: true,
      input: { run: runId(), doc: docId, path: jsonPath, value: jsonValue('the value to set: any JSON value') },
      output: { doc: z.string(), path: z.string() },
      run: async (a) => {
        const path = a.path ?? '$'
        await db.json.set((await known(db, a.run)).id, a.doc, path, a.value as Value)
        return { doc: a.doc, path }
      },
    }),
    tool({
      name: 'json_merge',
      title: 'Merge into a JSON document',
      description: "Merge a patch into a run's JSON document at a path, as an RFC 7386 merge patch (null deletes a field).",
      writes: true,
      idempotent: true,
      input: { run: runId(), doc: docId, path: jsonPath, patch: jsonValue('the merge patch: an object whose null fields delete') },
      output: { doc: z.string(), path: z.string() },
      run: async (a) => {
        const path = a.path ?? '$'
        await db.json.merge((await known(db, a.run)).id, a.doc, path, a.patch as Value)
        return { doc: a.doc, path }
      },
    }),

    // ------------------------------------------------------------ events
    tool({
      name: 'events_append',
      title: 'Append an event',
      description: "Append an event (a type and a JSON payload) to a run's append-only, hash-chained event log.",
      writes: true,
      idempotent: false,
      input: {
        run: runId(),
        type: z.string().min(1).max(256).describe('the event type, 1–256 characters, e.g. user.message'),
        payload: z.unknown().optional().describe('any JSON value (default null)'),
      },
      output: { sequence: z.number().describe("the event's position in the log, from 0"), hash: z.string(), prevHash: z.string(), timestamp: z.number() },
      run: async (a) => db.events.append((await known(db, a.run)).id, a.type, (a.payload ?? null) as Value),
    }),
    tool({
      name: 'events_tail',
      title: 'Tail the event log',
      description: "Read the last events of a run's event log (optionally only one type), oldest first, with the log's length.",
      writes: false,
      input: {
        run: runId(),
        limit: wholeNumber('how many events (default 20; 0: all)').optional(),
        type: z.string().optional().describe('only events of this type'),
      },
      output: { run: z.string(), length: z.number().describe('events in the log, of every type'), events: z.array(event) },
      run: async (a) => tailReport(db, (await known(db, a.run)).id, a.limit ?? 20, a.type),
    }),
    tool({
      name: 'events_verify',
      title: 'Verify the event log',
      description: "Recompute the SHA-256 hash chain of a run's event log; when broken, names the first event that does not fit.",
      writes: false,
      input: { run: runId() },
      output: { run: z.string(), valid: z.boolean(), length: z.number(), firstInvalid: z.number().optional(), reason: z.string().optional() },
      run: async (a) => ({ run: a.run, ...(await db.events.verify((await known(db, a.run)).id)) }),
    }),

    // ------------------------------------------------------------ traces
    tool({
      name: 'traces_record',
      title: 'Record a trace',
      description:
        'Record a reasoning trace in a run: tool_call {tool, arguments, result?, durationMs?}, decision {question, options, chosen, reasoning?}, thought {content, confidence?}, query {query, source?, results?}, error {message, code?}, or custom (any data).',
      writes: true,
      idempotent: false,
      input: {
        run: runId(),
        type: TRACE_TYPE.describe('the kind of step'),
        data: jsonValue("the step's data, shaped by type"),
        parent: z.string().optional().describe('the id of a trace of the same run this one hangs under'),
        tags: z.array(z.string()).max(64).optional().describe('tags to query the trace by'),
        metadata: z.unknown().optional().describe('any JSON value'),
      },
      output: { id: z.string().describe("the new trace's id") },
      run: async (a) => {
        const t = { type: a.type, data: a.data, parent: a.parent, tags: a.tags, metadata: a.metadata } as NewTrace
        return { id: await db.traces.record((await known(db, a.run)).id, t) }
      },
    }),
    tool({
      name: 'traces_tree',
      title: 'Trace tree',
      description: "Read a run's traces as a forest (each trace with its children), or the subtree under one trace.",
      writes: false,
      input: { run: runId(), id: z.string().optional().describe('only the subtree under this trace') },
      output: { traces: z.array(traceNode) },
      run: async (a) => {
        const run = (await known(db, a.run)).id
        if (a.id === undefined) return { traces: (await db.traces.tree(run)) as TraceNode[] }
        // The remote facade's type keeps only the last overload of `tree`; this is the other.
        const subtree = db.traces.tree as unknown as (run: RunId, id: string) => Promise<TraceNode>
        return { traces: [await subtree(run, a.id)] }
      },
    }),
    tool({
      name: 'traces_query',
      title: 'Query traces',
      description: "Find a run's traces by type, tag and time range, in the order they were recorded.",
      writes: false,
      input: {
        run: runId(),
        type: TRACE_TYPE.optional().describe('only traces of this type'),
        tag: z.string().optional().describe('only traces carrying this tag'),
        since: z.number().optional().describe('only traces recorded at or after this time (ms since the epoch)'),
        until: z.number().optional().describe('only traces recorded at or before this time (ms since the epoch)'),
        limit: wholeNumber('at most this many (default 100)', 1).optional(),
      },
      output: { traces: z.array(trace) },
      run: async (a) => ({ traces: await db.traces.query((await known(db, a.run)).id, { type: a.type, tag: a.tag, since: a.since, until: a.until, limit: a.limit ?? 100 }) }),
    }),

    // ------------------------------------------------------------ vectors
    tool({
      name: 'vectors_collections',
      title: 'Vector collections',
      description: "List a run's vector collections with their dimension and metric (what vectors_search needs).",
      writes: false,
      input: { run: runId() },
      output: { collections: z.array(z.object({ name: z.string(), dimension: z.number(), metric: z.string() })) },
      run: async (a) => ({ collections: await db.vectors.collections((await known(db, a.run)).id) }),
    }),
    tool({
      name: 'vectors_search',
      title: 'Vector search',
      description:
        "Find the k vectors of a run's collection nearest a query vector (highest score first), optionally filtered on metadata with a MongoDB-style predicate ({field: value}, $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $not).",
      writes: false,
      input: {
        run: runId(),
        collection: z.string().min(1).describe('the collection name'),
        vector: z.array(z.number()).min(1).describe("the query vector: as many numbers as the collection's dimension"),
        k: wholeNumber('how many results, 1–10,000 (default 10)', 1).max(10_000).optional(),
        filter: z.record(z.string(), z.unknown()).optional().describe('a metadata predicate such as {"topic": "billing", "year": {"$gte": 2024}}'),
      },
      output: { hits: z.array(z.object({ id: z.string(), score: z.number().describe('higher is nearer'), metadata: z.unknown().optional() })) },
      run: async (a) => ({ hits: await db.vectors.search((await known(db, a.run)).id, a.collection, a.vector, { k: a.k ?? 10, filter: a.filter as Record<string, Value> | undefined }) }),
    }),

    // ------------------------------------------------------------ replay and diff
    tool({
      name: 'replay',
      title: 'Replay a run',
      description:
        'Show a run as it was at a commit version (runs_show lists them) or at the commit that appended an event: its KV entries, state cells, JSON documents, events, traces and machines.',
      writes: false,
      input: {
        run: runId(),
        at: wholeNumber('the commit version to show it at (default: now)').optional(),
        event: wholeNumber('instead of at: the version at which this event sequence was appended').optional(),
        events: wholeNumber('how many of the last events to list (default 5; 0: none)').optional(),
      },
      output: {
        run: z.string(),
        at: z.number().describe('the commit version shown'),
        newest: z.number().describe('the newest commit version of the database'),
        kv: z.array(z.object({ key: z.string(), value: z.unknown() })),
        state: z.array(z.object({ name: z.string(), value: z.unknown(), version: z.number(), updatedAt: z.number() })),
        json: z.array(z.object({ id: z.string(), value: z.unknown() })),
        events: z.object({ length: z.number(), head: event.nullable(), tail: z.array(event) }),
        traces: z.array(traceNode),
        machines: z.array(z.record(z.string(), z.unknown())),
      },
      run: async (a) => {
        if (a.at !== undefined && a.event !== undefined) throw new InvalidArgumentError('give at or event, not both', { argument: 'event' })
        return replayReport(db, (await known(db, a.run)).id, { at: a.at, event: a.event, tail: a.events ?? 5 })
      },
    }),
    tool({
      name: 'diff',
      title: 'Diff two runs',
      description:
        'Compare two runs (typically a fork and its parent) per primitive: entries added in b, removed from a, changed (both values); for the event logs, the common prefix and each tail.',
      writes: false,
      input: { a: runId('the first run'), b: runId('the second run') },
      output: {
        a: z.string(),
        b: z.string(),
        kv: changes,
        state: changes,
        json: changes,
        traces: changes,
        machines: changes,
        vectors: changes,
        events: z.object({ common: z.number(), a: z.array(event), b: z.array(event) }),
        same: z.boolean(),
      },
      run: async (a) => db.diff((await known(db, a.a)).id, (await known(db, a.b)).id),
    }),
  ]
}
