// The offline install check: what a user gets from `npm install in-mem`.
//
// Packs the root package as `npm publish` would ship it (its `files`, plus the
// optionalDependencies on every platform package that `napi pre-publish` adds
// at release), packs this host's platform package (npm/<platform>) with the
// addon that `npm test` just built, installs both tarballs into a fresh
// project whose PATH has no cargo or rustc, and runs a script there that
// opens a database, writes, reads and closes: once through require(), once
// through import; and serves `in-mem mcp` from it. msgpackr and the MCP SDK
// come from the npm registry; the other platforms'
// packages are not published, and npm skips those optional dependencies as it
// does for a user on another platform.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { delimiter, join, resolve } from 'node:path'
import { readNapiConfig } from '@napi-rs/cli'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeTmpDir, removeDir } from './helpers.js'
import { connect } from './mcp-helpers.js'

const root = resolve(__dirname, '..')
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string }
const windows = process.platform === 'win32'

/** The environment of a child npm/node: no npm_* variables of the `npm test` that runs us, and optionally another PATH. */
function childEnv(path?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
  if (path !== undefined) {
    for (const k of Object.keys(env)) if (k.toUpperCase() === 'PATH') delete env[k]
    env.PATH = path
  }
  return env
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', shell: windows && cmd === 'npm', timeout: 120_000 })
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.error || r.status !== 0) {
    throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`)
  }
  return r.stdout
}

/** `npm pack` of `dir` into `dest`; returns the tarball's path and the files it holds. */
function pack(dir: string, dest: string): { file: string; size: number; files: string[] } {
  const out = ok(run('npm', ['pack', '--json', '--pack-destination', dest], dir, childEnv()), `npm pack ${dir}`)
  const [info] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; size: number; files: { path: string }[] }[]
  return { file: join(dest, info.filename), size: info.size, files: info.files.map((f) => f.path).sort() }
}

/** The arguments of a strict node16 `tsc --noEmit` of `files` in the consumer project. */
function consumerTsc(...files: string[]): string[] {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  return [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node', ...files]
}

/** PATH without any directory that holds cargo or rustc. */
/**
 * PATH without a Rust toolchain. A directory holding `cargo` or `rustc`
 * goes, unless it also holds what the install needs (`node`, `npm`): Debian's
 * rustc lives in /usr/bin beside them, so that one is replaced by a
 * directory of links to everything in it but the Rust tools.
 */
function pathWithoutRust(): string {
  const exe = windows ? ['cargo.exe', 'rustc.exe'] : ['cargo', 'rustc']
  const needed = windows ? ['node.exe', 'npm.cmd'] : ['node', 'npm']
  const rust = /^(cargo|rustc|rustdoc|rustup|rust-gdb|rust-lldb|rustfmt|clippy-driver|cargo-.*)(\.exe)?$/
  return (process.env.PATH ?? '')
    .split(delimiter)
    .flatMap((d) => {
      if (!d || !exe.some((e) => existsSync(join(d, e)))) return d ? [d] : []
      if (windows || !needed.some((e) => existsSync(join(d, e)))) return []
      const shadow = join(makeTmpDir('path-without-rust'), 'bin')
      mkdirSync(shadow)
      for (const name of readdirSync(d)) if (!rust.test(name)) symlinkSync(join(d, name), join(shadow, name))
      return [shadow]
    })
    .join(delimiter)
}

/** This host's napi target: `linux-x64-gnu`, `darwin-arm64`, ... or undefined if none is configured. */
async function hostTarget(): Promise<{ platformArchABI: string; packages: string[] } | undefined> {
  const config = await readNapiConfig(join(root, 'package.json'))
  let abi: string | undefined
  if (process.platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    abi = report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'
  } else if (process.platform === 'win32') abi = 'msvc'
  const t = config.targets.find((t) => t.platform === process.platform && t.arch === process.arch && (t.abi ?? undefined) === abi)
  if (!t) return undefined
  return { platformArchABI: t.platformArchABI, packages: config.targets.map((t) => `${config.packageName}-${t.platformArchABI}`) }
}

const target = await hostTarget()
const binaryName = target && `in-mem.${target.platformArchABI}.node`
const platformPkg = target && `in-mem-${target.platformArchABI}`

describe.skipIf(!target)('offline install of the packed packages', () => {
  let tmp: string
  let project: string
  let rootTarball: ReturnType<typeof pack>
  let platformTarball: ReturnType<typeof pack>
  const noRust = pathWithoutRust()

  beforeAll(() => {
    const built = join(root, binaryName!)
    if (!existsSync(built)) throw new Error(`${binaryName} is missing: run \`npm run build:debug\` first (npm test does)`)
    tmp = makeTmpDir('in-mem-install')
    const tarballs = join(tmp, 'tarballs')
    mkdirSync(tarballs)

    // The platform package, carrying the addon just built.
    const platformDir = join(tmp, 'platform')
    cpSync(join(root, 'npm', target!.platformArchABI), platformDir, { recursive: true })
    copyFileSync(built, join(platformDir, binaryName!))
    platformTarball = pack(platformDir, tarballs)

    // The root package as published: this repository's tarball, with the
    // optionalDependencies that `napi pre-publish` writes at release.
    const plain = pack(root, tarballs)
    const stage = join(tmp, 'stage')
    mkdirSync(stage)
    ok(run('tar', ['-xzf', plain.file, '-C', stage], tmp, childEnv()), 'tar -x')
    const stagedJson = join(stage, 'package', 'package.json')
    const manifest = JSON.parse(readFileSync(stagedJson, 'utf8'))
    manifest.optionalDependencies = Object.fromEntries(target!.packages.map((p) => [p, rootPkg.version]))
    writeFileSync(stagedJson, JSON.stringify(manifest, null, 2))
    const released = join(tmp, 'released')
    mkdirSync(released)
    rootTarball = { ...pack(join(stage, 'package'), released), files: plain.files, size: plain.size }

    // A fresh project that installs both, with no Rust toolchain on its PATH.
    project = join(tmp, 'project')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2))
    for (const f of ['smoke.cjs', 'smoke.mjs']) copyFileSync(join(root, 'scripts', f), join(project, f))
    ok(
      run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', rootTarball.file, platformTarball.file], project, childEnv(noRust)),
      'npm install of the tarballs',
    )
  }, 180_000)

  afterAll(() => {
    if (tmp) removeDir(tmp)
  })

  it('runs with no Rust toolchain on its PATH', () => {
    const r = spawnSync(windows ? 'cargo.exe' : 'cargo', ['--version'], { env: childEnv(noRust), encoding: 'utf8' })
    expect(r.error && (r.error as NodeJS.ErrnoException).code).toBe('ENOENT')
  })

  it('ships the API, the loader and its types, and no tests, benchmarks or binaries', () => {
    const files = rootTarball.files
    console.log(`root tarball: ${(rootTarball.size / 1024).toFixed(1)} kB packed, ${files.length} files; ` +
      `${platformPkg} tarball: ${(platformTarball.size / 1024 / 1024).toFixed(1)} MB packed (debug build)`)
    const entries = ['index', 'mcp'].flatMap((e) => [`dist/${e}.js`, `dist/${e}.mjs`, `dist/${e}.d.ts`, `dist/${e}.d.mts`])
    for (const f of ['package.json', 'README.md', 'LICENSE', 'index.js', 'index.d.ts', ...entries]) {
      expect(files).toContain(f)
    }
    const stray = files.filter((f) => /^(test|bench|crates|examples|scripts|npm|docs|target|\.github)\//.test(f) || f.endsWith('.node') || /\.test\./.test(f))
    expect(stray).toEqual([])
    // The API and the CLI (about 150 kB), the MCP server (dist/mcp, src/mcp: about 65 kB), in-mem/langgraph
    // (about 45 kB) and server mode (dist/server, src/server, and the CLI and MCP server reading a live
    // directory through it: about 80 kB), with source maps: 349 kB when server mode landed (265 kB before it).
    // The budget catches what nobody meant to ship.
    expect(rootTarball.size).toBeLessThan(400 * 1024)
    expect(platformTarball.files.sort()).toEqual([binaryName, 'README.md', 'package.json'].sort())
  })

  it('installs the platform package from its tarball and skips the other platforms', () => {
    const installed = (p: string) => existsSync(join(project, 'node_modules', p, 'package.json'))
    expect(installed('in-mem')).toBe(true)
    expect(installed(platformPkg!)).toBe(true)
    expect(statSync(join(project, 'node_modules', platformPkg!, binaryName!)).size).toBeGreaterThan(0)
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules', 'in-mem', 'package.json'), 'utf8'))
    expect(Object.keys(manifest.optionalDependencies)).toHaveLength(8)
    for (const p of target!.packages) if (p !== platformPkg) expect(installed(p), p).toBe(false)
    // The root package holds no binary: the addon comes from the platform package.
    expect(existsSync(join(project, 'node_modules', 'in-mem', binaryName!))).toBe(false)
  })

  for (const script of ['smoke.cjs', 'smoke.mjs']) {
    it(`opens, writes, reads and closes through ${script.endsWith('.cjs') ? 'require()' : 'import'}`, () => {
      const out = ok(run(process.execPath, [script], project, childEnv(noRust)), `node ${script}`)
      const result = JSON.parse(out.trim().split('\n').pop()!)
      expect(result.ok).toBe(true)
      expect(result.binary).toBe(join(project, 'node_modules', platformPkg!, binaryName!))
    })
  }

  it('resolves the types of both entry points', () => {
    writeFileSync(
      join(project, 'esm.mts'),
      "import inMem, { Database, type Value } from 'in-mem'\nconst v: Value = 1\nexport const open: typeof Database.open = inMem.Database.open\nexport { v }\n",
    )
    writeFileSync(join(project, 'cjs.cts'), "import inMem = require('in-mem')\nexport const open: typeof inMem.Database.open = inMem.Database.open\n")
    ok(run(process.execPath, consumerTsc('esm.mts', 'cjs.cts'), project, childEnv(noRust)), 'tsc on the consumer')
  })

  it('resolves the types of in-mem/mcp, through import and require', () => {
    writeFileSync(
      join(project, 'mcp-esm.mts'),
      "import { Database } from 'in-mem'\nimport { createMcpServer, type McpServerOptions } from 'in-mem/mcp'\nconst o: McpServerOptions = { readOnly: true }\n" +
        'export const serve = () => createMcpServer(Database.open(), o).connect\n',
    )
    writeFileSync(
      join(project, 'mcp-cjs.cts'),
      "import inMem = require('in-mem')\nimport mcp = require('in-mem/mcp')\nexport const names: string[] = new mcp.KnowledgeGraph(inMem.Database.open()).read().entities.map((e) => e.name)\n",
    )
    // --skipLibCheck: the MCP SDK's own CommonJS declarations fail a strict
    // node16 check (TS1541 in @modelcontextprotocol/sdk/dist/cjs/validation/types.d.ts),
    // as they would in any consumer's project without it.
    ok(run(process.execPath, [...consumerTsc('mcp-esm.mts', 'mcp-cjs.cts'), '--skipLibCheck'], project, childEnv(noRust)), 'tsc on the consumer (in-mem/mcp)')
  })

  it('serves `in-mem mcp` from the installed package, its MCP dependencies installed with it', async () => {
    const mcp = await connect(process.execPath, [join(project, 'node_modules', 'in-mem', 'bin', 'in-mem.js'), 'mcp', '--dir', join(tmp, 'mcp-data')])
    try {
      const { tools } = await mcp.client.listTools()
      expect(tools.map((t) => t.name)).toContain('create_entities')
      expect(await mcp.ok('runs_begin', { name: 'installed' })).toMatchObject({ run: { name: 'installed', status: 'active' } })
    } finally {
      await mcp.close()
    }
  })

  it('names the missing platform package and how to build from source', () => {
    const pkgDir = join(project, 'node_modules', platformPkg!)
    const away = join(tmp, 'away')
    renameSync(pkgDir, away)
    try {
      for (const script of ['smoke.cjs', 'smoke.mjs']) {
        const r = run(process.execPath, [script], project, childEnv(noRust))
        expect(r.status).not.toBe(0)
        expect(r.stderr).toContain(`the package ${platformPkg}@${rootPkg.version}, which holds it, is not installed`)
        expect(r.stderr).toContain(`npm install ${platformPkg}@${rootPkg.version}`)
        expect(r.stderr).toContain('build it from source')
      }
    } finally {
      renameSync(away, pkgDir)
    }
  })
})
