// The value codec (issue 16, "Codec"): plain MessagePack, as src/codec.ts
// writes it today (msgpackr, useRecords: false), against msgpackr's record
// extension with shared structures persisted beside the data and versioned
// (what lmdb-js does with `sharedStructuresKey`), on realistic KV values —
// to keep records only if they are faster for both put and get, and only
// where the Rust side does not read the values.
//
//   node bench/codec.mjs     (needs a built dist/ and native addon: npm run build)
//
// Values (each in 4 variants that differ in one character or digit, so a
// put never rewrites the bytes just read):
//   object 100 B  { id, role, step, done, text }
//   message 1 KB  a chat message { id, role, content, tool_calls: [{ id,
//                 type, function: { name, arguments } }], created }
//   messages 10 KB  an array of 8 chat messages (user, assistant with a
//                 tool call, tool result: three structures)
//   string        a short string
//   number        an integer
//
// (a) codec: pack and unpack of each value with
//     plain    the Packr/Unpackr options of src/codec.ts; also in-mem's
//              encode() (the storable check + pack), for reference;
//     records  new Packr({ structures via getStructures/saveStructures,
//              mapsAsObjects, int64AsType: 'bigint', copyBuffers }) — shared
//              structures, saved (as plain MessagePack) to a store only when
//              a new one appears, with lmdb-js's compatibility check;
//     inline   records without shared structures (lmdb-js's default when no
//              sharedStructuresKey is given: every value carries its own
//              structure definitions).
// (b) end to end, in memory mode (the release addon; `history: { keep: 1 }`,
//     so that the rounds' puts do not pile up versions) beside lmdb-js (noSync):
//     in-mem kv.put / kv.get      today's API;
//     in-mem raw get              the native read of kv.get without the
//                                 decode (its key, then the hot get into the
//                                 I/O buffer; internal API): kv.get − this is
//                                 the decode's share;
//     in-mem plain / records      the same native put and get with each codec
//                                 around it (no storable check on either):
//                                 the A/B of the codec with all else equal;
//     lmdb default / shared / plain  putSync and get with lmdb-js's default
//                                 encoder (records, inline), with
//                                 sharedStructuresKey, and with plain
//                                 MessagePack (useRecords: false).
// (c) Rust: whether the Rust side can read a records-encoded value — a JSON
//     document set through the native path with records bytes, a machine
//     context and a guard's payload, and in-mem's (plain) decode of them.
//
// Timing: tinybench, each task in BENCH_ROUNDS interleaved rounds (default
// 3; bench/common.mjs runRounds: round r rotates the libraries by r), a
// figure is the median of its rounds, a ratio the median of the rounds'
// ratios. Sub-microsecond operations are timed in batches.
//
// Environment: BENCH_TIME_MS (each task's budget, default 400; a round gets
// 1.5 / BENCH_ROUNDS of it), BENCH_ROUNDS, BENCH_KEYS (keys per value,
// default 1000), BENCH_DIR (lmdb's databases, default the OS tmp dir),
// BENCH_OUT (default bench/results/codec.json).
//
// The suite exits 1 when what it times is wrong: a codec's round trip is not
// the value (deep and in key order), the plain codec's bytes are not
// in-mem's, a read returns other than what was written.

import { benchRounds, endOfRun, fmtRatio, jsonParseProbe, loadInMem, machineInfo, prose, ratioOf, roundShare, runRounds, shownPath } from './common.mjs'
import { createRequire } from 'node:module'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { Bench } from 'tinybench'
import { Packr, Unpackr } from 'msgpackr'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

const TIME = Number(process.env.BENCH_TIME_MS ?? 400)
const KEYS = Number(process.env.BENCH_KEYS ?? 1000)
const ROUNDS = benchRounds()
const SHARE = roundShare(ROUNDS)
const OUT = process.env.BENCH_OUT ?? join(here, 'results', 'codec.json')
const BASE = process.env.BENCH_DIR ?? tmpdir()

// ----- the codecs --------------------------------------------------------------

/** src/codec.ts's options, as they are (checked against its encode() below). */
const plainPackr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, variableMapSize: true })
const plainUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true })

