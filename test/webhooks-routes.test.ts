/**
 * `/uw` and `/ml-trade` against a real uWS server, a real Redis (127.0.0.1:6379) and real files: every
 * status code (200, 400, 401, 403, 413, 503), the stored raw+parsed lines, the Redis keys and channels
 * (unique names per run through the env overrides / key prefix), shared-secret auth, CORS preflight.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretEquals, webhookOptionsFromEnv } from '../api/webhooks/index.ts';
import { startWebhookServer, type WebhookServer } from '../api/webhooks/fixtures/harness.ts';
import { TestKeys } from '../api/ws/fixtures/harness.ts';

const REDIS = 'redis://127.0.0.1:6379';
const run = randomUUID().slice(0, 8);
const env = { ML_TRADE_HISTORY_KEY: `test:${run}:ml`, ML_TRADE_LATEST_KEY: `test:${run}:ml:latest`, ML_TRADE_STREAM_CHANNEL: `test:${run}:ml:stream` };
const keys = new TestKeys().add('ingest-key', ['ingest']).add('reader', ['realtime']);
let dir: string;
let srv: WebhookServer;
let noRedis: WebhookServer;
let deadRedis: WebhookServer;
let redis: Redis;
let sub: Redis;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tickpipe-hooks-'));
  const common = { authenticator: keys, sharedSecret: 's3cret-value', env, limits: { uw: 4096, mlTrade: 2048 }, uwKeyPrefix: `test:${run}:uw:` };
  srv = await startWebhookServer({ ...common, dataDir: join(dir, 'a'), redisUrl: REDIS });
  noRedis = await startWebhookServer({ ...common, dataDir: join(dir, 'b') });
  deadRedis = await startWebhookServer({ ...common, dataDir: join(dir, 'c'), redisUrl: 'redis://127.0.0.1:1' });
  redis = new Redis(REDIS);
  sub = new Redis(REDIS);
  const end = Date.now() + 10_000;
  while (srv.hooks.redisState() !== 'ready') {
    if (Date.now() > end) throw new Error('webhook Redis client never ready');
    await new Promise((r) => setTimeout(r, 20));
  }
});

afterAll(async () => {
  const ks = await redis.keys(`test:${run}:*`);
  if (ks.length > 0) await redis.del(...ks);
  redis.disconnect();
  sub.disconnect();
  await srv?.close();
  await noRedis?.close();
  await deadRedis?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function post(s: WebhookServer, path: string, body: unknown, headers: Record<string, string> = { authorization: 'Bearer ingest-key' }): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${s.base}${path}${path.includes('?') ? '' : ''}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const code = (b: Record<string, unknown>): string => (b.error as { code: string }).code;

const TRADE = {
  symbol: 'mnq', action: 'Entry', direction: 'LONG', price: 21165.25, confidence: 0.785, position_before: 0, position_after: 1, pnl: 0.0,
  total_pnl: 0.0, total_trades: 1, timestamp: '2025-11-19T14:30:22.123456+00:00', simulated: true,
};

describe('/ml-trade', () => {
  it('normalizes, LPUSHes, SETs latest and PUBLISHes under the env-overridden names', async () => {
    expect(srv.hooks.mlTradeKeys).toEqual({ history: env.ML_TRADE_HISTORY_KEY, latest: env.ML_TRADE_LATEST_KEY, stream: env.ML_TRADE_STREAM_CHANNEL });
    const got: string[] = [];
    sub.on('message', (ch: string, m: string) => { if (ch === env.ML_TRADE_STREAM_CHANNEL) got.push(m); });
    await sub.subscribe(env.ML_TRADE_STREAM_CHANNEL);
    const r = await post(srv, '/ml-trade', TRADE);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'received', symbol: 'MNQ', simulated: true, timestamp: '2025-11-19T14:30:22.123456Z' });
    const latest = JSON.parse((await redis.get(env.ML_TRADE_LATEST_KEY))!) as Record<string, unknown>;
    expect(latest).toMatchObject({ symbol: 'MNQ', action: 'entry', direction: 'long', price: 21165.25, confidence: 0.785, total_trades: 1, simulated: true, timestamp: '2025-11-19T14:30:22.123456Z' });
    expect(typeof latest.received_at).toBe('string');
    await post(srv, '/ml-trade', { ...TRADE, action: 'exit', pnl: 12.5 });
    const hist = (await redis.lrange(env.ML_TRADE_HISTORY_KEY, 0, -1)).map((x) => JSON.parse(x) as Record<string, unknown>);
    expect(hist.map((h) => h.action)).toEqual(['exit', 'entry']); // newest first (LPUSH)
    const end = Date.now() + 5000;
    while (got.length < 2 && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
    expect(got.map((m) => (JSON.parse(m) as { action: string }).action)).toEqual(['entry', 'exit']);
  });

  it('400 for malformed JSON, a missing field, a bad timestamp or a non-object; 413 for a large body', async () => {
    const bad = await post(srv, '/ml-trade', '{"symbol": "MNQ",');
    expect([bad.status, code(bad.body)]).toEqual([400, 'BAD_JSON']);
    expect((bad.body.error as { message: string }).message).toMatch(/not valid JSON/);
    const missing = await post(srv, '/ml-trade', { action: 'entry' });
    expect([missing.status, code(missing.body)]).toEqual([400, 'BAD_MESSAGE']);
    expect((missing.body.error as { message: string }).message).toMatch(/symbol/);
    const ts = await post(srv, '/ml-trade', { ...TRADE, timestamp: 'noon-ish' });
    expect([ts.status, code(ts.body)]).toEqual([400, 'BAD_MESSAGE']);
    const wrongType = await post(srv, '/ml-trade', { ...TRADE, price: 'cheap' });
    expect(wrongType.status).toBe(400);
    expect((await post(srv, '/ml-trade', [TRADE])).status).toBe(400);
    expect((await post(srv, '/ml-trade', '')).status).toBe(400);
    const big = await post(srv, '/ml-trade', { ...TRADE, note: 'x'.repeat(5000) });
    expect([big.status, code(big.body)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
  });

  it('503 REDIS_UNAVAILABLE without REDIS_URL and when Redis is unreachable', async () => {
    const a = await post(noRedis, '/ml-trade', TRADE);
    expect([a.status, code(a.body)]).toEqual([503, 'REDIS_UNAVAILABLE']);
    const b = await post(deadRedis, '/ml-trade', TRADE);
    expect([b.status, code(b.body)]).toEqual([503, 'REDIS_UNAVAILABLE']);
  });

  it('auth: 401 without credentials or with a wrong key/secret, 403 without the ingest scope; the shared secret works', async () => {
    expect((await post(srv, '/ml-trade', TRADE, {})).status).toBe(401);
    expect((await post(srv, '/ml-trade', TRADE, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await post(srv, '/ml-trade', TRADE, { 'x-webhook-secret': 'wrong' })).status).toBe(401);
    const f = await post(srv, '/ml-trade', TRADE, { authorization: 'Bearer reader' });
    expect([f.status, code(f.body)]).toEqual([403, 'FORBIDDEN']);
    expect((await post(srv, '/ml-trade', TRADE, { 'x-webhook-secret': 's3cret-value' })).status).toBe(200);
    expect((await post(srv, '/ml-trade?secret=s3cret-value', TRADE, {})).status).toBe(200);
    expect((await post(srv, '/ml-trade', TRADE, { authorization: 'Bearer s3cret-value' })).status).toBe(200);
    expect((await post(srv, '/ml-trade', TRADE, { 'x-api-key': 'ingest-key' })).status).toBe(200);
    expect(secretEquals('a', 'a')).toBe(true);
    expect(secretEquals('a', 'ab')).toBe(false);
  });
});

describe('webhook settings from the environment', () => {
  it('parses the secret, GEX hosts and CORS origins; refuses malformed values with ENGINE_ERR_CONFIG naming the variable', () => {
    expect(webhookOptionsFromEnv({})).toEqual({});
    expect(webhookOptionsFromEnv({ TICKPIPE_WEBHOOK_SECRET: 'a-long-enough-secret', TICKPIPE_GEX_HOSTS: 'hist.gex.bot, mirror.local:8443,*.blob.core.windows.net', TICKPIPE_WEBHOOK_CORS: 'https://gexbot.com' }))
      .toEqual({ sharedSecret: 'a-long-enough-secret', gexAllowedHosts: ['hist.gex.bot', 'mirror.local:8443', '*.blob.core.windows.net'], corsOrigins: ['https://gexbot.com'] });
    expect(() => webhookOptionsFromEnv({ TICKPIPE_WEBHOOK_SECRET: 'short' })).toThrow(/TICKPIPE_WEBHOOK_SECRET/);
    expect(() => webhookOptionsFromEnv({ TICKPIPE_GEX_HOSTS: 'http://x.com/path' })).toThrow(/TICKPIPE_GEX_HOSTS/);
    expect(() => webhookOptionsFromEnv({ TICKPIPE_WEBHOOK_CORS: 'gexbot.com' })).toThrow(/TICKPIPE_WEBHOOK_CORS/);
    let code = '';
    try { webhookOptionsFromEnv({ TICKPIPE_GEX_HOSTS: 'bad host' }); } catch (e) { code = (e as { code: string }).code; }
    expect(code).toBe('ENGINE_ERR_CONFIG');
  });
});

describe('bad-key budget', () => {
  it('repeated bad keys from one address get 429 with Retry-After', async () => {
    const { BadKeyLimiter } = await import('../api/auth/limits.ts');
    const s2 = await startWebhookServer({ authenticator: keys, dataDir: join(dir, 'd'), badKeys: new BadKeyLimiter(2), env });
    try {
      const codes: number[] = [];
      let retry: string | null = null;
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${s2.base}/ml-trade`, { method: 'POST', headers: { authorization: 'Bearer wrong', 'content-type': 'application/json' }, body: JSON.stringify(TRADE) });
        codes.push(r.status);
        retry = r.headers.get('retry-after');
      }
      expect(codes).toEqual([401, 401, 429, 429]);
      expect(Number(retry)).toBeGreaterThan(0);
    } finally {
      await s2.close();
    }
  });
});

describe('/uw', () => {
  const frame = [null, null, 'option_trades_super_algo:SPX', 'new_msg', { data: { ticker: 'SPXW251121C06000000', type: 'call', strike: 6000, premium: '125000.00', tags: ['ask_side', 'bullish'] }, _computed: { is_sweep: true } }];

  it('stores raw and parsed, publishes to Redis, ignores phx_ events', async () => {
    const got: string[] = [];
    const ch = `test:${run}:uw:options-trade:stream`;
    sub.on('message', (c: string, m: string) => { if (c === ch) got.push(m); });
    await sub.subscribe(ch);
    const r = await post(srv, '/uw', frame);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'received', topic: 'option_trades_super_algo:SPX', event: 'new_msg', stored: true, published: true });
    const legacy = await post(srv, '/uw?secret=s3cret-value', { topic: 'market-state', data: { tide: 1 } }, {});
    expect(legacy.status).toBe(200);
    const hb = await post(srv, '/uw', [null, '1', 'phoenix', 'phx_heartbeat', {}]);
    expect(hb.body.status).toBe('ignored');
    const files = readdirSync(join(dir, 'a', 'webhooks', 'uw'));
    expect(files.length).toBe(1);
    const lines = readFileSync(join(dir, 'a', 'webhooks', 'uw', files[0]!), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatchObject({ topic: 'option_trades_super_algo:SPX', base: 'options-trade', symbol: 'SPX', event: 'new_msg', payload: frame[4] });
    expect(JSON.parse(lines[0]!.raw as string)).toEqual(frame);
    expect(lines[1]).toMatchObject({ topic: 'market-state', base: 'market-state' });
    const latest = JSON.parse((await redis.get(`test:${run}:uw:options-trade:latest`))!) as Record<string, unknown>;
    expect(latest).toMatchObject({ topic: 'option_trades_super_algo:SPX', payload: frame[4] });
    expect(await redis.llen(`test:${run}:uw:market-state:history`)).toBe(1);
    const end = Date.now() + 5000;
    while (got.length < 1 && Date.now() < end) await new Promise((res) => setTimeout(res, 10));
    expect(got.length).toBe(1);
    // without Redis: still stored, not published
    const nr = await post(noRedis, '/uw', frame);
    expect(nr.body).toMatchObject({ status: 'received', stored: true, published: false });
  });

  it('400 for malformed JSON or a shape that is neither a Phoenix frame nor {topic}; 413 above the limit; 401/403', async () => {
    const a = await post(srv, '/uw', '[null, null, "t", ');
    expect([a.status, code(a.body)]).toEqual([400, 'BAD_JSON']);
    for (const body of [[1, 2, 3], [null, null, 5, 'ev', {}], { no: 'topic' }, '"just a string"', 42]) {
      const r = await post(srv, '/uw', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(code(r.body)).toBe('BAD_MESSAGE');
    }
    const big = await post(srv, '/uw', [null, null, 't', 'e', { x: 'y'.repeat(5000) }]);
    expect(big.status).toBe(413);
    expect((await post(srv, '/uw', frame, {})).status).toBe(401);
    expect((await post(srv, '/uw', frame, { authorization: 'Bearer reader' })).status).toBe(403);
  });

  it('CORS preflight for an allowed origin; JSON 404 for unknown routes', async () => {
    const r = await fetch(`${srv.base}/gex_history_url`, { method: 'OPTIONS', headers: { origin: 'https://gexbot.com', 'access-control-request-method': 'POST' } });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe('https://gexbot.com');
    expect(r.headers.get('access-control-allow-methods')).toContain('POST');
    const other = await fetch(`${srv.base}/uw`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const nf = await fetch(`${srv.base}/nope`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect(srv.hooks.stats().answers['POST /uw 200']).toBeGreaterThan(0);
  });
});
