/**
 * The hub's JSON tick batch (api/ws/frames.ts TickBatchJsonWriter, UTF-8 bytes in one reused buffer) is byte
 * for byte the text that frameToJson gives for the same frame through WireTick objects
 * (tickBatchJsonReference), for any column values (NaN, ±Infinity, -0, extremes, prices of every tick size) and
 * any channel/symbol/source text (quotes, backslashes, control characters, non-BMP).
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { TickBatchJsonWriter, tickBatchJsonReference } from '../api/ws/frames.ts';
import { createTickColumns, type TickColumns } from '../schemas/wire.ts';

const f64 = fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 2 ** 53, 1e-300, 21_000.25));
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Prices as feeds make them: ticks of 0.25, 0.01, 1/32, 0.005 and plain random decimals, signed. */
const price = fc.oneof(
  fc.tuple(fc.integer({ min: -4_000_000, max: 4_000_000 }), fc.constantFrom(0.25, 0.01, 0.1, 0.05, 1 / 32, 0.005, 0.0001, 1e-6, 3)).map(([n, t]) => n * t),
  fc.double({ min: -1e10, max: 1e10, noNaN: true }),
  fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }).map((n) => n / 1e6),
  fc.constantFrom(0.1 + 0.2, 1.15, 0.09999999999999999, 1e-6, 9.999999e-7, 999_999_999.999999, 1e9, 1e9 + 0.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1.5e-7, 123_456.789_012_3, 5e-324, Number.MAX_VALUE),
);
const tickArb = fc.record({
  sym: fc.integer({ min: 0, max: 65535 }), seq: u32, ts: fc.oneof(f64, fc.integer({ min: 0, max: 2 ** 53 })), price: fc.oneof(price, f64), bid: price, ask: f64,
  size: u32, bs: u32, as: u32, side: fc.integer({ min: 0, max: 7 }), flags: u32,
});
type TickIn = typeof tickArb extends fc.Arbitrary<infer T> ? T : never;
const text = new TextDecoder();

/** Columns holding `ticks` from index `start` on. */
function columnsOf(ticks: readonly TickIn[], start: number): TickColumns {
  const cols = createTickColumns(start + ticks.length + 1);
  ticks.forEach((t, k) => {
    const i = start + k;
    cols.symbolId[i] = t.sym; cols.seq[i] = t.seq; cols.tsMicros[i] = t.ts; cols.price[i] = t.price; cols.bid[i] = t.bid; cols.ask[i] = t.ask;
    cols.size[i] = t.size; cols.bidSize[i] = t.bs; cols.askSize[i] = t.as; cols.side[i] = t.side; cols.flags[i] = t.flags;
  });
  return cols;
}

describe('TickBatchJsonWriter', () => {
  test('writes frameToJson of the same frame byte for byte, for any values (property)', () => {
    const w = new TickBatchJsonWriter(256); // small: the buffer must grow
    fc.assert(fc.property(
      fc.string(), fc.string({ unit: 'binary' }), fc.string(), f64, fc.array(tickArb, { maxLength: 40 }), fc.integer({ min: 0, max: 3 }),
      (channel, symbol, source, frameTs, ticks, start) => {
        const cols = columnsOf(ticks, start);
        const got = text.decode(w.write(channel, frameTs, symbol, source, cols, start, ticks.length));
        expect(got).toBe(tickBatchJsonReference(channel, frameTs, symbol, source, cols, start, ticks.length));
        expect(JSON.parse(got)).toMatchObject({ channel, payload: { type: 'tickBatch', symbol, source } });
      },
    ), { numRuns: 1000 });
  });

  test('an empty batch and a typical one parse back to the columns', () => {
    const w = new TickBatchJsonWriter();
    const cols = createTickColumns(4);
    expect(JSON.parse(text.decode(w.write('trades/MNQZ26', 1, 'MNQZ26', 'sierra', cols, 0, 0)))).toEqual({
      channel: 'trades/MNQZ26', tsMicros: 1, payload: { type: 'tickBatch', symbol: 'MNQZ26', source: 'sierra', firstSeq: 0, ticks: [] },
    });
    cols.seq[0] = 7; cols.tsMicros[0] = 1_764_000_000_000_001; cols.price[0] = 21_000.25; cols.bid[0] = 21_000; cols.ask[0] = NaN;
    cols.size[0] = 3; cols.side[0] = 1; cols.symbolId[0] = 2;
    const o = JSON.parse(text.decode(w.write('trades/MNQZ26', 5, 'MNQZ26', 'sierra', cols, 0, 1))) as { payload: { firstSeq: number; ticks: Array<Record<string, unknown>> } };
    expect(o.payload.firstSeq).toBe(7);
    expect(o.payload.ticks[0]).toEqual({ symbolId: 2, seq: 7, tsMicros: 1_764_000_000_000_001, price: 21_000.25, bid: 21_000, ask: null, size: 3, bidSize: 0, askSize: 0, side: 'buy', flags: 0 });
  });

  test('every number form: 200k prices and doubles written exactly as JSON.stringify', () => {
    const w = new TickBatchJsonWriter();
    const cols = createTickColumns(1);
    const samples = fc.sample(fc.oneof(price, fc.double()), { numRuns: 200_000, seed: 42 });
    for (const x of samples) {
      cols.price[0] = x;
      const s = text.decode(w.write('t', 0, 's', 'x', cols, 0, 1));
      const at = s.indexOf('"price":') + 8;
      const got = s.slice(at, s.indexOf(',"bid"', at));
      if (got !== JSON.stringify(x)) expect(`${got} for ${x}`).toBe(JSON.stringify(x));
    }
  });

  test('the view is reused: the next write replaces it; a grown buffer still writes whole frames', () => {
    const w = new TickBatchJsonWriter(256);
    const cols = createTickColumns(1000);
    for (let i = 0; i < 1000; i++) { cols.seq[i] = i; cols.price[i] = 21_000 + i * 0.25; cols.tsMicros[i] = 1_764_000_000_000_000 + i; }
    const one = w.write('trades/NQZ26', 1, 'NQZ26', 'sierra', cols, 0, 1);
    expect(text.decode(one)).toBe(tickBatchJsonReference('trades/NQZ26', 1, 'NQZ26', 'sierra', cols, 0, 1));
    const big = w.write('trades/NQZ26', 2, 'NQZ26', 'sierra', cols, 0, 1000);
    const parsed = JSON.parse(text.decode(big)) as { payload: { ticks: Array<{ seq: number; price: number }> } };
    expect(parsed.payload.ticks).toHaveLength(1000);
    expect(parsed.payload.ticks[999]).toMatchObject({ seq: 999, price: 21_249.75 });
    const again = w.write('quotes/NQZ26', 3, 'NQZ26', 'dxlink', cols, 5, 2);
    expect(text.decode(again)).toBe(tickBatchJsonReference('quotes/NQZ26', 3, 'NQZ26', 'dxlink', cols, 5, 2));
  });
});
