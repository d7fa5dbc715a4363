#!/usr/bin/env node
// The `in-mem` command: see `in-mem --help` and the README's CLI section.
// The code is src/cli.ts, compiled to dist/cli.js by `npm run build:ts`.
'use strict'
process.stdout.on('error', (e) => {
  // A closed pipe (`in-mem runs list | head`) ends the output quietly.
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw e
})
require('../dist/cli.js')
  .main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code
    },
    (e) => {
      process.stderr.write(`in-mem: ${e && e.stack ? e.stack : e} (INTERNAL)\n`)
      process.exitCode = 1
    },
  )
