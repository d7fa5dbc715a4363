// The packed arena (issue 17, "leaner resident data"): keys holding one
// version move out of the store's indexes at random moments (a packing pass,
// forced here; the maintenance thread runs one when enough have gathered),
// and every read — live, replay at any version, the run log, fork, diff, a
// transaction's read and its conflict check — answers as a database that
// never packs does, before and after a restart.
import { afterEach, describe, expect, it } from 'vitest'
import { ConflictError, Database, type RunId } from '../dist/index.js'
import { Rng, makeTmpDir, packForTest, removeDir, shownRun, sleep } from './helpers.js'

const opened: Database[] = []
const dirs: string[] = []
afterEach(() => {
  for (const db of opened.splice(0)) if (db.isOpen) db.close()
  for (const dir of dirs.splice(0)) removeDir(dir)
})

describe('the packed arena', () => {
  it('randomized: packing at random moments changes no answer of live reads, replay, the run log, fork or diff, before and after a restart', async () => {
    const env = process.env.PACK_SEED
    const seed = env !== undefined ? Number(env) >>> 0 : (Math.random() * 0x1_0000_0000) >>> 0
    const r = new Rng(seed)
    const note = `seed ${seed} (PACK_SEED=${seed} repeats it)`
    const dir = makeTmpDir('packed-random')
    dirs.push(dir)
    const opts = { durability: 'buffered' as const, purgeIntervalMs: 600_000 }
    let db = Database.open(dir, opts)
    const reference = Database.open()
    opened.push(reference)
    const runs: [RunId, RunId][] = []
    const begun: number[] = []
    let packed = 0
    let maxPacked = 0
    const check = (label: string) => {
      const now = db.stats().version
      expect(reference.stats().version, `${note}: ${label}: versions line up`).toBe(now)
      for (const [i, [run, ref]] of runs.entries()) {
        expect(shownRun(db, run), `${note}: ${label}: run ${i} live`).toEqual(shownRun(reference, ref))
        for (let k = 0; k < 3; k++) {
          const at = r.range(begun[i], now)
          expect(shownRun(db, run, at), `${note}: ${label}: run ${i} at ${at}`).toEqual(shownRun(reference, ref, at))
        }
        expect(db.runs.log(run), `${note}: ${label}: run ${i}'s log`).toEqual(reference.runs.log(ref))
        for (let k = 0; k < 20; k++) {
          const key = `k${r.int(12)}`
          expect(db.kv.getVersioned(run, key)?.version, `${note}: ${label}: run ${i} ${key}`).toBe(reference.kv.getVersioned(ref, key)?.version)
        }
      }
      if (runs.length >= 2) {
        const a = r.int(runs.length)
        const b = (a + 1 + r.int(runs.length - 1)) % runs.length
        const strip = (d: ReturnType<Database['diff']>) => ({ kv: d.kv, state: d.state })
        expect(strip(db.diff(runs[a][0], runs[b][0])), `${note}: ${label}: diff ${a} ${b}`).toEqual(strip(reference.diff(runs[a][1], runs[b][1])))
      }
    }
    for (let round = 0; round < 14; round++) {
      if (runs.length < 5 && r.chance(0.5)) {
        const name = `r${runs.length}`
        // Half the new runs are forks of an earlier one, at a random version.
        const from = runs.length > 0 && r.chance(0.5) ? r.int(runs.length) : -1
        const at = from >= 0 ? r.range(begun[from], db.stats().version) : 0
        const pair: [RunId, RunId] =
          from >= 0 ? [db.runs.fork(runs[from][0], { at, name }), reference.runs.fork(runs[from][1], { at, name })] : [db.runs.begin({ name }), reference.runs.begin({ name })]
        begun.push(db.stats().version)
        runs.push(pair)
      }
      for (let op = r.range(10, 80); op > 0 && runs.length > 0; op--) {
        const i = r.int(runs.length)
        const key = `k${r.int(12)}`
        const value = { round, op, pad: 'x'.repeat(r.int(4) * 30) }
        const drawn = r.int(7)
        const kind = drawn === 1 && !reference.kv.exists(runs[i][1], key) ? 0 : drawn
        const cell = `c${r.int(3)}`
        for (const [d, run] of [[db, runs[i][0]], [reference, runs[i][1]]] as const) {
          if (kind === 0) d.kv.put(run, key, value)
          else if (kind === 1) d.kv.delete(run, key)
          else if (kind === 2) d.state.set(run, cell, value)
          else if (kind === 3) d.events.append(run, 'step', value)
          else if (kind === 4) d.json.set(run, 'doc', `$.f${op % 5}`, value)
          else if (kind === 5) d.kv.put(run, `once${round}-${op}`, value)
          else d.transaction(run, (tx) => { tx.kv.put(key, value); tx.state.set('c1', round) })
        }
      }
      if (r.chance(0.7) && process.env.NO_PACK === undefined) {
        packed += packForTest(db)
        maxPacked = Math.max(maxPacked, db.stats().memory.packedKeys)
      }
      if (r.chance(0.5)) check(`round ${round}`)
      if (r.chance(0.15)) {
        await db.checkpoint()
        db.close()
        db = Database.open(dir, opts)
        check(`round ${round}, reopened`)
      }
    }
    packed += packForTest(db)
    check('the end')
    expect(packed, `${note}: keys were packed`).toBeGreaterThan(0)
    expect(maxPacked, `${note}: stats().memory counts them`).toBeGreaterThan(0)
    const keys = db.stats().memory.keys
    db.close()
    db = Database.open(dir, opts)
    expect(db.stats().memory.keys, `${note}: as many keys after a restart`).toBe(keys)
    check('after a restart')
    db.close()
  })

  it('a transaction that read a key before it was packed conflicts with a write made after, and one that did not commits', () => {
    const db = Database.open()
    opened.push(db)
    const run = db.runs.begin()
    for (let i = 0; i < 50; i++) db.kv.put(run, `k${i}`, i)
    expect(packForTest(db)).toBeGreaterThanOrEqual(50)
    expect(db.stats().memory.packedKeys).toBeGreaterThanOrEqual(50)
    expect(() =>
      db.transaction(
        run,
        (tx) => {
          const v = tx.kv.get('k1') as number
          // Another writer, between the read and the commit: the key leaves the arena.
          db.kv.put(run, 'k1', -1)
          tx.kv.put('k2', v + 1)
        },
        { retries: 0 },
      ),
    ).toThrow(ConflictError)
    db.transaction(run, (tx) => tx.kv.put('k3', (tx.kv.get('k4') as number) + 1))
    expect([db.kv.get(run, 'k1'), db.kv.get(run, 'k2'), db.kv.get(run, 'k3'), db.kv.get(run, 'k4')]).toEqual([-1, 2, 5, 4])
    // The keys written left the arena; the others are still in it, and every one reads back.
    expect(db.stats().memory.packedKeys).toBeGreaterThanOrEqual(46)
    for (let i = 5; i < 50; i++) expect(db.kv.get(run, `k${i}`)).toBe(i)
    expect(db.kv.list(run, { limit: 100 }).length).toBe(50)
  })

  it('a read-only database packs the keys recovery loaded, and reads them as before', async () => {
    const dir = makeTmpDir('packed-read-only')
    dirs.push(dir)
    const w = Database.open(dir, { durability: 'buffered' })
    const run = w.runs.begin()
    for (let i = 0; i < 6000; i++) w.kv.put(run, `k${i}`, { i })
    w.close()
    const db = Database.open(dir, { readOnly: true, purgeIntervalMs: 20 })
    opened.push(db)
    for (let t = 0; t < 100 && db.stats().memory.packedKeys < 6000; t++) await sleep(50)
    expect(db.stats().memory.packedKeys).toBeGreaterThanOrEqual(6000)
    for (let i = 0; i < 6000; i += 599) expect(db.kv.get(run, `k${i}`)).toEqual({ i })
    expect(db.kv.list(run, { limit: 10_000 }).length).toBe(6000)
  })

  it('the maintenance thread packs keys written once when the writes pause, and kv.delete, TTL expiry and run deletion reach them there', async () => {
    const db = Database.open({ purgeIntervalMs: 50 })
    opened.push(db)
    const run = db.runs.begin()
    const other = db.runs.begin()
    // Enough for a pass when no key came since the last round (a sixteenth of 65,536).
    for (let i = 0; i < 5000; i++) db.kv.put(run, `k${i}`, i, i < 100 ? { ttlMs: 300 } : undefined)
    for (let i = 0; i < 10; i++) db.kv.put(other, `o${i}`, i)
    // Two maintenance rounds (one a second) at most: poll for the event, not a fixed time.
    for (let t = 0; t < 60 && db.stats().memory.packedKeys < 5000; t++) await sleep(100)
    expect(db.stats().memory.packedKeys).toBeGreaterThanOrEqual(5000)
    db.kv.delete(run, 'k200')
    expect(db.kv.get(run, 'k200')).toBeUndefined()
    expect(db.kv.get(run, 'k201')).toBe(201)
    // Expired keys are purged from the arena as from the indexes.
    for (let t = 0; t < 60 && db.kv.get(run, 'k0') !== undefined; t++) await sleep(100)
    expect(db.kv.get(run, 'k0')).toBeUndefined()
    expect(db.kv.list(run, { limit: 10_000 }).length).toBe(5000 - 100 - 1)
    db.runs.delete(run)
    expect(db.kv.get(other, 'o3')).toBe(3)
    for (let t = 0; t < 60 && db.stats().memory.keys > 100; t++) await sleep(100)
    expect(db.stats().memory.keys).toBeLessThan(100)
  })
})
