// bench/history.mjs at a tiny size: it runs, and what it timed is correct
// (every replay equals what the run showed, forks read their parent, diffs
// report exactly the changes), including the replays that read history the
// close's checkpoint moved to disk. Its figures are not checked: benchmarks
// are never timed tests.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-history')
})
afterEach(() => removeDir(dir))

interface HistoryJson {
  results: { lib: string; op: string; mode: string; medianMs: number }[]
  targets: { measure: string; mode: string; figure: string; valid: boolean; why?: string }[]
  checks: { what: string; ok: boolean }[]
  errors: Record<string, string>
}

describe('bench/history.mjs', () => {
  it('times replay (in memory and from history files), fork and diff beside better-sqlite3, checking every answer it timed', () => {
    const out = join(dir, 'history.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_DIR: dir,
      BENCH_OUT: out,
      BENCH_REPLAY_OPS: '400',
      BENCH_OTHER_KEYS: '1000',
      BENCH_OTHER_RUNS: '2',
      BENCH_FORK_KEYS: '1000',
      BENCH_FORKS: '3',
      BENCH_DIFF_KEYS: '1000',
      BENCH_SAMPLES: '3',
      BENCH_DIFF_SAMPLES: '2',
      BENCH_COPY_SAMPLES: '2',
      BENCH_READS: '20',
    }
    const r = spawnSync(process.execPath, [join(root, 'bench', 'history.mjs')], { cwd: root, env, encoding: 'utf8', timeout: 240_000 })
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
    const res = JSON.parse(readFileSync(out, 'utf8')) as HistoryJson
    expect(res.errors).toEqual({})
    expect(res.checks.length).toBeGreaterThan(5)
    expect(res.checks.filter((c) => !c.ok)).toEqual([])
    // The replays after the reopen read history files, and are checked and timed.
    expect(r.stdout).toMatch(/history on disk after the reopen: [1-9]\d* versions in [1-9]\d* files/)
    expect(res.results.some((x) => x.lib === 'in-mem' && x.mode === 'buffered, reopened' && x.op.startsWith('replay at midpoint') && x.medianMs > 0)).toBe(true)
    const onDisk = res.targets.find((t) => t.measure.includes('history on disk ÷ in memory'))
    // Not a valid figure here (a debug build, a tiny run), but not for a wrong answer.
    expect(onDisk).toBeDefined()
    expect(onDisk!.why ?? '').not.toContain('failed its check')
    expect(onDisk?.figure).toMatch(/^\d+\.\d\d×$/)
  }, 300_000)
})
