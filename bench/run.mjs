// `npm run bench` (after the release build): runs the JS suites (bench/kv.mjs,
// then bench/primitives.mjs: events, state cells, JSON documents, traces;
// bench/durability.mjs: recovery, checkpoints, strict and group commit;
// bench/history.mjs: replay, fork, diff; bench/workers.mjs: kv.put from 1,
// 2 and 4 worker_threads on disjoint runs of one directory; bench/vectors.mjs:
// vector search beside hnswlib-node, on synthetic and real word vectors; bench/langgraph.mjs: InMemSaver beside
// SqliteSaver and MemorySaver; bench/server.mjs: server mode beside Redis; bench/values.mjs:
// agent-sized values (100 B to 100 KB strings, bytes and chat messages)
// beside lmdb-js and better-sqlite3, and RSS after overwrites; bench/memory.mjs:
// RSS of 1M keys beside lmdb-js and better-sqlite3, and of an overwrite-heavy
// run with each history option; bench/cold.mjs: 10,000 ended runs (≥ 5 GB) gone
// cold, a fresh open and the first read of a cold run, beside lmdb-js and
// classic-level — each prints its own targets; bench/codec.mjs:
// the value codec, plain MessagePack against msgpackr records with shared
// structures, alone and through kv.put/kv.get beside lmdb-js), then the Rust criterion bench of the engine, and prints one cross-language
// table with the SPEC §12 targets marked PASS/FAIL, and the primitives'
// figures with their ratios against the peers. Machine-readable results go
// to bench/results/ (kv.json from kv.mjs, primitives.json from
// primitives.mjs, workers.json from workers.mjs, server.json from
// server.mjs, values.json from values.mjs, memory.json from memory.mjs,
// codec.json from codec.mjs, cold.json from cold.mjs, summary.json from here).
//
// The strict and read comparisons (kv.mjs: kv.get against every peer's
// get, strict kv.put against the durable peers and the raw fdatasync;
// primitives.mjs: each primitive's strict write against better-sqlite3 FULL
// and lmdb synced, state.get against every peer's read; durability.mjs: the
// strict single writer) run BENCH_ROUNDS interleaved rounds (default 3) in
// their suite, and their targets here judge the median of the rounds'
// ratios; the value printed with a target shows each round's ratio in
// brackets, and the suites' results files record every round.
//
// A peer that fails to load is reported by the suite and skipped; a failed
// step (a JS suite or cargo) is reported here and the table shows what exists.
//
// Environment: everything bench/kv.mjs and bench/primitives.mjs read
// (BENCH_KEYS, BENCH_OPS, ...), and BENCH_SKIP_RUST=1 / BENCH_SKIP_JS=1 /
// BENCH_SKIP_PRIMITIVES=1 / BENCH_SKIP_DURABILITY=1 / BENCH_SKIP_HISTORY=1 /
// BENCH_SKIP_WORKERS=1 / BENCH_SKIP_VECTORS=1 / BENCH_SKIP_LANGGRAPH=1 /
// BENCH_SKIP_SERVER=1 / BENCH_SKIP_VALUES=1 / BENCH_SKIP_MEMORY=1 /
// BENCH_SKIP_CODEC=1 / BENCH_SKIP_COLD=1 to reuse the
// previous results of a step, and BENCH_RESULTS_DIR (where the results files
// are written and read, default bench/results; each suite is given its
// BENCH_OUT there).

import { fmtRatio, ratioOf, shownPath } from './common.mjs'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const resultsDir = process.env.BENCH_RESULTS_DIR ?? join(here, 'results')
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target')
const criterionHome = process.env.CRITERION_HOME ?? join(targetDir, 'criterion')
const started = Date.now()

/** What was measured: the commit, and how many files differed from it. */
function tree() {
  const git = (...a) => spawnSync('git', a, { cwd: root, encoding: 'utf8' })
  const head = git('rev-parse', '--short', 'HEAD').stdout?.trim()
  const dirty = git('status', '--porcelain', '--untracked-files=no').stdout?.split('\n').filter(Boolean).length
  return head ? `${head}${dirty ? ` + ${dirty} modified file${dirty === 1 ? '' : 's'}` : ''}` : 'unknown'
}
const measured = tree()
const problems = []

function step(title, cmd, args, env) {
  console.log(`\n### ${title}: ${cmd} ${args.join(' ')}\n`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit status ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}`
    problems.push(`${title} failed: ${why}`)
    console.log(`\n### ${title} FAILED: ${why}`)
  }
}

