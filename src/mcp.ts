/**
 * `in-mem/mcp`: a Model Context Protocol server over an in-mem database, so
 * that desktop and IDE agents can use it as their memory. `in-mem mcp --dir
 * ./data` serves a directory on stdio; {@link createMcpServer} builds the
 * same server for a transport of your own. This entry point loads
 * `@modelcontextprotocol/sdk` and `zod`; the main entry (`in-mem`) does not.
 *
 * ```ts
 * import { Database } from 'in-mem'
 * import { createMcpServer } from 'in-mem/mcp'
 * import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
 * await createMcpServer(Database.open('./agent-data')).connect(new StdioServerTransport())
 * ```
 * @module
 */
export { createMcpServer } from './mcp/server.js'
export type { McpServerOptions } from './mcp/server.js'
export { GRAPH_TAG, KnowledgeGraph } from './mcp/graph.js'
export type { Entity, Graph, ObservationAddition, ObservationDeletion, ObservationsAdded, Relation } from './mcp/graph.js'