/**
 * Records with shared structures, as lmdb-js sets them up: the structures
 * are read from a store when the codec first needs them (or meets an id it
 * does not know), and saved there, as plain MessagePack, only when a new
 * one is added — unless another writer saved a newer list meanwhile
 * (`isCompatible`), when msgpackr reloads and encodes again. `store` stands
 * for the database's entry: { bytes, saves }.
 */
function recordsCodec(store) {
  const load = () => (store.bytes === null ? undefined : plainUnpackr.unpack(store.bytes))
  return new Packr({
    moreTypes: false,
    structuredClone: false,
    mapsAsObjects: true,
    int64AsType: 'bigint',
    copyBuffers: true,
    getStructures: () => load() ?? [],
    saveStructures(structures, isCompatible) {
      const existing = load()
      if (typeof isCompatible === 'function' ? !isCompatible(existing) : existing !== undefined && existing.length !== isCompatible) return false
      store.bytes = Buffer.from(plainPackr.pack(structures))
      store.saves++
      return true
    },
  })
}
const structuresStore = { bytes: null, saves: 0 }
const recordsPackr = recordsCodec(structuresStore)
/** Records without shared structures: lmdb-js's default encoder (no sharedStructuresKey). */
const inlinePackr = new Packr({ moreTypes: false, structuredClone: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true })

// ----- the values ------------------------------------------------------------

const letter = (v) => String.fromCharCode(65 + v)

const message = (i, v, contentLen, argsLen) => ({
  id: `msg_01J9ZQ4K7${letter(v)}${i}`,
  role: 'assistant',
  content: prose(contentLen, 0x2545f491 + i),
  tool_calls: [{ id: `call_${i}`, type: 'function', function: { name: 'search_docs', arguments: JSON.stringify({ query: prose(argsLen, 0x1234567 + i), limit: 5 }) } }],
  created: 1733500000 + i,
})
/** 8 messages of a conversation: user, assistant with a tool call, tool result, ... */
function conversation(v) {
  const out = []
  for (let i = 0; i < 8; i++) {
    if (i % 3 === 0) out.push({ role: 'user', content: `${i === 0 ? letter(v) : ''}${prose(i === 0 ? 1139 : 1140, 0x2545f491 + i)}` })
    else if (i % 3 === 1) out.push(message(i, v, 900, 200))
    else out.push({ role: 'tool', tool_call_id: `call_${i - 1}`, content: prose(1150, 0x2545f491 + i) })
  }
  return out
}

/** Each value: its name and 4 variants. */
const VALUES = [
  { name: 'object 100 B', batch: 1000, variants: [0, 1, 2, 3].map((v) => ({ id: `msg_01J9ZQ4K7${letter(v)}`, role: 'assistant', step: 42, done: false, text: 'The meeting moved to 3pm, room 4B.' })) },
  { name: 'message 1 KB', batch: 200, variants: [0, 1, 2, 3].map((v) => message(0, v, 730, 180)) },
  { name: 'messages 10 KB', batch: 20, variants: [0, 1, 2, 3].map((v) => conversation(v)) },
  { name: 'string', batch: 1000, variants: [0, 1, 2, 3].map((v) => `${letter(v)}ssistant is planning the next step`) },
  { name: 'number', batch: 1000, variants: [0, 1, 2, 3].map((v) => 1234 + v) },
]

// ----- checks ------------------------------------------------------------------

/** Every check of what is timed: { subject (a codec or library), value, check, ok }. */
const checks = []
const failures = []
const errors = {}
function check(subject, value, what, ok) {
  checks.push({ subject, value, check: what, ok })
  if (!ok) {
    failures.push(`${subject} ${value}: ${what}`)
    console.log(`  CHECK FAILED: ${subject} ${value}: ${what}`)
  }
  return ok
}
/** Deep equality, and the same key order (a codec must keep it). */
const same = (a, b) => isDeepStrictEqual(a, b) && JSON.stringify(a) === JSON.stringify(b)

// ----- in-mem ------------------------------------------------------------------

const { Database, loaded: addonLoaded, raced: addonRaced } = loadInMem(root, require)
const codec = require('../dist/codec.js')
const { TAG_KV, IO_VALUE_OFFSET } = require('../dist/keys.js')

