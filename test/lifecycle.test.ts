// The lifecycle a real program has: worker threads that come and go, opens
// racing closes, a worker terminated mid-write, and a buffered writer whose
// process dies without close(). Each scenario runs in its own child process
// (test/fixtures/lifecycle.cjs), so a SIGSEGV is a failed test, not a dead
// runner.
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { Database, InternalError } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const script = join(__dirname, 'fixtures', 'lifecycle.cjs')

interface Ended {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
  result: unknown
}

/**
 * Runs one scenario; resolves when the process has ended. `onResult` is
 * called with the child itself once it printed its RESULT line.
 */
function scenario(args: string[], opts: { gc?: boolean; onResult?: (child: ReturnType<typeof spawn>) => void } = {}): Promise<Ended> {
  const child = spawn(process.execPath, [...(opts.gc ? ['--expose-gc'] : []), script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let result: unknown
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '))
    if (line && result === undefined) {
      result = JSON.parse(line.slice(7))
      opts.onResult?.(child)
    }
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr, result })))
}

function expectClean(ended: Ended): void {
  expect(ended.signal, `the child died of ${ended.signal}; stderr:\n${ended.stderr}`).toBeNull()
  expect(ended.code, `stderr:\n${ended.stderr}`).toBe(0)
}

let dir: string
beforeEach(() => {
  dir = makeTmpDir('lifecycle')
})
afterEach(() => removeDir(dir))

describe('worker threads that come and go', () => {
  it('20 workers in a row load the addon, each after the previous exited (was SIGSEGV in the allocator)', async () => {
    const ended = await scenario(['require-only', dir])
    expectClean(ended)
    expect(ended.result).toEqual({ workers: 20 })
  })

  it('20 workers in a row open, use and close a memory database', async () => {
    const ended = await scenario(['sequential', dir, 'memory'])
    expectClean(ended)
    expect(ended.result).toEqual({ seen: Array(20).fill(0), count: 0 })
  })

  it('20 workers in a row open the same directory, each finding what the previous ones wrote', async () => {
    const ended = await scenario(['sequential', join(dir, 'db'), 'buffered'])
    expectClean(ended)
    expect(ended.result).toEqual({ seen: Array.from({ length: 20 }, (_, i) => i), count: 20 })
  })
})

