import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Database, LockedError } from '../dist/index.js'
import { expectError, makeTmpDir, removeDir } from './helpers.js'

const holder = join(__dirname, 'fixtures', 'lock-holder.cjs')

interface Opened {
  type: 'opened'
  pid: number
  run: string
}

/** Forks a child that opens `dir`; resolves once it holds it. */
async function startHolder(dir: string): Promise<{ child: ChildProcess; opened: Opened }> {
  const child = fork(holder, [dir], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  const [msg] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`lock holder exited with ${code} before opening`)
    }),
  ])) as [Opened | { type: 'error'; message: string }]
  if (msg.type !== 'opened') throw new Error(`lock holder failed: ${JSON.stringify(msg)}`)
  return { child, opened: msg }
}

let dir: string
let children: ChildProcess[] = []

beforeEach(() => {
  dir = makeTmpDir('in-mem-lock')
  children = []
})

afterEach(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = once(c, 'exit')
      c.kill('SIGKILL')
      await exited
    }
  }
  removeDir(dir)
})

describe('one process owns a data directory', () => {
  it("another process's open throws LockedError naming the holder's pid; after it exits, open succeeds", async () => {
    const { child, opened } = await startHolder(dir)
    expect(opened.pid).toBe(child.pid)

    const err = expectError(() => Database.open(dir), LockedError, 'LOCKED')
    expect(err.details.pid).toBe(child.pid)
    expect(err.message).toContain(String(child.pid))
    // Every mode is refused alike.
    expectError(() => Database.open(dir, { durability: 'strict' }), LockedError, 'LOCKED')

    const closed = once(child, 'message')
    const exited = once(child, 'exit')
    child.send('close')
    expect((await closed)[0]).toEqual({ type: 'closed' })
    const [code] = await exited
    expect(code).toBe(0)

    const db = Database.open(dir, { durability: 'strict' })
    try {
      expect(db.kv.get(opened.run, 'owner')).toBe(child.pid)
      expect(db.runs.get(opened.run)!.name).toBe('held by child')
    } finally {
      db.close()
    }
  })

  it('the lock is released when the holder is killed with SIGKILL', async () => {
    const { child, opened } = await startHolder(dir)
    expectError(() => Database.open(dir), LockedError, 'LOCKED')
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    const [, signal] = await exited
    expect(signal).toBe('SIGKILL')

    const db = Database.open(dir, { durability: 'strict' })
    try {
      expect(db.kv.get(opened.run, 'owner')).toBe(child.pid)
      expect(db.stats().recovery.orphanedRuns).toEqual([opened.run])
    } finally {
      db.close()
    }
  })

  it('a child is refused while this process holds the directory, and gets it once this process closes', async () => {
    const db = Database.open(dir, { durability: 'strict' })
    const refused = fork(holder, [dir], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(refused)
    const refusedExit = once(refused, 'exit')
    const [msg] = (await once(refused, 'message')) as [{ type: string; code: string; details: { pid: number } }]
    expect(msg.type).toBe('error')
    expect(msg.code).toBe('LOCKED')
    expect(msg.details.pid).toBe(process.pid)
    expect((await refusedExit)[0]).toBe(1)
    db.close()

    const { child } = await startHolder(dir)
    expectError(() => Database.open(dir), LockedError, 'LOCKED')
    const exited = once(child, 'exit')
    child.send('close')
    await exited
  })
})
