// bench/compare.mjs, the regression gate of the bench workflow, on summaries
// made from the stored baseline (no benchmark runs here).
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')
const script = join(root, 'bench', 'compare.mjs')
const baseline = JSON.parse(readFileSync(join(root, 'bench', 'baseline.json'), 'utf8'))

interface Row { op: string; jsNs: number; rustNs: number }

/** A summary.json as bench/run.mjs writes it, with the baseline's figures scaled. */
function summary(scale: { js?: number; rust?: number; probe?: number; only?: string } = {}, drop?: string) {
  const s = (op: string, k: 'js' | 'rust') => (scale.only === undefined || scale.only === op ? (scale[k] ?? 1) : 1) * (scale.probe ?? 1)
  const rows: Row[] = Object.entries(baseline.ops as Record<string, { jsNs: number; rustNs: number }>)
    .filter(([op]) => op !== drop)
    .map(([op, f]) => ({ op, jsNs: f.jsNs * s(op, 'js'), rustNs: f.rustNs * s(op, 'rust') }))
  return {
    date: '2026-01-01T00:00:00.000Z',
    tree: 'test',
    machine: { cpu: 'another cpu', cores: 4, node: process.version, platform: 'linux-x64' },
    probe: { jsJsonParseNs: { start: baseline.jsProbeNs * (scale.probe ?? 1), end: baseline.jsProbeNs * (scale.probe ?? 1) }, rustJsonParseNs: baseline.rustProbeNs * (scale.probe ?? 1) },
    rows,
    targets: [],
    problems: [] as string[],
  }
}

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-compare')
})
afterEach(() => removeDir(dir))

function compare(s: object, ...args: string[]) {
  const file = join(dir, 'summary.json')
  writeFileSync(file, JSON.stringify(s))
  const env = { ...process.env }
  delete env.BENCH_THRESHOLD
  return spawnSync(process.execPath, [script, '--summary', file, ...args], { encoding: 'utf8', env })
}

describe('bench/compare.mjs', () => {
  it('passes a run equal to the baseline', () => {
    const r = compare(summary())
    expect(r.stdout).toContain('PASS')
    expect(r.status).toBe(0)
  })

  it('passes a uniformly slower machine: the figures are normalised by the speed probe', () => {
    const r = compare(summary({ probe: 2.5 }))
    expect(r.stdout).toContain('PASS')
    expect(r.status).toBe(0)
  })

  it('fails when one JS figure regresses past the threshold, and names it', () => {
    const r = compare(summary({ js: 1.5, only: 'kv.get hit' }))
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/kv\.get hit js .*\+50%/)
    expect(r.stdout).not.toMatch(/kv\.put memory js .*REGRESSED/)
  })

  it('fails when a Rust figure regresses, and passes a change within the threshold', () => {
    expect(compare(summary({ rust: 1.6, only: 'kv.put buffered' })).status).toBe(1)
    expect(compare(summary({ rust: 1.2, js: 1.2 })).status).toBe(0)
    expect(compare(summary({ rust: 1.2 }), '--threshold', '0.1').status).toBe(1)
  })

  it('fails when a figure is missing or the run reported a problem', () => {
    const missing = compare(summary({}, 'kv.get miss'))
    expect(missing.status).toBe(1)
    expect(missing.stdout).toContain('kv.get miss js (÷ JS probe): missing')
    const s = summary()
    s.problems.push('Rust criterion bench failed: exit status 101')
    expect(compare(s).status).toBe(1)
  })

  it('writes a markdown report for the job summary', () => {
    const md = join(dir, 'report.md')
    compare(summary({ js: 2, only: 'kv.put memory' }), '--markdown', md)
    const text = readFileSync(md, 'utf8')
    expect(text).toContain('| kv.put memory | js (÷ JS probe) |')
    expect(text).toContain('REGRESSED')
  })
})
