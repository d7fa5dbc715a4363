// Helpers of the suites that start worker_threads. Not a test file.
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'

export const fixture = (name: string): string => join(__dirname, 'fixtures', name)

/**
 * Starts the worker `test/fixtures/<script>` and resolves with its one
 * message; rejects if it fails or exits first.
 */
export function runWorker<T>(script: string, workerData: unknown): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(fixture(script), { workerData })
  const result = new Promise<T>((resolve, reject) => {
    let message: { value: T } | undefined
    worker.once('message', (m: T) => {
      message = { value: m }
    })
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (message) resolve(message.value)
      else reject(new Error(`${script} exited with code ${code} before reporting`))
    })
  })
  return { worker, result }
}
