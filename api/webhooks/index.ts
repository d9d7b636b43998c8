/**
 * Webhooks and GEX queries (issue 5 item 4), attached to the uWS app by `attachWebhooks(app, deps)`:
 *
 *   POST /uw                 Unusual Whales Phoenix frames (or the legacy {topic, ...} object): validated,
 *                            stored raw and parsed under <dataDir>/webhooks/uw/, published to Redis when configured
 *   POST /gex_history_url    {url, ticker?, endpoint?} (JSON or text/plain): SSRF-checked, queued download of a
 *                            GEX history file (.json / .json.gz), parsed and stored in the GEX store
 *   POST /ml-trade           ML bot trade: normalized, LPUSH trade:ml-bot (trimmed to 500), SET trade:ml-bot:latest,
 *                            PUBLISH trade:ml-bot:stream (names from ML_TRADE_HISTORY_KEY / ML_TRADE_LATEST_KEY /
 *                            ML_TRADE_STREAM_CHANNEL); without Redis: 503 REDIS_UNAVAILABLE (nothing is lost silently)
 *   GET  /api/v1/gex/latest?ticker=        newest snapshot (NQ, MNQ or a contract map to NQ_NDX)
 *   GET  /api/v1/gex/history?ticker=&start_time=&end_time=&limit=
 *   GET  /api/v1/gex/jobs/:id              state of a /gex_history_url download
 *
 * Webhook auth: an API key with the `ingest` (or `admin`) scope (Authorization: Bearer, X-API-Key or ?token=),
 * or the configured shared secret (X-Webhook-Secret, ?secret= or as the Bearer token), compared in
 * constant time. Browser userscripts using navigator.sendBeacon cannot set headers: they use ?secret=.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import { formatIsoMicros, parseTimeToMicros } from '../../engine/clock/iso.ts';
import { engineError } from '../../engine/errors.ts';
import { toWireGex, type GexSnapshot } from '../../engine/gex/snapshot.ts';
import { GexStore } from '../../engine/gex/store.ts';
import { normalizeTicker, tickersForQuery } from '../../engine/gex/tickers.ts';
import type { SymbolRegistry } from '../../engine/symbols/registry.ts';
import type { WireGexSnapshot } from '../../schemas/wire.ts';
import type { Authenticator, Principal, Scope } from '../types.ts';
import type { BadKeyBudget } from '../ws/hub.ts';
import { checkUrl, FetchRefused, vetAddress, type FetchPolicy } from './fetch.ts';
import { GexJobs, type GexJob } from './gex-jobs.ts';
import { handler, HttpError, parseJsonBody, type Answer, type Req } from './http.ts';

export { FetchRefused, isBlockedAddress, safeDownload, type FetchPolicy } from './fetch.ts';
export type { GexJob } from './gex-jobs.ts';

/** Hosts GEX history files come from (../shared/reference/protocols.md §3.4, §3.6). */
export const DEFAULT_GEX_HOSTS = ['hist.gex.bot', 'hist.gexbot.com', 'nfagexbotresearch.blob.core.windows.net', 'app.gexbot.com'];
export const DEFAULT_CORS_ORIGINS = ['https://gexbot.com', 'https://www.gexbot.com', 'https://unusualwhales.com'];

