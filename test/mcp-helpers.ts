// Shared helpers of the MCP suites: a real MCP client (the SDK's Client on
// StdioClientTransport) talking to `in-mem mcp` (bin/in-mem.js) or to the
// reference memory server, each a subprocess. Not a test file itself.
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { expect } from 'vitest'

export const root = join(__dirname, '..')
export const bin = join(root, 'bin', 'in-mem.js')
export const referenceServer = join(root, 'node_modules', '@modelcontextprotocol', 'server-memory', 'dist', 'index.js')

/** A connected client, its server's stderr so far, and a promise of the server's exit. */
export interface Session {
  client: Client
  transport: StdioClientTransport
  stderr: () => string
  /** Resolves when the transport closes (the server process exited or was closed). */
  closed: Promise<void>
  /** Calls a tool and returns its result. */
  call: (name: string, args?: Record<string, unknown>) => Promise<ToolResult>
  /** Calls a tool that must succeed and returns its structured content. */
  ok: <T = Record<string, unknown>>(name: string, args?: Record<string, unknown>) => Promise<T>
  /** Calls a tool that must fail and returns its error text. */
  fails: (name: string, args?: Record<string, unknown>) => Promise<string>
  close: () => Promise<void>
}

/** What a tool call returns. */
export interface ToolResult {
  isError?: boolean
  content: { type: string; text?: string }[]
  structuredContent?: Record<string, unknown>
}

function textOf(r: ToolResult): string {
  return r.content.map((c) => c.text ?? '').join('\n')
}

/** Spawns `command args` and connects an MCP client to it. */
export async function connect(command: string, args: string[], env: Record<string, string> = {}): Promise<Session> {
  const transport = new StdioClientTransport({ command, args, env: { ...(process.env as Record<string, string>), ...env }, stderr: 'pipe' })
  let err = ''
  transport.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  let markClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => (markClosed = resolve))
  const client = new Client({ name: 'in-mem-test', version: '1.0.0' })
  client.onclose = () => markClosed()
  await client.connect(transport)
  const call = async (name: string, args: Record<string, unknown> = {}): Promise<ToolResult> => (await client.callTool({ name, arguments: args })) as ToolResult
  return {
    client,
    transport,
    stderr: () => err,
    closed,
    call,
    ok: async <T>(name: string, args: Record<string, unknown> = {}) => {
      const r = await call(name, args)
      expect(r.isError, `${name} failed: ${textOf(r)}`).toBeFalsy()
      expect(r.structuredContent, `${name} returned no structured content`).toBeDefined()
      // The text content is the structured content, for clients that read only text.
      expect(JSON.parse(textOf(r))).toEqual(r.structuredContent)
      return r.structuredContent as T
    },
    fails: async (name: string, args: Record<string, unknown> = {}) => {
      const r = await call(name, args)
      expect(r.isError, `${name} succeeded with ${JSON.stringify(args)}: ${textOf(r)}`).toBe(true)
      return textOf(r)
    },
    close: async () => {
      await client.close()
      await closed
    },
  }
}

/** `in-mem mcp --dir <dir> ...extra` as a subprocess, connected. */
export function inMemMcp(dir: string, ...extra: string[]): Promise<Session> {
  return connect(process.execPath, [bin, 'mcp', '--dir', dir, ...extra])
}

/** The reference memory server, keeping its graph in `file`, connected. */
export function reference(file: string): Promise<Session> {
  return connect(process.execPath, [referenceServer], { MEMORY_FILE_PATH: file })
}
