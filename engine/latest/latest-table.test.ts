import { describe, expect, test } from 'vitest';
import { isEngineError } from '../errors.ts';
import { createRing } from '../ring/ring.ts';
import { SymbolRegistry } from '../symbols/registry.ts';
import * as L from './layout.ts';
import { LatestSnapshot, LatestTable, READ_ATTEMPTS, microsToIso } from './latest-table.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isEngineError(e) ? e.code : `not an EngineError: ${String(e)}`;
  }
  return 'no error';
}

describe('latest table layout', () => {
  test('slot geometry: 8-aligned fields, slot a multiple of 64 bytes, slots 128-aligned', () => {
    expect(L.SLOT_BYTES % 64).toBe(0);
    expect(L.HEADER_BYTES % 64).toBe(0);
    expect(L.latestSlotByte(1) % 128).toBe(0);
    expect(L.latestSlotByte(2) - L.latestSlotByte(1)).toBe(L.SLOT_BYTES);
    expect(L.VERSION_BYTE).toBe(0);
    expect(L.FIELDS_BYTE % 8).toBe(0);
    const fieldBytes = [
      L.TRADE_TS_MICROS_BYTE, L.TRADE_PRICE_BYTE, L.TRADE_SIZE_BYTE, L.TRADE_SIDE_BYTE, L.TRADE_SEQ_BYTE,
      L.QUOTE_TS_MICROS_BYTE, L.BID_BYTE, L.BID_SIZE_BYTE, L.ASK_BYTE, L.ASK_SIZE_BYTE,
      L.TRADE_COUNT_BYTE, L.QUOTE_COUNT_BYTE, L.UPDATE_COUNT_BYTE, L.LAST_TS_MICROS_BYTE,
    ];
    expect(fieldBytes).toHaveLength(L.FIELD_COUNT);
    // contiguous f64 run from FIELDS_BYTE, inside the slot, not overlapping the version word
    fieldBytes.forEach((b, i) => expect(b).toBe(L.FIELDS_BYTE + 8 * i));
    expect(L.LAST_TS_MICROS_BYTE + 8).toBeLessThanOrEqual(L.SLOT_BYTES);
    const fIdx = [
      L.F_TRADE_TS_MICROS, L.F_TRADE_PRICE, L.F_TRADE_SIZE, L.F_TRADE_SIDE, L.F_TRADE_SEQ, L.F_QUOTE_TS_MICROS, L.F_BID,
      L.F_BID_SIZE, L.F_ASK, L.F_ASK_SIZE, L.F_TRADE_COUNT, L.F_QUOTE_COUNT, L.F_UPDATE_COUNT, L.F_LAST_TS_MICROS,
    ];
    expect(fIdx).toEqual([...Array(L.FIELD_COUNT).keys()]);
    expect(Atomics.isLockFree(4)).toBe(true);
  });

  test('buffer size and capacity limits', () => {
    const t = LatestTable.create(10);
    expect(t.buffer.byteLength).toBe(L.HEADER_BYTES + 11 * L.SLOT_BYTES);
    expect(t.capacity).toBe(10);
    expect(LatestTable.create(L.MAX_CAPACITY).capacity).toBe(65535);
    expect(codeOf(() => LatestTable.create(0))).toBe('ENGINE_ERR_INVALID_ARG');
    expect(codeOf(() => LatestTable.create(65536))).toBe('ENGINE_ERR_INVALID_ARG');
    expect(codeOf(() => LatestTable.create(1.5))).toBe('ENGINE_ERR_INVALID_ARG');
  });
});