/** Where a suite writes its results: in resultsDir, where this script reads them. */
const out = (file) => ({ BENCH_OUT: join(resultsDir, file) })
const workersOut = (process.env.BENCH_LAYOUT ?? 'shared') === 'shared' ? out('workers.json') : {}
if (!process.env.BENCH_SKIP_JS) step('JS suite', process.execPath, [join(here, 'kv.mjs')], out('kv.json'))
if (!process.env.BENCH_SKIP_PRIMITIVES) step('JS primitives suite', process.execPath, [join(here, 'primitives.mjs')], out('primitives.json'))
if (!process.env.BENCH_SKIP_DURABILITY) step('JS durability suite', process.execPath, [join(here, 'durability.mjs')], out('durability.json'))
if (!process.env.BENCH_SKIP_HISTORY) step('JS history suite', process.execPath, [join(here, 'history.mjs')])
if (!process.env.BENCH_SKIP_WORKERS) step('JS worker_threads suite', process.execPath, [join(here, 'workers.mjs')], workersOut)
if (!process.env.BENCH_SKIP_VECTORS) step('JS vector search suite', process.execPath, [join(here, 'vectors.mjs')], out('vectors.json'))
if (!process.env.BENCH_SKIP_LANGGRAPH) step('JS LangGraph checkpointers suite', process.execPath, [join(here, 'langgraph.mjs')], out('langgraph.json'))
if (!process.env.BENCH_SKIP_SERVER) step('JS server mode suite', process.execPath, [join(here, 'server.mjs')], out('server.json'))
if (!process.env.BENCH_SKIP_VALUES) step('JS agent-sized values suite', process.execPath, [join(here, 'values.mjs')], out('values.json'))
if (!process.env.BENCH_SKIP_MEMORY) step('JS memory suite', process.execPath, [join(here, 'memory.mjs')], out('memory.json'))
if (!process.env.BENCH_SKIP_CODEC) step('JS codec suite', process.execPath, [join(here, 'codec.mjs')], out('codec.json'))
if (!process.env.BENCH_SKIP_COLD) step('JS cold runs suite', process.execPath, [join(here, 'cold.mjs')], out('cold.json'))
if (!process.env.BENCH_SKIP_RUST) step('Rust criterion bench', 'cargo', ['bench', '-p', 'in-mem-engine', '--bench', 'engine'], { CRITERION_HOME: criterionHome })

// ----- inputs ----------------------------------------------------------------

let kv = null
try {
  const file = join(resultsDir, 'kv.json')
  kv = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_JS && statSync(file).mtimeMs < started) {
    problems.push('bench/results/kv.json is from an earlier run (the JS suite did not write it)')
  }
} catch (e) {
  problems.push(`no JS results: ${e.message}`)
}

let prim = null
try {
  const file = join(resultsDir, 'primitives.json')
  prim = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_PRIMITIVES && statSync(file).mtimeMs < started) {
    problems.push('bench/results/primitives.json is from an earlier run (the primitives suite did not write it)')
  }
} catch (e) {
  problems.push(`no primitives results: ${e.message}`)
}
if (prim?.addon?.loaded?.debug) problems.push(`the primitives suite ran a debug build of the addon (${prim.addon.loaded.file}); its numbers are not release numbers`)
if (prim?.addon?.raced) problems.push('the native addon was being rebuilt while the primitives suite loaded it; which build ran is unknown')

let workers = null
try {
  const file = join(resultsDir, 'workers.json')
  workers = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_WORKERS && statSync(file).mtimeMs < started) {
    problems.push('bench/results/workers.json is from an earlier run (the worker_threads suite did not write it)')
  }
} catch (e) {
  problems.push(`no worker_threads results: ${e.message}`)
}
if (workers?.addon?.loaded?.debug) problems.push(`the worker_threads suite ran a debug build of the addon (${workers.addon.loaded.file}); its numbers are not release numbers`)
if (workers?.addon?.raced) problems.push('the native addon was being rebuilt while the worker_threads suite loaded it; which build ran is unknown')
for (const [what, e] of Object.entries(workers?.errors ?? {})) problems.push(`worker_threads suite, ${what}: ${e.split('\n')[0]}`)

let langgraph = null
try {
  const file = join(resultsDir, 'langgraph.json')
  langgraph = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_LANGGRAPH && statSync(file).mtimeMs < started) {
    problems.push('bench/results/langgraph.json is from an earlier run (the LangGraph suite did not write it)')
  }
} catch (e) {
  problems.push(`no LangGraph results: ${e.message}`)
}
if (langgraph?.addon?.loaded?.debug) problems.push(`the LangGraph suite ran a debug build of the addon (${langgraph.addon.loaded.file}); its numbers are not release numbers`)
for (const c of langgraph?.checks ?? []) problems.push(`LangGraph suite check failed: ${c}`)
for (const [what, e] of Object.entries(langgraph?.errors ?? {})) problems.push(`LangGraph suite, ${what}: ${e.split('\n')[0]}`)

let server = null
try {
  const file = join(resultsDir, 'server.json')
  server = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_SERVER && statSync(file).mtimeMs < started) {
    problems.push('bench/results/server.json is from an earlier run (the server mode suite did not write it)')
  }
} catch (e) {
  problems.push(`no server mode results: ${e.message}`)
}
if (server?.addon?.loaded?.debug) problems.push(`the server mode suite ran a debug build of the addon (${server.addon.loaded.file}); its numbers are not release numbers`)
for (const c of server?.checks ?? []) problems.push(`server mode suite check failed: ${c}`)
for (const [what, e] of Object.entries(server?.errors ?? {})) problems.push(`server mode suite, ${what}: ${e.split('\n')[0]}`)

