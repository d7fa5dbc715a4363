// Agent-sized values: what agents store (messages, tool results,
// conversation state) is 100 B to 100 KB, not kv.mjs's 100-byte value. At
// each size, for three kinds of value, in-mem in memory and buffered mode
// (and memory with `history: { keep: 1 }`, shown beside them; the targets
// judge the first two, the defaults) beside lmdb-js and better-sqlite3, in one run (SPEC §12: ratios against
// peers, measured on the same machine in the same run, never timed tests).
//
//   node bench/values.mjs    (needs a built dist/ and native addon: npm run build)
//
// Kinds (BENCH_KINDS, default "string,bytes,object"), each sized so that its
// MessagePack encoding is the target size (±a few bytes):
//   string : ASCII text;
//   bytes  : a Uint8Array;
//   object : an array of chat messages { role, content, tool_calls: [{ id,
//            type: 'function', function: { name, arguments } }] }, one per
//            512 bytes of the target (at least one), the content and the
//            tool call's JSON arguments filled to reach it (below 256 B,
//            one message with a short call id and tool name).
// Four variants of each value differ in their first character (byte): a
// write always stores bytes other than those already stored (SQLite skips
// an identical overwrite).
//
// Operations, at each size and kind (every library stores plain MessagePack,
// msgpackr without records, as in-mem's codec does; every read returns the
// decoded value):
//   kv.put / kv.get       in-mem db.kv; lmdb putSync / get (noSync env);
//                         sqlite UPSERT / SELECT of a BLOB.
//   events.append         one run's log. The peers do in-mem's work (as in
//                         bench/primitives.mjs): read the head, SHA-256 over
//                         in-mem's event encoding, store the event and the
//                         head in one transaction.
//   state.set / state.get in-mem db.state; lmdb useVersions putSync with the
//                         version (held in JS: lmdb-js has no read of a
//                         version without decoding the value) and getEntry;
//                         sqlite UPSERT ... version = version + 1 RETURNING
//                         version, and SELECT version, updated_at, value.
//   json.set              one path, $.step (a small integer), of a document
//                         { step, <the value> } (string: text, bytes: data,
//                         object: messages). sqlite: UPDATE ... SET doc =
//                         jsonb_set(doc, '$.step', ?) on a JSONB column
//                         (bytes as base64 text there: JSON has no bytes);
//                         lmdb: read-modify-write of the MessagePack
//                         document in transactionSync.
//   json.get $ / $.step   the whole document, and the one path. sqlite:
//                         json(doc) + JSON.parse, json_extract(doc, '$.step').
// Durability: in-mem memory and buffered (no fsync per write); lmdb noSync;
// better-sqlite3 WAL + synchronous=NORMAL. Ratios are in-mem ÷ peer
// (ops/s; >1: in-mem is faster).
//
// Memory: in a fresh child process per size and library, 100 keys are
// written and then overwritten BENCH_OVERWRITES times in all (default
// 10,000) with the object kind (or the first of BENCH_KINDS); the RSS after
// a full GC and a 1.5 s pause (in-mem's maintenance runs every second) is
// reported in MiB, and its growth over the process before the database was
// opened as a multiple of the live bytes (100 × the encoded size). lmdb's
// RSS includes the pages of its memory map the process touched.
//
// Targets, each printed as a PASS or FAIL line (reported, never enforced):
//   - at every size, kv.put and state.set (both in-mem modes, every kind)
//     ≥ 1.0 × lmdb putSync noSync, and kv.get and state.get ≥ 1.0 × lmdb get;
//   - json.set of one path on a 100 KB document ≥ 1.0 × better-sqlite3
//     jsonb_set, and its cost no more than doubles from a 1 KB to a 100 KB
//     document.
// The suite exits 1 only when what it times is wrong (a value read back is
// not the value written, $.step does not hold the last value set, the hash
// chain does not verify, an RSS figure is not a positive number).
//
// Timing: own loop. A warm-up of BENCH_TIME_MS / 5, then samples of a batch
// of operations (1,000 at 100 B down to 1 at 100 KB) until BENCH_TIME_MS
// have passed; ns/op = total time / operations, GC included. Writes stop
// early after 256 MiB of values (BENCH_WRITE_MIB) so that logs that keep
// every write (in-mem's memory mode, every event log) stay bounded.
//
// Environment: BENCH_TIME_MS (default 500), BENCH_SIZES (bytes, default
// "100,1024,10240,102400"), BENCH_KINDS, BENCH_OVERWRITES, BENCH_KEYS (keys,
// cells and documents per size, default 1000, at most 16 MiB of values),
// BENCH_WRITE_MIB, BENCH_ONLY (libraries: in-mem,lmdb,better-sqlite3),
// BENCH_OPS (kv.put,kv.get,events.append,state.set,state.get,json.set,
// json.get), BENCH_SKIP_RSS=1, BENCH_DIR (where the databases go, default
// the OS tmp dir), BENCH_OUT (default bench/results/values.json).

import { endOfRun, jsonParseProbe, loadInMem, machineInfo, prose, rssAfterGc } from './common.mjs'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hash as cryptoHash } from 'node:crypto'
import { Packr, Unpackr } from 'msgpackr'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

