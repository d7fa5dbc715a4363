// bench/values.mjs at a tiny size: it runs, and what it timed is correct
// (for each library, size and kind, the value read back is the value
// written, $.step holds the last value json.set wrote, the last event holds
// its payload; the RSS figures are positive numbers). Its figures are not
// checked: benchmarks are never timed tests.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-values')
})
afterEach(() => removeDir(dir))

interface Result { size: number; kind: string; op: string; lib: string; mode: string; bytes: number; nsPerOp: number; opsPerSec: number; ops: number }
interface Check { lib: string; mode: string; size: number; kind: string; check: string; ok: boolean }
interface Rss { size: number; lib: string; mode: string; rssBytes: number; baseBytes: number; liveBytes: number; rssMiB: number; growthPerLive: number }
interface ValuesJson {
  config: { sizes: number[]; kinds: string[]; overwrites: number }
  layouts: { size: number; kind: string; encodedBytes: number }[]
  results: Result[]
  ratios: { size: number; kind: string; op: string; inMemMode: string; peer: string; ratio: number }[]
  rss: Rss[]
  checks: Check[]
  targets: { target: string; value: string; pass: boolean }[]
  failures: string[]
  errors: Record<string, string>
}

const SIZES = [100, 1024, 102400]
const KINDS = ['string', 'bytes', 'object']
const OPS = ['kv.put', 'kv.get', 'events.append', 'state.set', 'state.get', 'json.set', 'json.get $', 'json.get $.step']
const LIBS = ['in-mem memory', 'in-mem buffered', 'in-mem memory keep 1', 'lmdb noSync', 'better-sqlite3 WAL synchronous=NORMAL']
const CHECKS = [
  'kv.get returns the value kv.put wrote',
  'the last event holds the payload appended, at the next sequence',
  'state.get returns the value and version state.set wrote',
  '$.step holds the last value json.set wrote, the rest of the document unchanged',
]

describe('bench/values.mjs', () => {
  it('times every operation at every size and kind with in-mem (memory, buffered, memory keeping one version), lmdb and better-sqlite3, checks what it timed, and reports RSS and the targets', () => {
    const out = join(dir, 'values.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_TIME_MS: '5',
      BENCH_SIZES: SIZES.join(','),
      BENCH_OVERWRITES: '200',
      BENCH_KEYS: '8',
      BENCH_OUT: out,
      BENCH_DIR: dir,
    }
    delete env.BENCH_KINDS
    delete env.BENCH_ONLY
    delete env.BENCH_OPS
    delete env.BENCH_SKIP_RSS
    const r = spawnSync(process.execPath, [join(root, 'bench', 'values.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 180_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as ValuesJson
    expect(json.errors).toEqual({})
    expect(json.failures).toEqual([])
    expect(json.config.sizes).toEqual(SIZES)
    expect(json.config.kinds).toEqual(KINDS)
    // Each value is its target size, encoded.
    for (const l of json.layouts) expect(l.encodedBytes, `${l.size} ${l.kind}`).toBe(l.size)
    for (const size of SIZES) {
      for (const kind of KINDS) {
        for (const op of OPS) {
          const libs = json.results.filter((x) => x.size === size && x.kind === kind && x.op === op).map((x) => `${x.lib} ${x.mode}`)
          expect(libs, `${size} ${kind} ${op}`).toEqual(LIBS)
          for (const x of json.results.filter((y) => y.size === size && y.kind === kind && y.op === op)) {
            expect(x.opsPerSec, `${size} ${kind} ${op} ${x.lib}`).toBeGreaterThan(0)
            expect(x.ops).toBeGreaterThan(0)
          }
          expect(json.ratios.filter((x) => x.size === size && x.kind === kind && x.op === op)).toHaveLength(6)
        }
        // What it timed is correct, for every library at this size and kind.
        for (const lib of LIBS) {
          const done = json.checks.filter((c) => c.size === size && c.kind === kind && `${c.lib} ${c.mode}` === lib)
          expect(done.map((c) => c.check).sort(), `${size} ${kind} ${lib}`).toEqual([...CHECKS].sort())
          for (const c of done) expect(c.ok, `${size} ${kind} ${lib}: ${c.check}`).toBe(true)
        }
      }
      // RSS after the overwrites, in a fresh process per library.
      const rss = json.rss.filter((x) => x.size === size)
      expect(rss.map((x) => `${x.lib} ${x.mode}`)).toEqual(LIBS)
      for (const x of rss) {
        expect(x.rssBytes).toBeGreaterThan(0)
        expect(x.baseBytes).toBeGreaterThan(0)
        expect(x.rssMiB).toBeGreaterThan(0)
        expect(Number.isFinite(x.growthPerLive)).toBe(true)
        expect(x.liveBytes).toBe(100 * size)
      }
    }
    // A PASS or FAIL line for each target, as the JSON records it.
    expect(json.targets.map((t) => t.target)).toEqual([
      ...SIZES.flatMap((s) => {
        const name = s === 100 ? '100 B' : `${s / 1024} KB`
        return [
          `${name}: kv.put ≥ 1.0 × lmdb putSync noSync`,
          `${name}: state.set ≥ 1.0 × lmdb putSync noSync`,
          `${name}: kv.get ≥ 1.0 × lmdb get`,
          `${name}: state.get ≥ 1.0 × lmdb get`,
        ]
      }),
      'json.set $.step on a 100 KB document ≥ 1.0 × better-sqlite3 jsonb_set',
      'json.set cost from a 1 KB to a 100 KB document ≤ 2×',
    ])
    for (const t of json.targets) expect(r.stdout).toContain(`${t.pass ? 'PASS' : 'FAIL'}  ${t.target} — ${t.value}`)
  })
})
