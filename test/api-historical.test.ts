/**
 * `/api/v1/ticks/historical` against real Parquet (compactor-written) and a real hot window: every format
 * parsed back and compared with the source ticks, no seam at the Parquet/hot cut or at hour boundaries
 * (no gap, no duplicate), bars for every interval against bars computed here from the source ticks,
 * retention (410 / partial note), streaming with back-pressure to a slow reader, aborted downloads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { get, H13, H14, H15, HOT_END, MNQ_SEAM, startFixture, type Fixture, type Row } from './api-fixture.ts';

let f: Fixture;
beforeAll(async () => { f = await startFixture(); });
afterAll(async () => { await f.close(); });

const iso = (us: number): string => {
  const ms = Math.floor(us / 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us - ms * 1000).padStart(3, '0')}Z`;
};

const inRange = (rows: Row[], a: number, b: number): Row[] => rows.filter((r) => r.ts_us >= a && r.ts_us < b);

interface Bar { ts_us: number; open: number; high: number; low: number; close: number; volume: number; trades: number; buy_volume: number; sell_volume: number; vwap: number }

function barsOf(rows: Row[], bucket: number): Bar[] {
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

function pickTick(o: Record<string, unknown>): Row {
  return {
    ts_us: Number(o.ts_us), price: o.price === null || o.price === '' ? null : Number(o.price), size: Number(o.size),
    bid: o.bid === null || o.bid === '' ? null : Number(o.bid), ask: o.ask === null || o.ask === '' ? null : Number(o.ask),
    side: String(o.side), source: String(o.source), seq: Number(o.seq), flags: Number(o.flags),
  };
}

function pickBar(o: Record<string, unknown>): Bar {
  return {
    ts_us: Number(o.ts_us), open: Number(o.open), high: Number(o.high), low: Number(o.low), close: Number(o.close), volume: Number(o.volume),
    trades: Number(o.trades), buy_volume: Number(o.buy_volume), sell_volume: Number(o.sell_volume), vwap: Number(o.vwap),
  };
}

function expectBars(got: Bar[], want: Bar[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i] as Bar;
    const w = want[i] as Bar;
    expect({ ...g, vwap: 0 }).toEqual({ ...w, vwap: 0 });
    expect(Math.abs(g.vwap - w.vwap)).toBeLessThan(1e-6 * w.vwap);
  }
}

/** Minimal RFC 4180 parser (quoted fields, doubled quotes). */
function parseCsv(text: string): Record<string, string>[] {
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

async function parquetRows(buf: ArrayBuffer): Promise<Record<string, unknown>[]> {
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

async function fetchTicks(sym: string, a: number, b: number, format: 'json' | 'ndjson' | 'csv' | 'parquet', interval?: string): Promise<Record<string, unknown>[]> {
  const path = `/api/v1/ticks/historical?symbols=${sym}&start_time=${iso(a)}&end_time=${iso(b)}&format=${format}${interval ? `&interval=${interval}` : ''}`;
  const r = await fetch(`${f.base}${path}`, { headers: { authorization: `Bearer ${f.keys.historical}` } });
  if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
  if (format === 'parquet') return parquetRows(await r.arrayBuffer());
  const text = await r.text();
  if (format === 'json') return (JSON.parse(text) as { data: Record<string, unknown>[] }).data;
  if (format === 'ndjson') return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  return parseCsv(text);
}

describe('raw ticks: every format equals the source ticks', () => {
  for (const format of ['json', 'ndjson', 'csv', 'parquet'] as const) {
    test(`${format}: MNQ 13:00–16:00 across Parquet hours and the hot window`, async () => {
      const got = (await fetchTicks('MNQ', H13, H15 + 3_600_000_000, format)).map(pickTick);
      const want = f.expected('MNQZ25');
      expect(want.length).toBeGreaterThan(7000);
      expect(got.length).toBe(want.length);
      expect(got).toEqual(want);
    });
  }

  test('parquet answers in every codec read back the same', async () => {
    const want = inRange(f.expected('NQZ25'), H14, H15 + 600_000_000);
    for (const c of ['zstd', 'lz4', 'none']) {
      const r = await fetch(`${f.base}/api/v1/ticks/historical?symbols=NQ&start_time=${iso(H14)}&end_time=${iso(H15 + 600_000_000)}&format=parquet&compression=${c}`,
        { headers: { authorization: `Bearer ${f.keys.historical}` } });
      expect(r.status).toBe(200);
      expect((await parquetRows(await r.arrayBuffer())).map(pickTick)).toEqual(want);
    }
  });

  test('json rows carry the symbol, ISO µs time and ms time', async () => {
    const rows = await fetchTicks('NQZ25', H14, H14 + 60_000_000, 'json');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.symbol).toBe('NQZ25');
      expect(r.ts).toBe(iso(r.ts_us as number));
      expect(r.ts_ms).toBe(Math.floor((r.ts_us as number) / 1000));
    }
  });
});

