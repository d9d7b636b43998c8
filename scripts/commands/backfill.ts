/**
 * `tickpipe backfill`: Sierra Chart `.scid` files straight to hourly Parquet through the engine's
 * Validator, in parallel on a piscina pool (one task per file; workers/compactor/backfill.ts does the
 * work). Resumable and idempotent: per symbol-hour done markers under `<data-dir>/backfill/done`, and an
 * hour is rewritten atomically, so a second run (or a run after a kill) adds no rows. A missing or
 * corrupt file is reported with a coded error (file, byte offset) and the other files finish; the exit
 * code is 1 if anything failed.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import { parseTimeToMicros } from '../../engine/clock/iso.ts';
import { assertTimeZone } from '../../engine/clock/tz.ts';
import { demoSymbols, loadDotEnv } from '../../engine/config.ts';
import { engineError, type EngineError, fromWire, toWire, type WireError } from '../../engine/errors.ts';
import { parseFuturesContract } from '../../engine/symbols/contracts.ts';
import { rootDefaults } from '../../engine/symbols/defaults.ts';
import { readSymbolIds } from '../../engine/symbols/ids-file.ts';
import type { BackfillFileResult } from '../../workers/compactor/backfill.ts';
import { CompactorPool } from '../../workers/compactor/pool.ts';
import { DEPTH_RECORD_BYTES, parseDepthHeader } from '../../workers/sierra/depth-format.ts';

export interface BackfillOptions {
  scidDir: string;
  dataDir: string;
  symbols?: string[];
  start?: string;
  end?: string;
  timestampTz?: string;
  workers?: number;
  depthDir?: string;
  depthPrefix?: string;
  /**
   * The original orchestrator's `--convert-timestamp-to-ms` (add an epoch-ms `ts_ms` column): always on in
   * this layout (every row has `ts` and `ts_ms`), so it changes nothing; kept so old command lines run.
   */
  convertTimestampToMs?: boolean;
  fileSuffix?: string;
  priceMultipliers?: Record<string, number>;
  progress?: boolean;
  /** Run on this pool (not closed here) instead of a new one of `workers` threads. */
  pool?: CompactorPool;
  /**
   * Symbol ids for the quarantine and gap entries (the engine registry's ids). Default: `engineSymbolIds`
   * over the ids the engine recorded in `<dataDir>/symbol-ids.json`, then its configured symbols
   * (`configuredSymbols`, else TICKPIPE_SYMBOLS / the demo defaults).
   */
  symbolIds?: Record<string, number>;
  /** The engine's symbols in registration order (default: TICKPIPE_SYMBOLS from the environment, else the demo defaults). */
  configuredSymbols?: string[];
}

export interface BackfillSummary {
  files: BackfillFileResult[];
  depthFiles: { file: string; records: number }[];
  errors: WireError[];
  records: number;
  kept: number;
  rejected: number;
  rowsWritten: number;
  hoursWritten: number;
  hoursSkipped: number;
  /** Entries appended to `<data-dir>/quarantine/*.tpq` and `<data-dir>/gaps/*.tpg` this run (none repeated). */
  quarantineWritten: number;
  gapsWritten: number;
  /** The symbol id each symbol's quarantine and gap entries carry. */
  symbolIds: Record<string, number>;
  /** Things to know that are not errors (e.g. a symbol the engine is not configured for). */
  warnings: string[];
  seconds: number;
}

/** The engine's symbols in registration order: TICKPIPE_SYMBOLS (as `tickpipe start` reads it), else the demo defaults. */
export function configuredSymbols(env: Record<string, string | undefined> = process.env): string[] {
  const raw = env.TICKPIPE_SYMBOLS;
  const list = raw === undefined ? [] : raw.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean);
  return list.length > 0 ? list : demoSymbols();
}

/**
 * Registry ids the engine gives `symbols`: the engine registers the symbols recorded in symbol-ids.json under
 * their recorded ids (`recorded`, id order), then its configured symbols not recorded yet, in order; any other
 * symbol gets the next free ids (sorted by name), which the engine will only name if it registers that symbol
 * as its next new one: reported in `warnings`.
 */
