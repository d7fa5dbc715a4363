/**
 * The worker thread that serves a database with a directory: it opens the
 * same path (so it shares the owner's engine) and runs the listener, so
 * that serving never blocks the owner's event loop.
 * @internal
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Database, type OpenOptions } from '../database.js'
import { DurableWaiter } from '../durable.js'
import { nativeHandles } from '../internal.js'
import { type GroupCommit, Listener, type checkServeOptions } from './listener.js'
import { toWire } from './protocol.js'
import { Counters } from './stats.js'

/** What the owner passes to the worker. */
export interface WorkerData {
  path: string
  options: OpenOptions
  serve: ReturnType<typeof checkServeOptions>
  counters: SharedArrayBuffer
}

/**
 * In strict mode, this thread's commits stop waiting for their own fsync:
 * the listener waits once for all the commits of the requests it read
 * together before it answers them (group commit across clients).
 */
function groupCommit(db: Database): GroupCommit | null {
  if (db.stats().durability !== 'strict') return null
  const native = nativeHandles.get(db)
  if (native === undefined) return null
  native.deferDurabilityOnThisThread(true)
  const waiter = DurableWaiter.of(native)
  return { version: () => native.version, wait: (v) => waiter.wait(v) }
}

async function main(): Promise<void> {
  const data = workerData as WorkerData
  const port = parentPort
  if (port === null) return
  let opened: Database | undefined
  let listener: Listener
  try {
    opened = Database.open(data.path, data.options)
    listener = await Listener.start(opened, data.serve, new Counters(data.counters), true, groupCommit(opened))
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
