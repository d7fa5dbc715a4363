/**
 * The commands of the `in-mem` CLI. Not part of the library's API.
 * @module
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Database } from '../database.js'
import { InMemError, InvalidArgumentError, LockedError, NotFoundError } from '../errors.js'
import type { Event, Verification } from '../events.js'
import type { Changes, LoggedCommit, RunDiff } from '../history.js'
import type { MachineInstance } from '../machines.js'
import type { RunInfo, RunListOptions, RunStatus } from '../runs.js'
import type { Trace, TraceNode } from '../traces.js'
import { type CommandSpec, UsageError, integer } from './args.js'
import { replayReport, runReport, tailReport } from './reports.js'
import { type Paint, bar, bytes, compact, deltas, duration, fields, jsonSafe, plural, shortHash, shortRun, table, time, truncate } from './format.js'
import { threadOf } from '../langgraph/threads.js'
import { type RemoteDatabase, localRemote } from '../server/client.js'
import { connectToOwner, readTokenFile, serverRecord } from '../server/owner.js'
import { type KvReader, type ThreadCheckpoint, checkpoints, head, readableEntry, readableKey } from './langgraph.js'

/** What a command runs with. */
export interface Context {
  /** Positional arguments by name. */
  args: Record<string, string | undefined>
  /** Option values by long name. */
  values: Record<string, string | boolean | undefined>
  /** The data directory, resolved. */
  dir: string
  /** `--json` was given. */
  json: boolean
  /** Colours stdout (a no-op when colours are off). */
  paint: Paint
  /** Writes lines to stdout. */
  out: (...lines: string[]) => void
  /** Writes raw text to stderr (the progress bar). */
  err: (text: string) => void
  /** Whether stderr is a terminal. */
  stderrTTY: boolean
  /** Terminal width for cutting long values (stdout's, or 120). */
  columns: number
  /** The environment (`IN_MEM_TOKEN`). */
  env: NodeJS.ProcessEnv
}

/** A command: its spec and what it does; resolves to the exit code. */
export interface Command extends CommandSpec {
  /** Runs it. */
  run: (ctx: Context) => Promise<number>
}

/** The option of every command that may run through the directory's owner. */
const OWNER_TOKEN: Command['options'] = {
  'token-file': { type: 'string', value: '<file>', help: "when the directory's owner serves it with a token: a file holding it (default: $IN_MEM_TOKEN)" },
}

/** The open options of every command but `checkpoint`: nothing a read does changes a file but LOCK. */
const READ_ONLY = { durability: 'buffered', readOnly: true } as const
/** The open options of `checkpoint`, the one command that writes. */
const WRITABLE = { durability: 'buffered', checkpointOnClose: false, checkpointBytes: 0 } as const

/**
 * Opens `dir` for the CLI. A directory that does not exist, or holds no
 * in-mem files, is refused rather than created.
 */
export function openDir(dir: string, write = false): Database {
  if (!existsSync(dir)) {
    throw new NotFoundError(`no data directory at ${dir} (pass --dir <path>, a trailing [dir], or set IN_MEM_DIR)`, { path: dir })
  }
  if (!statSync(dir).isDirectory()) throw new NotFoundError(`${dir} is not a directory`, { path: dir })
  const known = ['LOCK', 'MANIFEST', 'wal', 'checkpoints']
  if (!known.some((f) => existsSync(join(dir, f)))) {
    throw new NotFoundError(`${dir} is not an in-mem data directory (no LOCK, MANIFEST, wal/ or checkpoints/)`, { path: dir })
  }
  return Database.open(dir, write ? WRITABLE : READ_ONLY)
}

/** The token to present to an owner: the contents of `--token-file`, else `$IN_MEM_TOKEN`. */
function tokenOf(ctx: Context): string | undefined {
  const file = ctx.values['token-file']
  if (typeof file === 'string') return readToken(file)
  const env = ctx.env.IN_MEM_TOKEN
  return env === undefined || env === '' ? undefined : env
}

/** A token file's contents, without the trailing newline (a bad file is a usage error). */
function readToken(file: string): string {
  try {
    return readTokenFile(file)
  } catch (e) {
    throw e instanceof InvalidArgumentError ? new UsageError(e.message) : e
  }
}

/** The owner's pid from `SERVER` in `dir`. */
function ownerPid(dir: string): number | undefined {
  const pid = serverRecord(dir)?.pid
  return typeof pid === 'number' ? pid : undefined
}

/**
 * Runs `fn` on the directory: opened here (read-only, or writable for
 * `write`) and read through the remote API in process; or, when another
 * process owns it (`LockedError`), through that owner's socket, found in
 * `SERVER`. A locked directory whose owner does not serve keeps its
 * `LockedError`, with a line on how to serve. `fn` also gets the database
 * opened here, when it was (`checkpoint` draws its progress from it).
 */
async function withDb<T>(ctx: Context, fn: (db: RemoteDatabase, local?: Database) => T | Promise<T>, write = false): Promise<T> {
  let db: Database
  try {
    db = openDir(ctx.dir, write)
  } catch (e) {
    if (!(e instanceof LockedError)) throw e
    const remote = await connectOwner(ctx, e)
    try {
      return await fn(remote)
    } finally {
      await remote.close()
    }
  }
  const remote = localRemote(db)
  try {
    return await fn(remote, db)
  } finally {
    await remote.close()
    db.close()
  }
}

/** Connects to the owner of a locked directory, or throws `locked` with how to serve. */
async function connectOwner(ctx: Context, locked: LockedError): Promise<RemoteDatabase> {
  const remote = await connectToOwner(ctx.dir, tokenOf(ctx))
  if (remote !== undefined) return remote
  // `serving: false` has the CLI say how to serve.
  throw new LockedError(locked.message, { ...locked.details, serving: false })
}

