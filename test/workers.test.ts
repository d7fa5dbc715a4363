import { once } from 'node:events'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const fixture = (name: string) => join(__dirname, 'fixtures', name)

/** Starts a worker and resolves with its one message; rejects if it fails or exits first. */
function runWorker<T>(script: string, workerData: unknown): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(fixture(script), { workerData })
  const result = new Promise<T>((resolve, reject) => {
    let message: { value: T } | undefined
    worker.once('message', (m: T) => {
      message = { value: m }
    })
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (message) resolve(message.value)
      else reject(new Error(`${script} exited with code ${code} before reporting`))
    })
  })
  return { worker, result }
}

let dir: string
let db: Database

beforeEach(() => {
  dir = makeTmpDir('in-mem-workers')
  db = Database.open(dir, { durability: 'buffered' })
})

afterEach(() => {
  db.close()
  removeDir(dir)
})

describe('worker_threads', () => {
  it('4 workers incrementing shared counters through transactions lose no update', async () => {
    const run = db.runs.begin({ name: 'counters' })
    const keys = ['c0', 'c1', 'c2']
    const workers = 4
    const increments = 200
    const started = Array.from({ length: workers }, (_, id) =>
      runWorker<{ id: number; committed: number; attempts: number }>('counter-worker.cjs', { path: dir, run, keys, increments, id }),
    )
    const reports = await Promise.all(started.map((w) => w.result))
    for (const r of reports) {
      expect(r.committed).toBe(increments)
      expect(r.attempts).toBeGreaterThanOrEqual(increments)
    }
    const counters = db.kv.getMany(run, keys) as number[]
    expect(counters.reduce((a, b) => a + b, 0)).toBe(workers * increments)
    // Each worker starts at its own key offset, so each counter's total is known exactly.
    const expected = keys.map((_, k) => {
      let n = 0
      for (let id = 0; id < workers; id++) for (let i = 0; i < increments; i++) if ((i + id) % keys.length === k) n++
      return n
    })
    expect(counters).toEqual(expected)
    for (let id = 0; id < workers; id++) expect(db.kv.get(run, `done:${id}`)).toBe(increments)

    // Every one of those commits is in the shared engine, and on disk after close.
    db.close()
    db = Database.open(dir, { durability: 'buffered' })
    expect(db.kv.getMany(run, keys)).toEqual(expected)
  })

  it('a commit in one worker is visible atomically to a reader in another, and a read never misses a rewritten key', async () => {
    const run = db.runs.begin({ name: 'pairs' })
    const toggle = db.runs.begin({ name: 'paused and resumed' })
    const flag = new SharedArrayBuffer(4)
    const count = 1500
    const reader = runWorker<{ reads: number; nonZero: number; torn: unknown[]; final: number[] }>('pair-reader.cjs', { path: dir, run, toggle, flag })
    const writer = runWorker<{ written: number }>('pair-writer.cjs', { path: dir, run, toggle, count, flag })
    const [w, r] = await Promise.all([writer.result, reader.result])
    expect(w.written).toBe(count)
    expect(r.torn).toEqual([])
    expect(r.reads).toBeGreaterThan(0)
    expect(r.final).toEqual([count, count])
    expect(db.kv.getMany(run, ['pair/a', 'pair/b'])).toEqual([count, count])
    expect(db.kv.count(run, { prefix: 'log/' })).toBe(count)
    expect(db.runs.get(toggle)!.status).toBe('active')
  })

  it('a worker opening the path shares the engine of the main thread', async () => {
    const run = db.runs.begin()
    db.kv.put(run, 'from-main', 1)
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { Database } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))})
      const db = Database.open(workerData.path)
      const seen = db.kv.get(workerData.run, 'from-main')
      db.kv.put(workerData.run, 'from-worker', seen + 1)
      const version = db.stats().version
      db.close()
      parentPort.postMessage({ seen, version })
    `
    const worker = new Worker(code, { eval: true, workerData: { path: dir, run } })
    // Listen for the exit first: it can follow the last message in the same tick.
    const exited = once(worker, 'exit')
    const [msg] = (await once(worker, 'message')) as [{ seen: number; version: number }]
    expect((await exited)[0]).toBe(0)
    expect(msg.seen).toBe(1)
    // No reopen happened: the worker's write is visible at once, at the version it reported.
    expect(db.kv.get(run, 'from-worker')).toBe(2)
    expect(db.stats().version).toBe(msg.version)
    expect(db.stats().recovery.records).toBe(0)
  })
})
