/**
 * The native addon, loaded through the loader that `napi build` generates at
 * the package root (`index.js`).
 *
 * The generated loader looks for `in-mem.<platform>.node` beside itself (a
 * build from source), then for the platform package `in-mem-<platform>` (a
 * prebuilt binary, an optional dependency of `in-mem`). When neither loads,
 * its error blames an npm bug; the error thrown here instead names the
 * package this platform needs and says how to build from source, with the
 * loader's error as its `cause`.
 * @internal
 * @module
 */
import type * as Native from '../index.js'

/** The platforms that have a prebuilt package (`napi.targets` in package.json). */
const PREBUILT = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
  'win32-arm64-msvc',
]

/** This process's platform in napi-rs's naming: `linux-x64-gnu`, `darwin-arm64`, ... */
function platformName(): string {
  const base = `${process.platform}-${process.arch}`
  if (process.platform === 'win32') return `${base}-msvc`
  if (process.platform !== 'linux') return base
  let musl = false
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    musl = report !== undefined && !report.header?.glibcVersionRuntime
  } catch {
    // keep glibc
  }
  return `${base}-${musl ? 'musl' : 'gnu'}`
}

function isInstalled(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`)
    return true
  } catch {
    return false
  }
}

function loadError(cause: unknown): Error {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version: string = require('../package.json').version
  const platform = platformName()
  const pkg = `in-mem-${platform}`
  const fromSource =
    '- or build it from source (needs a Rust toolchain, https://rustup.rs): in a clone of https://github.com/in-mem/in-mem ' +
    `run \`npm ci && npm run build\`, which writes in-mem.${platform}.node beside index.js (the loader tries it first), and install that directory.`
  const why = cause instanceof Error ? cause.message : String(cause)
  let message: string
  if (!PREBUILT.includes(platform)) {
    message = `in-mem: no prebuilt binary exists for this platform (${platform}).\n${fromSource}`
  } else if (isInstalled(pkg)) {
    message =
      `in-mem: the package ${pkg}@${version}, which holds this platform's native binary, is installed, but the binary did not load: ${why}\n` +
      `- reinstall it: npm install ${pkg}@${version}\n${fromSource}`
  } else {
    message =
      `in-mem: no native binary for this platform (${platform}): the package ${pkg}@${version}, which holds it, is not installed. ` +
      'It is an optional dependency of in-mem, which npm skips under --omit=optional (--no-optional) or with a lock file made on another platform.\n' +
      `- install it: npm install ${pkg}@${version}\n${fromSource}`
  }
  const error = new Error(message)
  error.cause = cause
  return error
}

function load(): typeof Native {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../index.js')
  } catch (e) {
    throw loadError(e)
  }
}

const native: typeof Native = load()

export type NativeDatabase = Native.NativeDatabase
export type NativeTransaction = Native.NativeTransaction
export type NativeRunInfo = Native.NativeRunInfo
export const NativeDatabase = native.NativeDatabase
/** The hot KV calls bound to one handle (`crates/node/src/hot.rs`). */
export type HotFunctions = ReturnType<Native.NativeDatabase['hotFunctions']>
/**
 * A transaction's hot calls (`crates/node/src/hot.rs`), each called as a
 * method of a `NativeTransaction`: `TX.commit.call(tx, 1)`.
 */
export const TX: ReturnType<typeof Native.NativeDatabase.transactionFunctions> = native.NativeDatabase.transactionFunctions()
export type NativeWire = Native.NativeWire
/** A server connection's frames and hot path (`crates/node/src/wire.rs`). */
export const NativeWire = native.NativeWire
export type NativeServer = Native.NativeServer
/** Server mode's native listener (`crates/node/src/server.rs`). */
export const NativeServer = native.NativeServer
