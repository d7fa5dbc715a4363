// A small agent run on a local data directory, printed as it happens.
//
//   npm run demo                  # uses ./.in-mem-demo (starts fresh)
//   node examples/demo.mjs <dir>  # or a directory of your choice
//
// A toy research agent keeps its working memory in KV, its budget in a state
// cell, its notes in a JSON document, its progress in a state machine, what
// it did and why in traces, and an audit trail in the event log. It commits a
// tool result and its bookkeeping in one transaction, pauses and resumes,
// then reaches a decision point: which source to read. The run is forked
// there and each branch makes a different choice. Both complete; the
// directory is closed and reopened, and then the demo verifies the event
// logs, diffs the two branches and replays the original at the decision
// point. The `in-mem` CLI can inspect the directory afterwards.
import { createRequire } from 'node:module'
import { rmSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { Database, RunClosedError } = require('../dist/index.js')

const dir = resolve(process.argv[2] ?? '.in-mem-demo')
const fresh = process.argv.includes('--fresh') || process.argv[2] === undefined
if (fresh) rmSync(dir, { recursive: true, force: true })

const colour = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code, s) => (colour ? `\u001b[${code}m${s}\u001b[0m` : s)
const green = (s) => paint(32, s)
const red = (s) => paint(31, s)
const yellow = (s) => paint(33, s)
const bold = (s) => paint(1, s)
const say = (...a) => console.log(...a)
const step = (title) => say(`\n${bold(`== ${title}`)}`)
const show = (v, max = 90) => {
  const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x))
  return s.length > max ? `${s.slice(0, max - 1)}…` : s
}

step(`open ${dir} (durability: buffered)`)
let db = Database.open(dir, { durability: 'buffered' })
say(`   recovered ${db.stats().recovery.records} WAL records`)

// A state machine for the task: definitions are database-wide.
db.machines.define({
  name: 'research-task',
  version: 1,
  states: ['planning', 'searching', 'reading', 'summarizing', 'done'],
  initial: 'planning',
  transitions: [
    { from: 'planning', event: 'search', to: 'searching' },
    { from: 'searching', event: 'read', to: 'reading' },
    { from: 'reading', event: 'summarize', to: 'summarizing', guard: 'ctx.sourcesRead >= 1' },
    { from: 'summarizing', event: 'finish', to: 'done' },
  ],
})

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
agent.state.init('budget', 1000) // tokens left: a versioned cell
agent.json.set('notes', '$', { question: 'which embedded store suits agent memory?', findings: {} })
agent.machines.create('task', { machine: 'research-task', context: { sourcesRead: 0 } })
agent.events.append('run.started', { goal: agent.kv.get('goal') })
const thinking = agent.traces.record({ type: 'thought', data: { content: 'search first, then read the best source', confidence: 0.8 } })
say(`   working memory: ${agent.kv.list().join(', ')}`)
say(`   budget ${agent.state.get('budget').value} tokens, task '${agent.machines.get('task').state}', notes ${show(agent.json.get('notes'))}`)

step('tool call: search, committed atomically with its bookkeeping')
const results = [
  { title: 'LMDB: memory-mapped B+tree', score: 0.91 },
  { title: 'SQLite WAL mode', score: 0.87 },
]
db.transaction(run, (tx) => {
  const plan = tx.kv.get('plan')
  tx.kv.put('tool/search/1', { query: 'embedded kv store node', results, durationMs: 412 })
  tx.kv.put('plan', { ...plan, current: plan.current + 1 })
  tx.events.append('tool.called', { tool: 'search', hits: results.length })
  tx.traces.record({ type: 'tool_call', parent: thinking, data: { tool: 'search', arguments: { q: 'embedded kv store node' }, result: results.length, durationMs: 412 } })
  tx.state.set('budget', tx.state.get('budget').value - 120)
  tx.machines.apply('task', 'search')
})
const plan = agent.kv.getVersioned('plan')
const search = agent.kv.getVersioned('tool/search/1')
say(`   plan step -> ${plan.value.current} at version ${plan.version}; search result (${results.length} hits) at version ${search.version}: one commit`)
say(`   with it: event #${agent.events.head().sequence} ${agent.events.head().type}, budget v${agent.state.get('budget').version} = ${agent.state.get('budget').value}, task '${agent.machines.get('task').state}'`)

