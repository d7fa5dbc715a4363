import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database, InvalidTransitionError, NotFoundError, RunClosedError, RunScope, type RunInfo } from '../dist/index.js'
import { expectError, UNKNOWN_RUN } from './helpers.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let db: Database

beforeEach(() => {
  db = Database.open()
})

afterEach(() => {
  db.close()
})

const ids = (infos: RunInfo[]) => infos.map((i) => i.id)

describe('runs.begin and runs.get', () => {
  it('begin returns a fresh UUIDv7 and get describes the active run', () => {
    const t0 = Date.now()
    const run = db.runs.begin()
    expect(run).toMatch(UUID_V7)
    const info = db.runs.get(run)!
    expect(info.id).toBe(run)
    expect(info.status).toBe('active')
    expect(info.tags).toEqual([])
    expect(info.name).toBeUndefined()
    expect(info.parent).toBeUndefined()
    expect(info.metadata).toBeUndefined()
    expect(info.endedAt).toBeUndefined()
    expect(info.error).toBeUndefined()
    expect(info.createdAt).toBeGreaterThanOrEqual(t0 - 5)
    expect(info.createdAt).toBeLessThanOrEqual(Date.now() + 5)
  })

  it('begin keeps name, tags, metadata and parent', () => {
    const parent = db.runs.begin({ name: 'parent' })
    const metadata = { model: 'gpt', temperature: 0.2, budget: 10n, raw: new Uint8Array([1, 2]), nested: { list: [1, 'a', null] } }
    const run = db.runs.begin({ name: 'triage ✓', tags: ['prod', 'alpha', 'prod'], metadata, parent })
    const info = db.runs.get(run)!
    expect(info.name).toBe('triage ✓')
    expect(info.parent).toBe(parent)
    expect([...info.tags].sort()).toEqual(['alpha', 'prod'])
    const { raw, ...rest } = info.metadata as typeof metadata
    const { raw: _raw, ...expectedRest } = metadata
    expect(rest).toStrictEqual(expectedRest)
    expect(raw).toBeInstanceOf(Uint8Array)
    expect(Array.from(raw)).toEqual([1, 2])
    expect(Object.keys(info.metadata as object)).toEqual(['model', 'temperature', 'budget', 'raw', 'nested'])
  })

  it('metadata may be any storable value, including null and falsy values', () => {
    for (const metadata of [null, 0, false, '', [], 'text']) {
      const run = db.runs.begin({ metadata })
      expect(db.runs.get(run)!.metadata).toStrictEqual(metadata)
    }
  })

  it('get of an unknown run is undefined', () => {
    expect(db.runs.get(UNKNOWN_RUN)).toBeUndefined()
  })

  it('runs created in a burst get distinct ids in creation order', () => {
    const created = Array.from({ length: 200 }, () => db.runs.begin())
    expect(new Set(created).size).toBe(200)
    expect([...created].sort()).toEqual(created)
    expect(ids(db.runs.list())).toEqual(created)
  })
})

