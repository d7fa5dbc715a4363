// Cold runs (SPEC §17, issue 17 item 2): a run that has ended leaves memory
// at a checkpoint, into a cold file, and the first read that touches it
// loads it back whole — every primitive, the indexes (trace queries, vector
// graphs), the run log, replay, fork and diff answer as they did before it
// left. The manifest keeps the run cold across a reopen; a damaged cold file
// is a CorruptionError naming the file and the block, and `repair: true`
// handles it.
import { fork, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CorruptionError, Database, InvalidArgumentError, type OpenOptions, type RunId } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'

const COLD: OpenOptions = { durability: 'buffered', checkpointBytes: 0, coldAfterMs: 0 }

/** Everything a reader can see of `run`, through every primitive and the history reads. */
function look(db: Database, run: RunId, other: RunId): unknown {
  const view = db.replay(run, { at: db.runs.log(run)[3].version })
  const past = { kv: view.kv.entries(), cell: view.state.get('cell') }
  view.close()
  return {
    kv: db.kv.entries(run),
    k7: db.kv.get(run, 'k7'),
    count: db.kv.count(run),
    events: db.events.range(run),
    verify: db.events.verify(run),
    cell: db.state.get(run, 'cell'),
    cells: db.state.list(run),
    doc: db.json.get(run, 'doc'),
    docPath: db.json.get(run, 'doc', '$.items[1]'),
    machine: db.machines.get(run, 'm1'),
    machines: db.machines.list(run),
    decisions: db.traces.query(run, { type: 'decision' }),
    tagged: db.traces.query(run, { tag: 'kb' }),
    tree: db.traces.tree(run),
    near: db.vectors.search(run, 'notes', [1, 0.5, 0.25, 0], { k: 5 }),
    filtered: db.vectors.search(run, 'notes', [0, 1, 0, 0], { k: 3, filter: { even: true } }),
    log: db.runs.log(run).map((c) => c.version),
    past,
    diff: db.diff(run, other),
  }
}

/** A run with data in every primitive, history in some keys, ended. */
function fill(db: Database): RunId {
  const run = db.runs.begin({ name: 'finished', tags: ['cold'] })
  for (let i = 0; i < 40; i++) db.kv.put(run, `k${i}`, { i, text: `value ${i} `.repeat(8) })
  for (let v = 0; v < 5; v++) db.kv.put(run, 'k7', { v })
  for (let i = 0; i < 12; i++) db.events.append(run, i % 2 === 0 ? 'tool.called' : 'tool.result', { i })
  db.state.init(run, 'cell', 0)
  for (let i = 1; i < 4; i++) db.state.set(run, 'cell', i)
  db.json.set(run, 'doc', '$', { items: [1, 2, 3], owner: 'ada' })
  db.json.set(run, 'doc', '$.items[1]', 'two')
  db.machines.create(run, 'm1', { machine: 'toggle', context: { n: 0 } })
  db.machines.apply(run, 'm1', 'flip')
  const root = db.traces.record(run, { type: 'decision', data: { question: 'q', options: ['a', 'b'], chosen: 'a' } })
  db.traces.record(run, { type: 'tool_call', parent: root, tags: ['kb'], data: { tool: 'search', arguments: { q: 'x' } } })
  db.traces.record(run, { type: 'thought', tags: ['kb'], data: { content: 'hmm' } })
  db.vectors.create(run, 'notes', { dimension: 4 })
  // over 1,000 vectors: searches walk the graph (smaller collections are scanned)
  db.vectors.upsertMany(
    run,
    'notes',
    Array.from({ length: 1200 }, (_, i) => ({ id: `v${i}`, vector: [Math.sin(i), Math.cos(i), (i % 7) / 7, (i % 3) / 3], metadata: { even: i % 2 === 0 } })),
  )
  db.vectors.upsert(run, 'notes', 'v3', [1, 0.5, 0.25, 0], { even: false })
  db.runs.complete(run)
  return run
}

