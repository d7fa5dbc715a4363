// A small agent run on a local data directory, printed as it happens.
//
//   npm run demo                  # uses ./.in-mem-demo
//   node examples/demo.mjs <dir>  # or a directory of your choice
//
// It opens a durable database, runs a toy research agent that keeps its
// working memory in KV, commits a tool result and its bookkeeping in one
// transaction, pauses and resumes, completes, then closes and reopens the
// directory to show that everything came back.
import { createRequire } from 'node:module'
import { rmSync } from 'node:fs'
import { resolve } from 'node:path'

const require = createRequire(import.meta.url)
const { Database, RunClosedError } = require('../dist/index.js')

const dir = resolve(process.argv[2] ?? '.in-mem-demo')
const fresh = process.argv.includes('--fresh') || process.argv[2] === undefined
if (fresh) rmSync(dir, { recursive: true, force: true })

const say = (...a) => console.log(...a)
const step = (title) => say(`\n== ${title}`)

step(`open ${dir} (durability: buffered)`)
let db = Database.open(dir, { durability: 'buffered' })
say(`   recovered ${db.stats().recovery.records} WAL records`)

step('begin a run')
const run = db.runs.begin({
  name: 'research: embedded databases for agents',
  tags: ['demo', 'research'],
  metadata: { model: 'toy-llm-1', maxSteps: 4 },
})
say(`   run ${run}`)

const agent = db.scope(run)
agent.kv.put('goal', 'compare embedded stores for agent memory')
agent.kv.put('plan', { steps: ['search', 'read', 'summarize'], current: 0 })
agent.kv.put('scratch/thought', 'maybe start with lmdb?', { ttlMs: 60_000 })
say(`   working memory: ${agent.kv.list().join(', ')}`)

step('tool call: search, committed atomically with the plan update')
const results = [
  { title: 'LMDB: memory-mapped B+tree', score: 0.91 },
  { title: 'SQLite WAL mode', score: 0.87 },
]
db.transaction(run, (tx) => {
  const plan = tx.kv.get('plan')
  tx.kv.put('tool/search/1', { query: 'embedded kv store node', results, durationMs: 412 })
  tx.kv.put('plan', { ...plan, current: plan.current + 1 })
})
const plan = agent.kv.getVersioned('plan')
const search = agent.kv.getVersioned('tool/search/1')
say(`   plan step -> ${plan.value.current} at version ${plan.version}; search result (${results.length} hits) at version ${search.version}: one commit`)

step('pause the run (a human reviews), then resume')
db.runs.pause(run)
try {
  agent.kv.put('plan', 'overwrite while paused')
} catch (e) {
  say(`   write while paused refused: ${e instanceof RunClosedError ? 'RunClosedError' : e.name} (${e.message})`)
}
db.runs.resume(run)
say(`   status: ${db.runs.get(run).status}`)

step('summarize and complete')
agent.kv.put('summary', { answer: 'keep agent memory run-scoped, durable, and diffable', sources: 2 })
const done = db.runs.complete(run)
say(`   status: ${done.status}, took ${done.endedAt - done.createdAt} ms`)

step('close and reopen the directory')
db.close()
db = Database.open(dir, { durability: 'buffered' })
const stats = db.stats()
say(`   recovered ${stats.recovery.records} commits in ${stats.recovery.durationMs.toFixed(2)} ms, version ${stats.version}`)
const info = db.runs.get(run)
say(`   run "${info.name}" is ${info.status}, tags [${info.tags.join(', ')}], metadata ${JSON.stringify(info.metadata)}`)
for (const [key, value] of db.kv.entries(run)) {
  say(`   ${key.padEnd(16)} ${JSON.stringify(value)}`)
}
say(`   completed runs: ${db.runs.list({ status: 'completed' }).length}, tagged 'demo': ${db.runs.list({ tag: 'demo' }).length}`)
db.close()
say('\ndone.')
