// Benchmarks of in-mem's run history (SPEC §8, issue 5): replay of a run,
// copy-on-write fork, and the diff of two runs, with the SPEC §12 target
// marked PASS/FAIL (replay of a 10,000-operation run ≤ 20 ms) and the
// issue's (fork ≤ 1 ms, copying no values).
//
//   node bench/history.mjs    (needs a built dist/ and native addon: npm run build)
//
// Environment:
//   BENCH_DIR            where the temporary databases go (default the OS tmp dir)
//   BENCH_MODES          in-mem modes, comma-separated: memory,buffered (default both)
//   BENCH_SECTIONS       replay,fork,diff (default all)
//   BENCH_ONLY           libraries: in-mem,better-sqlite3 (default both)
//   BENCH_REPLAY_OPS     operations in the replayed run (default 10000)
//   BENCH_OTHER_KEYS     keys written to other runs before the "crowded" replay (default 100000)
//   BENCH_OTHER_RUNS     how many other runs they are spread over (default 10)
//   BENCH_FORK_KEYS      keys of the forked run (default 100000)
//   BENCH_FORKS          forks made (and timed one by one) of it (default 100)
//   BENCH_DIFF_KEYS      keys of each run compared (default 100000)
//   BENCH_DIFF_CHANGE    fraction of them changed in the second run (default 0.01)
//   BENCH_SAMPLES        timed samples of each replay (default 30)
//   BENCH_DIFF_SAMPLES   timed samples of each diff (default 10)
//   BENCH_COPY_SAMPLES   timed samples of the peers' copies and diffs (default 5)
//   BENCH_READS          reads per sample of the reads through a fork (default 1000)
//   BENCH_OUT            the results file (default bench/results/history.json)
//
// What is measured, and why:
// - These are millisecond operations, each on data built beforehand, so they
//   are timed one call at a time (process.hrtime around the call, after a
//   few untimed warm-up calls) and reported as best / median / mean / p90
//   of the samples. The targets are judged on the median. A replay's view
//   is closed after each sample, outside the timed region; closing is timed
//   separately (`teardown` in the row).
// - Every timed result is checked once first (untimed): the replayed view
//   equals what the live run showed at that version, the fork reads its
//   parent's values, and the diff reports exactly the changes made (keys,
//   counts and both values). A failed check is recorded in `checks` and the
//   target it belongs to is marked invalid: a fast wrong answer is no figure.
// - replay: one run of BENCH_REPLAY_OPS write operations mixed across the
//   primitives, made in a fixed pseudo-random order (xorshift32): kv.put
//   (~100-byte values over a pool of keys, so keys are overwritten) and
//   kv.delete of live keys, events.append, state.set and state.cas (a pool
//   of cells), json.set (a pool of ~400-byte documents, whole or one path),
//   traces.record (decisions, and tool calls under them), and every 250th
//   operation a transaction of five writes (one of each). An operation is
//   one write; a transaction's five count as five. Timed: db.replay(run)
//   plus reads from the view (kv.count, one kv.get, events.length,
//   state.list) so that the view is really there; and the same at the
//   run's midpoint ({ at: version }). In buffered mode the directory is
//   then closed (a checkpoint) and reopened, the replay checked again and
//   timed again: the run log survives a restart. The close's checkpoint
//   moved the run's older versions to history files (SPEC §17), so these
//   replays, and one at the midpoint, read them from disk; the target
//   (issue 17): the whole replay ≤ 2 × the same replay with the history in
//   memory.
//   Then a run a tenth the size is replayed, and BENCH_OTHER_KEYS keys
//   (~100-byte values) are written to BENCH_OTHER_RUNS other runs and the
//   three replays are timed again: replay's cost should follow the run's
//   size (10x the operations: ~10x the time) and not the database's
//   (crowded / alone: ~1x).
// - fork: a run of BENCH_FORK_KEYS keys (~100-byte values, written with
//   kv.putMany, 1,000 per commit). Each of BENCH_FORKS forks is timed alone,
//   and so is the first kv.get through each new fork. Process memory (RSS,
//   V8 heap, external) and db.stats().keys are taken after a full GC before
//   and after the forks: a fork that copied values would add the parent's
//   size (its raw key + value bytes are reported) every time. The target:
//   per fork, less than 1% of those bytes in RSS and less than 0.1% of the
//   parent's keys. Then reads through a fork (BENCH_READS kv.get of keys in
//   shuffled order, ns/op) and kv.count over the whole fork are timed beside
//   the same on the parent: what reading through a fork costs.
//     Reference, labelled as such: better-sqlite3 "fork by copy", the
//     nearest thing a table store has: INSERT INTO kv SELECT ?, key, value
//     FROM kv WHERE run = ? in one transaction (an in-memory database beside
//     in-mem's memory mode; a file in WAL mode, synchronous=NORMAL, beside
//     buffered), with the RSS (or file) growth per copy.
// - diff: a run of BENCH_DIFF_KEYS keys and a fork of it in which
//   BENCH_DIFF_CHANGE of the keys changed: 40% of those changes overwrite a
//   key with a different value, 30% delete one, 30% add a new key. Timed:
//   db.diff(parent, fork), which returns every changed entry with both
//   values decoded. Then the same between two independent runs (each
//   written in full) that differ by the same changes.
//     Reference, labelled as such: better-sqlite3 computing the same diff of
//     the same two runs as rows (run, key, value) with a LEFT JOIN each way
//     on the primary key, the values decoded in JS as in-mem's are.
// - No peer replays, forks or diffs natively; there is no peer row for
//   replay. The references show what the same result costs by copying or
//   joining.
// - A speed probe (JSON.parse of a ~100-byte value, as kv.mjs and
//   primitives.mjs) is printed at the start and at the end: the VM's speed
//   drifts. A debug build of the addon is detected and flagged; its figures
//   say nothing about the targets.

import { endOfRun, fullGc, jsonParseProbe, loadInMem, machineInfo } from './common.mjs'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync, mkdirSync, writeFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { Packr, Unpackr } from 'msgpackr'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

