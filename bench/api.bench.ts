/**
 * Front-end benchmarks (issue 5):
 * - `GET /api/v1/ticks/latest` service time in-process: the real route handler (auth, symbol resolution,
 *   seqlock read, JSON) called directly with a minimal response object, hdr-histogram percentiles per call
 *   (target p99 < 50 µs);
 * - the same route under a 32-connection closed-loop load on loopback (bench/api-load.worker.ts, a JS
 *   client in its own thread), against `redis-benchmark -c 32 GET` of a value of the same size on a
 *   redis-server started here (the issue's baseline, a C client), against Redis driven by the same JS
 *   client (apples to apples), and against the same handler logic on node:http;
 * - the service time the server itself recorded during the uWS load run (`/metrics` histogram);
 * - `/api/v1/ticks/historical` end to end over HTTP: one day of raw ticks (1 M rows; quick: 200 k) as
 *   Parquet (target < 1 s) and one year of 1-minute bars (quick: 30 days) as Parquet and as JSON (target
 *   < 500 ms), from files laid out as the compactor lays them out (day files, generated here by DuckDB).
 * Two shared cores: the client, the server and Redis compete for them, so throughput figures are
 * relative; compare the ratios within one run.
 *
 * Run alone: `node --import tsx bench/run.ts --only api [--quick]`.
 */
import { spawn, execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { LatestTable } from '../engine/latest/latest-table.ts';
import { SymbolRegistry } from '../engine/symbols/registry.ts';
import { spawnWorker, waitForMessage } from '../engine/worker-host.ts';
import { Guard } from '../api/auth/guard.ts';
import { KeyStore } from '../api/auth/keystore.ts';
import type { ApiDeps } from '../api/deps.ts';
import { QueryHistory } from '../api/history/history.ts';
import { ApiMetrics } from '../api/metrics.ts';
import { route, type Services } from '../api/rest/context.ts';
import { createHotPage } from '../api/rest/hist-plan.ts';
import { latestRoute } from '../api/rest/latest.ts';
import { DuckPool } from '../api/rest/duck-pool.ts';
import { createApi } from '../api/server.ts';
import type { LoadData, LoadDone } from './api-load.worker.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';

const CONNECTIONS = 32;
const PATH = '/api/v1/ticks/latest?symbols=MNQ';
const T_NOW = Date.parse('2025-11-11T15:30:00Z');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => { resolve(port); });
    });
  });
}

async function load(data: LoadData): Promise<LoadDone> {
  const w = spawnWorker(new URL('./api-load.worker.ts', import.meta.url), data, { name: 'api-load' });
  try {
    return await waitForMessage(w, (m): m is LoadDone => (m as { code?: string } | null)?.code === 'done', data.warmupMs + data.durationMs + 30_000);
  } finally {
    await w.terminate();
  }
}

function httpRequest(key: string): string {
  return `GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n\r\n`;
}

function respCommand(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

async function startRedis(): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      execFile('redis-cli', ['-p', String(port), 'ping'], (err, out) => { resolve(!err && out.trim() === 'PONG'); });
    });
    if (ok) break;
    if (Date.now() > deadline) { p.kill(); throw new Error('redis-server did not start'); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: () => new Promise<void>((resolve) => { p.once('exit', () => { resolve(); }); p.kill('SIGTERM'); }),
  };
}

