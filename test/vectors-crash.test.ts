// Vectors survive SIGKILL (SPEC §13, §14; issue 12): a child process
// upserting vectors in strict mode (test/fixtures/vector-crash-writer.cjs) is
// killed mid-stream, and after a reopen every upsert it acknowledged is there
// bit for bit, no upsertMany is half-applied, and search finds each one: the
// exact scan first for its own vector, the graph with recall ≥ 0.9. Some kills
// come right after a db.checkpoint(), so the graph saved beside it is loaded
// and only the WAL after it replayed.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const writer = join(__dirname, 'fixtures', 'vector-crash-writer.cjs')
const { vectorOf } = createRequire(__filename)('./fixtures/vector-data.cjs') as { vectorOf(j: number): Float32Array }
/** Vectors per upsertMany of the writer. */
const BATCH = 40

interface Ack {
  i: number
  from: number
  to: number
}
interface VectorCrash {
  run: string
  acked: Ack[]
  /** The checkpoint the writer finished before the kill, if any. */
  checkpoint?: { version: number; vectors: number }
  /** Acknowledgements that came after that checkpoint finished and before the kill was sent. */
  ackedAfterCheckpoint: number
}

/** When to kill: once `vectors` are acknowledged, or `acks` acknowledgements after the checkpoint at `checkpointAt` vectors finished. */
type KillPlan = { vectors: number } | { checkpointAt: number; acks: number }

async function crashVectorWriter(dir: string, plan: KillPlan): Promise<VectorCrash> {
  const checkpointAt = 'checkpointAt' in plan ? plan.checkpointAt : undefined
  const child = fork(writer, [dir, JSON.stringify({ batch: BATCH, checkpointAt })], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const crash: VectorCrash = { run: '', acked: [], ackedAfterCheckpoint: 0 }
  const errors: string[] = []
  let killSent = false
  const kill = () => {
    if (killSent) return
    killSent = true
    child.kill('SIGKILL')
  }
  // A writer that never reaches its kill point is killed anyway, and fails below.
  const guard = setTimeout(() => {
    errors.push(`no kill point reached in 20 s (plan ${JSON.stringify(plan)})`)
    kill()
  }, 20_000)
  // 'close', not 'exit': every IPC message the child sent has arrived by then.
  const closed = once(child, 'close')
  child.on('message', (m: { type: string; run?: string; message?: string; version?: number; vectors?: number } & Ack) => {
    if (m.type === 'run') crash.run = m.run!
    else if (m.type === 'error') errors.push(m.message!)
    else if (m.type === 'ckpt-done') {
      crash.checkpoint = { version: m.version!, vectors: m.vectors! }
      if ('acks' in plan && plan.acks === 0) kill()
    } else {
      crash.acked.push({ i: m.i, from: m.from, to: m.to })
      // Counted up to the kill: an ack the writer sent before SIGKILL landed
      // still arrives after it (and is checked as acknowledged, with the rest).
      if (crash.checkpoint && !killSent) crash.ackedAfterCheckpoint++
      if ('vectors' in plan ? m.to >= plan.vectors : crash.checkpoint && crash.ackedAfterCheckpoint >= plan.acks) kill()
    }
  })
  const [code, signal] = await closed
  clearTimeout(guard)
  expect(errors, 'the writer reported errors').toEqual([])
  if (!killSent) throw new Error(`writer exited early (code ${code}, signal ${signal})`)
  expect(signal).toBe('SIGKILL')
  expect(crash.run).not.toBe('')
  return crash
}

/** Vectors in the database after the writer's first `n` commits (1, BATCH, 1, BATCH, …). */
function vectorsAfterCommits(n: number): number {
  return Math.ceil(n / 2) + Math.floor(n / 2) * BATCH
}

/**
 * Checks a recovered writer run: the vectors are v0 … v<n-1> for n at a
 * commit boundary (a prefix, no upsertMany half-applied), every acknowledged
 * one is there bit for bit with its metadata, the exact scan finds each one
 * first for its own vector, and the graph finds a sample of them.
 */
function checkRecoveredVectors(db: Database, crash: VectorCrash, context: string): void {
  const { run } = crash
  const n = db.vectors.count(run, 'c')
  const acked = crash.acked.at(-1)!.to
  expect(n, `${context}: acknowledged ${acked} vectors, found ${n}`).toBeGreaterThanOrEqual(acked)
  expect(n, `${context}: the run needs the graph`).toBeGreaterThanOrEqual(1000)
  const boundaries = new Set(Array.from({ length: crash.acked.length + 3 }, (_, c) => vectorsAfterCommits(c)))
  expect(boundaries.has(n), `${context}: ${n} vectors is not a whole number of commits: an upsertMany is half-applied`).toBe(true)
  const batchOf = new Map<number, number>()
  for (const a of crash.acked) for (let j = a.from; j < a.to; j++) batchOf.set(j, a.i)
  for (let j = 0; j < n; j++) {
    const got = db.vectors.get(run, 'c', `v${j}`)
    expect(got, `${context}: v${j} is missing`).toBeDefined()
    expect(got!.vector, `${context}: v${j}`).toEqual(vectorOf(j))
    expect(got!.metadata, `${context}: v${j}`).toEqual({ j, batch: batchOf.get(j) ?? (got!.metadata as { batch: number }).batch })
  }
  expect(db.vectors.get(run, 'c', `v${n}`), context).toBeUndefined()
  for (let j = 0; j < acked; j++) {
    expect(db.vectors.search(run, 'c', vectorOf(j), { k: 1, exact: true })[0].id, `${context}: exact search for v${j}`).toBe(`v${j}`)
  }
  // The graph: each of a sample found among the 10 nearest of its own vector, and recall@10 against the exact scan.
  let found = 0
  let recall = 0
  const sample = Array.from({ length: 200 }, (_, s) => Math.floor((s * acked) / 200))
  for (const j of sample) {
    const graph = db.vectors.search(run, 'c', vectorOf(j), { k: 10 }).map((h) => h.id)
    const exact = new Set(db.vectors.search(run, 'c', vectorOf(j), { k: 10, exact: true }).map((h) => h.id))
    if (graph.includes(`v${j}`)) found++
    recall += graph.filter((id) => exact.has(id)).length / exact.size
  }
  expect(found / sample.length, `${context}: share of the sample the graph finds`).toBeGreaterThanOrEqual(0.9)
  expect(recall / sample.length, `${context}: mean recall@10 of the graph`).toBeGreaterThanOrEqual(0.9)
}

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-vectors-crash')
})
afterEach(() => removeDir(dir))

