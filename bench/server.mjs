// Server mode beside Redis (SPEC §12: a remote in-mem ≥ 1.0 × Redis
// throughput on get and set over the Unix socket), measured in one run.
//
//   node bench/server.mjs       (needs a built dist/ and native addon: npm run build)
//
// The two servers, each in a process of its own, started and stopped here:
// - in-mem: a child process (this file with --owner) opens a data directory
//   (Database.open(dir, { durability })) and calls db.serve({ listen:
//   '127.0.0.1:0', token }): the default Unix socket <dir>/in-mem.sock and
//   loopback TCP. The client here is Database.connect(url, { token }).
// - Redis: /usr/bin/redis-server (or BENCH_REDIS_SERVER) on a Unix socket in
//   a temporary directory and on a free loopback port, with the ioredis client.
// Two phases of equal promise:
// - buffered: in-mem 'buffered' (a process death loses nothing; an OS crash
//   may lose the last writes) vs Redis with `--save '' --appendonly no`
//   (no persistence at all: in-mem promises more here).
// - durable: in-mem 'strict' vs Redis `--appendonly yes --appendfsync always`
//   (nothing acknowledged is lost), on the Unix socket only.
// What is timed, per value size (strings of BENCH_SIZES bytes, default 100
// and 1024) and requests in flight (BENCH_CONCURRENCY, default 1, 16, 64,
// all from ONE client connection: that many async loops sharing it):
// - get: kv.get(run, key) / GET key, of BENCH_KEYS preloaded keys.
// - set: kv.put(run, key, value) / SET key value, overwriting those keys.
// - tx: remote.transaction(run, async (tx) => { tx.kv.put(a, v);
//   tx.kv.put(b, v) }) / MULTI SET a v SET b v EXEC.
// Each cell warms up for BENCH_WARMUP_MS, then runs for BENCH_TIME_MS; its
// figures are requests answered ÷ wall time, and the p50/p99 of every
// request's latency (from the call to its promise settling). in-mem and
// Redis alternate cell by cell, so a drift of the machine moves both alike.
// The owner's event-loop delay (perf_hooks.monitorEventLoopDelay in the
// owner process, sampled every 10 ms, minus those 10 ms) is reported for
// each in-mem cell, and over all the time it serves (each phase). (The
// listener runs in a worker thread of the owner; this is the owner's own
// thread, which should stay free.)
//
// What was timed is checked (a failure fails the suite, exit status 1): key
// j always holds value j mod 128, so every get compares what it read to
// that value; after a set cell, a sample of keys is read back; after a tx
// cell, both keys of the last transactions hold their value.
//
// When redis-server (or ioredis) is missing it says so and measures in-mem alone.
//
// Environment: BENCH_TIME_MS (default 1000), BENCH_WARMUP_MS (200),
// BENCH_KEYS (10000, rounded up to a multiple of 128), BENCH_SIZES
// ("100,1024"), BENCH_CONCURRENCY ("1,16,64"), BENCH_REDIS_SERVER
// (default /usr/bin/redis-server, else redis-server on PATH), BENCH_DIR
// (where the data goes; default the OS tmp dir), BENCH_OUT (default
// bench/results/server.json).

import { fork, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { addonInfo, endOfRun, jsonParseProbe, loadInMem, machineInfo } from './common.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const require = createRequire(import.meta.url)
const ELD_RESOLUTION_MS = 10

// ----- the in-mem owner (a child process) -------------------------------------

async function owner() {
  const { Database } = require('../dist/index.js')
  const h = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS })
  const all = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS })
  let db
  let server
  const delay = (x) => ({ p50Ms: ms(x.percentile(50)), p99Ms: ms(x.percentile(99)), maxMs: ms(x.max), samples: x.count })
  const ms = (ns) => Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS)
  process.on('message', async (m) => {
    try {
      if (m.cmd === 'open') {
        db = Database.open(m.dir, { durability: m.durability })
        const run = db.runs.begin({ name: 'server bench' })
        server = await db.serve({ listen: '127.0.0.1:0', token: m.token })
        h.enable()
        all.enable()
        process.send({ urls: server.urls, run })
      } else if (m.cmd === 'eldStart') {
        // Both sample from the open to the close (a histogram enabled again
        // would count the pause as one long delay); a cell resets its own.
        h.reset()
        process.send({ ok: true })
      } else if (m.cmd === 'eldStop') {
        process.send(delay(h))
      } else if (m.cmd === 'eldAll') {
        process.send(delay(all))
      } else if (m.cmd === 'close') {
        h.disable()
        all.disable()
        await server.close()
        db.close()
        process.send({ closed: true })
        process.disconnect()
      }
    } catch (e) {
      process.send({ error: e.stack ?? String(e) })
    }
  })
}