let values = null
try {
  const file = join(resultsDir, 'values.json')
  values = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_VALUES && statSync(file).mtimeMs < started) {
    problems.push('bench/results/values.json is from an earlier run (the agent-sized values suite did not write it)')
  }
} catch (e) {
  problems.push(`no agent-sized values results: ${e.message}`)
}
if (values?.addon?.loaded?.debug) problems.push(`the agent-sized values suite ran a debug build of the addon (${values.addon.loaded.file}); its numbers are not release numbers`)
for (const c of values?.failures ?? []) problems.push(`agent-sized values suite check failed: ${c}`)
for (const [what, e] of Object.entries(values?.errors ?? {})) problems.push(`agent-sized values suite, ${what}: ${e.split('\n')[0]}`)

let memory = null
try {
  const file = join(resultsDir, 'memory.json')
  memory = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_MEMORY && statSync(file).mtimeMs < started) {
    problems.push('bench/results/memory.json is from an earlier run (the memory suite did not write it)')
  }
} catch (e) {
  problems.push(`no memory results: ${e.message}`)
}
if (memory?.addon?.loaded?.debug) problems.push(`the memory suite ran a debug build of the addon (${memory.addon.loaded.file}); its speed is not a release build's`)
for (const c of memory?.failures ?? []) problems.push(`memory suite check failed: ${c}`)
for (const [what, e] of Object.entries(memory?.errors ?? {})) problems.push(`memory suite, ${what}: ${e.split('\n')[0]}`)

let cold = null
try {
  const file = join(resultsDir, 'cold.json')
  cold = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_COLD && statSync(file).mtimeMs < started) problems.push('bench/results/cold.json is from an earlier run (the cold runs suite did not write it)')
} catch (e) {
  problems.push(`no cold runs results: ${e.message}`)
}
for (const c of cold?.failures ?? []) problems.push(`cold runs suite check failed: ${c}`)
for (const [what, e] of Object.entries(cold?.errors ?? {})) problems.push(`cold runs suite, ${what}: ${e.split('\n')[0]}`)

let codec = null
try {
  const file = join(resultsDir, 'codec.json')
  codec = JSON.parse(readFileSync(file, 'utf8'))
  if (!process.env.BENCH_SKIP_CODEC && statSync(file).mtimeMs < started) {
    problems.push('bench/results/codec.json is from an earlier run (the codec suite did not write it)')
  }
} catch (e) {
  problems.push(`no codec results: ${e.message}`)
}
if (codec?.addon?.loaded?.debug) problems.push(`the codec suite ran a debug build of the addon (${codec.addon.loaded.file}); its numbers are not release numbers`)
for (const f of codec?.failures ?? []) problems.push(`codec suite check failed: ${f}`)
for (const [what, e] of Object.entries(codec?.errors ?? {})) problems.push(`codec suite, ${what}: ${e.split('\n')[0]}`)

if (kv?.addon?.loaded?.debug) problems.push(`the JS suite ran a debug build of the addon (${kv.addon.loaded.file}); its numbers are not release numbers`)
if (kv?.addon?.raced) problems.push('the native addon was being rebuilt while the JS suite loaded it; which build ran is unknown')

/** Criterion's mean estimate of one benchmark, in ns per operation. */
function rust(name) {
  const file = join(criterionHome, name, 'new', 'estimates.json')
  if (!existsSync(file)) return undefined
  if (!process.env.BENCH_SKIP_RUST && statSync(file).mtimeMs < started) {
    problems.push(`${name}: criterion estimate is from an earlier run`)
  }
  const e = JSON.parse(readFileSync(file, 'utf8'))
  return { ns: e.mean.point_estimate, lo: e.mean.confidence_interval.lower_bound, hi: e.mean.confidence_interval.upper_bound }
}

const js = (lib, op, mode) => kv?.results.find((r) => r.lib === lib && r.op === op && (mode === undefined || r.mode === mode))

// ----- the cross-language table ----------------------------------------------

const OPS = [
  { label: 'kv.put memory', js: ['in-mem', 'put', 'memory'], rust: 'kv_put_memory' },
  { label: 'kv.put buffered', js: ['in-mem', 'put', 'buffered'], rust: 'kv_put_buffered' },
  { label: 'kv.get hit', js: ['in-mem', 'get-hit', 'memory'], rust: 'kv_get_hit' },
  { label: 'kv.get miss', js: ['in-mem', 'get-miss', 'memory'], rust: 'kv_get_miss' },
]

