// KV micro-benchmarks of in-mem against lmdb-js, better-sqlite3 and
// classic-level, in one process run (SPEC §12: ratios against peers, measured
// on the same machine in the same run, never timed tests).
//
//   node bench/kv.mjs            (needs a built dist/ and native addon: npm run build)
//
// Environment: BENCH_KEYS (default 100000), BENCH_TIME_MS (time budget of each
// fast task, default 1000), BENCH_DURABLE_MS (of each fsync-bound task,
// default 750), BENCH_ROUNDS (rounds of the interleaved comparisons, default
// 3), BENCH_DIR (where the temporary databases go, default the OS
// tmp dir; it should be a real disk, not tmpfs, for the durable rows to mean
// anything), BENCH_ONLY (comma-separated libraries to run, e.g. "in-mem,lmdb"),
// BENCH_OUT (the results file, default bench/results/kv.json).
//
// What is measured, and how it is kept fair:
// - One key set (BENCH_KEYS strings "key:00000000"...), one ~100-byte value
//   object; every database is preloaded with every key before any task, so a
//   put is always an overwrite and a get hit always finds its key. Puts and
//   hits walk the keys in one shuffled order (xorshift32 Fisher-Yates, the same
//   order as crates/engine/benches/engine.rs); misses use "miss:0000000"...
// - Puts write the value with its `step` field moving through 0..127 (the
//   same 100 encoded bytes, but never the bytes already stored: SQLite skips
//   an identical overwrite entirely, which would turn its durable puts into
//   no-ops).
// - Every library stores the value as plain MessagePack of the same object
//   (msgpackr, no records/structures, as in-mem's codec does) and every get
//   returns the decoded object, so all do the same encode/decode work.
// - Sub-microsecond operations are timed in batches (one tinybench sample =
//   BATCH operations), so the timer's own cost (~50-100 ns) is not counted as
//   the operation's; ns/op = total time / operations, GC pauses included.
// - Durability classes, compared only within a class:
//     memory   : in-mem memory mode (no files)
//     nosync   : a write returns without an fsync of its own; in-mem
//                buffered, lmdb putSync with noSync, better-sqlite3 WAL +
//                synchronous=NORMAL, classic-level put (sync: false)
//     durable  : a write returns after it is on disk; in-mem strict, lmdb
//                putSync with overlappingSync: false (a synced commit: one
//                fdatasync per putSync, checked with strace),
//                better-sqlite3 WAL + synchronous=FULL, classic-level put
//                with { sync: true }
//   lmdb-js's own default (overlappingSync: true: the commit returns before
//   its flush, which then happens on another thread, still one fdatasync per
//   commit) is reported as an extra row, class "nosync" since the put returns
//   before the data is on disk.
// - Besides the peers, buffered kv.put is compared with in-mem's memory mode
//   (SPEC §12: buffered ≥ 80 % of memory), measured seconds apart.
// - Two raw-disk references: append 100 B + fdatasync (what an appending WAL
//   pays, file size included) and overwrite 100 B in a preallocated file +
//   fdatasync (data only: the floor).
// - classic-level 2 has no synchronous get or put; its rows are measured with
//   await in a loop, so they include one promise round trip per operation.
// - The comparisons SPEC §12 judges run in BENCH_ROUNDS interleaved rounds
//   (bench/common.mjs runRounds), every database opened and loaded once
//   before the first: the reads (in-mem memory mode's get hit and miss
//   against every peer's) and the durable puts (in-mem strict against
//   better-sqlite3 FULL, lmdb synced and classic-level sync, with the two
//   raw-disk references). Round 1 measures in-mem, then each peer; each
//   later round rotates that order by one. A ratio is taken within each
//   round, and the figure of a comparison is the median of its rounds'
//   ratios (a row's ns/op is the median of its rounds'); the results file
//   records every round. Each round gets 1.5 / BENCH_ROUNDS of a task's
//   time budget and warm-up (half with the default 3), so that a task in
//   the rounds takes 1.5 × its time measured once; the other rows are
//   measured once, with the whole budget. At the default budgets the timed
//   tasks take ~33 s, against ~26 s when everything was measured once.

