/**
 * A real front end for API tests: a symbol registry, a latest table, a hot window, real Parquet hours
 * written by the compactor (workers/compactor writeHourParquet) from known seeded tapes, an order book, a
 * KeyStore with a few keys, all behind `createApi` listening on 127.0.0.1:0.
 *
 * Data (all UTC, "now" = 2025-11-11T15:30Z, so MNQ resolves to MNQZ25):
 * - MNQZ25: Parquet hours 13:00 and 14:00; the hot window holds the 14:00 tape from 14:20 on plus the 15:00
 *   tape up to 15:20 (the seam is inside the 14:00 file: rows 14:20–15:00 are in both places).
 * - NQZ25: Parquet hour 14:00; the hot window holds the 15:00 tape (the seam is the hour boundary).
 * `expected(symbol)` is every tick of a symbol exactly once, in order: what any range query must match.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OrderBook } from '../engine/book/order-book.ts';
import { HotWindow } from '../engine/hot/hot-window.ts';
import { LatestTable } from '../engine/latest/latest-table.ts';
import { SymbolRegistry } from '../engine/symbols/registry.ts';
import { writeHourParquet, type TickColumns } from '../workers/compactor/index.ts';
import { allocColumns, makeTape } from '../workers/compactor/test-ticks.ts';
import { KeyStore } from '../api/auth/keystore.ts';
import type { ApiDeps, ApiOptions, MetricFamily, RecordQuery } from '../api/deps.ts';
import { createApi, type Api, type ApiServer } from '../api/server.ts';

export const NOW_MS = Date.parse('2025-11-11T15:30:00Z');
export const H13 = Date.parse('2025-11-11T13:00:00Z') * 1000;
export const H14 = H13 + 3_600_000_000;
export const H15 = H14 + 3_600_000_000;
export const MNQ_SEAM = H14 + 20 * 60_000_000;
export const HOT_END = H15 + 20 * 60_000_000;
export const SOURCES = ['none', 'sierra'];

/** Ticks as plain rows (for comparisons). NaN prices are null. */
export interface Row { ts_us: number; price: number | null; size: number; bid: number | null; ask: number | null; side: string; source: string; seq: number; flags: number }

export interface Keys { admin: string; realtime: string; historical: string; nqOnly: string; limited: string; adminId: string; realtimeId: string }

export interface Fixture {
  dir: string;
  base: string;
  api: Api;
  server: ApiServer;
  deps: ApiDeps;
  keys: Keys;
  keystore: KeyStore;
  registry: SymbolRegistry;
  hot: HotWindow;
  latest: LatestTable;
  /** Every tick of the symbol once, time order. */
  expected(symbol: string): Row[];
  gapsCalls: RecordQuery[];
  close(): Promise<void>;
}

const nn = (x: number): number | null => (Number.isNaN(x) ? null : x);

function rowsOf(c: TickColumns, n: number, from = -Infinity, to = Infinity): Row[] {
  const out: Row[] = [];
  for (let i = 0; i < n; i++) {
    const t = c.tsMicros[i] as number;
    if (t < from || t >= to) continue;
    const f = c.flags[i] as number;
    out.push({
      ts_us: t, price: nn(c.price[i] as number), size: c.size[i] as number, bid: nn(c.bid[i] as number), ask: nn(c.ask[i] as number),
      side: (f & 3) === 1 ? 'B' : (f & 3) === 2 ? 'S' : '', source: 'sierra', seq: c.seq[i] as number, flags: f,
    });
  }
  return out;
}

function appendHot(hot: HotWindow, id: number, c: TickColumns, n: number, from: number, to: number): void {
  for (let i = 0; i < n; i++) {
    const t = c.tsMicros[i] as number;
    if (t < from || t >= to) continue;
    if (!hot.append(id, t, c.price[i] as number, c.bid[i] as number, c.ask[i] as number, c.size[i] as number, c.flags[i] as number, c.seq[i] as number, 1)) {
      throw new Error('hot append refused');
    }
  }
}

