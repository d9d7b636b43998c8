/**
 * Helpers for historical-route tests: ISO µs times, bars computed from source rows, answer parsers for
 * every format (JSON, NDJSON, CSV by an RFC 4180 parser, Parquet read back with DuckDB).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { expect } from 'vitest';

/** A tick as the answer's rows are compared (NaN prices are null). */
export interface Row { ts_us: number; price: number | null; size: number; bid: number | null; ask: number | null; side: string; source: string; seq: number; flags: number }

export interface Bar { ts_us: number; open: number; high: number; low: number; close: number; volume: number; trades: number; buy_volume: number; sell_volume: number; vwap: number }

export type Format = 'json' | 'ndjson' | 'csv' | 'parquet';

export const iso = (us: number): string => {
  const ms = Math.floor(us / 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us - ms * 1000).padStart(3, '0')}Z`;
};

export const inRange = (rows: readonly Row[], a: number, b: number): Row[] => rows.filter((r) => r.ts_us >= a && r.ts_us < b);

/** OHLCV bars of the trades (rows with a price) of `rows`, in order. */
export function barsOf(rows: readonly Row[], bucket: number): Bar[] {
  const out: Bar[] = [];
  let cur: (Bar & { pv: number }) | null = null;
  for (const r of rows) {
    if (r.price === null) continue;
    const b = Math.floor(r.ts_us / bucket) * bucket;
    if (cur === null || cur.ts_us !== b) {
      if (cur !== null) out.push({ ...cur, vwap: cur.pv / cur.volume });
      cur = { ts_us: b, open: r.price, high: r.price, low: r.price, close: r.price, volume: 0, trades: 0, buy_volume: 0, sell_volume: 0, vwap: 0, pv: 0 };
    }
    cur.high = Math.max(cur.high, r.price);
    cur.low = Math.min(cur.low, r.price);
    cur.close = r.price;
    cur.volume += r.size;
    cur.trades++;
    if (r.side === 'B') cur.buy_volume += r.size;
    if (r.side === 'S') cur.sell_volume += r.size;
    cur.pv += r.price * r.size;
  }
  if (cur !== null) out.push({ ...cur, vwap: cur.pv / cur.volume });
  return out.map(({ ts_us, open, high, low, close, volume, trades, buy_volume, sell_volume, vwap }) => ({ ts_us, open, high, low, close, volume, trades, buy_volume, sell_volume, vwap }));
}

export function pickTick(o: Record<string, unknown>): Row {
  return {
    ts_us: Number(o.ts_us), price: o.price === null || o.price === '' ? null : Number(o.price), size: Number(o.size),
    bid: o.bid === null || o.bid === '' ? null : Number(o.bid), ask: o.ask === null || o.ask === '' ? null : Number(o.ask),
    side: String(o.side), source: String(o.source), seq: Number(o.seq), flags: Number(o.flags),
  };
}

export function pickBar(o: Record<string, unknown>): Bar {
  return {
    ts_us: Number(o.ts_us), open: Number(o.open), high: Number(o.high), low: Number(o.low), close: Number(o.close), volume: Number(o.volume),
    trades: Number(o.trades), buy_volume: Number(o.buy_volume), sell_volume: Number(o.sell_volume), vwap: Number(o.vwap),
  };
}

export function expectBars(got: readonly Bar[], want: readonly Bar[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i] as Bar;
    const w = want[i] as Bar;
    expect({ ...g, vwap: 0 }).toEqual({ ...w, vwap: 0 });
    expect(Math.abs(g.vwap - w.vwap)).toBeLessThan(1e-6 * w.vwap);
  }
}

/** Minimal RFC 4180 parser (quoted fields, doubled quotes). */
export function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (q) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (ch === '"') q = false; else cell += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') { row.push(cell); cell = ''; } else if (ch === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; } else cell += ch;
  }
  const head = rows.shift() ?? [];
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] ?? ''])));
}

export async function parquetRows(buf: ArrayBuffer): Promise<Record<string, unknown>[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-pq-'));
  const file = join(dir, 'x.parquet');
  writeFileSync(file, Buffer.from(buf));
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const r = await c.runAndReadAll(`SELECT * EXCLUDE (ts), epoch_us(ts)::DOUBLE AS ts_us FROM read_parquet('${file}')`);
    return r.getRowObjectsJS().map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
  } finally {
    c.closeSync();
    db.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Answer { status: number; headers: Headers; rows: Record<string, unknown>[]; body: unknown }

/** GET /api/v1/ticks/historical and parse the answer's rows in any format. */
export async function historical(base: string, key: string, sym: string, a: number, b: number, format: Format, interval?: string): Promise<Answer> {
  const path = `/api/v1/ticks/historical?symbols=${sym}&start_time=${iso(a)}&end_time=${iso(b)}&format=${format}${interval ? `&interval=${interval}` : ''}`;
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
  if (r.status !== 200) {
    const body = JSON.parse(await r.text()) as unknown;
    return { status: r.status, headers: r.headers, rows: [], body };
  }
  if (format === 'parquet') return { status: 200, headers: r.headers, rows: await parquetRows(await r.arrayBuffer()), body: null };
  const text = await r.text();
  if (format === 'json') {
    const body = JSON.parse(text) as { data: Record<string, unknown>[] };
    return { status: 200, headers: r.headers, rows: body.data, body };
  }
  if (format === 'ndjson') return { status: 200, headers: r.headers, rows: text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>), body: null };
  return { status: 200, headers: r.headers, rows: parseCsv(text), body: null };
}
