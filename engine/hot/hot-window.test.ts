/**
 * Single-thread correctness of the hot window against a naive model (a plain array of every accepted
 * trade, with the rules of the logical window written out the obvious way: slice, filter):
 * fast-check runs random schedules of appends (duplicate ts, jumps of exactly the retention, out-of-order
 * and non-finite ts, two interleaved symbols) and queries (newest N, since T on and around existing ts,
 * limits, count, heldFromMicros) on rings small enough to wrap many times.
 * Plus examples that pin the rules down one by one, the 2^31 / 2^32 count wrap, appendFromSlot and toObjects.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { createRing, RingWriter } from '../ring/ring.ts';
import { RECORD_RING_KIND, RECORD_SLOT_BYTES, RecordKind, TradeFlag, writeTrade } from '../../schemas/records.ts';
import { createHotColumns, toObjects, type HotColumns } from './hot-columns.ts';
import { createHotWindowAtCount, HOT_BUSY, HotWindow } from './hot-window.ts';
import { DEFAULT_CAPACITY, DEFAULT_RETAIN_MICROS, ENTRY_BYTES, guardEntries, hotBytes } from './layout.ts';

const T0 = 1_763_000_000_000_000; // Nov 2025 in Unix µs

interface Row { ts: number; price: number; bid: number; ask: number; size: number; flags: number; seq: number; src: number }

/** The window's rules, written the naive way. */
class Model {
  readonly rows: Row[] = [];
  rejectedTs = -Infinity;
  rejectedOlder = 0;
  rejectedBad = 0;
  constructor(readonly maxHeld: number, readonly retain: number) {}

  append(r: Row): boolean {
    if (!Number.isFinite(r.ts)) { this.rejectedBad++; return false; }
    const last = this.rows[this.rows.length - 1];
    if (last !== undefined && r.ts < last.ts) {
      this.rejectedOlder++;
      this.rejectedTs = Math.max(this.rejectedTs, r.ts);
      return false;
    }
    // what the window stores: u32 / u8 truncation
    this.rows.push({ ...r, size: r.size >>> 0, flags: r.flags >>> 0, seq: r.seq >>> 0, src: r.src & 0xff });
    return true;
  }

  logical(): { rows: Row[]; heldFrom: number; newestTs: number } {
    const n = this.rows.length;
    if (n === 0) return { rows: [], heldFrom: Infinity, newestTs: NaN };
    const low = Math.max(0, n - this.maxHeld);
    const readable = this.rows.slice(low);
    const newestTs = readable[readable.length - 1]!.ts;
    const heldFrom = Math.max(low === 0 ? readable[0]!.ts : readable[0]!.ts + 1, this.rejectedTs + 1, newestTs - this.retain);
    return { rows: readable.filter((r) => r.ts >= heldFrom), heldFrom, newestTs };
  }

  newest(n: number, outCap: number): Row[] {
    const all = this.logical().rows;
    const k = Math.min(n, outCap, all.length);
    return all.slice(all.length - k);
  }

  since(t: number, limit: number, outCap: number): { rows: Row[]; more: boolean } {
    const after = this.logical().rows.filter((r) => r.ts >= t);
    const k = Math.min(limit, outCap, after.length);
    return { rows: after.slice(0, k), more: after.length > k };
  }
}

function rowsOf(out: HotColumns): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < out.length; i++) {
    rows.push({
      ts: out.tsMicros[i]!, price: out.price[i]!, bid: out.bid[i]!, ask: out.ask[i]!, size: out.size[i]!, flags: out.flags[i]!,
      seq: out.seq[i]!, src: out.sourceId[i]!,
    });
  }
  return rows;
}

function appendRow(w: HotWindow, id: number, r: Row): boolean {
  return w.append(id, r.ts, r.price, r.bid, r.ask, r.size, r.flags, r.seq, r.src);
}

// ---- generators ---------------------------------------------------------------------------------------------

const RETAIN = 100; // µs: small, so that expiry and wrap both happen within a schedule

/** ts steps: duplicates, small steps, exactly the retention, one past it, far jumps, and bad ones. */
const tsStep = fc.oneof(
  { weight: 4, arbitrary: fc.constant(0) },
  { weight: 10, arbitrary: fc.integer({ min: 1, max: 30 }) },
  { weight: 2, arbitrary: fc.constantFrom(RETAIN, RETAIN + 1, RETAIN - 1) },
  { weight: 1, arbitrary: fc.integer({ min: 101, max: 1000 }) },
  { weight: 2, arbitrary: fc.integer({ min: -50, max: -1 }) }, // out of order: rejected
  { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity) }, // not a time: rejected
);

