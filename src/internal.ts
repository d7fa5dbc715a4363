/**
 * Internal: each Database's native handle, for the package's own test
 * suites (which reach it by relative path). The package's `exports` map does
 * not expose this module, and the native test hooks exist only in the
 * debug build `npm test` makes (the `test-hooks` feature).
 * @internal
 * @module
 */
import type { NativeDatabase } from './native.js'

/** @internal */
export const nativeHandles = new WeakMap<object, NativeDatabase>()
