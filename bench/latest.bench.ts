/**
 * Latest table micro benchmarks (tinybench): writes, reads (target ≥ 10 million reads/s), reads while a
 * real worker thread writes the same slot, and the naive baseline: a `Map<string, object>` lookup plus a
 * field-by-field copy into a reused object (no allocation, so the ratio is conservative).
 *
 * Every task function performs OPS operations over 64 symbols, so tinybench's per-call timing overhead
 * is amortised; rates below are operations per second (task hz × OPS).
 *
 * Run alone: `node --import tsx bench/latest.bench.ts [--quick]`.
 */
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { Bench } from 'tinybench';
import { FIELD_COUNT } from '../engine/latest/layout.ts';
import { LatestSnapshot, LatestTable } from '../engine/latest/latest-table.ts';
import { HAMMER_CONTROL_BYTES, STOP_I32, WRITTEN_I32, type HammerData } from '../engine/latest/fixtures/hammer-protocol.ts';
import { SymbolRegistry } from '../engine/symbols/registry.ts';
import { spawnWorker, waitForMessage } from '../engine/worker-host.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';

const OPS = 1000;
const SYMBOLS = 64; // power of two: `i & (SYMBOLS - 1)` picks one
const BASELINE = 'Map<string, object> get + copy';
const T0 = 1_763_000_000_000_000;

interface PlainLatest {
  tradeTsMicros: number; price: number; size: number; side: number; seq: number; quoteTsMicros: number;
  bid: number; bidSize: number; ask: number; askSize: number; tradeCount: number; quoteCount: number;
  updateCount: number; lastTsMicros: number;
}

function plain(n: number): PlainLatest {
  const p = 21000 + n * 0.25;
  return {
    tradeTsMicros: T0 + n, price: p, size: 1, side: 1, seq: n, quoteTsMicros: T0 + n, bid: p - 0.25, bidSize: 3,
    ask: p, askSize: 4, tradeCount: n, quoteCount: n, updateCount: n, lastTsMicros: T0 + n,
  };
}

async function startWriter(table: LatestTable, id: number, gapSpinsMax: number): Promise<{ worker: Worker; ctl: Int32Array }> {
  const control = new SharedArrayBuffer(HAMMER_CONTROL_BYTES);
  const data: HammerData = { table: table.buffer, control, id, baseMicros: T0, gapSpinsMax };
  const worker = spawnWorker(new URL('../engine/latest/fixtures/hammer.worker.ts', import.meta.url), data, { name: 'latest-bench-writer' });
  await waitForMessage(worker, (m): m is { code: 'READY' } => (m as { code?: string } | null)?.code === 'READY');
  return { worker, ctl: new Int32Array(control) };
}

async function stopWriter(w: { worker: Worker; ctl: Int32Array }): Promise<void> {
  Atomics.store(w.ctl, STOP_I32, 1);
  await waitForMessage(w.worker, (m): m is { code: 'DONE' } => (m as { code?: string } | null)?.code === 'DONE').catch(() => undefined);
  await w.worker.terminate();
}

function opsPerSec(bench: Bench, name: string): number {
  const hz = bench.getTask(name)?.result?.throughput.mean ?? NaN;
  return hz * OPS;
}

