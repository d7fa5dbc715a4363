// Shared helpers of the vitest suites. Not a test file itself.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import { createRequire } from 'node:module'
import { type Database, InMemError, type RunId } from '../dist/index.js'

// Through Node's own require, as dist/database.js loads them: the module
// instances (and so the map of native handles) it uses.
const nodeRequire = createRequire(__filename)
const { nativeHandles } = nodeRequire('../dist/internal.js') as typeof import('../dist/internal.js')
const { translate } = nodeRequire('../dist/errors.js') as typeof import('../dist/errors.js')

type Class<T> = abstract new (...args: never[]) => T

/**
 * Calls `fn`, expects it to throw an instance of `cls` (which must extend
 * InMemError) with the given `code`, and returns the error.
 */
export function expectError<T extends InMemError>(fn: () => unknown, cls: Class<T>, code: string): T {
  let thrown: unknown
  let threw = false
  try {
    fn()
  } catch (e) {
    threw = true
    thrown = e
  }
  expect(threw, `expected ${cls.name} (${code}) but nothing was thrown`).toBe(true)
  expect(thrown).toBeInstanceOf(cls)
  expect(thrown).toBeInstanceOf(InMemError)
  expect(thrown).toBeInstanceOf(Error)
  const err = thrown as T
  expect(err.code).toBe(code)
  expect(err.name).toBe(cls.name)
  expect(typeof err.message).toBe('string')
  expect(err.message.length).toBeGreaterThan(0)
  expect(typeof err.details).toBe('object')
  return err
}

/** Like {@link expectError}, for a promise. */
export async function expectRejection<T extends InMemError>(p: Promise<unknown>, cls: Class<T>, code: string): Promise<T> {
  let thrown: unknown
  let threw = false
  try {
    await p
  } catch (e) {
    threw = true
    thrown = e
  }
  expect(threw, `expected ${cls.name} (${code}) but the promise resolved`).toBe(true)
  expect(thrown).toBeInstanceOf(cls)
  expect(thrown).toBeInstanceOf(InMemError)
  const err = thrown as T
  expect(err.code).toBe(code)
  return err
}

/** A fresh temporary directory; remove it with {@link removeDir}. */
export function makeTmpDir(label = 'in-mem-test'): string {
  return mkdtempSync(join(tmpdir(), `${label}-`))
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A well-formed UUIDv7 that no database has handed out. */
export const UNKNOWN_RUN = '01890a5d-ac96-774b-bcce-b302099a8057'

/** The native test hooks, present only in the debug build with the `test-hooks` feature (npm test's). */
interface TestHooks {
  panicForTest(): void
  panicInMaintenanceForTest(): void
  holdSyncerForTest(on: boolean): void
  packForTest(): number
}

function hooks(db: Database): TestHooks {
  const native = nativeHandles.get(db) as unknown as Partial<TestHooks> | undefined
  if (native?.panicForTest === undefined) throw new Error('the addon was built without the test-hooks feature (npm run build:debug has it)')
  return native as TestHooks
}

/** Makes the native side panic inside a call; the error is translated as the facades do. */
export function panicForTest(db: Database): void {
  try {
    hooks(db).panicForTest()
  } catch (e) {
    throw translate(e)
  }
}

/** A packing pass now (keys holding one version leave the store's indexes for its packed arena); how many keys moved. */
export function packForTest(db: Database): number {
  return hooks(db).packForTest()
}

/** Makes the maintenance thread's next round panic. */
export function panicInMaintenanceForTest(db: Database): void {
  hooks(db).panicInMaintenanceForTest()
}

/** While `on`, the strict WAL's syncer starts no fsync (async commits pile up). */
export function holdSyncerForTest(db: Database, on: boolean): void {
  hooks(db).holdSyncerForTest(on)
}

/** xorshift32: small, fast and reproducible from one 32-bit seed. */
export class Rng {
  private s: number
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9
  }
  next(): number {
    let x = this.s
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    this.s = x
    return x / 0x1_0000_0000
  }
  int(n: number): number {
    return Math.floor(this.next() * n)
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]
  }
}

/**
 * What a run shows through `d`, live or in a replay view at `at`: its KV
 * entries, state cells (name, value, version: not the wall-clock time), the
 * event log without its times and hashes, and the JSON document `doc` —
 * what two databases given the same writes must show alike.
 */
export function shownRun(d: Database, run: RunId, at?: number): unknown {
  const v = at === undefined ? d.scope(run) : d.replay(run, { at })
  try {
    return {
      kv: v.kv.entries(),
      state: v.state.list().map((c) => ({ name: c.name, value: c.value, version: c.version })),
      events: v.events.range().map((e) => ({ sequence: e.sequence, type: e.type, payload: e.payload })),
      doc: v.json.get('doc'),
    }
  } finally {
    if ('close' in v) (v as { close(): void }).close()
  }
}