const int = (name, dflt) => {
  const v = process.env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not ${v}`)
  return Math.floor(n)
}
const list = (name) => (process.env[name] ? new Set(process.env[name].split(',').map((s) => s.trim()).filter(Boolean)) : null)

const REPLAY_OPS = int('BENCH_REPLAY_OPS', 10_000)
const OTHER_KEYS = int('BENCH_OTHER_KEYS', 100_000)
const OTHER_RUNS = Math.max(1, int('BENCH_OTHER_RUNS', 10))
const FORK_KEYS = int('BENCH_FORK_KEYS', 100_000)
const FORKS = Math.max(1, int('BENCH_FORKS', 100))
const DIFF_KEYS = int('BENCH_DIFF_KEYS', 100_000)
const DIFF_CHANGE = Number(process.env.BENCH_DIFF_CHANGE ?? 0.01)
const SAMPLES = Math.max(1, int('BENCH_SAMPLES', 30))
const DIFF_SAMPLES = Math.max(1, int('BENCH_DIFF_SAMPLES', 10))
const COPY_SAMPLES = Math.max(1, int('BENCH_COPY_SAMPLES', 5))
const READS = Math.max(1, int('BENCH_READS', 1000))
const MODES = list('BENCH_MODES') ?? new Set(['memory', 'buffered'])
const SECTIONS = list('BENCH_SECTIONS') ?? new Set(['replay', 'fork', 'diff'])
const ONLY = list('BENCH_ONLY')
const LOAD_BATCH = 1000 // keys per kv.putMany commit (and per peer transaction) when loading runs
const TX_EVERY = 250 // every 250th operation of the replayed run is a five-write transaction

/** The sizes the targets are stated for: a run with fewer is measured, but not judged. */
const TARGET_SIZES = { replayOps: 10_000, forkKeys: 100_000, diffKeys: 100_000 }
const TARGETS = { replayMs: 20, replayOnDiskRatio: 2, forkMs: 1, forkRssFraction: 0.01, forkKeysFraction: 0.001 }

for (const m of MODES) if (m !== 'memory' && m !== 'buffered') throw new Error(`BENCH_MODES: unknown mode ${m} (memory, buffered)`)
if (!(DIFF_CHANGE > 0 && DIFF_CHANGE <= 0.5)) throw new Error('BENCH_DIFF_CHANGE must be in (0, 0.5]')
const wantLib = (lib) => !ONLY || ONLY.has(lib)

// ----- the workload ----------------------------------------------------------

/** The value (kv.mjs's): 100 bytes of plain MessagePack; `step` and `n` move. */
const VALUE = { role: 'assistant', step: 42, score: 0.875, done: false, tags: ['plan', 'tool'], text: 'The meeting moved to 3pm, room 4B.' }
const valueOf = (n) => ({ ...VALUE, step: n & 127, n })
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true })

/** A small JSON document (~400 bytes), created whole on first use. */
const docOf = (n) => ({
  a: { b: n, c: 'unchanged' },
  title: 'Quarterly planning with the platform team',
  status: 'in_progress',
  owner: { id: 'user-8812', name: 'Ada Lovelace' },
  steps: Array.from({ length: 4 }, (_, i) => ({ n: i, action: `step ${i}: look up the relevant records`, done: false })),
  counter: {},
})
const JSON_PATHS = ['$.a.b', '$.status', '$.counter.c0', '$.counter.c1', '$.counter.c2', '$.owner.name']

/** xorshift32 (as kv.mjs and the tests): reproducible from one seed. */
class Rng {
  constructor(seed) {
    this.s = seed >>> 0 || 0x9e3779b9
  }
  next() {
    let x = this.s
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    this.s = x
    return x / 0x1_0000_0000
  }
  int(n) {
    return Math.floor(this.next() * n)
  }
}

/** 0..n-1 in a fixed shuffled order (Fisher-Yates over xorshift32). */
function shuffled(n, seed = 0x9e3779b9) {
  const rng = new Rng(seed)
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  return order
}

const keyOf = (i) => `key:${String(i).padStart(8, '0')}`
const EVENT_TYPES = ['message', 'tool', 'observation']

/** What a reader (a run scope or a RunView) shows of a run, as one string: what a replay must equal. */
function snapshot(r, docs) {
  return JSON.stringify({
    kv: r.kv.entries(),
    kvCount: r.kv.count(),
    events: { length: r.events.length(), head: r.events.head()?.hash ?? null, range: r.events.range().map((e) => [e.sequence, e.type, e.hash]) },
    state: r.state.list().map((c) => [c.name, c.value, c.version, c.updatedAt]),
    json: docs.map((d) => r.json.get(d) ?? null),
    traces: r.traces.query().map((t) => [t.id, t.type, t.parent ?? null, t.data]),
  })
}

/**
 * Writes `ops` operations into `run` (see the header), and takes the live
 * snapshot at the midpoint.
 * @returns what was written, the midpoint's version and snapshot, and the docs used
 */
function buildRun(db, run, ops, seed) {
  const rng = new Rng(seed)
  const scope = db.scope(run)
  const kvPool = Math.max(16, Math.floor(ops / 10))
  const cellPool = Math.max(4, Math.floor(ops / 200))
  const docPool = Math.max(2, Math.floor(ops / 500))
  const docs = Array.from({ length: docPool }, (_, i) => `doc:${String(i).padStart(4, '0')}`)
  const live = new Set() // live KV keys
  const liveList = [] // the same, for picking (with stale entries skipped)
  const cells = new Map() // cell name -> version
  const docMade = new Set()
  const decisions = []
  const counts = { 'kv.put': 0, 'kv.delete': 0, 'events.append': 0, 'state.set': 0, 'state.cas': 0, 'json.set': 0, 'traces.record': 0, transactions: 0, txWrites: 0 }
  const casFailures = []
  let mid = null
  let n = 0

  const kvPut = (s, i) => {
    const k = keyOf(rng.int(kvPool))
    s.kv.put(k, valueOf(i))
    if (!live.has(k)) {
      live.add(k)
      liveList.push(k)
    }
  }
  const kvDelete = (s) => {
    while (liveList.length > 0) {
      const at = rng.int(liveList.length)
      const k = liveList[at]
      liveList[at] = liveList[liveList.length - 1]
      liveList.pop()
      if (!live.has(k)) continue
      live.delete(k)
      if (s.kv.delete(k) !== true) throw new Error(`kv.delete of live key ${k} returned false`)
      return true
    }
    return false
  }
  const append = (s, i) => s.events.append(EVENT_TYPES[i % 3], { i, text: 'observed the tool output and moved on' })
  const stateSet = (s, i) => {
    const name = `cell:${rng.int(cellPool)}`
    const v = s.state.set(name, { i, phase: 'working' })
    cells.set(name, v)
  }
  const stateCas = (s, i) => {
    const names = [...cells.keys()]
    const name = names[rng.int(names.length)]
    const expected = cells.get(name)
    const r = s.state.cas(name, expected, { i, phase: 'cas' })
    if (!r.ok) casFailures.push({ name, expected, current: r.version })
    cells.set(name, r.version)
  }
  const jsonSet = (s, i) => {
    const doc = docs[rng.int(docPool)]
    if (!docMade.has(doc)) {
      s.json.set(doc, '$', docOf(i))
      docMade.add(doc)
    } else {
      s.json.set(doc, JSON_PATHS[rng.int(JSON_PATHS.length)], i)
    }
  }
  const traceRecord = (s, i) => {
    if (decisions.length === 0 || rng.next() < 0.3) {
      decisions.push(s.traces.record({ type: 'decision', data: { question: 'which tool?', options: ['search', 'ask'], chosen: 'search' }, tags: ['plan'] }))
    } else {
      const parent = decisions[rng.int(decisions.length)]
      s.traces.record({ type: 'tool_call', parent, data: { tool: 'search', arguments: { q: 'agents', k: 5 }, result: { hits: i & 7 }, durationMs: i & 63 }, tags: ['web'] })
    }
  }

  while (n < ops) {
    if (mid === null && n >= ops / 2) mid = { version: db.stats().version, ops: n, snapshot: snapshot(scope, docs) }
    if (n % TX_EVERY === TX_EVERY - 1 && ops - n >= 5) {
      // Five writes, one commit; the cell versions it sets are known only as it runs.
      const setCells = []
      db.transaction(run, (tx) => {
        setCells.length = 0
        kvPut(tx, n)
        append(tx, n + 1)
        const name = `cell:${rng.int(cellPool)}`
        setCells.push([name, tx.state.set(name, { i: n + 2, phase: 'tx' })])
        jsonSet(tx, n + 3)
        traceRecord(tx, n + 4)
      })
      for (const [name, v] of setCells) cells.set(name, v)
      counts.transactions++
      counts.txWrites += 5
      n += 5
      continue
    }
    const r = rng.next()
    if (r < 0.38) {
      kvPut(scope, n)
      counts['kv.put']++
    } else if (r < 0.43) {
      if (kvDelete(scope)) counts['kv.delete']++
      else {
        kvPut(scope, n)
        counts['kv.put']++
      }
    } else if (r < 0.63) {
      append(scope, n)
      counts['events.append']++
    } else if (r < 0.71 || cells.size === 0) {
      stateSet(scope, n)
      counts['state.set']++
    } else if (r < 0.78) {
      stateCas(scope, n)
      counts['state.cas']++
    } else if (r < 0.88) {
      jsonSet(scope, n)
      counts['json.set']++
    } else {
      traceRecord(scope, n)
      counts['traces.record']++
    }
    n++
  }
  if (mid === null) mid = { version: db.stats().version, ops: n, snapshot: snapshot(scope, docs) }
  return { ops: n, counts, casFailures, mid, docs, probeKey: liveList.find((k) => live.has(k)) ?? keyOf(0) }
}

/** Writes keys 0..n-1 (values valueOf(i)) into `run`, LOAD_BATCH per commit; returns their raw bytes. */
function loadKeys(db, run, n, prefix = '') {
  let bytes = 0
  for (let at = 0; at < n; at += LOAD_BATCH) {
    const batch = []
    for (let i = at; i < Math.min(n, at + LOAD_BATCH); i++) {
      const k = prefix + keyOf(i)
      const v = valueOf(i)
      batch.push([k, v])
      bytes += Buffer.byteLength(k) + packr.pack(v).length
    }
    db.kv.putMany(run, batch)
  }
  return bytes
}

// ----- machine speed probe (as kv.mjs: JSON.parse of the value) --------------

const probe = () => jsonParseProbe(VALUE)
const probeAtStart = probe()
console.log(`speed probe: JSON.parse of the value ${probeAtStart.toFixed(0)} ns`)

// ----- measuring -------------------------------------------------------------

const results = []
const ratios = []
const targets = []
const checks = []
const errors = {}
const skipped = []
/** A sink so that reads cannot be optimized away. */
let sink = 0

const now = () => process.hrtime.bigint()
const ms = (ns) => ns / 1e6
const fmtMs = (x) => (x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3))
const fmtBytes = (b) => (Math.abs(b) >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : Math.abs(b) >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b.toFixed(0)} B`)
/** A signed size: +1.2 MiB, -64.0 KiB. */
const fmtDelta = (b) => `${b >= 0 ? '+' : ''}${fmtBytes(b)}`

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo)
}