import { benchRounds, endOfRun, fmtRatio, jsonParseProbe, loadInMem, machineInfo, ratioOf, roundShare, runRounds, shownPath } from './common.mjs'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, openSync, writeSync, fdatasyncSync, fsyncSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Bench } from 'tinybench'
import { Packr, Unpackr } from 'msgpackr'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

let addonLoaded = null
let addonRaced = false

const N = Number(process.env.BENCH_KEYS ?? 100_000)
const TIME = Number(process.env.BENCH_TIME_MS ?? 1000)
const DURABLE_TIME = Number(process.env.BENCH_DURABLE_MS ?? 750)
const BATCH = 1000 // operations per sample, synchronous fast operations
const ASYNC_BATCH = 100 // operations per sample, awaited operations
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null
const ROUNDS = benchRounds()
const SHARE = roundShare(ROUNDS) // of a task's budget, per round
const OUT = process.env.BENCH_OUT ?? join(here, 'results', 'kv.json')

// ----- the workload ----------------------------------------------------------

/** The value: 100 bytes of plain MessagePack (the same bytes as engine.rs's VALUE). */
const VALUE = { role: 'assistant', step: 42, score: 0.875, done: false, tags: ['plan', 'tool'], text: 'The meeting moved to 3pm, room 4B.' }
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true })
const VALUE_BYTES = Buffer.from(packr.pack(VALUE))

/**
 * What puts write: VALUE with `step` moving through 0..127 (still one byte,
 * still 100 bytes encoded). Rewriting the very same bytes would be unfair:
 * SQLite notices an identical overwrite, dirties no page and commits nothing
 * (no WAL write, no fsync).
 */
const PUT_VALUE = { ...VALUE }
const nextValue = () => {
  PUT_VALUE.step = (PUT_VALUE.step + 1) & 127
  return PUT_VALUE
}

const keyOf = (i) => `key:${String(i).padStart(8, '0')}`
const missOf = (i) => `miss:${String(i).padStart(7, '0')}`
const KEYS = Array.from({ length: N }, (_, i) => keyOf(i))

/** The shuffled visiting order: xorshift32 Fisher-Yates, mirrored in engine.rs. */
function shuffled(n) {
  const order = Array.from({ length: n }, (_, i) => i)
  let x = 0x9e3779b9
  for (let i = n - 1; i > 0; i--) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    const j = x % (i + 1)
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  return order
}
const ORDER = shuffled(N)
const HIT = ORDER.map((i) => KEYS[i])
const MISS = Array.from({ length: N }, (_, i) => missOf(i))

// ----- machine speed probe -----------------------------------------------------
// JSON.parse of the value's JSON, ns per call, at the start and at the end of
// the run. On a shared or throttled machine the speed drifts (this suite has
// seen 2× between runs); the probe makes that visible instead of silently
// moving every number. engine.rs has the same probe (serde_json) for the Rust
// side, so summaries of different runs can be compared.

const probe = () => jsonParseProbe(VALUE)
const probeAtStart = probe()
console.log(`speed probe: JSON.parse of the value ${probeAtStart.toFixed(0)} ns`)

// ----- measuring -------------------------------------------------------------

const results = []
const errors = {}

