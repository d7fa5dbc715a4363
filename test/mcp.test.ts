// `in-mem mcp` (bin/in-mem.js → dist/mcp/stdio.js) as a subprocess, driven
// by the MCP SDK's own Client over stdio: the tools and resources it lists,
// every tool with good and bad arguments, checked against the database
// opened after the server exits; read-only mode; a locked directory; stdout
// carrying nothing but the protocol; the subpath export.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database, type RunDiff } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'
import { type Session, bin, inMemMcp, root } from './mcp-helpers.js'

const READ_TOOLS = [
  'runs_list',
  'runs_show',
  'kv_get',
  'kv_list',
  'state_get',
  'json_get',
  'events_tail',
  'events_verify',
  'traces_tree',
  'traces_query',
  'vectors_collections',
  'vectors_search',
  'replay',
  'diff',
  'read_graph',
  'search_nodes',
  'open_nodes',
]
const WRITE_TOOLS = [
  'runs_begin',
  'runs_complete',
  'runs_fail',
  'kv_put',
  'kv_delete',
  'state_set',
  'state_cas',
  'json_set',
  'json_merge',
  'events_append',
  'traces_record',
  'create_entities',
  'create_relations',
  'add_observations',
  'delete_entities',
  'delete_observations',
  'delete_relations',
]

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) removeDir(d)
})

interface Seeded {
  dir: string
  parent: string
  fork: string
}

/** A directory with a run holding a vector collection, and a fork of it that differs: written and closed by this process. */
function seed(): Seeded {
  const dir = makeTmpDir('in-mem-mcp')
  dirs.push(dir)
  const db = Database.open(dir)
  const parent = db.runs.begin({ name: 'seeded', tags: ['seed'] })
  db.vectors.create(parent, 'notes', { dimension: 3, metric: 'cosine' })
  db.vectors.upsert(parent, 'notes', 'billing', [1, 0, 0], { topic: 'billing' })
  db.vectors.upsert(parent, 'notes', 'refunds', [0.9, 0.1, 0], { topic: 'billing' })
  db.vectors.upsert(parent, 'notes', 'login', [0, 1, 0], { topic: 'auth' })
  db.kv.put(parent, 'goal', 'answer the ticket')
  db.events.append(parent, 'user.message', { text: 'my card was charged twice' })
  const fork = db.runs.fork(parent, { name: 'seeded fork' })
  db.kv.put(fork, 'goal', 'refund the charge')
  db.kv.put(fork, 'bytes', new Uint8Array([1, 2, 3]))
  db.events.append(fork, 'tool.called', { tool: 'refund' })
  db.close()
  return { dir, parent, fork }
}

/** The CLI's `--json` output for `args` on `dir`. */
function cliJson(dir: string, args: string[]): unknown {
  const r = spawnSync(process.execPath, [bin, ...args, '--json', '--dir', dir], { encoding: 'utf8', timeout: 60_000 })
  expect(r.status, r.stderr).toBe(0)
  return JSON.parse(r.stdout)
}

