/**
 * in-mem: an embedded database for AI-agent workloads.
 *
 * ```ts
 * import { Database } from 'in-mem'
 * const db = Database.open('./agent-data')
 * ```
 * @module in-mem
 */
export { Database } from './database.js'
export type { CheckpointOptions, CheckpointProgress, CheckpointReport, Durability, HistoryKeep, OpenOptions, NotPromise, Stats, TransactionOptions } from './database.js'
export type { ConnectOptions, FacadeName, Remote, RemoteDatabase, RemoteScope, RemoteTx, RemoteView, ScopeFacade } from './server/client.js'
export type { Server } from './server/owner.js'
export type { ServeLimits, ServeOptions, ServeTls } from './server/listener.js'
export type { OpLatency, ServerStats } from './server/stats.js'
export { Kv, ScopedKv } from './kv.js'
export type { ListOptions, PutOptions, Versioned } from './kv.js'
export { Runs } from './runs.js'
export type { BeginOptions, ForkOptions, RunChanges, RunId, RunInfo, RunListOptions, RunStatus } from './runs.js'
export { RunScope, TxScope } from './scope.js'
export type { Change, WatchOptions } from './watch.js'
export type { At, Changed, Changes, Entry, LoggedCommit, LoggedWrite, Primitive, ReplayOptions, RunDiff, RunView } from './history.js'
export { Events, ScopedEvents } from './events.js'
export type { Appended, Event, RangeOptions, Verification } from './events.js'
export { ScopedState, State } from './state.js'
export type { CasResult, Cell, NamedCell, TransitionResult } from './state.js'
export { Json, ScopedJson } from './json.js'
export type { JsonListOptions } from './json.js'
export { ScopedTraces, Traces } from './traces.js'
export { ScopedVectors, Vectors } from './vectors.js'
export type { CollectionInfo, CollectionOptions, CreatedCollection, Metric, SearchHit, SearchOptions, VectorEntry, VectorFilter, VectorRecord } from './vectors.js'
export type {
  DecisionData,
  ErrorData,
  NewTrace,
  QueryData,
  ThoughtData,
  ToolCallData,
  Trace,
  TraceBase,
  TraceData,
  TraceDataMap,
  TraceId,
  TraceNode,
  TraceQuery,
  TraceType,
} from './traces.js'
export { Machines, ScopedMachines } from './machines.js'
export type {
  MachineApplyOptions,
  MachineApplyResult,
  MachineContext,
  MachineCreateOptions,
  MachineDefineResult,
  MachineInstance,
  MachineListOptions,
  MachineDefinition,
  StoredMachineDefinition,
  StoredMachineTransition,
  MachineTransitionSpec,
} from './machines.js'
export type { Storable, Value } from './codec.js'
export { MAX_DEPTH, MAX_VALUE_BYTES } from './codec.js'
export { MAX_KEY_BYTES } from './keys.js'
export {
  AlreadyExistsError,
  ClosedError,
  ConnectionError,
  ConflictError,
  CorruptionError,
  GuardFailedError,
  InMemError,
  InternalError,
  InvalidArgumentError,
  InvalidTransitionError,
  IoError,
  LaggedError,
  LimitError,
  LockedError,
  MachineVersionExistsError,
  NotFoundError,
  RunClosedError,
} from './errors.js'
export type { CorruptionDetails, LaggedDetails, LockedDetails } from './errors.js'
