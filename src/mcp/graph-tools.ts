/**
 * The knowledge-graph tools, with the names, argument shapes, results and
 * descriptions of the reference memory server's
 * (`@modelcontextprotocol/server-memory`), over {@link RemoteKnowledgeGraph}
 * (`KnowledgeGraph`'s graph, read through the remote API).
 * Not part of the library's API.
 * @module
 */
import { z } from 'zod'
import type { RemoteKnowledgeGraph } from './graph.js'
import { type Tool, tool } from './tool.js'

const EntitySchema = z.object({
  name: z.string().describe('The name of the entity'),
  entityType: z.string().describe('The type of the entity'),
  observations: z.array(z.string()).describe('An array of observation contents associated with the entity'),
})

const RelationSchema = z.object({
  from: z.string().describe('The name of the entity where the relation starts'),
  to: z.string().describe('The name of the entity where the relation ends'),
  relationType: z.string().describe('The type of the relation'),
})

const GraphShape = { entities: z.array(EntitySchema), relations: z.array(RelationSchema) }
const Done = { success: z.boolean(), message: z.string() }

/** The nine tools of the reference memory server. */
export function graphTools(graph: RemoteKnowledgeGraph): Tool[] {
  return [
    tool({
      name: 'create_entities',
      title: 'Create Entities',
      description: 'Create multiple new entities in the knowledge graph',
      writes: true,
      idempotent: false,
      input: { entities: z.array(EntitySchema) },
      output: { entities: z.array(EntitySchema) },
      run: async (a) => ({ entities: await graph.createEntities(a.entities) }),
    }),
    tool({
      name: 'create_relations',
      title: 'Create Relations',
      description: 'Create multiple new relations between entities in the knowledge graph. Relations should be in active voice',
      writes: true,
      idempotent: false,
      input: { relations: z.array(RelationSchema) },
      output: { relations: z.array(RelationSchema) },
      run: async (a) => ({ relations: await graph.createRelations(a.relations) }),
    }),
    tool({
      name: 'add_observations',
      title: 'Add Observations',
      description: 'Add new observations to existing entities in the knowledge graph',
      writes: true,
      idempotent: false,
      input: {
        observations: z.array(
          z.object({
            entityName: z.string().describe('The name of the entity to add the observations to'),
            contents: z.array(z.string()).describe('An array of observation contents to add'),
          }),
        ),
      },
      output: { results: z.array(z.object({ entityName: z.string(), addedObservations: z.array(z.string()) })) },
      run: async (a) => ({ results: await graph.addObservations(a.observations) }),
    }),
    tool({
      name: 'delete_entities',
      title: 'Delete Entities',
      description: 'Delete multiple entities and their associated relations from the knowledge graph',
      writes: true,
      destructive: true,
      idempotent: true,
      input: { entityNames: z.array(z.string()).describe('An array of entity names to delete') },
      output: Done,
      run: async (a) => {
        await graph.deleteEntities(a.entityNames)
        return { success: true, message: 'Entities deleted successfully' }
      },
    }),
    tool({
      name: 'delete_observations',
      title: 'Delete Observations',
      description: 'Delete specific observations from entities in the knowledge graph',
      writes: true,
      destructive: true,
      idempotent: true,
      input: {
        deletions: z.array(
          z.object({
            entityName: z.string().describe('The name of the entity containing the observations'),
            observations: z.array(z.string()).describe('An array of observations to delete'),
          }),
        ),
      },
      output: Done,
      run: async (a) => {
        await graph.deleteObservations(a.deletions)
        return { success: true, message: 'Observations deleted successfully' }
      },
    }),
    tool({
      name: 'delete_relations',
      title: 'Delete Relations',
      description: 'Delete multiple relations from the knowledge graph',
      writes: true,
      destructive: true,
      idempotent: true,
      input: { relations: z.array(RelationSchema).describe('An array of relations to delete') },
      output: Done,
      run: async (a) => {
        await graph.deleteRelations(a.relations)
        return { success: true, message: 'Relations deleted successfully' }
      },
    }),
    tool({
      name: 'read_graph',
      title: 'Read Graph',
      description: 'Read the entire knowledge graph',
      writes: false,
      input: {},
      output: GraphShape,
      run: () => graph.read(),
    }),
    tool({
      name: 'search_nodes',
      title: 'Search Nodes',
      description: 'Search for nodes in the knowledge graph based on a query',
      writes: false,
      input: { query: z.string().describe('The search query to match against entity names, types, and observation content') },
      output: GraphShape,
      run: (a) => graph.search(a.query),
    }),
    tool({
      name: 'open_nodes',
      title: 'Open Nodes',
      description: 'Open specific nodes in the knowledge graph by their names',
      writes: false,
      input: { names: z.array(z.string()).describe('An array of entity names to retrieve') },
      output: GraphShape,
      run: (a) => graph.open(a.names),
    }),
  ]
}