describe('run status changes', () => {
  it('complete ends an active run with endedAt', () => {
    const run = db.runs.begin()
    const t0 = Date.now()
    const info = db.runs.complete(run)
    expect(info.status).toBe('completed')
    expect(info.endedAt).toBeGreaterThanOrEqual(t0 - 5)
    expect(db.runs.get(run)).toStrictEqual(info)
    expect(info.error).toBeUndefined()
  })

  it('fail keeps the error message (from an Error, a string, or nothing)', () => {
    const a = db.runs.begin()
    expect(db.runs.fail(a, new TypeError('tool crashed')).error).toBe('tool crashed')
    expect(db.runs.get(a)!.status).toBe('failed')
    expect(db.runs.get(a)!.error).toBe('tool crashed')
    expect(db.runs.get(a)!.endedAt).toBeTypeOf('number')

    const b = db.runs.begin()
    expect(db.runs.fail(b, 'plain reason ✗').error).toBe('plain reason ✗')
    const c = db.runs.begin()
    const info = db.runs.fail(c)
    expect(info.status).toBe('failed')
    expect(info.error).toBeUndefined()
  })

  it('cancel ends an active run', () => {
    const run = db.runs.begin()
    const info = db.runs.cancel(run)
    expect(info.status).toBe('cancelled')
    expect(info.endedAt).toBeTypeOf('number')
  })

  it('pause and resume toggle an active run; a paused run takes no writes', () => {
    const run = db.runs.begin()
    db.kv.put(run, 'k', 1)
    expect(db.runs.pause(run).status).toBe('paused')
    expect(db.runs.get(run)!.endedAt).toBeUndefined()
    expectError(() => db.kv.put(run, 'k', 2), RunClosedError, 'RUN_CLOSED')
    expect(db.runs.resume(run).status).toBe('active')
    db.kv.put(run, 'k', 3)
    expect(db.kv.get(run, 'k')).toBe(3)
    db.runs.pause(run)
    db.runs.resume(run)
    expect(db.runs.complete(run).status).toBe('completed')
  })

  it('archive takes any ended run and keeps endedAt and error', () => {
    for (const end of ['complete', 'fail', 'cancel'] as const) {
      const run = db.runs.begin()
      const ended = end === 'fail' ? db.runs.fail(run, 'bad') : db.runs[end](run)
      const archived = db.runs.archive(run)
      expect(archived.status).toBe('archived')
      expect(archived.endedAt).toBe(ended.endedAt)
      expect(archived.error).toBe(ended.error)
      expect(db.runs.get(run)!.status).toBe('archived')
    }
  })

  it('moves outside the rules are InvalidTransitionError naming the current status', () => {
    const run = db.runs.begin()
    expectError(() => db.runs.resume(run), InvalidTransitionError, 'INVALID_TRANSITION')
    expectError(() => db.runs.archive(run), InvalidTransitionError, 'INVALID_TRANSITION')
    db.runs.pause(run)
    for (const a of ['complete', 'cancel', 'pause', 'archive'] as const) {
      const err = expectError(() => db.runs[a](run), InvalidTransitionError, 'INVALID_TRANSITION')
      expect(err.details.from).toBe('paused')
    }
    expectError(() => db.runs.fail(run, 'x'), InvalidTransitionError, 'INVALID_TRANSITION')
    db.runs.resume(run)
    db.runs.complete(run)
    expectError(() => db.runs.complete(run), InvalidTransitionError, 'INVALID_TRANSITION')
    expectError(() => db.runs.fail(run), InvalidTransitionError, 'INVALID_TRANSITION')
    expectError(() => db.runs.resume(run), InvalidTransitionError, 'INVALID_TRANSITION')
    db.runs.archive(run)
    for (const a of ['complete', 'cancel', 'pause', 'resume', 'archive'] as const) {
      const err = expectError(() => db.runs[a](run), InvalidTransitionError, 'INVALID_TRANSITION')
      expect(err.details.from).toBe('archived')
    }
    expect(db.runs.get(run)!.status).toBe('archived')
  })

  it('status changes of an unknown run are NotFoundError', () => {
    expectError(() => db.runs.complete(UNKNOWN_RUN), NotFoundError, 'NOT_FOUND')
    expectError(() => db.runs.pause(UNKNOWN_RUN), NotFoundError, 'NOT_FOUND')
  })

  it('each status change is one commit', () => {
    const run = db.runs.begin()
    const v = db.stats().version
    db.runs.pause(run)
    db.runs.resume(run)
    db.runs.complete(run)
    db.runs.archive(run)
    expect(db.stats().version).toBe(v + 4)
  })
})

