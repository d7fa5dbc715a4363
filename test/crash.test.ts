import { fork } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const writer = join(__dirname, 'fixtures', 'crash-writer.cjs')

interface Crash {
  run: string
  /** Indexes of the writes acknowledged to us before the kill. */
  acked: { type: 'put' | 'many' | 'tx'; i: number }[]
  killAfter: number
}

/**
 * Runs the writer on `dir` and kills it with SIGKILL once it acknowledged
 * `killAfter` writes. Resolves after the process is gone.
 */
async function crashWriter(dir: string, durability: 'strict' | 'buffered', killAfter: number, options = {}): Promise<Crash> {
  const child = fork(writer, [dir, durability, JSON.stringify(options)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const acked: Crash['acked'] = []
  let run = ''
  const exited = once(child, 'exit')
  const killed = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type: string; run?: string; i?: number }) => {
      if (m.type === 'run') run = m.run!
      else if (acked.length < killAfter) {
        acked.push({ type: m.type as 'put', i: m.i! })
        if (acked.length === killAfter) {
          child.kill('SIGKILL')
          resolve()
        }
      }
    })
    void exited.then(([code, signal]) => {
      if (acked.length < killAfter) reject(new Error(`writer exited early (code ${code}, signal ${signal}) after ${acked.length} acks`))
    })
  })
  await killed
  const [, signal] = await exited
  expect(signal).toBe('SIGKILL')
  expect(run).not.toBe('')
  return { run, acked, killAfter }
}

/** Groups the run's keys by write index: `k12` → 12, `t7/a` → 7. */
function writesByIndex(db: Database, run: string): Map<number, string[]> {
  const out = new Map<number, string[]>()
  for (const key of db.kv.list(run)) {
    const i = Number(/^[kmt](\d+)/.exec(key)![1])
    out.set(i, [...(out.get(i) ?? []), key])
  }
  return out
}

/** Every recovered write is whole, and the recovered writes are 0..n-1 with no hole. */
function checkWholeAndPrefix(db: Database, run: string, context: string): number {
  const byIndex = writesByIndex(db, run)
  for (const [i, keys] of byIndex) {
    const expected = i % 4 === 3 ? [`t${i}/a`, `t${i}/b`, `t${i}/c`] : i % 4 === 1 ? [`m${i}/a`, `m${i}/b`] : [`k${i}`]
    expect(keys, `${context}: write ${i} is half-applied`).toEqual(expected)
    if (i % 4 === 3) {
      expect(db.kv.getMany(run, expected), context).toEqual([
        { i, part: 'a' },
        { i, part: 'b', pad: 'v'.repeat(i % 97) },
        { i, part: 'c' },
      ])
    } else if (i % 4 === 1) {
      expect(db.kv.getMany(run, expected), context).toEqual([i, -i])
    } else {
      expect(db.kv.get(run, `k${i}`), context).toEqual({ i, pad: 'v'.repeat(i % 97) })
    }
  }
  const n = byIndex.size
  const indexes = [...byIndex.keys()].sort((a, b) => a - b)
  expect(indexes, `${context}: the recovered writes have a hole`).toEqual(Array.from({ length: n }, (_, i) => i))
  return n
}

let dir: string

beforeEach(() => {
  dir = makeTmpDir('in-mem-crash')
})

afterEach(() => {
  removeDir(dir)
})

describe('crash tests (SIGKILL)', () => {
  it('strict: every acknowledged write survives, and no commit is half-applied (5 kills)', async () => {
    for (let iteration = 0; iteration < 5; iteration++) {
      const iterDir = join(dir, `iter-${iteration}`)
      const killAfter = 50 + Math.floor(Math.random() * 251)
      const crash = await crashWriter(iterDir, 'strict', killAfter)
      const context = `iteration ${iteration}, killed after ${killAfter} acks`

      const db = Database.open(iterDir, { durability: 'strict' })
      try {
        expect(db.runs.get(crash.run)?.status, context).toBe('active')
        expect(db.stats().recovery.orphanedRuns, context).toEqual([crash.run])
        const recovered = checkWholeAndPrefix(db, crash.run, context)
        // Every acknowledged write is there, with its value (checked above).
        const maxAcked = Math.max(...crash.acked.map((a) => a.i))
        expect(recovered, context).toBeGreaterThan(maxAcked)
        for (const a of crash.acked) {
          const key = a.type === 'tx' ? `t${a.i}/b` : a.type === 'many' ? `m${a.i}/a` : `k${a.i}`
          expect(db.kv.exists(crash.run, key), `${context}: acknowledged ${a.type} ${a.i} is lost`).toBe(true)
        }
        // Recovery replayed one record per commit, up to the last one.
        expect(db.stats().recovery.records, context).toBe(db.stats().version)
      } finally {
        db.close()
      }
    }
  })

  it('buffered: the recovered history is a gap-free prefix of the acknowledged one, losing fewer than maxPendingWrites', async () => {
    // No timed flush during the test: only full batches reach the OS.
    const maxPendingWrites = 64
    for (let iteration = 0; iteration < 2; iteration++) {
      const iterDir = join(dir, `buffered-${iteration}`)
      const killAfter = 150 + Math.floor(Math.random() * 350)
      const crash = await crashWriter(iterDir, 'buffered', killAfter, { flushIntervalMs: 60_000, maxPendingWrites })
      const context = `buffered iteration ${iteration}, killed after ${killAfter} acks`
      const db = Database.open(iterDir, { durability: 'buffered' })
      try {
        expect(db.runs.get(crash.run)?.status, context).toBe('active')
        const recovered = checkWholeAndPrefix(db, crash.run, context)
        // Commits are the run's begin plus one per write.
        expect(db.stats().version, context).toBe(recovered + 1)
        expect(db.stats().recovery.records, context).toBe(recovered + 1)
        expect(recovered, context).toBeGreaterThan(crash.acked.length - maxPendingWrites)
      } finally {
        db.close()
      }
    }
  })
})
