/**
 * `createMcpServer`: an MCP server (`@modelcontextprotocol/sdk`'s
 * `McpServer`) whose tools and resources read and write one in-mem
 * database: opened in this process, or served by its owner
 * (`Database.connect`). The tools are written once, against the remote API
 * (every call awaited); a database opened here is read through
 * `localRemote`, the same dispatch an owner runs. It does no I/O of its
 * own: connect it to a transport (`StdioServerTransport` for `in-mem mcp`).
 * @module
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { Database } from '../database.js'
import { InvalidArgumentError } from '../errors.js'
import { checkOptions } from '../options.js'
import type { RunId } from '../runs.js'
import { type RemoteDatabase, localRemote } from '../server/client.js'
import { KnowledgeGraph, RemoteKnowledgeGraph } from './graph.js'
import { graphTools } from './graph-tools.js'
import { registerResources } from './resources.js'
import { type Tool, register } from './tool.js'
import { dataTools } from './tools.js'

/** Options of {@link createMcpServer}. */
export interface McpServerOptions {
  /**
   * Expose only the tools that read (no runs_begin, kv_put,
   * create_entities...). Open the database with `readOnly: true` too, so
   * that nothing can write. Default false.
   */
  readOnly?: boolean
  /**
   * The run that holds the knowledge graph of the memory tools. Default:
   * the first run tagged `mcp:knowledge-graph`, begun on the first write.
   * (Over a {@link RemoteDatabase}, a run that does not exist is found on
   * the first call of a graph tool, which fails.)
   */
  graphRun?: RunId
  /** Where the server logs unexpected errors (never stdout: it carries the protocol). Default: stderr. */
  log?: (line: string) => void
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
}

/** Whether `db` looks like what `Database.connect` (or `localRemote`) returns. */
function isRemote(db: unknown): db is RemoteDatabase {
  if (typeof db !== 'object' || db === null) return false
  const r = db as Partial<Record<keyof RemoteDatabase, unknown>>
  return typeof r.url === 'string' && typeof r.isOpen === 'boolean' && typeof r.transaction === 'function' && typeof r.scope === 'function' && typeof r.kv === 'object'
}

/**
 * An MCP server over `db`: a database opened in this process, or one
 * another process serves (`await Database.connect(url)`; closing the
 * server leaves the connection open). Tools for runs, KV, state cells, JSON documents,
 * events, traces, vector search, replay and diff, the knowledge-graph tools
 * of the reference memory server (`create_entities`, `read_graph`...), and
 * the resources `inmem://runs`, `inmem://runs/{id}` and
 * `inmem://runs/{id}/events`. A tool's bad arguments, or an error of the
 * database (a write to a closed run, a missing key), come back as an error
 * result naming the cause; nothing is thrown at the transport.
 *
 * ```ts
 * import { Database } from 'in-mem'
 * import { createMcpServer } from 'in-mem/mcp'
 * import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
 * const server = createMcpServer(Database.open('./agent-data'))
 * // or, for a directory another process owns and serves (db.serve()):
 * // createMcpServer(await Database.connect('unix:./agent-data/in-mem.sock'))
 * await server.connect(new StdioServerTransport())
 * ```
 */
export function createMcpServer(db: Database | RemoteDatabase, options: McpServerOptions = {}): McpServer {
  if (!(db instanceof Database) && !isRemote(db)) {
    throw new InvalidArgumentError('createMcpServer takes a Database (Database.open(...)) or a remote one (await Database.connect(url))')
  }
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('createMcpServer options must be an object')
  checkOptions(options, ['readOnly', 'graphRun', 'log'], 'createMcpServer options')
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`))
  const server = new McpServer(
    { name: 'in-mem', title: 'in-mem agent memory', version: packageVersion() },
    {
      instructions:
        'An in-mem database as memory. Data lives in runs (one execution of an agent each): begin one with runs_begin, or find one with runs_list, ' +
        'then use its id with the kv_, state_, json_, events_ and traces_ tools. replay and diff show how runs changed. ' +
        'The knowledge-graph tools (create_entities, read_graph, search_nodes...) keep entities and relations across runs.',
    },
  )
  let remote: RemoteDatabase
  if (db instanceof Database) {
    // A graph run that does not exist is refused now, as it always was.
    if (options.graphRun !== undefined) void new KnowledgeGraph(db, options.graphRun)
    remote = localRemote(db)
  } else {
    remote = db
  }
  const graph = new RemoteKnowledgeGraph(remote, options.graphRun)
  const tools: Tool[] = [...dataTools(remote), ...graphTools(graph)]
  for (const t of tools) if (!options.readOnly || !t.writes) register(server, t, log)
  registerResources(server, remote)
  return server
}
