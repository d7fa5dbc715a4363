// InMemSaver beyond LangGraph's conformance suite: how a thread lives in
// in-mem (a run, one commit per put), values stored once per version,
// branches that keep their own values, bad input, and the CLI's view of a thread.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { MemorySaver, emptyCheckpoint, uuid6, type BaseCheckpointSaver, type Checkpoint } from '@langchain/langgraph-checkpoint'
import { Annotation, Command, END, START, StateGraph, interrupt } from '@langchain/langgraph'
import { describe, expect, it } from 'vitest'
import { Database, InvalidArgumentError, LimitError } from '../dist/index.js'
import { InMemSaver } from '../dist/langgraph/index.js'
import { expectRejection, makeTmpDir, removeDir } from './helpers.js'

const meta = (step: number, extra: Record<string, unknown> = {}) => ({ source: 'loop' as const, step, parents: {}, ...extra })

/** `steps` checkpoints of a state of 20 channels, 2 of which change per step; returns each step's full values. */
async function putSteps(saver: InMemSaver, threadId: string, steps: number): Promise<{ configs: { configurable: Record<string, string> }[]; values: Record<string, unknown>[] }> {
  const values: Record<string, unknown> = {}
  const versions: Record<string, number> = {}
  for (let c = 0; c < 20; c++) values[`ch${c}`] = { channel: c, step: 0 }
  let config: { configurable: Record<string, string> } = { configurable: { thread_id: threadId, checkpoint_ns: '' } }
  const out = { configs: [] as (typeof config)[], values: [] as Record<string, unknown>[] }
  for (let s = 0; s < steps; s++) {
    const changed = s === 0 ? Object.keys(values) : [`ch${s % 20}`, `ch${(s + 7) % 20}`]
    const newVersions: Record<string, number> = {}
    for (const ch of changed) {
      if (s > 0) values[ch] = { channel: ch, step: s }
      versions[ch] = saver.getNextVersion(versions[ch])
      newVersions[ch] = versions[ch]
    }
    const checkpoint: Checkpoint = { ...emptyCheckpoint(), id: uuid6(s), channel_values: { ...values }, channel_versions: { ...versions } }
    config = (await saver.put(config, checkpoint, meta(s, { user: s % 2 === 0 ? 'even' : 'odd' }), newVersions)) as typeof config
    await saver.putWrites(config, [[`ch${s % 20}`, { pending: s }]], `task-${s}`)
    out.configs.push(config)
    out.values.push(structuredClone(values))
  }
  return out
}