// ----- the bench --------------------------------------------------------------

async function main() {
  const env = (k, d) => process.env[k] ?? d
  const TIME = Number(env('BENCH_TIME_MS', 1000))
  const WARMUP = Number(env('BENCH_WARMUP_MS', 200))
  const KEYS = Math.ceil(Number(env('BENCH_KEYS', 10_000)) / 128) * 128
  const SIZES = env('BENCH_SIZES', '100,1024').split(',').map(Number)
  const CONC = env('BENCH_CONCURRENCY', '1,16,64').split(',').map(Number)
  const OUT = env('BENCH_OUT', join(here, 'results', 'server.json'))
  for (const [k, xs] of [['BENCH_SIZES', SIZES], ['BENCH_CONCURRENCY', CONC]]) {
    if (xs.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${k} must be positive integers, got ${process.env[k]}`)
  }
  const BASE = env('BENCH_DIR', tmpdir())
  mkdirSync(BASE, { recursive: true })
  const base = mkdtempSync(join(BASE, 'in-mem-bench-server-'))

  const machine = machineInfo()
  const probe = () => jsonParseProbe({ key: 'key:00000001', value: 'x'.repeat(100) })
  const probeAtStart = probe()
  const { Database, loaded, raced } = loadInMem(root, require)

  // Redis: the server binary and the client.
  const redis = { available: false, why: '', bin: null, version: null }
  redis.bin = env('BENCH_REDIS_SERVER', existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server')
  const v = spawnSync(redis.bin, ['--version'], { encoding: 'utf8' })
  let Redis
  if (v.error || v.status !== 0) {
    redis.why = `redis-server is not installed (${redis.bin}: ${v.error?.code ?? `exit ${v.status}`}); apt-get install redis-server to compare. Measuring in-mem alone.`
  } else {
    redis.version = /v=(\S+)/.exec(v.stdout)?.[1] ?? v.stdout.trim()
    try {
      Redis = require('ioredis')
      redis.available = true
    } catch (e) {
      redis.why = `the ioredis client failed to load (${e.message.split('\n')[0]}); measuring in-mem alone.`
    }
  }

  console.log(`Server mode beside Redis: ${KEYS} keys, values of ${SIZES.join(', ')} bytes (strings), ${CONC.join(', ')} requests in flight on one connection, ${TIME} ms a cell after ${WARMUP} ms of warm-up`)
  console.log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`)
  console.log(redis.available ? `Redis ${redis.version} (${redis.bin}), ioredis ${require('ioredis/package.json').version}` : redis.why)

  const PHASES = [
    {
      name: 'buffered',
      inMem: 'buffered',
      redisArgs: ['--save', '', '--appendonly', 'no'],
      redisLabel: 'no persistence',
      transports: ['unix', 'tcp'],
      ops: ['get', 'set', 'tx'],
      sizes: SIZES,
    },
    {
      name: 'durable',
      inMem: 'strict',
      redisArgs: ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
      redisLabel: 'appendfsync always',
      transports: ['unix'],
      ops: ['set', 'tx'],
      sizes: [SIZES[0]],
    },
  ]

  const results = []
  const checks = []
  const errors = {}
  const children = new Set()
  const check = (ok, what) => {
    if (!ok) checks.push(what)
    return ok
  }
  let ownerLoop = null
  try {
    for (const phase of PHASES) {
      const systems = []
      const ownerProc = await startOwner(phase, base, children)
      const token = 'bench-token'
      const [unixUrl, tcpUrl] = ownerProc.urls
      for (const t of phase.transports) {
        const remote = await Database.connect(t === 'unix' ? unixUrl : tcpUrl, { token })
        systems.push(inMemSystem(remote, ownerProc.run, t, ownerProc))
      }
      let redisProc = null
      if (redis.available) {
        try {
          redisProc = await startRedis(redis.bin, phase, base, children)
          for (const t of phase.transports) {
            const client = new Redis(t === 'unix' ? { path: redisProc.socket } : { host: '127.0.0.1', port: redisProc.port })
            await new Promise((resolve, reject) => {
              client.once('ready', resolve)
              client.once('error', reject)
            })
            systems.push(redisSystem(client, t))
          }
        } catch (e) {
          errors[`redis ${phase.name}`] = e.stack ?? String(e)
          console.log(`Redis (${phase.name}) failed to start: ${e.message}`)
        }
      }

      console.log(`\n-- ${phase.name}: in-mem '${phase.inMem}' vs Redis ${phase.redisLabel}`)
      for (const size of phase.sizes) {
        const values = Array.from({ length: 128 }, (_, j) => `${String(j).padStart(3, '0')}:`.padEnd(size, String.fromCharCode(97 + (j % 26))))
        const keys = Array.from({ length: KEYS }, (_, j) => `key:${String(j).padStart(8, '0')}`)
        for (const s of systems) await s.preload(keys, values)
        for (const op of phase.ops) {
          for (const transport of phase.transports) {
            for (const conc of CONC) {
              for (const s of systems.filter((x) => x.transport === transport)) {
                const label = `${phase.name} ${op} ${size} B ${transport} ×${conc} ${s.name}`
                try {
                  const r = await cell(s, op, conc, keys, values, { TIME, WARMUP, KEYS })
                  r.valid = check(r.bad === 0, `${label}: ${r.bad} reads did not return the value written`) && r.valid
                  r.valid = check(await s.verify(op, keys, values, r.last), `${label}: read back after the cell, a key did not hold its value`) && r.valid
                  const row = { phase: phase.name, durability: s.name === 'in-mem' ? phase.inMem : phase.redisLabel, system: s.name, op, size, transport, concurrency: conc, ...r }
                  delete row.bad
                  delete row.last
                  results.push(row)
                } catch (e) {
                  errors[label] = e.stack ?? String(e)
                  console.log(`${label} failed: ${e.message}`)
                }
              }
              const a = results.find((x) => x.phase === phase.name && x.op === op && x.size === size && x.transport === transport && x.concurrency === conc && x.system === 'in-mem')
              const b = results.find((x) => x.phase === phase.name && x.op === op && x.size === size && x.transport === transport && x.concurrency === conc && x.system === 'redis')
              printRow(a, b, { op, size, transport, conc })
            }
          }
        }
      }
      if (phase === PHASES[0]) ownerLoop = await ownerProc.ask({ cmd: 'eldAll' })
      else ownerLoop.durable = await ownerProc.ask({ cmd: 'eldAll' })
      for (const s of systems) await s.close()
      await ownerProc.close()
      if (redisProc) await redisProc.stop()
    }
  } finally {
    for (const c of children) c.kill('SIGKILL')
    rmSync(base, { recursive: true, force: true })
  }

  // ----- ratios and targets ---------------------------------------------------
  const ratios = []
  for (const a of results.filter((x) => x.system === 'in-mem')) {
    const b = results.find((x) => x.system === 'redis' && x.phase === a.phase && x.op === a.op && x.size === a.size && x.transport === a.transport && x.concurrency === a.concurrency)
    if (b) ratios.push({ phase: a.phase, op: a.op, size: a.size, transport: a.transport, concurrency: a.concurrency, ratio: a.opsPerSec / b.opsPerSec })
  }
  console.log()
  if (ownerLoop) {
    console.log(`owner's event-loop delay while serving (its main thread; the listener is a worker thread): buffered p50 ${ownerLoop.p50Ms.toFixed(2)} ms, p99 ${ownerLoop.p99Ms.toFixed(2)} ms, max ${ownerLoop.maxMs.toFixed(2)} ms` +
      (ownerLoop.durable ? `; strict p50 ${ownerLoop.durable.p50Ms.toFixed(2)} ms, p99 ${ownerLoop.durable.p99Ms.toFixed(2)} ms, max ${ownerLoop.durable.maxMs.toFixed(2)} ms` : ''))
  }
  const targets = []
  for (const op of ['get', 'set']) {
    const rs = ratios.filter((r) => r.phase === 'buffered' && r.op === op && r.transport === 'unix')
    const name = `remote ${op} over the Unix socket ≥ 1.0 × Redis throughput (every size and concurrency)`
    if (rs.length === 0) {
      targets.push({ target: name, pass: null, value: redis.available ? 'no Redis figures' : 'Redis not installed' })
      console.log(`n/a   ${name}: ${redis.available ? 'no Redis figures' : 'Redis not installed'}`)
      continue
    }
    const worst = rs.reduce((m, r) => (r.ratio < m.ratio ? r : m))
    const geo = Math.exp(rs.reduce((s, r) => s + Math.log(r.ratio), 0) / rs.length)
    const pass = worst.ratio >= 1 && checks.length === 0
    const value = `worst ${worst.ratio.toFixed(2)}× (${worst.size} B, ${worst.concurrency} in flight), geometric mean ${geo.toFixed(2)}×`
    targets.push({ target: name, pass, value, worst: worst.ratio, geomean: geo })
    console.log(`${pass ? 'PASS' : 'FAIL'}  ${name}: ${value}`)
  }
  for (const c of checks) console.log(`check failed: ${c}`)
  const end = endOfRun({ root, loaded, raced, probeAtStart, probe })
  mkdirSync(dirname(OUT), { recursive: true })
  writeFileSync(
    OUT,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine,
        config: { timeMs: TIME, warmupMs: WARMUP, keys: KEYS, sizes: SIZES, concurrency: CONC, phases: PHASES.map((p) => ({ name: p.name, inMem: p.inMem, redis: p.redisLabel, transports: p.transports, ops: p.ops, sizes: p.sizes })) },
        redis: { available: redis.available, version: redis.version, why: redis.why || null },
        results,
        ratios,
        ownerLoop,
        targets,
        checks,
        errors,
        ...end,
        debugBuild: addonInfo(root)?.debug ?? null,
      },
      null,
      2,
    ),
  )
  console.log(`wrote ${OUT}`)
  if (checks.length > 0 || Object.keys(errors).length > 0) process.exitCode = 1
}

