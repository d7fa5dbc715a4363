// `in-mem mcp` on a directory another process holds (SPEC §15): when that
// owner serves it (db.serve()), the MCP server connects to its socket and
// the tools read and write through it — the owner sees the writes, the MCP
// client sees the owner's, the answers are those `in-mem mcp` gives on the
// directory itself — and losing the owner fails a tool call with a clear
// error instead of hanging. An owner that does not serve is refused with
// how to serve; one that serves with a token needs it.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database, type RemoteDatabase } from '../dist/index.js'
import { GRAPH_TAG, KnowledgeGraph, createMcpServer } from '../dist/mcp.js'
import { makeTmpDir, removeDir } from './helpers.js'
import { type Session, bin, connect, inMemMcp } from './mcp-helpers.js'

const OWNER = join(__dirname, 'fixtures', 'mcp-owner.cjs')

/** The owner process (test/fixtures/mcp-owner.cjs), serving its directory. */
interface Owner {
  child: ChildProcessWithoutNullStreams
  pid: number
  run: string
  url: string
  /** Calls `db[facade][method](...args)` in the owner; resolves to the result, or rejects with the error code. */
  ask: (facade: string, method: string, ...args: unknown[]) => Promise<unknown>
  /** Resolves with the exit code (or signal) once the owner is gone. */
  exited: Promise<number | string | null>
}

async function startOwner(dir: string, token?: string): Promise<Owner> {
  const child = spawn(process.execPath, [OWNER, dir, ...(token === undefined ? [] : [token])], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)))
  const answers = new Map<number, (a: { ok?: unknown; error?: string }) => void>()
  let next = 1
  const info = await new Promise<{ pid: number; run: string; url: string }>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('ready ')) resolve(JSON.parse(line.slice(6)))
      else if (line.startsWith('failed ')) reject(new Error(`the owner failed: ${line}`))
      else {
        const a = JSON.parse(line) as { id: number; ok?: unknown; error?: string }
        answers.get(a.id)?.(a)
        answers.delete(a.id)
      }
    })
    void exited.then((code) => reject(new Error(`the owner exited (${code}) before it served: ${stderr}`)))
  })
  const ask = (facade: string, method: string, ...args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = next++
      answers.set(id, (a) => (a.error === undefined ? resolve(a.ok) : reject(new Error(a.error))))
      child.stdin.write(`${JSON.stringify([id, facade, method, ...args])}\n`)
    })
  return { child, ...info, ask, exited }
}

/** Resolves once the session's stderr matches `re`. */
function stderrMatches(s: Session, re: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!re.test(s.stderr())) return
      s.transport.stderr?.off('data', check)
      resolve(s.stderr())
    }
    s.transport.stderr?.on('data', check)
    check()
  })
}

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) removeDir(d)
})

