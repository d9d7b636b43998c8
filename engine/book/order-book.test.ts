import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { RingReader, RingWriter, createRing } from '../ring/ring.ts';
import { DEPTH_FLAG_END_OF_BATCH, DepthCommand, RECORD_SLOT_BYTES, RecordKind, writeBookEnd, writeDepth } from '../../schemas/records.ts';
import { DepthDecoder } from '../../workers/sierra/depth-decoder.ts';
import { DepthWriter } from '../../workers/sierra/depth-writer.ts';
import { MarketSim } from '../../workers/sim/market-sim.ts';
import { OrderBook, createSnapshotBuffers, type BookLevel } from './index.ts';

const EOB = DEPTH_FLAG_END_OF_BATCH;
const C = DepthCommand;
const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;

interface Cmd { cmd: number; price: number; qty: number; orders: number }

/** Apply one batch (end-of-batch flag on the last command). */
function batch(book: OrderBook, ts: number, cmds: readonly Cmd[]): void {
  cmds.forEach((c, i) => book.apply(ts, c.cmd, i === cmds.length - 1 ? EOB : 0, c.orders, c.price, c.qty));
}
const lvl = (cmd: number, price: number, qty = 0, orders = qty > 0 ? 1 : 0): Cmd => ({ cmd, price, qty, orders });
const prices = (levels: BookLevel[]): number[] => levels.map((l) => l.price);

