import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isEngineError } from '../errors.ts';
import { slotViewsOf } from '../journal/format.ts';
import { GapKind, RecordKind, TradeFlag, readU32, slotToObject, writeDepth, writeGap, writeTrade } from '../../schemas/records.ts';
import { RejectReason, Validator, rejectReasonCode, rejectReasonName, verdictNames, type ValidatorOptions } from './validator.ts';

const v = slotViewsOf(new ArrayBuffer(64 * 4));
// Wed 2025-12-03 15:00 UTC = 10:00 ET, inside the CME Globex session
const T0 = Date.UTC(2025, 11, 3, 15) * 1000;
const FLAGS = 44;

function mk(opts: Partial<ValidatorOptions> = {}): Validator {
  return new Validator({ tickSizeOf: () => 0.25, ...opts });
}

interface T { src?: number; sym?: number; seq?: number; ts?: number; price?: number; bid?: number; ask?: number; size?: number; flags?: number; kind?: number; n?: number }

function put(t: T, b = 0): number {
  writeTrade(v, b, t.kind ?? RecordKind.TRADE, t.src ?? 1, t.sym ?? 1, t.seq ?? 0, t.ts ?? T0, t.price ?? 21000.25, t.bid ?? 21000, t.ask ?? 21000.5,
    t.size ?? 1, t.flags ?? TradeFlag.SIDE_BUY, 0, 0, t.seq ?? 0, t.n ?? 1);
  return b;
}

function check(val: Validator, t: T): number {
  return val.check(v, put(t));
}