export function engineSymbolIds(symbols: readonly string[], configured: readonly string[], recorded: readonly string[] = []): { ids: Record<string, number>; warnings: string[] } {
  const ids: Record<string, number> = {};
  // the ids the engine recorded in <data-dir>/symbol-ids.json, then the configured symbols it would add next
  recorded.forEach((s, i) => { ids[s] = i + 1; });
  let next = recorded.length + 1;
  for (const s of configured) if (ids[s] === undefined) ids[s] = next++;
  const warnings: string[] = [];
  for (const s of [...new Set(symbols)].sort()) {
    if (ids[s] !== undefined) continue;
    ids[s] = next++;
    warnings.push(`${s} is not among the engine's symbols (${[...new Set([...recorded, ...configured])].join(',')}): its quarantine and gap entries carry id ${ids[s]}, ` +
      `which the engine resolves to ${s} only if it registers ${s} as its next new symbol`);
  }
  const out: Record<string, number> = {};
  for (const s of symbols) out[s] = ids[s] as number;
  return { ids: out, warnings };
}

interface Job { file: string; symbol: string; bytes: number }

function symbolOfFile(name: string, suffix: string): string {
  const stem = name.slice(0, -'.scid'.length);
  return suffix !== '' && stem.endsWith(suffix) && stem.length > suffix.length ? stem.slice(0, -suffix.length) : stem;
}

function tickSizeOf(symbol: string): number {
  const c = parseFuturesContract(symbol);
  const d = rootDefaults(c?.root ?? symbol);
  return d?.tickSize ?? Number.NaN;
}

/** The `.scid` files to backfill, and errors for requested symbols that have none. */
function planFiles(opts: BackfillOptions, errors: EngineError[]): Job[] {
  const suffix = opts.fileSuffix ?? '_FUT_CME';
  let names: string[];
  try {
    names = readdirSync(opts.scidDir).filter((n) => n.toLowerCase().endsWith('.scid')).sort();
  } catch (err) {
    errors.push(engineError('ENGINE_ERR_FILE_IO', `backfill: cannot list --scid-dir ${opts.scidDir}: ${(err as Error).message}`, { file: opts.scidDir, errno: (err as NodeJS.ErrnoException).code ?? null }));
    return [];
  }
  const jobs: Job[] = [];
  const want = opts.symbols === undefined ? null : new Set(opts.symbols);
  const found = new Set<string>();
  for (const n of names) {
    const symbol = symbolOfFile(n, suffix);
    if (want !== null && !want.has(symbol)) continue;
    found.add(symbol);
    const file = join(opts.scidDir, n);
    let bytes = 0;
    try {
      bytes = statSync(file).size;
    } catch {
      bytes = 0; // the task reports it
    }
    jobs.push({ file, symbol, bytes });
  }
  if (want !== null) {
    for (const s of want) {
      if (!found.has(s)) {
        const file = join(opts.scidDir, `${s}${suffix}.scid`);
        errors.push(engineError('ENGINE_ERR_FILE_IO', `backfill: no .scid file for ${s} (expected ${file})`, { file, errno: 'ENOENT', symbol: s }));
      }
    }
  }
  return jobs;
}

function depthFiles(opts: BackfillOptions, errors: EngineError[]): { file: string; records: number }[] {
  if (opts.depthDir === undefined) return [];
  const out: { file: string; records: number }[] = [];
  let names: string[];
  try {
    names = readdirSync(opts.depthDir).filter((n) => n.endsWith('.depth') && (opts.depthPrefix === undefined || n.startsWith(opts.depthPrefix))).sort();
  } catch (err) {
    errors.push(engineError('ENGINE_ERR_FILE_IO', `backfill: cannot list --depth-dir ${opts.depthDir}: ${(err as Error).message}`, { file: opts.depthDir }));
    return out;
  }
  for (const n of names) {
    const file = join(opts.depthDir, n);
    let fd = -1;
    try {
      fd = openSync(file, 'r');
      const size = statSync(file).size;
      const head = new Uint8Array(Math.min(size, 64));
      readSync(fd, head, 0, head.length, 0);
      const h = parseDepthHeader(head, file, size);
      out.push({ file, records: Math.floor((size - h.headerBytes) / DEPTH_RECORD_BYTES) });
    } catch (err) {
      errors.push(err as EngineError);
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }
  return out;
}

function parseBound(v: string | undefined, tz: string | undefined, name: string): number | null {
  if (v === undefined) return null;
  try {
    return parseTimeToMicros(v, tz === undefined ? undefined : { tz });
  } catch (err) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `backfill: ${name} ${JSON.stringify(v)}: ${(err as Error).message}`, { [name]: v });
  }
}

