// Type-level tests, compiled by `tsc -p test/tsconfig.json` in `npm test`
// (npm run lint:ts). Nothing here runs: each `@ts-expect-error` marks a
// mistake that must not compile, and the rest must compile as written.
import { Database, type LaggedError, type CorruptionError, type LockedError } from '../dist/index.js'

declare const db: Database
declare const run: string

// ----- ordinary interfaces are storable (issue 19, item 6) -------------------

interface Plan {
  steps: string[]
  current: number
  note?: string
}
interface OrderCtx {
  items: { sku: string; qty: number }[]
  total: bigint
}
declare const plan: Plan
db.kv.put(run, 'plan', plan)
db.scope(run).kv.put('plan', plan)
db.transaction(run, (tx) => {
  tx.kv.put('plan', plan)
})
db.state.set(run, 'plan', plan)
db.state.init(run, 'plan', plan)
db.state.cas(run, 'plan', 1, plan)
db.state.transition<Plan>(run, 'plan', (p) => ({ steps: p?.steps ?? [], current: (p?.current ?? 0) + 1 }))
db.events.append(run, 'planned', plan)
db.json.set(run, 'doc', '$', plan)
db.json.merge(run, 'doc', '$', { current: 2 })
const created = db.machines.create<OrderCtx>(run, 'm1', { machine: 'order' })
const total: bigint = created.context.total
void total
declare const ctx: OrderCtx
db.kv.put(run, 'ctx', ctx)
// type aliases and plain literals still work
type Step = { name: string; done: boolean }
db.kv.put(run, 'step', { name: 'x', done: false } satisfies Step)
db.kv.put(run, 'n', 1)
db.kv.put(run, 'b', new Uint8Array(2))

// ...and what cannot be stored is refused where the type system can see it
interface WithFn {
  run(): void
}
declare const withFn: WithFn
// @ts-expect-error a function is not storable
db.kv.put(run, 'f', withFn)
// @ts-expect-error a Date is not storable
db.kv.put(run, 'd', new Date())
// @ts-expect-error a Map is not storable
db.kv.put(run, 'm', new Map<string, number>())
// @ts-expect-error a Date nested in an interface is not storable
db.state.set(run, 'when', { at: new Date() })
class Agent {
  name = 'a'
  act(): void {}
}
// @ts-expect-error a class instance with methods is not storable
db.kv.put(run, 'agent', new Agent())
// @ts-expect-error undefined is not storable
db.kv.put(run, 'u', undefined)

// ----- transaction closures must be synchronous (item 1) ---------------------

db.transaction(run, (tx) => tx.kv.get('a'))
// @ts-expect-error an async closure belongs in transactionAsync
db.transaction(run, async (tx) => {
  tx.kv.put('x', 1)
})
void db.transactionAsync(run, async (tx) => {
  await null
  tx.kv.put('x', 1)
})

// ----- watch and typed error details (item 7) --------------------------------

async function watching(): Promise<void> {
  const it = db.watch()
  await it.next()
  await it.return() // not "possibly undefined"
}
void watching
declare const lagged: LaggedError
const last: number = lagged.details.lastVersion
declare const corrupt: CorruptionError
const where: string = `${corrupt.details.file}@${corrupt.details.offset}: ${corrupt.details.reason}`
declare const locked: LockedError
const pid: number | null = locked.details.pid
void [last, where, pid]

// ----- typed reads, and interfaces in every write (found by a stranger's agent) ---

const p1 = db.kv.get<Plan>(run, 'plan')
const steps: string[] | undefined = p1?.steps
const many: (Plan | undefined)[] = db.kv.getMany<Plan>(run, ['a', 'b'])
const versioned: number | undefined = db.kv.getVersioned<Plan>(run, 'plan')?.value.current
const cell: number | undefined = db.state.get<Plan>(run, 'plan')?.value.current
const doc: Plan | undefined = db.json.get<Plan>(run, 'doc')
const listed: [string, Plan][] = db.kv.entries<Plan>(run)
void [steps, many, versioned, cell, doc, listed]
db.kv.putMany(run, [['a', plan]])
db.kv.putMany(run, { a: plan, b: plan })
db.runs.begin({ metadata: plan })
db.runs.update(run, { metadata: plan })
void db.withRun({ metadata: plan }, () => 1)
db.machines.create(run, 'm', { machine: 'x', context: { plan } })
db.machines.create<OrderCtx>(run, 'o', { machine: 'order', context: ctx })
db.machines.apply(run, 'm', 'go', { payload: plan })
// @ts-expect-error putMany refuses a Date
db.kv.putMany(run, [['d', new Date()]])
// @ts-expect-error metadata refuses a function
db.runs.begin({ metadata: { f: () => 1 } })
// @ts-expect-error a machine context refuses a Map
db.machines.create(run, 'm2', { machine: 'x', context: { m: new Map<string, number>() } })

// ----- remote facades take interfaces too (a stranger's review) --------------

declare const remote: Awaited<ReturnType<typeof Database.connect>>
void remote.kv.put(run, 'plan', plan)
void remote.scope(run).kv.put('plan', plan)
void remote.transaction(run, (tx) => {
  void tx.kv.put('plan', plan)
})
void remote.state.set(run, 'plan', plan)
void remote.events.append(run, 'planned', plan)
void remote.json.set(run, 'doc', '$', plan)
void remote.vectors.upsert(run, 'memory', 'm1', [0.1, 0.2], plan)
