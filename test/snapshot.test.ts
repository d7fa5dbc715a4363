// Answers composed of several reads come from one snapshot (issue 11): a
// worker thread commits without pause while the main thread reads.
import { once } from 'node:events'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const pkg = JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))

/**
 * Starts a worker that opens `path` and runs `body` (with `db`, `data` and
 * `i` in scope) in a loop until the shared stop flag is raised; resolves
 * `started` after its first commit.
 */
function writer(path: string, data: unknown, body: string): { started: Promise<unknown>; stop: () => Promise<number> } {
  const flag = new SharedArrayBuffer(4)
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { Database } = require(${pkg})
    const db = Database.open(workerData.path)
    const data = workerData.data
    const stop = new Int32Array(workerData.flag)
    let i = 0
    while (Atomics.load(stop, 0) === 0) {
      i++
      ${body}
      if (i === 1) parentPort.postMessage('started')
    }
    db.close()
    parentPort.postMessage({ done: i })
  `
  const worker = new Worker(code, { eval: true, workerData: { path, data, flag } })
  const messages: unknown[] = []
  let resolveStarted: (v: unknown) => void
  const started = new Promise((r) => (resolveStarted = r))
  worker.on('message', (m) => {
    messages.push(m)
    if (m === 'started') resolveStarted(m)
  })
  const exited = once(worker, 'exit')
  return {
    started,
    stop: async () => {
      Atomics.store(new Int32Array(flag), 0, 1)
      const [code] = (await exited) as [number]
      expect(code).toBe(0)
      return (messages.find((m) => typeof m === 'object') as { done: number }).done
    },
  }
}

/** Runs `fn` repeatedly for `ms` milliseconds of this thread. */
function forAWhile(ms: number, fn: () => void): number {
  const end = Date.now() + ms
  let n = 0
  while (Date.now() < end) {
    fn()
    n++
  }
  return n
}

let dir: string
let db: Database
beforeEach(() => {
  dir = makeTmpDir('snapshot')
  db = Database.open(dir)
})
afterEach(() => {
  db.close()
  removeDir(dir)
})

describe('one snapshot per answer, with a worker committing all the while', () => {
  it('kv.getMany never shows half of a putMany', async () => {
    const run = db.runs.begin()
    db.kv.putMany(run, { a: 0, b: 0, c: 0 })
    const w = writer(dir, { run }, `db.kv.putMany(data.run, { a: i, b: i, c: i })`)
    await w.started
    const torn: unknown[] = []
    const reads = forAWhile(400, () => {
      const [a, b, c] = db.kv.getMany(run, ['a', 'b', 'c'])
      if (a !== b || b !== c) torn.push([a, b, c])
    })
    const written = await w.stop()
    expect(torn).toEqual([])
    expect(reads).toBeGreaterThan(100)
    expect(db.kv.getMany(run, ['a', 'b', 'c'])).toEqual([written, written, written])
  })

  it('db.diff returns values and event tails of the same moment as its key sets', async () => {
    const parent = db.runs.begin()
    db.kv.put(parent, 'n', 0)
    const fork = db.runs.fork(parent)
    const w = writer(
      dir,
      { fork },
      `db.transaction(data.fork, (tx) => {
        tx.kv.put('n', i)
        tx.events.append('step', i)
        tx.traces.record({ type: 'custom', data: { custom: i } })
      })`,
    )
    await w.started
    const mixed: unknown[] = []
    forAWhile(400, () => {
      const d = db.diff(parent, fork)
      const n = d.kv.changed.find((c) => c.key === 'n')?.b as number | undefined
      if (n === undefined) return
      // Each commit set n, appended one event and recorded one trace.
      if (d.events.b.length !== n || d.traces.added.length !== n) mixed.push({ n, events: d.events.b.length, traces: d.traces.added.length })
    })
    await w.stop()
    expect(mixed).toEqual([])
  })

  it('runs.lineage reads every ancestor at one moment', async () => {
    // A chain of five runs, nearest first from the leaf. The worker pauses
    // them leaf first and resumes them root first, one commit each: at every
    // moment the paused runs are the ones nearest the leaf. A lineage read
    // run by run (the leaf, then later its parent, ...) sees an active run
    // nearer the leaf than a paused one when the worker moves in between.
    const chain = [db.runs.begin({ name: 'root' })]
    for (let d = 1; d < 5; d++) chain.push(db.runs.begin({ parent: chain[d - 1], name: `depth ${d}` }))
    const leaf = chain[4]
    const w = writer(
      dir,
      { chain },
      `for (let d = 4; d >= 0; d--) db.runs.pause(data.chain[d])
      for (let d = 0; d < 5; d++) db.runs.resume(data.chain[d])`,
    )
    await w.started
    const mixed: string[][] = []
    let sawPaused = 0
    const reads = forAWhile(400, () => {
      const statuses = db.runs.lineage(leaf).map((r) => r.status)
      expect(statuses).toHaveLength(5)
      const lastPaused = statuses.lastIndexOf('paused')
      if (lastPaused !== -1) sawPaused++
      if (lastPaused !== -1 && statuses.slice(0, lastPaused).some((s) => s !== 'paused')) mixed.push(statuses)
    })
    await w.stop()
    expect(mixed).toEqual([])
    expect(reads).toBeGreaterThan(100)
    expect(sawPaused, 'the reads met the worker mid-way').toBeGreaterThan(0)
  })

  it('runs.tag from one worker while another untags in a loop loses no tag', async () => {
    const run = db.runs.begin({ tags: ['keep'] })
    // The untagger removes a tag the run never has, without pause: a
    // get-then-update would write back its stale list over the tagger's.
    const untagger = writer(dir, { run }, `db.runs.untag(data.run, 'never')`)
    await untagger.started
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { Database } = require(${pkg})
      const db = Database.open(workerData.path)
      for (let i = 0; i < 40; i++) db.runs.tag(workerData.run, 'x-' + i)
      db.close()
      parentPort.postMessage('done')
    `
    const tagger = new Worker(code, { eval: true, workerData: { path: dir, run } })
    await once(tagger, 'exit')
    await untagger.stop()
    const expected = ['keep', ...Array.from({ length: 40 }, (_, i) => `x-${i}`)].sort()
    expect([...db.runs.get(run)!.tags].sort()).toEqual(expected)
  })
})

describe('json.list', () => {
  it('lists a run’s documents in id order, with prefix, after and limit, and a transaction’s own creations and deletions', () => {
    const run = db.runs.begin()
    for (const id of ['b', 'a', 'notes/2', 'notes/1']) db.json.set(run, id, '$', { id })
    expect(db.json.list(run)).toEqual(['a', 'b', 'notes/1', 'notes/2'])
    expect(db.json.list(run, { prefix: 'notes/' })).toEqual(['notes/1', 'notes/2'])
    expect(db.json.list(run, { after: 'b', limit: 1 })).toEqual(['notes/1'])
    db.transaction(run, (tx) => {
      tx.json.set('c', '$.x', 1)
      tx.json.delete('a', '$')
      expect(tx.json.list()).toEqual(['b', 'c', 'notes/1', 'notes/2'])
    })
    expect(db.json.list(run)).toEqual(['b', 'c', 'notes/1', 'notes/2'])
    // On a fork (reading through to its parent) and on a replay view.
    const fork = db.runs.fork(run)
    db.json.set(fork, 'd', '$', 1)
    expect(db.json.list(fork)).toEqual(['b', 'c', 'd', 'notes/1', 'notes/2'])
    const view = db.replay(run)
    expect(view.json.list()).toEqual(['b', 'c', 'notes/1', 'notes/2'])
    view.close()
  })
})