describe('OrderBook semantics', () => {
  test('snapshot then updates', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [
      lvl(C.CLEAR_BOOK, 0),
      lvl(C.ADD_BID_LEVEL, 100, 5), lvl(C.ADD_BID_LEVEL, 99.75, 6), lvl(C.ADD_BID_LEVEL, 99.5, 7),
      lvl(C.ADD_ASK_LEVEL, 100.25, 8), lvl(C.ADD_ASK_LEVEL, 100.5, 9),
    ]);
    expect(book.version).toBe(1);
    expect(book.bestBid).toBe(100);
    expect(book.bestAsk).toBe(100.25);
    expect(book.bestBidQuantity).toBe(5);
    expect(book.bestAskQuantity).toBe(8);
    expect(book.bidLevels).toBe(3);
    expect(book.askLevels).toBe(2);
    expect(book.tsMicros).toBe(T0);
    batch(book, T0 + 5, [lvl(C.MODIFY_BID_LEVEL, 99.75, 60), lvl(C.DELETE_ASK_LEVEL, 100.25), lvl(C.ADD_BID_LEVEL, 100.25, 1)]);
    const s = book.snapshot();
    expect(s.bids).toEqual([{ price: 100.25, quantity: 1, orders: 1 }, { price: 100, quantity: 5, orders: 1 }, { price: 99.75, quantity: 60, orders: 1 }, { price: 99.5, quantity: 7, orders: 1 }]);
    expect(s.asks).toEqual([{ price: 100.5, quantity: 9, orders: 1 }]);
    expect(s.version).toBe(2);
    expect(s.tsMicros).toBe(T0 + 5);
    expect(s.crossed).toBe(false);
  });

  test('MODIFY to quantity 0 deletes; ADD of an existing level sets it; MODIFY of a missing level inserts it', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 100, 5), lvl(C.ADD_ASK_LEVEL, 101, 5)]);
    batch(book, T0, [lvl(C.MODIFY_BID_LEVEL, 100, 0)]);
    expect(book.bidLevels).toBe(0);
    expect(book.bestBid).toBeNaN();
    batch(book, T0, [lvl(C.ADD_ASK_LEVEL, 101, 9, 4)]);
    expect(book.snapshot().asks).toEqual([{ price: 101, quantity: 9, orders: 4 }]);
    batch(book, T0, [lvl(C.MODIFY_ASK_LEVEL, 102, 3)]);
    expect(prices(book.snapshot().asks)).toEqual([101, 102]);
    batch(book, T0, [lvl(C.DELETE_ASK_LEVEL, 105)]);
    expect(book.stats().missingDeletes).toBe(1);
    expect(book.askLevels).toBe(2);
  });

  test('CLEAR_BOOK empties both sides, also in the middle of a batch', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 100, 5), lvl(C.ADD_ASK_LEVEL, 101, 5)]);
    batch(book, T0 + 1, [lvl(C.ADD_BID_LEVEL, 99, 1), lvl(C.CLEAR_BOOK, 0), lvl(C.ADD_ASK_LEVEL, 102, 2)]);
    expect(book.bidLevels).toBe(0);
    expect(prices(book.snapshot().asks)).toEqual([102]);
  });

  test('several batches sharing a timestamp are applied in arrival order', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 100, 5)]);
    batch(book, T0, [lvl(C.MODIFY_BID_LEVEL, 100, 7)]);
    batch(book, T0, [lvl(C.DELETE_BID_LEVEL, 100), lvl(C.ADD_BID_LEVEL, 100, 2)]);
    batch(book, T0, [lvl(C.MODIFY_BID_LEVEL, 100, 11)]);
    expect(book.snapshot().bids).toEqual([{ price: 100, quantity: 11, orders: 1 }]);
    expect(book.version).toBe(4);
  });

  test('a reader checking between records never sees a partial batch', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.CLEAR_BOOK, 0), lvl(C.ADD_BID_LEVEL, 100, 5), lvl(C.ADD_ASK_LEVEL, 100.25, 5)]);
    const before = book.snapshot();
    const cmds = [lvl(C.CLEAR_BOOK, 0), lvl(C.ADD_BID_LEVEL, 99, 1), lvl(C.ADD_BID_LEVEL, 98.75, 2), lvl(C.ADD_ASK_LEVEL, 99.25, 3), lvl(C.ADD_ASK_LEVEL, 99.5, 4)];
    const bufs = createSnapshotBuffers(10);
    for (let i = 0; i < cmds.length; i++) {
      const c = cmds[i]!;
      const applied = book.apply(T0 + 10, c.cmd, i === cmds.length - 1 ? EOB : 0, c.orders, c.price, c.qty);
      if (i < cmds.length - 1) {
        expect(applied).toBe(false);
        expect(book.snapshot()).toEqual({ ...before, stagedRecords: i + 1 });
        book.snapshotInto(10, bufs);
        expect([bufs.version, bufs.bidCount, bufs.askCount, bufs.bidPrices[0], bufs.askPrices[0]]).toEqual([1, 1, 1, 100, 100.25]);
      } else {
        expect(applied).toBe(true);
      }
    }
    expect(book.version).toBe(2);
    expect(prices(book.snapshot().bids)).toEqual([99, 98.75]);
    expect(prices(book.snapshot().asks)).toEqual([99.25, 99.5]);
  });

  test('commands after the last end-of-batch record stay staged, not visible', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 100, 5)]);
    book.apply(T0 + 1, C.DELETE_BID_LEVEL, 0, 0, 100, 0);
    expect(book.stagedRecords).toBe(1);
    expect(book.bidLevels).toBe(1);
    expect(book.snapshot().stagedRecords).toBe(1);
  });

  test('a crossed or locked book is flagged, not corrected', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 100, 5), lvl(C.ADD_ASK_LEVEL, 100.25, 5)]);
    expect(book.crossed).toBe(false);
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 100.5, 1)]);
    expect(book.crossed).toBe(true);
    expect(book.bestBid).toBe(100.5);
    expect(book.bestAsk).toBe(100.25);
    batch(book, T0, [lvl(C.DELETE_BID_LEVEL, 100.5), lvl(C.ADD_BID_LEVEL, 100.25, 1)]);
    expect(book.crossed).toBe(true); // locked counts
    batch(book, T0, [lvl(C.DELETE_BID_LEVEL, 100.25)]);
    expect(book.crossed).toBe(false);
    expect(book.stats().crossedBatches).toBe(2);
    const bufs = createSnapshotBuffers(4);
    book.snapshotInto(4, bufs);
    expect(bufs.crossed).toBe(false);
  });

  test('zero/negative prices are kept and counted; non-finite prices are counted and not placed', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 0, 5), lvl(C.ADD_BID_LEVEL, -1, 5), lvl(C.ADD_BID_LEVEL, 10, 5), lvl(C.ADD_ASK_LEVEL, Number.NaN, 5), lvl(C.ADD_ASK_LEVEL, 11, 1)]);
    expect(book.bidLevels).toBe(3);
    expect(book.invalidLevels).toBe(2);
    expect(prices(book.snapshot().bids)).toEqual([10, 0, -1]);
    expect(book.stats().invalidPriceCommands).toBe(3);
    expect(book.stats().unplacedCommands).toBe(1);
    expect(book.askLevels).toBe(1);
    batch(book, T0, [lvl(C.DELETE_BID_LEVEL, -1), lvl(C.MODIFY_BID_LEVEL, 0, 2)]);
    expect(book.invalidLevels).toBe(1);
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 0.1, 3)]); // same tick as 0, now a valid price
    expect(book.invalidLevels).toBe(0);
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, -0.1, 3)]); // and invalid again
    expect(book.invalidLevels).toBe(1);
    batch(book, T0, [lvl(C.CLEAR_BOOK, 0)]);
    expect(book.invalidLevels).toBe(0);
  });

  test('an ask at price 0 makes the book crossed: flagged, never hidden', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 10, 5), lvl(C.ADD_ASK_LEVEL, 11, 5), lvl(C.ADD_ASK_LEVEL, 0, 5)]);
    expect(book.bestAsk).toBe(0);
    expect(book.crossed).toBe(true);
    expect(book.invalidLevels).toBe(1);
  });

  test('levels are keyed by ticks: float noise in prices lands on the same level', () => {
    const book = new OrderBook({ tickSize: 0.01 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 0.1 + 0.2, 5)]); // 0.30000000000000004
    batch(book, T0, [lvl(C.MODIFY_BID_LEVEL, 0.3, 7)]);
    expect(book.bidLevels).toBe(1);
    expect(book.snapshot().bids).toEqual([{ price: 0.3, quantity: 7, orders: 1 }]);
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, Math.fround(4512.3), 1), lvl(C.ADD_BID_LEVEL, 4512.305, 1)]);
    expect(book.stats().offTickCommands).toBe(1); // f32 4512.3 is on tick; 4512.305 is not
  });

  test('NONE and unknown commands change nothing; unknown ones are counted', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    batch(book, T0, [lvl(C.ADD_BID_LEVEL, 100, 5), lvl(C.NONE, 0), lvl(9, 100, 0)]);
    expect(book.bidLevels).toBe(1);
    expect(book.stats().unknownCommands).toBe(1);
  });

  test('a batch that never ends is applied at maxStagedRecords and counted', () => {
    const book = new OrderBook({ tickSize: 0.25, maxStagedRecords: 3 });
    expect(book.apply(T0, C.ADD_BID_LEVEL, 0, 1, 100, 1)).toBe(false);
    expect(book.apply(T0, C.ADD_BID_LEVEL, 0, 1, 101, 1)).toBe(false);
    expect(book.apply(T0, C.ADD_BID_LEVEL, 0, 1, 102, 1)).toBe(true);
    expect(book.bidLevels).toBe(3);
    expect(book.stats().forcedBatches).toBe(1);
  });

  test('snapshotInto fills caller arrays best first, bounded by depth and by the arrays', () => {
    const book = new OrderBook({ tickSize: 0.25 });
    const cmds: Cmd[] = [lvl(C.CLEAR_BOOK, 0)];
    for (let i = 0; i < 300; i++) cmds.push(lvl(C.ADD_BID_LEVEL, 1000 - i * 0.25, i + 1, 2), lvl(C.ADD_ASK_LEVEL, 1000.25 + i * 0.25, i + 1, 3));
    batch(book, T0, cmds);
    const bufs = createSnapshotBuffers(5);
    book.snapshotInto(3, bufs);
    expect(bufs.bidCount).toBe(3);
    expect(Array.from(bufs.bidPrices.subarray(0, 3))).toEqual([1000, 999.75, 999.5]);
    expect(Array.from(bufs.askQuantities.subarray(0, 3))).toEqual([1, 2, 3]);
    expect(Array.from(bufs.askOrders.subarray(0, 3))).toEqual([3, 3, 3]);
    book.snapshotInto(100, bufs);
    expect([bufs.bidCount, bufs.askCount]).toEqual([5, 5]);
    expect(book.snapshot(2).asks.length).toBe(2);
    expect(book.snapshot().bids.length).toBe(300);
  });

  test('bad options are coded errors', () => {
    expect(() => new OrderBook({ tickSize: 0 })).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }) as Error);
    expect(() => new OrderBook({ maxStagedRecords: 0 })).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }) as Error);
    expect(() => createSnapshotBuffers(-1)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }) as Error);
  });
});

