// Compares a benchmark run (bench/results/summary.json, written by
// bench/run.mjs) with the stored baseline (bench/baseline.json) and exits 1
// when a figure regressed past the threshold. The bench workflow runs it
// after `npm run bench`.
//
//   node bench/compare.mjs [--summary FILE] [--baseline FILE] [--threshold 0.3]
//                          [--markdown FILE] [--absolute]
//   node bench/compare.mjs --write-baseline [--summary FILE] [--baseline FILE]
//
// What is gated. Runs happen on different machines (a developer's VM, CI
// runners) whose speed differs, and even one VM drifts up to 2x between runs,
// so raw nanoseconds are not comparable across runs. Each run also measures a
// speed probe: one JSON.parse of the benchmark's value in JS, one serde_json
// parse in Rust (bench/run.mjs prints it). A figure here is an operation's
// time in units of its language's probe:
//   js   = JS ns/op   / JS probe ns      (the JS API, binding and engine)
//   rust = Rust ns/op / Rust probe ns    (the engine alone, criterion)
// A figure regresses when it exceeds baseline x (1 + threshold). Raw ns and
// the JS/Rust ratio are shown; raw ns are gated too with --absolute (only
// meaningful on the machine that recorded the baseline). A run that reported
// problems (a failed step, stale results, a debug build) or lacks a figure
// fails: it cannot show that nothing regressed.
//
// The agent primitives (bench/primitives.mjs, in summary.json's
// `primitives`) are gated the same way, in units of that suite's own JS
// probe: in-mem's memory and buffered figures only (strict ones are bound by
// the disk's fsync, which the probe does not measure). A baseline without
// them (made before the primitives suite existed) shows them as `new`.
//
// The threshold comes from --threshold, else BENCH_THRESHOLD, else the
// baseline's own `threshold`, else 0.3.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

function parseArgs(argv) {
  const opts = { summary: join(here, 'results', 'summary.json'), baseline: join(here, 'baseline.json'), threshold: undefined, markdown: undefined, absolute: false, write: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--summary') opts.summary = value()
    else if (a === '--baseline') opts.baseline = value()
    else if (a === '--threshold') opts.threshold = Number(value())
    else if (a === '--markdown') opts.markdown = value()
    else if (a === '--absolute') opts.absolute = true
    else if (a === '--write-baseline') opts.write = true
    else throw new Error(`unknown argument ${a}`)
  }
  return opts
}

const mean = (p) => (p === undefined || p === null ? undefined : typeof p === 'number' ? p : (p.start + p.end) / 2)

/** The figures of a summary.json: per operation, raw ns and probe-normalised times. */
function figuresOf(summary) {
  const jsProbe = mean(summary.probe?.jsJsonParseNs)
  const rustProbe = mean(summary.probe?.rustJsonParseNs)
  const ops = {}
  for (const r of summary.rows ?? []) {
    ops[r.op] = {
      jsNs: r.jsNs ?? null,
      rustNs: r.rustNs ?? null,
      js: r.jsNs != null && jsProbe ? r.jsNs / jsProbe : null,
      rust: r.rustNs != null && rustProbe ? r.rustNs / rustProbe : null,
    }
  }
  return { jsProbeNs: jsProbe ?? null, rustProbeNs: rustProbe ?? null, ops, ...primitivesOf(summary) }
}

/** The gated figures of the primitives suite: in-mem, memory and buffered mode, in units of that suite's probe. */
function primitivesOf(summary) {
  const p = summary.primitives
  if (!p) return {}
  const probe = mean(p.probe?.jsJsonParseNs)
  const primitives = {}
  for (const r of p.rows ?? []) {
    if (r.mode !== 'memory' && r.mode !== 'buffered') continue
    primitives[`${r.op} ${r.mode}`] = { jsNs: r.nsPerOp ?? null, js: r.nsPerOp != null && probe ? r.nsPerOp / probe : null }
  }
  return { primitivesProbeNs: probe ?? null, primitives }
}

const machineKey = (m) => (m ? `${m.cpu} (${m.cores} cores), ${m.platform}` : 'unknown')

function writeBaseline(opts) {
  const summary = JSON.parse(readFileSync(opts.summary, 'utf8'))
  if (summary.problems?.length) throw new Error(`the run reported problems; not a baseline:\n  ${summary.problems.join('\n  ')}`)
  const baseline = {
    about: 'Benchmark baseline for bench/compare.mjs, made from bench/results/summary.json with `node bench/compare.mjs --write-baseline`.',
    date: summary.date,
    tree: summary.tree,
    machine: summary.machine,
    threshold: 0.3,
    ...figuresOf(summary),
    targets: Object.fromEntries((summary.targets ?? []).map((t) => [t.target, t.pass ?? null])),
  }
  writeFileSync(opts.baseline, JSON.stringify(baseline, null, 2) + '\n')
  console.log(`wrote ${opts.baseline} from ${opts.summary} (${summary.tree}, ${summary.date})`)
}

