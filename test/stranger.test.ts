// Defects found by using the README as a stranger would (branch `stranger`):
// each case is what the README's Limitations section promises of
// `history: { keep: N }`, and fails today.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database, NotFoundError, type OpenOptions } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

let dir: string
const opened: Database[] = []
function open(path?: string, options?: OpenOptions): Database {
  const db = Database.open(path, options)
  opened.push(db)
  return db
}
beforeEach(() => {
  dir = makeTmpDir('stranger')
})
afterEach(() => {
  for (const db of opened.splice(0)) {
    try {
      db.close()
    } catch {
      // closed by the test
    }
  }
  removeDir(dir)
})

describe('history: { keep } stays bounded', () => {
  // README: "the newest N versions of each key stay, in memory and in
  // checkpoints (... and what a fork reads of its parent)". A fork reads one
  // version of each parent key, the one at its fork point.
  it('a fork of an overwrite-heavy run does not make the parent keep every later version', () => {
    const db = open(undefined, { history: { keep: 3 } })
    const run = db.runs.begin()
    for (let i = 0; i < 10; i++) db.kv.put(run, 'k', i)
    const fork = db.runs.fork(run)
    for (let i = 0; i < 1000; i++) db.kv.put(run, 'k', i)
    expect(db.kv.get(fork, 'k')).toBe(9)
    // keep 3 (two older versions) plus the one the fork reads: a handful, not 1000
    expect(db.stats().memory.historyVersions).toBeLessThan(20)
  })

  // README: "Delete runs you no longer need (db.runs.delete); their memory is
  // freed once no snapshot or fork needs it."
  it('deleting the fork lets the parent be cut back to keep versions', async () => {
    const db = open(undefined, { history: { keep: 3 }, purgeIntervalMs: 50 })
    const run = db.runs.begin()
    for (let i = 0; i < 10; i++) db.kv.put(run, 'k', i)
    const fork = db.runs.fork(run)
    for (let i = 0; i < 1000; i++) db.kv.put(run, 'k', i)
    db.runs.delete(fork)
    await new Promise((r) => setTimeout(r, 500))
    for (let i = 0; i < 10; i++) db.kv.put(run, 'k', `after ${i}`)
    expect(db.stats().memory.historyVersions).toBeLessThan(20)
  })
})

describe('history: { keep } written to a directory', () => {
  // README: "older points are a NotFoundError ... after a restart the horizon
  // is conservative". The CLI opens a directory without a history option, so
  // what it replays must not pass off cut history as whole.
  it('a later open without the history option does not replay cut versions as if they were whole', () => {
    let db = open(dir, { history: { keep: 3 } })
    const run = db.runs.begin()
    const first = db.kv.put(run, 'plan', 'first')
    for (let i = 0; i < 10; i++) db.kv.put(run, 'plan', `step ${i}`)
    db.close()
    db = open(dir)
    let outcome: unknown
    try {
      const view = db.replay(run, { at: first })
      outcome = view.kv.get('plan')
      view.close()
    } catch (e) {
      outcome = e instanceof NotFoundError ? 'NOT_FOUND' : e
    }
    // the value it had then, or a NotFoundError for a point before the horizon; not `undefined`
    expect(['first', 'NOT_FOUND']).toContain(outcome)
    // and the horizon says where the kept history starts
    if (outcome === 'NOT_FOUND') expect(db.runs.horizon(run)).toBeGreaterThan(first)
  })
})