const mark = (ok) => (ok === undefined ? 'n/a ' : ok ? 'PASS' : 'FAIL')
const ns = (x) => (x === undefined ? '-' : x >= 100_000 ? `${(x / 1e6).toFixed(2)} ms` : x >= 10_000 ? `${(x / 1000).toFixed(1)} µs` : `${x.toFixed(0)} ns`)
const ops = (x) => (x === undefined ? '-' : x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}K` : x.toFixed(0))

const rows = []
for (const op of OPS) {
  const j = js(...op.js)
  const r = rust(op.rust)
  const jsNs = j?.nsPerOp
  const rustNs = r?.ns
  const limit = rustNs === undefined ? undefined : 1.5 * rustNs + 150
  rows.push({
    op: op.label,
    jsNs,
    jsOpsPerSec: j?.opsPerSec,
    rustNs,
    rustOpsPerSec: rustNs === undefined ? undefined : 1e9 / rustNs,
    ratio: jsNs !== undefined && rustNs !== undefined ? jsNs / rustNs : undefined,
    overheadNs: jsNs !== undefined && rustNs !== undefined ? jsNs - rustNs : undefined,
    napiLimitNs: limit,
    napiPass: jsNs !== undefined && limit !== undefined ? jsNs <= limit : undefined,
  })
}

const m = kv?.machine
console.log('\n\n================ in-mem: JS vs Rust, and the SPEC §12 targets ================')
if (m) console.log(`machine: ${m.cpu} (${m.cores} cores), node ${m.node}, ${m.platform}`)
console.log(`tree: ${measured}`)
if (kv) console.log(`workload: ${kv.config.keys} keys, ${kv.config.valueBytes}-byte values (MessagePack), shuffled key order`)
const rustProbe = rust('probe_json_parse')
const jsProbe = kv?.probe?.jsonParseNs
console.log(
  `speed probe (compare across runs; the machine's speed drifts): JS JSON.parse ${jsProbe ? `${jsProbe.start.toFixed(0)} ns at the start, ${jsProbe.end.toFixed(0)} ns at the end` : '-'}; Rust serde_json ${rustProbe ? `${rustProbe.ns.toFixed(0)} ns` : '-'}`,
)
console.log()
console.log(
  `${'operation'.padEnd(16)} ${'JS/op'.padStart(9)} ${'JS ops/s'.padStart(9)} ${'Rust/op'.padStart(10)} ${'JS÷Rust'.padStart(8)} ${'JS−Rust'.padStart(9)}  napi overhead: JS ≤ 1.5×Rust+150 ns`,
)
for (const r of rows) {
  console.log(
    `${r.op.padEnd(16)} ${ns(r.jsNs).padStart(9)} ${ops(r.jsOpsPerSec).padStart(9)} ${ns(r.rustNs).padStart(10)} ${(r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}×`).padStart(8)} ${ns(r.overheadNs).padStart(9)}  ${mark(r.napiPass)} (limit ${ns(r.napiLimitNs)})`,
  )
}

// ----- targets ---------------------------------------------------------------

const targets = []
function target(name, value, ok, detail) {
  targets.push({ target: name, value, pass: ok, detail })
}
const putMem = js('in-mem', 'put', 'memory')
const putBuf = js('in-mem', 'put', 'buffered')
const putStrict = js('in-mem', 'put', 'strict')
const getHit = js('in-mem', 'get-hit', 'memory')
const lmdbGet = js('lmdb', 'get-hit')
const fsync = js('fs', 'put', 'append 100 B + fdatasync')
const fsyncFloor = js('fs', 'put', 'overwrite 100 B + fdatasync')
const sqliteFull = js('better-sqlite3', 'put', 'WAL synchronous=FULL')
const lmdbSynced = js('lmdb', 'put', 'putSync synced')

target('kv.put memory ≥ 1,000,000 ops/s', putMem && `${ops(putMem.opsPerSec)} ops/s`, putMem && putMem.opsPerSec >= 1e6)
target('kv.get hit ≥ 2,000,000 ops/s', getHit && `${ops(getHit.opsPerSec)} ops/s`, getHit && getHit.opsPerSec >= 2e6)
// The comparisons kv.mjs measured in interleaved rounds are judged on the
// median of the rounds' ratios (each round's in brackets); a results file
// from before the rounds has one ratio.
const kvRatio = (op, inMemMode, peer, peerMode) =>
  kv?.ratios?.find((r) => r.op === op && r.inMemMode === inMemMode && r.peer === peer && (peerMode === undefined || r.peerMode === peerMode))
const rounds = (r) => (r?.rounds?.length > 1 ? `median of ${r.rounds.length} rounds: ` : '')
const getVsLmdb = kvRatio('get-hit', 'memory', 'lmdb')
target(
  'kv.get hit ≥ lmdb-js get',
  getVsLmdb ? `${ops(getHit.opsPerSec)} vs ${ops(lmdbGet.opsPerSec)} ops/s (${rounds(getVsLmdb)}${fmtRatio(getVsLmdb)})` : lmdbGet ? undefined : 'lmdb did not run',
  getVsLmdb ? getVsLmdb.ratio >= 1 : undefined,
)
target(
  'kv.put buffered ≥ 80% of memory',
  putMem && putBuf ? `${((100 * putBuf.opsPerSec) / putMem.opsPerSec).toFixed(0)}% (${ops(putBuf.opsPerSec)} vs ${ops(putMem.opsPerSec)} ops/s)` : undefined,
  putMem && putBuf ? putBuf.opsPerSec >= 0.8 * putMem.opsPerSec : undefined,
)
for (const r of rows) target(`napi overhead, ${r.op}: JS ≤ 1.5×Rust + 150 ns`, r.napiPass === undefined ? undefined : `${ns(r.jsNs)} vs limit ${ns(r.napiLimitNs)}`, r.napiPass)
// Also from this run's data (SPEC §12, single writer; not the 64-writer group-commit target):
// Latency ratios, strict ÷ reference, round by round (< 1: in-mem is faster).
const strictVsFsync = putStrict && fsync ? ratioOf(putStrict, fsync, (r) => r.nsPerOp) : undefined
const strictVsFloor = putStrict && fsyncFloor ? ratioOf(putStrict, fsyncFloor, (r) => r.nsPerOp) : undefined
target(
  'strict put latency ≤ 1.2 × raw fdatasync',
  strictVsFsync
    ? `${ns(putStrict.nsPerOp)} vs ${ns(fsync.nsPerOp)} append+fdatasync (${rounds(strictVsFsync)}${fmtRatio(strictVsFsync)})` +
        (strictVsFloor ? `; ${fmtRatio(strictVsFloor)} the in-place floor ${ns(fsyncFloor.nsPerOp)}` : '')
    : undefined,
  strictVsFsync ? strictVsFsync.ratio <= 1.2 : undefined,
)
const strictVsSqlite = sqliteFull ? kvRatio('put', 'strict', 'better-sqlite3', sqliteFull.mode) : undefined
const strictVsLmdb = lmdbSynced ? kvRatio('put', 'strict', 'lmdb', lmdbSynced.mode) : undefined
target(
  'strict put ahead of better-sqlite3 FULL and lmdb synced',
  strictVsSqlite && strictVsLmdb
    ? `${ops(putStrict.opsPerSec)} vs sqlite ${ops(sqliteFull.opsPerSec)}, lmdb ${ops(lmdbSynced.opsPerSec)} ops/s (${rounds(strictVsSqlite)}sqlite ${fmtRatio(strictVsSqlite)}, lmdb ${fmtRatio(strictVsLmdb)})`
    : undefined,
  strictVsSqlite && strictVsLmdb ? strictVsSqlite.ratio > 1 && strictVsLmdb.ratio > 1 : undefined,
)

// The agent primitives (bench/primitives.mjs): in-mem's figure per mode, and
// in-mem ÷ peer within the durability class (>1: in-mem is faster).
const primRows = []
if (prim) {
  const peerName = { 'better-sqlite3': 'sqlite', lmdb: 'lmdb' }
  for (const r of prim.results.filter((x) => x.lib === 'in-mem')) {
    const vs = prim.ratios.filter((q) => q.op === r.op && q.inMemMode === r.mode)
    primRows.push({
      op: r.op,
      mode: r.mode,
      nsPerOp: r.nsPerOp,
      opsPerSec: r.opsPerSec,
      vs: vs.map((q) => ({ peer: q.peer, peerMode: q.peerMode, ratio: q.ratio, rounds: q.rounds })),
    })
  }
  const pp = prim.probe?.jsonParseNs
  console.log('\n---------------- agent primitives (bench/primitives.mjs) ----------------')
  if (pp) console.log(`speed probe of this suite: JS JSON.parse ${pp.start.toFixed(0)} ns at the start, ${pp.end.toFixed(0)} ns at the end`)
  console.log(`${'operation'.padEnd(14)} ${'mode'.padEnd(9)} ${'ns/op'.padStart(9)} ${'ops/s'.padStart(8)}  in-mem ÷ peer, same class (>1: in-mem faster)`)
  if (prim.config?.rounds > 1) console.log(`(strict rows and reads: the median of ${prim.config.rounds} interleaved rounds, each round's ratio in brackets)`)
  for (const r of primRows) {
    const vs = r.vs.map((q) => `${peerName[q.peer] ?? q.peer} ${q.peerMode.replace('WAL ', '').replace('synchronous=', '').replace('transactionSync ', '')} ${fmtRatio(q)}`).join(', ')
    console.log(`${r.op.padEnd(14)} ${r.mode.padEnd(9)} ${ns(r.nsPerOp).padStart(9)} ${ops(r.opsPerSec).padStart(8)}  ${vs || '-'}`)
  }
  for (const sk of prim.skipped ?? []) console.log(`skipped: ${sk.lib} ${sk.op}: ${sk.why}`)
  for (const [what, e] of Object.entries(prim.errors ?? {})) console.log(`failed: ${what}: ${e.split('\n')[0]}`)
  // SPEC §12: durable writes ahead of better-sqlite3 (synchronous=FULL) and lmdb-js, per primitive.
  for (const op of [...new Set(primRows.map((r) => r.op))]) {
    const strictRow = primRows.find((r) => r.op === op && r.mode === 'strict')
    if (!strictRow || strictRow.vs.length === 0) continue
    const worst = Math.min(...strictRow.vs.map((q) => q.ratio))
    target(
      `strict ${op} ahead of the durable peers`,
      rounds(strictRow.vs[0]) + strictRow.vs.map((q) => `${peerName[q.peer] ?? q.peer} ${fmtRatio(q)}`).join(', '),
      worst > 1,
    )
  }
  // Issue 16: the reads at least as fast as lmdb-js getEntry (state.get is the one measured).
  for (const r of primRows.filter((x) => x.mode === 'memory')) {
    const q = r.vs.find((x) => x.peer === 'lmdb' && x.peerMode === 'getEntry')
    if (q) target(`${r.op} ≥ lmdb-js getEntry`, `${rounds(q)}${fmtRatio(q)}`, q.ratio >= 1)
  }
}

