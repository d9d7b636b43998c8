/**
 * `/gex_history_url` security and ingest, and the GEX queries, against a real uWS server and a fake GEX
 * file host on loopback: loopback, private, link-local and non-allowlisted targets are refused (422); a
 * redirect to loopback or a private address, an oversized body, a stalled download and a gzip bomb fail
 * the job with a coded error; a real-shaped `.json.gz` from the allowlisted fake host is ingested, stored
 * and answered by /api/v1/gex/latest and /history (NQ and MNQ map to NQ_NDX) and pushed to onGex.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBlockedAddress } from '../api/webhooks/fetch.ts';
import { webhookMetricFamilies } from '../api/ws/metrics.ts';
import { startFakeGexHost, startWebhookServer, type FakeHost, type WebhookServer } from '../api/webhooks/fixtures/harness.ts';
import { TestKeys } from '../api/ws/fixtures/harness.ts';
import type { WireGexSnapshot } from '../schemas/wire.ts';

const KEY = { authorization: 'Bearer ingest-key' };
let dir: string;
let fake: FakeHost;
let strict: WebhookServer; // default rules: loopback refused
let srv: WebhookServer; // the fake host:port may resolve to loopback (test-only option)
const pushed: WireGexSnapshot[] = [];

const keys = new TestKeys().add('ingest-key', ['ingest']).add('reader', ['realtime', 'historical']).add('rt', ['realtime']);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tickpipe-gex-'));
  fake = await startFakeGexHost({ bigBytes: 3 * 1024 * 1024, bombBytes: 40 * 1024 * 1024 });
  const common = {
    authenticator: keys,
    gexAllowedHosts: [fake.hostPort, `127.0.0.1:${fake.port}`, '10.0.0.5:80', '169.254.169.254:80', `[::1]:${fake.port}`, '192.168.1.20:80'],
  };
  strict = await startWebhookServer({ ...common, dataDir: join(dir, 'strict'), fetch: { allowHttp: true } });
  srv = await startWebhookServer({
    ...common, dataDir: join(dir, 'ok'), onGex: (g) => pushed.push(g), maxDecompressedBytes: 8 * 1024 * 1024,
    fetch: { allowHttp: true, testAllowLoopback: [fake.hostPort], maxBytes: 1024 * 1024, timeoutMs: 1500 },
  });
});

afterAll(async () => {
  await strict?.close();
  await srv?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function post(s: WebhookServer, body: unknown, headers: Record<string, string> = KEY, contentType = 'application/json'): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${s.base}/gex_history_url`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function get(s: WebhookServer, path: string, headers: Record<string, string> = { authorization: 'Bearer reader' }): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${s.base}${path}`, { headers });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function jobDone(s: WebhookServer, id: string): Promise<Record<string, unknown>> {
  const end = Date.now() + 15_000;
  for (;;) {
    const j = await get(s, `/api/v1/gex/jobs/${id}`, KEY);
    expect(j.status).toBe(200);
    if (j.body.state === 'done' || j.body.state === 'failed') return j.body;
    if (Date.now() > end) throw new Error(`job ${id} still ${String(j.body.state)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const errCode = (b: Record<string, unknown>): string => (b.error as { code: string }).code;

describe('/gex_history_url SSRF rules', () => {
  it('classifies addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.0.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fe80::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '100.64.0.1', '224.0.0.1']) {
      expect(isBlockedAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '52.239.1.1', '2606:4700::1111']) expect(isBlockedAddress(a), a).toBe(false);
  });

  it('refuses loopback by default, even for an allowlisted host', async () => {
    const r = await post(strict, { url: `http://${fake.hostPort}/gb-nqndx/2025-10-21_NQ_NDX_classic_gex_zero.json.gz` });
    expect(r.status).toBe(422);
    expect(errCode(r.body)).toBe('ADDRESS_REFUSED');
    const v6 = await post(strict, { url: `http://[::1]:${fake.port}/x.json` });
    expect(v6.status).toBe(422);
    expect(errCode(v6.body)).toBe('ADDRESS_REFUSED');
  });

  it('refuses private and link-local addresses, non-allowlisted hosts, plain http when not allowed, bad extensions', async () => {
    for (const url of ['http://10.0.0.5/x.json', 'http://169.254.169.254/latest.json', 'http://192.168.1.20/a.json']) {
      const r = await post(srv, { url });
      expect(r.status, url).toBe(422);
      expect(errCode(r.body), url).toBe('ADDRESS_REFUSED');
    }
    const notListed = await post(srv, { url: 'https://evil.example.com/2025-10-21_NQ_NDX_classic_gex_zero.json' });
    expect([notListed.status, errCode(notListed.body)]).toEqual([422, 'URL_NOT_ALLOWED']);
    const ftp = await post(srv, { url: `ftp://${fake.hostPort}/x.json` });
    expect([ftp.status, errCode(ftp.body)]).toEqual([422, 'URL_NOT_ALLOWED']);
    const creds = await post(srv, { url: `http://user:pw@${fake.hostPort}/x.json` });
    expect([creds.status, errCode(creds.body)]).toEqual([422, 'URL_NOT_ALLOWED']);
    const ext = await post(srv, { url: `http://${fake.hostPort}/x.csv` });
    expect([ext.status, errCode(ext.body)]).toEqual([422, 'BAD_EXTENSION']);
    const bad = await post(srv, { url: 'not a url' });
    expect([bad.status, errCode(bad.body)]).toEqual([422, 'URL_INVALID']);
    const missing = await post(srv, { ticker: 'NQ_NDX' });
    expect([missing.status, errCode(missing.body)]).toEqual([422, 'URL_MISSING']);
  });

  it('a redirect to loopback or a private address, too many redirects, oversized, stalled and bomb downloads fail with a code', async () => {
    const cases: [string, string][] = [
      ['/redirect-loopback.json', 'ADDRESS_REFUSED'],
      ['/redirect-private.json', 'ADDRESS_REFUSED'],
      ['/redirect-loop.json', 'TOO_MANY_REDIRECTS'],
      ['/big.json', 'TOO_LARGE'],
      ['/big-chunked.json', 'TOO_LARGE'],
      ['/slow.json', 'TIMEOUT'],
      ['/bomb.json.gz', 'TOO_LARGE'],
      ['/garbage.json', 'BAD_FILE'],
      ['/truncated.json.gz', 'BAD_FILE'],
      ['/missing.json', 'HTTP_STATUS'],
    ];
    for (const [path, code] of cases) {
      const r = await post(srv, { url: `http://${fake.hostPort}${path}`, ticker: 'NQ_NDX' });
      expect(r.status, path).toBe(200);
      expect(r.body.status).toBe('queued');
      const j = await jobDone(srv, String(r.body.id));
      expect(j.state, path).toBe('failed');
      expect((j.error as { code: string }).code, path).toBe(code);
    }
    expect(srv.hooks.stats().gex.jobs.failed).toBe(cases.length);
    const fam = webhookMetricFamilies(srv.hooks.stats()).find((f) => f.name === 'tickpipe_gex_downloads')!;
    expect(fam.samples.find((x) => x.labels?.kind === 'failed')!.value).toBe(cases.length);
    // the redirect to 127.0.0.1 was never followed
    expect(fake.requests.filter((u) => u.startsWith('/gb-nqndx')).length).toBe(0);
  });
});

describe('/gex_history_url request errors', () => {
  it('400 malformed JSON or not an object, 401 no/unknown key, 403 without ingest, 413 oversized, 503 when the queue is full', async () => {
    const bad = await post(srv, '{"url": ');
    expect([bad.status, errCode(bad.body)]).toEqual([400, 'BAD_JSON']);
    expect((bad.body.error as { message: string }).message).toMatch(/not valid JSON/);
    expect((await post(srv, '["https://hist.gex.bot/x.json"]')).status).toBe(400);
    expect((await post(srv, { url: `http://${fake.hostPort}/x.json`, ticker: 'no spaces allowed' })).status).toBe(400);
    expect((await post(srv, { url: 'https://hist.gex.bot/x.json' }, {})).status).toBe(401);
    expect((await post(srv, { url: 'https://hist.gex.bot/x.json' }, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await post(srv, { url: 'https://hist.gex.bot/x.json' }, { authorization: 'Bearer reader' })).status).toBe(403);
    const big = await post(srv, { url: `http://${fake.hostPort}/x.json`, metadata: 'x'.repeat(20_000) });
    expect([big.status, errCode(big.body)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const q = await startWebhookServer({
      authenticator: keys, dataDir: join(dir, 'queue'), gexAllowedHosts: [fake.hostPort], gexMaxQueued: 1,
      fetch: { allowHttp: true, testAllowLoopback: [fake.hostPort], timeoutMs: 1500 },
    });
    try {
      const a = await post(q, { url: `http://${fake.hostPort}/slow.json`, ticker: 'A' }); // runs (stalls)
      const b = await post(q, { url: `http://${fake.hostPort}/slow.json`, ticker: 'B' }); // waits
      const c = await post(q, { url: `http://${fake.hostPort}/slow.json`, ticker: 'C' }); // no room
      expect([a.status, b.status]).toEqual([200, 200]);
      expect([c.status, errCode(c.body)]).toEqual([503, 'QUEUE_FULL']);
    } finally {
      await q.close();
    }
  });
});

describe('/gex_history_url ingest and GEX queries', () => {
  it('ingests a real-shaped .json.gz from the allowlisted fake host (text/plain body), stores and serves it', async () => {
    const url = `http://${fake.hostPort}/gb-nqndx/2025-10-21_NQ_NDX_classic_gex_zero.json.gz?sv=2024&sig=secret`;
    const r = await post(srv, JSON.stringify({ url, endpoint: 'gex_zero' }), KEY, 'text/plain;charset=UTF-8');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'queued', ticker: 'NQ_NDX', endpoint: 'gex_zero' });
    const j = await jobDone(srv, String(r.body.id));
    expect(j).toMatchObject({ state: 'done', gzip: true, snapshots: 600, added: 600, duplicates: 0, rejected: 0, ticker: 'NQ_NDX', url: url.split('?')[0] });
    expect(JSON.stringify(j)).not.toContain('secret'); // the signature is not echoed
    // posting it again is a duplicate
    const again = await post(srv, { url });
    expect(again.body.status).toBe('duplicate');
    // latest: NQ, MNQ and NQ_NDX all answer with the newest snapshot
    const last = fake.nq.at(-1)!;
    for (const t of ['NQ_NDX', 'NQ', 'mnq']) {
      const l = await get(srv, `/api/v1/gex/latest?ticker=${t}`);
      expect(l.status, t).toBe(200);
      const s = l.body.snapshot as Record<string, unknown>;
      expect(l.body.ticker).toBe('NQ_NDX');
      expect(s.tsMicros).toBe((last.timestamp as number) * 1_000_000);
      expect(s).toMatchObject({ spot: last.spot, zeroGamma: last.zero_gamma, majorPosVol: 25_100, majorNegVol: 24_900, category: 'gex_zero' });
      expect((s.strikes as unknown[]).length).toBe(21);
      expect((s.strikes as number[][])[0]).toEqual((last.strikes as unknown[][])[0]!.slice(0, 3));
    }
    // history: a window of 100 seconds, oldest first, compared with the source
    const from = (fake.nq[100]!.timestamp as number) * 1000;
    const to = (fake.nq[200]!.timestamp as number) * 1000;
    const h = await get(srv, `/api/v1/gex/history?ticker=NQ&start_time=${from}&end_time=${to}&limit=50`);
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ ticker: 'NQ_NDX', count: 50, more: true });
    const rows = h.body.rows as Record<string, number>[];
    expect(rows.map((x) => x.spot)).toEqual(fake.nq.slice(100, 150).map((x) => x.spot));
    const all = await get(srv, `/api/v1/gex/history?ticker=NQ_NDX&start_time=${from}&end_time=${to}&limit=1000`);
    expect(all.body).toMatchObject({ count: 100, more: false });
    // the newest snapshot was pushed for the live gex channel
    expect(pushed.at(-1)).toMatchObject({ ticker: 'NQ_NDX', spot: last.spot, tsMicros: (last.timestamp as number) * 1e6, callWall: 25_100, putWall: 24_900 });
    // stored on disk: raw file and the store's JSON lines
    expect(readdirSync(join(dir, 'ok', 'gex', 'ticker=NQ_NDX'))).toEqual(['date=2025-10-21.jsonl']);
  });

  it('plain JSON served under .json.gz (the blob host quirk) and a redirect inside the allowlist are ingested', async () => {
    const r = await post(srv, { url: `http://${fake.hostPort}/gb-esspx/2025-10-21_ES_SPX_classic_gex_one.json.gz` });
    const j = await jobDone(srv, String(r.body.id));
    expect(j).toMatchObject({ state: 'done', gzip: false, snapshots: 120, ticker: 'ES_SPX' });
    const l = await get(srv, '/api/v1/gex/latest?ticker=MES');
    expect(l.body.ticker).toBe('ES_SPX');
    const red = await post(srv, { url: `http://${fake.hostPort}/redirect-ok.json`, ticker: 'NQ_NDX' });
    const j2 = await jobDone(srv, String(red.body.id));
    expect(j2).toMatchObject({ state: 'done', snapshots: 600, added: 0, duplicates: 600 });
  });

  it('a file above the inline size is parsed in a worker thread and stored completely', async () => {
    const r = await post(srv, { url: `http://${fake.hostPort}/large/2025-10-22_NQ_NDX_classic_gex_full.json.gz` });
    expect(r.body).toMatchObject({ status: 'queued', ticker: 'NQ_NDX', endpoint: 'gex_full' });
    const j = await jobDone(srv, String(r.body.id));
    expect(j).toMatchObject({ state: 'done', gzip: true, snapshots: 2500, added: 2500 });
    const from = (fake.large[0]!.timestamp as number) * 1000;
    const h = await get(srv, `/api/v1/gex/history?ticker=MNQ&start_time=${from}&end_time=${from + 3_000_000}&limit=10000`);
    expect(h.body).toMatchObject({ ticker: 'NQ_NDX', count: 2500, more: false });
    const rows = h.body.rows as Record<string, unknown>[];
    expect(rows.map((x) => x.spot)).toEqual(fake.large.map((x) => x.spot));
    expect(rows.every((x) => x.category === 'gex_full')).toBe(true);
  });

  it('GEX query errors: 400 missing/bad ticker or times, 404 unknown ticker, 401 no key, 403 scope', async () => {
    expect((await get(srv, '/api/v1/gex/latest')).status).toBe(400);
    expect((await get(srv, '/api/v1/gex/latest?ticker=a%20b')).status).toBe(400);
    const nf = await get(srv, '/api/v1/gex/latest?ticker=RUT');
    expect([nf.status, errCode(nf.body)]).toEqual([404, 'GEX_NOT_FOUND']);
    expect((await get(srv, '/api/v1/gex/history?ticker=NQ&start_time=yesterday')).status).toBe(400);
    expect((await get(srv, '/api/v1/gex/history?ticker=NQ&limit=0')).status).toBe(400);
    expect((await get(srv, '/api/v1/gex/latest?ticker=NQ', {})).status).toBe(401);
    expect((await get(srv, '/api/v1/gex/latest?ticker=NQ', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get(srv, '/api/v1/gex/history?ticker=NQ', { authorization: 'Bearer rt' })).status).toBe(403);
    expect((await get(srv, '/api/v1/gex/jobs/nope', KEY)).status).toBe(404);
  });
});