function fmtOps(x) {
  if (x === undefined || !Number.isFinite(x)) return '-'
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}K`
  return x.toFixed(0)
}

/**
 * Runs one task under tinybench and returns its row (`record` keeps it).
 * @param spec {lib, op, mode, cls, note}
 * @param fn one sample: runs `batch` operations (sync, or async when `async`)
 * @param share of the time budget and warm-up (one round's: SHARE)
 * @param round in a round: { round, rounds } (from 0), printed
 */
async function measure(spec, fn, { batch = BATCH, async = false, durable = false, share = 1, round } = {}) {
  const bench = new Bench({
    name: `${spec.lib} ${spec.op} ${spec.mode}`,
    time: (durable ? DURABLE_TIME : TIME) * share,
    iterations: durable ? 8 : 20,
    warmupTime: (durable ? 50 : 200) * share,
    warmupIterations: durable ? 2 : 5,
    throws: true,
  })
  bench.add(bench.name, fn)
  if (async) await bench.run()
  else bench.runSync()
  const r = bench.tasks[0].result
  const runs = bench.tasks[0].runs
  const ops = runs * batch
  const nsPerOp = (r.totalTime * 1e6) / ops
  const row = {
    ...spec,
    opsPerSec: 1e9 / nsPerOp,
    nsPerOp,
    p99NsPerOp: (r.latency.p99 * 1e6) / batch,
    rme: r.latency.rme,
    samples: runs,
    batch,
    ops,
  }
  console.log(
    `  ${row.lib.padEnd(15)} ${row.op.padEnd(8)} ${row.mode.padEnd(28)} ${fmtOps(row.opsPerSec).padStart(8)} ops/s  ${row.nsPerOp.toFixed(0).padStart(9)} ns/op  ±${row.rme.toFixed(1)}%` +
      (round?.rounds > 1 ? `  (round ${round.round + 1} of ${round.rounds})` : ''),
  )
  return row
}

/** Measures a row once, with the whole budget, and records it. */
async function record(spec, fn, opts) {
  const row = await measure(spec, fn, opts)
  results.push(row)
  return row
}

/** A task of an interleaved comparison: measured in each round with SHARE of the budget. */
const task = (spec, fn, opts = {}) => ({ spec, run: (round) => measure(spec, fn, { ...opts, share: SHARE, round }) })

/** A cursor over a key array, wrapping around. */
function cursor(keys) {
  let at = 0
  const n = keys.length
  return (count) => {
    const start = at
    at = (at + count) % n
    return start
  }
}

/** Sync task: `count` calls of op(key) walking `keys`. */
function syncBatch(keys, count, op) {
  const next = cursor(keys)
  const n = keys.length
  return () => {
    let i = next(count)
    for (let c = 0; c < count; c++) {
      op(keys[i])
      if (++i === n) i = 0
    }
  }
}

/** Async task: `count` awaited calls of op(key) walking `keys`. */
function asyncBatch(keys, count, op) {
  const next = cursor(keys)
  const n = keys.length
  return async () => {
    let i = next(count)
    for (let c = 0; c < count; c++) {
      await op(keys[i])
      if (++i === n) i = 0
    }
  }
}

/** Sanity check that a get returns the stored object (so nothing is measured doing no work). */
function checkValue(lib, v) {
  if (v === undefined || v === null || v.text !== VALUE.text || v.step !== VALUE.step) {
    throw new Error(`${lib}: get returned ${JSON.stringify(v)} instead of the stored value`)
  }
}

const dirs = []
const BASE = process.env.BENCH_DIR ?? tmpdir()
mkdirSync(BASE, { recursive: true })
function tmp(name) {
  const d = mkdtempSync(join(BASE, `in-mem-bench-${name}-`))
  dirs.push(d)
  return d
}

/**
 * Each library's part: `fn` opens and loads its databases (closers pushed
 * to `close`), measures the rows measured once, and returns its tasks of the
 * interleaved comparisons ({ reads, durable }). A failure (e.g. it does not
 * load) is recorded, its databases are closed and the suite goes on.
 */
const parts = []
async function suite(lib, fn) {
  if (ONLY && !ONLY.has(lib)) return
  console.log(`\n${lib}`)
  const close = []
  try {
    const tasks = await fn(close)
    parts.push({ lib, reads: tasks.reads ?? [], durable: tasks.durable ?? [], close })
  } catch (e) {
    errors[lib] = String(e?.stack ?? e)
    console.log(`  ${lib} FAILED: ${e?.message ?? e}`)
    for (const c of close.reverse()) await c()
  }
}

/** A sink so that gets cannot be optimized away. */
let sink = 0

// ----- in-mem ----------------------------------------------------------------

await suite('in-mem', async (close) => {
  const loaded = loadInMem(root, require, { indent: '  ' })
  const { Database } = loaded
  addonLoaded = loaded.loaded
  addonRaced = loaded.raced
  const modes = [
    { mode: 'memory', cls: 'memory', open: () => Database.open() },
    { mode: 'buffered', cls: 'nosync', open: () => Database.open(tmp('inmem-buffered'), { durability: 'buffered' }) },
    { mode: 'strict', cls: 'durable', open: () => Database.open(tmp('inmem-strict'), { durability: 'strict' }) },
  ]
  const tasks = { reads: [], durable: [] }
  for (const m of modes) {
    const db = m.open()
    let closed = false
    const closeDb = () => {
      if (!closed) db.close()
      closed = true
    }
    close.push(closeDb)
    const run = db.runs.begin({ name: 'bench' })
    const kv = db.kv
    for (let i = 0; i < N; i += 10_000) kv.putMany(run, KEYS.slice(i, i + 10_000).map((k) => [k, VALUE]))
    checkValue('in-mem', kv.get(run, HIT[0]))
    if (kv.get(run, MISS[0]) !== undefined) throw new Error('in-mem: a miss found a value')
    const spec = (op) => ({ lib: 'in-mem', op, mode: m.mode, cls: m.cls })
    const put = syncBatch(HIT, m.mode === 'strict' ? 1 : BATCH, (k) => kv.put(run, k, nextValue()))
    const hit = syncBatch(HIT, BATCH, (k) => { sink += kv.get(run, k).step })
    const miss = syncBatch(MISS, BATCH, (k) => { if (kv.get(run, k) === undefined) sink++ })
    if (m.mode === 'strict') {
      // Strict puts go into the rounds; its reads (the same path as memory mode's) are measured once, first.
      await record(spec('get-hit'), hit)
      await record(spec('get-miss'), miss)
      tasks.durable.push(task(spec('put'), put, { batch: 1, durable: true }))
    } else {
      await record(spec('put'), put)
      if (m.mode === 'memory') {
        // Memory mode's reads are the ones compared with the peers: in the rounds.
        tasks.reads.push(task(spec('get-hit'), hit), task(spec('get-miss'), miss))
      } else {
        await record(spec('get-hit'), hit)
        await record(spec('get-miss'), miss)
        closeDb()
      }
    }
  }
  return tasks
})

// ----- lmdb-js ---------------------------------------------------------------

await suite('lmdb', async (close) => {
  const { open } = await import('lmdb')
  // Plain MessagePack of the same object, as in-mem stores it.
  const encoder = { useRecords: false, variableMapSize: true }
  const load = (db) => {
    db.transactionSync(() => {
      for (const k of KEYS) db.putSync(k, VALUE)
    })
  }
  const opened = (opts) => {
    const db = open(opts)
    close.push(() => db.close())
    return db
  }
  // nosync: no fsync at all (LMDB MDB_NOSYNC); gets are measured here.
  const fast = opened({ path: tmp('lmdb-nosync'), noSync: true, encoder })
  // lmdb-js's default: overlappingSync (commit returns, flush follows).
  const dflt = opened({ path: tmp('lmdb-default'), encoder })
  // durable: every putSync commit is fdatasynced before it returns.
  const sync = opened({ path: tmp('lmdb-sync'), overlappingSync: false, encoder })
  for (const db of [fast, dflt, sync]) load(db)
  checkValue('lmdb', fast.get(HIT[0]))
  if (fast.get(MISS[0]) !== undefined) throw new Error('lmdb: a miss found a value')
  await record({ lib: 'lmdb', op: 'put', mode: 'putSync noSync', cls: 'nosync' }, syncBatch(HIT, BATCH, (k) => fast.putSync(k, nextValue())))
  await record({ lib: 'lmdb', op: 'put', mode: 'putSync overlappingSync', cls: 'nosync', note: "lmdb-js's default: returns before its flush" },
    syncBatch(HIT, 10, (k) => dflt.putSync(k, nextValue())), { batch: 10, durable: true })
  return {
    reads: [
      task({ lib: 'lmdb', op: 'get-hit', mode: 'get', cls: 'any' }, syncBatch(HIT, BATCH, (k) => { sink += fast.get(k).step })),
      task({ lib: 'lmdb', op: 'get-miss', mode: 'get', cls: 'any' }, syncBatch(MISS, BATCH, (k) => { if (fast.get(k) === undefined) sink++ })),
    ],
    durable: [task({ lib: 'lmdb', op: 'put', mode: 'putSync synced', cls: 'durable' }, syncBatch(HIT, 1, (k) => sync.putSync(k, nextValue())), { batch: 1, durable: true })],
  }
})

// ----- better-sqlite3 --------------------------------------------------------

await suite('better-sqlite3', async (close) => {
  const Sqlite = require('better-sqlite3')
  const tasks = { reads: [], durable: [] }
  for (const synchronous of ['NORMAL', 'FULL']) {
    const db = new Sqlite(join(tmp(`sqlite-${synchronous}`), 'kv.db'))
    close.push(() => db.close())
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${synchronous}`)
    db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID')
    const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)')
    const get = db.prepare('SELECT v FROM kv WHERE k = ?').pluck()
    db.transaction(() => {
      for (const k of KEYS) put.run(k, packr.pack(VALUE))
    })()
    const read = (k) => {
      const b = get.get(k)
      return b === undefined ? undefined : unpackr.unpack(b)
    }
    checkValue('better-sqlite3', read(HIT[0]))
    if (read(MISS[0]) !== undefined) throw new Error('better-sqlite3: a miss found a value')
    const mode = `WAL synchronous=${synchronous}`
    if (synchronous === 'FULL') {
      tasks.durable.push(task({ lib: 'better-sqlite3', op: 'put', mode, cls: 'durable' }, syncBatch(HIT, 1, (k) => put.run(k, packr.pack(nextValue()))), { batch: 1, durable: true }))
    } else {
      await record({ lib: 'better-sqlite3', op: 'put', mode, cls: 'nosync' }, syncBatch(HIT, BATCH, (k) => put.run(k, packr.pack(nextValue()))))
      tasks.reads.push(
        task({ lib: 'better-sqlite3', op: 'get-hit', mode: 'WAL', cls: 'any' }, syncBatch(HIT, BATCH, (k) => { sink += read(k).step })),
        task({ lib: 'better-sqlite3', op: 'get-miss', mode: 'WAL', cls: 'any' }, syncBatch(MISS, BATCH, (k) => { if (read(k) === undefined) sink++ })),
      )
    }
  }
  return tasks
})