function compare(opts) {
  const summary = JSON.parse(readFileSync(opts.summary, 'utf8'))
  const baseline = JSON.parse(readFileSync(opts.baseline, 'utf8'))
  const envThreshold = process.env.BENCH_THRESHOLD ? Number(process.env.BENCH_THRESHOLD) : undefined
  const threshold = opts.threshold ?? envThreshold ?? baseline.threshold ?? 0.3
  if (!Number.isFinite(threshold) || threshold <= 0) throw new Error(`bad threshold ${threshold}`)
  const current = figuresOf(summary)
  const sameMachine = machineKey(summary.machine) === machineKey(baseline.machine)
  const gateAbsolute = opts.absolute
  const failures = []
  const rows = []

  const fmt = (x, unit) => (x == null ? '-' : unit === 'ns' ? (x >= 10_000 ? `${(x / 1000).toFixed(1)} µs` : `${x.toFixed(0)} ns`) : x.toFixed(3))
  const check = (op, name, unit, base, cur, gated) => {
    const change = base != null && cur != null ? cur / base - 1 : undefined
    let verdict = 'info'
    if (gated) {
      if (base == null) verdict = 'new'
      else if (cur == null) {
        verdict = 'MISSING'
        failures.push(`${op} ${name}: missing from this run`)
      } else if (change > threshold) {
        verdict = 'REGRESSED'
        failures.push(`${op} ${name}: ${fmt(base, unit)} -> ${fmt(cur, unit)} (+${(100 * change).toFixed(0)}%, threshold ${(100 * threshold).toFixed(0)}%)`)
      } else verdict = 'ok'
    }
    rows.push({ op, name, base: fmt(base, unit), cur: fmt(cur, unit), change: change === undefined ? '-' : `${change >= 0 ? '+' : ''}${(100 * change).toFixed(1)}%`, verdict })
  }

  const normalised = current.jsProbeNs != null && current.rustProbeNs != null && baseline.jsProbeNs != null && baseline.rustProbeNs != null
  if (!normalised) failures.push('no speed probe in the run or the baseline: figures cannot be normalised')
  for (const [op, b] of Object.entries(baseline.ops)) {
    const c = current.ops[op] ?? {}
    check(op, 'js (÷ JS probe)', 'x', b.js, c.js, true)
    check(op, 'rust (÷ Rust probe)', 'x', b.rust, c.rust, true)
    check(op, 'JS ns/op', 'ns', b.jsNs, c.jsNs, gateAbsolute)
    check(op, 'Rust ns/op', 'ns', b.rustNs, c.rustNs, gateAbsolute)
  }
  for (const [op, b] of Object.entries(baseline.primitives ?? {})) {
    const c = current.primitives?.[op] ?? {}
    check(op, 'js (÷ JS probe)', 'x', b.js, c.js, true)
    check(op, 'JS ns/op', 'ns', b.jsNs, c.jsNs, gateAbsolute)
  }
  for (const [op, c] of Object.entries(current.primitives ?? {})) {
    if (baseline.primitives?.[op] === undefined) check(op, 'js (÷ JS probe)', 'x', undefined, c.js, true)
  }
  for (const p of summary.problems ?? []) failures.push(`the run reported a problem: ${p}`)
  const flips = (summary.targets ?? []).filter((t) => baseline.targets?.[t.target] === true && t.pass === false).map((t) => t.target)

  // ----- report ---------------------------------------------------------------
  const lines = []
  lines.push(`baseline: ${baseline.tree} on ${baseline.date}, ${machineKey(baseline.machine)}`)
  lines.push(`this run: ${summary.tree} on ${summary.date}, ${machineKey(summary.machine)}${sameMachine ? ' (same machine)' : ''}`)
  lines.push(
    `speed probe: JS ${fmt(current.jsProbeNs, 'ns')} (baseline ${fmt(baseline.jsProbeNs, 'ns')}), Rust ${fmt(current.rustProbeNs, 'ns')} (baseline ${fmt(baseline.rustProbeNs, 'ns')})` +
      (current.primitivesProbeNs != null || baseline.primitivesProbeNs != null
        ? `, JS in the primitives suite ${fmt(current.primitivesProbeNs, 'ns')} (baseline ${fmt(baseline.primitivesProbeNs, 'ns')})`
        : ''),
  )
  lines.push(`threshold: +${(100 * threshold).toFixed(0)}% on the probe-normalised figures${gateAbsolute ? ' and on raw ns' : ''}`)
  console.log(lines.join('\n') + '\n')
  const w = { op: 24, name: 20, base: 10, cur: 10, change: 8 }
  console.log(`${'operation'.padEnd(w.op)} ${'figure'.padEnd(w.name)} ${'baseline'.padStart(w.base)} ${'this run'.padStart(w.cur)} ${'change'.padStart(w.change)}  verdict`)
  for (const r of rows) {
    console.log(`${r.op.padEnd(w.op)} ${r.name.padEnd(w.name)} ${r.base.padStart(w.base)} ${r.cur.padStart(w.cur)} ${r.change.padStart(w.change)}  ${r.verdict}`)
  }
  for (const t of flips) console.log(`note: target passed in the baseline and fails now: ${t}`)
  console.log()
  if (failures.length) {
    console.log(`FAIL: ${failures.length} problem${failures.length === 1 ? '' : 's'}`)
    for (const f of failures) console.log(`  - ${f}`)
  } else console.log('PASS: no figure regressed past the threshold')

  if (opts.markdown) {
    const md = [
      '## Benchmarks against the baseline',
      '',
      ...lines.map((l) => `- ${l}`),
      '',
      '| operation | figure | baseline | this run | change | verdict |',
      '|---|---|---:|---:|---:|---|',
      ...rows.map((r) => `| ${r.op} | ${r.name} | ${r.base} | ${r.cur} | ${r.change} | ${r.verdict} |`),
      '',
      ...flips.map((t) => `- note: target passed in the baseline and fails now: ${t}`),
      failures.length ? `**FAIL**: ${failures.length} problem(s)\n\n${failures.map((f) => `- ${f}`).join('\n')}` : '**PASS**: no figure regressed past the threshold',
      '',
    ].join('\n')
    appendFileSync(opts.markdown, md)
  }
  return failures.length === 0
}

try {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.write) writeBaseline(opts)
  else process.exitCode = compare(opts) ? 0 : 1
} catch (e) {
  console.error(`bench/compare: ${e.message}`)
  process.exitCode = 2
}