function emit(ctx: Context, value: unknown): void {
  ctx.out(JSON.stringify(jsonSafe(value), null, 2))
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** A run named by its id, or by a unique prefix or suffix of it (a leading `…` is ignored). */
export async function resolveRun(db: RemoteDatabase, ref: string): Promise<RunInfo> {
  const r = ref.trim().replace(/^(…|\.\.\.)/, '').toLowerCase()
  if (UUID.test(r)) {
    const info = await db.runs.get(r)
    if (info === undefined) throw new NotFoundError(`run ${r} does not exist`, { run: r })
    return info
  }
  if (!/^[0-9a-f-]{4,}$/.test(r)) throw new UsageError(`"${ref}" is not a run id, nor 4 or more hex digits of one`)
  const matches = (await db.runs.list()).filter((x) => x.id.startsWith(r) || x.id.endsWith(r))
  if (matches.length === 0) throw new NotFoundError(`no run id starts or ends with ${r}`, { run: r })
  if (matches.length > 1) {
    const shown = matches.slice(0, 5).map((m) => m.id)
    throw new UsageError(`"${ref}" matches ${matches.length} runs (${shown.join(', ')}${matches.length > 5 ? ', …' : ''}); give more of the id`)
  }
  return matches[0]
}

function statusPaint(ctx: Context, s: string): string {
  const colour = ({ completed: 'green', failed: 'red', cancelled: 'yellow', paused: 'yellow', active: 'cyan', archived: 'dim' } as const)[s as RunStatus]
  return colour ? ctx.paint(colour, s) : s
}

function runLabel(info: RunInfo | undefined, id: string): string {
  return info?.name ? `${id} "${info.name}"` : id
}

/** The end time of a run: the time of day when it ended on the day it began. */
function ended(info: RunInfo): string {
  if (info.endedAt === undefined) return '-'
  const full = time(info.endedAt)
  return full.slice(0, 10) === time(info.createdAt).slice(0, 10) ? full.slice(11) : full
}

// ---------------------------------------------------------------- runs list

const STATUSES: RunStatus[] = ['active', 'paused', 'completed', 'failed', 'cancelled', 'archived']

const runsList: Command = {
  name: 'runs list',
  args: [],
  summary: 'list runs as a table',
  description: [
    'Lists runs in creation order as a table: id, name, status, parent (the last 12 hex digits of its id),',
    'tags, when it was created and when it ended (the time of day when on the same day).',
  ],
  options: {
    status: { type: 'string', value: '<status>', help: 'only runs with this status: active, paused, completed, failed, cancelled, archived' },
    tag: { type: 'string', value: '<tag>', help: 'only runs carrying this tag' },
    parent: { type: 'string', value: '<run>', help: 'only the children of this run (forks included)' },
    limit: { type: 'string', value: '<n>', help: 'at most n runs' },
    after: { type: 'string', value: '<run>', help: 'runs created after this one (the next page after a --limit)' },
    ...OWNER_TOKEN,
  },
  examples: ['runs list', 'runs list --status completed --tag demo ./agent-data', 'runs list --parent 3f0a9c1e2b7d --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const opts: RunListOptions = {}
      const v = ctx.values
      if (v.status !== undefined) {
        if (!STATUSES.includes(v.status as RunStatus)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}, not ${JSON.stringify(v.status)}`)
        opts.status = v.status as RunStatus
      }
      if (v.tag !== undefined) opts.tag = v.tag as string
      if (v.parent !== undefined) opts.parent = (await resolveRun(db, v.parent as string)).id
      if (v.after !== undefined) opts.after = (await resolveRun(db, v.after as string)).id
      opts.limit = integer('--limit', v.limit, 1)
      const runs = await db.runs.list(opts)
      if (ctx.json) {
        emit(ctx, { runs })
        return 0
      }
      if (runs.length === 0) {
        ctx.out(Object.keys(opts).some((k) => opts[k as keyof RunListOptions] !== undefined) ? 'no runs match' : 'no runs')
        return 0
      }
      ctx.out(
        ...table(
          [
            { header: 'ID' },
            { header: 'NAME', max: 32 },
            { header: 'STATUS', paint: (c) => statusPaint(ctx, c) },
            { header: 'PARENT' },
            { header: 'TAGS', max: 24 },
            { header: 'CREATED' },
            { header: 'ENDED' },
          ],
          runs.map((r) => [r.id, r.name ?? '-', r.status, r.parent ? shortRun(r.parent) : '-', r.tags.join(',') || '-', time(r.createdAt), ended(r)]),
          ctx.paint,
        ),
      )
      const more = opts.limit !== undefined && runs.length === opts.limit ? ` (--after ${shortRun(runs[runs.length - 1].id)} for the next page)` : ''
      ctx.out(ctx.paint('dim', `${plural(runs.length, 'run')}${more}`))
      return 0
    }),
}

// ---------------------------------------------------------------- runs show

function summarizeWrites(c: LoggedCommit, thread = false): string {
  const by = new Map<string, string[]>()
  for (const w of c.writes) {
    const key = w.primitive === 'events' ? `#${w.key}` : w.primitive === 'traces' ? shortRun(w.key) : thread ? readableKey(w.key) : w.key
    const list = by.get(w.primitive) ?? []
    list.push(w.deleted ? `-${key}` : key)
    by.set(w.primitive, list)
  }
  return [...by].map(([p, keys]) => `${p} ${keys.join(', ')}`).join('; ')
}

/** A LangGraph thread's checkpoints (newest first) and the channel values of its newest root checkpoint. */
async function threadLines(ctx: Context, thread: string, kv: KvReader, shown: ThreadCheckpoint[], keys: number): Promise<string[]> {
  const all = (await checkpoints(kv)).length
  const out = ['', ctx.paint('bold', `langgraph thread ${JSON.stringify(thread)} (${plural(all, 'checkpoint')}${shown.length < all ? `, the newest ${shown.length}` : ''}; ${plural(keys, 'key')})`)]
  if (shown.length > 0) {
    const meta = (m: unknown, k: string) => String((m as Record<string, unknown> | null)?.[k] ?? '-')
    out.push(
      ...table(
        [{ header: 'CHECKPOINT' }, { header: 'NS', max: 24 }, { header: 'STEP', right: true }, { header: 'SOURCE' }, { header: 'WRITES', right: true }, { header: 'PARENT' }],
        shown.map((cp) => [cp.id, cp.ns || '-', meta(cp.metadata, 'step'), meta(cp.metadata, 'source'), String(cp.writes), cp.parent ?? '-']),
        ctx.paint,
      ).map((l) => `  ${l}`),
    )
  }
  out.push(...(await channelLines(ctx, kv)))
  return out
}

/** The channel values of the thread's newest root checkpoint, one per line. */
async function channelLines(ctx: Context, kv: KvReader): Promise<string[]> {
  const h = await head(kv)
  if (h === undefined) return []
  const entries = Object.entries(h.values)
  const out = ['', ctx.paint('bold', `channels at ${h.id} (${entries.length})`)]
  if (entries.length > 0) out.push(...fields(entries.map(([ch, v]) => [ch, compact(v, ctx.columns - 30)]), ctx.paint, '  '))
  return out
}

const runsShow: Command = {
  name: 'runs show',
  args: ['run'],
  summary: "a run's info, lineage, children, contents and log",
  description: [
    "Shows a run: its info, its lineage (the run and its ancestors), its children, how much each primitive holds",
    "(kv keys, events, state cells, JSON documents, traces and trace roots, machine instances) and the last",
    "commits of its log (db.runs.log): the versions to give `replay --at` and what each one wrote. For a LangGraph",
    "thread's run (in-mem/langgraph), its checkpoints and the channel values of the newest, decoded.",
  ],
  options: {
    limit: { type: 'string', short: 'n', value: '<n>', help: 'show the last n commits of the log (default 20; 0: all)' },
    ...OWNER_TOKEN,
  },
  examples: ['runs show 01936f0e-8c2a-7d41-9a53-3f0a9c1e2b7d', 'runs show 3f0a9c1e2b7d -n 0 --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const info = await resolveRun(db, ctx.args.run!)
      const n = integer('-n', ctx.values.limit, 0) ?? 20
      const report = await runReport(db, info, undefined, n)
      if (ctx.json) {
        emit(ctx, report)
        return 0
      }
      const { lineage, children, log, counts: c } = report
      const eventHead = report.head ?? undefined
      const graph = report.langgraph
      const thread = graph?.thread
      const scope = db.scope(info.id)
      const pairs: [string, string][] = [
        ['run', ctx.paint('bold', info.id)],
        ['name', info.name ?? '-'],
        ['status', statusPaint(ctx, info.status)],
        ['parent', info.parent ?? '-'],
        ['tags', info.tags.join(', ') || '-'],
      ]
      if (info.metadata !== undefined) pairs.push(['metadata', compact(info.metadata, ctx.columns - 12)])
      pairs.push(['created', time(info.createdAt, true)])
      pairs.push(['ended', info.endedAt === undefined ? '-' : `${time(info.endedAt, true)} (after ${duration(info.endedAt - info.createdAt)})`])
      if (info.error !== undefined) pairs.push(['error', ctx.paint('red', info.error)])
      if (lineage.length > 1) pairs.push(['lineage', lineage.map((r) => shortRun(r.id) + (r.name ? ` "${r.name}"` : '')).join(' ← ')])
      ctx.out(...fields(pairs, ctx.paint))

      ctx.out('', ctx.paint('bold', 'contents'))
      const headText = eventHead ? ` (head #${eventHead.sequence} ${eventHead.type} ${shortHash(eventHead.hash)})` : ''
      ctx.out(
        ...fields(
          [
            ['kv', plural(c.kv, 'key')],
            ['events', `${plural(c.events, 'event')}${headText}`],
            ['state', plural(c.state, 'cell')],
            ['json', plural(c.json, 'document')],
            ['traces', `${plural(c.traces, 'trace')} (${plural(c.traceRoots, 'root')})`],
            ['machines', plural(c.machines, 'instance')],
            ['vectors', plural(c.vectors, 'vector')],
          ],
          ctx.paint,
          '  ',
        ),
      )

      if (graph !== undefined) ctx.out(...(await threadLines(ctx, graph.thread, scope.kv, graph.checkpoints, c.kv)))

      ctx.out('', ctx.paint('bold', `children (${children.length})`))
      if (children.length > 0) {
        ctx.out(
          ...table(
            [{ header: 'ID' }, { header: 'NAME', max: 32 }, { header: 'STATUS', paint: (s) => statusPaint(ctx, s) }, { header: 'CREATED' }],
            children.map((r) => [r.id, r.name ?? '-', r.status, time(r.createdAt)]),
            ctx.paint,
          ).map((l) => `  ${l}`),
        )
      }

      const shown = n === 0 ? log : log.slice(-n)
      const note = shown.length < log.length ? `, the last ${shown.length}; -n 0 for all` : ''
      ctx.out('', ctx.paint('bold', `log (${plural(log.length, 'commit')}${note})`))
      if (info.parent !== undefined && lineage.length > 1) {
        ctx.out(ctx.paint('dim', '  (its own commits; what it holds from its parent is in the parent\'s log)'))
      }
      if (shown.length > 0) {
        ctx.out(
          ...table(
            [{ header: 'VERSION', right: true }, { header: 'WRITES', max: Math.max(40, ctx.columns - 12) }],
            shown.map((cm) => [String(cm.version), summarizeWrites(cm, thread !== undefined)]),
            ctx.paint,
          ).map((l) => `  ${l}`),
        )
      }
      return 0
    }),
}

// ---------------------------------------------------------------- events

function eventTable(ctx: Context, events: Event[], indent = ''): string[] {
  const payloadWidth = Math.max(24, ctx.columns - 70)
  return table(
    [
      { header: 'SEQ', right: true },
      { header: 'TIME' },
      { header: 'TYPE', max: 28, paint: (c) => ctx.paint('cyan', c) },
      { header: 'PAYLOAD', max: payloadWidth },
      { header: 'HASH', paint: (c) => ctx.paint('dim', c) },
    ],
    events.map((e) => [String(e.sequence), time(e.timestamp, true), e.type, compact(e.payload), shortHash(e.hash)]),
    ctx.paint,
  ).map((l) => indent + l)
}

const eventsTail: Command = {
  name: 'events tail',
  args: ['run'],
  summary: "the last events of a run's log",
  description: ["Prints the last n events of a run's EventLog: sequence, time, type, payload (compact JSON) and the first 12 hex digits of its hash."],
  options: {
    lines: { type: 'string', short: 'n', value: '<n>', help: 'how many events (default 20; 0: all)' },
    type: { type: 'string', value: '<type>', help: 'only events of this type' },
    ...OWNER_TOKEN,
  },
  examples: ['events tail 3f0a9c1e2b7d', 'events tail 3f0a9c1e2b7d -n 5 --type tool.called --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const info = await resolveRun(db, ctx.args.run!)
      const n = integer('-n', ctx.values.lines, 0) ?? 20
      const type = ctx.values.type as string | undefined
      const report = await tailReport(db, info.id, n, type)
      if (ctx.json) {
        emit(ctx, report)
        return 0
      }
      const { length, events } = report
      const of = type === undefined ? '' : ` of type ${type}`
      if (events.length === 0) {
        ctx.out(`${runLabel(info, info.id)}: ${plural(length, 'event')}, none${of} to show`)
        return 0
      }
      ctx.out(`${runLabel(info, info.id)}: ${plural(length, 'event')}; the last ${events.length}${of}:`)
      ctx.out(...eventTable(ctx, events))
      return 0
    }),
}

