/**
 * Command-line parsing and help of the `in-mem` CLI (on `util.parseArgs`).
 * Not part of the library's API.
 * @module
 */
import { parseArgs } from 'node:util'

/** A usage error: exit code 2. */
export class UsageError extends Error {
  /** Always `USAGE`. */
  readonly code = 'USAGE'
  /** The command whose help to point at, if known. */
  readonly command?: string
  constructor(message: string, command?: string) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

/** One option of a command. */
export interface OptionSpec {
  /** `string` takes a value, `boolean` is a flag. */
  type: 'string' | 'boolean'
  /** A one-letter alias. */
  short?: string
  /** The value's placeholder in help, e.g. `<n>`. */
  value?: string
  /** One line of help. */
  help: string
}

/** A command: its words, positional arguments, options and help. */
export interface CommandSpec {
  /** `runs list`, `stats`... */
  name: string
  /** Positional arguments after the command words (a trailing `?` marks one optional). */
  args: string[]
  /** One line for the command list. */
  summary: string
  /** The lines of the command's help text. */
  description: string[]
  /** Its own options (the global ones are added). */
  options: Record<string, OptionSpec>
  /** Example invocations, without the leading `in-mem`. */
  examples: string[]
  /** A flag that stands for the positional arguments: with it, they are not given (`events verify --all`). */
  instead?: string
}

/** The options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  dir: { type: 'string', short: 'd', value: '<path>', help: 'the data directory (default: $IN_MEM_DIR, else ./.in-mem); also accepted as the last positional argument' },
  json: { type: 'boolean', help: 'machine-readable JSON on stdout: no colours, no tables' },
  color: { type: 'boolean', help: 'colour the output even when stdout is not a terminal' },
  'no-color': { type: 'boolean', help: 'never colour the output (so does a non-empty NO_COLOR)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
}

/** What the command line asked for. */
export type Parsed<C extends CommandSpec = CommandSpec> =
  | { kind: 'version' }
  | { kind: 'help'; command?: C; toStderr: boolean }
  | {
      kind: 'run'
      command: C
      /** The positional arguments by name (optional ones may be missing). */
      args: Record<string, string | undefined>
      /** Option values by long name. */
      values: Record<string, string | boolean | undefined>
      /** The data directory, from `--dir` or the trailing positional, if given. */
      dir?: string
    }

type ParseOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>

function toParseOptions(specs: Record<string, OptionSpec>): ParseOptions {
  const out: ParseOptions = {}
  for (const [name, s] of Object.entries(specs)) out[name] = s.short ? { type: s.type, short: s.short } : { type: s.type }
  return out
}

/** Finds the command named by the leading positionals. */
function findCommand<C extends CommandSpec>(words: string[], commands: C[]): C | undefined {
  for (const n of [2, 1]) {
    const name = words.slice(0, n).join(' ')
    const c = commands.find((c) => c.name === name)
    if (c !== undefined && words.length >= n) return c
  }
  return undefined
}

/** Parses `argv` (without node and the script) against `commands`. */
export function parse<C extends CommandSpec>(argv: string[], commands: C[]): Parsed<C> {
  // First pass: every option any command knows, leniently, to find the
  // command words among the positionals.
  const all: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, version: { type: 'boolean', short: 'V', help: '' } }
  for (const c of commands) Object.assign(all, c.options)
  const loose = parseArgs({ args: argv, options: toParseOptions(all), allowPositionals: true, strict: false })
  const words = loose.positionals
  if (loose.values.version === true && words.length === 0) return { kind: 'version' }
  if (words[0] === 'help') {
    if (words.length === 1) return { kind: 'help', toStderr: false }
    const c = findCommand(words.slice(1), commands)
    if (c === undefined) throw new UsageError(`no such command: ${words.slice(1).join(' ')}`)
    return { kind: 'help', command: c, toStderr: false }
  }
  if (words.length === 0) return { kind: 'help', toStderr: loose.values.help !== true }
  const command = findCommand(words, commands)
  if (command === undefined) {
    const group = commands.filter((c) => c.name.startsWith(`${words[0]} `))
    if (group.length > 0) {
      const subs = group.map((c) => c.name.split(' ')[1]).join(', ')
      if (words.length === 1) throw new UsageError(`${words[0]} needs a subcommand: ${subs}`)
      throw new UsageError(`unknown command "${words[0]} ${words[1]}" (${words[0]} has: ${subs})`)
    }
    throw new UsageError(`unknown command "${words[0]}"`)
  }
  if (loose.values.help === true) return { kind: 'help', command, toStderr: false }