describe('attach', () => {
  test('attaches to a table made elsewhere and sees its data', () => {
    const a = LatestTable.create(4);
    a.writeTrade(2, 1_700_000_000_000_000, 100.25, 3, 1, 7);
    const b = LatestTable.attach(a.buffer);
    const s = new LatestSnapshot();
    expect(b.read(2, s)).toBe(true);
    expect([s.price, s.size, s.side, s.seq]).toEqual([100.25, 3, 1, 7]);
  });

  test('wrong, short or foreign buffers are ENGINE_ERR_LAYOUT', () => {
    const good = LatestTable.create(4).buffer;
    expect(codeOf(() => LatestTable.attach(new ArrayBuffer(4096) as unknown as SharedArrayBuffer))).toBe('ENGINE_ERR_LAYOUT');
    expect(codeOf(() => LatestTable.attach({} as SharedArrayBuffer))).toBe('ENGINE_ERR_LAYOUT');
    expect(codeOf(() => LatestTable.attach(new SharedArrayBuffer(16)))).toBe('ENGINE_ERR_LAYOUT'); // short
    expect(codeOf(() => LatestTable.attach(new SharedArrayBuffer(good.byteLength)))).toBe('ENGINE_ERR_LAYOUT'); // zeros
    expect(codeOf(() => LatestTable.attach(createRing({ slotCount: 64, slotBytes: 64 })))).toBe('ENGINE_ERR_LAYOUT'); // a ring
    expect(codeOf(() => LatestTable.attach(SymbolRegistry.create({ capacity: 8 }).buffer))).toBe('ENGINE_ERR_LAYOUT'); // a registry
    // right header, wrong length: a truncated copy
    const shortCopy = new SharedArrayBuffer(good.byteLength - L.SLOT_BYTES);
    new Uint8Array(shortCopy).set(new Uint8Array(good, 0, shortCopy.byteLength));
    expect(codeOf(() => LatestTable.attach(shortCopy))).toBe('ENGINE_ERR_LAYOUT');
    // right length, other layout version
    const other = new SharedArrayBuffer(good.byteLength);
    new Uint8Array(other).set(new Uint8Array(good));
    new Int32Array(other)[L.LAYOUT_VERSION_I32] = 99;
    expect(codeOf(() => LatestTable.attach(other))).toBe('ENGINE_ERR_LAYOUT');
  });
});

