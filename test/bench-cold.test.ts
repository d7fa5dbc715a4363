// bench/cold.mjs at a tiny size: it runs, and what it measured is correct
// (every value read back is the one written, in-mem's runs were all cold at
// the open and exactly the ones read came back). Its figures are only
// checked to be positive numbers: benchmarks are never timed tests.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-cold')
})
afterEach(() => removeDir(dir))

interface Row {
  lib: string
  diskBytes: number
  openMs: number
  rssEnd: number
  firstMedianMs: number
  warmNsPerGet: number
  loadedNsPerGet: number
  residentNsPerGet: number
  coldAtOpen: { runs: number } | null
  coldAtEnd: { runs: number } | null
}

describe('bench/cold.mjs', () => {
  it('builds ended runs in in-mem, lmdb and classic-level, reopens each in a fresh process, reads runs back, checks every value, and reports the targets', () => {
    const out = join(dir, 'cold.json')
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_COLD_RUNS: '60', BENCH_COLD_KEYS: '4', BENCH_COLD_VALUE_BYTES: '2000', BENCH_COLD_SAMPLES: '6', BENCH_OUT: out, BENCH_DIR: dir }
    delete env.BENCH_ONLY
    delete env.BENCH_COLD_DROP_CACHES
    const r = spawnSync(process.execPath, [join(root, 'bench', 'cold.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as { rows: Row[]; targets: { target: string; pass: boolean }[]; failures: string[]; errors: Record<string, string>; config: Record<string, number> }
    expect(json.errors).toEqual({})
    expect(json.failures).toEqual([])
    expect(json.config).toMatchObject({ runs: 60, keys: 4, valueBytes: 2000, samples: 6 })
    expect(json.rows.map((x) => x.lib)).toEqual(['in-mem', 'lmdb', 'classic-level'])
    for (const x of json.rows) {
      for (const f of ['diskBytes', 'openMs', 'rssEnd', 'firstMedianMs', 'warmNsPerGet', 'loadedNsPerGet', 'residentNsPerGet'] as const) expect(x[f], `${x.lib} ${f}`).toBeGreaterThan(0)
      expect(x.diskBytes, x.lib).toBeGreaterThan(60 * 4 * 2000 * 0.5)
    }
    const me = json.rows[0]
    expect(me.coldAtOpen?.runs).toBe(60)
    expect(me.coldAtEnd?.runs).toBe(54)
    expect(json.targets.map((t) => t.target)).toEqual([
      "in-mem: a cold run's first kv.get ≤ 5 ms (median)",
      'in-mem: reads of a run loaded back at resident speed (≤ 1.5 × a resident run)',
      'in-mem: RSS after the open and the reads < 1 GiB',
    ])
    for (const t of json.targets) expect(r.stdout).toContain(`${t.pass ? 'PASS' : 'FAIL'} ${t.target}`)
  })
})
