import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  AlreadyExistsError,
  ConflictError,
  Database,
  GuardFailedError,
  InvalidArgumentError,
  InvalidTransitionError,
  LimitError,
  type MachineDefinition,
  MachineVersionExistsError,
  NotFoundError,
  RunClosedError,
} from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'
import { runWorker } from './worker-helpers.js'

/** An order: guarded alternatives on `approve`, a list `from` on `cancel`. */
const ORDER: MachineDefinition = {
  name: 'order',
  version: 1,
  states: ['draft', 'review', 'approved', 'escalated', 'cancelled', 'shipped'],
  initial: 'draft',
  transitions: [
    { from: 'draft', event: 'submit', to: 'review' },
    { from: 'review', event: 'approve', to: 'approved', guard: 'ctx.total < 100' },
    { from: 'review', event: 'approve', to: 'escalated', guard: "payload.approver == 'boss'" },
    { from: ['draft', 'review'], event: 'cancel', to: 'cancelled' },
    { from: 'approved', event: 'ship', to: 'shipped' },
  ],
}

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'machines-test' })
  expect(db.machines.define(ORDER)).toEqual({ created: true })
})

afterEach(() => {
  db.close()
})

/** The `machine.transition` events of the run, as payloads. */
function transitions(r = run) {
  return db.events.range(r, { type: 'machine.transition' }).map((e) => e.payload)
}

