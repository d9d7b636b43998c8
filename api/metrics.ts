/**
 * `/metrics` in the Prometheus text format (0.0.4).
 *
 * - prom-client's registry for the process metrics (CPU, memory, event-loop lag, GC);
 * - the request counter `tickpipe_http_requests_total{route,status}` (plain counters, hand-rendered);
 * - latency percentiles from hdr-histogram-js per route (and per kind that other parts report through
 *   `observeLatency`, e.g. WebSocket tick-to-client), exposed as summaries
 *   `tickpipe_http_request_duration_seconds{route,quantile}` / `tickpipe_latency_seconds{kind,quantile}`:
 *   recording is one array increment (no allocation), cheaper than prom-client's bucket search, and the
 *   quantiles are exact to 3 significant digits instead of bucket bounds;
 * - the engine's families (`ApiDeps.metrics()`: ticks/s per source, rings, validator rejects by rule, gaps,
 *   journal lag, compaction, WS clients and drops), rendered as given.
 */
import * as hdr from 'hdr-histogram-js';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricFamily } from './deps.ts';

const QUANTILES = [0.5, 0.9, 0.99, 0.999] as const;
const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function histogram(): hdr.Histogram {
  // µs, 1 µs .. 1 h, 3 significant digits
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

interface Lat { h: hdr.Histogram; sumSeconds: number }

function escLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function fmtValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Readonly<Record<string, string>> | undefined, extra?: string): string {
  const parts: string[] = [];
  if (labels !== undefined) for (const k in labels) if (LABEL_RE.test(k)) parts.push(`${k}="${escLabel(labels[k] as string)}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export class ApiMetrics {
  readonly registry = new Registry();
  /** route → status → count (plain counters: prom-client's labelled inc hashes a label object per call). */
  readonly #requests = new Map<string, Map<number, number>>();
  readonly #http = new Map<string, Lat>();
  readonly #other = new Map<string, Lat>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'tickpipe_' });
  }

  /** One answered request (route is the route pattern, not the URL). */
  observeHttp(route: string, status: number, seconds: number): void {
    this.httpRoute(route).observe(status, seconds);
  }

  /**
   * The counters of one route, looked up once (route() keeps it): `observe` then costs no map lookup by
   * route name.
   */
  httpRoute(route: string): HttpRouteMetrics {
    let m = this.#requests.get(route);
    if (m === undefined) { m = new Map(); this.#requests.set(route, m); }
    let l = this.#http.get(route);
    if (l === undefined) { l = { h: histogram(), sumSeconds: 0 }; this.#http.set(route, l); }
    return new HttpRouteMetrics(m, l);
  }

  /** Latency of anything else (kind e.g. 'ws_tick_to_client', 'duckdb_query'). */
  observeLatency(kind: string, seconds: number): void {
    record(this.#other, kind, seconds);
  }

  /** Percentile of a route's recorded latency in seconds (for tests and the bench). */
  httpQuantile(route: string, q: number): number {
    const l = this.#http.get(route);
    return l === undefined ? NaN : l.h.getValueAtPercentile(q * 100) / 1e6;
  }

  /** Totals for the status panel: requests answered, and the worst per-route p99 in ms. */
  summary(): { requests: number; p99Ms: number } {
    let n = 0;
    for (const m of this.#requests.values()) for (const c of m.values()) n += c;
    let p99 = 0;
    for (const l of this.#http.values()) p99 = Math.max(p99, l.h.getValueAtPercentile(99) / 1000);
    return { requests: n, p99Ms: p99 };
  }

  async render(families: readonly MetricFamily[] = []): Promise<string> {
    const out: string[] = [await this.registry.metrics()];
    const req = ['# HELP tickpipe_http_requests_total HTTP requests answered, by route and status', '# TYPE tickpipe_http_requests_total counter'];
    for (const [route, m] of this.#requests) for (const [status, n] of m) req.push(`tickpipe_http_requests_total{route="${escLabel(route)}",status="${status}"} ${n}`);
    out.push(`${req.join('\n')}\n`);
    out.push(summaryText('tickpipe_http_request_duration_seconds', 'HTTP service time (hdr-histogram percentiles since start)', 'route', this.#http));
    if (this.#other.size > 0) out.push(summaryText('tickpipe_latency_seconds', 'latencies reported by other parts (WebSocket, DuckDB...)', 'kind', this.#other));
    for (const f of families) out.push(familyText(f));
    return out.join('');
  }
}

/** One route's request counts by status and its latency histogram (see ApiMetrics.httpRoute). */
export class HttpRouteMetrics {
  readonly #counts: Map<number, number>;
  readonly #lat: Lat;
  constructor(counts: Map<number, number>, lat: Lat) {
    this.#counts = counts;
    this.#lat = lat;
  }

  observe(status: number, seconds: number): void {
    const c = this.#counts;
    c.set(status, (c.get(status) ?? 0) + 1);
    recordLat(this.#lat, seconds);
  }
}

function recordLat(l: Lat, seconds: number): void {
  const us = Math.round(seconds * 1e6);
  l.h.recordValue(us < 1 ? 1 : us > 3_600_000_000 ? 3_600_000_000 : us);
  l.sumSeconds += seconds;
}

function record(m: Map<string, Lat>, key: string, seconds: number): void {
  let l = m.get(key);
  if (l === undefined) {
    l = { h: histogram(), sumSeconds: 0 };
    m.set(key, l);
  }
  recordLat(l, seconds);
}

function summaryText(name: string, help: string, label: string, m: Map<string, Lat>): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} summary`];
  for (const [k, l] of m) {
    const lv = `${label}="${escLabel(k)}"`;
    for (const q of QUANTILES) lines.push(`${name}{${lv},quantile="${q}"} ${l.h.getValueAtPercentile(q * 100) / 1e6}`);
    lines.push(`${name}_sum{${lv}} ${l.sumSeconds}`, `${name}_count{${lv}} ${l.h.totalCount}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Text of one engine family; malformed names are skipped (never a broken scrape). */
export function familyText(f: MetricFamily): string {
  if (!NAME_RE.test(f.name)) return '';
  const lines = [`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples) lines.push(`${f.name}${labelText(s.labels)} ${fmtValue(s.value)}`);
  return `${lines.join('\n')}\n`;
}