const eventsVerify: Command = {
  name: 'events verify',
  args: ['run'],
  instead: 'all',
  summary: "recompute a run's event hash chain (exit 1 if broken)",
  description: [
    "Recomputes the SHA-256 hash chain of a run's EventLog (or of every run's, with --all) and says whether",
    'it is intact; when it is not, names the first event that does not fit and why, and exits with 1.',
  ],
  options: { all: { type: 'boolean', help: 'verify every run' }, ...OWNER_TOKEN },
  examples: ['events verify 3f0a9c1e2b7d', 'events verify --all --json ./agent-data'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const all = ctx.values.all === true
      const runs = all ? await db.runs.list() : [await resolveRun(db, ctx.args.run!)]
      const results: (Verification & { run: string })[] = []
      for (const r of runs) results.push({ run: r.id, ...(await db.events.verify(r.id)) })
      const bad = results.filter((r) => !r.valid)
      if (ctx.json) {
        emit(ctx, all ? { valid: bad.length === 0, runs: results } : results[0])
        return bad.length === 0 ? 0 : 1
      }
      const line = (v: Verification & { run: string }) =>
        v.valid
          ? `${ctx.paint('green', '✓ valid')}: ${plural(v.length, 'event')}, hash chain intact`
          : `${ctx.paint('red', '✗ invalid')} at sequence ${v.firstInvalid} of ${v.length}: ${v.reason ?? 'the chain is broken'}`
      if (!all) {
        const info = runs[0]
        ctx.out(`${runLabel(info, info.id)}: ${line(results[0])}`)
      } else if (results.length === 0) {
        ctx.out('no runs')
      } else {
        for (const r of results) ctx.out(`${r.run}  ${line(r)}`)
        ctx.out(bad.length === 0 ? ctx.paint('green', `all ${plural(results.length, 'run')} valid`) : ctx.paint('red', `${bad.length} of ${plural(results.length, 'run')} invalid`))
      }
      return bad.length === 0 ? 0 : 1
    }),
}