describe('in-mem mcp on a directory its owner serves', () => {
  let dir: string
  let owner: Owner
  let mcp: Session
  /** The read calls compared with in-mem mcp on the directory itself, and what they answered through the owner. */
  const reads: [string, Record<string, unknown>][] = []
  const answered: unknown[] = []

  beforeAll(async () => {
    dir = makeTmpDir('in-mem-mcp-owner')
    dirs.push(dir)
    owner = await startOwner(dir)
    mcp = await inMemMcp(dir)
  })

  afterAll(async () => {
    await mcp?.close()
    if (owner?.child.exitCode === null && owner.child.signalCode === null) {
      owner.child.kill('SIGKILL')
      await owner.exited
    }
  })

  it('connects to the socket the owner named in SERVER, and says so on stderr', async () => {
    const err = await stderrMatches(mcp, /through its owner/)
    expect(err).toContain(`in-mem mcp: serving ${dir} on stdio through its owner at ${owner.url}`)
    expect(owner.url).toBe(`unix:${join(dir, 'in-mem.sock')}`)
    // Every tool is there: the owner's durability applies, the tool list does not change.
    expect((await mcp.client.listTools()).tools).toHaveLength(34)
  })

  it("reads the owner's data: runs, KV, state, JSON, events, traces, a run's summary, a replay", async () => {
    const run = owner.run
    const { runs } = await mcp.ok<{ runs: { id: string; name: string; tags: string[] }[] }>('runs_list', {})
    expect(runs.map((r) => r.id)).toEqual([run])
    expect(runs[0]).toMatchObject({ name: 'owner run', tags: ['owner'], status: 'active' })
    expect(await mcp.ok('kv_get', { run, key: 'from' })).toMatchObject({ found: true, value: 'the owner' })
    expect(await mcp.ok('kv_get', { run, key: 'pid' })).toMatchObject({ found: true, value: owner.pid })
    expect(await mcp.ok('kv_get', { run, key: 'nothing' })).toEqual({ found: false })
    expect(await mcp.ok('state_get', { run, name: 'phase' })).toMatchObject({ found: true, value: 'serving', version: 1 })
    expect(await mcp.ok('json_get', { run, doc: 'doc', path: '$.tags[1]' })).toEqual({ found: true, value: 'b' })
    expect(await mcp.ok('json_get', { run, doc: 'doc', path: '$.missing' })).toEqual({ found: false })
    expect(await mcp.ok('events_tail', { run })).toMatchObject({ run, length: 1, events: [{ sequence: 0, type: 'owner.started', payload: { pid: owner.pid } }] })
    expect(await mcp.ok('events_verify', { run })).toEqual({ run, valid: true, length: 1 })
    expect(await mcp.ok('traces_query', { run })).toMatchObject({ traces: [{ type: 'thought', data: { content: 'serving the directory' } }] })
    const shown = await mcp.ok<{ counts: Record<string, number> }>('runs_show', { run })
    expect(shown.counts).toEqual({ kv: 2, events: 1, state: 1, json: 1, traces: 1, traceRoots: 1, machines: 0, vectors: 0 })
    const replayed = await mcp.ok<{ kv: { key: string; value: unknown }[]; at: number }>('replay', { run, event: 0 })
    expect(replayed.kv).toEqual([
      { key: 'from', value: 'the owner' },
      { key: 'pid', value: owner.pid },
    ])
    // A tool's own errors are the same through the owner.
    expect(await mcp.fails('kv_get', { run: '01890a5d-ac96-774b-bcce-b302099a8057', key: 'k' })).toMatch(/run 01890a5d-ac96-774b-bcce-b302099a8057 does not exist .*\(NOT_FOUND\)/)
  })

  it('writes through the owner: the owner process sees each write, and the client sees the owner’s', async () => {
    const run = owner.run
    const { version } = await mcp.ok<{ version: number }>('kv_put', { run, key: 'note', value: { by: 'mcp', n: [1, 2] } })
    expect(await owner.ask('kv', 'get', run, 'note')).toEqual({ by: 'mcp', n: [1, 2] })
    expect(await owner.ask('kv', 'getVersioned', run, 'note')).toMatchObject({ version })
    expect(await mcp.ok('state_cas', { run, name: 'phase', expectedVersion: 1, value: 'shared' })).toEqual({ ok: true, version: 2 })
    expect(await owner.ask('state', 'get', run, 'phase')).toMatchObject({ value: 'shared', version: 2 })
    expect(await mcp.ok('events_append', { run, type: 'mcp.said', payload: 'hello' })).toMatchObject({ sequence: 1 })
    expect(await owner.ask('events', 'length', run)).toBe(1 + 1)

    const { run: child } = await mcp.ok<{ run: { id: string } }>('runs_begin', { name: 'from mcp', parent: run })
    expect(await owner.ask('runs', 'get', child.id)).toMatchObject({ name: 'from mcp', parent: run, status: 'active' })

    // The knowledge graph: each call one remote transaction.
    await mcp.ok('create_entities', { entities: [{ name: 'Ada', entityType: 'person', observations: ['likes tea'] }] })
    await mcp.ok('create_relations', { relations: [{ from: 'Ada', to: 'Acme', relationType: 'works_at' }] })
    const [graphRun] = (await owner.ask('runs', 'list', { tag: GRAPH_TAG })) as { id: string }[]
    expect(await owner.ask('kv', 'get', graphRun.id, 'entity/Ada')).toEqual({ entityType: 'person', observations: ['likes tea'], order: 0 })
    const commits = ((await owner.ask('runs', 'log', graphRun.id)) as unknown[]).length
    // A call that fails part way (Nobody does not exist) leaves nothing: its writes are rolled back.
    expect(await mcp.fails('add_observations', { observations: [{ entityName: 'Ada', contents: ['speaks French'] }, { entityName: 'Nobody', contents: ['x'] }] })).toMatch(
      /Entity with name Nobody not found/,
    )
    expect(await owner.ask('kv', 'get', graphRun.id, 'entity/Ada')).toMatchObject({ observations: ['likes tea'] })
    expect(((await owner.ask('runs', 'log', graphRun.id)) as unknown[]).length).toBe(commits)
    expect(await mcp.ok('add_observations', { observations: [{ entityName: 'Ada', contents: ['speaks French'] }] })).toEqual({
      results: [{ entityName: 'Ada', addedObservations: ['speaks French'] }],
    })
    expect(await mcp.ok('search_nodes', { query: 'french' })).toEqual({
      entities: [{ name: 'Ada', entityType: 'person', observations: ['likes tea', 'speaks French'] }],
      relations: [{ from: 'Ada', to: 'Acme', relationType: 'works_at' }],
    })

    // The owner writes; the MCP client reads it at once.
    await owner.ask('kv', 'put', run, 'later', 42)
    expect(await mcp.ok('kv_get', { run, key: 'later' })).toMatchObject({ found: true, value: 42 })
    await owner.ask('runs', 'complete', child.id)
    expect(await mcp.fails('kv_put', { run: child.id, key: 'k', value: 1 })).toMatch(/\(RUN_CLOSED\)/)

    reads.push(
      ['runs_list', {}],
      ['runs_show', { run, log: 0 }],
      ['runs_show', { run: graphRun.id }],
      ['kv_list', { run, values: true }],
      ['kv_get', { run, key: 'note' }],
      ['state_get', { run, name: 'phase' }],
      ['json_get', { run, doc: 'doc' }],
      ['events_tail', { run, limit: 0 }],
      ['traces_tree', { run }],
      ['replay', { run }],
      ['replay', { run, event: 0, events: 0 }],
      ['diff', { a: run, b: child.id }],
      ['read_graph', {}],
      ['open_nodes', { names: ['Ada', 'Nobody'] }],
    )
    for (const [name, args] of reads) answered.push(await mcp.ok(name, args))
  })

  it('fails a tool call with a clear error once the owner is gone; the directory then holds every write, and in-mem mcp on it answers the same', async () => {
    owner.child.kill('SIGKILL')
    expect(await owner.exited).toBe('SIGKILL')
    const lost = /the connection to the owner at unix:\S+ (was lost|failed).*\(CONNECTION\)/
    expect(await mcp.fails('kv_get', { run: owner.run, key: 'from' })).toMatch(lost)
    expect(await mcp.fails('read_graph', {})).toMatch(lost)
    // The server is still up, answering.
    expect((await mcp.client.listTools()).tools).toHaveLength(34)
    await mcp.close()

    // The owner opened it strict: every acknowledged write is there.
    const db = Database.open(dir, { readOnly: true })
    try {
      expect(db.kv.get(owner.run, 'note')).toEqual({ by: 'mcp', n: [1, 2] })
      expect(db.state.get(owner.run, 'phase')).toMatchObject({ value: 'shared', version: 2 })
      expect(db.events.range(owner.run).map((e) => e.type)).toEqual(['owner.started', 'mcp.said'])
      expect(new KnowledgeGraph(db).read()).toEqual({
        entities: [{ name: 'Ada', entityType: 'person', observations: ['likes tea', 'speaks French'] }],
        relations: [{ from: 'Ada', to: 'Acme', relationType: 'works_at' }],
      })
    } finally {
      db.close()
    }

    // Nobody holds it now: in-mem mcp opens it itself, and its answers are those given through the owner.
    mcp = await inMemMcp(dir)
    expect(await stderrMatches(mcp, /serving .* on stdio/)).not.toContain('through its owner')
    for (const [i, [name, args]] of reads.entries()) expect(await mcp.ok(name, args), `${name} ${JSON.stringify(args)}`).toEqual(answered[i])
  })
})

