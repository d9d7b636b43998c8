/**
 * Paced writer for the end-to-end bench: appends trades for every symbol to real `.scid` files with
 * ScidWriter, round robin, at `rate` ticks/s for `seconds`, timestamped with the wall clock (µs) when
 * written, and flushes every ~1 ms so the tailer sees them at once. Timestamps are strictly increasing per
 * symbol (no two records alike: the validator would drop an exact repeat). Posts the per-symbol count and
 * Σ ticks × size when done.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ScidWriter } from '../../workers/sierra/scid-writer.ts';
import { basePriceOf, nowMicros, TICK, tickSum, TickGen, type SymbolTotals, type WriterData, type WriterDone } from './stats.ts';
import { nameThisThread } from '../../engine/thread-priority.ts';

const d = workerData as WriterData;
nameThisThread('bench:writer');
const control = new Int32Array(d.control);
const sleeper = new Int32Array(new SharedArrayBuffer(4));

const writers = d.files.map((f) => ScidWriter.open(f.path, { append: true, bufferRecords: 4096 }));
const gens = d.files.map((f, i) => new TickGen(basePriceOf(f.symbol), d.seed + i * 7919));
const totals: SymbolTotals[] = d.files.map(() => ({ count: 0, sum: 0 }));
const lastTs = d.files.map(() => 0);

parentPort!.postMessage({ type: 'writer-ready' });
while (Atomics.load(control, 0) === 0) Atomics.wait(control, 0, 0, 100);

const total = Math.round(d.rate * d.seconds);
const t0 = performance.now();
let written = 0;
let flushes = 0;
let maxBacklog = 0;
let k = 0;
while (written < total && Atomics.load(control, 0) === 1) {
  const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * d.rate));
  if (due - written > maxBacklog) maxBacklog = due - written;
  if (due > written) {
    for (; written < due; written++) {
      const i = k;
      k = k + 1 === writers.length ? 0 : k + 1;
      const g = gens[i]!;
      const { size, side } = g.step();
      let ts = Math.floor(nowMicros());
      if (ts <= lastTs[i]!) ts = lastTs[i]! + 1;
      lastTs[i] = ts;
      writers[i]!.trade(ts, g.price, g.price - TICK, g.price + TICK, size, side, 0);
      totals[i]!.count++;
      totals[i]!.sum += tickSum(g.price, size);
    }
    for (const w of writers) w.flushSync();
    flushes++;
  }
  Atomics.wait(sleeper, 0, 0, 1);
}
for (const w of writers) w.flushSync();
await Promise.all(writers.map((w) => w.close()));
const done: WriterDone = {
  type: 'writer-done', totals: Object.fromEntries(d.files.map((f, i) => [f.symbol, totals[i]!])),
  seconds: (performance.now() - t0) / 1000, flushes, maxBacklog,
};
parentPort!.postMessage(done);