describe('no seam', () => {
  test('MNQ: range straddling the Parquet/hot cut inside an hour file (rows in both places) has no duplicate and no gap', async () => {
    const a = MNQ_SEAM - 5 * 60_000_000;
    const b = MNQ_SEAM + 5 * 60_000_000;
    const got = (await fetchTicks('MNQZ25', a, b, 'ndjson')).map(pickTick);
    expect(got).toEqual(inRange(f.expected('MNQZ25'), a, b));
    const seqs = got.map((r) => `${r.ts_us}/${r.seq}`);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  test('NQ: range across the 15:00 hour boundary from Parquet into the hot window', async () => {
    const a = H15 - 10 * 60_000_000;
    const b = H15 + 10 * 60_000_000;
    const got = (await fetchTicks('NQZ25', a, b, 'csv')).map(pickTick);
    const want = inRange(f.expected('NQZ25'), a, b);
    expect(got).toEqual(want);
    expect(got.some((r) => r.ts_us < H15) && got.some((r) => r.ts_us >= H15)).toBe(true);
  });

  test('MNQ: ranges that start or end exactly at the cut and at hour boundaries', async () => {
    const held = f.hot.heldFromMicros(1);
    for (const [a, b] of [[held, held + 60_000_000], [held - 60_000_000, held], [H14, H15], [H15, HOT_END], [H14 - 1, H14 + 1]] as const) {
      const got = (await fetchTicks('MNQZ25', a, b, 'json')).map(pickTick);
      expect(got).toEqual(inRange(f.expected('MNQZ25'), a, b));
    }
  });

  test('property: any range inside 12:50–15:30 equals the source ticks (raw and 1m bars)', async () => {
    const lo = H13 - 10 * 60_000_000;
    const hi = H15 + 30 * 60_000_000;
    await fc.assert(fc.asyncProperty(fc.integer({ min: lo, max: hi - 1 }), fc.integer({ min: 1, max: 90 * 60_000_000 }), fc.constantFrom('MNQZ25', 'NQZ25'), async (a, len, sym) => {
      const b = Math.min(hi, a + len);
      const want = inRange(f.expected(sym), a, b);
      const got = (await fetchTicks(sym, a, b, 'ndjson')).map(pickTick);
      expect(got).toEqual(want);
      const bars = (await fetchTicks(sym, a, b, 'ndjson', '1m')).map(pickBar);
      expectBars(bars, barsOf(want, 60_000_000));
    }), { numRuns: 6, seed: 42 });
  });
});

describe('bars', () => {
  const intervals: [string, number][] = [['1s', 1e6], ['1m', 6e7], ['5m', 3e8], ['15m', 9e8], ['1h', 3.6e9], ['4h', 1.44e10], ['1d', 8.64e10]];
  for (const [name, us] of intervals) {
    test(`${name}: MNQ bars (bar files + ticks + hot window merged) equal bars of the source ticks`, async () => {
      const got = (await fetchTicks('MNQ', H13, H15 + 3_600_000_000, 'ndjson', name)).map(pickBar);
      expectBars(got, barsOf(f.expected('MNQZ25'), us));
    });
  }

  test('unaligned range: partial minutes at both ends, bar straddling the cut', async () => {
    const a = H13 + 30_500_000;
    const b = MNQ_SEAM + 90_250_000;
    for (const [name, us] of [['1m', 6e7], ['15m', 9e8]] as const) {
      const want = barsOf(inRange(f.expected('MNQZ25'), a, b), us);
      for (const format of ['json', 'csv', 'parquet'] as const) {
        const rows = await fetchTicks('MNQZ25', a, b, format, name);
        const got = rows.map((o) => pickBar(format === 'parquet' ? { ...o } : o));
        expectBars(got, want);
      }
    }
  });
});

describe('ranges, retention and errors', () => {
  test('a range wholly older than retention is 410 saying the data is unavailable', async () => {
    const r = await get(f, '/api/v1/ticks/historical?symbols=MNQ&start_time=2024-01-01T00:00:00Z&end_time=2024-02-01T00:00:00Z', f.keys.historical);
    expect(r.status).toBe(410);
    const e = (r.json() as { error: { code: string; message: string } }).error;
    expect(e.code).toBe('DATA_UNAVAILABLE');
    expect(e.message).toMatch(/unavailable/);
  });

  test('a range partly older than retention returns what exists and names the unavailable part', async () => {
    const r = await get(f, `/api/v1/ticks/historical?symbols=MNQ&start_time=2024-11-01T00:00:00Z&end_time=${iso(H14)}`, f.keys.historical);
    expect(r.status).toBe(200);
    const body = r.json() as { unavailable: { from: string; to: string }[]; data: Record<string, unknown>[] };
    expect(body.unavailable).toEqual([{ from: '2024-11-01T00:00:00.000000Z', to: '2024-11-11T00:00:00.000000Z', reason: 'older than the retention of 365 days' }]);
    expect(r.headers.get('x-tickpipe-unavailable')).toContain('2024-11-01T00:00:00.000000Z/2024-11-11T00:00:00.000000Z');
    expect(body.data.map(pickTick)).toEqual(inRange(f.expected('MNQZ25'), 0, H14));
  });

  test('an empty range answers an empty list in every format', async () => {
    const a = H13 - 2 * 3_600_000_000;
    expect(await fetchTicks('MNQZ25', a, a + 1_000_000, 'json')).toEqual([]);
    expect(await fetchTicks('MNQZ25', a, a + 1_000_000, 'csv')).toEqual([]);
    expect(await fetchTicks('MNQZ25', a, a + 1_000_000, 'parquet')).toEqual([]);
  });

  test('two symbols in one json answer, each in order', async () => {
    const r = await get(f, `/api/v1/ticks/historical?symbols=MNQ,NQ&start_time=${iso(H15 - 60_000_000)}&end_time=${iso(H15 + 60_000_000)}`, f.keys.historical);
    expect(r.status).toBe(200);
    const data = (r.json() as { data: Record<string, unknown>[] }).data;
    const mnq = data.filter((d) => d.symbol === 'MNQZ25').map(pickTick);
    const nq = data.filter((d) => d.symbol === 'NQZ25').map(pickTick);
    expect(mnq).toEqual(inRange(f.expected('MNQZ25'), H15 - 60_000_000, H15 + 60_000_000));
    expect(nq).toEqual(inRange(f.expected('NQZ25'), H15 - 60_000_000, H15 + 60_000_000));
  });

  const bad: [string, number, string][] = [
    ['symbols=MNQ', 400, 'start_time is required'],
    ['symbols=MNQ&start_time=yesterday', 400, 'not a time'],
    ['symbols=MNQ&start_time=2025-11-11T14:00:00Z&end_time=2025-11-11T13:00:00Z', 400, 'after start_time'],
    ['symbols=MNQ&start_time=2025-11-11T14:00:00Z&interval=7m', 400, 'interval must be one of'],
    ['symbols=MNQ&start_time=2025-11-11T14:00:00Z&format=xml', 400, 'format must be one of'],
    ['symbols=MNQ,NQ&start_time=2025-11-11T14:00:00Z&format=parquet', 400, 'one symbol'],
    ['symbols=MNQ&start_time=2025-11-11T14:00:00Z&format=parquet&compression=gzip9', 400, 'compression must be one of'],
    ['symbols=ZZZZ9&start_time=2025-11-11T14:00:00Z', 404, 'unknown symbol'],
    ['start_time=2025-11-11T14:00:00Z', 400, 'symbols is required'],
  ];
  for (const [qs, status, msg] of bad) {
    test(`${status} for ${qs}`, async () => {
      const r = await get(f, `/api/v1/ticks/historical?${qs}`, f.keys.historical);
      expect(r.status).toBe(status);
      expect((r.json() as { error: { message: string } }).error.message).toContain(msg);
    });
  }

  test('403 for a key without the historical scope and for a symbol not granted', async () => {
    const q = `/api/v1/ticks/historical?symbols=MNQ&start_time=${iso(H14)}&end_time=${iso(H14 + 1e6)}`;
    expect((await get(f, q, f.keys.realtime)).status).toBe(403);
    const r = await get(f, q, f.keys.nqOnly);
    expect(r.status).toBe(403);
    expect((r.json() as { error: { code: string } }).error.code).toBe('SYMBOL_NOT_GRANTED');
    expect((await get(f, q.replace('MNQ', 'NQ'), f.keys.nqOnly)).status).toBe(200);
  });
});

describe('streaming', () => {
  test('a slow reader gets the whole answer (back-pressure, not buffering or loss)', async () => {
    const path = `/api/v1/ticks/historical?symbols=MNQ&start_time=${iso(H13)}&end_time=${iso(HOT_END)}&format=ndjson`;
    const text = await new Promise<string>((resolve, reject) => {
      const req = request(`${f.base}${path}`, { headers: { authorization: `Bearer ${f.keys.historical}` } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          parts.push(c);
          res.pause();
          setTimeout(() => res.resume(), 2);
        });
        res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const got = text.split('\n').filter((l) => l !== '').map((l) => pickTick(JSON.parse(l) as Record<string, unknown>));
    expect(got).toEqual(f.expected('MNQZ25'));
  });

  test('a historical download held open by a client that does not read blocks nobody: latest answers meanwhile', async () => {
    const path = `${f.base}/api/v1/ticks/historical?symbols=MNQ,NQ&start_time=${iso(H13)}&end_time=${iso(HOT_END)}&format=json`;
    let got = 0;
    const req = request(path, { headers: { authorization: `Bearer ${f.keys.historical}` } }, (res) => {
      res.once('data', (c: Buffer) => { got += c.length; res.pause(); }); // read one chunk, then stop reading
    });
    req.on('error', () => undefined);
    req.end();
    const deadline = Date.now() + 20_000;
    while (got === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) expect((await get(f, '/api/v1/ticks/latest?symbols=MNQ', f.keys.realtime)).status).toBe(200);
    const r = await get(f, `/api/v1/ticks/historical?symbols=NQ&start_time=${iso(H15)}&end_time=${iso(H15 + 60_000_000)}`, f.keys.historical);
    expect(r.status).toBe(200);
    req.destroy();
  });

  test('clients that abort mid-download leave the server and its DuckDB connections usable', async () => {
    const path = `${f.base}/api/v1/ticks/historical?symbols=MNQ&start_time=${iso(H13)}&end_time=${iso(HOT_END)}&format=json`;
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((resolve) => {
        const req = request(path, { headers: { authorization: `Bearer ${f.keys.historical}` } }, (res) => {
          res.once('data', () => { req.destroy(); resolve(); });
        });
        req.on('error', () => resolve());
        req.end();
      });
    }
    const rows = await fetchTicks('MNQ', H13, HOT_END, 'json');
    expect(rows.length).toBe(f.expected('MNQZ25').length);
  });
});
