/**
 * The worker thread that serves a database with a directory: it opens the
 * same path (so it shares the owner's engine) and runs the listener, so
 * that serving never blocks the owner's event loop.
 * @internal
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Database, type OpenOptions } from '../database.js'
import { Listener, type checkServeOptions } from './listener.js'
import { toWire } from './protocol.js'
import { Counters } from './stats.js'

/** What the owner passes to the worker. */
export interface WorkerData {
  path: string
  options: OpenOptions
  serve: ReturnType<typeof checkServeOptions>
  counters: SharedArrayBuffer
}

async function main(): Promise<void> {
  const data = workerData as WorkerData
  const port = parentPort
  if (port === null) return
  let opened: Database | undefined
  let listener: Listener
  try {
    opened = Database.open(data.path, data.options)
    listener = await Listener.start(opened, data.serve, new Counters(data.counters), true)
  } catch (e) {
    port.postMessage({ error: toWire(e) })
    // A failed start leaves nothing open.
    try {
      opened?.close()
    } catch {
      // closing is best effort here
    }
    return
  }
  const db = opened
  port.on('message', (msg: unknown) => {
    if (msg !== 'close') return
    void listener
      .close()
      .then(() => db.close())
      .then(
        () => port.postMessage({ closed: true }),
        (e: unknown) => port.postMessage({ closed: true, error: toWire(e) }),
      )
      .finally(() => port.close())
  })
  port.postMessage({ urls: listener.urls })
}

void main()
