import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database, InvalidArgumentError, type ListOptions, type NotPromise, type PutOptions, type Value, type Versioned } from '../dist/index.js'
import { expectError, sleep } from './helpers.js'

/** The KV methods without the run argument: what a scope and `tx.kv` offer. */
interface BoundKv {
  put(key: string, value: Value, opts?: PutOptions): number | void
  get(key: string): Value | undefined
  getVersioned(key: string): Versioned | undefined
  delete(key: string): boolean
  exists(key: string): boolean
  getMany(keys: readonly string[]): (Value | undefined)[]
  putMany(entries: Iterable<readonly [string, Value]> | Record<string, Value>, opts?: PutOptions): number | void
  list(opts?: ListOptions): string[]
  entries(opts?: ListOptions): [string, Value][]
  count(opts?: Pick<ListOptions, 'prefix'>): number
}

/** `db.kv` with its run argument bound, to run one battery on every surface. */
function bindDbKv(db: Database, run: string): BoundKv {
  return {
    put: (k, v, o) => db.kv.put(run, k, v, o),
    get: (k) => db.kv.get(run, k),
    getVersioned: (k) => db.kv.getVersioned(run, k),
    delete: (k) => db.kv.delete(run, k),
    exists: (k) => db.kv.exists(run, k),
    getMany: (ks) => db.kv.getMany(run, ks),
    putMany: (e, o) => db.kv.putMany(run, e, o),
    list: (o) => db.kv.list(run, o),
    entries: (o) => db.kv.entries(run, o),
    count: (o) => db.kv.count(run, o),
  }
}

interface Surface {
  name: string
  /** Whether writes return their commit version (false inside a transaction). */
  returnsVersion: boolean
  /** Runs `fn` against this surface (inside one transaction for tx.kv). */
  use<T>(db: Database, run: string, fn: (kv: BoundKv) => T): T
}

const surfaces: Surface[] = [
  { name: 'db.kv', returnsVersion: true, use: (db, run, fn) => fn(bindDbKv(db, run)) },
  { name: 'db.scope(run).kv', returnsVersion: true, use: (db, run, fn) => fn(db.scope(run).kv) },
  { name: 'tx.kv in db.transaction', returnsVersion: false, use: (db, run, fn) => db.transaction(run, (tx) => fn(tx.kv) as NotPromise<ReturnType<typeof fn>>) },
]

const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))

let db: Database
let run: string

beforeEach(() => {
  db = Database.open()
  run = db.runs.begin({ name: 'kv-test' })
})

afterEach(() => {
  db.close()
})