function redisBenchmark(port: number, key: string, n: number): Promise<{ rps: number; p50: number; p99: number }> {
  return new Promise((resolve, reject) => {
    execFile('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-c', String(CONNECTIONS), '-n', String(n), '--csv', 'GET', key], (err, out) => {
      if (err) { reject(err); return; }
      const line = out.trim().split('\n').find((l) => l.startsWith('"GET'));
      const cells = line?.split(',').map((c) => c.replace(/"/g, '')) ?? [];
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
      resolve({ rps: Number(cells[1]), p50: Number(cells[4]) * 1000, p99: Number(cells[6]) * 1000 });
    });
  });
}

/** A response object that accepts what the route writes (for the in-process timing). */
function fakeRes(): HttpResponse {
  const addr = new TextEncoder().encode('127.0.0.1').buffer;
  const res = {
    body: '',
    onAborted() { return res; },
    cork(cb: () => void) { cb(); return res; },
    writeStatus() { return res; },
    writeHeader() { return res; },
    end(b?: string) { res.body = b ?? ''; return res; },
    getRemoteAddressAsText() { return addr; },
  };
  return res as unknown as HttpResponse;
}

function fakeReq(key: string): HttpRequest {
  const auth = `Bearer ${key}`;
  return { getHeader: (n: string) => (n === 'authorization' ? auth : ''), getQuery: () => 'symbols=MNQ' } as unknown as HttpRequest;
}

const BENCH_SYMBOL = 'NQH26';
const DAY = '2025-11-10';

/** Write a day of ticks and `days` days of 1-minute bars for BENCH_SYMBOL in the compactor's layout. */
async function writeHistory(dir: string, ticks: number, days: number): Promise<void> {
  const db = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await db.connect();
  try {
    await c.run(`SET TimeZone = 'UTC'`);
    const tickDir = join(dir, 'ticks', `symbol=${BENCH_SYMBOL}`, `date=${DAY}`);
    mkdirSync(tickDir, { recursive: true });
    const t0 = Date.parse(`${DAY}T00:00:00Z`) * 1000;
    const step = Math.floor(86_400_000_000 / ticks);
    await c.run(`COPY (SELECT make_timestamptz(us) AS ts, us // 1000 AS ts_ms, 21000 + (i % 400) * 0.25 AS price, (1 + i % 5)::UINTEGER AS size, ` +
      `20999.75 + (i % 400) * 0.25 AS bid, 21000 + (i % 400) * 0.25 AS ask, CASE WHEN i % 2 = 0 THEN 'B' ELSE 'S' END AS side, 'sierra' AS source, ` +
      `i::UINTEGER AS seq, (1 + i % 2)::UINTEGER AS flags FROM (SELECT i, ${t0} + i * ${step} AS us FROM range(${ticks}) t(i)) ORDER BY ts) ` +
      `TO '${join(tickDir, 'day.parquet')}' (FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION V2)`);
    const barsRoot = join(dir, 'bars', 'interval=1m', `symbol=${BENCH_SYMBOL}`);
    const tmp = join(dir, 'bars-tmp');
    const b0 = t0 - (days - 1) * 86_400_000_000;
    await c.run(`COPY (SELECT strftime(make_timestamptz(b), '%Y-%m-%d') AS date, make_timestamptz(b) AS ts, b // 1000 AS ts_ms, 21000.0 + (i % 97) AS open, ` +
      `21001.0 + (i % 97) AS high, 20999.0 + (i % 97) AS low, 21000.5 + (i % 97) AS close, (10 + i % 50)::BIGINT AS volume, (5 + i % 20)::BIGINT AS trades, ` +
      `(5 + i % 25)::BIGINT AS buy_volume, (5 + i % 25)::BIGINT AS sell_volume, 21000.2 + (i % 97) AS vwap ` +
      `FROM (SELECT i, ${b0} + i * 60000000 AS b FROM range(${days * 1440}) t(i))) TO '${tmp}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date), FILENAME_PATTERN 'day')`);
    for (const d of readdirSync(tmp)) {
      mkdirSync(join(barsRoot, d), { recursive: true });
      renameSync(join(tmp, d, 'day0.parquet'), join(barsRoot, d, 'day.parquet'));
    }
    rmSync(tmp, { recursive: true, force: true });
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function timeGet(url: string, key: string, runs: number): Promise<{ worst: number; median: number; bytes: number; body: ArrayBuffer }> {
  const times: number[] = [];
  let bytes = 0;
  let last = new ArrayBuffer(0);
  for (let i = 0; i < runs; i++) {
    const a = performance.now();
    const r = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
    const body = await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`${url}: ${r.status} ${Buffer.from(body).toString().slice(0, 200)}`);
    times.push(performance.now() - a);
    bytes = body.byteLength;
    last = body;
  }
  times.sort((x, y) => x - y);
  return { worst: times[times.length - 1] as number, median: times[Math.floor(times.length / 2)] as number, bytes, body: last };
}

/** Rows of a Parquet answer and how many are out of time order (must be 0): the figures mean nothing otherwise. */
async function checkParquet(dir: string, body: ArrayBuffer, key: 'ts'): Promise<{ rows: number; disorder: number }> {
  const file = join(dir, 'answer.parquet');
  writeFileSync(file, Buffer.from(body));
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const r = await c.runAndReadAll(`SELECT count(*)::DOUBLE, count(*) FILTER (WHERE ${key} < prev)::DOUBLE FROM (SELECT ${key}, lag(${key}) OVER () AS prev FROM read_parquet('${file}'))`);
    const row = r.getRowsJS()[0] ?? [0, 0];
    return { rows: Number(row[0]), disorder: Number(row[1]) };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function historyBench(quick: boolean, deps: ApiDeps, key: string): Promise<BenchResult[]> {
  const ticks = quick ? 200_000 : 1_000_000;
  const days = quick ? 30 : 365;
  await writeHistory(deps.dataDir, ticks, days);
  const api = await createApi(deps, { historyFile: null });
  const server = await api.listen('127.0.0.1', 0);
  const base = `http://127.0.0.1:${server.port}/api/v1/ticks/historical?symbols=${BENCH_SYMBOL}`;
  const runs = quick ? 1 : 3;
  const out: BenchResult[] = [];
  try {
    // open the DuckDB pool and warm the file metadata cache (not timed)
    await timeGet(`${base}&start_time=${DAY}T00:00:00Z&end_time=${DAY}T00:01:00Z&format=parquet`, key, 1);
    const day = await timeGet(`${base}&start_time=${DAY}T00:00:00Z&end_time=${DAY}T23:59:59.999999Z&format=parquet`, key, runs);
    const dayCheck = await checkParquet(deps.dataDir, day.body, 'ts');
    if (dayCheck.rows !== ticks || dayCheck.disorder !== 0) throw new Error(`day answer: ${dayCheck.rows} rows (want ${ticks}), ${dayCheck.disorder} out of order`);
    out.push({ name: `historical: one day of raw ticks (${ticks / 1e6} M rows) as Parquet over HTTP (target < 1 s)`, unit: 'ms (median)', value: sig(day.median), p50: sig(day.median), max: sig(day.worst), baseline: `${(day.bytes / 1e6).toFixed(1)} MB answer` });
    const endBars = Date.parse(`${DAY}T00:00:00Z`) + 86_400_000;
    const startBars = new Date(endBars - days * 86_400_000).toISOString();
    const endIso = new Date(endBars).toISOString();
    const barsPq = await timeGet(`${base}&start_time=${startBars}&end_time=${endIso}&interval=1m&format=parquet`, key, runs);
    const barsCheck = await checkParquet(deps.dataDir, barsPq.body, 'ts');
    if (barsCheck.rows !== days * 1440 || barsCheck.disorder !== 0) throw new Error(`bars answer: ${barsCheck.rows} rows (want ${days * 1440}), ${barsCheck.disorder} out of order`);
    out.push({ name: `historical: ${days} days of 1-minute bars (${days * 1440} bars) as Parquet over HTTP (target < 500 ms for a year)`, unit: 'ms (median)', value: sig(barsPq.median), p50: sig(barsPq.median), max: sig(barsPq.worst) });
    const barsJson = await timeGet(`${base}&start_time=${startBars}&end_time=${endIso}&interval=1m&format=json`, key, runs);
    out.push({ name: `historical: ${days} days of 1-minute bars as JSON (streamed) over HTTP`, unit: 'ms (median)', value: sig(barsJson.median), p50: sig(barsJson.median), max: sig(barsJson.worst) });
  } finally {
    await api.close();
  }
  return out;
}

export const run: BenchSuite = async ({ quick }) => {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-api-bench-'));
  const results: BenchResult[] = [];
  const registry = SymbolRegistry.create({ capacity: 64 });
  const id = registry.register('MNQZ25');
  registry.register('NQZ25');
  registry.register(BENCH_SYMBOL);
  const latest = LatestTable.create(64);
  const t = T_NOW * 1000;
  latest.writeTick(id, t, 21000.25, 3, 1, 123456, 21000, 7, 21000.25, 9);
  const keystore = KeyStore.open(dir);
  const { key } = keystore.createSync({ name: 'bench', scopes: ['realtime', 'historical'] });
  const deps: ApiDeps = {
    registry, latest, hot: null, dataDir: dir, sourceNames: ['none', 'sierra'], book: () => null, gaps: () => [], quarantine: () => [],
    status: () => ({}), ready: () => true, auth: keystore, retentionDays: 365, now: () => T_NOW,
  };
  try {
    // ---- 1. in-process service time of the real handler ------------------------------------------------
    const history = await QueryHistory.open({ file: null });
    const services: Services = {
      deps, guard: new Guard(keystore, () => T_NOW, 20), history, metrics: new ApiMetrics({ processMetrics: false }),
      duck: () => DuckPool.open({ connections: 1 }), hotPage: createHotPage(), maxBodyBytes: 1 << 20, cors: () => undefined,
    };
    const handler = route(services, 'ticks/latest', 'realtime', latestRoute(services));
    const res = fakeRes();
    const req = fakeReq(key);
    const iters = quick ? 20_000 : 300_000;
    for (let i = 0; i < Math.min(20_000, iters); i++) handler(res, req); // warm up (JIT)
    const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 1_000_000_000, numberOfSignificantValueDigits: 3 });
    for (let i = 0; i < iters; i++) {
      const a = performance.now();
      handler(res, req);
      h.recordValue(Math.max(1, Math.round((performance.now() - a) * 1e6))); // ns
    }
    if (!(res as unknown as { body: string }).body.includes('"price":21000.25')) throw new Error('latest handler answered something else');
    const us = (ns: number): number => sig(ns / 1000);
    results.push({
      name: 'latest route service time, in-process (auth + resolve + seqlock read + JSON)', unit: 'µs (p99)', value: us(h.getValueAtPercentile(99)),
      p50: us(h.getValueAtPercentile(50)), p99: us(h.getValueAtPercentile(99)), p999: us(h.getValueAtPercentile(99.9)), max: us(h.maxValue),
    });

    // ---- 2. loopback load: uWS, node:http, Redis ----------------------------------------------------------
    const durationMs = quick ? 1000 : 5000;
    const warmupMs = quick ? 300 : 1000;
    const api = await createApi(deps, { historyFile: null });
    const server = await api.listen('127.0.0.1', 0);
    const uws = await load({ host: '127.0.0.1', port: server.port, protocol: 'http', request: httpRequest(key), connections: CONNECTIONS, warmupMs, durationMs });
    const serverP99us = sig(api.metrics.httpQuantile('ticks/latest', 0.99) * 1e6);
    const serverP50us = sig(api.metrics.httpQuantile('ticks/latest', 0.5) * 1e6);
    await api.close();

    // node:http with the same logic (auth, resolve, seqlock read, JSON)
    const nodeServer: Server = createHttpServer((rq, rs) => {
      const u = new URL(rq.url ?? '/', 'http://x');
      const m = /^Bearer (\S+)$/.exec(rq.headers.authorization ?? '');
      if (u.pathname !== '/api/v1/ticks/latest' || keystore.authenticate(m?.[1]) === null) { rs.writeHead(401).end(); return; }
      const data = (u.searchParams.get('symbols') ?? '').split(',').map((s) => {
        const sid = registry.resolve(s, T_NOW * 1000);
        return latest.readJson(sid, registry.metaOf(sid).symbol);
      });
      const body = JSON.stringify({ data });
      rs.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    await new Promise<void>((resolve) => { nodeServer.listen(0, '127.0.0.1', resolve); });
    const nodePort = (nodeServer.address() as { port: number }).port;
    const node = await load({ host: '127.0.0.1', port: nodePort, protocol: 'http', request: httpRequest(key), connections: CONNECTIONS, warmupMs, durationMs });
    await new Promise<void>((resolve) => { nodeServer.close(() => { resolve(); }); nodeServer.closeAllConnections(); });

    results.push({
      name: `latest route, uWS, ${CONNECTIONS} connections on loopback (JS client thread)`, unit: 'req/s', value: sig(uws.rps),
      baseline: 'same handler logic on node:http', baselineValue: sig(node.rps), ratio: sig(uws.rps / node.rps, 3),
      p50: uws.p50, p99: uws.p99, p999: uws.p999, max: uws.max,
    });
    results.push({ name: 'latest route, uWS, server-side service time during the load (hdr, /metrics)', unit: 'µs (p99)', value: serverP99us, p50: serverP50us, p99: serverP99us });

    let redis: { port: number; stop: () => Promise<void> } | null = null;
    try {
      redis = await startRedis();
    } catch (e) {
      results.push({ name: `redis baseline skipped: ${(e as Error).message}`, unit: '', value: 0 });
    }
    if (redis !== null) {
      try {
        const value = JSON.stringify({ data: [latest.readJson(id, 'MNQZ25')] });
        const set = await load({ host: '127.0.0.1', port: redis.port, protocol: 'resp', request: respCommand('SET', 'latest:MNQZ25', value), connections: 1, warmupMs: 0, durationMs: 50 });
        if (set.errors > 0) throw new Error('SET failed');
        const rb = await redisBenchmark(redis.port, 'latest:MNQZ25', Math.max(20_000, Math.round((uws.rps * durationMs) / 1000)));
        results.push({
          name: `latest route, uWS vs redis-benchmark GET (C client), ${CONNECTIONS} connections`, unit: 'req/s', value: sig(uws.rps),
          baseline: `redis-benchmark -c ${CONNECTIONS} GET (${Buffer.byteLength(value)} B value)`, baselineValue: sig(rb.rps), ratio: sig(uws.rps / rb.rps, 3),
          p50: uws.p50, p99: uws.p99,
        });
        const rjs = await load({ host: '127.0.0.1', port: redis.port, protocol: 'resp', request: respCommand('GET', 'latest:MNQZ25'), connections: CONNECTIONS, warmupMs, durationMs });
        results.push({
          name: `latest route, uWS vs Redis GET with the same JS client, ${CONNECTIONS} connections`, unit: 'req/s', value: sig(uws.rps),
          baseline: 'Redis GET, same JS load client', baselineValue: sig(rjs.rps), ratio: sig(uws.rps / rjs.rps, 3), p50: rjs.p50, p99: rjs.p99,
        });
      } finally {
        await redis.stop();
      }
    }
    await history.close();

    // ---- 3. historical over HTTP ------------------------------------------------------------------------
    results.push(...await historyBench(quick, deps, key));
  } finally {
    keystore.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
};