/** The obvious model: a Map per side keyed by ticks, sorted when compared. */
class ModelBook {
  bids = new Map<number, BookLevel>();
  asks = new Map<number, BookLevel>();
  apply(cmds: readonly Cmd[], tick: number): void {
    for (const c of cmds) {
      if (c.cmd === C.CLEAR_BOOK) { this.bids.clear(); this.asks.clear(); continue; }
      if (c.cmd === C.NONE || !Number.isFinite(c.price)) continue;
      const side = c.cmd % 2 === 0 ? this.bids : this.asks;
      const t = Math.round(c.price / tick);
      if (c.cmd >= C.DELETE_BID_LEVEL || c.qty === 0) side.delete(t);
      else side.set(t, { price: c.price, quantity: c.qty, orders: c.orders });
    }
  }
  levels(side: 'bids' | 'asks'): BookLevel[] {
    const m = this[side];
    const keys = [...m.keys()].sort((a, b) => (side === 'bids' ? b - a : a - b));
    return keys.map((k) => m.get(k)!);
  }
}

describe('OrderBook against a naive model (fast-check)', () => {
  const tick = 0.25;
  const cmdArb: fc.Arbitrary<Cmd> = fc.record({
    cmd: fc.oneof({ weight: 1, arbitrary: fc.constant(C.CLEAR_BOOK) }, { weight: 1, arbitrary: fc.constant(C.NONE) }, { weight: 30, arbitrary: fc.integer({ min: 2, max: 7 }) }),
    price: fc.oneof({ weight: 40, arbitrary: fc.integer({ min: -3, max: 60 }).map((t) => (t < 0 ? (t + 1) * tick : 100 + t * tick)) }, { weight: 1, arbitrary: fc.constantFrom(Number.NaN, 0.1, -0.1) }),
    qty: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 500 }) }, { weight: 1, arbitrary: fc.constant(0) }),
    orders: fc.integer({ min: 0, max: 50 }),
  });

  test('random batches: identical books after every batch', () => {
    fc.assert(fc.property(fc.array(fc.array(cmdArb, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 40 }), (batches) => {
      const book = new OrderBook({ tickSize: tick, initialLevels: 8 }); // small: exercises growth
      const model = new ModelBook();
      let v = 0;
      for (const b of batches) {
        batch(book, T0 + v, b);
        model.apply(b, tick);
        v++;
        const s = book.snapshot();
        const bids = model.levels('bids');
        const asks = model.levels('asks');
        expect(s.bids).toEqual(bids);
        expect(s.asks).toEqual(asks);
        expect(s.version).toBe(v);
        expect(book.bestBid).toEqual(bids[0]?.price ?? Number.NaN);
        expect(book.bestAsk).toEqual(asks[0]?.price ?? Number.NaN);
        expect(s.crossed).toBe(bids.length > 0 && asks.length > 0 && bids[0]!.price >= asks[0]!.price);
        expect(s.invalidLevels).toBe([...bids, ...asks].filter((l) => l.price <= 0).length);
        expect(s.stagedRecords).toBe(0);
      }
    }), { numRuns: 300 });
  });
});