/** Run a backfill; never throws for file problems (they are in `errors`). */
export async function runBackfill(opts: BackfillOptions, log: (line: string) => void = () => undefined): Promise<BackfillSummary> {
  const t0 = performance.now();
  if (opts.timestampTz !== undefined) assertTimeZone(opts.timestampTz);
  const startMicros = parseBound(opts.start, opts.timestampTz, '--start');
  const endMicros = parseBound(opts.end, opts.timestampTz, '--end');
  if (startMicros !== null && endMicros !== null && endMicros <= startMicros) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `backfill: --end must be after --start`, {});
  }
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw engineError('ENGINE_ERR_INVALID_ARG', `backfill: --workers must be 1..64, got ${String(opts.workers)}`, {});
  const errors: EngineError[] = [];
  const jobs = planFiles(opts, errors);
  const depth = depthFiles(opts, errors);
  let symbolIds: Record<string, number>;
  let warnings: string[] = [];
  if (opts.symbolIds !== undefined) {
    symbolIds = {};
    for (const j of jobs) {
      const id = opts.symbolIds[j.symbol];
      if (id === undefined) throw engineError('ENGINE_ERR_INVALID_ARG', `backfill: no symbol id given for ${j.symbol}`, { symbol: j.symbol });
      symbolIds[j.symbol] = id;
    }
  } else {
    ({ ids: symbolIds, warnings } = engineSymbolIds(jobs.map((j) => j.symbol), opts.configuredSymbols ?? configuredSymbols(), readSymbolIds(opts.dataDir).map((r) => r.symbol)));
  }
  const total = jobs.reduce((s, j) => s + j.bytes, 0);
  const bar = opts.progress === true
    ? new cliProgress.SingleBar({
      stream: process.stderr, format: 'backfill [{bar}] {percentage}% | {value}/{total} MiB | files {files} | ETA {eta_formatted}',
      hideCursor: true, etaBuffer: 50,
    }, cliProgress.Presets.shades_classic)
    : null;
  const MiB = 1 << 20;
  let doneBytes = 0;
  let filesDone = 0;
  bar?.start(Math.max(1, Math.ceil(total / MiB)), 0, { files: `0/${jobs.length}` });
  // While the bar draws on the terminal, per-file lines wait until it is done.
  const held: string[] = [];
  const say = (line: string): void => { if (bar === null) log(line); else held.push(line); };
  const pool = opts.pool ?? new CompactorPool({ threads: workers, idleTimeoutMs: 1000 });
  const results: BackfillFileResult[] = [];
  try {
    await Promise.all(jobs.map(async (j) => {
      const ch = new MessageChannel();
      let fileBytes = 0;
      ch.port1.on('message', (m: { bytes: number }) => {
        fileBytes += m.bytes;
        doneBytes += m.bytes;
        bar?.update(Math.floor(doneBytes / MiB));
      });
      ch.port1.unref();
      try {
        const r = await pool.run<BackfillFileResult>({
          kind: 'backfill-file', dataDir: opts.dataDir, file: j.file, symbol: j.symbol, symbolId: symbolIds[j.symbol], tickSize: tickSizeOf(j.symbol),
          priceMultiplier: opts.priceMultipliers?.[j.symbol] ?? 1, startMicros, endMicros, progressPort: ch.port2,
        }, [ch.port2]);
        results.push(r);
        for (const e of r.errors) errors.push(fromWire(e));
        say(`${j.symbol} ${basename(j.file)}: records ${r.records}, kept ${r.kept}, rejected ${r.rejected}, hours written ${r.hoursWritten}, skipped (done) ${r.hoursSkipped}, rows ${r.rowsWritten}, gaps ${r.gaps}${r.errors.length > 0 ? `, ${r.errors.length} error(s)` : ''}`);
      } catch (err) {
        errors.push(err as EngineError);
      } finally {
        ch.port1.close();
        doneBytes += Math.max(0, j.bytes - fileBytes);
        filesDone++;
        bar?.update(Math.floor(doneBytes / MiB), { files: `${filesDone}/${jobs.length}` });
      }
    }));
  } finally {
    bar?.update(Math.max(1, Math.ceil(total / MiB)), { files: `${filesDone}/${jobs.length}` });
    bar?.stop();
    if (opts.pool === undefined) await pool.close();
    for (const line of held) log(line);
  }
  results.sort((a, b) => a.file.localeCompare(b.file));
  const sum = (f: (r: BackfillFileResult) => number): number => results.reduce((s, r) => s + f(r), 0);
  return {
    files: results, depthFiles: depth, errors: errors.map((e) => toWire(e)),
    records: sum((r) => r.records), kept: sum((r) => r.kept), rejected: sum((r) => r.rejected), rowsWritten: sum((r) => r.rowsWritten),
    hoursWritten: sum((r) => r.hoursWritten), hoursSkipped: sum((r) => r.hoursSkipped),
    quarantineWritten: sum((r) => r.quarantineWritten), gapsWritten: sum((r) => r.gapsWritten), symbolIds, warnings, seconds: (performance.now() - t0) / 1000,
  };
}