// ----- the systems ------------------------------------------------------------

function inMemSystem(remote, run, transport, ownerProc) {
  const kv = remote.kv
  const txKey = (j, ab) => `tx:${j}:${ab}`
  return {
    name: 'in-mem',
    transport,
    ownerProc,
    get: (k) => kv.get(run, k),
    set: (k, v) => kv.put(run, k, v),
    tx: (j, v) =>
      remote.transaction(run, async (tx) => {
        tx.kv.put(txKey(j, 'a'), v)
        tx.kv.put(txKey(j, 'b'), v)
      }),
    async preload(keys, values) {
      for (let i = 0; i < keys.length; i += 1000) await kv.putMany(run, keys.slice(i, i + 1000).map((k, n) => [k, values[(i + n) & 127]]))
    },
    async read(k) {
      return kv.get(run, k)
    },
    txKey,
    verify: (op, keys, values, last) => verify(kv.get.bind(kv, run), op, keys, values, last, txKey),
    close: () => remote.close(),
  }
}

function redisSystem(client, transport) {
  const txKey = (j, ab) => `tx:${j}:${ab}`
  return {
    name: 'redis',
    transport,
    get: (k) => client.get(k),
    set: (k, v) => client.set(k, v),
    tx: (j, v) => client.multi().set(txKey(j, 'a'), v).set(txKey(j, 'b'), v).exec(),
    async preload(keys, values) {
      for (let i = 0; i < keys.length; i += 1000) await client.mset(keys.slice(i, i + 1000).flatMap((k, n) => [k, values[(i + n) & 127]]))
    },
    verify: (op, keys, values, last) => verify((k) => client.get(k), op, keys, values, last, txKey),
    close: () => client.quit(),
  }
}

