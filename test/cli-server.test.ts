// The `in-mem` CLI on a live directory: one its owner serves (the commands
// run through the owner's socket and print what they print once the owner
// has closed it), one its owner does not serve (LOCKED, with how to serve),
// and `in-mem serve` itself.
import { type ChildProcessWithoutNullStreams, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConnectionError, Database } from '../dist/index.js'
import { makeTmpDir, removeDir } from './helpers.js'

const root = resolve(__dirname, '..')
const bin = join(root, 'bin', 'in-mem.js')
const writer = join(__dirname, 'fixtures', 'cli-writer.cjs')

/** An environment without colour variables, IN_MEM_DIR or IN_MEM_TOKEN; `env` adds to it. */
function environment(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const k of ['NO_COLOR', 'FORCE_COLOR', 'IN_MEM_DIR', 'IN_MEM_TOKEN']) if (!(k in env)) delete e[k]
  return e
}

/** Runs the CLI to its end. */
function cli(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: environment(env), timeout: 60_000 })
}

/** A long-running child process whose stdout lines can be awaited. */
interface Child {
  proc: ChildProcessWithoutNullStreams
  /** Resolves with the next stdout line (rejects if the process exits first). */
  line(): Promise<string>
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>
  stderr(): string
}

function start(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, args, { env: environment(env) })
  const lines: string[] = []
  const waiting: { resolve(l: string): void; reject(e: Error): void }[] = []
  let buffered = ''
  let err = ''
  let gone = false
  proc.stdout.setEncoding('utf8')
  proc.stderr.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    buffered += chunk
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const l = buffered.slice(0, i)
      buffered = buffered.slice(i + 1)
      const w = waiting.shift()
      if (w) w.resolve(l)
      else lines.push(l)
    }
  })
  proc.stderr.on('data', (chunk: string) => (err += chunk))
  const exited = new Promise<number | string>((res) =>
    proc.once('exit', (code, signal) => {
      gone = true
      for (const w of waiting.splice(0)) w.reject(new Error(`the process exited (${code ?? signal}) before printing a line: ${err}`))
      res(code ?? signal ?? -1)
    }),
  )
  return {
    proc,
    line: () => {
      const l = lines.shift()
      if (l !== undefined) return Promise.resolve(l)
      if (gone) return Promise.reject(new Error(`the process exited before printing a line: ${err}`))
      return new Promise((res, rej) => waiting.push({ resolve: res, reject: rej }))
    },
    exited,
    stderr: () => err,
  }
}

const dirs: string[] = []
const children: Child[] = []

afterAll(() => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
  for (const d of dirs) removeDir(d)
})

function tmp(name: string): string {
  const d = makeTmpDir(name)
  dirs.push(d)
  return d
}

/** What a checkpoint line says but the time it took. */
const untimed = (s: string) => s.replace(/ in [\d.]+ (µs|ms|s)\b/g, ' in …')