for (const val of VALUES) {
  val.plain = Buffer.from(plainPackr.pack(val.variants[0]))
  val.records = Buffer.from(recordsPackr.pack(val.variants[0]))
  val.inline = Buffer.from(inlinePackr.pack(val.variants[0]))
  check('plain', val.name, "its bytes are in-mem's encode()", Buffer.compare(val.plain, Buffer.from(codec.encode(val.variants[0]))) === 0)
  check('plain', val.name, 'unpack(pack(v)) is v, keys in order', val.variants.every((v) => same(plainUnpackr.unpack(plainPackr.pack(v)), v)))
  check('records', val.name, 'unpack(pack(v)) is v, keys in order', val.variants.every((v) => same(recordsPackr.unpack(recordsPackr.pack(v)), v)))
  check('inline', val.name, 'unpack(pack(v)) is v, keys in order', val.variants.every((v) => same(inlinePackr.unpack(inlinePackr.pack(v)), v)))
}
// Another process (a fresh codec on the same store) reads what this one wrote.
const fresh = recordsCodec(structuresStore)
for (const val of VALUES) check('records', val.name, 'a fresh codec on the saved structures reads it', same(fresh.unpack(val.records), val.variants[0]))

const probe = () => jsonParseProbe(VALUES[0].variants[0])
const probeAtStart = probe()
console.log(`speed probe: JSON.parse of the 100 B object ${probeAtStart.toFixed(0)} ns`)
console.log(`\nencoded sizes (bytes): plain / records (shared structures) / inline records (lmdb-js default)`)
for (const val of VALUES) console.log(`  ${val.name.padEnd(15)} ${String(val.plain.length).padStart(6)} ${String(val.records.length).padStart(6)} ${String(val.inline.length).padStart(6)}`)
console.log(`  shared structures: ${structuresStore.saves} saves, ${structuresStore.bytes?.length ?? 0} bytes stored`)

// ----- measuring -------------------------------------------------------------

let sink = 0

/** One task under tinybench, `fn` one sample of `batch` operations: its row. */
function measure(spec, fn, { batch, share, round }) {
  const bench = new Bench({ name: `${spec.lib} ${spec.op} ${spec.value}`, time: TIME * share, iterations: 10, warmupTime: 50 * share, warmupIterations: 3, throws: true })
  bench.add(bench.name, fn)
  bench.runSync()
  const r = bench.tasks[0].result
  const ops = bench.tasks[0].runs * batch
  const nsPerOp = (r.totalTime * 1e6) / ops
  const row = { ...spec, opsPerSec: 1e9 / nsPerOp, nsPerOp, rme: r.latency.rme, samples: bench.tasks[0].runs, batch, ops }
  const tag = round?.rounds > 1 ? `  (round ${round.round + 1} of ${round.rounds})` : ''
  console.log(`  ${spec.lib.padEnd(15)} ${spec.op.padEnd(8)} ${spec.value.padEnd(15)} ${nsPerOp.toFixed(0).padStart(8)} ns/op  ±${row.rme.toFixed(1)}%${tag}`)
  return row
}
const task = (spec, batch, fn) => ({ spec, run: (round) => measure(spec, fn, { batch, share: SHARE, round }) })

/** A sample: `batch` calls of op(i), i walking 0..n-1 and around. */
function loop(n, batch, op) {
  let at = 0
  return () => {
    for (let c = 0; c < batch; c++) {
      op(at)
      if (++at === n) at = 0
    }
  }
}

const results = []
const ratios = []

async function rounds(title, entries) {
  console.log(`\n${title}, ${ROUNDS} interleaved round${ROUNDS === 1 ? '' : 's'}`)
  const out = await runRounds(ROUNDS, entries, {
    onError: (lib, e) => {
      errors[`${title}: ${lib}`] = String(e?.stack ?? e)
      console.log(`  ${lib} FAILED: ${e?.message ?? e}`)
    },
  })
  for (const o of out) if (o.rows) results.push(...o.rows)
}
const row = (part, lib, op, value) => results.find((r) => r.part === part && r.lib === lib && r.op === op && r.value === value)

// ----- (a) pack and unpack -----------------------------------------------------

