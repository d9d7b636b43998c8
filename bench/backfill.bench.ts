/**
 * Backfill and journal compaction, end to end on real files.
 *
 * 1. `.scid` → Validator → hourly Parquet + hot window, one thread: simulated Sierra files for 3 symbols
 *    (3M ticks; 300k quick, written before the clock starts) go through workers/compactor/backfill.ts
 *    (ScidDecoder → ring → Validator.check → per-hour columns → writeHourParquet with verification and
 *    1-minute bars) with every kept tick also appended to a HotWindow (`appendFromSlot`). The files run
 *    one after the other on this thread as `tickpipe backfill` runs them on a pool thread: the next file is
 *    decoded and validated while the previous one's hour is written (`onDecoded`; the decode loop lets
 *    DuckDB's COPY pull its rows between batches). One window for the 3 symbols (ids 1..3), as in the
 *    engine, whose pages are touched before the clock starts: a running engine's window is resident after
 *    its first hour, and on this VM a first touch costs ~20 µs per 4 KiB page (~0.2 µs per tick in the
 *    window), which is not the sustained rate. Reported: ticks/s (records decoded ÷ wall time), peak RSS,
 *    CPU time, and zero loss: rows in Parquet (re-counted with DuckDB) = kept = hot-window appends =
 *    records in the files (the simulator makes no bad ticks).
 * 2. The same files through `tickpipe backfill`'s runner on a 2-thread piscina pool (one file per task,
 *    no hot window), zero loss checked: (a) sustained, on a pool whose threads were started (tsx loader,
 *    modules, DuckDB session) before the clock, as over a long backfill; (b) cold, the whole command
 *    including the pool start, and the pool start alone (two threads booted, nothing done).
 * 3. Compaction of one symbol-hour from its journal, as the CompactionService does it: a real `.tpj`
 *    hour file (written by engine/journal before the clock starts) → the pool task body (read-only
 *    read, split by symbol, verified Parquet + bars). 36M ticks (1M quick). Seconds, rows/s, peak RSS.
 *
 * Each measurement runs in a child process (`--backfill-bench-child`) so peak RSS is its own.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HotWindow } from '../engine/hot/hot-window.ts';
import { Journal } from '../engine/journal/journal.ts';
import { slotViewsOf } from '../engine/journal/format.ts';
import type { SlotViews } from '../engine/ring/ring.ts';
import { RECORD_SLOT_BYTES, RecordKind, writeTrade } from '../schemas/records.ts';
import { runBackfill } from '../scripts/commands/backfill.ts';
import { type BackfillFileResult, runBackfillFile } from '../workers/compactor/backfill.ts';
import { CompactorDb } from '../workers/compactor/duck.ts';
import { CompactorPool } from '../workers/compactor/pool.ts';
import { readParquetSql } from '../workers/compactor/layout.ts';
import { resolvePartitionFiles } from '../workers/compactor/partitions.ts';
import handle, { type CompactHourResult } from '../workers/compactor/tasks.ts';
import { makeTape } from '../workers/compactor/test-ticks.ts';
import { SimFiles } from '../workers/sim/sim-files.ts';
import { type BenchResult, type BenchSuite, sig } from './lib.ts';

const CHILD_FLAG = '--backfill-bench-child';
const SYMBOLS = ['MNQZ25', 'NQZ25', 'MESZ25'];
const T0 = Date.UTC(2025, 10, 11, 13, 30) * 1000;
const H0 = Date.UTC(2025, 10, 11, 14) * 1000;
const MB = 1024 * 1024;

interface ChildOut { records: number; rows: number; seconds: number; cpuSeconds: number; peakRssBytes: number; extra: number }

function genFiles(dir: string, trades: number): void {
  const sim = new SimFiles({ outDir: dir, startMicros: T0, symbols: SYMBOLS, seed: 42, ticksPerSecond: 2000, depth: false, maxTrades: trades });
  sim.runUntil(Number.POSITIVE_INFINITY);
  sim.close();
}

async function countRows(dataDir: string): Promise<number> {
  const db = await CompactorDb.open({ threads: 1 });
  try {
    let n = 0;
    for (const s of SYMBOLS) {
      const files = await resolvePartitionFiles(dataDir, 'ticks', s);
      if (files.length > 0) n += Number((await db.exclusive((c) => CompactorDb.rows(c, `SELECT count(*)::DOUBLE FROM ${readParquetSql(files)}`)))[0]?.[0]);
    }
    return n;
  } finally {
    await db.close();
  }
}

/** 1: in-thread pipeline with the hot window. `extra` = hot-window appends. */
async function childPipeline(trades: number): Promise<ChildOut> {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-backfill-bench-'));
  try {
    genFiles(join(dir, 'sierra'), trades);
    const dataDir = join(dir, 'data');
    const db = await CompactorDb.open({ threads: 2 });
    // One window for the 3 symbols, resident (see the module comment): zeros written over its pages.
    const win = HotWindow.create({ symbols: SYMBOLS.length, capacityPerSymbol: 1 << 21 });
    const pages = new Uint8Array(win.buffer);
    for (let i = 0; i < pages.length; i += 4096) pages[i] = 0;
    let records = 0, kept = 0, hot = 0;
    const onKept = (v: SlotViews, b: number): void => { if (win.appendFromSlot(v, b)) hot++; };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const files: Promise<BackfillFileResult>[] = [];
    for (let k = 0; k < SYMBOLS.length; k++) {
      const s = SYMBOLS[k] as string;
      let decoded!: () => void;
      const next = new Promise<void>((resolve) => { decoded = resolve; });
      const r = runBackfillFile({
        kind: 'backfill-file', dataDir, file: join(dir, 'sierra', `${s}_FUT_CME.scid`), symbol: s, symbolId: k + 1, tickSize: 0.25, startMicros: null, endMicros: null,
      }, db, { onKept, onDecoded: decoded });
      files.push(r);
      await Promise.race([next, r]); // the next file starts once this one's hours are all handed to the writer
    }
    for (const r of await Promise.all(files)) {
      if (r.errors.length > 0) throw new Error(`backfill errors: ${JSON.stringify(r.errors)}`);
      records += r.records;
      kept += r.kept;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await db.close();
    const rows = await countRows(dataDir);
    if (records !== trades || kept !== trades || rows !== trades || hot !== trades) {
      throw new Error(`loss: ${trades} in the files, ${records} decoded, ${kept} kept, ${rows} rows in Parquet, ${hot} in the hot window`);
    }
    return { records, rows, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024, extra: hot };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * 2: the CLI runner on a 2-thread pool. `warm`: the pool's threads are started (loader, modules, DuckDB
 * session) before the clock by one no-op task each (a missing file: an error result, nothing written);
 * `extra` = seconds that took. Cold: runBackfill starts its own pool inside the clock.
 */
async function childPool(trades: number, warm: boolean): Promise<ChildOut> {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-backfill-bench-'));
  let pool: CompactorPool | undefined;
  try {
    genFiles(join(dir, 'sierra'), trades);
    const dataDir = join(dir, 'data');
    let startSeconds = 0;
    if (warm) {
      const s0 = performance.now();
      pool = new CompactorPool({ threads: 2, idleTimeoutMs: 60_000 });
      const noop = { kind: 'backfill-file', dataDir, file: join(dir, 'missing.scid'), symbol: 'X', tickSize: 0.25, startMicros: null, endMicros: null } as const;
      const boot = await Promise.all([pool.run<BackfillFileResult>(noop), pool.run<BackfillFileResult>(noop)]);
      if (boot.some((r) => r.errors.length !== 1) || pool.threads !== 2) throw new Error(`pool warm-up: ${pool.threads} threads, ${JSON.stringify(boot.map((r) => r.errors.length))}`);
      startSeconds = (performance.now() - s0) / 1000;
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await runBackfill({ scidDir: join(dir, 'sierra'), dataDir, workers: 2, pool });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (r.errors.length > 0) throw new Error(`backfill errors: ${JSON.stringify(r.errors)}`);
    const rows = await countRows(dataDir);
    if (r.records !== trades || rows !== trades) throw new Error(`loss: ${trades} in the files, ${r.records} decoded, ${rows} rows`);
    return { records: r.records, rows, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024, extra: startSeconds };
  } finally {
    await pool?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 3: one journal symbol-hour → verified Parquet (the service's pool task body, in this thread). */
async function childCompactHour(n: number): Promise<ChildOut> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickpipe-compact-hour-bench-'));
  try {
    const c = makeTape(n, H0, 777);
    const j = Journal.open({ dataDir, commitIntervalMs: 0, commitRecords: 65_536 });
    const v = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));
    for (let i = 0; i < n; i++) {
      const p = c.price[i] as number;
      writeTrade(v, 0, p === p ? RecordKind.TRADE : RecordKind.QUOTE, 1, 1, c.seq[i] as number, c.tsMicros[i] as number, p, c.bid[i] as number, c.ask[i] as number,
        c.size[i] as number, c.flags[i] as number, 0, 0, i, 1);
      while (j.append(v, 0) <= 0) j.flushSync();
    }
    j.flushSync();
    const path = j.listHours()[0]?.path as string;
    j.closeSync();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await handle({ kind: 'compact-hour', dataDir, journalPath: path, hourStartMicros: H0, symbolNames: { 1: 'MNQZ25' }, sourceNames: { 1: 'sierra' }, duckdbThreads: 2 });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (r.kind !== 'compacted') throw new Error(`compact-hour: ${JSON.stringify(r)}`);
    const rows = (r as Extract<CompactHourResult, { kind: 'compacted' }>).symbols[0]?.rows ?? 0;
    if (rows !== n) throw new Error(`wrote ${rows} of ${n} rows`);
    return { records: n, rows, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024, extra: 0 };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function inChild(mode: string, n: number): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), CHILD_FLAG, mode, String(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`backfill bench child ${mode} ${n} exited ${code}: ${err.trim().slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(line) as ChildOut);
    });
  });
}

const label = (x: number): string => (x >= 1e6 ? `${x / 1e6}M` : `${x / 1e3}k`);

export const run: BenchSuite = async ({ quick }) => {
  const trades = quick ? 300_000 : 3_000_000;
  const hourN = quick ? 1_000_000 : 36_000_000;
  const p = await inChild('pipeline', trades);
  const pool = await inChild('pool-warm', trades);
  const cold = await inChild('pool', trades);
  const ch = await inChild('compact-hour', hourN);
  const results: BenchResult[] = [
    { name: `backfill ${label(trades)} ticks .scid → validator → Parquet + hot window, 1 thread (zero loss checked)`, unit: 'ticks/s', value: sig(p.records / p.seconds) },
    { name: `backfill ${label(trades)} ticks, 1 thread: peak RSS`, unit: 'MiB', value: sig(p.peakRssBytes / MB) },
    { name: `backfill ${label(trades)} ticks, 1 thread: CPU time (all threads)`, unit: 'cpu-s', value: sig(p.cpuSeconds) },
    { name: `backfill ${label(trades)} ticks: ticks per CPU-second (load-independent)`, unit: 'ticks/cpu-s', value: sig(p.records / p.cpuSeconds) },
    { name: `backfill ${label(trades)} ticks (3 files) via the CLI runner, 2 pool threads, sustained (threads started before the clock; zero loss checked)`, unit: 'ticks/s', value: sig(pool.records / pool.seconds), baseline: '1 thread with hot window', baselineValue: sig(p.records / p.seconds), ratio: sig((pool.records / pool.seconds) / (p.records / p.seconds), 3) },
    { name: `backfill ${label(trades)} ticks via the CLI runner, 2 pool threads: ticks per CPU-second`, unit: 'ticks/cpu-s', value: sig(pool.records / pool.cpuSeconds) },
    { name: `backfill ${label(trades)} ticks via the CLI runner, 2 pool threads: peak RSS`, unit: 'MiB', value: sig(pool.peakRssBytes / MB) },
    { name: `backfill ${label(trades)} ticks via the CLI runner, cold: the whole run including the 2-thread pool start (zero loss checked)`, unit: 'ticks/s', value: sig(cold.records / cold.seconds), baseline: 'sustained', baselineValue: sig(pool.records / pool.seconds), ratio: sig((cold.records / cold.seconds) / (pool.records / pool.seconds), 3) },
    { name: 'compactor pool start: 2 threads (tsx loader, modules, DuckDB session), once per run', unit: 's', value: sig(pool.extra) },
    { name: `compact one journal symbol-hour, ${label(hourN)} ticks → verified Parquet + bars (service task)`, unit: 's', value: sig(ch.seconds) },
    { name: `compact journal hour ${label(hourN)} ticks: throughput`, unit: 'rows/s', value: sig(ch.rows / ch.seconds) },
    { name: `compact journal hour ${label(hourN)} ticks: peak RSS (journal file + columns + DuckDB)`, unit: 'MiB', value: sig(ch.peakRssBytes / MB) },
  ];
  return results;
};

if (process.argv[2] === CHILD_FLAG) {
  const mode = process.argv[3];
  const n = Number(process.argv[4]);
  const job = mode === 'pipeline' ? childPipeline(n) : mode === 'pool' ? childPool(n, false) : mode === 'pool-warm' ? childPool(n, true) : childCompactHour(n);
  job.then(
    (r) => { process.stdout.write(`${JSON.stringify(r)}\n`); },
    (e: unknown) => { process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`); process.exitCode = 1; },
  );
}