// ---------------------------------------------------------------- vectors

const vectorsList: Command = {
  name: 'vectors list',
  args: ['run'],
  summary: "a run's vector collections: dimension, metric and how many vectors",
  description: ["Lists the vector collections of a run (db.vectors): each one's name, dimension, metric and number of vectors."],
  options: { ...OWNER_TOKEN },
  examples: ['vectors list 3f0a9c1e2b7d', 'vectors list 3f0a9c1e2b7d --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const info = await resolveRun(db, ctx.args.run!)
      const collections = []
      for (const c of await db.vectors.collections(info.id)) collections.push({ ...c, count: await db.vectors.count(info.id, c.name) })
      if (ctx.json) {
        emit(ctx, { run: info.id, collections })
        return 0
      }
      if (collections.length === 0) {
        ctx.out(`${runLabel(info, info.id)}: no vector collections`)
        return 0
      }
      ctx.out(`${runLabel(info, info.id)}: ${plural(collections.length, 'collection')}`)
      ctx.out(
        ...table(
          [{ header: 'COLLECTION', max: 40 }, { header: 'DIMENSION', right: true }, { header: 'METRIC' }, { header: 'VECTORS', right: true }],
          collections.map((c) => [c.name, String(c.dimension), c.metric, String(c.count)]),
          ctx.paint,
        ),
      )
      return 0
    }),
}

const vectorsSearch: Command = {
  name: 'vectors search',
  args: ['run', 'collection'],
  summary: 'the vectors of a collection nearest a stored one',
  description: [
    'Searches a collection for the k vectors nearest the vector stored under --near (itself included), as',
    'db.vectors.search does: best first, with the score (cosine similarity, dot product or negated L2 distance)',
    'and the metadata; --filter takes the same MongoDB-style filter as JSON.',
  ],
  options: {
    near: { type: 'string', value: '<id>', help: 'the id of the vector to search near (required)' },
    k: { type: 'string', short: 'k', value: '<n>', help: 'how many results (default 10)' },
    filter: { type: 'string', value: '<json>', help: 'a metadata filter, e.g. \'{"kind":"fact"}\'' },
    exact: { type: 'boolean', help: 'score every vector instead of walking the index' },
    ...OWNER_TOKEN,
  },
  examples: ['vectors search 3f0a9c1e2b7d notes --near n1', 'vectors search 3f0a9c1e2b7d notes --near n1 -k 3 --filter \'{"kind":"fact"}\' --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const info = await resolveRun(db, ctx.args.run!)
      const collection = ctx.args.collection!
      const near = ctx.values.near as string | undefined
      if (near === undefined) throw new UsageError('give --near <id>: the vector to search near', 'vectors search')
      const k = integer('-k', ctx.values.k, 1) ?? 10
      let filter: Record<string, unknown> | undefined
      if (ctx.values.filter !== undefined) {
        try {
          filter = JSON.parse(ctx.values.filter as string) as Record<string, unknown>
        } catch (e) {
          throw new UsageError(`--filter is not JSON: ${(e as Error).message}`, 'vectors search')
        }
      }
      const from = await db.vectors.get(info.id, collection, near)
      if (from === undefined) throw new NotFoundError(`no vector ${JSON.stringify(near)} in collection ${JSON.stringify(collection)} of run ${info.id}`, { run: info.id, collection, id: near })
      const hits = await db.vectors.search(info.id, collection, from.vector, { k, filter: filter as never, exact: ctx.values.exact === true })
      if (ctx.json) {
        emit(ctx, { run: info.id, collection, near, hits })
        return 0
      }
      ctx.out(`${runLabel(info, info.id)} ${collection}: ${plural(hits.length, 'vector')} nearest ${near}`)
      ctx.out(
        ...table(
          [{ header: 'ID', max: 40 }, { header: 'SCORE', right: true }, { header: 'METADATA', max: Math.max(20, ctx.columns - 60) }],
          hits.map((h) => [h.id, h.score.toFixed(4), h.metadata === undefined ? '-' : compact(h.metadata)]),
          ctx.paint,
        ),
      )
      return 0
    }),
}

// ---------------------------------------------------------------- replay

function traceSummary(t: Trace): string {
  const d = t.data as Record<string, unknown>
  switch (t.type) {
    case 'tool_call': {
      let s = `${String(d.tool)}(${compact(d.arguments)})`
      if (d.result !== undefined) s += ` → ${compact(d.result)}`
      if (typeof d.durationMs === 'number') s += ` ${d.durationMs} ms`
      return s
    }
    case 'decision':
      return `${String(d.question)} → ${compact(d.chosen)}${Array.isArray(d.options) ? ` of ${compact(d.options)}` : ''}${d.reasoning ? ` (${String(d.reasoning)})` : ''}`
    case 'thought':
      return String(d.content)
    case 'query':
      return `${String(d.query)}${d.source ? ` @ ${String(d.source)}` : ''}${Array.isArray(d.results) ? ` → ${plural(d.results.length, 'result')}` : ''}`
    case 'error':
      return `${String(d.message)}${d.code ? ` [${String(d.code)}]` : ''}`
    default:
      return compact(t.data)
  }
}

