// TTL keeps history (issue 11, item 3): an expired key disappears from live
// reads, but a replay of a version before its expiry still shows it.
//
// A randomized run of KV writes with short TTLs that expire while it runs,
// on a run and on a fork of it, checked against a model. The model knows the
// rule replay follows: a view at version `v` judges expiry at the time of the
// newest KV write of the run (or of the ancestor it reads through) at or
// before `v`. The write times come from the database (`updatedAt`), so the
// expectation is exact however slowly the machine runs. The seed is random;
// a failure names it, and TTL_SEED=<seed> repeats the run.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database, type RunId } from '../dist/index.js'
import { makeTmpDir, removeDir, Rng, sleep } from './helpers.js'

/** One KV write as the model keeps it. */
interface Write {
  version: number
  key: string
  /** `undefined`: a delete. */
  value: number | undefined
  updatedAt: number
  ttlMs: number | undefined
}

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f']

/** What a replay of a run whose writes are `writes` shows at `at`: key → value. */
function expectedAt(writes: Write[], at: number): Record<string, number> {
  const upTo = writes.filter((w) => w.version <= at)
  const clock = Math.max(0, ...upTo.filter((w) => w.value !== undefined).map((w) => w.updatedAt))
  const newest = new Map<string, Write>()
  for (const w of upTo) newest.set(w.key, w)
  const out: Record<string, number> = {}
  for (const [key, w] of [...newest].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (w.value === undefined) continue
    if (w.ttlMs !== undefined && w.updatedAt + w.ttlMs <= clock) continue
    out[key] = w.value
  }
  return out
}

function shown(view: { kv: { entries(): Array<readonly [string, unknown]> } }): Record<string, number> {
  return Object.fromEntries(view.kv.entries()) as Record<string, number>
}

describe('TTL keeps history', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTmpDir('in-mem-ttl')
  })
  afterEach(() => removeDir(dir))

  it('replay before an expiry shows the key, live reads do not, across a fork and a reopen', async () => {
    const seed = Number(process.env.TTL_SEED ?? Math.floor(Math.random() * 2 ** 32))
    const r = new Rng(seed)
    const where = `(TTL_SEED=${seed})`
    let db = Database.open(dir, { durability: 'buffered', purgeIntervalMs: 20 })
    const parent = db.runs.begin({ name: 'ttl parent' })
    const log = new Map<RunId, Write[]>([[parent, []]])
    let fork: RunId | undefined
    let forkAt = 0
    const versions: number[] = []
    let expiring = 0

    const write = (run: RunId): void => {
      const key = KEYS[r.int(KEYS.length)]
      if (r.next() < 0.15) {
        if (!db.kv.delete(run, key)) return
        log.get(run)!.push({ version: db.stats().version, key, value: undefined, updatedAt: 0, ttlMs: undefined })
        return
      }
      const value = r.int(1000)
      const ttlMs = r.next() < 0.6 ? 20 + r.int(120) : undefined
      db.kv.put(run, key, value, ttlMs === undefined ? undefined : { ttlMs })
      const version = db.stats().version
      // The write time, as stored: a view at the write's own version judges
      // expiry at that time, so it shows the key whatever the TTL.
      const view = db.replay(run, { at: version })
      const seen = view.kv.getVersioned<number>(key)
      view.close()
      expect(seen, `the put of ${key} at ${version} ${where}`).toMatchObject({ value, version })
      log.get(run)!.push({ version, key, value, updatedAt: seen!.updatedAt, ttlMs })
      if (ttlMs !== undefined) expiring++
    }

    for (let step = 0; step < 120; step++) {
      if (step === 50) {
        forkAt = db.stats().version
        fork = db.runs.fork(parent, { at: forkAt })
        // A fork starts with its parent's writes up to the fork point.
        log.set(fork, log.get(parent)!.filter((w) => w.version <= forkAt))
      }
      write(fork !== undefined && r.next() < 0.5 ? fork : parent)
      versions.push(db.stats().version)
      if (r.next() < 0.3) await sleep(r.int(40)) // let some TTLs run out between writes
    }
    expect(expiring, where).toBeGreaterThan(20)

    // Every TTL has run out: nothing with one is live any more.
    await sleep(200)
    for (const [run, writes] of log) {
      const live = shown(db.scope(run))
      for (const [key, value] of Object.entries(live)) {
        const newest = writes.filter((w) => w.key === key).at(-1)!
        expect(newest.ttlMs, `live ${key}=${value} in ${run} has no TTL ${where}`).toBeUndefined()
      }
    }
    const purged = (): number => db.stats().maintenance.expired
    while (purged() === 0) await sleep(20) // the maintenance thread retires expired entries from its index
    expect(purged(), where).toBeGreaterThan(0)

    const check = (what: string): void => {
      let shownExpired = 0
      for (const [run, writes] of log) {
        for (const at of versions) {
          if (run === fork && at < forkAt) continue
          const view = db.replay(run, { at })
          const got = shown(view)
          view.close()
          const want = expectedAt(writes, at)
          expect(got, `${what}: replay of ${run === fork ? 'the fork' : 'the parent'} at ${at} ${where}`).toStrictEqual(want)
          // Count the keys replay shows that have expired since.
          for (const key of Object.keys(want)) {
            const w = writes.filter((x) => x.key === key && x.version <= at).at(-1)!
            if (w.ttlMs !== undefined) shownExpired++
          }
        }
      }
      // The point of the test: replays showed keys whose TTL has run out.
      expect(shownExpired, where).toBeGreaterThan(0)
    }
    check('open')
    db.close()
    db = Database.open(dir, { durability: 'buffered' })
    check('after a reopen')
    db.close()
  })
})
