// bench/memory.mjs at a tiny size: it runs, and what it measured is correct
// (each library holds every key with the value written; after the
// overwrites every key holds its last value, replay with every version kept
// reads the first values, { keep } refuses a version before its horizon).
// Its figures are not checked beyond being positive numbers: benchmarks are
// never timed tests, and at this size fixed costs dominate.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-memory')
})
afterEach(() => removeDir(dir))

interface StatsMemory { keys: number; liveBytes: number; historyVersions: number; historyBytes: number }
interface LoadRow {
  lib: string
  mode: string
  keys: number
  rawBytes: number
  rssBytes: number
  growthBytes: number
  bytesPerKey: number
  ratio: number
  fileBytes: number | null
  memory: StatsMemory | null
}
interface OverwriteRow {
  id: string
  empty: boolean
  overwrites: number
  rssBytes: number
  aboveEmptyBytes: number | null
  memory: StatsMemory | null
}
interface MemoryJson {
  config: { keys: number; overwrites: number; hotKeys: number; valueBytes: number; keyBytes: number }
  load: LoadRow[]
  overwrite: OverwriteRow[]
  checks: { case: string; check: string; ok: boolean; detail: string }[]
  targets: { target: string; value: string; pass: boolean }[]
  failures: string[]
  errors: Record<string, string>
}

describe('bench/memory.mjs', () => {
  it('measures the RSS of distinct keys (in-mem memory and durable, lmdb, better-sqlite3) and of an overwrite-heavy run under each history option, checks what it measured, and reports the targets', () => {
    const out = join(dir, 'memory.json')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BENCH_MEMORY_KEYS: '2000',
      BENCH_MEMORY_OVERWRITES: '5000',
      BENCH_MEMORY_SETTLE_MS: '100',
      BENCH_OUT: out,
      BENCH_DIR: dir,
    }
    delete env.BENCH_MEMORY_CASES
    delete env.BENCH_ONLY
    const r = spawnSync(process.execPath, [join(root, 'bench', 'memory.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as MemoryJson
    expect(json.errors).toEqual({})
    expect(json.failures).toEqual([])
    expect(json.config).toMatchObject({ keys: 2000, overwrites: 5000, hotKeys: 100, valueBytes: 100, keyBytes: 12 })

    // 1. Distinct keys: every library, positive figures, the raw bytes as written.
    expect(json.load.map((x) => `${x.lib} ${x.mode}`)).toEqual(['in-mem memory', 'in-mem buffered', 'lmdb noSync', 'better-sqlite3 WAL synchronous=NORMAL'])
    for (const x of json.load) {
      expect(x.rawBytes).toBe(2000 * 112)
      expect(x.rssBytes, x.lib).toBeGreaterThan(0)
      expect(x.growthBytes, x.lib).toBeGreaterThan(0)
      expect(x.bytesPerKey, x.lib).toBeGreaterThan(0)
      expect(x.ratio, x.lib).toBeGreaterThan(0)
      expect(r.stdout).toContain(`${x.bytesPerKey.toFixed(1)} B/key, ${x.ratio.toFixed(2)} × raw`)
    }
    const [mem, buffered, lmdb, sqlite] = json.load
    expect(mem.fileBytes).toBeNull()
    for (const x of [buffered, lmdb, sqlite]) expect(x.fileBytes, x.lib).toBeGreaterThan(0)
    for (const x of [mem, buffered]) expect(x.memory?.keys).toBeGreaterThanOrEqual(2000)
    expect(r.stdout).toContain('its data lives mostly in the OS page cache')

    // 2. Overwrite-heavy: every case, with stats().memory; only the full-history ones keep every version.
    expect(json.overwrite.map((x) => x.id)).toEqual([
      'empty memory',
      'empty buffered',
      'overwrite memory all',
      'overwrite memory keep 1',
      'overwrite memory keep 10',
      'overwrite buffered',
      'overwrite buffered keep 1',
    ])
    for (const x of json.overwrite) {
      expect(x.rssBytes, x.id).toBeGreaterThan(0)
      expect(x.memory, x.id).not.toBeNull()
      if (x.empty) expect(x.aboveEmptyBytes).toBeNull()
      else expect(Number.isFinite(x.aboveEmptyBytes), x.id).toBe(true)
    }
    const history = (id: string): number => json.overwrite.find((x) => x.id === id)!.memory!.historyVersions
    expect(history('overwrite memory all')).toBe(5000)
    expect(history('overwrite buffered')).toBe(5000)
    expect(history('overwrite memory keep 1')).toBeLessThanOrEqual(200)
    expect(history('overwrite memory keep 10')).toBeLessThanOrEqual(1000)
    expect(history('overwrite buffered keep 1')).toBeLessThanOrEqual(200)

    // What it measured is correct, and each check ran.
    const ran = (c: string): string[] => json.checks.filter((k) => k.case === c).map((k) => k.check)
    for (const c of ['load in-mem memory', 'load in-mem buffered', 'load lmdb', 'load better-sqlite3']) {
      expect(ran(c), c).toEqual(['every key is there', 'sampled keys read back the value written'])
    }
    for (const c of ['overwrite memory all', 'overwrite buffered']) {
      expect(ran(c), c).toEqual(['every key holds the last value written', expect.stringMatching(/^replay at version \d+ \(after the first writes\) reads the first values$/), 'stats().memory counts the keys'])
    }
    for (const c of ['overwrite memory keep 1', 'overwrite memory keep 10', 'overwrite buffered keep 1']) {
      expect(ran(c), c).toEqual(['every key holds the last value written', 'the horizon is past the first writes, and replay before it is NotFoundError', 'stats().memory counts the keys'])
    }
    for (const k of json.checks) expect(k.ok, `${k.case}: ${k.check}: ${k.detail}`).toBe(true)

    // A PASS or FAIL line for each target, as the JSON records it.
    expect(json.targets.map((t) => t.target)).toEqual([
      'in-mem memory: 2,000 keys × 100-byte values, RSS ≤ 2.0 × raw',
      'in-mem durable buffered: 2,000 keys × 100-byte values, RSS ≤ 2.0 × raw',
      "memory { keep: 1 }: RSS bounded by live data plus a fixed overhead (≤ 64 MiB above an empty database's RSS)",
      "durable { keep: 1 }: RSS bounded by live data plus a fixed overhead (≤ 64 MiB above an empty durable database's RSS)",
      "durable: bounded, RSS ≤ 64 MiB above an empty durable database's (SPEC §17)",
    ])
    for (const t of json.targets) expect(r.stdout).toContain(`${t.pass ? 'PASS' : 'FAIL'}  ${t.target} — ${t.value}`)
  })
})