/** Summary of sample times in ns (each sample = `batch` operations). */
function summarize(ns, batch = 1) {
  const s = [...ns].sort((a, b) => a - b)
  const mean = s.reduce((a, b) => a + b, 0) / s.length
  return { bestMs: ms(s[0]), medianMs: ms(quantile(s, 0.5)), meanMs: ms(mean), p90Ms: ms(quantile(s, 0.9)), nsPerOp: mean / batch, p50NsPerOp: quantile(s, 0.5) / batch, minNsPerOp: s[0] / batch }
}

/** Records a row from sample times (ns) and prints it. */
function record(spec, ns, { batch = 1, teardownNs } = {}) {
  const row = { ...spec, samples: ns.length, batch, ...summarize(ns, batch) }
  if (teardownNs?.length) row.teardown = { medianMs: summarize(teardownNs).medianMs, bestMs: summarize(teardownNs).bestMs }
  results.push(row)
  const per = batch > 1 ? `  ${row.p50NsPerOp.toFixed(0).padStart(7)} ns/op (median)` : ''
  console.log(
    `  ${row.lib.padEnd(15)} ${row.op.padEnd(34)} ${row.mode.padEnd(22)} best ${fmtMs(row.bestMs).padStart(7)} ms  median ${fmtMs(row.medianMs).padStart(7)} ms  p90 ${fmtMs(row.p90Ms).padStart(7)} ms  (${row.samples})${per}`,
  )
  return row
}

/**
 * Times `fn` one call per sample, after `warmup` untimed calls. `teardown`
 * (given what fn returned) runs after each call, timed apart.
 */
function measure(spec, fn, { samples = SAMPLES, warmup = 2, batch = 1, teardown } = {}) {
  for (let i = 0; i < warmup; i++) {
    const r = fn()
    teardown?.(r)
  }
  const ns = []
  const tns = []
  for (let i = 0; i < samples; i++) {
    const t0 = now()
    const r = fn()
    ns.push(Number(now() - t0))
    if (teardown) {
      const t1 = now()
      teardown(r)
      tns.push(Number(now() - t1))
    }
  }
  return record(spec, ns, { batch, teardownNs: tns })
}

/** One check of a result's correctness: recorded, printed when it fails. */
function check(what, ok, details) {
  checks.push({ what, ok, ...(ok ? {} : { details }) })
  if (!ok) console.log(`  CHECK FAILED: ${what}${details === undefined ? '' : `: ${typeof details === 'string' ? details : JSON.stringify(details).slice(0, 2000)}`}`)
  return ok
}

function target(t) {
  const reasons = []
  if (addonLoaded?.debug) reasons.push('debug build of the addon')
  if (t.size !== undefined && t.size < t.targetSize) reasons.push(`measured at ${t.size.toLocaleString('en-US')} ${t.unit}, the target is for ${t.targetSize.toLocaleString('en-US')}`)
  if (t.correct === false) reasons.push('the result it times failed its check')
  const row = { measure: t.measure, mode: t.mode, target: t.target, figure: t.figure, verdict: t.pass ? 'PASS' : 'FAIL', valid: reasons.length === 0, ...(reasons.length ? { why: reasons.join('; ') } : {}) }
  targets.push(row)
  return row
}

function memory(db) {
  fullGc()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, keys: db?.stats().keys }
}
const memDelta = (a, b) => Object.fromEntries(Object.keys(a).filter((k) => typeof a[k] === 'number' && typeof b[k] === 'number').map((k) => [k, b[k] - a[k]]))

const dirs = []
const BASE = process.env.BENCH_DIR ?? tmpdir()
mkdirSync(BASE, { recursive: true })
function tmp(name) {
  const d = mkdtempSync(join(BASE, `in-mem-bench-${name}-`))
  dirs.push(d)
  return d
}