const TIME = Number(process.env.BENCH_TIME_MS ?? 500)
const SIZES = (process.env.BENCH_SIZES ?? '100,1024,10240,102400').split(',').map(Number)
const KINDS = (process.env.BENCH_KINDS ?? 'string,bytes,object').split(',')
const OVERWRITES = Number(process.env.BENCH_OVERWRITES ?? 10_000)
const MAX_KEYS = Number(process.env.BENCH_KEYS ?? 1000)
const WRITE_BYTES = Number(process.env.BENCH_WRITE_MIB ?? 256) * 2 ** 20
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null
const OPS = process.env.BENCH_OPS ? new Set(process.env.BENCH_OPS.split(',')) : null
const OUT = process.env.BENCH_OUT ?? join(here, 'results', 'values.json')
const BASE = process.env.BENCH_DIR ?? tmpdir()
const RSS_KEYS = 100
const RSS_KIND = KINDS.includes('object') ? 'object' : KINDS[0]

for (const s of SIZES) if (!Number.isInteger(s) || s < 16) throw new Error(`BENCH_SIZES: ${s} is not a size in bytes (≥ 16)`)
for (const k of KINDS) if (!['string', 'bytes', 'object'].includes(k)) throw new Error(`BENCH_KINDS: unknown kind ${k}`)

const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true })
const msgpack = { useRecords: false, variableMapSize: true } // lmdb-js encoder options: plain MessagePack
const encodedSize = (v) => packr.pack(v).length

// ----- the values ------------------------------------------------------------


/** make(fill) whose encoding is `target` bytes, or as close as `fill` (≥ 1) reaches. */
function fit(make, target) {
  let fill = Math.max(1, target)
  for (let i = 0; i < 8; i++) {
    const next = Math.max(1, fill + target - encodedSize(make(fill)))
    if (next === fill) break
    fill = next
  }
  return fill
}

/** The chat messages of an object value: `fill` characters over contents (3/4) and tool-call arguments (1/4). */
function messages(target, fill, variant) {
  const n = Math.max(1, Math.floor(target / 512))
  const small = target < 256 // one message in ~100 bytes: short id and tool name
  const content = prose(Math.ceil((3 * fill) / 4) + n)
  const args = prose(Math.floor(fill / 4) + n)
  const out = []
  let c = 0
  let a = 0
  for (let i = 0; i < n; i++) {
    const cl = Math.floor((Math.ceil((3 * fill) / 4) * (i + 1)) / n) - c
    const al = Math.floor((Math.floor(fill / 4) * (i + 1)) / n) - a
    out.push({
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: (i === 0 ? String.fromCharCode(65 + variant) : '') + content.slice(c + (i === 0 ? 1 : 0), c + cl),
      tool_calls: [{ id: small ? `c${i}` : `call_${i}`, type: 'function', function: { name: small ? 'find' : 'search_docs', arguments: JSON.stringify({ q: args.slice(a, a + al) }) } }],
    })
    c += cl
    a += al
  }
  return out
}

/** Four variants of a value of `kind` whose encoding is `size` bytes. */
function variantsOf(kind, size) {
  const make = {
    string: (fill, v) => String.fromCharCode(65 + v) + prose(Math.max(0, fill - 1)),
    bytes: (fill, v) => {
      const b = new Uint8Array(fill)
      for (let i = 0; i < fill; i++) b[i] = (i * 2654435761) >>> 24
      b[0] = v
      return b
    },
    object: (fill, v) => messages(size, fill, v),
  }[kind]
  const fill = fit((f) => make(f, 0), size)
  return [0, 1, 2, 3].map((v) => make(fill, v))
}

/** The JSON document of a value: { step, <field> }. */
const FIELD = { string: 'text', bytes: 'data', object: 'messages' }
const docOf = (kind, value, step = 0) => ({ step, [FIELD[kind]]: value })
/** The same document as SQLite's JSON holds it: bytes as base64 text. */
const sqliteDocOf = (kind, value, step = 0) => docOf(kind, kind === 'bytes' ? Buffer.from(value).toString('base64') : value, step)

/** Deep equality of decoded values; a Uint8Array equals a Buffer of the same bytes. */
function same(a, b) {
  if (a === b) return true
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  return ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]))
}

/** The length of a value of any kind: a cheap check of each read inside the timed loop. */
const lengthOf = (v) => (v === undefined || v === null ? -1 : v.length)

const fmtSize = (s) => (s >= 1024 && s % 1024 === 0 ? `${s / 1024} KB` : `${s} B`)

/** The shuffled visiting order: xorshift32 Fisher-Yates (as kv.mjs and engine.rs). */
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

// ----- the event hash chain, in JS (as bench/primitives.mjs) ------------------

const EVENT_TYPE = 'message'
const EVENT_TYPE_BYTES = Buffer.from(EVENT_TYPE)
const ZERO_HASH = Buffer.alloc(32)
const RUN_BYTES = Buffer.from('0190f5c8a0b27c3d8e4f5a6b7c8d9e0f', 'hex')
const hashScratch = { buf: Buffer.allocUnsafe(4096) }
/** SHA-256 of an event in in-mem's encoding (docs/format.md): seq u64 BE | type len u32 BE | type | ts u64 BE | payload len u32 BE | payload | prevHash. */
function chainHash(seq, typeBytes, ts, payload, prev) {
  const need = 8 + 4 + typeBytes.length + 8 + 4 + payload.length + 32
  if (need > hashScratch.buf.length) hashScratch.buf = Buffer.allocUnsafe(need * 2)
  const b = hashScratch.buf
  let at = b.writeBigUInt64BE(BigInt(seq), 0)
  at = b.writeUInt32BE(typeBytes.length, at)
  at += typeBytes.copy(b, at)
  at = b.writeBigUInt64BE(BigInt(ts), at)
  at = b.writeUInt32BE(payload.length, at)
  b.set(payload, at)
  at += payload.length
  at += prev.copy(b, at)
  return cryptoHash('sha256', b.subarray(0, at), 'buffer')
}