describe('InMemSaver', () => {
  it('keeps a thread as an active run tagged langgraph, named after the thread', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    await putSteps(saver, 'thread-a', 1)
    const [run] = db.runs.list({ tag: 'langgraph' })
    expect(run.name).toBe('thread thread-a')
    expect(run.status).toBe('active')
    expect(run.tags).toEqual(['langgraph', 'langgraph:thread:thread-a'])
    expect(saver.threadRun('thread-a')).toBe(run.id)
    // Another saver on the same database finds it.
    expect(new InMemSaver(db).threadRun('thread-a')).toBe(run.id)
    db.close()
  })

  it('commits each put and each putWrites as one transaction', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    await putSteps(saver, 't', 5)
    // Every put and every putWrites: one commit each in the thread's log.
    expect(db.runs.log(saver.threadRun('t')!).length).toBe(10)
    db.close()
  })

  it('stores each channel value once per version and rebuilds every checkpoint whole', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    const { configs, values } = await putSteps(saver, 't', 30)
    const run = saver.threadRun('t')!
    expect(db.kv.count(run, { prefix: 'v\u001f' })).toBe(20 + 2 * 29)
    for (let s = 0; s < 30; s++) {
      const tuple = await saver.getTuple(configs[s])
      expect(tuple!.checkpoint.channel_values).toEqual(values[s])
      expect(tuple!.pendingWrites).toEqual([[`task-${s}`, `ch${s % 20}`, { pending: s }]])
      expect(tuple!.metadata?.step).toBe(s)
    }
    db.close()
  })

  it('lists newest first with a filter over any metadata key, before and limit', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    const { configs } = await putSteps(saver, 't', 10)
    const ids = async (opts: Parameters<InMemSaver['list']>[1]) => {
      const out: number[] = []
      for await (const t of saver.list({ configurable: { thread_id: 't' } }, opts)) out.push(t.metadata!.step as number)
      return out
    }
    expect(await ids({})).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    expect(await ids({ filter: { user: 'odd' } })).toEqual([9, 7, 5, 3, 1])
    expect(await ids({ filter: { user: 'odd', step: 3 } })).toEqual([3])
    expect(await ids({ filter: { parents: {} }, before: configs[4], limit: 2 })).toEqual([3, 2])
    expect(await ids({ filter: { user: 'none' } })).toEqual([])
    db.close()
  })

  it('lists 150 checkpoints (read a page at a time) exactly as getTuple gives each', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    const { configs } = await putSteps(saver, 't', 150)
    // Another thread in between, so the pages' scans must keep to their own.
    await putSteps(saver, 'u', 3)
    const listed = []
    for await (const t of saver.list({ configurable: { thread_id: 't', checkpoint_ns: '' } })) listed.push(t)
    expect(listed).toHaveLength(150)
    for (let i = 0; i < 150; i++) expect(listed[i]).toEqual(await saver.getTuple(configs[149 - i]))
    const older = []
    for await (const t of saver.list({ configurable: { thread_id: 't', checkpoint_ns: '' } }, { before: configs[100], limit: 70 })) older.push(t)
    expect(older.map((t) => t.metadata!.step)).toEqual(Array.from({ length: 70 }, (_, i) => 99 - i))
    for (const t of older) expect(t.pendingWrites).toEqual([[`task-${t.metadata!.step}`, `ch${(t.metadata!.step as number) % 20}`, { pending: t.metadata!.step }]])
    db.close()
  })

  it('gives every listed checkpoint its own value objects, though consecutive ones share stored values', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    const { values } = await putSteps(saver, 't', 5)
    const listed = []
    for await (const t of saver.list({ configurable: { thread_id: 't', checkpoint_ns: '' } })) listed.push(t)
    // ch5 kept its step-0 version in all five: one stored value, five objects.
    const ch5 = listed.map((t) => t.checkpoint.channel_values.ch5 as { step: unknown })
    expect(new Set(ch5).size).toBe(5)
    ch5[0].step = 'changed by the caller'
    for (let i = 1; i < 5; i++) expect(listed[i].checkpoint.channel_values).toEqual(values[4 - i])
    expect((await saver.getTuple({ configurable: { thread_id: 't' } }))!.checkpoint.channel_values).toEqual(values[4])
    db.close()
  })

  it('keeps the values of both branches when a thread is updated at an older checkpoint', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    const State = Annotation.Root({ log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }) })
    const graph = new StateGraph(State)
      .addNode('one', () => ({ log: ['one'] }))
      .addNode('two', () => ({ log: ['two'] }))
      .addEdge(START, 'one')
      .addEdge('one', 'two')
      .addEdge('two', END)
      .compile({ checkpointer: saver })
    const config = { configurable: { thread_id: 'branchy' } }
    await graph.invoke({ log: ['start'] }, config)
    const history = []
    for await (const s of graph.getStateHistory(config)) history.push(s)
    const afterOne = history.find((s) => s.next[0] === 'two')!
    const finalBefore = (await graph.getState(config)).values
    expect(finalBefore.log).toEqual(['start', 'one', 'two'])
    // A new branch from the checkpoint after `one`: its `log` versions are its own.
    await graph.updateState(afterOne.config, { log: ['edited'] })
    await graph.invoke(null, config)
    expect((await graph.getState(config)).values.log).toEqual(['start', 'one', 'edited', 'two'])
    // The first branch reads as it did.
    expect((await graph.getState(history[0].config)).values).toEqual(finalBefore)
    db.close()
  })

  it('runs a graph whose subgraph interrupts, with the same states and history as MemorySaver', async () => {
    const Inner = Annotation.Root({ items: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }) })
    const inner = new StateGraph(Inner)
      .addNode('ask', () => ({ items: [`answer:${String(interrupt('which item?'))}`] }))
      .addNode('more', () => ({ items: ['more'] }))
      .addEdge(START, 'ask')
      .addEdge('ask', 'more')
      .addEdge('more', END)
      .compile()
    const outer = (checkpointer: BaseCheckpointSaver) =>
      new StateGraph(Inner)
        .addNode('first', () => ({ items: ['first'] }))
        .addNode('inner', inner)
        .addNode('last', () => ({ items: ['last'] }))
        .addEdge(START, 'first')
        .addEdge('first', 'inner')
        .addEdge('inner', 'last')
        .addEdge('last', END)
        .compile({ checkpointer })
    const run = async (checkpointer: BaseCheckpointSaver) => {
      const graph = outer(checkpointer)
      const config = { configurable: { thread_id: 'nested' } }
      await graph.invoke({ items: ['start'] }, config)
      const paused = await graph.getState(config, { subgraphs: true })
      await graph.invoke(new Command({ resume: 'apple' }), config)
      const history = []
      for await (const s of graph.getStateHistory(config)) history.push({ values: s.values, next: s.next, step: s.metadata?.step })
      return { next: paused.next, interrupts: paused.tasks.flatMap((t) => t.interrupts.map((i) => i.value)), final: (await graph.getState(config)).values, history }
    }
    const db = Database.open()
    const saver = new InMemSaver(db)
    const ours = await run(saver)
    expect(ours).toEqual(await run(new MemorySaver()))
    // (The subgraph returns its whole state, input included, and the reducer appends it.)
    expect(ours.final.items).toEqual(['start', 'first', 'start', 'first', 'answer:apple', 'more', 'last'])
    expect(ours.interrupts).toEqual(['which item?'])
    // The subgraph's checkpoints are kept under their namespace.
    const namespaces = new Set<string>()
    for await (const t of saver.list({ configurable: { thread_id: 'nested' } })) namespaces.add(t.config.configurable!.checkpoint_ns as string)
    expect([...namespaces].some((ns) => ns.startsWith('inner:'))).toBe(true)
    db.close()
  })

  it('refuses ids it cannot key, and writes nothing', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    const cp = emptyCheckpoint()
    await expectRejection(saver.put({ configurable: { thread_id: 'a\u001fb' } }, cp, meta(0), {}), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(saver.put({ configurable: { thread_id: 7 } }, cp, meta(0), {}), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(saver.put({ configurable: { thread_id: 't', checkpoint_ns: 'x\u0000' } }, cp, meta(0), {}), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(saver.putWrites({ configurable: { thread_id: 't' } }, [['c', 1]], 'task'), InvalidArgumentError, 'INVALID_ARGUMENT')
    // Refused by the engine inside the first transaction of a new thread: a key over 1,024 bytes.
    await expectRejection(saver.put({ configurable: { thread_id: 't', checkpoint_ns: 'n'.repeat(1100) } }, cp, meta(0), {}), LimitError, 'LIMIT_EXCEEDED')
    expect(db.runs.list()).toEqual([])
    expect(saver.threadRun('t')).toBeUndefined()
    db.close()
  })

  it('deletes a thread with its run, and forks one into a new thread', async () => {
    const db = Database.open()
    const saver = new InMemSaver(db)
    const { values } = await putSteps(saver, 't', 3)
    const fork = saver.forkThread('t', { threadId: 'u' })
    expect(db.runs.get(fork)!.parent).toBe(saver.threadRun('t'))
    expect((await saver.getTuple({ configurable: { thread_id: 'u' } }))!.checkpoint.channel_values).toEqual(values[2])
    await saver.deleteThread('t')
    expect(await saver.getTuple({ configurable: { thread_id: 't' } })).toBeUndefined()
    expect(saver.threadRun('t')).toBeUndefined()
    // The fork reads its parent's data as of the fork, deleted parent or not.
    expect((await saver.getTuple({ configurable: { thread_id: 'u' } }))!.checkpoint.channel_values).toEqual(values[2])
    db.close()
  })
})