describe('runs.list', () => {
  let runs: { id: string; tag: string }[]

  beforeEach(() => {
    // 12 runs: tags cycle a/b/c, statuses follow the index.
    runs = []
    for (let i = 0; i < 12; i++) {
      const tag = ['a', 'b', 'c'][i % 3]
      const id = db.runs.begin({ name: `r${i}`, tags: [tag, 'all'] })
      runs.push({ id, tag })
      if (i % 4 === 1) db.runs.complete(id)
      if (i % 4 === 2) db.runs.fail(id, 'x')
      if (i % 4 === 3) db.runs.pause(id)
    }
  })

  it('without filters lists every run in creation order', () => {
    expect(ids(db.runs.list())).toEqual(runs.map((r) => r.id))
  })

  it('filters by status', () => {
    expect(ids(db.runs.list({ status: 'active' }))).toEqual(runs.filter((_, i) => i % 4 === 0).map((r) => r.id))
    expect(ids(db.runs.list({ status: 'completed' }))).toEqual(runs.filter((_, i) => i % 4 === 1).map((r) => r.id))
    expect(ids(db.runs.list({ status: 'failed' }))).toEqual(runs.filter((_, i) => i % 4 === 2).map((r) => r.id))
    expect(ids(db.runs.list({ status: 'paused' }))).toEqual(runs.filter((_, i) => i % 4 === 3).map((r) => r.id))
    expect(db.runs.list({ status: 'cancelled' })).toEqual([])
    for (const info of db.runs.list({ status: 'failed' })) expect(info.status).toBe('failed')
  })

  it('a status change moves the run between status listings', () => {
    const first = runs[0].id
    db.runs.cancel(first)
    expect(ids(db.runs.list({ status: 'active' }))).not.toContain(first)
    expect(ids(db.runs.list({ status: 'cancelled' }))).toEqual([first])
    db.runs.archive(first)
    expect(ids(db.runs.list({ status: 'cancelled' }))).toEqual([])
    expect(ids(db.runs.list({ status: 'archived' }))).toEqual([first])
  })

  it('filters by tag', () => {
    expect(ids(db.runs.list({ tag: 'b' }))).toEqual(runs.filter((r) => r.tag === 'b').map((r) => r.id))
    expect(ids(db.runs.list({ tag: 'all' }))).toEqual(runs.map((r) => r.id))
    expect(db.runs.list({ tag: 'none' })).toEqual([])
    // A tag that is a prefix of another tag matches only itself.
    const x = db.runs.begin({ tags: ['ab'] })
    expect(ids(db.runs.list({ tag: 'a' }))).not.toContain(x)
    expect(ids(db.runs.list({ tag: 'ab' }))).toEqual([x])
  })

  it('combines filters', () => {
    const expected = runs.filter((r, i) => r.tag === 'a' && i % 4 === 0).map((r) => r.id)
    expect(ids(db.runs.list({ status: 'active', tag: 'a' }))).toEqual(expected)
    expect(expected.length).toBeGreaterThan(0)
  })

  it('pages with limit and after', () => {
    const all = runs.map((r) => r.id)
    expect(ids(db.runs.list({ limit: 5 }))).toEqual(all.slice(0, 5))
    expect(ids(db.runs.list({ limit: 5, after: all[4] }))).toEqual(all.slice(5, 10))
    expect(ids(db.runs.list({ after: all[10] }))).toEqual(all.slice(11))
    expect(db.runs.list({ after: all[11] })).toEqual([])
    expect(db.runs.list({ limit: 0 })).toEqual([])

    const paged: string[] = []
    let after: string | undefined
    for (;;) {
      const page = db.runs.list({ tag: 'all', limit: 5, after })
      if (page.length === 0) break
      expect(page.length).toBeLessThanOrEqual(5)
      paged.push(...ids(page))
      after = page[page.length - 1].id
    }
    expect(paged).toEqual(all)
  })

  it('pages within a filter', () => {
    const active = runs.filter((_, i) => i % 4 === 0).map((r) => r.id)
    expect(ids(db.runs.list({ status: 'active', limit: 2 }))).toEqual(active.slice(0, 2))
    expect(ids(db.runs.list({ status: 'active', limit: 2, after: active[1] }))).toEqual(active.slice(2, 3))
    const tagged = runs.filter((r) => r.tag === 'c').map((r) => r.id)
    expect(ids(db.runs.list({ tag: 'c', limit: 1, after: tagged[1] }))).toEqual([tagged[2]])
  })
})

describe('lineage', () => {
  it('children lists direct children in creation order; lineage walks up to the root', () => {
    const root = db.runs.begin({ name: 'root' })
    const c1 = db.runs.begin({ name: 'c1', parent: root })
    const c2 = db.runs.begin({ name: 'c2', parent: root })
    const g1 = db.runs.begin({ name: 'g1', parent: c1 })
    const unrelated = db.runs.begin({ name: 'unrelated' })

    expect(ids(db.runs.children(root))).toEqual([c1, c2])
    expect(ids(db.runs.children(c1))).toEqual([g1])
    expect(db.runs.children(g1)).toEqual([])
    expect(db.runs.children(unrelated)).toEqual([])
    expect(db.runs.children(UNKNOWN_RUN)).toEqual([])

    expect(ids(db.runs.lineage(g1))).toEqual([g1, c1, root])
    expect(ids(db.runs.lineage(c2))).toEqual([c2, root])
    expect(ids(db.runs.lineage(root))).toEqual([root])
    expect(db.runs.lineage(g1).map((i) => i.name)).toEqual(['g1', 'c1', 'root'])

    expect(ids(db.runs.list({ parent: root }))).toEqual([c1, c2])
    expect(ids(db.runs.list({ parent: root, limit: 1 }))).toEqual([c1])
    expect(ids(db.runs.list({ parent: root, after: c1 }))).toEqual([c2])
  })

  it('a child of an ended run can be begun, and ending the parent leaves children alone', () => {
    const parent = db.runs.begin()
    const child = db.runs.begin({ parent })
    db.runs.complete(parent)
    expect(db.runs.get(child)!.status).toBe('active')
    const late = db.runs.begin({ parent })
    expect(ids(db.runs.children(parent))).toEqual([child, late])
  })

  it('begin with an unknown parent is NotFoundError', () => {
    expectError(() => db.runs.begin({ parent: UNKNOWN_RUN }), NotFoundError, 'NOT_FOUND')
  })
})

