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

interface VectorsJson {
  rows: { library: string; op: string; recall?: number; ms?: number; usPerOp?: number }[]
  ratios: { op: string; ratio: number }[]
  errors: Record<string, string>
  failures: string[]
}

describe('bench/vectors.mjs', () => {
  it('runs in-mem (through its graph: the collection is past the exact-scan size) beside hnswlib-node, with the recall it reports', () => {
    const out = join(dir, 'vectors.json')
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_VECTORS: '1500', BENCH_DIM: '16', BENCH_QUERIES: '20', BENCH_OUT: out, BENCH_DIR: dir }
    const r = spawnSync(process.execPath, [join(root, 'bench', 'vectors.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as VectorsJson
    expect(json.errors).toEqual({})
    expect(json.failures).toEqual([])
    const ops = (lib: string): string[] => json.rows.filter((row) => row.library === lib).map((row) => row.op)
    expect(ops('in-mem')).toEqual([
      'build',
      'search k=10 ef=64',
      'search k=10 ef=64, filter 1/2',
      'search k=10 exact',
      'open, graph loaded',
      'open, graph rebuilt from the records',
    ])
    expect(ops('hnswlib-node')).toEqual(['build', 'search k=10 ef=64', 'search k=10 ef=64, filter 1/2'])
    for (const row of json.rows.filter((x) => x.recall !== undefined)) expect(row.recall, `${row.library} ${row.op}`).toBeGreaterThanOrEqual(0.8)
    expect(json.ratios.map((x) => x.op)).toEqual(['search k=10 ef=64', 'search k=10 ef=64, filter 1/2', 'build'])
  })
})
