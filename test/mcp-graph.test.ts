// The knowledge-graph tools of `in-mem mcp` against the reference memory
// server (@modelcontextprotocol/server-memory, a devDependency) run as a
// second subprocess: the same calls give the same results, errors and
// read_graph answers; and what in-mem keeps is in a run, transactionally.
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database, InvalidArgumentError, NotFoundError } from '../dist/index.js'
import { GRAPH_TAG, KnowledgeGraph, type McpServerOptions, createMcpServer } from '../dist/mcp.js'
import { makeTmpDir, removeDir } from './helpers.js'
import { type Session, inMemMcp, reference } from './mcp-helpers.js'

const person = (name: string, ...observations: string[]) => ({ name, entityType: 'person', observations })

/** The same call sequence for both servers; each step is one tool call. */
const STEPS: [string, Record<string, unknown>][] = [
  ['read_graph', {}],
  ['create_entities', { entities: [person('Ada', 'works at Acme', 'likes tea'), { name: 'Acme', entityType: 'company', observations: ['makes widgets'] }, person('Bob')] }],
  ['create_entities', { entities: [person('Ada', 'ignored: Ada exists'), person('Carol', 'new in town')] }],
  ['create_relations', { relations: [{ from: 'Ada', to: 'Acme', relationType: 'works_at' }, { from: 'Bob', to: 'Ada', relationType: 'knows' }] }],
  ['create_relations', { relations: [{ from: 'Ada', to: 'Acme', relationType: 'works_at' }, { from: 'Carol', to: 'Zed', relationType: 'knows' }] }],
  ['add_observations', { observations: [{ entityName: 'Ada', contents: ['likes tea', 'speaks French'] }, { entityName: 'Bob', contents: ['plays chess'] }] }],
  ['add_observations', { observations: [{ entityName: 'Carol', contents: ['should not stay'] }, { entityName: 'Nobody', contents: ['x'] }] }],
  ['search_nodes', { query: 'TEA' }],
  ['search_nodes', { query: 'company' }],
  ['open_nodes', { names: ['Ada', 'Carol', 'Nobody'] }],
  ['delete_observations', { deletions: [{ entityName: 'Ada', observations: ['likes tea', 'never said'] }, { entityName: 'Nobody', observations: ['y'] }] }],
  ['delete_relations', { relations: [{ from: 'Bob', to: 'Ada', relationType: 'knows' }, { from: 'X', to: 'Y', relationType: 'none' }] }],
  ['delete_entities', { entityNames: ['Acme', 'Nobody'] }],
  ['create_entities', { entities: [{ name: 'Acme', entityType: 'company', observations: ['back again'] }] }],
  ['create_relations', { relations: [{ from: 'Acme', to: 'Carol', relationType: 'employs' }] }],
  ['open_nodes', { names: ['Acme'] }],
  ['create_entities', { entities: [] }],
  ['delete_entities', { entityNames: ['Bob'] }],
]

describe('knowledge-graph tools, against the reference memory server', () => {
  let tmp: string
  let ours: Session
  let theirs: Session

  beforeAll(async () => {
    tmp = makeTmpDir('in-mem-mcp-graph')
    ;[ours, theirs] = await Promise.all([inMemMcp(join(tmp, 'data'), '--durability', 'strict'), reference(join(tmp, 'memory.jsonl'))])
  })

  afterAll(async () => {
    await Promise.all([ours?.close(), theirs?.close()])
    removeDir(tmp)
  })

  it('lists the same nine tools with the same argument shapes', async () => {
    const [a, b] = await Promise.all([ours.client.listTools(), theirs.client.listTools()])
    const names = b.tools.map((t) => t.name).sort()
    expect(names).toEqual(['add_observations', 'create_entities', 'create_relations', 'delete_entities', 'delete_observations', 'delete_relations', 'open_nodes', 'read_graph', 'search_nodes'])
    for (const name of names) {
      const mine = a.tools.find((t) => t.name === name)!
      const ref = b.tools.find((t) => t.name === name)!
      expect(mine.description, name).toBe(ref.description)
      expect(Object.keys(mine.inputSchema.properties ?? {}), name).toEqual(Object.keys(ref.inputSchema.properties ?? {}))
      expect(mine.inputSchema.properties, name).toEqual(ref.inputSchema.properties)
      expect(mine.outputSchema?.properties, name).toEqual(ref.outputSchema?.properties)
    }
  })

  it('gives the same result, error and read_graph answer after every call of a sequence', async () => {
    for (const [i, [name, args]] of STEPS.entries()) {
      const [a, b] = await Promise.all([ours.call(name, args), theirs.call(name, args)])
      const step = `step ${i}: ${name} ${JSON.stringify(args)}`
      expect(a.isError === true, step).toBe(b.isError === true)
      if (b.isError) expect(a.content[0].text, step).toContain(b.content[0].text)
      else expect(a.structuredContent, step).toEqual(b.structuredContent)
      const [ga, gb] = await Promise.all([ours.call('read_graph'), theirs.call('read_graph')])
      expect(ga.structuredContent, `read_graph after ${step}`).toEqual(gb.structuredContent)
    }
    const final = (await theirs.call('read_graph')).structuredContent as { entities: { name: string }[] }
    // The sequence did reach an interesting graph, not an empty one.
    expect(final.entities.map((e) => e.name)).toEqual(['Ada', 'Carol', 'Acme'])
  })

  it('keeps the graph in a run of the database, one commit per call', async () => {
    await ours.close()
    const db = Database.open(join(tmp, 'data'), { readOnly: true })
    try {
      const [run] = db.runs.list({ tag: GRAPH_TAG })
      expect(run).toMatchObject({ name: 'knowledge graph', status: 'active' })
      expect(db.kv.list(run.id, { prefix: 'entity/' }).sort()).toEqual(['entity/Acme', 'entity/Ada', 'entity/Carol'])
      const g = new KnowledgeGraph(db)
      expect(g.run).toBe(run.id)
      expect(g.read().entities.map((e) => e.name)).toEqual(['Ada', 'Carol', 'Acme'])
      // Every call that changed the graph is one commit of the run's log; the
      // failed add_observations and the no-op calls made none.
      const changing = STEPS.filter(([name, args]) => !['read_graph', 'search_nodes', 'open_nodes'].includes(name) && JSON.stringify(args) !== '{"entities":[]}')
      expect(db.runs.log(run.id)).toHaveLength(changing.length - 1)
    } finally {
      db.close()
    }
  })
})

