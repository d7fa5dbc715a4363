// Run history: replay to any version, copy-on-write fork, diff and the run
// log (SPEC §8, issue 5 items 1–4).
//
// The randomized property at the top drives random runs through every
// primitive, single operations and transactions (some rolled back), forks and
// forks of forks, records what the live database shows after every commit,
// and checks that `db.replay(run, { at })` shows exactly that. Its seed is
// random; a failure names it, and HISTORY_SEED=<seed> repeats the run.
import { cpSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { runWorker } from './worker-helpers.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  AlreadyExistsError,
  ClosedError,
  Database,
  InMemError,
  InternalError,
  InvalidArgumentError,
  LimitError,
  NotFoundError,
  RunClosedError,
  type LoggedCommit,
  type MachineContext,
  type MachineDefinition,
  type NewTrace,
  type RunDiff,
  type RunId,
  type RunScope,
  type RunView,
  type ScopedMachines,
  type TxScope,
  type Value,
} from '../dist/index.js'
import { expectError, makeTmpDir, removeDir, Rng, sleep, UNKNOWN_RUN } from './helpers.js'

// ---------------------------------------------------------------------------
// Shared pieces

const ORDER: MachineDefinition = {
  name: 'order',
  version: 1,
  states: ['new', 'paid', 'shipped', 'cancelled'],
  initial: 'new',
  transitions: [
    { from: 'new', event: 'pay', to: 'paid', guard: 'payload.amount >= 10' },
    { from: ['new', 'paid'], event: 'cancel', to: 'cancelled' },
    { from: 'paid', event: 'ship', to: 'shipped' },
    { from: ['shipped', 'cancelled'], event: 'reopen', to: 'new' },
  ],
}

const toggle = (version: number): MachineDefinition => ({
  name: 'toggle',
  version,
  states: ['off', 'on'],
  initial: 'off',
  transitions: [
    { from: 'off', event: 'flip', to: 'on' },
    { from: 'on', event: 'flip', to: 'off', guard: `ctx.n == null || ctx.n < ${version * 100}` },
  ],
})

/** What a RunView and a run scope both offer: every read. */
type Reader = Pick<RunView, 'kv' | 'events' | 'state' | 'json' | 'traces' | 'machines'>

const DOCS = ['d0', 'd1', 'd2']

/**
 * Everything a reader shows of a run, as one canonical string (bigints,
 * byte arrays and `undefined` spelt out so that they compare exactly).
 */
function dump(s: Reader): string {
  return canon(everything(s))
}

function everything(s: Reader) {
  const entries = s.kv.entries()
  return {
    kv: entries,
    kvVersioned: entries.map(([k]) => [k, s.kv.getVersioned(k)]),
    kvCount: s.kv.count(),
    kvReverse: s.kv.list({ reverse: true, limit: 5 }),
    kvPrefix: s.kv.list({ prefix: 'k1' }),
    kvAfter: s.kv.list({ after: 'k10', limit: 3 }),
    events: s.events.range(),
    eventsLength: s.events.length(),
    head: s.events.head(),
    verify: s.events.verify(),
    state: s.state.list(),
    json: DOCS.map((d) => s.json.get(d)),
    traces: s.traces.query(),
    tree: s.traces.tree(),
    tagged: s.traces.query({ tag: 't1' }).map((t) => t.id),
    machines: s.machines.list(),
    paid: s.machines.list({ state: 'paid' }).map((m) => m.id),
    toggles: s.machines.list({ machine: 'toggle' }).map((m) => m.id),
  }
}

/** The part of {@link everything} that {@link glance} reads again: enough to see any write land. */
type Glance = Pick<ReturnType<typeof everything>, 'kv' | 'eventsLength' | 'head' | 'state' | 'json' | 'traces' | 'machines'>
const glanceOf = (g: Glance): string =>
  canon({ kv: g.kv, eventsLength: g.eventsLength, head: g.head, state: g.state, json: g.json, traces: g.traces, machines: g.machines })

/** A cheaper look at a run than {@link dump}, for the runs an operation must not touch. */
function glance(s: Reader): string {
  return glanceOf({
    kv: s.kv.entries(),
    eventsLength: s.events.length(),
    head: s.events.head(),
    state: s.state.list(),
    json: DOCS.map((d) => s.json.get(d)),
    traces: s.traces.query(),
    machines: s.machines.list(),
  })
}

function canon(v: unknown): string {
  return JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
    const raw = this[k]
    if (raw === undefined) return { $undefined: true }
    if (typeof raw === 'bigint') return { $bigint: raw.toString() }
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('hex') }
    return x
  })
}

/** Asserts two dumps are equal, showing a readable diff when not. */
function expectSameDump(actual: string, expected: string, what: string): void {
  if (actual === expected) return
  expect(JSON.parse(actual), what).toStrictEqual(JSON.parse(expected))
  expect(actual, what).toBe(expected) // same parse, different text: still a failure
}

/** Errors the random operations may raise on purpose (nothing is written then). */
function expected(e: unknown): boolean {
  return (e instanceof InMemError && !(e instanceof InternalError)) || e instanceof Abort
}

class Abort extends Error {}

type Scope = RunScope | TxScope

