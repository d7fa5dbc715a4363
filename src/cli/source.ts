/**
 * What the CLI's reports read from: the embedded {@link Database} (the MCP
 * server's) or a {@link RemoteDatabase} (the CLI's: its own open wrapped by
 * `localRemote`, or the owner's over its socket). Every call's answer is
 * awaited, so one report reads both. Not part of the library's API.
 * @module
 */
import type { Database, Stats } from '../database.js'
import type { ReplayOptions, RunDiff, RunView } from '../history.js'
import type { RunId } from '../runs.js'
import type { RunScope } from '../scope.js'

/** A facade whose methods answer now or in a Promise: the embedded facade and its remote form both fit. */
export type Either<T> = {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R ? (...args: A) => R | Promise<Awaited<R>> : never
}

/** The facades of a run scope and a replay view that the reports read. */
type ViewFacade = 'kv' | 'events' | 'state' | 'json' | 'traces' | 'machines' | 'vectors'

/** A run scope, embedded or remote. */
export type SourceScope = { readonly run: RunId } & { readonly [K in ViewFacade]: Either<RunScope[K]> }

/** A replay view, embedded or remote. */
export type SourceView = { readonly run: RunId; readonly at: number; close(): void | Promise<void> } & { readonly [K in ViewFacade]: Either<RunView[K]> }

/** A database to read, embedded or remote. */
export type Source = { readonly [K in 'kv' | 'runs' | 'events' | 'state' | 'json' | 'traces' | 'vectors' | 'machines']: Either<Database[K]> } & {
  scope(run: RunId): SourceScope
  replay(run: RunId, opts?: ReplayOptions): SourceView | Promise<SourceView>
  diff(a: RunId, b: RunId): RunDiff | Promise<RunDiff>
  stats(): Stats | Promise<Stats>
}