describe('createMcpServer and KnowledgeGraph, in process', () => {
  it('refuses what is not a database, an unknown option, and a graph run that does not exist', () => {
    const db = Database.open()
    expect(() => createMcpServer({} as Database)).toThrow(InvalidArgumentError)
    expect(() => createMcpServer(db, { readonly: true } as McpServerOptions)).toThrow(/unknown option 'readonly' .*did you mean 'readOnly'/)
    expect(() => createMcpServer(db, { graphRun: '01890a5d-ac96-774b-bcce-b302099a8057' })).toThrow(NotFoundError)
    db.close()
  })

  it('serves a transport of your own, keeping the graph in the run given as graphRun', async () => {
    const db = Database.open()
    const run = db.runs.begin({ name: 'mine' })
    const server = createMcpServer(db, { graphRun: run })
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    const client = new Client({ name: 'in-process', version: '1.0.0' })
    await Promise.all([server.connect(serverSide), client.connect(clientSide)])
    const r = await client.callTool({ name: 'create_entities', arguments: { entities: [person('Ada', 'likes tea')] } })
    expect(r.isError).toBeFalsy()
    expect(db.kv.get(run, 'entity/Ada')).toMatchObject({ entityType: 'person', observations: ['likes tea'] })
    expect(db.runs.list({ tag: GRAPH_TAG })).toEqual([])
    await client.close()
    db.close()
  })


  it('collapses a name given twice in one call (where the reference server stores it twice)', () => {
    const db = Database.open()
    const g = new KnowledgeGraph(db)
    expect(g.read()).toEqual({ entities: [], relations: [] })
    expect(g.run).toBeUndefined()
    expect(g.createEntities([person('A', 'x'), person('A', 'y')])).toEqual([person('A', 'x')])
    expect(g.createRelations([{ from: 'A', to: 'B', relationType: 'r' }, { from: 'A', to: 'B', relationType: 'r' }])).toHaveLength(1)
    expect(g.addObservations([{ entityName: 'A', contents: ['z', 'z', 'x'] }])).toEqual([{ entityName: 'A', addedObservations: ['z'] }])
    expect(g.read()).toEqual({ entities: [person('A', 'x', 'z')], relations: [{ from: 'A', to: 'B', relationType: 'r' }] })
    db.close()
  })

  it("names its run when that run takes no writes", () => {
    const db = Database.open()
    const g = new KnowledgeGraph(db)
    g.createEntities([person('A')])
    db.runs.complete(g.run!)
    expect(() => g.createEntities([person('B')])).toThrow(new RegExp(`the knowledge graph is kept in run ${g.run}, which takes no writes: .*completed`))
    expect(g.read().entities).toEqual([person('A')])
    db.close()
  })

  it('writes nothing when one part of a call fails', () => {
    const db = Database.open()
    const g = new KnowledgeGraph(db)
    g.createEntities([person('A')])
    const before = db.stats().version
    expect(() => g.addObservations([{ entityName: 'A', contents: ['kept?'] }, { entityName: 'B', contents: ['x'] }])).toThrow('Entity with name B not found')
    expect(() => g.createEntities([person('C'), person('x'.repeat(2000))])).toThrow(/entities\[1\]\.name is too long/)
    expect(db.stats().version).toBe(before)
    expect(g.read().entities).toEqual([person('A')])
    db.close()
  })
})
