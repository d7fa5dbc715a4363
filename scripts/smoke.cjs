// Smoke test of an installed in-mem through require(): opens a database in a
// temporary directory, writes, reads, searches vectors, closes, reopens and
// reads again. Prints
// one JSON line naming the native binary that loaded; exits non-zero on any
// failure. Used by the offline install check (test/install.test.ts) and by the
// release workflow on each target's own runner.
//
//   node scripts/smoke.cjs [module]     (module defaults to 'in-mem')
'use strict'
const { mkdtempSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const assert = require('node:assert/strict')

const { Database } = require(process.argv[2] || 'in-mem')
const dir = mkdtempSync(join(tmpdir(), 'in-mem-smoke-'))
try {
  const value = { steps: ['search', 'answer'], n: 42, big: 2n ** 40n, bytes: Buffer.from([1, 2, 3]) }
  let db = Database.open(dir, { durability: 'strict' })
  const run = db.runs.begin({ name: 'smoke' })
  db.kv.put(run, 'plan', value)
  assert.deepStrictEqual(db.kv.get(run, 'plan'), value)
  // Vector search through the HNSW graph (usearch's C++, in the addon): more
  // vectors than a search scans exactly, each nearest itself.
  db.vectors.create(run, 'v', { dimension: 8, metric: 'euclidean' })
  const vec = (i) => Array.from({ length: 8 }, (_, d) => Math.sin(i * 0.37 + d * 1.3) * 10 + (i % 7))
  db.vectors.upsertMany(run, 'v', Array.from({ length: 1200 }, (_, i) => ({ id: `n${i}`, vector: vec(i), metadata: { i } })))
  for (const i of [0, 599, 1199]) assert.equal(db.vectors.search(run, 'v', vec(i), { k: 3, ef: 64 })[0].id, `n${i}`)
  db.runs.complete(run)
  db.close()
  db = Database.open(dir)
  assert.deepStrictEqual(db.kv.get(run, 'plan'), value)
  assert.equal(db.runs.get(run).status, 'completed')
  assert.equal(db.vectors.search(run, 'v', vec(599), { k: 1 })[0].id, 'n599')
  db.close()
  const binary = Object.keys(require.cache).find((f) => /in-mem[^\\/]*\.node$/.test(f))
  console.log(JSON.stringify({ ok: true, via: 'require', binary }))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
