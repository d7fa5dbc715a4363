// Options objects are checked against the names they may hold, so that a
// misspelled option is an error rather than silently ignored.
import { InvalidArgumentError } from './errors.js'

/** Edit distance between two short names (Levenshtein). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = row[j]
      row[j] = next
    }
  }
  return row[b.length]
}

/**
 * Throws `InvalidArgumentError` when `options` holds a key that is not in
 * `known`, naming it and the nearest valid one. `undefined` and `null`
 * (no options) pass.
 */
export function checkOptions(options: unknown, known: readonly string[], what: string): void {
  if (options === undefined || options === null) return
  if (typeof options !== 'object' || Array.isArray(options)) throw new InvalidArgumentError(`${what} must be an object`)
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    let nearest = known[0]
    for (const k of known) if (distance(key.toLowerCase(), k.toLowerCase()) < distance(key.toLowerCase(), nearest.toLowerCase())) nearest = k
    const hint = nearest !== undefined && distance(key.toLowerCase(), nearest.toLowerCase()) <= Math.max(2, Math.ceil(nearest.length / 2)) ? `; did you mean '${nearest}'?` : ''
    throw new InvalidArgumentError(`unknown option '${key}' in ${what}${hint} (valid: ${known.join(', ')})`, { option: key, nearest: hint ? nearest : null, valid: [...known] })
  }
}

/** A value as an error message shows it: `the string "1"`, `1.5`, `an object`. */
export function describe(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`
    case 'number':
    case 'boolean':
      return String(v)
    case 'bigint':
      return `${v}n`
    case 'undefined':
      return 'undefined'
    case 'function':
      return 'a function'
    case 'symbol':
      return 'a symbol'
  }
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return 'an object'
}
