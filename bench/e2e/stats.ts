/**
 * Shared pieces of the end-to-end bench: latency histograms (hdr-histogram, µs) and their summary, the
 * checksum of a tick (integer price ticks × size, exact in a double far beyond these runs), the tick
 * generator the writer uses, and the messages between the harness and its worker threads.
 */
import * as hdr from 'hdr-histogram-js';

/** Percentiles drawn in the SVG plot (log axis of 1 / (1 − p)). */
export const CURVE_PERCENTILES = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99] as const;

export interface LatencySummary {
  count: number;
  /** µs */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** [percentile, µs] at CURVE_PERCENTILES */
  curve: Array<[number, number]>;
}

export function latencyHistogram(): hdr.Histogram {
  // 1 µs .. 10 min, 3 significant digits; the JS implementation (no wasm) works in any thread
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

/** Record a latency in µs (clamped to the histogram's range: a clock step never throws). */
export function recordLatency(h: hdr.Histogram, us: number): void {
  h.recordValue(Math.min(599_999_999, Math.max(1, Math.round(us))));
}

export function summarize(h: hdr.Histogram): LatencySummary {
  const n = h.totalCount;
  // hdr-histogram-js (JS implementation) sometimes answers 0 for a high percentile of a small sample:
  // a percentile is never below a lower one, and 0 with samples present means the top bucket (max)
  const at = (p: number): number => {
    if (n === 0) return 0;
    const v = h.getValueAtPercentile(p);
    const floor = p > 50 ? h.getValueAtPercentile(50) : 0;
    return v === 0 || v < floor ? h.maxValue : v;
  };
  return {
    count: n, p50: at(50), p99: at(99), p999: at(99.9), max: n === 0 ? 0 : h.maxValue,
    curve: CURVE_PERCENTILES.map((p) => [p, at(p)]),
  };
}

/** Wall clock in Unix µs with sub-ms resolution (the same clock in every thread of the process). */
export function nowMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export const TICK = 0.25;

/** Checksum term of a trade: integer price ticks × size. */
export function tickSum(price: number, size: number): number {
  return Math.round(price / TICK) * size;
}

export interface SymbolTotals { count: number; sum: number }

/** Per-symbol tick generator: a random walk in 0.25 steps around a base, sizes 1..20, bid/ask around. */
export class TickGen {
  price: number;
  readonly base: number;
  #rng: number;
  constructor(base: number, seed: number) {
    this.base = base;
    this.price = base;
    this.#rng = seed >>> 0 || 1;
  }

  #next(): number {
    // xorshift32
    let x = this.#rng;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.#rng = x;
    return x;
  }

  /** Advance; returns the size (1..20) and moves `price`; `side` is 1 (buy) or 2 (sell). */
  step(): { size: number; side: number } {
    const r = this.#next();
    const move = (r % 3) - 1;
    let p = this.price + move * TICK;
    if (Math.abs(p - this.base) > 40 * TICK) p = this.price - move * TICK;
    this.price = p;
    return { size: 1 + ((r >>> 8) % 20), side: 1 + ((r >>> 16) & 1) };
  }
}

export function basePriceOf(symbol: string): number {
  if (symbol.startsWith('MES') || symbol.startsWith('ES')) return 6000;
  return 21000;
}

// ---- worker messages ------------------------------------------------------------------------------------

export interface WriterData {
  files: Array<{ symbol: string; path: string }>;
  rate: number;
  /** writing time in all: the warm-up and the measured window */
  seconds: number;
  /** Int32 flag: the harness sets [0] = 1 to start writing. */
  control: SharedArrayBuffer;
  seed: number;
}

export interface WriterDone {
  type: 'writer-done';
  totals: Record<string, SymbolTotals>;
  seconds: number;
  flushes: number;
  /** Most ticks written behind schedule at any moment (pacing quality). */
  maxBacklog: number;
}

export type ObserverMode = 'latest' | 'ws' | 'redis';

export interface ObserverData {
  mode: ObserverMode;
  /**
   * Float64 [0]: the measured window's start (Unix µs; 0 until the harness starts the writer). Latency is
   * recorded for ticks whose event time is at or after it; ticks of the warm-up before it are counted and
   * summed like every other (zero loss is checked over all of them), and go only to `latencyAll`.
   */
  clock: SharedArrayBuffer;
  symbols: Array<{ symbol: string; id: number }>;
  /** latest: the LatestTable buffer */
  latest?: SharedArrayBuffer;
  /** ws: `ws://127.0.0.1:<port>/ws?format=json|binary&token=KEY` */
  url?: string;
  /** ws: the frames the clients asked for (the url's format) */
  format?: 'json' | 'binary';
  clients?: number;
  /** redis: URL with the db number */
  redisUrl?: string;
  channel?: string;
}

export interface WsClientTotals {
  /** per symbol */
  symbols: Record<string, { count: number; sum: number; firstSeq: number; lastSeq: number; seqBreaks: number }>;
  closed: string | null;
}

export interface ObserverDone {
  type: 'observer-done';
  mode: ObserverMode;
  /** ticks of the measured window (event time ≥ the clock's start) */
  latency: LatencySummary;
  /** every tick, the warm-up included */
  latencyAll: LatencySummary;
  /** ws: one entry per client; redis: one entry (channel messages); latest: updates seen per symbol */
  clients: WsClientTotals[];
  errors: string[];
  /** the observer thread's event-loop utilisation over its run (1 = saturated) */
  utilization: number;
}
