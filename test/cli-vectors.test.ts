// The CLI's vector commands: `vectors list`, `vectors search`, and the
// vector count of `runs show` (issue 12, item 7), on a directory written in
// this process and closed before the CLI reads it.
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const bin = join(resolve(__dirname, '..'), 'bin', 'in-mem.js')
const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } })

let dir: string
let run: string
beforeAll(() => {
  dir = makeTmpDir('in-mem-cli-vectors')
  const db = Database.open(dir)
  run = db.runs.begin({ name: 'memory' })
  db.vectors.create(run, 'notes', { dimension: 3, metric: 'cosine' })
  db.vectors.create(run, 'empty', { dimension: 8, metric: 'euclidean' })
  db.vectors.upsertMany(run, 'notes', [
    { id: 'a', vector: [1, 0, 0], metadata: { kind: 'fact' } },
    { id: 'b', vector: [0.9, 0.1, 0], metadata: { kind: 'guess' } },
    { id: 'c', vector: [0, 1, 0], metadata: { kind: 'fact' } },
  ])
  db.close()
})
afterAll(() => removeDir(dir))

describe('in-mem vectors', () => {
  it('vectors list names each collection with its dimension, metric and count', () => {
    const r = cli(['vectors', 'list', run, '--json', dir])
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      run,
      collections: [
        { name: 'empty', dimension: 8, metric: 'euclidean', count: 0 },
        { name: 'notes', dimension: 3, metric: 'cosine', count: 3 },
      ],
    })
    const text = cli(['vectors', 'list', run, dir])
    expect(text.stdout).toMatch(/^COLLECTION\s+DIMENSION\s+METRIC\s+VECTORS$/m)
    expect(text.stdout).toMatch(/^notes\s+3\s+cosine\s+3$/m)
  })

  it('vectors search ranks the vectors nearest a stored one, with a filter and k', () => {
    const r = cli(['vectors', 'search', run, 'notes', '--near', 'a', '--json', dir])
    expect(r.status, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { hits: { id: string; score: number; metadata: unknown }[] }
    expect(out.hits.map((h) => h.id)).toEqual(['a', 'b', 'c'])
    expect(out.hits[0].score).toBeCloseTo(1, 6)
    const filtered = JSON.parse(cli(['vectors', 'search', run, 'notes', '--near', 'b', '-k', '1', '--filter', '{"kind":"fact"}', '--json', dir]).stdout) as typeof out
    expect(filtered.hits).toEqual([{ id: 'a', score: expect.any(Number), metadata: { kind: 'fact' } }])
    const text = cli(['vectors', 'search', run, 'notes', '--near', 'a', '-k', '2', dir]).stdout
    expect(text).toMatch(/^ID\s+SCORE\s+METADATA$/m)
    expect(text).toMatch(/^b\s+0\.99\d\d\s+\{"kind":"guess"\}$/m)
  })

  it('bad arguments are clear errors', () => {
    const noNear = cli(['vectors', 'search', run, 'notes', dir])
    expect(noNear.status).not.toBe(0)
    expect(noNear.stderr).toContain('give --near <id>')
    const missing = cli(['vectors', 'search', run, 'notes', '--near', 'zzz', dir])
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toContain('no vector "zzz" in collection "notes"')
    const badFilter = cli(['vectors', 'search', run, 'notes', '--near', 'a', '--filter', '{kind', dir])
    expect(badFilter.status).not.toBe(0)
    expect(badFilter.stderr).toContain('--filter is not JSON')
    const badOp = cli(['vectors', 'search', run, 'notes', '--near', 'a', '--filter', '{"kind":{"$near":1}}', dir])
    expect(badOp.status).not.toBe(0)
    expect(badOp.stderr).toContain('$near')
  })

  it('runs show counts the vectors', () => {
    const r = cli(['runs', 'show', run, '--json', dir])
    expect((JSON.parse(r.stdout) as { counts: { vectors: number } }).counts.vectors).toBe(3)
    expect(cli(['runs', 'show', run, dir]).stdout).toMatch(/vectors\s+3 vectors/)
  })
})