/** One piece of work: a failure is recorded and the others go on. */
async function attempt(what, fn) {
  try {
    await fn()
  } catch (e) {
    errors[what] = String(e?.stack ?? e)
    console.log(`  ${what} FAILED: ${e?.message ?? e}`)
  }
}

// ----- the libraries ---------------------------------------------------------

let addonLoaded = null
let addonRaced = false
let Database = null
if (wantLib('in-mem')) ({ Database, loaded: addonLoaded, raced: addonRaced } = loadInMem(root, require, { debugNote: ' (targets are reported but not valid)' }))
let Sqlite = null
if (wantLib('better-sqlite3')) {
  try {
    Sqlite = require('better-sqlite3')
  } catch (e) {
    skipped.push({ lib: 'better-sqlite3', op: '*', why: `does not load: ${e.message}` })
    console.log(`better-sqlite3 does not load (${e.message}); its reference rows are skipped`)
  }
}

/** in-mem's modes here: memory, and a durable directory in buffered mode. */
const IN_MEM_MODES = [
  { mode: 'memory', cls: 'memory', open: () => Database.open() },
  { mode: 'buffered', cls: 'nosync', open: (dir) => Database.open(dir ?? tmp('history-buffered'), { durability: 'buffered' }) },
].filter((m) => MODES.has(m.mode))

/** The peer's database for an in-mem mode: in memory beside memory mode, a WAL file (synchronous=NORMAL) beside buffered. */
function openSqlite(cls) {
  const file = cls === 'memory' ? ':memory:' : join(tmp('sqlite'), 'bench.db')
  const db = new Sqlite(file)
  if (file !== ':memory:') {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
  }
  db.exec('CREATE TABLE kv (run BLOB NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (run, key)) WITHOUT ROWID')
  return { db, file, mode: file === ':memory:' ? 'in-memory db' : 'WAL synchronous=NORMAL' }
}
const sqliteSize = (file) => {
  if (file === ':memory:') return 0
  let total = 0
  for (const suffix of ['', '-wal']) {
    try {
      total += statSync(file + suffix).size
    } catch {
      // no such file yet
    }
  }
  return total
}
/** Loads keys 0..n-1 of a run into the peer's table (LOAD_BATCH per transaction); `edit` may change rows. */
function sqliteLoad(s, runId, n) {
  const insert = s.db.prepare('INSERT INTO kv (run, key, value) VALUES (?, ?, ?)')
  const tx = s.db.transaction((from, to) => {
    for (let i = from; i < to; i++) insert.run(runId, keyOf(i), packr.pack(valueOf(i)))
  })
  for (let at = 0; at < n; at += LOAD_BATCH) tx(at, Math.min(n, at + LOAD_BATCH))
}

// ----- 1. replay ---------------------------------------------------------------

/** Times replay of `run` (whole, or `at`), with reads from the view. */
function timeReplay(db, run, built, { op, mode, cls, at, note, extra }) {
  const replayOnce = () => {
    const v = at === undefined ? db.replay(run) : db.replay(run, { at })
    sink += v.kv.count() + v.events.length() + v.state.list().length + (v.kv.get(built.probeKey) === undefined ? 0 : 1)
    return v
  }
  return measure({ lib: 'in-mem', op, mode, cls, ...(note ? { note } : {}), ...extra }, replayOnce, { samples: SAMPLES, warmup: 2, teardown: (v) => v.close() })
}

/** Checks that replay(run) and replay(run, { at: mid }) equal the live snapshots. */
function checkReplay(db, run, built, liveNow, label) {
  const whole = db.replay(run)
  let ok = true
  try {
    const got = snapshot(whole, built.docs)
    ok = check(`replay equals the live run (${label})`, got === liveNow, firstDifference(liveNow, got)) && ok
  } finally {
    whole.close()
  }
  const half = db.replay(run, { at: built.mid.version })
  try {
    ok = check(`replay at the midpoint (version ${built.mid.version}) reports that version (${label})`, half.at === built.mid.version, { at: half.at }) && ok
    const got = snapshot(half, built.docs)
    ok = check(`replay at the midpoint equals the live run then (${label})`, got === built.mid.snapshot, firstDifference(built.mid.snapshot, got)) && ok
  } finally {
    half.close()
  }
  return ok
}

/** Where two snapshot strings first differ, for the report. */
function firstDifference(want, got) {
  if (want === got) return undefined
  let i = 0
  while (i < want.length && want[i] === got[i]) i++
  return { at: i, want: want.slice(Math.max(0, i - 80), i + 160), got: got.slice(Math.max(0, i - 80), i + 160), wantLength: want.length, gotLength: got.length }
}

