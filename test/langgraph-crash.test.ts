// A real LangGraph graph with interrupts, checkpointed by InMemSaver in
// strict mode, is SIGKILLed mid-run; restarted, it resumes from its last
// checkpoint and ends with nothing lost: every checkpoint the saver
// acknowledged is there, and the graph's state is exactly the uninterrupted one.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { InMemSaver } from '../dist/langgraph/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const worker = join(__dirname, 'fixtures', 'langgraph-worker.mjs')
const STEPS = 30
/** The checkpoints of the run when nothing interrupts it but its interrupts. */
const FULL_RUN = 37
const EXPECTED = {
  count: STEPS,
  done: Array.from({ length: STEPS }, (_, i) => i + 1),
  answers: [5, 10, 15, 20, 25].map((n) => `ok-${n}`),
}

interface Outcome {
  acked: string[]
  end?: Record<string, unknown>
  signal: NodeJS.Signals | null
}

/** Runs the worker; with `killAfter`, SIGKILLs it once the saver acknowledged that many checkpoints. */
async function runWorker(dir: string, killAfter?: number): Promise<Outcome> {
  const child = fork(worker, [dir], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const out: Outcome = { acked: [], signal: null }
  const closed = once(child, 'close')
  child.on('message', (m: { type: string; id?: string; values?: Record<string, unknown> }) => {
    if (m.type === 'acked') {
      out.acked.push(m.id!)
      if (killAfter !== undefined && out.acked.length === killAfter) child.kill('SIGKILL')
    } else if (m.type === 'end') out.end = m.values
  })
  const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null]
  out.signal = signal
  if (killAfter === undefined) expect(code).toBe(0)
  return out
}

describe('InMemSaver under SIGKILL (strict mode)', () => {
  for (const killAfter of [4, 13, 29]) {
    it(`resumes a graph killed after ${killAfter} acknowledged checkpoints from its last checkpoint, losing nothing`, async () => {
      const dir = makeTmpDir('in-mem-lg-crash')
      try {
        const killed = await runWorker(dir, killAfter)
        expect(killed.signal).toBe('SIGKILL')
        expect(killed.end).toBeUndefined()
        expect(killed.acked.length).toBeGreaterThanOrEqual(killAfter)

        const db = Database.open(dir, { durability: 'strict' })
        const saver = new InMemSaver(db)
        for (const id of killed.acked) {
          expect(await saver.getTuple({ configurable: { thread_id: 'counting', checkpoint_ns: '', checkpoint_id: id } }), id).toBeDefined()
        }
        const last = await saver.getTuple({ configurable: { thread_id: 'counting' } })
        expect(last!.checkpoint.id >= killed.acked[killed.acked.length - 1]).toBe(true)
        db.close()

        const resumed = await runWorker(dir)
        expect(resumed.end).toEqual(EXPECTED)
        // It went on from where it stopped: it did not start over.
        // (One checkpoint may have been stored but not yet reported when the kill came.)
        expect(resumed.acked.length).toBeLessThanOrEqual(FULL_RUN - killed.acked.length)
        expect(resumed.acked.length).toBeGreaterThanOrEqual(FULL_RUN - killed.acked.length - 1)
        const again = Database.open(dir)
        const history = []
        for await (const t of new InMemSaver(again).list({ configurable: { thread_id: 'counting' } })) history.push(t.checkpoint.id)
        // One path of FULL_RUN checkpoints, newest first, holding every acknowledged one (and at most one stored
        // just before the kill, not yet reported).
        expect(history).toHaveLength(FULL_RUN)
        expect(history).toEqual([...history].sort().reverse())
        const acked = new Set([...killed.acked, ...resumed.acked])
        expect(acked.size).toBe(killed.acked.length + resumed.acked.length)
        for (const id of acked) expect(history).toContain(id)
        again.close()
      } finally {
        removeDir(dir)
      }
    })
  }
})
