// A memory database's `history: { keep: N }` (SPEC §17, issue 17 item 4):
// bounded history, with replay, fork and diff answering exactly as with
// every version kept from a run's horizon on, and failing clearly before it.
import { afterEach, describe, expect, it } from 'vitest'
import { Database, InvalidArgumentError, NotFoundError, type RunId } from '../dist/index.js'
import { Rng, expectError, makeTmpDir, packForTest, removeDir, shownRun } from './helpers.js'

const opened: Database[] = []
function open(history?: 'all' | { keep: number }): Database {
  const db = Database.open(history === undefined ? {} : { history })
  opened.push(db)
  return db
}
afterEach(() => {
  for (const db of opened.splice(0)) if (db.isOpen) db.close()
})

/** The same writes on `db`: a run, then `rounds` overwrites of `keys` KV keys and a state cell, and an event per round. */
function fill(db: Database, keys: number, rounds: number): RunId {
  const run = db.runs.begin({ name: 'overwrites' })
  for (let r = 0; r < rounds; r++) {
    db.transaction(run, (tx) => {
      for (let k = 0; k < keys; k++) tx.kv.put(`k${k}`, { r, k, pad: 'x'.repeat(50) })
      tx.state.set('round', r)
      tx.events.append('round', { r })
    })
  }
  return run
}

/** What a replay view shows: KV entries, the state cell's value and version, and the event count. */
function seen(db: Database, run: RunId, at: number): unknown {
  const v = db.replay(run, { at })
  try {
    const cell = v.state.get('round')
    // (a cell's updatedAt is the wall clock of its write: the two databases differ there)
    return { kv: v.kv.entries(), round: cell && { value: cell.value, version: cell.version }, events: v.events.length() }
  } finally {
    v.close()
  }
}