async function replaySection(m) {
  console.log(`\nreplay, in-mem ${m.mode}`)
  const dir = m.mode === 'memory' ? undefined : tmp('history-replay')
  let db = m.open(dir)
  try {
    const run = db.runs.begin({ name: 'replayed' })
    const t0 = now()
    const built = buildRun(db, run, REPLAY_OPS, 0x1234567)
    const buildMs = ms(Number(now() - t0))
    const commits = db.runs.log(run).length
    const liveNow = snapshot(db.scope(run), built.docs)
    console.log(
      `  built a run of ${built.ops.toLocaleString('en-US')} operations in ${commits.toLocaleString('en-US')} commits (${fmtMs(buildMs)} ms): ${Object.entries(built.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    )
    check(`every state.cas at the tracked version succeeded (${m.mode})`, built.casFailures.length === 0, built.casFailures.slice(0, 5))
    let correct = checkReplay(db, run, built, liveNow, m.mode)

    const small = db.runs.begin({ name: 'replayed-small' })
    const smallBuilt = buildRun(db, small, Math.max(10, Math.floor(REPLAY_OPS / 10)), 0x7654321)
    const smallLive = snapshot(db.scope(small), smallBuilt.docs)
    const smallCorrect = checkReplay(db, small, smallBuilt, smallLive, `${m.mode}, run of ${smallBuilt.ops} ops`)

    const extra = (b, c) => ({ runOps: b.ops, runCommits: c, dbKeys: db.stats().keys })
    const smallCommits = db.runs.log(small).length
    const whole = timeReplay(db, run, built, { op: `replay (${built.ops} ops)`, mode: m.mode, cls: m.cls, extra: extra(built, commits) })
    const half = timeReplay(db, run, built, { op: `replay at midpoint (${built.mid.ops} ops)`, mode: m.mode, cls: m.cls, at: built.mid.version, extra: extra(built, commits) })
    const smallRow = timeReplay(db, small, smallBuilt, { op: `replay (${smallBuilt.ops} ops)`, mode: m.mode, cls: m.cls, extra: extra(smallBuilt, smallCommits) })
    ratios.push({ what: `replay: ${built.ops}-op run ÷ ${smallBuilt.ops}-op run (medians)`, mode: m.mode, ratio: whole.medianMs / smallRow.medianMs, opsRatio: built.ops / smallBuilt.ops })
    target({ measure: 'replay of a 10,000-operation run (median)', mode: m.mode, target: `≤ ${TARGETS.replayMs} ms`, figure: `${fmtMs(whole.medianMs)} ms`, pass: whole.medianMs <= TARGETS.replayMs, size: built.ops, targetSize: TARGET_SIZES.replayOps, unit: 'operations', correct })

    if (dir !== undefined) {
      // The run log is durable: close (a checkpoint) and reopen, check and time again.
      db.close()
      const t1 = now()
      db = m.open(dir)
      const reopenMs = ms(Number(now() - t1))
      console.log(`  closed and reopened the directory (${fmtMs(reopenMs)} ms to open)`)
      correct = checkReplay(db, run, built, liveNow, `${m.mode}, after reopening`) && correct
      const again = timeReplay(db, run, built, { op: `replay (${built.ops} ops)`, mode: `${m.mode}, reopened`, cls: m.cls, extra: extra(built, commits) })
      target({ measure: 'replay of a 10,000-operation run (median), after reopening', mode: m.mode, target: `≤ ${TARGETS.replayMs} ms`, figure: `${fmtMs(again.medianMs)} ms`, pass: again.medianMs <= TARGETS.replayMs, size: built.ops, targetSize: TARGET_SIZES.replayOps, unit: 'operations', correct })
      // The close's checkpoint moved the run's older versions to history
      // files (SPEC §17): the replays now read them from disk.
      const onDisk = db.stats().memory.historyOnDisk
      console.log(`  history on disk after the reopen: ${onDisk.versions} versions in ${onDisk.files} files (${fmtMs(onDisk.bytes / 1024)} KiB)`)
      const againHalf = timeReplay(db, run, built, { op: `replay at midpoint (${built.mid.ops} ops)`, mode: `${m.mode}, reopened`, cls: m.cls, at: built.mid.version, extra: extra(built, commits) })
      ratios.push({ what: 'replay at midpoint: history on disk ÷ in memory (medians)', mode: m.mode, ratio: againHalf.medianMs / half.medianMs })
      target({ measure: 'replay of a 10,000-operation run, history on disk ÷ in memory (medians)', mode: m.mode, target: `≤ ${TARGETS.replayOnDiskRatio}×`, figure: `${(again.medianMs / whole.medianMs).toFixed(2)}×`, pass: onDisk.versions > 0 && again.medianMs <= TARGETS.replayOnDiskRatio * whole.medianMs, size: built.ops, targetSize: TARGET_SIZES.replayOps, unit: 'operations', correct })
    }

    // The same replays in a database that holds much more than the run.
    if (OTHER_KEYS > 0) {
      const t2 = now()
      const per = Math.ceil(OTHER_KEYS / OTHER_RUNS)
      let written = 0
      for (let r = 0; r < OTHER_RUNS && written < OTHER_KEYS; r++) {
        const other = db.runs.begin({ name: `other-${r}` })
        const n = Math.min(per, OTHER_KEYS - written)
        loadKeys(db, other, n)
        for (let e = 0; e < 10; e++) db.events.append(other, 'message', { e })
        written += n
      }
      const keys = db.stats().keys
      console.log(`  wrote ${written.toLocaleString('en-US')} keys to ${OTHER_RUNS} other runs (${fmtMs(ms(Number(now() - t2)))} ms); the database now holds ${keys.toLocaleString('en-US')} keys`)
      const crowdedOk = checkReplay(db, run, built, liveNow, `${m.mode}, with other runs' data`)
      const mode = `${m.mode}, +${written >= 1000 ? `${Math.round(written / 1000)}K` : written} other keys`
      const cWhole = timeReplay(db, run, built, { op: `replay (${built.ops} ops)`, mode, cls: m.cls, extra: extra(built, commits) })
      const cHalf = timeReplay(db, run, built, { op: `replay at midpoint (${built.mid.ops} ops)`, mode, cls: m.cls, at: built.mid.version, extra: extra(built, commits) })
      const cSmall = timeReplay(db, small, smallBuilt, { op: `replay (${smallBuilt.ops} ops)`, mode, cls: m.cls, extra: extra(smallBuilt, smallCommits) })
      ratios.push({ what: `replay (${built.ops} ops): with ${written} other keys ÷ alone (medians)`, mode: m.mode, ratio: cWhole.medianMs / whole.medianMs })
      ratios.push({ what: `replay at midpoint: with ${written} other keys ÷ alone (medians)`, mode: m.mode, ratio: cHalf.medianMs / half.medianMs })
      ratios.push({ what: `replay (${smallBuilt.ops} ops): with ${written} other keys ÷ alone (medians)`, mode: m.mode, ratio: cSmall.medianMs / smallRow.medianMs })
      target({
        measure: `replay of a 10,000-operation run (median), database holding ${written.toLocaleString('en-US')} other keys`,
        mode: m.mode,
        target: `≤ ${TARGETS.replayMs} ms`,
        figure: `${fmtMs(cWhole.medianMs)} ms`,
        pass: cWhole.medianMs <= TARGETS.replayMs,
        size: built.ops,
        targetSize: TARGET_SIZES.replayOps,
        unit: 'operations',
        correct: correct && crowdedOk && smallCorrect,
      })
    }
  } finally {
    db.close()
  }
}

// ----- 2. fork -----------------------------------------------------------------