/** How many traces a forest holds. */
function treeSize(nodes: TraceNode[]): number {
  return nodes.reduce((n, node) => n + 1 + treeSize(node.children), 0)
}

function traceTree(ctx: Context, nodes: TraceNode[], prefix = '  '): string[] {
  const out: string[] = []
  nodes.forEach((node, i) => {
    const last = i === nodes.length - 1
    const t = node.trace
    const tags = t.tags.length > 0 ? ctx.paint('dim', ` [${t.tags.join(',')}]`) : ''
    const head = `${prefix}${last ? '└─ ' : '├─ '}${ctx.paint('cyan', t.type)} `
    const room = Math.max(20, ctx.columns - prefix.length - t.type.length - 8)
    out.push(`${head}${truncate(traceSummary(t), room)}${tags}`)
    out.push(...traceTree(ctx, node.children, prefix + (last ? '   ' : '│  ')))
  })
  return out
}

function machineLine(m: MachineInstance): string {
  return `${m.machine} v${m.version}, state ${m.state}, revision ${m.revision}, context ${compact(m.context)}`
}

const replay: Command = {
  name: 'replay',
  args: ['run'],
  summary: 'the state of a run at a version (default: now)',
  description: [
    "Rebuilds a run as it was at a commit version (db.replay): its KV entries, state cells, JSON documents",
    "(ids taken from the run's log), its event count, head and last events, its trace tree and machine",
    "instances. `runs show` lists the versions of the run's commits; --event picks the commit that appended",
    "an event. For a LangGraph thread's run, the channel values of its newest checkpoint then, and its entries decoded.",
  ],
  options: {
    at: { type: 'string', value: '<version>', help: 'the commit version to show the run at (default: the newest)' },
    event: { type: 'string', value: '<seq>', help: 'the version at which event <seq> was appended, instead of --at' },
    events: { type: 'string', short: 'n', value: '<n>', help: 'how many of the last events to list (default 5; 0: none)' },
    max: { type: 'string', value: '<n>', help: 'list at most n KV entries, cells, documents and instances each (default 50; 0: all; --json lists all)' },
    ...OWNER_TOKEN,
  },
  examples: ['replay 3f0a9c1e2b7d --at 42', 'replay 3f0a9c1e2b7d --event 3 --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const info = await resolveRun(db, ctx.args.run!)
      const at = integer('--at', ctx.values.at, 0)
      const ev = integer('--event', ctx.values.event, 0)
      if (at !== undefined && ev !== undefined) throw new UsageError('give --at or --event, not both', 'replay')
      const nEvents = integer('-n', ctx.values.events, 0) ?? 5
      const max = integer('--max', ctx.values.max, 0) ?? 50
      const report = await replayReport(db, info.id, { at, event: ev, tail: nEvents })
      if (ctx.json) {
        emit(ctx, report)
        return 0
      }
      const { at: version, newest, kv, state, json, traces, machines } = report
      const { length, head, tail } = report.events
      const ownCommits = (await db.runs.log(info.id)).filter((c) => c.version <= version).length
      const w = ctx.columns
      ctx.out(
        `${ctx.paint('bold', runLabel(info, info.id))} at version ${ctx.paint('bold', String(version))}` +
          ctx.paint('dim', ` (newest ${newest}; ${plural(ownCommits, 'commit')} of its own log up to here)`),
      )
      const section = (title: string, n: number) => ctx.out('', ctx.paint('bold', `${title} (${n})`))
      const capped = <T>(list: T[]): T[] => (max === 0 ? list : list.slice(0, max))
      const more = (list: unknown[]) => {
        if (max !== 0 && list.length > max) ctx.out(ctx.paint('dim', `  … ${list.length - max} more (--max 0 or --json for all)`))
      }
      if (report.langgraph !== undefined) {
        // The channel values as of that version, decoded.
        const view = await db.replay(info.id, { at: version })
        try {
          ctx.out(...(await channelLines(ctx, view.kv)))
        } finally {
          await view.close()
        }
      }
      section('kv', kv.length)
      if (kv.length > 0) {
        const kw = Math.min(32, Math.max(...capped(kv).map((e) => e.key.length)))
        for (const e of capped(kv)) ctx.out(`  ${truncate(e.key, 32).padEnd(kw)}  ${compact(e.value, w - kw - 6)}`)
        more(kv)
      }
      section('state', state.length)
      if (state.length > 0) {
        const sw = Math.min(32, Math.max(...capped(state).map((c) => c.name.length)))
        for (const c of capped(state)) ctx.out(`  ${truncate(c.name, 32).padEnd(sw)}  ${compact(c.value, w - sw - 14)}  ${ctx.paint('dim', `v${c.version}`)}`)
        more(state)
      }
      section('json', json.length)
      for (const d of capped(json)) ctx.out(`  ${d.id}  ${compact(d.value, w - d.id.length - 6)}`)
      more(json)
      section('events', length)
      if (head !== null) ctx.out(ctx.paint('dim', `  head #${head.sequence} ${head.type} ${shortHash(head.hash)}`))
      if (tail.length > 0) ctx.out(...eventTable(ctx, tail, '  '))
      section('traces', treeSize(traces))
      ctx.out(...traceTree(ctx, traces))
      section('machines', machines.length)
      for (const m of capped(machines)) ctx.out(`  ${m.id}  ${truncate(machineLine(m), w - m.id.length - 6)}`)
      more(machines)
      return 0
    }),
}

// ---------------------------------------------------------------- diff

/** A changed entry as lines: `key: a → b`, or `key` then one `path: a → b` line per differing field. */
function changedLines(key: string, a: unknown, b: unknown, w: number): string[] {
  const d = deltas(a, b)
  const side = (v: unknown) => (v === undefined ? '(none)' : compact(v))
  if (d.length === 0) return [`${key}: (timestamps only)`]
  if (d.length === 1) return [truncate(`${key}${d[0][0]}: ${side(d[0][1])} → ${side(d[0][2])}`, w)]
  return [key, ...d.map(([p, x, y]) => truncate(`    ${p}: ${side(x)} → ${side(y)}`, w))]
}

/** The parts of a trace or machine instance a diff compares (not ids and timestamps). */
function comparable(v: Trace | MachineInstance): Record<string, unknown> {
  const { id: _id, timestamp: _t, createdAt: _c, updatedAt: _u, ...rest } = v as unknown as Record<string, unknown>
  return rest
}

