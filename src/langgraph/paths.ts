/**
 * The texts of a store item that get embedded: the JSON paths of an index
 * config (`"$"`, `"a.b"`, `"list[*].text"`, `"list[-1]"`, `"{a,b.c}"`,
 * `"*"`), with the semantics of LangGraph's `InMemoryStore`, so that the
 * same config embeds the same texts.
 * @module
 */

/** A path split into tokens: `"a[*].b"` → `["a", "[*]", "b"]`. */
export function tokenizePath(path: string): string[] {
  const tokens: string[] = []
  let current = ''
  let i = 0
  const group = (open: string, close: string) => {
    if (current !== '') tokens.push(current)
    current = ''
    let depth = 1
    let text = open
    i++
    while (i < path.length && depth > 0) {
      if (path[i] === open) depth++
      else if (path[i] === close) depth--
      text += path[i]
      i++
    }
    tokens.push(text)
  }
  while (i < path.length) {
    const c = path[i]
    if (c === '[') group('[', ']')
    else if (c === '{') group('{', '}')
    else {
      if (c === '.') {
        if (current !== '') tokens.push(current)
        current = ''
      } else current += c
      i++
    }
  }
  if (current !== '') tokens.push(current)
  return tokens
}

function asText(v: unknown): string[] {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return [String(v)]
  if (v === null || v === undefined) return []
  if (typeof v === 'object') return [JSON.stringify(v, null, 2)]
  return []
}

/** The texts at `path` (a path or its tokens) in `value`; `"$"` is the whole value as JSON. */
export function textsAt(value: unknown, path: string | string[]): string[] {
  if (path === '$' || path.length === 0) return [JSON.stringify(value, null, 2)]
  const tokens = Array.isArray(path) ? path : tokenizePath(path)
  const walk = (v: unknown, pos: number): string[] => {
    if (pos >= tokens.length) return asText(v)
    const token = tokens[pos]
    const out: string[] = []
    if (pos === 0 && token === '$') out.push(JSON.stringify(v, null, 2))
    if (token.startsWith('[') && token.endsWith(']')) {
      if (!Array.isArray(v)) return []
      const index = token.slice(1, -1)
      if (index === '*') for (const x of v) out.push(...walk(x, pos + 1))
      else {
        let idx = parseInt(index, 10)
        if (idx < 0) idx = v.length + idx
        if (idx >= 0 && idx < v.length) out.push(...walk(v[idx], pos + 1))
      }
    } else if (token.startsWith('{') && token.endsWith('}')) {
      if (typeof v !== 'object' || v === null) return []
      for (const field of token.slice(1, -1).split(',').map((f) => f.trim())) {
        let cur: unknown = v
        for (const t of tokenizePath(field)) {
          if (cur !== null && typeof cur === 'object' && t in cur) cur = (cur as Record<string, unknown>)[t]
          else {
            cur = undefined
            break
          }
        }
        if (cur !== undefined && cur !== null) out.push(...asText(cur))
      }
    } else if (token === '*') {
      if (Array.isArray(v)) for (const x of v) out.push(...walk(x, pos + 1))
      else if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) out.push(...walk(x, pos + 1))
    } else if (typeof v === 'object' && v !== null && token in v) out.push(...walk((v as Record<string, unknown>)[token], pos + 1))
    return out
  }
  return walk(value, 0)
}
