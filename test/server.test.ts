// Server mode (SPEC §15): serving a directory from a worker thread, remote
// transactions, watch, limits and the security cases — a wrong or missing
// token, TCP without a token, TLS with a certificate made here and a client
// trusting another CA, the socket's mode, and oversized, truncated, garbage
// and unfinished frames and too many connections, each leaving the server
// serving everyone else.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ClosedError,
  ConflictError,
  ConnectionError,
  Database,
  InvalidArgumentError,
  LaggedError,
  LimitError,
  type OpenOptions,
  type RemoteDatabase,
  type Server,
} from '../dist/index.js'
import { expectRejection, makeTmpDir, removeDir } from './helpers.js'

let dir: string
const open: { close(): unknown }[] = []
const servers: Server[] = []

beforeEach(() => {
  dir = makeTmpDir()
})
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
  for (const c of open.splice(0).reverse()) await c.close()
  removeDir(dir)
})

function openDb(opts: OpenOptions = { durability: 'buffered' }): Database {
  const db = Database.open(join(dir, 'data'), opts)
  open.push(db)
  return db
}
async function serve(db: Database, opts?: Parameters<Database['serve']>[0]): Promise<Server> {
  const s = await db.serve(opts)
  servers.push(s)
  return s
}
async function connect(url: string, opts?: Parameters<typeof Database.connect>[1]): Promise<RemoteDatabase> {
  const r = await Database.connect(url, opts)
  open.push(r)
  return r
}

/** A raw connection that has shaken hands (or not), for feeding the server bad bytes. */
function raw(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path, () => resolve(s))
    s.once('error', reject)
    // Read (and drop) what the server says, so its end is seen.
    s.resume()
  })
}
function closed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve()
    else s.once('close', () => resolve())
  })
}
function lengthPrefixed(body: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt32LE(body.length)
  return Buffer.concat([head, body])
}

describe('serving a directory', () => {
  it('serves from a worker thread on a 0600 socket named in SERVER, and closes cleanly', async () => {
    const db = openDb()
    const run = db.runs.begin({ name: 'owner' })
    db.kv.put(run, 'k', 'from the owner')
    const server = await serve(db)
    const sock = join(dir, 'data', 'in-mem.sock')
    expect(server.url).toBe(`unix:${sock}`)
    expect(statSync(sock).isSocket()).toBe(true)
    expect(statSync(sock).mode & 0o777).toBe(0o600)
    const record = JSON.parse(readFileSync(join(dir, 'data', 'SERVER'), 'utf8')) as { pid: number; urls: string[] }
    expect(record).toEqual({ pid: process.pid, urls: [server.url] })

    const remote = await connect(server.url)
    expect(await remote.kv.get(run, 'k')).toBe('from the owner')
    await remote.kv.put(run, 'r', { from: 'remote' })
    // The owner sees the remote write at once: one engine.
    expect(db.kv.get(run, 'r')).toEqual({ from: 'remote' })
    const stats = db.stats().server
    expect(stats?.connections).toBe(1)
    expect(stats?.latency['kv.get'].count).toBe(1)
    expect(stats?.latency['kv.put'].count).toBe(1)
    expect((await remote.stats()).server?.requests).toBeGreaterThanOrEqual(2)

    await expectRejection(db.serve(), Error as never, 'ALREADY_EXISTS')
    await server.close()
    expect(existsSync(sock)).toBe(false)
    expect(existsSync(join(dir, 'data', 'SERVER'))).toBe(false)
    expect(db.stats().server).toBeNull()
    // The connection is gone; the owner goes on.
    await expectRejection(remote.kv.get(run, 'k'), ConnectionError, 'CONNECTION')
    expect(remote.isOpen).toBe(false)
    db.kv.put(run, 'after', 1)
  })

  it('replaces a socket left by an owner that died', async () => {
    const first = openDb()
    const stale = net.createServer()
    const sock = join(dir, 'data', 'in-mem.sock')
    await new Promise<void>((resolve) => stale.listen(sock, resolve))
    // A listener that is not in-mem's, then gone: its file stays behind.
    await new Promise<void>((resolve) => stale.close(() => resolve()))
    expect(existsSync(sock)).toBe(false)
    const s2 = net.createServer()
    await new Promise<void>((resolve) => s2.listen(sock, resolve))
    ;(s2 as unknown as { _handle: { close(): void } })._handle.close()
    const server = await serve(first)
    const remote = await connect(server.url)
    expect(await remote.runs.list()).toEqual([])
  })

  it('closing the database closes its server', async () => {
    const db = openDb()
    const server = await serve(db)
    const remote = await connect(server.url)
    const run = await remote.runs.begin({})
    db.close()
    await expectRejection(remote.kv.put(run, 'k', 1).then(() => remote.kv.put(run, 'k', 2)), ConnectionError, 'CONNECTION')
    // The directory opens again once the serving worker let go of it.
    const again = openDb()
    expect(again.runs.get(run)?.id).toBe(run)
  })

  it('a memory-only database serves from its own thread, on a socket it is given', async () => {
    const db = Database.open()
    open.push(db)
    await expectRejection(db.serve(), InvalidArgumentError, 'INVALID_ARGUMENT')
    const server = await serve(db, { socket: join(dir, 'mem.sock') })
    const remote = await connect(server.url)
    const run = await remote.runs.begin({})
    await remote.kv.put(run, 'k', 1n)
    expect(db.kv.get(run, 'k')).toBe(1n)
    // A relative socket path is served, and named, absolute.
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const mem = Database.open()
      open.push(mem)
      const rel = await serve(mem, { socket: 'rel.sock' })
      expect(rel.url).toBe(`unix:${join(dir, 'rel.sock')}`)
      await rel.close()
    } finally {
      process.chdir(cwd)
    }
  })
})

