/**
 * Fuzzed requests against the real server: random query strings (known parameter names with hostile or
 * plausible values, and raw garbage), random paths, methods and auth headers. Every answer must be a 2xx
 * or a 4xx with the JSON error shape — never a 5xx, never a crash (the server still answers afterwards).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startFixture, type Fixture } from './api-fixture.ts';

let f: Fixture;
beforeAll(async () => { f = await startFixture({ ticksPerHour: 300, badKeyLimitPerMinute: 1_000_000 }); });
afterAll(async () => { await f.close(); });

const ROUTES = ['/api/v1/ticks/latest', '/api/v1/ticks/realtime', '/api/v1/ticks/historical', '/api/v1/depth', '/api/v1/gaps', '/api/v1/quarantine'];
const PARAMS = ['symbols', 'symbol', 'limit', 'since', 'start_time', 'end_time', 'interval', 'format', 'levels', 'token'];

const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('MNQ', 'NQZ25', 'MNQ,NQ', 'ES', '', ',', ',,,', 'mnq', 'MNQZ25,'.repeat(70), '%00', '%ZZ', '1', '0', '-1', '1e3', 'NaN', 'Infinity',
    '2025-11-11T14:00:00Z', '2025-11-11T14:30:00.123456Z', '2025-02-30', '2025-11-11T25:00:00Z', '1762869600', '1762869600000', '1762869600000000',
    '99999999999999999', '1m', '1s', '4h', '1d', 'raw', 'json', 'csv', 'ndjson', 'parquet', 'xml', '1000', '10001'),
  fc.integer().map(String),
  fc.string({ unit: 'binary', maxLength: 20 }).map(encodeURIComponent),
);

const queryString = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom(...PARAMS), value), { maxLength: 6 }).map((kv) => kv.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')),
  fc.string({ maxLength: 200 }).map((s) => encodeURI(s.replace(/[#\uD800-\uDFFF]/g, ''))),
);

async function check(path: string, init: RequestInit = {}): Promise<void> {
  const r = await fetch(`${f.base}${path}`, init);
  const text = await r.text();
  expect(r.status, `${init.method ?? 'GET'} ${path} → ${r.status} ${text.slice(0, 200)}`).toBeLessThan(500);
  if (r.status >= 400) {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    expect(typeof body.error?.code).toBe('string');
    expect(typeof body.error?.message).toBe('string');
    expect(text).not.toMatch(/\n\s+at |\.ts:\d+/); // no stack trace
  }
}

test('fuzzed query strings on every route: 2xx or 4xx, never 5xx', async () => {
  const auth = { authorization: `Bearer ${f.keys.admin}` };
  await fc.assert(fc.asyncProperty(fc.constantFrom(...ROUTES), queryString, async (route, qs) => {
    await check(`${route}?${qs}`, { headers: auth });
  }), { numRuns: 400, seed: 7 });
});

test('fuzzed paths, methods and authorization headers: 2xx or 4xx, never 5xx', async () => {
  const header = fc.oneof(
    fc.constant(`Bearer ${f.keys.realtime}`), fc.constant('Bearer'), fc.constant('Bearer '),
    fc.string({ maxLength: 80 }).filter((s) => /^[\x20-\x7e]*$/.test(s)).map((s) => s.trim()),
    fc.string({ maxLength: 60 }).filter((s) => /^[\x21-\x7e]*$/.test(s)).map((s) => `Bearer tpk_${s}`),
  );
  const path = fc.oneof(fc.constantFrom(...ROUTES, '/api/v1/keys', '/api/v1/keys/abc/history', '/metrics', '/', '//', '/api/v1/'),
    fc.webPath({ size: 'small' }));
  await fc.assert(fc.asyncProperty(path, fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH'), header, async (p, method, h) => {
    const init: RequestInit = { method, headers: h === '' ? {} : { authorization: h } };
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') init.body = '{"x":';
    await check(p.startsWith('/') ? p : `/${p}`, init);
  }), { numRuns: 300, seed: 11 });
  await check('/healthz');
});
