/**
 * How the MCP server's tools are declared and registered: a tool is its
 * name, a one-line description, zod shapes for its arguments and its result,
 * whether it writes, and a function. Registration adds what every tool
 * shares: arguments checked strictly (an unknown argument is an error that
 * names it), results made JSON-safe and returned both as structured content
 * and as text, and every error — ours or the engine's — returned as an MCP
 * error result, never thrown at the transport. Not part of the library's API.
 * @module
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { InMemError } from '../errors.js'
import { jsonSafe } from '../cli/format.js'

/** A tool of the server. */
export interface Tool<I extends z.ZodRawShape = z.ZodRawShape, O extends z.ZodRawShape = z.ZodRawShape> {
  /** The tool's name (`kv_put`). */
  name: string
  /** A short title for people. */
  title: string
  /** One line an LLM can act on. */
  description: string
  /** The arguments. */
  input: I
  /** The structured result. */
  output: O
  /** Whether it changes the database (left out by `readOnly`). */
  writes: boolean
  /** Whether calling it twice with the same arguments has the effect of calling it once (a hint to clients). */
  idempotent?: boolean
  /** Whether it deletes data (a hint to clients). */
  destructive?: boolean
  /** Does the work; what it returns is made JSON-safe (bigints and bytes tagged) and must fit `output`. */
  run: (args: z.infer<z.ZodObject<I>>) => unknown
}

/** Declares a tool; the identity, for the types of `run`'s arguments. */
export function tool<I extends z.ZodRawShape, O extends z.ZodRawShape>(t: Tool<I, O>): Tool {
  return t as unknown as Tool
}

/** An error as a tool's error result: `<message> (<CODE>)`, as the CLI prints it. */
export function errorResult(e: unknown, log: (line: string) => void): CallToolResult {
  let text: string
  if (e instanceof InMemError) text = `${e.message} (${e.code})`
  else {
    const err = e instanceof Error ? e : new Error(String(e))
    log(`in-mem mcp: unexpected error: ${err.stack ?? err.message}`)
    text = `internal error: ${err.message} (INTERNAL)`
  }
  return { content: [{ type: 'text', text }], isError: true }
}

/** Registers `t` on `server`. */
export function register(server: McpServer, t: Tool, log: (line: string) => void): void {
  server.registerTool(
    t.name,
    {
      title: t.title,
      description: t.description,
      inputSchema: z.object(t.input).strict(),
      outputSchema: t.output,
      annotations: {
        title: t.title,
        readOnlyHint: !t.writes,
        destructiveHint: t.writes ? t.destructive === true : undefined,
        idempotentHint: t.idempotent ?? !t.writes,
        openWorldHint: false,
      },
    },
    async (args: Record<string, unknown>): Promise<CallToolResult> => {
      try {
        const result = jsonSafe(await t.run(args)) as Record<string, unknown>
        return { content: [{ type: 'text', text: JSON.stringify(result, null, 2) }], structuredContent: result }
      } catch (e) {
        return errorResult(e, log)
      }
    },
  )
}

// ---------------------------------------------------------------- shared schemas

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** A run id argument. */
export const runId = (what = 'the run'): z.ZodString =>
  z.string().regex(UUID, 'must be a run id: a lowercase UUID such as 01936f0e-8c2a-7d41-9a53-3f0a9c1e2b7d').describe(`${what}'s id`)

/** A value argument: any JSON value, `null` included, but present. */
export const jsonValue = (description: string): z.ZodType<unknown> =>
  z
    .unknown()
    .refine((v) => v !== undefined, { message: 'is required: any JSON value (null included)' })
    .describe(description)

/** A stored value in a result (bigints as `{"$bigint": "…"}`, bytes as `{"$bytes": "<base64>"}`). */
export const storedValue = (description: string): z.ZodType<unknown> => z.unknown().describe(description)

/** A whole number ≥ `min`. */
export const wholeNumber = (description: string, min = 0): z.ZodNumber => z.number().int().min(min).describe(description)

/** What the run index says of a run (`RunInfo`). */
export const runInfo = z
  .object({
    id: z.string(),
    name: z.string().optional(),
    status: z.enum(['active', 'paused', 'completed', 'failed', 'cancelled', 'archived']),
    parent: z.string().optional(),
    tags: z.array(z.string()),
    metadata: z.unknown().optional(),
    createdAt: z.number(),
    endedAt: z.number().optional(),
    error: z.string().optional(),
    forkedAt: z.number().optional(),
  })
  .describe('a run: id, name, status, parent, tags, metadata, createdAt/endedAt (ms since the epoch), error')

/** One event of a run's log. */
export const event = z.object({
  sequence: z.number(),
  type: z.string(),
  payload: z.unknown(),
  hash: z.string(),
  prevHash: z.string(),
  timestamp: z.number(),
})

/** A trace. */
export const trace = z.object({
  id: z.string(),
  type: z.string(),
  data: z.unknown(),
  parent: z.string().optional(),
  tags: z.array(z.string()),
  metadata: z.unknown().optional(),
  timestamp: z.number(),
})

/** A trace with its subtree (recursive: children are checked as values). */
export const traceNode = z.object({ trace, children: z.array(z.unknown()) })
