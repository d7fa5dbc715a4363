/**
 * `in-mem mcp`: opens a data directory and serves it over MCP on stdio
 * until the client closes stdin or the process is told to stop (SIGINT,
 * SIGTERM); then closes the database, so a buffered mode's writes are on
 * disk. stdout carries the protocol and nothing else: logs go to stderr.
 * Not part of the library's API.
 * @module
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { Database, type Durability } from '../database.js'
import { createMcpServer } from './server.js'

/** What `in-mem mcp` was asked to serve. */
export interface StdioOptions {
  /** The data directory (created when absent, unless read-only). */
  dir: string
  /** Only the reading tools, on a database opened read-only. */
  readOnly: boolean
  /** The durability mode to open with. */
  durability: Durability
  /** Writes a line to stderr. */
  log: (line: string) => void
}

/**
 * Serves `dir` on stdin/stdout; resolves to the exit code once the client
 * is gone. Opening throws as `Database.open` does (`LockedError` with the
 * holder's pid).
 */
export async function serveStdio(opts: StdioOptions): Promise<number> {
  // stdout is the protocol's: anything that would print there (a stray
  // console.log in a dependency) goes to stderr instead.
  const toStderr = (...args: unknown[]): void => console.error(...args)
  console.log = toStderr
  console.info = toStderr
  console.debug = toStderr
  const db = Database.open(opts.dir, opts.readOnly ? { durability: 'buffered', readOnly: true } : { durability: opts.durability })
  const server = createMcpServer(db, { readOnly: opts.readOnly, log: opts.log })
  const transport = new StdioServerTransport()
  let stop: () => void = () => {}
  const stopped = new Promise<void>((resolve) => (stop = resolve))
  const onSignal = (): void => stop()
  process.stdin.once('end', onSignal)
  process.stdin.once('close', onSignal)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await server.connect(transport)
    opts.log(`in-mem mcp: serving ${opts.dir} (${opts.readOnly ? 'read-only' : opts.durability}) on stdio`)
    await stopped
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await server.close()
    db.close()
  }
  return 0
}
