// What every benchmark suite reports about the run it measured: which addon
// build it loaded, the machine, and a speed probe (the VM's speed drifts up
// to 2x between runs, so figures of different runs are compared through it).

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * The native addon in `root`: its name, size and time, and whether it is a
 * debug build (debug builds keep Rust's `precondition_check` UB checks);
 * `null` if there is none. Taken just before and just after in-mem is
 * loaded, it names the library the process maps (napi-rs replaces the file
 * by rename, so a later rebuild in the checkout changes nothing that runs,
 * and is only reported).
 */
export function addonInfo(root) {
  const name = readdirSync(root).find((f) => /^in-mem\..*\.node$/.test(f))
  if (name === undefined) return null
  const file = join(root, name)
  const st = statSync(file)
  return { file: name, size: st.size, mtimeMs: st.mtimeMs, debug: readFileSync(file).includes('precondition_check') }
}

/** Nanoseconds of one JSON.parse of `value`'s JSON text, best of 5 rounds of 50,000. */
export function jsonParseProbe(value) {
  const text = JSON.stringify(value)
  let best = Infinity
  let sink = 0
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < 50_000; i++) sink += JSON.parse(text) === null ? 1 : 0
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 50_000)
  }
  return sink >= 0 ? best : best
}

/** The CPU model (from /proc/cpuinfo where there is one), cores, Node version and platform. */
export function machineInfo() {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu
  } catch {
    // no /proc/cpuinfo: keep os.cpus()
  }
  return { cpu, cores: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` }
}

/**
 * Ends a suite's report: takes the speed probe again and checks whether the
 * addon in `root` changed after `loaded` was read, printing both, and
 * returns them as the results file records them.
 */
export function endOfRun({ root, loaded, raced, probeAtStart, probe }) {
  const probeAtEnd = probe()
  console.log(`speed probe: JSON.parse of the value ${probeAtStart.toFixed(0)} ns at the start, ${probeAtEnd.toFixed(0)} ns at the end`)
  const rebuiltLater = loaded !== null && JSON.stringify(loaded) !== JSON.stringify(addonInfo(root))
  if (rebuiltLater) console.log('(the addon file was rebuilt after in-mem loaded it; this run used the build it loaded)')
  return { addon: { loaded, raced, rebuiltLater }, probe: { jsonParseNs: { start: probeAtStart, end: probeAtEnd } } }
}

/**
 * Loads in-mem's `dist/` through the suite's `require`, noting which addon
 * build in `root` it loaded and whether the file changed meanwhile (then
 * which build ran is unknown); warns about both, and about a debug build.
 */
export function loadInMem(root, require, { indent = '', debugNote = '' } = {}) {
  const before = addonInfo(root)
  const { Database } = require('../dist/index.js')
  const loaded = addonInfo(root)
  const raced = JSON.stringify(before) !== JSON.stringify(loaded)
  if (raced) console.log(`${indent}WARNING: the native addon was being replaced while in-mem loaded it; which build ran is unknown`)
  if (loaded?.debug) console.log(`${indent}WARNING: ${loaded.file} looks like a debug build; run npm run build first${debugNote}`)
  return { Database, loaded, raced }
}

let v8Gc = null
/**
 * Two full GCs (memory figures are taken after them). `gc` is exposed on
 * first use, so a suite need not run under `node --expose-gc`.
 */
export function fullGc() {
  if (v8Gc === null) {
    setFlagsFromString('--expose_gc')
    v8Gc = globalThis.gc ?? runInNewContext('gc')
  }
  v8Gc()
  v8Gc()
}

/**
 * The process's RSS in bytes after a full GC; with `settleMs`, after a pause
 * of that long and another full GC (in-mem's maintenance runs every second).
 */
export function rssAfterGc(settleMs = 0) {
  fullGc()
  if (settleMs > 0) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, settleMs)
    fullGc()
  }
  return process.memoryUsage().rss
}

/**
 * The process's resident memory by kind from /proc/self/status, in bytes:
 * anon (the heap: private memory), file (mapped files, such as lmdb's map
 * and shared libraries) and shmem; `null` where there is no /proc.
 */
export function rssByKind() {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kb = (name) => Number(new RegExp(`^${name}:\\s*(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
    return { anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') }
  } catch {
    return null
  }
}

/** A non-negative integer from the environment variable `name`, or `dflt` when it is unset or empty. */
export function envInt(name, dflt) {
  const v = process.env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not ${v}`)
  return n
}

/** The total size of the files under `dir`, in bytes. */
export function dirBytes(dir) {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size
  return n
}