describe('definitions', () => {
  it('defining the same body again is a no-op', () => {
    expect(db.machines.define(ORDER)).toEqual({ created: false })
    // `from: 'a'` is `from: ['a']`, and a guard's layout does not matter.
    const same = {
      ...ORDER,
      transitions: ORDER.transitions.map((t) => ({ ...t, from: typeof t.from === 'string' ? [t.from] : t.from, guard: t.guard?.replace(' < ', '<') })),
    }
    expect(db.machines.define(same)).toEqual({ created: false })
    expect(db.machines.listDefinitions()).toHaveLength(1)
  })

  it('a different body under an existing version is MachineVersionExistsError', () => {
    const changed = { ...ORDER, transitions: [...ORDER.transitions, { from: 'shipped', event: 'return', to: 'review' }] }
    const e = expectError(() => db.machines.define(changed), MachineVersionExistsError, 'MACHINE_VERSION_EXISTS')
    expect(e.message).toContain('machine "order" version 1')
    expect(e.details).toEqual({ machine: 'order', version: 1 })
    expect(db.machines.define({ ...changed, version: 2 })).toEqual({ created: true })
    expect(db.machines.getDefinition('order', 1)?.transitions).toHaveLength(5)
    expect(db.machines.getDefinition('order')?.version).toBe(2)
  })

  it('getDefinition returns the stored body with from as a list', () => {
    const d = db.machines.getDefinition('order', 1)
    expect(d).toEqual({
      name: 'order',
      version: 1,
      states: ORDER.states,
      initial: 'draft',
      transitions: ORDER.transitions.map((t) => {
        const out: Record<string, unknown> = { from: typeof t.from === 'string' ? [t.from] : t.from, event: t.event, to: t.to }
        if (t.guard !== undefined) out.guard = t.guard
        return out
      }),
    })
    expect(db.machines.getDefinition('order', 7)).toBeUndefined()
    expect(db.machines.getDefinition('missing')).toBeUndefined()
  })

  it('listDefinitions orders by name then version, and filters by name', () => {
    const tiny = (name: string, version: number): MachineDefinition => ({ name, version, states: ['s'], initial: 's', transitions: [] })
    db.machines.define(tiny('b', 10))
    db.machines.define(tiny('a', 1))
    db.machines.define(tiny('b', 2))
    expect(db.machines.listDefinitions().map((d) => `${d.name}@${d.version}`)).toEqual(['a@1', 'b@2', 'b@10', 'order@1'])
    expect(db.machines.listDefinitions('b').map((d) => d.version)).toEqual([2, 10])
    expect(db.machines.listDefinitions('zzz')).toEqual([])
  })

  it('definitions are validated: states, initial, from and to', () => {
    const bad = (patch: Partial<MachineDefinition>) => expectError(() => db.machines.define({ ...ORDER, version: 9, ...patch }), InvalidArgumentError, 'INVALID_ARGUMENT').message
    expect(bad({ states: [] })).toContain('states must not be empty')
    expect(bad({ states: ['a', 'a'], initial: 'a', transitions: [] })).toContain('state "a" is listed twice')
    expect(bad({ initial: 'nowhere' })).toContain('initial state "nowhere" is not one of the states')
    expect(bad({ transitions: [{ from: 'nowhere', event: 'e', to: 'draft' }] })).toContain(`'from' state "nowhere" is not one of the states`)
    expect(bad({ transitions: [{ from: ['draft', 'nowhere'], event: 'e', to: 'draft' }] })).toContain(`'from' state "nowhere"`)
    expect(bad({ transitions: [{ from: 'draft', event: 'e', to: 'nowhere' }] })).toContain(`'to' state "nowhere" is not one of the states`)
    expect(bad({ name: '' })).toContain('machine name must not be empty')
    expect(
      bad({
        transitions: [
          { from: 'draft', event: 'e', to: 'review' },
          { from: 'draft', event: 'e', to: 'approved', guard: 'true' },
        ],
      }),
    ).toContain('can never be taken from state "draft"')
    // Nothing was written by the failed defines.
    expect(db.machines.getDefinition('order', 9)).toBeUndefined()
  })

  it('a misspelt field is refused, not ignored', () => {
    const typo = { ...ORDER, version: 3, transitions: [{ from: 'draft', event: 'e', to: 'review', gaurd: 'false' }] }
    const e = expectError(() => db.machines.define(typo as unknown as MachineDefinition), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(e.message).toContain('gaurd')
  })

  it('argument types are checked before anything crosses to the engine', () => {
    const bad = (d: unknown) => expectError(() => db.machines.define(d as MachineDefinition), InvalidArgumentError, 'INVALID_ARGUMENT').message
    expect(bad(null)).toContain('must be an object')
    expect(bad({ ...ORDER, version: 1.5 })).toContain('version must be a positive integer')
    expect(bad({ ...ORDER, version: 0 })).toContain('version must be a positive integer')
    expect(bad({ ...ORDER, states: 'draft' })).toContain('states must be an array')
    expect(bad({ ...ORDER, transitions: [{ from: 1, event: 'e', to: 'draft' }] })).toContain('transitions[0].from must be a string')
    expect(bad({ ...ORDER, transitions: [{ from: 'draft', event: 'e', to: 'draft', guard: 5 }] })).toContain('transitions[0].guard must be a string')
    expect(bad({ ...ORDER, name: 42 })).toContain('machine name must be a string')
  })

  it('a long name is a LimitError', () => {
    expectError(() => db.machines.define({ ...ORDER, name: 'm'.repeat(257) }), LimitError, 'LIMIT_EXCEEDED')
  })
})

describe('guards', () => {
  const guarded = (guard: string, version = 5): MachineDefinition => ({
    name: 'g',
    version,
    states: ['a', 'b'],
    initial: 'a',
    transitions: [{ from: 'a', event: 'go', to: 'b', guard }],
  })

  it('a parse error names the guard and the position', () => {
    const e = expectError(() => db.machines.define(guarded('ctx.total > = 5')), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(e.message).toContain('invalid guard "ctx.total > = 5" at position 12')
    expect(e.message).toContain("comparison is '=='")
    expect(e.message).toContain('machine "g" version 5, transition 0 ("go")')
  })

  it('trailing input is an error at its position', () => {
    const e = expectError(() => db.machines.define(guarded('ctx.a == 1 ctx.b')), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(e.message).toContain('at position 11')
    expect(e.message).toContain("unexpected name 'ctx' after a complete expression")
    const e2 = expectError(() => db.machines.define(guarded('(ctx.a == 1))')), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(e2.message).toContain("at position 12: unexpected ')'")
  })

  it('other parse errors report their positions', () => {
    const at = (g: string) => expectError(() => db.machines.define(guarded(g)), InvalidArgumentError, 'INVALID_ARGUMENT').message
    expect(at("ctx.a == 'open")).toContain('at position 9: unterminated string')
    expect(at('ctx.a == "\\q"')).toContain("at position 10: unknown escape '\\q'")
    expect(at('ctx.a < 1 < 2')).toContain('at position 10: comparisons do not chain')
    expect(at('status == 1')).toContain("at position 0: unknown name 'status'")
    expect(at('')).toContain('at position 0')
  })

  it('string escapes are decoded', () => {
    db.machines.define(guarded(String.raw`ctx.name == "O\"Brien\t\u00e9\ud83d\ude00" && ctx.path == 'a\\b\'c'`))
    const name = 'O"Brien\té😀'
    db.machines.create(run, 'yes', { machine: 'g', context: { name, path: "a\\b'c" } })
    expect(db.machines.apply(run, 'yes', 'go').to).toBe('b')
    db.machines.create(run, 'no', { machine: 'g', context: { name: 'O"Brien', path: "a\\b'c" } })
    expectError(() => db.machines.apply(run, 'no', 'go'), GuardFailedError, 'GUARD_FAILED')
  })

  it('guards read nested paths and indexes of the context and the payload; missing paths are null', () => {
    db.machines.define(guarded('ctx.user.roles[1] == "admin" && payload.ok == true && ctx.nothing.here == null && !(payload.n < 0)'))
    db.machines.create(run, 'i', { machine: 'g', context: { user: { roles: ['dev', 'admin'] } } })
    expectError(() => db.machines.apply(run, 'i', 'go', { payload: { ok: 'yes' } }), GuardFailedError, 'GUARD_FAILED')
    expectError(() => db.machines.apply(run, 'i', 'go', { payload: { ok: true, n: -1 } }), GuardFailedError, 'GUARD_FAILED')
    expect(db.machines.apply(run, 'i', 'go', { payload: { ok: true, n: 3 } }).to).toBe('b')
  })

  it('comparisons of mismatched types are false; != is their negation', () => {
    db.machines.define({
      name: 'types',
      version: 1,
      states: ['a', 'lt', 'ne'],
      initial: 'a',
      transitions: [
        { from: 'a', event: 'go', to: 'lt', guard: 'ctx.n < "5" || ctx.n >= "5" || ctx.n == "3"' },
        { from: 'a', event: 'go', to: 'ne', guard: 'ctx.n != "3"' },
      ],
    })
    db.machines.create(run, 'i', { machine: 'types', context: { n: 3 } })
    expect(db.machines.apply(run, 'i', 'go').to).toBe('ne')
  })
})

describe('instances', () => {
  it('create starts in the initial state at revision 1', () => {
    const before = Date.now()
    const i = db.machines.create(run, 'o-1', { machine: 'order', context: { total: 40, items: ['a'] } })
    expect(i).toMatchObject({ id: 'o-1', machine: 'order', version: 1, state: 'draft', revision: 1, context: { total: 40, items: ['a'] } })
    expect(i.createdAt).toBeGreaterThanOrEqual(before)
    expect(i.updatedAt).toBe(i.createdAt)
    expect(db.machines.get(run, 'o-1')).toEqual(i)
    expect(db.machines.create(run, 'o-2', { machine: 'order' }).context).toEqual({})
  })

  it('an existing id is AlreadyExistsError', () => {
    db.machines.create(run, 'o-1', { machine: 'order' })
    const e = expectError(() => db.machines.create(run, 'o-1', { machine: 'order' }), AlreadyExistsError, 'ALREADY_EXISTS')
    expect(e.details).toEqual({ run, instance: 'o-1' })
  })

  it('an undefined machine or version is NotFoundError', () => {
    expectError(() => db.machines.create(run, 'x', { machine: 'nope' }), NotFoundError, 'NOT_FOUND')
    const e = expectError(() => db.machines.create(run, 'x', { machine: 'order', version: 2 }), NotFoundError, 'NOT_FOUND')
    expect(e.message).toContain('machine "order" has no version 2')
    expect(db.machines.get(run, 'x')).toBeUndefined()
  })

  it('an instance keeps the version it was created with; create takes the newest by default', () => {
    db.machines.create(run, 'old', { machine: 'order' })
    db.machines.define({ ...ORDER, version: 2, transitions: [{ from: 'draft', event: 'skip', to: 'shipped' }] })
    expect(db.machines.create(run, 'new', { machine: 'order' }).version).toBe(2)
    expect(db.machines.create(run, 'pinned', { machine: 'order', version: 1 }).version).toBe(1)
    expect(db.machines.apply(run, 'old', 'submit').to).toBe('review')
    expectError(() => db.machines.apply(run, 'old', 'skip'), InvalidTransitionError, 'INVALID_TRANSITION')
    expect(db.machines.apply(run, 'new', 'skip').to).toBe('shipped')
  })

  it('context and payload must be objects; ids and events strings', () => {
    const bad = (fn: () => unknown) => expectError(fn, InvalidArgumentError, 'INVALID_ARGUMENT').message
    expect(bad(() => db.machines.create(run, 'x', { machine: 'order', context: [1] as never }))).toContain('the context must be an object')
    expect(bad(() => db.machines.create(run, 42 as never, { machine: 'order' }))).toContain('an instance id must be a string')
    expect(bad(() => db.machines.create(run, '', { machine: 'order' }))).toContain('an instance id must not be empty')
    expect(bad(() => db.machines.create(run, 'x', undefined as never))).toContain('create options must be an object')
    expect(bad(() => db.machines.create('not-a-run', 'x', { machine: 'order' }))).toContain('not-a-run')
    db.machines.create(run, 'o', { machine: 'order' })
    expect(bad(() => db.machines.apply(run, 'o', 'submit', { payload: 'hi' as never }))).toContain('the payload must be an object')
    expect(bad(() => db.machines.apply(run, 'o', 7 as never))).toContain('an event must be a string')
    expect(bad(() => db.machines.apply(run, 'o', 'submit', { expectedRevision: -1 }))).toContain('expectedRevision')
    expect(db.machines.get(run, 'o')?.revision).toBe(1)
  })

  it('list filters by machine and state, in id order', () => {
    db.machines.define({ name: 'other', version: 1, states: ['draft'], initial: 'draft', transitions: [] })
    db.machines.create(run, 'b', { machine: 'order' })
    db.machines.create(run, 'a', { machine: 'order' })
    db.machines.create(run, 'c', { machine: 'other' })
    db.machines.apply(run, 'a', 'submit')
    const ids = (o?: Parameters<Database['machines']['list']>[1]) => db.machines.list(run, o).map((i) => i.id)
    expect(ids()).toEqual(['a', 'b', 'c'])
    expect(ids({ machine: 'order' })).toEqual(['a', 'b'])
    expect(ids({ state: 'draft' })).toEqual(['b', 'c'])
    expect(ids({ machine: 'order', state: 'review' })).toEqual(['a'])
    expect(db.machines.list(run)[0].context).toEqual({})
    const other = db.runs.begin({ name: 'other' })
    expect(db.machines.list(other)).toEqual([])
    expect(db.machines.get(other, 'a')).toBeUndefined()
  })

  it('deleting a run deletes its instances and keys but not the database-wide definitions', () => {
    db.machines.create(run, 'o', { machine: 'order' })
    db.machines.apply(run, 'o', 'submit', { idempotencyKey: 'k' })
    db.runs.delete(run)
    const again = db.runs.begin({ name: 'after' })
    expect(db.machines.list(run)).toEqual([])
    expect(db.machines.get(run, 'o')).toBeUndefined()
    expect(db.machines.getDefinition('order', 1)?.name).toBe('order')
    expect(db.machines.create(again, 'o', { machine: 'order' }).revision).toBe(1)
  })

  it('a closed run accepts no create or apply', () => {
    db.machines.create(run, 'o', { machine: 'order' })
    db.runs.complete(run)
    expectError(() => db.machines.create(run, 'p', { machine: 'order' }), RunClosedError, 'RUN_CLOSED')
    expectError(() => db.machines.apply(run, 'o', 'submit'), RunClosedError, 'RUN_CLOSED')
    expect(db.machines.get(run, 'o')?.state).toBe('draft')
  })
})

describe('apply', () => {
  beforeEach(() => {
    db.machines.create(run, 'o-1', { machine: 'order', context: { total: 40, notes: { a: 1, b: 2 } } })
  })

  it('moves the state, raises the revision and merges the payload as an RFC 7386 merge patch', () => {
    const r = db.machines.apply(run, 'o-1', 'submit', { payload: { notes: { a: null, c: 3 }, by: 'ada' } })
    expect(r).toEqual({ from: 'draft', to: 'review', revision: 2, applied: true, context: { total: 40, notes: { b: 2, c: 3 }, by: 'ada' } })
    const i = db.machines.get(run, 'o-1')!
    expect(i).toMatchObject({ state: 'review', revision: 2, context: r.context })
    expect(i.updatedAt).toBeGreaterThanOrEqual(i.createdAt)
    expect(db.machines.apply(run, 'o-1', 'approve', { payload: { total: null } }).context).toEqual({ notes: { b: 2, c: 3 }, by: 'ada' })
  })

  it('appends every applied transition to the run\'s EventLog', () => {
    db.machines.apply(run, 'o-1', 'submit', { payload: { by: 'ada' } })
    db.machines.apply(run, 'o-1', 'approve')
    expect(transitions()).toEqual([
      { machine: 'order', version: 1, instance: 'o-1', event: 'submit', from: 'draft', to: 'review', revision: 2, payload: { by: 'ada' } },
      { machine: 'order', version: 1, instance: 'o-1', event: 'approve', from: 'review', to: 'approved', revision: 3 },
    ])
    expect(db.events.verify(run).valid).toBe(true)
    // A refused event appends nothing.
    expectError(() => db.machines.apply(run, 'o-1', 'submit'), InvalidTransitionError, 'INVALID_TRANSITION')
    expect(db.events.length(run)).toBe(2)
  })

  it('an unknown event is InvalidTransitionError listing the allowed events', () => {
    const e = expectError(() => db.machines.apply(run, 'o-1', 'ship'), InvalidTransitionError, 'INVALID_TRANSITION')
    expect(e.details).toEqual({ machine: 'order', version: 1, instance: 'o-1', state: 'draft', event: 'ship', allowed: ['submit', 'cancel'] })
    expect(e.message).toContain('allowed events: submit, cancel')
    db.machines.apply(run, 'o-1', 'cancel')
    const end = expectError(() => db.machines.apply(run, 'o-1', 'submit'), InvalidTransitionError, 'INVALID_TRANSITION')
    expect(end.details.allowed).toEqual([])
    expect(db.machines.get(run, 'o-1')?.revision).toBe(2)
  })

  it('guarded alternatives are tried in order; the first that passes wins', () => {
    db.machines.apply(run, 'o-1', 'submit')
    // total < 100 passes first, even though the second guard would pass too.
    expect(db.machines.apply(run, 'o-1', 'approve', { payload: { approver: 'boss' } }).to).toBe('approved')
    db.machines.create(run, 'o-2', { machine: 'order', context: { total: 500 } })
    db.machines.apply(run, 'o-2', 'submit')
    expect(db.machines.apply(run, 'o-2', 'approve', { payload: { approver: 'boss' } }).to).toBe('escalated')
  })

  it('every guard false is GuardFailedError and changes nothing', () => {
    db.machines.create(run, 'big', { machine: 'order', context: { total: 500 } })
    db.machines.apply(run, 'big', 'submit')
    const e = expectError(() => db.machines.apply(run, 'big', 'approve', { payload: { approver: 'intern' } }), GuardFailedError, 'GUARD_FAILED')
    expect(e.details).toEqual({
      machine: 'order',
      version: 1,
      instance: 'big',
      state: 'review',
      event: 'approve',
      guards: ['ctx.total < 100', "payload.approver == 'boss'"],
    })
    expect(db.machines.get(run, 'big')).toMatchObject({ state: 'review', revision: 2, context: { total: 500 } })
  })

  it('an expectedState mismatch is ConflictError with details', () => {
    const e = expectError(() => db.machines.apply(run, 'o-1', 'submit', { expectedState: 'review' }), ConflictError, 'CONFLICT')
    expect(e.details).toEqual({ instance: 'o-1', expectedState: 'review', state: 'draft', revision: 1 })
    expect(e.message).toContain('is in state "draft", not the expected "review"')
    expect(db.machines.apply(run, 'o-1', 'submit', { expectedState: 'draft' }).to).toBe('review')
  })

  it('an expectedRevision mismatch is ConflictError with details', () => {
    const e = expectError(() => db.machines.apply(run, 'o-1', 'submit', { expectedRevision: 5 }), ConflictError, 'CONFLICT')
    expect(e.details).toEqual({ instance: 'o-1', expectedRevision: 5, revision: 1, state: 'draft' })
    expect(db.machines.get(run, 'o-1')?.revision).toBe(1)
    expect(db.machines.apply(run, 'o-1', 'submit', { expectedRevision: 1, expectedState: 'draft' }).revision).toBe(2)
  })

  it('a missing instance is NotFoundError', () => {
    expectError(() => db.machines.apply(run, 'nope', 'submit'), NotFoundError, 'NOT_FOUND')
  })

  it('an idempotency key returns the first result with applied: false and changes nothing', () => {
    const first = db.machines.apply(run, 'o-1', 'submit', { payload: { n: 1 }, idempotencyKey: 'req-1' })
    expect(first.applied).toBe(true)
    const again = db.machines.apply(run, 'o-1', 'submit', { payload: { n: 1 }, idempotencyKey: 'req-1' })
    expect(again).toEqual({ ...first, applied: false })
    // The same event with another payload is another request (issue 19).
    expectError(() => db.machines.apply(run, 'o-1', 'submit', { payload: { n: 2 }, idempotencyKey: 'req-1' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(db.machines.get(run, 'o-1')).toMatchObject({ revision: 2, context: { n: 1 } })
    expect(transitions()).toHaveLength(1)
    // Still the first result after the instance moved on.
    db.machines.apply(run, 'o-1', 'approve')
    expect(db.machines.apply(run, 'o-1', 'submit', { payload: { n: 1 }, idempotencyKey: 'req-1' })).toEqual({ ...first, applied: false })
    // A key names one request: another event under it is refused.
    const e = expectError(() => db.machines.apply(run, 'o-1', 'ship', { idempotencyKey: 'req-1' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(e.message).toContain('first used to apply event "submit"')
  })

  it('an idempotent create returns the instance as first created', () => {
    const first = db.machines.create(run, 'o-9', { machine: 'order', context: { v: 1 }, idempotencyKey: 'create-9' })
    db.machines.apply(run, 'o-9', 'submit')
    expect(db.machines.create(run, 'o-9', { machine: 'order', context: { v: 1 }, idempotencyKey: 'create-9' })).toEqual(first)
    expectError(() => db.machines.create(run, 'o-9', { machine: 'order', context: { v: 2 }, idempotencyKey: 'create-9' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(db.machines.get(run, 'o-9')?.state).toBe('review')
    expectError(() => db.machines.create(run, 'o-9', { machine: 'order', idempotencyKey: 'other' }), AlreadyExistsError, 'ALREADY_EXISTS')
  })
})

describe('through scopes and transactions', () => {
  it('db.scope(run).machines binds the run', () => {
    const s = db.scope(run).machines
    s.create('o', { machine: 'order' })
    expect(s.apply('o', 'submit').to).toBe('review')
    expect(s.get('o')?.state).toBe('review')
    expect(s.list().map((i) => i.id)).toEqual(['o'])
    expect(s.getDefinition('order')?.version).toBe(1)
    expect(db.machines.get(run, 'o')?.revision).toBe(2)
  })

  it('operations inside db.transaction commit together with the other primitives', () => {
    const out = db.transaction(run, (tx) => {
      tx.machines.create('o', { machine: 'order', context: { total: 10 } })
      const r = tx.machines.apply('o', 'submit', { idempotencyKey: 'k' })
      tx.kv.put('seen', r.to)
      expect(tx.machines.get('o')?.state).toBe('review')
      // Not visible outside before the commit.
      expect(db.machines.get(run, 'o')).toBeUndefined()
      return r
    })
    expect(out).toMatchObject({ from: 'draft', to: 'review', applied: true })
    expect(db.machines.get(run, 'o')?.state).toBe('review')
    expect(db.kv.get(run, 'seen')).toBe('review')
    expect(transitions()).toHaveLength(1)
  })

  it('a closure that throws leaves no instance, transition, event, key or definition behind', () => {
    db.machines.create(run, 'o', { machine: 'order' })
    expect(() =>
      db.transaction(run, (tx) => {
        tx.machines.define({ name: 'temp', version: 1, states: ['s'], initial: 's', transitions: [] })
        tx.machines.create('p', { machine: 'temp' })
        tx.machines.apply('o', 'submit', { idempotencyKey: 'k' })
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expect(db.machines.getDefinition('temp')).toBeUndefined()
    expect(db.machines.get(run, 'p')).toBeUndefined()
    expect(db.machines.get(run, 'o')).toMatchObject({ state: 'draft', revision: 1 })
    expect(db.events.length(run)).toBe(0)
    expect(db.machines.apply(run, 'o', 'submit', { idempotencyKey: 'k' }).applied).toBe(true)
  })

  it('an engine error inside a transaction fails it as a whole', () => {
    db.machines.create(run, 'o', { machine: 'order' })
    expectError(
      () =>
        db.transaction(run, (tx) => {
          tx.kv.put('before', 1)
          tx.machines.apply('o', 'ship')
        }),
      InvalidTransitionError,
      'INVALID_TRANSITION',
    )
    expect(db.kv.get(run, 'before')).toBeUndefined()
  })

  it('an apply on a snapshot that another commit overtook is re-run on the new state', () => {
    db.machines.create(run, 'o', { machine: 'order', context: { total: 10 } })
    let attempts = 0
    const r = db.transaction(run, (tx) => {
      attempts++
      const seen = tx.machines.get('o')!.state
      if (attempts === 1) db.machines.apply(run, 'o', 'submit')
      return { seen, result: tx.machines.apply('o', seen === 'draft' ? 'submit' : 'approve') }
    })
    expect(attempts).toBe(2)
    expect(r.seen).toBe('review')
    expect(r.result).toMatchObject({ from: 'review', to: 'approved', revision: 3 })
  })
})

describe('durability', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTmpDir('in-mem-machines')
  })
  afterEach(() => {
    removeDir(dir)
  })

  it('definitions, instances and idempotency keys survive close and reopen', () => {
    let d = Database.open(dir, { durability: 'strict' })
    let r: string
    try {
      r = d.runs.begin({ name: 'durable' })
      d.machines.define(ORDER)
      d.machines.create(r, 'o', { machine: 'order', context: { total: 1 }, idempotencyKey: 'c' })
      const first = d.machines.apply(r, 'o', 'submit', { payload: { by: 'ada' }, idempotencyKey: 'k' })
      expect(first.applied).toBe(true)
    } finally {
      d.close()
    }
    d = Database.open(dir, { durability: 'strict' })
    try {
      expect(d.machines.getDefinition('order', 1)?.transitions).toHaveLength(5)
      expect(d.machines.define(ORDER)).toEqual({ created: false })
      const again = d.machines.apply(r, 'o', 'submit', { payload: { by: 'ada' }, idempotencyKey: 'k' })
      expect(again).toEqual({ from: 'draft', to: 'review', revision: 2, context: { total: 1, by: 'ada' }, applied: false })
      expect(d.machines.create(r, 'o', { machine: 'order', context: { total: 1 }, idempotencyKey: 'c' })).toMatchObject({ state: 'draft', revision: 1 })
      expect(d.machines.get(r, 'o')).toMatchObject({ state: 'review', revision: 2, context: { total: 1, by: 'ada' } })
      expect(d.events.range(r).map((e) => e.type)).toEqual(['machine.transition'])
    } finally {
      d.close()
    }
  })
})

describe('worker_threads', () => {
  let dir: string
  beforeEach(() => {
    dir = makeTmpDir('in-mem-machine-workers')
  })
  afterEach(() => {
    removeDir(dir)
  })

  it('concurrent applies to one instance lose no transition and never fork its revisions', async () => {
    const d = Database.open(dir, { durability: 'buffered' })
    try {
      const r = d.runs.begin({ name: 'ticks' })
      d.machines.define({ name: 'ticker', version: 1, states: ['on'], initial: 'on', transitions: [{ from: 'on', event: 'tick', to: 'on' }] })
      d.machines.create(r, 'shared', { machine: 'ticker' })
      const workers = 4
      const applies = 100
      const reports = await Promise.all(
        Array.from({ length: workers }, (_, id) => {
          const data = { path: dir, run: r, instance: 'shared', applies, id }
          return runWorker<{ id: number; applied: number; repeated: number }>('machine-worker.cjs', data).result
        }),
      )
      reports.forEach((rep, id) => expect(rep).toEqual({ id, applied: applies, repeated: applies / 2 }))
      const instance = d.machines.get(r, 'shared')!
      expect(instance.revision).toBe(1 + workers * applies)
      for (let id = 0; id < workers; id++) expect(instance.context[`w${id}`]).toBe(applies - 1)
      const revisions = d.events.range(r, { type: 'machine.transition' }).map((e) => (e.payload as { revision: number }).revision)
      expect(revisions).toEqual(Array.from({ length: workers * applies }, (_, i) => i + 2))
      expect(d.events.verify(r).valid).toBe(true)
    } finally {
      d.close()
    }
  })
})
