/**
 * REST contract tests with a real HTTP client (fetch) against the real uWS server: every route and its
 * status codes (200, 400, 401, 403, 404, 405, 413, 429, 503), the JSON error shape, CORS, body limits,
 * malformed JSON, metrics, and that no answer carries a stack trace.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HotColumns, toObjects } from '../engine/hot/hot-columns.ts';
import { LatestSnapshot, LatestTable, microsToIso } from '../engine/latest/latest-table.ts';
import { IsoCache, latestEntryText } from '../api/rest/latest.ts';
import { get, H15, HOT_END, NOW_MS, startFixture, type Fixture } from './api-fixture.ts';

let f: Fixture;
beforeAll(async () => { f = await startFixture({ ticksPerHour: 1500 }); });
afterAll(async () => { await f.close(); });

type ErrBody = { error: { code: string; message: string } };
const err = (r: { json: () => unknown }): ErrBody['error'] => (r.json() as ErrBody).error;

describe('no key needed', () => {
  test('/healthz, /readyz, /api/v1/status', async () => {
    expect((await get(f, '/healthz')).json()).toEqual({ ok: true });
    expect((await get(f, '/readyz')).status).toBe(200);
    const s = await get(f, '/api/v1/status');
    expect(s.status).toBe(200);
    expect(s.json()).toEqual({ service: 'tickpipe', stages: [] });
  });

  test('/readyz is 503 while the engine is not ready', async () => {
    const deps = f.deps as { ready: () => boolean };
    const prev = deps.ready;
    deps.ready = () => false;
    try {
      const r = await get(f, '/readyz');
      expect(r.status).toBe(503);
      expect(err(r).code).toBe('NOT_READY');
    } finally {
      deps.ready = prev;
    }
  });

  test('/metrics: Prometheus text with HTTP latency percentiles, request counts, process and engine families', async () => {
    await get(f, `/api/v1/ticks/latest?symbols=MNQ`, f.keys.realtime);
    const r = await get(f, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    expect(r.text).toMatch(/^tickpipe_http_request_duration_seconds\{route="ticks\/latest",quantile="0.99"\} [0-9.e-]+$/m);
    expect(r.text).toMatch(/^tickpipe_http_requests_total\{route="ticks\/latest",status="200"\} [1-9]/m);
    expect(r.text).toMatch(/^tickpipe_process_resident_memory_bytes [0-9]/m);
    expect(r.text).toContain('tickpipe_ticks_total{source="sierra"} 12345');
    expect(r.text).toMatch(/^tickpipe_api_auth_refused_total\{reason="unauthorized"\} \d+$/m);
    for (const line of r.text.split('\n')) if (line !== '' && !line.startsWith('#')) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eInfNa]+$/);
  });
});

describe('/api/v1/ticks/latest', () => {
  test('reads the latest table: roots resolve to the front month, contracts work, order kept', async () => {
    const r = await get(f, '/api/v1/ticks/latest?symbols=NQZ25,MNQ,MESZ25', f.keys.realtime);
    expect(r.status).toBe(200);
    const data = (r.json() as { data: Record<string, unknown>[] }).data;
    expect(data.map((d) => d.symbol)).toEqual(['NQZ25', 'MNQZ25', 'MESZ25']);
    expect(data[1]).toEqual(f.latest.readJson(1, 'MNQZ25'));
    expect((data[1] as { ts_us: number }).ts_us).toBeLessThan(HOT_END);
    expect(data[2]).toMatchObject({ symbol: 'MESZ25', price: null, updates: 0 });
  });

  test('401 missing key, 401 unknown key, 401 malformed header, 403 scope, 403 symbol, 404 unknown symbol, 400 no symbols', async () => {
    let r = await get(f, '/api/v1/ticks/latest?symbols=MNQ');
    expect([r.status, err(r).code]).toEqual([401, 'MISSING_KEY']);
    r = await get(f, '/api/v1/ticks/latest?symbols=MNQ', 'tpk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect([r.status, err(r).code]).toEqual([401, 'UNKNOWN_KEY']);
    r = await get(f, '/api/v1/ticks/latest?symbols=MNQ', undefined, { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(r.status).toBe(401);
    r = await get(f, '/api/v1/ticks/latest?symbols=NQ', f.keys.admin.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')));
    expect(r.status).toBe(401);
    const histOnly = (await f.keystore.create({ name: 'hist-only', scopes: ['historical'] })).key;
    r = await get(f, '/api/v1/ticks/latest?symbols=MNQ', histOnly);
    expect([r.status, err(r).code]).toEqual([403, 'SCOPE_NOT_GRANTED']);
    r = await get(f, '/api/v1/ticks/latest?symbols=MNQ', f.keys.nqOnly);
    expect([r.status, err(r).code]).toEqual([403, 'SYMBOL_NOT_GRANTED']);
    expect((await get(f, '/api/v1/ticks/latest?symbols=NQ', f.keys.nqOnly)).status).toBe(200);
    r = await get(f, '/api/v1/ticks/latest?symbols=NOPE1', f.keys.realtime);
    expect([r.status, err(r).code]).toEqual([404, 'UNKNOWN_SYMBOL']);
    r = await get(f, '/api/v1/ticks/latest', f.keys.realtime);
    expect([r.status, err(r).code]).toEqual([400, 'BAD_REQUEST']);
    r = await get(f, '/api/v1/ticks/latest?symbols=MNQ&symbols=NQ', f.keys.realtime);
    expect(r.status).toBe(400);
    expect((await get(f, '/api/v1/ticks/latest?symbols=MNQ', undefined, { headers: { 'x-api-key': f.keys.realtime } })).status).toBe(200);
  });
});

test('property: the latest route\'s hand-built JSON equals LatestTable.readJson for any slot', () => {
  const snap = new LatestSnapshot();
  const iso = new IsoCache();
  const price = fc.oneof(fc.constant(Number.NaN), fc.double({ min: -1e6, max: 1e6, noNaN: true }));
  const ts = fc.oneof(fc.integer({ min: 0, max: 7_258_118_400_000_000 }), fc.constant(Number.NaN));
  const op = fc.oneof(
    fc.record({ k: fc.constant('tick'), ts, p: price, size: fc.nat(1e6), side: fc.integer({ min: 0, max: 2 }), seq: fc.nat(), bid: price, ask: price }),
    fc.record({ k: fc.constant('quote'), ts, p: price, size: fc.nat(1e6), side: fc.constant(0), seq: fc.constant(0), bid: price, ask: price }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 4 }), (ops) => {
    const tt = LatestTable.create(2);
    for (const o of ops) {
      if (o.k === 'tick') tt.writeTick(1, o.ts, o.p, o.size, o.side, o.seq, o.bid, 3, o.ask, 4);
      else tt.writeQuote(1, o.ts, o.bid, o.size, o.ask, 5);
    }
    tt.read(1, snap);
    const want = tt.readJson(1, 'MNQZ25');
    const got = latestEntryText(snap, '"MNQZ25"', iso);
    if (want === null) expect(JSON.parse(got)).toMatchObject({ symbol: 'MNQZ25', updates: 0, price: null });
    else expect(got).toBe(JSON.stringify(want)); // the same text on the wire (key order, -0 as 0, null for NaN)
  }), { numRuns: 300 });
});

test('property: IsoCache formats like microsToIso for any instant 1970..2200, in any call order', () => {
  const iso = new IsoCache();
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 7_258_118_400_000_000 }), { minLength: 1, maxLength: 20 }), (xs) => {
    for (const us of xs) expect(iso.iso(us)).toBe(microsToIso(us));
  }), { numRuns: 500 });
});

describe('/api/v1/ticks/realtime', () => {
  test('newest N from the hot window equals a direct window read', async () => {
    const r = await get(f, '/api/v1/ticks/realtime?symbols=MNQ,NQZ25&limit=50', f.keys.realtime);
    expect(r.status).toBe(200);
    const data = (r.json() as { data: { symbol: string; ticks: unknown[]; more: boolean; held_from: string }[] }).data;
    const cols = new HotColumns(100);
    f.hot.newest(1, 50, cols);
    expect(data[0]?.ticks).toEqual(toObjects(cols, 'MNQZ25'));
    expect(data[0]?.more).toBe(true);
    f.hot.newest(2, 50, cols);
    expect(data[1]?.ticks).toEqual(toObjects(cols, 'NQZ25'));
    expect(data[1]?.held_from).toBe('2025-11-11T15:00:00.000000Z');
  });

  test('since: first `limit` ticks at or after the time', async () => {
    const since = H15 + 60_000_000;
    const r = await get(f, `/api/v1/ticks/realtime?symbols=NQ&limit=20&since=${since}`, f.keys.realtime);
    const ticks = (r.json() as { data: { ticks: { ts_us: number }[] }[] }).data[0]?.ticks ?? [];
    const want = f.expected('NQZ25').filter((t) => t.ts_us >= since).slice(0, 20).map((t) => t.ts_us);
    expect(ticks.map((t) => t.ts_us)).toEqual(want);
  });

  test('400 for bad limit and since', async () => {
    for (const q of ['limit=0', 'limit=10001', 'limit=abc', 'since=nope', 'limit=1.5']) {
      const r = await get(f, `/api/v1/ticks/realtime?symbols=MNQ&${q}`, f.keys.realtime);
      expect(r.status, q).toBe(400);
    }
  });
});

describe('/api/v1/depth, /api/v1/gaps, /api/v1/quarantine', () => {
  test('depth: best levels first, levels bounded, 404 without a book', async () => {
    const r = await get(f, '/api/v1/depth?symbol=MNQ&levels=3', f.keys.realtime);
    expect(r.status).toBe(200);
    const b = r.json() as { bids: { price: number; quantity: number }[]; asks: { price: number }[]; bid_levels: number };
    expect(b.bids.map((x) => x.price)).toEqual([21000, 20999.75, 20999.5]);
    expect(b.asks.map((x) => x.price)).toEqual([21000.25, 21000.5, 21000.75]);
    expect(b.bid_levels).toBe(15);
    expect((await get(f, '/api/v1/depth?symbol=NQ', f.keys.realtime)).status).toBe(404);
    expect((await get(f, '/api/v1/depth?symbol=MNQ&levels=0', f.keys.realtime)).status).toBe(400);
    expect((await get(f, '/api/v1/depth', f.keys.realtime)).status).toBe(400);
  });

  test('gaps: filters passed through, symbol grants enforced', async () => {
    let r = await get(f, '/api/v1/gaps?symbol=MNQ&limit=5&start_time=2025-11-11T14:00:00Z', f.keys.historical);
    expect(r.status).toBe(200);
    expect((r.json() as { data: { symbol: string }[] }).data).toEqual([expect.objectContaining({ symbol: 'MNQZ25' })]);
    expect(f.gapsCalls.at(-1)).toEqual({ symbol: 'MNQZ25', fromMicros: Date.parse('2025-11-11T14:00:00Z') * 1000, toMicros: null, limit: 5 });
    r = await get(f, '/api/v1/gaps', f.keys.historical);
    expect((r.json() as { data: unknown[] }).data.length).toBe(2);
    expect((await get(f, '/api/v1/gaps', f.keys.nqOnly)).status).toBe(403);
    expect((await get(f, '/api/v1/gaps?symbol=NQ', f.keys.nqOnly)).status).toBe(200);
    expect((await get(f, '/api/v1/gaps?limit=-1', f.keys.historical)).status).toBe(400);
  });

  test('quarantine (async source)', async () => {
    const r = await get(f, '/api/v1/quarantine?symbol=MNQZ25', f.keys.historical);
    expect(r.status).toBe(200);
    expect((r.json() as { data: { rule: string }[] }).data[0]?.rule).toBe('price_outside_band');
    expect((await get(f, '/api/v1/quarantine', f.keys.realtime)).status).toBe(403);
  });
});

describe('hygiene', () => {
  test('unknown routes: JSON 404; wrong method on a route: 405', async () => {
    const r = await get(f, '/api/v1/nothing-here?x=1');
    expect([r.status, err(r).code]).toEqual([404, 'NOT_FOUND']);
    expect(r.headers.get('content-type')).toBe('application/json');
    const p = await get(f, '/api/v1/ticks/latest', f.keys.realtime, { method: 'DELETE' });
    expect([p.status, err(p).code]).toEqual([405, 'METHOD_NOT_ALLOWED']);
  });

  test('body limit: 413 by Content-Length and by streamed size', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(10_000), scopes: ['realtime'] });
    let r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } });
    expect([r.status, err(r).code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    // chunked: no Content-Length
    const stream = new ReadableStream<Uint8Array>({
      start(c) { for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode('x'.repeat(1000))); c.close(); },
    });
    r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(r.status).toBe(413);
  });

  test('malformed JSON: 400 naming the problem', async () => {
    let r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: '{"name": "a", scopes: }' });
    expect([r.status, err(r).code]).toEqual([400, 'BAD_JSON']);
    expect(err(r).message).toMatch(/malformed JSON: .*(position|Unexpected|Expected)/);
    r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: '' });
    expect(err(r).message).toContain('empty');
    r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    expect(err(r).message).toContain('UTF-8');
    r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: '[1,2]' });
    expect(r.status).toBe(400);
    r = await get(f, '/api/v1/keys', f.keys.admin, { method: 'POST', body: '{"name":"x","scopes":["root"]}' });
    expect([r.status, err(r).message]).toEqual([400, expect.stringContaining('unknown scope')]);
  });

  test('CORS: allowed origin echoed (and preflight answered), others get no CORS headers', async () => {
    let r = await get(f, '/healthz', undefined, { headers: { origin: 'http://allowed.example' } });
    expect(r.headers.get('access-control-allow-origin')).toBe('http://allowed.example');
    r = await get(f, '/healthz', undefined, { headers: { origin: 'http://evil.example' } });
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    r = await get(f, '/api/v1/ticks/latest', undefined, { method: 'OPTIONS', headers: { origin: 'http://allowed.example', 'access-control-request-method': 'GET' } });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-headers')).toContain('authorization');
    r = await get(f, '/api/v1/ticks/latest?symbols=MNQ', undefined, { headers: { origin: 'http://allowed.example' } });
    expect([r.status, r.headers.get('access-control-allow-origin')]).toEqual([401, 'http://allowed.example']);
  });

  test('an engine failure is a 500 without internals; no answer ever carries a stack trace', async () => {
    const deps = f.deps as { status: () => Record<string, unknown> };
    const prev = deps.status;
    deps.status = () => { throw new Error('secret internal detail at /home/x/engine.ts:12'); };
    try {
      const r = await get(f, '/api/v1/status');
      expect(r.status).toBe(500);
      expect(r.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    } finally {
      deps.status = prev;
    }
  });

  test('latest answers are served from memory even when the clock says the data is old (no I/O path)', async () => {
    expect(f.deps.now()).toBe(NOW_MS);
    const r = await get(f, '/api/v1/ticks/latest?symbols=MNQ', f.keys.realtime);
    expect(r.status).toBe(200);
  });
});
