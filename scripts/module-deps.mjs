// Prints the module dependencies of the Rust crates (from `use crate::…`,
// `use super::…` and `crate::…` paths in each file) and fails if they form a
// circle, or if a primitive's module names the engine. Run by `npm run lint`;
// `node scripts/module-deps.mjs --print` lists the graph.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'

const CRATES = ['crates/engine/src', 'crates/node/src']
const print = process.argv.includes('--print')

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.rs') ? [path] : []
  })
}

// The module path of a file: src/a/b.rs and src/a/b/mod.rs are `a::b`;
// lib.rs is the crate root.
function moduleOf(root, file) {
  const parts = relative(root, file).replace(/\.rs$/, '').split(sep)
  if (parts.at(-1) === 'mod' || parts.at(-1) === 'lib') parts.pop()
  return parts.join('::') || 'crate'
}

// Code without comments and without the `#[cfg(test)] mod tests` block
// (tests may reach any module through the crate's test fixtures).
function code(text) {
  const noComments = text.replace(/\/\/.*$/gm, '')
  const tests = noComments.search(/#\[cfg\(test\)\]\s*mod tests/)
  return tests === -1 ? noComments : noComments.slice(0, tests)
}

let failed = false
for (const root of CRATES) {
  const all = files(root)
  const modules = new Map(all.map((f) => [moduleOf(root, f), f]))
  const names = [...modules.keys()].filter((m) => m !== 'crate').sort((a, b) => b.length - a.length)
  // The longest known module a path names.
  const resolve = (path) => names.find((m) => path === m || path.startsWith(`${m}::`))
  const graph = new Map()
  for (const [mod, file] of modules) {
    const deps = new Set()
    const src = code(readFileSync(file, 'utf8'))
    const parent = mod.split('::').slice(0, -1).join('::')
    for (const m of src.matchAll(/\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)/g)) {
      const target = resolve(m[1])
      if (target && target !== mod) deps.add(target)
    }
    // `use crate::{a, b::c}` groups.
    for (const m of src.matchAll(/\bcrate::\{([^}]*)\}/g)) {
      for (const item of m[1].split(',')) {
        const target = resolve(item.trim().split(/\s/)[0])
        if (target && target !== mod) deps.add(target)
      }
    }
    for (const m of src.matchAll(/\bsuper::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*|\{[^}]*\})/g)) {
      const base = parent
      const items = m[1].startsWith('{') ? m[1].slice(1, -1).split(',').map((s) => s.trim().split(/\s/)[0]) : [m[1]]
      for (const item of items) {
        const full = base ? `${base}::${item}` : item
        const target = resolve(full) ?? (base || undefined)
        if (target && target !== mod) deps.add(target)
      }
    }
    // Paths relative to this module: `child::…` or `self::child::…`.
    for (const child of names.filter((m) => m.startsWith(mod === 'crate' ? '' : `${mod}::`) && !m.slice(mod === 'crate' ? 0 : mod.length + 2).includes('::'))) {
      const last = child.split('::').at(-1)
      if (new RegExp(`(?<![:\\w])(?:self::)?${last}::`).test(src)) deps.add(child)
    }
    graph.set(mod, [...deps].sort())
  }
  if (print) {
    console.log(`${root}:`)
    for (const [mod, deps] of [...graph].sort()) console.log(`  ${mod} -> ${deps.join(', ') || '(none)'}`)
  }
  // Circles: a depth-first search for a back edge.
  const state = new Map()
  const stack = []
  const visit = (mod) => {
    state.set(mod, 'open')
    stack.push(mod)
    for (const dep of graph.get(mod) ?? []) {
      if (state.get(dep) === 'open') {
        console.error(`module circle in ${root}: ${[...stack.slice(stack.indexOf(dep)), dep].join(' -> ')}`)
        failed = true
      } else if (!state.has(dep)) visit(dep)
    }
    stack.pop()
    state.set(mod, 'done')
  }
  for (const mod of graph.keys()) if (!state.has(mod)) visit(mod)
  // The primitives never name the engine.
  for (const [mod, file] of modules) {
    if (mod.startsWith('primitives') && /\bEngine\b/.test(readFileSync(file, 'utf8'))) {
      console.error(`${file}: a primitive's module names Engine; use the interfaces of access.rs`)
      failed = true
    }
  }
}
process.exit(failed ? 1 : 0)
