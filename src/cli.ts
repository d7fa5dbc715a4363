/**
 * The `in-mem` command-line tool: inspect a data directory (one that another
 * process wrote and closed, or one its owner serves), serve one to other
 * processes (`in-mem serve`), or to an agent over MCP (`in-mem mcp`). `bin/in-mem.js` runs {@link main}; see
 * `in-mem --help` and the README's CLI section. Not part of the library's API.
 * @module
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { InMemError } from './errors.js'
import { UsageError, commandHelp, globalHelp, parse } from './cli/args.js'
import { COMMANDS, type Context, exitCodeOf } from './cli/commands.js'
import { painter, wantColour } from './cli/format.js'

/** Where the CLI writes; the process's streams by default. */
export interface CliIo {
  /** stdout. */
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number }
  /** stderr. */
  stderr: { write(text: string): unknown; isTTY?: boolean }
  /** The environment (NO_COLOR, FORCE_COLOR, IN_MEM_DIR, TERM). */
  env: NodeJS.ProcessEnv
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** The default data directory: `$IN_MEM_DIR`, else `./.in-mem`. */
export function defaultDir(env: NodeJS.ProcessEnv): string {
  return env.IN_MEM_DIR !== undefined && env.IN_MEM_DIR !== '' ? env.IN_MEM_DIR : '.in-mem'
}

/**
 * Runs the CLI on `argv` (the arguments after the script) and resolves to
 * the exit code: 0 ok, 1 an error or a failed verification, 2 a usage error.
 */
export async function main(argv: string[] = process.argv.slice(2), io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const json = argv.includes('--json')
  let commandName: string | undefined
  try {
    const parsed = parse(argv, COMMANDS)
    if (parsed.kind === 'version') {
      io.stdout.write(`${version()}\n`)
      return 0
    }
    if (parsed.kind === 'help') {
      const text = parsed.command ? commandHelp(parsed.command) : globalHelp(COMMANDS, version())
      if (parsed.toStderr) {
        io.stderr.write(text)
        return 2
      }
      io.stdout.write(text)
      return 0
    }
    commandName = parsed.command.name
    const colour = !json && wantColour(parsed.values as { color?: boolean; 'no-color'?: boolean }, io.env, io.stdout.isTTY === true)
    const ctx: Context = {
      args: parsed.args,
      values: parsed.values,
      dir: resolve(parsed.dir ?? defaultDir(io.env)),
      json,
      paint: painter(colour),
      out: (...lines) => {
        io.stdout.write(lines.map((l) => `${l}\n`).join(''))
      },
      err: (text) => {
        io.stderr.write(text)
      },
      stderrTTY: io.stderr.isTTY === true,
      columns: io.stdout.isTTY && io.stdout.columns ? Math.max(60, io.stdout.columns) : 120,
      env: io.env,
    }
    return await parsed.command.run(ctx)
  } catch (e) {
    return report(e, io, json, commandName)
  }
}

function report(e: unknown, io: CliIo, json: boolean, commandName: string | undefined): number {
  const err = e instanceof Error ? e : new Error(String(e))
  const code = e instanceof InMemError || e instanceof UsageError ? e.code : 'INTERNAL'
  const details = e instanceof InMemError ? e.details : {}
  const lines = [`in-mem: ${err.message} (${code})`]
  if (e instanceof UsageError) {
    const name = e.command ?? commandName
    lines.push(`in-mem: run 'in-mem ${name ? `${name} ` : ''}--help' for usage`)
  } else if (code === 'LOCKED') {
    const pid = typeof details.pid === 'number' ? `process ${details.pid}` : 'the process that holds it'
    lines.push(`in-mem: the directory is open in ${pid}; close it there (or let it exit) and run this again`)
    if (details.serving === false) {
      lines.push('in-mem: the owner is not serving it: call db.serve() there (or open the directory with `in-mem serve`) and commands run through the owner')
    }
  } else if (code === 'CORRUPTION') {
    lines.push("in-mem: nothing on disk was changed; Database.open(dir, { repair: true }) cuts the damage away (see docs/durability.md)")
  } else if (!(e instanceof InMemError) && io.env.IN_MEM_DEBUG) {
    lines.push(err.stack ?? '')
  }
  io.stderr.write(lines.map((l) => `${l}\n`).join(''))
  if (json) io.stdout.write(`${JSON.stringify({ error: { code, message: err.message, details } }, null, 2)}\n`)
  return exitCodeOf(e)
}
