/**
 * `db.serve()`: starts serving a database to other processes and returns a
 * handle to stop it. A database with a directory is served from a worker
 * thread that shares its engine, so the owner's event loop is never busy
 * with clients; a memory-only database (which no other thread can open) is
 * served from the owner's thread.
 * @internal
 * @module
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Database, OpenOptions } from '../database.js'
import { ConnectionError, InternalError, InvalidArgumentError } from '../errors.js'
import { Listener, type ServeOptions, checkServeOptions } from './listener.js'
import { fromWire } from './protocol.js'
import { COUNTER_BYTES, Counters, type ServerStats } from './stats.js'
import type { WorkerData } from './worker.js'
import { type RemoteDatabase, connect } from './client.js'

/** The file beside `LOCK` that tells other processes where the owner serves. */
export const SERVER_FILE = 'SERVER'

/** What `db.serve()` returns. */
export interface Server {
  /** What clients pass to `Database.connect`: the TCP (or TLS) listener's URL when there is one, else the socket's (`unix:/path`). */
  readonly url: string
  /** Every URL served: the socket's and the listener's. */
  readonly urls: readonly string[]
  /** Counters, as `db.stats().server` reports them. */
  stats(): ServerStats
  /** Stops listening and closes every connection (their open transactions roll back). */
  close(): Promise<void>
}

/** What `SERVER` in a data directory holds while its owner serves. @internal */
export interface ServerRecord {
  pid: number
  urls: string[]
}

/** Starts serving `db` (whose directory is `dir`, opened with `options`). @internal */
export async function serve(db: Database, dir: string | null, options: OpenOptions, opts: ServeOptions): Promise<Server> {
  const checked = checkServeOptions(opts, dir)
  let stop: () => Promise<void>
  let counters: Counters
  let urls: string[]
  if (dir === null) {
    counters = new Counters()
    const listener = await Listener.start(db, checked, counters, false)
    urls = listener.urls
    stop = () => listener.close()
  } else {
    const shared = new SharedArrayBuffer(COUNTER_BYTES)
    counters = new Counters(shared)
    const data: WorkerData = { path: dir, options, serve: checked, counters: shared }
    const worker = new Worker(join(__dirname, 'worker.js'), { workerData: data })
    urls = await new Promise<string[]>((resolve, reject) => {
      worker.once('message', (m: { urls?: string[]; error?: unknown }) => (m.urls ? resolve(m.urls) : reject(fromWire(m.error))))
      worker.once('error', (e) => reject(new InternalError(`the server's worker thread failed: ${e.message}`)))
      worker.once('exit', (code) => reject(new InternalError(`the server's worker thread exited (${code}) before it listened`)))
    }).catch(async (e: unknown) => {
      // The worker's own error (a socket path in use, a bad certificate) is the one to report.
      await worker.terminate()
      throw e
    })
    let exited = false
    const gone = new Promise<void>((resolve) =>
      worker.once('exit', () => {
        exited = true
        resolve()
      }),
    )
    const record: ServerRecord = { pid: process.pid, urls }
    writeFileSync(join(dir, SERVER_FILE), `${JSON.stringify(record)}\n`)
    stop = async () => {
      try {
        unlinkSync(join(dir, SERVER_FILE))
      } catch {
        // gone already
      }
      if (!exited) worker.postMessage('close')
      await gone
    }
  }
  let closing: Promise<void> | undefined
  return {
    url: urls[urls.length - 1],
    urls,
    stats: () => counters.snapshot(urls),
    close: () => (closing ??= stop()),
  }
}

/** What `SERVER` in `dir` says, if it is there. @internal */
export function serverRecord(dir: string): Partial<ServerRecord> | undefined {
  try {
    const record = JSON.parse(readFileSync(join(dir, SERVER_FILE), 'utf8')) as unknown
    return typeof record === 'object' && record !== null ? (record as Partial<ServerRecord>) : undefined
  } catch {
    return undefined
  }
}

/** A token file's contents, without the trailing newline. @internal */
export function readTokenFile(file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new InvalidArgumentError(`cannot read the token file ${file}: ${(e as Error).message}`, { argument: 'token-file' })
  }
  const token = text.replace(/\r?\n$/, '')
  if (token === '') throw new InvalidArgumentError(`the token file ${file} is empty`, { argument: 'token-file' })
  return token
}

/**
 * Connects to the owner of the locked directory `dir` through the socket
 * `SERVER` names; `undefined` when nobody serves it (no `SERVER`, or a
 * stale one: a socket nobody listens on). A refused token throws.
 * @internal
 */
export async function connectToOwner(dir: string, token: string | undefined): Promise<RemoteDatabase | undefined> {
  const urls = serverRecord(dir)?.urls
  const url = Array.isArray(urls) ? urls.find((u): u is string => typeof u === 'string' && u.startsWith('unix:')) : undefined
  if (url === undefined) return undefined
  try {
    return await connect(url, token === undefined ? {} : { token })
  } catch (e) {
    if (e instanceof ConnectionError && ['ENOENT', 'ECONNREFUSED'].includes(e.details.cause as string)) return undefined
    throw e
  }
}
