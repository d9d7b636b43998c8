/**
 * Hot window benchmarks (engine/hot): appends per second on one thread (target: several million/s), and
 * queries per second and per-query latency (hdr-histogram-js p50/p99/p99.9/max) while a real worker
 * thread (engine/hot/fixtures/appender.worker.ts) appends to the same symbol at full speed.
 *
 * Baselines, measured in the same run: a JS array of trade objects per symbol — `push` (trimmed with
 * `splice` once it holds twice the capacity) for appends, `slice(-100)` for newest and
 * `filter(ts >= T).slice(0, 100)` for since, over the same number of entries. The baseline queries run on
 * a static array on this thread (plain objects cannot be shared with a writer thread), so their figures
 * are the best case for the baseline.
 *
 * Queries: newest(100); since(T, 100) with T about 2,000 trades before the newest (a client polling a
 * recent moment); since(−∞, 100) from the old end of the window, which a full-speed writer overwrites
 * continuously (it exercises the re-check and retries; retries are reported).
 *
 * Latency samples are timed one query at a time with performance.now(), which costs ~200 ns per call on
 * the reference VM: the figure "timer overhead" is reported so it can be subtracted by eye.
 *
 * Run alone: `node --import tsx bench/hot.bench.ts [--quick]`.
 */
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { Bench } from 'tinybench';
import { createHotColumns } from '../engine/hot/hot-columns.ts';
import { HOT_BUSY, HotWindow } from '../engine/hot/hot-window.ts';
import {
  APPENDER_CONTROL_BYTES, STOP_I32, WRITTEN_I32, type AppenderData,
} from '../engine/hot/fixtures/appender-protocol.ts';
import { createRing, RingWriter } from '../engine/ring/ring.ts';
import { spawnWorker, waitForMessage } from '../engine/worker-host.ts';
import { RECORD_RING_KIND, RECORD_SLOT_BYTES, RecordKind, TS_MICROS_BYTE, writeTrade } from '../schemas/records.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';

const T0 = 1_763_000_000_000_000;
const OPS = 1000;
const APPEND_SYMBOLS = 4;

interface TradeObj { ts: number; price: number; bid: number; ask: number; size: number; flags: number; seq: number; source: number }

const isMsg = <C extends string>(code: C) => (m: unknown): m is { code: C } & Record<string, unknown> =>
  typeof m === 'object' && m !== null && (m as { code?: unknown }).code === code;

function rate(bench: Bench, name: string, ops: number): number {
  const hz = bench.getTask(name)?.result?.throughput.mean;
  if (hz === undefined || !(hz > 0)) throw new Error(`hot bench: no result for ${name}`);
  return hz * ops;
}

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: 3 });
}

/** Time `fn` one call at a time for `ms`; latencies in ns. */
function latency(fn: () => void, ms: number): hdr.Histogram {
  const h = histogram();
  const end = performance.now() + ms;
  for (;;) {
    for (let i = 0; i < 64; i++) {
      const t0 = performance.now();
      fn();
      const t1 = performance.now();
      h.recordValue(Math.max(1, Math.round((t1 - t0) * 1e6)));
    }
    if (performance.now() >= end) return h;
  }
}

function latencyResult(name: string, h: hdr.Histogram): BenchResult {
  return {
    name: `${name}: latency per query`, unit: 'ns (timer incl.)', value: h.getValueAtPercentile(50),
    p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue,
  };
}