describe('in-mem mcp on a directory whose owner does not serve it', () => {
  it('exits with the LockedError, the holder pid and how to serve, also when SERVER names a socket nobody listens on', () => {
    const dir = makeTmpDir('in-mem-mcp-unserved')
    dirs.push(dir)
    const db = Database.open(dir)
    try {
      for (const stale of [false, true]) {
        if (stale) writeFileSync(join(dir, 'SERVER'), `${JSON.stringify({ pid: process.pid, urls: [`unix:${join(dir, 'gone.sock')}`] })}\n`)
        const r = spawnSync(process.execPath, [bin, 'mcp', '--dir', dir], { encoding: 'utf8', timeout: 60_000, input: '' })
        expect(r.status, r.stderr).toBe(1)
        expect(r.stdout).toBe('')
        expect(r.stderr).toMatch(/\(LOCKED\)/)
        expect(r.stderr).toContain(`process ${process.pid}`)
        expect(r.stderr).toContain('does not serve it: call db.serve() there (or open the directory with `in-mem serve`)')
      }
    } finally {
      db.close()
    }
  })
})

describe('in-mem mcp on a directory served with a token', () => {
  let dir: string
  let owner: Owner

  beforeAll(async () => {
    dir = makeTmpDir('in-mem-mcp-token')
    dirs.push(dir)
    owner = await startOwner(dir, 'open sesame')
  })

  afterAll(async () => {
    owner.child.stdin.end()
    await owner.exited
  })

  it('presents $IN_MEM_TOKEN, or the contents of --token-file; without it, exits naming both', async () => {
    const env = { ...process.env }
    delete env.IN_MEM_TOKEN
    const refused = spawnSync(process.execPath, [bin, 'mcp', '--dir', dir], { encoding: 'utf8', timeout: 60_000, input: '', env })
    expect(refused.status, refused.stderr).toBe(1)
    expect(refused.stderr).toContain('the owner refused the connection: wrong or missing token (in-mem mcp presents the one in --token-file, else in $IN_MEM_TOKEN) (CONNECTION)')

    const byEnv = await connect(process.execPath, [bin, 'mcp', '--dir', dir], { IN_MEM_TOKEN: 'open sesame' })
    try {
      expect(await byEnv.ok('kv_get', { run: owner.run, key: 'from' })).toMatchObject({ value: 'the owner' })
    } finally {
      await byEnv.close()
    }

    const file = join(dir, '..', `${dir.split('/').pop()}.token`)
    writeFileSync(file, 'open sesame\n', { mode: 0o600 })
    const byFile = await connect(process.execPath, [bin, 'mcp', '--dir', dir, '--token-file', file, '--read-only'], { IN_MEM_TOKEN: 'wrong' })
    try {
      const tools = (await byFile.client.listTools()).tools.map((t) => t.name)
      expect(tools).toContain('kv_get')
      expect(tools).not.toContain('kv_put')
      expect(await byFile.ok('state_get', { run: owner.run, name: 'phase' })).toMatchObject({ value: 'serving' })
    } finally {
      await byFile.close()
      removeDir(file)
    }
  })
})