for (const surface of surfaces) {
  describe(`KV on ${surface.name}`, () => {
    it('put then get returns the value; put overwrites', () => {
      surface.use(db, run, (kv) => {
        const r = kv.put('greeting', 'hello')
        if (surface.returnsVersion) expect(typeof r).toBe('number')
        else expect(r).toBeUndefined()
        expect(kv.get('greeting')).toBe('hello')
        kv.put('greeting', { text: 'hi', n: 2 })
        expect(kv.get('greeting')).toEqual({ text: 'hi', n: 2 })
      })
      expect(db.kv.get(run, 'greeting')).toEqual({ text: 'hi', n: 2 })
    })

    it('get of an absent key is undefined, exists is false', () => {
      surface.use(db, run, (kv) => {
        expect(kv.get('nope')).toBeUndefined()
        expect(kv.getVersioned('nope')).toBeUndefined()
        expect(kv.exists('nope')).toBe(false)
      })
    })

    it('put returns rising commit versions that getVersioned reports', () => {
      const before = db.stats().version
      surface.use(db, run, (kv) => {
        const v1 = kv.put('a', 1)
        const v2 = kv.put('b', 2)
        const va = kv.getVersioned('a')!
        const vb = kv.getVersioned('b')!
        expect(va.value).toBe(1)
        expect(vb.value).toBe(2)
        expect(Number.isInteger(va.updatedAt)).toBe(true)
        expect(Math.abs(va.updatedAt - Date.now())).toBeLessThan(60_000)
        if (surface.returnsVersion) {
          expect(v1).toBe(before + 1)
          expect(v2).toBe(before + 2)
          expect(va.version).toBe(v1)
          expect(vb.version).toBe(v2)
        } else {
          // Inside a transaction its own writes report the snapshot version + 1.
          expect(va.version).toBe(before + 1)
          expect(vb.version).toBe(before + 1)
        }
      })
      const after = db.stats().version
      expect(after).toBe(surface.returnsVersion ? before + 2 : before + 1)
      expect(db.kv.getVersioned(run, 'b')!.version).toBe(after)
    })

    it('delete returns whether a live value was there and removes it', () => {
      db.kv.put(run, 'gone', 'x')
      surface.use(db, run, (kv) => {
        expect(kv.exists('gone')).toBe(true)
        expect(kv.delete('gone')).toBe(true)
        expect(kv.exists('gone')).toBe(false)
        expect(kv.get('gone')).toBeUndefined()
        expect(kv.delete('gone')).toBe(false)
        expect(kv.delete('never-there')).toBe(false)
      })
      expect(db.kv.get(run, 'gone')).toBeUndefined()
      expect(db.kv.count(run)).toBe(0)
    })

    it('getMany returns values in the order asked, undefined where absent', () => {
      surface.use(db, run, (kv) => {
        kv.put('x', 1)
        kv.put('y', 'two')
        expect(kv.getMany(['y', 'missing', 'x', 'y'])).toEqual(['two', undefined, 1, 'two'])
        expect(kv.getMany([])).toEqual([])
      })
    })

    it('putMany writes every entry, from pairs or from a record; the last duplicate wins', () => {
      const before = db.stats().version
      surface.use(db, run, (kv) => {
        const v = kv.putMany([
          ['p1', 1],
          ['p2', { deep: [true] }],
          ['p1', 'last'],
        ])
        if (surface.returnsVersion) {
          expect(v).toBe(before + 1)
          expect(kv.getVersioned('p1')!.version).toBe(v)
          expect(kv.getVersioned('p2')!.version).toBe(v)
        }
        kv.putMany({ r1: null, r2: 2n })
        expect(kv.getMany(['p1', 'p2', 'r1', 'r2'])).toEqual(['last', { deep: [true] }, null, 2n])
      })
      expect(db.kv.list(run)).toEqual(['p1', 'p2', 'r1', 'r2'])
      expect(db.kv.get(run, 'p1')).toBe('last')
    })

    it('list returns keys in UTF-8 byte order', () => {
      const keys = ['b', 'a', 'é', 'Z', '😀', '\uffee', 'a/b', 'a0', '~']
      surface.use(db, run, (kv) => {
        for (const k of keys) kv.put(k, k)
        expect(kv.list()).toEqual([...keys].sort(utf8Order))
        expect(kv.list({ reverse: true })).toEqual([...keys].sort(utf8Order).reverse())
      })
    })

    it('list pages with prefix, after, limit and reverse', () => {
      const aKeys = Array.from({ length: 20 }, (_, i) => `a${String(i).padStart(2, '0')}`)
      const bKeys = Array.from({ length: 5 }, (_, i) => `b${i}`)
      surface.use(db, run, (kv) => {
        for (const k of [...bKeys, ...aKeys].reverse()) kv.put(k, k.toUpperCase())
        expect(kv.list()).toEqual([...aKeys, ...bKeys])
        expect(kv.list({ prefix: 'a' })).toEqual(aKeys)
        expect(kv.list({ prefix: 'b' })).toEqual(bKeys)
        expect(kv.list({ prefix: 'a1' })).toEqual(aKeys.slice(10, 20))
        expect(kv.list({ prefix: 'zz' })).toEqual([])
        expect(kv.list({ limit: 0 })).toEqual([])
        expect(kv.list({ prefix: 'a', limit: 3 })).toEqual(['a00', 'a01', 'a02'])
        expect(kv.list({ after: 'a18' })).toEqual(['a19', ...bKeys])
        expect(kv.list({ after: 'a185' })).toEqual(['a19', ...bKeys]) // a cursor need not exist
        expect(kv.list({ prefix: 'a', after: 'a18' })).toEqual(['a19'])
        expect(kv.list({ prefix: 'a', reverse: true, limit: 2 })).toEqual(['a19', 'a18'])
        expect(kv.list({ prefix: 'a', reverse: true, after: 'a02' })).toEqual(['a01', 'a00'])

        // Forward paging collects every key exactly once, in order.
        const forward: string[] = []
        let cursor: string | undefined
        for (;;) {
          const page = kv.list({ prefix: 'a', after: cursor, limit: 7 })
          if (page.length === 0) break
          expect(page.length).toBeLessThanOrEqual(7)
          forward.push(...page)
          cursor = page[page.length - 1]
        }
        expect(forward).toEqual(aKeys)

        // Reverse paging too.
        const backward: string[] = []
        cursor = undefined
        for (;;) {
          const page = kv.list({ reverse: true, after: cursor, limit: 4 })
          if (page.length === 0) break
          backward.push(...page)
          cursor = page[page.length - 1]
        }
        expect(backward).toEqual([...aKeys, ...bKeys].reverse())
      })
    })

    it('entries pages like list and carries the values', () => {
      surface.use(db, run, (kv) => {
        kv.put('e1', 1)
        kv.put('e2', [2, 'two'])
        kv.put('e3', { three: 3n })
        kv.put('f1', new Uint8Array([1, 2, 3]))
        expect(kv.entries({ prefix: 'e' })).toEqual([
          ['e1', 1],
          ['e2', [2, 'two']],
          ['e3', { three: 3n }],
        ])
        expect(kv.entries({ prefix: 'e', after: 'e1', limit: 1 })).toEqual([['e2', [2, 'two']]])
        expect(kv.entries({ reverse: true, limit: 2 }).map(([k]) => k)).toEqual(['f1', 'e3'])
        const [[key, bytes]] = kv.entries({ prefix: 'f' })
        expect(key).toBe('f1')
        expect(bytes).toBeInstanceOf(Uint8Array)
        expect([...(bytes as Uint8Array)]).toEqual([1, 2, 3])
      })
    })

    it('count counts live keys, optionally under a prefix', () => {
      surface.use(db, run, (kv) => {
        expect(kv.count()).toBe(0)
        kv.putMany([
          ['user:1', 1],
          ['user:2', 2],
          ['task:1', 3],
        ])
        expect(kv.count()).toBe(3)
        expect(kv.count({ prefix: 'user:' })).toBe(2)
        expect(kv.count({ prefix: 'nobody' })).toBe(0)
        kv.delete('user:1')
        expect(kv.count()).toBe(2)
        expect(kv.count({ prefix: 'user:' })).toBe(1)
      })
    })

    it('keys of one run are invisible to another run', () => {
      const other = db.runs.begin({ name: 'other' })
      db.kv.put(other, 'shared-name', 'other run')
      surface.use(db, run, (kv) => {
        expect(kv.get('shared-name')).toBeUndefined()
        kv.put('shared-name', 'this run')
        expect(kv.list()).toEqual(['shared-name'])
      })
      expect(db.kv.get(other, 'shared-name')).toBe('other run')
      expect(db.kv.get(run, 'shared-name')).toBe('this run')
      expect(db.kv.count(other)).toBe(1)
    })

    it('a 1024-byte key and a 1 MiB value round-trip (the I/O buffer grows)', () => {
      const key = 'k'.repeat(1024)
      const big = Buffer.alloc(1024 * 1024)
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff
      const text = 'ü'.repeat(300_000)
      surface.use(db, run, (kv) => {
        kv.put(key, big)
        kv.put('text', text)
        const got = kv.get(key) as Uint8Array
        expect(got).toBeInstanceOf(Uint8Array)
        expect(Buffer.compare(Buffer.from(got), big)).toBe(0)
        expect(kv.getVersioned('text')!.value).toBe(text)
        expect(kv.list()).toEqual([key, 'text'].sort(utf8Order))
      })
      expect(Buffer.compare(Buffer.from(db.kv.get(run, key) as Uint8Array), big)).toBe(0)
      expect(db.kv.get(run, 'text')).toBe(text)
    })

    it('ttlMs hides a key from get, getVersioned, exists, getMany, list, entries and count once expired', async () => {
      // Taken before the puts, so that "less than 20 ms since putAt" is surely before expiry.
      const putAt = Date.now()
      surface.use(db, run, (kv) => {
        kv.put('short', 'soon gone', { ttlMs: 30 })
        kv.put('long', 'stays', { ttlMs: 600_000 })
        kv.put('plain', 'stays too')
        kv.putMany([['short-many', 1]], { ttlMs: 30 })
      })
      const check = (kv: BoundKv) => {
        // Before expiry (only asserted while we are surely before it).
        if (Date.now() - putAt < 20) {
          expect(kv.get('short')).toBe('soon gone')
          expect(kv.count()).toBe(4)
        }
        expect(kv.get('long')).toBe('stays')
      }
      surface.use(db, run, check)
      await sleep(60)
      surface.use(db, run, (kv) => {
        expect(kv.get('short')).toBeUndefined()
        expect(kv.getVersioned('short')).toBeUndefined()
        expect(kv.exists('short')).toBe(false)
        expect(kv.get('short-many')).toBeUndefined()
        expect(kv.getMany(['short', 'long', 'short-many'])).toEqual([undefined, 'stays', undefined])
        expect(kv.list()).toEqual(['long', 'plain'])
        expect(kv.entries()).toEqual([
          ['long', 'stays'],
          ['plain', 'stays too'],
        ])
        expect(kv.count()).toBe(2)
        expect(kv.count({ prefix: 'short' })).toBe(0)
        expect(kv.delete('short')).toBe(false)
        expect(kv.get('long')).toBe('stays')
      })
    })

    it('a put without ttlMs over an expiring key makes it permanent', async () => {
      surface.use(db, run, (kv) => {
        kv.put('k', 'expiring', { ttlMs: 30 })
        kv.put('k', 'permanent')
      })
      await sleep(60)
      surface.use(db, run, (kv) => {
        expect(kv.get('k')).toBe('permanent')
        expect(kv.count()).toBe(1)
      })
    })

    it('rejects a bad ttlMs without writing', () => {
      const before = db.stats().version
      for (const ttlMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
        expectError(() => surface.use(db, run, (kv) => kv.put('t', 1, { ttlMs })), InvalidArgumentError, 'INVALID_ARGUMENT')
      }
      expect(db.stats().version).toBe(before)
      expect(db.kv.exists(run, 't')).toBe(false)
    })

    it('rejects bad list options', () => {
      surface.use(db, run, (kv) => {
        expectError(() => kv.list({ limit: -1 }), InvalidArgumentError, 'INVALID_ARGUMENT')
        expectError(() => kv.list({ limit: 1.5 }), InvalidArgumentError, 'INVALID_ARGUMENT')
        expectError(() => kv.list({ prefix: 3 as unknown as string }), InvalidArgumentError, 'INVALID_ARGUMENT')
        expectError(() => kv.entries({ after: {} as unknown as string }), InvalidArgumentError, 'INVALID_ARGUMENT')
        expectError(() => kv.list({ reverse: 'yes' as unknown as boolean }), InvalidArgumentError, 'INVALID_ARGUMENT')
      })
    })
  })
}