async function forkSection(m) {
  console.log(`\nfork, in-mem ${m.mode}`)
  const db = m.open()
  try {
    const parent = db.runs.begin({ name: 'fork-parent' })
    const m0 = memory(db)
    const t0 = now()
    const rawBytes = loadKeys(db, parent, FORK_KEYS)
    const loadMs = ms(Number(now() - t0))
    const m1 = memory(db)
    const parentKeys = db.kv.count(parent)
    console.log(
      `  parent: ${parentKeys.toLocaleString('en-US')} keys, ${fmtBytes(rawBytes)} of raw keys + values (loaded in ${fmtMs(loadMs)} ms; RSS ${fmtDelta(m1.rss - m0.rss)}, db keys +${(m1.keys - m0.keys).toLocaleString('en-US')})`,
    )
    check(`the parent holds ${FORK_KEYS} keys (${m.mode})`, parentKeys === FORK_KEYS, { parentKeys })

    // Untimed warm-up forks, before the memory baseline.
    for (let i = 0; i < 3; i++) db.runs.fork(parent, { name: 'warm-up' })
    const before = memory(db)
    const forkNs = []
    const firstGetNs = []
    const forks = []
    const order = shuffled(FORK_KEYS, 0x51ed27)
    let wrong = 0
    for (let i = 0; i < FORKS; i++) {
      const a = now()
      const f = db.runs.fork(parent)
      const b = now()
      const k = order[i % FORK_KEYS]
      const v = db.kv.get(f, keyOf(k))
      const c = now()
      forkNs.push(Number(b - a))
      firstGetNs.push(Number(c - b))
      if (v?.n !== k) wrong++
      forks.push(f)
    }
    const after = memory(db)
    check(`the first read through each fork returns the parent's value (${m.mode})`, wrong === 0, { wrong, of: FORKS })
    const forkRow = record({ lib: 'in-mem', op: `runs.fork (${FORK_KEYS} keys)`, mode: m.mode, cls: m.cls, parentKeys: FORK_KEYS }, forkNs)
    record({ lib: 'in-mem', op: 'first kv.get through a new fork', mode: m.mode, cls: m.cls, parentKeys: FORK_KEYS }, firstGetNs)

    const d = memDelta(before, after)
    const perFork = { rss: d.rss / FORKS, heapUsed: d.heapUsed / FORKS, external: d.external / FORKS, keys: d.keys / FORKS }
    console.log(
      `  memory over ${FORKS} forks: RSS ${fmtDelta(d.rss)} (${fmtDelta(perFork.rss)}/fork), heapUsed ${fmtDelta(d.heapUsed)}, external ${fmtDelta(d.external)}, db keys +${d.keys} (${perFork.keys.toFixed(1)}/fork); one copy of the parent would be ${fmtBytes(rawBytes)} and ${FORK_KEYS.toLocaleString('en-US')} keys`,
    )
    const forkMemory = { mode: m.mode, forks: FORKS, parentKeys: FORK_KEYS, parentRawBytes: rawBytes, parentLoad: memDelta(m0, m1), before, after, delta: d, perFork }
    results.push({ lib: 'in-mem', op: `memory of ${FORKS} forks`, mode: m.mode, cls: m.cls, memory: forkMemory })
    target({ measure: `runs.fork of a 100,000-key run (median of ${FORKS})`, mode: m.mode, target: `≤ ${TARGETS.forkMs} ms`, figure: `${fmtMs(forkRow.medianMs)} ms`, pass: forkRow.medianMs <= TARGETS.forkMs, size: FORK_KEYS, targetSize: TARGET_SIZES.forkKeys, unit: 'keys', correct: wrong === 0 })
    target({
      measure: 'fork copies no values: RSS growth per fork < 1% of the parent\'s raw bytes',
      mode: m.mode,
      target: `< ${fmtBytes(rawBytes * TARGETS.forkRssFraction)}/fork`,
      figure: `${fmtBytes(perFork.rss)}/fork`,
      pass: perFork.rss < rawBytes * TARGETS.forkRssFraction,
      size: FORK_KEYS,
      targetSize: TARGET_SIZES.forkKeys,
      unit: 'keys',
    })
    target({
      measure: 'fork copies no keys: db.stats().keys growth per fork < 0.1% of the parent\'s keys',
      mode: m.mode,
      target: `< ${(FORK_KEYS * TARGETS.forkKeysFraction).toFixed(0)} keys/fork`,
      figure: `${perFork.keys.toFixed(1)} keys/fork`,
      pass: perFork.keys < FORK_KEYS * TARGETS.forkKeysFraction,
      size: FORK_KEYS,
      targetSize: TARGET_SIZES.forkKeys,
      unit: 'keys',
    })

    // Reads through a fork beside the same reads on the parent.
    const fork = forks[forks.length - 1]
    let at = 0
    const reads = (run) => () => {
      for (let i = 0; i < READS; i++) {
        sink += db.kv.get(run, keyOf(order[at])).step
        if (++at === FORK_KEYS) at = 0
      }
    }
    const rf = measure({ lib: 'in-mem', op: `kv.get through a fork (×${READS})`, mode: m.mode, cls: m.cls }, reads(fork), { samples: SAMPLES, warmup: 2, batch: READS })
    const rp = measure({ lib: 'in-mem', op: `kv.get on the parent (×${READS})`, mode: m.mode, cls: m.cls }, reads(parent), { samples: SAMPLES, warmup: 2, batch: READS })
    ratios.push({ what: 'kv.get: through a fork ÷ on the parent (medians)', mode: m.mode, ratio: rf.p50NsPerOp / rp.p50NsPerOp })
    const count = (run) => () => {
      const n = db.kv.count(run)
      if (n !== FORK_KEYS) throw new Error(`kv.count returned ${n}, expected ${FORK_KEYS}`)
      sink += n
    }
    const cf = measure({ lib: 'in-mem', op: `kv.count through a fork (${FORK_KEYS})`, mode: m.mode, cls: m.cls }, count(fork), { samples: Math.max(3, Math.min(SAMPLES, 10)), warmup: 1 })
    const cp = measure({ lib: 'in-mem', op: `kv.count on the parent (${FORK_KEYS})`, mode: m.mode, cls: m.cls }, count(parent), { samples: Math.max(3, Math.min(SAMPLES, 10)), warmup: 1 })
    ratios.push({ what: 'kv.count of every key: through a fork ÷ on the parent (medians)', mode: m.mode, ratio: cf.medianMs / cp.medianMs })
    return { forkRow }
  } finally {
    db.close()
  }
}

/** The reference: better-sqlite3 "forks" by copying the parent's rows. */
function forkByCopy(m, mine) {
  if (!Sqlite) return
  console.log(`\nfork by copy (reference), better-sqlite3 beside in-mem ${m.mode}`)
  const s = openSqlite(m.cls)
  try {
    const parent = randomBytes(16)
    sqliteLoad(s, parent, FORK_KEYS)
    const copy = s.db.prepare('INSERT INTO kv (run, key, value) SELECT ?, key, value FROM kv WHERE run = ?')
    const countOf = s.db.prepare('SELECT count(*) FROM kv WHERE run = ?').pluck()
    const fork = s.db.transaction((child) => copy.run(child, parent).changes)
    const warm = randomBytes(16)
    if (fork(warm) !== FORK_KEYS) throw new Error('better-sqlite3: the copy did not copy every row')
    const before = memory(null)
    const sizeBefore = sqliteSize(s.file)
    const children = []
    const row = measure(
      { lib: 'better-sqlite3', op: `fork by copy: INSERT…SELECT (${FORK_KEYS} rows)`, mode: s.mode, cls: m.cls, note: 'reference: copies every row' },
      () => {
        const child = randomBytes(16)
        children.push(child)
        return fork(child)
      },
      { samples: COPY_SAMPLES, warmup: 0 },
    )
    const after = memory(null)
    const copies = children.length
    check(`better-sqlite3 copies hold every row (${s.mode})`, children.every((c) => countOf.get(c) === FORK_KEYS))
    const d = memDelta(before, after)
    const fileGrowth = sqliteSize(s.file) - sizeBefore
    console.log(
      `  ${copies} copies: RSS ${fmtDelta(d.rss)} (${fmtDelta(d.rss / copies)}/copy)${s.file === ':memory:' ? '' : `, file + WAL ${fmtDelta(fileGrowth)} (${fmtDelta(fileGrowth / copies)}/copy)`}`,
    )
    results.push({ lib: 'better-sqlite3', op: `memory of ${copies} copies`, mode: s.mode, cls: m.cls, memory: { copies, delta: d, perCopy: { rss: d.rss / copies }, fileGrowth, perCopyFile: fileGrowth / copies } })
    if (mine) ratios.push({ what: 'fork: better-sqlite3 copy ÷ in-mem runs.fork (medians; >1: in-mem is faster)', mode: m.mode, peerMode: s.mode, ratio: row.medianMs / mine.forkRow.medianMs })
  } finally {
    s.db.close()
  }
}

