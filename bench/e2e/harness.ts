/**
 * End-to-end bench harness (issue 6 item 4): real `.scid` files → source worker → ring → validator →
 * hot window, latest table, journal, feed → WebSocket hub → `ws` clients, and → Redis sink when a Redis
 * answers. Two modes:
 * - paced (`runPaced`): a writer thread appends `rate` ticks/s for `seconds`, stamped with the wall clock;
 *   observers measure tick-to-latest-table, tick-to-WebSocket and tick-to-Redis latency; every stage's
 *   count and Σ ticks × size is compared with what was written.
 * - max (`runMax`): a backlog of N ticks is written first, then the engine starts and ingests it as fast
 *   as it can; ticks/s from engine start to the last tick journaled (and fed), with the same checks.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance as perf } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { DuckDBInstance } from '@duckdb/node-api';
import { Redis } from 'ioredis';
import { ensureLocalKey } from '../../api/auth/keystore.ts';
import { demoSymbols, loadConfig } from '../../engine/config.ts';
import { Engine } from '../../engine/engine.ts';
import { HotColumns } from '../../engine/hot/hot-columns.ts';
import { Journal } from '../../engine/journal/journal.ts';
import { F_TRADE_COUNT } from '../../engine/latest/layout.ts';
import { spawnWorker } from '../../engine/worker-host.ts';
import { RecordKind, readF64, readKind, readSymbolId, readTsMicros, readU32 } from '../../schemas/records.ts';
import { ScidWriter } from '../../workers/sierra/scid-writer.ts';
import { CompactionService } from '../../workers/compactor/service.ts';
import { scidFileName } from '../../workers/sim/sim-files.ts';
import { buildNative, WS_CLIENT_SRC } from '../native/build.ts';
import { startNativeClients, type NativeClients } from './native-clients.ts';
import {
  basePriceOf, latencyHistogram, nowMicros, recordLatency, summarize, TICK, tickSum, TickGen, type LatencySummary, type ObserverData, type ObserverDone, type SymbolTotals, type WriterData,
  type WriterDone, type WsClientTotals,
} from './stats.ts';

export const REDIS_CHANNEL = 'market_data:sierra:trades';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface StageCheck {
  stage: string;
  count: number;
  expectedCount: number;
  /** Σ ticks × size seen (null: the stage keeps no sum, e.g. the latest table holds the newest trade only) */
  sum: number | null;
  expectedSum: number;
  ok: boolean;
  note?: string;
}

export interface PacedOptions {
  rate: number;
  /** the measured window; latency percentiles are of the ticks written in it */
  seconds: number;
  /**
   * Writing at the same rate before the measured window (default 0): the first second of ticks through a
   * freshly started process runs while a dozen isolates compile their hot paths (the main thread measured
   * waiting 20-70 ms for a CPU then). Its ticks are counted and checked for loss like all the others; their
   * latency is reported apart (`latencyAll`).
   */
  warmupSeconds?: number;
  clients: number;
  /** frames the WebSocket clients ask for: all binary FlatBuffers, all JSON, or split (binary gets the odd one) */
  wsFormat: 'binary' | 'json' | 'both';
  /** 'auto': use Redis at 127.0.0.1:6379 when it answers */
  redis: 'auto' | 'off';
  redisDb: number;
  /**
   * The WebSocket clients: 'native' (default: bench/native/ws-client.cc, one process per format, built with
   * g++; the JS clients when it cannot be built) or 'js' (`ws` clients in two worker threads of this process).
   */
  wsClients?: 'native' | 'js';
  log: (msg: string) => void;
}

/** One format's WebSocket clients, native or JS, behind one interface. */
interface WsFleet {
  ready: Promise<unknown>;
  /** start of the measured window, Unix µs */
  from(micros: number): void;
  stop(): Promise<{ latency: LatencySummary; latencyAll: LatencySummary; clients: WsClientTotals[]; errors: string[]; utilization: number }>;
}