  // Second pass: strictly, with only this command's options.
  let strict
  try {
    strict = parseArgs({ args: argv, options: toParseOptions({ ...GLOBAL_OPTIONS, ...command.options }), allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''), command.name)
  }
  const rest = strict.positionals.slice(command.name.split(' ').length)
  const replaced = command.instead !== undefined && strict.values[command.instead] === true
  const required = replaced ? [] : command.args.filter((a) => !a.endsWith('?'))
  const optional = replaced ? [] : command.args.filter((a) => a.endsWith('?')).map((a) => a.slice(0, -1))
  if (rest.length < required.length) {
    const alt = command.instead === undefined ? '' : ` (or --${command.instead})`
    throw new UsageError(`${command.name} needs ${required.map((a) => `<${a}>`).join(' ')}${alt}`, command.name)
  }
  const args: Record<string, string | undefined> = {}
  required.forEach((a, i) => (args[a] = rest[i]))
  let i = required.length
  for (const a of optional) args[a] = rest[i++]
  let dir = strict.values.dir as string | undefined
  const extra = rest.slice(required.length + optional.length)
  if (extra.length > 0) {
    // A trailing positional is the data directory.
    if (extra.length > 1) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`, command.name)
    if (dir !== undefined) throw new UsageError(`the data directory is given twice: --dir ${dir} and ${extra[0]}`, command.name)
    dir = extra[0]
  }
  return { kind: 'run', command, args, values: strict.values as Record<string, string | boolean | undefined>, dir }
}

/** Parses an integer option or argument; throws a {@link UsageError} when it is not one. */
export function integer(name: string, raw: string | boolean | undefined, min = 0): number | undefined {
  if (raw === undefined) return undefined
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min) {
    throw new UsageError(`${name} must be an integer ≥ ${min}, not ${JSON.stringify(raw)}`)
  }
  return Number(raw)
}

function optionLines(specs: Record<string, OptionSpec>): string[] {
  const heads = Object.entries(specs).map(([name, s]) => {
    const short = s.short ? `-${s.short}, ` : '    '
    return [`  ${short}--${name}${s.value ? ` ${s.value}` : ''}`, s.help]
  })
  const w = Math.max(...heads.map(([h]) => h.length))
  return heads.map(([h, t]) => `${h.padEnd(w)}   ${t}`)
}

function argsText(c: CommandSpec): string {
  const args = c.args.map((a) => (a.endsWith('?') ? `[${a.slice(0, -1)}]` : `<${a}>`)).join(' ')
  return c.instead === undefined ? args : `${args} | --${c.instead}`
}

function usageLine(c: CommandSpec): string {
  const args = argsText(c)
  return `in-mem ${c.name}${args ? ` ${args}` : ''} [options] [dir]`
}

/** The help of one command. */
export function commandHelp(c: CommandSpec): string {
  const lines = [`Usage: ${usageLine(c)}`, '', ...c.description]
  if (Object.keys(c.options).length > 0) lines.push('', 'Options:', ...optionLines(c.options))
  lines.push('', 'Global options:', ...optionLines(GLOBAL_OPTIONS))
  if (c.examples.length > 0) lines.push('', 'Examples:', ...c.examples.map((e) => `  in-mem ${e}`))
  return lines.join('\n') + '\n'
}

/** The help of the CLI as a whole. */
export function globalHelp(commands: CommandSpec[], version: string): string {
  const heads = commands.map((c) => `${c.name} ${argsText(c)}`.trimEnd())
  const w = Math.max(...heads.map((h) => h.length))
  const list = commands.map((c, i) => `  ${heads[i].padEnd(w)}   ${c.summary}`)
  return [
    `in-mem ${version}: inspect an in-mem data directory, serve it to other processes, or to an agent over MCP`,
    '',
    'Usage: in-mem <command> [arguments] [options] [dir]',
    '',
    'Commands:',
    ...list,
    '',
    'Global options:',
    ...optionLines({ ...GLOBAL_OPTIONS, version: { type: 'boolean', short: 'V', help: 'print the version' } }),
    '',
    'A run is named by its id or by any unique prefix or suffix of it (such as the',
    '…3f0a9c1e2b7d forms the tables print). The directory is opened for reading',
    '(buffered, no checkpoint on close), so reading never rewrites its files; only',
    '`checkpoint`, `serve` and `mcp` write. When another process owns the directory',
    'and serves it (db.serve(), or `in-mem serve`), the commands run through that',
    'owner, found by the SERVER file beside LOCK (its token, if it has one, from',
    '--token-file or $IN_MEM_TOKEN); when the owner does not serve, they fail (LOCKED).',
    '',
    'Exit codes: 0 ok; 1 an error, or `events verify` found a broken chain;',
    '2 a usage error. Errors go to stderr as `in-mem: <message> (<CODE>)`; with',
    '--json, stdout also gets {"error": {"code", "message", "details"}}.',
    '',
    "Run 'in-mem <command> --help' for a command's options.",
  ].join('\n') + '\n'
}
