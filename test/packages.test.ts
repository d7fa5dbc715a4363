// The platform packages in npm/: one per napi target, each as `napi
// pre-publish` expects it (the name and the os/cpu/libc fields that let npm
// pick the one matching package, and the binary as main and only file).
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { readNapiConfig } from '@napi-rs/cli'
import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '..')
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const config = await readNapiConfig(join(root, 'package.json'))

describe('platform packages', () => {
  it('covers the eight targets of the issue, and nothing else', () => {
    expect(config.targets.map((t) => t.platformArchABI).sort()).toEqual(
      ['darwin-arm64', 'darwin-x64', 'linux-arm64-gnu', 'linux-arm64-musl', 'linux-x64-gnu', 'linux-x64-musl', 'win32-arm64-msvc', 'win32-x64-msvc'],
    )
    expect(readdirSync(join(root, 'npm')).sort()).toEqual(config.targets.map((t) => t.platformArchABI).sort())
  })

  for (const t of config.targets) {
    it(`npm/${t.platformArchABI}`, () => {
      const dir = join(root, 'npm', t.platformArchABI)
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      const binary = `${config.binaryName}.${t.platformArchABI}.node`
      expect(pkg.name).toBe(`${config.packageName}-${t.platformArchABI}`)
      expect(pkg.version).toBe(rootPkg.version)
      expect(pkg.os).toEqual([t.platform])
      expect(pkg.cpu).toEqual([t.arch])
      if (t.platform === 'linux') expect(pkg.libc).toEqual([t.abi === 'musl' ? 'musl' : 'glibc'])
      else expect(pkg.libc).toBeUndefined()
      expect(pkg.main).toBe(binary)
      expect(pkg.files).toEqual([binary])
      expect(pkg.license).toBe(rootPkg.license)
      expect(pkg.engines).toEqual(rootPkg.engines)
      expect(pkg.repository).toEqual(rootPkg.repository)
      expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain(t.triple)
      // The generated loader asks for exactly this package on this platform.
      expect(readFileSync(join(root, 'index.js'), 'utf8')).toContain(`require('${pkg.name}')`)
      expect(existsSync(join(dir, 'index.js'))).toBe(false)
    })
  }
})
