// bench/run.mjs on results files made here (every step skipped, so no
// benchmark runs): the targets of the comparisons measured in interleaved
// rounds are judged on the median of the rounds' ratios — not on one round,
// nor on the ratio of the rows' median figures — and the summary records
// each round's ratio.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'
import { median } from './bench-rounds.js'

const root = resolve(__dirname, '..')

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-run')
})
afterEach(() => removeDir(dir))

/** A results row measured in rounds of these ns/op, as bench/common.mjs mergeRounds makes it. */
function row(lib: string, op: string, mode: string, cls: string, ns: number[]) {
  const nsPerOp = median(ns)
  return {
    lib,
    op,
    mode,
    cls,
    nsPerOp,
    opsPerSec: 1e9 / nsPerOp,
    p99NsPerOp: nsPerOp * 2,
    samples: 30,
    ops: 30,
    rounds: ns.map((x, round) => ({ round, position: round, nsPerOp: x, opsPerSec: 1e9 / x, samples: 10, ops: 10 })),
  }
}
/** A row measured once. */
const once = (lib: string, op: string, mode: string, cls: string, ns: number) => ({ lib, op, mode, cls, nsPerOp: ns, opsPerSec: 1e9 / ns, p99NsPerOp: ns * 2, samples: 10, ops: 10 })
const ratio = (rounds: number[]) => ({ ratio: median(rounds), rounds })
const common = (rounds: number) => ({
  date: '2026-01-01T00:00:00.000Z',
  addon: { loaded: null, raced: false, rebuiltLater: false },
  probe: { jsonParseNs: { start: 1000, end: 1000 } },
  machine: { cpu: 'test cpu', cores: 2, node: process.version, platform: 'linux-x64' },
  errors: {},
  config: { keys: 1000, valueBytes: 100, rounds },
})

// kv.mjs: kv.get hit ÷ lmdb get fails its first round but its median passes.
// strict ÷ append+fdatasync, round by round: 1.11, 1.33, 0.75 (median 1.11 ≤ 1.2: PASS),
// while the ratio of the two rows' median ns/op is 200 / 150 = 1.33 (it would FAIL).
const kv = {
  ...common(3),
  results: [
    once('in-mem', 'put', 'memory', 'memory', 2000),
    once('in-mem', 'put', 'buffered', 'nosync', 2200),
    row('in-mem', 'get-hit', 'memory', 'memory', [1000, 1000, 1000]),
    row('in-mem', 'get-miss', 'memory', 'memory', [300, 300, 300]),
    row('in-mem', 'put', 'strict', 'durable', [100_000, 200_000, 300_000]),
    row('lmdb', 'get-hit', 'get', 'any', [500, 1100, 1200]),
    row('lmdb', 'put', 'putSync synced', 'durable', [130_000, 160_000, 315_000]),
    row('better-sqlite3', 'put', 'WAL synchronous=FULL', 'durable', [90_000, 220_000, 360_000]),
    row('fs', 'put', 'append 100 B + fdatasync', 'durable', [90_000, 150_000, 400_000]),
    row('fs', 'put', 'overwrite 100 B + fdatasync', 'durable', [80_000, 120_000, 250_000]),
  ],
  ratios: [
    { op: 'get-hit', inMemMode: 'memory', peer: 'lmdb', peerMode: 'get', ...ratio([0.5, 1.1, 1.2]) },
    { op: 'put', inMemMode: 'strict', peer: 'lmdb', peerMode: 'putSync synced', ...ratio([1.3, 0.8, 1.05]) },
    { op: 'put', inMemMode: 'strict', peer: 'better-sqlite3', peerMode: 'WAL synchronous=FULL', ...ratio([0.9, 1.1, 1.2]) },
  ],
  sink: 0,
}