function diffLines<T>(
  ctx: Context,
  changes: Changes<T>,
  show: (v: T) => string,
  asCompared: (v: T) => unknown = (v) => v,
  keyText: (k: string) => string = (k) => k,
): string[] {
  const w = ctx.columns - 6
  const out: string[] = []
  for (const e of changes.removed) out.push(ctx.paint('red', `  - ${truncate(`${keyText(e.key)}: ${show(e.value)}`, w)}`))
  for (const e of changes.added) out.push(ctx.paint('green', `  + ${truncate(`${keyText(e.key)}: ${show(e.value)}`, w)}`))
  for (const e of changes.changed) {
    const [first, ...more] = changedLines(keyText(e.key), asCompared(e.a), asCompared(e.b), w)
    out.push(ctx.paint('yellow', `  ~ ${first}`), ...more.map((l) => ctx.paint('yellow', `    ${l}`)))
  }
  return out
}

/** KV changes of two thread runs with keys and values readable. */
function decodedChanges(c: Changes<unknown>): Changes<unknown> {
  const entry = (e: { key: string; value: unknown }) => ({ ...e, key: readableKey(e.key), value: readableEntry(e.key, e.value) })
  return {
    added: c.added.map(entry),
    removed: c.removed.map(entry),
    changed: c.changed.map((e) => ({ ...e, key: readableKey(e.key), a: readableEntry(e.key, e.a), b: readableEntry(e.key, e.b) })),
  }
}

/** The channel values of two threads' newest checkpoints as changes. */
function channelChanges(a: Record<string, unknown>, b: Record<string, unknown>): Changes<unknown> {
  const out: Changes<unknown> = { added: [], removed: [], changed: [] }
  for (const [key, value] of Object.entries(a)) if (!(key in b)) out.removed.push({ key, value })
  for (const [key, value] of Object.entries(b)) {
    const was = a[key]
    if (!(key in a)) out.added.push({ key, value })
    else if (Array.isArray(was) && Array.isArray(value)) {
      // A list channel (messages): item by item.
      for (let i = 0; i < Math.max(was.length, value.length); i++) {
        const k = `${key}[${i}]`
        if (i >= was.length) out.added.push({ key: k, value: value[i] })
        else if (i >= value.length) out.removed.push({ key: k, value: was[i] })
        else if (deltas(was[i], value[i]).length > 0) out.changed.push({ key: k, a: was[i], b: value[i] })
      }
    } else if (deltas(was, value).length > 0) out.changed.push({ key, a: was, b: value })
  }
  return out
}

/** An event in a diff: its type and payload; a machine transition as `event: from → to`. */
function eventText(e: Event): string {
  const p = e.payload as Record<string, unknown> | null
  if (e.type === 'machine.transition' && p !== null && typeof p === 'object' && 'from' in p && 'to' in p) {
    return `${e.type} ${String(p.instance)} ${String(p.event)}: ${String(p.from)} → ${String(p.to)}`
  }
  return `${e.type} ${compact(e.payload)}`
}

const diff: Command = {
  name: 'diff',
  args: ['a', 'b'],
  summary: 'what differs between two runs (typically a fork and its parent)',
  description: [
    'Compares two runs as they are now (db.diff), by user key and per primitive: `+` an entry only in <b>,',
    '`-` one only in <a>, `~` one in both with different values (a → b). For the event logs, the prefix they',
    'share and the two tails after it. For two LangGraph threads, the channel values of their newest checkpoints',
    'first, and every entry decoded. Green, red and yellow on a terminal. Exits 0 whether or not they differ.',
  ],
  options: { ...OWNER_TOKEN },
  examples: ['diff 3f0a9c1e2b7d 8d41c07a9e55', 'diff <parent> <fork> --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const a = await resolveRun(db, ctx.args.a!)
      const b = await resolveRun(db, ctx.args.b!)
      const raw: RunDiff = await db.diff(a.id, b.id)
      const threads = threadOf(a) !== undefined && threadOf(b) !== undefined
      const d: RunDiff = threads ? { ...raw, kv: decodedChanges(raw.kv) as RunDiff['kv'] } : raw
      const graph = threads ? channelChanges((await head(db.scope(a.id).kv))?.values ?? {}, (await head(db.scope(b.id).kv))?.values ?? {}) : undefined
      if (ctx.json) {
        emit(ctx, graph === undefined ? d : { ...d, langgraph: graph })
        return 0
      }
      const p = ctx.paint
      ctx.out(`${p('red', `--- a ${runLabel(a, a.id)}`)}`, `${p('green', `+++ b ${runLabel(b, b.id)}`)}`)
      if (d.same) {
        ctx.out('', p('green', 'no differences'))
        return 0
      }
      const val = (v: unknown) => compact(v)
      const sections: [string, string[]][] = [
        ['langgraph channels (newest checkpoints)', graph === undefined ? [] : diffLines(ctx, graph, val)],
        ['kv', diffLines(ctx, d.kv, val)],
        ['state', diffLines(ctx, d.state, val)],
        ['json', diffLines(ctx, d.json, val)],
        ['traces', diffLines(ctx, d.traces, (t) => `${t.type} ${traceSummary(t)}`, comparable, shortRun)],
        ['machines', diffLines(ctx, d.machines, machineLine, comparable)],
      ]
      for (const [name, lines] of sections) if (lines.length > 0) ctx.out('', p('bold', name), ...lines)
      const ev = d.events
      if (ev.a.length > 0 || ev.b.length > 0) {
        ctx.out('', `${p('bold', 'events')} ${p('dim', `(${ev.common} in common, then ${ev.a.length} only in a and ${ev.b.length} only in b)`)}`)
        const w = ctx.columns - 8
        for (const e of ev.a) ctx.out(p('red', `  - a #${e.sequence} ${truncate(eventText(e), w)}`))
        for (const e of ev.b) ctx.out(p('green', `  + b #${e.sequence} ${truncate(eventText(e), w)}`))
      }
      const tally = (name: string, c: Changes<unknown>) =>
        c.added.length + c.removed.length + c.changed.length === 0 ? [] : [`${name} +${c.added.length} -${c.removed.length} ~${c.changed.length}`]
      const summary = [
        ...tally('kv', d.kv),
        ...tally('state', d.state),
        ...tally('json', d.json),
        ...tally('traces', d.traces as Changes<unknown>),
        ...tally('machines', d.machines as Changes<unknown>),
        `events ${ev.common} common, a +${ev.a.length}, b +${ev.b.length}`,
      ]
      ctx.out('', p('dim', summary.join(' · ')))
      return 0
    }),
}

// ---------------------------------------------------------------- stats