step('pause the run (a human reviews), then resume')
db.runs.pause(run)
try {
  agent.kv.put('plan', 'overwrite while paused')
} catch (e) {
  say(`   write while paused refused: ${e instanceof RunClosedError ? 'RunClosedError' : e.name} (${e.message})`)
}
db.runs.resume(run)
say(`   status: ${db.runs.get(run).status}`)

step('decision point: which source to read first? fork the run here')
const decisionAt = db.stats().version
const alt = db.runs.fork(run, { name: 'research: embedded databases for agents (alt: sqlite first)' })
say(`   forked at version ${decisionAt}: ${alt} (copy-on-write: nothing is copied)`)
say(`   lineage of the fork: ${db.runs.lineage(alt).map((r) => r.id.slice(-12)).join(' <- ')}`)

/** One branch of the agent: decide, read the chosen source, summarize, complete. */
function branch(id, source, doc, cost) {
  const s = db.scope(id)
  const decision = s.traces.record({
    type: 'decision',
    data: { question: 'which source first?', options: ['lmdb docs', 'sqlite docs'], chosen: source, reasoning: doc.why },
  })
  db.transaction(id, (tx) => {
    tx.kv.put('tool/read/1', { source, pages: doc.pages })
    tx.events.append('tool.called', { tool: 'read', source })
    tx.traces.record({ type: 'tool_call', parent: decision, data: { tool: 'read', arguments: { source }, result: doc.finding, durationMs: doc.ms } })
    tx.json.set('notes', `$.findings["${source}"]`, doc.finding)
    tx.state.set('budget', tx.state.get('budget').value - cost)
    tx.machines.apply('task', 'read', { payload: { sourcesRead: 1, source } })
    tx.machines.apply('task', 'summarize') // its guard: ctx.sourcesRead >= 1
  })
  s.kv.put('summary', { answer: doc.answer, sources: 2 })
  s.machines.apply('task', 'finish')
  s.events.append('run.completed', { answer: doc.answer })
  s.kv.delete('scratch/thought')
  return db.runs.complete(id)
}

const done = branch(run, 'lmdb docs', {
  why: 'highest search score',
  pages: 12,
  ms: 830,
  finding: 'mmap reads are fast; one writer at a time',
  answer: 'lmdb for read-heavy memory; keep runs scoped and diffable',
}, 340)
branch(alt, 'sqlite docs', {
  why: 'SQL for ad-hoc inspection',
  pages: 31,
  ms: 1260,
  finding: 'WAL mode: readers never block the writer',
  answer: 'sqlite when humans query the memory; it costs more tokens',
}, 610)
say(`   original chose lmdb docs, the fork sqlite docs; both completed (the original took ${done.endedAt - done.createdAt} ms)`)

step('close and reopen the directory')
db.close()
db = Database.open(dir, { durability: 'buffered' })
const stats = db.stats()
say(`   recovered ${stats.recovery.records} commits in ${stats.recovery.durationMs.toFixed(2)} ms (checkpoint at version ${stats.recovery.checkpointVersion}), version ${stats.version}`)
const info = db.runs.get(run)
say(`   run "${info.name}" is ${info.status}, tags [${info.tags.join(', ')}], metadata ${JSON.stringify(info.metadata)}`)
for (const [key, value] of db.kv.entries(run)) {
  say(`   ${key.padEnd(16)} ${show(value)}`)
}
say(`   completed runs: ${db.runs.list({ status: 'completed' }).length}, tagged 'demo': ${db.runs.list({ tag: 'demo' }).length}, children of the original: ${db.runs.children(run).length}`)

