/**
 * Error classes. Every error in-mem throws extends {@link InMemError} and has
 * a stable string `code` and a `details` object, so callers can branch on
 * `instanceof` or on `code`.
 * @module
 */

/** Base class of every in-mem error. */
export class InMemError extends Error {
  /** Stable machine-readable code, such as `CONFLICT` or `LIMIT_EXCEEDED`. */
  readonly code: string
  /** Structured context: the key, the run, the file and offset, the limit. */
  readonly details: Record<string, unknown>
  constructor(message: string, code: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = new.target.name
    this.code = code
    this.details = details
  }
}

/** A run, key or other named thing does not exist. */
export class NotFoundError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'NOT_FOUND', details) }
}
/** The thing being created exists already. */
export class AlreadyExistsError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'ALREADY_EXISTS', details) }
}
/** Another transaction committed first. Retryable: `db.transaction` retries it for you. */
export class ConflictError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'CONFLICT', details) }
  /** Always true: running the transaction again may succeed. */
  get retryable(): boolean { return true }
}
/** An argument is malformed: wrong type, a value the codec cannot store, a bad run id. */
export class InvalidArgumentError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'INVALID_ARGUMENT', details) }
}
/** An argument is over a documented limit (key size, value size, nesting depth, name length). */
export class LimitError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'LIMIT_EXCEEDED', details) }
}
/** A write went to a run that is not active. Nothing was written. */
export class RunClosedError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'RUN_CLOSED', details) }
}
/** A status change or state-machine event is not allowed from the current state. */
export class InvalidTransitionError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'INVALID_TRANSITION', details) }
}
/** Every guard of a state-machine transition was false. */
export class GuardFailedError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'GUARD_FAILED', details) }
}
/** A different machine definition exists under the same name and version. */
export class MachineVersionExistsError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'MACHINE_VERSION_EXISTS', details) }
}
/** {@link LaggedError.details}. */
export interface LaggedDetails {
  /** The last commit version the watcher was given. */
  lastVersion: number
  [key: string]: unknown
}
/** {@link CorruptionError.details}. */
export interface CorruptionDetails {
  /** The damaged file. */
  file: string
  /** Where in it the damage starts. */
  offset: number
  /** What is wrong there. */
  reason: string
  [key: string]: unknown
}
/** {@link LockedError.details}. */
export interface LockedDetails {
  /** The data directory. */
  path: string
  /** The process that holds it, when it could be read. */
  pid: number | null
  [key: string]: unknown
}
/** A watcher fell behind its bounded buffer; `details.lastVersion` is the last commit version it was given. */
export class LaggedError extends InMemError {
  declare readonly details: LaggedDetails
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'LAGGED', details) }
}
/** Stored data is damaged; `details` has `file`, `offset` and `reason`. Nothing on disk was changed. */
export class CorruptionError extends InMemError {
  declare readonly details: CorruptionDetails
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'CORRUPTION', details) }
}
/** Another process holds the data directory; `details.pid` names it. */
export class LockedError extends InMemError {
  declare readonly details: LockedDetails
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'LOCKED', details) }
}
/** The database (or transaction) is closed. */
export class ClosedError extends InMemError {
  constructor(message = 'the database is closed', details: Record<string, unknown> = {}) { super(message, 'CLOSED', details) }
}
/** An I/O operation failed (disk full, permissions). */
export class IoError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'IO', details) }
}
/** A bug inside in-mem, including a Rust panic. The process keeps running. */
export class InternalError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'INTERNAL', details) }
}

/**
 * The connection to a database's owner (server mode) failed or was lost:
 * the owner is gone, refused the token, or did not answer in time. A
 * request that was in flight when the connection was lost may or may not
 * have been applied; `details.url` names the owner.
 */
export class ConnectionError extends InMemError {
  constructor(message: string, details: Record<string, unknown> = {}) { super(message, 'CONNECTION', details) }
}

type ErrorClass = new (message: string, details?: Record<string, unknown>) => InMemError

const byCode: Record<string, ErrorClass> = {
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  CONFLICT: ConflictError,
  INVALID_ARGUMENT: InvalidArgumentError,
  LIMIT_EXCEEDED: LimitError,
  RUN_CLOSED: RunClosedError,
  INVALID_TRANSITION: InvalidTransitionError,
  GUARD_FAILED: GuardFailedError,
  MACHINE_VERSION_EXISTS: MachineVersionExistsError,
  LAGGED: LaggedError,
  CORRUPTION: CorruptionError,
  LOCKED: LockedError,
  CLOSED: ClosedError,
  IO: IoError,
  INTERNAL: InternalError,
  CONNECTION: ConnectionError,
}

/** The error class of a stable code (`InternalError` for an unknown one). @internal */
export function errorClassOf(code: string): ErrorClass {
  return Object.hasOwn(byCode, code) ? byCode[code] : InternalError
}

/**
 * A native write's answer, checked. Every native write answers something
 * (a version, a flag, `true`); a native call whose error cannot be thrown —
 * on a worker thread being terminated, JavaScript runs on for a moment
 * after the native side can no longer throw into it — answers nothing, and
 * that is never taken for a write done.
 * @internal
 */
export function answered<T>(answer: T): T {
  if (answer === undefined) throw new InternalError('the write did not complete: its native call answered nothing (is this thread being terminated?)')
  return answer
}

/**
 * Turns an error thrown by the native addon into the matching class. Engine
 * errors arrive as a JSON reason; anything else (a panic, a failed argument
 * conversion) becomes an `InternalError` or `InvalidArgumentError`. Only
 * for errors thrown by the addon: a caller's own errors pass through as is.
 * @internal
 */
export function translate(e: unknown): unknown {
  if (e instanceof InMemError || !(e instanceof Error)) return e
  const message = e.message
  if (message.startsWith('{"code"')) {
    try {
      const parsed = JSON.parse(message) as { code: string; message: string; details: Record<string, unknown> }
      const Cls = byCode[parsed.code] ?? InternalError
      return new Cls(parsed.message, parsed.details ?? {})
    } catch {
      // fall through
    }
  }
  const code = (e as { code?: string }).code
  if (code === 'InvalidArg' || code === 'NumberExpected' || code === 'StringExpected' || code === 'ObjectExpected') {
    return new InvalidArgumentError(message)
  }
  // napi-rs reports a caught panic as GenericFailure with the panic's own
  // message (which need not say "panic"); every engine error is JSON above.
  if (code === 'GenericFailure') return new InternalError(`internal error (a Rust panic was caught): ${message}`)
  return e
}
