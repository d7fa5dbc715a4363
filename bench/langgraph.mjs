// LangGraph.js checkpointers (issue 13, SPEC §12: InMemSaver put, getTuple
// and list ≥ 3 × SqliteSaver in the same run, in a durable mode of equal
// promise, and less disk): in-mem's InMemSaver beside SqliteSaver
// (@langchain/langgraph-checkpoint-sqlite on better-sqlite3, WAL journal)
// and LangGraph's MemorySaver, in one process.
//
//   node bench/langgraph.mjs    (needs a built dist/ and native addon: npm run build)
//
// Pairs of equal promise, each printed with its ratio (peer time ÷ in-mem time):
//   InMemSaver strict   vs SqliteSaver synchronous=FULL    (nothing acknowledged is lost)
//   InMemSaver buffered vs SqliteSaver synchronous=NORMAL  (a process death loses nothing; an OS crash may lose the last writes)
//   InMemSaver memory   vs MemorySaver                     (no files)
//
// Measures, each on its own thread of a fresh saver:
// - step: `put` of a checkpoint of CHANNELS channels (~100-byte values) of
//   which 2 changed (their `newVersions`), then `putWrites` of those 2
//   writes: one graph step's persistence. BENCH_STEPS steps, time per step.
// - getTuple: of the newest checkpoint of that thread, BENCH_READS times.
// - list: `list(thread, { limit: 100 })` read whole, BENCH_LISTS times.
// - graph: a real StateGraph (CHANNELS channels; one node, looping, changes
//   2 per step) run BENCH_GRAPH_STEPS steps with LangGraph's default
//   durability, `async` (a step's checkpoint is written while the next step
//   runs; every one is stored when invoke resolves), BENCH_GRAPH_RUNS runs,
//   each on a new thread; time per run.
// - disk: bytes of the data directory (in-mem) or of the database files
//   (SQLite: main, -wal, -shm) after BENCH_DISK_STEPS steps and close.
// Every timed result is checked once (untimed): getTuple rebuilds the newest
// checkpoint's CHANNELS values exactly, list gives 100 checkpoints newest
// first, the graph ends in the expected state. A failed check is reported
// and its row marked invalid (exit status 1): a fast wrong answer is no figure.
//
// Environment: BENCH_STEPS (default 2000), BENCH_READS (2000), BENCH_LISTS
// (50), BENCH_GRAPH_STEPS (50), BENCH_GRAPH_RUNS (10), BENCH_DISK_STEPS
// (10000), BENCH_GRAPH_DURABILITY (async or sync; default async),
// BENCH_DIR (where the data goes; default the OS tmp dir),
// BENCH_OUT (default bench/results/langgraph.json).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MemorySaver, emptyCheckpoint, uuid6 } from '@langchain/langgraph-checkpoint'
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite'
import { Annotation, END, START, StateGraph } from '@langchain/langgraph'
import BetterSqlite3 from 'better-sqlite3'
import { addonInfo, dirBytes, endOfRun, jsonParseProbe, loadInMem, machineInfo } from './common.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const require = createRequire(import.meta.url)
const env = (k, d) => Number(process.env[k] ?? d)
const STEPS = env('BENCH_STEPS', 2000)
const READS = env('BENCH_READS', 2000)
const LISTS = env('BENCH_LISTS', 50)
const GRAPH_STEPS = env('BENCH_GRAPH_STEPS', 50)
const GRAPH_RUNS = env('BENCH_GRAPH_RUNS', 10)
const DISK_STEPS = env('BENCH_DISK_STEPS', 10000)
const CHANNELS = 20
/** LangGraph's durability for the graph runs: its default, `async` (a step's checkpoint is written while the next step runs), or BENCH_GRAPH_DURABILITY=sync. */
const DURABILITY = process.env.BENCH_GRAPH_DURABILITY ?? 'async'
const OUT = process.env.BENCH_OUT ?? join(here, 'results', 'langgraph.json')
const base = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'in-mem-bench-langgraph-'))

const machine = machineInfo()
const probe = () => jsonParseProbe({ id: 1, name: 'langgraph', tags: ['a', 'b'], n: 3.5 })
const probeAtStart = probe()
const { Database, loaded, raced } = loadInMem(root, require)
const { InMemSaver } = require('../dist/langgraph/index.js')

/** The savers: a name, how to open one on a fresh place, its files, how to close it. */
const SAVERS = {
  'in-mem strict': (dir) => inmem(dir, 'strict'),
  'in-mem buffered': (dir) => inmem(dir, 'buffered'),
  'in-mem memory': () => inmem(undefined, 'memory'),
  'sqlite FULL': (dir) => sqlite(dir, 'FULL'),
  'sqlite NORMAL': (dir) => sqlite(dir, 'NORMAL'),
  MemorySaver: () => ({ saver: new MemorySaver(), close: () => {}, bytes: () => undefined }),
}
const PAIRS = [
  ['in-mem strict', 'sqlite FULL'],
  ['in-mem buffered', 'sqlite NORMAL'],
  ['in-mem memory', 'MemorySaver'],
]

