// Fuzzing the frame decoder and the request parser (seeded; SERVER_FUZZ_SEED
// repeats a run, SERVER_FUZZ_CASES sizes it): a byte stream of valid frames
// cut at random points decodes to the same frames; and mutated streams —
// valid frames with flipped bits, cut short, with lengths rewritten, or
// carrying random MessagePack values of any shape as requests — never take
// the server down, never answer a request that was not whole, and leave it
// serving a bystander, with every bad connection closed and counted.
import net from 'node:net'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database, type RemoteDatabase, type Server } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const nodeRequire = createRequire(__filename)
const protocol = nodeRequire('../dist/server/protocol.js') as {
  FrameReader: new (max: number) => { push(b: Buffer): Buffer[]; pending: number }
  frame(m: unknown): Buffer
  unpack(b: Buffer): unknown
}

const SEED = Number(process.env.SERVER_FUZZ_SEED ?? Date.now() % 1_000_000)
const CASES = Number(process.env.SERVER_FUZZ_CASES ?? 400)

/** mulberry32: a small seeded generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomValue(r: () => number, depth = 0): unknown {
  const pick = Math.floor(r() * (depth > 2 ? 6 : 9))
  switch (pick) {
    case 0: return null
    case 1: return r() < 0.5
    case 2: return Math.floor(r() * 2 ** 40) - 2 ** 39
    case 3: return r() * 1e6
    case 4: return 'k'.repeat(Math.floor(r() * 20))
    case 5: return BigInt(Math.floor(r() * 1e9)) * 1_000_000_000n
    case 6: return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1))
    case 7: return Object.fromEntries(Array.from({ length: Math.floor(r() * 4) }, (_, i) => [`f${i}`, randomValue(r, depth + 1)]))
    default: return Buffer.from(Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * 256)))
  }
}

const OPS = ['kv.put', 'kv.get', 'runs.begin', 'runs.list', 'tx.begin', 'tx.commit', 'replay', 'view.close', 'watch', 'unwatch', 'stats', 'nope', 'kv.constructor', 'runs.__proto__', 'kv.toString']

function randomRequest(r: () => number, id: number): unknown {
  const shapes = [
    () => [id, OPS[Math.floor(r() * OPS.length)], Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r)), r() < 0.7 ? 0 : [1 + Math.floor(r() * 3), randomValue(r)]],
    () => [id, randomValue(r), randomValue(r), randomValue(r)],
    () => randomValue(r),
    () => [id, 'kv.get'],
  ]
  return shapes[Math.floor(r() * shapes.length)]()
}

describe(`frame fuzzing (seed ${SEED})`, () => {
  let dir: string
  let db: Database
  let server: Server
  let bystander: RemoteDatabase
  let run: string

  beforeAll(async () => {
    dir = makeTmpDir()
    db = Database.open()
    server = await db.serve({ socket: join(dir, 'fuzz.sock'), limits: { maxFrameBytes: 4096, frameTimeoutMs: 200, handshakeMs: 500 } })
    bystander = await Database.connect(server.url)
    run = await bystander.runs.begin({ name: 'bystander' })
  })
  afterAll(async () => {
    await bystander?.close()
    await server?.close()
    db?.close()
    removeDir(dir)
  })

  it('a stream cut anywhere decodes to the same frames', () => {
    const r = rng(SEED)
    for (let c = 0; c < CASES; c++) {
      const messages = Array.from({ length: 1 + Math.floor(r() * 6) }, (_, i) => randomRequest(r, i + 1))
      const stream = Buffer.concat(messages.map((m) => protocol.frame(m)))
      const reader = new protocol.FrameReader(1 << 20)
      const out: unknown[] = []
      let at = 0
      while (at < stream.length) {
        const n = 1 + Math.floor(r() * 12)
        for (const body of reader.push(stream.subarray(at, at + n))) out.push(protocol.unpack(body))
        at += n
      }
      expect(reader.pending).toBe(0)
      expect(out).toEqual(messages)
    }
  })

  it('mutated streams never take the server down, and it goes on serving', async () => {
    const r = rng(SEED + 1)
    const hello = protocol.frame({ inMem: 1 })
    let answered = 0
    for (let c = 0; c < CASES; c++) {
      const frames = Array.from({ length: 1 + Math.floor(r() * 4) }, (_, i) => protocol.frame(randomRequest(r, i + 1)))
      let stream = Buffer.concat([r() < 0.8 ? hello : Buffer.alloc(0), ...frames])
      const mutation = Math.floor(r() * 5)
      if (mutation === 0 && stream.length > 0) {
        stream = Buffer.from(stream)
        for (let k = 0; k < 1 + Math.floor(r() * 4); k++) stream[Math.floor(r() * stream.length)] ^= 1 << Math.floor(r() * 8)
      } else if (mutation === 1) {
        stream = stream.subarray(0, Math.floor(r() * stream.length))
      } else if (mutation === 2 && stream.length >= 4) {
        stream = Buffer.from(stream)
        stream.writeUInt32LE(Math.floor(r() * 2 ** 32), Math.floor(r() * (stream.length - 3)))
      } else if (mutation === 3) {
        stream = Buffer.concat([stream, Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)))])
      }
      const sock = net.connect(join(dir, 'fuzz.sock'))
      const got: Buffer[] = []
      sock.on('data', (b: Buffer) => got.push(b))
      sock.on('error', () => {})
      await new Promise<void>((resolve) => sock.once('connect', () => resolve()))
      sock.end(stream)
      await new Promise<void>((resolve) => sock.once('close', () => resolve()))
      // Whatever came back is whole frames of the protocol.
      const reader = new protocol.FrameReader(1 << 24)
      const bodies = reader.push(Buffer.concat(got))
      expect(reader.pending).toBe(0)
      for (const body of bodies) {
        const msg = protocol.unpack(body)
        if (Array.isArray(msg)) answered++
        else expect(msg).toMatchObject({ inMem: 1 })
      }
      if (c % 25 === 0) expect(await bystander.kv.put(run, `c${c}`, c)).toBeGreaterThan(0)
    }
    expect(answered).toBeGreaterThan(0)
    expect(await bystander.kv.get(run, 'c0')).toBe(0)
    const stats = db.stats().server
    // Every fuzzing connection is gone; only the bystander's is open.
    for (let i = 0; i < 100 && db.stats().server?.connections !== 1; i++) await bystander.runs.list()
    expect(db.stats().server?.connections).toBe(1)
    expect(stats?.accepted).toBeGreaterThanOrEqual(CASES)
    expect(db.stats().activeSnapshots).toBe(0)
  })
})
