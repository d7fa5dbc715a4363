// worker_threads scaling of in-mem's durable writes (SPEC §12: "two
// worker_threads on disjoint runs ≥ 1.8 × one thread"), measured in one
// process run, never as a timed test.
//
//   node bench/workers.mjs       (needs a built dist/ and native addon: npm run build)
//
// Environment: BENCH_TIME_MS (how long each round's workers write, default
// 1000), BENCH_WARMUP_MS (each worker's warm-up before the round starts,
// default 200), BENCH_ROUNDS (rounds of every worker count, default 3; the
// figure of a count is its median round), BENCH_WORKERS (comma-separated
// worker counts, default "1,2,4"; the ratios are against the first),
// BENCH_DIR (where the temporary databases go, default the OS tmp dir; a real
// disk, not tmpfs), BENCH_OUT (the results file, default
// bench/results/workers.json), BENCH_LAYOUT (default "shared", the measure;
// "separate": each worker on a data directory of its own, and "memory": each
// worker on a memory database of its own — controls that share no engine,
// showing what the machine allows; their results go to
// bench/results/workers-<layout>.json).
//
// What is measured, and how it is kept fair:
// - A round with W workers: a fresh data directory is opened in buffered mode
//   by the main thread, which begins one run per worker; then W worker_threads
//   (this file again) each open the same path with Database.open(dir,
//   { durability: 'buffered' }) — in-process opens of one path share one
//   engine (SPEC §7) — and write to their own run only (disjoint runs).
// - Each worker loads in-mem, opens, and warms up (BENCH_WARMUP_MS of puts to
//   keys "w:<i>" of its run), then says it is ready and waits on a shared
//   flag. When every worker is ready the main thread releases them at once
//   (Atomics.notify), sleeps BENCH_TIME_MS on a timer (it does nothing else
//   meanwhile), and raises the stop flag; each worker checks it every 64 puts.
// - A put is kv.put(run, "k:<i>", value) for i = 0, 1, 2...: every put
//   inserts a new key (unlike kv.mjs, which overwrites a preloaded key set),
//   so the keys a worker wrote can be counted afterwards. The value is
//   kv.mjs's ~100-byte object with its `step` field set to i & 127.
// - The round's figure is the total puts of all its workers ÷ the wall time
//   from the release to the last worker's stop (process.hrtime, one clock for
//   every thread of the process); each worker's own count and time are
//   recorded too, to show whether the engine shares itself fairly.
// - Rounds of the worker counts are interleaved (1, 2, 4, 1, 2, 4, ...), so a
//   drift of the machine's speed moves every count alike; the speed probe is
//   printed at the start and at the end.
// - Correctness, checked after every round (a failure fails the suite, exit
//   status 1): each worker's run has exactly as many "k:" keys as that
//   worker reported, seen through the worker's own handle and then through
//   the main thread's; its last key holds the value it wrote and the next
//   key does not exist; after the main thread closes the database and opens
//   it again (recovery from the WAL), every run still has its count.
// - On a machine with C cores, W workers cannot go past min(W, C)× one
//   worker; the core count is printed with the ratios.

import { endOfRun, jsonParseProbe, loadInMem, machineInfo } from './common.mjs'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

/** The value: kv.mjs's object (100 bytes of plain MessagePack); `step` moves with the key. */
const VALUE = { role: 'assistant', step: 42, score: 0.875, done: false, tags: ['plan', 'tool'], text: 'The meeting moved to 3pm, room 4B.' }
const CHECK_EVERY = 64 // puts between two looks at the stop flag

// Flags shared by the main thread and its workers (an Int32Array over a SharedArrayBuffer).
const GO = 0 // 1: start writing
const STOP = 1 // 1: stop writing

if (!isMainThread) {
  await worker(workerData)
} else {
  await main()
}

// ----- a worker ----------------------------------------------------------------