describe('KV inside transactions', () => {
  it('reads its own writes and deletes before commit; others see nothing until commit', () => {
    db.kv.put(run, 'old', 'o')
    const result = db.transaction(run, (tx) => {
      tx.kv.put('new', 'n')
      expect(tx.kv.delete('old')).toBe(true)
      expect(tx.kv.get('new')).toBe('n')
      expect(tx.kv.get('old')).toBeUndefined()
      expect(tx.kv.list()).toEqual(['new'])
      expect(tx.kv.count()).toBe(1)
      // Not visible outside yet.
      expect(db.kv.get(run, 'new')).toBeUndefined()
      expect(db.kv.get(run, 'old')).toBe('o')
      return 'done'
    })
    expect(result).toBe('done')
    expect(db.kv.get(run, 'new')).toBe('n')
    expect(db.kv.exists(run, 'old')).toBe(false)
  })

  it('reads from the snapshot it began at (snapshot isolation)', () => {
    db.kv.put(run, 'x', 1)
    db.transaction(run, (tx) => {
      expect(tx.kv.get('y')).toBeUndefined()
      db.kv.put(run, 'x', 2) // committed after the snapshot
      db.kv.put(run, 'y', 'late')
      expect(tx.kv.get('x')).toBe(1)
      expect(tx.kv.list()).toEqual(['x'])
      expect(tx.kv.count()).toBe(1)
    })
    expect(db.kv.get(run, 'x')).toBe(2)
  })

  it('commits all writes as one version', () => {
    const before = db.stats().version
    db.transaction(run, (tx) => {
      tx.kv.put('a', 1)
      tx.kv.put('b', 2)
      tx.kv.putMany([['c', 3]])
    })
    expect(db.stats().version).toBe(before + 1)
    for (const k of ['a', 'b', 'c']) expect(db.kv.getVersioned(run, k)!.version).toBe(before + 1)
  })

  it('a read-only transaction commits nothing and bumps no version', () => {
    db.kv.put(run, 'r', 1)
    const before = db.stats().version
    const got = db.transaction(run, (tx) => [tx.kv.get('r'), tx.kv.list(), tx.kv.count(), tx.kv.delete('absent')])
    expect(got).toEqual([1, ['r'], 1, false])
    expect(db.stats().version).toBe(before)
  })

  it('transactionAsync commits writes made across awaits', async () => {
    const out = await db.transactionAsync(run, async (tx) => {
      tx.kv.put('a1', 1)
      await sleep(1)
      tx.kv.put('a2', 2)
      return tx.kv.count()
    })
    expect(out).toBe(2)
    expect(db.kv.getMany(run, ['a1', 'a2'])).toEqual([1, 2])
  })

  it('values larger than the I/O buffer go in and come back inside a transaction (its hot calls grow the buffer)', () => {
    const big = 'b'.repeat(1 << 20)
    const bytes = new Uint8Array(1 << 20).map((_, i) => i % 251)
    db.transaction(run, (tx) => {
      tx.kv.put('big', big)
      tx.kv.put('bytes', bytes)
      tx.kv.put('small', 1)
      expect(tx.kv.get('big')).toBe(big)
      expect(Buffer.from(tx.kv.get('bytes') as Uint8Array).equals(bytes)).toBe(true)
      expect(tx.kv.getVersioned('small')?.value).toBe(1)
    })
    expect(db.kv.get(run, 'big')).toBe(big)
    expect(Buffer.from(db.kv.get(run, 'bytes') as Uint8Array).equals(bytes)).toBe(true)
    expect(db.transaction(run, (tx) => [tx.kv.get('big') === big, tx.kv.get('small')])).toEqual([true, 1])
  })

  it("a transaction's raw native calls refuse a receiver that is not a native transaction, and a finished one", async () => {
    const { TX, NativeDatabase } = await import('../dist/native.js')
    const native = NativeDatabase.open(null, null)
    try {
      for (const receiver of [{}, native, null, undefined, Object.create(null)]) {
        expect(() => TX.commit.call(receiver as never, 0)).toThrow()
        expect(() => TX.restart.call(receiver as never)).toThrow()
        expect(() => TX.kvPut.call(receiver as never, 0, 0, -1)).toThrow()
        expect(() => TX.kvGet.call(receiver as never, 0, 0)).toThrow()
      }
      const tx = native.beginTransaction()
      expect(TX.commit.call(tx, 0)).toBe(-1) // read-only: nothing to commit
      expect(() => TX.commit.call(tx, 0)).toThrow(/already finished/)
      expect(() => TX.kvGet.call(tx, 0, 0)).toThrow() // (no I/O buffer registered on this bare handle, and finished)
      TX.restart.call(tx)
      expect(() => TX.restart.call(tx)).toThrow(/still open/)
    } finally {
      native.close()
    }
  })

  it('a TTL put inside a transaction expires like one outside', async () => {
    db.transaction(run, (tx) => tx.kv.put('t', 'x', { ttlMs: 30 }))
    await sleep(60)
    expect(db.kv.get(run, 't')).toBeUndefined()
    expect(db.transaction(run, (tx) => tx.kv.exists('t'))).toBe(false)
  })
})