function parseMultipliers(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, x] = part.split('=');
    const m = Number(x);
    if (!k || !(m > 0) || !Number.isFinite(m)) throw engineError('ENGINE_ERR_INVALID_ARG', `backfill: bad --price-multipliers entry ${JSON.stringify(part)} (want SYM=0.01)`, {});
    out[k] = m;
  }
  return out;
}

export function registerBackfill(program: Command): void {
  program
    .command('backfill')
    .description('import Sierra Chart .scid files into hourly Parquet through the validator (resumable, idempotent)')
    .addOption(new Option('--scid-dir <dir>', 'folder of the .scid files (Sierra Chart\'s Data folder)').env('TICKPIPE_SIERRA_DIR').makeOptionMandatory())
    .addOption(new Option('--data-dir <dir>', 'data directory').env('TICKPIPE_DATA_DIR').default('./data'))
    .option('--symbols <list>', 'comma-separated contracts to import (default: every .scid file in --scid-dir)')
    .option('--start <time>', 'first time to import (ISO 8601, date, or epoch); widened to the whole UTC hour')
    .option('--end <time>', 'end of the range (exclusive); widened to the whole UTC hour')
    .option('--timestamp-tz <zone>', 'IANA zone for --start/--end written without an offset (default UTC)')
    .option('--workers <n>', 'parallel files (piscina threads)', (v) => Number(v), 1)
    .option('--depth-dir <dir>', 'market depth folder: .depth files are checked and counted (depth is not stored in Parquet)')
    .option('--depth-prefix <prefix>', 'only .depth files whose name starts with this')
    .option('--convert-timestamp-to-ms', 'the original orchestrator\'s switch to add an epoch-milliseconds ts_ms column: always on here ' +
      '(every Parquet row has ts, µs UTC with Sierra\'s sub-ms counter, and ts_ms = floor(ts / 1000) BIGINT); accepted so old command lines run, changes nothing')
    .option('--file-suffix <suffix>', 'file name suffix after the symbol', '_FUT_CME')
    .option('--price-multipliers <list>', 'per-symbol price multipliers, e.g. ESZ25=0.01')
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress bar (it is off anyway when stderr is not a terminal)')
    .action(async (o: {
      scidDir: string; dataDir: string; symbols?: string; start?: string; end?: string; timestampTz?: string; workers: number;
      depthDir?: string; depthPrefix?: string; convertTimestampToMs?: boolean; fileSuffix: string; priceMultipliers?: string; json?: boolean; progress: boolean;
    }) => {
      loadDotEnv(); // the engine's TICKPIPE_SYMBOLS decides the symbol ids of quarantine entries
      const summary = await runBackfill({
        scidDir: resolve(o.scidDir), dataDir: resolve(o.dataDir), symbols: o.symbols?.split(',').map((s) => s.trim()).filter(Boolean),
        start: o.start, end: o.end, timestampTz: o.timestampTz, workers: o.workers, depthDir: o.depthDir, depthPrefix: o.depthPrefix,
        convertTimestampToMs: o.convertTimestampToMs, fileSuffix: o.fileSuffix,
        priceMultipliers: o.priceMultipliers === undefined ? undefined : parseMultipliers(o.priceMultipliers),
        progress: o.progress && process.stderr.isTTY === true,
      }, o.json ? undefined : (line) => process.stdout.write(`${line}\n`));
      if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        for (const d of summary.depthFiles) process.stdout.write(`depth ${basename(d.file)}: ${d.records} records (checked, not stored)\n`);
        if (o.convertTimestampToMs) process.stdout.write('backfill: --convert-timestamp-to-ms is always on: every row has ts_ms = floor(ts / 1000 µs) beside ts (nothing else to convert)\n');
        process.stdout.write(`backfill: ${summary.files.length} file(s), ${summary.records} records, ${summary.kept} kept, ${summary.rejected} quarantined, ` +
          `${summary.rowsWritten} rows in ${summary.hoursWritten} hour(s) written, ${summary.hoursSkipped} already done, ` +
          `${summary.quarantineWritten} new quarantine and ${summary.gapsWritten} new gap entries, ${summary.seconds.toFixed(1)} s\n`);
        for (const w of summary.warnings) process.stderr.write(`tickpipe backfill: warning: ${w}\n`);
      }
      for (const e of summary.errors) process.stderr.write(`tickpipe backfill: ${e.code}: ${e.message}\n`);
      if (summary.errors.length > 0) process.exitCode = 1;
    });
}