describe('in-mem mcp', () => {
  let s: Seeded
  let mcp: Session
  let run: string
  let other: string
  let decision: string
  let replayAt: number
  let tools: { name: string; description?: string; inputSchema: { required?: string[] }; outputSchema?: unknown; annotations?: { readOnlyHint?: boolean } }[]

  beforeAll(async () => {
    s = seed()
    mcp = await inMemMcp(s.dir)
  })

  afterAll(async () => {
    await mcp?.close()
  })

  it('lists its tools, each with a one-line description, an input and an output schema, and read-only hints that match', async () => {
    tools = (await mcp.client.listTools()).tools as typeof tools
    expect(tools.map((t) => t.name).sort()).toEqual([...READ_TOOLS, ...WRITE_TOOLS].sort())
    for (const t of tools) {
      expect(t.description, t.name).toMatch(/^[^\n]{20,400}$/)
      expect(t.inputSchema, t.name).toMatchObject({ type: 'object' })
      expect(t.outputSchema, t.name).toMatchObject({ type: 'object' })
      expect(t.annotations?.readOnlyHint, t.name).toBe(READ_TOOLS.includes(t.name))
    }
    expect(tools.find((t) => t.name === 'kv_put')!.inputSchema.required!.sort()).toEqual(['key', 'run', 'value'])
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
    expect(mcp.client.getServerVersion()).toMatchObject({ name: 'in-mem', version: pkg.version })
  })

  it('lists its resources: inmem://runs, one per run, and the two templates', async () => {
    const { resources } = await mcp.client.listResources()
    const uris = resources.map((r) => r.uri)
    expect(uris).toContain('inmem://runs')
    expect(uris).toContain(`inmem://runs/${s.parent}`)
    expect(uris).toContain(`inmem://runs/${s.fork}`)
    const { resourceTemplates } = await mcp.client.listResourceTemplates()
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual(['inmem://runs/{id}', 'inmem://runs/{id}/events'])
  })

  it('runs: begin, list, show, complete and fail', async () => {
    const begun = await mcp.ok<{ run: { id: string; name: string; status: string; tags: string[]; metadata: unknown } }>('runs_begin', {
      name: 'triage',
      tags: ['support'],
      metadata: { ticket: 42 },
    })
    expect(begun.run).toMatchObject({ name: 'triage', status: 'active', tags: ['support'], metadata: { ticket: 42 } })
    run = begun.run.id
    other = (await mcp.ok<{ run: { id: string; parent: string } }>('runs_begin', { name: 'doomed', parent: run })).run.id
    const listed = await mcp.ok<{ runs: { id: string }[] }>('runs_list', {})
    expect(listed.runs.map((r) => r.id)).toEqual([s.parent, s.fork, run, other])
    expect((await mcp.ok<{ runs: { id: string }[] }>('runs_list', { tag: 'support' })).runs.map((r) => r.id)).toEqual([run])
    expect((await mcp.ok<{ runs: { id: string }[] }>('runs_list', { parent: run })).runs.map((r) => r.id)).toEqual([other])
    expect((await mcp.ok<{ runs: { id: string }[] }>('runs_list', { limit: 1, after: s.fork })).runs.map((r) => r.id)).toEqual([run])
    const shown = await mcp.ok<{ lineage: { id: string }[]; children: { id: string }[]; counts: Record<string, number> }>('runs_show', { run: other })
    expect(shown.lineage.map((r) => r.id)).toEqual([other, run])
    expect(shown.counts).toEqual({ kv: 0, events: 0, state: 0, json: 0, traces: 0, traceRoots: 0, machines: 0, vectors: 0 })
    const failed = await mcp.ok<{ run: { status: string; error: string } }>('runs_fail', { run: other, error: 'gave up' })
    expect(failed.run).toMatchObject({ status: 'failed', error: 'gave up' })
  })

  it('KV: put (with a TTL), get, list and delete', async () => {
    const v1 = (await mcp.ok<{ version: number }>('kv_put', { run, key: 'plan', value: { steps: ['look up', 'refund'] } })).version
    expect(v1).toBeGreaterThan(0)
    await mcp.ok('kv_put', { run, key: 'scratch', value: null, ttlMs: 3_600_000 })
    await mcp.ok('kv_put', { run, key: 'tmp', value: 7 })
    const got = await mcp.ok<{ found: boolean; value: unknown; version: number }>('kv_get', { run, key: 'plan' })
    expect(got).toMatchObject({ found: true, value: { steps: ['look up', 'refund'] }, version: v1 })
    expect(await mcp.ok('kv_get', { run, key: 'nothing' })).toEqual({ found: false })
    expect(await mcp.ok('kv_list', { run })).toEqual({ keys: ['plan', 'scratch', 'tmp'] })
    expect(await mcp.ok('kv_list', { run, prefix: 's', values: true })).toEqual({ keys: ['scratch'], entries: [{ key: 'scratch', value: null }] })
    expect(await mcp.ok('kv_list', { run, after: 'plan', limit: 1 })).toEqual({ keys: ['scratch'] })
    expect(await mcp.ok('kv_delete', { run, key: 'tmp' })).toEqual({ deleted: true })
    expect(await mcp.ok('kv_delete', { run, key: 'tmp' })).toEqual({ deleted: false })
  })

  it('state: set, get and cas (a stale version is ok: false with the current one)', async () => {
    expect(await mcp.ok('state_set', { run, name: 'budget', value: 10 })).toEqual({ version: 1 })
    expect(await mcp.ok('state_cas', { run, name: 'budget', expectedVersion: 1, value: 9 })).toEqual({ ok: true, version: 2 })
    expect(await mcp.ok('state_cas', { run, name: 'budget', expectedVersion: 1, value: 0 })).toEqual({ ok: false, version: 2 })
    expect(await mcp.ok('state_cas', { run, name: 'fresh', expectedVersion: 0, value: 'new' })).toEqual({ ok: true, version: 1 })
    expect(await mcp.ok('state_get', { run, name: 'budget' })).toMatchObject({ found: true, value: 9, version: 2 })
    expect(await mcp.ok('state_get', { run, name: 'none' })).toEqual({ found: false })
  })

  it('JSON: set, merge and get at paths', async () => {
    expect(await mcp.ok('json_set', { run, doc: 'profile', value: { customer: { name: 'Ada', tier: 'free' } } })).toEqual({ doc: 'profile', path: '$' })
    await mcp.ok('json_merge', { run, doc: 'profile', path: '$.customer', patch: { tier: 'pro', since: 2024 } })
    await mcp.ok('json_set', { run, doc: 'profile', path: '$.notes', value: ['vip'] })
    expect(await mcp.ok('json_get', { run, doc: 'profile', path: '$.customer.tier' })).toEqual({ found: true, value: 'pro' })
    expect(await mcp.ok('json_get', { run, doc: 'profile' })).toEqual({ found: true, value: { customer: { name: 'Ada', tier: 'pro', since: 2024 }, notes: ['vip'] } })
    expect(await mcp.ok('json_get', { run, doc: 'absent' })).toEqual({ found: false })
  })

  it('events: append, tail and verify', async () => {
    const first = await mcp.ok<{ sequence: number; hash: string; prevHash: string }>('events_append', { run, type: 'user.message', payload: { text: 'charged twice' } })
    expect(first.sequence).toBe(0)
    expect(first.prevHash).toBe('0'.repeat(64))
    const second = await mcp.ok<{ sequence: number; prevHash: string }>('events_append', { run, type: 'agent.note' })
    expect(second).toMatchObject({ sequence: 1, prevHash: first.hash })
    const tail = await mcp.ok<{ length: number; events: { sequence: number; payload: unknown }[] }>('events_tail', { run, limit: 1 })
    expect(tail.length).toBe(2)
    expect(tail.events.map((e) => [e.sequence, e.payload])).toEqual([[1, null]])
    expect((await mcp.ok<{ events: unknown[] }>('events_tail', { run, type: 'user.message' })).events).toHaveLength(1)
    expect(await mcp.ok('events_verify', { run })).toEqual({ run, valid: true, length: 2 })
  })

  it('traces: record, tree and query', async () => {
    decision = (
      await mcp.ok<{ id: string }>('traces_record', {
        run,
        type: 'decision',
        data: { question: 'refund?', options: ['yes', 'no'], chosen: 'yes' },
        tags: ['billing'],
      })
    ).id
    await mcp.ok('traces_record', { run, type: 'tool_call', parent: decision, data: { tool: 'refund', arguments: { amount: 10 } } })
    const tree = await mcp.ok<{ traces: { trace: { id: string }; children: { trace: { type: string } }[] }[] }>('traces_tree', { run })
    expect(tree.traces.map((n) => n.trace.id)).toEqual([decision])
    expect(tree.traces[0].children.map((c) => c.trace.type)).toEqual(['tool_call'])
    expect((await mcp.ok<{ traces: unknown[] }>('traces_tree', { run, id: decision })).traces).toHaveLength(1)
    const q = await mcp.ok<{ traces: { type: string; parent: string }[] }>('traces_query', { run, type: 'tool_call' })
    expect(q.traces).toHaveLength(1)
    expect(q.traces[0].parent).toBe(decision)
    expect((await mcp.ok<{ traces: unknown[] }>('traces_query', { run, tag: 'billing' })).traces).toHaveLength(1)
  })

  it('vectors: collections and a filtered search', async () => {
    expect(await mcp.ok('vectors_collections', { run: s.parent })).toEqual({ collections: [{ name: 'notes', dimension: 3, metric: 'cosine' }] })
    const all = await mcp.ok<{ hits: { id: string; score: number }[] }>('vectors_search', { run: s.parent, collection: 'notes', vector: [1, 0, 0], k: 2 })
    expect(all.hits.map((h) => h.id)).toEqual(['billing', 'refunds'])
    expect(all.hits[0].score).toBeCloseTo(1, 5)
    const auth = await mcp.ok<{ hits: { id: string; metadata: unknown }[] }>('vectors_search', { run: s.parent, collection: 'notes', vector: [1, 0, 0], filter: { topic: 'auth' } })
    expect(auth.hits).toEqual([expect.objectContaining({ id: 'login', metadata: { topic: 'auth' } })])
  })

  it('replay shows a run at an earlier version', async () => {
    const shown = await mcp.ok<{ log: { version: number; writes: { key: string }[] }[] }>('runs_show', { run, log: 0 })
    replayAt = shown.log.find((c) => c.writes.some((w) => w.key === 'tmp'))!.version
    const r = await mcp.ok<{ at: number; kv: { key: string; value: unknown }[]; state: unknown[]; events: { length: number } }>('replay', { run, at: replayAt })
    expect(r.at).toBe(replayAt)
    expect(r.kv.map((e) => e.key)).toEqual(['plan', 'scratch', 'tmp'])
    expect(r.state).toEqual([])
    expect(r.events.length).toBe(0)
    const byEvent = await mcp.ok<{ events: { length: number } }>('replay', { run, event: 0 })
    expect(byEvent.events.length).toBe(1)
  })

  it('diff compares a fork with its parent', async () => {
    const d = await mcp.ok<{ kv: RunDiff['kv']; events: { common: number; a: unknown[]; b: { type: string }[] }; same: boolean }>('diff', { a: s.parent, b: s.fork })
    expect(d.same).toBe(false)
    expect(d.kv.changed).toEqual([{ key: 'goal', a: 'answer the ticket', b: 'refund the charge' }])
    // Bytes come back JSON-safe, as the CLI prints them.
    expect(d.kv.added).toEqual([{ key: 'bytes', value: { $bytes: 'AQID' } }])
    expect(d.events.common).toBe(1)
    expect(d.events.b.map((e) => e.type)).toEqual(['tool.called'])
  })

  it('reads the resources as JSON', async () => {
    const read = async (uri: string): Promise<Record<string, unknown>> => {
      const r = await mcp.client.readResource({ uri })
      expect(r.contents[0].mimeType).toBe('application/json')
      return JSON.parse((r.contents[0] as { text: string }).text) as Record<string, unknown>
    }
    expect(((await read('inmem://runs')).runs as { id: string }[]).map((r) => r.id)).toEqual([s.parent, s.fork, run, other])
    const summary = await read(`inmem://runs/${run}`)
    expect(summary.run).toMatchObject({ id: run, name: 'triage' })
    expect(summary.counts).toMatchObject({ kv: 2, events: 2, state: 2, json: 1, traces: 2, traceRoots: 1 })
    const events = await read(`inmem://runs/${run}/events`)
    expect((events.events as { type: string }[]).map((e) => e.type)).toEqual(['user.message', 'agent.note'])
    await expect(mcp.client.readResource({ uri: 'inmem://runs/01890a5d-ac96-774b-bcce-b302099a8057' })).rejects.toThrow(/does not exist/)
  })

  it('answers a write to a closed run with an error result, and writes nothing', async () => {
    await mcp.ok('runs_complete', { run })
    expect(await mcp.fails('kv_put', { run, key: 'late', value: 1 })).toMatch(/RUN_CLOSED/)
    expect(await mcp.fails('events_append', { run, type: 'late' })).toMatch(/RUN_CLOSED/)
    expect(await mcp.fails('runs_complete', { run })).toMatch(/INVALID_TRANSITION/)
    expect(await mcp.ok('kv_get', { run, key: 'late' })).toEqual({ found: false })
  })

  it('answers bad arguments to every tool with an error result naming the argument, and stays up', async () => {
    const before = (await mcp.ok<{ newest: number }>('replay', { run })).newest
    // An argument no tool takes, on every tool.
    for (const name of [...READ_TOOLS, ...WRITE_TOOLS]) {
      expect(await mcp.fails(name, { bogus: 1 }), name).toMatch(/Unrecognized key: "bogus"/)
    }
    const open = (await mcp.ok<{ run: { id: string } }>('runs_begin', {})).run.id
    // A schema error names each argument's path at the end of a line: `... at ttlMs`.
    const at = (path: string) => new RegExp(`^MCP error -32602: Input validation error: Invalid arguments for tool \\w+: [\\s\\S]* at ${path.replace(/[.[\]]/g, '\\$&')}$`, 'm')
    const bad: [string, Record<string, unknown>, RegExp][] = [
      ['runs_begin', { name: 'x'.repeat(300) }, at('name')],
      ['runs_begin', { parent: '01890a5d-ac96-774b-bcce-b302099a8057' }, /NOT_FOUND/],
      ['runs_list', { status: 'sleeping' }, at('status')],
      ['runs_list', { limit: 0 }, at('limit')],
      ['runs_show', { run: 'not-a-run' }, /must be a run id.* at run$/],
      ['runs_show', { run: '01890a5d-ac96-774b-bcce-b302099a8057' }, /run 01890a5d-ac96-774b-bcce-b302099a8057 does not exist/],
      ['runs_complete', { run: 42 }, at('run')],
      ['runs_fail', { run: open, error: 42 }, at('error')],
      ['kv_get', { run: open }, at('key')],
      ['kv_put', { run: open, key: 'k', value: 1, ttlMs: -5 }, at('ttlMs')],
      ['kv_put', { run: open, key: 'k' }, /is required: any JSON value.* at value$/],
      ['kv_put', { run: open, key: 'x'.repeat(2000), value: 1 }, /key is longer than 1024 bytes \(LIMIT_EXCEEDED\)/],
      ['kv_list', { run: open, values: 'yes' }, at('values')],
      ['kv_delete', { run: open, key: '' }, at('key')],
      ['state_get', { run: open, name: 5 }, at('name')],
      ['state_set', { run: open, name: 'c' }, at('value')],
      ['state_cas', { run: open, name: 'c', expectedVersion: -1, value: 1 }, at('expectedVersion')],
      ['json_get', { run: open, doc: 'd', path: '$..[' }, /invalid JSON path "\$\.\.\[".*\(INVALID_ARGUMENT\)/],
      ['json_set', { run: open, doc: 'd', path: 'no-dollar', value: 1 }, /invalid JSON path "no-dollar".*\(INVALID_ARGUMENT\)/],
      ['json_merge', { run: open, doc: 'd', path: '$' }, at('patch')],
      ['events_append', { run: open, type: '' }, at('type')],
      ['events_tail', { run: open, limit: 1.5 }, at('limit')],
      ['events_verify', {}, at('run')],
      ['traces_record', { run: open, type: 'musing', data: {} }, at('type')],
      ['traces_record', { run: open, type: 'decision', data: { question: 'q' } }, /decision data needs options/],
      ['traces_record', { run: open, type: 'thought', data: { content: 'c' }, parent: 'nope' }, /trace id "nope" is not a UUID \(INVALID_ARGUMENT\)/],
      ['traces_tree', { run: open, id: 7 }, at('id')],
      ['traces_query', { run: open, since: 'yesterday' }, at('since')],
      ['vectors_collections', { run: 'x' }, at('run')],
      ['vectors_search', { run: s.parent, collection: 'notes', vector: [1, 0] }, /dimension/],
      ['vectors_search', { run: s.parent, collection: 'notes', vector: [1, 0, 0], filter: { topic: { $near: 1 } } }, /\$near/],
      ['vectors_search', { run: s.parent, collection: 'missing', vector: [1, 0, 0] }, /collection "missing" does not exist.*\(NOT_FOUND\)/],
      ['replay', { run: open, at: 1, event: 0 }, /give at or event, not both \(INVALID_ARGUMENT\)/],
      ['replay', { run: open, at: 10_000_000 }, /cannot replay to version 10000000.*\(INVALID_ARGUMENT\)/],
      ['diff', { a: open }, at('b')],
      ['create_entities', { entities: [{ name: 'A', entityType: 'x' }] }, at('entities[0].observations')],
      ['create_relations', { relations: [{ from: 'A', to: 'B' }] }, at('relations[0].relationType')],
      ['create_entities', { entities: [{ name: 'x'.repeat(2000), entityType: 't', observations: [] }] }, /entities\[0\]\.name is too long.*\(LIMIT_EXCEEDED\)/],
      ['add_observations', { observations: [{ entityName: 'Nobody', contents: ['x'] }] }, /Entity with name Nobody not found/],
      ['delete_entities', { entityNames: 'A' }, at('entityNames')],
      ['delete_observations', { deletions: [{ entityName: 'A' }] }, at('deletions[0].observations')],
      ['delete_relations', { relations: [{}] }, at('relations[0].from')],
      ['search_nodes', {}, at('query')],
      ['open_nodes', { names: [1] }, at('names[0]')],
      ['no_such_tool', {}, /Tool no_such_tool not found/],
    ]
    for (const [name, args, message] of bad) expect(await mcp.fails(name, args), `${name} ${JSON.stringify(args)}`).toMatch(message)
    // Nothing was written by any of them: the only commit since is the run begun above.
    expect((await mcp.ok<{ newest: number }>('replay', { run: open })).newest).toBe(before + 1)
    expect(await mcp.ok('kv_list', { run: open })).toEqual({ keys: [] })
    expect(mcp.stderr()).not.toMatch(/unexpected error/)
  })

  it('after it exits, the database holds what the tools wrote, and replay, diff, runs show and events tail match the CLI --json', async () => {
    await mcp.close()
    const db = Database.open(s.dir, { readOnly: true })
    try {
      expect(db.runs.get(run)).toMatchObject({ status: 'completed', name: 'triage', tags: ['support'], metadata: { ticket: 42 } })
      expect(db.runs.get(other)).toMatchObject({ status: 'failed', error: 'gave up', parent: run })
      expect(db.kv.list(run)).toEqual(['plan', 'scratch'])
      expect(db.kv.get(run, 'plan')).toEqual({ steps: ['look up', 'refund'] })
      expect(db.state.get(run, 'budget')).toMatchObject({ value: 9, version: 2 })
      expect(db.json.get(run, 'profile', '$.customer')).toEqual({ name: 'Ada', tier: 'pro', since: 2024 })
      expect(db.events.range(run).map((e) => e.type)).toEqual(['user.message', 'agent.note'])
      expect(db.events.verify(run).valid).toBe(true)
      expect(db.traces.get(run, decision)).toMatchObject({ type: 'decision', tags: ['billing'] })
      expect(db.traces.query(run)).toHaveLength(2)
    } finally {
      db.close()
    }
    // The same structures as the CLI's --json (the CLI first: the server will hold the directory).
    const cli = {
      replayAt: cliJson(s.dir, ['replay', run, '--at', String(replayAt)]),
      replayFork: cliJson(s.dir, ['replay', s.fork]),
      diff: cliJson(s.dir, ['diff', s.parent, s.fork]),
      show: cliJson(s.dir, ['runs', 'show', run]),
      tail: cliJson(s.dir, ['events', 'tail', run]),
    }
    const again = await inMemMcp(s.dir, '--read-only')
    try {
      expect(await again.ok('replay', { run, at: replayAt })).toEqual(cli.replayAt)
      expect(await again.ok('replay', { run: s.fork })).toEqual(cli.replayFork)
      expect(await again.ok('diff', { a: s.parent, b: s.fork })).toEqual(cli.diff)
      expect(await again.ok('runs_show', { run, log: 0 })).toEqual(cli.show)
      expect(await again.ok('events_tail', { run })).toEqual(cli.tail)
    } finally {
      await again.close()
    }
  })
})

