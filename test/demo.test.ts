// examples/demo.mjs (what `npm run demo` runs after its build) keeps
// working, and the CLI reads the directory it leaves behind.
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')
let tmp: string
let dir: string
let out: string

beforeAll(() => {
  tmp = makeTmpDir('in-mem-demo')
  dir = join(tmp, 'demo-data')
  const env = { ...process.env }
  delete env.FORCE_COLOR
  const r = spawnSync(process.execPath, [join(root, 'examples', 'demo.mjs'), dir, '--fresh'], { encoding: 'utf8', env, timeout: 60_000 })
  if (r.status !== 0) throw new Error(`demo failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  out = r.stdout
})

afterAll(() => {
  if (tmp) removeDir(tmp)
})

describe('the demo', () => {
  it('walks through primitives, a transaction, a fork, a reopen, verify, diff and replay', () => {
    for (const title of [
      '== begin a run',
      '== tool call: search, committed atomically with its bookkeeping',
      '== decision point: which source to read first? fork the run here',
      '== close and reopen the directory',
      '== verify the event logs (SHA-256 hash chains)',
      '== diff: the original (a) against the fork (b)',
      '== replay the original at the decision point',
      '== inspect it with the CLI',
    ]) {
      expect(out).toContain(title)
    }
    expect(out).toContain('write while paused refused: RunClosedError')
    expect(out.match(/: valid, 8 events/g)).toHaveLength(2)
    expect(out).toContain('~ tool/read/1')
    expect(out).toContain('.source: "lmdb docs" → "sqlite docs"')
    expect(out).toContain('~ budget: 540 → 270')
    expect(out).toMatch(/events: 3 in common, then/)
    expect(out).toMatch(/task +searching +done/)
    expect(out).not.toContain('\u001b[')
  })

  it('leaves a directory the CLI reads: two completed runs, a fork and its parent that differ', () => {
    const cli = (args: string[]) => spawnSync(process.execPath, [join(root, 'bin', 'in-mem.js'), ...args, '--json', '--dir', dir], { encoding: 'utf8', timeout: 60_000 })
    const list = cli(['runs', 'list', '--status', 'completed'])
    expect(list.status, list.stderr).toBe(0)
    const runs = (JSON.parse(list.stdout) as { runs: { id: string; parent?: string }[] }).runs
    expect(runs).toHaveLength(2)
    expect(runs[1].parent).toBe(runs[0].id)
    const diff = cli(['diff', runs[0].id, runs[1].id])
    expect(diff.status, diff.stderr).toBe(0)
    const d = JSON.parse(diff.stdout) as { same: boolean; events: { common: number } }
    expect(d.same).toBe(false)
    expect(d.events.common).toBe(3)
  })
})