// worker_threads (bench/workers.mjs): aggregate kv.put ops/s of 1, 2, 4
// workers writing disjoint runs of one buffered directory, and the scaling.
let workerRows = []
if (workers) {
  const wp = workers.probe?.jsonParseNs
  console.log('\n---------------- worker_threads (bench/workers.mjs) ----------------')
  if (wp) console.log(`speed probe of this suite: JS JSON.parse ${wp.start.toFixed(0)} ns at the start, ${wp.end.toFixed(0)} ns at the end`)
  console.log(`kv.put, buffered, each worker on its own run of one data directory; ${workers.machine?.cores ?? '?'} cores; median of ${workers.config?.rounds ?? '?'} rounds`)
  console.log(`${'workers'.padEnd(8)} ${'ops/s'.padStart(9)} ${'per worker'.padStart(11)} ${'÷ 1 worker'.padStart(11)}`)
  const one = workers.results.find((x) => x.workers === 1)
  workerRows = workers.results.map((x) => ({
    workers: x.workers,
    opsPerSec: x.opsPerSec,
    perWorkerOpsPerSec: x.perWorkerOpsPerSec,
    vsOne: one?.opsPerSec && x.opsPerSec ? x.opsPerSec / one.opsPerSec : undefined,
  }))
  for (const r of workerRows) {
    console.log(`${String(r.workers).padEnd(8)} ${ops(r.opsPerSec).padStart(9)} ${ops(r.perWorkerOpsPerSec).padStart(11)} ${(r.vsOne === undefined ? '-' : `${r.vsOne.toFixed(2)}×`).padStart(11)}`)
  }
  const two = workerRows.find((r) => r.workers === 2)
  target(
    'two worker_threads on disjoint runs ≥ 1.8 × one thread',
    two?.vsOne === undefined ? undefined : `${two.vsOne.toFixed(2)}× (${ops(two.opsPerSec)} vs ${ops(one.opsPerSec)} ops/s, kv.put buffered)`,
    two?.vsOne === undefined ? undefined : two.vsOne >= 1.8,
  )
}