describe('in-mem mcp --read-only', () => {
  it('lists only the reading tools, serves them, and writes nothing', async () => {
    const s = seed()
    const before = Database.open(s.dir, { readOnly: true })
    const version = before.stats().version
    before.close()
    const mcp = await inMemMcp(s.dir, '--read-only')
    try {
      const names = (await mcp.client.listTools()).tools.map((t) => t.name)
      expect(names.sort()).toEqual([...READ_TOOLS].sort())
      expect(await mcp.ok('kv_get', { run: s.parent, key: 'goal' })).toMatchObject({ found: true, value: 'answer the ticket' })
      expect(await mcp.ok('read_graph', {})).toEqual({ entities: [], relations: [] })
      expect(await mcp.fails('kv_put', { run: s.parent, key: 'k', value: 1 })).toMatch(/kv_put not found/)
      expect(await mcp.fails('create_entities', { entities: [] })).toMatch(/create_entities not found/)
    } finally {
      await mcp.close()
    }
    const after = Database.open(s.dir, { readOnly: true })
    expect(after.stats().version).toBe(version)
    expect(after.runs.list()).toHaveLength(2)
    after.close()
  })
})

describe('in-mem mcp, the process', () => {
  it('exits with the LockedError message and the holder pid when the directory is open elsewhere', () => {
    const dir = makeTmpDir('in-mem-mcp-locked')
    dirs.push(dir)
    const db = Database.open(dir)
    try {
      const r = spawnSync(process.execPath, [bin, 'mcp', '--dir', dir], { encoding: 'utf8', timeout: 60_000, input: '' })
      expect(r.status).toBe(1)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/\(LOCKED\)/)
      expect(r.stderr).toContain(`process ${process.pid}`)
    } finally {
      db.close()
    }
  })

  it('refuses a bad --durability with a usage error', () => {
    const r = spawnSync(process.execPath, [bin, 'mcp', '--dir', makeTmpDir('in-mem-mcp-usage'), '--durability', 'memory'], { encoding: 'utf8', timeout: 60_000 })
    expect(r.status).toBe(2)
    expect(r.stderr).toContain('--durability must be one of buffered, strict')
  })

  it('writes nothing but JSON-RPC messages to stdout, logs to stderr, and exits 0 when stdin closes', async () => {
    const dir = makeTmpDir('in-mem-mcp-stdout')
    dirs.push(dir)
    const child = spawn(process.execPath, [bin, 'mcp', '--dir', dir], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const send = (m: object) => child.stdin.write(`${JSON.stringify(m)}\n`)
    const replies = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (out.split('\n').filter((l) => l.trim() !== '').length >= n) {
            child.stdout.off('data', check)
            resolve()
          }
        }
        child.stdout.on('data', check)
        check()
      })
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
    await replies(1)
    send({ jsonrpc: '2.0', method: 'notifications/initialized' })
    send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'runs_begin', arguments: { name: 'raw' } } })
    send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'kv_put', arguments: { run: 'bad', key: 1 } } })
    send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'runs_show', arguments: { run: '01890a5d-ac96-774b-bcce-b302099a8057' } } })
    await replies(4)
    child.stdin.end()
    expect(await exited).toBe(0)
    const lines = out.split('\n').filter((l) => l !== '')
    expect(lines).toHaveLength(4)
    // Replies may come in any order (JSON-RPC matches them by id).
    const messages = lines.map((l) => JSON.parse(l) as { jsonrpc: string; id: number; result: { isError?: boolean } }).sort((x, y) => x.id - y.id)
    expect(messages.map((m) => [m.jsonrpc, m.id])).toEqual([
      ['2.0', 1],
      ['2.0', 2],
      ['2.0', 3],
      ['2.0', 4],
    ])
    expect(messages.map((m) => m.result.isError === true)).toEqual([false, false, true, true])
    expect(err).toContain('in-mem mcp: serving')
    // The run it began is on disk once it has exited.
    const db = Database.open(dir, { readOnly: true })
    expect(db.runs.list().map((r) => r.name)).toEqual(['raw'])
    db.close()
  })
})

