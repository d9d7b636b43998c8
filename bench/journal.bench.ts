/**
 * Journal (engine/journal): how fast records can be made durable, and what it costs the owner's thread.
 *
 * - Group commit, async (the validator's way): 64-byte records appended in chunks of 4096 with an event-loop
 *   turn between chunks (so commits complete on the libuv pool while appends continue), default 65536-record
 *   buffers and 100 ms timer; `APPEND_FULL` awaits `flush()`. Ends with a final `flush()`: every record durable.
 *   Target: far above 1 M records/s (the engine's ingest target).
 * - Group commit, sync owner: `flushSync()` every 16384 records.
 * - Baseline in the same run and directory: `write` + `fdatasync` per record (one 80-byte write each).
 * - Commit latency (write + fdatasync of one group, µs) p50/p99/max from `onCommit`, and the time
 *   `flushSync()` blocks its thread per commit, both hdr-histogram-js.
 * - Event-loop delay (perf_hooks, p99) at a steady 200 k records/s with the 100 ms timer: async commits vs
 *   the same load with `flushSync()` on the timer (the blocking alternative).
 * - Replay of the async run's files (restart path).
 * Numbers depend on the disk: fdatasync dominates everything but the async append rate.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { build } from 'hdr-histogram-js';
import { APPEND_FULL, DEFAULT_COMMIT_RECORDS, Journal } from '../engine/journal/journal.ts';
import { HOUR_MICROS, slotViewsOf } from '../engine/journal/format.ts';
import { RECORD_SLOT_BYTES, RecordKind, TradeFlag, writeTrade } from '../schemas/records.ts';
import { type BenchResult, type BenchSuite, sig } from './lib.ts';

const T0 = Date.UTC(2025, 10, 11, 14) * 1000;
const CHUNK = 4096;

/** A pool of distinct ready-made records (64 KiB), so the loop measures the journal, not record building. */
function makeRecords(n: number): { views: ReturnType<typeof slotViewsOf>; n: number } {
  const views = slotViewsOf(new ArrayBuffer(n * RECORD_SLOT_BYTES));
  for (let i = 0; i < n; i++) {
    writeTrade(views, i * RECORD_SLOT_BYTES, RecordKind.TRADE, 1, 1 + (i % 20), i, T0 + i * 50, 21_000 + (i % 40) * 0.25, 20_999.75, 21_000.25, 1 + (i % 7), TradeFlag.SIDE_BUY, 3, 4, i, 1);
  }
  return { views, n };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function percentiles(h: ReturnType<typeof build>): { p50: number; p99: number; max: number } {
  return { p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), max: h.maxValue };
}

async function asyncGroupCommit(dataDir: string, total: number, pool: ReturnType<typeof makeRecords>): Promise<{ rate: number; commits: number; lat: ReturnType<typeof build>; full: number }> {
  const lat = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const j = Journal.open({ dataDir, onCommit: (_s, us) => lat.recordValue(Math.max(1, Math.round(us))) });
  const v = pool.views;
  const mask = pool.n - 1;
  // event time advances 1 ms per record, so the run spans hours: a file per hour, as in production
  const t0 = performance.now();
  let i = 0;
  let full = 0;
  while (i < total) {
    const end = Math.min(total, i + CHUNK);
    while (i < end) {
      const b = (i & mask) * RECORD_SLOT_BYTES;
      v.f64[(b + 8) >> 3] = T0 + i * 1000;
      if (j.append(v, b) === APPEND_FULL) {
        full++;
        await j.flush();
        continue;
      }
      i++;
    }
    await turn();
  }
  await j.flush();
  const s = (performance.now() - t0) / 1000;
  const commits = j.stats().commits;
  await j.close();
  return { rate: total / s, commits, lat, full };
}

function syncGroupCommit(dataDir: string, total: number, pool: ReturnType<typeof makeRecords>): { rate: number; block: ReturnType<typeof build> } {
  const block = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const j = Journal.open({ dataDir, commitIntervalMs: 0 });
  const v = pool.views;
  const mask = pool.n - 1;
  const t0 = performance.now();
  for (let i = 0; i < total;) {
    const b = (i & mask) * RECORD_SLOT_BYTES;
    v.f64[(b + 8) >> 3] = T0 + i * 1000;
    const r = j.append(v, b);
    if (r === APPEND_FULL || (r > 0 && r % 16_384 === 0)) {
      const f0 = performance.now();
      j.flushSync();
      block.recordValue(Math.max(1, Math.round((performance.now() - f0) * 1000)));
    }
    if (r !== APPEND_FULL) i++;
  }
  j.flushSync();
  const s = (performance.now() - t0) / 1000;
  j.closeSync();
  return { rate: total / s, block };
}