/** After a cell, untimed: a sample of keys hold value j mod 128 (set, get), both keys of the last transactions do (tx). */
async function verify(get, op, keys, values, last, txKey) {
  const sample = []
  for (let i = Math.max(0, last - 63); i <= last; i++) sample.push(i % keys.length)
  for (const j of sample) {
    if (op === 'tx') {
      if ((await get(txKey(j, 'a'))) !== values[j & 127] || (await get(txKey(j, 'b'))) !== values[j & 127]) return false
    } else if ((await get(keys[j])) !== values[j & 127]) return false
  }
  return true
}

/** One cell: `conc` loops sharing the system's one connection, warm-up then BENCH_TIME_MS. */
async function cell(s, op, conc, keys, values, { TIME, WARMUP, KEYS }) {
  let bad = 0
  const call =
    op === 'get'
      ? async (i) => {
          const j = i % KEYS
          if ((await s.get(keys[j])) !== values[j & 127]) bad++
        }
      : op === 'set'
        ? (i) => {
            const j = i % KEYS
            return s.set(keys[j], values[j & 127])
          }
        : (i) => {
            const j = i % KEYS
            return s.tx(j, values[j & 127])
          }
  // Warm-up, then the timed part from index 0 again.
  await run(call, conc, WARMUP, null)
  bad = 0
  if (s.ownerProc) await s.ownerProc.ask({ cmd: 'eldStart' })
  const lat = []
  const { wallMs, last } = await run(call, conc, TIME, lat)
  const ownerLoop = s.ownerProc ? await s.ownerProc.ask({ cmd: 'eldStop' }) : undefined
  lat.sort((a, b) => a - b)
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]
  return { ops: lat.length, wallMs, opsPerSec: (1000 * lat.length) / wallMs, p50Ms: q(0.5), p99Ms: q(0.99), bad, last, valid: lat.length > 0, ownerLoop }
}