describe('writes and reads', () => {
  const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;

  test('a fresh slot reads as never written', () => {
    const t = LatestTable.create(4);
    const s = new LatestSnapshot();
    expect(t.read(1, s)).toBe(true);
    expect(s.updateCount).toBe(0);
    expect(s.price).toBeNaN();
    expect(s.bid).toBeNaN();
    expect(t.readJson(1, 'MNQZ25')).toBeNull();
  });

  test('trade, quote and tick update their fields and counters', () => {
    const t = LatestTable.create(4);
    const s = new LatestSnapshot();
    t.writeQuote(3, T0, 21000, 5, 21000.25, 7);
    t.writeTrade(3, T0 + 1, 21000.25, 2, 1, 10);
    expect(t.read(3, s)).toBe(true);
    expect(s).toMatchObject({
      id: 3, tradeTsMicros: T0 + 1, price: 21000.25, size: 2, side: 1, seq: 10, quoteTsMicros: T0,
      bid: 21000, bidSize: 5, ask: 21000.25, askSize: 7, tradeCount: 1, quoteCount: 1, updateCount: 2, lastTsMicros: T0 + 1,
    });
    expect(s.version % 2).toBe(0);
    expect(s.version).toBe(4); // two writes, two version bumps each

    // a tick repeating the quote counts a trade, not a quote change
    t.writeTick(3, T0 + 2, 21000, 1, 2, 11, 21000, 5, 21000.25, 7);
    expect(t.read(3, s)).toBe(true);
    expect([s.tradeCount, s.quoteCount, s.updateCount, s.seq, s.side, s.quoteTsMicros]).toEqual([2, 1, 3, 11, 2, T0 + 2]);
    // a tick with a new quote counts both
    t.writeTick(3, T0 + 3, 21000.5, 4, 1, 12, 21000.25, 9, 21000.5, 1);
    expect(t.read(3, s)).toBe(true);
    expect([s.tradeCount, s.quoteCount, s.updateCount, s.bid, s.ask]).toEqual([3, 2, 4, 21000.25, 21000.5]);
    // a tick without a quote (both NaN) leaves the quote alone
    t.writeTick(3, T0 + 4, 21000.75, 1, 0, 13, NaN, 0, NaN, 0);
    expect(t.read(3, s)).toBe(true);
    expect([s.price, s.bid, s.ask, s.quoteTsMicros, s.quoteCount, s.lastTsMicros]).toEqual([21000.75, 21000.25, 21000.5, T0 + 3, 2, T0 + 4]);

    // other slots untouched
    expect(t.read(2, s)).toBe(true);
    expect(s.updateCount).toBe(0);
  });

  test('readRaw copies the F_* layout into a Float64Array', () => {
    const t = LatestTable.create(4);
    t.writeTick(1, T0, 100, 2, 1, 5, 99.75, 3, 100.25, 4);
    const raw = new Float64Array(L.FIELD_COUNT);
    expect(t.readRaw(1, raw)).toBe(true);
    expect(raw[L.F_TRADE_PRICE]).toBe(100);
    expect(raw[L.F_BID]).toBe(99.75);
    expect(raw[L.F_ASK_SIZE]).toBe(4);
    expect(raw[L.F_UPDATE_COUNT]).toBe(1);
    expect(codeOf(() => t.readRaw(1, new Float64Array(3)))).toBe('ENGINE_ERR_INVALID_ARG');
  });

  test('readJson: API shape, NaN as null, µs ISO time', () => {
    const t = LatestTable.create(4);
    t.writeQuote(1, T0 + 123_456, 21000, 5, 21000.25, 7);
    expect(t.readJson(1, 'MNQZ25')).toMatchObject({ symbol: 'MNQZ25', price: null, size: null, side: null, ts: null, bid: 21000, quote_ts: '2025-11-11T14:30:00.123456Z', updates: 1 });
    t.writeTrade(1, T0 + 123_457, 21000.25, 2, 2, 9);
    const j = t.readJson(1, 'MNQZ25');
    expect(j).toEqual({
      symbol: 'MNQZ25', ts: '2025-11-11T14:30:00.123457Z', ts_us: T0 + 123_457, ts_ms: T0 / 1000 + 123, price: 21000.25, size: 2,
      side: 'sell', seq: 9, bid: 21000, bid_size: 5, ask: 21000.25, ask_size: 7, quote_ts: '2025-11-11T14:30:00.123456Z',
      trade_count: 1, quote_count: 1, updates: 2, last_update_ts: '2025-11-11T14:30:00.123457Z',
    });
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect(microsToIso(NaN)).toBeNull();
    expect(microsToIso(1)).toBe('1970-01-01T00:00:00.000001Z');
  });

  test('ids outside 1..capacity are ENGINE_ERR_UNKNOWN_SYMBOL on every entry point', () => {
    const t = LatestTable.create(4);
    const s = new LatestSnapshot();
    for (const id of [0, 5, -1, 1.5, NaN, 65536]) {
      expect(codeOf(() => t.read(id, s))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
      expect(codeOf(() => t.readRaw(id, new Float64Array(L.FIELD_COUNT)))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
      expect(codeOf(() => t.writeTrade(id, 1, 1, 1, 1, 1))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
      expect(codeOf(() => t.writeQuote(id, 1, 1, 1, 1, 1))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
      expect(codeOf(() => t.writeTick(id, 1, 1, 1, 1, 1, 1, 1, 1, 1))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
      expect(codeOf(() => t.readJson(id, 'X'))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
    }
  });
});

describe('seqlock edge cases (single thread, driving the version word by hand)', () => {
  const versionIndex = (id: number): number => (L.latestSlotByte(id) + L.VERSION_BYTE) >> 2;

  test('a slot left mid-write (odd version) reads as busy after bounded attempts, never hangs', () => {
    const t = LatestTable.create(4);
    t.writeTrade(1, 10, 100, 1, 1, 1);
    const i32 = new Int32Array(t.buffer);
    i32[versionIndex(1)] = 3; // what a writer that died between its two stores leaves behind
    const s = new LatestSnapshot();
    const started = performance.now();
    expect(t.read(1, s)).toBe(false);
    expect(t.read(1, s, 1)).toBe(false);
    expect(codeOf(() => t.readJson(1, 'MNQZ25'))).toBe('ENGINE_ERR_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(READ_ATTEMPTS).toBeGreaterThan(0);
    // the next writer recovers the slot: it stays odd while writing, then goes even
    t.writeTrade(1, 11, 100.25, 2, 2, 2);
    expect(i32[versionIndex(1)]).toBe(4);
    expect(t.read(1, s)).toBe(true);
    expect([s.price, s.seq, s.tradeCount]).toEqual([100.25, 2, 2]);
  });

  test('the version wraps around int32 keeping its parity', () => {
    const t = LatestTable.create(2);
    const i32 = new Int32Array(t.buffer);
    i32[versionIndex(2)] = 0x7ffffffe; // even, one write from the wrap
    const s = new LatestSnapshot();
    t.writeTrade(2, 1, 1, 1, 1, 1);
    expect(i32[versionIndex(2)]).toBe(-0x80000000);
    expect(t.read(2, s)).toBe(true);
    t.writeTrade(2, 2, 2, 2, 2, 2);
    expect(i32[versionIndex(2)]).toBe(-0x7ffffffe);
    expect(t.read(2, s)).toBe(true);
    expect(s.seq).toBe(2);
  });
});
