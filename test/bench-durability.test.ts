// bench/durability.mjs at a tiny size: every section runs, and the strict
// single-writer comparison (in-mem strict kv.put against better-sqlite3
// FULL, lmdb synced and the two raw fdatasync references) is measured in
// BENCH_ROUNDS interleaved rounds, every round recorded, each figure and
// each target judged on the median of its rounds. Its figures are not
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
  dir = makeTmpDir('in-mem-bench-durability')
})
afterEach(() => removeDir(dir))

interface StrictTarget extends Ratio {
  strictNsPerOp: number
  fdatasyncNsPerOp: number
  p50Ratio: number
  p50Rounds: number[]
  overwriteRatio: number
  overwriteRounds: number[]
  pass: boolean
}
interface DurabilityJson {
  config: { rounds: number; sections: string[] }
  results: (Row & { section: string; writers?: number })[]
  ratios: (Ratio & { section: string; writers?: number; peer: string; peerMode: string })[]
  targets: {
    recovery?: { pass: boolean }
    checkpoint?: object
    strictSingleWriter?: StrictTarget
    groupCommit?: { ratio: number; singleSyncCommitsPerSec: number; pass: boolean }
    durableVsPeers?: { single: (Ratio & { peer: string })[]; pass: boolean }
  }
  errors: Record<string, string>
}

describe('bench/durability.mjs', () => {
  it('runs every section; the strict single writer in interleaved rounds, every round recorded, the ratios and targets on their medians', () => {
    const out = join(dir, 'durability.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_WAL_MB: '1',
      BENCH_CKPT_KEYS: '2000',
      BENCH_OPENS: '2',
      BENCH_DURABLE_MS: '10',
      BENCH_CONCURRENT_MS: '40',
      BENCH_WRITERS: '1,64',
      BENCH_ROUNDS: String(ROUNDS),
      BENCH_DIR: dir,
      BENCH_OUT: out,
    }
    delete env.BENCH_ONLY
    delete env.BENCH_SECTIONS
    const r = spawnSync(process.execPath, [join(root, 'bench', 'durability.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as DurabilityJson
    expect(json.errors).toEqual({})
    expect(json.config.rounds).toBe(ROUNDS)
    expect(json.targets.recovery).toBeDefined()
    expect(json.targets.checkpoint).toBeDefined()

    const single = json.results.filter((x) => x.section === 'single')
    expect(single.map((x) => `${x.lib} ${x.mode}`)).toEqual([
      'in-mem strict kv.put',
      'better-sqlite3 WAL synchronous=FULL, 1 insert/tx',
      'lmdb putSync, overlappingSync: false',
      'fs append 100 B + fdatasync',
      'fs overwrite 100 B + fdatasync',
    ])
    for (const row of single) expectRoundRow(row, ROUNDS)
    // Round 1: in-mem, the peers, the references; each later round rotates the four entries by one.
    expect(single.map((x) => x.rounds!.map((y) => y.position))).toEqual([
      [0, 3, 2],
      [1, 0, 3],
      [2, 1, 0],
      [3, 2, 1],
      [3, 2, 1],
    ])
    const [strict, sqlite, lmdb, append, overwrite] = single
    expect(strict.fsyncsPerOp).toBe(median(strict.rounds!.map((x) => x.fsyncsPerOp)))
    // The concurrent section is measured once.
    expect(json.results.filter((x) => x.section === 'concurrent' && x.rounds !== undefined)).toEqual([])

    // in-mem ÷ each durable peer, round by round; the reported ratio is their median.
    const peers = json.ratios.filter((x) => x.section === 'single')
    expect(peers.map((x) => x.peer)).toEqual(['better-sqlite3', 'lmdb'])
    for (const [q, peer] of [[peers[0], sqlite], [peers[1], lmdb]] as const) {
      expect(q.rounds).toHaveLength(ROUNDS)
      expect(q.ratio).toBe(median(q.rounds!))
      q.rounds!.forEach((x, i) => expect(x).toBeCloseTo(strict.rounds![i].opsPerSec / peer.rounds![i].opsPerSec, 9))
    }
    const vs = json.targets.durableVsPeers!
    expect(vs.single.map((x) => x.ratio)).toEqual(peers.map((x) => x.ratio))
    expect(vs.pass).toBe(peers.every((x) => x.ratio > 1))

    // strict ÷ append+fdatasync latency, round by round; the target judges the median.
    const t = json.targets.strictSingleWriter!
    expect(t.rounds).toHaveLength(ROUNDS)
    t.rounds!.forEach((x, i) => expect(x).toBeCloseTo(strict.rounds![i].nsPerOp / append.rounds![i].nsPerOp, 9))
    expect(t.ratio).toBe(median(t.rounds!))
    expect(t.pass).toBe(t.ratio <= 1.2)
    t.p50Rounds.forEach((x, i) => expect(x).toBeCloseTo(strict.rounds![i].p50NsPerOp / append.rounds![i].p50NsPerOp, 9))
    expect(t.p50Ratio).toBe(median(t.p50Rounds))
    t.overwriteRounds.forEach((x, i) => expect(x).toBeCloseTo(strict.rounds![i].nsPerOp / overwrite.rounds![i].nsPerOp, 9))
    expect(t.overwriteRatio).toBe(median(t.overwriteRounds))
    expect(r.stdout).toContain(`strict single writer ≤ 1.2 × fdatasync  ${t.pass ? 'PASS' : 'FAIL'}  (${t.ratio.toFixed(2)}× (${t.rounds!.map((x) => x.toFixed(2)).join(', ')}))`)

    // The group-commit target compares 64 writers with the single writers (the strict kv.put: its median).
    expect(json.targets.groupCommit!.singleSyncCommitsPerSec).toBe(strict.opsPerSec)

    expect(readdirSync(dir)).toEqual(['durability.json'])
  })
})