async function run(call, conc, ms, lat) {
  let next = 0
  let last = -1
  const t0 = performance.now()
  const end = t0 + ms
  const loop = async () => {
    while (performance.now() < end) {
      const i = next++
      const s = performance.now()
      await call(i)
      if (lat) lat.push(performance.now() - s)
      if (i > last) last = i
    }
  }
  await Promise.all(Array.from({ length: conc }, loop))
  return { wallMs: performance.now() - t0, last }
}

// ----- the servers ------------------------------------------------------------

async function startOwner(phase, base, children) {
  const dir = mkdtempSync(join(base, `in-mem-${phase.name}-`))
  const child = fork(fileURLToPath(import.meta.url), ['--owner'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const ask = (msg) =>
    new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`the in-mem owner exited while asked ${msg.cmd}`))
      child.once('message', (m) => {
        child.off('exit', onExit)
        if (m.error) reject(new Error(`in-mem owner: ${m.error}`))
        else resolve(m)
      })
      child.once('exit', onExit)
      child.send(msg)
    })
  const opened = await ask({ cmd: 'open', dir, durability: phase.inMem, token: 'bench-token' })
  return {
    urls: opened.urls,
    run: opened.run,
    ask,
    async close() {
      await ask({ cmd: 'close' })
      await exited
      children.delete(child)
    },
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function startRedis(bin, phase, base, children) {
  const dir = mkdtempSync(join(base, `redis-${phase.name}-`))
  const socket = join(dir, 'redis.sock')
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...phase.redisArgs]
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  children.add(proc)
  let stderr = ''
  proc.stderr.on('data', (d) => (stderr += d))
  let exitInfo = null
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve((exitInfo = { code, signal }))))
  // Ready when both the socket and the port accept a connection.
  const t0 = Date.now()
  for (;;) {
    if (exitInfo) throw new Error(`redis-server exited (${exitInfo.code ?? exitInfo.signal}): ${stderr.trim()}`)
    if (Date.now() - t0 > 10_000) throw new Error(`redis-server did not listen within 10 s: ${stderr.trim()}`)
    if ((await accepts({ path: socket })) && (await accepts({ host: '127.0.0.1', port }))) break
    await new Promise((r) => setTimeout(r, 20))
  }
  return {
    socket,
    port,
    async stop() {
      proc.kill('SIGTERM')
      await exited
      children.delete(proc)
    },
  }
}

function accepts(where) {
  return new Promise((resolve) => {
    const s = net.connect(where)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

// ----- the table --------------------------------------------------------------

let header = false
function printRow(a, b, { op, size, transport, conc }) {
  const ops = (x) => (x === undefined ? '-' : x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}K` : x.toFixed(0))
  const lat = (x) => (x === undefined ? '-' : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3))
  if (!header) {
    header = true
    console.log(
      `${'op'.padEnd(4)} ${'size'.padStart(6)} ${'via'.padEnd(4)} ${'flight'.padStart(6)} | ${'in-mem/s'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} | ${'redis/s'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} | ${'÷ redis'.padStart(7)} | owner loop delay p50/p99 ms`,
    )
  }
  const r = a && b ? `${(a.opsPerSec / b.opsPerSec).toFixed(2)}×` : '-'
  const loop = a?.ownerLoop ? `${a.ownerLoop.p50Ms.toFixed(2)}/${a.ownerLoop.p99Ms.toFixed(2)}` : '-'
  const bad = (x) => (x && x.valid === false ? ' INVALID' : '')
  console.log(
    `${op.padEnd(4)} ${`${size} B`.padStart(6)} ${transport.padEnd(4)} ${String(conc).padStart(6)} | ${ops(a?.opsPerSec).padStart(9)} ${lat(a?.p50Ms).padStart(7)} ${lat(a?.p99Ms).padStart(7)} | ${ops(b?.opsPerSec).padStart(9)} ${lat(b?.p50Ms).padStart(7)} ${lat(b?.p99Ms).padStart(7)} | ${r.padStart(7)} | ${loop}${bad(a)}${bad(b)}`,
  )
}

// Last, so that every binding above is initialised.
if (process.argv[2] === '--owner') await owner()
else await main()