describe('remote transactions', () => {
  let db: Database
  let a: RemoteDatabase
  let b: RemoteDatabase
  let run: string
  beforeEach(async () => {
    db = openDb({ durability: 'strict' })
    const server = await serve(db)
    a = await connect(server.url)
    b = await connect(server.url)
    run = db.runs.begin({})
    db.kv.put(run, 'n', 0)
  })

  it('read at their snapshot, see their own writes, and the first committer wins', async () => {
    let attempts = 0
    let sawOther: unknown
    const result = await a.transaction(run, async (tx) => {
      attempts++
      const n = (await tx.kv.get('n')) as number
      if (attempts === 1) {
        // Another client commits in between: this snapshot does not see it…
        await b.kv.put(run, 'n', 100)
        sawOther = await tx.kv.get('n')
      }
      void tx.kv.put('n', n + 1)
      expect(await tx.kv.get('n')).toBe(n + 1)
      return n + 1
    })
    // …and the commit conflicted, so the closure ran again on the new value.
    expect(sawOther).toBe(0)
    expect(attempts).toBe(2)
    expect(result).toBe(101)
    expect(db.kv.get(run, 'n')).toBe(101)
  })

  it('a conflict past the retries is a ConflictError, and nothing is written', async () => {
    const err = await expectRejection(
      a.transaction(
        run,
        async (tx) => {
          await tx.kv.get('n')
          await b.kv.put(run, 'n', Math.random())
          void tx.kv.put('mine', 1)
        },
        { retries: 2 },
      ),
      ConflictError,
      'CONFLICT',
    )
    expect(err.retryable).toBe(true)
    expect(db.kv.get(run, 'mine')).toBeUndefined()
  })

  it('an unawaited write that fails fails the commit, and nothing is written', async () => {
    await expectRejection(
      a.transaction(run, async (tx) => {
        void tx.kv.put('first', 1)
        void tx.kv.put('', 1)
        return 'done'
      }),
      InvalidArgumentError,
      'INVALID_ARGUMENT',
    )
    expect(db.kv.get(run, 'first')).toBeUndefined()
  })

  it('a transaction left open past its lease is rolled back on the owner', async () => {
    const db2 = Database.open()
    open.push(db2)
    const server = await serve(db2, { socket: join(dir, 'lease.sock'), limits: { txLeaseMs: 50 } })
    const c = await connect(server.url)
    const r = db2.runs.begin({})
    const err = await expectRejection(
      c.transaction(r, async (tx) => {
        void tx.kv.put('k', 1)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }),
      ClosedError,
      'CLOSED',
    )
    expect(err.message).toContain('lease of 50 ms')
    expect(db2.kv.get(r, 'k')).toBeUndefined()
    expect(db2.stats().activeSnapshots).toBe(0)
  })

  it('close() waits for the answers of requests already made: every write made before it is applied and resolves', async () => {
    // (strict, as this block's database: each answer waits for its fsync)
    const remote = await Database.connect(servers[0].url)
    const puts = Array.from({ length: 50 }, (_, i) => remote.kv.put(run, `k${i}`, i))
    await remote.close()
    const settled = await Promise.allSettled(puts)
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(50)
    expect(db.kv.count(run)).toBe(51)
    await expectRejection(remote.kv.get(run, 'k1'), ClosedError, 'CLOSED')
  })

  it('closing the connection rolls back its open transaction', async () => {
    let entered!: () => void
    const inside = new Promise<void>((resolve) => {
      entered = resolve
    })
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const before = db.stats().activeSnapshots
    const pending = a.transaction(run, async (tx) => {
      await tx.kv.put('never', 1)
      entered()
      await held
    })
    await inside
    expect(db.stats().activeSnapshots).toBe(before + 1)
    await a.close()
    release()
    await expectRejection(pending, ClosedError, 'CLOSED')
    // The owner noticed the close: the snapshot is released, nothing was written.
    await vi_waitFor(() => (db.stats().activeSnapshots === before ? true : undefined), () => b.kv.get(run, 'n'))
    expect(db.kv.get(run, 'never')).toBeUndefined()
  })

  it('state.transition runs remotely as a retried transaction', async () => {
    const bump = (c: unknown): number => ((c as number | undefined) ?? 0) + 1
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).state.transition(run, 'count', bump)))
    expect(db.state.get(run, 'count')?.value).toBe(20)
  })
})