{
  const codecTasks = (lib, packr, unpack) =>
    VALUES.flatMap((val) => {
      const bytes = lib === 'plain' || lib === 'in-mem encode' ? val.plain : lib === 'records' ? val.records : val.inline
      const spec = (op) => ({ part: 'codec', lib, op, value: val.name })
      const out = [task(spec('pack'), val.batch, loop(4, val.batch, (i) => { sink += packr(val.variants[i]).length }))]
      if (unpack) out.push(task(spec('unpack'), val.batch, loop(4, val.batch, () => { sink += unpack(bytes) === undefined ? 0 : 1 })))
      return out
    })
  await rounds('(a) pack and unpack', [
    { name: 'plain', tasks: codecTasks('plain', (v) => plainPackr.pack(v), (b) => plainUnpackr.unpack(b)) },
    { name: 'records', tasks: codecTasks('records', (v) => recordsPackr.pack(v), (b) => recordsPackr.unpack(b)) },
    { name: 'inline', tasks: codecTasks('inline', (v) => inlinePackr.pack(v), (b) => inlinePackr.unpack(b)) },
    { name: 'in-mem encode', tasks: codecTasks('in-mem encode', (v) => codec.encode(v), null) },
  ])
  for (const val of VALUES) {
    for (const op of ['pack', 'unpack']) {
      for (const peer of ['records', 'inline']) {
        const a = row('codec', peer, op, val.name)
        const b = row('codec', 'plain', op, val.name)
        if (a && b) ratios.push({ part: 'codec', value: val.name, op, lib: peer, vs: 'plain', ...ratioOf(a, b) })
      }
    }
  }
}

// ----- (b) end to end ----------------------------------------------------------

const dirs = []
mkdirSync(BASE, { recursive: true })
const tmp = (name) => {
  const d = mkdtempSync(join(BASE, `in-mem-bench-codec-${name}-`))
  dirs.push(d)
  return d
}
const keyOf = (val, i) => `${val.name.split(' ')[0]}:${String(i).padStart(6, '0')}`

/**
 * Each library as put(val, i, v) and get(val, i) over val's keys; `load`
 * writes variant 0 everywhere. `raw(val, i)` (in-mem) answers the read's
 * bytes without decoding them.
 */
const libs = []
const closers = []
{
  // Memory mode keeping one version per key: the default keeps every
  // version, so a put's cost would grow with the memory the run has
  // written (10 KB values: ~1 GB), round after round.
  const db = Database.open({ history: { keep: 1 } })
  closers.push(() => db.close())
  const run = db.runs.begin({ name: 'codec' })
  const recRun = db.runs.begin({ name: 'codec-records' })
  const kv = db.kv
  const target = kv.target // internal: the native fast path kv.get and kv.put go through
  const io = target.io
  const rawGet = (r, k) => target.get(io.key(r, TAG_KV, k), false)
  const bytesAt = (len) => io.buf.subarray(IO_VALUE_OFFSET, IO_VALUE_OFFSET + len)
  libs.push({
    name: 'in-mem',
    put: (val, i, v) => kv.put(run, keyOf(val, i), v),
    get: (val, i) => kv.get(run, keyOf(val, i)),
    raw: (val, i) => rawGet(run, keyOf(val, i)),
    rawBytes: (val, i) => Buffer.from(bytesAt(rawGet(run, keyOf(val, i)))),
  })
  /** The native kv put and get of `r`'s keys with the codec `packr` around them. */
  const throughCodec = (name, r, packr) => ({
    name,
    put: (val, i, v) => {
      // The value goes where the native put reads it (as Io.encodeValue
      // leaves it), then the key.
      const bytes = packr.pack(v)
      if (IO_VALUE_OFFSET + bytes.length > io.buf.length) io.grow(bytes.length, 0)
      io.buf.set(bytes, IO_VALUE_OFFSET)
      return target.put(io.key(r, TAG_KV, keyOf(val, i)), bytes.length, 0)
    },
    get: (val, i) => {
      const len = rawGet(r, keyOf(val, i))
      return len < 0 ? undefined : packr.unpack(io.buf, { start: IO_VALUE_OFFSET, end: IO_VALUE_OFFSET + len })
    },
  })
  libs.push(throughCodec('in-mem plain', run, { pack: (v) => plainPackr.pack(v), unpack: (b, o) => plainUnpackr.unpack(b, o) }))
  libs.push({
    ...throughCodec('in-mem records', recRun, recordsPackr),
    rawBytes: (val, i) => Buffer.from(bytesAt(rawGet(recRun, keyOf(val, i)))),
  })
}
{
  const { open } = await import('lmdb')
  for (const [name, opts] of [
    ['lmdb default', {}],
    ['lmdb shared', { sharedStructuresKey: Symbol.for('structures') }],
    ['lmdb plain', { encoder: { useRecords: false, variableMapSize: true } }],
  ]) {
    const db = open({ path: tmp(name.replace(' ', '-')), noSync: true, ...opts })
    closers.push(() => db.close())
    libs.push({ name, put: (val, i, v) => db.putSync(keyOf(val, i), v), get: (val, i) => db.get(keyOf(val, i)), db })
  }
}