const KEYS = [...Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}`), 'a/b', 'ü', ' space']
const CELLS = ['c0', 'c1', 'c2', 'c3', 'c4']
const PATHS = ['$', '$.a', '$.a.b', '$.list', '$["odd key"]', '$.n']
const INSTANCES = ['m0', 'm1', 'm2', 'm3']
const EVENTS = ['pay', 'cancel', 'ship', 'reopen', 'flip', 'bogus']
const LONG_TTL = 3_600_000

function randomValue(r: Rng, depth = 0): Value {
  switch (r.int(depth >= 2 ? 7 : 9)) {
    case 0:
      return null
    case 1:
      return r.chance(0.5)
    case 2:
      return r.int(2001) - 1000
    case 3:
      return Math.round(r.next() * 1e6) / 1e3 + 0.5
    case 4:
      return r.pick(['', 'text', 'ünïcødé ✓', `s${r.int(1000)}`, 'x'.repeat(r.int(200))])
    case 5:
      return BigInt(r.int(1_000_000)) * 1_000_003n - 7n
    case 6:
      return new Uint8Array(Array.from({ length: r.int(6) }, () => r.int(256)))
    case 7:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1))
    default: {
      const o: Record<string, Value> = {}
      for (let i = r.int(4); i > 0; i--) o[r.pick(['a', 'b', 'n', 'odd key', 'list'])] = randomValue(r, depth + 1)
      return o
    }
  }
}

function randomObject(r: Rng): Record<string, Value> {
  const o: Record<string, Value> = {}
  for (let i = r.range(1, 3); i > 0; i--) o[r.pick(['a', 'b', 'n', 'list'])] = r.chance(0.2) ? null : randomValue(r, 1)
  return o
}

function randomTrace(r: Rng, parent: string | undefined): NewTrace {
  const tags = ['t1', 't2', 't3'].filter(() => r.chance(0.3))
  const base = { parent, tags: tags.length > 0 ? tags : undefined, metadata: r.chance(0.3) ? randomValue(r, 1) : undefined }
  switch (r.int(6)) {
    case 0:
      return { ...base, type: 'tool_call', data: { tool: r.pick(['search', 'fetch']), arguments: randomValue(r, 1), result: r.chance(0.5) ? randomValue(r, 1) : undefined, durationMs: r.int(500) } }
    case 1:
      return { ...base, type: 'decision', data: { question: 'which?', options: ['a', 'b'], chosen: r.pick(['a', 'b']), reasoning: r.chance(0.5) ? 'because' : undefined } }
    case 2:
      return { ...base, type: 'thought', data: { content: `thinking ${r.int(100)}`, confidence: r.chance(0.5) ? r.next() : undefined } }
    case 3:
      return { ...base, type: 'query', data: { query: 'q', source: 'index', results: [randomValue(r, 2)] } }
    case 4:
      return { ...base, type: 'error', data: { message: 'boom', code: 'E1', recoverable: r.chance(0.5) } }
    default:
      return { ...base, type: 'custom', data: randomValue(r, 1) }
  }
}

/** Drops `undefined` members so the traces stay valid input. */
function clean<T extends object>(o: T): T {
  return JSON.parse(canon(o), (_k, v: unknown) => {
    if (v !== null && typeof v === 'object') {
      const t = v as Record<string, unknown>
      if (t.$undefined === true) return undefined
      if (typeof t.$bigint === 'string') return BigInt(t.$bigint)
      if (typeof t.$bytes === 'string') return new Uint8Array(Buffer.from(t.$bytes, 'hex'))
    }
    return v
  }) as T
}

/** One random operation through `s` (a run scope or a transaction's scope). */
function randomOp(r: Rng, s: Scope): void {
  const k = r.int(100)
  const ttl = r.chance(0.15) ? { ttlMs: LONG_TTL } : undefined
  if (k < 14) s.kv.put(r.pick(KEYS), randomValue(r), ttl)
  else if (k < 19) s.kv.delete(r.pick(KEYS))
  else if (k < 24) s.kv.putMany(Array.from({ length: r.range(1, 5) }, () => [r.pick(KEYS), randomValue(r)] as const), ttl)
  else if (k < 36) s.events.append(r.pick(['step', 'tool', 'note']), randomValue(r))
  else if (k < 40) s.state.init(r.pick(CELLS), randomValue(r))
  else if (k < 45) s.state.set(r.pick(CELLS), randomValue(r))
  else if (k < 50) {
    const name = r.pick(CELLS)
    const current = s.state.get(name)?.version ?? 0
    s.state.cas(name, r.pick([current, current, current + 1, 0]), randomValue(r))
  } else if (k < 52) s.state.delete(r.pick(CELLS))
  else if (k < 54) s.state.transition(r.pick(CELLS), (cur: Value | undefined) => (typeof cur === 'number' ? cur + 1 : 1))
  else if (k < 61) s.json.set(r.pick(DOCS), r.pick(PATHS), randomValue(r))
  else if (k < 65) s.json.merge(r.pick(DOCS), r.pick(['$', '$.a']), randomObject(r))
  else if (k < 68) s.json.delete(r.pick(DOCS), r.pick(PATHS.slice(1)))
  else if (k < 78) {
    let parent: string | undefined
    if (r.chance(0.6)) {
      const known = s.traces.query({ limit: 64 })
      if (known.length > 0) parent = r.pick(known).id
    } else if (r.chance(0.05)) parent = '01890a5d-ac96-774b-bcce-b302099a8057' // no such trace: NotFoundError
    s.traces.record(clean(randomTrace(r, parent)))
  } else if (k < 83) {
    const machine = r.pick(['order', 'toggle'])
    s.machines.create(r.pick(INSTANCES), {
      machine,
      context: r.chance(0.5) ? { n: r.int(300), who: 'agent' } : undefined,
      idempotencyKey: r.chance(0.3) ? `create-${r.int(3)}` : undefined,
    })
  } else if (k < 97) {
    const id = r.pick(INSTANCES)
    const payload: MachineContext = r.chance(0.5) ? { amount: r.int(20) } : { n: r.int(300), note: r.chance(0.2) ? null : 'x' }
    const current = r.chance(0.2) ? s.machines.get(id) : undefined
    s.machines.apply(id, r.pick(EVENTS), {
      payload,
      expectedRevision: current === undefined ? undefined : current.revision + (r.chance(0.3) ? 1 : 0),
      idempotencyKey: r.chance(0.25) ? `apply-${r.int(3)}` : undefined,
    })
  } else {
    const newest = s.machines.getDefinition('toggle')?.version ?? 0
    s.machines.define(toggle(newest + 1))
  }
}

interface Tracked {
  run: RunId
  family: number
  /** version → dump of the run at that version, recorded after each operation on it. */
  records: Map<number, string>
  /** The recorded versions, ascending. */
  versions: number[]
  last: string
  /** {@link glance} of the run as last recorded. */
  lastGlance: string
  /** Versions at which an operation on this run committed. */
  commits: Set<number>
  /** Versions at which an operation on this run changed what it shows. */
  changed: Set<number>
}

/** Drives random runs on one database and checks replay against them. */
class Sim {
  runs: Tracked[] = []
  ops = 0
  failedOps = 0
  txs = 0
  rolledBack = 0
  replays = 0
  constructor(
    public db: Database,
    readonly r: Rng,
  ) {}

  version(): number {
    return this.db.stats().version
  }

  private record(t: Tracked, before: number | undefined): void {
    const v = this.version()
    const all = everything(this.db.scope(t.run))
    const d = canon(all)
    t.lastGlance = glanceOf(all)
    const seen = t.records.get(v)
    if (seen !== undefined) expectSameDump(d, seen, `run ${t.run} twice at version ${v}`)
    else {
      t.records.set(v, d)
      t.versions.push(v)
    }
    if (before !== undefined && v > before) t.commits.add(v)
    if (before !== undefined && d !== t.last) t.changed.add(v)
    t.last = d
  }

  /** What the run showed at version `at`: the newest record at or below it. */
  at(t: Tracked, at: number): string {
    let lo = 0
    let hi = t.versions.length - 1
    expect(at).toBeGreaterThanOrEqual(t.versions[0])
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (t.versions[mid] <= at) lo = mid
      else hi = mid - 1
    }
    return t.records.get(t.versions[lo])!
  }

  begin(family: number): Tracked {
    const run = this.db.runs.begin({ name: `family ${family}`, tags: ['sim'] })
    const t: Tracked = { run, family, records: new Map(), versions: [], last: '', lastGlance: '', commits: new Set(), changed: new Set() }
    this.runs.push(t)
    this.record(t, undefined)
    return t
  }

  fork(src: Tracked): Tracked {
    const at = this.r.chance(0.3) ? this.version() : this.r.pick(src.versions)
    const run = this.db.runs.fork(src.run, { at, name: this.r.chance(0.5) ? `fork of ${src.run}` : undefined })
    expect(this.db.runs.get(run)!.parent).toBe(src.run)
    const t: Tracked = { run, family: src.family, records: new Map(), versions: [], last: '', lastGlance: '', commits: new Set(), changed: new Set() }
    this.runs.push(t)
    this.record(t, undefined)
    expectSameDump(t.last, this.at(src, at), `a fresh fork of ${src.run} at ${at} shows the parent as it was then`)
    return t
  }

  /** One random operation or transaction on `t`; then every other run of its family must be unchanged. */
  step(t: Tracked): void {
    const r = this.r
    const before = this.version()
    if (r.chance(0.25)) {
      this.txs++
      const abort = r.chance(0.25)
      try {
        this.db.transaction(
          t.run,
          (tx) => {
            for (let i = r.range(1, 5); i > 0; i--) randomOp(r, tx)
            if (abort) throw new Abort('rolled back on purpose')
          },
          { retries: 0 },
        )
      } catch (e) {
        if (!expected(e)) throw e
        this.rolledBack++
        expect(this.version(), 'a transaction that threw committed nothing').toBe(before)
      }
    } else {
      this.ops++
      try {
        randomOp(r, this.db.scope(t.run))
      } catch (e) {
        if (!expected(e)) throw e
        this.failedOps++
      }
    }
    this.record(t, before)
    for (const u of this.runs) {
      if (u.family === t.family && u !== t) expectSameDump(glance(this.db.scope(u.run)), u.lastGlance, `run ${u.run} after a write to ${t.run} of its family`)
    }
  }

  /** Every recorded point of every run, replayed; the live state; the run log. */
  verify(): void {
    const now = this.version()
    for (const t of this.runs) {
      expectSameDump(dump(this.db.scope(t.run)), t.last, `live run ${t.run}`)
      const view = this.db.replay(t.run)
      expect(view.at).toBe(now)
      expect(view.run).toBe(t.run)
      expectSameDump(dump(view), t.last, `replay(${t.run}) at the end`)
      view.close()
      const points = [...t.versions]
      for (let i = 0; i < 3; i++) points.push(this.r.range(t.versions[0], now)) // versions of other runs' commits too
      for (const v of points) {
        const past = this.db.replay(t.run, { at: v })
        this.replays++
        expect(past.at).toBe(v)
        expectSameDump(dump(past), this.at(t, v), `replay(${t.run}, { at: ${v} })`)
        past.close()
      }
      const log = this.db.runs.log(t.run)
      const logged = log.map((c) => c.version)
      expect(logged, 'run log versions ascend').toStrictEqual([...logged].sort((a, b) => a - b))
      expect(new Set(logged).size).toBe(logged.length)
      for (const v of logged) expect(t.commits.has(v), `logged version ${v} of ${t.run} is a commit made on it`).toBe(true)
      for (const v of t.changed) expect(logged, `version ${v} changed ${t.run}, so the log holds it`).toContain(v)
    }
  }

  /** Random runs in families: a parent, maybe forks of it and forks of those, written in turn. */
  family(family: number, opsPerRun: () => number): void {
    const r = this.r
    const members = [this.begin(family)]
    const budget = new Map<Tracked, number>([[members[0], opsPerRun()]])
    // every other family forks at least once, and every fourth forks its fork
    const forks = family % 4 === 0 ? 2 : family % 2 === 0 ? r.pick([1, 2]) : r.pick([0, 1, 2])
    let forksMade = 0
    const closed = new Set<Tracked>()
    for (;;) {
      const open = members.filter((m) => (budget.get(m) ?? 0) > 0)
      if (open.length === 0) break
      const t = r.pick(open)
      budget.set(t, budget.get(t)! - 1)
      if (forksMade < forks && t.versions.length > 3 && (r.chance(0.03) || budget.get(members[0])! < 5)) {
        const f = this.fork(family % 4 === 0 && forksMade === 1 ? members[1] : r.pick(members))
        members.push(f)
        budget.set(f, opsPerRun())
        forksMade++
        continue
      }
      if (!closed.has(t) && members.length > 1 && r.chance(0.005)) {
        this.db.runs.complete(t.run) // ended runs take no writes (RunClosedError) but replay and fork still work
        closed.add(t)
      }
      this.step(t)
    }
  }

  /** More operations on runs that exist already (e.g. after a reopen). */
  more(count: number): void {
    const active = this.runs.filter((t) => this.db.runs.get(t.run)!.status === 'active')
    for (let i = 0; i < count; i++) this.step(this.r.pick(active))
  }
}

function defineMachines(db: Database): void {
  db.machines.define(ORDER)
  db.machines.define(toggle(1))
}

/** Runs `fn` with a seed, naming the seed in any failure. */
function withSeed(label: string, fn: (seed: number) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const env = process.env.HISTORY_SEED
    const seed = env !== undefined ? Number(env) >>> 0 : (Math.random() * 0x1_0000_0000) >>> 0
    try {
      await fn(seed)
    } catch (e) {
      const note = `[${label}] seed ${seed} (HISTORY_SEED=${seed} repeats it)`
      console.error(note)
      if (e instanceof Error) e.message = `${note}: ${e.message}`
      throw e
    }
  }
}

// ---------------------------------------------------------------------------
// 1. The randomized property

describe('replay: randomized property over every primitive, transactions and forks', () => {
  it(
    'replay(run) equals the live state, and replay(run, { at }) equals what each run showed at every recorded version (memory)',
    withSeed('memory property', (seed) => {
      const db = Database.open()
      try {
        defineMachines(db)
        const sim = new Sim(db, new Rng(seed))
        for (let f = 0; f < 7; f++) sim.family(f, () => sim.r.range(20, 45))
        sim.verify()
        // the property exercised what it claims to
        expect(sim.runs.length).toBeGreaterThanOrEqual(10)
        const forked = db.runs.list({ tag: 'sim' }).filter((i) => i.parent !== undefined)
        expect(forked.length).toBeGreaterThanOrEqual(6)
        expect(forked.some((i) => db.runs.get(i.parent!)!.parent !== undefined), 'a fork of a fork').toBe(true)
        expect(sim.txs).toBeGreaterThan(30)
        expect(sim.rolledBack).toBeGreaterThan(5)
        expect(sim.failedOps).toBeGreaterThan(10)
        expect(sim.replays).toBeGreaterThan(200)
      } finally {
        db.close()
      }
    }),
  )

  it(
    'history moved to disk by checkpoints at random moments reads as it did in memory: replay at every version, forks and the run log, while open and after a reopen (durable)',
    withSeed('spilled property', async (seed) => {
      const dir = makeTmpDir('in-mem-history')
      // No background checkpoints: the test chooses the moments.
      const opts = { durability: 'buffered' as const, checkpointBytes: 0 }
      let db = Database.open(dir, opts)
      try {
        defineMachines(db)
        const sim = new Sim(db, new Rng(seed))
        let spilled = 0
        for (let f = 0; f < 5; f++) {
          sim.family(f, () => sim.r.range(15, 35))
          // A checkpoint moves each key's versions older than its newest to a history file.
          for (let c = sim.r.range(1, 3); c > 0; c--) {
            sim.more(sim.r.range(5, 30))
            const before = db.stats().memory.historyVersions
            expect(await db.checkpoint()).not.toBeNull()
            const after = db.stats().memory
            spilled += before - after.historyVersions
            expect(after.historyVersions, 'older versions left in memory after a checkpoint').toBeLessThan(before + 1)
          }
        }
        // A seed whose families came out small moved too little to disk for
        // the property to mean much: more writes and checkpoints until it has.
        for (let extra = 0; extra < 50 && (spilled <= 100 || db.stats().memory.historyOnDisk.versions <= 100); extra++) {
          sim.more(sim.r.range(5, 30))
          const before = db.stats().memory.historyVersions
          expect(await db.checkpoint()).not.toBeNull()
          spilled += before - db.stats().memory.historyVersions
        }
        const onDisk = db.stats().memory.historyOnDisk
        expect(onDisk.files).toBeGreaterThanOrEqual(1)
        expect(onDisk.files).toBeLessThanOrEqual(8) // merged by later checkpoints
        expect(onDisk.versions, 'versions in history files').toBeGreaterThan(100)
        expect(spilled, 'versions moved out of memory').toBeGreaterThan(100)
        sim.verify() // reads history files while open
        expect(sim.replays, 'replays checked').toBeGreaterThan(100)
        db.close()
        db = Database.open(dir, { ...opts, checkpointOnClose: false })
        sim.db = db
        expect(db.stats().memory.historyOnDisk).toStrictEqual(onDisk) // nothing was written since the last checkpoint
        sim.verify() // and after a reopen, from the files the manifest names
        sim.more(20)
        sim.verify()
      } finally {
        db.close()
        removeDir(dir)
      }
    }),
  )

  it(
    'cold runs: ended runs leave memory at checkpoints at random moments (and come back on the reads that touch them) and read as they did: replay at every version, forks and the run log, while open and after a reopen',
    withSeed('cold property', async (seed) => {
      const dir = makeTmpDir('in-mem-history')
      // runs move at this test's checkpoints only: a maintenance round would move a run
      // that a read just loaded back (coldAfterMs 0) out again whenever it ran
      const opts = { durability: 'buffered' as const, checkpointBytes: 0, coldAfterMs: 0, purgeIntervalMs: 600_000 }
      let db = Database.open(dir, opts)
      try {
        defineMachines(db)
        const sim = new Sim(db, new Rng(seed))
        let wentCold = 0
        let loaded = 0
        for (let f = 0; f < 6; f++) {
          const earlier = sim.runs.filter((t) => db.runs.get(t.run)!.status === 'active')
          sim.family(f, () => sim.r.range(15, 35))
          // end some of the earlier families' runs (forks read through ended parents)
          for (const t of earlier) if (sim.r.chance(0.5)) db.runs.complete(t.run)
          for (let c = sim.r.range(1, 3); c > 0; c--) {
            sim.more(sim.r.range(5, 20))
            expect(await db.checkpoint()).not.toBeNull()
            const cold = db.stats().memory.cold
            wentCold = Math.max(wentCold, cold.runs)
            // at random moments, a reader touches everything (loading every cold run back)
            if (sim.r.chance(0.3)) {
              sim.verify()
              loaded += cold.runs
              expect(db.stats().memory.cold.runs).toBe(0)
            }
          }
        }
        expect(wentCold, 'runs went cold').toBeGreaterThan(2)
        sim.verify()
        expect(db.stats().memory.cold.runs).toBe(0)
        expect(db.stats().memory.cold.loads).toBeGreaterThan(2)
        sim.more(10)
        await db.checkpoint() // cold again
        const cold = db.stats().memory.cold.runs
        expect(cold).toBeGreaterThan(2)
        db.close()
        db = Database.open(dir, { ...opts, checkpointOnClose: false })
        sim.db = db
        expect(db.stats().memory.cold.runs, 'still cold after a reopen').toBe(cold)
        sim.verify() // loads them from the files the manifest names
        expect(db.stats().memory.cold.loads).toBe(cold)
        expect(loaded + cold).toBeGreaterThan(2)
        sim.more(20)
        sim.verify()
      } finally {
        db.close()
        removeDir(dir)
      }
    }),
  )

  it('compaction: checkpoints merge history files (never more than 8), every version still replays, and a merge leaves a deleted run\'s versions out', async () => {
    const dir = makeTmpDir('in-mem-history')
    const opts = { durability: 'buffered' as const, checkpointBytes: 0 }
    let db = Database.open(dir, opts)
    try {
      const run = db.runs.begin({ name: 'kept' })
      const written: { version: number; key: string; i: number }[] = []
      let most = 0
      const round = async (c: number, also?: string) => {
        for (let i = 0; i < 40; i++) {
          const key = `k${i % 7}`
          written.push({ version: db.kv.put(run, key, c * 100 + i), key, i: c * 100 + i })
          if (also !== undefined) db.kv.put(also, key, i)
        }
        await db.checkpoint()
        const files = db.stats().memory.historyOnDisk.files
        most = Math.max(most, files)
        expect(files, `after checkpoint ${c}`).toBeLessThanOrEqual(8)
        expect(readdirSync(join(dir, 'history')).length, `files on disk after checkpoint ${c}`).toBe(files)
      }
      for (let c = 0; c < 30; c++) await round(c)
      expect(most).toBe(8) // merges happened, at the limit
      // A run whose history lands in the newest files, then deleted.
      const gone = db.runs.begin({ name: 'deleted later' })
      for (let c = 30; c < 33; c++) await round(c, gone)
      const before = db.stats().memory.historyOnDisk.versions
      db.runs.delete(gone)
      for (let c = 33; c < 40; c++) await round(c)
      // The kept run moved 7 × 40 more versions to disk meanwhile; the
      // deleted run had 40 versions in each of the newest files, and the
      // merge of those (size-tiered: the newest files first) left them out.
      const after = db.stats().memory.historyOnDisk.versions
      expect(after, 'versions on disk: the deleted run\'s were left out of a merge').toBeLessThanOrEqual(before + 7 * 40 - 40)
      const check = (d: Database) => {
        for (const w of written) expect(d.replay(run, { at: w.version }).kv.get(w.key), `${w.key} at ${w.version}`).toBe(w.i)
        expect(d.runs.log(run).length).toBe(written.length)
      }
      check(db)
      db.close()
      db = Database.open(dir, opts)
      check(db)
    } finally {
      db.close()
      removeDir(dir)
    }
  })

  it('a worker replays old versions while the main thread\'s checkpoints move them to history files and merge those: every answer right', async () => {
    const dir = makeTmpDir('in-mem-history')
    const opts = { durability: 'buffered' as const, checkpointBytes: 0 }
    const db = Database.open(dir, opts)
    try {
      const run = db.runs.begin()
      const keys = 5
      const versions: number[] = []
      for (let i = 0; i < 2000; i++) versions.push(db.kv.put(run, `k${i % keys}`, i))
      const flag = new SharedArrayBuffer(4)
      const { result } = runWorker<number>('history-replayer.cjs', { dir, run, versions, keys, flag })
      let most = 0
      for (let c = 0; c < 30; c++) {
        for (let i = 0; i < 200; i++) db.kv.put(run, `k${i % keys}`, -1)
        await db.checkpoint()
        most = Math.max(most, db.stats().memory.historyOnDisk.files)
      }
      Atomics.store(new Int32Array(flag), 0, 1)
      const checked = await result
      expect(checked).toBeGreaterThan(50)
      expect(most).toBe(8) // merges happened while it read
      expect(db.stats().memory.historyVersions).toBeLessThan(keys + 1)
    } finally {
      db.close()
      removeDir(dir)
    }
  })

  it('a directory written before history files (format 1 checkpoint, every version in the image) opens with every version, and its next checkpoint moves them to disk though nothing was committed', async () => {
    const dir = makeTmpDir('in-mem-history')
    cpSync(join(__dirname, 'fixtures', 'format1-history'), dir, { recursive: true })
    const { run, writes } = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'format1-history.json'), 'utf8')) as { run: string; writes: { version: number; key: string; i: number }[] }
    const check = (d: Database) => {
      for (const w of writes) expect(d.replay(run, { at: w.version }).kv.get(w.key), `${w.key} at ${w.version}`).toEqual({ i: w.i })
    }
    let db = Database.open(dir)
    try {
      expect(db.stats().memory.historyVersions).toBe(392) // loaded from the image
      check(db)
      const report = await db.checkpoint()
      expect(report?.unchanged, 'written again: its image held older versions').toBe(false)
      expect(db.stats().memory.historyVersions).toBe(0)
      expect(db.stats().memory.historyOnDisk.versions).toBe(392)
      check(db)
      expect((await db.checkpoint())?.unchanged).toBe(true) // and now there is nothing to do
      db.close()
      db = Database.open(dir)
      expect(db.stats().memory.historyVersions).toBe(0)
      check(db)
      expect((await db.checkpoint())?.unchanged).toBe(true)
    } finally {
      db.close()
      removeDir(dir)
    }
  })

  it(
    'history survives close, reopen and checkpoints: replay after a reopen matches what was observed before it (durable)',
    withSeed('durable property', async (seed) => {
      const dir = makeTmpDir('in-mem-history')
      // small checkpointBytes: background checkpoints happen while the runs are written too
      const opts = { durability: 'buffered' as const, checkpointBytes: 16 * 1024 }
      let db = Database.open(dir, opts)
      try {
        defineMachines(db)
        const sim = new Sim(db, new Rng(seed))
        for (let f = 0; f < 3; f++) sim.family(f, () => sim.r.range(20, 40))
        db.close() // checkpointOnClose (default): the image must carry every version of run data
        db = Database.open(dir, opts)
        sim.db = db
        sim.verify()
        sim.more(50) // the same runs go on after the reopen
        sim.family(3, () => sim.r.range(20, 40))
        const report = await db.checkpoint()
        expect(report).not.toBeNull()
        sim.more(25)
        db.close()
        db = Database.open(dir, { ...opts, checkpointOnClose: false }) // recovery from checkpoint + WAL tail
        sim.db = db
        sim.verify()
        expect(sim.runs.length).toBeGreaterThanOrEqual(4)
      } finally {
        db.close()
        removeDir(dir)
      }
    }),
  )
})

// ---------------------------------------------------------------------------
// 2. Fork

describe('fork', () => {
  let db: Database
  beforeEach(() => {
    db = Database.open()
    defineMachines(db)
  })
  afterEach(() => {
    db.close()
  })

  it('copies no values: forking a run of 100K keys adds only the run-table entries, and the fork sees every key', () => {
    const parent = db.runs.begin({ name: 'big' })
    const entries: [string, Value][] = []
    for (let i = 0; i < 100_000; i++) entries.push([`key${String(i).padStart(6, '0')}`, i])
    db.kv.putMany(parent, entries)
    const before = db.stats()
    const t0 = performance.now()
    const fork = db.runs.fork(parent)
    const took = performance.now() - t0
    const after = db.stats()
    expect(after.keys - before.keys, 'keys added by the fork').toBeGreaterThan(0)
    expect(after.keys - before.keys, 'keys added by the fork').toBeLessThanOrEqual(8)
    expect(after.runs).toBe(before.runs + 1)
    expect(took, 'fork time (ms) must not grow with the parent').toBeLessThan(100)
    expect(db.kv.count(fork)).toBe(100_000)
    expect(db.kv.get(fork, 'key000000')).toBe(0)
    expect(db.kv.get(fork, 'key099999')).toBe(99_999)
    expect(db.kv.getMany(fork, ['key050000', 'key077777', 'nope'])).toStrictEqual([50_000, 77_777, undefined])
    expect(db.kv.list(fork, { prefix: 'key04999' })).toHaveLength(10)
    // a write on each side after the fork is a handful of keys, and stays on its side
    db.kv.put(fork, 'key000001', 'fork')
    db.kv.delete(fork, 'key000002')
    db.kv.put(parent, 'key000003', 'parent')
    expect(db.stats().keys - after.keys).toBeLessThanOrEqual(3)
    expect(db.kv.get(parent, 'key000001')).toBe(1)
    expect(db.kv.get(parent, 'key000002')).toBe(2)
    expect(db.kv.get(fork, 'key000003')).toBe(3)
    expect(db.kv.get(parent, 'key000003')).toBe('parent')
    expect(db.kv.get(fork, 'key000001')).toBe('fork')
    expect(db.kv.count(fork, { prefix: 'key00000' })).toBe(9)
    expect(db.kv.list(fork, { prefix: 'key00000' })).toStrictEqual(['key000000', 'key000001', 'key000003', 'key000004', 'key000005', 'key000006', 'key000007', 'key000008', 'key000009'])
    expect(db.kv.count(parent, { prefix: 'key00000' })).toBe(10)
  })

  it('writes to the fork never touch the parent, nor the other way round, for every primitive', () => {
    const p = db.runs.begin({ name: 'parent', tags: ['x'], metadata: { m: 1 } })
    const ps = db.scope(p)
    ps.kv.putMany({ a: 1, b: 2, c: 3 })
    ps.state.init('cell', 'p0')
    ps.json.set('doc', '$', { x: 1, y: { z: 2 } })
    const root = ps.traces.record({ type: 'thought', data: { content: 'root' }, tags: ['t1'] })
    ps.machines.create('m', { machine: 'order' })
    for (let i = 0; i < 3; i++) ps.events.append('p', { i })
    const parentEvents = ps.events.range()
    const f = db.runs.fork(p)
    const fs = db.scope(f)
    const info = db.runs.get(f)!
    expect(info).toMatchObject({ status: 'active', parent: p, name: 'parent', tags: ['x'], metadata: { m: 1 } })
    expect(fs.events.range()).toStrictEqual(parentEvents)

    // the fork writes: a delete hides the parent's key in the fork only
    fs.kv.delete('a')
    fs.kv.put('b', 'fork')
    fs.kv.put('f', 'fork only')
    fs.state.set('cell', 'f1')
    fs.json.set('doc', '$.y.z', 'fork')
    const fchild = fs.traces.record({ type: 'decision', parent: root, data: { question: 'q', options: [1, 2], chosen: 2 } })
    fs.machines.apply('m', 'pay', { payload: { amount: 10 } })
    // the parent writes
    ps.kv.delete('c')
    ps.kv.put('p', 'parent only')
    ps.state.set('cell', 'p1')
    ps.json.merge('doc', '$', { w: true })
    const pchild = ps.traces.record({ type: 'thought', parent: root, data: { content: 'parent child' } })
    ps.machines.apply('m', 'cancel')

    expect(fs.kv.entries()).toStrictEqual([['b', 'fork'], ['c', 3], ['f', 'fork only']])
    expect(ps.kv.entries()).toStrictEqual([['a', 1], ['b', 2], ['p', 'parent only']])
    expect(fs.kv.exists('a')).toBe(false)
    expect(fs.kv.getVersioned('a')).toBeUndefined()
    expect(fs.kv.count()).toBe(3)
    expect(fs.state.get('cell')!.value).toBe('f1')
    expect(fs.state.get('cell')!.version).toBe(2)
    expect(ps.state.get('cell')!.value).toBe('p1')
    expect(ps.state.get('cell')!.version).toBe(2)
    expect(fs.json.get('doc')).toStrictEqual({ x: 1, y: { z: 'fork' } })
    expect(ps.json.get('doc')).toStrictEqual({ x: 1, y: { z: 2 }, w: true })
    expect(fs.traces.children(root).map((t) => t.id)).toStrictEqual([fchild])
    expect(ps.traces.children(root).map((t) => t.id)).toStrictEqual([pchild])
    expect(fs.traces.get(pchild)).toBeUndefined()
    expect(ps.traces.get(fchild)).toBeUndefined()
    expect(fs.traces.query({ tag: 't1' }).map((t) => t.id)).toStrictEqual([root])
    expect(fs.machines.get('m')!.state).toBe('paid')
    expect(ps.machines.get('m')!.state).toBe('cancelled')

    // events: both continue from the fork point; each chain is valid on its own
    const fe = fs.events.append('f', { side: 'fork' })
    const pe = ps.events.append('p', { side: 'parent' })
    // the machine transitions appended one event on each side first
    expect(fe.sequence).toBe(4)
    expect(pe.sequence).toBe(4)
    expect(fs.events.length()).toBe(5)
    expect(ps.events.length()).toBe(5)
    expect(fs.events.range({ to: 3 })).toStrictEqual(parentEvents)
    expect(fs.events.get(3)!.prevHash).toBe(parentEvents[2].hash)
    expect(ps.events.get(3)!.prevHash).toBe(parentEvents[2].hash)
    expect(fs.events.get(3)!.payload).toMatchObject({ event: 'pay', to: 'paid' })
    expect(ps.events.get(3)!.payload).toMatchObject({ event: 'cancel', to: 'cancelled' })
    expect(fs.events.verify()).toStrictEqual({ valid: true, length: 5 })
    expect(ps.events.verify()).toStrictEqual({ valid: true, length: 5 })
    expect(fs.events.head()!.hash).toBe(fe.hash)
  })

  it('a transaction on the fork does not conflict with the parent writing the keys it read through, nor the other way round', () => {
    const p = db.runs.begin()
    db.kv.putMany(p, { a: 1, b: 2 })
    const f = db.runs.fork(p)
    const seen = db.transaction(
      f,
      (tx) => {
        const a = tx.kv.get('a')
        db.kv.put(p, 'a', 100) // the parent moves on while the fork's transaction runs
        tx.kv.put('b', 'from fork')
        return a
      },
      { retries: 0 },
    )
    expect(seen).toBe(1)
    expect(db.kv.get(f, 'a')).toBe(1)
    db.transaction(
      p,
      (tx) => {
        expect(tx.kv.get('b')).toBe(2)
        db.kv.put(f, 'b', 'again')
        tx.kv.put('a', 200)
      },
      { retries: 0 },
    )
    expect(db.kv.entries(p)).toStrictEqual([['a', 200], ['b', 2]])
    expect(db.kv.entries(f)).toStrictEqual([['a', 1], ['b', 'again']])
  })

  it('fork at a past version shows the parent as it was then; a fork of a fork chains; lineage records the parents', () => {
    const p = db.runs.begin({ name: 'root run' })
    db.kv.put(p, 'k', 1)
    db.events.append(p, 'e', 0)
    const v1 = db.stats().version
    db.kv.put(p, 'k', 2)
    db.kv.put(p, 'later', true)
    db.events.append(p, 'e', 1)
    db.kv.delete(p, 'k')
    const f = db.runs.fork(p, { at: v1, name: 'past' })
    expect(db.runs.get(f)!.name).toBe('past')
    expect(db.kv.entries(f)).toStrictEqual([['k', 1]])
    expect(db.events.length(f)).toBe(1)
    expect(db.events.append(f, 'e', 'fork').sequence).toBe(1)
    expect(db.events.verify(f)).toStrictEqual({ valid: true, length: 2 })
    db.kv.put(f, 'own', 'f')
    const v2 = db.stats().version
    db.kv.put(f, 'k', 'changed in f')
    const ff = db.runs.fork(f, { at: v2 })
    expect(db.kv.entries(ff)).toStrictEqual([['k', 1], ['own', 'f']])
    expect(db.events.range(ff).map((e) => e.payload)).toStrictEqual([0, 'fork'])
    db.kv.put(ff, 'k', 'ff')
    expect(db.kv.get(f, 'k')).toBe('changed in f')
    expect(db.kv.get(p, 'k')).toBeUndefined()
    expect(db.runs.lineage(ff).map((i) => i.id)).toStrictEqual([ff, f, p])
    expect(db.runs.get(ff)!.parent).toBe(f)
    // Every way of reading a run tells a fork's starting point; a run that
    // is no fork has none.
    expect(db.runs.get(f)!.forkedAt).toBe(v1)
    expect(db.runs.get(ff)!.forkedAt).toBe(v2)
    expect(db.runs.get(p)!.forkedAt).toBeUndefined()
    expect(db.runs.lineage(ff).map((i) => i.forkedAt)).toStrictEqual([v2, v1, undefined])
    expect(db.runs.list({ parent: f })[0].forkedAt).toBe(v2)
    expect(db.runs.children(p)[0].forkedAt).toBe(v1)
    expect(db.runs.update(ff, { tags: ['t'] }).forkedAt).toBe(v2)
    expect(db.runs.children(p).map((i) => i.id)).toStrictEqual([f])
    expect(db.runs.list({ parent: f }).map((i) => i.id)).toStrictEqual([ff])
    // replay of the grandchild: the grandparent's part up to the first fork point
    const view = db.replay(ff)
    expect(view.kv.entries()).toStrictEqual([['k', 'ff'], ['own', 'f']])
    expect(view.events.range().map((e) => e.payload)).toStrictEqual([0, 'fork'])
    view.close()
    const early = db.replay(ff, { at: v2 })
    expect(early.kv.entries()).toStrictEqual([['k', 1], ['own', 'f']])
    early.close()
  })

  it("machine idempotency keys used before the fork point are the fork's too; later ones are not", () => {
    const p = db.runs.begin()
    db.machines.create(p, 'm', { machine: 'order' })
    const first = db.machines.apply(p, 'm', 'pay', { payload: { amount: 10 }, idempotencyKey: 'pay-once' })
    expect(first.applied).toBe(true)
    const f = db.runs.fork(p)
    db.machines.apply(p, 'm', 'ship', { idempotencyKey: 'ship-once' })
    const again = db.machines.apply(f, 'm', 'pay', { payload: { amount: 10 }, idempotencyKey: 'pay-once' })
    expect(again).toStrictEqual({ ...first, applied: false })
    const shipped = db.machines.apply(f, 'm', 'ship', { idempotencyKey: 'ship-once' })
    expect(shipped.applied).toBe(true)
    expect(shipped.revision).toBe(3)
    expect(db.machines.get(p, 'm')!.revision).toBe(3)
    expect(db.events.length(f)).toBe(2)
    expect(db.events.length(p)).toBe(2)
    expect(db.events.get(f, 1)!.payload).toMatchObject({ event: 'ship', revision: 3 })
    expect(db.events.verify(f)).toStrictEqual({ valid: true, length: 2 })
  })

  it('deleting a fork leaves its parent whole; a deleted run cannot be forked', () => {
    const p = db.runs.begin()
    db.kv.putMany(p, { a: 1, b: 2 })
    db.events.append(p, 'e', 0)
    const f = db.runs.fork(p)
    db.kv.put(f, 'c', 3)
    expect(db.runs.delete(f)).toBe(true)
    expect(db.kv.entries(p)).toStrictEqual([['a', 1], ['b', 2]])
    expect(db.events.verify(p)).toStrictEqual({ valid: true, length: 1 })
    expect(db.runs.get(f)).toBeUndefined()
    expectError(() => db.runs.fork(f), NotFoundError, 'NOT_FOUND')
    const view = db.replay(p)
    expect(view.kv.entries()).toStrictEqual([['a', 1], ['b', 2]])
    view.close()
  })

  it('a fork of an ended run is active and writable; the ended parent stays as it was', () => {
    const p = db.runs.begin()
    db.kv.put(p, 'a', 1)
    db.runs.complete(p)
    const f = db.runs.fork(p)
    expect(db.runs.get(f)!.status).toBe('active')
    db.kv.put(f, 'a', 2)
    expect(db.kv.get(p, 'a')).toBe(1)
    expectError(() => db.kv.put(p, 'a', 3), RunClosedError, 'RUN_CLOSED')
  })

  it('errors: unknown run, at past the newest version, bad names and bad at values; nothing is written', () => {
    const p = db.runs.begin({ name: 'p' })
    db.kv.put(p, 'a', 1)
    const before = db.stats()
    expectError(() => db.runs.fork(UNKNOWN_RUN), NotFoundError, 'NOT_FOUND')
    expectError(() => db.runs.fork('not a run id'), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.runs.fork(p, { at: before.version + 1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.runs.fork(p, { at: Number.MAX_SAFE_INTEGER }), InvalidArgumentError, 'INVALID_ARGUMENT')
    for (const at of [-1, 1.5, Number.NaN, Infinity, '3', null, 2 ** 53]) {
      // @ts-expect-error deliberately wrong types
      expectError(() => db.runs.fork(p, { at }), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
    for (const name of [42, null, {}, ['n']]) {
      // @ts-expect-error deliberately wrong types
      expectError(() => db.runs.fork(p, { name }), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
    // @ts-expect-error deliberately wrong types
    expectError(() => db.runs.fork(p, 'at 3'), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.runs.fork(p, { name: 'n'.repeat(257) }), LimitError, 'LIMIT_EXCEEDED')
    const after = db.stats()
    expect(after.version).toBe(before.version)
    expect(after.runs).toBe(before.runs)
    expect(after.keys).toBe(before.keys)
    // at = the newest version and at = 0 are both fine
    expect(db.kv.entries(db.runs.fork(p, { at: before.version }))).toStrictEqual([['a', 1]])
    expect(db.kv.entries(db.runs.fork(p, { at: 0 }))).toStrictEqual([])
  })

  it('a fork survives close and reopen of a durable database, with and without the checkpoint on close', async () => {
    for (const checkpointOnClose of [true, false]) {
      const dir = makeTmpDir('in-mem-fork')
      try {
        let d = Database.open(dir, { checkpointOnClose })
        const p = d.runs.begin({ name: 'p' })
        d.kv.putMany(p, { a: 1, b: 2 })
        d.events.append(p, 'e', 0)
        d.state.init(p, 'cell', 1)
        const at = d.stats().version
        d.kv.put(p, 'a', 'after the fork point')
        const f = d.runs.fork(p, { at })
        d.kv.put(f, 'b', 'fork')
        d.events.append(f, 'e', 'fork')
        if (checkpointOnClose) await d.checkpoint()
        d.kv.put(p, 'c', 3)
        d.close()
        d = Database.open(dir)
        const check = (): void => {
          expect(d.runs.get(f)!.parent, `checkpointOnClose ${checkpointOnClose}`).toBe(p)
          expect(d.kv.entries(f)).toStrictEqual([['a', 1], ['b', 'fork']])
          expect(d.kv.entries(p)).toStrictEqual([['a', 'after the fork point'], ['b', 2], ['c', 3]])
          expect(d.events.range(f).map((e) => e.payload)).toStrictEqual([0, 'fork'])
          expect(d.events.verify(f)).toStrictEqual({ valid: true, length: 2 })
          expect(d.state.get(f, 'cell')!.value).toBe(1)
          const view = d.replay(f)
          expect(view.kv.entries()).toStrictEqual([['a', 1], ['b', 'fork']])
          view.close()
        }
        check()
        d.kv.put(f, 'd', 'after reopen')
        expect(d.kv.get(p, 'd')).toBeUndefined()
        await d.checkpoint()
        d.close()
        d = Database.open(dir)
        expect(d.kv.get(f, 'd')).toBe('after reopen')
        d.kv.delete(f, 'd')
        check()
        d.close()
      } finally {
        removeDir(dir)
      }
    }
  })
})

describe('fork of a deleted parent', () => {
  // runs.delete(parent) leaves children in place ("their lineage ends
  // here"); what a fork inherited must stay readable, in memory, after a
  // WAL-only reopen and after a checkpoint (which once carried history only
  // for the keys of existing runs, so the fork came back empty).
  it('a fork of a deleted parent, and a fork of a deleted fork, keep what they inherited through a checkpoint and reopen', async () => {
    for (const checkpoint of [true, false]) {
      const dir = makeTmpDir('in-mem-fork-orphan')
      try {
        let d = Database.open(dir, { checkpointOnClose: checkpoint })
        const p = d.runs.begin()
        d.kv.put(p, 'a', 1)
        d.events.append(p, 'e', 0)
        d.state.init(p, 'cell', 'p')
        const f = d.runs.fork(p)
        d.kv.put(f, 'own', 2)
        const ff = d.runs.fork(f)
        d.kv.put(ff, 'deeper', 3)
        d.kv.put(p, 'later', 'not inherited')
        expect(d.runs.delete(p)).toBe(true)
        const check = (what: string): void => {
          expect(d.kv.entries(f), what).toStrictEqual([['a', 1], ['own', 2]])
          expect(d.events.verify(f), what).toStrictEqual({ valid: true, length: 1 })
          expect(d.state.get(f, 'cell')?.value, what).toBe('p')
          expect(d.kv.entries(ff), what).toStrictEqual([['a', 1], ['deeper', 3], ['own', 2]])
          const view = d.replay(ff)
          expect(view.kv.entries(), what).toStrictEqual([['a', 1], ['deeper', 3], ['own', 2]])
          expect(view.events.length(), what).toBe(1)
          view.close()
        }
        check('in memory, parent deleted')
        expect(d.runs.delete(f)).toBe(true)
        expect(d.kv.entries(ff)).toStrictEqual([['a', 1], ['deeper', 3], ['own', 2]])
        if (checkpoint) await d.checkpoint()
        d.close()
        d = Database.open(dir, { checkpointOnClose: checkpoint })
        expect(d.runs.get(p)).toBeUndefined()
        expect(d.runs.get(f)).toBeUndefined()
        expect(d.kv.entries(ff), `after reopen (checkpoint: ${checkpoint})`).toStrictEqual([['a', 1], ['deeper', 3], ['own', 2]])
        expect(d.events.verify(ff)).toStrictEqual({ valid: true, length: 1 })
        const view = d.replay(ff)
        expect(view.kv.entries()).toStrictEqual([['a', 1], ['deeper', 3], ['own', 2]])
        view.close()
        d.close()
      } finally {
        removeDir(dir)
      }
    }
  })
})

// ---------------------------------------------------------------------------
// 3. Diff

type Keyed = { key: string }
const byKey = (a: Keyed, b: Keyed): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

function sortedDiff(d: RunDiff): RunDiff {
  const s = <T extends { added: Keyed[]; removed: Keyed[]; changed: Keyed[] }>(c: T): T => ({
    ...c,
    added: [...c.added].sort(byKey),
    removed: [...c.removed].sort(byKey),
    changed: [...c.changed].sort(byKey),
  })
  return { ...d, kv: s(d.kv), state: s(d.state), json: s(d.json), traces: s(d.traces), machines: s(d.machines), vectors: s(d.vectors) }
}

const none = { added: [], removed: [], changed: [] }

describe('diff', () => {
  let db: Database
  beforeEach(() => {
    db = Database.open()
    defineMachines(db)
  })
  afterEach(() => {
    db.close()
  })

  function seeded(): RunId {
    const p = db.runs.begin({ name: 'p' })
    const s = db.scope(p)
    s.kv.putMany({ keep: 1, chg: 'old', gone: true, same: [1, 2], bytes: new Uint8Array([1, 2, 3]), big: 12345678901234n })
    s.state.init('s1', 1)
    s.state.init('s2', 'x')
    s.state.init('s3', 0)
    s.json.set('doc1', '$', { a: 1, b: { c: 2 } })
    s.json.set('doc2', '$', { z: 1 })
    const t1 = s.traces.record({ type: 'thought', data: { content: 'root' }, tags: ['t1'] })
    s.traces.record({ type: 'decision', parent: t1, data: { question: 'q', options: ['a', 'b'], chosen: 'a' } })
    s.machines.create('m1', { machine: 'order', context: { total: 5 } })
    s.machines.create('m2', { machine: 'toggle' })
    s.events.append('start', { n: 0 })
    s.events.append('step', { n: 1 })
    return p
  }

  it('a fresh fork is the same as its parent', () => {
    const p = seeded()
    const f = db.runs.fork(p)
    const d = db.diff(p, f)
    expect(d).toStrictEqual({ a: p, b: f, kv: none, state: none, json: none, traces: none, machines: none, vectors: none, events: { common: 2, a: [], b: [] }, same: true })
    expect(db.diff(f, p).same).toBe(true)
  })

  it('reports exactly the changes made after the fork, on either side, with both values', () => {
    const p = seeded()
    const f = db.runs.fork(p)
    const fs = db.scope(f)
    const ps = db.scope(p)
    const [t1] = ps.traces.roots()
    const m1Before = ps.machines.get('m1')!
    const m2Before = ps.machines.get('m2')!
    // kv: one added, one removed, one changed; rewriting an equal value is no change
    fs.kv.put('added', { n: 1 })
    fs.kv.delete('gone')
    fs.kv.put('chg', 'new')
    fs.kv.put('same', [1, 2])
    fs.kv.put('bytes', new Uint8Array([1, 2, 3]))
    ps.kv.put('ponly', 5)
    // state: compared by value (a new version of an equal value is no change)
    fs.state.set('s1', 2)
    fs.state.init('s4', 'new')
    fs.state.delete('s2')
    fs.state.set('s3', 0)
    // json: whole documents
    fs.json.set('doc1', '$.b.c', 3)
    fs.json.set('doc3', '$', { n: 1 })
    // traces: one added in the fork (a child of an inherited trace), one in the parent
    const ft = fs.traces.record({ type: 'tool_call', parent: t1.id, data: { tool: 'search', arguments: { q: 'x' } } })
    const pt = ps.traces.record({ type: 'error', data: { message: 'parent only' } })
    // machines: one changed in the fork, one created only in the parent
    fs.machines.apply('m1', 'pay', { payload: { amount: 50 } })
    ps.machines.create('m3', { machine: 'toggle' })
    // events on both sides
    const pe = ps.events.append('p-side', { n: 'p' })
    const fe = fs.events.append('f-side', { n: 'f' })

    const d = sortedDiff(db.diff(p, f))
    const expected: RunDiff = {
      a: p,
      b: f,
      kv: {
        added: [{ key: 'added', value: { n: 1 } }],
        removed: [
          { key: 'gone', value: true },
          { key: 'ponly', value: 5 },
        ],
        changed: [{ key: 'chg', a: 'old', b: 'new' }],
      },
      state: {
        added: [{ key: 's4', value: 'new' }],
        removed: [{ key: 's2', value: 'x' }],
        changed: [{ key: 's1', a: 1, b: 2 }],
      },
      json: {
        added: [{ key: 'doc3', value: { n: 1 } }],
        removed: [],
        changed: [{ key: 'doc1', a: { a: 1, b: { c: 2 } }, b: { a: 1, b: { c: 3 } } }],
      },
      traces: {
        added: [{ key: ft, value: db.traces.get(f, ft)! }],
        removed: [{ key: pt, value: db.traces.get(p, pt)! }],
        changed: [],
      },
      machines: {
        added: [],
        removed: [{ key: 'm3', value: db.machines.get(p, 'm3')! }],
        changed: [{ key: 'm1', a: m1Before, b: db.machines.get(f, 'm1')! }],
      },
      vectors: { added: [], removed: [], changed: [] },
      events: { common: 2, a: [db.events.get(p, 2)!], b: [db.events.get(f, 2)!, db.events.get(f, 3)!] },
      same: false,
    }
    expect(d).toStrictEqual(sortedDiff(expected))
    expect(d.events.a[0].hash).toBe(pe.hash)
    expect(d.events.b[0].payload).toMatchObject({ instance: 'm1', event: 'pay' })
    expect(d.events.b[1].hash).toBe(fe.hash)
    expect(d.machines.changed[0].a.state).toBe('new')
    expect(d.machines.changed[0].b.state).toBe('paid')
    expect(db.machines.get(f, 'm2')).toStrictEqual(m2Before)

    // the other way round mirrors it
    const back = sortedDiff(db.diff(f, p))
    const swap = <T>(c: { added: { key: string; value: T }[]; removed: { key: string; value: T }[]; changed: { key: string; a: T; b: T }[] }) => ({
      added: c.removed,
      removed: c.added,
      changed: c.changed.map((x) => ({ key: x.key, a: x.b, b: x.a })),
    })
    expect(back).toStrictEqual(
      sortedDiff({
        a: f,
        b: p,
        kv: swap(expected.kv),
        state: swap(expected.state),
        json: swap(expected.json),
        traces: swap(expected.traces),
        machines: swap(expected.machines),
        vectors: swap(expected.vectors),
        events: { common: 2, a: expected.events.b, b: expected.events.a },
        same: false,
      }),
    )
  })

  it('events only on one side: the other tail is empty; undoing a kv change makes the runs the same again', () => {
    const p = seeded()
    const f = db.runs.fork(p)
    db.kv.put(f, 'keep', 2)
    expect(db.diff(p, f).kv.changed).toStrictEqual([{ key: 'keep', a: 1, b: 2 }])
    db.kv.put(f, 'keep', 1)
    expect(db.diff(p, f).same).toBe(true)
    db.events.append(f, 'more', null)
    const d = db.diff(p, f)
    expect(d.same).toBe(false)
    expect(d.events.common).toBe(2)
    expect(d.events.a).toStrictEqual([])
    expect(d.events.b.map((e) => e.type)).toStrictEqual(['more'])
  })

  it('an expired kv entry is not reported', async () => {
    const p = seeded()
    const f = db.runs.fork(p)
    db.kv.put(f, 'ephemeral', 1, { ttlMs: 1 })
    await sleep(20)
    expect(db.diff(p, f).same).toBe(true)
  })

  it('two unrelated runs compare by user key too', () => {
    const a = db.runs.begin()
    const b = db.runs.begin()
    db.kv.putMany(a, { x: 1, y: 2 })
    db.kv.putMany(b, { y: 2, x: 1, z: 3 })
    db.state.init(a, 'c', 'same')
    db.state.set(b, 'c', 'same')
    const d = db.diff(a, b)
    expect(d.kv).toStrictEqual({ added: [{ key: 'z', value: 3 }], removed: [], changed: [] })
    expect(d.state).toStrictEqual(none)
    expect(d.events).toStrictEqual({ common: 0, a: [], b: [] })
    expect(d.same).toBe(false)
  })

  it('errors: a run with itself is InvalidArgumentError; an unknown run is NotFoundError', () => {
    const p = seeded()
    expectError(() => db.diff(p, p), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.diff(p, UNKNOWN_RUN), NotFoundError, 'NOT_FOUND')
    expectError(() => db.diff(UNKNOWN_RUN, p), NotFoundError, 'NOT_FOUND')
    expectError(() => db.diff(p, 'nope'), InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})

// ---------------------------------------------------------------------------
// 4. Run log

/** A commit's writes in a stable order, to compare without assuming one. */
const norm = (log: LoggedCommit[]): LoggedCommit[] =>
  log.map((c) => ({ version: c.version, writes: [...c.writes].sort((x, y) => (x.primitive + '\0' + x.key < y.primitive + '\0' + y.key ? -1 : 1)) }))

describe('run log', () => {
  let db: Database
  beforeEach(() => {
    db = Database.open()
    defineMachines(db)
  })
  afterEach(() => {
    db.close()
  })

  it('lists the commits that wrote the run, in order, with the primitive and key of each write; replay works at each', () => {
    const run = db.runs.begin()
    const other = db.runs.begin()
    const s = db.scope(run)
    const v = (): number => db.stats().version
    const observed = new Map<number, string>()
    const seen = (): void => {
      observed.set(v(), dump(s))
    }
    const expectedLog: LoggedCommit[] = []
    const w = (primitive: LoggedCommit['writes'][number]['primitive'], key: string, deleted = false) => ({ primitive, key, deleted })

    s.kv.put('a', 1)
    expectedLog.push({ version: v(), writes: [w('kv', 'a')] })
    seen()
    db.kv.put(other, 'noise', 1) // another run's commit is not in this log
    s.events.append('e', 'first')
    expectedLog.push({ version: v(), writes: [w('events', '0')] })
    seen()
    s.state.init('cell', 1)
    expectedLog.push({ version: v(), writes: [w('state', 'cell')] })
    seen()
    s.json.set('doc', '$.x', 1)
    expectedLog.push({ version: v(), writes: [w('json', 'doc')] })
    seen()
    const tid = s.traces.record({ type: 'thought', data: { content: 'hm' }, tags: ['t1'] })
    expectedLog.push({ version: v(), writes: [w('traces', tid)] })
    seen()
    s.machines.create('m1', { machine: 'order' })
    expectedLog.push({ version: v(), writes: [w('machines', 'm1')] })
    seen()
    s.machines.apply('m1', 'pay', { payload: { amount: 20 } })
    expectedLog.push({ version: v(), writes: [w('machines', 'm1'), w('events', '1')] })
    seen()
    s.kv.delete('a')
    expectedLog.push({ version: v(), writes: [w('kv', 'a', true)] })
    seen()
    s.kv.putMany({ p: 1, q: 2 })
    expectedLog.push({ version: v(), writes: [w('kv', 'p'), w('kv', 'q')] })
    seen()
    // a transaction is one commit with several writes
    db.transaction(run, (tx) => {
      tx.kv.put('x', 1)
      tx.kv.put('y', 2)
      tx.state.set('cell', 2)
      tx.events.append('t', null)
      tx.json.delete('doc', '$.x')
    })
    expectedLog.push({ version: v(), writes: [w('kv', 'x'), w('kv', 'y'), w('state', 'cell'), w('events', '2'), w('json', 'doc')] })
    seen()
    // nothing is logged for what did not commit
    const before = v()
    expect(() =>
      db.transaction(run, (tx) => {
        tx.kv.put('never', 1)
        throw new Error('roll back')
      }),
    ).toThrow('roll back')
    expect(s.state.cas('cell', 99, 'no')).toStrictEqual({ ok: false, version: 2 })
    expectError(() => s.state.init('cell', 0), AlreadyExistsError, 'ALREADY_EXISTS')
    expect(v()).toBe(before)
    s.state.delete('cell')
    expectedLog.push({ version: v(), writes: [w('state', 'cell', true)] })
    seen()

    const log = db.runs.log(run)
    expect(norm(log)).toStrictEqual(norm(expectedLog))
    expect(db.runs.log(other).map((c) => c.version)).toStrictEqual([expectedLog[0].version + 1])
    for (const c of log) {
      const view = db.replay(run, { at: c.version })
      expectSameDump(dump(view), observed.get(c.version)!, `replay at logged version ${c.version}`)
      view.close()
    }
  })

  it("a fork's log holds only its own commits; the parent's later commits are in neither the fork's log nor its replay", () => {
    const p = db.runs.begin()
    db.kv.put(p, 'a', 1)
    const f = db.runs.fork(p)
    expect(db.runs.log(f)).toStrictEqual([])
    db.kv.put(p, 'b', 2)
    db.kv.put(f, 'c', 3)
    const vc = db.stats().version
    expect(norm(db.runs.log(f))).toStrictEqual([{ version: vc, writes: [{ primitive: 'kv', key: 'c', deleted: false }] }])
    expect(db.runs.log(p).map((c) => c.version)).not.toContain(vc)
    const view = db.replay(f, { at: vc })
    expect(view.kv.entries()).toStrictEqual([['a', 1], ['c', 3]])
    view.close()
  })

  it('errors: an unknown or deleted run; the log is durable through close, reopen and a checkpoint', async () => {
    expectError(() => db.runs.log(UNKNOWN_RUN), NotFoundError, 'NOT_FOUND')
    expectError(() => db.runs.log('x'), InvalidArgumentError, 'INVALID_ARGUMENT')
    const gone = db.runs.begin()
    db.kv.put(gone, 'a', 1)
    db.runs.delete(gone)
    expectError(() => db.runs.log(gone), NotFoundError, 'NOT_FOUND')
    expectError(() => db.replay(gone), NotFoundError, 'NOT_FOUND')

    const dir = makeTmpDir('in-mem-runlog')
    try {
      let d = Database.open(dir)
      const run = d.runs.begin()
      for (let i = 0; i < 20; i++) {
        d.kv.put(run, `k${i % 4}`, i)
        if (i % 5 === 0) d.events.append(run, 'e', i)
      }
      await d.checkpoint()
      d.transaction(run, (tx) => {
        tx.kv.delete('k0')
        tx.state.init('s', 1)
      })
      const log = d.runs.log(run)
      expect(log.length).toBe(25)
      const states = log.map((c) => {
        const view = d.replay(run, { at: c.version })
        const out = dump(view)
        view.close()
        return out
      })
      d.close()
      d = Database.open(dir)
      expect(d.runs.log(run)).toStrictEqual(log)
      log.forEach((c, i) => {
        const view = d.replay(run, { at: c.version })
        expectSameDump(dump(view), states[i], `replay at ${c.version} after reopen`)
        view.close()
      })
      d.close()
    } finally {
      removeDir(dir)
    }
  })
})

// ---------------------------------------------------------------------------
// 5. RunView is read-only

describe('RunView is read-only', () => {
  let db: Database
  beforeEach(() => {
    db = Database.open()
    defineMachines(db)
  })
  afterEach(() => {
    db.close()
  })

  it('its type has no writes, and the replayed view refuses them at runtime (a replay view is read-only)', () => {
    const run = db.runs.begin()
    const s = db.scope(run)
    s.kv.put('a', 1)
    s.state.init('cell', 1)
    s.json.set('doc', '$', { x: 1 })
    const tid = s.traces.record({ type: 'thought', data: { content: 'x' } })
    s.machines.create('m', { machine: 'order' })
    s.events.append('e', 0)
    const live = dump(s)
    const version = db.stats().version
    const view = db.replay(run)
    expect(view.run).toBe(run)
    expect(view.at).toBe(version)
    const closed = (fn: () => unknown): void => {
      expect(expectError(fn, InvalidArgumentError, 'INVALID_ARGUMENT').message).toContain('replay view is read-only')
    }
    // @ts-expect-error a RunView has no kv.put
    closed(() => view.kv.put('a', 2))
    // @ts-expect-error a RunView has no kv.delete
    closed(() => view.kv.delete('a'))
    // @ts-expect-error a RunView has no kv.putMany
    closed(() => view.kv.putMany({ b: 1 }))
    // @ts-expect-error a RunView has no events.append
    closed(() => view.events.append('e', 1))
    // @ts-expect-error a RunView has no state.init
    closed(() => view.state.init('other', 1))
    // @ts-expect-error a RunView has no state.set
    closed(() => view.state.set('cell', 2))
    // @ts-expect-error a RunView has no state.cas
    closed(() => view.state.cas('cell', 1, 2))
    // @ts-expect-error a RunView has no state.delete
    closed(() => view.state.delete('cell'))
    // @ts-expect-error a RunView has no state.transition
    closed(() => view.state.transition('cell', () => 3))
    // @ts-expect-error a RunView has no json.set
    closed(() => view.json.set('doc', '$.y', 1))
    // @ts-expect-error a RunView has no json.merge
    closed(() => view.json.merge('doc', '$', { y: 1 }))
    // @ts-expect-error a RunView has no json.delete
    closed(() => view.json.delete('doc', '$.x'))
    // @ts-expect-error a RunView has no traces.record
    closed(() => view.traces.record({ type: 'thought', parent: tid, data: { content: 'y' } }))
    // @ts-expect-error a RunView has no machines.create
    closed(() => view.machines.create('m2', { machine: 'order' }))
    // @ts-expect-error a RunView has no machines.apply
    closed(() => view.machines.apply('m', 'pay', { payload: { amount: 10 } }))
    const assignAt = (): void => {
      // @ts-expect-error the shown version is fixed
      view.at = 1
    }
    expect(typeof assignAt).toBe('function')
    expectSameDump(dump(view), live, 'the view after refused writes')
    expectSameDump(dump(s), live, 'the live run after writes through the view')
    expect(db.stats().version).toBe(version)
    // a definition through the view stays in the replayed copy, if it is taken at all
    const sneaky = view.machines as unknown as ScopedMachines
    try {
      sneaky.define({ ...toggle(1), name: 'only-in-the-view' })
    } catch (e) {
      expect(e).toBeInstanceOf(InMemError)
    }
    expect(db.machines.getDefinition('only-in-the-view')).toBeUndefined()
    expect(db.stats().version).toBe(version)
    view.close()
    expectError(() => view.kv.get('a'), ClosedError, 'CLOSED')
    view.close() // twice is a no-op
    expect(s.kv.get('a')).toBe(1) // the live database is untouched by closing the view
  })

  it('replay errors: unknown run, at past the newest version, bad at values', () => {
    const run = db.runs.begin()
    db.kv.put(run, 'a', 1)
    const now = db.stats().version
    expectError(() => db.replay(UNKNOWN_RUN), NotFoundError, 'NOT_FOUND')
    expectError(() => db.replay('x'), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.replay(run, { at: now + 1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    for (const at of [-1, 0.5, Number.NaN, '1', null]) {
      // @ts-expect-error deliberately wrong types
      expectError(() => db.replay(run, { at }), InvalidArgumentError, 'INVALID_ARGUMENT')
    }
    // @ts-expect-error deliberately wrong types
    expectError(() => db.replay(run, 5), InvalidArgumentError, 'INVALID_ARGUMENT')
    const empty = db.replay(run, { at: 0 })
    expect(empty.kv.entries()).toStrictEqual([])
    empty.close()
  })
})