/** Files and bytes under `dir/sub`, by extension. */
function diskUsage(dir: string): { wal: { files: number; bytes: number }; checkpoints: { files: number; bytes: number } } {
  const sum = (sub: string, ext: string) => {
    const p = join(dir, sub)
    if (!existsSync(p)) return { files: 0, bytes: 0 }
    let files = 0
    let total = 0
    for (const f of readdirSync(p)) {
      if (!f.endsWith(ext)) continue
      files++
      total += statSync(join(p, f)).size
    }
    return { files, bytes: total }
  }
  return { wal: sum('wal', '.wal'), checkpoints: sum('checkpoints', '.ckpt') }
}

const stats: Command = {
  name: 'stats',
  args: [],
  summary: "the database's figures: version, runs, keys, memory, WAL, recovery, disk",
  description: [
    "Opens the directory and prints db.stats(): the newest commit version, runs and keys, the bytes of keys,",
    'newest values and older versions held in memory (for the owner: its own), what recovery',
    'replayed (records, segments, the checkpoint it started from, a torn tail, orphaned runs, repairs), and the',
    'size of the WAL and checkpoint files on disk. The WAL counters count this process only, so they are zero.',
    "Run through the directory's owner (see serve), they are the owner's, recovery is the owner's open, and a",
    'line names where it serves.',
  ],
  options: { ...OWNER_TOKEN },
  examples: ['stats', 'stats ./agent-data --json'],
  run: (ctx) =>
    withDb(ctx, async (db) => {
      const s = await db.stats()
      const disk = diskUsage(ctx.dir)
      if (ctx.json) {
        emit(ctx, { ...s, disk })
        return 0
      }
      const r = s.recovery
      const p = ctx.paint
      const served: [string, string][] = s.server === null ? [] : [['served by', `process ${ownerPid(ctx.dir) ?? '?'} at ${s.server.urls.join(', ')}`]]
      ctx.out(
        ...fields(
          [
            ['directory', s.path ?? '-'],
            ...served,
            ['version', String(s.version)],
            ['runs', s.runs.toLocaleString('en-US')],
            ['keys', `${s.keys.toLocaleString('en-US')} in memory (every primitive and index, tombstones included; ${s.memory.packedKeys.toLocaleString('en-US')} packed)`],
            ['memory', `${bytes(s.memory.liveBytes)} of keys and newest values; history ${s.memory.historyVersions.toLocaleString('en-US')} older versions, ${bytes(s.memory.historyBytes)}; indexes about ${bytes(s.memory.indexBytes)}`],
            ['history', `${s.memory.historyOnDisk.versions.toLocaleString('en-US')} older versions on disk in ${plural(s.memory.historyOnDisk.files, 'file')}, ${bytes(s.memory.historyOnDisk.bytes)} (read back by replay, fork and diff)`],
            ['cold runs', `${s.memory.cold.runs.toLocaleString('en-US')} out of memory (${bytes(s.memory.cold.bytes)} of data in ${plural(s.memory.cold.files, 'cold file')}, ${bytes(s.memory.cold.fileBytes)} on disk; loaded back when read)`],
            ['wal', `${plural(disk.wal.files, 'segment')}, ${bytes(disk.wal.bytes)} on disk`],
            ['checkpoints', disk.checkpoints.files === 0 ? 'none' : `${plural(disk.checkpoints.files, 'file')}, ${bytes(disk.checkpoints.bytes)}; recovery started from version ${r.checkpointVersion}`],
          ],
          p,
        ),
        '',
        p('bold', s.server === null ? 'recovery (this open)' : "recovery (the owner's open)"),
        ...fields(
          [
            ['replayed', `${plural(r.records, 'WAL record')} after the checkpoint (${bytes(r.bytes)} of ${plural(r.segments, 'segment')} read) in ${duration(r.durationMs)}`],
            ['last commit', r.lastVersion === 0 ? '-' : `version ${r.lastVersion}${r.lastCommitAt > 0 ? ` at ${time(r.lastCommitAt, true)}` : ''}`],
            ['torn tail', r.tornTail === null ? 'none' : p('yellow', `${r.tornTail.droppedBytes} bytes cut from ${r.tornTail.file} at ${r.tornTail.offset}`)],
            ['orphaned runs', r.orphanedRuns.length === 0 ? 'none' : p('yellow', `${r.orphanedRuns.length} (active when the writer stopped): ${r.orphanedRuns.map(shortRun).join(', ')}`)],
            ['checkpoint', r.checkpointFallback === null ? 'ok' : p('yellow', `fell back to the previous one: ${r.checkpointFallback}`)],
            ['repairs', r.repairs.length === 0 ? 'none' : p('yellow', r.repairs.map((x) => `${x.file}@${x.offset}: ${x.reason} (${bytes(x.droppedBytes)} saved to ${x.savedTo})`).join('; '))],
          ],
          p,
          '  ',
        ),
      )
      return 0
    }),
}

// ---------------------------------------------------------------- checkpoint

const checkpoint: Command = {
  name: 'checkpoint',
  args: [],
  summary: 'write a checkpoint now (a progress bar on a terminal)',
  description: [
    'Writes a checkpoint of the directory (db.checkpoint): a compressed image at the newest version, after',
    'which WAL segments it covers are deleted. The one command that writes. A progress bar goes to stderr',
    'when it is a terminal (or with --progress); the result is one line on stdout. On a directory its owner',
    'serves, the owner writes the checkpoint (and the bar is drawn once, when it is done).',
  ],
  options: { progress: { type: 'boolean', help: 'draw the progress bar on stderr even when it is not a terminal' }, ...OWNER_TOKEN },
  examples: ['checkpoint ./agent-data', 'checkpoint --json'],
  run: (ctx) =>
    withDb(ctx, async (db, local) => {
      const drawing = !ctx.json && (ctx.stderrTTY || ctx.values.progress === true)
      let drawn = false
      // Opened here, the checkpoint reports its progress as it goes; run by the owner, once at the end.
      const report = await (local ?? db).checkpoint({
        progressIntervalMs: 50,
        onProgress: drawing
          ? (pr) => {
              drawn = true
              const total = Math.max(pr.entriesTotal, pr.entriesWritten)
              const text = `${bar(pr.running ? pr.entriesWritten : total, total, pr.running)}  ${pr.entriesWritten.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} entries`
              ctx.err(ctx.stderrTTY ? `\r\u001b[2K${text}` : `${text}\n`)
            }
          : undefined,
      })
      if (drawn && ctx.stderrTTY) ctx.err('\r\u001b[2K')
      if (ctx.json) {
        emit(ctx, report)
        return 0
      }
      if (report === null) ctx.out('nothing to checkpoint (a memory-only database)')
      else if (report.unchanged) ctx.out(`already checkpointed at version ${report.version}: nothing written`)
      else {
        ctx.out(
          `${ctx.paint('green', 'checkpoint')} at version ${report.version}: ${plural(report.entries, 'entry', 'entries')}, ${bytes(report.bytes)} in ${duration(report.durationMs)}; ` +
            `${plural(report.removedSegments, 'WAL segment')} removed`,
        )
      }
      return 0
    }, true),
}