export const run: BenchSuite = async ({ quick }) => {
  const time = quick ? 150 : 1000;
  const warmupTime = quick ? 50 : 250;
  const table = LatestTable.create(1024);
  const registry = SymbolRegistry.create({ capacity: 1024 });
  const names: string[] = [];
  const ids = new Int32Array(SYMBOLS);
  const baseline = new Map<string, PlainLatest>();
  for (let i = 0; i < SYMBOLS; i++) {
    const name = `EQ${String(i).padStart(3, '0')}`;
    names.push(name);
    const id = registry.register({ symbol: name, kind: 'equity', exchange: 'ARCA', tickSize: 0.01, sessionCalendar: 'us-equity-rth' });
    ids[i] = id;
    const p = plain(i + 1);
    table.writeTick(id, p.tradeTsMicros, p.price, p.size, p.side, p.seq, p.bid, p.bidSize, p.ask, p.askSize);
    baseline.set(name, p);
  }
  const snap = new LatestSnapshot();
  const raw = new Float64Array(FIELD_COUNT);
  const copy = plain(0);
  const mask = SYMBOLS - 1;
  let sink = 0;
  let n = 1000;

  const W = 'latest write (writeTick, seqlock)';
  const R = 'latest read (seqlock -> reused LatestSnapshot)';
  const RR = 'latest readRaw (seqlock -> Float64Array)';
  const RI = 'registry idOf(symbol) + latest read';
  const B = BASELINE;
  const bench = new Bench({ time, warmupTime });
  bench
    .add(W, () => {
      for (let i = 0; i < OPS; i++) {
        n++;
        const p = 21000 + (n & 1023) * 0.25;
        table.writeTick(ids[i & mask] as number, T0 + n, p, 1, 1 + (n & 1), n, p - 0.25, 3, p, 4);
      }
    })
    .add(R, () => {
      for (let i = 0; i < OPS; i++) if (table.read(ids[i & mask] as number, snap)) sink += snap.price;
    })
    .add(RR, () => {
      for (let i = 0; i < OPS; i++) if (table.readRaw(ids[i & mask] as number, raw)) sink += raw[1] as number;
    })
    .add(RI, () => {
      for (let i = 0; i < OPS; i++) if (table.read(registry.idOf(names[i & mask] as string), snap)) sink += snap.price;
    })
    .add(B, () => {
      for (let i = 0; i < OPS; i++) {
        const o = baseline.get(names[i & mask] as string) as PlainLatest;
        copy.tradeTsMicros = o.tradeTsMicros; copy.price = o.price; copy.size = o.size; copy.side = o.side; copy.seq = o.seq;
        copy.quoteTsMicros = o.quoteTsMicros; copy.bid = o.bid; copy.bidSize = o.bidSize; copy.ask = o.ask; copy.askSize = o.askSize;
        copy.tradeCount = o.tradeCount; copy.quoteCount = o.quoteCount; copy.updateCount = o.updateCount; copy.lastTsMicros = o.lastTsMicros;
        sink += copy.price;
      }
    });
  await bench.run();

  const base = opsPerSec(bench, B);
  const vsBase = (name: string, unit: string): BenchResult => {
    const value = opsPerSec(bench, name);
    return { name, unit, value: sig(value), baseline: BASELINE, baselineValue: sig(base), ratio: sig(value / base, 3) };
  };
  const results: BenchResult[] = [
    { name: W, unit: 'writes/s', value: sig(opsPerSec(bench, W)) },
    vsBase(R, 'reads/s'),
    vsBase(RR, 'reads/s'),
    vsBase(RI, 'reads/s'),
    { name: B, unit: 'reads/s', value: sig(base) },
  ];

  // Reads of one slot while a real worker thread rewrites it continuously. `read` returning false is
  // "busy" (bounded retries exhausted); only consistent snapshots count as reads here.
  const hotId = ids[0] as number;
  for (const [label, gapSpinsMax] of [['with short gaps', 128], ['back to back', 0]] as const) {
    const writer = await startWriter(table, hotId, gapSpinsMax);
    let ok = 0, busy = 0;
    const name = `latest read while a worker writes the same slot (${label})`;
    const cb = new Bench({ time, warmupTime });
    cb.add(name, () => {
      for (let i = 0; i < OPS; i++) {
        if (table.read(hotId, snap)) { ok++; sink += snap.price; } else busy++;
      }
    });
    const w0 = Atomics.load(writer.ctl, WRITTEN_I32);
    const t0 = performance.now();
    try {
      await cb.run();
    } finally {
      const writes = Atomics.load(writer.ctl, WRITTEN_I32) - w0;
      const seconds = (performance.now() - t0) / 1000;
      await stopWriter(writer);
      const attempted = opsPerSec(cb, name);
      const okShare = ok / Math.max(1, ok + busy);
      results.push({ name, unit: 'consistent reads/s', value: sig(attempted * okShare), baseline: BASELINE, baselineValue: sig(base), ratio: sig((attempted * okShare) / base, 3) });
      results.push({ name: `${name}: busy returns`, unit: '%', value: sig(100 * (1 - okShare), 3) });
      results.push({ name: `${name}: writer rate`, unit: 'writes/s', value: sig(writes / seconds) });
    }
  }
  if (sink === 42) console.log(''); // keep `sink` observable so the loops are not dead code
  return results;
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await run({ quick: process.argv.includes('--quick') });
  console.table(results);
}