describe('the CLI on a directory its owner serves', () => {
  it('every command runs through the owner and prints what it prints on the closed directory', async () => {
    const dir = tmp('in-mem-cli-live')
    const owner = start([writer, dir, 'serve'])
    children.push(owner)
    const first = await owner.line()
    expect(first.startsWith('ready ')).toBe(true)
    const w = JSON.parse(first.slice(6)) as { parent: string; fork: string; other: string; decisionVersion: number; version: number; pid: number; urls: string[] }
    expect(w.urls).toEqual([`unix:${join(dir, 'in-mem.sock')}`])

    const commands: string[][] = [
      ['runs', 'list'],
      ['runs', 'list', '--json'],
      ['runs', 'show', w.parent],
      ['runs', 'show', w.fork, '--json'],
      ['runs', 'show', w.other.slice(-12)],
      ['events', 'tail', w.parent],
      ['events', 'tail', w.fork, '--json'],
      ['events', 'verify', '--all'],
      ['replay', w.parent],
      ['replay', w.parent, '--at', String(w.decisionVersion)],
      ['replay', w.fork, '--json'],
      ['replay', w.other, '--json'],
      ['diff', w.parent, w.fork],
      ['diff', w.parent, w.fork, '--json'],
      ['vectors', 'list', w.parent],
    ]
    const live = commands.map((args) => cli([...args, dir]))
    for (const [i, r] of live.entries()) expect(r.status, `${commands[i].join(' ')}: ${r.stderr}`).toBe(0)

    // It ran through the owner: the stats are the owner's, with its server.
    const stats = JSON.parse(cli(['stats', '--json', dir]).stdout) as { version: number; runs: number; keys: number; path: string; server: { urls: string[]; requests: number } | null }
    expect(stats.version).toBe(w.version)
    expect(stats.server?.urls).toEqual(w.urls)
    expect(stats.server?.requests).toBeGreaterThan(0)
    const statsText = cli(['stats', dir])
    expect(statsText.status).toBe(0)
    expect(statsText.stdout).toContain(`served by    process ${w.pid} at ${w.urls[0]}`)
    expect(statsText.stdout).toContain("recovery (the owner's open)")

    // checkpoint is the owner's to write.
    const ckpt = cli(['checkpoint', dir])
    expect(ckpt.status, ckpt.stderr).toBe(0)
    expect(ckpt.stdout).toMatch(new RegExp(`^checkpoint at version ${w.version}: \\d+ entries, .+; \\d+ WAL segments? removed\\n$`))
    expect(existsSync(join(dir, 'checkpoints', `${String(w.version).padStart(20, '0')}.ckpt`))).toBe(true)
    const drawn = cli(['checkpoint', '--progress', dir])
    expect(drawn.stdout).toBe(`already checkpointed at version ${w.version}: nothing written\n`)
    expect(drawn.stderr).toContain('100%')

    owner.proc.kill('SIGTERM')
    expect(await owner.exited).toBe(0)
    expect(existsSync(join(dir, 'SERVER'))).toBe(false)

    // The closed directory, opened by each command itself.
    for (const [i, args] of commands.entries()) {
      const closed = cli([...args, dir])
      expect(closed.status, closed.stderr).toBe(0)
      expect(live[i].stdout, args.join(' ')).toBe(closed.stdout)
      expect(live[i].stderr).toBe(closed.stderr)
    }
    const after = JSON.parse(cli(['stats', '--json', dir]).stdout) as typeof stats
    expect({ version: after.version, runs: after.runs, path: after.path, server: after.server }).toEqual({ version: stats.version, runs: stats.runs, path: stats.path, server: null })
    expect(untimed(cli(['checkpoint', dir]).stdout)).toBe(`already checkpointed at version ${w.version}: nothing written\n`)
  })

  it('a locked directory whose owner does not serve: LOCKED, and how to serve', () => {
    const dir = tmp('in-mem-cli-unserved')
    const db = Database.open(dir, { checkpointOnClose: false })
    try {
      db.kv.put(db.runs.begin(), 'k', 1)
      for (const server of [undefined, JSON.stringify({ pid: process.pid, urls: [`unix:${join(dir, 'in-mem.sock')}`] })]) {
        // With no SERVER file, and with a stale one whose socket nobody serves.
        if (server !== undefined) writeFileSync(join(dir, 'SERVER'), server)
        const r = cli(['runs', 'list', dir])
        expect(r.status).toBe(1)
        expect(r.stdout).toBe('')
        expect(r.stderr).toContain(`is locked by another process (pid ${process.pid}) (LOCKED)`)
        expect(r.stderr).toContain(`the directory is open in process ${process.pid}`)
        expect(r.stderr).toContain('the owner is not serving it: call db.serve() there (or open the directory with `in-mem serve`)')
        const j = cli(['stats', '--json', dir])
        expect(j.status).toBe(1)
        expect(JSON.parse(j.stdout).error).toMatchObject({ code: 'LOCKED', details: { pid: process.pid, serving: false } })
      }
    } finally {
      db.close()
    }
  })
})

