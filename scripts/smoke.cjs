// Smoke test of an installed in-mem through require(): opens a database in a
// temporary directory, writes, reads, closes, reopens and reads again. Prints
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
  db.runs.complete(run)
  db.close()
  db = Database.open(dir)
  assert.deepStrictEqual(db.kv.get(run, 'plan'), value)
  assert.equal(db.runs.get(run).status, 'completed')
  db.close()
  const binary = Object.keys(require.cache).find((f) => /in-mem[^\\/]*\.node$/.test(f))
  console.log(JSON.stringify({ ok: true, via: 'require', binary }))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