describe('strict mode over the wire', () => {
  it('acknowledges a write only once it is fsynced, and shares fsyncs between requests', async () => {
    const db = openDb({ durability: 'strict' })
    const server = await serve(db)
    const clients = [await connect(server.url), await connect(server.url)]
    const run = db.runs.begin({})
    const fsyncsBefore = db.stats().wal!.fsyncs
    const early: number[] = []
    const N = 200
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const version = await clients[i % 2].kv.put(run, `k${i}`, i)
        // The owner's engine, read the moment the answer arrives: the
        // write it acknowledges is on disk.
        if (db.stats().wal!.durableVersion < version) early.push(version)
      }),
    )
    expect(early).toEqual([])
    const fsyncs = db.stats().wal!.fsyncs - fsyncsBefore
    expect(fsyncs).toBeGreaterThan(0)
    expect(fsyncs).toBeLessThan(N / 2)
    // Transactions and single writes of every primitive too.
    const events = await clients[0].events.append(run, 'e', { x: 1 })
    expect(db.stats().wal!.durableVersion).toBeGreaterThanOrEqual(db.stats().version)
    expect(events.sequence).toBe(0)
    await clients[1].transaction(run, async (tx) => {
      void tx.kv.put('t', 1)
    })
    expect(db.stats().wal!.durableVersion).toBe(db.stats().version)
  })
})

