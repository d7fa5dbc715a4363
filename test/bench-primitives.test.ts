// bench/primitives.mjs at a tiny size: it runs, what it timed is checked by
// the suite itself (a failed check is an error in the results), and the
// comparisons SPEC §12 judges (each write's durable class, state.get against
// every peer's read) are measured in BENCH_ROUNDS interleaved rounds, every
// round recorded, each figure the median of its rounds. Its figures are not
// checked: benchmarks are never timed tests.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'
import { expectRoundRow, median, type Ratio, type Row } from './bench-rounds.js'

const root = resolve(__dirname, '..')
const ROUNDS = 3

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-primitives')
})
afterEach(() => removeDir(dir))

type PrimRatio = Ratio & { op: string; inMemMode: string; peer: string; peerMode: string; p50Ratio: number; p50Rounds?: number[] }
interface PrimJson {
  config: { rounds: number; roundShare: number }
  results: Row[]
  ratios: PrimRatio[]
  skipped: { lib: string; op: string; why: string }[]
  errors: Record<string, string>
}

// The rows of the rounds: each write's durable class, and every state.get.
const IN_ROUNDS = [
  'in-mem events.append strict',
  'better-sqlite3 events.append WAL synchronous=FULL',
  'lmdb events.append transactionSync synced',
  'in-mem state.cas strict',
  'better-sqlite3 state.cas WAL synchronous=FULL',
  'lmdb state.cas putSync ifVersion synced',
  'in-mem state.get memory',
  'better-sqlite3 state.get WAL SELECT',
  'lmdb state.get getEntry',
  'in-mem json.set strict',
  'better-sqlite3 json.set json_set text synchronous=FULL',
  'lmdb json.set RMW JSON string synced',
  'in-mem traces.record strict',
  'better-sqlite3 traces.record WAL synchronous=FULL',
]

describe('bench/primitives.mjs', () => {
  it('measures the durable class of every write and state.get in interleaved rounds, records every round and reports the median ratios', () => {
    const out = join(dir, 'primitives.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_TIME_MS: '10',
      BENCH_DURABLE_MS: '10',
      BENCH_CELLS: '200',
      BENCH_DOCS: '50',
      BENCH_ROUNDS: String(ROUNDS),
      BENCH_DIR: dir,
      BENCH_OUT: out,
    }
    delete env.BENCH_ONLY
    delete env.BENCH_OPS
    const r = spawnSync(process.execPath, [join(root, 'bench', 'primitives.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as PrimJson
    expect(json.errors).toEqual({})
    expect(json.skipped).toEqual([])
    expect(json.config.rounds).toBe(ROUNDS)

    const name = (x: Row) => `${x.lib} ${x.op} ${x.mode}`
    expect(json.results.filter((x) => x.rounds !== undefined).map(name)).toEqual(IN_ROUNDS)
    for (const row of json.results.filter((x) => x.rounds !== undefined)) expectRoundRow(row, ROUNDS)
    // Round 1 measures in-mem, then each peer; each later round rotates the order by one.
    const positions = (n: string) => json.results.find((x) => name(x) === n)!.rounds!.map((x) => x.position)
    expect(positions('in-mem events.append strict')).toEqual([0, 2, 1])
    expect(positions('better-sqlite3 events.append WAL synchronous=FULL')).toEqual([1, 0, 2])
    expect(positions('lmdb state.get getEntry')).toEqual([2, 1, 0])
    expect(positions('in-mem traces.record strict')).toEqual([0, 1, 0])
    // Every other row (memory, buffered, nosync peers, the disk references) is measured once.
    const once = json.results.filter((x) => x.rounds === undefined)
    expect(once.length).toBeGreaterThan(0)
    for (const x of once.filter((y) => y.cls === 'durable')) expect(x.lib, name(x)).toBe('fs')

    // The comparisons of the rounds: one ratio per round (ops/s and median sample), the reported ones their medians.
    const compared = json.ratios.filter((x) => x.rounds !== undefined)
    expect(compared.map((x) => `${x.op} ${x.inMemMode} ${x.peer}`)).toEqual([
      'events.append strict better-sqlite3',
      'events.append strict lmdb',
      'state.cas strict better-sqlite3',
      'state.cas strict lmdb',
      'state.get memory better-sqlite3',
      'state.get memory lmdb',
      'json.set strict better-sqlite3',
      'json.set strict lmdb',
      'traces.record strict better-sqlite3',
    ])
    const row = (lib: string, op: string, mode: string) => json.results.find((x) => x.lib === lib && x.op === op && x.mode === mode)!
    for (const q of compared) {
      expect(q.rounds).toHaveLength(ROUNDS)
      expect(q.ratio).toBe(median(q.rounds!))
      expect(q.p50Rounds).toHaveLength(ROUNDS)
      expect(q.p50Ratio).toBe(median(q.p50Rounds!))
      const mine = row('in-mem', q.op, q.inMemMode)
      const peer = row(q.peer, q.op, q.peerMode)
      q.rounds!.forEach((x, i) => expect(x).toBeCloseTo(mine.rounds![i].opsPerSec / peer.rounds![i].opsPerSec, 9))
      expect(r.stdout).toContain(`${q.ratio.toFixed(2)}× (${q.rounds!.map((x) => x.toFixed(2)).join(', ')})`)
    }
    for (const q of json.ratios.filter((x) => x.rounds === undefined)) expect(q.inMemMode, `${q.op} ${q.peer} ${q.peerMode}`).not.toBe('strict')

    expect(readdirSync(dir)).toEqual(['primitives.json'])
  })
})
