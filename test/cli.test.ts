// The `in-mem` CLI (bin/in-mem.js → dist/cli.js), run as a subprocess
// against data directories that another process (fixtures/cli-writer.cjs)
// wrote and closed.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'
import { RECORD_HEADER, fixRecordCrc, recordCrc, walFiles, walRecords } from './wal-helpers.js'

const root = resolve(__dirname, '..')
const bin = join(root, 'bin', 'in-mem.js')
const writer = join(__dirname, 'fixtures', 'cli-writer.cjs')
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`)

interface Written {
  parent: string
  fork: string
  other: string
  decisionVersion: number
  version: number
  marker: string
  parentEvents: number
  forkEvents: number
  pid: number
}

/** Runs fixtures/cli-writer.cjs on `dir` in a child process, which closes it and exits. */
function write(dir: string, mode: 'checkpoint' | 'wal-only'): Written {
  const r = spawnSync(process.execPath, [writer, dir, mode], { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`cli-writer failed (${r.status}): ${r.stderr}`)
  const out = JSON.parse(r.stdout.trim()) as Written
  expect(out.pid).not.toBe(process.pid)
  return out
}

/** Runs the CLI; `env` adds to (or, with `undefined`, removes from) an environment without colour variables. */
function cli(args: string[], env: Record<string, string | undefined> = {}): SpawnSyncReturns<string> {
  const e: NodeJS.ProcessEnv = { ...process.env }
  delete e.NO_COLOR
  delete e.FORCE_COLOR
  delete e.IN_MEM_DIR
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete e[k]
    else e[k] = v
  }
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: e, timeout: 60_000 })
}

/** Runs the CLI with --json, expects exit 0 and returns the parsed stdout. */
function json<T = Record<string, unknown>>(args: string[]): T {
  const r = cli([...args, '--json'])
  expect(r.status, `in-mem ${args.join(' ')}: ${r.stderr}`).toBe(0)
  expect(r.stdout).not.toMatch(ANSI)
  return JSON.parse(r.stdout) as T
}

/** Every file under `dir` but LOCK, with its size and modification time. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f)
      const s = statSync(p)
      if (s.isDirectory()) walk(p)
      else if (f !== 'LOCK') out[p.slice(dir.length)] = `${s.size}@${s.mtimeMs}`
    }
  }
  walk(dir)
  return out
}

let dir: string
let w: Written
const dirs: string[] = []

beforeAll(() => {
  dir = makeTmpDir('in-mem-cli')
  dirs.push(dir)
  w = write(dir, 'checkpoint')
})

afterAll(() => {
  for (const d of dirs) removeDir(d)
})

describe('in-mem runs', () => {
  it('runs list --json lists every run; the filters narrow it', () => {
    const all = json<{ runs: { id: string; name: string; status: string; parent?: string; tags: string[] }[] }>(['runs', 'list', '--dir', dir])
    expect(all.runs.map((r) => r.id)).toEqual([w.parent, w.fork, w.other])
    expect(all.runs.map((r) => r.status)).toEqual(['completed', 'active', 'cancelled'])
    expect(all.runs[1]).toMatchObject({ name: 'support agent (web)', parent: w.parent, tags: ['cli', 'support'] })
    // The directory as a trailing positional, like --dir.
    expect(json(['runs', 'list', dir])).toEqual(all)
    const ids = (args: string[]) => json<{ runs: { id: string }[] }>(['runs', 'list', ...args, dir]).runs.map((r) => r.id)
    expect(ids(['--status', 'completed'])).toEqual([w.parent])
    expect(ids(['--tag', 'misc'])).toEqual([w.other])
    expect(ids(['--parent', w.parent])).toEqual([w.fork])
    expect(ids(['--limit', '2'])).toEqual([w.parent, w.fork])
    expect(ids(['--limit', '2', '--after', w.fork])).toEqual([w.other])
    expect(ids(['--status', 'failed'])).toEqual([])
  })

  it('runs list prints a table with a header row, one row per run and no colour when piped', () => {
    const r = cli(['runs', 'list', '-d', dir])
    expect(r.status).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+PARENT\s+TAGS\s+CREATED\s+ENDED$/)
    expect(lines).toHaveLength(5)
    expect(lines[1]).toContain(w.parent)
    expect(lines[2]).toContain(`…${w.parent.slice(-12)}`)
    expect(lines[4]).toBe('3 runs')
    expect(r.stdout).not.toMatch(ANSI)
  })

  it('runs show --json: info, lineage, children, counts per primitive and the log', () => {
    const p = json<{
      run: { id: string; status: string }
      lineage: { id: string }[]
      children: { id: string }[]
      counts: Record<string, number>
      head: { sequence: number; type: string }
      log: { version: number; writes: { primitive: string; key: string; deleted: boolean }[] }[]
    }>(['runs', 'show', w.parent, dir])
    expect(p.run).toMatchObject({ id: w.parent, status: 'completed' })
    expect(p.lineage.map((r) => r.id)).toEqual([w.parent])
    expect(p.children.map((r) => r.id)).toEqual([w.fork])
    expect(p.counts).toEqual({ kv: 2, events: 4, state: 1, json: 1, traces: 3, traceRoots: 1, machines: 1, vectors: 0 })
    expect(p.head).toMatchObject({ sequence: 3, type: 'machine.transition' })
    const versions = p.log.map((c) => c.version)
    expect(versions).toEqual([...versions].sort((x, y) => x - y))
    expect(versions).toContain(w.decisionVersion)
    expect(p.log.at(-1)!.writes).toEqual([{ primitive: 'kv', key: 'goal', deleted: true }])

    // A fork: named by a unique suffix of its id; it reads its parent's data as of the fork.
    const f = json<typeof p>(['runs', 'show', w.fork.slice(-12), dir])
    expect(f.run.id).toBe(w.fork)
    expect(f.lineage.map((r) => r.id)).toEqual([w.fork, w.parent])
    expect(f.counts).toEqual({ kv: 4, events: 3, state: 1, json: 1, traces: 2, traceRoots: 1, machines: 1, vectors: 0 })
    expect(f.log.every((c) => c.version > w.decisionVersion)).toBe(true)
  })

  it('runs show prints the info, contents and the log as a table', () => {
    const r = cli(['runs', 'show', w.parent, dir])
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^run\s+/)
    expect(r.stdout).toContain('status    completed')
    expect(r.stdout).toMatch(/traces\s+3 traces \(1 root\)/)
    expect(r.stdout).toMatch(/VERSION\s+WRITES/)
    expect(r.stdout).toMatch(new RegExp(`\\b${w.decisionVersion}\\s+traces …`))
    expect(r.stdout).toContain('kv -goal')
  })
})

describe('in-mem events', () => {
  it('events tail --json: the last n events and the length', () => {
    const t = json<{ run: string; length: number; events: { sequence: number; type: string; hash: string; payload: unknown }[] }>([
      'events', 'tail', w.parent, '-n', '2', dir,
    ])
    expect(t.run).toBe(w.parent)
    expect(t.length).toBe(w.parentEvents)
    expect(t.events.map((e) => e.sequence)).toEqual([2, 3])
    expect(t.events[0]).toMatchObject({ type: 'tool.called', payload: { tool: 'kb.search' } })
    expect(t.events[0].hash).toMatch(/^[0-9a-f]{64}$/)
    const typed = json<typeof t>(['events', 'tail', w.parent, '--type', 'user.message', dir])
    expect(typed.events.map((e) => e.type)).toEqual(['user.message'])
  })

  it('events tail prints a table: sequence, time, type, payload, short hash', () => {
    const r = cli(['events', 'tail', w.fork, dir])
    expect(r.status).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toContain('3 events; the last 3')
    expect(lines[1]).toMatch(/^SEQ\s+TIME\s+TYPE\s+PAYLOAD\s+HASH$/)
    expect(lines[4]).toMatch(/^\s*2\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\s+tool\.called\s+\{"tool":"web\.search"\}\s+[0-9a-f]{12}$/)
  })

  it('events verify: valid, exit 0', () => {
    expect(json(['events', 'verify', w.parent, dir])).toEqual({ run: w.parent, valid: true, length: w.parentEvents })
    const r = cli(['events', 'verify', w.parent, dir])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('✓ valid: 4 events, hash chain intact')
    const all = json<{ valid: boolean; runs: { run: string; valid: boolean }[] }>(['events', 'verify', '--all', dir])
    expect(all.valid).toBe(true)
    expect(all.runs.map((x) => x.run)).toEqual([w.parent, w.fork, w.other])
  })
})

describe('in-mem replay', () => {
  it('replay --at the decision point --json: the parent as it was then', () => {
    const v = json<{
      run: string
      at: number
      kv: { key: string; value: unknown }[]
      state: { name: string; value: unknown; version: number }[]
      json: { id: string; value: unknown }[]
      events: { length: number; head: { sequence: number }; tail: { sequence: number }[] }
      traces: { trace: { type: string }; children: { trace: { type: string } }[] }[]
      machines: { id: string; state: string; revision: number }[]
    }>(['replay', w.parent, '--at', String(w.decisionVersion), dir])
    expect(v.at).toBe(w.decisionVersion)
    expect(v.kv.map((e) => e.key)).toEqual(['goal', 'plan'])
    expect(v.state).toMatchObject([{ name: 'budget', value: 10, version: 1 }])
    expect(v.json).toEqual([{ id: 'profile', value: { customer: { name: 'Ada', tier: 'pro' } } }])
    expect(v.events.length).toBe(2)
    expect(v.events.head.sequence).toBe(1)
    expect(v.traces).toHaveLength(1)
    expect(v.traces[0].trace.type).toBe('thought')
    expect(v.traces[0].children.map((c) => c.trace.type)).toEqual(['decision'])
    expect(v.machines).toMatchObject([{ id: 'T-1', state: 'open', revision: 1 }])

    // --event picks the commit that appended an event.
    const e = json<typeof v>(['replay', w.parent, '--event', '0', dir])
    expect(e.events.length).toBe(1)
    expect(e.at).toBeLessThan(w.decisionVersion)
  })

  it('replay of the fork now: its own writes over its parent at the fork', () => {
    const v = json<{ at: number; kv: { key: string; value: unknown }[]; state: { value: unknown }[]; json: { value: unknown }[]; events: { length: number } }>([
      'replay', w.fork, dir,
    ])
    expect(v.at).toBe(w.version)
    expect(Object.fromEntries(v.kv.map((e) => [e.key, e.value]))).toEqual({
      goal: 'answer a refund question',
      plan: { steps: ['research', 'answer'], current: 0 },
      'tool/result': { source: 'web', hits: 7 },
      'web/cache': 'policy.html',
    })
    expect(v.state[0].value).toBe(6)
    expect(v.json[0].value).toEqual({ customer: { name: 'Ada', tier: 'free' } })
    expect(v.events.length).toBe(w.forkEvents)
  })

  it('replay prints each primitive readably, and the trace tree', () => {
    const r = cli(['replay', w.parent, '--at', String(w.decisionVersion), dir])
    expect(r.status).toBe(0)
    expect(r.stdout).toContain(`at version ${w.decisionVersion}`)
    expect(r.stdout).toMatch(/kv \(2\)\n {2}goal {2}"answer a refund question"/)
    expect(r.stdout).toMatch(/budget {2}10 {2}v1/)
    expect(r.stdout).toContain('└─ thought check the policy first')
    expect(r.stdout).toContain('   └─ decision which source? → "kb"')
    expect(r.stdout).toContain('T-1  ticket v1, state open, revision 1')
    const capped = cli(['replay', w.parent, '--at', String(w.decisionVersion), '--max', '1', dir])
    expect(capped.stdout).toMatch(/kv \(2\)\n {2}goal {2}"answer a refund question"\n {2}… 1 more \(--max 0 or --json for all\)\n/)
  })

  it('values that JSON has no type for: bigints and bytes are tagged in --json', () => {
    const v = json<{ kv: { key: string; value: unknown }[] }>(['replay', w.other, dir])
    expect(v.kv).toEqual([
      { key: 'bytes', value: { $bytes: Buffer.from([1, 2, 3]).toString('base64') } },
      { key: 'x', value: { $bigint: '1' } },
    ])
    const r = cli(['replay', w.other, dir])
    expect(r.stdout).toContain('x      1n')
    expect(r.stdout).toContain('bytes  <bytes 3: 010203>')
  })
})

describe('in-mem diff', () => {
  it('diff --json: exactly what the fork changed, per primitive, and the event tails', () => {
    const d = json<{
      kv: { added: { key: string }[]; removed: { key: string }[]; changed: { key: string; a: unknown; b: unknown }[] }
      state: { changed: { key: string; a: unknown; b: unknown }[] }
      json: { changed: { key: string }[] }
      traces: { removed: { value: { type: string } }[]; added: unknown[] }
      machines: { changed: { key: string; a: { state: string }; b: { state: string } }[] }
      events: { common: number; a: { type: string }[]; b: { type: string }[] }
      same: boolean
    }>(['diff', w.parent, w.fork, dir])
    expect(d.same).toBe(false)
    expect(d.kv.added.map((e) => e.key).sort()).toEqual(['goal', 'web/cache'])
    expect(d.kv.removed).toEqual([])
    expect(d.kv.changed).toEqual([{ key: 'tool/result', a: { source: 'kb', hits: 2 }, b: { source: 'web', hits: 7 } }])
    expect(d.state.changed).toEqual([{ key: 'budget', a: 9, b: 6 }])
    expect(d.json.changed.map((e) => e.key)).toEqual(['profile'])
    expect(d.traces.removed.map((e) => e.value.type)).toEqual(['tool_call'])
    expect(d.traces.added).toEqual([])
    expect(d.machines.changed).toMatchObject([{ key: 'T-1', a: { state: 'researching' }, b: { state: 'open' } }])
    expect(d.events.common).toBe(2)
    expect(d.events.a.map((e) => e.type)).toEqual(['tool.called', 'machine.transition'])
    expect(d.events.b.map((e) => e.type)).toEqual(['tool.called'])

    // A run against itself is refused by db.diff: an invalid argument, exit 2.
    const self = cli(['diff', w.parent, w.parent, dir])
    expect(self.status).toBe(2)
    expect(self.stderr).toBe('in-mem: diff compares two different runs (INVALID_ARGUMENT)\n')
  })

  it('diff prints + added, - removed, ~ changed (a → b) and both event tails; coloured only when asked', () => {
    const r = cli(['diff', w.parent, w.fork, dir])
    expect(r.status).toBe(0)
    const out = r.stdout
    expect(out).not.toMatch(ANSI)
    expect(out).toContain(`--- a ${w.parent} "support agent"`)
    expect(out).toContain('  + web/cache: "policy.html"')
    // A changed object shows the fields that differ, each as a → b.
    expect(out).toContain('  ~ tool/result\n        .source: "kb" → "web"\n        .hits: 2 → 7\n')
    expect(out).toContain('  ~ budget: 9 → 6')
    expect(out).toMatch(/ {2}- …[0-9a-f]{12}: tool_call kb\.search\({"q":"refund"}\) → 2\n/)
    expect(out).toContain('  ~ T-1\n        .state: "researching" → "open"\n        .revision: 2 → 1\n')
    expect(out).toContain('  ~ profile.customer.tier: "pro" → "free"')
    expect(out).toContain('  - a #3 machine.transition T-1 research: open → researching')
    expect(out).toContain('(2 in common, then 2 only in a and 1 only in b)')
    expect(out).toContain('  - a #2 tool.called {"tool":"kb.search"}')
    expect(out).toContain('  + b #2 tool.called {"tool":"web.search"}')

    const green = '\u001b[32m'
    const coloured = cli(['diff', w.parent, w.fork, dir], { FORCE_COLOR: '1' })
    expect(coloured.stdout).toContain(`${green}  + web/cache`)
    expect(coloured.stdout).toContain('\u001b[31m  - a #2')
    expect(coloured.stdout).toContain('\u001b[33m  ~ budget')
    expect(cli(['diff', w.parent, w.fork, dir], { FORCE_COLOR: '1', NO_COLOR: '1' }).stdout).not.toMatch(ANSI)
    expect(cli(['diff', w.parent, w.fork, dir, '--color']).stdout).toContain(green)
    expect(cli(['diff', w.parent, w.fork, dir, '--color', '--json']).stdout).not.toMatch(ANSI)
  })
})

describe('in-mem stats and checkpoint', () => {
  it('stats --json: db.stats() and the files on disk', () => {
    const s = json<{ version: number; runs: number; durability: string; path: string; recovery: { checkpointVersion: number }; disk: { checkpoints: { files: number }; wal: { files: number } } }>([
      'stats', dir,
    ])
    expect(s.version).toBe(w.version)
    expect(s.runs).toBe(3)
    expect(s.durability).toBe('buffered')
    expect(s.recovery.checkpointVersion).toBe(w.version)
    expect(s.disk.checkpoints.files).toBe(1)
    const r = cli(['stats', dir])
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`version\\s+${w.version}\\n`))
    expect(r.stdout).toContain('recovery (this open)')
  })

  it('reading commands leave every file of the directory but LOCK as it was', () => {
    const before = files(dir)
    for (const args of [['runs', 'list'], ['runs', 'show', w.fork], ['events', 'tail', w.parent], ['events', 'verify', '--all'], ['replay', w.parent, '--at', '3'], ['diff', w.parent, w.fork], ['stats']]) {
      expect(cli([...args, dir]).status).toBe(0)
    }
    expect(files(dir)).toEqual(before)
  })

  it('checkpoint writes one (a plain line, or --json) and then has nothing to do', () => {
    const d = makeTmpDir('in-mem-cli-ckpt')
    dirs.push(d)
    const cw = write(d, 'wal-only')
    expect(existsSync(join(d, 'checkpoints')) ? readdirSync(join(d, 'checkpoints')).filter((f) => f.endsWith('.ckpt')) : []).toEqual([])
    const first = json<{ version: number; entries: number; bytes: number; unchanged: boolean }>(['checkpoint', d])
    expect(first).toMatchObject({ version: cw.version, unchanged: false })
    expect(first.entries).toBeGreaterThan(0)
    expect(readdirSync(join(d, 'checkpoints'))).toContain(`${String(cw.version).padStart(20, '0')}.ckpt`)
    const again = cli(['checkpoint', d])
    expect(again.status).toBe(0)
    expect(again.stdout).toBe(`already checkpointed at version ${cw.version}: nothing written\n`)
    expect(again.stderr).toBe('')
    // --progress draws the bar on stderr even though it is not a terminal.
    const drawn = cli(['checkpoint', '--progress', d])
    expect(drawn.stderr).toContain('100%')
    expect(json<{ version: number }>(['stats', d]).version).toBe(cw.version)
  })
})

describe('in-mem errors and exit codes', () => {
  it('usage errors exit 2 with `in-mem: <message> (USAGE)` on stderr', () => {
    for (const args of [['frobnicate'], ['runs'], ['runs', 'show'], ['runs', 'list', '--bogus'], ['events', 'tail', w.parent, '-n', 'many'], ['diff', w.parent]]) {
      const r = cli([...args, '--dir', dir])
      expect(r.status, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(/^in-mem: .+ \(USAGE\)\n/)
      expect(r.stdout).toBe('')
    }
    const j = cli(['runs', 'show', '--json', '--dir', dir])
    expect(j.status).toBe(2)
    expect(JSON.parse(j.stdout)).toEqual({ error: { code: 'USAGE', message: 'runs show needs <run>', details: {} } })
    // No command at all: the help, on stderr.
    const bare = cli([])
    expect(bare.status).toBe(2)
    expect(bare.stderr).toContain('Usage: in-mem <command>')
    // An argument the library refuses is a usage error too.
    const past = cli(['replay', w.parent, '--at', String(w.version + 100), dir])
    expect(past.status).toBe(2)
    expect(past.stderr).toContain('(INVALID_ARGUMENT)')
  })

  it('--help for every command, and --version', () => {
    for (const name of ['runs list', 'runs show', 'events tail', 'events verify', 'replay', 'diff', 'stats', 'checkpoint', 'mcp']) {
      const r = cli([...name.split(' '), '--help'])
      expect(r.status, name).toBe(0)
      expect(r.stdout).toContain(`Usage: in-mem ${name}`)
      expect(r.stdout).toContain('--json')
    }
    expect(cli(['help', 'diff']).stdout).toContain('Usage: in-mem diff <a> <b>')
    expect(cli(['--help']).stdout).toContain('Commands:')
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version
    expect(cli(['--version']).stdout).toBe(`${version}\n`)
  })

  it('an unknown run or directory exits 1 with its code; a missing directory is not created', () => {
    const unknown = '01890a5d-ac96-774b-bcce-b302099a8057'
    const r = cli(['runs', 'show', unknown, '--json', dir])
    expect(r.status).toBe(1)
    expect(r.stderr).toBe(`in-mem: run ${unknown} does not exist (NOT_FOUND)\n`)
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'NOT_FOUND', details: { run: unknown } })
    const missing = join(dir, 'no-such-dir')
    const m = cli(['stats', missing])
    expect(m.status).toBe(1)
    expect(m.stderr).toContain('(NOT_FOUND)')
    expect(existsSync(missing)).toBe(false)
    // IN_MEM_DIR is the default directory.
    expect(cli(['stats', '--json'], { IN_MEM_DIR: dir }).status).toBe(0)
  })

  it("a directory held by another process: LockedError with the holder's pid, exit 1", () => {
    const held = Database.open(dir, { checkpointOnClose: false })
    try {
      const r = cli(['runs', 'list', dir])
      expect(r.status).toBe(1)
      expect(r.stderr).toContain(`is locked by another process (pid ${process.pid}) (LOCKED)`)
      expect(r.stderr).toContain(`the directory is open in process ${process.pid}`)
      const j = cli(['stats', '--json', dir])
      expect(j.status).toBe(1)
      expect(JSON.parse(j.stdout).error).toMatchObject({ code: 'LOCKED', details: { pid: process.pid } })
    } finally {
      held.close()
    }
    expect(cli(['runs', 'list', dir]).status).toBe(0)
  })

  it('events verify exits 1 and names the first bad sequence when an event was changed on disk', () => {
    const d = makeTmpDir('in-mem-cli-tamper')
    dirs.push(d)
    const tw = write(d, 'wal-only')
    expect(cli(['events', 'verify', tw.parent, d]).status).toBe(0)
    // Change one payload byte of event #1 in the WAL (same length, still
    // valid MessagePack) and fix the record's CRC, as in events.test.ts.
    const needle = Buffer.from(tw.marker, 'utf8')
    const hits = walFiles(d).flatMap((file) => {
      const bytes = readFileSync(file)
      const at = bytes.indexOf(needle)
      return at < 0 ? [] : [{ file, bytes, at }]
    })
    expect(hits).toHaveLength(1)
    const { file, bytes, at } = hits[0]
    const rec = walRecords(bytes).find((x) => x.offset + RECORD_HEADER <= at && at + needle.length <= x.offset + x.len)!
    expect(recordCrc(bytes, rec)).toBe(rec.crc)
    bytes[at] = 't'.charCodeAt(0)
    fixRecordCrc(bytes, rec)
    writeFileSync(file, bytes)

    const j = cli(['events', 'verify', tw.parent, '--json', d])
    expect(j.status).toBe(1)
    const v = JSON.parse(j.stdout)
    expect(v).toMatchObject({ run: tw.parent, valid: false, length: tw.parentEvents, firstInvalid: 1 })
    expect(v.reason).toMatch(/hash/)
    const h = cli(['events', 'verify', tw.parent, d])
    expect(h.status).toBe(1)
    expect(h.stdout).toContain('✗ invalid at sequence 1 of 4')
    expect(h.stderr).toBe('')
    const all = cli(['events', 'verify', '--all', d])
    expect(all.status).toBe(1)
    expect(all.stdout).toMatch(/invalid$/m)
  })
})