// ----- 3. diff -----------------------------------------------------------------

/** The 1% changes: which keys are overwritten, deleted and added (fixed by the key count). */
function plannedChanges(n) {
  const total = Math.max(3, Math.round(n * DIFF_CHANGE))
  const order = shuffled(n, 0xd1ff)
  const nChanged = Math.round(total * 0.4)
  const nRemoved = Math.round(total * 0.3)
  const nAdded = total - nChanged - nRemoved
  return {
    changed: order.slice(0, nChanged).sort((a, b) => a - b),
    removed: order.slice(nChanged, nChanged + nRemoved).sort((a, b) => a - b),
    added: Array.from({ length: nAdded }, (_, i) => n + i),
  }
}
/** A changed key's new value. */
const changedValue = (i) => ({ ...valueOf(i), step: (i + 1) & 127, text: 'changed in the second run' })

function applyChanges(db, run, plan) {
  db.transaction(run, (tx) => {
    for (const i of plan.changed) tx.kv.put(keyOf(i), changedValue(i))
    for (const i of plan.removed) tx.kv.delete(keyOf(i))
    for (const i of plan.added) tx.kv.put(keyOf(i), valueOf(i))
  })
}

const same = (x, y) => JSON.stringify(x) === JSON.stringify(y)

/** Checks a RunDiff of (a, b) against the plan: exactly those keys, with both values. */
function checkDiff(d, plan, label) {
  const keysOf = (entries) => entries.map((e) => e.key).sort()
  const want = { added: plan.added.map(keyOf), removed: plan.removed.map(keyOf), changed: plan.changed.map(keyOf) }
  let ok = true
  for (const kind of ['added', 'removed', 'changed']) {
    const got = keysOf(d.kv[kind])
    ok = check(`diff ${label}: kv.${kind} is exactly the ${want[kind].length} keys ${kind}`, same(got, want[kind]), { count: got.length, want: want[kind].length, extra: got.filter((k) => !want[kind].includes(k)).slice(0, 5), missing: want[kind].filter((k) => !got.includes(k)).slice(0, 5) }) && ok
  }
  const idx = (k) => Number(k.slice(4))
  const badValues = [
    ...d.kv.added.filter((e) => !same(e.value, valueOf(idx(e.key)))).map((e) => ['added', e.key]),
    ...d.kv.removed.filter((e) => !same(e.value, valueOf(idx(e.key)))).map((e) => ['removed', e.key]),
    ...d.kv.changed.filter((e) => !same(e.a, valueOf(idx(e.key))) || !same(e.b, changedValue(idx(e.key)))).map((e) => ['changed', e.key]),
  ]
  ok = check(`diff ${label}: every entry carries the right values`, badValues.length === 0, badValues.slice(0, 5)) && ok
  const others = ['state', 'json', 'traces', 'machines'].map((p) => d[p].added.length + d[p].removed.length + d[p].changed.length).reduce((a, b) => a + b, 0)
  ok = check(`diff ${label}: no entries of other primitives, no events`, others === 0 && d.events.common === 0 && d.events.a.length === 0 && d.events.b.length === 0, { others, events: { common: d.events.common, a: d.events.a.length, b: d.events.b.length } }) && ok
  ok = check(`diff ${label}: same is false`, d.same === false) && ok
  return ok
}
const entriesOf = (d) => ['kv', 'state', 'json', 'traces', 'machines'].map((p) => d[p].added.length + d[p].removed.length + d[p].changed.length).reduce((a, b) => a + b, 0)

async function diffSection(m) {
  console.log(`\ndiff, in-mem ${m.mode}`)
  const db = m.open()
  const plan = plannedChanges(DIFF_KEYS)
  const planned = plan.added.length + plan.removed.length + plan.changed.length
  const out = {}
  try {
    // A run and a fork of it, changed by 1%.
    const a = db.runs.begin({ name: 'diff-parent' })
    loadKeys(db, a, DIFF_KEYS)
    const unchanged = db.runs.fork(a, { name: 'diff-fork-unchanged' })
    const b = db.runs.fork(a, { name: 'diff-fork' })
    applyChanges(db, b, plan)
    const dSame = db.diff(a, unchanged)
    check(`diff of a run and an unchanged fork is empty (${m.mode})`, dSame.same === true && entriesOf(dSame) === 0, { entries: entriesOf(dSame), same: dSame.same })
    const okFork = checkDiff(db.diff(a, b), plan, `parent vs fork (${m.mode})`)
    let entries = 0
    out.fork = measure(
      { lib: 'in-mem', op: `diff parent vs fork (${DIFF_KEYS} keys, ${planned} changes)`, mode: m.mode, cls: m.cls, keys: DIFF_KEYS, changes: planned, correct: okFork },
      () => {
        const d = db.diff(a, b)
        entries = entriesOf(d)
        sink += entries
      },
      { samples: DIFF_SAMPLES, warmup: 1 },
    )
    out.fork.entries = entries

    // Two runs written in full, differing by the same changes.
    const a2 = db.runs.begin({ name: 'diff-a' })
    const b2 = db.runs.begin({ name: 'diff-b' })
    loadKeys(db, a2, DIFF_KEYS)
    loadKeys(db, b2, DIFF_KEYS)
    applyChanges(db, b2, plan)
    const okIndependent = checkDiff(db.diff(a2, b2), plan, `two independent runs (${m.mode})`)
    out.independent = measure(
      { lib: 'in-mem', op: `diff two runs (${DIFF_KEYS} keys, ${planned} changes)`, mode: m.mode, cls: m.cls, keys: DIFF_KEYS, changes: planned, correct: okIndependent },
      () => {
        const d = db.diff(a2, b2)
        entries = entriesOf(d)
        sink += entries
      },
      { samples: DIFF_SAMPLES, warmup: 1 },
    )
    out.independent.entries = entries
    console.log(`  entries reported: parent vs fork ${out.fork.entries}, independent ${out.independent.entries} (planned ${planned}: ${plan.changed.length} changed, ${plan.removed.length} removed, ${plan.added.length} added)`)
  } finally {
    db.close()
  }
  return { ...out, plan, planned }
}