// ---------------------------------------------------------------- mcp

const DURABILITIES = ['buffered', 'strict'] as const

const mcp: Command = {
  name: 'mcp',
  args: [],
  summary: 'serve the directory to an agent over the Model Context Protocol (stdio)',
  description: [
    'Serves the data directory (created if absent) as an MCP server on stdin/stdout, for desktop and IDE agents:',
    'tools for runs, KV, state, JSON, events, traces, vector search, replay and diff, the knowledge-graph tools',
    'of the reference memory server (create_entities, read_graph, ...), and the resources inmem://runs,',
    'inmem://runs/{id} and inmem://runs/{id}/events. It runs until the client closes stdin (or SIGINT/SIGTERM),',
    'then closes the database. stdout carries only the protocol; logs go to stderr. The README has the',
    'configuration an MCP client takes. A directory open in another process is served through that process when it',
    'serves (db.serve(), or in-mem serve: its socket is named in <dir>/SERVER; the token, if it needs one, is read from',
    '--token-file or $IN_MEM_TOKEN); when it does not, it is refused (LockedError, with its pid and how to serve it).',
  ],
  options: {
    'read-only': { type: 'boolean', help: 'only the tools that read; the directory is opened read-only (it must exist)' },
    durability: { type: 'string', value: '<mode>', help: 'buffered (default: a tool call returns once its commit is written to the OS) or strict (once fsynced)' },
    'token-file': { type: 'string', value: '<path>', help: "the owner's token, for a directory served by the process that holds it (default: $IN_MEM_TOKEN)" },
  },
  examples: ['mcp --dir ./agent-data', 'mcp --dir ./agent-data --durability strict', 'mcp --dir ./agent-data --read-only'],
  run: async (ctx) => {
    const durability = (ctx.values.durability ?? 'buffered') as string
    if (!(DURABILITIES as readonly string[]).includes(durability)) {
      throw new UsageError(`--durability must be one of ${DURABILITIES.join(', ')}, not ${JSON.stringify(durability)}`, 'mcp')
    }
    // Loaded here, so that no other command loads the MCP SDK.
    const { serveStdio } = await import('../mcp/stdio.js')
    return serveStdio({
      dir: ctx.dir,
      readOnly: ctx.values['read-only'] === true,
      durability: durability as (typeof DURABILITIES)[number],
      log: (line) => ctx.err(`${line}\n`),
      tokenFile: typeof ctx.values['token-file'] === 'string' ? ctx.values['token-file'] : undefined,
    })
  },
}

// ---------------------------------------------------------------- serve

/** A PEM file's contents. */
function readPem(option: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (e) {
    throw new UsageError(`cannot read ${option} ${file}: ${(e as Error).message}`, 'serve')
  }
}

const serve: Command = {
  name: 'serve',
  args: [],
  summary: 'own the directory and serve it to other processes (Database.connect, and these commands)',
  description: [
    'Opens the data directory (created if absent) and serves it (db.serve): on the Unix socket in-mem.sock in',
    'the directory (mode 0600: this user only), and on TCP too with --listen, which needs a token. Prints the',
    'URLs clients pass to Database.connect, one per line (with --json, one line: {"url", "urls", "pid", "dir"}),',
    'then serves until SIGINT or SIGTERM, when it closes the server and the database and exits 0. While it',
    'serves, the other commands given the same directory run through it (found by the SERVER file it writes).',
  ],
  options: {
    listen: { type: 'string', value: '<host:port>', help: 'also listen on TCP (127.0.0.1:0 picks a free port); needs a token (--token-file)' },
    'token-file': { type: 'string', value: '<file>', help: 'a file holding the token every client must present (default: $IN_MEM_TOKEN; with neither, the socket alone is served, without a token)' },
    'tls-cert': { type: 'string', value: '<file>', help: 'serve TLS on the TCP listener with this certificate (chain), PEM; with --tls-key' },
    'tls-key': { type: 'string', value: '<file>', help: "the certificate's private key, PEM" },
    durability: { type: 'string', value: '<mode>', help: 'buffered (default: a commit returns once written to the OS) or strict (once fsynced)' },
  },
  examples: ['serve --dir ./agent-data', 'serve --dir ./agent-data --listen 127.0.0.1:7070 --token-file ./token', 'serve --listen 0.0.0.0:7070 --token-file t --tls-cert cert.pem --tls-key key.pem'],
  run: async (ctx) => {
    const v = ctx.values
    const durability = (v.durability ?? 'buffered') as string
    if (!(DURABILITIES as readonly string[]).includes(durability)) {
      throw new UsageError(`--durability must be one of ${DURABILITIES.join(', ')}, not ${JSON.stringify(durability)}`, 'serve')
    }
    const token = tokenOf(ctx)
    const listen = v.listen as string | undefined
    if (listen !== undefined && token === undefined) {
      throw new UsageError('--listen needs a token: pass --token-file <file> (a file holding a secret, such as 32 random bytes in hex), or set IN_MEM_TOKEN', 'serve')
    }
    const cert = v['tls-cert'] as string | undefined
    const key = v['tls-key'] as string | undefined
    if ((cert === undefined) !== (key === undefined)) throw new UsageError('TLS needs both --tls-cert and --tls-key', 'serve')
    if (cert !== undefined && listen === undefined) throw new UsageError('TLS is for the TCP listener: give --listen <host:port> too', 'serve')
    const { serveDir } = await import('./serve.js')
    return serveDir({
      dir: ctx.dir,
      durability: durability as (typeof DURABILITIES)[number],
      listen,
      token,
      tls: cert === undefined || key === undefined ? undefined : { cert: readPem('--tls-cert', cert), key: readPem('--tls-key', key) },
      ready: (urls) => {
        if (ctx.json) ctx.out(JSON.stringify({ url: urls[urls.length - 1], urls, pid: process.pid, dir: ctx.dir }))
        else ctx.out(...urls)
      },
      log: (line) => ctx.err(`${line}\n`),
    })
  },
}

/** Every command, in the order help lists them. */
export const COMMANDS: Command[] = [runsList, runsShow, eventsTail, eventsVerify, vectorsList, vectorsSearch, replay, diff, stats, checkpoint, serve, mcp]

/** The exit code of an error: 2 for usage and invalid arguments, 1 otherwise. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return 2
  if (e instanceof InMemError && e.code === 'INVALID_ARGUMENT') return 2
  return 1
}
