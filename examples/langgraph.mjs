// A LangGraph.js agent whose checkpoints live in in-mem.
//
//   npm run example:langgraph                    # uses ./.in-mem-langgraph (starts fresh)
//   node examples/langgraph.mjs <dir>            # or a directory of your choice
//
// The graph: an agent node (a deterministic stand-in for a chat model: no
// network), a tool node with a weather tool, and a review node that stops
// the graph with `interrupt()` until a human approves the answer.
//
// 1. A child process runs thread "trip-paris" until the review interrupt and
//    exits: the process is gone, the checkpoints are on disk (strict mode).
// 2. A second child process opens the directory, finds the thread paused at
//    the review, and resumes it with the approval.
// 3. The thread is forked (an in-mem fork of its run: nothing copied), and
//    on the fork LangGraph's `updateState` rewrites the question at the
//    first checkpoint; the fork runs from there to its own review.
// 4. The `in-mem` CLI diffs the two threads' runs: the graph's channel
//    values, decoded.
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Database } from 'in-mem'
import { InMemSaver } from 'in-mem/langgraph'
import { Annotation, Command, END, MessagesAnnotation, START, StateGraph, interrupt } from '@langchain/langgraph'
import { ToolNode } from '@langchain/langgraph/prebuilt'
import { AIMessage, HumanMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { z } from 'zod'

const here = dirname(fileURLToPath(import.meta.url))
const [, , first, second] = process.argv
const step = first?.startsWith('--') ? first.slice(2) : undefined
const dir = resolve((step ? second : first) ?? '.in-mem-langgraph')

const WEATHER = { paris: 'light rain, 14°C', london: 'heavy rain, 11°C', madrid: 'sunny, 27°C' }

const getWeather = tool(async ({ city }) => WEATHER[city.toLowerCase()] ?? 'unknown', {
  name: 'get_weather',
  description: 'The weather today in a city',
  schema: z.object({ city: z.string() }),
})

/** The stand-in model: asks for the weather of the city in the question, then answers from the tool's result. */
function agent(state) {
  const last = state.messages.at(-1)
  if (last.getType() === 'human') {
    const city = Object.keys(WEATHER).find((c) => last.content.toLowerCase().includes(c)) ?? 'paris'
    return { messages: [new AIMessage({ content: '', tool_calls: [{ id: `call_${city}`, name: 'get_weather', args: { city } }] })] }
  }
  const umbrella = /rain/.test(last.content) ? 'Pack an umbrella.' : 'No umbrella needed.'
  return { messages: [new AIMessage(`The forecast: ${last.content}. ${umbrella}`)], draft: umbrella }
}

const State = Annotation.Root({
  ...MessagesAnnotation.spec,
  draft: Annotation(),
  approved: Annotation(),
})

/** Stops the graph until a human answers; the answer comes back from `interrupt`. */
function review(state) {
  const answer = interrupt({ question: 'Send this answer?', draft: state.messages.at(-1).content })
  return { approved: answer === 'approve' }
}

export function buildGraph(checkpointer) {
  return new StateGraph(State)
    .addNode('agent', agent)
    .addNode('tools', new ToolNode([getWeather]))
    .addNode('review', review)
    .addEdge(START, 'agent')
    .addConditionalEdges('agent', (s) => (s.messages.at(-1).tool_calls?.length ? 'tools' : 'review'), ['tools', 'review'])
    .addEdge('tools', 'agent')
    .addEdge('review', END)
    .compile({ checkpointer })
}

const thread = (id) => ({ configurable: { thread_id: id } })
const text = (m) => `${m.getType()}: ${m.content || JSON.stringify(m.tool_calls?.map((c) => `${c.name}(${JSON.stringify(c.args)})`))}`

async function child(which) {
  const db = Database.open(dir, { durability: 'strict' })
  const saver = new InMemSaver(db)
  const graph = buildGraph(saver)
  if (which === 'start') {
    await graph.invoke({ messages: [new HumanMessage('What is the weather in Paris? Should I pack an umbrella?')] }, thread('trip-paris'))
    const s = await graph.getState(thread('trip-paris'))
    console.log(`  [pid ${process.pid}] ran thread trip-paris to ${JSON.stringify(s.next)}: ${s.tasks[0].interrupts[0].value.question}`)
    console.log(`  [pid ${process.pid}] draft: ${s.tasks[0].interrupts[0].value.draft}`)
    console.log(`  [pid ${process.pid}] exits without closing anything`)
    process.exit(0)
  }
  const s = await graph.getState(thread('trip-paris'))
  console.log(`  [pid ${process.pid}] found thread trip-paris paused before ${JSON.stringify(s.next)} after ${s.values.messages.length} messages`)
  const out = await graph.invoke(new Command({ resume: 'approve' }), thread('trip-paris'))
  console.log(`  [pid ${process.pid}] resumed with "approve": approved = ${out.approved}`)
  db.close()
}

async function main() {
  rmSync(dir, { recursive: true, force: true })
  console.log(`data directory ${dir}\n`)
  const self = fileURLToPath(import.meta.url)
  console.log('1. run until the review interrupt, in a child process')
  for (const which of ['start', 'resume']) {
    if (which === 'resume') console.log('\n2. restart: resume the thread from its checkpoint, in a new process')
    const r = spawnSync(process.execPath, [self, `--${which}`, dir], { stdio: 'inherit' })
    if (r.status !== 0) throw new Error(`the ${which} step failed (exit ${r.status})`)
  }

  console.log('\n3. fork the thread and rewrite its question with LangGraph updateState')
  const db = Database.open(dir, { durability: 'strict' })
  const saver = new InMemSaver(db)
  const graph = buildGraph(saver)
  for (const m of (await graph.getState(thread('trip-paris'))).values.messages) console.log(`  trip-paris  ${text(m)}`)
  saver.forkThread('trip-paris', { threadId: 'trip-london' })
  const history = []
  for await (const s of graph.getStateHistory(thread('trip-london'))) history.push(s)
  const asked = history.findLast((s) => s.next.includes('agent') && s.values.messages?.length === 1)
  const question = asked.values.messages[0]
  await graph.updateState(asked.config, { messages: [new HumanMessage({ id: question.id, content: 'What is the weather in London? Should I pack an umbrella?' })] })
  await graph.invoke(null, thread('trip-london'))
  await graph.invoke(new Command({ resume: 'approve' }), thread('trip-london'))
  for (const m of (await graph.getState(thread('trip-london'))).values.messages) console.log(`  trip-london ${text(m)}`)
  const a = saver.threadRun('trip-paris')
  const b = saver.threadRun('trip-london')
  db.close()

  console.log(`\n4. in-mem diff of the two threads' runs\n`)
  const cli = join(here, '..', 'bin', 'in-mem.js')
  const r = spawnSync(process.execPath, [cli, 'diff', a, b, dir], { stdio: 'inherit', env: { ...process.env, COLUMNS: process.env.COLUMNS ?? '140' } })
  if (r.status !== 0) throw new Error(`in-mem diff failed (exit ${r.status})`)
  console.log(`\nmore: in-mem runs list --tag langgraph ${dir}\n      in-mem runs show ${b} ${dir}`)
}

if (step === 'start' || step === 'resume') await child(step)
else await main()
