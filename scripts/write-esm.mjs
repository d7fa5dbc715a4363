// Writes an ESM entry point beside each CommonJS entry point of dist/
// (dist/<entry>.mjs and its types dist/<entry>.d.mts) as a re-export of the
// CommonJS build, so that `import` and `require` share one copy of every
// class. ENTRIES lists the package's entry points: `in-mem` (index) and its
// subpath exports, each also in package.json's "exports".
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'

const ENTRIES = ['index', 'mcp', 'langgraph/index']

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
