/**
 * Observers of the end-to-end bench, one mode per worker thread (off the engine's main thread):
 * - `latest`: attached to the engine's LatestTable, polls each symbol's trade seq; a change is one
 *   observation, latency = now − the trade's event time (the writer stamps ticks with the wall clock).
 * - `ws`: N `ws` clients subscribed to the symbols' trades, in JSON or binary FlatBuffers (decoded into
 *   reused columns, no per-tick objects); every tick is counted per client and symbol with seq continuity
 *   and Σ ticks × size, latency = arrival − event time.
 * - `redis`: a subscriber to the sink's trade channel; messages counted and summed per symbol, latency
 *   from the message's ISO timestamp (µs).
 * Latency goes to two histograms: every tick (`latencyAll`), and the ticks written after the warm-up
 * (`latency`: event time ≥ the shared clock's start, set by the harness when the writer starts).
 * The harness posts {type:'stop'}; the worker answers with an ObserverDone and exits.
 */
import { performance as perf } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { LatestTable } from '../../engine/latest/index.ts';
import { createTickColumns, WireDecoder } from '../../schemas/wire.ts';
import { F_TRADE_SEQ, F_TRADE_TS_MICROS } from '../../engine/latest/layout.ts';
import { latencyHistogram, nowMicros, recordLatency, summarize, tickSum, type ObserverData, type ObserverDone, type WsClientTotals } from './stats.ts';
import { nameThisThread } from '../../engine/thread-priority.ts';

const d = workerData as ObserverData;
nameThisThread(`obs:${d.mode}${d.format ? `:${d.format}` : ''}`);
const h = latencyHistogram();
const hAll = latencyHistogram();
const clock = new Float64Array(d.clock);
/** Record one tick's latency: always in hAll, in h when the tick was written after the warm-up. */
function record(now: number, tsMicros: number): void {
  recordLatency(hAll, now - tsMicros);
  const from = clock[0]!;
  if (from > 0 && tsMicros >= from) recordLatency(h, now - tsMicros);
}
const errors: string[] = [];
/** Latest-table poll interval (TICKPIPE_E2E_LATEST_POLL_MS, default 0.2 ms). */
const POLL_MS = Number(process.env.TICKPIPE_E2E_LATEST_POLL_MS ?? 0.2);
let stopping = false;
const elu0 = perf.eventLoopUtilization();

function emptyTotals(): WsClientTotals {
  return { symbols: Object.fromEntries(d.symbols.map((s) => [s.symbol, { count: 0, sum: 0, firstSeq: -1, lastSeq: -1, seqBreaks: 0 }])), closed: null };
}

function finish(clients: WsClientTotals[]): void {
  const done: ObserverDone = { type: 'observer-done', mode: d.mode, latency: summarize(h), latencyAll: summarize(hAll), clients, errors, utilization: perf.eventLoopUtilization(elu0).utilization };
  parentPort!.postMessage(done);
}

async function runLatest(): Promise<void> {
  const table = LatestTable.attach(d.latest!);
  const raw = new Float64Array(16);
  const lastSeq = d.symbols.map(() => NaN);
  const totals = emptyTotals();
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  // poll about every 200 µs (finer polling would take a core from the engine on a small machine); yield to the event loop every ~20 ms to see 'stop'
  for (;;) {
    const until = performance.now() + 20;
    while (performance.now() < until) {
      for (let i = 0; i < d.symbols.length; i++) {
        if (!table.readRaw(d.symbols[i]!.id, raw)) continue;
        const seq = raw[F_TRADE_SEQ]!;
        if (seq !== lastSeq[i] && Number.isFinite(seq)) {
          const now = nowMicros();
          lastSeq[i] = seq;
          record(now, raw[F_TRADE_TS_MICROS]!);
          totals.symbols[d.symbols[i]!.symbol]!.count++;
          totals.symbols[d.symbols[i]!.symbol]!.lastSeq = seq;
        }
      }
      Atomics.wait(sleeper, 0, 0, POLL_MS);
    }
    await new Promise((r) => setImmediate(r));
    if (stopping) break;
  }
  finish([totals]);
}

interface TickJson { seq: number; tsMicros: number; price: number; size: number }

const dec = new WireDecoder();
const cols = createTickColumns(1 << 16);

