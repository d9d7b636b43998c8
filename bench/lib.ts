/**
 * Shared shape of benchmark results (DESIGN.md §6): every figure is one entry of
 * `bench/results/latest.json`, so runs can be compared.
 */
export interface BenchResult {
  name: string;
  unit: string;
  value: number;
  baseline?: string;
  baselineValue?: number;
  ratio?: number;
  p50?: number;
  p99?: number;
  p999?: number;
  max?: number;
}

/** A benchmark suite: a file `bench/<name>.bench.ts` exporting `run`. */
export type BenchSuite = (opts: { quick: boolean }) => Promise<BenchResult[]>;

/** Round to a few significant digits for readable output without losing magnitude. */
export function sig(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0) return x;
  return Number(x.toPrecision(digits));
}
