// examples/langgraph.mjs (what `npm run example:langgraph` runs after its
// build) keeps working: a graph interrupted in one process and resumed in
// another, a thread forked with updateState, and in-mem's diff of the two.
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')
let tmp: string
let dir: string
let out: string

beforeAll(() => {
  tmp = makeTmpDir('in-mem-example-langgraph')
  dir = join(tmp, 'data')
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', COLUMNS: '160' }
  delete env.FORCE_COLOR
  const r = spawnSync(process.execPath, [join(root, 'examples', 'langgraph.mjs'), dir], { encoding: 'utf8', env, timeout: 60_000 })
  if (r.status !== 0) throw new Error(`the example failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  out = r.stdout
})

afterAll(() => {
  if (tmp) removeDir(tmp)
})

describe('examples/langgraph.mjs', () => {
  it('stops at the review interrupt in one process and resumes in another', () => {
    const pids = [...out.matchAll(/\[pid (\d+)\]/g)].map((m) => m[1])
    expect(new Set(pids).size).toBe(2)
    expect(out).toMatch(/\[pid \d+\] ran thread trip-paris to \["review"\]: Send this answer\?/)
    expect(out).toMatch(/\[pid \d+\] found thread trip-paris paused before \["review"\] after 4 messages/)
    expect(out).toContain('resumed with "approve": approved = true')
  })

  it('forks the thread, rewrites its question with updateState, and diffs the two threads decoded', () => {
    expect(out).toContain('trip-london tool: heavy rain, 11°C')
    expect(out).toContain('trip-paris  tool: light rain, 14°C')
    expect(out).toContain('langgraph channels (newest checkpoints)')
    expect(out).toContain('~ messages[2]')
    expect(out).toContain('.ToolMessage.content: "light rain, 14°C" → "heavy rain, 11°C"')
    expect(out).not.toContain('<bytes')
  })

  it('leaves both threads as runs tagged langgraph, the fork a child of the original', () => {
    const db = Database.open(dir)
    try {
      const runs = db.runs.list({ tag: 'langgraph' })
      expect(runs.map((r) => r.name)).toEqual(['thread trip-paris', 'thread trip-london'])
      expect(runs[1].parent).toBe(runs[0].id)
    } finally {
      db.close()
    }
  })
})