// Load, and check every read (before and after the timed rounds).
const lib = (name) => libs.find((l) => l.name === name)
for (const l of libs) for (const val of VALUES) for (let i = 0; i < KEYS; i++) l.put(val, i, val.variants[0])
function checkReads(when) {
  for (const l of libs) {
    for (const val of VALUES) {
      let bad = 0
      for (let i = 0; i < KEYS; i++) if (!val.variants.some((v) => same(l.get(val, i), v))) bad++
      check(l.name, val.name, `${when}: every key reads back a value written`, bad === 0)
      // A put then a get of the same key returns it.
      l.put(val, 0, val.variants[2])
      check(l.name, val.name, `${when}: a get after a put returns the value put`, same(l.get(val, 0), val.variants[2]))
    }
  }
  for (const val of VALUES) {
    check('in-mem', val.name, `${when}: the raw get answers the plain bytes of the value`, Buffer.compare(lib('in-mem').rawBytes(val, 1), Buffer.from(plainPackr.pack(lib('in-mem').get(val, 1)))) === 0)
    const stored = lib('in-mem records').rawBytes(val, 1)
    check('in-mem records', val.name, `${when}: stored as records`, Buffer.compare(stored, Buffer.from(recordsPackr.pack(lib('in-mem records').get(val, 1)))) === 0 &&
      (typeof val.variants[0] !== 'object' || Buffer.compare(stored, lib('in-mem').rawBytes(val, 1)) !== 0))
  }
}
checkReads('after loading')
const lmdbShared = lib('lmdb shared').db
const lmdbSharedStructures = lmdbShared.getBinary(Symbol.for('structures'))

{
  const entries = libs.map((l) => ({
    name: l.name,
    tasks: VALUES.flatMap((val) => {
      const spec = (op) => ({ part: 'kv', lib: l.name, op, value: val.name })
      let v = 0
      const out = [
        task(spec('put'), val.batch, loop(KEYS, val.batch, (i) => {
          l.put(val, i, val.variants[v])
          v = (v + 1) & 3
        })),
        task(spec('get'), val.batch, loop(KEYS, val.batch, (i) => { sink += l.get(val, i) === undefined ? 0 : 1 })),
      ]
      if (l.raw) out.push(task(spec('raw get'), val.batch, loop(KEYS, val.batch, (i) => { sink += l.raw(val, i) })))
      return out
    }),
  }))
  await rounds('(b) kv.put and kv.get end to end, in-mem memory mode and lmdb-js noSync', entries)
}
checkReads('after the rounds')
for (const val of VALUES) {
  for (const op of ['put', 'get']) {
    const pairs = [
      ['in-mem records', 'in-mem plain'],
      ['in-mem', 'lmdb default'],
      ['in-mem', 'lmdb shared'],
      ['in-mem', 'lmdb plain'],
      ['lmdb shared', 'lmdb plain'],
    ]
    for (const [a, b] of pairs) {
      const x = row('kv', a, op, val.name)
      const y = row('kv', b, op, val.name)
      if (x && y) ratios.push({ part: 'kv', value: val.name, op, lib: a, vs: b, ...ratioOf(x, y) })
    }
  }
}

// ----- (c) the Rust side -----------------------------------------------------