// ----- classic-level ---------------------------------------------------------

await suite('classic-level', async (close) => {
  const { ClassicLevel } = require('classic-level')
  const db = new ClassicLevel(tmp('level'), { keyEncoding: 'utf8', valueEncoding: 'buffer' })
  await db.open()
  close.push(() => db.close())
  for (let i = 0; i < N; i += 10_000) {
    await db.batch(KEYS.slice(i, i + 10_000).map((key) => ({ type: 'put', key, value: Buffer.from(packr.pack(VALUE)) })))
  }
  const read = async (k) => {
    const b = await db.get(k)
    return b === undefined ? undefined : unpackr.unpack(b)
  }
  checkValue('classic-level', await read(HIT[0]))
  if ((await read(MISS[0])) !== undefined) throw new Error('classic-level: a miss found a value')
  await record({ lib: 'classic-level', op: 'put', mode: 'await put', cls: 'nosync' },
    asyncBatch(HIT, ASYNC_BATCH, (k) => db.put(k, Buffer.from(packr.pack(nextValue())))), { batch: ASYNC_BATCH, async: true })
  return {
    reads: [
      task({ lib: 'classic-level', op: 'get-hit', mode: 'await get', cls: 'any' },
        asyncBatch(HIT, ASYNC_BATCH, async (k) => { sink += (await read(k)).step }), { batch: ASYNC_BATCH, async: true }),
      task({ lib: 'classic-level', op: 'get-miss', mode: 'await get', cls: 'any' },
        asyncBatch(MISS, ASYNC_BATCH, async (k) => { if ((await read(k)) === undefined) sink++ }), { batch: ASYNC_BATCH, async: true }),
    ],
    durable: [
      task({ lib: 'classic-level', op: 'put', mode: 'await put {sync:true}', cls: 'durable' },
        asyncBatch(HIT, 1, (k) => db.put(k, Buffer.from(packr.pack(nextValue())), { sync: true })), { batch: 1, async: true, durable: true }),
    ],
  }
})