describe('KV misc', () => {
  it('values written into the I/O buffer: every size across its growth, strings, bytes and objects, in and out of transactions, each read back whole after the next write', () => {
    // Sizes below, at and far above the first value area (60 KiB), strings
    // whose UTF-8 is 1 to 3 bytes a character, short ones through msgpackr
    // and long ones written directly, some after the area grows.
    const values: Value[] = []
    for (const n of [1, 100, 20_000, 61_000, 100_000, 400_000]) {
      values.push('a'.repeat(n), 'é'.repeat(n), '漢'.repeat(n))
      const b = Buffer.alloc(n) // bytes come back as a Buffer
      for (let i = 0; i < n; i++) b[i] = (i * 7 + n) & 0xff
      values.push(b, { n, text: 'x'.repeat(n), list: [n, 'y'] })
    }
    values.push(1, 'small again', { after: 'the large ones' })
    const written = new Map<string, Value>()
    values.forEach((v, i) => {
      const key = `v${i}`
      if (i % 3 === 0) db.transaction(run, (tx) => tx.kv.put(key, v))
      else db.kv.put(run, key, v)
      written.set(key, v)
      // Every earlier value is still whole: nothing aliases the buffer.
      if (i % 4 === 0) for (const [k, w] of written) expect(db.kv.get(run, k)).toEqual(w)
      // state.set packs the same way.
      expect(db.state.set(run, key, v)).toBe(1)
      expect(db.state.get(run, key)?.value).toEqual(v)
    })
    for (const [k, w] of written) expect(db.kv.get(run, k)).toEqual(w)
  })

  it('strings and byte arrays of 256 bytes or more, which reads hand over whole (not through the I/O buffer), come back exact at every header edge, from every read', () => {
    // UTF-8 lengths just below and at 256 (str8 → str16), at 65,535 and
    // 65,536 (str16 → str32), with 1- to 4-byte characters, a leading BOM
    // and a NUL inside; byte arrays at the same edges (bin8/16/32).
    const strings = [
      'a'.repeat(255), 'a'.repeat(256), 'é'.repeat(127) + 'a', 'é'.repeat(128), '漢'.repeat(86), '🎉'.repeat(64),
      '\uFEFF' + 'z'.repeat(300), 'nul\u0000inside'.repeat(40), 'b'.repeat(65_535), 'b'.repeat(65_536), '漢'.repeat(21_846), '🎉'.repeat(30_000),
    ]
    const bytes = [255, 256, 65_535, 65_536, 200_000].map((n) => {
      const b = Buffer.alloc(n)
      for (let i = 0; i < n; i++) b[i] = (i * 13 + n) & 0xff
      return b
    })
    const values: Value[] = [...strings, ...bytes]
    values.forEach((v, i) => {
      const key = `d${i}`
      db.kv.put(run, key, v)
      db.state.set(run, key, v)
      const reads: [string, Value | undefined][] = [
        ['kv.get', db.kv.get(run, key)],
        ['kv.getVersioned', db.kv.getVersioned(run, key)?.value],
        ['state.get', db.state.get(run, key)?.value],
        ['scope kv.get', db.scope(run).kv.get(key)],
        ['tx.kv.get', db.transaction(run, (tx) => tx.kv.get(key))],
        ['tx.kv.getVersioned', db.transaction(run, (tx) => tx.kv.getVersioned(key)?.value)],
        // A transaction's own write, read back before its commit.
        ['tx.kv.get of its own write', db.transaction(run, (tx) => { tx.kv.put(`own${i}`, v); return tx.kv.get(`own${i}`) })],
      ]
      for (const [what, got] of reads) {
        if (typeof v === 'string') {
          expect(typeof got, `${what} of string ${i}`).toBe('string')
          expect(got === v, `${what} of string ${i} (length ${v.length})`).toBe(true)
        } else {
          expect(Buffer.isBuffer(got), `${what} of bytes ${i}`).toBe(true)
          expect(Buffer.compare(got as Buffer, v as Buffer), `${what} of bytes ${i}`).toBe(0)
        }
      }
      const versioned = db.kv.getVersioned(run, key)!
      expect(versioned.version).toBe(db.kv.getVersioned(run, key)!.version)
      expect(versioned.updatedAt).toBeGreaterThan(0)
      expect(db.state.get(run, key)!.version).toBe(1)
      if (typeof v !== 'string') {
        // Each read is the caller's own copy.
        const a = db.kv.get(run, key) as Buffer
        a[0] ^= 0xff
        expect((db.kv.get(run, key) as Buffer)[0]).toBe((v as Buffer)[0])
      }
    })
    expect(db.kv.get(run, 'absent')).toBeUndefined()
    expect(db.kv.getVersioned(run, 'absent')).toBeUndefined()
    expect(db.state.get(run, 'absent')).toBeUndefined()
  })

  it('putMany takes a Map and a generator of pairs', () => {
    db.kv.putMany(run, new Map<string, Value>([['m1', 1], ['m2', 'two']]))
    function* pairs(): Generator<[string, Value]> {
      yield ['g1', true]
      yield ['g2', [1]]
    }
    db.transaction(run, (tx) => tx.kv.putMany(pairs()))
    expect(db.kv.entries(run)).toEqual([
      ['g1', true],
      ['g2', [1]],
      ['m1', 1],
      ['m2', 'two'],
    ])
  })

  it('putMany with no entries writes nothing', () => {
    const before = db.stats().version
    db.kv.putMany(run, [])
    db.kv.putMany(run, {})
    expect(db.stats().version).toBe(before)
    expect(db.kv.count(run)).toBe(0)
  })

  it('scope exposes its run and writes to it', () => {
    const scope = db.scope(run)
    expect(scope.run).toBe(run)
    scope.kv.put('via-scope', true)
    expect(db.kv.get(run, 'via-scope')).toBe(true)
  })

  it('expired keys are retired from the expiry index in the background, and stay in the run history (issue 11: TTL keeps history)', async () => {
    const fast = Database.open({ purgeIntervalMs: 5 })
    try {
      const r = fast.runs.begin()
      const keysBefore = fast.stats().keys
      const v = fast.kv.put(r, 'p', 'x', { ttlMs: 10 })
      fast.kv.put(r, 'q', 'kept')
      expect(fast.stats().keys).toBe(keysBefore + 2)
      const deadline = Date.now() + 5_000
      while (fast.stats().maintenance.expired < 1 && Date.now() < deadline) await sleep(10)
      expect(fast.stats().maintenance.expired).toBe(1)
      expect(fast.kv.get(r, 'q')).toBe('kept')
      expect(fast.kv.get(r, 'p')).toBeUndefined()
      // Its version is still in the run's history: a replay before the expiry shows it.
      expect(fast.stats().keys).toBe(keysBefore + 2)
      const view = fast.replay(r, { at: v })
      expect(view.kv.get('p')).toBe('x')
      view.close()
    } finally {
      fast.close()
    }
  })
})