describe('opens racing closes on one path', () => {
  it('200 rounds of two workers opening, writing and closing the same new directory: no LockedError, nothing lost', async () => {
    const ended = await scenario(['race', dir, 'close'])
    expectClean(ended)
    expect(ended.result).toEqual({ rounds: 200, complete: 200 })
  }, 60_000)

  it('200 rounds with the handles left to the garbage collector instead of close()', async () => {
    const ended = await scenario(['race', dir, 'gc'], { gc: true })
    expectClean(ended)
    expect(ended.result).toEqual({ rounds: 200, complete: 200 })
  }, 60_000)

  it('the main thread and two workers open, write and close the same path in a loop', async () => {
    const ended = await scenario(['main-and-workers', join(dir, 'db')])
    expectClean(ended)
    expect(ended.result).toEqual({ count: 150, expected: 150 })
  }, 60_000)

  it('strict transactionAsync on one engine from the main thread and from workers that finish, are terminated mid-wait, and start anew: every acknowledged write is there', async () => {
    const ended = await scenario(['strict-async-workers', join(dir, 'db')])
    expectClean(ended)
    const r = ended.result as { acked: number; missing: number; terminated: number; mainWrites: number; detail?: unknown }
    expect(r.terminated).toBe(6)
    expect(r.acked).toBeGreaterThan(6 * 300)
    expect(r.mainWrites).toBeGreaterThan(0)
    expect(r.missing, JSON.stringify(r.detail)).toBe(0)
  }, 120_000)

  it('a commit whose native call returns nothing (its error could not be thrown: a worker being terminated) is never acknowledged', async () => {
    // Seen once in ~500 runs of the test above (2026-12-08): a terminated
    // worker's transactionAsync resolved, and was acknowledged, for a write
    // the log never held. While a worker is stopped, JavaScript runs on for
    // a moment after the native side can no longer throw into it: a failing
    // native call then returns undefined, which the commit took for "read
    // only, nothing to wait for". Here the native commit is made to fail so.
    // The module instance the database's own code uses (vitest's import would make another).
    const { TX } = createRequire(__filename)('../dist/native.js') as typeof import('../dist/native.js')
    const db = Database.open(join(dir, 'db'), { durability: 'strict' })
    const run = db.runs.begin()
    const real = TX.commit
    let calls = 0
    TX.commit = function (this: unknown) {
      calls++
      return undefined as unknown as number
    }
    try {
      await expect(db.transactionAsync(run, (tx) => tx.kv.put('async', 1))).rejects.toBeInstanceOf(InternalError)
      expect(() => db.transaction(run, (tx) => tx.kv.put('sync', 1))).toThrow(InternalError)
      expect(calls).toBe(2)
    } finally {
      TX.commit = real
    }
    expect(db.kv.get(run, 'async')).toBeUndefined()
    expect(db.kv.get(run, 'sync')).toBeUndefined()
    // The handle goes on: the next transaction commits and is acknowledged.
    await db.transactionAsync(run, (tx) => tx.kv.put('after', 1))
    db.close()
    const again = Database.open(join(dir, 'db'), { durability: 'strict' })
    expect([again.kv.get(run, 'async'), again.kv.get(run, 'sync'), again.kv.get(run, 'after')]).toEqual([undefined, undefined, 1])
    again.close()
  })

  it('a single write whose native call answers nothing is never taken for done, whatever the primitive', () => {
    // As above, for the writes outside a transaction: each native write
    // answers something (json.set and vectors.upsert answer true), so an
    // answer of nothing is an error, not a write done.
    const { nativeHandles } = createRequire(__filename)('../dist/internal.js') as typeof import('../dist/internal.js')
    const db = Database.open(join(dir, 'db'), { durability: 'strict' })
    const run = db.runs.begin()
    db.json.set(run, 'doc', '$', { a: 1 })
    // The class of the native transaction handles (single operations and transactions alike).
    const proto = Object.getPrototypeOf(nativeHandles.get(db)!.singleOperations()) as Record<string, unknown>
    const methods = ['jsonSet', 'jsonMerge', 'eventsAppend', 'stateSet']
    const real = methods.map((m) => proto[m])
    for (const m of methods) proto[m] = () => undefined
    try {
      expect(() => db.json.set(run, 'doc', '$.a', 2)).toThrow(InternalError)
      expect(() => db.json.merge(run, 'doc', '$', { b: 1 })).toThrow(InternalError)
      expect(() => db.events.append(run, 'e', {})).toThrow(InternalError)
      expect(() => db.transaction(run, (tx) => tx.json.set('doc', '$.a', 3))).toThrow(InternalError)
    } finally {
      methods.forEach((m, i) => (proto[m] = real[i]))
    }
    db.json.set(run, 'doc', '$.c', 4)
    expect(db.json.get(run, 'doc')).toStrictEqual({ a: 1, c: 4 })
    db.close()
  })

  it('a process whose only work is a strict transactionAsync waits for its acknowledgement, then ends without close()', async () => {
    const ended = await scenario(['strict-async-alone', join(dir, 'db')])
    expectClean(ended)
    const { run } = ended.result as { run: string }
    const db = Database.open(join(dir, 'db'), { durability: 'strict' })
    expect(db.kv.get(run, 'k')).toBe('acknowledged')
    db.close()
  }, 60_000)

  it('workers that write keys the maintenance thread packs, and close, exit or are terminated while it does: no crash, nothing lost', async () => {
    const ended = await scenario(['packing-workers', join(dir, 'db')])
    expectClean(ended)
    const r = ended.result as { mainOk: boolean; workerRuns: number; everyRunWhole: boolean; packedAll: boolean }
    expect(r.mainOk).toBe(true)
    expect(r.packedAll).toBe(true)
    // Workers 0 and 1 report each round; worker 2 when it finished before it was terminated.
    expect(r.workerRuns).toBeGreaterThanOrEqual(16)
    expect(r.everyRunWhole).toBe(true)
  }, 60_000)

  it('a worker terminated mid-write: a new worker finds every acknowledged write, without gaps', async () => {
    const ended = await scenario(['terminate', join(dir, 'db')])
    expectClean(ended)
    const r = ended.result as { acked: number; count: number; max: number; gapless: boolean }
    expect(r.acked).toBeGreaterThanOrEqual(3000)
    expect(r.gapless).toBe(true)
    // Writes after the last ack that reached the main thread may be there too.
    expect(r.max).toBeGreaterThanOrEqual(r.acked)
    expect(r.count).toBe(r.max + 1)
  }, 60_000)
})