// ----- the libraries ---------------------------------------------------------

const dirs = []
mkdirSync(BASE, { recursive: true })
function tmp(name) {
  const d = mkdtempSync(join(BASE, `in-mem-bench-values-${name}-`))
  dirs.push(d)
  return d
}
function removeDirs() {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

const child = process.env.BENCH_VALUES_RSS !== undefined
let Database = null
let addonLoaded = null
let addonRaced = false
if (!ONLY || ONLY.has('in-mem')) ({ Database, loaded: addonLoaded, raced: addonRaced } = loadInMem(root, require))
const Sqlite = !ONLY || ONLY.has('better-sqlite3') ? require('better-sqlite3') : null
const openLmdb = !ONLY || ONLY.has('lmdb') ? (await import('lmdb')).open : null

/**
 * Each library as the same set of operations over keys[i] (kv keys, state
 * cells and document ids alike). `w` writes return what the library's own
 * API returns; reads return the decoded value.
 */
/** In-mem's third mode: memory, keeping one version per key (`history: { keep: 1 }`): no history, so no fresh copy of a large value stays per write. */
const KEEP1 = 'memory keep 1'

function inMemLib(mode, keys, kind) {
  const db =
    mode === 'memory'
      ? Database.open()
      : mode === KEEP1
        ? Database.open({ history: { keep: 1 } })
        : Database.open(tmp('inmem'), { durability: 'buffered' })
  const run = db.runs.begin({ name: 'values' })
  return {
    lib: 'in-mem',
    mode,
    load(value, doc) {
      for (const k of keys) {
        db.kv.put(run, k, value)
        db.state.set(run, k, value)
        db.json.set(run, k, '$', doc)
      }
    },
    put: (i, v) => db.kv.put(run, keys[i], v),
    get: (i) => db.kv.get(run, keys[i]),
    append: (v) => db.events.append(run, EVENT_TYPE, v),
    lastEvent() {
      const v = db.events.verify(run)
      if (!v.valid) throw new Error(`in-mem: the event chain does not verify: ${JSON.stringify(v)}`)
      const head = db.events.head(run)
      return { sequence: head.sequence, payload: head.payload, length: v.length }
    },
    stateSet: (i, v) => db.state.set(run, keys[i], v),
    stateGet: (i) => db.state.get(run, keys[i]),
    jsonSet: (i, n) => db.json.set(run, keys[i], '$.step', n),
    jsonGet: (i) => db.json.get(run, keys[i]),
    jsonGetStep: (i) => db.json.get(run, keys[i], '$.step'),
    docAt: (value, step) => docOf(kind, value, step),
    close: () => db.close(),
  }
}

async function lmdbLib(keys, kind) {
  const kv = openLmdb({ path: tmp('lmdb-kv'), noSync: true, encoder: msgpack })
  const cells = openLmdb({ path: tmp('lmdb-cells'), noSync: true, useVersions: true, encoder: msgpack })
  const events = openLmdb({ path: tmp('lmdb-events'), noSync: true, keyEncoding: 'binary', encoding: 'binary' })
  const docs = openLmdb({ path: tmp('lmdb-docs'), noSync: true, encoder: msgpack })
  const versions = new Array(keys.length).fill(0)
  const eventKey = (seq) => {
    const k = Buffer.allocUnsafe(24)
    RUN_BYTES.copy(k, 0)
    k.writeBigUInt64BE(BigInt(seq), 16)
    return k
  }
  // in-mem's layout: head run → length u64 LE | last hash; event run | seq BE → ts u64 LE | prevHash | hash | type len u16 LE | type | payload.
  const append = (value) =>
    events.transactionSync(() => {
      const head = events.get(RUN_BYTES)
      const seq = head === undefined ? 0 : Number(head.readBigUInt64LE(0))
      const prev = head === undefined ? ZERO_HASH : Buffer.from(head.subarray(8, 40))
      const ts = Date.now()
      const payload = packr.pack(value)
      const hash = chainHash(seq, EVENT_TYPE_BYTES, ts, payload, prev)
      const rec = Buffer.allocUnsafe(74 + EVENT_TYPE_BYTES.length + payload.length)
      rec.writeBigUInt64LE(BigInt(ts), 0)
      prev.copy(rec, 8)
      hash.copy(rec, 40)
      rec.writeUInt16LE(EVENT_TYPE_BYTES.length, 72)
      EVENT_TYPE_BYTES.copy(rec, 74)
      rec.set(payload, 74 + EVENT_TYPE_BYTES.length)
      events.putSync(eventKey(seq), rec)
      const nextHead = Buffer.allocUnsafe(40)
      nextHead.writeBigUInt64LE(BigInt(seq + 1), 0)
      hash.copy(nextHead, 8)
      events.putSync(RUN_BYTES, nextHead)
      return { sequence: seq, hash: hash.toString('hex'), prevHash: prev.toString('hex'), timestamp: ts }
    }, 2) // 2: a synchronous commit (as putSync), not abortable
  return {
    lib: 'lmdb',
    mode: 'noSync',
    load(value, doc) {
      kv.transactionSync(() => {
        for (const k of keys) kv.putSync(k, value)
      })
      cells.transactionSync(() => {
        for (const k of keys) cells.putSync(k, value, { version: 1 })
      })
      versions.fill(1)
      docs.transactionSync(() => {
        for (const k of keys) docs.putSync(k, doc)
      })
    },
    put: (i, v) => kv.putSync(keys[i], v),
    get: (i) => kv.get(keys[i]),
    append,
    lastEvent() {
      const head = events.get(RUN_BYTES)
      const length = Number(head.readBigUInt64LE(0))
      const rec = events.get(eventKey(length - 1))
      return { sequence: length - 1, payload: unpackr.unpack(rec.subarray(74 + rec.readUInt16LE(72))), length }
    },
    stateSet: (i, v) => {
      const version = versions[i] + 1
      cells.putSync(keys[i], v, { version })
      versions[i] = version
      return version
    },
    stateGet: (i) => cells.getEntry(keys[i]),
    jsonSet: (i, n) =>
      docs.transactionSync(() => {
        const doc = docs.get(keys[i])
        doc.step = n
        docs.putSync(keys[i], doc)
      }, 2),
    jsonGet: (i) => docs.get(keys[i]),
    jsonGetStep: (i) => docs.get(keys[i]).step,
    docAt: (value, step) => docOf(kind, value, step),
    async close() {
      for (const db of [kv, cells, events, docs]) await db.close()
    },
  }
}

function sqliteLib(keys, kind) {
  const db = new Sqlite(join(tmp('sqlite'), 'bench.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  // Ordinary rowid tables: SQLite's advice for rows of several KB (a WITHOUT ROWID row that large spills from its B-tree's cells).
  db.exec(
    'CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);' +
      'CREATE TABLE cells (name TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at INTEGER NOT NULL, value BLOB NOT NULL);' +
      'CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);' +
      'CREATE TABLE docs (id TEXT PRIMARY KEY, doc BLOB NOT NULL)',
  )
  const put = db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
  const get = db.prepare('SELECT value FROM kv WHERE key = ?').pluck()
  const set = db
    .prepare(
      'INSERT INTO cells (name, version, updated_at, value) VALUES (?, 1, ?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET value = excluded.value, version = version + 1, updated_at = excluded.updated_at RETURNING version',
    )
    .pluck()
  const cell = db.prepare('SELECT version, updated_at, value FROM cells WHERE name = ?').raw()
  const last = db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1').raw()
  const insertEvent = db.prepare('INSERT INTO events (seq, type, ts, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)')
  const lastPayload = db.prepare('SELECT seq, payload FROM events ORDER BY seq DESC LIMIT 1').raw()
  const count = db.prepare('SELECT count(*) FROM events').pluck()
  const insertDoc = db.prepare('INSERT INTO docs (id, doc) VALUES (?, jsonb(?))')
  const jsonSet = db.prepare("UPDATE docs SET doc = jsonb_set(doc, '$.step', ?) WHERE id = ?")
  const jsonGet = db.prepare('SELECT json(doc) FROM docs WHERE id = ?').pluck()
  const jsonGetStep = db.prepare("SELECT json_extract(doc, '$.step') FROM docs WHERE id = ?").pluck()
  const append = db.transaction((value) => {
    const head = last.get()
    const seq = head === undefined ? 0 : head[0] + 1
    const prev = head === undefined ? ZERO_HASH : head[1]
    const ts = Date.now()
    const payload = packr.pack(value)
    const hash = chainHash(seq, EVENT_TYPE_BYTES, ts, payload, prev)
    insertEvent.run(seq, EVENT_TYPE, ts, payload, prev, hash)
    return { sequence: seq, hash: hash.toString('hex'), prevHash: prev.toString('hex'), timestamp: ts }
  }).immediate
  return {
    lib: 'better-sqlite3',
    mode: 'WAL synchronous=NORMAL',
    load(value, doc, sqliteDoc) {
      const bytes = packr.pack(value)
      const text = JSON.stringify(sqliteDoc)
      db.transaction(() => {
        for (const k of keys) {
          put.run(k, bytes)
          set.get(k, Date.now(), bytes)
          insertDoc.run(k, text)
        }
      })()
    },
    put: (i, v) => put.run(keys[i], packr.pack(v)),
    get: (i) => {
      const b = get.get(keys[i])
      return b === undefined ? undefined : unpackr.unpack(b)
    },
    append,
    lastEvent() {
      const [seq, payload] = lastPayload.get()
      return { sequence: seq, payload: unpackr.unpack(payload), length: count.get() }
    },
    stateSet: (i, v) => set.get(keys[i], Date.now(), packr.pack(v)),
    stateGet: (i) => {
      const row = cell.get(keys[i])
      return row === undefined ? undefined : { value: unpackr.unpack(row[2]), version: row[0], updatedAt: row[1] }
    },
    jsonSet: (i, n) => {
      if (jsonSet.run(n, keys[i]).changes !== 1) throw new Error('better-sqlite3: jsonb_set changed nothing')
    },
    jsonGet: (i) => JSON.parse(jsonGet.get(keys[i])),
    jsonGetStep: (i) => jsonGetStep.get(keys[i]),
    docAt: (value, step) => sqliteDocOf(kind, value, step),
    close: () => db.close(),
  }
}

// ----- the memory child: RSS after overwrites ----------------------------------

if (child) {
  const [lib, mode, sizeText] = process.env.BENCH_VALUES_RSS.split('|')
  const size = Number(sizeText)
  const values = variantsOf(RSS_KIND, size)
  const keys = Array.from({ length: RSS_KEYS }, (_, i) => `key:${String(i).padStart(4, '0')}`)
  const baseBytes = rssAfterGc()
  const db = lib === 'in-mem' ? inMemLib(mode, keys, RSS_KIND) : lib === 'lmdb' ? await lmdbLib(keys, RSS_KIND) : sqliteLib(keys, RSS_KIND)
  for (let i = 0; i < keys.length; i++) db.put(i, values[0])
  for (let w = 0; w < OVERWRITES; w++) db.put(w % RSS_KEYS, values[(Math.floor(w / RSS_KEYS) + 1) & 3])
  const lastVariant = (w) => (Math.floor(w / RSS_KEYS) + 1) & 3
  const k = (OVERWRITES - 1) % RSS_KEYS
  const ok = OVERWRITES === 0 || same(db.get(k), values[lastVariant(OVERWRITES - 1)])
  const rssBytes = rssAfterGc(1500)
  await db.close()
  removeDirs()
  console.log(`rss ${JSON.stringify({ rssBytes, baseBytes, ok, encodedBytes: encodedSize(values[0]) })}`)
  process.exit(0)
}

// ----- measuring -------------------------------------------------------------

const probe = () => jsonParseProbe(variantsOf('object', 1024)[0][0])
const probeAtStart = probe()
console.log(`speed probe: JSON.parse of a 1 KB chat message ${probeAtStart.toFixed(0)} ns`)
console.log(`sizes ${SIZES.map(fmtSize).join(', ')}; kinds ${KINDS.join(', ')}; ${TIME} ms per task`)

const results = []
const checks = []
const failures = []
const errors = {}
const layouts = []
let sink = 0

const fmtNs = (x) => (x === undefined ? '-' : x >= 1e6 ? `${(x / 1e6).toFixed(2)} ms` : x >= 1e4 ? `${(x / 1e3).toFixed(1)} µs` : x >= 1e3 ? `${(x / 1e3).toFixed(2)} µs` : `${x.toFixed(0)} ns`)

/**
 * Times `sample` (one call: `batch` operations): a warm-up of TIME / 5, then
 * samples until TIME ms have passed or `maxOps` operations were done.
 */
function timeIt(sample, batch, maxOps) {
  const now = () => performance.now()
  let done = 0
  const warmEnd = now() + TIME / 5
  do {
    sample()
    done += batch
  } while (now() < warmEnd && done < maxOps / 5)
  const perSample = []
  let total = 0
  let ops = 0
  do {
    const t0 = now()
    sample()
    const dt = now() - t0
    total += dt
    ops += batch
    perSample.push(dt)
  } while (total < TIME && ops + done < maxOps)
  perSample.sort((a, b) => a - b)
  const nsPerOp = (total * 1e6) / ops
  return { nsPerOp, opsPerSec: 1e9 / nsPerOp, p50NsPerOp: (perSample[perSample.length >> 1] * 1e6) / batch, ops, samples: perSample.length, batch }
}

function check(ok, what, lib, size, kind, detail = '') {
  checks.push({ lib: lib.lib, mode: lib.mode, size, kind, check: what, ok })
  if (!ok) {
    const msg = `${lib.lib} ${lib.mode}, ${fmtSize(size)} ${kind}: ${what}${detail ? `: ${detail}` : ''}`
    failures.push(msg)
    console.log(`  CHECK FAILED: ${msg}`)
  }
}

const shortMode = (l) => (l.lib === 'in-mem' ? `in-mem ${l.mode}` : l.lib)

/** Measures every operation at one size and kind, each with every library in turn. */
async function sizeKind(size, kind) {
  const values = variantsOf(kind, size)
  const bytes = encodedSize(values[0])
  const len = lengthOf(values[0])
  const doc0 = docOf(kind, values[0])
  const nKeys = Math.max(4, Math.min(MAX_KEYS, Math.floor((16 * 2 ** 20) / size)))
  const keys = Array.from({ length: nKeys }, (_, i) => `key:${String(i).padStart(6, '0')}`)
  const order = shuffled(nKeys)
  const batch = Math.max(1, Math.min(1000, Math.round(100_000 / size)))
  const maxWrites = Math.max(batch * 10, Math.floor(WRITE_BYTES / bytes))
  const layout = {
    size,
    kind,
    encodedBytes: bytes,
    docBytes: encodedSize(doc0),
    docJsonChars: JSON.stringify(sqliteDocOf(kind, values[0])).length,
    messages: kind === 'object' ? values[0].length : undefined,
    keys: nKeys,
    batch,
  }
  layouts.push(layout)
  console.log(
    `\n== ${fmtSize(size)} ${kind}: ${bytes} B of MessagePack${kind === 'object' ? ` (${values[0].length} messages)` : ''}, document ${layout.docBytes} B; ${nKeys} keys; ${batch} ops per sample ==`,
  )

  const libs = []
  const open = async (name, make) => {
    try {
      const l = await make()
      l.load(values[0], doc0, sqliteDocOf(kind, values[0]))
      libs.push(l)
    } catch (e) {
      errors[`${name} ${fmtSize(size)} ${kind} open`] = String(e?.stack ?? e)
      console.log(`  ${name} FAILED to open: ${e?.message ?? e}`)
    }
  }
  if (!ONLY || ONLY.has('in-mem')) {
    await open('in-mem memory', () => inMemLib('memory', keys, kind))
    await open('in-mem buffered', () => inMemLib('buffered', keys, kind))
    await open(`in-mem ${KEEP1}`, () => inMemLib(KEEP1, keys, kind))
  }
  if (!ONLY || ONLY.has('lmdb')) await open('lmdb', () => lmdbLib(keys, kind))
  if (!ONLY || ONLY.has('better-sqlite3')) await open('better-sqlite3', () => sqliteLib(keys, kind))

  const record = (op, l, r) => {
    results.push({ size, kind, op, lib: l.lib, mode: l.mode, bytes, ...r })
    console.log(`  ${op.padEnd(14)} ${shortMode(l).padEnd(16)} ${fmtNs(r.nsPerOp).padStart(10)}/op ${Math.round(r.opsPerSec).toString().padStart(9)} ops/s`)
  }
  /** A sample: `batch` calls of fn(i, w), i walking the shuffled keys, w counting calls. */
  const sampleOf = (fn) => {
    let at = 0
    let w = 0
    return () => {
      for (let c = 0; c < batch; c++) {
        fn(order[at], w++)
        if (++at === nKeys) at = 0
      }
    }
  }
  const each = (op, fn) => {
    if (OPS && !OPS.has(op) && !(op.startsWith('json.get') && OPS.has('json.get'))) return
    for (const l of libs) {
      try {
        fn(l)
      } catch (e) {
        errors[`${shortMode(l)} ${op} ${fmtSize(size)} ${kind}`] = String(e?.stack ?? e)
        console.log(`  ${op} ${shortMode(l)} FAILED: ${e?.message ?? e}`)
      }
    }
  }
  const expectLength = (l, v) => {
    if (lengthOf(v) !== len) throw new Error(`${shortMode(l)} read a value of length ${lengthOf(v)}, expected ${len}`)
    return len
  }

  each('kv.put', (l) => {
    record('kv.put', l, timeIt(sampleOf((i, w) => l.put(i, values[w & 3])), batch, maxWrites))
    const i = order[0]
    l.put(i, values[1])
    const one = same(l.get(i), values[1])
    l.put(i, values[2])
    check(one && same(l.get(i), values[2]), 'kv.get returns the value kv.put wrote', l, size, kind)
  })
  each('kv.get', (l) => {
    record('kv.get', l, timeIt(sampleOf((i) => (sink += expectLength(l, l.get(i)))), batch, Infinity))
  })
  each('events.append', (l) => {
    const before = l.append(values[0]).sequence
    record('events.append', l, timeIt(sampleOf((i, w) => (sink += l.append(values[w & 3]).sequence)), batch, maxWrites))
    const a = l.append(values[3])
    const e = l.lastEvent()
    check(a.sequence > before && e.sequence === a.sequence && e.length === a.sequence + 1 && same(e.payload, values[3]), 'the last event holds the payload appended, at the next sequence', l, size, kind)
  })
  each('state.set', (l) => {
    record('state.set', l, timeIt(sampleOf((i, w) => (sink += l.stateSet(i, values[w & 3]))), batch, maxWrites))
    const i = order[0]
    const v1 = l.stateSet(i, values[1])
    const v2 = l.stateSet(i, values[2])
    const c = l.stateGet(i)
    check(v2 === v1 + 1 && c?.version === v2 && same(c.value, values[2]), 'state.get returns the value and version state.set wrote', l, size, kind)
  })
  each('state.get', (l) => {
    record('state.get', l, timeIt(sampleOf((i) => {
      const c = l.stateGet(i)
      sink += expectLength(l, c.value) + c.version
    }), batch, Infinity))
  })
  each('json.set', (l) => {
    let n = 0
    const last = new Array(nKeys).fill(0)
    record('json.set', l, timeIt(sampleOf((i) => {
      n = (n + 1) & 127
      l.jsonSet(i, n)
      last[i] = n
    }), batch, maxWrites))
    const i = order[0]
    const stepOk = l.jsonGetStep(i) === last[i]
    l.jsonSet(i, 200)
    check(stepOk && l.jsonGetStep(i) === 200 && same(l.jsonGet(i), l.docAt(values[0], 200)), '$.step holds the last value json.set wrote, the rest of the document unchanged', l, size, kind)
  })
  each('json.get $', (l) => {
    record('json.get $', l, timeIt(sampleOf((i) => (sink += l.jsonGet(i).step)), batch, Infinity))
  })
  each('json.get $.step', (l) => {
    record('json.get $.step', l, timeIt(sampleOf((i) => (sink += l.jsonGetStep(i))), batch, Infinity))
  })

  for (const l of libs) await l.close()
  removeDirs()
}

for (const size of SIZES) {
  for (const kind of KINDS) await sizeKind(size, kind)
}

// ----- memory: RSS after overwrites, one fresh process per size and library ----

const RSS_LIBS = [
  ['in-mem', 'memory'],
  ['in-mem', 'buffered'],
  ['in-mem', KEEP1],
  ['lmdb', 'noSync'],
  ['better-sqlite3', 'WAL synchronous=NORMAL'],
].filter(([lib]) => !ONLY || ONLY.has(lib))
const rss = []
if (!process.env.BENCH_SKIP_RSS) {
  console.log(`\n== RSS after ${OVERWRITES} overwrites of ${RSS_KEYS} keys (${RSS_KIND} values; a fresh process each) ==`)
  for (const size of SIZES) {
    for (const [lib, mode] of RSS_LIBS) {
      const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
        encoding: 'utf8',
        env: { ...process.env, BENCH_VALUES_RSS: `${lib}|${mode}|${size}` },
      })
      const m = /^rss (.*)$/m.exec(r.stdout)
      if (r.status !== 0 || !m) {
        errors[`rss ${lib} ${mode} ${fmtSize(size)}`] = `exit ${r.status}: ${r.stderr}`
        failures.push(`measuring the RSS of ${lib} ${mode} at ${fmtSize(size)} failed (exit ${r.status})`)
        console.log(`  ${lib} ${mode} ${fmtSize(size)} FAILED: ${r.stderr.split('\n')[0]}`)
        continue
      }
      const c = JSON.parse(m[1])
      const liveBytes = RSS_KEYS * c.encodedBytes
      const row = {
        size,
        kind: RSS_KIND,
        lib,
        mode,
        overwrites: OVERWRITES,
        keys: RSS_KEYS,
        rssBytes: c.rssBytes,
        baseBytes: c.baseBytes,
        liveBytes,
        rssMiB: c.rssBytes / 2 ** 20,
        growthMiB: (c.rssBytes - c.baseBytes) / 2 ** 20,
        growthPerLive: (c.rssBytes - c.baseBytes) / liveBytes,
        rssPerLive: c.rssBytes / liveBytes,
      }
      rss.push(row)
      if (!c.ok) failures.push(`${lib} ${mode} at ${fmtSize(size)}: after the overwrites, a key did not hold the last value written`)
      if (!(row.rssBytes > 0 && row.baseBytes > 0)) failures.push(`${lib} ${mode} at ${fmtSize(size)}: an RSS figure is not a positive number`)
      console.log(
        `  ${fmtSize(size).padStart(6)} ${`${lib} ${lib === 'in-mem' ? mode : ''}`.padEnd(17)} RSS ${row.rssMiB.toFixed(1).padStart(7)} MiB, +${row.growthMiB.toFixed(1).padStart(7)} MiB over the process before opening = ${row.growthPerLive.toFixed(1).padStart(7)} × the ${(liveBytes / 1024).toFixed(1)} KiB live`,
      )
    }
  }
}

// ----- report ----------------------------------------------------------------

const ratios = []
for (const mine of results.filter((r) => r.lib === 'in-mem')) {
  for (const peer of results.filter((r) => r.lib !== 'in-mem' && r.size === mine.size && r.kind === mine.kind && r.op === mine.op)) {
    ratios.push({ size: mine.size, kind: mine.kind, op: mine.op, inMemMode: mine.mode, peer: peer.lib, ratio: mine.opsPerSec / peer.opsPerSec })
  }
}
const ratioOf = (size, kind, op, mode, peer) => ratios.find((r) => r.size === size && r.kind === kind && r.op === op && r.inMemMode === mode && r.peer === peer)?.ratio
const res = (size, kind, op, lib, mode) => results.find((r) => r.size === size && r.kind === kind && r.op === op && r.lib === lib && (mode === undefined || r.mode === mode))

const OP_ORDER = ['kv.put', 'kv.get', 'events.append', 'state.set', 'state.get', 'json.set', 'json.get $', 'json.get $.step']
const fx = (x) => (x === undefined ? '-' : `${x.toFixed(2)}×`)
console.log('\n=== agent-sized values: time per operation, and in-mem ÷ peer (ops/s; >1: in-mem is faster) ===')
for (const size of SIZES) {
  for (const kind of KINDS) {
    const lay = layouts.find((x) => x.size === size && x.kind === kind)
    console.log(`\n${fmtSize(size)} ${kind} (${lay?.encodedBytes ?? '?'} B encoded; document ${lay?.docBytes ?? '?'} B, ${lay?.docJsonChars ?? '?'} chars of JSON in sqlite)`)
    console.log(
      `${'op'.padEnd(16)} ${'memory'.padStart(9)} ${'buffered'.padStart(9)} ${'keep 1'.padStart(9)} ${'lmdb'.padStart(9)} ${'sqlite'.padStart(9)}  ${'mem÷lmdb'.padStart(8)} ${'buf÷lmdb'.padStart(8)} ${'k1÷lmdb'.padStart(8)} ${'mem÷sql'.padStart(8)} ${'buf÷sql'.padStart(8)} ${'k1÷sql'.padStart(8)}`,
    )
    for (const op of OP_ORDER) {
      if (!results.some((r) => r.size === size && r.kind === kind && r.op === op)) continue
      const t = (lib, mode) => fmtNs(res(size, kind, op, lib, mode)?.nsPerOp).padStart(9)
      const q = (mode, peer) => fx(ratioOf(size, kind, op, mode, peer)).padStart(8)
      console.log(
        `${op.padEnd(16)} ${t('in-mem', 'memory')} ${t('in-mem', 'buffered')} ${t('in-mem', KEEP1)} ${t('lmdb')} ${t('better-sqlite3')}  ${q('memory', 'lmdb')} ${q('buffered', 'lmdb')} ${q(KEEP1, 'lmdb')} ${q('memory', 'better-sqlite3')} ${q('buffered', 'better-sqlite3')} ${q(KEEP1, 'better-sqlite3')}`,
      )
    }
  }
}

// Targets (reported, never enforced).
const targets = []
const target = (name, value, pass) => targets.push({ target: name, value, pass })
const inMemModes = ['memory', 'buffered']
for (const size of SIZES) {
  for (const [op, peerOp, what] of [
    ['kv.put', 'kv.put', 'lmdb putSync noSync'],
    ['state.set', 'state.set', 'lmdb putSync noSync'],
    ['kv.get', 'kv.get', 'lmdb get'],
    ['state.get', 'state.get', 'lmdb get'],
  ]) {
    const cells = []
    for (const mode of inMemModes) {
      for (const kind of KINDS) {
        const mine = res(size, kind, op, 'in-mem', mode)
        const peer = res(size, kind, peerOp, 'lmdb')
        if (mine && peer) cells.push({ mode, kind, ratio: mine.opsPerSec / peer.opsPerSec })
      }
    }
    if (cells.length === 0) continue
    const worst = cells.reduce((a, b) => (b.ratio < a.ratio ? b : a))
    target(
      `${fmtSize(size)}: ${op} ≥ 1.0 × ${what}`,
      `worst ${worst.ratio.toFixed(2)}× (${worst.mode}, ${worst.kind}); ${cells.map((c) => `${c.mode === 'memory' ? 'mem' : 'buf'} ${c.kind} ${c.ratio.toFixed(2)}×`).join(', ')}`,
      cells.every((c) => c.ratio >= 1),
    )
  }
}
const largest = Math.max(...SIZES)
const jsonCells = []
for (const mode of inMemModes) {
  for (const kind of KINDS) {
    const mine = res(largest, kind, 'json.set', 'in-mem', mode)
    const peer = res(largest, kind, 'json.set', 'better-sqlite3')
    if (mine && peer) jsonCells.push({ mode, kind, ratio: mine.opsPerSec / peer.opsPerSec })
  }
}
if (jsonCells.length > 0) {
  const worst = jsonCells.reduce((a, b) => (b.ratio < a.ratio ? b : a))
  target(
    `json.set $.step on a ${fmtSize(largest)} document ≥ 1.0 × better-sqlite3 jsonb_set${largest === 102400 ? '' : ' (the target is at 100 KB)'}`,
    `worst ${worst.ratio.toFixed(2)}× (${worst.mode}, ${worst.kind}); ${jsonCells.map((c) => `${c.mode === 'memory' ? 'mem' : 'buf'} ${c.kind} ${c.ratio.toFixed(2)}×`).join(', ')}`,
    jsonCells.every((c) => c.ratio >= 1),
  )
}
const from = SIZES.includes(1024) ? 1024 : Math.min(...SIZES)
if (from !== largest) {
  const growth = []
  for (const mode of inMemModes) {
    for (const kind of KINDS) {
      const a = res(from, kind, 'json.set', 'in-mem', mode)
      const b = res(largest, kind, 'json.set', 'in-mem', mode)
      if (a && b) growth.push({ mode, kind, x: b.nsPerOp / a.nsPerOp, a: a.nsPerOp, b: b.nsPerOp })
    }
  }
  if (growth.length > 0) {
    const worst = growth.reduce((a, b) => (b.x > a.x ? b : a))
    target(
      `json.set cost from a ${fmtSize(from)} to a ${fmtSize(largest)} document ≤ 2×`,
      `worst ${worst.x.toFixed(2)}× (${worst.mode}, ${worst.kind}: ${fmtNs(worst.a)} → ${fmtNs(worst.b)}); ${growth.map((g) => `${g.mode === 'memory' ? 'mem' : 'buf'} ${g.kind} ${g.x.toFixed(2)}×`).join(', ')}`,
      growth.every((g) => g.x <= 2),
    )
  }
}

if (rss.length > 0) {
  console.log(`\n=== RSS after ${OVERWRITES} overwrites of ${RSS_KEYS} keys (${RSS_KIND}); growth over the process before opening, ÷ live bytes ===`)
  console.log(`${'size'.padEnd(7)} ${RSS_LIBS.map(([l, m]) => (l === 'in-mem' ? `in-mem ${m}` : l).padStart(24)).join(' ')}`)
  for (const size of SIZES) {
    const cells = RSS_LIBS.map(([l, m]) => {
      const r = rss.find((x) => x.size === size && x.lib === l && x.mode === m)
      return (r ? `${r.rssMiB.toFixed(1)} MiB ${r.growthPerLive.toFixed(1)}×` : '-').padStart(24)
    })
    console.log(`${fmtSize(size).padEnd(7)} ${cells.join(' ')}`)
  }
}

console.log()
for (const t of targets) console.log(`${t.pass ? 'PASS' : 'FAIL'}  ${t.target} — ${t.value}`)
// The same comparisons for memory with history: { keep: 1 } (not a target: an option).
for (const [op, peer] of [['kv.put', 'lmdb'], ['state.set', 'lmdb'], ['json.set', 'better-sqlite3']]) {
  const cells = SIZES.flatMap((size) => KINDS.map((kind) => ({ size, kind, ratio: ratioOf(size, kind, op, KEEP1, peer) }))).filter((c) => c.ratio !== undefined)
  if (cells.length > 0) console.log(`      ${KEEP1}: ${op} ÷ ${peer}: ${cells.map((c) => `${fmtSize(c.size)} ${c.kind} ${c.ratio.toFixed(2)}×`).join(', ')}`)
}
for (const [what, e] of Object.entries(errors)) console.log(`\n${what} failed:\n${e}`)
for (const f of failures) console.log(`check failed: ${f}`)

const machine = machineInfo()
console.log(`\nmachine: ${machine.cpu} (${machine.cores} cores), node ${machine.node}, ${machine.platform}`)
const ended = endOfRun({ root, loaded: addonLoaded, raced: addonRaced, probeAtStart, probe })
mkdirSync(dirname(OUT), { recursive: true })
writeFileSync(
  OUT,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      ...ended,
      machine,
      config: { timeMs: TIME, sizes: SIZES, kinds: KINDS, overwrites: OVERWRITES, rssKeys: RSS_KEYS, rssKind: RSS_KIND, maxKeys: MAX_KEYS, writeBytes: WRITE_BYTES, dir: BASE },
      layouts,
      results,
      ratios,
      rss,
      checks,
      targets,
      failures,
      errors,
      sink: sink > 0,
    },
    null,
    2,
  ),
)
console.log(`wrote ${OUT}`)
if (failures.length > 0 || Object.keys(errors).length > 0) process.exitCode = 1
