import { defineConfig } from 'vitest/config'

// The LangGraph checkpointer validation suite (@langchain/langgraph-checkpoint-validation)
// calls describe/it/expect as globals, so it runs in a project of its own with
// `globals: true`; every other suite imports them from vitest.
const VALIDATION = 'test/langgraph-validation.test.ts'

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'in-mem', include: ['test/**/*.test.ts'], exclude: [VALIDATION] } },
      { extends: true, test: { name: 'langgraph-validation', include: [VALIDATION], globals: true } },
    ],
  },
})