/** A binary TickBatch: decoded into the reused columns (no per-tick objects), counted like the JSON form. */
function onBinary(c: number, t: WsClientTotals, data: Buffer, now: number): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let symbol: string;
  let n: number;
  try {
    const type = dec.payloadType(bytes);
    if (type !== 'tickBatch') {
      if (type === 'error') errors.push(`client ${c}: ${JSON.stringify(dec.decodeFrame(bytes)).slice(0, 200)}`);
      return;
    }
    const hd = dec.readTickBatchInto(bytes, cols);
    if (!hd.channel.startsWith('trades')) return;
    symbol = hd.symbol;
    n = hd.count;
  } catch (e) {
    errors.push(`client ${c}: bad frame: ${(e as Error).message}`);
    return;
  }
  const s = t.symbols[symbol];
  if (!s) { errors.push(`client ${c}: unexpected symbol ${symbol}`); return; }
  for (let i = 0; i < n; i++) {
    const seq = cols.seq[i]!;
    record(now, cols.tsMicros[i]!);
    if (s.firstSeq < 0) s.firstSeq = seq;
    else if (seq !== s.lastSeq + 1) s.seqBreaks++;
    s.lastSeq = seq;
    s.count++;
    s.sum += tickSum(cols.price[i]!, cols.size[i]!);
  }
}
interface FrameJson { channel?: string; payload?: { type?: string; symbol?: string; ticks?: TickJson[] }; type?: string }

async function runWs(): Promise<void> {
  const n = d.clients ?? 1;
  const all: WsClientTotals[] = [];
  const sockets: WebSocket[] = [];
  const acks: Array<Promise<void>> = [];
  for (let c = 0; c < n; c++) {
    const t = emptyTotals();
    all.push(t);
    const ws = new WebSocket(d.url!);
    sockets.push(ws);
    acks.push(new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify({ op: 'subscribe', symbols: d.symbols.map((s) => s.symbol), channels: ['trades'], id: `c${c}` })));
      ws.once('error', reject);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const now = nowMicros();
        if (isBinary) { onBinary(c, t, data, now); return; }
        let o: FrameJson;
        try { o = JSON.parse(data.toString()) as FrameJson; } catch (e) { errors.push(`client ${c}: bad JSON ${(e as Error).message}`); return; }
        if (o.type === 'subscribed') { resolve(); return; }
        const p = o.payload;
        if (!p || p.type !== 'tickBatch' || !p.ticks || !p.symbol) {
          if (p?.type === 'error' || o.type === 'error') errors.push(`client ${c}: ${data.toString().slice(0, 200)}`);
          return;
        }
        const s = t.symbols[p.symbol];
        if (!s) { errors.push(`client ${c}: unexpected symbol ${p.symbol}`); return; }
        for (const tick of p.ticks) {
          record(now, tick.tsMicros);
          if (s.firstSeq < 0) s.firstSeq = tick.seq;
          else if (tick.seq !== s.lastSeq + 1) s.seqBreaks++;
          s.lastSeq = tick.seq;
          s.count++;
          s.sum += tickSum(tick.price, tick.size);
        }
      });
      ws.on('close', (code: number, reason: Buffer) => { t.closed = `${code} ${reason.toString()}`; });
    }));
  }
  try {
    await Promise.all(acks);
    parentPort!.postMessage({ type: 'observer-ready' });
  } catch (e) {
    errors.push(`connect: ${(e as Error).message}`);
    parentPort!.postMessage({ type: 'observer-ready' });
  }
  await new Promise<void>((r) => { const t = setInterval(() => { if (stopping) { clearInterval(t); r(); } }, 10); });
  for (const ws of sockets) ws.terminate();
  finish(all);
}

async function runRedis(): Promise<void> {
  const t = emptyTotals();
  const sub = new Redis(d.redisUrl!, { lazyConnect: true, maxRetriesPerRequest: 1 });
  sub.on('error', (e: Error) => { if (errors.length < 10) errors.push(`redis: ${e.message}`); });
  await sub.connect();
  sub.on('message', (_ch: string, msg: string) => {
    const now = nowMicros();
    let o: { symbol: string; price: number; size: number; timestamp: string };
    try { o = JSON.parse(msg) as typeof o; } catch { errors.push('redis: bad JSON'); return; }
    const s = t.symbols[o.symbol];
    if (!s) return;
    s.count++;
    s.sum += tickSum(o.price, o.size);
    record(now, isoToMicros(o.timestamp));
  });
  await sub.subscribe(d.channel!);
  parentPort!.postMessage({ type: 'observer-ready' });
  await new Promise<void>((r) => { const i = setInterval(() => { if (stopping) { clearInterval(i); r(); } }, 10); });
  await sub.quit().catch(() => undefined);
  finish([t]);
}

/** `2026-12-05T19:30:00.123456Z` → Unix µs (any number of fraction digits). */
export function isoToMicros(iso: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (!m) return NaN;
  const frac = (m[2] ?? '').padEnd(6, '0').slice(0, 6);
  return Date.parse(`${m[1]}Z`) * 1000 + Number(frac);
}

parentPort!.on('message', (m: { type?: string }) => { if (m.type === 'stop') stopping = true; });
if (d.mode === 'latest') { parentPort!.postMessage({ type: 'observer-ready' }); await runLatest(); }
else if (d.mode === 'ws') await runWs();
else await runRedis();
parentPort!.close();
