/**
 * Front-end benchmarks (issue 5):
 * - `GET /api/v1/ticks/latest` service time in-process: the real route handler (auth, symbol resolution,
 *   seqlock read, answer) called directly with a minimal response object, hdr-histogram percentiles per call
 *   (target p99 < 50 µs): once with the slot unchanged between calls (the cached answer is reused after the
 *   seqlock read) and once with a write before every call (the answer is built every time: the cost without
 *   the cache);
 * - the issue's target, like with like: the route under a 32-connection closed-loop load on loopback from
 *   `wrk` (a C load generator, one thread, keep-alive, latency percentiles from a Lua `done` hook) against
 *   `redis-benchmark -c 32 GET` (a C client, one thread) of a value the size of our answer body on a
 *   redis-server started here; the two alternate, back to back, for several rounds (quick: one) and the
 *   figure is the median of the per-round ratios (target ≥ 1×, our p99 < 1 ms). Without wrk (Debian
 *   package `wrk`) or Redis the rows say why they are missing and the rest still runs;
 * - the same route under the JS load client (bench/api-load.worker.ts, a thread of this process), against
 *   the same handler logic on node:http and against Redis driven by the same JS client (a JS client costs
 *   more CPU per request than wrk and shares this process: it shows the order of things, not ceilings);
 * - the service time the server itself recorded during the wrk rounds (`/metrics` histogram);
 * - `/api/v1/ticks/historical` end to end over HTTP: one day of raw ticks (1 M rows; quick: 200 k) as
 *   Parquet (target < 1 s) and one year of 1-minute bars (quick: 30 days) as Parquet and as JSON (target
 *   < 500 ms), from files laid out as the compactor lays them out (day files, generated here by DuckDB).
 * Two shared cores: the client, the server and Redis compete for them (nothing is pinned), so throughput
 * figures are relative; compare the ratios within one run.
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

/** Whether a command exists on PATH (any exit status counts as present; only "not found" is missing). */
function hasCommand(cmd: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(cmd, args, (err) => { resolve(err === null || (err as NodeJS.ErrnoException).code !== 'ENOENT'); });
  });
}

interface LoadFigures { rps: number; p50: number; p99: number; p999?: number; max: number }

function redisBenchmark(port: number, key: string, n: number): Promise<LoadFigures> {
  return new Promise((resolve, reject) => {
    execFile('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-c', String(CONNECTIONS), '-n', String(n), '--csv', 'GET', key], (err, out) => {
      if (err) { reject(err); return; }
      const line = out.trim().split('\n').find((l) => l.startsWith('"GET'));
      const cells = line?.split(',').map((c) => c.replace(/"/g, '')) ?? [];
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
      const us = (ms: string | undefined): number => Math.round(Number(ms) * 1000);
      const r = { rps: Number(cells[1]), p50: us(cells[4]), p99: us(cells[6]), max: us(cells[7]) };
      if (!(r.rps > 0) || !Number.isFinite(r.p99)) { reject(new Error(`redis-benchmark printed no GET figures: ${out.slice(0, 300)}`)); return; }
      resolve(r);
    });
  });
}

/**
 * wrk's `done` hook: one JSON line with the totals and the latency percentiles (µs) of wrk's own histogram.
 * Errors: connect/read/write/timeout are socket errors; status counts answers that were not 2xx/3xx.
 */
const WRK_LUA = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50":%.0f,"p99":%.0f,"p999":%.0f,"max":%.0f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

interface WrkOut { requests: number; duration_us: number; bytes: number; p50: number; p99: number; p999: number; max: number; connect: number; read: number; write: number; status: number; timeout: number }

/** One wrk run (one thread, CONNECTIONS keep-alive connections, whole seconds). Any error or non-2xx answer throws. */
function wrk(script: string, url: string, key: string, seconds: number, minBytes: number): Promise<LoadFigures> {
  return new Promise((resolve, reject) => {
    const args = ['-t', '1', '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--timeout', '2s', '-s', script, '-H', `Authorization: Bearer ${key}`, url];
    execFile('wrk', args, { timeout: (seconds + 30) * 1000 }, (err, out) => {
      if (err) { reject(err); return; }
      const line = out.split('\n').find((l) => l.startsWith('WRK_RESULT '));
      if (line === undefined) { reject(new Error(`wrk printed no result line: ${out.slice(0, 300)}`)); return; }
      const w = JSON.parse(line.slice('WRK_RESULT '.length)) as WrkOut;
      const errors = w.connect + w.read + w.write + w.status + w.timeout;
      if (w.requests === 0 || errors > 0) { reject(new Error(`wrk: ${w.requests} requests, errors ${JSON.stringify({ connect: w.connect, read: w.read, write: w.write, status: w.status, timeout: w.timeout })}`)); return; }
      // every answer carries at least the body we expect (the 200s were checked above): a short answer means another route answered
      if (w.bytes / w.requests < minBytes) { reject(new Error(`wrk: ${(w.bytes / w.requests).toFixed(0)} bytes per answer, expected at least ${minBytes}`)); return; }
      resolve({ rps: w.requests / (w.duration_us / 1e6), p50: w.p50, p99: w.p99, p999: w.p999, max: w.max });
    });
  });
}

function median(xs: readonly number[]): number {
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 === 1 ? (a[m] as number) : ((a[m - 1] as number) + (a[m] as number)) / 2;
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
    end(b?: string | Uint8Array) { res.body = b === undefined ? '' : typeof b === 'string' ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString(); return res; },
    getRemoteAddressAsText() { return addr; },
  };
  return res as unknown as HttpResponse;
}