describe('remote watch', () => {
  it('streams commits, ends on break, and a reader that falls behind gets LaggedError', async () => {
    const db = openDb()
    const server = await serve(db)
    const remote = await connect(server.url, { watchBuffer: 5 })
    const run = db.runs.begin({})
    const seen: unknown[] = []
    // Requests on one connection are handled in order: the watch is open on
    // the owner before the writes sent after it.
    const watcher = (async () => {
      for await (const change of remote.watch({ run, primitives: ['kv'] })) {
        seen.push([change.key, change.value])
        if (seen.length === 2) break
      }
    })()
    await remote.kv.put(run, 'a', 1)
    await remote.events.append(run, 'skipped', {})
    await remote.kv.put(run, 'b', 2n)
    await watcher
    expect(seen).toEqual([['a', 1], ['b', 2n]])

    // A reader that does not read while 20 changes arrive falls behind a buffer of 5.
    const slow = remote.watch({ run })
    const first = slow.next()
    for (let i = 0; i < 20; i++) await remote.kv.put(run, `k${i}`, i)
    // The owner's worker thread streams the changes on its own time: still
    // arriving one by one once this thread reads again, they would each be
    // read as it came (a reader keeping up, which never lags; the test hung
    // waiting for a LaggedError in 1 of 2 release runs). This thread stops
    // reading meanwhile — blocked, so no frame is taken off the socket —
    // and the changes wait in the socket for it to read them all at once.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300)
    const got: unknown[] = [(await first).value]
    const err = await (async () => {
      try {
        for await (const c of slow) got.push(c)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(LaggedError)
    expect((err as LaggedError).details.lastVersion).toBe((got[got.length - 1] as { version: number }).version)
  })
})

/** Polls `probe` (running `tick` between tries) until it gives something. */
async function vi_waitFor<T>(probe: () => T | undefined, tick: () => Promise<unknown>): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = probe()
    if (v !== undefined) return v
    await tick()
  }
  throw new Error('condition not reached')
}

describe('security', () => {
  it('a socket served with a token refuses a wrong or missing one, in the same time as a near miss', async () => {
    const db = openDb()
    const token = 'a'.repeat(64)
    const server = await serve(db, { token })
    const good = await connect(server.url, { token })
    expect(await good.runs.list()).toEqual([])
    await expectRejection(Database.connect(server.url), ConnectionError, 'CONNECTION')
    const err = await expectRejection(Database.connect(server.url, { token: 'b' }), ConnectionError, 'CONNECTION')
    expect(err.message).toContain('wrong or missing token')
    // A near miss (all but the last character) and a far miss are refused alike.
    const time = async (t: string): Promise<number> => {
      const start = process.hrtime.bigint()
      await Database.connect(server.url, { token: t }).then(
        () => {
          throw new Error('accepted')
        },
        () => {},
      )
      return Number(process.hrtime.bigint() - start)
    }
    const near: number[] = []
    const far: number[] = []
    for (let i = 0; i < 30; i++) {
      near.push(await time(`${'a'.repeat(63)}b`))
      far.push(await time('z'))
    }
    const median = (xs: number[]): number => xs.sort((x, y) => x - y)[xs.length >> 1]
    const ratio = median(near) / median(far)
    // The compare is of two SHA-256 digests in constant time: no prefix or
    // length shows. The bound is loose for a shared machine's noise.
    expect(ratio).toBeGreaterThan(0.5)
    expect(ratio).toBeLessThan(2)
    expect(db.stats().server?.refused).toBeGreaterThanOrEqual(62)
    expect(await good.runs.list()).toEqual([])
  })

  it('a TCP listener needs a token, and checks it', async () => {
    const db = openDb()
    await expectRejection(db.serve({ listen: '127.0.0.1:0' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    const server = await serve(db, { listen: '127.0.0.1:0', token: 'sesame-sesame-sesame' })
    expect(server.url).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/)
    expect(server.urls).toHaveLength(2)
    await expectRejection(Database.connect(server.url), ConnectionError, 'CONNECTION')
    const remote = await connect(server.url, { token: 'sesame-sesame-sesame' })
    const run = await remote.runs.begin({ name: 'tcp' })
    expect(db.runs.get(run)?.name).toBe('tcp')
    // The socket beside it takes the same token.
    await expectRejection(Database.connect(server.urls[0]), ConnectionError, 'CONNECTION')
  })

  it('TLS: a client trusting the certificate connects; one trusting another CA is refused', async () => {
    const cert = (name: string): { cert: string; key: string } => {
      const key = join(dir, `${name}.key`)
      const crt = join(dir, `${name}.crt`)
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', crt], { stdio: 'ignore' })
      return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') }
    }
    const mine = cert('server')
    const other = cert('other')
    const db = openDb()
    const token = 'tls-token-tls-token'
    const server = await serve(db, { listen: '127.0.0.1:0', token, tls: mine })
    expect(server.url).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/)
    const remote = await connect(server.url, { token, ca: mine.cert })
    expect(await remote.runs.list()).toEqual([])
    const err = await expectRejection(Database.connect(server.url, { token, ca: other.cert }), ConnectionError, 'CONNECTION')
    expect(err.message).toMatch(/certificate/i)
    // Without a CA at all, the system's roots do not know it either.
    await expectRejection(Database.connect(server.url, { token }), ConnectionError, 'CONNECTION')
    // Plain TCP to a TLS listener gets no handshake.
    await expectRejection(Database.connect(server.url.replace('tls:', 'tcp:'), { token, timeoutMs: 500 }), ConnectionError, 'CONNECTION')
    expect(await remote.runs.list()).toEqual([])
  })

  it('a TLS client that does not read gets no answers past the high-water mark, then every one once it reads', async () => {
    const key = join(dir, 'hw.key')
    const crt = join(dir, 'hw.crt')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', crt], { stdio: 'ignore' })
    const db = openDb()
    const run = db.runs.begin({})
    const big = 'x'.repeat(1 << 20)
    db.kv.put(run, 'big', big)
    const token = 'hw-token-hw-token'
    const server = await serve(db, { listen: '127.0.0.1:0', token, tls: { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') } })
    const { port } = new URL(server.url)
    const tls = await import('node:tls')
    const { Packr, Unpackr } = await import('msgpackr')
    const packr = new Packr({ useRecords: false, moreTypes: true, variableMapSize: true })
    const s = tls.connect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(crt, 'utf8') })
    await new Promise<void>((resolve, reject) => s.once('secureConnect', () => resolve()).once('error', reject))
    s.pause()
    const requests = [lengthPrefixed(packr.pack({ inMem: 1, token }))]
    for (let id = 1; id <= 40; id++) requests.push(lengthPrefixed(packr.pack([id, 'kv.get', [run, 'big'], 0])))
    s.write(Buffer.concat(requests))
    // Not reading: what the owner has written stays near the high-water mark (8 MiB), not 40 MiB.
    let written = 0
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 10))
      written = Math.max(written, db.stats().server?.bytesOut ?? 0)
    }
    expect(written).toBeGreaterThan(0)
    expect(written).toBeLessThan(12 * (1 << 20))
    // Reading: all 40 answers come, in order.
    const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: true })
    let pending = Buffer.alloc(0)
    const answers: unknown[][] = []
    await new Promise<void>((resolve) => {
      s.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk])
        while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32LE(0)) {
          const n = pending.readUInt32LE(0)
          const msg = unpackr.unpack(pending.subarray(4, 4 + n))
          pending = pending.subarray(4 + n)
          if (Array.isArray(msg)) answers.push(msg)
        }
        if (answers.length === 40) resolve()
      })
      s.resume()
    })
    expect(answers.map((a) => a[0])).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    expect(answers.every((a) => a[2] === big)).toBe(true)
    s.destroy()
  })

  it('oversized, truncated, garbage and unfinished frames close only their own connection', async () => {
    const db = openDb()
    const server = await serve(db, { limits: { maxFrameBytes: 1024, frameTimeoutMs: 100, handshakeMs: 200 } })
    const sock = join(dir, 'data', 'in-mem.sock')
    const bystander = await connect(server.url)
    const run = await bystander.runs.begin({})

    // Over the frame limit: refused from its length alone.
    const big = await raw(sock)
    big.write(Buffer.from([0xff, 0xff, 0xff, 0x00]))
    await closed(big)
    // Not MessagePack.
    const garbage = await raw(sock)
    garbage.write(lengthPrefixed(Buffer.from([0xc1, 0xc1, 0xc1])))
    await closed(garbage)
    // A frame that never finishes (a slow or stuck client).
    const slow = await raw(sock)
    slow.write(Buffer.from([10, 0, 0, 0, 1, 2]))
    await closed(slow)
    // A connection that never shakes hands.
    const silent = await raw(sock)
    await closed(silent)
    // Random bytes of every length.
    for (let i = 0; i < 20; i++) {
      const s = await raw(sock)
      const bytes = Buffer.alloc(1 + Math.floor(Math.random() * 64))
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(Math.random() * 256)
      s.end(bytes)
      await closed(s)
    }
    // A valid handshake, then a request of the wrong shape.
    const client = await Database.connect(server.url)
    open.push(client)
    const lost = await expectRejection(client.kv.put(run, 'k', 'x'.repeat(2000)), ConnectionError, 'CONNECTION')
    expect(lost.message).toContain('over the limit of 1024')
    expect(client.isOpen).toBe(false)

    expect(await bystander.kv.put(run, 'still', 'serving')).toBeGreaterThan(0)
    expect(db.stats().server?.dropped).toBeGreaterThanOrEqual(5)
  })

  it('one connection over the limit is refused with LimitError; the others go on', async () => {
    const db = openDb()
    const server = await serve(db, { limits: { maxConnections: 2 } })
    const one = await connect(server.url)
    await connect(server.url)
    await expectRejection(Database.connect(server.url), LimitError, 'LIMIT_EXCEEDED')
    expect(await one.runs.list()).toEqual([])
    await one.close()
    // A place is free again.
    await vi_waitFor(() => (db.stats().server?.connections === 1 ? true : undefined), () => new Promise((r) => setTimeout(r, 5)))
    const three = await connect(server.url)
    expect(await three.runs.list()).toEqual([])
  })

  it('bad serve and connect options are typed errors', async () => {
    const db = openDb()
    await expectRejection(db.serve({ listen: 'nowhere' , token: 'x' }), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(db.serve({ socket: false }), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(db.serve({ tls: { cert: 'c', key: 'k' } }), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(db.serve({ limits: { maxConnections: -1 } }), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(db.serve({ socket: join(dir, 'x'.repeat(120)) }), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(db.serve({ sockett: 'x' } as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    // A socket in a directory that does not exist: typed, not Node's ENOENT.
    await expectRejection(db.serve({ socket: join(dir, 'no-such-dir', 's.sock') }), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(Database.connect('http://x'), InvalidArgumentError, 'INVALID_ARGUMENT')
    await expectRejection(Database.connect('unix:/nonexistent/in-mem.sock'), ConnectionError, 'CONNECTION')
    await expectRejection(Database.connect('unix:/x', { tokn: 'a' } as never), InvalidArgumentError, 'INVALID_ARGUMENT')
    expect(db.stats().server).toBeNull()
    expect(existsSync(join(dir, 'data', 'in-mem.sock'))).toBe(false)
  })
})