describe('vectors: crash tests (SIGKILL, strict)', () => {
  it('every acknowledged vector survives a kill mid-stream, whole, bit for bit, and search finds it (the graph rebuilt from the WAL)', async () => {
    for (let iteration = 0; iteration < 3; iteration++) {
      const iterDir = join(dir, `mid-${iteration}`)
      const vectors = 1100 + Math.floor(Math.random() * 700)
      const crash = await crashVectorWriter(iterDir, { vectors })
      const context = `kill ${iteration}, after ${crash.acked.length} acks (${crash.acked.at(-1)!.to} vectors)`
      const db = Database.open(iterDir, { durability: 'strict' })
      try {
        // No checkpoint: the graph is built from the WAL's records as they are replayed.
        expect(db.stats().recovery.indexes, context).toEqual({ loaded: 0, rebuilt: [] })
        expect(db.stats().recovery.checkpointVersion, context).toBe(0)
        checkRecoveredVectors(db, crash, context)
      } finally {
        db.close()
      }
    }
  })

  it('a kill right after db.checkpoint(): the saved graph is loaded, the WAL after it replayed, and every acknowledged vector is found', async () => {
    for (const acks of [0, 1 + Math.floor(Math.random() * 30)]) {
      const iterDir = join(dir, `ckpt-${acks}`)
      const checkpointAt = 1050 + Math.floor(Math.random() * 300)
      const crash = await crashVectorWriter(iterDir, { checkpointAt, acks })
      const context = `kill ${acks} acks after the checkpoint at ${crash.checkpoint?.vectors} vectors`
      expect(crash.checkpoint, context).toBeDefined()
      expect(crash.ackedAfterCheckpoint, context).toBe(acks)
      const db = Database.open(iterDir, { durability: 'strict' })
      try {
        const { recovery } = db.stats()
        expect(recovery.checkpointVersion, context).toBe(crash.checkpoint!.version)
        expect(recovery.indexes, context).toEqual({ loaded: 1, rebuilt: [] })
        // Only the WAL after the checkpoint was replayed: one record per commit since, at least the acknowledged ones.
        expect(recovery.records, context).toBe(db.stats().version - crash.checkpoint!.version)
        expect(recovery.records, context).toBeGreaterThanOrEqual(acks)
        expect(db.vectors.count(crash.run, 'c'), context).toBeGreaterThanOrEqual(crash.checkpoint!.vectors)
        checkRecoveredVectors(db, crash, context)
      } finally {
        db.close()
      }
    }
  })
})