function fakeReq(key: string): HttpRequest {
  const auth = `Bearer ${key}`;
  const AUTH = new TextEncoder().encode('authorization');
  // names come as strings or, on the hot path, as bytes (api/http/request.ts): like uWS, take both
  const isAuth = (n: string | Uint8Array): boolean => (typeof n === 'string' ? n === 'authorization' : n.length === AUTH.length && n.every((b, i) => b === AUTH[i]));
  return { getHeader: (n: string | Uint8Array) => (isAuth(n) ? auth : ''), getQuery: () => 'symbols=MNQ' } as unknown as HttpRequest;
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
      duck: () => DuckPool.open({ connections: 1 }), hotPage: createHotPage(), maxBodyBytes: 1 << 20, cors: null,
    };
    const handler = route(services, 'ticks/latest', 'realtime', latestRoute(services));
    const res = fakeRes();
    const req = fakeReq(key);
    const iters = quick ? 20_000 : 300_000;
    const us = (ns: number): number => sig(ns / 1000);
    /** `writeEvery`: rewrite the slot before every call (same values, so the answer only differs in its counters). */
    const serviceTime = (writeEvery: boolean): hdr.Histogram => {
      const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 1_000_000_000, numberOfSignificantValueDigits: 3 });
      let updates = 1;
      for (let i = 0; i < Math.min(20_000, iters); i++) { // warm up (JIT)
        if (writeEvery) { latest.writeTick(id, t, 21000.25, 3, 1, 123456, 21000, 7, 21000.25, 9); updates++; }
        handler(res, req);
      }
      for (let i = 0; i < iters; i++) {
        if (writeEvery) { latest.writeTick(id, t, 21000.25, 3, 1, 123456, 21000, 7, 21000.25, 9); updates++; }
        const a = performance.now();
        handler(res, req);
        h.recordValue(Math.max(1, Math.round((performance.now() - a) * 1e6))); // ns
      }
      // the answer must be the table's current state (a stale cached answer would show an old update count)
      const body = (res as unknown as { body: string }).body;
      if (!body.includes('"price":21000.25') || !body.includes(`"updates":${updates},`)) throw new Error(`latest handler answered something else: ${body}`);
      return h;
    };
    const hit = serviceTime(false);
    results.push({
      name: 'latest route service time, in-process (auth + resolve + seqlock read + cached answer)', unit: 'µs (p99)', value: us(hit.getValueAtPercentile(99)),
      p50: us(hit.getValueAtPercentile(50)), p99: us(hit.getValueAtPercentile(99)), p999: us(hit.getValueAtPercentile(99.9)), max: us(hit.maxValue),
    });
    const miss = serviceTime(true);
    results.push({
      name: 'latest route service time, in-process, slot written before every call (answer built: no cache)', unit: 'µs (p99)', value: us(miss.getValueAtPercentile(99)),
      baseline: 'p50 with the cached answer (previous row)', baselineValue: us(hit.getValueAtPercentile(50)), ratio: sig(miss.getValueAtPercentile(50) / hit.getValueAtPercentile(50), 3),
      p50: us(miss.getValueAtPercentile(50)), p99: us(miss.getValueAtPercentile(99)), p999: us(miss.getValueAtPercentile(99.9)), max: us(miss.maxValue),
    });
    // the same table state for everything below (the Redis value is a copy of this answer)
    latest.writeTick(id, t, 21000.25, 3, 1, 123456, 21000, 7, 21000.25, 9);

    // ---- 2. loopback load, like with like: wrk vs redis-benchmark, both C, alternating rounds ------------
    const durationMs = quick ? 1000 : 5000;
    const warmupMs = quick ? 300 : 1000;
    const rounds = quick ? 1 : 5;
    const api = await createApi(deps, { historyFile: null });
    const server = await api.listen('127.0.0.1', 0);
    const url = `http://127.0.0.1:${server.port}${PATH}`;
    const answer = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
    const value = await answer.text();
    if (answer.status !== 200 || !value.includes('"price":21000.25')) throw new Error(`latest route answered ${answer.status}: ${value.slice(0, 200)}`);
    const valueBytes = Buffer.byteLength(value);

    const haveWrk = await hasCommand('wrk', ['-v']);
    const haveRedisBench = await hasCommand('redis-benchmark', ['--version']);
    let redis: { port: number; stop: () => Promise<void> } | null = null;
    let redisMissing = '';
    try {
      redis = await startRedis();
    } catch (e) {
      redisMissing = (e as Error).message;
    }
    try {
      if (redis !== null) {
        const set = await load({ host: '127.0.0.1', port: redis.port, protocol: 'resp', request: respCommand('SET', 'latest:MNQZ25', value), connections: 1, warmupMs: 0, durationMs: 50 });
        if (set.errors > 0 || set.requests === 0) throw new Error('SET of the Redis baseline value failed');
      }
      const missing = !haveWrk ? 'wrk is not installed (Debian package wrk)' : redis === null ? `redis-server did not start (${redisMissing})`
        : !haveRedisBench ? 'redis-benchmark is not installed (Debian package redis-tools)' : '';
      if (missing !== '') {
        results.push({ name: `latest route, uWS (wrk) vs redis-benchmark GET, ${CONNECTIONS} connections: skipped, ${missing}`, unit: '', value: 0 });
      } else if (redis !== null) {
        const dir2 = join(dir, 'wrk');
        mkdirSync(dir2, { recursive: true });
        const script = join(dir2, 'report.lua');
        writeFileSync(script, WRK_LUA);
        const seconds = Math.max(1, Math.round(durationMs / 1000));
        await wrk(script, url, key, Math.max(1, Math.round(warmupMs / 1000)), valueBytes); // warm up the server (JIT), not recorded
        const ours: LoadFigures[] = [];
        const theirs: LoadFigures[] = [];
        let redisRps = 50_000;
        const runRedis = async (): Promise<void> => {
          const r = await redisBenchmark(redis!.port, 'latest:MNQZ25', Math.max(20_000, Math.round(redisRps * seconds)));
          redisRps = r.rps;
          theirs.push(r);
        };
        for (let round = 0; round < rounds; round++) {
          // alternate who goes first, so a drift in machine load does not always favour the same side
          if (round % 2 === 1) await runRedis();
          ours.push(await wrk(script, url, key, seconds, valueBytes));
          if (round % 2 === 0) await runRedis();
          const o = ours[round] as LoadFigures;
          const r = theirs[round] as LoadFigures;
          process.stderr.write(`api: round ${round + 1}/${rounds} (${round % 2 === 1 ? 'redis first' : 'wrk first'}): uWS+wrk ${sig(o.rps / 1000, 3)} k req/s p50 ${o.p50} p99 ${o.p99} p99.9 ${o.p999 ?? '-'} µs | ` +
            `redis-benchmark ${sig(r.rps / 1000, 3)} k req/s p50 ${r.p50} p99 ${r.p99} µs | ratio ${sig(o.rps / r.rps, 3)}\n`);
        }
        const ratios = ours.map((o, i) => o.rps / (theirs[i] as LoadFigures).rps);
        const med = (xs: LoadFigures[], k: keyof LoadFigures): number => median(xs.map((x) => x[k] as number));
        const range = ratios.length > 1 ? `, per-round ratios ${sig(Math.min(...ratios), 3)}–${sig(Math.max(...ratios), 3)}×` : '';
        results.push({
          name: `latest route, uWS under wrk (C, 1 thread) vs redis-benchmark GET (C, 1 thread), ${CONNECTIONS} connections, median of ${rounds} alternating round${rounds > 1 ? 's' : ''} (target ≥ 1×)`,
          unit: 'req/s', value: sig(med(ours, 'rps')),
          baseline: `redis-benchmark -c ${CONNECTIONS} GET of a ${valueBytes} B value (our answer body; HTTP adds its headers)${range}`,
          baselineValue: sig(med(theirs, 'rps')), ratio: sig(median(ratios), 3),
          p50: sig(med(ours, 'p50')), p99: sig(med(ours, 'p99')), p999: sig(med(ours, 'p999')), max: sig(Math.max(...ours.map((o) => o.max))),
        });
        results.push({
          name: `latest route, client-side latency under wrk -c ${CONNECTIONS} (median of rounds; target p99 < 1 ms)`, unit: 'µs (p99)', value: sig(med(ours, 'p99')),
          baseline: `redis-benchmark -c ${CONNECTIONS} GET p99 (same rounds)`, baselineValue: sig(med(theirs, 'p99')), ratio: sig(med(ours, 'p99') / med(theirs, 'p99'), 3),
          p50: sig(med(ours, 'p50')), p99: sig(med(ours, 'p99')), p999: sig(med(ours, 'p999')), max: sig(Math.max(...ours.map((o) => o.max))),
        });
        results.push({
          name: `redis-benchmark -c ${CONNECTIONS} GET latency (median of the same rounds)`, unit: 'µs (p99)', value: sig(med(theirs, 'p99')),
          p50: sig(med(theirs, 'p50')), p99: sig(med(theirs, 'p99')), max: sig(Math.max(...theirs.map((o) => o.max))),
        });
        const serverP99us = sig(api.metrics.httpQuantile('ticks/latest', 0.99) * 1e6);
        const serverP50us = sig(api.metrics.httpQuantile('ticks/latest', 0.5) * 1e6);
        results.push({ name: 'latest route, uWS, server-side service time during the wrk rounds (hdr, /metrics)', unit: 'µs (p99)', value: serverP99us, p50: serverP50us, p99: serverP99us });
      }

      // ---- 2b. the JS load client (a thread of this process): uWS, node:http, Redis -------------------------
      const uws = await load({ host: '127.0.0.1', port: server.port, protocol: 'http', request: httpRequest(key), connections: CONNECTIONS, warmupMs, durationMs });
      if (uws.errors > 0) throw new Error(`JS load client: ${uws.errors} errors against uWS`);

      // node:http with the same logic (auth, resolve, seqlock read, JSON)
      const nodeServer: Server = createHttpServer((rq, rs) => {
        const u = new URL(rq.url ?? '/', 'http://x');
        const m = /^Bearer (\S+)$/.exec(rq.headers.authorization ?? '');
        if (u.pathname !== '/api/v1/ticks/latest' || keystore.authenticate(m?.[1]) === null) { rs.writeHead(401).end(); return; }
        const data = (u.searchParams.get('symbols') ?? '').split(',').map((sym) => {
          const sid = registry.resolve(sym, T_NOW * 1000);
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
      if (redis !== null) {
        const rjs = await load({ host: '127.0.0.1', port: redis.port, protocol: 'resp', request: respCommand('GET', 'latest:MNQZ25'), connections: CONNECTIONS, warmupMs, durationMs });
        results.push({
          name: `latest route, uWS vs Redis GET with the same JS client, ${CONNECTIONS} connections`, unit: 'req/s', value: sig(uws.rps),
          baseline: 'Redis GET, same JS load client', baselineValue: sig(rjs.rps), ratio: sig(uws.rps / rjs.rps, 3), p50: rjs.p50, p99: rjs.p99,
        });
      } else {
        results.push({ name: `latest route, uWS vs Redis GET with the same JS client: skipped, redis-server did not start (${redisMissing})`, unit: '', value: 0 });
      }
    } finally {
      await api.close();
      await redis?.stop();
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