// ----- raw fdatasync (the floor of any durable write on this disk) -----------
// Two references, measured in the durable rounds: appending 100 bytes and
// fdatasync-ing them (what a WAL that grows its file does: the new size must
// reach the disk too), and overwriting 100 bytes inside a preallocated,
// already-synced file (data only: the floor).

await suite('fs', async (close) => {
  const dir = tmp('fsync')
  const fd = openSync(join(dir, 'append'), 'w')
  close.push(() => closeSync(fd))
  const size = 16 << 20
  const pre = openSync(join(dir, 'preallocated'), 'w')
  close.push(() => closeSync(pre))
  const zeros = Buffer.alloc(1 << 20)
  for (let at = 0; at < size; at += zeros.length) writeSync(pre, zeros, 0, zeros.length, at)
  fsyncSync(pre)
  let at = 0
  return {
    durable: [
      task({ lib: 'fs', op: 'put', mode: 'append 100 B + fdatasync', cls: 'durable', note: 'reference: what an appending WAL pays' },
        syncBatch(HIT, 1, () => { writeSync(fd, VALUE_BYTES); fdatasyncSync(fd) }), { batch: 1, durable: true }),
      task({ lib: 'fs', op: 'put', mode: 'overwrite 100 B + fdatasync', cls: 'durable', note: 'reference: the floor, data only' },
        syncBatch(HIT, 1, () => {
          writeSync(pre, VALUE_BYTES, 0, VALUE_BYTES.length, at)
          at = (at + VALUE_BYTES.length) % (size - VALUE_BYTES.length)
          fdatasyncSync(pre)
        }), { batch: 1, durable: true }),
    ],
  }
})

