/**
 * Output helpers of the `in-mem` CLI: colours, tables, compact values, times.
 * Not part of the library's API.
 * @module
 */

const ESC = '\u001b'
const ANSI = new RegExp(`${ESC}\\[[0-9;]*m`, 'g')

/** The colours the CLI uses. */
export type Colour = 'green' | 'red' | 'yellow' | 'cyan' | 'dim' | 'bold'

const CODES: Record<Colour, [number, number]> = {
  green: [32, 39],
  red: [31, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  dim: [2, 22],
  bold: [1, 22],
}

/** Paints text when colours are on; a no-op otherwise. */
export type Paint = (colour: Colour, text: string) => string

/** A painter: ANSI codes when `on`, plain text otherwise. */
export function painter(on: boolean): Paint {
  if (!on) return (_c, text) => text
  return (c, text) => (text === '' ? '' : `${ESC}[${CODES[c][0]}m${text}${ESC}[${CODES[c][1]}m`)
}

/**
 * Whether to colour stdout: `--no-color` and `--color` first, then a
 * non-empty `NO_COLOR` turns colours off, a `FORCE_COLOR` other than `0`
 * turns them on, and otherwise a terminal (not `TERM=dumb`) gets them.
 */
export function wantColour(flags: { color?: boolean; 'no-color'?: boolean }, env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (flags['no-color']) return false
  if (flags.color) return true
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return true
  return isTTY && env.TERM !== 'dumb'
}

/** The visible width of `s` (ANSI codes removed; one column per code point). */
export function width(s: string): number {
  return [...s.replace(ANSI, '')].length
}

/** `s` cut to `max` visible columns with a trailing `…` (plain text only). */
export function truncate(s: string, max: number): string {
  if (max <= 0) return s
  const chars = [...s]
  if (chars.length <= max) return s
  return chars.slice(0, Math.max(0, max - 1)).join('') + '…'
}

function pad(s: string, w: number, right = false): string {
  const fill = ' '.repeat(Math.max(0, w - width(s)))
  return right ? fill + s : s + fill
}

/** A column of {@link table}. */
export interface Column {
  /** The header. */
  header: string
  /** Cut cells to this many columns (plain text is cut before painting). */
  max?: number
  /** Right-align (numbers). */
  right?: boolean
  /** Paint a cell (after it was cut). */
  paint?: (cell: string, row: number) => string
}

/** A plain-text table: a header row, then one row per entry, columns two spaces apart. */
export function table(columns: Column[], rows: string[][], paint: Paint): string[] {
  const cells = rows.map((r) => r.map((c, i) => truncate(c, columns[i].max ?? 0)))
  const widths = columns.map((col, i) => Math.max(width(col.header), ...cells.map((r) => width(r[i]))))
  const line = (r: string[]) =>
    r
      .map((c, i) => pad(c, widths[i], columns[i].right))
      .join('  ')
      .trimEnd()
  const out = [paint('bold', line(columns.map((c) => c.header)))]
  cells.forEach((r, n) => {
    out.push(line(r.map((c, i) => (columns[i].paint ? columns[i].paint!(c, n) : c))))
  })
  return out
}

/** Lines of `key  value` pairs, keys aligned. */
export function fields(pairs: [string, string][], paint: Paint, indent = ''): string[] {
  const w = Math.max(...pairs.map(([k]) => width(k)))
  return pairs.map(([k, v]) => `${indent}${paint('dim', pad(k, w))}  ${v}`)
}

function hex(bytes: Uint8Array, max: number): string {
  const shown = Buffer.from(bytes.subarray(0, max)).toString('hex')
  return bytes.length > max ? `${shown}…` : shown
}

/**
 * A stored value as compact, JSON-like text: bigints as `12n`, bytes as
 * `<bytes 3: 0a0b0c>`; cut to `max` columns when `max` > 0.
 */
export function compact(v: unknown, max = 0): string {
  return truncate(show(v), max)
}

function show(v: unknown): string {
  if (v === undefined) return 'undefined'
  if (v === null) return 'null'
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (v instanceof Uint8Array) return `<bytes ${v.length}: ${hex(v, 16)}>`
  if (Array.isArray(v)) return `[${v.map(show).join(',')}]`
  if (typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${JSON.stringify(k)}:${show(x)}`)
      .join(',')}}`
  }
  return String(v)
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/**
 * Where two values differ, as `[path, a, b]` triples: objects are compared
 * key by key (paths like `.a."odd key".b`), anything else as a whole (path
 * `''`). A side without the key shows as `undefined`.
 */
export function deltas(a: unknown, b: unknown, path = ''): [string, unknown, unknown][] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])]
    return keys.flatMap((k) => deltas(a[k], b[k], `${path}.${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}`))
  }
  return show(a) === show(b) ? [] : [[path, a, b]]
}

/**
 * `v` made JSON-safe for `--json`: bigints become `{"$bigint": "digits"}`,
 * bytes `{"$bytes": "<base64>"}`, a vector (`Float32Array`) an array of
 * numbers; `undefined` fields are dropped.
 */
export function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() }
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') }
  if (v instanceof Float32Array) return Array.from(v)
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : jsonSafe(x)))
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) out[k] = jsonSafe(x)
    return out
  }
  return v
}

const two = (n: number) => String(n).padStart(2, '0')

/** Milliseconds since the epoch as local `YYYY-MM-DD HH:MM:SS` (`.mmm` with `ms`). */
export function time(ms: number | undefined, withMs = false): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms) || ms <= 0) return '-'
  const d = new Date(ms)
  const s = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`
  return withMs ? `${s}.${String(d.getMilliseconds()).padStart(3, '0')}` : s
}

/** A duration in milliseconds, readable: `840 ms`, `3.2 s`, `4 min 05 s`, `2 h 03 min`. */
export function duration(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)} min ${two(s % 60)} s`
  return `${Math.floor(s / 3600)} h ${two(Math.floor((s % 3600) / 60))} min`
}

/** A byte count, readable: `812 B`, `1.4 kB`, `63.9 MB`. */
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`
}

/** `1 event` / `3 events`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`
}

/** The first `n` hex digits of a hash. */
export function shortHash(h: string, n = 12): string {
  return h.slice(0, n)
}

/** A run id shortened to its last 12 hex digits, `…b302099a8057` (a unique suffix resolves back to the run). */
export function shortRun(id: string | undefined): string {
  if (id === undefined) return '-'
  return `…${id.slice(-12)}`
}

/** A progress bar: `[██████░░░░░░]  52%`. */
export function bar(done: number, total: number, running = true, cells = 24): string {
  const f = !running ? 1 : total > 0 ? Math.min(1, done / total) : 0
  const full = Math.round(f * cells)
  return `[${'█'.repeat(full)}${'░'.repeat(cells - full)}] ${String(Math.round(f * 100)).padStart(3)}%`
}
