// bench/workers.mjs at a tiny size: it runs, and what it timed is correct
// (the suite itself counts each worker's keys afterwards and exits 1 on a
// mismatch). Its figures are not checked: benchmarks are never timed tests.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-workers')
})
afterEach(() => removeDir(dir))

interface WorkersJson {
  results: { workers: number; opsPerSec: number; rounds: number[] }[]
  rounds: { workers: number; ops: number; wallMs: number; perWorker: { ops: number; ms: number }[] }[]
  ratios: { workers: number; vsWorkers: number; ratio: number }[]
  errors: Record<string, string>
  config: { durability: string; workers: number[] }
}

describe('bench/workers.mjs', () => {
  it('runs 1 and 2 worker_threads on disjoint runs of one directory, and every key each worker reported is there', () => {
    const out = join(dir, 'workers.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_TIME_MS: '100',
      BENCH_WARMUP_MS: '10',
      BENCH_ROUNDS: '1',
      BENCH_WORKERS: '1,2',
      BENCH_DIR: dir,
      BENCH_OUT: out,
    }
    const r = spawnSync(process.execPath, [join(root, 'bench', 'workers.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 50_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    // One line per round, each after its keys were counted.
    expect(r.stdout.match(/keys checked/g)).toHaveLength(2)
    expect(r.stdout).toMatch(/2w ÷ 1w\s+\d+\.\d\d×/)
    expect(r.stdout).toContain('speed probe')

    const json = JSON.parse(readFileSync(out, 'utf8')) as WorkersJson
    expect(json.errors).toEqual({})
    expect(json.config.durability).toBe('buffered')
    expect(json.results.map((x) => x.workers)).toEqual([1, 2])
    expect(json.rounds.map((x) => x.perWorker.length)).toEqual([1, 2])
    for (const round of json.rounds) {
      expect(round.ops).toBe(round.perWorker.reduce((a, w) => a + w.ops, 0))
      for (const w of round.perWorker) {
        expect(w.ops).toBeGreaterThan(0)
        expect(w.ms).toBeGreaterThan(0)
      }
      expect(round.wallMs).toBeGreaterThan(0)
    }
    for (const x of json.results) expect(x.opsPerSec).toBeGreaterThan(0)
    expect(json.ratios).toHaveLength(1)
    expect(Number.isFinite(json.ratios[0].ratio)).toBe(true)

    // The rounds' data directories are gone; only the results file is left.
    expect(readdirSync(dir)).toEqual(['workers.json'])
  })
})