describe('history: { keep }', () => {
  it('keeps memory bounded by live data, and replays exactly as full history does from the horizon on', () => {
    const all = open()
    const kept = open({ keep: 2 })
    const [ra, rk] = [fill(all, 20, 300), fill(kept, 20, 300)]
    const [ma, mk] = [all.stats().memory, kept.stats().memory]
    // Full history: every overwrite stays; keep 2: one or two older versions
    // per key, besides the event log's head, which keeps a version per event
    // (so the log replays to any event).
    expect(ma.historyVersions).toBeGreaterThanOrEqual(20 * 299)
    expect(mk.historyVersions).toBeLessThanOrEqual(2 * 21 + 300 + 5)
    expect(mk.historyBytes).toBeLessThan(ma.historyBytes / 20)
    expect(mk.keys).toBe(ma.keys)
    expect(mk.liveBytes).toBe(ma.liveBytes)
    expect(ma.runsWithHorizon).toBe(0)
    expect(mk.runsWithHorizon).toBe(1)
    expect(all.runs.horizon(ra)).toBe(0)
    const horizon = kept.runs.horizon(rk)
    const now = kept.stats().version
    expect(all.stats().version).toBe(now)
    expect(horizon).toBeGreaterThan(now - 5)
    // From the horizon on, replay answers as with every version kept.
    for (let at = horizon; at <= now; at++) expect(seen(kept, rk, at)).toEqual(seen(all, ra, at))
    // Before it, replay, fork and diff fail clearly; the log starts at it.
    const err = expectError(() => kept.replay(rk, { at: horizon - 1 }), NotFoundError, 'NOT_FOUND')
    expect(err.message).toContain(`kept from version ${horizon} on`)
    expect(err.message).toContain('history: { keep: 2 }')
    expectError(() => kept.runs.fork(rk, { at: 5 }), NotFoundError, 'NOT_FOUND')
    const log = kept.runs.log(rk)
    expect(log[0].version).toBe(horizon)
    expect(log.map((c) => c.version)).toEqual(all.runs.log(ra).map((c) => c.version).filter((v) => v >= horizon))
    // Events are never overwritten: all 300 stay.
    expect(kept.events.length(rk)).toBe(300)
    expect(kept.events.verify(rk).valid).toBe(true)
  })

  it('never drops what an open replay view or a fork reads', () => {
    const db = open({ keep: 1 })
    const run = db.runs.begin()
    db.kv.put(run, 'a', 'a1')
    db.kv.put(run, 'b', 'b1')
    const at = db.stats().version
    const view = db.replay(run, { at })
    for (let i = 2; i <= 50; i++) db.kv.put(run, 'a', `a${i}`)
    expect(view.kv.get('a')).toBe('a1')
    expect(view.kv.get('b')).toBe('b1')
    view.close()
    // With no view open, a fork still reads its parent as it was at the
    // fork, though keep is 1.
    const forkAt = db.stats().version
    const fork = db.runs.fork(run, { at: forkAt })
    for (let i = 51; i <= 100; i++) {
      db.kv.put(run, 'a', `a${i}`)
      db.kv.put(run, 'b', `b${i}`)
    }
    expect(db.kv.get(fork, 'a')).toBe('a50')
    expect(db.kv.get(fork, 'b')).toBe('b1')
    expect(db.diff(run, fork).kv.changed.map((c) => [c.key, c.a, c.b])).toEqual([
      ['a', 'a100', 'a50'],
      ['b', 'b100', 'b1'],
    ])
    // The fork replays whole; the parent keeps only what the fork reads of
    // its history (its horizon may pass the fork point).
    expect(seen(db, fork, db.stats().version)).toMatchObject({ kv: [['a', 'a50'], ['b', 'b1']] })
  })

  it('a database with a directory keeps the same bound in its checkpoints and WAL replay, and its horizon after a restart', async () => {
    const dir = makeTmpDir('history-keep-durable')
    try {
      const reference = open()
      const ref = fill(reference, 10, 200)
      let db = Database.open(dir, { durability: 'strict', history: { keep: 2 } })
      const run = fill(db, 10, 100)
      await db.checkpoint()
      // More after the checkpoint: replayed from the WAL at the next open.
      for (let r = 100; r < 200; r++) {
        db.transaction(run, (tx) => {
          for (let k = 0; k < 10; k++) tx.kv.put(`k${k}`, { r, k, pad: 'x'.repeat(50) })
          tx.state.set('round', r)
          tx.events.append('round', { r })
        })
      }
      const before = { horizon: db.runs.horizon(run), version: db.stats().version, memory: db.stats().memory }
      expect(before.memory.historyVersions).toBeLessThan(40 + 200)
      db.close()
      db = Database.open(dir, { durability: 'strict', history: { keep: 2 } })
      try {
        const after = db.stats()
        expect(after.version).toBe(before.version)
        expect(after.memory.historyVersions).toBeLessThanOrEqual(before.memory.historyVersions)
        // The horizon never moves back across a restart (it may move on: it is conservative).
        const horizon = db.runs.horizon(run)
        expect(horizon).toBeGreaterThanOrEqual(before.horizon)
        expect(horizon).toBeLessThanOrEqual(before.version)
        expectError(() => db.replay(run, { at: horizon - 1 }), NotFoundError, 'NOT_FOUND')
        // The newest state is whole, and replay at the newest version agrees with it.
        expect(db.kv.entries(run)).toEqual(reference.kv.entries(ref))
        expect((seen(db, run, after.version) as { kv: unknown }).kv).toEqual(reference.kv.entries(ref))
        expect(db.events.length(run)).toBe(200)
      } finally {
        db.close()
      }
    } finally {
      removeDir(dir)
    }
  })

  it('ended runs of a durable database leave memory with their kept versions (cold runs) and come back replaying as full history does from the horizon on, before and after a restart', async () => {
    const dir = makeTmpDir('history-keep-cold')
    try {
      const reference = open()
      const refs = [fill(reference, 6, 40), fill(reference, 3, 25), fill(reference, 8, 10)]
      const opts = { durability: 'buffered' as const, history: { keep: 2 }, coldAfterMs: 0, checkpointBytes: 0, purgeIntervalMs: 600_000 }
      let db = Database.open(dir, opts)
      const runs = [fill(db, 6, 40), fill(db, 3, 25), fill(db, 8, 10)]
      for (const run of runs) db.runs.complete(run)
      for (const run of refs) reference.runs.complete(run)
      const now = db.stats().version
      expect(reference.stats().version).toBe(now)
      const horizons = runs.map((run) => db.runs.horizon(run))
      /** Each run's horizon, and replay from it to `now` against the reference's. */
      const check = (label: string, at: (i: number) => number) => {
        for (const [i, run] of runs.entries()) {
          const horizon = at(i)
          expect(horizon, `${label}: run ${i} has a horizon`).toBeGreaterThan(0)
          expectError(() => db.replay(run, { at: horizon - 1 }), NotFoundError, 'NOT_FOUND')
          for (let v = horizon; v <= now; v += 3) expect(seen(db, run, v), `${label}: run ${i} at ${v}`).toEqual(seen(reference, refs[i], v))
          expect(db.kv.entries(run)).toEqual(reference.kv.entries(refs[i]))
          expect(db.events.length(run)).toBe(reference.events.length(refs[i]))
        }
      }
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(3)
      // Each run's first read loads it with its kept versions: the same horizon, the same answers.
      check('loaded back', (i) => {
        expect(db.runs.horizon(runs[i])).toBe(horizons[i])
        return horizons[i]
      })
      expect(db.stats().memory.cold.loads).toBe(3)
      await db.checkpoint() // idle: out again
      expect(db.stats().memory.cold.runs).toBe(3)
      db.close()
      db = Database.open(dir, opts)
      expect(db.stats().memory.cold.runs).toBe(3)
      // A replay before the horizon of a run still cold is refused (its horizon is found by loading it).
      expectError(() => db.replay(runs[0], { at: horizons[0] - 1 }), NotFoundError, 'NOT_FOUND')
      expect(db.stats().memory.cold.runs).toBe(2)
      // After a restart the horizon is the conservative one a resident run gets: never earlier.
      check('after a restart', (i) => {
        const horizon = db.runs.horizon(runs[i])
        expect(horizon).toBeGreaterThanOrEqual(horizons[i])
        expect(horizon).toBeLessThanOrEqual(now)
        return horizon
      })
      db.close()
    } finally {
      removeDir(dir)
    }
  })

  it('randomized: runs of a durable { keep } database go cold and come back at random moments, and answer as a full-history reference does from their horizons on, before and after a restart', async () => {
    const env = process.env.HISTORY_SEED
    const seed = env !== undefined ? Number(env) >>> 0 : (Math.random() * 0x1_0000_0000) >>> 0
    const dir = makeTmpDir('history-keep-cold-random')
    const r = new Rng(seed)
    const keep = r.range(1, 3)
    const note = `seed ${seed} (HISTORY_SEED=${seed} repeats it), keep ${keep}`
    try {
      const reference = open()
      const opts = { durability: 'buffered' as const, history: { keep }, coldAfterMs: 0, checkpointBytes: 0, purgeIntervalMs: 600_000 }
      let db = Database.open(dir, opts)
      // The same runs in both, paired by index; each op is made on both, so versions line up.
      const runs: [RunId, RunId][] = []
      const ended = new Set<number>()
      /** The version each run was begun at. */
      const begun: number[] = []
      const check = (label: string, horizonsBefore?: Map<number, number>) => {
        const now = db.stats().version
        expect(reference.stats().version, `${note}: ${label}: versions line up`).toBe(now)
        for (const [i, [run, ref]] of runs.entries()) {
          // 0 while nothing of the run was dropped.
          const horizon = db.runs.horizon(run)
          if (horizonsBefore?.has(i)) expect(horizon, `${note}: ${label}: run ${i}'s horizon never moves back`).toBeGreaterThanOrEqual(horizonsBefore.get(i)!)
          if (horizon > begun[i]) expectError(() => db.replay(run, { at: horizon - 1 }), NotFoundError, 'NOT_FOUND')
          expect(shownRun(db, run), `${note}: ${label}: run ${i} live`).toEqual(shownRun(reference, ref))
          for (let k = 0; k < 4; k++) {
            const at = r.range(Math.max(horizon, begun[i]), now)
            expect(shownRun(db, run, at), `${note}: ${label}: run ${i} at ${at} (horizon ${horizon})`).toEqual(shownRun(reference, ref, at))
          }
        }
      }
      let cold = 0
      let packed = 0
      for (let round = 0; round < 12; round++) {
        if (runs.length < 8 && r.chance(0.6)) {
          // (every run holds data: a run with none has nothing to move out of memory)
          const pair: [RunId, RunId] = [db.runs.begin({ name: `r${runs.length}` }), reference.runs.begin({ name: `r${runs.length}` })]
          begun.push(db.stats().version)
          db.kv.put(pair[0], 'first', runs.length)
          reference.kv.put(pair[1], 'first', runs.length)
          runs.push(pair)
        }
        const active = runs.map((_, i) => i).filter((i) => !ended.has(i))
        for (let op = r.range(5, 40); op > 0 && active.length > 0; op--) {
          const i = r.pick(active)
          const key = `k${r.int(6)}`
          const value = { round, op, pad: 'x'.repeat(r.int(3) * 40) }
          // (a delete of an absent key writes nothing: a put then)
          const drawn = r.int(5)
          const kind = drawn === 1 && !reference.kv.exists(runs[i][1], key) ? 0 : drawn
          const cell = r.int(3) === 0 ? 'c0' : 'c1'
          for (const [d, run] of [[db, runs[i][0]], [reference, runs[i][1]]] as const) {
            if (kind === 0) d.kv.put(run, key, value)
            else if (kind === 1) d.kv.delete(run, key)
            else if (kind === 2) d.state.set(run, cell, value)
            else if (kind === 3) d.events.append(run, 'step', value)
            else d.transaction(run, (tx) => { tx.kv.put(key, value); tx.state.set('c1', round) })
          }
        }
        // End some runs; checkpoint (ended runs go cold); at random, read some (which loads them back).
        for (const i of active) {
          if (r.chance(0.25)) {
            db.runs.complete(runs[i][0])
            reference.runs.complete(runs[i][1])
            ended.add(i)
          }
        }
        if (r.chance(0.7)) {
          await db.checkpoint()
          cold = Math.max(cold, db.stats().memory.cold.runs)
        }
        // Keys holding one version (cut to it, or loaded back) move into the packed arena at random moments too.
        if (r.chance(0.5)) packed += packForTest(db)
        if (r.chance(0.4)) check(`round ${round}`)
      }
      for (const i of runs.keys()) if (!ended.has(i)) {
        db.runs.complete(runs[i][0])
        reference.runs.complete(runs[i][1])
        ended.add(i)
      }
      await db.checkpoint()
      expect(db.stats().memory.cold.runs, `${note}: every run ended and unread: all cold`).toBe(runs.length)
      check('all loaded back')
      expect(db.stats().memory.cold.loads, `${note}: cold runs were loaded back`).toBeGreaterThanOrEqual(runs.length)
      expect(packed, `${note}: keys were packed`).toBeGreaterThan(0)
      const horizons = new Map(runs.map(([run], i) => [i, db.runs.horizon(run)]))
      expect([...horizons.values()].some((h) => h > 0), `${note}: some run's history was cut`).toBe(true)
      await db.checkpoint()
      db.close()
      db = Database.open(dir, opts)
      expect(db.stats().memory.cold.runs, `${note}: still cold after a restart`).toBe(runs.length)
      check('after a restart', horizons)
      db.close()
    } finally {
      removeDir(dir)
    }
  })

  it('a fork pins only the versions it reads of its parent, and deleting it lets them go (found by a stranger)', () => {
    const db = open({ keep: 3 })
    const run = db.runs.begin()
    const big = 'x'.repeat(10_000)
    for (let i = 0; i < 10; i++) db.kv.put(run, 'k', i)
    const forkAt = db.stats().version
    const fork = db.runs.fork(run)
    for (let i = 10; i < 1010; i++) db.kv.put(run, 'k', i)
    expect(db.kv.get(fork, 'k')).toBe(9)
    expect(db.kv.get(run, 'k')).toBe(1009)
    // keep 3 (two older versions, one more the last write replaced) and the one the fork reads: not 1,000
    expect(db.stats().memory.historyVersions).toBeLessThan(10)
    // The parent's horizon passes the fork point; the fork still replays whole from its start.
    expect(db.runs.horizon(run)).toBeGreaterThan(forkAt)
    expectError(() => db.replay(run, { at: forkAt }), NotFoundError, 'NOT_FOUND')
    expect(seen(db, fork, db.stats().version)).toMatchObject({ kv: [['k', 9]] })
    expect(db.diff(run, fork).kv.changed).toEqual([{ key: 'k', a: 1009, b: 9 }])
    // Deleted, the fork needs nothing: the next writes cut the parent back
    // (the version the fork read goes). Another fork, of 10 KB values, shows
    // it in bytes: its pinned version goes once it is deleted.
    db.kv.put(run, 'k', big)
    const second = db.runs.fork(run)
    for (let i = 0; i < 5; i++) db.kv.put(run, 'k', `before ${i}`)
    expect(db.kv.get(second, 'k')).toBe(big)
    const pinned = db.stats().memory.historyBytes
    db.runs.delete(second)
    db.runs.delete(fork)
    for (let i = 0; i < 5; i++) db.kv.put(run, 'k', `after ${i}`)
    expect(db.stats().memory.historyBytes).toBeLessThan(pinned - 9_000)
  })

  it('appending events does not move the horizon: every event stays, and the log replays to any of them (found by a stranger)', () => {
    const db = open({ keep: 3 })
    const run = db.runs.begin()
    const put = db.kv.put(run, 'plan', 'first')
    for (let i = 0; i < 20; i++) db.events.append(run, 'step', { i })
    expect(db.runs.horizon(run)).toBe(0)
    const v = db.replay(run, { at: { eventSequence: 0 } })
    try {
      expect(v.events.length()).toBe(1)
      expect(v.kv.get('plan')).toBe('first')
    } finally {
      v.close()
    }
    expect(seen(db, run, put)).toMatchObject({ kv: [['plan', 'first']], events: 0 })
  })

  it('a directory whose history was cut says so to every later open, with or without the option (found by a stranger)', () => {
    const dir = makeTmpDir('history-keep-cut')
    try {
      let db = Database.open(dir, { history: { keep: 3 } })
      const run = db.runs.begin()
      const first = db.kv.put(run, 'plan', 'first')
      for (let i = 0; i < 10; i++) db.kv.put(run, 'plan', `step ${i}`)
      db.close()
      for (const options of [{}, { readOnly: true }, { history: 'all' as const }]) {
        db = Database.open(dir, options)
        try {
          expect(db.runs.horizon(run), JSON.stringify(options)).toBeGreaterThan(first)
          const err = expectError(() => db.replay(run, { at: first }), NotFoundError, 'NOT_FOUND')
          expect(err.message).toMatch(/history: \{ keep: 3 \}/)
          expect(db.kv.get(run, 'plan')).toBe('step 9')
        } finally {
          db.close()
        }
      }
    } finally {
      removeDir(dir)
    }
  })

  it('bad history options are InvalidArgumentError and open nothing', () => {
    for (const bad of [{ keep: 0 }, { keep: 1.5 }, { keep: -1 }, { keep: '2' }, {}, { kept: 2 }, 'some', 3, null]) {
      expectError(() => Database.open({ history: bad as never }), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
    const dir = makeTmpDir('history-keep')
    try {
      // A second open of a path in this process must agree on it.
      const db = Database.open(dir, { history: { keep: 3 } })
      const err = expectError(() => Database.open(dir, { history: 'all' }), InvalidArgumentError, 'INVALID_ARGUMENT')
      expect(err.message).toContain("history { keep: 3 }")
      expect(err.message).not.toContain('Some(')
      db.close()
    } finally {
      removeDir(dir)
    }
    expectError(() => open({ keep: 2 }).runs.horizon('00000000-0000-4000-8000-000000000001'), NotFoundError, 'NOT_FOUND')
  })
})
