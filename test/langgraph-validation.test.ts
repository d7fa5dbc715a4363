// LangGraph's checkpointer conformance suite against InMemSaver, in each
// durability mode: every test of @langchain/langgraph-checkpoint-validation
// (including the one it skips for MemorySaver: only changed channel values
// are stored) and its opt-in getDeltaChannelHistory tests. Runs in its own
// vitest project with `globals: true` (see vitest.config.mts).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deltaChannelHistoryTests, validate } from '@langchain/langgraph-checkpoint-validation'
import { Database, type Durability } from '../dist/index.js'
import { InMemSaver } from '../dist/langgraph/index.js'

const open = new Map<InMemSaver, () => void>()

for (const durability of ['memory', 'buffered', 'strict'] as Durability[]) {
  const initializer = {
    // A name of its own per mode: the suite skips tests by checkpointer name, and none is skipped for this one.
    checkpointerName: `InMemSaver (${durability})`,
    createCheckpointer(): InMemSaver {
      let db: Database
      let cleanup: () => void
      if (durability === 'memory') {
        db = Database.open()
        cleanup = () => db.close()
      } else {
        const dir = mkdtempSync(join(tmpdir(), 'in-mem-lg-validation-'))
        db = Database.open(dir, { durability })
        cleanup = () => {
          db.close()
          rmSync(dir, { recursive: true, force: true })
        }
      }
      const saver = new InMemSaver(db)
      open.set(saver, cleanup)
      return saver
    },
    destroyCheckpointer(saver: InMemSaver): void {
      open.get(saver)?.()
      open.delete(saver)
    },
  }
  validate(initializer)
  deltaChannelHistoryTests(initializer)
}