describe('Validator rules', () => {
  test('a clean trade is kept without verdict bits', () => {
    const val = mk();
    expect(check(val, {})).toBe(0);
    expect(readU32(v, 0, FLAGS)).toBe(TradeFlag.SIDE_BUY);
    expect(val.counters()).toMatchObject({ checked: 1, kept: 1 });
  });

  test('bad prices: NaN, zero, negative, infinite trade price; negative or infinite bid/ask', () => {
    for (const price of [NaN, 0, -21000.25, Infinity, -Infinity]) expect(check(mk(), { price })).toBe(RejectReason.BAD_PRICE);
    expect(check(mk(), { bid: -1 })).toBe(RejectReason.BAD_PRICE);
    expect(check(mk(), { ask: Infinity })).toBe(RejectReason.BAD_PRICE);
    // unknown quote (NaN) is fine
    expect(check(mk(), { bid: NaN, ask: NaN })).toBe(0);
    // a quote needs a bid or an ask
    expect(check(mk(), { kind: RecordKind.QUOTE, price: NaN, size: 0, bid: NaN, ask: NaN })).toBe(RejectReason.BAD_PRICE);
    expect(check(mk(), { kind: RecordKind.QUOTE, price: NaN, size: 0 })).toBe(0);
  });

  test('size 0 trade is rejected; a quote has size 0', () => {
    expect(check(mk(), { size: 0 })).toBe(RejectReason.BAD_SIZE);
  });

  test('off-tick price: rejected by default, flagged with offTick "flag"; off-tick bid/ask flagged', () => {
    expect(check(mk(), { price: 21000.3 })).toBe(RejectReason.OFF_TICK);
    const f = mk({ offTick: 'flag' });
    expect(check(f, { price: 21000.3 })).toBe(0);
    expect(readU32(v, 0, FLAGS) & TradeFlag.V_OFF_TICK).toBe(TradeFlag.V_OFF_TICK);
    const g = mk();
    expect(check(g, { bid: 21000.1 })).toBe(0);
    expect(verdictNames(readU32(v, 0, FLAGS))).toEqual(['off_tick']);
    // f32-widened prices of a 0.01 tick are on the grid
    const cents = mk({ tickSizeOf: () => 0.01 });
    expect(check(cents, { price: Math.fround(123.45), bid: Math.fround(123.44), ask: Math.fround(123.46) })).toBe(0);
    // no tick size known: not checked
    expect(check(mk({ tickSizeOf: () => NaN }), { price: 21000.3 })).toBe(0);
  });

  test('timestamps: implausible rejected; late inside the window flagged; beyond it rejected; equal is fine', () => {
    const val = mk({ reorderWindowMicros: 1000 });
    expect(check(val, { ts: NaN })).toBe(RejectReason.BAD_TIME);
    expect(check(val, { ts: 0 })).toBe(RejectReason.BAD_TIME);
    expect(check(val, { ts: T0, seq: 1 })).toBe(0);
    expect(check(val, { ts: T0, seq: 2, price: 21000.5 })).toBe(0);
    expect(check(val, { ts: T0 - 500, seq: 3 })).toBe(0);
    expect(readU32(v, 0, FLAGS) & TradeFlag.V_OUT_OF_ORDER).toBe(TradeFlag.V_OUT_OF_ORDER);
    expect(check(val, { ts: T0 - 1001, seq: 4 })).toBe(RejectReason.OUT_OF_ORDER);
    // per (source, symbol): another symbol and another source have their own clocks
    expect(check(val, { ts: T0 - 10_000_000, sym: 2 })).toBe(0);
    expect(check(val, { ts: T0 - 10_000_000, src: 2 })).toBe(0);
  });

  test('duplicates: same content again (any seq) is rejected; a different size or side is not', () => {
    const val = mk();
    expect(check(val, { seq: 10 })).toBe(0);
    expect(check(val, { seq: 10 })).toBe(RejectReason.DUPLICATE);
    expect(check(val, { seq: 11 })).toBe(RejectReason.DUPLICATE);
    expect(check(val, { seq: 12, size: 2 })).toBe(0);
    expect(check(val, { seq: 13, flags: TradeFlag.SIDE_SELL })).toBe(0);
    // older than the newest but identical to a remembered one: duplicate, not out of order
    expect(check(val, { seq: 14, ts: T0 + 5 })).toBe(0);
    expect(check(val, { seq: 11 })).toBe(RejectReason.DUPLICATE);
  });

  test('crossed quote and trade outside the quote are flagged, kept', () => {
    const val = mk();
    expect(check(val, { bid: 21001, ask: 21000.5 })).toBe(0);
    expect(verdictNames(readU32(v, 0, FLAGS))).toEqual(['crossed']);
    expect(check(val, { ts: T0 + 1, price: 21001 })).toBe(0);
    expect(verdictNames(readU32(v, 0, FLAGS))).toEqual(['outside_quote']);
    expect(val.counters()).toMatchObject({ flag_crossed: 1, flag_outside_quote: 1, kept: 2 });
    // a sweep's later sub-trades walk past the quote: not flagged
    expect(check(val, { ts: T0 + 2, price: 21001, flags: TradeFlag.SIDE_BUY | TradeFlag.SUB_LAST })).toBe(0);
    expect(readU32(v, 0, FLAGS) & TradeFlag.V_OUTSIDE_QUOTE).toBe(0);
  });

  test('spike band: flagged; the reference follows after spikeConfirm consecutive spikes', () => {
    const val = mk({ spikeBandFraction: 0.01, spikeConfirm: 2 });
    expect(check(val, { ts: T0, price: 20000, bid: NaN, ask: NaN })).toBe(0);
    expect(check(val, { ts: T0 + 1, price: 21000, bid: NaN, ask: NaN })).toBe(0);
    expect(verdictNames(readU32(v, 0, FLAGS))).toEqual(['spike']);
    expect(check(val, { ts: T0 + 2, price: 20000.25, bid: NaN, ask: NaN })).toBe(0);
    expect(readU32(v, 0, FLAGS) & TradeFlag.V_SPIKE).toBe(0);
    // a real move: two spikes up, then the new level is the reference
    check(val, { ts: T0 + 3, price: 21000, bid: NaN, ask: NaN });
    check(val, { ts: T0 + 4, price: 21000.25, bid: NaN, ask: NaN });
    expect(check(val, { ts: T0 + 5, price: 21000.5, bid: NaN, ask: NaN })).toBe(0);
    expect(readU32(v, 0, FLAGS) & TradeFlag.V_SPIKE).toBe(0);
    expect(mk({ spikeBandFraction: 0 }).check(v, put({ price: 1 }))).toBe(0);
  });

  test('sequence gaps produce GAP records; bundles advance by numTrades; a FILE_RESET restarts the sequence', () => {
    const val = mk();
    check(val, { seq: 0 });
    check(val, { seq: 1, ts: T0 + 1, n: 3 }); // a merged bundle of 3: next is 4
    check(val, { seq: 4, ts: T0 + 2 });
    expect(val.pendingGaps).toBe(0);
    check(val, { seq: 9, ts: T0 + 3 });
    expect(val.pendingGaps).toBe(1);
    const g = slotViewsOf(new ArrayBuffer(64));
    expect(val.nextGap(g, 0)).toBe(true);
    expect(slotToObject(g, 0)).toMatchObject({ kind: RecordKind.GAP, sourceId: 1, symbolId: 1, gapKind: GapKind.SEQUENCE, expectedSeq: 5, gotSeq: 9, tsMicros: T0 + 2, endTsMicros: T0 + 3 });
    expect(val.nextGap(g, 0)).toBe(false);
    // a rejected record consumed its index: no gap after it
    check(val, { seq: 10, ts: T0 + 4, size: 0 });
    check(val, { seq: 11, ts: T0 + 5 });
    expect(val.pendingGaps).toBe(0);
    writeGap(v, 0, 1, 1, 0, T0 + 5, T0 + 6, GapKind.FILE_RESET, 12, 0, 0);
    expect(val.check(v, 0)).toBe(0);
    // the replaced file from its start: what is older than the newest kept is known already
    expect(check(val, { seq: 0, ts: T0 })).toBe(RejectReason.REPLAYED);
    expect(check(val, { seq: 1, ts: T0 + 1, n: 3 })).toBe(RejectReason.REPLAYED);
    expect(check(val, { seq: 4, ts: T0 + 5 })).toBe(RejectReason.DUPLICATE); // at the newest time: by content
    check(val, { seq: 5, ts: T0 + 7, price: 21002 });
    expect(val.pendingGaps).toBe(0);
    expect(val.counters()).toMatchObject({ gap_sequence: 1, file_resets: 1, file_reset_skipped: 2 });
  });

  test('time gaps count only in-session silence: not across the daily break or the weekend', () => {
    const val = mk({ timeGapMicros: 300_000_000 });
    // Friday 2025-12-05 21:59 UTC (16:59 ET) → Sunday 2025-12-07 23:01 UTC (18:01 ET): 2 minutes of session
    const fri = Date.UTC(2025, 11, 5, 21, 59) * 1000;
    const sun = Date.UTC(2025, 11, 7, 23, 1) * 1000;
    check(val, { ts: fri, seq: 0 });
    check(val, { ts: sun, seq: 1 });
    expect(val.pendingGaps).toBe(0);
    // daily break Mon 2025-12-08 21:58 UTC → 23:03 UTC: 2 + 3 minutes in session: no gap
    const brk = mk({ timeGapMicros: 300_000_000 });
    check(brk, { ts: Date.UTC(2025, 11, 8, 21, 58) * 1000, seq: 2 });
    check(brk, { ts: Date.UTC(2025, 11, 8, 23, 3) * 1000, seq: 3 });
    expect(brk.pendingGaps).toBe(0);
    // but 2 + 4 minutes is one
    check(brk, { ts: Date.UTC(2025, 11, 9, 21, 56) * 1000, seq: 4 });
    expect(brk.pendingGaps).toBe(1); // Mon 23:03 → Tue 21:56: a long in-session silence
    check(brk, { ts: Date.UTC(2025, 11, 9, 23, 4) * 1000, seq: 5 });
    expect(brk.pendingGaps).toBe(2);
    // 10 minutes of silence mid-session: a TIME gap
    const mid = mk({ timeGapMicros: 300_000_000 });
    const t = Date.UTC(2025, 11, 9, 15) * 1000;
    check(mid, { ts: t, seq: 4 });
    check(mid, { ts: t + 240_000_000, seq: 5 });
    expect(mid.pendingGaps).toBe(0);
    check(mid, { ts: t + 840_000_000, seq: 6 });
    const g = slotViewsOf(new ArrayBuffer(64));
    expect(mid.nextGap(g, 0)).toBe(true);
    expect(slotToObject(g, 0)).toMatchObject({ gapKind: GapKind.TIME, tsMicros: t + 240_000_000, endTsMicros: t + 840_000_000 });
  });

  test('stale lanes: flagged on their next record, only while the session is open', () => {
    const val = mk({ staleAfterMicros: 60_000_000 });
    const now = T0;
    expect(val.checkStale(now)).toBe(0);
    check(val, { ts: T0 });
    expect(val.checkStale(now + 30_000_000)).toBe(0);
    expect(val.checkStale(now + 120_000_000)).toBe(1);
    expect(val.staleLanes()).toEqual([{ sourceId: 1, symbolId: 1 }]);
    expect(check(val, { ts: T0 + 1 })).toBe(0);
    expect(verdictNames(readU32(v, 0, FLAGS))).toContain('stale');
    expect(val.checkStale(now + 121_000_000)).toBe(0);
    // Saturday: closed, never stale
    const sat = mk({ staleAfterMicros: 60_000_000 });
    const s0 = Date.UTC(2025, 11, 6, 12) * 1000;
    sat.checkStale(s0);
    writeTrade(v, 0, RecordKind.TRADE, 1, 1, 0, s0, 21000, NaN, NaN, 1, 0, 0, 0, 0, 1);
    sat.check(v, 0);
    expect(sat.checkStale(s0 + 3_600_000_000)).toBe(0);
  });

  test('replay floor: primed records are REPLAYED, newer ones are checked', () => {
    const val = mk();
    for (let i = 0; i < 5; i++) val.prime(v, put({ seq: i, ts: T0 + i }));
    expect(check(val, { seq: 3, ts: T0 + 3 })).toBe(RejectReason.REPLAYED);
    expect(check(val, { seq: 4, ts: T0 + 4 })).toBe(RejectReason.REPLAYED);
    expect(check(val, { seq: 5, ts: T0 + 5 })).toBe(0);
    expect(val.pendingGaps).toBe(0);
    // floor cleared: a later record with a low seq is checked as usual (duplicate of content here)
    expect(check(val, { seq: 2, ts: T0 + 2 })).toBe(RejectReason.DUPLICATE);
    // a record quarantined by the previous run is skipped alone, not the ones before it
    const q = mk();
    q.prime(v, put({ seq: 0, ts: T0 }));
    q.primeQuarantined(1, 1, 3);
    q.primeQuarantined(1, 1, 0); // at or below the floor: nothing to remember
    expect([0, 1, 2, 3, 4].map((seq) => check(q, { seq, ts: T0 + seq, price: 21000 + seq }))).toEqual([RejectReason.REPLAYED, 0, 0, RejectReason.REPLAYED, 0]);
    val.primeFloor(1, 2, 7);
    expect(check(val, { sym: 2, seq: 7 })).toBe(RejectReason.REPLAYED);
    expect(check(val, { sym: 2, seq: 8 })).toBe(0);
  });

  test('other kinds pass; unknown symbols and sources are rejected', () => {
    const val = mk({ maxSymbols: 8, maxSources: 2 });
    writeDepth(v, 0, 2, 1, 0, T0, 2, 0, 1, 21000, 3, 0);
    expect(val.check(v, 0)).toBe(0);
    expect(check(val, { sym: 0 })).toBe(RejectReason.UNKNOWN_SYMBOL);
    expect(check(val, { sym: 8 })).toBe(RejectReason.UNKNOWN_SYMBOL);
    expect(check(val, { src: 2 })).toBe(RejectReason.UNKNOWN_SYMBOL);
    const tiny = mk({ maxLanes: 1 });
    expect(check(tiny, { sym: 1 })).toBe(0);
    expect(check(tiny, { sym: 2 })).toBe(RejectReason.UNKNOWN_SYMBOL);
  });

  test('bad options are coded errors; reason names round-trip', () => {
    for (const o of [{ reorderWindowMicros: -1 }, { spikeBandFraction: NaN }, { maxSymbols: 1.5 }, { maxLanes: 0 }, { recentPerLane: 1e9 }]) {
      let err: unknown;
      try { mk(o as Partial<ValidatorOptions>); } catch (e) { err = e; }
      expect(isEngineError(err, 'ENGINE_ERR_INVALID_ARG')).toBe(true);
    }
    let err: unknown;
    try { new Validator({} as ValidatorOptions); } catch (e) { err = e; }
    expect(isEngineError(err, 'ENGINE_ERR_INVALID_ARG')).toBe(true);
    for (const code of Object.values(RejectReason)) expect(rejectReasonCode(rejectReasonName(code))).toBe(code);
    expect(rejectReasonName(0)).toBe('keep');
    expect(rejectReasonName(99)).toBe('unknown_99');
    expect(rejectReasonCode('nope')).toBe(0);
  });
});