describe('OrderBook from ring slots', () => {
  test('applyFromSlot over decoder output equals apply over the records; BOOK_END slots change nothing', () => {
    const w = DepthWriter.toMemory();
    const sim = new MarketSim(T0, [{ symbol: 'MNQZ25', tickSize: 0.25, startPrice: 21000, baseRate: 120 }], { seed: 11, snapshotEveryMicros: 60_000_000 });
    const direct = new OrderBook({ tickSize: 0.25 });
    let records = 0;
    sim.run(T0 + 90_000_000, {}, {
      MNQZ25: { depth: (ts, cmd, flags, orders, price, qty) => { w.record(ts, cmd, flags, orders, price, qty); direct.apply(ts, cmd, flags, orders, price, qty); records++; } },
    });
    expect(records).toBeGreaterThan(10_000);

    const sab = createRing({ slotCount: 256, slotBytes: RECORD_SLOT_BYTES });
    const rw = RingWriter.attach(sab);
    const rr = RingReader.attach(sab);
    const dec = new DepthDecoder({ fileName: 'MNQZ25_FUT_CME.2025-11-11.depth' });
    const viaRing = new OrderBook({ tickSize: 0.25 });
    dec.push(w.contents());
    let committed = 0;
    let bookEnds = 0;
    let bookEndsOutOfStep = 0;
    for (;;) {
      dec.decodeInto(rw);
      const n = rr.available();
      for (let i = 0; i < n; i++) {
        const b = rr.slotByte(i);
        if (rr.views.u8[b] === RecordKind.BOOK_END) {
          bookEnds++;
          // the batch was applied at its DEPTH end-of-batch slot; the BOOK_END changes nothing
          if (viaRing.applyFromSlot(rr.views, b) || viaRing.version !== bookEnds) bookEndsOutOfStep++;
        } else if (viaRing.applyFromSlot(rr.views, b)) committed++;
      }
      rr.release(n);
      if (dec.pendingRecords === 0) break;
    }
    expect(bookEndsOutOfStep).toBe(0);
    expect(committed).toBe(bookEnds);
    expect(viaRing.snapshot()).toEqual(direct.snapshot());
    expect(viaRing.stats()).toEqual(direct.stats());
    expect(viaRing.stats().bookEndMismatches).toBe(0);
    expect(viaRing.crossed).toBe(false);
    expect(viaRing.bidLevels).toBeGreaterThan(0);
    expect(viaRing.askLevels).toBeGreaterThan(0);
  });

  test('a BOOK_END arriving while commands are staged is counted', () => {
    const sab = createRing({ slotCount: 4, slotBytes: RECORD_SLOT_BYTES });
    const rw = RingWriter.attach(sab);
    rw.claim(2);
    writeDepth(rw.views, rw.slotByte(0), 1, 2, 0, T0, C.ADD_BID_LEVEL, 0, 1, 100, 5, 0);
    writeBookEnd(rw.views, rw.slotByte(1), 1, 2, 0, T0, 1, 0, 0);
    rw.publish(2);
    const rr = RingReader.attach(sab);
    rr.available();
    const book = new OrderBook();
    expect(book.applyFromSlot(rr.views, rr.slotByte(0))).toBe(false);
    expect(book.applyFromSlot(rr.views, rr.slotByte(1))).toBe(false);
    expect(book.stats().bookEndMismatches).toBe(1);
    expect(book.stagedRecords).toBe(1);
    expect(book.bidLevels).toBe(0);
  });
});
