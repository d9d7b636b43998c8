/**
 * The sink's per-trade encoder (workers/redis-sink/trade-writer.ts) against a reference built the plain
 * way (strings, String(x), JSON, Date#toISOString): byte for byte the same XADD and PUBLISH commands for
 * random trades, including NaN bid/ask/price (null in the JSON, like ±Infinity, which JSON cannot carry), no side, fractional and whole timestamps, u32 extremes,
 * several sources and symbols, the key prefix, MINID once per stream per batch, and `~` / `=` trimming.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { slotViewsOf } from '../engine/journal/format.ts';
import { RECORD_SLOT_BYTES, RecordKind, TradeFlag, writeTrade } from '../schemas/records.ts';
import { idSeqPart } from '../workers/redis-sink/ids.ts';
import { MAX_TICK_BYTES, TradeWriter } from '../workers/redis-sink/trade-writer.ts';

interface Rec { src: number; sym: number; seq: number; ts: number; price: number; bid: number; ask: number; size: number; side: 0 | 1 | 2 }

const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const cmd = (...args: string[]): string => `*${args.length}\r\n${args.map(bulk).join('')}`;
const num = (x: number): string => (x === x ? String(x) : '');
function iso(ts: number): string {
  const sec = Math.floor(ts / 1e6);
  const frac = Math.floor(ts - sec * 1e6);
  return `${new Date(sec * 1000).toISOString().slice(0, 19)}.${String(frac).padStart(6, '0')}Z`;
}

function reference(r: Rec, prefix: string, symbol: string, source: string, minId: string | null, trim: string, publish: boolean): string {
  const ms = Math.floor(r.ts / 1000);
  const side = r.side === 1 ? 'B' : r.side === 2 ? 'S' : '';
  let out = cmd('XADD', `${prefix}ticks:${symbol}`, ...(minId === null ? [] : ['MINID', trim, minId]), `${ms}-${idSeqPart(r.ts, ms, r.src, r.seq)}`,
    'price', num(r.price), 'size', String(r.size), 'bid', num(r.bid), 'ask', num(r.ask), 'side', side, 'seq', String(r.seq), 'ts_us', String(r.ts),
    'source', source);
  if (publish) {
    const json = `{"symbol":${JSON.stringify(symbol)},"price":${JSON.stringify(r.price)},"size":${r.size},"side":"${side}","timestamp":"${iso(r.ts)}","ts_ms":${ms},"source":"${source}"}`;
    expect(JSON.parse(json)).toMatchObject({ symbol, size: r.size, side, ts_ms: ms, source }); // the reference itself is valid JSON
    out += cmd('PUBLISH', `${prefix}market_data:${source}:trades`, json);
  }
  return out;
}

const SYMBOLS = ['MNQZ25', 'ES', 'BRK.A', 'X_Y-Z/1:$^#', 'A'.repeat(31)];
const SOURCES: Record<number, string> = { 0: 'src0', 1: 'sierra', 2: 'sierra-depth', 7: 'dx.link:feed_1', 255: 's'.repeat(64) };

const price = fc.oneof(
  fc.integer({ min: 0, max: 4_000_000 }).map((k) => 15_000 + k * 0.25),
  fc.integer({ min: -1e9, max: 1e9 }).map((k) => k / 10_000),
  fc.double({ noDefaultInfinity: false }),
  fc.constant(NaN), fc.constant(0), fc.constant(-0), fc.constant(1e21), fc.constant(123_456_789_012.5),
);
const rec = fc.record({
  src: fc.constantFrom(0, 1, 2, 7, 255),
  sym: fc.integer({ min: 1, max: SYMBOLS.length }),
  seq: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(99_999_999, 100_000_000, 150_000_000, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
  ts: fc.oneof(
    fc.integer({ min: 1_600_000_000_000_000, max: 2_000_000_000_000_000 }),
    fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }).map((ms) => ms * 1000), // µs part 0: small IDs with source 0
    fc.integer({ min: 1_000, max: 9_000_000_000_000_000 }),
    fc.double({ min: 1_000, max: 4e15, noNaN: true }),
  ),
  price, bid: price, ask: price,
  size: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1)),
  side: fc.constantFrom(0 as const, 1 as const, 2 as const),
});

describe('TradeWriter', () => {
  it('writes exactly the XADD (+ PUBLISH) a plain string encoder writes, MINID on the first XADD of each stream per batch', () => {
    fc.assert(fc.property(
      fc.array(rec, { minLength: 1, maxLength: 40 }), fc.constantFrom('', 'tp-test:', 'p'.repeat(64)), fc.constantFrom('~' as const, '=' as const),
      fc.boolean(), fc.integer({ min: 1, max: 2_000_000_000_000 }),
      (recs, prefix, trim, publish, minIdMs) => {
        const tw = new TradeWriter(prefix, trim, 64);
        SYMBOLS.forEach((s, i) => tw.addSymbol(i + 1, s));
        for (const [id, name] of Object.entries(SOURCES)) tw.addSource(Number(id), name);
        const v = slotViewsOf(new ArrayBuffer(recs.length * RECORD_SLOT_BYTES));
        const buf = Buffer.alloc(recs.length * MAX_TICK_BYTES);
        let o = 0;
        let expected = '';
        const trimmed = new Set<number>();
        tw.beginBatch(minIdMs);
        recs.forEach((r, i) => {
          if (i === 20) { tw.beginBatch(minIdMs + 1); trimmed.clear(); } // a second batch: MINID again, new horizon
          const b = i * RECORD_SLOT_BYTES;
          const flags = (r.side === 1 ? TradeFlag.SIDE_BUY : r.side === 2 ? TradeFlag.SIDE_SELL : 0) | TradeFlag.V_OUT_OF_ORDER;
          writeTrade(v, b, RecordKind.TRADE, r.src, r.sym, r.seq, r.ts, r.price, r.bid, r.ask, r.size, flags, 3, 4, 5, 1);
          const before = o;
          o = tw.write(buf, o, v, b, r.sym, publish);
          expect(o - before).toBeLessThanOrEqual(MAX_TICK_BYTES);
          const minId = trimmed.has(r.sym) ? null : String(i >= 20 ? minIdMs + 1 : minIdMs);
          trimmed.add(r.sym);
          expected += reference(r, prefix, SYMBOLS[r.sym - 1]!, SOURCES[r.src]!, minId, trim, publish);
        });
        expect(buf.toString('latin1', 0, o)).toBe(expected);
      },
    ), { numRuns: 400 });
  });

  it('iso() is the ISO 8601 text of the µs timestamp with 6 fractional digits', () => {
    const tw = new TradeWriter('', '~', 1);
    for (const ts of [1_764_000_000_000_000, 1_764_000_000_000_001, 1_764_000_000_999_999, 1_764_000_001_123_456, 1_764_000_001_123_456 + 0.5]) {
      expect(tw.iso(ts)).toBe(iso(ts));
    }
  });
});
