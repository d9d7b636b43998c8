/**
 * Compaction of one symbol-hour: 36 million ticks (1M in quick mode) of a realistic tape, already in
 * (ts, seq) order as the journal delivers them, through `writeHourParquet` — JS validation and figures,
 * DuckDB streaming the typed arrays through `tickpipe_scan()` into a ZSTD Parquet file, re-reading it to
 * verify rows / min-max ts / checksum, fsync + rename, and the 1-minute bars. Target: < 60 s.
 *
 * Reported: seconds, rows/s, CPU seconds, file size, bytes/row, peak RSS (and the RSS of the input
 * columns alone), plus rows/s of the unsorted-input path (DuckDB sorts).
 *
 * Baseline in the same run: the obvious way with the same DuckDB and the same SQL — the row-by-row
 * appender (`appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(ts)))`, `appendDouble` …, `endRow` per
 * tick) into a staging table, then the same COPY projection and the same verification read (no bars,
 * no fsync: it does less work). Measured on a smaller count (1M; 100k quick), with tickpipe also timed on
 * that count for an equal-size ratio.
 *
 * Each measurement runs in a child process (`--compact-bench-child`), so peak RSS is the compaction's
 * own and the ~2 GB of columns are freed when it ends.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance, DuckDBTimestampTZValue } from '@duckdb/node-api';
import { CompactorDb } from '../workers/compactor/duck.ts';
import { scanTickColumns, TICK_FIGURES_SELECT, type TickColumns } from '../workers/compactor/figures.ts';
import { sourceSql, tickSelectSql, writeHourParquet } from '../workers/compactor/hour-writer.ts';
import { PARQUET_COPY_OPTIONS, readParquetSql, sqlString } from '../workers/compactor/layout.ts';
import { makeTape } from '../workers/compactor/test-ticks.ts';
import { type BenchResult, type BenchSuite, sig } from './lib.ts';

const CHILD_FLAG = '--compact-bench-child';
const H0 = Date.UTC(2025, 10, 11, 14) * 1000;
const MB = 1024 * 1024;

interface ChildOut {
  rows: number;
  seconds: number;
  cpuSeconds: number;
  bytes: number;
  peakRssBytes: number;
  inputRssBytes: number;
  sorted: boolean;
}

/** Swap a few windows of rows so the writer must sort. */
function unsort(c: TickColumns, n: number): void {
  const keys = ['tsMicros', 'price', 'bid', 'ask', 'size', 'flags', 'seq'] as const;
  for (let i = 0; i + 64 < n; i += 997) {
    for (const k of keys) {
      const a = c[k];
      const t = a[i] as number; a[i] = a[i + 63] as number; a[i + 63] = t;
    }
  }
}