describe('cold runs', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTmpDir('in-mem-cold')
  })
  afterEach(() => removeDir(dir))

  function defineToggle(db: Database): void {
    db.machines.define({ name: 'toggle', version: 1, states: ['off', 'on'], initial: 'off', transitions: [{ from: 'off', event: 'flip', to: 'on' }, { from: 'on', event: 'flip', to: 'off' }] })
  }

  it('an ended run leaves memory at a checkpoint and every read answers as before: each primitive, trace and vector indexes, log, replay, fork, diff', async () => {
    const db = Database.open(dir, COLD)
    try {
      defineToggle(db)
      const run = fill(db)
      const other = db.runs.begin()
      db.kv.put(other, 'k1', 'x')
      const before = look(db, run, other)
      const resident = db.stats()
      await db.checkpoint()
      const after = db.stats()
      expect(after.memory.cold.runs).toBe(1)
      expect(after.memory.cold.files).toBe(1)
      expect(after.memory.cold.bytes).toBeGreaterThan(1200 * 16)
      expect(after.keys, 'its keys left memory').toBeLessThan(resident.keys - 1200)
      expect(after.memory.indexBytes, 'its vector graph left memory').toBeLessThan(resident.memory.indexBytes / 10)
      expect(readdirSync(join(dir, 'cold'))).toHaveLength(1)
      // the active run did not go
      expect(db.kv.get(other, 'k1')).toBe('x')
      expect(db.stats().memory.cold.runs).toBe(1)
      // the first read of it loads it back, whole
      expect(look(db, run, other)).toStrictEqual(before)
      const back = db.stats()
      expect(back.memory.cold).toMatchObject({ runs: 0, loads: 1 })
      expect(back.keys).toBe(resident.keys)
      // a fork of it reads through to it; so does a fork of it once it is cold again
      db.kv.put(other, 'k2', 'y')
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(1)
      const fork = db.runs.fork(run)
      expect(db.kv.get(fork, 'k7')).toStrictEqual({ v: 4 })
      expect(db.stats().memory.cold.runs).toBe(0)
      expect(db.kv.entries(fork)).toStrictEqual((before as { kv: unknown }).kv)
    } finally {
      db.close()
    }
  })

  it('every way into a cold run loads it: a point read, a list, a transaction, a trace query, a vector search, the run log, replay', async () => {
    const reads: [string, (db: Database, run: RunId) => unknown][] = [
      ['kv.get', (db, run) => db.kv.get(run, 'k3')],
      ['kv.exists', (db, run) => db.kv.exists(run, 'k3')],
      ['kv.getMany', (db, run) => db.kv.getMany(run, ['k3', 'k4'])],
      ['kv.list', (db, run) => db.kv.list(run).length],
      ['kv.count', (db, run) => db.kv.count(run)],
      ['state.list', (db, run) => db.state.list(run).length],
      ['events.verify', (db, run) => db.events.verify(run).valid],
      ['machines.list', (db, run) => db.machines.list(run).length],
      ['traces.tree', (db, run) => db.traces.tree(run).length],
      ['events.get', (db, run) => db.events.get(run, 4)],
      ['events.length', (db, run) => db.events.length(run)],
      ['state.get', (db, run) => db.state.get(run, 'cell')?.value],
      ['json.get', (db, run) => db.json.get(run, 'doc', '$.owner')],
      ['machines.get', (db, run) => db.machines.get(run, 'm1')?.state],
      ['traces.query', (db, run) => db.traces.query(run, { type: 'thought' }).length],
      ['traces.roots', (db, run) => db.traces.roots(run).length],
      ['vectors.search', (db, run) => db.vectors.search(run, 'notes', [1, 0.5, 0.25, 0], { k: 1 })[0].id],
      ['transaction', (db, run) => db.transaction(run, (tx) => tx.kv.get('k3'))],
      ['runs.log', (db, run) => db.runs.log(run).length],
      ['replay', (db, run) => {
        const v = db.replay(run)
        try {
          return v.kv.get('k3')
        } finally {
          v.close()
        }
      }],
    ]
    const db = Database.open(dir, COLD)
    try {
      defineToggle(db)
      const run = fill(db)
      const other = db.runs.begin()
      const expected = reads.map(([, read]) => read(db, run))
      for (const [i, [name, read]] of reads.entries()) {
        db.kv.put(other, 'tick', i) // a new version: the checkpoint may move the run out
        await db.checkpoint()
        expect(db.stats().memory.cold.runs, `${name}: cold before the read`).toBe(1)
        expect(read(db, run), name).toStrictEqual(expected[i])
        expect(db.stats().memory.cold.runs, `${name}: loaded by the read`).toBe(0)
      }
    } finally {
      db.close()
    }
  })

  it('stays cold across a reopen (the manifest names its file), loads on first read, and the CLI counts it', async () => {
    let db = Database.open(dir, COLD)
    defineToggle(db)
    const run = fill(db)
    const other = db.runs.begin()
    db.kv.put(other, 'k', 1)
    const before = look(db, run, other)
    await db.checkpoint()
    expect(db.stats().memory.cold.runs).toBe(1)
    db.close()
    // the CLI (a read-only open) counts it, and reads it back
    const cli = (...args: string[]) => spawnSync(process.execPath, [resolve('bin/in-mem.js'), ...args], { encoding: 'utf8', timeout: 60_000 })
    const stats = cli('stats', dir)
    expect(stats.status, stats.stderr).toBe(0)
    expect(stats.stdout).toMatch(/cold runs\s+1 out of memory .* in 1 cold file/)
    const shown = cli('replay', run, '--json', '--dir', dir)
    expect(shown.status, shown.stderr).toBe(0)
    expect(shown.stdout).toContain('"k7"')
    db = Database.open(dir, COLD)
    try {
      const s = db.stats()
      expect(s.memory.cold.runs).toBe(1)
      expect(s.memory.indexBytes, 'no vector graph of the cold run was loaded').toBeLessThan(100_000)
      expect(look(db, run, other)).toStrictEqual(before)
      expect(db.stats().memory.cold).toMatchObject({ runs: 0, loads: 1 })
      // archived while resident, it can go cold again, and a run of the
      // cold file that stayed cold still loads after another reopen
      db.runs.archive(run)
      db.kv.put(other, 'k', 2)
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(1)
    } finally {
      db.close()
    }
    db = Database.open(dir, { ...COLD, coldAfterMs: Infinity })
    try {
      expect(db.stats().memory.cold.runs).toBe(1)
      expect(db.runs.get(run)?.status).toBe('archived')
      expect(db.kv.get(run, 'k7')).toStrictEqual({ v: 4 })
      // with coldAfterMs: Infinity nothing goes cold
      db.kv.put(other, 'k', 3)
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(0)
    } finally {
      db.close()
    }
  })

  it("compaction: a cold file most of whose runs came back has its still-cold runs copied into the next checkpoint's file, and goes once no checkpoint needs it", async () => {
    const db = Database.open(dir, COLD)
    try {
      const runs: RunId[] = []
      for (let r = 0; r < 10; r++) {
        const run = db.runs.begin()
        for (let k = 0; k < 20; k++) db.kv.put(run, `k${k}`, { r, k, pad: 'p'.repeat(200) })
        db.runs.complete(run)
        runs.push(run)
      }
      const other = db.runs.begin()
      const tick = async (n: number) => {
        db.kv.put(other, 'tick', n)
        await db.checkpoint()
      }
      await tick(1)
      const files = () => readdirSync(join(dir, 'cold')).sort()
      const [first] = files()
      expect(files()).toHaveLength(1)
      expect(db.stats().memory.cold.runs).toBe(10)
      // 7 of the 10 come back (and go cold again, into a new file)
      for (const run of runs.slice(0, 7)) expect(db.kv.get(run, 'k0')).toMatchObject({ k: 0 })
      await tick(2)
      expect(db.stats().memory.cold.runs).toBe(10)
      // the first file's 3 still-cold runs were copied out with them
      const manifest = () => readFileSync(join(dir, 'MANIFEST'), 'utf8')
      const coldLines = () => [...manifest().matchAll(/^cold (\d+) ([0-9a-f]+) \d+ (\d+) \d+$/gm)].map((m) => ({ file: Number(m[1]), warm: Number(m[3]) }))
      const firstNumber = Number(first.slice(0, 20))
      expect(coldLines().filter((l) => l.file === firstNumber && l.warm === 0), 'no run is cold in the first file any more').toEqual([])
      expect(files(), 'kept while the previous checkpoint may need it').toContain(first)
      await tick(3)
      expect(files(), 'then it goes').not.toContain(first)
      expect(files()).toHaveLength(1)
      for (const [r, run] of runs.entries()) for (let k = 0; k < 20; k += 7) expect(db.kv.get(run, `k${k}`)).toStrictEqual({ r, k, pad: 'p'.repeat(200) })
      expect(db.stats().memory.cold.runs).toBe(0)
    } finally {
      db.close()
    }
  })

  it('worker threads read ended runs whole while the main thread and the maintenance thread move them out of memory and back at every checkpoint; whole again after a reopen', async () => {
    const { Worker } = await import('node:worker_threads')
    // maintenance rounds every 5 ms checkpoint too, beside the main thread's
    const options = { ...COLD, checkpointOnClose: false, purgeIntervalMs: 5 }
    let db = Database.open(dir, options)
    let runs: RunId[] = []
    try {
      for (let i = 0; i < 12; i++) {
        const run = db.runs.begin()
        db.transaction(run, (tx) => {
          for (let k = 0; k < 25; k++) tx.kv.put(`k${k}`, { run: i, k, pad: 'q'.repeat(100) })
          for (let e = 0; e < 3; e++) tx.events.append('step', { e })
        })
        db.runs.complete(run)
        runs = [...runs, run]
      }
      const live = db.runs.begin()
      const workers = Array.from({ length: 2 }, () => new Worker(resolve('test/fixtures/cold-reader.cjs'), { workerData: { dir, options, runs, keys: 25, rounds: 30 } }))
      const answers = workers.map((w) => once(w, 'message') as Promise<[{ reads?: number; error?: string }]>)
      const exits = workers.map((w) => once(w, 'exit')) // (listened for now: a worker may be gone before the answers are read)
      let finished = 0
      void Promise.all(answers).then(() => (finished = 1))
      let checkpoints = 0
      let tick = 0
      while (!finished) {
        db.kv.put(live, 'tick', tick++)
        await db.checkpoint() // every ended run not read since goes cold (coldAfterMs: 0)
        checkpoints++
        await new Promise((r) => setImmediate(r))
      }
      for (const [m] of await Promise.all(answers)) {
        expect(m.error).toBeUndefined()
        expect(m.reads).toBe(30 * 12 * 4)
      }
      await Promise.all(exits)
      const s = db.stats().memory.cold
      expect(checkpoints).toBeGreaterThan(5)
      expect(s.loads, 'runs were loaded back while the workers read').toBeGreaterThan(5)
    } finally {
      db.close()
    }
    // what the manifest names holds every run whole
    db = Database.open(dir, options)
    try {
      for (const [i, run] of runs.entries()) {
        const entries = db.kv.entries<{ run: number; k: number }>(run)
        expect(entries.length, `run ${i} after a reopen`).toBe(25)
        expect(entries.every(([k, v]) => v.run === i && k === `k${v.k}`)).toBe(true)
      }
    } finally {
      db.close()
    }
  })

  it('a run is deleted while cold: it is loaded, deleted whole, and its cold file goes once no checkpoint needs it', async () => {
    const db = Database.open(dir, COLD)
    try {
      defineToggle(db)
      const run = fill(db)
      const other = db.runs.begin()
      db.kv.put(other, 'k', 1)
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(1)
      expect(db.runs.delete(run)).toBe(true)
      expect(db.runs.get(run)).toBeUndefined()
      expect(db.stats().memory.cold.runs).toBe(0)
      for (let i = 0; i < 3; i++) {
        db.kv.put(other, 'k', i + 2)
        await db.checkpoint()
      }
      expect(readdirSync(join(dir, 'cold'))).toHaveLength(0)
      expect(db.stats().memory.cold.files).toBe(0)
    } finally {
      db.close()
    }
  })

  it('a writer that fills checkpointBytes of log starts a checkpoint at once, not at the next maintenance round: ended runs leave memory while it writes', async () => {
    // one round a minute: only the commit path can start these checkpoints in time
    const db = Database.open(dir, { ...COLD, checkpointBytes: 256 * 1024, purgeIntervalMs: 60_000 })
    try {
      const live = db.runs.begin()
      const ended: RunId[] = []
      for (let r = 0; r < 20; r++) {
        const run = db.runs.begin()
        db.kv.put(run, 'k', 'v'.repeat(1000))
        db.runs.complete(run)
        ended.push(run)
      }
      const deadline = Date.now() + 20_000
      let i = 0
      while (db.stats().memory.cold.runs < 20 && Date.now() < deadline) {
        db.kv.put(live, `k${i++}`, 'x'.repeat(2000)) // new keys: no history to move, only log
        if (i % 200 === 0) await new Promise((r) => setImmediate(r))
      }
      expect(db.stats().memory.cold.runs).toBe(20)
      expect(i * 2000, 'well before a minute of writing').toBeLessThan(64 << 20)
      for (const run of ended) expect(db.kv.get(run, 'k')).toBe('v'.repeat(1000))
    } finally {
      db.close()
    }
  })

  it('an ended run that is still being read stays in memory; once its reads stop for coldAfterMs it goes cold', async () => {
    // the maintenance round keeps the clock reads are timed by: every 20 ms here
    const db = Database.open(dir, { ...COLD, coldAfterMs: 600, purgeIntervalMs: 20 })
    try {
      const read = db.runs.begin()
      const idle = db.runs.begin()
      for (const run of [read, idle]) {
        db.kv.put(run, 'k', 'v')
        db.runs.complete(run)
      }
      const other = db.runs.begin()
      // keep reading one of them for longer than coldAfterMs, with checkpoints all the while
      const started = Date.now()
      let n = 0
      while (Date.now() - started < 1400) {
        expect(db.kv.get(read, 'k')).toBe('v')
        db.kv.put(other, 'tick', n++)
        if (n % 10 === 0) await db.checkpoint()
        await new Promise((r) => setTimeout(r, 10))
      }
      await db.checkpoint()
      const cold = () => db.stats().memory.cold
      expect(cold().runs, 'only the idle run went cold').toBe(1)
      expect(cold().loads).toBe(0)
      // reads stop: it goes cold once coldAfterMs has passed
      const deadline = Date.now() + 10_000
      while (cold().runs < 2 && Date.now() < deadline) {
        db.kv.put(other, 'tick', n++)
        await db.checkpoint()
        await new Promise((r) => setTimeout(r, 20))
      }
      expect(cold().runs).toBe(2)
      expect(db.kv.get(read, 'k')).toBe('v')
      expect(db.kv.get(idle, 'k')).toBe('v')
    } finally {
      db.close()
    }
  })

  it('an idle database (nothing written after the runs ended) still moves them out once coldAfterMs has passed, by itself or at db.checkpoint(), at the same version (only a cold file and the manifest are written; SIGKILL inside that: the compaction crash test below); cold across a reopen', async () => {
    const open = (o: OpenOptions) => Database.open(dir, { ...COLD, coldAfterMs: 300, purgeIntervalMs: 20, ...o })
    let db = open({})
    const runs: RunId[] = []
    let version: number
    try {
      for (let r = 0; r < 3; r++) {
        const run = db.runs.begin()
        db.kv.put(run, 'k', `v${r}`)
        db.kv.put(run, 'k', `v${r}!`) // history, in the history file once checkpointed
        db.runs.complete(run)
        runs.push(run)
      }
      await db.checkpoint() // the newest checkpoint is at the newest version: nothing left to write
      version = db.stats().version
      const deadline = Date.now() + 10_000
      while (db.stats().memory.cold.runs < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      expect(db.stats().memory.cold.runs, 'the maintenance rounds moved them out with nothing written').toBe(3)
      expect(db.stats().version, 'no commit: the version is what it was').toBe(version)
      expect(runs.map((run) => db.kv.get(run, 'k'))).toEqual(['v0!', 'v1!', 'v2!'])
      expect(db.stats().memory.cold.loads).toBe(3)
      expect(db.runs.log(runs[1]).length).toBe(2)
    } finally {
      db.close()
    }
    // no maintenance rounds to speak of: an explicit checkpoint of an idle database moves them out
    db = open({ purgeIntervalMs: 60_000 })
    try {
      expect(db.stats().memory.cold.runs, 'the image holds them, the manifest says they are cold').toBe(3)
      expect(db.kv.get(runs[0], 'k')).toBe('v0!') // loaded back: read now, so not due for coldAfterMs
      expect(db.stats().memory.cold.runs).toBe(2)
      await new Promise((r) => setTimeout(r, 400))
      const report = await db.checkpoint()
      expect(report?.unchanged).toBe(false)
      expect(db.stats().memory.cold.runs).toBe(3)
      expect(db.stats().version).toBe(version)
    } finally {
      db.close()
    }
    db = open({ purgeIntervalMs: 60_000 })
    try {
      expect(db.stats().memory.cold.runs, 'cold across a reopen').toBe(3)
      const keys = db.stats().memory.keys
      for (const [r, run] of runs.entries()) {
        expect(db.kv.get(run, 'k')).toBe(`v${r}!`)
        const view = db.replay(run, { at: db.runs.log(run)[0].version })
        expect(view.kv.get('k'), 'the older version, from the history file').toBe(`v${r}`)
        view.close()
      }
      expect(db.stats().memory.keys, 'their keys came from the cold file, not also from the image at open').toBe(keys + 3)
    } finally {
      db.close()
    }
  })

  it('an expired TTL key is counted once, not again when its run comes back from a cold file', async () => {
    // the short key expires (and is counted) well before the run goes cold
    const db = Database.open(dir, { ...COLD, coldAfterMs: 400, purgeIntervalMs: 20 })
    try {
      const run = db.runs.begin()
      db.kv.put(run, 'short', 1, { ttlMs: 30 })
      db.kv.put(run, 'long', 2, { ttlMs: 60_000 })
      db.kv.put(run, 'plain', 3)
      db.runs.complete(run)
      const expired = () => db.stats().maintenance.expired
      const until = async (ok: () => boolean) => {
        const deadline = Date.now() + 10_000
        while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      }
      await until(() => expired() === 1)
      expect(expired()).toBe(1)
      await until(() => db.stats().memory.cold.runs === 1)
      expect(db.stats().memory.cold.runs).toBe(1)
      expect(db.kv.get(run, 'plain')).toBe(3) // loads it back, its TTL entries with it
      expect(db.kv.get(run, 'short')).toBeUndefined()
      expect(db.kv.get(run, 'long')).toBe(2)
      const rounds = db.stats().maintenance.rounds
      await until(() => db.stats().maintenance.rounds >= rounds + 3)
      expect(expired(), 'the short key was counted before the run left').toBe(1)
    } finally {
      db.close()
    }
  })

  it('with history: { keep }, an ended run leaves memory too, with every version memory kept: reads, the log, replay, forks and diff answer as before, after an idle round and across a reopen', async () => {
    const opts: OpenOptions = { ...COLD, history: { keep: 3 }, purgeIntervalMs: 600_000 }
    /** `look`, with a replay that the cut history may refuse (its error then compared). */
    const lookKept = (db: Database, run: RunId, other: RunId): unknown => {
      try {
        return look(db, run, other)
      } catch (e) {
        return { error: (e as Error).name, message: (e as Error).message, kv: db.kv.entries(run), log: db.runs.log(run).map((c) => c.version), diff: db.diff(run, other) }
      }
    }
    let db = Database.open(dir, opts)
    try {
      defineToggle(db)
      const run = fill(db)
      const other = db.runs.begin()
      db.kv.put(other, 'k1', 'x')
      const before = lookKept(db, run, other)
      const k7 = db.replay(run, { at: db.runs.log(run).at(-8)!.version })
      const k7Before = k7.kv.get('k7')
      k7.close()
      const resident = db.stats()
      expect(resident.memory.historyVersions, 'k7 keeps 3 of its 6 versions').toBeGreaterThan(0)
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(1)
      expect(db.stats().keys, 'its keys left memory').toBeLessThan(resident.keys - 1200)
      expect(lookKept(db, run, other)).toStrictEqual(before)
      expect(db.stats().memory.cold).toMatchObject({ runs: 0, loads: 1 })
      expect(db.stats().memory.historyVersions, 'the kept versions came back').toBe(resident.memory.historyVersions)
      // Idle (nothing committed since): the round's checkpoint writes only the cold file.
      const version = db.stats().version
      await db.checkpoint()
      expect(db.stats().version).toBe(version)
      expect(db.stats().memory.cold.runs).toBe(1)
      db.close()
      db = Database.open(dir, opts)
      expect(db.stats().memory.cold.runs, 'still cold after a reopen').toBe(1)
      const view = db.replay(run, { at: db.runs.log(run).at(-8)!.version })
      expect(view.kv.get('k7')).toStrictEqual(k7Before)
      view.close()
      expect(lookKept(db, run, other)).toStrictEqual(before)
      expect(db.stats().memory.cold).toMatchObject({ runs: 0, loads: 1 })
    } finally {
      db.close()
    }
  })

  it('writes refused in a cold run, and in other runs, leave no key behind (the keys a commit adds before its lock go again) and hide nothing', async () => {
    const db = Database.open(dir, COLD)
    try {
      const run = db.runs.begin()
      db.kv.put(run, 'k', 1)
      db.runs.complete(run)
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(1)
      const keys = db.stats().memory.keys
      expect(() => db.kv.put(run, 'new', 2)).toThrow()
      expect(() => db.kv.put(run, 'k', 2)).toThrow()
      expect(() => db.transaction(run, (tx) => tx.kv.put('t', 3))).toThrow()
      expect(() => db.kv.put('0b5d3f5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b' as RunId, 'x', 1)).toThrow()
      expect(db.stats().memory.keys).toBe(keys)
      expect(db.stats().memory.cold.runs).toBe(1)
      expect(db.kv.get(run, 'k')).toBe(1)
      expect(db.kv.get(run, 'new')).toBeUndefined()
      expect(db.kv.list(run)).toEqual(['k'])
    } finally {
      db.close()
    }
  })

  it('runs that ended less than coldAfterMs ago, and active runs, stay; bad values are InvalidArgumentError', async () => {
    expectError(() => Database.open(dir, { coldAfterMs: -1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => Database.open(dir, { coldAfterMs: 1.5 }), InvalidArgumentError, 'INVALID_ARGUMENT')
    const db = Database.open(dir, { ...COLD, coldAfterMs: 60_000 })
    try {
      const ended = db.runs.begin()
      db.kv.put(ended, 'a', 1)
      db.runs.complete(ended)
      const active = db.runs.begin()
      db.kv.put(active, 'a', 1)
      await db.checkpoint()
      expect(db.stats().memory.cold.runs).toBe(0)
    } finally {
      db.close()
    }
  })

  it('a flipped bit in the cold file of runs that left an idle database: CorruptionError on read; repair: true drops the file and the next open has them from the image that still holds them', async () => {
    const opts: OpenOptions = { ...COLD, coldAfterMs: 300, purgeIntervalMs: 60_000 }
    let db = Database.open(dir, opts)
    const run = db.runs.begin()
    for (let i = 0; i < 20; i++) db.kv.put(run, `k${i}`, { i, pad: 'p'.repeat(50) })
    db.runs.complete(run)
    await db.checkpoint() // not due yet: in the image
    await new Promise((r) => setTimeout(r, 350))
    await db.checkpoint() // idle: only the cold file and the manifest
    expect(db.stats().memory.cold.runs).toBe(1)
    db.close()
    const [name] = readdirSync(join(dir, 'cold'))
    const path = join(dir, 'cold', name)
    const bytes = readFileSync(path)
    bytes[48 + 12 + 30] ^= 0x20 // inside the first block's compressed bytes
    writeFileSync(path, bytes)
    db = Database.open(dir, opts)
    try {
      expectError(() => db.kv.get(run, 'k1'), CorruptionError, 'CORRUPTION')
    } finally {
      db.close()
    }
    db = Database.open(dir, { ...opts, repair: true })
    try {
      const [r] = db.stats().recovery.repairs
      expect(r.file).toContain(name)
      expect(r.reason).toContain(run)
      expect(db.stats().memory.cold.runs).toBe(0)
      expect(db.kv.count(run), 'its data, from the image of the checkpoint it went cold at').toBe(20)
      expect(db.kv.get(run, 'k19')).toStrictEqual({ i: 19, pad: 'p'.repeat(50) })
    } finally {
      db.close()
    }
  })

  it('a flipped bit in a cold file: the read of its run is a CorruptionError naming the file and block, other runs read on, and repair: true drops the file and says which runs lost their data', async () => {
    let db = Database.open(dir, COLD)
    defineToggle(db)
    const run = fill(db)
    const other = db.runs.begin()
    db.kv.put(other, 'k', 'kept')
    await db.checkpoint()
    db.close()
    const [name] = readdirSync(join(dir, 'cold'))
    const path = join(dir, 'cold', name)
    const bytes = readFileSync(path)
    bytes[48 + 12 + 30] ^= 0x20 // inside the first block's compressed bytes
    writeFileSync(path, bytes)
    db = Database.open(dir, COLD) // opens: blocks are checked when read
    try {
      const e = expectError(() => db.kv.get(run, 'k1'), CorruptionError, 'CORRUPTION')
      expect(e.message).toContain(name)
      expect(e.message).toContain('block 0')
      expect(db.kv.get(other, 'k')).toBe('kept')
      expectError(() => db.kv.entries(run), CorruptionError, 'CORRUPTION') // still cold, still refused
      expect(db.stats().memory.cold.runs).toBe(1)
      // served: the client gets the same error (a get answered by the
      // listener thread in Rust unwinds there, and is handed back), and the
      // server serves on
      const server = await db.serve({ socket: join(dir, 's.sock') })
      const remote = await Database.connect(server.url)
      try {
        const err = await remote.kv.get(run, 'k1').then(
          () => undefined,
          (x: unknown) => x as { code?: string; message?: string },
        )
        expect(err?.code).toBe('CORRUPTION')
        expect(err?.message).toContain('block 0')
        expect(await remote.kv.get(other, 'k')).toBe('kept')
        expect(await remote.kv.get(other, 'k')).toBe('kept')
      } finally {
        await remote.close()
        await server.close()
      }
    } finally {
      db.close()
    }
    // without repair the open still succeeds (the damage is in a block);
    // with it, every cold file is checked whole and the damaged one dropped
    db = Database.open(dir, { ...COLD, repair: true })
    try {
      const [r] = db.stats().recovery.repairs
      expect(r.file).toContain(name)
      expect(r.reason).toContain('block 0')
      expect(r.reason).toContain(run)
      expect(readFileSync(join(r.savedTo, name))).toStrictEqual(bytes)
      expect(db.stats().memory.cold).toMatchObject({ runs: 0, files: 0 })
      expect(db.runs.get(run)?.status, 'the run record stays').toBe('completed')
      expect(db.kv.entries(run), 'its data as of going cold is lost, as the repair said').toStrictEqual([])
      expect(db.kv.get(other, 'k')).toBe('kept')
    } finally {
      db.close()
    }
  })
})

describe('cold runs under SIGKILL', () => {
  it('kills inside cold-file compaction (a checkpoint copying the runs still cold out of a file most of whose runs came back), with and without a new image (an idle database): every run whole, cold files on disk exactly those the manifest names', async () => {
    const base = makeTmpDir('in-mem-cold-compact')
    const fixture = resolve('test/fixtures/cold-compact.cjs')
    /** Runs the fixture's phase on `dir`; `killAfter`: SIGKILL that many ms after its checkpoint starts. */
    const phase = async (dir: string, name: string, killAfter?: number) => {
      const child = fork(fixture, [dir, name], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      const seen: { type: string; runs?: string[]; message?: string; cold?: { runs: number; files: number } }[] = []
      child.on('message', (m: (typeof seen)[number]) => {
        seen.push(m)
        if (m.type === 'ckpt') {
          child.send('go')
          if (killAfter !== undefined) setTimeout(() => child.kill('SIGKILL'), killAfter)
        }
      })
      await once(child, 'close')
      expect(seen.filter((m) => m.type === 'error')).toEqual([])
      return seen
    }
    const named = (dir: string) => {
      const manifest = readFileSync(join(dir, 'MANIFEST'), 'utf8')
      const lines = [...manifest.matchAll(/^cold (\d+) (\w+) (\d+) (\d+) /gm)].map((m) => ({ file: m[1], run: m[2], warmFrom: m[4] }))
      return {
        cold: [...new Set(lines.map((l) => `${l.file.padStart(20, '0')}.cold`))].sort(),
        // lines of runs cold at the newest checkpoint (a line with a `warm from` is the checkpoint before's)
        coldNow: lines.filter((l) => l.warmFrom === '0'),
      }
    }
    const onDisk = (dir: string) => readdirSync(join(dir, 'cold')).sort()
    try {
      const seed = join(base, 'seed')
      const runs = (await phase(seed, 'setup')).find((m) => m.type === 'runs')!.runs!
      expect(runs).toHaveLength(12)
      const first = named(seed).cold
      expect(first).toHaveLength(1)
      // unkilled, the checkpoint relocates: all twelve cold in its own file
      for (const name of ['compact', 'compact-write']) {
        const whole = join(base, `whole-${name}`)
        cpSync(seed, whole, { recursive: true })
        const done = (await phase(whole, name)).find((m) => m.type === 'ckpt-done')
        // (with a new image the first file stays for the checkpoint before, and goes with it; without, no checkpoint needs it)
        expect(done?.cold, `${name}: ${JSON.stringify(done)}`).toMatchObject({ runs: 12, files: name === 'compact' ? 1 : 2 })
        const after = named(whole)
        expect(after.coldNow).toHaveLength(12)
        expect(after.coldNow.every((l) => `${l.file.padStart(20, '0')}.cold` !== first[0]), `${name}: the three still cold were copied out`).toBe(true)
        expect(onDisk(whole)).toStrictEqual(after.cold)
      }
      const tally = { kills: 0, beforeManifest: 0, afterManifest: 0 }
      for (let i = 0; i < 12; i++) {
        const dir = join(base, `kill${i}`)
        cpSync(seed, dir, { recursive: true })
        // the checkpoint takes ~10-15 ms (debug build); half of them write only the cold file and the manifest
        const seen = await phase(dir, i % 2 === 0 ? 'compact' : 'compact-write', Math.floor(Math.random() * 24))
        if (seen.some((m) => m.type === 'ckpt-done')) continue // finished before the kill
        tally.kills++
        const context = `kill ${i}`
        const { cold, coldNow } = named(dir)
        // before the new manifest, the runs cold now are those of the first file
        if (coldNow.some((l) => `${l.file.padStart(20, '0')}.cold` === first[0])) tally.beforeManifest++
        else tally.afterManifest++
        const db = Database.open(dir, { durability: 'strict', checkpointOnClose: false, coldAfterMs: 0, purgeIntervalMs: 60_000 })
        try {
          expect(onDisk(dir), `${context}: cold files on disk are those the manifest names`).toStrictEqual(cold)
          // (the nine read back before the checkpoint are cold or in the image, depending on where it stopped)
          expect(db.stats().memory.cold.runs, context).toBe(coldNow.length)
          for (const [r, run] of runs.entries()) {
            const entries = db.kv.entries(run)
            expect(entries.length, `${context}: run ${r} keys`).toBe(200)
            expect(entries[0][1], `${context}: run ${r}`).toStrictEqual({ r, final: true })
            expect(db.kv.get(run, 'k199')).toStrictEqual({ r, j: 199, pad: 'x'.repeat(1000) })
            expect(db.runs.log(run).length, `${context}: run ${r} log`).toBe(2)
          }
          expect(db.stats().memory.cold.runs).toBe(0)
        } finally {
          db.close()
        }
        removeDir(dir)
      }
      console.log(`cold compaction kills: ${JSON.stringify(tally)}`)
      expect(tally.kills, 'some kills landed inside the checkpoint').toBeGreaterThan(0)
    } finally {
      removeDir(base)
    }
  }, 120_000)

  it('kills at random points, many inside checkpoints that move runs out: every acknowledged run is whole, cold files on disk are exactly those the manifest names, nothing lost across kills', async () => {
    const dir = makeTmpDir('in-mem-cold-crash')
    const writer = resolve('test/fixtures/cold-writer.cjs')
    const acked: string[] = []
    const tally = { kills: 0, inCheckpoint: 0, coldAtOpen: 0, unnamedLeft: 0 }
    const deadline = Date.now() + 20_000
    try {
      for (let iteration = 0; iteration < 16 && (iteration < 6 || Date.now() < deadline); iteration++) {
        const child = fork(writer, [dir, String((Math.random() * 0x1_0000_0000) >>> 0)], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
        const errors: string[] = []
        let started = 0
        let finished = 0
        let killed = false
        const kill = () => {
          if (killed) return
          killed = true
          if (started > finished) tally.inCheckpoint++
          child.kill('SIGKILL')
        }
        const plan: { ckpt: number; delay: number } | { acks: number } =
          Math.random() < 0.6 ? { ckpt: 1 + Math.floor(Math.random() * 3), delay: Math.floor(Math.random() * 6) } : { acks: 3 + Math.floor(Math.random() * 25) }
        let acks = 0
        const guard = setTimeout(() => {
          errors.push(`no kill point in 15 s (${JSON.stringify(plan)})`)
          kill()
        }, 15_000)
        child.on('message', (m: { type: string; run?: string; n?: number; message?: string }) => {
          if (m.type === 'error') errors.push(m.message!)
          if (m.type === 'ack') {
            acked.push(m.run!)
            acks++
            if ('acks' in plan && acks >= plan.acks) kill()
          }
          if (m.type === 'ckpt') {
            started++
            if ('ckpt' in plan && m.n === plan.ckpt) setTimeout(kill, plan.delay)
          }
          if (m.type === 'ckpt-done') finished++
        })
        await once(child, 'close')
        clearTimeout(guard)
        expect(errors).toEqual([])
        expect(killed).toBe(true)
        tally.kills++
        const coldFiles = () => readdirSync(join(dir, 'cold'), { withFileTypes: true }).map((e) => e.name).sort()
        const before = (() => {
          try {
            return coldFiles()
          } catch {
            return []
          }
        })()
        // No background rounds: with coldAfterMs 0 one would move the runs
        // read below out again before the count at the end.
        const db = Database.open(dir, { durability: 'strict', checkpointOnClose: false, coldAfterMs: 0, checkpointBytes: 0, purgeIntervalMs: 600_000 })
        try {
          const context = `iteration ${iteration}, plan ${JSON.stringify(plan)}`
          const manifest = existsSync(join(dir, 'MANIFEST')) ? readFileSync(join(dir, 'MANIFEST'), 'utf8') : ''
          const named = [...new Set([...manifest.matchAll(/^cold (\d+) /gm)].map((m) => `${m[1].padStart(20, '0')}.cold`))].sort()
          const after = named.length === 0 && before.length === 0 ? [] : coldFiles()
          expect(after, `${context}: cold files on disk are those the manifest names`).toStrictEqual(named)
          if (before.some((f) => !named.includes(f))) tally.unnamedLeft++
          tally.coldAtOpen = Math.max(tally.coldAtOpen, db.stats().memory.cold.runs)
          // Every acknowledged run, and every run the writer completed
          // whose acknowledgement the kill cut off (it may have gone cold
          // before the message left): each whole.
          const completed = db.runs.list({ status: 'completed' }).map((r) => r.id)
          for (const run of acked) expect(completed, `${context}: run ${run}`).toContain(run)
          for (const run of completed) {
            expect(db.runs.get(run)?.status, `${context}: run ${run}`).toBe('completed')
            const entries = db.kv.entries(run)
            expect(entries.length, `${context}: run ${run} keys`).toBe(30)
            expect(entries.find(([k]) => k === 'k0')?.[1]).toStrictEqual({ j: 0, final: true })
            expect(entries.find(([k]) => k === 'k29')?.[1]).toStrictEqual({ j: 29, pad: 'x'.repeat(69) })
            expect(db.events.length(run)).toBe(5)
            expect(db.events.verify(run).valid).toBe(true)
            expect(db.state.get(run, 'cell')?.value).toBe(1)
            expect(db.runs.log(run).length, `${context}: run ${run} log`).toBe(9) // the transaction, 5 appends, 2 cell writes, k0 again
          }
          expect(db.stats().memory.cold.runs, 'every run read back').toBe(0)
        } finally {
          db.close()
        }
      }
    } finally {
      removeDir(dir)
    }
    console.log(`cold crash test: ${tally.kills} kills, ${tally.inCheckpoint} inside a checkpoint, up to ${tally.coldAtOpen} runs cold at an open, ${tally.unnamedLeft} kills left an unnamed cold file; ${acked.length} runs checked`)
    expect(tally.inCheckpoint).toBeGreaterThan(0)
    expect(tally.coldAtOpen).toBeGreaterThan(3)
  }, 120_000)
})
