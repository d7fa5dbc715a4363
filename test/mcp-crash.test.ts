// `in-mem mcp --durability strict` killed with SIGKILL in the middle of a
// sequence of tool calls: after a restart, every call the server
// acknowledged is in the database, and the call in flight is there whole or
// not at all.
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { KnowledgeGraph } from '../dist/mcp.js'
import { makeTmpDir, removeDir } from './helpers.js'
import { inMemMcp } from './mcp-helpers.js'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) removeDir(d)
})

/** Call `i` of the sequence: a KV put, an event, or two entities and a relation (one transaction). */
function step(run: string, i: number): [string, Record<string, unknown>] {
  switch (i % 3) {
    case 0:
      return ['kv_put', { run, key: `k${i}`, value: { i } }]
    case 1:
      return ['events_append', { run, type: 'step', payload: { i } }]
    default:
      return [
        'create_entities',
        {
          entities: [
            { name: `e${i}a`, entityType: 'step', observations: [`call ${i}`] },
            { name: `e${i}b`, entityType: 'step', observations: [`call ${i}`] },
          ],
        },
      ]
  }
}

describe('in-mem mcp, killed', () => {
  for (const round of [0, 1]) {
    it(`keeps every acknowledged call after SIGKILL mid-sequence (round ${round})`, async () => {
      const dir = join(makeTmpDir('in-mem-mcp-crash'), 'data')
      dirs.push(dir)
      const mcp = await inMemMcp(dir, '--durability', 'strict')
      const run = (await mcp.ok<{ run: { id: string } }>('runs_begin', { name: 'crash' })).run.id
      const acked: number[] = []
      const sequential = 10 + Math.floor(Math.random() * 20)
      for (let i = 0; i < sequential; i++) {
        const [name, args] = step(run, i)
        await mcp.ok(name, args)
        acked.push(i)
      }
      // Then a burst of calls at once, and the kill as the second of them is
      // acknowledged: the rest are in flight, in the pipe or in the server.
      const burst = Array.from({ length: 8 }, (_, j) => sequential + j)
      const killed = new Promise<void>((resolve) => {
        let answered = 0
        for (const i of burst) {
          const [name, args] = step(run, i)
          mcp.call(name, args).then(
            (r) => {
              if (r.isError) return
              acked.push(i)
              if (++answered === 2) {
                process.kill(mcp.transport.pid!, 'SIGKILL')
                resolve()
              }
            },
            () => undefined,
          )
        }
      })
      await killed
      await mcp.closed
      const sent = [...Array(sequential).keys(), ...burst]

      const db = Database.open(dir, { readOnly: true })
      try {
        const graph = new KnowledgeGraph(db).read()
        const entities = new Set(graph.entities.map((e) => e.name))
        const events = db.events.range(run).map((e) => (e.payload as { i: number }).i)
        expect(acked.length).toBeGreaterThanOrEqual(sequential + 2)
        for (const i of acked) {
          if (i % 3 === 0) expect(db.kv.get(run, `k${i}`), `call ${i}`).toEqual({ i })
          else if (i % 3 === 1) expect(events, `call ${i}`).toContain(i)
          else expect(entities.has(`e${i}a`) && entities.has(`e${i}b`), `call ${i}`).toBe(true)
        }
        // Each call is all there or not at all, and only calls that were sent are.
        for (const i of sent) expect(entities.has(`e${i}a`), `call ${i}`).toBe(entities.has(`e${i}b`))
        expect(new Set(events).size).toBe(events.length)
        for (const i of events) expect(sent.filter((j) => j % 3 === 1)).toContain(i)
        expect(db.events.verify(run).valid).toBe(true)
      } finally {
        db.close()
      }
    })
  }
})