describe('Validator properties', () => {
  const arbTick = fc.record({
    sym: fc.integer({ min: 1, max: 3 }),
    dt: fc.integer({ min: -2_000_000, max: 2_000_000 }),
    ticks: fc.integer({ min: -40, max: 40 }),
    off: fc.constantFrom(0, 0, 0, 0.1),
    size: fc.integer({ min: 0, max: 5 }),
    bad: fc.constantFrom(0, 0, 0, 0, 1, 2, 3),
    dup: fc.boolean(),
  });

  test('every kept record is finite, positive, on tick, size > 0, within the reorder window of its lane; no content twice', () => {
    fc.assert(fc.property(fc.array(arbTick, { minLength: 1, maxLength: 300 }), (ticks) => {
      const window = 500_000;
      const val = mk({ reorderWindowMicros: window, spikeBandFraction: 0 });
      const newest = new Map<number, number>();
      const keptKeys = new Set<string>();
      let ts = T0;
      let prev: T | null = null;
      let seq = 0;
      let rejects = 0;
      for (const t of ticks) {
        let rec: T;
        if (t.dup && prev) rec = { ...prev, seq: seq++ };
        else {
          ts += t.dt;
          const price = t.bad === 1 ? NaN : t.bad === 2 ? -(21000 + t.ticks * 0.25) : 21000 + t.ticks * 0.25 + t.off;
          rec = { sym: t.sym, ts, price, size: t.size, seq: seq++, bid: NaN, ask: NaN, flags: t.bad === 3 ? TradeFlag.SIDE_SELL : TradeFlag.SIDE_BUY };
        }
        prev = rec;
        const code = check(val, rec);
        const key = `${rec.sym}|${rec.ts}|${rec.price}|${rec.size}|${rec.flags}`;
        if (code !== 0) { rejects++; continue; }
        expect(Number.isFinite(rec.price) && rec.price! > 0).toBe(true);
        expect(Math.abs(rec.price! * 4 - Math.round(rec.price! * 4))).toBeLessThan(1e-6);
        expect(rec.size).toBeGreaterThan(0);
        const n = newest.get(rec.sym!) ?? -Infinity;
        expect(rec.ts!).toBeGreaterThanOrEqual(n - window);
        newest.set(rec.sym!, Math.max(n, rec.ts!));
        expect(keptKeys.has(key)).toBe(false);
        keptKeys.add(key);
      }
      const c = val.counters();
      expect(c.checked).toBe(ticks.length);
      expect(c.kept! + rejects).toBe(ticks.length);
      const byReason = Object.entries(c).filter(([k]) => k.startsWith('reject_')).reduce((a, [, x]) => a + x, 0);
      expect(byReason).toBe(rejects);
    }), { numRuns: 200 });
  });

  test('an in-order clean stream is kept whole, and a replay of it after priming is all REPLAYED', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: -20, max: 20 }), fc.integer({ min: 1, max: 9 })), { minLength: 1, maxLength: 200 }), (steps) => {
      const val = mk({ spikeBandFraction: 0 });
      const recs: T[] = [];
      let ts = T0;
      steps.forEach(([dt, tk, size], i) => { ts += dt + 1; recs.push({ ts, price: 20000 + tk * 0.25, size, seq: i, bid: NaN, ask: NaN }); });
      for (const r of recs) expect(check(val, r)).toBe(0);
      const again = mk({ spikeBandFraction: 0 });
      for (const r of recs) again.prime(v, put(r));
      for (const r of recs) expect(check(again, r)).toBe(RejectReason.REPLAYED);
      expect(again.pendingGaps).toBe(0);
    }), { numRuns: 100 });
  });
});