async function worker({ dir, run: given, id, warmupMs, flags, ends }) {
  const { Database } = require('../dist/index.js')
  const flag = new Int32Array(flags)
  const end = new BigInt64Array(ends)
  const db = dir === null ? Database.open() : Database.open(dir, { durability: 'buffered' })
  try {
    const run = given ?? db.runs.begin({ name: `worker ${id}` })
    const kv = db.kv
    const value = { ...VALUE }
    // Warm-up: the same puts, to other keys of the same run.
    const warmEnd = performance.now() + warmupMs
    let w = 0
    do {
      for (let c = 0; c < CHECK_EVERY; c++, w++) {
        value.step = w & 127
        kv.put(run, `w:${w}`, value)
      }
    } while (performance.now() < warmEnd)
    parentPort.postMessage({ type: 'ready', id })
    Atomics.wait(flag, GO, 0)
    const t0 = process.hrtime.bigint()
    let i = 0
    while (Atomics.load(flag, STOP) === 0) {
      for (let c = 0; c < CHECK_EVERY; c++, i++) {
        value.step = i & 127
        kv.put(run, `k:${i}`, value)
      }
    }
    const t1 = process.hrtime.bigint()
    end[id] = t1
    // What this worker's own handle sees (the main thread checks the same through its handle).
    const counted = kv.count(run, { prefix: 'k:' })
    const last = i > 0 ? kv.get(run, `k:${i - 1}`) : undefined
    const lastOk = i === 0 || (last?.text === VALUE.text && last?.step === ((i - 1) & 127))
    parentPort.postMessage({ type: 'done', id, run, ops: i, warmupOps: w, ns: Number(t1 - t0), counted, lastOk })
  } finally {
    db.close()
  }
}

// ----- the main thread ---------------------------------------------------------

