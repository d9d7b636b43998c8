/**
 * Tick columns for tests and the compaction bench: a seeded, realistic tape (random walk on a 0.25 grid,
 * bursts of same-millisecond trades with Sierra's µs counter, quote changes, sides, sub-trade flags).
 * Allocates the columns once; no per-tick objects.
 */
import { TradeFlag } from '../../schemas/records.ts';
import { Prng } from '../sim/prng.ts';
import type { TickColumns } from './figures.ts';
import { MICROS_PER_HOUR } from './layout.ts';

export function allocColumns(n: number, withSourceId = false): TickColumns {
  const c: TickColumns = {
    tsMicros: new Float64Array(n), price: new Float64Array(n), bid: new Float64Array(n), ask: new Float64Array(n),
    size: new Uint32Array(n), flags: new Uint32Array(n), seq: new Uint32Array(n),
  };
  if (withSourceId) c.sourceId = new Uint8Array(n);
  return c;
}

/**
 * `n` ticks inside the hour starting at `hourStartMicros`, in (ts, seq) order. About 2 % are quotes
 * (price NaN); bid/ask follow the price.
 */
export function makeTape(n: number, hourStartMicros: number, seed: number, c: TickColumns = allocColumns(n)): TickColumns {
  const rnd = new Prng(seed);
  let bidTicks = 84_000 + rnd.int(-400, 400);
  const hourMs = MICROS_PER_HOUR / 1000;
  // Advance the millisecond on a fraction of ticks (bursts share one ms via Sierra's µs counter), with a
  // mean step that fills ~95 % of the hour; timestamps never go backwards.
  const advanceP = Math.min(0.6, (0.5 * hourMs) / Math.max(1, n));
  const meanStepMs = Math.max(1, (0.95 * hourMs) / Math.max(1, n * advanceP));
  let ms = Math.floor(hourStartMicros / 1000);
  const lastMs = ms + hourMs - 1;
  let counter = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0 && (rnd.next() < advanceP || counter >= 999)) {
      const next = ms + 1 + Math.round(rnd.exp(meanStepMs - 1));
      if (next <= lastMs) {
        ms = next;
        counter = 0;
      } else if (counter < 999) {
        counter++;
      }
    } else if (i > 0 && counter < 999) {
      counter++;
    }
    const r = rnd.next();
    if (r < 0.04) bidTicks++;
    else if (r < 0.08) bidTicks--;
    const buy = rnd.next() < 0.5;
    const quote = rnd.next() < 0.02;
    c.tsMicros[i] = ms * 1000 + counter;
    c.bid[i] = bidTicks * 0.25;
    c.ask[i] = (bidTicks + 1) * 0.25;
    c.price[i] = quote ? Number.NaN : (buy ? bidTicks + 1 : bidTicks) * 0.25;
    c.size[i] = quote ? 0 : 1 + Math.floor(rnd.exp(2));
    let flags = quote ? 0 : buy ? TradeFlag.SIDE_BUY : TradeFlag.SIDE_SELL;
    if (!quote && counter > 0 && rnd.next() < 0.3) flags |= TradeFlag.SUB_MIDDLE;
    c.flags[i] = flags;
    c.seq[i] = i + 1;
  }
  return c;
}