function inmem(dir, durability) {
  const db = durability === 'memory' ? Database.open() : Database.open(dir, { durability })
  return { saver: new InMemSaver(db), close: () => db.close(), bytes: () => (dir ? dirBytes(dir) : undefined) }
}

function sqlite(dir, synchronous) {
  const file = join(dir, 'checkpoints.db')
  const db = new BetterSqlite3(file)
  const saver = new SqliteSaver(db)
  saver.setup()
  db.pragma(`synchronous=${synchronous}`)
  return { saver, close: () => db.close(), bytes: () => dirBytes(dir) }
}

let places = 0
function open(name) {
  const dir = join(base, `${name.replace(/\W+/g, '-')}-${places++}`)
  mkdirSync(dir)
  return { ...SAVERS[name](dir), dir }
}

// ----- one graph step's persistence -------------------------------------------

const value = (ch, step) => ({ channel: ch, step, text: `value of ${ch} at step ${step} `.padEnd(80, '.') })

/** Writes `steps` steps on `thread`; returns the last config and the expected newest values. */
async function putSteps(saver, thread, steps) {
  const values = {}
  const versions = {}
  for (let c = 0; c < CHANNELS; c++) {
    values[`ch${c}`] = value(c, 0)
    versions[`ch${c}`] = saver.getNextVersion(undefined)
  }
  let config = { configurable: { thread_id: thread, checkpoint_ns: '' } }
  const t0 = process.hrtime.bigint()
  for (let s = 0; s < steps; s++) {
    const changed = s === 0 ? Object.keys(values) : [`ch${s % CHANNELS}`, `ch${(s + 7) % CHANNELS}`]
    const newVersions = {}
    for (const ch of changed) {
      if (s > 0) {
        values[ch] = value(ch, s)
        versions[ch] = saver.getNextVersion(versions[ch])
      }
      newVersions[ch] = versions[ch]
    }
    const checkpoint = { ...emptyCheckpoint(), id: uuid6(s), channel_values: { ...values }, channel_versions: { ...versions } }
    config = await saver.put(config, checkpoint, { source: 'loop', step: s, parents: {} }, newVersions)
    await saver.putWrites(config, changed.slice(0, 2).map((ch) => [ch, values[ch]]), `task-${s}`)
  }
  const ns = Number(process.hrtime.bigint() - t0) / steps
  return { config, values, ns }
}

const checks = []
function check(row, ok, what) {
  if (!ok) checks.push(`${row}: ${what}`)
  return ok
}

async function measureSaver(name) {
  const row = { saver: name }
  const s = open(name)
  const { values, ns } = await putSteps(s.saver, 'bench', STEPS)
  row.stepNs = ns
  const thread = { configurable: { thread_id: 'bench', checkpoint_ns: '' } }
  const newest = await s.saver.getTuple(thread)
  row.valid = check(name, JSON.stringify(newest?.checkpoint.channel_values) === JSON.stringify(values) || deepEqual(newest?.checkpoint.channel_values, values), 'getTuple did not rebuild the newest values')
  let t0 = process.hrtime.bigint()
  for (let i = 0; i < READS; i++) await s.saver.getTuple(thread)
  row.getTupleNs = Number(process.hrtime.bigint() - t0) / READS
  const listed = []
  for await (const t of s.saver.list(thread, { limit: 100 })) listed.push(t.metadata.step)
  const want = Array.from({ length: Math.min(100, STEPS) }, (_, i) => STEPS - 1 - i)
  row.valid = check(name, JSON.stringify(listed) === JSON.stringify(want), `list gave ${listed.length} steps, not ${want.length} newest first`) && row.valid
  t0 = process.hrtime.bigint()
  for (let i = 0; i < LISTS; i++) {
    let n = 0
    for await (const _ of s.saver.list(thread, { limit: 100 })) n++
    if (n !== want.length) row.valid = check(name, false, 'a timed list came short')
  }
  row.listNs = Number(process.hrtime.bigint() - t0) / LISTS
  s.close()
  rmSync(s.dir, { recursive: true, force: true })

  // The graph, end to end.
  const g = open(name)
  const graph = buildGraph(g.saver)
  t0 = process.hrtime.bigint()
  let final
  for (let r = 0; r < GRAPH_RUNS; r++) final = await graph.invoke({ step: 0 }, { configurable: { thread_id: `graph-${r}` }, durability: DURABILITY, recursionLimit: GRAPH_STEPS + 10 })
  row.graphNs = Number(process.hrtime.bigint() - t0) / GRAPH_RUNS
  row.valid = check(name, final.step === GRAPH_STEPS && final.ch0 === expectedGraphCh0(), `the graph ended at step ${final.step}`) && row.valid
  // Every step's checkpoint is stored once invoke has resolved.
  let stored = 0
  for await (const _ of g.saver.list({ configurable: { thread_id: `graph-${GRAPH_RUNS - 1}` } })) stored++
  row.valid = check(name, stored === GRAPH_STEPS + 2, `the last graph run stored ${stored} checkpoints, not ${GRAPH_STEPS + 2}`) && row.valid
  g.close()
  rmSync(g.dir, { recursive: true, force: true })

  // Bytes on disk.
  const d = open(name)
  await putSteps(d.saver, 'disk', DISK_STEPS)
  d.close()
  row.diskBytes = d.bytes()
  rmSync(d.dir, { recursive: true, force: true })
  return row
}

