// Where in-mem's time goes in a single-operation write of a primitive
// (events.append, state.cas) and in state.get: splits measured from JS on a
// memory-mode database, one after the other in one process. Not part of
// `npm run bench`; run it by hand after `npm run build`:
//
//   node bench/profile-primitives.mjs
//
// A single operation on the database (`db.events.append(run, ...)`) runs
// src/ops.ts DbOps.write: beginTransaction (a napi call), the operation (a
// napi call on the transaction), an `isOpen` getter (a napi call) and
// commit (a napi call), plus the codec's validate + encode before them.
// Each line below adds or removes one piece, so differences between lines
// attribute the time. Each figure is the best of ROUNDS rounds of ITER
// operations (best, not mean: the VM is shared and drifts; the best round
// is the least disturbed one).

import { createRequire } from 'node:module'
import { hash as cryptoHash } from 'node:crypto'
import { Packr } from 'msgpackr'

const require = createRequire(import.meta.url)
const { Database } = require('../dist/index.js')
const { encode } = require('../dist/codec.js')
const { NativeDatabase } = require('../dist/native.js')

const ITER = Number(process.env.PROFILE_ITER ?? 20_000)
const ROUNDS = Number(process.env.PROFILE_ROUNDS ?? 7)
const VALUE = { role: 'assistant', step: 42, score: 0.875, done: false, tags: ['plan', 'tool'], text: 'The meeting moved to 3pm, room 4B.' }
const PUT = { ...VALUE }
const next = () => {
  PUT.step = (PUT.step + 1) & 127
  return PUT
}
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, variableMapSize: true })
const BYTES = Buffer.from(packr.pack(VALUE))
let sink = 0

/** Best of ROUNDS rounds of `iter` calls of fn, in ns per operation (fn runs `per` operations). */
function time(label, fn, iter = ITER, per = 1) {
  let best = Infinity
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < iter; i++) fn(i)
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / (iter * per))
  }
  console.log(`  ${label.padEnd(64)} ${best.toFixed(0).padStart(7)} ns`)
  return best
}

const probe = () => time('speed probe: JSON.parse of the value', () => { sink += JSON.parse(PROBE).step }, 50_000)
const PROBE = JSON.stringify(VALUE)
probe()

// ----- shared pieces -----------------------------------------------------------
console.log('\nshared pieces')
time('codec encode (validate + msgpackr pack) of the 100 B value', () => { sink += encode(next()).length })
time('msgpackr pack alone', () => { sink += packr.pack(next()).length })
const hashIn = Buffer.alloc(8 + 4 + 7 + 8 + 4 + BYTES.length + 32)
time(`node:crypto SHA-256 of ${hashIn.length} B (an event's hash input), for scale`, () => { sink += cryptoHash('sha256', hashIn, 'buffer')[0] })

const native = NativeDatabase.open(undefined, null)
const run = native.runBegin('profile', null, null, null).id
time('native beginTransaction + abort', () => native.beginTransaction().abort())
time('native beginTransaction + commit (read-only: no WAL, no version)', () => { sink += native.beginTransaction().commit(true) })
time('native isOpen getter', () => { sink += native.isOpen ? 1 : 0 })

// ----- events.append -----------------------------------------------------------
console.log('\nevents.append (memory mode)')
{
  const db = Database.open()
  const r = db.runs.begin({ name: 'profile' })
  time('db.events.append (the API)', () => { sink += db.events.append(r, 'message', next()).sequence })
  time('native begin + eventsAppend + isOpen + commit (DbOps.write, no codec)', () => {
    const tx = native.beginTransaction()
    sink += tx.eventsAppend(run, 'message', BYTES).sequence
    sink += native.isOpen ? 1 : 0
    tx.commit(true)
  })
  time('native begin + eventsAppend + commit', () => {
    const tx = native.beginTransaction()
    sink += tx.eventsAppend(run, 'message', BYTES).sequence
    tx.commit(true)
  })
  time('native begin + eventsAppend + abort (no commit)', () => {
    const tx = native.beginTransaction()
    sink += tx.eventsAppend(run, 'message', BYTES).sequence
    tx.abort()
  })
  for (const n of [10, 100]) {
    time(`  per append, ${n} appends in one native transaction + commit`, () => {
      const tx = native.beginTransaction()
      for (let i = 0; i < n; i++) sink += tx.eventsAppend(run, 'message', BYTES).sequence
      tx.commit(true)
    }, ITER / n, n)
  }
  time('db.transaction with 1 tx.events.append (the API, in a closure)', () => {
    db.transaction(r, (tx) => { sink += tx.events.append('message', next()).sequence })
  })
  db.close()
}

// ----- state.cas -------------------------------------------------------------
console.log('\nstate.cas (memory mode, one cell, always at its version)')
{
  const db = Database.open()
  const r = db.runs.begin({ name: 'profile' })
  db.state.init(r, 'c', VALUE)
  let v = 1
  time('db.state.cas (the API)', () => {
    const res = db.state.cas(r, 'c', v, next())
    v = res.version
  })
  const t0 = native.beginTransaction()
  t0.stateInit(run, 'c', BYTES)
  t0.commit(true)
  let nv = 1
  time('native begin + stateCas + isOpen + commit (DbOps.write, no codec)', () => {
    const tx = native.beginTransaction()
    nv = tx.stateCas(run, 'c', nv, BYTES).version
    sink += native.isOpen ? 1 : 0
    tx.commit(true)
  })
  time('native begin + stateCas + abort (no commit)', () => {
    const tx = native.beginTransaction()
    sink += tx.stateCas(run, 'c', nv, BYTES).version
    tx.abort()
  })
  time('native begin + stateGet + abort', () => {
    const tx = native.beginTransaction()
    sink += tx.stateGet(run, 'c').version
    tx.abort()
  })
  time('db.state.get (the API: + decode)', () => { sink += db.state.get(r, 'c').version })
  time('native stateGet x10 in one transaction, per get', () => {
    const tx = native.beginTransaction()
    for (let i = 0; i < 10; i++) sink += tx.stateGet(run, 'c').version
    tx.abort()
  }, ITER / 10, 10)
  // for scale: the KV fast path (one napi call, no transaction object)
  db.kv.put(r, 'k', VALUE)
  time('for scale: db.kv.put (hot path: one napi call)', () => { sink += db.kv.put(r, 'k', next()) })
  time('for scale: db.kv.get (hot path: one napi call)', () => { sink += db.kv.get(r, 'k').step })
  db.close()
}
native.close()
console.log()
probe()
if (sink === 0) console.log('')