async function appendBenches(quick: boolean, time: number, warmupTime: number): Promise<BenchResult[]> {
  const cap = quick ? 1 << 14 : 1 << 18;
  const hot = HotWindow.create({ symbols: APPEND_SYMBOLS, capacityPerSymbol: cap });
  const hotSlots = HotWindow.create({ symbols: APPEND_SYMBOLS, capacityPerSymbol: cap }); // its own ts sequence
  // ring slots for appendFromSlot: TRADE records of the 4 symbols; ts is rewritten before each append
  const ring = RingWriter.attach(createRing({ slotCount: 1024, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND }));
  const v = ring.views;
  ring.claim(1024);
  const slotBytes = new Int32Array(1024);
  for (let i = 0; i < 1024; i++) {
    slotBytes[i] = ring.slotByte(i);
    writeTrade(v, ring.slotByte(i), RecordKind.TRADE, 1, (i & 3) + 1, i, T0, 21000 + (i & 63) * 0.25, 21000, 21000.25, 1 + (i & 7), 1, 0, 0, i, 1);
  }
  const arrays: TradeObj[][] = [];
  for (let s = 0; s < APPEND_SYMBOLS; s++) arrays.push([]);
  let c = 0;
  let slotTs = T0;
  let rejected = 0;

  const A = 'hot append (4 symbols, rings wrapping)';
  const AS = 'hot appendFromSlot (ring TRADE slots, 4 symbols)';
  const B = 'JS array of objects: push + splice trim (4 symbols)';
  const bench = new Bench({ time, warmupTime });
  bench
    .add(A, () => {
      for (let i = 0; i < OPS; i++) {
        c++;
        const p = 21000 + (c & 1023) * 0.25;
        if (!hot.append((c & 3) + 1, T0 + c, p, p - 0.25, p + 0.25, 1 + (c & 7), 1, c, 1)) rejected++;
      }
    })
    .add(AS, () => {
      slotTs += 1;
      for (let i = 0; i < OPS; i++) {
        const b = slotBytes[i & 1023] as number;
        v.f64[(b + TS_MICROS_BYTE) >> 3] = slotTs; // keep ts non-decreasing per symbol
        if (!hotSlots.appendFromSlot(v, b)) rejected++;
      }
    })
    .add(B, () => {
      for (let i = 0; i < OPS; i++) {
        c++;
        const p = 21000 + (c & 1023) * 0.25;
        const arr = arrays[c & 3] as TradeObj[];
        arr.push({ ts: T0 + c, price: p, bid: p - 0.25, ask: p + 0.25, size: 1 + (c & 7), flags: 1, seq: c, source: 1 });
        if (arr.length >= 2 * cap) arr.splice(0, arr.length - cap);
      }
    });
  await bench.run();
  if (rejected !== 0) throw new Error(`hot bench: ${rejected} appends were rejected (ts went backwards?)`);
  const base = rate(bench, B, OPS);
  const vs = (name: string): BenchResult => {
    const value = rate(bench, name, OPS);
    return { name, unit: 'appends/s', value: sig(value), baseline: B, baselineValue: sig(base), ratio: sig(value / base, 3) };
  };
  return [vs(A), vs(AS), { name: B, unit: 'appends/s', value: sig(base) }];
}