export interface WebhookDeps {
  authenticator: Authenticator;
  /** Optional bad-key budget per remote address (the REST guard's `badKeys`): 429 once spent. */
  badKeys?: BadKeyBudget;
  /** Data directory: webhooks/uw/, gex/ (store), gex/raw/ (downloaded files). */
  dataDir: string;
  /** Shared secret accepted instead of an ingest key; null/undefined: keys only. */
  sharedSecret?: string | null;
  /** Redis for /uw publishing and /ml-trade (an ioredis URL); null/undefined: no Redis. */
  redisUrl?: string | null;
  /** Allowlisted GEX hosts (`host` or `host:port`; default DEFAULT_GEX_HOSTS). */
  gexAllowedHosts?: readonly string[];
  /** Download limits and test-only overrides (see fetch.ts; `testAllowLoopback` is for tests only). */
  fetch?: Partial<Omit<FetchPolicy, 'allowedHosts'>>;
  /** GEX downloads waiting at most (default 100; more: 503 QUEUE_FULL). */
  gexMaxQueued?: number;
  /** Largest decompressed GEX file (default 512 MiB). */
  maxDecompressedBytes?: number;
  /** Contract symbols to roots for GEX queries (MNQZ25 -> MNQ -> NQ_NDX). */
  registry?: SymbolRegistry;
  /** New newest snapshot of a ticker (e.g. `(g) => hub.publishGex(g)`). */
  onGex?: (g: WireGexSnapshot) => void;
  /** Origins allowed by CORS on these routes (default DEFAULT_CORS_ORIGINS). */
  corsOrigins?: readonly string[];
  /** Environment for ML_TRADE_* names (default process.env). */
  env?: Record<string, string | undefined>;
  /** Prefix of the /uw Redis keys (default 'uw:': uw:<topic>:latest, uw:<topic>:history, channel uw:<topic>:stream). */
  uwKeyPrefix?: string;
  /** Body limits in bytes. */
  limits?: { uw?: number; mlTrade?: number; gexUrl?: number };
}

export interface WebhookStats {
  answers: Record<string, number>;
  uw: { received: number; ignored: number; published: number; publishFailed: number };
  mlTrade: { received: number; redisUnavailable: number };
  gex: { queued: number; refused: number; jobs: { queued: number; running: number; done: number; failed: number } };
}

export interface Webhooks {
  /** Resolves once the GEX store is open (routes wait for it by themselves). */
  readonly ready: Promise<void>;
  readonly jobs: Promise<GexJobs>;
  readonly store: Promise<GexStore>;
  readonly mlTradeKeys: { history: string; latest: string; stream: string };
  /** Redis state for the status panel: 'disabled' | 'connecting' | 'ready' | 'reconnecting' | ... */
  redisState(): string;
  stats(): WebhookStats;
  close(): Promise<void>;
}

// ---- request schemas -------------------------------------------------------------------------------

const phoenixFrame = z.tuple([
  z.union([z.string(), z.number()]).nullable(), z.union([z.string(), z.number()]).nullable(), z.string().min(1).max(200), z.string().min(1).max(100), z.unknown(),
]);
const legacyUw = z.object({ topic: z.string().min(1).max(200) }).passthrough();

const optNum = z.number().finite().nullish();
const mlTradeSchema = z.object({
  symbol: z.string().trim().min(1).max(32),
  action: z.string().trim().min(1).max(32),
  direction: z.string().trim().max(16).nullish(),
  price: optNum,
  confidence: optNum,
  position_before: optNum,
  position_after: optNum,
  pnl: optNum,
  total_pnl: optNum,
  total_trades: z.number().int().nonnegative().nullish(),
  timestamp: z.union([z.string().max(64), z.number().finite()]).nullish(),
  simulated: z.boolean().default(false),
}).passthrough();

const gexUrlSchema = z.object({
  url: z.string().min(1, 'url: required').max(4096),
  ticker: z.string().max(20).nullish(),
  symbol: z.string().max(20).nullish(),
  underlying: z.string().max(20).nullish(),
  endpoint: z.string().max(64).nullish(),
}).passthrough();