// ----- the interleaved comparisons ---------------------------------------------

for (const [group, title] of [['reads', 'reads: in-mem memory mode and every peer'], ['durable', 'durable puts: in-mem strict, the durable peers and the raw disk']]) {
  const entries = parts.filter((p) => p[group].length > 0).map((p) => ({ name: p.lib, tasks: p[group] }))
  if (entries.length === 0) continue
  console.log(`\n${title}, ${ROUNDS} interleaved round${ROUNDS === 1 ? '' : 's'}`)
  const out = await runRounds(ROUNDS, entries, {
    onError: (lib, e) => {
      errors[`${lib} ${group}`] = String(e?.stack ?? e)
      console.log(`  ${lib} FAILED: ${e?.message ?? e}`)
    },
  })
  for (const o of out) if (o.rows) results.push(...o.rows)
}

for (const p of parts) for (const c of p.close.reverse()) await c()
for (const d of dirs) rmSync(d, { recursive: true, force: true })

// ----- report ----------------------------------------------------------------

const find = (lib, op, mode) => results.find((r) => r.lib === lib && r.op === op && (mode === undefined || r.mode === mode))
// By library, in the order they ran (the rows of the rounds were measured last).
const libOrder = ['in-mem', 'lmdb', 'better-sqlite3', 'classic-level', 'fs']
results.sort((a, b) => libOrder.indexOf(a.lib) - libOrder.indexOf(b.lib))

