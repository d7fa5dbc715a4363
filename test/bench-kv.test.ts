// bench/kv.mjs at a tiny size: it runs, and the comparisons SPEC §12 judges
// (in-mem memory mode's reads against every peer's, strict kv.put against
// the durable peers and the raw fdatasync) are measured in BENCH_ROUNDS
// interleaved rounds, every round recorded, each figure the median of its
// rounds. Its figures are not checked: benchmarks are never timed tests.
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
  dir = makeTmpDir('in-mem-bench-kv')
})
afterEach(() => removeDir(dir))

interface KvJson {
  config: { keys: number; rounds: number; roundShare: number }
  results: Row[]
  ratios: (Ratio & { op: string; inMemMode: string; peer: string; peerMode: string; target?: number })[]
  errors: Record<string, string>
}

const PEERS = ['lmdb', 'better-sqlite3', 'classic-level']

describe('bench/kv.mjs', () => {
  it('measures the reads and the durable puts in interleaved rounds, records every round and reports the median ratios', () => {
    const out = join(dir, 'kv.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_KEYS: '500',
      BENCH_TIME_MS: '10',
      BENCH_DURABLE_MS: '10',
      BENCH_ROUNDS: String(ROUNDS),
      BENCH_DIR: dir,
      BENCH_OUT: out,
    }
    delete env.BENCH_ONLY
    const r = spawnSync(process.execPath, [join(root, 'bench', 'kv.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as KvJson
    expect(json.errors).toEqual({})
    expect(json.config.rounds).toBe(ROUNDS)
    expect(json.config.roundShare).toBe(0.5)

    // The rows of the interleaved comparisons: ROUNDS rounds each, the figure their median.
    const inRounds = json.results.filter((x) => x.rounds !== undefined)
    const names = inRounds.map((x) => `${x.lib} ${x.op} ${x.mode}`).sort()
    expect(names).toEqual(
      [
        'in-mem get-hit memory',
        'in-mem get-miss memory',
        'in-mem put strict',
        'lmdb get-hit get',
        'lmdb get-miss get',
        'lmdb put putSync synced',
        'better-sqlite3 get-hit WAL',
        'better-sqlite3 get-miss WAL',
        'better-sqlite3 put WAL synchronous=FULL',
        'classic-level get-hit await get',
        'classic-level get-miss await get',
        'classic-level put await put {sync:true}',
        'fs put append 100 B + fdatasync',
        'fs put overwrite 100 B + fdatasync',
      ].sort(),
    )
    for (const row of inRounds) expectRoundRow(row, ROUNDS)
    // Round 1 measures in-mem first; each later round rotates the order by one (reads: 4 libraries, durable: 5).
    const at = (lib: string, op: string, mode: string) => json.results.find((x) => x.lib === lib && x.op === op && x.mode === mode)!
    expect(at('in-mem', 'get-hit', 'memory').rounds!.map((x) => x.position)).toEqual([0, 3, 2])
    expect(at('lmdb', 'get-hit', 'get').rounds!.map((x) => x.position)).toEqual([1, 0, 3])
    expect(at('in-mem', 'put', 'strict').rounds!.map((x) => x.position)).toEqual([0, 4, 3])
    expect(at('fs', 'put', 'overwrite 100 B + fdatasync').rounds!.map((x) => x.position)).toEqual([4, 3, 2])
    // The other rows are measured once.
    expect(json.results.filter((x) => x.rounds === undefined).map((x) => `${x.lib} ${x.op} ${x.mode}`)).toEqual([
      'in-mem put memory',
      'in-mem put buffered',
      'in-mem get-hit buffered',
      'in-mem get-miss buffered',
      'in-mem get-hit strict',
      'in-mem get-miss strict',
      'lmdb put putSync noSync',
      'lmdb put putSync overlappingSync',
      'better-sqlite3 put WAL synchronous=NORMAL',
      'classic-level put await put',
    ])

    // Every comparison of the rounds: one ratio per round, the reported ratio their median.
    const compared = json.ratios.filter((x) => x.rounds !== undefined)
    expect(compared.map((x) => `${x.op} ${x.inMemMode} ${x.peer}`).sort()).toEqual(
      [
        ...PEERS.flatMap((p) => [`get-hit memory ${p}`, `get-miss memory ${p}`, `put strict ${p}`]),
        'put strict fs',
        'put strict fs',
      ].sort(),
    )
    for (const q of compared) {
      expect(q.rounds, `${q.op} ${q.inMemMode} ${q.peer} ${q.peerMode}`).toHaveLength(ROUNDS)
      expect(q.ratio).toBe(median(q.rounds!))
      // Each round's ratio is taken within the round.
      const mine = at('in-mem', q.op, q.inMemMode)
      const peer = at(q.peer, q.op, q.peerMode)
      q.rounds!.forEach((x, i) => expect(x).toBeCloseTo(mine.rounds![i].opsPerSec / peer.rounds![i].opsPerSec, 9))
      expect(r.stdout).toContain(`${q.ratio.toFixed(2)}× (${q.rounds!.map((x) => x.toFixed(2)).join(', ')})`)
    }
    // Measured once: no rounds.
    const buffered = json.ratios.find((x) => x.inMemMode === 'buffered' && x.peer === 'in-mem')!
    expect(buffered.rounds).toBeUndefined()
    expect(buffered.target).toBe(0.8)

    expect(readdirSync(dir)).toEqual(['kv.json'])
  })
})