async function queryBenches(quick: boolean, time: number, warmupTime: number): Promise<BenchResult[]> {
  const cap = quick ? 1 << 16 : 1 << 20;
  const latMs = quick ? 100 : 1000;
  const hot = HotWindow.create({ symbols: 1, capacityPerSymbol: cap });
  const reader = HotWindow.attach(hot.buffer);
  const out = createHotColumns(100);
  const results: BenchResult[] = [];

  // the writer thread: symbol 1, ts = T0 + c (1 µs per trade), full speed until STOP
  const control = new SharedArrayBuffer(APPENDER_CONTROL_BYTES);
  const ctl = new Int32Array(control);
  const data: AppenderData = { hot: hot.buffer, control, ids: [1], tsStepMicros: [1], baseMicros: T0, maxRounds: 0 };
  const worker: Worker = spawnWorker(new URL('../engine/hot/fixtures/appender.worker.ts', import.meta.url), data, { name: 'hot-bench-writer' });
  let sink = 0;
  try {
    await waitForMessage(worker, isMsg('READY'));
    while (Atomics.load(ctl, WRITTEN_I32) < cap + 4096) await new Promise((r) => setTimeout(r, 5)); // ring full and wrapping
    const w0 = Atomics.load(ctl, WRITTEN_I32);
    const tw0 = performance.now();
    const retries0 = reader.stats().reader.retries;

    let sinceTs = T0;
    const N = 'hot newest(100) while a writer thread appends';
    const S = 'hot since(T ≈ newest − 2000 trades, 100) while a writer thread appends';
    const S0 = 'hot since(−∞ = old end of the window, 100) while a writer thread appends';
    const bench = new Bench({ time, warmupTime });
    bench
      .add(N, () => {
        for (let i = 0; i < OPS; i++) { const n = reader.newest(1, 100, out); if (n !== HOT_BUSY) sink += out.seq[n - 1] as number; }
      })
      .add(S, () => {
        sinceTs = T0 + reader.appended(1) - 2000;
        for (let i = 0; i < OPS; i++) { sink += reader.since(1, sinceTs, 100, out); }
      })
      .add(S0, () => {
        for (let i = 0; i < OPS; i++) { sink += reader.since(1, -Infinity, 100, out); }
      });
    await bench.run();
    const hN = latency(() => { reader.newest(1, 100, out); }, latMs);
    sinceTs = T0 + reader.appended(1) - 2000;
    const hS = latency(() => { reader.since(1, sinceTs, 100, out); }, latMs);
    const hS0 = latency(() => { reader.since(1, -Infinity, 100, out); }, latMs);
    const hT = latency(() => { /* timer only */ }, quick ? 50 : 300);
    const writes = Atomics.load(ctl, WRITTEN_I32) - w0;
    const writerRate = writes / ((performance.now() - tw0) / 1000);
    const st = reader.stats().reader;

    // baseline: the same number of entries as a JS array of objects (static, this thread)
    const arr: TradeObj[] = new Array<TradeObj>(cap);
    for (let i = 0; i < cap; i++) {
      const p = i * 0.25;
      arr[i] = { ts: T0 + i, price: p, bid: p - 0.25, ask: p + 0.25, size: (i * 7 + 1) >>> 0, flags: 0, seq: i, source: 1 };
    }
    const bT = T0 + cap - 2000;
    const BN = 'JS array of objects: slice(-100)';
    const BS = 'JS array of objects: filter(ts >= T).slice(0, 100), T ≈ newest − 2000';
    const BS0 = 'JS array of objects: filter(ts >= −∞).slice(0, 100)';
    const BNC = 'JS array of objects: slice(-100) + copy the 8 fields of each row into columns';
    const copyRows = (rows: TradeObj[]): number => {
      for (let i = 0; i < rows.length; i++) {
        const o = rows[i] as TradeObj;
        out.tsMicros[i] = o.ts; out.price[i] = o.price; out.bid[i] = o.bid; out.ask[i] = o.ask;
        out.size[i] = o.size; out.flags[i] = o.flags; out.seq[i] = o.seq; out.sourceId[i] = o.source;
      }
      return rows.length;
    };
    const BASE_OPS = 10; // filter over the whole array is slow: fewer per task call
    const bb = new Bench({ time, warmupTime });
    bb
      .add(BN, () => { for (let i = 0; i < OPS; i++) sink += arr.slice(-100).length; })
      .add(BNC, () => { for (let i = 0; i < OPS; i++) sink += copyRows(arr.slice(-100)); })
      .add(BS, () => { for (let i = 0; i < BASE_OPS; i++) sink += arr.filter((o) => o.ts >= bT).slice(0, 100).length; })
      .add(BS0, () => { for (let i = 0; i < BASE_OPS; i++) sink += arr.filter((o) => o.ts >= -Infinity).slice(0, 100).length; });
    await bb.run();
    const hBN = latency(() => { sink += arr.slice(-100).length; }, latMs);
    const hBS = latency(() => { sink += arr.filter((o) => o.ts >= bT).slice(0, 100).length; }, latMs);

    const pairs: [string, string, number, number][] = [[N, BN, OPS, OPS], [S, BS, OPS, BASE_OPS], [S0, BS0, OPS, BASE_OPS]];
    for (const [name, baseName, ops, baseOps] of pairs) {
      const value = rate(bench, name, ops);
      const base = rate(bb, baseName, baseOps);
      results.push({ name, unit: 'queries/s', value: sig(value), baseline: baseName, baselineValue: sig(base), ratio: sig(value / base, 3) });
    }
    results.push(latencyResult(N, hN), latencyResult(S, hS), latencyResult(S0, hS0), latencyResult(BN, hBN), latencyResult(BS, hBS));
    results.push({ name: 'hot query latency: timer overhead (empty performance.now() pair)', unit: 'ns', value: hT.getValueAtPercentile(50), p50: hT.getValueAtPercentile(50), p99: hT.getValueAtPercentile(99) });
    for (const [name, ops] of [[BN, OPS], [BNC, OPS], [BS, BASE_OPS], [BS0, BASE_OPS]] as const) results.push({ name, unit: 'queries/s', value: sig(rate(bb, name, ops)) });
    results.push({ name: 'hot queries: writer thread rate meanwhile', unit: 'appends/s', value: sig(writerRate) });
    results.push({ name: 'hot queries: re-check retries (writer lapped the oldest entry read)', unit: 'per 1000 queries', value: sig((1000 * (st.retries - retries0)) / Math.max(1, st.queries), 3) });
    results.push({ name: 'hot queries: busy answers (HOT_BUSY)', unit: 'count', value: st.busy });
  } finally {
    Atomics.store(ctl, STOP_I32, 1);
    await waitForMessage(worker, isMsg('DONE'), 10_000).catch(() => undefined);
    await worker.terminate();
  }
  if (sink === 42) console.log(''); // keep the loops observable
  return results;
}

export const run: BenchSuite = async ({ quick }) => {
  const time = quick ? 150 : 1000;
  const warmupTime = quick ? 50 : 250;
  const results = await appendBenches(quick, time, warmupTime);
  results.push(...(await queryBenches(quick, time, warmupTime)));
  return results;
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await run({ quick: process.argv.includes('--quick') });
  console.table(results);
}