describe('in-mem serve', () => {
  it('serves the socket until SIGTERM, then closes the database: a client write is on disk', async () => {
    const dir = tmp('in-mem-cli-serve')
    const server = start([bin, 'serve', '--dir', dir])
    children.push(server)
    const url = await server.line()
    expect(url).toBe(`unix:${join(dir, 'in-mem.sock')}`)
    const remote = await Database.connect(url)
    const run = await remote.runs.begin({ name: 'remote writer' })
    await remote.kv.put(run, 'greeting', { text: 'hello', n: 12n })
    await remote.vectors.create(run, 'notes', { dimension: 3, metric: 'cosine' })
    await remote.vectors.upsertMany(run, 'notes', [
      { id: 'a', vector: [1, 0, 0], metadata: { kind: 'fact' } },
      { id: 'b', vector: [0.9, 0.1, 0], metadata: { kind: 'guess' } },
      { id: 'c', vector: [0, 1, 0], metadata: { kind: 'fact' } },
    ])
    await remote.runs.complete(run)
    await remote.close()
    // The other commands run through it meanwhile, and print what they print once it has closed.
    const listed = cli(['runs', 'list', '--json', dir])
    expect(listed.status, listed.stderr).toBe(0)
    expect((JSON.parse(listed.stdout) as { runs: { id: string }[] }).runs.map((r) => r.id)).toEqual([run])
    const commands = [
      ['vectors', 'search', run, 'notes', '--near', 'a', '-k', '2'],
      ['vectors', 'search', run, 'notes', '--near', 'c', '--filter', '{"kind":"fact"}', '--json'],
      ['vectors', 'list', run, '--json'],
      ['runs', 'show', run],
    ]
    const live = commands.map((args) => cli([...args, dir]))
    for (const r of live) expect(r.status, r.stderr).toBe(0)
    expect(live[0].stdout).toContain('2 vectors nearest a')
    server.proc.kill('SIGTERM')
    expect(await server.exited).toBe(0)
    expect(server.stderr()).toContain('in-mem serve: stopped')
    for (const [i, args] of commands.entries()) expect(cli([...args, dir]).stdout, args.join(' ')).toBe(live[i].stdout)
    const db = Database.open(dir)
    try {
      expect(db.kv.get(run, 'greeting')).toEqual({ text: 'hello', n: 12n })
      expect(db.runs.get(run)?.status).toBe('completed')
    } finally {
      db.close()
    }
  })

  it('--listen with a token file: the token is needed, a wrong one is refused', async () => {
    const dir = tmp('in-mem-cli-serve-tcp')
    const tokenFile = join(dir, '..', `${dir.split('/').pop()}.token`)
    writeFileSync(tokenFile, 'correct horse battery staple\n')
    const server = start([bin, 'serve', '--dir', dir, '--listen', '127.0.0.1:0', '--token-file', tokenFile, '--durability', 'strict', '--json'])
    children.push(server)
    const info = JSON.parse(await server.line()) as { url: string; urls: string[]; pid: number; dir: string }
    expect(info.url).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/)
    expect(info.urls).toEqual([`unix:${join(dir, 'in-mem.sock')}`, info.url])
    expect(info.pid).toBe(server.proc.pid)

    const remote = await Database.connect(info.url, { token: 'correct horse battery staple' })
    const run = await remote.runs.begin()
    await remote.state.init(run, 'count', 1)
    await remote.close()
    for (const opts of [{ token: 'wrong' }, {}]) {
      const e = await Database.connect(info.url, opts).then(
        () => undefined,
        (x: unknown) => x,
      )
      expect(e).toBeInstanceOf(ConnectionError)
      expect((e as ConnectionError).code).toBe('CONNECTION')
    }
    // The CLI presents the token on the socket: from --token-file, or IN_MEM_TOKEN.
    expect(cli(['runs', 'list', '--json', '--token-file', tokenFile, dir]).status).toBe(0)
    expect(cli(['runs', 'list', '--json', dir], { IN_MEM_TOKEN: 'correct horse battery staple' }).status).toBe(0)
    const refused = cli(['runs', 'list', dir], { IN_MEM_TOKEN: 'wrong' })
    expect(refused.status).toBe(1)
    expect(refused.stderr).toContain('(CONNECTION)')

    server.proc.kill('SIGINT')
    expect(await server.exited).toBe(0)
    const db = Database.open(dir)
    try {
      expect(db.state.get(run, 'count')?.value).toBe(1)
    } finally {
      db.close()
    }
  })

  it('usage errors: --listen without a token, TLS without its key or a listener, a bad durability', () => {
    const dir = tmp('in-mem-cli-serve-usage')
    const cases: [string[], string][] = [
      [['--listen', '127.0.0.1:0'], '--listen needs a token: pass --token-file <file>'],
      [['--tls-cert', 'c.pem'], 'TLS needs both --tls-cert and --tls-key'],
      [['--tls-cert', 'c.pem', '--tls-key', 'k.pem'], 'TLS is for the TCP listener: give --listen <host:port> too'],
      [['--durability', 'sometimes'], '--durability must be one of buffered, strict'],
    ]
    for (const [args, message] of cases) {
      const r = cli(['serve', '--dir', dir, ...args])
      expect(r.status, args.join(' ')).toBe(2)
      expect(r.stderr).toContain(message)
      expect(r.stderr).toContain("run 'in-mem serve --help' for usage")
    }
    expect(existsSync(join(dir, 'SERVER'))).toBe(false)
    const help = cli(['serve', '--help'])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain('Usage: in-mem serve [options] [dir]')
  })
})