function zodMessage(e: z.ZodError): string {
  return e.issues.slice(0, 3).map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`).join('; ');
}

const FILE_RE = /(\d{4}-\d{2}-\d{2})_([A-Z0-9_]+?)_(?:classic|state)_(gex_zero|gex_one|gex_full)\.json(\.gz)?$/i;
const PATH_CAT_RE = /\/classic\/(gex_\w+)/i;

function uwTopicBase(topic: string): { base: string; symbol: string | null } {
  const m = /^([^:|]+)(?:[:|](.+))?$/.exec(topic);
  const raw = (m?.[1] ?? topic).trim();
  const base = raw === 'option_trades_super_algo' ? 'options-trade' : raw;
  return { base, symbol: m?.[2] ?? null };
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time string comparison (digests make the lengths equal). */
export function secretEquals(presented: string, secret: string): boolean {
  return timingSafeEqual(sha(presented), sha(secret));
}

export function attachWebhooks(app: TemplatedApp, deps: WebhookDeps): Webhooks {
  const env = deps.env ?? process.env;
  const mlKeys = {
    history: env.ML_TRADE_HISTORY_KEY || 'trade:ml-bot',
    latest: env.ML_TRADE_LATEST_KEY || 'trade:ml-bot:latest',
    stream: env.ML_TRADE_STREAM_CHANNEL || 'trade:ml-bot:stream',
  };
  const limits = { uw: 1024 * 1024, mlTrade: 64 * 1024, gexUrl: 16 * 1024, ...deps.limits };
  const origins = new Set(deps.corsOrigins ?? DEFAULT_CORS_ORIGINS);
  const policy: FetchPolicy = { allowedHosts: deps.gexAllowedHosts ?? DEFAULT_GEX_HOSTS, ...deps.fetch };
  const uwDir = join(deps.dataDir, 'webhooks', 'uw');
  const uwPrefix = deps.uwKeyPrefix ?? 'uw:';
  const stats: WebhookStats = {
    answers: {}, uw: { received: 0, ignored: 0, published: 0, publishFailed: 0 }, mlTrade: { received: 0, redisUnavailable: 0 },
    gex: { queued: 0, refused: 0, jobs: { queued: 0, running: 0, done: 0, failed: 0 } },
  };

  let redis: Redis | null = null;
  if (deps.redisUrl) {
    redis = new Redis(deps.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 3000 });
    redis.on('error', () => undefined); // state is reported by redisState(); commands fail fast with 503
    redis.connect().catch(() => undefined);
  }

  const storeP = GexStore.open(join(deps.dataDir, 'gex'));
  const jobsP = storeP.then((store) => new GexJobs(store, {
    policy, rawDir: join(deps.dataDir, 'gex', 'raw'), ...(deps.maxDecompressedBytes ? { maxDecompressedBytes: deps.maxDecompressedBytes } : {}),
    ...(deps.gexMaxQueued !== undefined ? { maxQueued: deps.gexMaxQueued } : {}),
    onLatest: (snaps) => { if (deps.onGex) for (const g of snaps) deps.onGex(toWireGex(g)); },
  }));
  let jobsRef: GexJobs | null = null;
  jobsP.then((j) => { jobsRef = j; }, () => undefined);
  storeP.catch(() => undefined);

  // serialized appends (one chain: order kept, no interleaved lines)
  let appendChain: Promise<unknown> = Promise.resolve();
  const append = (file: string, line: string): Promise<void> => {
    const p = appendChain.then(async () => {
      await mkdir(uwDir, { recursive: true });
      await appendFile(file, line);
    });
    appendChain = p.catch(() => undefined);
    return p;
  };

  const cors = (origin: string): Record<string, string> => (origin !== '' && origins.has(origin) ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {});
  const count = (route: string) => (status: number): void => {
    const k = `${route} ${status}`;
    stats.answers[k] = (stats.answers[k] ?? 0) + 1;
  };

  const checkBudget = (r: Req): void => {
    const wait = deps.badKeys ? deps.badKeys.blockedFor(r.addr, Date.now()) : 0;
    if (wait > 0) throw new HttpError(429, 'TOO_MANY_BAD_KEYS', `too many bad API keys from this address; retry in ${wait} s`, { 'retry-after': String(wait) });
  };
  const badKey = (r: Req): void => { deps.badKeys?.fail(r.addr, Date.now()); };

  const principalOf = (r: Req): { principal: Principal | null; token: string | undefined } => {
    const auth = r.headers.authorization ?? '';
    let token: string | undefined;
    if (auth !== '') {
      const m = /^bearer\s+(\S+)\s*$/i.exec(auth);
      token = m ? m[1] : '';
    } else if ((r.headers['x-api-key'] ?? '') !== '') token = r.headers['x-api-key'];
    else token = r.query.get('token') ?? undefined;
    if (token) checkBudget(r);
    return { principal: token ? deps.authenticator.authenticate(token) : null, token };
  };

  const requireIngest = (r: Req): void => {
    const secret = deps.sharedSecret ?? null;
    const presentedSecret = (r.headers['x-webhook-secret'] ?? '') !== '' ? r.headers['x-webhook-secret']! : r.query.get('secret');
    if (secret !== null && secret !== '' && presentedSecret) {
      checkBudget(r);
      if (secretEquals(presentedSecret, secret)) return;
      badKey(r);
      throw new HttpError(401, 'UNAUTHORIZED', 'the webhook secret is wrong');
    }
    const { principal, token } = principalOf(r);
    if (principal === null) {
      if (token && secret !== null && secret !== '' && secretEquals(token, secret)) return;
      if (token) badKey(r);
      throw new HttpError(401, 'UNAUTHORIZED', token ? 'unknown or revoked API key' : 'an ingest API key or the webhook secret is required');
    }
    if (!principal.scopes.has('ingest') && !principal.scopes.has('admin')) throw new HttpError(403, 'FORBIDDEN', 'the API key lacks the ingest scope');
  };

  const requireScope = (r: Req, scopes: Scope[]): Principal => {
    const { principal, token } = principalOf(r);
    if (principal === null) {
      if (token) badKey(r);
      throw new HttpError(401, 'UNAUTHORIZED', token ? 'unknown or revoked API key' : 'an API key is required');
    }
    if (!principal.scopes.has('admin') && !scopes.some((s) => principal.scopes.has(s))) throw new HttpError(403, 'FORBIDDEN', `the API key lacks the ${scopes.join(' or ')} scope`);
    return principal;
  };

  // ---- POST /uw ------------------------------------------------------------------------------------
  const uw = async (r: Req): Promise<Answer> => {
    requireIngest(r);
    const body = parseJsonBody(r.body, '/uw');
    let topic: string, event: string | null, payload: unknown;
    if (Array.isArray(body)) {
      const p = phoenixFrame.safeParse(body);
      if (!p.success) throw new HttpError(400, 'BAD_MESSAGE', `/uw: not a Phoenix frame [join_ref, ref, topic, event, payload]: ${zodMessage(p.error)}`);
      topic = p.data[2]; event = p.data[3]; payload = p.data[4];
    } else {
      const p = legacyUw.safeParse(body);
      if (!p.success) throw new HttpError(400, 'BAD_MESSAGE', `/uw: expected a Phoenix frame array or an object with a topic: ${zodMessage(p.error)}`);
      topic = p.data.topic; event = typeof p.data.event === 'string' ? p.data.event : null; payload = p.data;
    }
    if (event !== null && event.startsWith('phx_')) { stats.uw.ignored++; return { status: 200, body: { status: 'ignored', topic, event } }; }
    const { base, symbol } = uwTopicBase(topic);
    const receivedAt = new Date().toISOString();
    const record = { received_at: receivedAt, topic, base, symbol, event, payload };
    const line = JSON.stringify({ ...record, raw: r.body.toString('utf8') }) + '\n';
    try {
      await append(join(uwDir, `date=${receivedAt.slice(0, 10)}.jsonl`), line);
    } catch (e) {
      throw new HttpError(503, 'STORAGE_UNAVAILABLE', `cannot store the message: ${(e as Error).message}`);
    }
    stats.uw.received++;
    let published = false;
    if (redis !== null) {
      const json = JSON.stringify(record);
      try {
        const k = `${uwPrefix}${base}`;
        const res = await redis.multi().set(`${k}:latest`, json, 'EX', 900).lpush(`${k}:history`, json).ltrim(`${k}:history`, 0, 199)
          .publish(`${k}:stream`, json).exec();
        if (!res || res.some(([err]) => err !== null)) throw new Error('transaction failed');
        published = true;
        stats.uw.published++;
      } catch {
        stats.uw.publishFailed++;
      }
    }
    return { status: 200, body: { status: 'received', topic, event, stored: true, published } };
  };

  // ---- POST /ml-trade ------------------------------------------------------------------------------
  const mlTrade = async (r: Req): Promise<Answer> => {
    requireIngest(r);
    const body = parseJsonBody(r.body, '/ml-trade');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'BAD_MESSAGE', '/ml-trade: the body must be a JSON object');
    const p = mlTradeSchema.safeParse(body);
    if (!p.success) throw new HttpError(400, 'BAD_MESSAGE', `/ml-trade: ${zodMessage(p.error)}`);
    const d = p.data;
    const nowUs = Date.now() * 1000;
    let tsUs = nowUs;
    if (d.timestamp !== undefined && d.timestamp !== null && d.timestamp !== '') {
      try { tsUs = parseTimeToMicros(d.timestamp); } catch { throw new HttpError(400, 'BAD_MESSAGE', `/ml-trade: timestamp ${JSON.stringify(d.timestamp)} is not a time`); }
    }
    const trade = {
      ...d, symbol: d.symbol.toUpperCase(), action: d.action.toLowerCase(), direction: (d.direction ?? '').toLowerCase(),
      timestamp: formatIsoMicros(tsUs), received_at: formatIsoMicros(nowUs),
    };
    if (redis === null) {
      stats.mlTrade.redisUnavailable++;
      throw new HttpError(503, 'REDIS_UNAVAILABLE', 'REDIS_URL is not set: ML trades are delivered through Redis only, so nothing was accepted');
    }
    const json = JSON.stringify(trade);
    try {
      const res = await redis.multi().set(mlKeys.latest, json).lpush(mlKeys.history, json).ltrim(mlKeys.history, 0, 499).publish(mlKeys.stream, json).exec();
      const failed = res?.find(([err]) => err !== null);
      if (!res || failed) throw failed?.[0] ?? new Error('transaction aborted');
    } catch (e) {
      stats.mlTrade.redisUnavailable++;
      throw new HttpError(503, 'REDIS_UNAVAILABLE', `Redis did not accept the trade: ${(e as Error).message}`);
    }
    stats.mlTrade.received++;
    return { status: 200, body: { status: 'received', symbol: trade.symbol, simulated: trade.simulated, timestamp: trade.timestamp } };
  };

  // ---- POST /gex_history_url -----------------------------------------------------------------------
  const gexUrl = async (r: Req): Promise<Answer> => {
    requireIngest(r);
    const body = parseJsonBody(r.body, '/gex_history_url');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'BAD_MESSAGE', '/gex_history_url: the body must be a JSON object {url, ticker?, endpoint?}');
    const p = gexUrlSchema.safeParse(body);
    if (!p.success) throw new HttpError(422, 'URL_MISSING', `/gex_history_url: ${zodMessage(p.error)}`);
    const refuse = (code: string, message: string): never => { stats.gex.refused++; throw new HttpError(422, code, message); };
    let u: URL;
    try {
      u = checkUrl(p.data.url, policy);
    } catch (e) {
      return refuse((e as FetchRefused).code, (e as Error).message);
    }
    if (!/\.json(\.gz)?$/i.test(u.pathname)) refuse('BAD_EXTENSION', `the file must be .json or .json.gz, got ${JSON.stringify(u.pathname.slice(-40))}`);
    try {
      await vetAddress(u, policy);
    } catch (e) {
      if (e instanceof FetchRefused) refuse(e.code, e.message);
      throw e;
    }
    const file = decodeURIComponent(u.pathname.split('/').pop() ?? '');
    const fm = FILE_RE.exec(file);
    const tickerIn = p.data.ticker ?? p.data.symbol ?? p.data.underlying ?? fm?.[2] ?? null;
    const ticker = tickerIn === null ? null : normalizeTicker(tickerIn);
    if (tickerIn !== null && ticker === null) throw new HttpError(400, 'BAD_MESSAGE', `/gex_history_url: ticker ${JSON.stringify(tickerIn)} is not a ticker`);
    const ep = p.data.endpoint ?? null;
    const category = (ep !== null && /^gex_\w+$/i.test(ep) ? ep.toLowerCase() : null) ?? fm?.[3]?.toLowerCase() ?? PATH_CAT_RE.exec(u.pathname)?.[1]?.toLowerCase() ?? null;
    const jobs = await jobsP;
    const sub = jobs.submit(u, ticker, category);
    if (sub === null) throw new HttpError(503, 'QUEUE_FULL', 'too many GEX downloads are waiting; try again later');
    if (!sub.duplicate) stats.gex.queued++;
    return { status: 200, body: { status: sub.duplicate ? 'duplicate' : 'queued', id: sub.job.id, state: sub.job.state, ticker: sub.job.ticker, endpoint: category } };
  };

  // ---- GEX queries ---------------------------------------------------------------------------------
  const tickersOf = (q: string): string[] => {
    const t = q.trim().toUpperCase();
    let root = t;
    if (deps.registry) {
      const id = deps.registry.resolve(t, Date.now() * 1000);
      if (id !== 0) root = deps.registry.metaOf(id).root;
    }
    const out = tickersForQuery(root);
    if (root !== t && !out.includes(t)) out.unshift(t);
    return out;
  };

  const tickerParam = (r: Req): string => {
    const q = r.query.get('ticker') ?? r.query.get('symbol');
    if (q === null || q.trim() === '') throw new HttpError(400, 'BAD_REQUEST', 'parameter ticker is required (e.g. NQ_NDX, NQ, MNQ)');
    if (!/^[A-Za-z0-9_]{1,31}$/.test(q.trim())) throw new HttpError(400, 'BAD_REQUEST', `bad ticker ${JSON.stringify(q.slice(0, 40))}`);
    return q;
  };

  const gexLatest = async (r: Req): Promise<Answer> => {
    requireScope(r, ['realtime', 'historical']);
    const q = tickerParam(r);
    const store = await storeP;
    for (const t of tickersOf(q)) {
      const g = store.latest(t);
      if (g) return { status: 200, body: { query: q, ticker: t, snapshot: publicSnapshot(g) } };
    }
    throw new HttpError(404, 'GEX_NOT_FOUND', `no GEX snapshot for ${q} (looked for ${tickersOf(q).join(', ')})`);
  };

  const time = (r: Req, name: string): number | undefined => {
    const v = r.query.get(name);
    if (v === null || v === '') return undefined;
    try { return parseTimeToMicros(v); } catch { throw new HttpError(400, 'BAD_REQUEST', `parameter ${name}: ${JSON.stringify(v.slice(0, 40))} is not a time (ISO 8601 or epoch s/ms/µs)`); }
  };

  const gexHistory = async (r: Req): Promise<Answer> => {
    requireScope(r, ['historical']);
    const q = tickerParam(r);
    const end = time(r, 'end_time') ?? Date.now() * 1000 + 1;
    const start = time(r, 'start_time') ?? end - 86_400_000_000;
    if (!(start < end)) throw new HttpError(400, 'BAD_REQUEST', 'start_time must be before end_time');
    const lim = r.query.get('limit');
    const limit = lim === null || lim === '' ? 1000 : Number(lim);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, 'BAD_REQUEST', 'parameter limit must be an integer between 1 and 10000');
    const store = await storeP;
    const known = new Set(store.tickers());
    const t = tickersOf(q).find((x) => known.has(x));
    if (t === undefined) throw new HttpError(404, 'GEX_NOT_FOUND', `no GEX snapshots for ${q}`);
    const h = await store.history(t, start, end, limit);
    return { status: 200, body: { query: q, ticker: t, start_time: formatIsoMicros(start), end_time: formatIsoMicros(end), count: h.rows.length, more: h.more, rows: h.rows.map(publicSnapshot) } };
  };

  const gexJob = async (r: Req): Promise<Answer> => {
    requireScope(r, ['ingest', 'historical']);
    const jobs = await jobsP;
    const j = jobs.get(r.params[0] ?? '');
    if (j === null) throw new HttpError(404, 'JOB_NOT_FOUND', `no GEX download job ${JSON.stringify((r.params[0] ?? '').slice(0, 40))}`);
    return { status: 200, body: publicJob(j) };
  };

  const preflight = (r: Req): Answer => {
    const o = r.headers.origin ?? '';
    if (!origins.has(o)) return { status: 204, body: null };
    return {
      status: 204, body: null,
      headers: { 'access-control-allow-methods': 'POST, OPTIONS', 'access-control-allow-headers': 'content-type, authorization, x-api-key, x-webhook-secret', 'access-control-max-age': '600' },
    };
  };

  app.post('/uw', handler(limits.uw, uw, cors, 0, count('POST /uw')));
  app.post('/ml-trade', handler(limits.mlTrade, mlTrade, cors, 0, count('POST /ml-trade')));
  app.post('/gex_history_url', handler(limits.gexUrl, gexUrl, cors, 0, count('POST /gex_history_url')));
  for (const path of ['/uw', '/ml-trade', '/gex_history_url']) app.options(path, handler(0, preflight, cors));
  app.get('/api/v1/gex/latest', handler(0, gexLatest, cors, 0, count('GET /api/v1/gex/latest')));
  app.get('/api/v1/gex/history', handler(0, gexHistory, cors, 0, count('GET /api/v1/gex/history')));
  app.get('/api/v1/gex/jobs/:id', handler(0, gexJob, cors, 1, count('GET /api/v1/gex/jobs')));

  return {
    ready: storeP.then(() => undefined),
    jobs: jobsP,
    store: storeP,
    mlTradeKeys: mlKeys,
    redisState: () => (redis === null ? 'disabled' : redis.status),
    stats: () => ({ ...stats, answers: { ...stats.answers }, gex: { ...stats.gex, jobs: jobsRef?.stats() ?? stats.gex.jobs } }),
    close: async () => {
      try { await (await jobsP).close(); } catch { /* store never opened */ }
      if (redis !== null) { try { await redis.quit(); } catch { redis.disconnect(); } }
    },
  };
}

/**
 * Webhook settings from the environment (for the engine's config): TICKPIPE_WEBHOOK_SECRET (shared secret,
 * at least 16 characters), TICKPIPE_GEX_HOSTS (comma-separated `host` or `host:port`, default
 * DEFAULT_GEX_HOSTS), TICKPIPE_WEBHOOK_CORS (comma-separated origins, default DEFAULT_CORS_ORIGINS).
 * A malformed value is ENGINE_ERR_CONFIG naming the variable.
 */
export function webhookOptionsFromEnv(env: Record<string, string | undefined> = process.env): Pick<WebhookDeps, 'sharedSecret' | 'gexAllowedHosts' | 'corsOrigins'> {
  const out: Pick<WebhookDeps, 'sharedSecret' | 'gexAllowedHosts' | 'corsOrigins'> = {};
  const secret = env.TICKPIPE_WEBHOOK_SECRET;
  if (secret !== undefined && secret !== '') {
    if (secret.length < 16 || /\s/.test(secret)) throw engineError('ENGINE_ERR_CONFIG', 'TICKPIPE_WEBHOOK_SECRET must be at least 16 characters without spaces', { variable: 'TICKPIPE_WEBHOOK_SECRET' });
    out.sharedSecret = secret;
  }
  const hosts = env.TICKPIPE_GEX_HOSTS;
  if (hosts !== undefined && hosts !== '') {
    const list = hosts.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
    for (const h of list) {
      if (!/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/.test(h)) {
        throw engineError('ENGINE_ERR_CONFIG', `TICKPIPE_GEX_HOSTS: ${JSON.stringify(h)} is not a host or host:port`, { variable: 'TICKPIPE_GEX_HOSTS' });
      }
    }
    out.gexAllowedHosts = list;
  }
  const cors = env.TICKPIPE_WEBHOOK_CORS;
  if (cors !== undefined && cors !== '') {
    const list = cors.split(',').map((o) => o.trim()).filter(Boolean);
    for (const o of list) {
      if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o)) throw engineError('ENGINE_ERR_CONFIG', `TICKPIPE_WEBHOOK_CORS: ${JSON.stringify(o)} is not an origin`, { variable: 'TICKPIPE_WEBHOOK_CORS' });
    }
    out.corsOrigins = list;
  }
  return out;
}

function publicSnapshot(g: GexSnapshot): Record<string, unknown> {
  return { ...g, timestamp: formatIsoMicros(g.tsMicros) };
}

function publicJob(j: GexJob): Record<string, unknown> {
  return { ...j };
}
