/**
 * What every route shares (`Services`), and `route()`, the wrapper every handler goes through:
 * arm onAborted first, copy what is needed from `req` (query, auth header, origin, address) synchronously,
 * authorise (401/403/429), run the handler, turn any throw or rejection into one JSON error (or a closed
 * connection once a stream has started), and account the request once (metrics, per-key history).
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { HotColumns } from '../../engine/hot/hot-columns.ts';
import type { SymbolMeta } from '../../engine/symbols/registry.ts';
import type { Guard } from '../auth/guard.ts';
import { checkSymbol } from '../auth/guard.ts';
import type { ApiDeps } from '../deps.ts';
import type { QueryHistory } from '../history/history.ts';
import { redactParams } from '../history/history.ts';
import { bearerToken, remoteAddress } from '../http/request.ts';
import { ApiError, sendError, type ReqCtx } from '../http/respond.ts';
import type { ApiMetrics, HttpRouteMetrics } from '../metrics.ts';
import type { Principal, Scope } from '../types.ts';
import type { DuckPool } from './duck-pool.ts';

export interface Services {
  readonly deps: ApiDeps;
  readonly guard: Guard;
  readonly history: QueryHistory;
  readonly metrics: ApiMetrics;
  /** DuckDB pool, opened on first use. */
  duck(): Promise<DuckPool>;
  /** Page buffer for hot window reads (one per app; used synchronously only). */
  readonly hotPage: HotColumns;
  readonly maxBodyBytes: number;
  /** Access-Control-Allow-Origin for a request Origin, or undefined; null: CORS is off (the Origin header is not even read). */
  readonly cors: ((origin: string) => string | undefined) | null;
}

export interface RouteCtx extends ReqCtx {
  principal: Principal | null;
  /** Raw query string (no '?'). */
  query: string;
  /** Peer address, when the guard needed it ('' otherwise). */
  addr: string;
  /** A streamed answer has sent its head: errors now close the connection instead. */
  streaming: boolean;
}

export type RouteHandler = (res: HttpResponse, req: HttpRequest, ctx: RouteCtx) => void | Promise<void>;

/** Wall clock minus monotonic clock, ms; re-read every WALL_EVERY requests (so a stepped system clock shows up soon). */
let wallOffset = Date.now() - performance.now();
let wallUses = 0;
const WALL_EVERY = 1024;
/** The wall-clock time (Unix ms) of a `performance.now()` reading, without a Date.now() per request. */
function wallMs(perfMs: number): number {
  if (++wallUses >= WALL_EVERY) {
    wallUses = 0;
    wallOffset = Date.now() - performance.now();
  }
  return wallOffset + perfMs;
}

/**
 * The context of one request, as a class so that the common path allocates one object and no closure:
 * `done` is a method (called by `finish`), the peer address is looked up through `address()` only when the
 * guard needs it, and the abort handler (uWS wants a function per response) is made only for a handler that
 * has not answered by the time it returns (see `route`).
 */
class RouteContext implements RouteCtx {
  aborted = false;
  principal: Principal | null = null;
  query: string;
  addr = '';
  streaming = false;
  cors: string | undefined = undefined;
  rows: number | undefined = undefined;
  finished: boolean | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  sync = true;
  readonly #s: Services;
  readonly #name: string;
  readonly #metrics: HttpRouteMetrics;
  readonly #t0: number;
  #res: HttpResponse | null;

  constructor(s: Services, name: string, metrics: HttpRouteMetrics, t0: number, res: HttpResponse, query: string) {
    this.#s = s;
    this.#name = name;
    this.#metrics = metrics;
    this.#t0 = t0;
    this.#res = res;
    this.query = query;
  }

  /** The peer address (read from the response while the handler runs; '' later, 'unknown' when unreadable). */
  address(): string {
    if (this.addr === '' && this.#res !== null) this.addr = remoteAddress(this.#res);
    return this.addr;
  }

  /** The handler returned: the response may no longer be read synchronously. */
  detach(): void {
    this.#res = null;
    this.sync = false;
  }

  done(status: number, rows: number): void {
    const ms = performance.now() - this.#t0;
    const s = this.#s;
    this.#metrics.observe(status, ms / 1000);
    const p = this.principal;
    if (p !== null) s.history.record(p.keyId, wallMs(this.#t0), this.#name, redactParams(this.query), status, rows, Math.round(ms * 1000) / 1000);
  }

  /** The abort handler for a handler that answers later. */
  abortHandler(): () => void {
    return () => {
      this.aborted = true;
      this.onAbort?.();
      if (this.finished !== true) accountAbort(this);
    };
  }
}

/**
 * Wrap a handler: `name` labels metrics and history; `scope` null = no key needed.
 *
 * uWS needs `onAborted` only for a response that is still open when the handler returns; one answered
 * synchronously (the latest route, every 4xx from the guard) never gets one, which keeps closures off the
 * path that bots poll tens of thousands of times a second.
 */
export function route(s: Services, name: string, scope: Scope | null, handler: RouteHandler): (res: HttpResponse, req: HttpRequest) => void {
  const metrics = s.metrics.httpRoute(name);
  return (res, req) => {
    const ctx = new RouteContext(s, name, metrics, performance.now(), res, req.getQuery() ?? '');
    if (s.cors !== null) {
      const origin = req.getHeader('origin');
      if (origin !== '') ctx.cors = s.cors(origin);
    }
    let r: void | Promise<void> = undefined;
    try {
      if (scope !== null) ctx.principal = s.guard.authorize(bearerToken(req), ctx, scope);
      r = handler(res, req, ctx);
    } catch (err) {
      failLate(res, ctx, err);
    }
    ctx.detach();
    if (ctx.finished !== true && !ctx.aborted) {
      // still open (an async handler, or a stream): uWS must be told before we return
      try {
        res.onAborted(ctx.abortHandler());
      } catch { /* a handler ended the response without `finish`: nothing left to watch */ }
    }
    if (r !== undefined) r.catch((err: unknown) => { failLate(res, ctx, err); });
  };
}

function accountAbort(ctx: RouteCtx): void {
  ctx.finished = true;
  try {
    ctx.done?.(499, ctx.rows ?? 0);
  } catch { /* never */ }
}

function failLate(res: HttpResponse, ctx: RouteCtx, err: unknown): void {
  if (ctx.aborted || ctx.finished === true) return;
  if (ctx.streaming) {
    // the status line is out: the only honest signal left is to cut the connection (the client sees a truncated body)
    ctx.aborted = true;
    ctx.finished = true;
    ctx.done?.(500, ctx.rows ?? 0);
    res.close();
    return;
  }
  sendError(res, ctx, err);
}

/** Resolve a user symbol (contract or root) to its registry entry, checking the key's grant (404/403). */
export function resolveSymbol(s: Services, ctx: RouteCtx, query: string): SymbolMeta {
  const id = s.deps.registry.resolve(query, s.deps.now() * 1000);
  if (id === 0) throw new ApiError(404, 'UNKNOWN_SYMBOL', `unknown symbol or root ${JSON.stringify(query)}`);
  const meta = s.deps.registry.metaOf(id);
  if (ctx.principal !== null) checkSymbol(ctx.principal, meta);
  return meta;
}
