/**
 * The MCP server's resources, as JSON: `inmem://runs` (every run),
 * `inmem://runs/{id}` (a run's summary, as `runs_show` gives it) and
 * `inmem://runs/{id}/events` (its whole event log). Not part of the
 * library's API.
 * @module
 */
import { type McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { ReadResourceResult } from '@modelcontextprotocol/sdk/types.js'
import { NotFoundError } from '../errors.js'
import type { RunInfo } from '../runs.js'
import { jsonSafe } from '../cli/format.js'
import type { RemoteDatabase } from '../server/client.js'
import { runReport, tailReport } from '../cli/reports.js'

function json(uri: URL, value: unknown): ReadResourceResult {
  return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(jsonSafe(value), null, 2) }] }
}

async function runOf(db: RemoteDatabase, id: string | string[]): Promise<RunInfo> {
  const run = Array.isArray(id) ? id.join(',') : id
  const info = /^[0-9a-f-]{36}$/.test(run) ? await db.runs.get(run) : undefined
  if (info === undefined) throw new NotFoundError(`run ${run} does not exist`, { run })
  return info
}

/** Registers the resources on `server`. */
export function registerResources(server: McpServer, db: RemoteDatabase): void {
  server.registerResource(
    'runs',
    'inmem://runs',
    { title: 'Runs', description: 'Every run of the database, in creation order: id, name, status, parent, tags, times', mimeType: 'application/json' },
    async (uri) => json(uri, { runs: await db.runs.list() }),
  )
  server.registerResource(
    'run',
    new ResourceTemplate('inmem://runs/{id}', {
      list: async () => ({
        resources: (await db.runs.list()).map((r) => ({ uri: `inmem://runs/${r.id}`, name: r.name ?? r.id, description: `run ${r.id} (${r.status})`, mimeType: 'application/json' })),
      }),
    }),
    { title: 'Run', description: "A run's summary: its info, lineage, children, counts per primitive, newest event and last 20 commits", mimeType: 'application/json' },
    async (uri, vars) => json(uri, await runReport(db, await runOf(db, vars.id), 20)),
  )
  server.registerResource(
    'run-events',
    new ResourceTemplate('inmem://runs/{id}/events', { list: undefined }),
    { title: 'Run events', description: "A run's whole event log, oldest first, with hashes", mimeType: 'application/json' },
    async (uri, vars) => json(uri, await tailReport(db, (await runOf(db, vars.id)).id, 0)),
  )
}