let langgraphRows = []
if (langgraph) {
  const c = langgraph.config
  console.log('\n---------------- LangGraph checkpointers (bench/langgraph.mjs) ----------------')
  console.log(`${c.steps} steps of ${c.channels} channels (2 change per step); list of 100; a ${c.graphSteps}-step graph; disk after ${c.diskSteps} steps`)
  console.log(`${'in-mem'.padEnd(16)} ${'peer'.padEnd(14)} ${'put+writes'.padStart(10)} ${'getTuple'.padStart(9)} ${'list 100'.padStart(9)} ${'graph'.padStart(7)} ${'disk'.padStart(7)}   (peer time ÷ in-mem time; disk: peer bytes ÷ in-mem bytes)`)
  const pairs = [...new Set(langgraph.ratios.map((r) => `${r.inMem}|${r.peer}`))]
  for (const pair of pairs) {
    const [a, b] = pair.split('|')
    const r = (m) => langgraph.ratios.find((x) => x.inMem === a && x.peer === b && x.measure === m)?.ratio
    const row = { inMem: a, peer: b, put: r('stepNs'), getTuple: r('getTupleNs'), list: r('listNs'), graph: r('graphNs'), disk: r('diskBytes') }
    langgraphRows.push(row)
    const f = (x, w) => (x === undefined ? '-' : `${x.toFixed(2)}×`).padStart(w)
    console.log(`${a.padEnd(16)} ${b.padEnd(14)} ${f(row.put, 10)} ${f(row.getTuple, 9)} ${f(row.list, 9)} ${f(row.graph, 7)} ${f(row.disk, 7)}`)
  }
  for (const t of langgraph.targets ?? []) {
    const row = langgraphRows.find((x) => x.inMem === t.inMem && x.peer === t.peer)
    target(
      `LangGraph ${t.inMem} put/getTuple/list ≥ 3 × ${t.peer}, less disk`,
      row ? `${[row.put, row.getTuple, row.list].map((x) => (x === undefined ? '-' : `${x.toFixed(2)}×`)).join(' / ')}, disk ${row.disk?.toFixed(2) ?? '-'}×` : undefined,
      langgraph.checks?.length ? undefined : t.pass,
    )
  }
}

