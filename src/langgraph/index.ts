/**
 * `in-mem/langgraph`: persistence for LangGraph.js on in-mem.
 *
 * ```ts
 * import { Database } from 'in-mem'
 * import { InMemSaver, InMemStore } from 'in-mem/langgraph'
 * const db = Database.open('./agent-data', { durability: 'strict' })
 * const graph = builder.compile({ checkpointer: new InMemSaver(db), store: new InMemStore(db) })
 * ```
 *
 * `@langchain/langgraph-checkpoint` is a peer dependency of this entry point.
 * @module in-mem/langgraph
 */
export { InMemSaver } from './saver.js'
export type { ForkThreadOptions, InMemSaverOptions } from './saver.js'
export type { CheckpointRecord, NativeValue, SerializedValue, Stored, WriteRecord } from './threads.js'
export { isPlain } from './threads.js'
export { InMemStore } from './store.js'
export type { InMemStoreOptions, StoredItem } from './store.js'
