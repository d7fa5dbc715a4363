// bench/codec.mjs at a tiny size: it runs, what it timed is correct (each
// codec's unpack(pack(v)) is v with its keys in order, the plain codec's
// bytes are in-mem's encode(), a fresh records codec reads the saved
// structures, and for every library and value kv.get reads back what was
// put), every task is measured in BENCH_ROUNDS interleaved rounds, and the
// Rust side's answer to records-encoded values is recorded. Its figures are
// not checked: benchmarks are never timed tests.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Packr, Unpackr } from 'msgpackr'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { decode, encode } from '../src/codec.js'
import { makeTmpDir, removeDir } from './helpers.js'
import { expectRoundRow, median, type Ratio, type Row } from './bench-rounds.js'

const root = resolve(__dirname, '..')
const ROUNDS = 3

let dir: string
beforeEach(() => {
  dir = makeTmpDir('in-mem-bench-codec')
})
afterEach(() => removeDir(dir))

type CodecRow = Row & { part: string; value: string }
interface CodecJson {
  config: { rounds: number; keys: number }
  values: { name: string; plainBytes: number; recordsBytes: number; inlineBytes: number }[]
  structures: { saves: number; bytes: number; lmdbSharedBytes: number }
  results: CodecRow[]
  ratios: (Ratio & { part: string; value: string; op: string; lib: string; vs: string })[]
  decodeShares: { value: string; getNs: number; rawGetNs: number; unpackNs: number; decodeShare: number }[]
  rust: { what: string; ok: boolean; result?: unknown; error?: string }[]
  decision: { putFaster: string; getFaster: string; rustReadsRecords: boolean; keepRecords: boolean }
  checks: { subject: string; value: string; check: string; ok: boolean }[]
  failures: string[]
  errors: Record<string, string>
}

const VALUES = ['object 100 B', 'message 1 KB', 'messages 10 KB', 'string', 'number']
const KV_LIBS = ['in-mem', 'in-mem plain', 'in-mem records', 'lmdb default', 'lmdb shared', 'lmdb plain']

