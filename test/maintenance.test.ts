// The engine's background work is supervised, and nothing named for tests is
// part of the published surface (issue 11, items 2 and 6).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, panicInMaintenanceForTest, removeDir } from './helpers.js'

let dir: string
let db: Database
beforeEach(() => {
  dir = makeTmpDir('maintenance')
  db = Database.open(dir, { purgeIntervalMs: 10 })
})
afterEach(() => {
  db.close()
  removeDir(dir)
})

/** Resolves once `ok()` holds, checking every few milliseconds (the maintenance thread reports nothing else). */
async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('the maintenance thread', () => {
  it('a panic in a round is caught, counted and reported in stats(), and purging goes on', async () => {
    const run = db.runs.begin()
    expect(db.stats().maintenance).toMatchObject({ panics: 0, lastError: null, lastErrorAt: null })
    const before = Date.now()
    panicInMaintenanceForTest(db)
    await until(() => db.stats().maintenance.panics === 1, 'the panic to be counted')
    const m = db.stats().maintenance
    expect(m.lastError).toContain('deliberate panic in the maintenance thread')
    expect(m.lastErrorAt).toBeGreaterThanOrEqual(before)
    // Later rounds still run: an expired key is retired from the expiry index.
    const { rounds, expired } = m
    db.kv.put(run, 'short', 1, { ttlMs: 1 })
    await until(() => db.stats().maintenance.rounds > rounds + 2 && db.stats().maintenance.expired > expired, 'a later round to retire the expired key')
    expect(db.kv.get(run, 'short')).toBeUndefined()
    expect(db.stats().maintenance.panics).toBe(1)
  })
})

describe('TTL keeps history', () => {
  it('an expired key is gone from live reads, but a replay of a point before its expiry shows it, also after purging and a reopen', async () => {
    const run = db.runs.begin()
    const v1 = db.kv.put(run, 'scratch', 'temp', { ttlMs: 40 })
    db.kv.put(run, 'other', 1)
    const v2 = db.stats().version
    // Wait for the expiry and for a maintenance round to retire it.
    const { expired } = db.stats().maintenance
    await until(() => db.kv.get(run, 'scratch') === undefined && db.stats().maintenance.expired > expired, 'the key to expire and be retired')
    const v3 = db.kv.put(run, 'after', 2)
    for (const d of [db, undefined]) {
      const h = d ?? Database.open(dir)
      try {
        expect(h.kv.get(run, 'scratch')).toBeUndefined()
        const before = h.replay(run, { at: v1 })
        expect(before.kv.get('scratch')).toBe('temp')
        before.close()
        const still = h.replay(run, { at: v2 })
        expect(still.kv.entries()).toEqual([
          ['other', 1],
          ['scratch', 'temp'],
        ])
        still.close()
        // At v3 the run's clock is past the expiry.
        const later = h.replay(run, { at: v3 })
        expect(later.kv.get('scratch')).toBeUndefined()
        expect(later.kv.list()).toEqual(['after', 'other'])
        later.close()
      } finally {
        if (d === undefined) h.close()
      }
      if (d !== undefined) db.close()
    }
    db = Database.open(dir, { purgeIntervalMs: 10 })
  })
})

describe('replay views are cheap', () => {
  it('100 open views start no thread (was one OS thread and one engine each) and each still answers from its own version', () => {
    const run = db.runs.begin()
    const versions: number[] = []
    for (let i = 0; i < 100; i++) versions.push(db.kv.put(run, 'n', i))
    const threads = (): number => readdirSync('/proc/self/task').length
    const before = threads()
    const views = versions.map((v) => db.replay(run, { at: v }))
    expect(threads()).toBeLessThanOrEqual(before + 1)
    views.forEach((view, i) => expect(view.kv.get('n')).toBe(i))
    for (const view of views) view.close()
    expect(db.stats().activeSnapshots).toBe(0)
  })
})

describe('the published surface', () => {
  it('has no test hooks: not on Database, not in the type declarations, not through the exports map', () => {
    expect(Object.getOwnPropertyNames(Database.prototype).filter((n) => /test/i.test(n))).toEqual([])
    expect(readFileSync(join(__dirname, '..', 'index.d.ts'), 'utf8')).not.toMatch(/ForTest/)
    expect(readFileSync(join(__dirname, '..', 'dist', 'index.d.ts'), 'utf8')).not.toMatch(/ForTest/)
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './langgraph', './mcp', './package.json'])
    expect(readFileSync(join(__dirname, '..', 'dist', 'langgraph', 'index.d.ts'), 'utf8')).not.toMatch(/ForTest/)
  })
})
