/**
 * The hub's JSON tick batch (api/ws/frames.ts tickBatchJson, built as one string) is byte for byte the text
 * that frameToJson gives for the same frame through WireTick objects, for any column values (NaN, ±Infinity,
 * -0, extremes) and any channel/symbol/source text (quotes, backslashes, control characters, non-BMP).
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { tickBatchJson, tickBatchJsonReference } from '../api/ws/frames.ts';
import { createTickColumns } from '../schemas/wire.ts';

const f64 = fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 2 ** 53, 1e-300, 21_000.25));
const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe('tickBatchJson', () => {
  test('equals frameToJson of the same frame, for any values (property)', () => {
    fc.assert(fc.property(
      fc.string(), fc.string({ unit: 'binary' }), fc.string(), f64,
      fc.array(fc.record({ sym: fc.integer({ min: 0, max: 65535 }), seq: u32, ts: f64, price: f64, bid: f64, ask: f64, size: u32, bs: u32, as: u32, side: fc.integer({ min: 0, max: 3 }), flags: u32 }), { maxLength: 20 }),
      fc.integer({ min: 0, max: 3 }),
      (channel, symbol, source, frameTs, ticks, start) => {
        const cols = createTickColumns(32);
        ticks.forEach((t, k) => {
          const i = start + k;
          cols.symbolId[i] = t.sym; cols.seq[i] = t.seq; cols.tsMicros[i] = t.ts; cols.price[i] = t.price; cols.bid[i] = t.bid; cols.ask[i] = t.ask;
          cols.size[i] = t.size; cols.bidSize[i] = t.bs; cols.askSize[i] = t.as; cols.side[i] = t.side; cols.flags[i] = t.flags;
        });
        const fast = tickBatchJson(channel, frameTs, symbol, source, cols, start, ticks.length);
        expect(fast).toBe(tickBatchJsonReference(channel, frameTs, symbol, source, cols, start, ticks.length));
        expect(JSON.parse(fast)).toMatchObject({ channel, payload: { type: 'tickBatch', symbol, source } });
      },
    ), { numRuns: 300 });
  });

  test('an empty batch and a typical one parse back to the columns', () => {
    const cols = createTickColumns(4);
    expect(JSON.parse(tickBatchJson('trades/MNQZ26', 1, 'MNQZ26', 'sierra', cols, 0, 0))).toEqual({
      channel: 'trades/MNQZ26', tsMicros: 1, payload: { type: 'tickBatch', symbol: 'MNQZ26', source: 'sierra', firstSeq: 0, ticks: [] },
    });
    cols.seq[0] = 7; cols.tsMicros[0] = 1_764_000_000_000_001; cols.price[0] = 21_000.25; cols.bid[0] = 21_000; cols.ask[0] = NaN;
    cols.size[0] = 3; cols.side[0] = 1; cols.symbolId[0] = 2;
    const o = JSON.parse(tickBatchJson('trades/MNQZ26', 5, 'MNQZ26', 'sierra', cols, 0, 1)) as { payload: { firstSeq: number; ticks: Array<Record<string, unknown>> } };
    expect(o.payload.firstSeq).toBe(7);
    expect(o.payload.ticks[0]).toEqual({ symbolId: 2, seq: 7, tsMicros: 1_764_000_000_000_001, price: 21_000.25, bid: 21_000, ask: null, size: 3, bidSize: 0, askSize: 0, side: 'buy', flags: 0 });
  });
});