async function main() {
  const TIME = Number(process.env.BENCH_TIME_MS ?? 1000)
  const WARMUP = Number(process.env.BENCH_WARMUP_MS ?? 200)
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
  const COUNTS = (process.env.BENCH_WORKERS ?? '1,2,4').split(',').map(Number)
  if (COUNTS.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_WORKERS: worker counts must be positive integers, got ${process.env.BENCH_WORKERS}`)
  if (!(ROUNDS >= 1)) throw new Error(`BENCH_ROUNDS must be ≥ 1, got ${process.env.BENCH_ROUNDS}`)
  const LAYOUT = process.env.BENCH_LAYOUT ?? 'shared'
  if (!['shared', 'separate', 'memory'].includes(LAYOUT)) throw new Error(`BENCH_LAYOUT must be shared, separate or memory, got ${LAYOUT}`)
  const OUT = process.env.BENCH_OUT ?? join(here, 'results', LAYOUT === 'shared' ? 'workers.json' : `workers-${LAYOUT}.json`)
  const BASE = process.env.BENCH_DIR ?? tmpdir()
  mkdirSync(BASE, { recursive: true })

  const probe = () => jsonParseProbe(VALUE)
  const probeAtStart = probe()
  console.log(`speed probe: JSON.parse of the value ${probeAtStart.toFixed(0)} ns`)

  const { Database, loaded, raced } = loadInMem(root, require, { indent: '  ' })
  const cores = cpus().length

  const fmtOps = (x) => (!Number.isFinite(x) ? '-' : x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}K` : x.toFixed(0))
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
  }

  /**
   * One round: `n` workers on disjoint runs of one fresh directory (or, as
   * controls, of a directory each, or of a memory database each); returns its
   * figures, checked.
   */
  async function round(n) {
    const dirs = LAYOUT === 'memory' ? [] : Array.from({ length: LAYOUT === 'shared' ? 1 : n }, (_, d) => mkdtempSync(join(BASE, `in-mem-bench-workers-${n}-${d}-`)))
    const dirOf = (id) => (LAYOUT === 'memory' ? null : LAYOUT === 'shared' ? dirs[0] : dirs[id])
    const handles = new Map()
    const openAll = () => {
      for (const d of dirs) handles.set(d, Database.open(d, { durability: 'buffered' }))
    }
    const closeAll = () => {
      for (const db of handles.values()) db.close()
      handles.clear()
    }
    try {
      openAll()
      // Memory databases are private to their worker, which begins its own run.
      const runs = Array.from({ length: n }, (_, id) => (dirOf(id) === null ? null : handles.get(dirOf(id)).runs.begin({ name: `worker ${id}` })))
      const flags = new SharedArrayBuffer(8)
      const ends = new SharedArrayBuffer(8 * n)
      const flag = new Int32Array(flags)
      const reports = new Array(n)
      let readyCount = 0
      let onAllReady
      const allReady = new Promise((resolve) => (onAllReady = resolve))
      const finished = []
      for (let id = 0; id < n; id++) {
        const w = new Worker(fileURLToPath(import.meta.url), { workerData: { dir: dirOf(id), run: runs[id], id, warmupMs: WARMUP, flags, ends } })
        finished.push(
          new Promise((resolve, reject) => {
            w.on('message', (m) => {
              if (m.type === 'ready' && ++readyCount === n) onAllReady()
              if (m.type === 'done') reports[m.id] = m
            })
            w.once('error', reject)
            w.once('exit', (code) => (reports[id] ? resolve() : reject(new Error(`worker ${id} exited with code ${code} before reporting`))))
          }),
        )
      }
      // A worker that fails before it is ready must not leave the round waiting.
      const failed = Promise.all(finished).then(
        () => new Promise(() => {}),
        (e) => {
          throw e
        },
      )
      try {
        await Promise.race([allReady, failed])
        const t0 = process.hrtime.bigint()
        Atomics.store(flag, GO, 1)
        Atomics.notify(flag, GO)
        await new Promise((resolve) => setTimeout(resolve, TIME))
        Atomics.store(flag, STOP, 1)
        await Promise.all(finished)
        const end = new BigInt64Array(ends)
        const last = end.reduce((a, b) => (b > a ? b : a), t0)
        const wallNs = Number(last - t0)
        const perWorker = reports.map((r) => ({ ops: r.ops, ms: r.ns / 1e6, opsPerSec: (r.ops * 1e9) / r.ns, warmupOps: r.warmupOps }))
        const ops = perWorker.reduce((a, r) => a + r.ops, 0)

        // Correctness: each worker's keys, counted by the worker itself, then
        // through the main thread's handle, then after a close and reopen.
        for (let id = 0; id < n; id++) {
          const r = reports[id]
          if (r.counted !== r.ops) throw new Error(`${n} workers, worker ${id}: its own handle counts ${r.counted} "k:" keys in its run, it reported ${r.ops} puts`)
          if (!r.lastOk) throw new Error(`${n} workers, worker ${id}: its last key k:${r.ops - 1} does not hold the value it wrote`)
        }
        const expectKeys = (label) => {
          for (let id = 0; id < n; id++) {
            if (dirOf(id) === null) continue
            const db = handles.get(dirOf(id))
            const want = reports[id].ops
            const have = db.kv.count(runs[id], { prefix: 'k:' })
            if (have !== want) throw new Error(`${n} workers, worker ${id}${label}: its run has ${have} "k:" keys, it reported ${want} puts`)
            if (want > 0) {
              const v = db.kv.get(runs[id], `k:${want - 1}`)
              if (v?.text !== VALUE.text || v?.step !== ((want - 1) & 127)) {
                throw new Error(`${n} workers, worker ${id}${label}: k:${want - 1} holds ${JSON.stringify(v)}, not the value it wrote`)
              }
            }
            if (db.kv.get(runs[id], `k:${want}`) !== undefined) throw new Error(`${n} workers, worker ${id}${label}: k:${want} exists, past its reported count`)
          }
        }
        expectKeys('')
        closeAll()
        openAll()
        expectKeys(' (after close and reopen)')
        return { workers: n, opsPerSec: (ops * 1e9) / wallNs, ops, wallMs: wallNs / 1e6, perWorker }
      } finally {
        Atomics.store(flag, GO, 1)
        Atomics.store(flag, STOP, 1)
        Atomics.notify(flag, GO)
        await Promise.allSettled(finished)
      }
    } finally {
      closeAll()
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    }
  }

  const WHERE = {
    shared: 'buffered, worker_threads on disjoint runs of one data directory',
    separate: 'buffered, worker_threads each on a data directory of its own (control: no engine shared)',
    memory: 'memory mode, worker_threads each on a memory database of its own (control: no engine shared, no files)',
  }[LAYOUT]
  console.log(`\nin-mem kv.put, ${WHERE} (${cores} cores)`)
  const rounds = []
  const errors = {}
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const n of COUNTS) {
        const x = await round(n)
        rounds.push({ round: r, ...x })
        console.log(
          `  ${`${n} worker${n === 1 ? '' : 's'}`.padEnd(10)} round ${r + 1}  ${fmtOps(x.opsPerSec).padStart(8)} ops/s  (${x.ops} puts in ${x.wallMs.toFixed(0)} ms; per worker ${x.perWorker.map((w) => fmtOps(w.opsPerSec)).join(', ')})  keys checked`,
        )
      }
    }
  } catch (e) {
    errors.workers = String(e?.stack ?? e)
    console.log(`  FAILED: ${e?.message ?? e}`)
  }

  const results = COUNTS.map((n) => {
    const mine = rounds.filter((x) => x.workers === n)
    return {
      workers: n,
      opsPerSec: mine.length ? median(mine.map((x) => x.opsPerSec)) : undefined,
      perWorkerOpsPerSec: mine.length ? median(mine.map((x) => x.opsPerSec / n)) : undefined,
      rounds: mine.map((x) => x.opsPerSec),
    }
  })
  const base = results[0]
  const ratios = results.slice(1).map((x) => ({ workers: x.workers, vsWorkers: base.workers, ratio: x.opsPerSec / base.opsPerSec }))

  console.log(`\n=== worker_threads: kv.put, ${WHERE} (ops/s, all workers; median of rounds) ===`)
  console.log(`${'workers'.padEnd(8)} ${'ops/s'.padStart(9)} ${'per worker'.padStart(11)}  rounds`)
  for (const x of results) {
    console.log(`${String(x.workers).padEnd(8)} ${fmtOps(x.opsPerSec).padStart(9)} ${fmtOps(x.perWorkerOpsPerSec).padStart(11)}  ${x.rounds.map(fmtOps).join(', ') || '-'}`)
  }
  console.log(`\n=== scaling (÷ ${base.workers} worker${base.workers === 1 ? '' : 's'}; ${cores} cores: at most ${cores}×) ===`)
  for (const q of ratios) {
    const target = LAYOUT === 'shared' && q.workers === 2 && q.vsWorkers === 1 && Number.isFinite(q.ratio) ? `  SPEC §12 target ≥ 1.8×: ${q.ratio >= 1.8 ? 'PASS' : 'FAIL'}` : ''
    console.log(`${q.workers}w ÷ ${q.vsWorkers}w  ${Number.isFinite(q.ratio) ? `${q.ratio.toFixed(2)}×` : '-'}${target}`)
  }
  for (const [what, e] of Object.entries(errors)) console.log(`\n${what} failed:\n${e}`)

  console.log()
  const ended = endOfRun({ root, loaded, raced, probeAtStart, probe })
  const out = {
    date: new Date().toISOString(),
    ...ended,
    machine: machineInfo(),
    config: { timeMs: TIME, warmupMs: WARMUP, rounds: ROUNDS, workers: COUNTS, checkEvery: CHECK_EVERY, dir: BASE, layout: LAYOUT, durability: LAYOUT === 'memory' ? 'memory' : 'buffered' },
    results,
    rounds,
    ratios,
    errors,
  }
  mkdirSync(dirname(OUT), { recursive: true })
  writeFileSync(OUT, JSON.stringify(out, null, 2))
  console.log(`\nwrote ${relative(process.cwd(), OUT) || OUT}`)
  if (Object.keys(errors).length > 0) process.exitCode = 1
}