step('verify the event logs (SHA-256 hash chains)')
for (const id of [run, alt]) {
  const v = db.events.verify(id)
  say(`   ${id.slice(-12)}: ${v.valid ? green('valid') : red(`invalid at #${v.firstInvalid}`)}, ${v.length} events`)
}

step('diff: the original (a) against the fork (b)')
/** Where two values differ, as `path: a → b` lines (objects compared key by key). */
function delta(a, b, path = '') {
  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
  if (isObj(a) && isObj(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => delta(a[k], b[k], `${path}.${/^\w+$/.test(k) ? k : JSON.stringify(k)}`))
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return []
  const v = (x) => (x === undefined ? '(none)' : show(x, 48))
  return [`${path}: ${v(a)} → ${v(b)}`]
}
const traceText = (t) =>
  t.type === 'decision' ? `decision ${t.data.question} → ${show(t.data.chosen)}`
  : t.type === 'tool_call' ? `tool_call ${t.data.tool}(${show(t.data.arguments)}) → ${show(t.data.result, 40)}`
  : `${t.type} ${show(t.data, 60)}`
const eventText = (e) =>
  e.type === 'machine.transition' ? `${e.type} ${e.payload.event}: ${e.payload.from} → ${e.payload.to}` : `${e.type} ${show(e.payload, 60)}`
const d = db.diff(run, alt)
for (const primitive of ['kv', 'state', 'json', 'traces', 'machines']) {
  const c = d[primitive]
  if (c.added.length + c.removed.length + c.changed.length === 0) continue
  const brief = (v) => (primitive === 'traces' ? traceText(v) : primitive === 'machines' ? `${v.state} ${show(v.context)}` : show(v, 70))
  const key = (k) => (primitive === 'traces' ? `…${k.slice(-12)}` : k)
  say(`   ${bold(primitive)}`)
  for (const e of c.removed) say(red(`     - ${key(e.key)}: ${brief(e.value)}`))
  for (const e of c.added) say(green(`     + ${key(e.key)}: ${brief(e.value)}`))
  for (const e of c.changed) {
    const lines = primitive === 'machines' ? delta(e.a.context, e.b.context, '.context') : delta(e.a, e.b)
    if (lines.length === 1) say(yellow(`     ~ ${e.key}${lines[0]}`))
    else {
      say(yellow(`     ~ ${e.key}`))
      for (const l of lines) say(yellow(`         ${l}`))
    }
  }
}
say(`   ${bold('events')}: ${d.events.common} in common, then`)
for (const e of d.events.a) say(red(`     - a #${e.sequence} ${eventText(e)}`))
for (const e of d.events.b) say(green(`     + b #${e.sequence} ${eventText(e)}`))

step(`replay the original at the decision point (version ${decisionAt})`)
const then = db.replay(run, { at: decisionAt })
const now = db.scope(run)
const rows = [
  ['kv', then.kv.list().join(', '), now.kv.list().join(', ')],
  ['budget', `${then.state.get('budget').value} (v${then.state.get('budget').version})`, `${now.state.get('budget').value} (v${now.state.get('budget').version})`],
  ['task', then.machines.get('task').state, now.machines.get('task').state],
  ['events', then.events.length(), now.events.length()],
  ['traces', then.traces.query().length, now.traces.query().length],
  ['findings', show(then.json.get('notes', '$.findings')), show(Object.keys(now.json.get('notes', '$.findings')))],
]
const wide = Math.max(...rows.map((r) => String(r[1]).length)) + 2
say(`   ${''.padEnd(10)} ${bold('then'.padEnd(wide))} ${bold('now')}`)
for (const [what, a, b] of rows) say(`   ${what.padEnd(10)} ${String(a).padEnd(wide)} ${b}`)
then.close()
const log = db.runs.log(run)
say(`   the original's log has ${log.length} commits; replay takes any of their versions (${log.slice(0, 5).map((c) => c.version).join(', ')}, …)`)
db.close()

const near = (p) => {
  const r = relative(process.cwd(), p)
  return r === '' ? '.' : r.startsWith('..') ? p : r
}
const cli = `node ${near(fileURLToPath(new URL('../bin/in-mem.js', import.meta.url)))}`
const at = near(dir)
step('inspect it with the CLI (`npx in-mem` where the package is installed)')
say(`   ${cli} runs list --dir ${at}`)
say(`   ${cli} runs show ${run.slice(-12)} --dir ${at}`)
say(`   ${cli} diff ${run.slice(-12)} ${alt.slice(-12)} --dir ${at}`)
say(`   ${cli} replay ${run.slice(-12)} --at ${decisionAt} --dir ${at}`)
say('\ndone.')
