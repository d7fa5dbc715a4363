// bench/server.mjs at a tiny size: it runs every cell, and what it timed is
// correct (every get compares what it read with the value written, and after
// each cell the suite reads keys back, both keys of the last transactions
// included, and exits 1 on a mismatch). Redis rows exist exactly when
// redis-server is installed. Its figures are not checked: benchmarks are
// never timed tests.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-server')
})
afterEach(() => removeDir(dir))

interface Row {
  phase: string
  system: string
  op: string
  size: number
  transport: string
  concurrency: number
  ops: number
  opsPerSec: number
  p50Ms: number
  p99Ms: number
  valid: boolean
  ownerLoop?: { p50Ms: number; p99Ms: number }
}
interface ServerJson {
  redis: { available: boolean; why: string | null }
  results: Row[]
  ratios: { op: string; ratio: number }[]
  targets: { target: string; pass: boolean | null }[]
  ownerLoop: { p50Ms: number; p99Ms: number; durable?: { p50Ms: number } }
  checks: string[]
  errors: Record<string, string>
}

function runBench(extra: NodeJS.ProcessEnv): { stdout: string; json: ServerJson } {
  const out = join(dir, 'server.json')
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_TIME_MS: '30', BENCH_WARMUP_MS: '5', BENCH_KEYS: '128', BENCH_CONCURRENCY: '1,16', BENCH_DIR: dir, BENCH_OUT: out, ...extra }
  const r = spawnSync(process.execPath, [join(root, 'bench', 'server.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 90_000 })
  expect(r.stderr).toBe('')
  expect(r.status, r.stdout).toBe(0)
  expect(r.stdout).toContain('speed probe')
  const json = JSON.parse(readFileSync(out, 'utf8')) as ServerJson
  expect(json.errors).toEqual({})
  expect(json.checks).toEqual([])
  // Its temporary data, servers' sockets included, is gone.
  expect(readdirSync(dir)).toEqual(['server.json'])
  return { stdout: r.stdout, json }
}

const cells = (rows: Row[]): string[] => rows.map((x) => `${x.phase} ${x.op} ${x.size} ${x.transport} ${x.concurrency}`)

describe('bench/server.mjs', () => {
  const redis = existsSync('/usr/bin/redis-server')

  it('times remote get, set and transactions with every read checked, beside Redis when it is installed', () => {
    const { stdout, json } = runBench({})
    const inMem = json.results.filter((x) => x.system === 'in-mem')
    const want: string[] = []
    for (const size of [100, 1024]) for (const op of ['get', 'set', 'tx']) for (const t of ['unix', 'tcp']) for (const c of [1, 16]) want.push(`buffered ${op} ${size} ${t} ${c}`)
    for (const op of ['set', 'tx']) for (const c of [1, 16]) want.push(`durable ${op} 100 unix ${c}`)
    expect(cells(inMem)).toEqual(want)
    for (const x of json.results) {
      expect(x.valid, `${x.system} ${x.op}`).toBe(true)
      expect(x.ops).toBeGreaterThan(0)
      expect(x.opsPerSec).toBeGreaterThan(0)
      expect(x.p99Ms).toBeGreaterThanOrEqual(x.p50Ms)
    }
    for (const x of inMem) expect(x.ownerLoop?.p99Ms).toBeGreaterThanOrEqual(0)
    expect(json.ownerLoop.p50Ms).toBeGreaterThanOrEqual(0)
    expect(json.ownerLoop.durable?.p50Ms).toBeGreaterThanOrEqual(0)
    expect(stdout).toMatch(/\nget\s+100 B unix\s+1 \|\s+\S+\s+\d/)

    const redisRows = json.results.filter((x) => x.system === 'redis')
    expect(json.redis.available).toBe(redis)
    if (redis) {
      expect(cells(redisRows)).toEqual(want)
      expect(json.ratios).toHaveLength(want.length)
      expect(stdout).toMatch(/^(PASS|FAIL) {2}remote get over the Unix socket/m)
      expect(stdout).toMatch(/^(PASS|FAIL) {2}remote set over the Unix socket/m)
      expect(json.targets.map((t) => t.pass)).not.toContain(null)
    } else {
      expect(redisRows).toEqual([])
      expect(stdout).toContain('apt-get install redis-server')
    }
  })

  it('says how to install Redis when redis-server is missing, and measures in-mem alone', () => {
    const { stdout, json } = runBench({ BENCH_REDIS_SERVER: join(dir, 'no-such-redis-server'), BENCH_SIZES: '100', BENCH_CONCURRENCY: '1' })
    expect(stdout).toContain('redis-server is not installed')
    expect(stdout).toContain('apt-get install redis-server')
    expect(json.redis.available).toBe(false)
    expect(json.results.filter((x) => x.system === 'redis')).toEqual([])
    expect(cells(json.results)).toEqual(['buffered get 100 unix 1', 'buffered get 100 tcp 1', 'buffered set 100 unix 1', 'buffered set 100 tcp 1', 'buffered tx 100 unix 1', 'buffered tx 100 tcp 1', 'durable set 100 unix 1', 'durable tx 100 unix 1'])
    expect(stdout).toMatch(/^n\/a {3}remote get over the Unix socket/m)
  })
})
