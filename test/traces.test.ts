import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ClosedError,
  Database,
  InvalidArgumentError,
  LimitError,
  NotFoundError,
  RunClosedError,
  type Trace,
  type TraceNode,
  type TraceType,
} from '../dist/index.js'
import { expectError, makeTmpDir, removeDir, sleep, UNKNOWN_RUN } from './helpers.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
/** A well-formed UUIDv7 that no trace has. */
const UNKNOWN_TRACE = '01890a5d-ac96-7000-8000-000000000001'

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'traces' })
})

afterEach(() => {
  db.close()
})

const ids = (traces: Trace[]) => traces.map((t) => t.id)

/** A node's shape as ids: `[id, [children...]]`. */
type Shape = [string, Shape[]]
const shape = (n: TraceNode): Shape => [n.trace.id, n.children.map(shape)]

const thought = (content: string, extra: { parent?: string; tags?: string[] } = {}) =>
  db.traces.record(run, { type: 'thought', data: { content }, ...extra })

describe('traces.record and traces.get', () => {
  it('record returns a UUIDv7 and get returns every field as recorded', () => {
    const t0 = Date.now()
    const data = { tool: 'search', arguments: { q: 'in-mem', page: 2, big: 10n, raw: new Uint8Array([1, 2]) }, result: ['a', 'b'], durationMs: 12.5 }
    const id = db.traces.record(run, { type: 'tool_call', data, tags: ['web', 'slow', 'web'], metadata: { model: 'm1' } })
    expect(id).toMatch(UUID_V7)
    const trace = db.traces.get(run, id)!
    expect(trace.id).toBe(id)
    expect(trace.type).toBe('tool_call')
    const { raw, ...args } = (trace.data as typeof data).arguments
    const { raw: _raw, ...expectedArgs } = data.arguments
    expect(args).toStrictEqual(expectedArgs)
    expect(raw).toBeInstanceOf(Uint8Array)
    expect(Array.from(raw)).toEqual([1, 2])
    expect({ ...(trace.data as typeof data), arguments: null }).toStrictEqual({ ...data, arguments: null })
    expect(trace.tags).toEqual(['web', 'slow'])
    expect(trace.metadata).toStrictEqual({ model: 'm1' })
    expect(trace.parent).toBeUndefined()
    expect(trace.timestamp).toBeGreaterThanOrEqual(t0)
    expect(trace.timestamp).toBeLessThanOrEqual(Date.now())
    expect(Object.keys(trace).sort()).toEqual(['data', 'id', 'metadata', 'tags', 'timestamp', 'type'])
  })

  it('every trace type round-trips its data shape, and type narrows data', () => {
    const recorded: Record<TraceType, unknown> = {
      tool_call: { tool: 'calc', arguments: [1, 2] },
      decision: { question: 'which?', options: ['a', 'b'], chosen: 'b', reasoning: 'cheaper' },
      thought: { content: 'the user wants a summary', confidence: 0.8 },
      query: { query: 'refund policy', source: 'kb', results: [{ id: 7 }] },
      error: { message: 'timeout', code: 'ETIMEDOUT', stack: 'at x', recoverable: true },
      custom: ['anything', { at: 1 }, null],
    }
    const made = Object.entries(recorded).map(([type, data]) => db.traces.record(run, { type, data } as never))
    const traces = made.map((id) => db.traces.get(run, id)!)
    expect(traces.map((t) => [t.type, t.data])).toStrictEqual(Object.entries(recorded))
    const decision = traces[1]
    if (decision.type === 'decision') {
      // Narrowed: these are DecisionData's fields.
      expect([decision.data.question, decision.data.chosen]).toEqual(['which?', 'b'])
    } else {
      expect.unreachable('the second trace is a decision')
    }
  })

  it('custom data may be any storable value, including null', () => {
    for (const data of [null, 0, false, '', 'text', [1], { a: { b: [] } }]) {
      const id = db.traces.record(run, { type: 'custom', data })
      expect(db.traces.get(run, id)!.data).toStrictEqual(data)
    }
  })

  it('get of an unknown id, or of a trace of another run, is undefined', () => {
    const other = db.runs.begin()
    const elsewhere = db.traces.record(other, { type: 'thought', data: { content: 'x' } })
    expect(db.traces.get(run, UNKNOWN_TRACE)).toBeUndefined()
    expect(db.traces.get(run, elsewhere)).toBeUndefined()
    expect(db.traces.get(other, elsewhere)!.id).toBe(elsewhere)
  })

  it('unknown types and data of the wrong shape are refused at compile time and at run time', () => {
    const bad = [
      // @ts-expect-error an unknown type
      () => db.traces.record(run, { type: 'tool-call', data: { tool: 'x', arguments: 1 } }),
      // @ts-expect-error tool_call data needs `tool`
      () => db.traces.record(run, { type: 'tool_call', data: { arguments: {} } }),
      // @ts-expect-error tool is a string
      () => db.traces.record(run, { type: 'tool_call', data: { tool: 42, arguments: {} } }),
      // @ts-expect-error tool_call data needs `arguments`
      () => db.traces.record(run, { type: 'tool_call', data: { tool: 'x' } }),
      // @ts-expect-error durationMs is a number
      () => db.traces.record(run, { type: 'tool_call', data: { tool: 'x', arguments: 1, durationMs: '3' } }),
      // @ts-expect-error a decision's data is not a tool call's
      () => db.traces.record(run, { type: 'decision', data: { tool: 'x', arguments: 1 } }),
      // @ts-expect-error options is an array
      () => db.traces.record(run, { type: 'decision', data: { question: 'q', options: 'a', chosen: 'a' } }),
      // @ts-expect-error a decision needs `chosen`
      () => db.traces.record(run, { type: 'decision', data: { question: 'q', options: [] } }),
      // @ts-expect-error a thought needs `content`
      () => db.traces.record(run, { type: 'thought', data: 'just text' }),
      // @ts-expect-error a query needs `query`
      () => db.traces.record(run, { type: 'query', data: { source: 'kb' } }),
      // @ts-expect-error results is an array
      () => db.traces.record(run, { type: 'query', data: { query: 'q', results: 'none' } }),
      // @ts-expect-error an error needs `message`
      () => db.traces.record(run, { type: 'error', data: { code: 'E' } }),
      // @ts-expect-error recoverable is a boolean
      () => db.traces.record(run, { type: 'error', data: { message: 'm', recoverable: 'yes' } }),
      // @ts-expect-error data is required
      () => db.traces.record(run, { type: 'custom' }),
      // @ts-expect-error options are an object
      () => db.traces.record(run, 'thought'),
    ]
    for (const fn of bad) expectError(fn, InvalidArgumentError, 'INVALID_ARGUMENT')
    const e = expectError(() => db.traces.record(run, { type: 'bogus' } as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(e.message).toContain('tool_call, decision, thought, query, error, custom')
    expect(db.traces.roots(run)).toEqual([])
  })

  it('bad tags, metadata and parent arguments are refused and write nothing', () => {
    expectError(() => db.traces.record(run, { type: 'thought', data: { content: 'x' }, tags: 'a' as never }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.traces.record(run, { type: 'thought', data: { content: 'x' }, tags: [1] as never }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => thought('x', { tags: [''] }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => thought('x', { tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }), LimitError, 'LIMIT_EXCEEDED')
    expectError(() => thought('x', { tags: ['t'.repeat(257)] }), LimitError, 'LIMIT_EXCEEDED')
    expectError(() => thought('x', { parent: 42 as never }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => thought('x', { parent: 'not-a-uuid' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(
      () => db.traces.record(run, { type: 'custom', data: 1, metadata: (() => 1) as never }),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    )
    expect(thought('ok', { tags: Array.from({ length: 64 }, (_, i) => `t${i}`) })).toMatch(UUID_V7)
    expect(db.traces.roots(run)).toHaveLength(1)
  })

  it('a parent must exist in the same run', () => {
    const other = db.runs.begin()
    const elsewhere = db.traces.record(other, { type: 'decision', data: { question: 'q', options: [1], chosen: 1 } })
    const e = expectError(() => thought('x', { parent: elsewhere }), NotFoundError, 'NOT_FOUND')
    expect(e.message).toContain(elsewhere)
    expect(e.message).toContain(run)
    expect(e.details).toMatchObject({ run, trace: elsewhere })
    expectError(() => thought('x', { parent: UNKNOWN_TRACE }), NotFoundError, 'NOT_FOUND')
    expect(db.traces.roots(run)).toEqual([])
  })

  it('a closed database answers ClosedError', () => {
    const id = thought('before')
    db.close()
    expectError(() => thought('after'), ClosedError, 'CLOSED')
    expectError(() => db.traces.get(run, id), ClosedError, 'CLOSED')
    expectError(() => db.traces.query(run, { type: 'thought' }), ClosedError, 'CLOSED')
  })

  it('a closed or unknown run accepts no traces', () => {
    db.runs.complete(run)
    expectError(() => thought('late'), RunClosedError, 'RUN_CLOSED')
    expectError(() => db.traces.record(UNKNOWN_RUN, { type: 'custom', data: 1 }), NotFoundError, 'NOT_FOUND')
    expectError(() => db.traces.record('nope', { type: 'custom', data: 1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})

describe('children, roots and tree', () => {
  it('children and roots list direct descendants in the order they were recorded', () => {
    const a = thought('a')
    const a1 = thought('a1', { parent: a })
    const b = thought('b')
    const a2 = thought('a2', { parent: a })
    thought('a1x', { parent: a1 })
    expect(ids(db.traces.roots(run))).toEqual([a, b])
    expect(ids(db.traces.children(run, a))).toEqual([a1, a2])
    expect(db.traces.children(run, b)).toEqual([])
    expect(db.traces.get(run, a1)!.parent).toBe(a)
  })

  it('tree nests every trace under its parent; with an id, only that subtree', () => {
    const a = thought('a')
    const a1 = thought('a1', { parent: a })
    const b = thought('b')
    const a2 = thought('a2', { parent: a })
    const a1x = thought('a1x', { parent: a1 })
    const b1 = thought('b1', { parent: b })
    expect(db.traces.tree(run).map(shape)).toEqual([
      [a, [[a1, [[a1x, []]]], [a2, []]]],
      [b, [[b1, []]]],
    ])
    const sub = db.traces.tree(run, a1)
    expect(shape(sub)).toEqual([a1, [[a1x, []]]])
    expect(sub.trace.data).toEqual({ content: 'a1' })
    expect(shape(db.traces.tree(run, a2))).toEqual([a2, []])
    expect(db.traces.tree(db.runs.begin())).toEqual([])
  })

  it('a deep chain comes back whole', () => {
    let parent = thought('0')
    const chain = [parent]
    for (let i = 1; i < 300; i++) chain.push((parent = thought(String(i), { parent })))
    let node = db.traces.tree(run, chain[0])
    const seen = [node.trace.id]
    while (node.children.length > 0) {
      expect(node.children).toHaveLength(1)
      node = node.children[0]
      seen.push(node.trace.id)
    }
    expect(seen).toEqual(chain)
  })

  it('children and tree of an unknown trace are NotFoundError; a bad id is InvalidArgumentError', () => {
    expectError(() => db.traces.children(run, UNKNOWN_TRACE), NotFoundError, 'NOT_FOUND')
    expectError(() => db.traces.tree(run, UNKNOWN_TRACE), NotFoundError, 'NOT_FOUND')
    expectError(() => db.traces.children(run, 'x'), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.traces.get(run, 7 as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    expectError(() => db.traces.roots('nope'), InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})

describe('traces.query', () => {
  it('filters by type, tag, time and limit, in the order traces were recorded', async () => {
    const t1 = db.traces.record(run, { type: 'tool_call', data: { tool: 'search', arguments: 'a' }, tags: ['web'] })
    const d1 = db.traces.record(run, { type: 'decision', data: { question: 'q', options: [1, 2], chosen: 2 }, tags: ['web', 'final'] })
    await sleep(5)
    const t2 = db.traces.record(run, { type: 'tool_call', data: { tool: 'fetch', arguments: 'b' }, tags: ['io'] })
    const e1 = db.traces.record(run, { type: 'error', data: { message: 'boom' }, tags: ['web'] })
    const at = (id: string) => db.traces.get(run, id)!.timestamp

    expect(ids(db.traces.query(run))).toEqual([t1, d1, t2, e1])
    expect(ids(db.traces.query(run, { type: 'tool_call' }))).toEqual([t1, t2])
    expect(ids(db.traces.query(run, { tag: 'web' }))).toEqual([t1, d1, e1])
    expect(ids(db.traces.query(run, { type: 'tool_call', tag: 'web' }))).toEqual([t1])
    expect(ids(db.traces.query(run, { limit: 2 }))).toEqual([t1, d1])
    expect(ids(db.traces.query(run, { tag: 'web', limit: 2 }))).toEqual([t1, d1])
    expect(db.traces.query(run, { limit: 0 })).toEqual([])
    expect(db.traces.query(run, { type: 'query' })).toEqual([])
    expect(db.traces.query(run, { tag: 'nothing' })).toEqual([])
    // since and until are inclusive milliseconds.
    expect(ids(db.traces.query(run, { since: at(t2) }))).toEqual([t2, e1])
    expect(ids(db.traces.query(run, { until: at(d1) }))).toEqual([t1, d1])
    expect(ids(db.traces.query(run, { tag: 'web', since: at(t2) }))).toEqual([e1])
    expect(ids(db.traces.query(run, { type: 'tool_call', since: at(t1), until: at(t1) }))).toEqual([t1])
    expect(db.traces.query(run, { since: at(t2), until: at(t1) })).toEqual([])
    expect(db.traces.query(run, { since: Date.now() + 60_000 })).toEqual([])
  })

  it('a query by type is typed by that type', () => {
    db.traces.record(run, { type: 'tool_call', data: { tool: 'calc', arguments: [1, 2], durationMs: 3 } })
    thought('unrelated')
    const calls = db.traces.query(run, { type: 'tool_call' })
    const tools: string[] = calls.map((c) => c.data.tool)
    expect(tools).toEqual(['calc'])
  })

  it('queries see only their own run', () => {
    const other = db.runs.begin()
    db.traces.record(other, { type: 'thought', data: { content: 'elsewhere' }, tags: ['x'] })
    const mine = thought('here', { tags: ['x'] })
    expect(ids(db.traces.query(run, { tag: 'x' }))).toEqual([mine])
    expect(ids(db.traces.query(run, { type: 'thought' }))).toEqual([mine])
    expect(ids(db.traces.roots(run))).toEqual([mine])
  })

  it('bad options are InvalidArgumentError', () => {
    const bad = [
      // @ts-expect-error an unknown type
      () => db.traces.query(run, { type: 'tools' }),
      // @ts-expect-error tag is a string
      () => db.traces.query(run, { tag: 1 }),
      () => db.traces.query(run, { since: -1 }),
      () => db.traces.query(run, { until: 1.5 }),
      () => db.traces.query(run, { limit: -3 }),
      () => db.traces.query(run, { limit: Number.NaN }),
      // @ts-expect-error options are an object
      () => db.traces.query(run, 'tool_call'),
    ]
    for (const fn of bad) expectError(fn, InvalidArgumentError, 'INVALID_ARGUMENT')
  })
})

describe('traces in scopes and transactions', () => {
  it('a run scope records and reads without the run argument', () => {
    const scope = db.scope(run)
    const root = scope.traces.record({ type: 'decision', data: { question: 'q', options: ['x'], chosen: 'x' } })
    const child = scope.traces.record({ type: 'tool_call', parent: root, data: { tool: 't', arguments: null }, tags: ['t'] })
    expect(scope.traces.get(child)!.parent).toBe(root)
    expect(ids(scope.traces.children(root))).toEqual([child])
    expect(ids(scope.traces.roots())).toEqual([root])
    expect(shape(scope.traces.tree(root))).toEqual([root, [[child, []]]])
    expect(scope.traces.tree().map(shape)).toEqual([[root, [[child, []]]]])
    expect(ids(scope.traces.query({ tag: 't' }))).toEqual([child])
  })

  it('a transaction sees its own uncommitted traces; others see them only after commit', () => {
    const before = thought('committed', { tags: ['a'] })
    const made = db.transaction(run, (tx) => {
      const root = tx.traces.record({ type: 'decision', data: { question: 'q', options: [1], chosen: 1 }, tags: ['a'] })
      const child = tx.traces.record({ type: 'tool_call', parent: root, data: { tool: 'x', arguments: {} } })
      expect(ids(tx.traces.query({ tag: 'a' }))).toEqual([before, root])
      expect(ids(tx.traces.query({ type: 'tool_call' }))).toEqual([child])
      expect(ids(tx.traces.query())).toEqual([before, root, child])
      expect(ids(tx.traces.children(root))).toEqual([child])
      expect(tx.traces.tree().map(shape)).toEqual([[before, []], [root, [[child, []]]]])
      // Outside the transaction nothing is visible yet.
      expect(ids(db.traces.query(run))).toEqual([before])
      expect(db.traces.get(run, child)).toBeUndefined()
      return { root, child }
    })
    expect(ids(db.traces.query(run))).toEqual([before, made.root, made.child])
    expect(ids(db.traces.query(run, { type: 'tool_call' }))).toEqual([made.child])
  })

  it('a transaction that throws leaves no trace behind', () => {
    let recorded: string[] = []
    expect(() =>
      db.transaction(run, (tx) => {
        const root = tx.traces.record({ type: 'thought', data: { content: 'doomed' }, tags: ['gone'] })
        recorded = [root, tx.traces.record({ type: 'error', parent: root, data: { message: 'boom' } })]
        throw new Error('rolled back')
      }),
    ).toThrow('rolled back')
    expect(recorded).toHaveLength(2)
    for (const id of recorded) expect(db.traces.get(run, id)).toBeUndefined()
    expect(db.traces.query(run)).toEqual([])
    expect(db.traces.query(run, { tag: 'gone' })).toEqual([])
    expect(db.traces.query(run, { type: 'error' })).toEqual([])
    expect(db.traces.roots(run)).toEqual([])
  })

  it('a missing parent inside a transaction fails the call and the closure can go on', async () => {
    const id = await db.transactionAsync(run, (tx) => {
      expectError(() => tx.traces.record({ type: 'custom', parent: UNKNOWN_TRACE, data: 1 }), NotFoundError, 'NOT_FOUND')
      return tx.traces.record({ type: 'custom', data: 2 })
    })
    expect(db.traces.get(run, id)!.data).toBe(2)
  })
})

describe('deleting a run', () => {
  it('takes its traces with it, from every query', () => {
    const root = thought('root', { tags: ['t'] })
    thought('child', { parent: root, tags: ['t'] })
    const keep = db.runs.begin()
    const kept = db.traces.record(keep, { type: 'thought', data: { content: 'kept' }, tags: ['t'] })
    expect(db.runs.delete(run)).toBe(true)
    expect(db.traces.get(run, root)).toBeUndefined()
    expect(db.traces.roots(run)).toEqual([])
    expect(db.traces.query(run)).toEqual([])
    expect(db.traces.query(run, { type: 'thought' })).toEqual([])
    expect(db.traces.query(run, { tag: 't' })).toEqual([])
    expect(ids(db.traces.query(keep, { tag: 't' }))).toEqual([kept])
  })
})

describe('durability', () => {
  it('traces, their tree and their indexes survive close and reopen', () => {
    const dir = makeTmpDir('in-mem-traces')
    try {
      let durable = Database.open(dir, { durability: 'strict' })
      const r = durable.runs.begin()
      const root = durable.traces.record(r, { type: 'decision', data: { question: 'q', options: [1, 2], chosen: 1 }, tags: ['plan'] })
      const child = durable.traces.record(r, { type: 'tool_call', parent: root, data: { tool: 'search', arguments: { q: 'x' } }, tags: ['web'] })
      durable.close()
      durable = Database.open(dir, { durability: 'strict' })
      try {
        expect(durable.traces.get(r, child)!.data).toEqual({ tool: 'search', arguments: { q: 'x' } })
        expect(durable.traces.tree(r).map(shape)).toEqual([[root, [[child, []]]]])
        expect(ids(durable.traces.query(r, { type: 'tool_call' }))).toEqual([child])
        expect(ids(durable.traces.query(r, { tag: 'plan' }))).toEqual([root])
        // Recording continues after the recovered traces.
        const later = durable.traces.record(r, { type: 'thought', parent: child, data: { content: 'next' } })
        expect(ids(durable.traces.children(r, child))).toEqual([later])
      } finally {
        durable.close()
      }
    } finally {
      removeDir(dir)
    }
  })
})