// primitives.mjs: strict events.append is behind lmdb on the median (0.95), though the mean of its
// rounds (1.05) is ahead; state.get ÷ lmdb getEntry fails its first round, passes on the median (1.0).
const prim = {
  ...common(3),
  results: [
    row('in-mem', 'events.append', 'strict', 'durable', [200_000, 210_000, 190_000]),
    row('in-mem', 'state.get', 'memory', 'memory', [2000, 1900, 2100]),
  ],
  ratios: [
    { op: 'events.append', inMemMode: 'strict', peer: 'better-sqlite3', peerMode: 'WAL synchronous=FULL', ...ratio([1.2, 0.9, 1.3]), p50Ratio: 1 },
    { op: 'events.append', inMemMode: 'strict', peer: 'lmdb', peerMode: 'transactionSync synced', ...ratio([0.95, 0.7, 1.5]), p50Ratio: 1 },
    { op: 'state.get', inMemMode: 'memory', peer: 'lmdb', peerMode: 'getEntry', ...ratio([0.8, 1.1, 1.0]), p50Ratio: 1 },
  ],
  skipped: [],
  sink: 0,
}

interface Summary {
  targets: { target: string; value: string; pass: boolean | null }[]
  kv: { rounds: number; ratios: { op: string; ratio: number; rounds: number[] }[] }
  primitives: { rows: { op: string; mode: string; vs: { peer: string; ratio: number; rounds: number[] }[] }[] }
}

describe('bench/run.mjs', () => {
  it('judges the targets of the interleaved comparisons on the median of the rounds, and records every round in the summary', () => {
    writeFileSync(join(dir, 'kv.json'), JSON.stringify(kv))
    writeFileSync(join(dir, 'primitives.json'), JSON.stringify(prim))
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_RESULTS_DIR: dir, CRITERION_HOME: join(dir, 'criterion') }
    for (const s of ['RUST', 'JS', 'PRIMITIVES', 'DURABILITY', 'HISTORY', 'WORKERS', 'VECTORS', 'LANGGRAPH', 'SERVER', 'VALUES', 'MEMORY', 'CODEC', 'COLD']) env[`BENCH_SKIP_${s}`] = '1'
    const r = spawnSync(process.execPath, [join(root, 'bench', 'run.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 60_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const line = (target: string) => r.stdout.split('\n').find((l) => l.includes(target)) ?? ''

    expect(line('kv.get hit ≥ lmdb-js get')).toMatch(/^PASS .*\(median of 3 rounds: 1\.10× \(0\.50, 1\.10, 1\.20\)\)$/)
    expect(line('strict put latency ≤ 1.2 × raw fdatasync')).toMatch(/^PASS .*median of 3 rounds: 1\.11× \(1\.11, 1\.33, 0\.75\)\); 1\.25× \(1\.25, 1\.67, 1\.20\) the in-place floor/)
    expect(line('strict put ahead of better-sqlite3 FULL and lmdb synced')).toMatch(/^PASS .*sqlite 1\.10× \(0\.90, 1\.10, 1\.20\), lmdb 1\.05× \(1\.30, 0\.80, 1\.05\)\)$/)
    expect(line('strict events.append ahead of the durable peers')).toMatch(/^FAIL .*median of 3 rounds: sqlite 1\.20× \(1\.20, 0\.90, 1\.30\), lmdb 0\.95× \(0\.95, 0\.70, 1\.50\)$/)
    expect(line('state.get ≥ lmdb-js getEntry')).toMatch(/^PASS .*median of 3 rounds: 1\.00× \(0\.80, 1\.10, 1\.00\)$/)

    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary
    const target = (name: string) => summary.targets.find((t) => t.target === name)!
    expect(target('kv.get hit ≥ lmdb-js get').pass).toBe(true)
    expect(target('strict put latency ≤ 1.2 × raw fdatasync').pass).toBe(true)
    expect(target('strict put ahead of better-sqlite3 FULL and lmdb synced').pass).toBe(true)
    expect(target('strict events.append ahead of the durable peers').pass).toBe(false)
    expect(target('state.get ≥ lmdb-js getEntry').pass).toBe(true)
    expect(summary.kv.rounds).toBe(3)
    expect(summary.kv.ratios).toEqual(kv.ratios)
    const strictRow = summary.primitives.rows.find((x) => x.op === 'events.append' && x.mode === 'strict')!
    expect(strictRow.vs.map((x) => x.rounds)).toEqual([
      [1.2, 0.9, 1.3],
      [0.95, 0.7, 1.5],
    ])
  })
})
