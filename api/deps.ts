/**
 * What the REST front end needs from the engine, as one interface. The engine (engine/engine.ts) builds an
 * `ApiDeps` from its parts and passes it to `buildApp` (api/server.ts); tests build one from real parts
 * (registry, latest table, hot window, Parquet under a temp dir, a KeyStore) without an engine.
 *
 * Everything here is read on the uWS (main) thread. Synchronous members must not block: they read shared
 * memory or counters. Gap and quarantine queries may be async (they may read files or DuckDB).
 */
import type { OrderBook } from '../engine/book/order-book.ts';
import type { HotWindow } from '../engine/hot/hot-window.ts';
import type { LatestTable } from '../engine/latest/latest-table.ts';
import type { SymbolRegistry } from '../engine/symbols/registry.ts';
import type { Authenticator, Principal, Scope } from './types.ts';

/** Filters of `/api/v1/gaps` and `/api/v1/quarantine` (already validated; times in Unix µs). */
export interface RecordQuery {
  /** Resolved contract symbol (e.g. MNQZ25), or null for every symbol the caller may read. */
  symbol: string | null;
  /** Inclusive lower bound on the record time, or null. */
  fromMicros: number | null;
  /** Exclusive upper bound on the record time, or null. */
  toMicros: number | null;
  /** Most rows to return (1..10 000). */
  limit: number;
}

/** One metric family for `/metrics` (Prometheus text exposition), provided by the engine at scrape time. */
export interface MetricFamily {
  /** `tickpipe_…`, [a-zA-Z_:][a-zA-Z0-9_:]* */
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: readonly { labels?: Readonly<Record<string, string>>; value: number }[];
}

/** Answers of the key-management store that the admin routes use (implemented by api/auth KeyStore). */
export interface KeyAdmin extends Authenticator {
  list(): KeyInfo[];
  create(spec: KeySpec): Promise<{ key: string; info: KeyInfo }>;
  revoke(id: string): Promise<boolean>;
}

export interface KeySpec {
  name: string;
  scopes: readonly string[];
  /** Symbols or roots; null/empty = all. */
  symbols?: readonly string[] | null;
  /** Requests per second (token bucket); 0 = unlimited. */
  ratePerSec?: number;
}

/** Public view of a key (never the secret or its hash). */
export interface KeyInfo {
  id: string;
  name: string;
  scopes: string[];
  symbols: string[] | null;
  ratePerSec: number;
  createdAt: string;
  revokedAt: string | null;
}

export interface ApiDeps {
  readonly registry: SymbolRegistry;
  readonly latest: LatestTable;
  /** The hot window (last hour of trades per symbol); null when the engine runs without one. */
  readonly hot: HotWindow | null;
  /** Data directory: Parquet under `<dataDir>/ticks` and `<dataDir>/bars` (workers/compactor layout). */
  readonly dataDir: string;
  /** Source names by source id (the hot window stores ids; Parquet stores names). Missing ids print as `source-<id>`. */
  readonly sourceNames: readonly string[];
  /** Order book of a symbol id, or null/undefined when there is none. Read synchronously on this thread. */
  book(id: number): OrderBook | null | undefined;
  /** Detected gaps, newest first (shape decided by the validator; each row must be JSON-serialisable). */
  gaps(q: RecordQuery): readonly unknown[] | Promise<readonly unknown[]>;
  /** Quarantined records, newest first (same rules as `gaps`). */
  quarantine(q: RecordQuery): readonly unknown[] | Promise<readonly unknown[]>;
  /** `/api/v1/status` body (allocates; called per request). */
  status(): Record<string, unknown>;
  /** True once every stage runs (`/readyz`). */
  ready(): boolean;
  /** Engine metric families for `/metrics` (ticks/s per source, rings, validator, journal, compactor, WS…). */
  metrics?(): readonly MetricFamily[];
  /** API keys: authenticator (and admin operations when it is a KeyStore). */
  readonly auth: Authenticator | KeyAdmin;
  /** Parquet retention in days (data older than now − this is gone: 410). */
  readonly retentionDays: number;
  /** Wall clock in ms (injectable for tests). */
  now(): number;
}

/** Front-end options (all optional). */
export interface ApiOptions {
  /** Largest request body in bytes (413 above it); default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * CORS: allowed origins (exact `scheme://host[:port]` strings) or '*' (any origin, no credentials);
   * default: none (no CORS headers, preflights get 404... i.e. browsers refuse cross-origin calls).
   */
  corsOrigins?: readonly string[] | '*';
  /** Bad keys per address per minute before that address gets 429 (default 20). */
  badKeyLimitPerMinute?: number;
  /** DuckDB connections for historical queries (default 2). */
  duckConnections?: number;
  /** DuckDB worker threads (default 2). */
  duckThreads?: number;
  /** Query history (per key) file; default `<dataDir>/key-history.ndjson`; null = memory only. */
  historyFile?: string | null;
  /** Entries kept in memory per key (default 1000). */
  historyPerKey?: number;
}

/** Context handed to `attach` callbacks (WebSocket, webhooks, static files) so they share auth and metrics. */
export interface AttachContext {
  readonly deps: ApiDeps;
  /**
   * Check a presented key (e.g. from `Authorization: Bearer <key>` or `?token=`) for `scope`, the address's
   * bad-key budget and the key's rate limit. Returns the principal, or throws an ApiError (401/403/429) to
   * pass to sendError (api/http/respond.ts). `remoteAddress` may be a function (called only when needed).
   * Call synchronously inside the handler.
   */
  authorize(token: string | undefined, remoteAddress: string | (() => string), scope: Scope): Principal;
  /** Observe a latency in seconds for a labelled operation (e.g. 'ws_tick') on `/metrics`. */
  observeLatency(kind: string, seconds: number): void;
}
