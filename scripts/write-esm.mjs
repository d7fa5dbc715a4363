// Writes the ESM entry point (dist/index.mjs) as a re-export of the CommonJS
// build, so that `import` and `require` share one copy of every class.
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'

const require = createRequire(import.meta.url)
const cjs = require('../dist/index.js')
const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule')
writeFileSync(
  new URL('../dist/index.mjs', import.meta.url),
  `import cjs from './index.js'\nexport const { ${names.join(', ')} } = cjs\nexport default cjs\n`,
)
writeFileSync(
  new URL('../dist/index.d.mts', import.meta.url),
  `import * as cjs from './index.js'\nexport * from './index.js'\nexport default cjs\n`,
)