export interface PacedResult {
  rate: number;
  seconds: number;
  warmupSeconds: number;
  written: number;
  writer: WriterDone;
  stages: StageCheck[];
  /** ws: the binary clients (the JSON ones when there are no binary clients); wsJson: the JSON clients when both ran */
  latency: { latest: LatencySummary; feed: LatencySummary; ws: LatencySummary; wsJson: LatencySummary | null; redis: LatencySummary | null };
  /** the same over every tick, the warm-up's included */
  latencyAll: { feed: LatencySummary; ws: LatencySummary; wsJson: LatencySummary | null };
  /** WebSocket clients per format, and what they were */
  wsClients: { binary: number; json: number; kind: 'native' | 'js'; note?: string };
  redis: boolean;
  lost: number;
  errors: string[];
  /** the engine's main thread (uWS, feed, hub) during the measured window: event-loop utilisation and delay (ms) */
  mainThread: { utilization: number; delayP50: number; delayP99: number; delayMax: number; processCpuCores: number };
  /** event-loop utilisation of the observer threads during the run (native clients: their process's CPU, in cores) */
  observerUtilization: Record<string, number>;
}

export interface MaxOptions {
  ticks: number;
  /** TICKPIPE_RING_SLOTS for this run (default: the engine's default) */
  ringSlots?: number;
  log: (msg: string) => void;
}

export interface MaxResult {
  ticks: number;
  /** engine start (workers booting) → last tick journaled and fed */
  secondsFromStart: number;
  /** first tick in the hot window → last tick in the hot window and fed to the main thread (live counters) */
  secondsIngest: number;
  /** first tick in the hot window → the validator reports all journaled and committed (stats refresh every 200 ms) */
  secondsToJournaled: number;
  ticksPerSecond: number;
  peakRssMb: number;
  ringSlots: number;
  stages: StageCheck[];
  lost: number;
}

interface Setup { dir: string; src: string; dataDir: string; symbols: string[]; files: Array<{ symbol: string; path: string }> }

async function setup(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-bench-e2e-'));
  const src = join(dir, 'sierra');
  const dataDir = join(dir, 'data');
  mkdirSync(src);
  mkdirSync(dataDir);
  const symbols = demoSymbols();
  const files = symbols.map((symbol) => ({ symbol, path: join(src, scidFileName(symbol, '_FUT_CME')) }));
  for (const f of files) {
    const w = ScidWriter.open(f.path);
    w.flushSync();
    await w.close();
  }
  return { dir, src, dataDir, symbols, files };
}

function engineEnv(s: Setup, ticksPerSymbol: number, redisUrl: string | null, ringSlots?: number): Record<string, string> {
  return {
    TICKPIPE_DATA_DIR: s.dataDir, TICKPIPE_PORT: '0', TICKPIPE_HOST: '127.0.0.1', TICKPIPE_DEMO: '0', TICKPIPE_SIERRA_DIR: s.src,
    TICKPIPE_SYMBOLS: s.symbols.join(','), TICKPIPE_SESSION_CALENDAR: '24x7',
    TICKPIPE_HOT_CAPACITY: String(2 ** Math.ceil(Math.log2(Math.max(65_536, ticksPerSymbol * 1.1)))),
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    ...(ringSlots ? { TICKPIPE_RING_SLOTS: String(ringSlots) } : {}),
    // the operator's choice of background priority applies to the bench's engine too
    ...(process.env.TICKPIPE_BACKGROUND_NICE !== undefined ? { TICKPIPE_BACKGROUND_NICE: process.env.TICKPIPE_BACKGROUND_NICE } : {}),
  };
}

function quietLog(errors: string[]): { info: (m: string) => void; warn: (m: string) => void } {
  return { info: () => undefined, warn: (m) => { if (errors.length < 20) errors.push(m); } };
}

