// bench/langgraph.mjs at a tiny size: it runs every saver, and what it timed
// is correct (the suite checks each rebuilt checkpoint, listing and graph
// result, and exits 1 on a mismatch). Its figures are not checked:
// benchmarks are never timed tests.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-langgraph')
})
afterEach(() => removeDir(dir))

interface LangGraphJson {
  results: { saver: string; valid: boolean; stepNs: number; getTupleNs: number; listNs: number; graphNs: number; diskBytes?: number }[]
  ratios: { inMem: string; peer: string; measure: string; ratio: number }[]
  checks: string[]
  errors: Record<string, string>
}

describe('bench/langgraph.mjs', () => {
  it('times InMemSaver, SqliteSaver and MemorySaver with every result checked, and prints the ratios', () => {
    const out = join(dir, 'langgraph.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_STEPS: '120',
      BENCH_READS: '20',
      BENCH_LISTS: '3',
      BENCH_GRAPH_STEPS: '8',
      BENCH_GRAPH_RUNS: '1',
      BENCH_DISK_STEPS: '150',
      BENCH_DIR: dir,
      BENCH_OUT: out,
    }
    const r = spawnSync(process.execPath, [join(root, 'bench', 'langgraph.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 90_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    expect(r.stdout).toMatch(/-- in-mem strict vs sqlite FULL\nput\+putWrites \/ step\s+\S+ \S+\s+\S+ \S+\s+\d+\.\d\d×/)
    expect(r.stdout).toContain('-- in-mem buffered vs sqlite NORMAL')
    expect(r.stdout).toContain('-- in-mem memory vs MemorySaver')
    expect(r.stdout).toContain('speed probe')

    const json = JSON.parse(readFileSync(out, 'utf8')) as LangGraphJson
    expect(json.errors).toEqual({})
    expect(json.checks).toEqual([])
    expect(json.results.map((x) => x.saver)).toEqual(['in-mem strict', 'in-mem buffered', 'in-mem memory', 'sqlite FULL', 'sqlite NORMAL', 'MemorySaver'])
    for (const x of json.results) {
      expect(x.valid, x.saver).toBe(true)
      for (const k of ['stepNs', 'getTupleNs', 'listNs', 'graphNs'] as const) expect(x[k], `${x.saver} ${k}`).toBeGreaterThan(0)
    }
    // Files on disk for the durable savers, none for the memory ones.
    for (const x of json.results) expect(x.diskBytes === undefined, x.saver).toBe(x.saver === 'in-mem memory' || x.saver === 'MemorySaver')
    expect(json.ratios.filter((x) => x.measure === 'stepNs').map((x) => x.peer)).toEqual(['sqlite FULL', 'sqlite NORMAL', 'MemorySaver'])
    // Its temporary data is gone.
    expect(readdirSync(dir)).toEqual(['langgraph.json'])
  })
})