describe('withRun', () => {
  it('completes the run when the callback returns, and returns its value', async () => {
    let seen: string | undefined
    const out = await db.withRun({ name: 'ok', tags: ['w'] }, async (scope) => {
      expect(scope).toBeInstanceOf(RunScope)
      seen = scope.run
      expect(db.runs.get(scope.run)!.status).toBe('active')
      scope.kv.put('result', 42)
      await Promise.resolve()
      return 'value'
    })
    expect(out).toBe('value')
    const info = db.runs.get(seen!)!
    expect(info.status).toBe('completed')
    expect(info.name).toBe('ok')
    expect(info.tags).toEqual(['w'])
    expect(db.kv.get(seen!, 'result')).toBe(42)
  })

  it('works with a synchronous callback', async () => {
    let seen = ''
    expect(await db.withRun({}, (scope) => ((seen = scope.run), 7))).toBe(7)
    expect(db.runs.get(seen)!.status).toBe('completed')
  })

  it('fails the run with the error message and rethrows the same error', async () => {
    let seen = ''
    const boom = new Error('agent blew up')
    const caught = await db
      .withRun({ name: 'bad' }, async (scope) => {
        seen = scope.run
        scope.kv.put('partial', true)
        throw boom
      })
      .catch((e: unknown) => e)
    expect(caught).toBe(boom)
    const info = db.runs.get(seen)!
    expect(info.status).toBe('failed')
    expect(info.error).toBe('agent blew up')
    // What was written before the throw stays (the run is not a transaction).
    expect(db.kv.get(seen, 'partial')).toBe(true)
  })

  it('leaves alone a run the callback ended itself', async () => {
    let seen = ''
    await db.withRun({}, (scope) => {
      seen = scope.run
      db.runs.cancel(scope.run)
    })
    expect(db.runs.get(seen)!.status).toBe('cancelled')

    const err = new Error('after cancel')
    await expect(
      db.withRun({}, (scope) => {
        seen = scope.run
        db.runs.cancel(scope.run)
        throw err
      }),
    ).rejects.toBe(err)
    expect(db.runs.get(seen)!.status).toBe('cancelled')
  })

  it('a child run via withRun records its parent', async () => {
    const parent = db.runs.begin()
    let child = ''
    await db.withRun({ parent }, (scope) => {
      child = scope.run
    })
    expect(db.runs.get(child)!.parent).toBe(parent)
    expect(ids(db.runs.children(parent))).toEqual([child])
  })
})

describe('scope', () => {
  it('binds every KV method to its run', () => {
    const a = db.runs.begin()
    const b = db.runs.begin()
    const sa = db.scope(a)
    const sb = db.scope(b)
    expect(sa.run).toBe(a)
    sa.kv.put('k', 'a')
    sb.kv.put('k', 'b')
    expect(sa.kv.get('k')).toBe('a')
    expect(sb.kv.get('k')).toBe('b')
    expect(db.kv.get(a, 'k')).toBe('a')
    expect(sa.kv.count()).toBe(1)
  })

  it('scope of an ended run reads but refuses writes', () => {
    const r = db.runs.begin()
    db.kv.put(r, 'k', 1)
    db.runs.complete(r)
    const s = db.scope(r)
    expect(s.kv.get('k')).toBe(1)
    expectError(() => s.kv.put('k', 2), RunClosedError, 'RUN_CLOSED')
  })

  it('the transaction scope carries its run', () => {
    const r = db.runs.begin()
    expect(db.transaction(r, (tx) => tx.run)).toBe(r)
  })
})

describe('runs in stats', () => {
  it('stats counts runs', () => {
    const before = db.stats().runs
    db.runs.begin()
    db.runs.begin()
    expect(db.stats().runs).toBe(before + 2)
  })
})