describe('value codec: exact round trip', () => {
  const cases: [string, Value][] = [
    ['zero', 0],
    ['small ints', [1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536]],
    ['32-bit edges', [2 ** 31 - 1, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1]],
    ['large integer numbers', [2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, 2 ** 64, 1e21]],
    ['floats', [1.5, -0.1, 0.1 + 0.2, 1e-300, Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, Math.PI, Math.fround(1.1)]],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['bigints', [0n, 1n, -1n, 5n, 2n ** 40n, 2n ** 63n - 1n, -(2n ** 63n)]],
    ['i64 max', 9223372036854775807n],
    ['i64 min', -9223372036854775808n],
    ['empty string', ''],
    ['ascii', 'hello world'],
    ['unicode', 'héllo wörld ñ 中文 العربية'],
    ['emoji', '😀👩‍👩‍👧‍👦🏳️‍🌈'],
    ['string with NUL and controls', 'a\u0000b\n\t\u007f'],
    ['long string', 'x'.repeat(100_000)],
    ['null', null],
    ['true', true],
    ['false', false],
    ['empty array', []],
    ['empty object', {}],
    ['nested', { a: [1, { b: [null, [true, 'x', { c: 2n }]] }], d: { e: { f: 1.25 } } }],
    ['mixed array', [1, 'two', 3.5, null, false, 4n, [], {}]],
  ]

  for (const [name, value] of cases) {
    it(`round-trips ${name}`, () => {
      db.kv.put(run, 'v', value)
      const got = db.kv.get(run, 'v')
      if (typeof value === 'number') expect(Object.is(got, value) || (Number.isNaN(value) && Number.isNaN(got))).toBe(true)
      expect(got).toStrictEqual(value)
      expect(db.kv.getVersioned(run, 'v')!.value).toStrictEqual(value)
      expect(db.kv.entries(run)).toStrictEqual([['v', value]])
      expect(db.transaction(run, (tx) => tx.kv.get('v'))).toStrictEqual(value)
    })
  }

  it('keeps number vs bigint: integers stay numbers, bigints stay bigints', () => {
    db.kv.put(run, 'n', [2 ** 40, 2n ** 40n, 7, 7n])
    const [a, b, c, d] = db.kv.get(run, 'n') as [number, bigint, number, bigint]
    expect(typeof a).toBe('number')
    expect(a).toBe(2 ** 40)
    expect(typeof b).toBe('bigint')
    expect(b).toBe(2n ** 40n)
    expect(typeof c).toBe('number')
    expect(typeof d).toBe('bigint')
  })

  it('NaN and infinities survive inside containers', () => {
    db.kv.put(run, 'f', { nan: Number.NaN, inf: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY] })
    const got = db.kv.get(run, 'f') as { nan: number; inf: number[] }
    expect(Number.isNaN(got.nan)).toBe(true)
    expect(got.inf).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
  })

  it('Uint8Array and Buffer come back as bytes with the same content', () => {
    const u8 = new Uint8Array([0, 1, 2, 254, 255])
    const buf = Buffer.from('bytes, not a string', 'utf8')
    const empty = new Uint8Array(0)
    db.kv.put(run, 'bytes', { u8, buf, empty, list: [u8] })
    const got = db.kv.get(run, 'bytes') as { u8: Uint8Array; buf: Uint8Array; empty: Uint8Array; list: Uint8Array[] }
    for (const [actual, expected] of [
      [got.u8, u8],
      [got.buf, buf],
      [got.empty, empty],
      [got.list[0], u8],
    ] as const) {
      expect(actual).toBeInstanceOf(Uint8Array)
      expect(typeof actual).not.toBe('string')
      expect(Array.from(actual)).toEqual(Array.from(expected))
    }
    // A byte value does not alias the buffer it was read from.
    const again = db.kv.get(run, 'bytes') as { u8: Uint8Array }
    again.u8[0] = 99
    expect((db.kv.get(run, 'bytes') as { u8: Uint8Array }).u8[0]).toBe(0)
  })

  it('keeps object key order', () => {
    const value = { zebra: 1, apple: 2, mango: { y: 1, b: 2, a: 3 }, '': 'empty key', 'with space': true }
    db.kv.put(run, 'o', value)
    const got = db.kv.get(run, 'o') as Record<string, Value>
    expect(Object.keys(got)).toEqual(['zebra', 'apple', 'mango', '', 'with space'])
    expect(Object.keys(got.mango as object)).toEqual(['y', 'b', 'a'])
    expect(got).toStrictEqual(value)
  })

  it('a null-prototype object is stored as a plain object', () => {
    const o = Object.create(null) as Record<string, Value>
    o.b = 1
    o.a = 2
    db.kv.put(run, 'np', o)
    const got = db.kv.get(run, 'np') as Record<string, Value>
    expect(Object.keys(got)).toEqual(['b', 'a'])
    expect(got.b).toBe(1)
    expect(got.a).toBe(2)
  })

  it('nesting of exactly 128 levels is accepted', () => {
    let v: Value = 'leaf'
    for (let i = 0; i < 128; i++) v = i % 2 === 0 ? [v] : { n: v }
    db.kv.put(run, 'deep', v)
    let got = db.kv.get(run, 'deep')
    let depth = 0
    while (typeof got === 'object' && got !== null) {
      got = Array.isArray(got) ? got[0] : (got as Record<string, Value>).n
      depth++
    }
    expect(depth).toBe(128)
    expect(got).toBe('leaf')
  })

  it('the same value read twice is equal but not the same object', () => {
    db.kv.put(run, 'obj', { a: [1] })
    const first = db.kv.get(run, 'obj') as { a: number[] }
    first.a.push(2)
    expect(db.kv.get(run, 'obj')).toEqual({ a: [1] })
  })
})

describe('KV purge and overwrite', () => {
  it('the background purge does not remove a key that was overwritten without a TTL', async () => {
    const fast = Database.open({ purgeIntervalMs: 5 })
    try {
      const r = fast.runs.begin()
      fast.kv.put(r, 'k', 'expiring', { ttlMs: 10 })
      fast.kv.put(r, 'k', 'permanent')
      fast.kv.put(r, 'gone', 'x', { ttlMs: 10 })
      const deadline = Date.now() + 5_000
      // Wait until the purge has retired both expiry entries.
      while (fast.stats().maintenance.expired < 2 && Date.now() < deadline) await sleep(10)
      expect(fast.stats().maintenance.expired).toBe(2)
      expect(fast.kv.get(r, 'k')).toBe('permanent')
      expect(fast.kv.list(r)).toEqual(['k'])
    } finally {
      fast.close()
    }
  })
})
