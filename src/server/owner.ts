/**
 * `db.serve()`: starts serving a database to other processes and returns a
 * handle to stop it. A database with a directory is served from a worker
 * thread that shares its engine, so the owner's event loop is never busy
 * with clients; a memory-only database (which no other thread can open) is
 * served from the owner's thread.
 * @internal
 * @module
 */
import { unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Database, OpenOptions } from '../database.js'
import { InternalError } from '../errors.js'
import { Listener, type ServeOptions, checkServeOptions } from './listener.js'
import { fromWire } from './protocol.js'
import { COUNTER_BYTES, Counters, type ServerStats } from './stats.js'
import type { WorkerData } from './worker.js'

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
