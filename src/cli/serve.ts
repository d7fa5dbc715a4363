/**
 * `in-mem serve`: opens a data directory and serves it to other processes
 * (`db.serve()`) until the process is told to stop (SIGINT, SIGTERM); then
 * closes the server and the database, so a buffered mode's writes are on
 * disk. Not part of the library's API.
 * @module
 */
import { Database, type Durability } from '../database.js'
import type { ServeTls } from '../server/listener.js'

/** What `in-mem serve` was asked to serve. */
export interface ServeDirOptions {
  /** The data directory (created when absent). */
  dir: string
  /** The durability mode to open with. */
  durability: Durability
  /** `host:port` for a TCP listener besides the socket. */
  listen?: string
  /** The token clients must present. */
  token?: string
  /** TLS for the TCP listener. */
  tls?: ServeTls
  /** Called with the URLs once the server listens. */
  ready: (urls: readonly string[]) => void
  /** Writes a line to stderr. */
  log: (line: string) => void
}

/**
 * Serves `dir` until SIGINT or SIGTERM; resolves to the exit code once the
 * server and the database are closed. Opening throws as `Database.open`
 * does (`LockedError` with the holder's pid), serving as `db.serve` does.
 */
export async function serveDir(opts: ServeDirOptions): Promise<number> {
  let stop: () => void = () => {}
  const stopped = new Promise<void>((resolve) => (stop = resolve))
  const onSignal = (): void => stop()
  // Listening before the open: a signal during it still stops cleanly.
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const db = Database.open(opts.dir, { durability: opts.durability })
    try {
      const server = await db.serve({
        ...(opts.listen === undefined ? {} : { listen: opts.listen }),
        ...(opts.token === undefined ? {} : { token: opts.token }),
        ...(opts.tls === undefined ? {} : { tls: opts.tls }),
      })
      opts.ready(server.urls)
      opts.log(`in-mem serve: serving ${opts.dir} (${opts.durability}) until SIGINT or SIGTERM`)
      await stopped
      await server.close()
    } finally {
      db.close()
    }
    opts.log('in-mem serve: stopped; the database is closed')
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  return 0
}