const priceArb = fc.oneof(
  { weight: 8, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, 0, -0) },
);

const op = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('append' as const), sym: fc.integer({ min: 1, max: 2 }), step: tsStep, price: priceArb, bid: priceArb, ask: priceArb,
      size: fc.oneof(fc.nat(), fc.integer({ min: -5, max: 2 ** 33 })), flags: fc.integer({ min: 0, max: 0xffffffff }),
      src: fc.integer({ min: 0, max: 300 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('newest' as const), sym: fc.integer({ min: 1, max: 2 }), n: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(2 ** 32 - 1)) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('since' as const), sym: fc.integer({ min: 1, max: 2 }), pick: fc.nat(), jitter: fc.constantFrom(-1, 0, 1, -RETAIN, -1e9, 1e9),
      limit: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(2 ** 32 - 1)),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('count' as const), sym: fc.integer({ min: 1, max: 2 }) }) },
);

describe('hot window vs a naive array model (fast-check)', () => {
  test('appends across wrap, newest N, since T (duplicates, limit), count, heldFromMicros, expiry at exactly the retention', () => {
    fc.assert(
      fc.property(fc.constantFrom(2, 4, 8, 16, 32, 64), fc.integer({ min: 1, max: 24 }), fc.array(op, { maxLength: 400 }), (capacity, outCap, ops) => {
        const w = HotWindow.create({ symbols: 3, capacityPerSymbol: capacity, retainMicros: RETAIN });
        const reader = HotWindow.attach(w.buffer); // queries through a second instance, as another thread would
        expect(w.maxHeldPerSymbol).toBe(capacity - guardEntries(capacity));
        const models = [new Model(w.maxHeldPerSymbol, RETAIN), new Model(w.maxHeldPerSymbol, RETAIN)];
        const lastTs = [T0, T0 + 5_000];
        const out = createHotColumns(outCap);
        let seq = 0;
        for (const o of ops) {
          const m = models[o.sym - 1]!;
          if (o.kind === 'append') {
            const ts = lastTs[o.sym - 1]! + o.step;
            const r: Row = { ts, price: o.price, bid: o.bid, ask: o.ask, size: o.size, flags: o.flags, seq: seq++, src: o.src };
            const want = m.append(r);
            expect(appendRow(w, o.sym, r)).toBe(want);
            if (want) lastTs[o.sym - 1] = ts;
          } else if (o.kind === 'newest') {
            const got = reader.newest(o.sym, o.n, out);
            const want = m.newest(o.n, outCap);
            const lg = m.logical();
            expect(got).toBe(want.length);
            expect(out.length).toBe(got);
            expect(rowsOf(out)).toEqual(want);
            expect(out.more).toBe(lg.rows.length > want.length);
            expect(out.heldFromMicros).toBe(lg.heldFrom);
            expect(out.newestTsMicros).toBe(lg.newestTs);
            expect(out.symbolId).toBe(o.sym);
          } else if (o.kind === 'since') {
            const all = m.rows;
            const base = all.length > 0 ? all[o.pick % all.length]!.ts : T0;
            const t = base + o.jitter;
            const got = reader.since(o.sym, t, o.limit, out);
            const want = m.since(t, o.limit, outCap);
            expect(got).toBe(want.rows.length);
            expect(rowsOf(out)).toEqual(want.rows);
            expect(out.more).toBe(want.more);
            expect(out.heldFromMicros).toBe(m.logical().heldFrom);
          } else {
            const lg = m.logical();
            expect(reader.count(o.sym)).toBe(lg.rows.length);
            expect(reader.heldFromMicros(o.sym)).toBe(lg.heldFrom);
          }
        }
        // nothing leaked into the symbol nobody wrote, and the stats agree with the models
        expect(reader.count(3)).toBe(0);
        expect(reader.heldFromMicros(3)).toBe(Infinity);
        const st = reader.stats();
        for (const [i, m] of models.entries()) {
          const s = st.perSymbol.find((p) => p.id === i + 1);
          if (m.rows.length === 0 && m.rejectedOlder === 0 && m.rejectedBad === 0) { expect(s).toBeUndefined(); continue; }
          expect(s).toBeDefined();
          expect(s!.appended).toBe(m.rows.length);
          expect(s!.held).toBe(m.logical().rows.length);
          expect(s!.heldFromMicros).toBe(m.logical().heldFrom);
          expect(s!.rejectedOutOfOrder).toBe(m.rejectedOlder);
          expect(s!.rejectedBadTs).toBe(m.rejectedBad);
          expect(s!.wrapped).toBe(m.rows.length >= capacity);
        }
        expect(st.reader.retries).toBe(0); // single thread: nothing can overwrite during a query
        expect(st.reader.busy).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the rules, one by one', () => {
  const HOUR = DEFAULT_RETAIN_MICROS;

  test('expiry: an entry exactly one hour older than the newest is kept, one µs older is not', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 64 });
    const out = createHotColumns(64);
    w.append(1, T0 - 1, 1, NaN, NaN, 1, 0, 0, 0);
    w.append(1, T0, 2, NaN, NaN, 1, 0, 1, 0);
    w.append(1, T0 + HOUR / 2, 3, NaN, NaN, 1, 0, 2, 0);
    expect(w.stats().perSymbol[0]!.complete).toBe(false); // held from T0 − 1 only, the hour began at T0 − HOUR/2
    w.append(1, T0 + HOUR, 4, NaN, NaN, 1, 0, 3, 0);
    expect(w.newest(1, 10, out)).toBe(3);
    expect(Array.from(out.seq.subarray(0, 3))).toEqual([1, 2, 3]); // T0 − 1 is one µs more than an hour old
    expect(out.heldFromMicros).toBe(T0); // = newest − 1 h: the whole hour is held
    expect(out.more).toBe(false);
    expect(w.stats().perSymbol[0]!.complete).toBe(true);
    expect(w.since(1, 0, 10, out)).toBe(3); // since before the window: only the hour
    expect(w.count(1)).toBe(3);
    w.append(1, T0 + HOUR + 1, 5, NaN, NaN, 1, 0, 4, 0);
    expect(w.newest(1, 10, out)).toBe(3);
    expect(Array.from(out.seq.subarray(0, 3))).toEqual([2, 3, 4]);
    w.append(1, T0 + 2 * HOUR, 6, NaN, NaN, 1, 0, 5, 0);
    expect(w.newest(1, 10, out)).toBe(3); // T0 + HOUR is exactly an hour old: kept
    expect(Array.from(out.tsMicros.subarray(0, 3))).toEqual([T0 + HOUR, T0 + HOUR + 1, T0 + 2 * HOUR]);
    expect(out.heldFromMicros).toBe(T0 + HOUR);
  });

  test('the window claims completeness only from its first append', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 64 });
    expect(w.heldFromMicros(1)).toBe(Infinity);
    w.append(1, T0, 1, NaN, NaN, 1, 0, 0, 0);
    w.append(1, T0 + 10, 1, NaN, NaN, 1, 0, 1, 0);
    expect(w.heldFromMicros(1)).toBe(T0); // an engine started 10 µs ago does not know the hour before
  });

  test('since T with duplicates of T returns every trade at T, in append order; limit pages forward', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 64 });
    const ts = [0, 5, 5, 5, 7, 7, 9];
    ts.forEach((d, i) => w.append(1, T0 + d, 100 + i, NaN, NaN, 1, 0, i, 0));
    const out = createHotColumns(16);
    expect(w.since(1, T0 + 5, 100, out)).toBe(6);
    expect(Array.from(out.seq.subarray(0, 6))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(w.since(1, T0 + 6, 100, out)).toBe(3);
    expect(w.since(1, T0 + 5, 2, out)).toBe(2);
    expect(Array.from(out.seq.subarray(0, 2))).toEqual([1, 2]);
    expect(out.more).toBe(true);
    expect(w.since(1, T0 + 10, 2, out)).toBe(0);
    expect(out.more).toBe(false);
    expect(w.since(1, T0 + 9, 5, out)).toBe(1);
    expect(out.more).toBe(false);
  });

  test('overwrite: the oldest held ts is not claimed (its lost predecessor may share it); heldFrom reports it', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 8 }); // guard 1: 7 entries answerable
    const out = createHotColumns(16);
    const ts = [0, 1, 2, 3, 3, 3, 4, 5, 6, 7]; // 10 appends: entries 0..2 are gone
    ts.forEach((d, i) => w.append(1, T0 + d, 1, NaN, NaN, 1, 0, i, 0));
    // readable: entries 3..9 (ts 3,3,3,4,5,6,7); entry 2 (ts 2) was lost, so claim from ts 3 + 1
    expect(w.heldFromMicros(1)).toBe(T0 + 4);
    expect(w.newest(1, 16, out)).toBe(4);
    expect(Array.from(out.seq.subarray(0, 4))).toEqual([6, 7, 8, 9]);
    expect(w.since(1, T0 + 3, 16, out)).toBe(4); // the ts-3 trades are not all here: not answered
    expect(out.heldFromMicros).toBe(T0 + 4);
    expect(w.stats().perSymbol[0]).toMatchObject({ appended: 10, held: 4, wrapped: true, complete: false });
  });

  test('a trade already held (same time, source and seq among the newest: a restart re-delivering) is refused once, anything else at that time is kept', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 1024, retainMicros: RETAIN });
    const add = (ts: number, seq: number, src: number): boolean => w.append(1, ts, 100, 99.75, 100.25, 1, 0, seq, src);
    expect(add(T0, 1, 1)).toBe(true);
    for (let s = 2; s <= 50; s++) expect(add(T0 + 10, s, 1)).toBe(true); // a burst of 49 trades in one microsecond
    expect(add(T0 + 10, 7, 2)).toBe(true); // same time and seq, another source: a different trade
    expect(add(T0 + 10, 50, 1)).toBe(false); // the newest, again
    expect(add(T0 + 10, 3, 1)).toBe(false); // deep inside the burst, again
    expect(add(T0 + 10, 7, 2)).toBe(false);
    expect(add(T0 + 10, 51, 1)).toBe(true); // the next one
    expect(add(T0, 1, 1)).toBe(false); // older than the newest: refused as before (not a duplicate check)
    expect(w.duplicates).toBe(3);
    expect(w.stats().perSymbol[0]!.appended).toBe(1 + 49 + 1 + 1);
    expect(w.stats().perSymbol[0]!.rejectedOutOfOrder).toBe(1);
  });

  test('out-of-order and non-finite ts are rejected with false; an out-of-order one moves heldFrom past it', () => {
    const w = HotWindow.create({ symbols: 2, capacityPerSymbol: 64 });
    for (let i = 0; i < 10; i++) expect(w.append(2, T0 + i * 10, 1, NaN, NaN, 1, 0, i, 0)).toBe(true);
    expect(w.heldFromMicros(2)).toBe(T0);
    expect(w.append(2, NaN, 1, NaN, NaN, 1, 0, 99, 0)).toBe(false);
    expect(w.append(2, Infinity, 1, NaN, NaN, 1, 0, 99, 0)).toBe(false);
    expect(w.heldFromMicros(2)).toBe(T0); // not a time: says nothing about completeness
    expect(w.append(2, T0 + 45, 1, NaN, NaN, 1, 0, 99, 0)).toBe(false);
    expect(w.append(2, T0 + 25, 1, NaN, NaN, 1, 0, 99, 0)).toBe(false);
    expect(w.heldFromMicros(2)).toBe(T0 + 46); // the trade at +45 exists elsewhere, not here
    expect(w.count(2)).toBe(5); // +50 .. +90
    expect(w.append(2, T0 + 90, 1, NaN, NaN, 1, 0, 10, 0)).toBe(true); // equal to the newest: fine
    const s = w.stats();
    expect(s.perSymbol[0]).toMatchObject({ id: 2, appended: 11, rejectedOutOfOrder: 2, rejectedBadTs: 2, held: 6 });
    expect(s.perSymbol[0]!.heldFromMicros).toBe(T0 + 46);
    expect(s.symbolsIncomplete).toBe(1);
  });

  test('newest with n larger than the columns: clamped to out.capacity, more = true', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 64 });
    for (let i = 0; i < 20; i++) w.append(1, T0 + i, i, NaN, NaN, 1, 0, i, 0);
    const out = createHotColumns(5);
    expect(w.newest(1, 1000, out)).toBe(5);
    expect(Array.from(out.seq)).toEqual([15, 16, 17, 18, 19]);
    expect(out.more).toBe(true);
    expect(w.newest(1, 0, out)).toBe(0);
    expect(out.more).toBe(true);
    expect(w.newest(1, 1, out)).toBe(1);
    expect(out.seq[0]).toBe(19);
  });

  test('the appended count wraps int32 at 2^31 and carries at 2^32 without disturbing answers', () => {
    for (const start of [2 ** 31 - 700, 2 ** 32 - 700, 3 * 2 ** 32 - 1]) {
      const cap = 256;
      const w = createHotWindowAtCount({ symbols: 2, capacityPerSymbol: cap, retainMicros: 1e15 }, start);
      const r = HotWindow.attach(w.buffer);
      const out = createHotColumns(64);
      for (let i = 0; i < 2000; i++) {
        expect(w.append(2, T0 + i, i * 0.25, NaN, NaN, i, 0, i, 1)).toBe(true);
        expect(r.appended(2)).toBe(start + i + 1);
        if (i >= cap) {
          expect(r.newest(2, 10, out)).toBe(10);
          expect(out.seq[9]).toBe(i);
          expect(out.seq[0]).toBe(i - 9);
          expect(r.count(2)).toBe(w.maxHeldPerSymbol - 1); // −1: the oldest answerable entry had a lost predecessor
          expect(r.since(2, T0 + i - 20, 64, out)).toBe(21);
          expect(out.tsMicros[0]).toBe(T0 + i - 20);
        }
      }
      expect(r.stats().perSymbol.find((s) => s.id === 2)!.appended).toBe(start + 2000);
    }
  });

  test('appendFromSlot takes every field from a ring TRADE slot, and refuses other kinds', () => {
    const ring = RingWriter.attach(createRing({ slotCount: 8, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND }));
    const v = ring.views;
    ring.claim(2);
    const b = ring.slotByte(0);
    writeTrade(v, b, RecordKind.TRADE, 7, 3, 123456, T0 + 5, 21000.25, 21000, 21000.5, 4, TradeFlag.SIDE_SELL | TradeFlag.V_SPIKE, 9, 8, 77, 1);
    const w = HotWindow.create({ symbols: 4, capacityPerSymbol: 16 });
    expect(w.appendFromSlot(v, b)).toBe(true);
    const out = createHotColumns(4);
    expect(w.newest(3, 4, out)).toBe(1);
    expect(rowsOf(out)[0]).toEqual({ ts: T0 + 5, price: 21000.25, bid: 21000, ask: 21000.5, size: 4, flags: TradeFlag.SIDE_SELL | TradeFlag.V_SPIKE, seq: 123456, src: 7 });
    expect(toObjects(out, 'MNQZ25')).toEqual([{
      symbol: 'MNQZ25', ts: '2025-11-13T02:13:20.000005Z', ts_us: T0 + 5, ts_ms: Math.floor((T0 + 5) / 1000), price: 21000.25, size: 4,
      bid: 21000, ask: 21000.5, side: 'sell', flags: TradeFlag.SIDE_SELL | TradeFlag.V_SPIKE, seq: 123456, source: 7,
    }]);
    writeTrade(v, ring.slotByte(1), RecordKind.QUOTE, 7, 3, 1, T0 + 6, NaN, 1, 2, 0, 0, 0, 0, 0, 0);
    expect(() => w.appendFromSlot(v, ring.slotByte(1))).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }));
    expect(w.appended(3)).toBe(1);
  });

  test('toObjects: NaN quotes become null, side from the flags, empty answer is []', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 16 });
    w.append(1, T0, 10, NaN, NaN, 2, TradeFlag.SIDE_BUY, 1, 0);
    w.append(1, T0 + 1, 11, 10.75, 11.25, 3, 0, 2, 0);
    const out = createHotColumns(4);
    expect(w.since(1, T0 + 100, 4, out)).toBe(0);
    expect(toObjects(out, 'X')).toEqual([]);
    w.newest(1, 4, out);
    const o = toObjects(out, 'X');
    expect(o.map((x) => [x.bid, x.ask, x.side])).toEqual([[null, null, 'buy'], [10.75, 11.25, null]]);
    expect(JSON.parse(JSON.stringify(o))).toEqual(o);
  });

  test('memory is reported and matches the layout; the default is ~1 M trades (45 MiB) per symbol', () => {
    const w = HotWindow.create({ symbols: 3, capacityPerSymbol: 1024 });
    const s = w.stats();
    expect(s.bytesPerEntry).toBe(ENTRY_BYTES);
    expect(ENTRY_BYTES).toBe(45);
    expect(s.bytesPerSymbol).toBe(1024 * 45);
    expect(s.byteLength).toBe(w.buffer.byteLength);
    expect(s.byteLength).toBe(hotBytes(3, 1024));
    expect(s.byteLength).toBeGreaterThanOrEqual(3 * 1024 * 45);
    expect(s.byteLength).toBeLessThan(3 * 1024 * 45 + 16 * 128);
    expect(DEFAULT_CAPACITY).toBe(2 ** 20);
    expect(hotBytes(1, DEFAULT_CAPACITY)).toBeLessThan(46 * 2 ** 20);
    expect(s.symbolsWithData).toBe(0);
    expect(HOT_BUSY).toBe(-1);
  });
});