/** The reference: the same diff as a LEFT JOIN each way in better-sqlite3, values decoded. */
function diffBySql(m, mine) {
  if (!Sqlite) return
  console.log(`\ndiff by join (reference), better-sqlite3 beside in-mem ${m.mode}`)
  const s = openSqlite(m.cls)
  const plan = mine?.plan ?? plannedChanges(DIFF_KEYS)
  try {
    const a = randomBytes(16)
    const b = randomBytes(16)
    sqliteLoad(s, a, DIFF_KEYS)
    sqliteLoad(s, b, DIFF_KEYS)
    const put = s.db.prepare('INSERT OR REPLACE INTO kv (run, key, value) VALUES (?, ?, ?)')
    const del = s.db.prepare('DELETE FROM kv WHERE run = ? AND key = ?')
    s.db.transaction(() => {
      for (const i of plan.changed) put.run(b, keyOf(i), packr.pack(changedValue(i)))
      for (const i of plan.removed) del.run(b, keyOf(i))
      for (const i of plan.added) put.run(b, keyOf(i), packr.pack(valueOf(i)))
    })()
    const query = s.db
      .prepare(
        'SELECT x.key, x.value AS a, y.value AS b FROM kv x LEFT JOIN kv y ON y.run = $b AND y.key = x.key WHERE x.run = $a AND (y.value IS NULL OR y.value <> x.value) ' +
          'UNION ALL SELECT y.key, NULL, y.value FROM kv y WHERE y.run = $b AND NOT EXISTS (SELECT 1 FROM kv x WHERE x.run = $a AND x.key = y.key)',
      )
      .raw()
    const diff = () => {
      const out = { added: [], removed: [], changed: [] }
      for (const [key, va, vb] of query.all({ a, b })) {
        if (va === null) out.added.push({ key, value: unpackr.unpack(vb) })
        else if (vb === null) out.removed.push({ key, value: unpackr.unpack(va) })
        else out.changed.push({ key, a: unpackr.unpack(va), b: unpackr.unpack(vb) })
      }
      return out
    }
    const first = diff()
    const ok = checkDiff({ kv: first, state: { added: [], removed: [], changed: [] }, json: { added: [], removed: [], changed: [] }, traces: { added: [], removed: [], changed: [] }, machines: { added: [], removed: [], changed: [] }, events: { common: 0, a: [], b: [] }, same: false }, plan, `better-sqlite3 join (${s.mode})`)
    let entries = 0
    const row = measure(
      { lib: 'better-sqlite3', op: `diff by LEFT JOIN (${DIFF_KEYS} rows, ${first.added.length + first.removed.length + first.changed.length} changes)`, mode: s.mode, cls: m.cls, note: 'reference: a join on the primary key', correct: ok },
      () => {
        const d = diff()
        entries = d.added.length + d.removed.length + d.changed.length
        sink += entries
      },
      { samples: COPY_SAMPLES, warmup: 1 },
    )
    row.entries = entries
    if (mine?.independent) ratios.push({ what: 'diff two runs: better-sqlite3 join ÷ in-mem db.diff (medians; >1: in-mem is faster)', mode: m.mode, peerMode: s.mode, ratio: row.medianMs / mine.independent.medianMs })
    if (mine?.fork) ratios.push({ what: 'diff: better-sqlite3 join ÷ in-mem db.diff of parent vs fork (medians; >1: in-mem is faster)', mode: m.mode, peerMode: s.mode, ratio: row.medianMs / mine.fork.medianMs })
  } finally {
    s.db.close()
  }
}

// ----- running -------------------------------------------------------------------

try {
  for (const m of wantLib('in-mem') ? IN_MEM_MODES : []) {
    if (SECTIONS.has('replay')) await attempt(`in-mem replay ${m.mode}`, () => replaySection(m))
  }
  for (const m of IN_MEM_MODES) {
    if (!SECTIONS.has('fork')) break
    let mine = null
    if (wantLib('in-mem')) await attempt(`in-mem fork ${m.mode}`, async () => (mine = await forkSection(m)))
    await attempt(`better-sqlite3 fork-by-copy ${m.mode}`, () => forkByCopy(m, mine))
  }
  for (const m of IN_MEM_MODES) {
    if (!SECTIONS.has('diff')) break
    let mine = null
    if (wantLib('in-mem')) await attempt(`in-mem diff ${m.mode}`, async () => (mine = await diffSection(m)))
    await attempt(`better-sqlite3 diff ${m.mode}`, () => diffBySql(m, mine))
  }
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
}

// ----- report ----------------------------------------------------------------

console.log('\n=== history (ms per call; lower is better) ===')
console.log(`${'library'.padEnd(15)} ${'op'.padEnd(48)} ${'mode'.padEnd(26)} ${'best'.padStart(8)} ${'median'.padStart(8)} ${'p90'.padStart(8)} ${'n'.padStart(4)}`)
for (const r of results) {
  if (r.samples === undefined) continue
  console.log(`${r.lib.padEnd(15)} ${r.op.padEnd(48)} ${r.mode.padEnd(26)} ${fmtMs(r.bestMs).padStart(8)} ${fmtMs(r.medianMs).padStart(8)} ${fmtMs(r.p90Ms).padStart(8)} ${String(r.samples).padStart(4)}`)
}
if (ratios.length) {
  console.log('\n=== ratios ===')
  for (const r of ratios) console.log(`${r.what.padEnd(86)} ${r.mode.padEnd(9)} ${r.ratio.toFixed(2).padStart(8)}×${r.opsRatio ? `  (operations ${r.opsRatio.toFixed(1)}×)` : ''}`)
}
console.log('\n=== targets (judged on the median) ===')
for (const t of targets) {
  console.log(`${t.verdict.padEnd(4)} ${t.measure.padEnd(92)} ${t.mode.padEnd(9)} ${t.figure.padStart(14)}  target ${t.target}${t.valid ? '' : `  (not valid: ${t.why})`}`)
}
const failedChecks = checks.filter((c) => !c.ok)
console.log(`\nchecks: ${checks.length - failedChecks.length} of ${checks.length} passed`)
for (const c of failedChecks) console.log(`  FAILED: ${c.what}`)
for (const s of skipped) console.log(`\nskipped: ${s.lib} ${s.op}: ${s.why}`)
for (const [what, e] of Object.entries(errors)) console.log(`\n${what} failed:\n${e}`)

const machine = machineInfo()
console.log(`\nmachine: ${machine.cpu} (${machine.cores} cores), node ${machine.node}, ${machine.platform}`)
const ended = endOfRun({ root, loaded: addonLoaded, raced: addonRaced, probeAtStart, probe })
const out = {
  date: new Date().toISOString(),
  ...ended,
  machine,
  config: {
    dir: BASE,
    modes: [...MODES],
    sections: [...SECTIONS],
    replayOps: REPLAY_OPS,
    txEvery: TX_EVERY,
    otherKeys: OTHER_KEYS,
    otherRuns: OTHER_RUNS,
    forkKeys: FORK_KEYS,
    forks: FORKS,
    diffKeys: DIFF_KEYS,
    diffChange: DIFF_CHANGE,
    samples: SAMPLES,
    diffSamples: DIFF_SAMPLES,
    copySamples: COPY_SAMPLES,
    reads: READS,
    loadBatch: LOAD_BATCH,
    valueBytes: packr.pack(VALUE).length,
    sqlite: Sqlite ? new Sqlite(':memory:').prepare('SELECT sqlite_version()').pluck().get() : null,
  },
  results,
  ratios,
  targets,
  checks,
  skipped,
  errors,
  sink,
}
const OUT = process.env.BENCH_OUT ?? join(here, 'results', 'history.json')
mkdirSync(dirname(OUT), { recursive: true })
writeFileSync(OUT, JSON.stringify(out, null, 2))
console.log(`\nwrote ${relative(process.cwd(), OUT)}`)
if (failedChecks.length > 0 || Object.keys(errors).length > 0) process.exitCode = 1