/** What the Rust side, and in-mem's plain decode, make of a records-encoded value. */
const rust = []
{
  const db = Database.open()
  closers.push(() => db.close())
  const run = db.runs.begin({ name: 'rust' })
  const doc = { id: 'msg_01', role: 'assistant', total: 50, text: 'hello' }
  const fresh = recordsCodec({ bytes: null, saves: 0 })
  const recBytes = Buffer.from(fresh.pack(doc))
  const plainBytes = Buffer.from(plainPackr.pack(doc))
  const attempt = (what, fn) => {
    let outcome
    try {
      outcome = { ok: true, result: fn() }
    } catch (e) {
      outcome = { ok: false, error: `${e?.constructor?.name ?? 'Error'}: ${e?.message ?? e}` }
    }
    rust.push({ what, ...outcome })
    console.log(`  ${what}: ${outcome.ok ? `read ${JSON.stringify(outcome.result, (_, x) => (typeof x === 'bigint' ? String(x) : x))}` : `refused (${outcome.error})`}`)
    return outcome
  }
  console.log('\n(c) a records-encoded value where something other than its own codec reads it')
  const json = db.json.target // internal: the native path json.set goes through, given bytes as they are
  attempt('json.set of a plain document, then json.get $.text', () => {
    json.write(run, (tx) => tx.jsonSet(run, 'plain', '$', plainBytes))
    return db.json.get(run, 'plain', '$.text')
  })
  attempt('json.set of a records document (Rust decodes it)', () => {
    json.write(run, (tx) => tx.jsonSet(run, 'records', '$', recBytes))
    return db.json.get(run, 'records', '$.text')
  })
  db.machines.define({ name: 'order', version: 1, states: ['review', 'approved'], initial: 'review', transitions: [{ from: 'review', event: 'approve', to: 'approved', guard: 'ctx.total < 100' }] })
  const machines = db.machines.target
  attempt('machines.create with a records context (Rust decodes it)', () => machines.write(run, (tx) => tx.machinesCreate(run, 'm1', 'order', undefined, recBytes, undefined)).state)
  db.machines.create(run, 'm2', { machine: 'order', context: { total: 50 } })
  attempt('machines.apply with a records payload (the guard reads it)', () => machines.write(run, (tx) => tx.machinesApply(run, 'm2', 'approve', recBytes, undefined, undefined, undefined)).to)
  attempt("in-mem's decode (plain) of a records value, as the CLI, history and watch would read it", () => codec.decode(recBytes))
  check('rust', 'document', 'a plain document set through the native path reads back', rust[0].ok && rust[0].result === 'hello')
}

for (const c of closers.reverse()) c()
for (const d of dirs) rmSync(d, { recursive: true, force: true })

// ----- report ----------------------------------------------------------------