describe('createMcpServer over Database.connect, in process', () => {
  it('serves the tools through a remote database; a graphRun that does not exist fails the first graph call', async () => {
    const dir = makeTmpDir('in-mem-mcp-remote')
    dirs.push(dir)
    const db = Database.open(dir)
    const run = db.runs.begin({ name: 'served' })
    db.kv.put(run, 'k', 'v')
    const served = await db.serve()
    let remote: RemoteDatabase | undefined
    const client = new Client({ name: 'in-process', version: '1.0.0' })
    try {
      remote = await Database.connect(served.url)
      expect(() => createMcpServer({ url: 'unix:/nowhere' } as unknown as RemoteDatabase)).toThrow(/takes a Database .* or a remote one/)
      const server = createMcpServer(remote, { graphRun: '01890a5d-ac96-774b-bcce-b302099a8057' })
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
      await Promise.all([server.connect(serverSide), client.connect(clientSide)])
      const got = await client.callTool({ name: 'kv_get', arguments: { run, key: 'k' } })
      expect(got.structuredContent).toMatchObject({ found: true, value: 'v' })
      const put = await client.callTool({ name: 'kv_put', arguments: { run, key: 'k2', value: [1] } })
      expect(put.isError).toBeFalsy()
      expect(db.kv.get(run, 'k2')).toEqual([1])
      const graph = (await client.callTool({ name: 'read_graph', arguments: {} })) as { isError?: boolean; content: { text: string }[] }
      expect(graph.isError).toBe(true)
      expect(graph.content[0].text).toMatch(/run 01890a5d-ac96-774b-bcce-b302099a8057 \(for the knowledge graph\) does not exist \(NOT_FOUND\)/)
      await client.close()
      // Closing the MCP server leaves the connection open.
      expect(remote.isOpen).toBe(true)
    } finally {
      await remote?.close()
      db.close()
    }
  })

  it('applies concurrent graph calls one at a time, none lost to conflicts on the connection', async () => {
    const dir = makeTmpDir('in-mem-mcp-burst')
    dirs.push(dir)
    const db = Database.open(dir)
    const served = await db.serve()
    const remote = await Database.connect(served.url)
    const client = new Client({ name: 'in-process', version: '1.0.0' })
    try {
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
      await Promise.all([createMcpServer(remote).connect(serverSide), client.connect(clientSide)])
      const names = Array.from({ length: 40 }, (_, i) => `e${i}`)
      const results = await Promise.all(names.map((name) => client.callTool({ name: 'create_entities', arguments: { entities: [{ name, entityType: 't', observations: [] }] } })))
      expect(results.filter((r) => r.isError)).toEqual([])
      expect(db.runs.list({ tag: GRAPH_TAG })).toHaveLength(1)
      const graph = new KnowledgeGraph(db).read()
      expect(graph.entities.map((e) => e.name).sort()).toEqual([...names].sort())
      await client.close()
    } finally {
      await remote.close()
      db.close()
    }
  })
})
