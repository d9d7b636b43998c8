/**
 * The latest route's answer cache (api/rest/latest.ts): a cached answer is reused only for the very write
 * it was built from, so every answer equals the one built from a fresh read of the table, whatever the
 * sequence of writes and polls; and it is actually reused when nothing was written.
 * Runs the real handler with a minimal response object (no server: the HTTP side is test/api-rest.test.ts).
 */
import fc from 'fast-check';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { describe, expect, test } from 'vitest';
import { LatestSnapshot, LatestTable } from '../../engine/latest/latest-table.ts';
import { SymbolRegistry } from '../../engine/symbols/registry.ts';
import type { RouteCtx, Services } from './context.ts';
import { EntryCache, IsoCache, latestEntryText, latestRoute } from './latest.ts';

const NOW_MS = Date.parse('2025-11-11T15:30:00Z');

function setup(): { registry: SymbolRegistry; latest: LatestTable; ask: (query: string) => { status: number; body: string; rows: number } } {
  const registry = SymbolRegistry.create({ capacity: 16 });
  registry.register('MNQZ25');
  registry.register('NQZ25');
  registry.register('MESZ25');
  const latest = LatestTable.create(8);
  const services = { deps: { registry, latest, now: () => NOW_MS } } as unknown as Services;
  const handler = latestRoute(services);
  const ask = (query: string): { status: number; body: string; rows: number } => {
    let status = '200 OK'; // what uWS sends when writeStatus is not called
    let body = '';
    const res = {
      cork(cb: () => void) { cb(); return res; },
      writeStatus(s: string) { status = s; return res; },
      writeHeader() { return res; },
      end(b: string | Uint8Array) { body = typeof b === 'string' ? b : new TextDecoder().decode(b); return res; },
    };
    const ctx: RouteCtx = { aborted: false, principal: null, query, addr: '', streaming: false };
    void handler(res as unknown as HttpResponse, {} as HttpRequest, ctx);
    return { status: Number(status.slice(0, 3)), body, rows: ctx.rows ?? -1 };
  };
  return { registry, latest, ask };
}

/** The answer built from scratch from a fresh read (what the route answered before it had a cache). */
function fresh(latest: LatestTable, ids: readonly number[], names: readonly string[]): string {
  const snap = new LatestSnapshot();
  const iso = new IsoCache();
  return `{"data":[${ids.map((id, i) => { expect(latest.read(id, snap)).toBe(true); return latestEntryText(snap, JSON.stringify(names[i]), iso); }).join(',')}]}`;
}

describe('latest route answer cache', () => {
  test('property: after any sequence of writes and polls, every answer equals a fresh build (never stale)', () => {
    const price = fc.oneof(fc.constant(Number.NaN), fc.double({ min: 1, max: 1e5, noNaN: true }));
    const op = fc.oneof(
      fc.record({ k: fc.constant<'tick'>('tick'), id: fc.integer({ min: 1, max: 3 }), ts: fc.integer({ min: 1, max: 4e15 }), p: price, seq: fc.nat() }),
      fc.record({ k: fc.constant<'quote'>('quote'), id: fc.integer({ min: 1, max: 3 }), ts: fc.integer({ min: 1, max: 4e15 }), p: price, seq: fc.constant(0) }),
      fc.record({ k: fc.constant<'poll'>('poll'), q: fc.constantFrom('MNQ', 'NQZ25', 'MESZ25', 'MNQ,NQ', 'NQ,MNQZ25,MESZ25', 'MESZ25,MNQ') }),
    );
    const names: Record<string, [number, string]> = { MNQ: [1, 'MNQZ25'], MNQZ25: [1, 'MNQZ25'], NQ: [2, 'NQZ25'], NQZ25: [2, 'NQZ25'], MESZ25: [3, 'MESZ25'] };
    fc.assert(fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const { latest, ask } = setup();
      for (const o of ops) {
        if (o.k === 'tick') latest.writeTick(o.id, o.ts, o.p, 2, 1, o.seq, o.p - 0.25, 3, o.p, 4);
        else if (o.k === 'quote') latest.writeQuote(o.id, o.ts, o.p, 5, o.p + 0.25, 6);
        else {
          const syms = o.q.split(',');
          const r = ask(`symbols=${o.q}`);
          expect(r.status).toBe(200);
          expect(r.rows).toBe(syms.length);
          expect(r.body).toBe(fresh(latest, syms.map((s) => names[s]![0]), syms.map((s) => names[s]![1])));
        }
      }
    }), { numRuns: 300 });
  });

  test('a poll right after a write shows it; polls with no write in between reuse the same text', () => {
    const { latest, ask } = setup();
    const t = NOW_MS * 1000;
    latest.writeTick(1, t, 21000.25, 3, 1, 7, 21000, 1, 21000.25, 1);
    const a = ask('symbols=MNQ').body;
    expect(JSON.parse(a)).toMatchObject({ data: [{ symbol: 'MNQZ25', price: 21000.25, seq: 7, updates: 1 }] });
    expect(ask('symbols=MNQ').body).toBe(a);
    // a write with identical values is still a new write: counters move, the answer must too
    latest.writeTick(1, t, 21000.25, 3, 1, 7, 21000, 1, 21000.25, 1);
    expect(JSON.parse(ask('symbols=MNQ').body)).toMatchObject({ data: [{ price: 21000.25, trade_count: 2, updates: 2 }] });
    latest.writeTrade(1, t + 1, 21000.5, 1, 2, 8);
    expect(JSON.parse(ask('symbols=MNQZ25').body)).toMatchObject({ data: [{ price: 21000.5, side: 'sell', seq: 8, updates: 3 }] });
    expect(JSON.parse(ask('symbols=MNQ,NQ').body)).toMatchObject({ data: [{ symbol: 'MNQZ25', price: 21000.5 }, { symbol: 'NQZ25', updates: 0, price: null }] });
  });

  test('EntryCache: reuses only for the same (version, update count, symbol); a wrapped version alone does not match', () => {
    const cache = new EntryCache(4);
    const iso = new IsoCache();
    const s = new LatestSnapshot();
    Object.assign(s, { id: 1, version: 4, tradeTsMicros: 1e15, price: 100, size: 1, side: 1, seq: 1, updateCount: 2, tradeCount: 2, lastTsMicros: 1e15 });
    const first = cache.text(1, s, 'MNQZ25', iso);
    expect(cache.text(1, s, 'MNQZ25', iso)).toBe(first);
    expect([cache.builds, cache.hits]).toEqual([1, 1]);
    // same version (as after 2^31 writes wrapped the int32 around) but another update count: rebuilt
    Object.assign(s, { price: 101, updateCount: 2 + 2 ** 31 });
    const second = cache.text(1, s, 'MNQZ25', iso);
    expect(JSON.parse(second)).toMatchObject({ price: 101, updates: 2 + 2 ** 31 });
    // same snapshot identity under another name: rebuilt with that name
    expect(JSON.parse(cache.text(1, s, 'MNQH26', iso))).toMatchObject({ symbol: 'MNQH26', price: 101 });
    expect(cache.builds).toBe(3);
    expect(new TextDecoder().decode(cache.body(1))).toBe(`{"data":[${cache.text(1, s, 'MNQH26', iso)}]}`);
  });

  test('errors are not cached: a bad or unknown symbol answers its error every time, then a good query still works', () => {
    const { ask } = setup();
    for (let i = 0; i < 2; i++) {
      expect(() => ask('symbols=NOPE1')).toThrow(/unknown symbol/);
      expect(() => ask('symbols=')).toThrow(/required/);
    }
    expect(ask('symbols=MNQ').status).toBe(200);
  });
});