const ns = (x) => (x === undefined ? '-' : x >= 10_000 ? `${(x / 1000).toFixed(1)} µs` : `${x.toFixed(0)} ns`)
const rat = (value, op, a, b) => ratios.find((r) => r.value === value && r.op === op && r.lib === a && r.vs === b)
console.log(`\n=== (a) codec: ns per pack / unpack; plain ÷ records time (>1: records faster), median of ${ROUNDS} rounds ===`)
console.log(`${'value'.padEnd(15)} ${'bytes p/r'.padStart(11)} ${'pack plain'.padStart(10)} ${'records'.padStart(9)} ${'plain÷rec'.padStart(22)} ${'unpack plain'.padStart(12)} ${'records'.padStart(9)} ${'plain÷rec'.padStart(22)} ${'encode()'.padStart(9)}`)
for (const val of VALUES) {
  const f = (lib, op) => row('codec', lib, op, val.name)?.nsPerOp
  console.log(
    `${val.name.padEnd(15)} ${`${val.plain.length}/${val.records.length}`.padStart(11)} ${ns(f('plain', 'pack')).padStart(10)} ${ns(f('records', 'pack')).padStart(9)} ${fmtRatio(rat(val.name, 'pack', 'records', 'plain')).padStart(22)} ${ns(f('plain', 'unpack')).padStart(12)} ${ns(f('records', 'unpack')).padStart(9)} ${fmtRatio(rat(val.name, 'unpack', 'records', 'plain')).padStart(22)} ${ns(f('in-mem encode', 'pack')).padStart(9)}`,
  )
}
console.log(`\n=== (b) end to end, ns per op, median of ${ROUNDS} rounds ===`)
const libNames = libs.map((l) => l.name)
console.log(`${'value'.padEnd(15)} ${'op'.padEnd(7)} ${libNames.map((n) => n.padStart(14)).join(' ')} ${'raw get'.padStart(9)} ${'decode share'.padStart(12)}`)
const shares = []
for (const val of VALUES) {
  for (const op of ['put', 'get']) {
    const cells = libNames.map((n) => ns(row('kv', n, op, val.name)?.nsPerOp).padStart(14)).join(' ')
    let extra = ''
    if (op === 'get') {
      const get = row('kv', 'in-mem', 'get', val.name)?.nsPerOp
      const raw = row('kv', 'in-mem', 'raw get', val.name)?.nsPerOp
      const unpack = row('codec', 'plain', 'unpack', val.name)?.nsPerOp
      if (get && raw) {
        shares.push({ value: val.name, getNs: get, rawGetNs: raw, unpackNs: unpack, decodeShare: (get - raw) / get, unpackShare: unpack / get })
        extra = ` ${ns(raw).padStart(9)} ${`${((100 * (get - raw)) / get).toFixed(0)}% (${((100 * unpack) / get).toFixed(0)}%)`.padStart(12)}`
      }
    }
    console.log(`${val.name.padEnd(15)} ${op.padEnd(7)} ${cells}${extra}`)
  }
}
console.log('(decode share: (kv.get − raw get) ÷ kv.get, in brackets the measured unpack of the same bytes ÷ kv.get)')
console.log(`\nratios (ops/s, >1: the first faster), median of ${ROUNDS} rounds' ratios:`)
for (const r of ratios.filter((x) => x.part === 'kv')) console.log(`  ${r.value.padEnd(15)} ${r.op.padEnd(4)} ${r.lib.padEnd(15)} ÷ ${r.vs.padEnd(13)} ${fmtRatio(r)}`)

// The issue's rule: keep records only if faster for both put and get (the A/B in in-mem, every value).
const ab = (op) => VALUES.map((val) => rat(val.name, op, 'in-mem records', 'in-mem plain')).filter(Boolean)
const faster = (op) => ab(op).filter((r) => r.ratio > 1).length
const rustReads = rust.slice(1, 4).every((c) => c.ok)
const decision = {
  putFaster: `${faster('put')} of ${ab('put').length} values`,
  getFaster: `${faster('get')} of ${ab('get').length} values`,
  rustReadsRecords: rustReads,
  keepRecords: faster('put') === ab('put').length && faster('get') === ab('get').length && ab('put').length > 0,
}
console.log(`\nrecords vs plain in in-mem: put faster for ${decision.putFaster}, get faster for ${decision.getFaster}; the Rust side ${rustReads ? 'reads' : 'cannot read'} records`)
console.log(`decision by the issue's rule: ${decision.keepRecords ? (rustReads ? 'records' : 'records for KV values only (the Rust side cannot read them)') : 'keep plain MessagePack'}`)
for (const f of failures) console.log(`check failed: ${f}`)
for (const [what, e] of Object.entries(errors)) console.log(`\n${what} failed:\n${e}`)

console.log()
const ended = endOfRun({ root, loaded: addonLoaded, raced: addonRaced, probeAtStart, probe })
mkdirSync(dirname(OUT), { recursive: true })
writeFileSync(
  OUT,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      ...ended,
      machine: machineInfo(),
      config: { timeMs: TIME, keys: KEYS, rounds: ROUNDS, roundShare: SHARE },
      values: VALUES.map((v) => ({ name: v.name, plainBytes: v.plain.length, recordsBytes: v.records.length, inlineBytes: v.inline.length })),
      structures: { saves: structuresStore.saves, bytes: structuresStore.bytes?.length ?? 0, lmdbSharedBytes: lmdbSharedStructures?.length ?? 0 },
      results,
      ratios,
      decodeShares: shares,
      rust,
      decision,
      checks,
      failures,
      errors,
      sink: sink > 0,
    },
    (_, x) => (typeof x === 'bigint' ? String(x) : x),
    2,
  ),
)
console.log(`\nwrote ${shownPath(root, OUT)}`)
if (failures.length > 0 || Object.keys(errors).length > 0) process.exitCode = 1