describe('close() is synchronous', () => {
  it('when close() returns, the checkpoint on close is written and LOCK is free, though the maintenance thread runs all the time (50 rounds)', () => {
    const path = join(dir, 'db')
    for (let i = 0; i < 50; i++) {
      // A 1 ms maintenance interval: a background round holds the engine
      // most of the time, so the last handle's close often meets it.
      const db = Database.open(path, { purgeIntervalMs: 1 })
      const run = db.runs.begin()
      db.kv.put(run, 'k', i)
      const version = db.stats().version
      db.close()
      const newest = readdirSync(join(path, 'checkpoints'))
        .map((f) => Number(f.replace('.ckpt', '')))
        .sort((a, b) => b - a)[0]
      expect(newest, `round ${i}: the checkpoint on close was not written before close() returned`).toBe(version)
      // LOCK is free: another process can take it at once.
      if (i % 10 === 0) {
        const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))}).Database.open(${JSON.stringify(path)}, { checkpointOnClose: false }).close()`], { encoding: 'utf8' })
        expect(r.status, r.stderr).toBe(0)
      }
    }
  }, 60_000)
})

describe('buffered mode survives the death of the process', () => {
  /** Reopens `path` and counts the keys of `run`, with the last event. */
  function recovered(path: string, run: string): { keys: number; lastEvent: string | undefined } {
    const db = Database.open(path)
    try {
      const events = db.events.range(run)
      return { keys: db.kv.count(run), lastEvent: events[events.length - 1]?.type }
    } finally {
      db.close()
    }
  }

  for (const how of ['throw', 'exit'] as const) {
    it(`5,000 puts then ${how === 'throw' ? 'an uncaught exception' : 'process.exit(0)'}: every acknowledged write is there`, async () => {
      const path = join(dir, how)
      const ended = await scenario(['die', path, how])
      if (how === 'throw') {
        expect(ended.code).toBe(1)
        expect(ended.stderr).toContain('agent bug')
      } else expectClean(ended)
      const { run, acked } = ended.result as { run: string; acked: number }
      expect(recovered(path, run)).toEqual({ keys: acked, lastEvent: 'about-to-die' })
    })
  }

  it('5,000 puts then SIGTERM: every acknowledged write is there', async () => {
    const path = join(dir, 'sigterm')
    const ended = await scenario(['die', path, 'wait'], { onResult: (child) => child.kill('SIGTERM') })
    expect(ended.signal).toBe('SIGTERM')
    const { run, acked } = ended.result as { run: string; acked: number }
    expect(recovered(path, run)).toEqual({ keys: acked, lastEvent: 'about-to-die' })
  })

  it('5,000 puts then SIGKILL: every acknowledged write is there', async () => {
    const path = join(dir, 'sigkill')
    const ended = await scenario(['die', path, 'wait'], { onResult: (child) => child.kill('SIGKILL') })
    expect(ended.signal).toBe('SIGKILL')
    const { run, acked } = ended.result as { run: string; acked: number }
    expect(recovered(path, run)).toEqual({ keys: acked, lastEvent: 'about-to-die' })
  })
})
