/**
 * The native addon, loaded through the loader that `napi build` generates at
 * the package root (`index.js`).
 * @internal
 * @module
 */
import type * as Native from '../index.js'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const native: typeof Native = require('../index.js')

export type NativeDatabase = Native.NativeDatabase
export type NativeTransaction = Native.NativeTransaction
export type NativeRunInfo = Native.NativeRunInfo
export const NativeDatabase = native.NativeDatabase
/** The hot KV calls bound to one handle (`crates/node/src/hot.rs`). */
export type HotFunctions = ReturnType<Native.NativeDatabase['hotFunctions']>
