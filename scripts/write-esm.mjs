// Writes each ESM entry point (dist/<entry>.mjs) as a re-export of its
// CommonJS build, so that `import` and `require` share one copy of every
// class. One line per entry point of package.json's `exports`.
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'

const ENTRIES = ['index', 'langgraph/index']

const require = createRequire(import.meta.url)
for (const entry of ENTRIES) {
  const base = entry.split('/').pop()
  const cjs = require(`../dist/${entry}.js`)
  const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule')
  writeFileSync(
    new URL(`../dist/${entry}.mjs`, import.meta.url),
    `import cjs from './${base}.js'\nexport const { ${names.join(', ')} } = cjs\nexport default cjs\n`,
  )
  writeFileSync(
    new URL(`../dist/${entry}.d.mts`, import.meta.url),
    `import * as cjs from './${base}.js'\nexport * from './${base}.js'\nexport default cjs\n`,
  )
}