// Server mode (bench/server.mjs): remote in-mem ÷ Redis throughput, per cell.
if (server) {
  console.log('\n---------------- server mode beside Redis (bench/server.mjs) ----------------')
  if (!server.redis?.available) console.log(server.redis?.why ?? 'Redis did not run')
  const pp = server.probe?.jsonParseNs
  if (pp) console.log(`speed probe of this suite: JS JSON.parse ${pp.start.toFixed(0)} ns at the start, ${pp.end.toFixed(0)} ns at the end`)
  const conc = server.config?.concurrency ?? []
  console.log(`in-mem ÷ Redis ops/s, one client connection, by requests in flight (${conc.join(', ')}); >1: in-mem faster`)
  const keys = [...new Set((server.ratios ?? []).map((r) => `${r.phase}|${r.op}|${r.size}|${r.transport}`))]
  for (const k of keys) {
    const [phase, op, size, transport] = k.split('|')
    const cells = conc.map((c) => server.ratios.find((r) => `${r.phase}|${r.op}|${r.size}|${r.transport}` === k && r.concurrency === c)?.ratio)
    console.log(`${phase.padEnd(9)} ${op.padEnd(4)} ${`${size} B`.padStart(6)} ${transport.padEnd(5)} ${cells.map((x) => (x === undefined ? '-' : `${x.toFixed(2)}×`).padStart(7)).join(' ')}`)
  }
  const ol = server.ownerLoop
  if (ol) console.log(`owner's event-loop delay while serving: p50 ${ol.p50Ms.toFixed(2)} ms, p99 ${ol.p99Ms.toFixed(2)} ms`)
  for (const t of server.targets ?? []) target(t.target, t.value, t.pass ?? undefined)
}

// Agent-sized values (bench/values.mjs): in-mem memory mode ÷ peer, per size and kind.
if (values) {
  console.log('\n---------------- agent-sized values (bench/values.mjs) ----------------')
  const vp = values.probe?.jsonParseNs
  if (vp) console.log(`speed probe of this suite: ${vp.start.toFixed(0)} ns at the start, ${vp.end.toFixed(0)} ns at the end`)
  const vops = ['kv.put', 'kv.get', 'events.append', 'state.set', 'state.get', 'json.set', 'json.get $']
  console.log(`in-mem memory mode ÷ lmdb / ÷ better-sqlite3 (ops/s; >1: in-mem faster)`)
  console.log(`${'size kind'.padEnd(16)} ${vops.map((o) => o.padStart(13)).join(' ')}`)
  for (const l of values.layouts ?? []) {
    const cell = (op) => {
      const q = (peer) => values.ratios.find((r) => r.size === l.size && r.kind === l.kind && r.op === op && r.inMemMode === 'memory' && r.peer === peer)?.ratio
      const f = (x) => (x === undefined ? '-' : x.toFixed(2))
      return `${f(q('lmdb'))}/${f(q('better-sqlite3'))}`.padStart(13)
    }
    console.log(`${`${l.size} B ${l.kind}`.padEnd(16)} ${vops.map(cell).join(' ')}`)
  }
  for (const r of values.rss ?? []) {
    console.log(`RSS ${String(r.size).padStart(6)} B ${`${r.lib} ${r.lib === 'in-mem' ? r.mode : ''}`.padEnd(17)} ${r.rssMiB.toFixed(1).padStart(7)} MiB, ${r.growthPerLive.toFixed(1)}× the live bytes after ${r.overwrites} overwrites`)
  }
  for (const t of values.targets ?? []) target(`values ${t.target}`, t.value, values.failures?.length ? undefined : t.pass)
}

