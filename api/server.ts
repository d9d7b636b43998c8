/**
 * uWebSockets.js front end on the engine's main thread. `createApi` lists every REST route here and
 * nowhere else, lets other parts (WebSocket `/ws`, webhooks, the panel's static files) register theirs via
 * `attach`, and ends with the JSON 404. Handlers never block: latest/realtime/depth read shared memory,
 * historical queries run in DuckDB (async, pooled), files are written asynchronously.
 *
 * Routes (DESIGN.md §6, issue 5). Scope needed in brackets; no scope = no key.
 *   GET  /healthz, /readyz, /api/v1/status, /metrics
 *   GET  /api/v1/ticks/latest      [realtime]      GET /api/v1/ticks/realtime [realtime]
 *   GET  /api/v1/ticks/historical  [historical]    GET /api/v1/depth          [realtime]
 *   GET  /api/v1/gaps, /api/v1/quarantine [historical]
 *   GET  /api/v1/keys, POST /api/v1/keys, DELETE /api/v1/keys/:id, GET /api/v1/keys/:id/history [admin]
 */
import { App, us_listen_socket_close, us_socket_local_port, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import { engineError } from '../engine/errors.ts';
import { Guard } from './auth/guard.ts';
import type { ApiDeps, ApiOptions, AttachContext, MetricFamily } from './deps.ts';
import { QueryHistory } from './history/history.ts';
import { ApiError, sendError, sendJson, sendText, STATUS_LINE, type ReqCtx } from './http/respond.ts';
import { ApiMetrics } from './metrics.ts';
import { route, type Services } from './rest/context.ts';
import { depthRoute } from './rest/depth.ts';
import { DuckPool } from './rest/duck-pool.ts';
import { createHotPage } from './rest/hist-plan.ts';
import { historicalRoute } from './rest/historical.ts';
import { createKeyRoute, keyHistoryRoute, listKeysRoute, revokeKeyRoute } from './rest/keys.ts';
import { latestRoute } from './rest/latest.ts';
import { realtimeRoute } from './rest/realtime.ts';
import { recordsRoute } from './rest/records.ts';
import { join } from 'node:path';

export interface StatusSource {
  /** Everything `/api/v1/status` shows (allocates; cold path, called per request). */
  status(): Record<string, unknown>;
  /** True once every stage is running. */
  ready(): boolean;
}

export interface ApiServer {
  readonly port: number;
  close(): void;
}

/** The built front end: the uWS app plus what must be closed with it. */
export interface Api {
  readonly app: TemplatedApp;
  readonly metrics: ApiMetrics;
  readonly history: QueryHistory;
  readonly guard: Guard;
  listen(host: string, port: number): Promise<ApiServer>;
  /** Stop listening, wait for DuckDB queries, flush the query history. Idempotent. */
  close(): Promise<void>;
}

export type AttachFn = (app: TemplatedApp, ctx: AttachContext) => void;

const GET_ROUTES = [
  '/healthz', '/readyz', '/api/v1/status', '/metrics', '/api/v1/ticks/latest', '/api/v1/ticks/realtime', '/api/v1/ticks/historical',
  '/api/v1/depth', '/api/v1/gaps', '/api/v1/quarantine', '/api/v1/keys/:id/history',
];

function corsFn(origins: ApiOptions['corsOrigins']): ((origin: string) => string | undefined) | null {
  if (origins === undefined) return null;
  if (origins === '*') return () => '*';
  const set = new Set(origins);
  return (o) => (set.has(o) ? o : undefined);
}

/**
 * Build the front end. `attach` runs after the REST routes and before the catch-all 404: register `/ws`,
 * webhooks and static files there (their own routes win over the 404).
 */
export async function createApi(deps: ApiDeps, opts: ApiOptions = {}, attach?: AttachFn | readonly AttachFn[]): Promise<Api> {
  const metrics = new ApiMetrics();
  const history = await QueryHistory.open({
    file: opts.historyFile === undefined ? join(deps.dataDir, 'key-history.ndjson') : opts.historyFile,
    perKey: opts.historyPerKey ?? 1000,
  });
  const guard = new Guard(deps.auth, () => deps.now(), opts.badKeyLimitPerMinute ?? 20);
  let pool: Promise<DuckPool> | null = null;
  const s: Services = {
    deps, guard, history, metrics,
    duck: () => (pool ??= DuckPool.open({ connections: opts.duckConnections ?? 2, threads: opts.duckThreads ?? 2 })),
    hotPage: createHotPage(),
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    cors: corsFn(opts.corsOrigins),
  };
  const app = App();
  app
    .get('/healthz', route(s, 'healthz', null, (res, _req, ctx) => { sendJson(res, ctx, 200, { ok: true }); }))
    .get('/readyz', route(s, 'readyz', null, (res, _req, ctx) => {
      if (deps.ready()) sendJson(res, ctx, 200, { ready: true });
      else sendJson(res, ctx, 503, { ready: false, error: { code: 'NOT_READY', message: 'the engine is starting or a stage is down' } });
    }))
    .get('/api/v1/status', route(s, 'status', null, (res, _req, ctx) => { sendJson(res, ctx, 200, deps.status()); }))
    .get('/metrics', route(s, 'metrics', null, async (res, _req, ctx) => {
      const c = guard.counts;
      const own: MetricFamily[] = [
        { name: 'tickpipe_api_auth_refused_total', help: 'requests refused by the key guard, by reason', type: 'counter', samples: [
          { labels: { reason: 'unauthorized' }, value: c.unauthorized }, { labels: { reason: 'forbidden' }, value: c.forbidden },
          { labels: { reason: 'rate_limited' }, value: c.rateLimited }, { labels: { reason: 'bad_key_address' }, value: c.badKeyBlocked },
        ] },
      ];
      if (pool !== null) {
        const p = await pool;
        own.push({ name: 'tickpipe_api_duckdb_connections', help: 'DuckDB connections of the historical pool', type: 'gauge', samples: [
          { labels: { state: 'idle' }, value: p.idle }, { labels: { state: 'busy' }, value: p.size - p.idle },
        ] }, { name: 'tickpipe_api_duckdb_waits_total', help: 'historical queries that waited for a DuckDB connection', type: 'counter', samples: [{ value: p.waits }] });
      }
      const text = await metrics.render([...own, ...(deps.metrics?.() ?? [])]);
      sendText(res, ctx, 200, 'text/plain; version=0.0.4; charset=utf-8', text);
    }))
    .get('/api/v1/ticks/latest', route(s, 'ticks/latest', 'realtime', latestRoute(s)))
    .get('/api/v1/ticks/realtime', route(s, 'ticks/realtime', 'realtime', realtimeRoute(s)))
    .get('/api/v1/ticks/historical', route(s, 'ticks/historical', 'historical', historicalRoute(s)))
    .get('/api/v1/depth', route(s, 'depth', 'realtime', depthRoute(s)))
    .get('/api/v1/gaps', route(s, 'gaps', 'historical', recordsRoute(s, 'gaps')))
    .get('/api/v1/quarantine', route(s, 'quarantine', 'historical', recordsRoute(s, 'quarantine')))
    .get('/api/v1/keys', route(s, 'keys/list', 'admin', listKeysRoute(s)))
    .post('/api/v1/keys', route(s, 'keys/create', 'admin', createKeyRoute(s)))
    .del('/api/v1/keys/:id', route(s, 'keys/revoke', 'admin', revokeKeyRoute(s)))
    .get('/api/v1/keys/:id/history', route(s, 'keys/history', 'admin', keyHistoryRoute(s)));
  // wrong method on a known path: 405 (POST /api/v1/keys is a route of its own)
  for (const p of GET_ROUTES) {
    app.any(p, route(s, 'method', null, (_res, req) => {
      throw new ApiError(405, 'METHOD_NOT_ALLOWED', `${req.getMethod().toUpperCase()} is not allowed on ${p}; use GET`);
    }));
  }
  // CORS preflight
  app.options('/*', (res: HttpResponse, req: HttpRequest) => {
    const origin = req.getHeader('origin');
    const allow = origin === '' || s.cors === null ? undefined : s.cors(origin);
    res.cork(() => {
      res.writeStatus(STATUS_LINE[204] as string);
      if (allow !== undefined) {
        res.writeHeader('access-control-allow-origin', allow).writeHeader('vary', 'Origin')
          .writeHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS')
          .writeHeader('access-control-allow-headers', 'authorization, content-type, x-api-key')
          .writeHeader('access-control-max-age', '600');
      }
      res.end();
    });
  });
  const attachCtx: AttachContext = {
    deps,
    authorize: (token, addr, scope) => guard.authorize(token, addr, scope),
    observeLatency: (kind, seconds) => { metrics.observeLatency(kind, seconds); },
  };
  if (attach !== undefined) for (const fn of Array.isArray(attach) ? attach as readonly AttachFn[] : [attach as AttachFn]) fn(app, attachCtx);
  app.any('/*', route(s, 'not_found', null, (_res, req) => {
    throw new ApiError(404, 'NOT_FOUND', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl().slice(0, 200)}`);
  }));

  let server: ApiServer | null = null;
  let closing: Promise<void> | null = null;
  return {
    app, metrics, history, guard,
    async listen(host, port) {
      server = await listen(app, host, port);
      return server;
    },
    close() {
      closing ??= (async () => {
        server?.close();
        server = null;
        if (pool !== null) await (await pool).close();
        await history.close();
      })();
      return closing;
    },
  };
}

/**
 * The minimal app (health, readiness, status, JSON 404) the engine used before the REST routes existed.
 * @deprecated use createApi(deps, opts, attach)
 */
export function buildApp(src: StatusSource): TemplatedApp {
  const wrap = (handler: (res: HttpResponse, req: HttpRequest, ctx: ReqCtx) => void) => (res: HttpResponse, req: HttpRequest): void => {
    const ctx: ReqCtx = { aborted: false };
    res.onAborted(() => { ctx.aborted = true; });
    try {
      handler(res, req, ctx);
    } catch (err) {
      sendError(res, ctx, err);
    }
  };
  return App()
    .get('/healthz', wrap((res, _req, ctx) => { sendJson(res, ctx, 200, { ok: true }); }))
    .get('/readyz', wrap((res, _req, ctx) => {
      if (src.ready()) sendJson(res, ctx, 200, { ready: true });
      else sendJson(res, ctx, 503, { ready: false, error: { code: 'NOT_READY', message: 'the engine is starting or a stage is down' } });
    }))
    .get('/api/v1/status', wrap((res, _req, ctx) => { sendJson(res, ctx, 200, src.status()); }))
    .any('/*', wrap((_res, req) => {
      throw new ApiError(404, 'NOT_FOUND', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl().slice(0, 200)}`);
    }));
}

/** Listen on host:port (port 0 picks a free one). */
export function listen(app: TemplatedApp, host: string, port: number): Promise<ApiServer> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (sock: us_listen_socket | false) => {
      if (!sock) { reject(engineError('ENGINE_ERR_CONFIG', `cannot listen on ${host}:${port} (port in use or address not available)`, { host, port })); return; }
      resolve({ port: us_socket_local_port(sock), close: () => { us_listen_socket_close(sock); } });
    });
  });
}