describe('runs.update, tag and untag', () => {
  it('update replaces tags and metadata and the tag index follows', () => {
    const run = db.runs.begin({ tags: ['old', 'keep'], metadata: { a: 1 } })
    const info = db.runs.update(run, { tags: ['keep', 'new', 'new'] })
    expect(info.tags).toEqual(['keep', 'new'])
    expect(info.metadata).toEqual({ a: 1 })
    expect(ids(db.runs.list({ tag: 'old' }))).toEqual([])
    expect(ids(db.runs.list({ tag: 'new' }))).toEqual([run])
    expect(ids(db.runs.list({ tag: 'keep' }))).toEqual([run])
    expect(db.runs.update(run, { metadata: { b: [1, 2] } }).metadata).toEqual({ b: [1, 2] })
    expect(db.runs.get(run)!.tags).toEqual(['keep', 'new'])
  })

  it('tag and untag add and remove single tags, also on an ended run', () => {
    const run = db.runs.begin()
    db.runs.complete(run)
    expect(db.runs.tag(run, 'reviewed', 'good').tags).toEqual(['good', 'reviewed'])
    expect(db.runs.untag(run, 'good').tags).toEqual(['reviewed'])
    expect(ids(db.runs.list({ tag: 'good' }))).toEqual([])
    expect(ids(db.runs.list({ tag: 'reviewed' }))).toEqual([run])
  })

  it('update of an unknown run is NotFoundError; bad tags write nothing', () => {
    expectError(() => db.runs.update(UNKNOWN_RUN, { tags: ['x'] }), NotFoundError, 'NOT_FOUND')
    expectError(() => db.runs.tag(UNKNOWN_RUN, 'x'), NotFoundError, 'NOT_FOUND')
    const run = db.runs.begin({ tags: ['a'] })
    expect(() => db.runs.update(run, { tags: [''] })).toThrow(/tag/)
    expect(() => db.runs.update(run, { tags: 'a' as unknown as string[] })).toThrow(/array of strings/)
    expect(() => db.runs.update(run, { tags: Array.from({ length: 65 }, (_, i) => `t${i}`) })).toThrow(/64 tags|limit/)
    expect(db.runs.get(run)!.tags).toEqual(['a'])
  })
})

describe('runs.delete', () => {
  it('removes the run, its index entries and the data of every primitive in one commit', () => {
    const parent = db.runs.begin()
    const run = db.runs.begin({ tags: ['t'], parent })
    const other = db.runs.begin()
    for (const r of [run, other]) {
      db.kv.put(r, 'k', 1)
      db.events.append(r, 'e', 1)
      db.state.set(r, 'c', 1)
      db.json.set(r, 'd', '$.a', 1)
    }
    db.runs.complete(run)
    expect(db.runs.delete(run)).toBe(true)
    expect(db.runs.get(run)).toBeUndefined()
    expect(db.kv.get(run, 'k')).toBeUndefined()
    expect(db.kv.count(run)).toBe(0)
    expect(db.events.length(run)).toBe(0)
    expect(db.events.range(run)).toEqual([])
    expect(db.state.list(run)).toEqual([])
    expect(db.json.get(run, 'd')).toBeUndefined()
    expect(ids(db.runs.list({ tag: 't' }))).toEqual([])
    expect(ids(db.runs.list({ status: 'completed' }))).toEqual([])
    expect(ids(db.runs.children(parent))).toEqual([])
    // The other run is untouched.
    expect(db.kv.get(other, 'k')).toBe(1)
    expect(db.events.length(other)).toBe(1)
    expect(db.state.get(other, 'c')!.value).toBe(1)
    expect(db.json.get(other, 'd', '$.a')).toBe(1)
  })

  it('returns false for an unknown run, and writes into a deleted run are NotFoundError', () => {
    expect(db.runs.delete(UNKNOWN_RUN)).toBe(false)
    const run = db.runs.begin()
    expect(db.runs.delete(run)).toBe(true)
    expect(db.runs.delete(run)).toBe(false)
    expectError(() => db.kv.put(run, 'k', 1), NotFoundError, 'NOT_FOUND')
    expectError(() => db.events.append(run, 'e', 1), NotFoundError, 'NOT_FOUND')
  })

  it('children keep their data and their lineage ends at the deleted parent', () => {
    const parent = db.runs.begin()
    const child = db.runs.begin({ parent })
    db.kv.put(child, 'k', 'v')
    db.runs.delete(parent)
    expect(db.kv.get(child, 'k')).toBe('v')
    expect(ids(db.runs.lineage(child))).toEqual([child])
  })
})