async function childTickpipe(n: number, unsorted: boolean): Promise<ChildOut> {
  const c = makeTape(n, H0, 4242);
  if (unsorted) unsort(c, n);
  const inputRssBytes = process.memoryUsage().rss;
  const dataDir = mkdtempSync(join(tmpdir(), 'tickpipe-compact-bench-'));
  const db = await CompactorDb.open({ threads: 2 });
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const res = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: n, source: 'sierra', db });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (res.rows !== n) throw new Error(`wrote ${res.rows} of ${n} rows`);
    return {
      rows: n, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes: res.bytes,
      peakRssBytes: process.resourceUsage().maxRSS * 1024, inputRssBytes, sorted: res.sorted,
    };
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Baseline: row-by-row appender into a staging table, same COPY projection, same verification read. */
async function childBaseline(n: number): Promise<ChildOut> {
  const c = makeTape(n, H0, 4242);
  const inputRssBytes = process.memoryUsage().rss;
  const expected = scanTickColumns(c, n, H0, 1);
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-compact-base-'));
  const out = join(dir, 'hour=14.parquet');
  const inst = await DuckDBInstance.create(':memory:', { threads: '2', autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await inst.connect();
  try {
    await conn.run(`SET TimeZone = 'UTC'`);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await conn.run('CREATE TEMP TABLE stg (ts TIMESTAMPTZ, price DOUBLE, bid DOUBLE, ask DOUBLE, size UINTEGER, flags UINTEGER, seq UINTEGER)');
    const app = await conn.createAppender('stg');
    for (let i = 0; i < n; i++) {
      app.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(c.tsMicros[i] as number)));
      app.appendDouble(c.price[i] as number);
      app.appendDouble(c.bid[i] as number);
      app.appendDouble(c.ask[i] as number);
      app.appendUInteger(c.size[i] as number);
      app.appendUInteger(c.flags[i] as number);
      app.appendUInteger(c.seq[i] as number);
      app.endRow();
    }
    app.closeSync();
    await conn.run(`COPY (${tickSelectSql(sourceSql('sierra', false), 'stg')}) TO ${sqlString(out)} (${PARQUET_COPY_OPTIONS})`);
    const got = (await conn.runAndReadAll(`SELECT ${TICK_FIGURES_SELECT} FROM ${readParquetSql(out)}`)).getRows()[0];
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (Number(got?.[0]) !== n || got?.[3] !== expected.checksum) throw new Error('baseline file does not verify');
    const { size } = statSync(out);
    return { rows: n, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes: size, peakRssBytes: process.resourceUsage().maxRSS * 1024, inputRssBytes, sorted: true };
  } finally {
    conn.closeSync();
    inst.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run one measurement in a fresh Node process (same loader flags) and parse its JSON line. */
function inChild(mode: string, n: number): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), CHILD_FLAG, mode, String(n)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`compact bench child ${mode} ${n} exited ${code}: ${err.trim().slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(line) as ChildOut);
    });
  });
}

export const run: BenchSuite = async ({ quick }) => {
  const n = quick ? 1_000_000 : 36_000_000;
  const small = quick ? 100_000 : 1_000_000;
  const unsortedN = quick ? 200_000 : 4_000_000;
  const main = await inChild('tickpipe', n);
  const unsorted = await inChild('tickpipe-unsorted', unsortedN);
  const base = await inChild('baseline', small);
  const same = await inChild('tickpipe', small);
  const label = (x: number): string => (x >= 1e6 ? `${x / 1e6}M` : `${x / 1e3}k`);
  const rate = main.rows / main.seconds;
  const baseRate = base.rows / base.seconds;
  const sameRate = same.rows / same.seconds;
  const baseline = `row-by-row appender + staging table + same COPY/verify, ${label(small)} rows`;
  const results: BenchResult[] = [
    { name: `compact one symbol-hour, ${label(n)} ticks → verified ZSTD Parquet + 1m bars (target < 60 s)`, unit: 's', value: sig(main.seconds) },
    { name: `compact ${label(n)} ticks: throughput`, unit: 'rows/s', value: sig(rate), baseline, baselineValue: sig(baseRate), ratio: sig(rate / baseRate, 3) },
    { name: `compact ${label(small)} ticks: throughput (equal-size comparison)`, unit: 'rows/s', value: sig(sameRate), baseline, baselineValue: sig(baseRate), ratio: sig(sameRate / baseRate, 3) },
    { name: `compact ${label(n)} ticks: CPU time (all threads)`, unit: 'cpu-s', value: sig(main.cpuSeconds) },
    { name: `compact ${label(n)} ticks: Parquet file size`, unit: 'MiB', value: sig(main.bytes / MB) },
    { name: `compact ${label(n)} ticks: bytes per row`, unit: 'B/row', value: sig(main.bytes / main.rows), baseline: 'input columns (44 B/row)', baselineValue: 44, ratio: sig(main.bytes / main.rows / 44, 3) },
    { name: `compact ${label(n)} ticks: peak RSS of the process (input columns alone: ${Math.round(main.inputRssBytes / MB)} MiB)`, unit: 'MiB', value: sig(main.peakRssBytes / MB) },
    { name: `compact ${label(unsortedN)} unsorted ticks (DuckDB ORDER BY ts, seq): throughput`, unit: 'rows/s', value: sig(unsorted.rows / unsorted.seconds) },
  ];
  return results;
};

if (process.argv[2] === CHILD_FLAG) {
  const mode = process.argv[3];
  const n = Number(process.argv[4]);
  const job = mode === 'baseline' ? childBaseline(n) : childTickpipe(n, mode === 'tickpipe-unsorted');
  job.then(
    (r) => { process.stdout.write(`${JSON.stringify(r)}\n`); },
    (e: unknown) => { process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`); process.exitCode = 1; },
  );
}