describe('bench/codec.mjs', () => {
  it('times plain MessagePack against records with shared structures, codec alone and end to end beside lmdb-js, checks what it timed, and records what the Rust side makes of records', () => {
    const out = join(dir, 'codec.json')
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_TIME_MS: '5', BENCH_KEYS: '20', BENCH_ROUNDS: String(ROUNDS), BENCH_DIR: dir, BENCH_OUT: out }
    const r = spawnSync(process.execPath, [join(root, 'bench', 'codec.mjs')], { cwd: root, encoding: 'utf8', env, timeout: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.status, r.stdout).toBe(0)
    const json = JSON.parse(readFileSync(out, 'utf8')) as CodecJson
    expect(json.errors).toEqual({})
    expect(json.failures).toEqual([])
    expect(json.config.rounds).toBe(ROUNDS)

    // What was timed is correct: every check ran and passed.
    const checked = (subject: string, value: string) => json.checks.filter((c) => c.subject === subject && c.value === value)
    for (const value of VALUES) {
      const roundTrip = 'unpack(pack(v)) is v, keys in order'
      expect(checked('plain', value).map((c) => c.check)).toEqual(["its bytes are in-mem's encode()", roundTrip])
      expect(checked('records', value).map((c) => c.check)).toEqual([roundTrip, 'a fresh codec on the saved structures reads it'])
      expect(checked('inline', value).map((c) => c.check)).toEqual([roundTrip])
      for (const lib of KV_LIBS) {
        const when = ['after loading', 'after the rounds']
        const expected = when.flatMap((w) => [`${w}: every key reads back a value written`, `${w}: a get after a put returns the value put`])
        if (lib === 'in-mem') expected.push(...when.map((w) => `${w}: the raw get answers the plain bytes of the value`))
        if (lib === 'in-mem records') expected.push(...when.map((w) => `${w}: stored as records`))
        expect(checked(lib, value).map((c) => c.check).sort(), `${lib} ${value}`).toEqual(expected.sort())
      }
    }
    for (const c of json.checks) expect(c.ok, `${c.subject} ${c.value}: ${c.check}`).toBe(true)

    // Records are smaller for objects (shared structures), the same for a string or a number.
    const size = (name: string) => json.values.find((v) => v.name === name)!
    expect(json.values.map((v) => v.name)).toEqual(VALUES)
    for (const name of ['object 100 B', 'message 1 KB', 'messages 10 KB']) expect(size(name).recordsBytes).toBeLessThan(size(name).plainBytes)
    for (const name of ['string', 'number']) expect(size(name).recordsBytes).toBe(size(name).plainBytes)
    expect(json.structures.saves).toBeGreaterThan(0)
    expect(json.structures.lmdbSharedBytes).toBeGreaterThan(0)

    // Every task in ROUNDS interleaved rounds, each figure the median of its rounds.
    const names = (part: string) => json.results.filter((x) => x.part === part).map((x) => `${x.lib} ${x.op} ${x.value}`).sort()
    expect(names('codec')).toEqual(
      VALUES.flatMap((v) => [`plain pack ${v}`, `plain unpack ${v}`, `records pack ${v}`, `records unpack ${v}`, `inline pack ${v}`, `inline unpack ${v}`, `in-mem encode pack ${v}`]).sort(),
    )
    expect(names('kv')).toEqual(VALUES.flatMap((v) => [...KV_LIBS.flatMap((l) => [`${l} put ${v}`, `${l} get ${v}`]), `in-mem raw get ${v}`]).sort())
    for (const row of json.results) expectRoundRow(row, ROUNDS)
    const at = (part: string, lib: string, op: string, value: string) => json.results.find((x) => x.part === part && x.lib === lib && x.op === op && x.value === value)!
    for (const q of json.ratios) {
      expect(q.rounds, `${q.lib} ÷ ${q.vs} ${q.op} ${q.value}`).toHaveLength(ROUNDS)
      expect(q.ratio).toBe(median(q.rounds!))
      const a = at(q.part, q.lib, q.op, q.value)
      const b = at(q.part, q.vs, q.op, q.value)
      q.rounds!.forEach((x, i) => expect(x).toBeCloseTo(a.rounds![i].opsPerSec / b.rounds![i].opsPerSec, 9))
    }
    expect(json.ratios.filter((q) => q.lib === 'in-mem records' && q.vs === 'in-mem plain')).toHaveLength(2 * VALUES.length)
    // The decode's share of kv.get: kv.get against the raw read of the same key.
    expect(json.decodeShares.map((x) => x.value)).toEqual(VALUES)
    for (const x of json.decodeShares) expect(x.decodeShare).toBeCloseTo((x.getNs - x.rawGetNs) / x.getNs, 9)

    // The Rust side refuses records: a JSON document, a machine context, a guard's payload; so does the plain decode.
    expect(json.rust.map((c) => c.ok)).toEqual([true, false, false, false, false])
    expect(json.rust[0].result).toBe('hello')
    for (const c of json.rust.slice(1, 4)) expect(c.error, c.what).toContain('trailing bytes after the MessagePack value')
    expect(json.decision.rustReadsRecords).toBe(false)
    expect(r.stdout).toContain('decision by the issue')

    expect(readdirSync(dir)).toEqual(['codec.json'])
  })

  it('the codec of src/codec.ts is plain MessagePack: no records, so a plain decoder reads it and it reads a plain encoder', () => {
    const plain = new Unpackr({ useRecords: false, mapsAsObjects: true })
    const v = { id: 'msg_01', role: 'assistant', step: 100, tags: ['a', 'b'], nested: [{ x: 1 }, { x: 2 }] }
    const bytes = encode(v)
    expect(bytes[0]).toBe(0x85) // a fixmap of 5, not a record (0x40-0x7f) or a record definition (0xd4 0x72)
    expect(plain.unpack(bytes)).toEqual(v)
    expect(decode(new Packr({ useRecords: false }).pack(v))).toEqual(v)
  })
})
