// Vector search (SPEC §14, issue 12): in-mem's HNSW graph (usearch, inside
// the addon, behind db.vectors) beside hnswlib-node, same data, same run.
//
// Data: BENCH_VECTORS vectors (default 10,000) of BENCH_DIM dimensions
// (default 384) around 50 random centres, metadata { cluster, even }; the
// queries are BENCH_QUERIES more points of the same kind. Measured: building
// the index (in-mem: upsertMany in commits of 1,000, memory mode; hnswlib:
// addPoint), k=10 search at ef 64 (unfiltered, and filtered to the half with
// `even: true`), in-mem's exact scan, reopening a data directory with the
// graph loaded from beside its checkpoint and with it rebuilt from the
// records, and recall@10 against a brute-force
// computation in JS. The suite fails (exit 1) if in-mem's exact search
// disagrees with brute force or its graph's recall is under 0.8: what it
// times must be right.
//
// Environment: BENCH_VECTORS, BENCH_DIM, BENCH_QUERIES, BENCH_OUT (results
// JSON; default bench/results/vectors.json).

import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addonInfo, endOfRun, jsonParseProbe, machineInfo } from './common.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const require = createRequire(import.meta.url)
const N = Number(process.env.BENCH_VECTORS ?? 10_000)
const D = Number(process.env.BENCH_DIM ?? 384)
const Q = Number(process.env.BENCH_QUERIES ?? 200)
const K = 10
const EF = 64
const out = process.env.BENCH_OUT ?? join(here, 'results', 'vectors.json')

const probeValue = { id: 1, text: 'x'.repeat(80) }
const probeAtStart = jsonParseProbe(probeValue)
const loaded = addonInfo(root)
const { Database } = require('../dist/index.js')
const raced = JSON.stringify(loaded) !== JSON.stringify(addonInfo(root))
console.log(`vectors: ${N} × ${D} dimensions, ${Q} queries, k=${K}, ef=${EF}; ${JSON.stringify(machineInfo())}`)
if (loaded?.debug) console.log('(a debug build of the addon: figures are for checking, not comparing)')

// ----- data ------------------------------------------------------------------

let seed = 12345
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0
  return seed / 2 ** 32
}
const centres = Array.from({ length: 50 }, () => Float32Array.from({ length: D }, () => rand() * 2 - 1))
function point(i) {
  const c = centres[i % centres.length]
  return Float32Array.from(c, (x) => x + (rand() - 0.5) * 0.6)
}
const data = Array.from({ length: N }, (_, i) => point(i))
const queries = Array.from({ length: Q }, (_, i) => point(i * 7 + 3))
const meta = (i) => ({ cluster: i % centres.length, even: i % 2 === 0 })