/** Baseline: every record written and fdatasynced on its own (block header + record, as a 1-record block). */
function fsyncPerAppend(dir: string, maxMs: number, maxRecords: number): { rate: number; lat: ReturnType<typeof build> } {
  const lat = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const fd = openSync(join(dir, 'baseline.tpj'), 'w');
  const rec = Buffer.alloc(16 + RECORD_SLOT_BYTES, 7);
  const t0 = performance.now();
  let n = 0;
  let pos = 0;
  while (n < maxRecords && performance.now() - t0 < maxMs) {
    const a = performance.now();
    writeSync(fd, rec, 0, rec.length, pos);
    fdatasyncSync(fd);
    lat.recordValue(Math.max(1, Math.round((performance.now() - a) * 1000)));
    pos += rec.length;
    n++;
  }
  const s = (performance.now() - t0) / 1000;
  closeSync(fd);
  return { rate: n / s, lat };
}

/** Steady load from a timer (200 records every ms) for `ms`; event-loop delay p99 in ms. */
async function steadyLoad(dataDir: string, ms: number, syncOnTimer: boolean, pool: ReturnType<typeof makeRecords>): Promise<{ p99: number; max: number }> {
  const j = Journal.open({ dataDir, commitIntervalMs: syncOnTimer ? 0 : 100 });
  const v = pool.views;
  const mask = pool.n - 1;
  let i = 0;
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const feed = setInterval(() => {
    for (let k = 0; k < 200; k++, i++) {
      const b = (i & mask) * RECORD_SLOT_BYTES;
      v.f64[(b + 8) >> 3] = T0 + 7 * HOUR_MICROS + i;
      if (j.append(v, b) === APPEND_FULL) j.flushSync();
    }
  }, 1);
  const sync = syncOnTimer ? setInterval(() => j.flushSync(), 100) : null;
  await new Promise((r) => setTimeout(r, ms));
  clearInterval(feed);
  if (sync !== null) clearInterval(sync);
  h.disable();
  await j.close();
  return { p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

export const run: BenchSuite = async ({ quick }) => {
  const dir = mkdtempSync(join(tmpdir(), 'tp-journal-bench-'));
  try {
    const pool = makeRecords(1024);
    const total = quick ? 300_000 : 3_000_000;
    const base = fsyncPerAppend(dir, quick ? 300 : 1500, quick ? 300 : 5000);
    const a = await asyncGroupCommit(join(dir, 'async'), total, pool);
    const s = syncGroupCommit(join(dir, 'sync'), total, pool);

    const rj = Journal.open({ dataDir: join(dir, 'async'), commitIntervalMs: 0 });
    const r0 = performance.now();
    const replayed = rj.replay('open-hours', () => undefined).records;
    const replayRate = replayed / ((performance.now() - r0) / 1000);
    rj.closeSync();
    if (replayed !== total) throw new Error(`replay returned ${replayed} records, ${total} were committed`);

    const loadMs = quick ? 500 : 2000;
    const elAsync = await steadyLoad(join(dir, 'el-async'), loadMs, false, pool);
    const elSync = await steadyLoad(join(dir, 'el-sync'), loadMs, true, pool);

    const B = 'write + fdatasync per append';
    const bl = percentiles(base.lat);
    const al = percentiles(a.lat);
    const sb = percentiles(s.block);
    const m = `${total / 1e6} M`;
    const results: BenchResult[] = [
      {
        name: `journal: group commit, async (${DEFAULT_COMMIT_RECORDS}-record buffers, 100 ms timer; ${m} records, all durable)`, unit: 'records/s', value: sig(a.rate),
        baseline: B, baselineValue: sig(base.rate), ratio: sig(a.rate / base.rate, 3),
      },
      { name: 'journal: async group commit latency (write + fdatasync per group)', unit: 'µs', value: al.p50, p50: al.p50, p99: al.p99, max: al.max },
      { name: 'journal: async group commit, commits in the run', unit: 'count', value: a.commits },
      { name: 'journal: async group commit, APPEND_FULL back-pressure waits in the run', unit: 'count', value: a.full },
      {
        name: `journal: group commit, sync owner (flushSync every 16384 records; ${m})`, unit: 'records/s', value: sig(s.rate),
        baseline: B, baselineValue: sig(base.rate), ratio: sig(s.rate / base.rate, 3),
      },
      { name: 'journal: flushSync blocks its thread per commit (16384 records)', unit: 'µs', value: sb.p50, p50: sb.p50, p99: sb.p99, max: sb.max },
      { name: `journal: baseline ${B}`, unit: 'records/s', value: sig(base.rate) },
      { name: `journal: baseline ${B}, latency`, unit: 'µs', value: bl.p50, p50: bl.p50, p99: bl.p99, max: bl.max },
      {
        name: 'journal: event-loop delay p99 at 200 k records/s, async commits', unit: 'ms', value: sig(elAsync.p99), max: sig(elAsync.max),
        baseline: 'same load, flushSync on the 100 ms timer', baselineValue: sig(elSync.p99), ratio: sig(elAsync.p99 / elSync.p99, 3),
      },
      { name: `journal: replay open hours (${m} records, CRC-checked)`, unit: 'records/s', value: sig(replayRate) },
    ];
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
