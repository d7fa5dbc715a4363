// Shared checks of the bench tests for rows and ratios measured in
// interleaved rounds (bench/common.mjs runRounds). Not a test file itself.
import { expect } from 'vitest'

/** One round of a row, as bench/common.mjs mergeRounds records it. */
export interface Round {
  round: number
  position: number
  nsPerOp: number
  opsPerSec: number
  samples: number
  ops: number
  [figure: string]: number
}

/** A results row: measured once, or in rounds (then `rounds`, and each figure the rounds' median). */
export interface Row {
  lib: string
  op: string
  mode: string
  cls: string
  nsPerOp: number
  opsPerSec: number
  samples: number
  ops: number
  rounds?: Round[]
  [field: string]: unknown
}

/** A ratio: `ratio`, and when measured in rounds each round's in `rounds`. */
export interface Ratio {
  ratio: number
  rounds?: number[]
}

/** The median, computed here rather than taken from bench/common.mjs. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * A row measured in `rounds` rounds: one record per round, in order; its
 * ns/op the median of theirs (ops/s from it), its samples and ops their sum.
 */
export function expectRoundRow(row: Row, rounds: number): void {
  const name = `${row.lib} ${row.op} ${row.mode}`
  expect(row.rounds, name).toHaveLength(rounds)
  const rs = row.rounds!
  expect(rs.map((x) => x.round), name).toEqual(Array.from({ length: rounds }, (_, i) => i))
  for (const x of rs) {
    expect(x.nsPerOp, name).toBeGreaterThan(0)
    expect(x.ops, name).toBeGreaterThan(0)
    expect(Number.isInteger(x.position), name).toBe(true)
  }
  expect(row.nsPerOp, name).toBe(median(rs.map((x) => x.nsPerOp)))
  expect(row.opsPerSec, name).toBeCloseTo(1e9 / row.nsPerOp, 6)
  expect(row.ops, name).toBe(rs.reduce((a, x) => a + x.ops, 0))
  expect(row.samples, name).toBe(rs.reduce((a, x) => a + x.samples, 0))
}