function message<M>(w: Worker, type: string, timeoutMs: number): Promise<M> {
  return new Promise<M>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${type} from worker within ${timeoutMs} ms`)); }, timeoutMs);
    const onMsg = (m: { type?: string }): void => { if (m.type === type) { cleanup(); resolve(m as M); } };
    const onErr = (e: Error): void => { cleanup(); reject(e); };
    const onExit = (c: number): void => { cleanup(); reject(new Error(`worker exited (${c}) before ${type}`)); };
    function cleanup(): void { clearTimeout(timer); w.off('message', onMsg); w.off('error', onErr); w.off('exit', onExit); }
    w.on('message', onMsg);
    w.on('error', onErr);
    w.on('exit', onExit);
  });
}

async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
  return true;
}

async function tryRedis(db: number): Promise<Redis | null> {
  const r = new Redis({ host: '127.0.0.1', port: 6379, db, lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.flushdb();
    return r;
  } catch {
    r.disconnect();
    return null;
  }
}

function check(stage: string, count: number, sum: number | null, exp: SymbolTotals, note?: string): StageCheck {
  return { stage, count, expectedCount: exp.count, sum, expectedSum: exp.sum, ok: count === exp.count && (sum === null || sum === exp.sum), ...(note ? { note } : {}) };
}

function totalOf(t: Record<string, SymbolTotals>): SymbolTotals {
  let count = 0;
  let sum = 0;
  for (const v of Object.values(t)) { count += v.count; sum += v.sum; }
  return { count, sum };
}

/** Hot window: count and Σ per symbol of what it holds. */
function hotTotals(engine: Engine, ids: Record<string, number>): Record<string, SymbolTotals> {
  const out: Record<string, SymbolTotals> = {};
  for (const [s, id] of Object.entries(ids)) {
    const n = engine.hot.count(id);
    const cols = new HotColumns(Math.max(1, n));
    const got = engine.hot.newest(id, n, cols);
    let sum = 0;
    for (let i = 0; i < got; i++) sum += tickSum(cols.price[i]!, cols.size[i]!);
    out[s] = { count: got, sum };
  }
  return out;
}

/** The journal (read after engine.close()): count and Σ per symbol of its TRADE records. */
async function journalTotals(dataDir: string, ids: Record<string, number>): Promise<Record<string, SymbolTotals>> {
  const byId: string[] = [];
  const out: Record<string, SymbolTotals> = {};
  for (const [s, id] of Object.entries(ids)) { byId[id] = s; out[s] = { count: 0, sum: 0 }; }
  const j = Journal.open({ dataDir, commitIntervalMs: 0 });
  try {
    j.replay('open-hours', (v, off, count) => {
      for (let k = 0; k < count; k++) {
        const b = off + k * 64;
        if (readKind(v, b) !== RecordKind.TRADE) continue;
        const t = out[byId[readSymbolId(v, b)] ?? ''];
        if (!t) continue;
        t.count++;
        t.sum += tickSum(readF64(v, b, 16), readU32(v, b, 40));
      }
    });
  } finally {
    await j.close();
  }
  return out;
}

/**
 * Parquet: compact every hour of the journal (a CompactionService over the closed engine's data dir with a
 * clock two hours ahead, journals kept), then count and sum the tick files with DuckDB, per symbol. Hours
 * the engine compacted itself during the run are in the same tree.
 */
async function parquetTotals(dataDir: string, ids: Record<string, number>): Promise<{ totals: Record<string, SymbolTotals>; hours: number }> {
  const byId: string[] = [];
  for (const [s, id] of Object.entries(ids)) byId[id] = s;
  const svc = new CompactionService({
    dataDir, symbolName: (id) => byId[id], deleteJournalHour: async () => undefined, now: () => Date.now() + 2 * 3_600_000,
    consolidateAfterMs: 1e12, threads: 1,
  });
  let hours = 0;
  try {
    await svc.runOnce();
    const st = svc.status();
    hours = st.hoursCompacted;
    if (st.lastError) throw new Error(`compaction failed: ${st.lastError.code} ${st.lastError.message}`);
  } finally {
    await svc.close();
  }
  const out: Record<string, SymbolTotals> = {};
  for (const s of Object.keys(ids)) out[s] = { count: 0, sum: 0 };
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  try {
    const glob = join(dataDir, 'ticks', 'symbol=*', 'date=*', 'hour=*.parquet').replace(/'/g, "''");
    const reader = await conn.runAndReadAll(
      `SELECT symbol, count(*)::DOUBLE, sum(CAST(round(price * 4) AS BIGINT) * size)::DOUBLE FROM read_parquet('${glob}', hive_partitioning = true) WHERE price IS NOT NULL GROUP BY symbol`,
    );
    for (const [sym, n, sum] of reader.getRows()) {
      const t = out[String(sym)];
      if (t) { t.count = Number(n); t.sum = Number(sum); }
    }
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
  return { totals: out, hours };
}

/**
 * The engine compacts a closed hour 10 s after its end and then deletes it from the journal: a run that
 * straddles an hour boundary would see the journal stage short. Wait until the boundary is past instead.
 */
async function avoidHourBoundary(seconds: number, log: (m: string) => void): Promise<void> {
  const now = Date.now();
  const next = Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000;
  if (now + (seconds + 30) * 1000 < next) return;
  const wait = next + 15_000 - now;
  log(`paced: the run would straddle the hour boundary (compaction would move the closed hour out of the journal); waiting ${(wait / 1000).toFixed(0)} s`);
  await sleep(wait);
}

function latestCounts(engine: Engine, ids: Record<string, number>): Record<string, number> {
  const raw = new Float64Array(16);
  const out: Record<string, number> = {};
  for (const [s, id] of Object.entries(ids)) out[s] = engine.latest.readRaw(id, raw) ? raw[F_TRADE_COUNT]! : -1;
  return out;
}

async function redisTotals(r: Redis, symbols: string[]): Promise<{ xlen: Record<string, number>; sums: Record<string, SymbolTotals> }> {
  const xlen: Record<string, number> = {};
  const sums: Record<string, SymbolTotals> = {};
  for (const s of symbols) {
    xlen[s] = await r.xlen(`ticks:${s}`);
    const t: SymbolTotals = { count: 0, sum: 0 };
    let start = '-';
    for (;;) {
      const page = await r.xrange(`ticks:${s}`, start, '+', 'COUNT', 20_000);
      for (const [, fields] of page) {
        let price = NaN;
        let size = NaN;
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] === 'price') price = Number(fields[i + 1]);
          else if (fields[i] === 'size') size = Number(fields[i + 1]);
        }
        t.count++;
        t.sum += tickSum(price, size);
      }
      if (page.length < 20_000) break;
      start = `(${page[page.length - 1]![0]}`;
    }
    sums[s] = t;
  }
  return { xlen, sums };
}

export async function runPaced(o: PacedOptions): Promise<PacedResult> {
  const s = await setup();
  const errors: string[] = [];
  const redis = o.redis === 'auto' ? await tryRedis(o.redisDb) : null;
  const redisUrl = redis ? `redis://127.0.0.1:6379/${o.redisDb}` : null;
  const warmup = o.warmupSeconds ?? 0;
  const writeSeconds = warmup + o.seconds;
  o.log(`paced: ${o.rate} ticks/s for ${o.seconds} s after a ${warmup} s warm-up, ${s.symbols.join(', ')}, ${o.clients} WebSocket clients, Redis ${redis ? `db ${o.redisDb}` : 'not used'}`);
  const { key } = ensureLocalKey(s.dataDir) ?? { key: '' };
  await avoidHourBoundary(writeSeconds, o.log);
  const expectedPerSymbol = Math.ceil((o.rate * writeSeconds) / s.symbols.length);
  let engine: Engine | null = null;
  const workers: Worker[] = [];
  const nativeClients: NativeClients[] = [];
  let nativeDir: string | null = null;
  try {
    engine = await Engine.start(loadConfig(engineEnv(s, expectedPerSymbol, redisUrl)), quietLog(errors));
    const e = engine;
    const ids: Record<string, number> = Object.fromEntries(s.symbols.map((x) => [x, e.registry.requireId(x)]));
    const symIds = s.symbols.map((symbol) => ({ symbol, id: ids[symbol]! }));
    // [0]: start of the measured window (Unix µs), set when the writer starts; 0 until then
    const clockBuf = new SharedArrayBuffer(8);
    const clock = new Float64Array(clockBuf);
    const observer = (data: Omit<ObserverData, 'clock'>): Worker => {
      const w = spawnWorker(new URL('./observer.worker.ts', import.meta.url), { ...data, clock: clockBuf } satisfies ObserverData, { name: `e2e-${data.mode}` });
      workers.push(w);
      return w;
    };
    const latestW = observer({ mode: 'latest', symbols: symIds, latest: e.latest.buffer });
    const nBin = o.wsFormat === 'binary' ? o.clients : o.wsFormat === 'json' ? 0 : Math.ceil(o.clients / 2);
    const nJson = o.clients - nBin;
    const wsPath = (format: 'json' | 'binary'): string => `/ws?format=${format}&token=${encodeURIComponent(key)}`;
    const stopAndCollect = async (w: Worker): Promise<ObserverDone> => {
      const p = message<ObserverDone>(w, 'observer-done', 30_000);
      w.postMessage({ type: 'stop' });
      return p;
    };
    const jsFleet = (format: 'json' | 'binary', clients: number): WsFleet => {
      const w = observer({ mode: 'ws', symbols: symIds, url: `ws://127.0.0.1:${e.port}${wsPath(format)}`, format, clients });
      return { ready: message(w, 'observer-ready', 60_000), from: () => undefined, stop: () => stopAndCollect(w) }; // terminated with the other workers
    };
    let nativeWall0 = 0;
    const nativeFleet = (bin: string, format: 'json' | 'binary', clients: number): WsFleet => {
      const f = startNativeClients(bin, e.port, wsPath(format), clients, symIds);
      nativeClients.push(f); // killed in the finally below
      return {
        ready: f.ready, from: (us) => f.from(us),
        stop: async () => { const r = await f.stop(); return { ...r, utilization: r.cpuMicros / 1000 / Math.max(1, performance.now() - nativeWall0) }; },
      };
    };
    let kind: 'native' | 'js' = o.wsClients ?? 'native';
    let kindNote: string | undefined;
    let bin: string | null = null;
    if (kind === 'native') {
      const built = buildNative({ client: WS_CLIENT_SRC });
      if ('missing' in built) { kind = 'js'; kindNote = `native clients unavailable (${built.missing}): JS clients instead`; o.log(`paced: ${kindNote}`); }
      else { bin = built.bins.client; nativeDir = built.dir; }
    }
    const fleet = (format: 'json' | 'binary', clients: number): WsFleet => (bin !== null ? nativeFleet(bin, format, clients) : jsFleet(format, clients));
    const wsW = fleet(nBin > 0 ? 'binary' : 'json', nBin > 0 ? nBin : nJson);
    const wsJsonW = nBin > 0 && nJson > 0 ? fleet('json', nJson) : null;
    const redisW = redis ? observer({ mode: 'redis', symbols: symIds, redisUrl: redisUrl!, channel: REDIS_CHANNEL }) : null;
    await Promise.all([message(latestW, 'observer-ready', 60_000), wsW.ready, ...(wsJsonW ? [wsJsonW.ready] : []), ...(redisW ? [message(redisW, 'observer-ready', 60_000)] : [])]);
    // tick → the main thread's record feed (what the hub gets): splits the WebSocket latency into
    // upstream (source, validator, feed ring, main-thread wake-up) and hub + socket + client
    const feedHist = latencyHistogram();
    const feedHistAll = latencyHistogram();
    const unsubscribeFeed = e.feed.subscribe({
      onRecord: (v, b) => {
        if (readKind(v, b) !== RecordKind.TRADE) return;
        const ts = readTsMicros(v, b);
        const us = nowMicros() - ts;
        recordLatency(feedHistAll, us);
        if (ts >= clock[0]!) recordLatency(feedHist, us);
      },
      onBatchEnd: () => undefined,
    });
    const control = new SharedArrayBuffer(4);
    const writer = spawnWorker(new URL('./writer.worker.ts', import.meta.url), { files: s.files, rate: o.rate, seconds: writeSeconds, control, seed: 12345 } satisfies WriterData, { name: 'e2e-writer' });
    workers.push(writer);
    await message(writer, 'writer-ready', 60_000);
    const writerDone = message<WriterDone>(writer, 'writer-done', writeSeconds * 1000 + 120_000);
    const ctl = new Int32Array(control);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    let elu0 = perf.eventLoopUtilization();
    let cpu0 = process.cpuUsage();
    let wall0 = performance.now();
    // the main thread's figures cover the measured window: start them when the warm-up ends
    const startMeasuring = (): void => {
      delay.enable();
      elu0 = perf.eventLoopUtilization();
      cpu0 = process.cpuUsage();
      wall0 = performance.now();
    };
    const warmupTimer = warmup > 0 ? setTimeout(startMeasuring, warmup * 1000) : null;
    clock[0] = Math.floor(nowMicros()) + warmup * 1_000_000;
    wsW.from(clock[0]);
    wsJsonW?.from(clock[0]);
    nativeWall0 = performance.now();
    if (warmupTimer === null) startMeasuring();
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    const wd = await writerDone;
    if (warmupTimer !== null) clearTimeout(warmupTimer);
    const elu = perf.eventLoopUtilization(elu0);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - wall0;
    delay.disable();
    const mainThread = {
      utilization: elu.utilization, delayP50: delay.percentile(50) / 1e6, delayP99: delay.percentile(99) / 1e6, delayMax: delay.max / 1e6,
      processCpuCores: (cpu.user + cpu.system) / 1000 / wallMs,
    };
    const exp = totalOf(wd.totals);
    o.log(`paced: ${exp.count} ticks written in ${wd.seconds.toFixed(1)} s (warm-up included) (${wd.flushes} flushes, at most ${wd.maxBacklog} ticks behind schedule); draining`);
    // drained: validated and journaled, fed to the hub, sent to every client, in Redis
    await waitUntil(() => {
      const v = e.validatorStats();
      return (v.records ?? 0) >= exp.count && v.journalCommittedSeq === v.journalAppendedSeq && e.feed.counters.trades + (v.feedDropped ?? 0) >= exp.count;
    }, 60_000);
    await waitUntil(() => (e.hub?.stats().ticksOut ?? 0) >= exp.count * o.clients, 30_000);
    if (redis) {
      await waitUntil(async () => {
        let n = 0;
        for (const x of s.symbols) n += await redis.xlen(`ticks:${x}`);
        return n >= exp.count;
      }, 30_000);
    }
    await sleep(500); // frames on the wire reach the clients
    unsubscribeFeed();
    const [latestR, wsR, wsJsonR, redisR] = await Promise.all([
      stopAndCollect(latestW), wsW.stop(), wsJsonW ? wsJsonW.stop() : Promise.resolve(null), redisW ? stopAndCollect(redisW) : Promise.resolve(null),
    ]);
    for (const r of [latestR, wsR, wsJsonR, redisR]) if (r) errors.push(...r.errors);

    const stages: StageCheck[] = [];
    const v = e.validatorStats();
    stages.push(check('written (.scid files)', exp.count, exp.sum, exp));
    stages.push(check('validator: accepted and journaled', v.journaled ?? 0, null, exp, `records ${v.records}, quarantined ${v.quarantined}, feed dropped ${v.feedDropped}, redis dropped ${v.redisDropped ?? 0}, journal commits ${v.commits} (slowest ${((v.maxCommitMicros ?? 0) / 1000).toFixed(1)} ms)`));
    const lc = latestCounts(e, ids);
    stages.push(check('latest table: trade count', Object.values(lc).reduce((a, b) => a + b, 0), null, exp, `per symbol ${JSON.stringify(lc)}; updates observed by the poller ${latestR.latency.count}`));
    const hot = totalOf(hotTotals(e, ids));
    stages.push(check('hot window', hot.count, hot.sum, exp));
    stages.push(check('feed (main thread)', e.feed.counters.trades, null, exp));
    const wsAll = [...wsR.clients.map((cl) => ({ cl, format: nBin > 0 ? 'binary' : 'JSON' })), ...(wsJsonR?.clients ?? []).map((cl) => ({ cl, format: 'JSON' }))];
    for (let c = 0; c < wsAll.length; c++) {
      const { cl, format } = wsAll[c]!;
      const t = totalOf(cl.symbols);
      const breaks = Object.values(cl.symbols).reduce((a, x) => a + x.seqBreaks, 0);
      const perSym = s.symbols.every((x) => cl.symbols[x]!.count === wd.totals[x]!.count && cl.symbols[x]!.sum === wd.totals[x]!.sum);
      const st = check(`WebSocket client ${c + 1} (${format})`, t.count, t.sum, exp, `${kind === 'native' ? 'native, ' : ''}seq breaks ${breaks}${cl.closed ? `, closed ${cl.closed}` : ''}`);
      st.ok = st.ok && breaks === 0 && perSym;
      stages.push(st);
    }
    let redisMsgs: SymbolTotals | null = null;
    if (redis && redisR) {
      const rt = await redisTotals(redis, s.symbols);
      const sums = totalOf(rt.sums);
      const xlenTotal = Object.values(rt.xlen).reduce((a, b) => a + b, 0);
      const st = check('Redis streams (XLEN, XRANGE Σ)', xlenTotal, sums.sum, exp, `XLEN ${JSON.stringify(rt.xlen)}`);
      st.ok = st.ok && sums.count === xlenTotal;
      stages.push(st);
      redisMsgs = totalOf(redisR.clients[0]!.symbols);
      stages.push(check('Redis pub/sub channel messages', redisMsgs.count, redisMsgs.sum, exp));
    }
    await e.close();
    engine = null;
    const jt = totalOf(await journalTotals(s.dataDir, ids));
    stages.splice(2, 0, check('journal (read back after close)', jt.count, jt.sum, exp));
    const pq = await parquetTotals(s.dataDir, ids);
    const pt = totalOf(pq.totals);
    stages.splice(3, 0, check('Parquet (hours compacted after close, DuckDB)', pt.count, pt.sum, exp, `${pq.hours} hour(s) compacted after close`));
    const lost = stages.reduce((a, x) => a + Math.max(0, x.expectedCount - x.count), 0);
    return {
      rate: o.rate, seconds: o.seconds, warmupSeconds: warmup, written: exp.count, writer: wd, stages,
      latency: { latest: latestR.latency, feed: summarize(feedHist), ws: wsR.latency, wsJson: wsJsonR?.latency ?? null, redis: redisR?.latency ?? null },
      latencyAll: { feed: summarize(feedHistAll), ws: wsR.latencyAll, wsJson: wsJsonR?.latencyAll ?? null },
      wsClients: { binary: nBin, json: nJson, kind, ...(kindNote ? { note: kindNote } : {}) }, redis: redis !== null, lost, errors, mainThread,
      observerUtilization: {
        latest: latestR.utilization, [`${kind === 'native' ? 'native ' : ''}${nBin > 0 ? 'ws binary' : 'ws JSON'}`]: wsR.utilization,
        ...(wsJsonR ? { [`${kind === 'native' ? 'native ' : ''}ws JSON`]: wsJsonR.utilization } : {}), ...(redisR ? { redis: redisR.utilization } : {}),
      },
    };
  } finally {
    await Promise.all([...workers.map((w) => w.terminate()), ...nativeClients.map((f) => f.kill())]);
    await engine?.close().catch(() => undefined);
    if (redis) { await redis.flushdb().catch(() => undefined); redis.disconnect(); }
    rmSync(s.dir, { recursive: true, force: true });
    if (nativeDir !== null) rmSync(nativeDir, { recursive: true, force: true });
  }
}

/** Write N ticks (round robin over the symbols) to the files before the engine starts. */
async function writeBacklog(s: Setup, n: number): Promise<Record<string, SymbolTotals>> {
  const writers = s.files.map((f) => ScidWriter.open(f.path, { append: true, bufferRecords: 1 << 15 }));
  const gens = s.files.map((f, i) => new TickGen(basePriceOf(f.symbol), 777 + i));
  const totals: SymbolTotals[] = s.files.map(() => ({ count: 0, sum: 0 }));
  // 1 µs apart, ending a second ago (all in the past, strictly increasing)
  const t0 = Math.floor(Date.now() * 1000) - n - 1_000_000;
  for (let i = 0; i < n; i++) {
    const k = i % writers.length;
    const g = gens[k]!;
    const { size, side } = g.step();
    writers[k]!.trade(t0 + i, g.price, g.price - TICK, g.price + TICK, size, side, 0);
    totals[k]!.count++;
    totals[k]!.sum += tickSum(g.price, size);
  }
  for (const w of writers) w.flushSync();
  await Promise.all(writers.map((w) => w.close()));
  return Object.fromEntries(s.files.map((f, i) => [f.symbol, totals[i]!]));
}

export async function runMax(o: MaxOptions): Promise<MaxResult> {
  const s = await setup();
  const errors: string[] = [];
  let engine: Engine | null = null;
  try {
    const written = await writeBacklog(s, o.ticks);
    const exp = totalOf(written);
    o.log(`max: ${exp.count} ticks written to ${s.files.length} files; starting the engine`);
    const tStart = performance.now();
    engine = await Engine.start(loadConfig(engineEnv(s, Math.ceil(o.ticks / s.symbols.length), null, o.ringSlots)), quietLog(errors));
    const e = engine;
    const ids: Record<string, number> = Object.fromEntries(s.symbols.map((x) => [x, e.registry.requireId(x)]));
    // live counters (no 200 ms stats refresh): the hot window (shared memory, written by the validator)
    // and the feed (main thread, downstream of the validator)
    const hotCount = (): number => Object.values(ids).reduce((a, id) => a + e.hot.count(id), 0);
    let tFirst = 0;
    const fed = await waitUntil(() => {
      if (tFirst === 0 && hotCount() > 0) tFirst = performance.now();
      return hotCount() >= exp.count && e.feed.counters.trades >= exp.count;
    }, 600_000, 1);
    const tEnd = performance.now();
    const journaled = await waitUntil(() => {
      const v = e.validatorStats();
      return (v.journaled ?? 0) >= exp.count && v.journalCommittedSeq === v.journalAppendedSeq;
    }, 60_000);
    const tJournal = performance.now();
    if (!fed || !journaled) o.log(`max: ingest did not finish: hot ${hotCount()}, feed ${e.feed.counters.trades}, validator ${JSON.stringify(e.validatorStats())}`);
    const v = e.validatorStats();
    const stages: StageCheck[] = [check('written (.scid files)', exp.count, exp.sum, exp)];
    stages.push(check('validator: accepted and journaled', v.journaled ?? 0, null, exp, `quarantined ${v.quarantined}, feed dropped ${v.feedDropped}, journal commits ${v.commits} (slowest ${((v.maxCommitMicros ?? 0) / 1000).toFixed(1)} ms), waits for a full journal ${v.journalFullWaits ?? 0}`));
    const hot = totalOf(hotTotals(e, ids));
    stages.push(check('hot window', hot.count, hot.sum, exp));
    stages.push(check('feed (main thread → WebSocket hub)', e.feed.counters.trades, null, exp));
    const lc = latestCounts(e, ids);
    stages.push(check('latest table: trade count', Object.values(lc).reduce((a, b) => a + b, 0), null, exp));
    await e.close();
    engine = null;
    const jt = totalOf(await journalTotals(s.dataDir, ids));
    stages.splice(2, 0, check('journal (read back after close)', jt.count, jt.sum, exp));
    const secondsFromStart = (tEnd - tStart) / 1000;
    const secondsIngest = (tEnd - (tFirst || tStart)) / 1000;
    return {
      ticks: exp.count, secondsFromStart, secondsIngest, secondsToJournaled: (tJournal - (tFirst || tStart)) / 1000, ticksPerSecond: exp.count / secondsIngest,
      peakRssMb: process.resourceUsage().maxRSS / 1024, ringSlots: e.config.ringSlots, stages, lost: stages.reduce((a, x) => a + Math.max(0, x.expectedCount - x.count), 0),
    };
  } finally {
    await engine?.close().catch(() => undefined);
    rmSync(s.dir, { recursive: true, force: true });
    if (errors.length) o.log(`max: engine warnings: ${errors.slice(0, 5).join(' | ')}`);
  }
}
