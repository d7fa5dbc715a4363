/**
 * `in-mem mcp`: opens a data directory and serves it over MCP on stdio
 * until the client closes stdin or the process is told to stop (SIGINT,
 * SIGTERM); then closes the database, so a buffered mode's writes are on
 * disk. A directory another process holds (`LockedError`) is served
 * through that process instead, when it serves (`db.serve()` wrote its
 * socket's URL to `SERVER`): the tools are the same, every call goes to the
 * owner. stdout carries the protocol and nothing else: logs go to stderr.
 * Not part of the library's API.
 * @module
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { Database, type Durability } from '../database.js'
import { ConnectionError, LockedError } from '../errors.js'
import type { RemoteDatabase } from '../server/client.js'
import { connectToOwner, readTokenFile } from '../server/owner.js'
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
  /** A file holding the token to present to the directory's owner (else `$IN_MEM_TOKEN`, if set). */
  tokenFile?: string
}

/** The token to present to an owner: the token file's contents (without a final newline), else `$IN_MEM_TOKEN`. */
function tokenOf(file: string | undefined): string | undefined {
  if (file !== undefined) return readTokenFile(file)
  const env = process.env.IN_MEM_TOKEN
  return env === undefined || env === '' ? undefined : env
}

/**
 * Connects to the owner of a directory that opening found locked; when
 * nobody serves it, throws `locked` again, saying how to serve it.
 */
async function connectOwner(dir: string, locked: LockedError, tokenFile: string | undefined): Promise<RemoteDatabase> {
  let remote: RemoteDatabase | undefined
  try {
    remote = await connectToOwner(dir, tokenOf(tokenFile))
  } catch (e) {
    if (e instanceof ConnectionError && /token/.test(e.message)) {
      throw new ConnectionError(`${e.message} (in-mem mcp presents the one in --token-file, else in $IN_MEM_TOKEN)`, e.details)
    }
    throw e
  }
  if (remote !== undefined) return remote
  throw new LockedError(
    `${locked.message}; that process does not serve it: call db.serve() there (or open the directory with \`in-mem serve\`), and in-mem mcp serves it through that process`,
    { ...locked.details, serving: false },
  )
}

/**
 * Serves `dir` on stdin/stdout; resolves to the exit code once the client
 * is gone. Opening throws as `Database.open` does, except that a directory
 * held by a process that serves it is served through that process; one
 * held by a process that does not serve it throws `LockedError` with the
 * holder's pid and how to serve it.
 */
export async function serveStdio(opts: StdioOptions): Promise<number> {
  // stdout is the protocol's: anything that would print there (a stray
  // console.log in a dependency) goes to stderr instead.
  const toStderr = (...args: unknown[]): void => console.error(...args)
  console.log = toStderr
  console.info = toStderr
  console.debug = toStderr
  let db: Database | undefined
  let remote: RemoteDatabase | undefined
  try {
    db = Database.open(opts.dir, opts.readOnly ? { durability: 'buffered', readOnly: true } : { durability: opts.durability })
  } catch (e) {
    if (!(e instanceof LockedError)) throw e
    remote = await connectOwner(opts.dir, e, opts.tokenFile)
  }
  const server = createMcpServer(db ?? (remote as RemoteDatabase), { readOnly: opts.readOnly, log: opts.log })
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
    if (remote === undefined) opts.log(`in-mem mcp: serving ${opts.dir} (${opts.readOnly ? 'read-only' : opts.durability}) on stdio`)
    else {
      // The owner's durability mode applies to every write.
      opts.log(`in-mem mcp: serving ${opts.dir}${opts.readOnly ? ' (read-only tools)' : ''} on stdio through its owner at ${remote.url}`)
    }
    await stopped
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await server.close()
    db?.close()
    await remote?.close()
  }
  return 0
}