describe('the in-mem CLI on a LangGraph thread', () => {
  it('shows, replays and diffs channel values decoded, not as bytes', async () => {
    const dir = makeTmpDir('in-mem-lg-cli')
    try {
      const db = Database.open(dir)
      const saver = new InMemSaver(db)
      await putSteps(saver, 'a', 3)
      saver.forkThread('a', { threadId: 'b' })
      const config = { configurable: { thread_id: 'b', checkpoint_ns: '' } }
      const head = (await saver.getTuple(config))!
      const versions = { ...head.checkpoint.channel_versions, ch5: saver.getNextVersion(head.checkpoint.channel_versions.ch5 as number) }
      await saver.put(head.config, { ...head.checkpoint, id: uuid6(9), channel_values: { ...head.checkpoint.channel_values, ch5: { note: 'only in b' } }, channel_versions: versions }, meta(3), { ch5: versions.ch5 })
      const a = saver.threadRun('a')!
      const b = saver.threadRun('b')!
      db.close()
      const cli = (...args: string[]) => {
        const r = spawnSync(process.execPath, [join(__dirname, '..', 'bin', 'in-mem.js'), ...args, dir], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', COLUMNS: '200' } })
        expect(r.stderr).toBe('')
        expect(r.status).toBe(0)
        expect(r.stdout).not.toContain('<bytes')
        return r.stdout
      }
      const show = cli('runs', 'show', b)
      expect(show).toContain('langgraph thread "b" (4 checkpoints')
      expect(show).toMatch(/ch5\s+\{"note":"only in b"\}/)
      const replay = cli('replay', a)
      expect(replay).toMatch(/ch1\s+\{"channel":"ch1","step":1\}/)
      const diff = cli('diff', a, b)
      expect(diff).toContain('langgraph channels (newest checkpoints)\n  ~ ch5\n')
      expect(diff).toContain('.note: (none) → "only in b"')
      const json = JSON.parse(cli('diff', a, b, '--json')) as { langgraph: { changed: { key: string; b: unknown }[] } }
      expect(json.langgraph.changed).toEqual([{ key: 'ch5', a: { channel: 5, step: 0 }, b: { note: 'only in b' } }])
    } finally {
      removeDir(dir)
    }
  })
})