describe('the in-mem/mcp entry point', () => {
  it('loads through require and import; neither the main entry nor the CLI loads the MCP SDK or zod until asked', () => {
    const script = [
      "require('in-mem')",
      "require('./dist/cli.js')",
      "const loaded = () => Object.keys(require.cache).filter((k) => /[\\\\/](@modelcontextprotocol|zod)[\\\\/]/.test(k)).length",
      'const before = loaded()',
      "const mcp = require('in-mem/mcp')",
      'console.log(JSON.stringify({ before, after: loaded(), exports: Object.keys(mcp).sort() }))',
    ].join('\n')
    const cjs = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' })
    expect(cjs.status, cjs.stderr).toBe(0)
    const r = JSON.parse(cjs.stdout) as { before: number; after: number; exports: string[] }
    expect(r.before).toBe(0)
    expect(r.after).toBeGreaterThan(0)
    expect(r.exports).toEqual(['GRAPH_TAG', 'KnowledgeGraph', 'createMcpServer'])
    const esm = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "import { createMcpServer, KnowledgeGraph } from 'in-mem/mcp'; import m from 'in-mem/mcp'; console.log(typeof createMcpServer, m.KnowledgeGraph === KnowledgeGraph)"],
      { cwd: root, encoding: 'utf8' },
    )
    expect(esm.status, esm.stderr).toBe(0)
    expect(esm.stdout.trim()).toBe('function true')
  })
})