console.log(`\n=== KV results (ops/s; higher is better; rounds: the median of ${ROUNDS} interleaved rounds, else measured once) ===`)
console.log(`${'library'.padEnd(15)} ${'op'.padEnd(8)} ${'mode'.padEnd(28)} ${'class'.padEnd(8)} ${'ops/s'.padStart(9)} ${'ns/op'.padStart(10)} ${'p99 ns/op'.padStart(10)} ${'rounds'.padStart(6)}`)
for (const r of results) {
  console.log(
    `${r.lib.padEnd(15)} ${r.op.padEnd(8)} ${r.mode.padEnd(28)} ${r.cls.padEnd(8)} ${fmtOps(r.opsPerSec).padStart(9)} ${r.nsPerOp.toFixed(0).padStart(10)} ${r.p99NsPerOp.toFixed(0).padStart(10)} ${String(r.rounds?.length ?? 1).padStart(6)}`,
  )
}

// in-mem / peer, same op, same durability class (memory mode is compared with the nosync peers).
const ratios = []
const peerRows = results.filter((r) => r.lib !== 'in-mem' && r.lib !== 'fs')
for (const mine of results.filter((r) => r.lib === 'in-mem')) {
  for (const peer of peerRows) {
    if (peer.op !== mine.op) continue
    if (mine.op === 'put') {
      const want = mine.cls === 'durable' ? 'durable' : 'nosync'
      if (peer.cls !== want) continue
    } else if (mine.mode !== 'memory') {
      continue // reads are the same path in every mode; compare memory mode's
    }
    ratios.push({ op: mine.op, inMemMode: mine.mode, peer: peer.lib, peerMode: peer.mode, ...ratioOf(mine, peer) })
  }
}
// in-mem against itself: buffered ÷ memory (SPEC §12: kv.put buffered ≥ 80 % of memory mode).
const putMemory = find('in-mem', 'put', 'memory')
const putBuffered = find('in-mem', 'put', 'buffered')
if (putMemory && putBuffered) {
  ratios.push({ op: 'put', inMemMode: 'buffered', peer: 'in-mem', peerMode: 'memory', ratio: putBuffered.opsPerSec / putMemory.opsPerSec, target: 0.8 })
}
const strict = find('in-mem', 'put', 'strict')
for (const fsync of results.filter((r) => r.lib === 'fs')) {
  if (strict) ratios.push({ op: 'put', inMemMode: 'strict', peer: 'fs', peerMode: fsync.mode, ...ratioOf(strict, fsync) })
}

console.log('\n=== in-mem ÷ peer, same op (>1: in-mem is faster; vs in-mem memory: buffered ÷ memory mode) ===')
console.log(`(reads and durable puts: the median of ${ROUNDS} interleaved rounds' ratios, each round's in brackets)`)
for (const r of ratios) {
  const target = r.target === undefined ? '' : `  (SPEC §12: ≥ ${r.target.toFixed(2)}×: ${r.ratio >= r.target ? 'PASS' : 'FAIL'})`
  console.log(`${r.op.padEnd(8)} in-mem ${r.inMemMode.padEnd(9)} vs ${r.peer.padEnd(15)} ${r.peerMode.padEnd(28)} ${fmtRatio(r).padStart(8)}${target}`)
}
for (const [lib, e] of Object.entries(errors)) console.log(`\n${lib} failed:\n${e}`)

console.log()
const ended = endOfRun({ root, loaded: addonLoaded, raced: addonRaced, probeAtStart, probe })
const out = {
  date: new Date().toISOString(),
  ...ended,
  machine: machineInfo(),
  config: {
    keys: N,
    batch: BATCH,
    asyncBatch: ASYNC_BATCH,
    timeMs: TIME,
    durableTimeMs: DURABLE_TIME,
    rounds: ROUNDS,
    roundShare: SHARE,
    interleaved: 'reads (in-mem memory get-hit, get-miss and every peer read) and durable puts (in-mem strict, the durable peers, fs): rows with `rounds`, ratios with `rounds` (per round) and `ratio` (their median)',
    dir: BASE,
    valueBytes: VALUE_BYTES.length,
    valueHex: VALUE_BYTES.toString('hex'),
  },
  results,
  ratios,
  errors,
  sink,
}
mkdirSync(dirname(OUT), { recursive: true })
writeFileSync(OUT, JSON.stringify(out, null, 2))
console.log(`\nwrote ${shownPath(root, OUT)}`)