export async function startFixture(opts: ApiOptions & { ticksPerHour?: number } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-api-'));
  const n = opts.ticksPerHour ?? 3000;
  const registry = SymbolRegistry.create({ capacity: 64 });
  const mnq = registry.register('MNQZ25');
  const nq = registry.register('NQZ25');
  registry.register('MESZ25');
  const latest = LatestTable.create(64);
  const hot = HotWindow.create({ symbols: 64, capacityPerSymbol: 1 << 15, retainMicros: 3_600_000_000 });

  const t13 = makeTape(n, H13, 13, allocColumns(n));
  const t14 = makeTape(n, H14, 14, allocColumns(n));
  const t15 = makeTape(n, H15, 15, allocColumns(n));
  const n14 = makeTape(n, H14, 114, allocColumns(n));
  const n15 = makeTape(n, H15, 115, allocColumns(n));
  await writeHourParquet({ dataDir: dir, symbol: 'MNQZ25', hourStartMicros: H13, columns: t13, count: n, source: 'sierra' });
  await writeHourParquet({ dataDir: dir, symbol: 'MNQZ25', hourStartMicros: H14, columns: t14, count: n, source: 'sierra' });
  await writeHourParquet({ dataDir: dir, symbol: 'NQZ25', hourStartMicros: H14, columns: n14, count: n, source: 'sierra' });
  appendHot(hot, mnq, t14, n, MNQ_SEAM, Infinity);
  appendHot(hot, mnq, t15, n, H15, HOT_END);
  appendHot(hot, nq, n15, n, H15, HOT_END);

  // latest: the last trade of each hot tape
  for (const [id, c] of [[mnq, t15], [nq, n15]] as const) {
    for (let i = 0; i < n; i++) {
      const t = c.tsMicros[i] as number;
      if (t >= HOT_END || Number.isNaN(c.price[i] as number)) continue;
      latest.writeTick(id, t, c.price[i] as number, c.size[i] as number, (c.flags[i] as number) & 3, c.seq[i] as number, c.bid[i] as number, 3, c.ask[i] as number, 4);
    }
  }
  const book = new OrderBook({ tickSize: 0.25 });
  book.apply(H15, 1, 0, 0, 0, 0); // CLEAR_BOOK
  for (let i = 0; i < 15; i++) {
    book.apply(H15, 2, 0, 1 + i, 21000 - i * 0.25, 10 + i); // ADD_BID_LEVEL
    book.apply(H15, 3, i === 14 ? 1 : 0, 2 + i, 21000.25 + i * 0.25, 20 + i); // ADD_ASK_LEVEL, last ends the batch
  }

  const keystore = KeyStore.open(dir);
  const admin = keystore.createSync({ name: 'admin', scopes: ['admin'] });
  const realtime = keystore.createSync({ name: 'rt', scopes: ['realtime'] });
  const historical = keystore.createSync({ name: 'hist', scopes: ['historical', 'realtime'] });
  const nqOnly = keystore.createSync({ name: 'nq-only', scopes: ['realtime', 'historical'], symbols: ['NQ'] });
  const limited = keystore.createSync({ name: 'limited', scopes: ['realtime'], ratePerSec: 2 });

  const gapsCalls: RecordQuery[] = [];
  const gapRows = [
    { symbol: 'MNQZ25', from: '2025-11-11T14:05:00.000000Z', to: '2025-11-11T14:05:03.000000Z', reason: 'seq' },
    { symbol: 'NQZ25', from: '2025-11-11T14:06:00.000000Z', to: '2025-11-11T14:06:01.000000Z', reason: 'time' },
  ];
  const metricsFamilies: MetricFamily[] = [{ name: 'tickpipe_ticks_total', help: 'ticks by source', type: 'counter', samples: [{ labels: { source: 'sierra' }, value: 12345 }] }];
  const deps: ApiDeps = {
    registry, latest, hot, dataDir: dir, sourceNames: SOURCES,
    book: (id) => (id === mnq ? book : null),
    gaps: (q) => {
      gapsCalls.push(q);
      return gapRows.filter((g) => q.symbol === null || g.symbol === q.symbol).slice(0, q.limit);
    },
    quarantine: async (q) => {
      await new Promise((r) => setTimeout(r, 1));
      return q.symbol === 'NQZ25' ? [] : [{ symbol: 'MNQZ25', ts: '2025-11-11T14:07:00.000000Z', rule: 'price_outside_band' }];
    },
    status: () => ({ service: 'tickpipe', stages: [] }),
    ready: () => true,
    metrics: () => metricsFamilies,
    auth: keystore,
    retentionDays: 365,
    now: () => NOW_MS,
  };
  const { ticksPerHour: _unused, ...apiOpts } = opts;
  const api = await createApi(deps, { historyFile: join(dir, 'history.ndjson'), maxBodyBytes: 4096, corsOrigins: ['http://allowed.example'], ...apiOpts });
  const server = await api.listen('127.0.0.1', 0);
  const expected = (symbol: string): Row[] => {
    if (symbol === 'MNQZ25') return [...rowsOf(t13, n), ...rowsOf(t14, n), ...rowsOf(t15, n, -Infinity, HOT_END)];
    if (symbol === 'NQZ25') return [...rowsOf(n14, n), ...rowsOf(n15, n, -Infinity, HOT_END)];
    return [];
  };
  return {
    dir, base: `http://127.0.0.1:${server.port}`, api, server, deps, registry, hot, latest, keystore, expected, gapsCalls,
    keys: {
      admin: admin.key, realtime: realtime.key, historical: historical.key, nqOnly: nqOnly.key, limited: limited.key,
      adminId: admin.info.id, realtimeId: realtime.info.id,
    },
    async close() {
      await api.close();
      keystore.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GET with a key; returns status, headers and text. */
export async function get(f: Fixture, path: string, key?: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string; json: () => unknown }> {
  const headers = new Headers(init.headers);
  if (key !== undefined) headers.set('authorization', `Bearer ${key}`);
  const r = await fetch(`${f.base}${path}`, { ...init, headers });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) as unknown };
}