function cosine(a, b) {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

/** The ids of the K nearest by brute force (only those `admit` passes). */
function truth(q, admit = () => true) {
  const best = []
  for (let i = 0; i < N; i++) {
    if (!admit(i)) continue
    const s = cosine(q, data[i])
    if (best.length < K || s > best[best.length - 1][0]) {
      best.push([s, i])
      best.sort((x, y) => y[0] - x[0])
      if (best.length > K) best.pop()
    }
  }
  return best.map(([, i]) => i)
}
const t0 = Date.now()
const truths = queries.map((q) => truth(q))
const evenTruths = queries.map((q) => truth(q, (i) => i % 2 === 0))
console.log(`brute-force ground truth in ${Date.now() - t0} ms`)

const recall = (found, want) => found.filter((i) => want.includes(i)).length / want.length

/** Mean µs per call of `fn(q, i)` over the queries (after one warm-up pass), and what it returned. */
function perQuery(fn) {
  for (let i = 0; i < Math.min(Q, 20); i++) fn(queries[i], i)
  const results = []
  const start = process.hrtime.bigint()
  for (let i = 0; i < Q; i++) results.push(fn(queries[i], i))
  return { us: Number(process.hrtime.bigint() - start) / 1000 / Q, results }
}

const rows = []
const failures = []
function row(library, op, us, rec) {
  rows.push({ library, op, usPerOp: us, opsPerSec: 1e6 / us, recall: rec })
  console.log(`  ${library.padEnd(14)} ${op.padEnd(34)} ${us.toFixed(1).padStart(10)} µs/op ${(1e6 / us).toFixed(0).padStart(9)} ops/s${rec === undefined ? '' : `  recall@${K} ${rec.toFixed(3)}`}`)
}

// ----- in-mem ----------------------------------------------------------------

{
  const db = Database.open()
  const run = db.runs.begin({ name: 'bench vectors' })
  db.vectors.create(run, 'v', { dimension: D, metric: 'cosine' })
  const start = process.hrtime.bigint()
  for (let b = 0; b < N; b += 1000) {
    db.vectors.upsertMany(
      run,
      'v',
      data.slice(b, b + 1000).map((vector, j) => ({ id: String(b + j), vector, metadata: meta(b + j) })),
    )
  }
  const buildMs = Number(process.hrtime.bigint() - start) / 1e6
  rows.push({ library: 'in-mem', op: 'build', ms: buildMs })
  console.log(`  in-mem         build (upsertMany × ${Math.ceil(N / 1000)})${' '.repeat(8)} ${buildMs.toFixed(0)} ms`)
  const ids = (hits) => hits.map((h) => Number(h.id))
  const graph = perQuery((q) => ids(db.vectors.search(run, 'v', q, { k: K, ef: EF })))
  row('in-mem', `search k=${K} ef=${EF}`, graph.us, graph.results.reduce((s, r, i) => s + recall(r, truths[i]), 0) / Q)
  const filtered = perQuery((q) => ids(db.vectors.search(run, 'v', q, { k: K, ef: EF, filter: { even: true } })))
  row('in-mem', `search k=${K} ef=${EF}, filter 1/2`, filtered.us, filtered.results.reduce((s, r, i) => s + recall(r, evenTruths[i]), 0) / Q)
  if (filtered.results.some((r) => r.some((i) => i % 2 !== 0))) failures.push('in-mem: a filtered search returned a vector the filter rejects')
  const exactQ = Math.min(Q, 50)
  const exactStart = process.hrtime.bigint()
  let exactWrong = 0
  for (let i = 0; i < exactQ; i++) {
    const got = ids(db.vectors.search(run, 'v', queries[i], { k: K, exact: true }))
    if (recall(got, truths[i]) < 1) exactWrong++
  }
  const exactUs = Number(process.hrtime.bigint() - exactStart) / 1000 / exactQ
  row('in-mem', `search k=${K} exact`, exactUs, 1 - exactWrong / exactQ)
  // float32 vs float64 rounding may swap two equal-scored neighbours; more is a bug.
  if (exactWrong > Math.ceil(exactQ * 0.05)) failures.push(`in-mem: the exact search disagreed with brute force on ${exactWrong} of ${exactQ} queries`)
  const graphRecall = rows.find((r) => r.library === 'in-mem' && r.op.startsWith('search') && !r.op.includes('filter') && !r.op.includes('exact')).recall
  if (graphRecall < 0.8) failures.push(`in-mem: recall@${K} ${graphRecall.toFixed(3)} < 0.8`)
  db.close()
}

// ----- in-mem: reopening a data directory ------------------------------------

{
  const { mkdtempSync, readdirSync, rmSync } = require('node:fs')
  const { tmpdir } = require('node:os')
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'in-mem-bench-vectors-'))
  try {
    let db = Database.open(dir, { durability: 'buffered' })
    const run = db.runs.begin({ name: 'bench vectors reopen' })
    db.vectors.create(run, 'v', { dimension: D, metric: 'cosine' })
    for (let b = 0; b < N; b += 1000) db.vectors.upsertMany(run, 'v', data.slice(b, b + 1000).map((vector, j) => ({ id: String(b + j), vector })))
    db.close() // writes a checkpoint, and the graph beside it
    const open = (what) => {
      const start = process.hrtime.bigint()
      db = Database.open(dir, { durability: 'buffered', checkpointOnClose: false })
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      const { indexes } = db.stats().recovery
      const top = db.vectors.search(run, 'v', queries[0], { k: K }).map((h) => Number(h.id))
      if (recall(top, truths[0]) < 0.8) failures.push(`in-mem: after a reopen (${what}) the search found ${top}`)
      db.close()
      rows.push({ library: 'in-mem', op: `open, graph ${what}`, ms, indexes })
      console.log(`  in-mem         open, graph ${what.padEnd(26)} ${ms.toFixed(0)} ms  (${JSON.stringify(indexes)})`)
      return indexes
    }
    if (open('loaded').loaded !== 1) failures.push('in-mem: the graph saved beside the checkpoint was not loaded')
    for (const f of readdirSync(join(dir, 'checkpoints'))) if (f.endsWith('.indexes')) rmSync(join(dir, 'checkpoints', f), { recursive: true })
    if (open('rebuilt from the records').loaded !== 0) failures.push('in-mem: a graph loaded with its files removed')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// ----- hnswlib-node ------------------------------------------------------------

let hnswError
try {
  const { HierarchicalNSW } = require('hnswlib-node')
  const index = new HierarchicalNSW('cosine', D)
  const start = process.hrtime.bigint()
  index.initIndex(N, 16, 128)
  for (let i = 0; i < N; i++) index.addPoint(Array.from(data[i]), i)
  const buildMs = Number(process.hrtime.bigint() - start) / 1e6
  rows.push({ library: 'hnswlib-node', op: 'build', ms: buildMs })
  console.log(`  hnswlib-node   build (addPoint × ${N})${' '.repeat(13)} ${buildMs.toFixed(0)} ms`)
  index.setEf(EF)
  const plain = perQuery((q) => index.searchKnn(Array.from(q), K).neighbors)
  row('hnswlib-node', `search k=${K} ef=${EF}`, plain.us, plain.results.reduce((s, r, i) => s + recall(r, truths[i]), 0) / Q)
  const filtered = perQuery((q) => index.searchKnn(Array.from(q), K, (label) => label % 2 === 0).neighbors)
  row('hnswlib-node', `search k=${K} ef=${EF}, filter 1/2`, filtered.us, filtered.results.reduce((s, r, i) => s + recall(r, evenTruths[i]), 0) / Q)
} catch (e) {
  hnswError = e instanceof Error ? e.message : String(e)
  console.log(`  hnswlib-node   could not run: ${hnswError}`)
}

// ----- ratios -----------------------------------------------------------------

const ratios = []
for (const op of [`search k=${K} ef=${EF}`, `search k=${K} ef=${EF}, filter 1/2`, 'build']) {
  const a = rows.find((r) => r.library === 'in-mem' && r.op === op)
  const b = rows.find((r) => r.library === 'hnswlib-node' && r.op === op)
  if (!a || !b) continue
  const ratio = op === 'build' ? b.ms / a.ms : a.opsPerSec / b.opsPerSec
  ratios.push({ op, ratio })
}
console.log('\nin-mem ÷ hnswlib-node (>1: in-mem is faster)')
for (const { op, ratio } of ratios) console.log(`  ${op.padEnd(34)} ${ratio.toFixed(2)}×`)

const end = endOfRun({ root, loaded, raced, probeAtStart, probe: () => jsonParseProbe(probeValue) })
mkdirSync(dirname(out), { recursive: true })
writeFileSync(out, JSON.stringify({ config: { vectors: N, dimension: D, queries: Q, k: K, ef: EF }, machine: machineInfo(), rows, ratios, errors: hnswError ? { 'hnswlib-node': hnswError } : {}, failures, ...end }, null, 2))
if (failures.length > 0) {
  for (const f of failures) console.error(f)
  process.exit(1)
}