// Memory (bench/memory.mjs): RSS growth of 1M keys, and RSS after an overwrite-heavy run.
if (memory) {
  const MiB = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`
  console.log('\n---------------- memory (bench/memory.mjs) ----------------')
  const c = memory.config ?? {}
  if (memory.load?.length) console.log(`${(c.keys ?? 0).toLocaleString('en-US')} distinct keys × ${c.valueBytes} B values (raw ${(c.keyBytes ?? 0) + (c.valueBytes ?? 0)} B/key), RSS growth in a fresh process:`)
  for (const r of memory.load ?? []) {
    console.log(`  ${r.label.padEnd(26)} ${MiB(r.growthBytes).padStart(10)} = ${r.bytesPerKey.toFixed(1).padStart(6)} B/key, ${r.ratio.toFixed(2)} × raw${r.fileBytes === null ? '' : `; files ${MiB(r.fileBytes)}`}`)
  }
  if (memory.overwrite?.length) console.log(`${(c.overwrites ?? 0).toLocaleString('en-US')} overwrites of ${c.hotKeys} keys, RSS:`)
  for (const r of memory.overwrite ?? []) {
    console.log(`  ${r.label.padEnd(26)} ${MiB(r.rssBytes).padStart(10)}${r.aboveEmptyBytes === null ? '' : `, ${MiB(r.aboveEmptyBytes)} above the empty database`}${r.memory ? `; ${r.memory.historyVersions.toLocaleString('en-US')} history versions` : ''}`)
  }
  for (const t of memory.targets ?? []) target(`memory: ${t.target}`, t.value, memory.failures?.length ? undefined : t.pass)
}

// Cold runs (bench/cold.mjs): a fresh open of ≥ 5 GB of ended runs and the first read of a cold one.
if (cold) {
  console.log('\n---------------- cold runs (bench/cold.mjs) ----------------')
  const c = cold.config ?? {}
  console.log(`${(c.runs ?? 0).toLocaleString('en-US')} ended runs × ${c.keys} keys × ${(c.valueBytes ?? 0).toLocaleString('en-US')} B (${((c.rawBytes ?? 0) / 1e9).toFixed(2)} GB raw):`)
  for (const r of cold.rows ?? []) {
    console.log(`  ${r.lib.padEnd(14)} ${(r.diskBytes / 1e9).toFixed(2)} GB on disk; open ${r.openMs.toFixed(1)} ms; cold first get ${r.firstMedianMs.toFixed(2)} ms (median); then ${r.warmNsPerGet.toFixed(0)} ns/get; RSS ${(r.rssEnd / 2 ** 20).toFixed(0)} MiB`)
  }
  for (const t of cold.targets ?? []) target(`cold: ${t.target}`, t.value, cold.failures?.length ? undefined : t.pass)
}

// The value codec (bench/codec.mjs): records with shared structures ÷ plain MessagePack, through in-mem's native kv put and get.
if (codec) {
  console.log('\n---------------- value codec (bench/codec.mjs) ----------------')
  const cp = codec.probe?.jsonParseNs
  if (cp) console.log(`speed probe of this suite: ${cp.start.toFixed(0)} ns at the start, ${cp.end.toFixed(0)} ns at the end`)
  console.log('records (shared structures) ÷ plain MessagePack, in-mem memory mode (ops/s; >1: records faster); share of kv.get spent decoding')
  for (const v of codec.values ?? []) {
    const q = (op) => codec.ratios?.find((r) => r.part === 'kv' && r.value === v.name && r.op === op && r.lib === 'in-mem records' && r.vs === 'in-mem plain')
    const share = codec.decodeShares?.find((x) => x.value === v.name)?.decodeShare
    console.log(`${v.name.padEnd(15)} put ${fmtRatio(q('put')).padStart(24)}  get ${fmtRatio(q('get')).padStart(24)}  decode ${share === undefined ? '-' : `${(100 * share).toFixed(0)}%`}`)
  }
  const d = codec.decision
  if (d) console.log(`records faster for put on ${d.putFaster}, for get on ${d.getFaster}; the Rust side ${d.rustReadsRecords ? 'reads' : 'cannot read'} records: ${d.keepRecords ? 'records win' : 'plain MessagePack stays'}`)
}

console.log()
for (const t of targets) console.log(`${mark(t.pass)}  ${t.target.padEnd(58)} ${t.value ?? '-'}`)

if (kv && Object.keys(kv.errors).length > 0) {
  console.log()
  for (const [lib, e] of Object.entries(kv.errors)) console.log(`peer ${lib} failed: ${e.split('\n')[0]}`)
}
for (const p of problems) console.log(`problem: ${p}`)

mkdirSync(resultsDir, { recursive: true })
writeFileSync(
  join(resultsDir, 'summary.json'),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      tree: measured,
      machine: m,
      probe: { jsJsonParseNs: jsProbe, rustJsonParseNs: rustProbe?.ns },
      rows,
      server: server ? { probe: { jsJsonParseNs: server.probe?.jsonParseNs }, redis: server.redis, ratios: server.ratios, ownerLoop: server.ownerLoop, checks: server.checks, errors: server.errors } : null,
      memory: memory ? { probe: { jsJsonParseNs: memory.probe?.jsonParseNs }, config: memory.config, load: memory.load, overwrite: memory.overwrite, failures: memory.failures, errors: memory.errors } : null,
      cold: cold ? { config: cold.config, rows: cold.rows, failures: cold.failures, errors: cold.errors } : null,
      codec: codec ? { probe: { jsJsonParseNs: codec.probe?.jsonParseNs }, values: codec.values, ratios: codec.ratios, decodeShares: codec.decodeShares, decision: codec.decision, failures: codec.failures, errors: codec.errors } : null,
      values: values ? { probe: { jsJsonParseNs: values.probe?.jsonParseNs }, layouts: values.layouts, ratios: values.ratios, rss: values.rss, failures: values.failures, errors: values.errors } : null,
      langgraph: langgraph ? { rows: langgraphRows, results: langgraph.results, checks: langgraph.checks, errors: langgraph.errors } : null,
      workers: workers ? { probe: { jsJsonParseNs: workers.probe?.jsonParseNs }, cores: workers.machine?.cores, rows: workerRows, errors: workers.errors } : null,
      kv: kv ? { rounds: kv.config?.rounds, ratios: kv.ratios } : null,
      primitives: prim ? { probe: { jsJsonParseNs: prim.probe?.jsonParseNs }, rows: primRows, results: prim.results, skipped: prim.skipped, errors: prim.errors } : null,
      targets,
      problems,
    },
    null,
    2,
  ),
)
console.log(`\nwrote ${shownPath(root, join(resultsDir, 'summary.json'))}`)