function deepEqual(a, b) {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => deepEqual(a[k], b[k]))
}

const GraphState = Annotation.Root(
  Object.fromEntries([['step', Annotation()], ...Array.from({ length: CHANNELS }, (_, c) => [`ch${c}`, Annotation()])]),
)

function buildGraph(checkpointer) {
  return new StateGraph(GraphState)
    .addNode('work', (s) => ({ step: s.step + 1, [`ch${s.step % CHANNELS}`]: `step ${s.step}`, [`ch${(s.step + 7) % CHANNELS}`]: `step ${s.step}` }))
    .addEdge(START, 'work')
    .addConditionalEdges('work', (s) => (s.step >= GRAPH_STEPS ? END : 'work'), ['work', END])
    .compile({ checkpointer })
}

function expectedGraphCh0() {
  let v
  for (let s = 0; s < GRAPH_STEPS; s++) if (s % CHANNELS === 0 || (s + 7) % CHANNELS === 0) v = `step ${s}`
  return v
}

// ----- run and report ---------------------------------------------------------------

console.log(`LangGraph checkpointers: ${STEPS} steps of ${CHANNELS} channels (2 change per step), getTuple ×${READS}, list of 100 ×${LISTS}, a ${GRAPH_STEPS}-step graph ×${GRAPH_RUNS} (durability ${DURABILITY}), disk after ${DISK_STEPS} steps`)
console.log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`)
const rows = []
const errors = {}
for (const name of Object.keys(SAVERS)) {
  try {
    rows.push(await measureSaver(name))
  } catch (e) {
    errors[name] = e.stack ?? String(e)
    console.log(`${name} failed: ${e.message}`)
  }
}
rmSync(base, { recursive: true, force: true })

const us = (ns) => (ns === undefined ? '-' : ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} µs`)
const kb = (b) => (b === undefined ? '-' : `${(b / 1e6).toFixed(2)} MB`)
const ratio = (peer, ours) => (peer === undefined || ours === undefined || ours === 0 ? undefined : peer / ours)
const MEASURES = [
  ['put+putWrites / step', 'stepNs', us],
  ['getTuple newest', 'getTupleNs', us],
  ['list 100', 'listNs', us],
  [`${GRAPH_STEPS}-step graph`, 'graphNs', us],
  [`disk after ${DISK_STEPS} steps`, 'diskBytes', kb],
]
const ratios = []
console.log()
console.log(`${'measure'.padEnd(26)} ${'in-mem'.padStart(11)} ${'peer'.padStart(11)}  ratio (peer ÷ in-mem)`)
for (const [a, b] of PAIRS) {
  const x = rows.find((r) => r.saver === a)
  const y = rows.find((r) => r.saver === b)
  console.log(`-- ${a} vs ${b}${x?.valid === false || y?.valid === false ? ' (INVALID: a check failed)' : ''}`)
  for (const [label, key, fmt] of MEASURES) {
    const r = ratio(y?.[key], x?.[key])
    if (x?.[key] === undefined && y?.[key] === undefined) continue
    ratios.push({ inMem: a, peer: b, measure: key, ratio: r })
    console.log(`${label.padEnd(26)} ${fmt(x?.[key]).padStart(11)} ${fmt(y?.[key]).padStart(11)}  ${r === undefined ? '-' : `${r.toFixed(2)}×`}`)
  }
}
const target = (a, b) =>
  ['stepNs', 'getTupleNs', 'listNs'].every((k) => (ratios.find((r) => r.inMem === a && r.peer === b && r.measure === k)?.ratio ?? 0) >= 3) &&
  (ratios.find((r) => r.inMem === a && r.peer === b && r.measure === 'diskBytes')?.ratio ?? 0) > 1
console.log()
for (const [a, b] of PAIRS.slice(0, 2)) console.log(`${target(a, b) ? 'PASS' : 'FAIL'}  ${a} put, getTuple, list ≥ 3 × ${b}, and less disk`)
for (const c of checks) console.log(`check failed: ${c}`)
const end = endOfRun({ root, loaded, raced, probeAtStart, probe })
mkdirSync(dirname(OUT), { recursive: true })
writeFileSync(
  OUT,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      machine,
      config: { steps: STEPS, reads: READS, lists: LISTS, graphSteps: GRAPH_STEPS, graphRuns: GRAPH_RUNS, graphDurability: DURABILITY, diskSteps: DISK_STEPS, channels: CHANNELS },
      results: rows,
      ratios,
      targets: PAIRS.slice(0, 2).map(([a, b]) => ({ inMem: a, peer: b, pass: target(a, b) })),
      checks,
      errors,
      ...end,
      debugBuild: addonInfo(root)?.debug ?? null,
    },
    null,
    2,
  ),
)
console.log(`wrote ${OUT}`)
if (checks.length > 0 || Object.keys(errors).length > 0) process.exitCode = 1
